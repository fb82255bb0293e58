/* authenticatorCredentialManagement (CTAP 2.1, 6.8; command 0x0A, or 0x41
 * on 2.1-PRE cards that advertise credentialMgmtPreview): the resident
 * credentials on a card, per relying party, with delete and user update.
 *
 * Every authenticated subcommand gets a pinUvAuthToken with the cm
 * permission (kc_pin_token_for: protocol 2 or 1 as the card offers) and
 * sends pinUvAuthParam = authenticate(token, subCommand || subCommandParams).
 * Returns follow ctaphid/ctap2.h: 0, a CTAP2 status (> 0) or a KC_ERR_*.
 * Reply decoders are pure and fuzzed (tests/fuzz/fuzz_credman_reply.c). */
#ifndef KCARD_CTAPHID_CREDMAN_H
#define KCARD_CTAPHID_CREDMAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/ctap2.h"

/* subCommand values */
enum kc_credman_sub {
    KC_CM_GET_METADATA = 0x01,
    KC_CM_RPS_BEGIN = 0x02,
    KC_CM_RPS_NEXT = 0x03,
    KC_CM_CREDS_BEGIN = 0x04,
    KC_CM_CREDS_NEXT = 0x05,
    KC_CM_DELETE = 0x06,
    KC_CM_UPDATE_USER = 0x07,
};

/* request keys, subCommandParams keys and response keys */
enum kc_credman_key {
    KC_CMREQ_SUBCMD = 0x01,
    KC_CMREQ_PARAMS = 0x02,
    KC_CMREQ_PROTOCOL = 0x03,
    KC_CMREQ_AUTH = 0x04,
    KC_CMPARAM_RP_ID_HASH = 0x01,
    KC_CMPARAM_CRED_ID = 0x02,
    KC_CMPARAM_USER = 0x03,
    KC_CMRESP_EXISTING = 0x01,
    KC_CMRESP_REMAINING = 0x02,
    KC_CMRESP_RP = 0x03,
    KC_CMRESP_RP_ID_HASH = 0x04,
    KC_CMRESP_TOTAL_RPS = 0x05,
    KC_CMRESP_USER = 0x06,
    KC_CMRESP_CRED_ID = 0x07,
    KC_CMRESP_PUBLIC_KEY = 0x08,
    KC_CMRESP_TOTAL_CREDS = 0x09,
    KC_CMRESP_CRED_PROTECT = 0x0a,
    KC_CMRESP_LARGE_BLOB_KEY = 0x0b,
};

#define KC_CM_RP_ID_MAX 256 /* bytes kept of an rp id, NUL included */
#define KC_CM_NAME_MAX 256  /* bytes kept of a user name / displayName */
#define KC_CM_USER_ID_MAX 64
#define KC_CM_MAX_ITEMS 1024 /* totals larger than this are refused */

/* Which command a card takes: 0x0A (credMgmt), 0x41 (credentialMgmtPreview),
 * or 0 when getInfo offers neither. */
uint8_t kc_credman_command(const struct kc_info *info);

/* One session: the card, its getInfo and the PIN; the token is fetched on
 * first use and kept (zeroed by kc_credman_close). */
struct kc_credman {
    struct kc_dev *dev;
    struct kc_info info;
    uint8_t cmd; /* 0x0A or 0x41 */
    const char *pin;
    struct kc_pin_token token;
    bool have_token;
};
/* KC_ERR_UNSUPPORTED when the card offers no credential management. info
 * may be NULL (getInfo is run). pin must be set for every call below but
 * kc_credman_close (KC_ERR_INVALID_ARG otherwise), unless the caller puts a
 * cm token in s->token and sets s->have_token. */
int kc_credman_open(struct kc_credman *s, struct kc_dev *d, const struct kc_info *info,
                    const char *pin);
void kc_credman_close(struct kc_credman *s);

struct kc_credman_metadata {
    uint64_t existing;
    uint64_t remaining;
};

struct kc_credman_rp {
    char id[KC_CM_RP_ID_MAX]; /* "" when the card left it out */
    char name[KC_CM_NAME_MAX];
    uint8_t id_hash[32];
    bool truncated; /* the id or name was longer than kept */
};

struct kc_credman_cred {
    uint8_t user_id[KC_CM_USER_ID_MAX];
    size_t user_id_len;
    char user_name[KC_CM_NAME_MAX];
    char display_name[KC_CM_NAME_MAX];
    uint8_t *cred_id; /* malloc'd */
    size_t cred_id_len;
    uint8_t *public_key; /* the COSE_Key, CBOR, malloc'd */
    size_t public_key_len;
    int64_t alg;           /* the key's COSE alg (3), 0 when absent */
    uint64_t cred_protect; /* 0 when absent */
    uint8_t large_blob_key[32];
    bool has_large_blob_key;
};
void kc_credman_cred_free(struct kc_credman_cred *c);

int kc_credman_metadata(struct kc_credman *s, struct kc_credman_metadata *out);
/* RPs: all of them, malloc'd array in *rps (free()); *n 0 when the card has
 * no credentials (its NO_CREDENTIALS answer is not an error here). */
int kc_credman_rps(struct kc_credman *s, struct kc_credman_rp **rps, size_t *n);
/* The credentials of one rp (by id; its SHA-256 is sent); free with
 * kc_credman_creds_free. */
int kc_credman_creds(struct kc_credman *s, const char *rp_id, struct kc_credman_cred **creds,
                     size_t *n);
void kc_credman_creds_free(struct kc_credman_cred *creds, size_t n);
int kc_credman_delete(struct kc_credman *s, const uint8_t *cred_id, size_t cred_id_len);
/* name / display_name NULL: left out (the card removes them). */
int kc_credman_update_user(struct kc_credman *s, const uint8_t *cred_id, size_t cred_id_len,
                           const uint8_t *user_id, size_t user_id_len, const char *name,
                           const char *display_name);

#endif
