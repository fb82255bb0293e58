/* The authenticated CTAP2 call: the pinUvAuthParam over the clientDataHash
 * (from a token, or a PIN turned into one), the request encoded with it,
 * sent, and the response decoded. makeCredential and getAssertion use it. */
#include "ctaphid/auth_call.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctaphid/ctap2_int.h"
#include "ctaphid/pin.h"
#include "ctaphid/pin_proto.h"

int kc_ctap2_pin_param(struct kc_dev *d, const struct kc_info *info, const struct kc_pin_token *tok,
                       const char *pin, uint8_t permissions, const char *rp_id,
                       const uint8_t cdh[KC_CDH_LEN], uint8_t *param, size_t *param_len,
                       int *protocol, struct kc_pin_outcome *out)
{
    struct kc_pin_token fresh;
    struct kc_info store;
    int e;

    *param_len = 0;
    *protocol = 0;
    memset(out, 0, sizeof(*out));
    if (tok == NULL && pin == NULL)
        return kc_pin_choose_protocol(info, false, protocol, out);
    if (tok == NULL) {
        if (info == NULL) {
            if ((e = kc_ctap2_get_info(d, &store)) != KC_OK)
                return e;
            info = &store;
        }
        if ((e = kc_pin_choose_protocol(info, true, protocol, out)) != KC_OK)
            return e;
        if ((e = kc_pin_token_for(d, info, pin, permissions, rp_id, &fresh)) != KC_OK)
            return e;
        tok = &fresh;
    }
    e = kc_pin_auth_param(tok, cdh, KC_CDH_LEN, param, param_len);
    if (e == KC_OK) {
        *protocol = tok->protocol;
        out->protocol = tok->protocol;
        out->used_pin = true;
    }
    if (tok == &fresh)
        kc_pin_token_clear(&fresh);
    return e;
}

int kc_ctap2_authed_call(struct kc_dev *d, uint8_t cmd, const struct kc_ctap2_auth *auth,
                         kc_ctap2_encode_fn encode, const void *req, uint8_t **body,
                         size_t *body_len, struct kc_pin_outcome *outcome)
{
    uint8_t param[KC_PINP_AUTH_MAX], *enc = NULL;
    size_t param_len = 0, enc_len = 0;
    int protocol = 0, r;

    *body = NULL;
    *body_len = 0;
    memset(outcome, 0, sizeof(*outcome));
    if ((r = kc_ctap2_pin_param(d, auth->info, auth->token, auth->pin, auth->permissions,
                                auth->rp_id, auth->client_data_hash, param, &param_len, &protocol,
                                outcome)) != KC_OK)
        goto out;
    if ((r = encode(req, param_len > 0 ? param : NULL, param_len, protocol, &enc, &enc_len)) !=
        KC_OK)
        goto out;
    r = kc_ctap2_call(d, cmd, enc, enc_len, body, body_len);
out:
    OPENSSL_cleanse(param, sizeof(param));
    free(enc);
    return r;
}

int kc_ctap2_authed_command(struct kc_dev *d, uint8_t cmd, const struct kc_ctap2_auth *auth,
                            kc_ctap2_encode_fn encode, const void *req, kc_ctap2_decode_fn decode,
                            void *result, struct kc_pin_outcome *outcome)
{
    struct kc_pin_outcome tried = {0};
    uint8_t *body = NULL;
    size_t body_len = 0;
    int r;

    if ((r = kc_ctap2_authed_call(d, cmd, auth, encode, req, &body, &body_len, &tried)) == KC_OK)
        r = decode(body, body_len, result);
    *outcome = tried; /* after decode, which clears result */
    free(body);
    return r;
}
