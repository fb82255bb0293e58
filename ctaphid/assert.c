/* authenticatorGetAssertion (0x02) and authenticatorGetNextAssertion (0x08). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctaphid/auth_call.h"
#include "ctaphid/cbor_util.h"
#include "ctaphid/cred_int.h"
#include "ctaphid/ctap2.h"
#include "ctaphid/ctap2_int.h"
#include "ctaphid/pin_proto.h"

#define SIG_MAX 1024          /* RSA-4096 is 512; leave room, refuse nonsense */
#define USER_ID_MAX 64        /* WebAuthn user handle */
#define USER_STR_MAX 256      /* names; authenticators may truncate at 64 */
#define NUM_CREDS_MAX 0xffffu /* a real card holds far fewer */
#define LARGE_BLOB_KEY_LEN 32

void kc_assert_request_init(struct kc_assert_request *req)
{
    if (req == NULL)
        return;
    memset(req, 0, sizeof(*req));
    req->up = true;
}

static int check_request(const struct kc_assert_request *req)
{
    if (req == NULL || req->rp_id == NULL || req->rp_id[0] == '\0')
        return KC_ERR_INVALID_ARG;
    return kc_ctap2_check_cred_list(req->allow, req->n_allow);
}

int kc_get_assertion_encode(const struct kc_assert_request *req, const uint8_t *pin_uv_auth_param,
                            size_t param_len, int pin_protocol, uint8_t **buf, size_t *len)
{
    cbor_item_t *map = NULL, *ext = NULL, *opts = NULL;
    int r;

    if (buf == NULL || len == NULL || check_request(req) != KC_OK)
        return KC_ERR_INVALID_ARG;
    if (pin_uv_auth_param != NULL && (param_len == 0 || (pin_protocol != 1 && pin_protocol != 2)))
        return KC_ERR_INVALID_ARG;
    if ((r = kc_ctap2_extensions(req->extensions_cbor, req->extensions_len, 0, false, &ext)) !=
        KC_OK)
        return r;
    if ((r = kc_ctap2_options(false, !req->up, req->uv && pin_uv_auth_param == NULL, &opts)) !=
        KC_OK)
        goto out;
    r = KC_ERR_NOMEM;
    if ((map = cbor_new_definite_map(7)) == NULL)
        goto out;
    if (kc_cbor_map_add_int(map, 1, kc_cbor_new_text(req->rp_id)) != KC_OK ||
        kc_cbor_map_add_int(map, 2, kc_cbor_new_bytes(req->client_data_hash, KC_CDH_LEN)) != KC_OK)
        goto out;
    if (req->n_allow > 0 &&
        kc_cbor_map_add_int(map, 3, kc_ctap2_cred_list(req->allow, req->n_allow)) != KC_OK)
        goto out;
    r = kc_ctap2_request_tail(map, 4, &ext, &opts, pin_uv_auth_param, param_len, pin_protocol, buf,
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

void kc_assertion_free(struct kc_assertion *a)
{
    if (a == NULL)
        return;
    free(a->cred_id);
    free(a->auth_data);
    free(a->signature);
    free(a->user_id);
    free(a->user_name);
    free(a->user_display_name);
    if (a->large_blob_key != NULL) {
        OPENSSL_cleanse(a->large_blob_key, a->large_blob_key_len);
        free(a->large_blob_key);
    }
    memset(a, 0, sizeof(*a));
}

/* PublicKeyCredentialDescriptor: {"id": bytes, "type": text, ...} */
static int decode_credential(const cbor_item_t *v, struct kc_assertion *a)
{
    const cbor_item_t *id, *type;

    if (kc_cbor_map_check(v, true) != KC_OK)
        return KC_ERR_CBOR;
    id = kc_cbor_map_get_str(v, "id");
    type = kc_cbor_map_get_str(v, "type");
    if (id == NULL || (type != NULL && !cbor_isa_string(type)))
        return KC_ERR_CBOR;
    return kc_cbor_bytes_dup(id, 1, KC_CRED_ID_MAX, &a->cred_id, &a->cred_id_len);
}

/* PublicKeyCredentialUserEntity: {"id": bytes, "name"?, "displayName"?} */
static int decode_user(const cbor_item_t *v, struct kc_assertion *a)
{
    const cbor_item_t *id, *name, *dname;
    int r;

    if (kc_cbor_map_check(v, true) != KC_OK)
        return KC_ERR_CBOR;
    if ((id = kc_cbor_map_get_str(v, "id")) == NULL)
        return KC_ERR_CBOR;
    if ((r = kc_cbor_bytes_dup(id, 1, USER_ID_MAX, &a->user_id, &a->user_id_len)) != KC_OK)
        return r;
    name = kc_cbor_map_get_str(v, "name");
    if (name != NULL && (r = kc_cbor_text_dup(name, USER_STR_MAX, &a->user_name)) != KC_OK)
        return r;
    dname = kc_cbor_map_get_str(v, "displayName");
    if (dname != NULL &&
        (r = kc_cbor_text_dup(dname, USER_STR_MAX, &a->user_display_name)) != KC_OK)
        return r;
    a->has_user = true;
    return KC_OK;
}

static int decode_entry(int64_t key, const cbor_item_t *v, void *ctx)
{
    struct kc_assertion *a = ctx;

    switch (key) {
    case 1:
        return decode_credential(v, a);
    case 2:
        return kc_cbor_bytes_dup(v, KC_AD_MIN_LEN, KC_CTAP2_RESP_MAX, &a->auth_data,
                                 &a->auth_data_len);
    case 3:
        return kc_cbor_bytes_dup(v, 1, SIG_MAX, &a->signature, &a->signature_len);
    case 4:
        return decode_user(v, a);
    case 5:
        if (kc_cbor_uint(v, &a->number_of_credentials) != KC_OK || a->number_of_credentials == 0 ||
            a->number_of_credentials > NUM_CREDS_MAX)
            return KC_ERR_CBOR;
        return KC_OK;
    case 6:
        return kc_cbor_bool(v, &a->user_selected);
    case 7:
        return kc_cbor_bytes_dup(v, LARGE_BLOB_KEY_LEN, LARGE_BLOB_KEY_LEN, &a->large_blob_key,
                                 &a->large_blob_key_len);
    default:
        return KC_OK; /* unknown keys are skipped */
    }
}

int kc_assertion_decode(const uint8_t *cbor, size_t len, struct kc_assertion *a)
{
    int r;

    if (a == NULL || (cbor == NULL && len > 0))
        return KC_ERR_INVALID_ARG;
    memset(a, 0, sizeof(*a));
    if ((r = kc_cbor_int_map_each(cbor, len, decode_entry, a)) != KC_OK)
        goto out;
    if (a->auth_data == NULL || a->signature == NULL) {
        r = KC_ERR_CBOR; /* authData and signature are mandatory */
        goto out;
    }
    r = kc_authdata_parse(a->auth_data, a->auth_data_len, &a->ad);
out:
    if (r != KC_OK)
        kc_assertion_free(a);
    return r == KC_ERR_INVALID_ARG ? KC_ERR_CBOR : r;
}

static int encode_request(const void *req, const uint8_t *pin_uv_auth_param, size_t param_len,
                          int pin_protocol, uint8_t **buf, size_t *len)
{
    return kc_get_assertion_encode(req, pin_uv_auth_param, param_len, pin_protocol, buf, len);
}

static int decode_response(const uint8_t *body, size_t len, void *result)
{
    return kc_assertion_decode(body, len, result);
}

int kc_ctap2_get_assertion(struct kc_dev *d, const struct kc_assert_request *req,
                           struct kc_assertion *a)
{
    if (d == NULL || a == NULL)
        return KC_ERR_INVALID_ARG;
    memset(a, 0, sizeof(*a));
    if (check_request(req) != KC_OK)
        return KC_ERR_INVALID_ARG;
    return kc_ctap2_authed_command(
        d, KC_CTAP2_GET_ASSERTION,
        &(struct kc_ctap2_auth){.info = req->info,
                                .token = req->token,
                                .pin = req->pin,
                                .permissions = KC_PERM_GA,
                                .rp_id = req->rp_id,
                                .client_data_hash = req->client_data_hash},
        encode_request, req, decode_response, a, &a->pin);
}

int kc_ctap2_get_next_assertion(struct kc_dev *d, struct kc_assertion *a)
{
    uint8_t *body = NULL;
    size_t body_len = 0;
    int r;

    if (d == NULL || a == NULL)
        return KC_ERR_INVALID_ARG;
    memset(a, 0, sizeof(*a));
    if ((r = kc_ctap2_call(d, KC_CTAP2_GET_NEXT_ASSERTION, NULL, 0, &body, &body_len)) != KC_OK)
        return r;
    r = kc_assertion_decode(body, body_len, a);
    free(body);
    return r;
}
