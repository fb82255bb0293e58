/* authenticatorMakeCredential (0x01): request encoding, attestation object
 * decoding, and the shared extension-map merge. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctaphid/auth_call.h"
#include "ctaphid/cbor_util.h"
#include "ctaphid/cred_int.h"
#include "ctaphid/ctap2.h"
#include "ctaphid/ctap2_int.h"
#include "ctaphid/pin_proto.h"

#define USER_ID_MAX 64
#define LARGE_BLOB_KEY_LEN 32

void kc_cred_request_init(struct kc_cred_request *req)
{
    if (req != NULL)
        memset(req, 0, sizeof(*req));
}

int kc_ctap2_extensions(const uint8_t *raw, size_t raw_len, int cred_protect, bool hmac_secret,
                        cbor_item_t **out)
{
    cbor_item_t *given = NULL, *map = NULL;
    size_t n = 0;
    int r;

    *out = NULL;
    if (cred_protect < 0 || cred_protect > 3)
        return KC_ERR_INVALID_ARG;
    if (raw != NULL && raw_len > 0) {
        if (kc_cbor_load(raw, raw_len, &given) != KC_OK)
            return KC_ERR_INVALID_ARG;
        if (kc_cbor_map_check(given, true) != KC_OK) {
            cbor_decref(&given);
            return KC_ERR_INVALID_ARG;
        }
        n = cbor_map_size(given);
    }
    if (n == 0 && cred_protect == 0 && !hmac_secret) {
        if (given != NULL)
            cbor_decref(&given);
        return KC_OK;
    }
    if ((map = cbor_new_definite_map(n + 2)) == NULL) {
        r = KC_ERR_NOMEM;
        goto out;
    }
    /* the caller's entries, unchanged */
    for (size_t i = 0; i < n; i++) {
        struct cbor_pair *p = cbor_map_handle(given);
        if ((r = kc_cbor_map_add(map, cbor_incref(p[i].key), cbor_incref(p[i].value))) != KC_OK)
            goto out;
    }
    if (cred_protect > 0 && kc_cbor_map_get_str(map, "credProtect") == NULL &&
        (r = kc_cbor_map_add_str(map, "credProtect", kc_cbor_new_int(cred_protect))) != KC_OK)
        goto out;
    if (hmac_secret && kc_cbor_map_get_str(map, "hmac-secret") == NULL &&
        (r = kc_cbor_map_add_str(map, "hmac-secret", kc_cbor_new_bool(true))) != KC_OK)
        goto out;
    if ((r = kc_cbor_map_canonical(map)) != KC_OK)
        goto out;
    *out = map;
    map = NULL;
out:
    if (map != NULL)
        cbor_decref(&map);
    if (given != NULL)
        cbor_decref(&given);
    return r;
}

/* {"id": bytes, "type": "public-key"} */
static cbor_item_t *cred_descriptor(const struct kc_cred_id *c)
{
    cbor_item_t *m = cbor_new_definite_map(2);

    if (m == NULL)
        return NULL;
    if (kc_cbor_map_add_str(m, "id", kc_cbor_new_bytes(c->ptr, c->len)) != KC_OK ||
        kc_cbor_map_add_str(m, "type", kc_cbor_new_text("public-key")) != KC_OK)
        cbor_decref(&m);
    return m;
}

cbor_item_t *kc_ctap2_cred_list(const struct kc_cred_id *list, size_t n)
{
    cbor_item_t *a = cbor_new_definite_array(n);

    if (a == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        cbor_item_t *d = cred_descriptor(&list[i]);
        bool ok = d != NULL && cbor_array_push(a, d);
        if (d != NULL)
            cbor_decref(&d);
        if (!ok) {
            cbor_decref(&a);
            return NULL;
        }
    }
    return a;
}

int kc_ctap2_check_cred_list(const struct kc_cred_id *list, size_t n)
{
    if (n > 0 && list == NULL)
        return KC_ERR_INVALID_ARG;
    for (size_t i = 0; i < n; i++)
        if (list[i].ptr == NULL || list[i].len == 0 || list[i].len > KC_CRED_ID_MAX)
            return KC_ERR_INVALID_ARG;
    return KC_OK;
}

static int check_request(const struct kc_cred_request *req)
{
    if (req == NULL || req->rp_id == NULL || req->rp_id[0] == '\0' || req->user_id == NULL ||
        req->user_id_len == 0 || req->user_id_len > USER_ID_MAX || req->n_algs > KC_MAX_ALGS)
        return KC_ERR_INVALID_ARG;
    return kc_ctap2_check_cred_list(req->exclude, req->n_exclude);
}

static cbor_item_t *rp_entity(const struct kc_cred_request *req)
{
    cbor_item_t *m = cbor_new_definite_map(2);

    if (m == NULL)
        return NULL;
    if (kc_cbor_map_add_str(m, "id", kc_cbor_new_text(req->rp_id)) != KC_OK ||
        (req->rp_name != NULL &&
         kc_cbor_map_add_str(m, "name", kc_cbor_new_text(req->rp_name)) != KC_OK) ||
        kc_cbor_map_canonical(m) != KC_OK)
        cbor_decref(&m);
    return m;
}

