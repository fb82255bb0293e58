/* Internals of the virtual card's authenticator core, shared by card*.c only.
 * Nothing outside harness/vcard/card*.c includes this. */
#ifndef KCARD_VCARD_CARD_INT_H
#define KCARD_VCARD_CARD_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cbor.h>
#include <openssl/evp.h>

#include "ctaphid/cbor_util.h"
#include "harness/vcard/card.h"
#include "harness/vcard/personality.h"

#define VC_MAX_MSG_SIZE 1200 /* kcard-2.1's; each personality has its own */
#define VC_MAX_CRED_IN_LIST 16
#define VC_MAX_RK 50
#define VC_CRED_BLOB_MAX 32 /* the most any personality's maxCredBlobLength says */
#define VC_RP_ID_MAX 255
#define VC_USER_ID_MAX 64
#define VC_NAME_MAX 64
#define VC_PIN_RETRIES_MAX 8
#define VC_PIN_MIN_LEN 4
#define VC_PIN_MAX_LEN 63
#define VC_MIN_PIN_RPIDS_MAX 4 /* getInfo maxRPIDsForSetMinPINLength */
#define VC_UV_RETRIES_MAX 8
#define VC_CTAP2_CONFIG 0x0d        /* authenticatorConfig */
#define VC_DEFAULT_START_PIN "1234" /* pin-blocked, force-pin-change without --pin */
#define VC_PIN_BLOCK_LEN 64
#define VC_PIN_BOOT_FAILS 3
#define VC_TOKEN_LEN 32
#define VC_FIRMWARE_VERSION 0x00010000
#define VC_NEXT_ASSERTION_MS 30000

/* Credential id: format(1) nonce(12) AES-256-GCM(plain) tag(16), with the
 * rpIdHash as additional data, so an id only opens for the rp it was made
 * for and any change to it is detected. */
#define VC_CRED_FORMAT 0x01
#define VC_CRED_NONCE_LEN 12
#define VC_CRED_TAG_LEN 16
#define VC_CRED_PLAIN_LEN 35 /* alg(1) credProtect(1) flags(1) private key(32) */
#define VC_CRED_ID_LEN (1 + VC_CRED_NONCE_LEN + VC_CRED_PLAIN_LEN + VC_CRED_TAG_LEN) /* 64 */
#define VC_CRED_FLAG_HMAC_SECRET 0x01
#define VC_CRED_FLAG_RK 0x02

#define VC_AUTH_FLAG_UP 0x01
#define VC_AUTH_FLAG_UV 0x04
#define VC_AUTH_FLAG_AT 0x40
#define VC_AUTH_FLAG_ED 0x80

/* A credential opened from its id. */
struct vc_cred {
    int alg; /* KC_COSE_ES256 or KC_COSE_EDDSA */
    int cred_protect;
    uint8_t flags;
    uint8_t priv[32];
    uint8_t id[VC_CRED_ID_LEN];
};

/* A resident (discoverable) credential: metadata plus its id; the private
 * key lives wrapped inside the id, like every other credential. */
struct vc_rk {
    uint8_t id[VC_CRED_ID_LEN];
    uint8_t rp_id_hash[32];
    char rp_id[VC_RP_ID_MAX + 1];
    uint8_t user_id[VC_USER_ID_MAX];
    size_t user_id_len;
    char user_name[VC_NAME_MAX + 1];
    char display_name[VC_NAME_MAX + 1];
    int cred_protect;
    uint64_t seq;                        /* creation order: larger is newer */
    uint8_t cred_blob[VC_CRED_BLOB_MAX]; /* credBlob extension */
    size_t cred_blob_len;
};

/* signCount of one credential, keyed by a hash of its id. */
struct vc_counter {
    uint8_t key[16];
    uint32_t count;
};

struct vc_pending {
    bool active;
    size_t idx[VC_MAX_RK]; /* indexes into rks, newest first */
    size_t n, next;
    uint8_t cdh[32];
    uint8_t flags;
    uint64_t started_ms; /* kcu_now_ms() of the last answer: the next comes within
                            VC_NEXT_ASSERTION_MS of it */
    bool ext_cred_blob, ext_large_blob_key; /* getCredBlob, largeBlobKey asked */
};

