/* Internal to libctaphid: the authenticated CTAP2 call, written once for
 * every command that carries a pinUvAuthParam over the clientDataHash
 * (makeCredential, getAssertion). It sits above PIN/UV (pin.c) and getInfo
 * (info.c) and below the commands. Not a public API. */
#ifndef KCARD_CTAPHID_AUTH_CALL_H
#define KCARD_CTAPHID_AUTH_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "ctaphid/ctap2.h"

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
/* Decodes a response body into the caller's result. */
typedef int (*kc_ctap2_decode_fn)(const uint8_t *body, size_t len, void *result);

/* The flow makeCredential and getAssertion share: the pinUvAuthParam from
 * auth (kc_ctap2_pin_param), req encoded by encode, sent as cmd. Returns and
 * *body as kc_ctap2_call; *outcome is set in every case. */
int kc_ctap2_authed_call(struct kc_dev *d, uint8_t cmd, const struct kc_ctap2_auth *auth,
                         kc_ctap2_encode_fn encode, const void *req, uint8_t **body,
                         size_t *body_len, struct kc_pin_outcome *outcome);

/* kc_ctap2_authed_call, then the body decoded into result by decode. The
 * outcome is stored in *outcome last, on failure too (tools report what was
 * tried), so it may live inside result. */
int kc_ctap2_authed_command(struct kc_dev *d, uint8_t cmd, const struct kc_ctap2_auth *auth,
                            kc_ctap2_encode_fn encode, const void *req, kc_ctap2_decode_fn decode,
                            void *result, struct kc_pin_outcome *outcome);

#endif
