/* authenticatorClientPIN (0x06): retries, key agreement, set and change PIN,
 * and pinUvAuthTokens, over PIN/UV auth protocol 2 or 1 as the card
 * advertises (ctaphid/pin_proto.h holds the primitives).
 *
 * info may be NULL in every call: the library then runs getInfo itself.
 * When no protocol fits, calls return KC_ERR_NO_PIN_PROTOCOL; the caller
 * names the card's list with kc_info_pin_protocols_str(). */
#ifndef KCARD_CTAPHID_PIN_H
#define KCARD_CTAPHID_PIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "ctaphid/ctap2.h"

#define KC_PIN_MIN_LEN 4   /* code points; the card's minPINLength may be higher */
#define KC_PIN_MAX_LEN 63  /* UTF-8 bytes */
#define KC_PIN_ENC_MAX 128 /* largest encrypted field we accept from the card */

/* clientPIN request/response map keys */
enum kc_pin_key {
    KC_PINREQ_PROTOCOL = 0x01,
    KC_PINREQ_SUBCMD = 0x02,
    KC_PINREQ_KEY_AGREEMENT = 0x03,
    KC_PINREQ_AUTH = 0x04,
    KC_PINREQ_NEW_PIN_ENC = 0x05,
    KC_PINREQ_PIN_HASH_ENC = 0x06,
    KC_PINREQ_PERMISSIONS = 0x09,
    KC_PINREQ_RP_ID = 0x0a,
    KC_PINRESP_KEY_AGREEMENT = 0x01,
    KC_PINRESP_TOKEN = 0x02,
    KC_PINRESP_RETRIES = 0x03,
    KC_PINRESP_POWER_CYCLE = 0x04,
    KC_PINRESP_UV_RETRIES = 0x05,
};

/* A clientPIN request, encoded by kc_client_pin_encode. Zero/NULL fields are
 * omitted. */
struct kc_client_pin_req {
    int protocol;            /* 0: omitted */
    int subcmd;              /* KC_PIN_* */
    EVP_PKEY *key_agreement; /* platform's public key, sent as COSE -25 */
    const uint8_t *pin_uv_auth_param;
    size_t pin_uv_auth_param_len;
    const uint8_t *new_pin_enc;
    size_t new_pin_enc_len;
    const uint8_t *pin_hash_enc;
    size_t pin_hash_enc_len;
    uint8_t permissions; /* KC_PERM_*; 0: omitted */
    const char *rp_id;
};
int kc_client_pin_encode(const struct kc_client_pin_req *r, uint8_t **buf, size_t *len);

struct kc_pin_response {
    EVP_PKEY *key_agreement; /* owned; NULL when absent */
    uint8_t token_enc[KC_PIN_ENC_MAX];
    size_t token_enc_len; /* 0 when absent */
    bool has_retries;
    uint64_t retries;
    bool power_cycle_state;
    bool has_uv_retries;
    uint64_t uv_retries;
};
int kc_pin_response_decode(const uint8_t *cbor, size_t len, struct kc_pin_response *r);
void kc_pin_response_free(struct kc_pin_response *r); /* frees members, zeroes */

struct kc_pin_retries {
    uint64_t retries;
    bool power_cycle_state;
    bool has_uv_retries;
    uint64_t uv_retries; /* filled by kc_pin_get_uv_retries */
};
/* getRetries (0x01); works with no PIN/UV protocol advertised (sent without) */
int kc_pin_get_retries(struct kc_dev *d, const struct kc_info *info, struct kc_pin_retries *out);
int kc_pin_get_uv_retries(struct kc_dev *d, const struct kc_info *info, struct kc_pin_retries *out);
/* getKeyAgreement (0x02) for a given protocol; *peer is an owned P-256 key */
int kc_pin_get_key_agreement(struct kc_dev *d, int protocol, EVP_PKEY **peer);
/* setPIN (0x03) and changePIN (0x04); pins are UTF-8, 4..63 bytes */
int kc_pin_set(struct kc_dev *d, const struct kc_info *info, const char *pin);
int kc_pin_change(struct kc_dev *d, const struct kc_info *info, const char *old_pin,
                  const char *new_pin);
/* getPinToken (0x05) */
int kc_pin_get_token(struct kc_dev *d, const struct kc_info *info, const char *pin,
                     struct kc_pin_token *tok);
/* getPinUvAuthTokenUsingPinWithPermissions (0x09); rp_id may be NULL */
int kc_pin_get_token_with_permissions(struct kc_dev *d, const struct kc_info *info, const char *pin,
                                      uint8_t permissions, const char *rp_id,
                                      struct kc_pin_token *tok);
/* The token a command needs: subcommand 9 with permissions when the card has
 * the pinUvAuthToken option, getPinToken otherwise. */
int kc_pin_token_for(struct kc_dev *d, const struct kc_info *info, const char *pin,
                     uint8_t permissions, const char *rp_id, struct kc_pin_token *tok);
/* Zeroes a token (OPENSSL_cleanse); NULL is ignored. */
void kc_pin_token_clear(struct kc_pin_token *t);
/* pinUvAuthParam = authenticate(token, msg): 16 bytes (p1) or 32 (p2) */
int kc_pin_auth_param(const struct kc_pin_token *tok, const uint8_t *msg, size_t len, uint8_t *out,
                      size_t *out_len);

#endif