/* An enumeration of authenticatorCredentialManagement in progress
 * (enumerateRPs / enumerateCredentials): what the next GetNext returns.
 * Cleared by any other command (card_credman.c). */
struct vc_cm_enum {
    int kind;              /* 0 none, VC_CM_ENUM_RPS or VC_CM_ENUM_CREDS */
    size_t idx[VC_MAX_RK]; /* indexes into rks */
    size_t n, next;
};
#define VC_CM_ENUM_RPS 1
#define VC_CM_ENUM_CREDS 2

#define VC_KEY_CACHE 8

struct vc_key_cache {
    uint8_t id[VC_CRED_ID_LEN];
    EVP_PKEY *key;
};

struct vc_card {
    pthread_mutex_t mu;
    struct vc_key_cache kcache[VC_KEY_CACHE];
    size_t kcache_next;
    struct vc_config cfg;
    char *state_path;
    struct vc_faults faults;
    const struct vc_personality *pers; /* never NULL */
    bool aaguid_given;                 /* cfg.aaguid came from the caller */
    bool start_pin_given;              /* --pin */
    uint8_t start_pin_hash[16];

    /* persistent */
    uint8_t master_key[32];
    EVP_PKEY *att_key;
    uint8_t *att_cert;
    size_t att_cert_len;
    bool pin_set;
    uint8_t pin_hash[16];
    int pin_retries;
    bool force_pin_change; /* getInfo 0x0C; tokens refused until changePIN */
    /* authenticatorConfig (card_config.c); used only where the personality
     * offers it (authnr_cfg) */
    size_t pin_code_points; /* the PIN's length in code points; 0: unknown */
    int min_pin_len;        /* setMinPINLength; 0: the personality's */
    bool always_uv;         /* toggleAlwaysUv: the alwaysUv option */
    bool always_uv_set;     /* always_uv was toggled (else the personality's) */
    bool ep;                /* enterprise attestation enabled */
    char min_pin_rpids[VC_MIN_PIN_RPIDS_MAX][VC_RP_ID_MAX + 1];
    size_t n_min_pin_rpids;
    struct vc_rk rks[VC_MAX_RK];
    size_t n_rk;
    uint64_t next_seq;
    struct vc_counter *ctrs; /* sorted by key; grows without a cap */
    size_t n_ctr, cap_ctr;
    uint8_t *lb_array; /* serialized large-blob array; NULL: the initial one */
    size_t lb_len;
    uint8_t *lb_pending; /* a set in progress (card_largeblob.c) */
    size_t lb_expected, lb_next;

    /* per boot */
    uint64_t boot_ms; /* kcu_now_ms() of the power-up */
    int pin_boot_fails;
    EVP_PKEY *ka_key;
    uint8_t token[VC_TOKEN_LEN];
    bool token_in_use;
    uint8_t token_perms;
    bool token_has_rp;
    char token_rp[VC_RP_ID_MAX + 1];
    struct vc_pending pending;
    struct vc_cm_enum cm_enum;
};

/* card.c */
enum vc_up_result vc_ask_presence(struct vc_card *c, vc_presence_fn up, void *ctx);
uint8_t vc_up_status(enum vc_up_result r); /* a CTAP2 status for a non-approval */
int vc_persist(struct vc_card *c);         /* save state if a path is configured */
/* Serialise item into resp after a zero status byte: KC_CTAP2_OK,
 * KC_CTAP1_ERR_OTHER, or VC_ST_TOO_SMALL when cap cannot hold it. */
#define VC_ST_TOO_SMALL 0xff
uint8_t vc_reply_item(cbor_item_t *item, uint8_t *resp, size_t cap, size_t *resp_len);
void vc_reply_status(uint8_t status, uint8_t *resp, size_t *resp_len);

/* Built-in UV: the personality's uv option, or --uv. */
bool vc_builtin_uv(const struct vc_card *c);
/* LEFT(SHA-256(pin), 16), as the card keeps a PIN; -1 on failure. */
int vc_pin_hash(const char *pin, uint8_t out[16]);

/* card_cbor.c (everything else CBOR: ctaphid/cbor_util.h). The request's
 * top-level map: one whole well-formed CBOR map with unsigned int keys;
 * KC_CTAP2_OK or a CTAP2 status. */