static cbor_item_t *user_entity(const struct kc_cred_request *req)
{
    cbor_item_t *m = cbor_new_definite_map(3);

    if (m == NULL)
        return NULL;
    if (kc_cbor_map_add_str(m, "id", kc_cbor_new_bytes(req->user_id, req->user_id_len)) != KC_OK ||
        (req->user_name != NULL &&
         kc_cbor_map_add_str(m, "name", kc_cbor_new_text(req->user_name)) != KC_OK) ||
        (req->user_display_name != NULL &&
         kc_cbor_map_add_str(m, "displayName", kc_cbor_new_text(req->user_display_name)) !=
             KC_OK) ||
        kc_cbor_map_canonical(m) != KC_OK)
        cbor_decref(&m);
    return m;
}

static cbor_item_t *cred_params(const struct kc_cred_request *req)
{
    static const int default_algs[] = {KC_COSE_ES256};
    const int *algs = req->n_algs > 0 ? req->algs : default_algs;
    size_t n = req->n_algs > 0 ? req->n_algs : 1;
    cbor_item_t *a = cbor_new_definite_array(n);

    if (a == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        cbor_item_t *m = cbor_new_definite_map(2);
        bool ok = m != NULL && kc_cbor_map_add_str(m, "alg", kc_cbor_new_int(algs[i])) == KC_OK &&
                  kc_cbor_map_add_str(m, "type", kc_cbor_new_text("public-key")) == KC_OK &&
                  cbor_array_push(a, m);
        if (m != NULL)
            cbor_decref(&m);
        if (!ok) {
            cbor_decref(&a);
            return NULL;
        }
    }
    return a;
}

/* The options map, or NULL (and KC_OK) when nothing needs saying. */
int kc_ctap2_options(bool rk, bool up_false, bool uv, cbor_item_t **out)
{
    cbor_item_t *m;

    *out = NULL;
    if (!rk && !up_false && !uv)
        return KC_OK;
    if ((m = cbor_new_definite_map(3)) == NULL)
        return KC_ERR_NOMEM;
    if ((rk && kc_cbor_map_add_str(m, "rk", kc_cbor_new_bool(true)) != KC_OK) ||
        (up_false && kc_cbor_map_add_str(m, "up", kc_cbor_new_bool(false)) != KC_OK) ||
        (uv && kc_cbor_map_add_str(m, "uv", kc_cbor_new_bool(true)) != KC_OK) ||
        kc_cbor_map_canonical(m) != KC_OK) {
        cbor_decref(&m);
        return KC_ERR_NOMEM;
    }
    *out = m;
    return KC_OK;
}

int kc_make_credential_encode(const struct kc_cred_request *req, const uint8_t *pin_uv_auth_param,
                              size_t param_len, int pin_protocol, uint8_t **buf, size_t *len)
{
    cbor_item_t *map = NULL, *ext = NULL, *opts = NULL;
    int r;

    if (buf == NULL || len == NULL || (r = check_request(req)) != KC_OK)
        return KC_ERR_INVALID_ARG;
    if (pin_uv_auth_param != NULL && (param_len == 0 || (pin_protocol != 1 && pin_protocol != 2)))
        return KC_ERR_INVALID_ARG;
    if ((r = kc_ctap2_extensions(req->extensions_cbor, req->extensions_len, req->cred_protect,
                                 req->hmac_secret, &ext)) != KC_OK)
        return r;
    /* with a pinUvAuthParam the uv option must not be sent (CTAP 2.1, 6.1.2) */
    if ((r = kc_ctap2_options(req->rk, false, req->uv && pin_uv_auth_param == NULL, &opts)) !=
        KC_OK)
        goto out;
    r = KC_ERR_NOMEM;
    if ((map = cbor_new_definite_map(9)) == NULL)
        goto out;
    if (kc_cbor_map_add_int(map, 1, kc_cbor_new_bytes(req->client_data_hash, KC_CDH_LEN)) !=
            KC_OK ||
        kc_cbor_map_add_int(map, 2, rp_entity(req)) != KC_OK ||
        kc_cbor_map_add_int(map, 3, user_entity(req)) != KC_OK ||
        kc_cbor_map_add_int(map, 4, cred_params(req)) != KC_OK)
        goto out;
    if (req->n_exclude > 0 &&
        kc_cbor_map_add_int(map, 5, kc_ctap2_cred_list(req->exclude, req->n_exclude)) != KC_OK)
        goto out;
    r = kc_ctap2_request_tail(map, 6, &ext, &opts, pin_uv_auth_param, param_len, pin_protocol, buf,
                              len);
out:
    if (map != NULL)
        cbor_decref(&map);
    if (ext != NULL)
        cbor_decref(&ext);
    if (opts != NULL)
        cbor_decref(&opts);
    return r;
}

