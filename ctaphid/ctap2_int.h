/* Internal to libctaphid's CTAP2 layer: one call that sends a command with a
 * CBOR parameter map and returns the response body. Not a public API. */
#ifndef KCARD_CTAPHID_CTAP2_INT_H
#define KCARD_CTAPHID_CTAP2_INT_H

#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

#include "ctaphid/ctap2.h"

/* params (encoded CBOR map) may be NULL. On status 0, *body is a malloc'd copy of the bytes
 * after the status byte (NULL when there are none) and *body_len its length.
 * Returns 0, the card's status byte (> 0) or a KC_ERR_*. */
int kc_ctap2_call(struct kc_dev *d, uint8_t cmd, const uint8_t *params, size_t params_len,
                  uint8_t **body, size_t *body_len);

/* Obtain the pinUvAuthParam over client_data_hash for a command: token wins,
 * else pin (fetching getInfo when info is NULL). out->... filled. *param_len
 * is 0 when no PIN/UV auth is used. */
int kc_ctap2_pin_param(struct kc_dev *d, const struct kc_info *info, const struct kc_pin_token *tok,
                       const char *pin, uint8_t permissions, const char *rp_id,
                       const uint8_t cdh[KC_CDH_LEN], uint8_t *param, size_t *param_len,
                       int *protocol, struct kc_pin_outcome *out);

/* What a command authenticated by pinUvAuthParam needs (the request's
 * fields, as kc_ctap2_pin_param takes them). */
struct kc_ctap2_auth {
    const struct kc_info *info;
    const struct kc_pin_token *token;
    const char *pin;
    uint8_t permissions;
    const char *rp_id;
    const uint8_t *client_data_hash; /* KC_CDH_LEN bytes */
};
/* Encodes req with its pinUvAuthParam (NULL, 0 when none) into a malloc'd *buf. */
typedef int (*kc_ctap2_encode_fn)(const void *req, const uint8_t *pin_uv_auth_param,
                                  size_t param_len, int pin_protocol, uint8_t **buf, size_t *len);
/* The flow makeCredential and getAssertion share: the pinUvAuthParam from
 * auth (kc_ctap2_pin_param), req encoded by encode, sent as cmd. Returns and
 * *body as kc_ctap2_call; *outcome is set in every case. */
int kc_ctap2_authed_call(struct kc_dev *d, uint8_t cmd, const struct kc_ctap2_auth *auth,
                         kc_ctap2_encode_fn encode, const void *req, uint8_t **body,
                         size_t *body_len, struct kc_pin_outcome *outcome);

/* Merge helper extensions into a caller's pre-encoded extension map (which
 * may be NULL); *out is NULL when there is nothing to send. */
int kc_ctap2_extensions(const uint8_t *raw, size_t raw_len, int cred_protect, bool hmac_secret,
                        cbor_item_t **out);

/* Request pieces shared by makeCredential and getAssertion. */
int kc_ctap2_check_cred_list(const struct kc_cred_id *list, size_t n);
cbor_item_t *kc_ctap2_cred_list(const struct kc_cred_id *list, size_t n);
/* the options map with only the non-default entries, NULL when empty */
int kc_ctap2_options(bool rk, bool up_false, bool uv, cbor_item_t **out);
/* The tail both requests share: extensions, options, pinUvAuthParam and
 * pinUvAuthProtocol under consecutive keys from first_key (each only when
 * present), then the map serialized into *buf. Takes *ext and *opts (set to
 * NULL); the map stays the caller's. */
int kc_ctap2_request_tail(cbor_item_t *map, int first_key, cbor_item_t **ext, cbor_item_t **opts,
                          const uint8_t *pin_uv_auth_param, size_t param_len, int pin_protocol,
                          uint8_t **buf, size_t *len);

#endif