uint8_t vc_parse_request(const uint8_t *p, size_t len, cbor_item_t **out);
/* Copies a text string into a NUL-terminated buffer, truncated at cap-1 bytes. */
void vc_item_text_copy(const cbor_item_t *it, char *dst, size_t cap);

/* card_crypto.c */
int vc_sha256(const uint8_t *p, size_t len, uint8_t out[32]);
/* HMAC-SHA256 of m1 || m2 (m2 may be NULL with l2 0). */
int vc_hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *m1, size_t l1, const uint8_t *m2,
                   size_t l2, uint8_t out[32]);
int vc_cred_new(struct vc_card *c, int alg, int cred_protect, uint8_t flags,
                const uint8_t rp_id_hash[32], struct vc_cred *out, EVP_PKEY **pkey);
/* 0 if id is a credential of this card for this rp; -1 otherwise. */
int vc_cred_open(const struct vc_card *c, const uint8_t *id, size_t id_len,
                 const uint8_t rp_id_hash[32], struct vc_cred *out);
/* The credential's key pair (a new reference: EVP_PKEY_free it). Recently
 * used keys are cached so repeated assertions skip rebuilding them. */
EVP_PKEY *vc_cred_pkey(struct vc_card *c, const struct vc_cred *cr);
void vc_key_cache_clear(struct vc_card *c);
int vc_sign(struct vc_card *c, EVP_PKEY *key, int alg, const uint8_t *m1, size_t l1,
            const uint8_t *m2, size_t l2, uint8_t *sig, size_t *sig_len);
int vc_attest_generate(struct vc_card *c);
/* Re-issues the batch certificate (same key) when its AAGUID extension is not
 * the card's current AAGUID, so packed attestation keeps verifying after a
 * personality change. 1 re-issued, 0 already right, -1 on failure. */
int vc_attest_match_aaguid(struct vc_card *c);
int vc_p256_raw_pub(EVP_PKEY *k, uint8_t out[65]);
/* Counters (by credential id) */
uint32_t vc_counter_next(struct vc_card *c, const uint8_t *id, size_t id_len);
void vc_counter_set(struct vc_card *c, const uint8_t *id, size_t id_len, uint32_t v);

/* card_ctap2.c */
uint8_t vc_make_credential(struct vc_card *c, const uint8_t *p, size_t len, uint8_t *resp,
                           size_t cap, size_t *resp_len, vc_presence_fn up, void *ctx);
uint8_t vc_get_assertion(struct vc_card *c, const uint8_t *p, size_t len, uint8_t *resp, size_t cap,
                         size_t *resp_len, vc_presence_fn up, void *ctx);
uint8_t vc_get_next_assertion(struct vc_card *c, uint8_t *resp, size_t cap, size_t *resp_len);

/* card_pin.c */
uint8_t vc_client_pin(struct vc_card *c, const uint8_t *p, size_t len, uint8_t *resp, size_t cap,
                      size_t *resp_len);
/* Checks pinUvAuthParam over cdh for permission perm and rp_id. */
uint8_t vc_pin_check_param(struct vc_card *c, const cbor_item_t *param, const cbor_item_t *proto,
                           const uint8_t cdh[32], uint8_t perm, const char *rp_id);
int vc_pin_new_boot(struct vc_card *c);
/* A pinUvAuthProtocol the personality offers (else INVALID_PARAMETER). */
uint8_t vc_pin_proto_check(const struct vc_card *c, const cbor_item_t *proto, int *out);

/* hmac-secret extension input of getAssertion, checked and decrypted. */
struct vc_hmac_in {
    bool present;
    int proto;
    uint8_t shared[64];
    size_t shared_len;
    uint8_t salt[64];
    size_t salt_len; /* 32 or 64 */
};
/* NULL in: not requested (KC_CTAP2_OK, present false). */
uint8_t vc_hmac_secret_input(struct vc_card *c, const cbor_item_t *in, struct vc_hmac_in *out);
int vc_hmac_secret_output(struct vc_card *c, const struct vc_hmac_in *in, const struct vc_cred *cr,
                          bool uv, uint8_t *out, size_t cap, size_t *out_len);

