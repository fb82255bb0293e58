/* authenticatorConfig (0x0D): request encoding and the three subcommands.
 * The reply is the status byte alone, so there is nothing to decode. */
#include "ctaphid/config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/ctap2_int.h"
#include "ctaphid/pin.h"
#include "ctaphid/pin_proto.h"

#define MSG_PAD 32 /* 32 x 0xff before the command byte */

/* subCommandParams of setMinPINLength: {1: len, 2: [rp ids], 3: true} */
static int min_pin_params(const struct kc_min_pin_params *p, cbor_item_t **out)
{
    cbor_item_t *m = NULL, *arr = NULL;
    int e = KC_ERR_NOMEM;

    *out = NULL;
    if (p->new_min_pin_length > KC_PIN_MAX_LEN || p->n_rp_ids > KC_CONFIG_RPIDS_MAX ||
        (p->n_rp_ids > 0 && p->rp_ids == NULL))
        return KC_ERR_INVALID_ARG;
    for (size_t i = 0; i < p->n_rp_ids; i++)
        if (p->rp_ids[i] == NULL || p->rp_ids[i][0] == '\0')
            return KC_ERR_INVALID_ARG;
    if ((m = cbor_new_definite_map(3)) == NULL)
        return KC_ERR_NOMEM;
    if (p->new_min_pin_length > 0 &&
        (e = kc_cbor_map_add_int(m, 1, kc_cbor_new_int((int64_t)p->new_min_pin_length))) != KC_OK)
        goto out;
    if (p->n_rp_ids > 0) {
        if ((arr = cbor_new_definite_array(p->n_rp_ids)) == NULL) {
            e = KC_ERR_NOMEM;
            goto out;
        }
        for (size_t i = 0; i < p->n_rp_ids; i++)
            if ((e = kc_cbor_array_push(arr, kc_cbor_new_text(p->rp_ids[i]))) != KC_OK)
                goto out;
        e = kc_cbor_map_add_int(m, 2, arr);
        arr = NULL;
        if (e != KC_OK)
            goto out;
    }
    if (p->force_change_pin && (e = kc_cbor_map_add_int(m, 3, kc_cbor_new_bool(true))) != KC_OK)
        goto out;
    *out = m;
    m = NULL;
    e = KC_OK;
out:
    if (arr != NULL)
        cbor_decref(&arr);
    if (m != NULL)
        cbor_decref(&m);
    return e;
}

/* pinUvAuthParam = authenticate(token, 32 x 0xff || 0x0d || sub || params) */
static int auth_param(const struct kc_pin_token *tok, int subcmd, const uint8_t *params,
                      size_t params_len, uint8_t *out, size_t *out_len)
{
    uint8_t *msg;
    size_t n = MSG_PAD + 2 + params_len;
    int e;

    if ((msg = malloc(n)) == NULL)
        return KC_ERR_NOMEM;
    memset(msg, 0xff, MSG_PAD);
    msg[MSG_PAD] = KC_CTAP2_AUTHENTICATOR_CONFIG;
    msg[MSG_PAD + 1] = (uint8_t)subcmd;
    if (params_len > 0)
        memcpy(msg + MSG_PAD + 2, params, params_len);
    e = kc_pin_auth_param(tok, msg, n, out, out_len);
    free(msg);
    return e;
}