int kc_ctap2_request_tail(cbor_item_t *map, int first_key, cbor_item_t **ext, cbor_item_t **opts,
                          const uint8_t *pin_uv_auth_param, size_t param_len, int pin_protocol,
                          uint8_t **buf, size_t *len)
{
    int key = first_key;
    int r;

    if (*ext != NULL) {
        r = kc_cbor_map_add_int(map, key, *ext);
        *ext = NULL;
        if (r != KC_OK)
            return r;
    }
    key++;
    if (*opts != NULL) {
        r = kc_cbor_map_add_int(map, key, *opts);
        *opts = NULL;
        if (r != KC_OK)
            return r;
    }
    key++;
    if (pin_uv_auth_param != NULL &&
        (kc_cbor_map_add_int(map, key, kc_cbor_new_bytes(pin_uv_auth_param, param_len)) != KC_OK ||
         kc_cbor_map_add_int(map, key + 1, kc_cbor_new_int(pin_protocol)) != KC_OK))
        return KC_ERR_NOMEM;
    return kc_cbor_serialize(map, buf, len);
}

void kc_attestation_free(struct kc_attestation *att)
{
    if (att == NULL)
        return;
    free(att->auth_data);
    free(att->att_stmt);
    if (att->large_blob_key != NULL) {
        OPENSSL_cleanse(att->large_blob_key, att->large_blob_key_len);
        free(att->large_blob_key);
    }
    memset(att, 0, sizeof(*att));
}

static int decode_att_entry(int64_t key, const cbor_item_t *v, void *ctx)
{
    struct kc_attestation *att = ctx;

    switch (key) {
    case 1:
        return kc_cbor_text(v, att->fmt, sizeof(att->fmt)) == KC_OK && att->fmt[0] != '\0'
                   ? KC_OK
                   : KC_ERR_CBOR;
    case 2:
        return kc_cbor_bytes_dup(v, KC_AD_MIN_LEN, KC_CTAP2_RESP_MAX, &att->auth_data,
                                 &att->auth_data_len);
    case 3:
        if (kc_cbor_map_check(v, true) != KC_OK)
            return KC_ERR_CBOR;
        return kc_cbor_serialize(v, &att->att_stmt, &att->att_stmt_len);
    case 4:
        att->has_ep_att = true;
        return kc_cbor_bool(v, &att->ep_att);
    case 5:
        return kc_cbor_bytes_dup(v, LARGE_BLOB_KEY_LEN, LARGE_BLOB_KEY_LEN, &att->large_blob_key,
                                 &att->large_blob_key_len);
    default:
        return KC_OK; /* unknown keys are skipped */
    }
}

int kc_attestation_decode(const uint8_t *cbor, size_t len, struct kc_attestation *att)
{
    int r;

    if (att == NULL || (cbor == NULL && len > 0))
        return KC_ERR_INVALID_ARG;
    memset(att, 0, sizeof(*att));
    if ((r = kc_cbor_int_map_each(cbor, len, decode_att_entry, att)) != KC_OK)
        goto out;
    if (att->fmt[0] == '\0' || att->auth_data == NULL || att->att_stmt == NULL) {
        r = KC_ERR_CBOR; /* fmt, authData and attStmt are mandatory */
        goto out;
    }
    if ((r = kc_authdata_parse(att->auth_data, att->auth_data_len, &att->ad)) != KC_OK)
        goto out;
    if (!att->ad.has_attested) {
        r = KC_ERR_CBOR; /* a new credential without attested credential data */
        goto out;
    }
    r = KC_OK;
out:
    if (r != KC_OK)
        kc_attestation_free(att);
    return r == KC_ERR_INVALID_ARG ? KC_ERR_CBOR : r;
}

static int encode_request(const void *req, const uint8_t *pin_uv_auth_param, size_t param_len,
                          int pin_protocol, uint8_t **buf, size_t *len)
{
    return kc_make_credential_encode(req, pin_uv_auth_param, param_len, pin_protocol, buf, len);
}

static int decode_response(const uint8_t *body, size_t len, void *result)
{
    return kc_attestation_decode(body, len, result);
}

int kc_ctap2_make_credential(struct kc_dev *d, const struct kc_cred_request *req,
                             struct kc_attestation *att)
{
    if (d == NULL || att == NULL)
        return KC_ERR_INVALID_ARG;
    memset(att, 0, sizeof(*att));
    if (check_request(req) != KC_OK)
        return KC_ERR_INVALID_ARG;
    return kc_ctap2_authed_command(
        d, KC_CTAP2_MAKE_CREDENTIAL,
        &(struct kc_ctap2_auth){.info = req->info,
                                .token = req->token,
                                .pin = req->pin,
                                .permissions = KC_PERM_MC,
                                .rp_id = req->rp_id,
                                .client_data_hash = req->client_data_hash},
        encode_request, req, decode_response, att, &att->pin);
}