/* card_largeblob.c: authenticatorLargeBlobs (CTAP 2.1 6.10) */
#define VC_LARGE_BLOB_STORE_MAX 65536 /* what --state accepts */
uint8_t vc_large_blobs(struct vc_card *c, const uint8_t *p, size_t len, uint8_t *resp, size_t cap,
                       size_t *resp_len);
/* The committed array (the initial empty array until one is written). */
const uint8_t *vc_largeblob_array(const struct vc_card *c, size_t *len);
/* Back to the initial array (authenticatorReset); frees everything. */
void vc_largeblob_clear(struct vc_card *c);

/* card_credman.c: authenticatorCredentialManagement (0x0A, and 0x41 on a
 * 2.1-PRE personality); vc_credman_cancel ends an enumeration in progress. */
uint8_t vc_credman(struct vc_card *c, uint8_t cmd, const uint8_t *p, size_t len, uint8_t *resp,
                   size_t cap, size_t *resp_len);
void vc_credman_cancel(struct vc_card *c);

/* card_config.c: authenticatorConfig (CTAP 2.1 6.11), the state it keeps
 * and what the rest of the card reads from it */
uint8_t vc_config(struct vc_card *c, const uint8_t *p, size_t len);
bool vc_config_offered(const struct vc_card *c);         /* authnrCfg */
bool vc_always_uv(const struct vc_card *c);              /* alwaysUv in effect */
enum vc_uv_policy vc_uv_policy(const struct vc_card *c); /* alwaysUv applied */
size_t vc_min_pin_len(const struct vc_card *c);          /* code points, >= 4 */
bool vc_min_pin_rp_allowed(const struct vc_card *c, const char *rp_id);
/* enterpriseAttestation (makeCredential 0x0A): KC_CTAP2_OK with *ep_att
 * set when the attestation given is an enterprise one. */
uint8_t vc_enterprise_attestation(const struct vc_card *c, const cbor_item_t *ea, const char *rp_id,
                                  bool *ep_att);
/* The PIN's code points, as setMinPINLength compares them. */
size_t vc_utf8_code_points(const uint8_t *p, size_t len);
void vc_config_reset(struct vc_card *c); /* authenticatorReset: factory settings */
/* The settings' place in --state: {"config": map}; a file without it
 * (written before) loads as factory settings. NULL: fine, else why not. */
cbor_item_t *vc_config_state_item(const struct vc_card *c);
const char *vc_config_state_load(struct vc_card *c, const cbor_item_t *m);

/* The CTAP 2.1 extensions beside large blobs (card_largeblob.c):
 * credBlob, largeBlobKey, minPinLength, each only where the personality
 * offers it (an extension not offered is ignored, as unknown ones are). */
struct vc_ext_mc {
    int cred_blob; /* -1 not asked; 0 refused (authData false); 1 stored */
    uint8_t blob[VC_CRED_BLOB_MAX];
    size_t blob_len;
    bool large_blob_key; /* answer key 0x05 */
    int64_t min_pin;     /* -1: no "minPinLength" output */
};
uint8_t vc_ext_mc_parse(struct vc_card *c, const cbor_item_t *ext, bool rk, const char *rp_id,
                        struct vc_ext_mc *out);
/* The credential's largeBlobKey: HMAC-SHA256(key from the master key, id). */
int vc_large_blob_key(const struct vc_card *c, const uint8_t id[VC_CRED_ID_LEN], uint8_t out[32]);
struct vc_ext_ga {
    bool cred_blob;      /* getCredBlob: true */
    bool large_blob_key; /* largeBlobKey: true */
};
uint8_t vc_ext_ga_parse(const struct vc_card *c, const cbor_item_t *ext, struct vc_ext_ga *out);

/* card_u2f.c */
void vc_u2f(struct vc_card *c, const uint8_t *apdu, size_t len, uint8_t *resp, size_t cap,
            size_t *resp_len, vc_presence_fn up, void *ctx);

/* card_state.c */
int vc_state_load(struct vc_card *c, char *err, size_t errlen); /* 1 loaded, 0 absent, -1 */
int vc_state_save(struct vc_card *c);

#endif