int kc_config_encode(int subcmd, const struct kc_min_pin_params *params,
                     const struct kc_pin_token *tok, uint8_t **buf, size_t *len)
{
    cbor_item_t *map = NULL, *pm = NULL;
    uint8_t *pbytes = NULL, auth[KC_PINP_AUTH_MAX];
    size_t plen = 0, auth_len = 0;
    int e;

    if (buf == NULL || len == NULL || subcmd < KC_CONFIG_ENABLE_EP ||
        subcmd > KC_CONFIG_SET_MIN_PIN_LENGTH ||
        (params != NULL && subcmd != KC_CONFIG_SET_MIN_PIN_LENGTH))
        return KC_ERR_INVALID_ARG;
    *buf = NULL;
    *len = 0;
    if (params != NULL) {
        if ((e = min_pin_params(params, &pm)) != KC_OK)
            return e;
        if ((e = kc_cbor_serialize(pm, &pbytes, &plen)) != KC_OK)
            goto out;
    }
    e = KC_ERR_NOMEM;
    if ((map = cbor_new_definite_map(4)) == NULL)
        goto out;
    if ((e = kc_cbor_map_add_int(map, 1, kc_cbor_new_int(subcmd))) != KC_OK)
        goto out;
    if (pm != NULL) {
        e = kc_cbor_map_add_int(map, 2, pm);
        pm = NULL;
        if (e != KC_OK)
            goto out;
    }
    if (tok != NULL) {
        if ((e = auth_param(tok, subcmd, pbytes, plen, auth, &auth_len)) != KC_OK)
            goto out;
        if ((e = kc_cbor_map_add_int(map, 3, kc_cbor_new_int(tok->protocol))) != KC_OK ||
            (e = kc_cbor_map_add_int(map, 4, kc_cbor_new_bytes(auth, auth_len))) != KC_OK)
            goto out;
    }
    e = kc_cbor_serialize(map, buf, len);
out:
    OPENSSL_cleanse(auth, sizeof(auth));
    free(pbytes);
    if (pm != NULL)
        cbor_decref(&pm);
    if (map != NULL)
        cbor_decref(&map);
    return e;
}

/* A token with acfg when a PIN is given, then the request. */
static int config_call(struct kc_dev *d, const struct kc_info *info, const char *pin, int subcmd,
                       const struct kc_min_pin_params *params, struct kc_pin_outcome *out)
{
    struct kc_pin_outcome none;
    struct kc_pin_token tok;
    struct kc_info store;
    uint8_t *req = NULL, *body = NULL;
    size_t req_len = 0, body_len = 0;
    int e, protocol = 0;

    if (out == NULL)
        out = &none;
    memset(out, 0, sizeof(*out));
    memset(&tok, 0, sizeof(tok));
    if (d == NULL)
        return KC_ERR_INVALID_ARG;
    if (pin != NULL) {
        if (info == NULL) {
            if ((e = kc_ctap2_get_info(d, &store)) != KC_OK)
                return e;
            info = &store;
        }
        if ((e = kc_pin_choose_protocol(info, true, &protocol, out)) != KC_OK)
            return e;
        if ((e = kc_pin_token_for(d, info, pin, KC_PERM_ACFG, NULL, &tok)) != KC_OK)
            return e;
        out->used_pin = true;
        out->protocol = tok.protocol;
    } else if (info != NULL) {
        (void)kc_pin_choose_protocol(info, false, &protocol, out);
    }
    e = kc_config_encode(subcmd, params, pin != NULL ? &tok : NULL, &req, &req_len);
    kc_pin_token_clear(&tok);
    if (e != KC_OK)
        return e;
    e = kc_ctap2_call(d, KC_CTAP2_AUTHENTICATOR_CONFIG, req, req_len, &body, &body_len);
    free(req);
    free(body); /* a status byte alone is the whole answer */
    return e;
}

int kc_config_enable_ep(struct kc_dev *d, const struct kc_info *info, const char *pin,
                        struct kc_pin_outcome *out)
{
    return config_call(d, info, pin, KC_CONFIG_ENABLE_EP, NULL, out);
}

int kc_config_toggle_always_uv(struct kc_dev *d, const struct kc_info *info, const char *pin,
                               struct kc_pin_outcome *out)
{
    return config_call(d, info, pin, KC_CONFIG_TOGGLE_ALWAYS_UV, NULL, out);
}

int kc_config_set_min_pin_length(struct kc_dev *d, const struct kc_info *info, const char *pin,
                                 size_t len, const char *const *rp_ids, size_t n_rp_ids,
                                 bool force_change, struct kc_pin_outcome *out)
{
    struct kc_min_pin_params p = {.new_min_pin_length = len,
                                  .rp_ids = rp_ids,
                                  .n_rp_ids = n_rp_ids,
                                  .force_change_pin = force_change};

    return config_call(d, info, pin, KC_CONFIG_SET_MIN_PIN_LENGTH, &p, out);
}
