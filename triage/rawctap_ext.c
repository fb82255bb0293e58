/* rawctap's extension options (CTAP 2.1 section 12) on make-credential and
 * get-assertion: what each sends and how its output is shown. hmac-secret
 * does its own key agreement (getKeyAgreement over the chosen PIN/UV
 * protocol), encrypts the salts and decrypts the outputs; the others are
 * plain values in the extensions map. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/cose.h"
#include "ctaphid/pin.h"
#include "ctaphid/pin_proto.h"
#include "triage/rawctap_ext.h"
#include "util/b64url.h"
#include "util/hex.h"
#include "util/num.h"

#define SALT_LEN 32

int rc_ext_opt(const char *cmd, struct rc_ext_opts *x, int c, const char *arg)
{
    switch (c) {
    case RC_EXT_HMAC:
        if (arg != NULL)
            x->salts = arg;
        x->hmac_secret = true;
        return 0;
    case RC_EXT_HMAC_PROTOCOL:
        if (kcu_parse_long(arg, 1, 2, &x->hmac_protocol) != 0)
            return rc_usage_error(cmd, "--hmac-protocol wants 1 or 2, not '%s'", arg);
        return 0;
    case RC_EXT_CRED_PROTECT:
        if (kcu_parse_long(arg, 1, 3, &x->cred_protect) != 0)
            return rc_usage_error(cmd, "--cred-protect wants 1, 2 or 3, not '%s'", arg);
        return 0;
    case RC_EXT_CRED_BLOB:
        if (arg != NULL)
            x->cred_blob = arg;
        else
            x->get_cred_blob = true;
        return 0;
    case RC_EXT_LARGE_BLOB_KEY:
        x->large_blob_key = true;
        return 0;
    case RC_EXT_MIN_PIN_LENGTH:
        x->min_pin_length = true;
        return 0;
    default:
        return -1;
    }
}

static int add_bool(cbor_item_t *m, const char *name)
{
    return kc_cbor_map_add_str(m, name, kc_cbor_new_bool(true));
}

static int finish_map(cbor_item_t *m, uint8_t **buf, size_t *len)
{
    int e = KC_OK;

    *buf = NULL;
    *len = 0;
    if (cbor_map_size(m) > 0)
        e = kc_cbor_map_canonical(m) == KC_OK ? kc_cbor_serialize(m, buf, len) : KC_ERR_NOMEM;
    cbor_decref(&m);
    return e;
}

int rc_ext_mc_request(struct rc_ctx *ctx, const struct rc_ext_opts *x, struct kc_cred_request *req,
                      uint8_t **buf, size_t *len)
{
    cbor_item_t *m = cbor_new_definite_map(3);
    uint8_t *blob = NULL;
    size_t blen = 0;
    int e = KC_OK;

    if (m == NULL)
        return RC_EXIT_LOCAL;
    if (x->salts != NULL) {
        cbor_decref(&m);
        return rc_usage_error("make-credential", "--hmac-secret takes no salts here (salts go "
                                                 "to get-assertion)");
    }
    req->cred_protect = (int)x->cred_protect;
    req->hmac_secret = x->hmac_secret;
    if (x->cred_blob != NULL) {
        if (kcu_b64url_decode_alloc(x->cred_blob, RC_DECODE_MAX, KCU_B64URL_LENIENT, &blob, &blen,
                                    NULL, 0) != 0) {
            cbor_decref(&m);
            return rc_usage_error("make-credential", "--cred-blob is not base64url: '%s'",
                                  x->cred_blob);
        }
        e = kc_cbor_map_add_str(m, "credBlob", kc_cbor_new_bytes(blob, blen));
        free(blob);
    }
    if (e == KC_OK && x->large_blob_key)
        e = add_bool(m, "largeBlobKey");
    if (e == KC_OK && x->min_pin_length)
        e = add_bool(m, "minPinLength");
    if (e != KC_OK) {
        cbor_decref(&m);
        return RC_EXIT_LOCAL;
    }
    if (finish_map(m, buf, len) != KC_OK) {
        rc_err(ctx, "make-credential: cannot encode the extensions");
        return RC_EXIT_LOCAL;
    }
    return RC_EXIT_OK;
}

/* authData's extensions map, NULL when there is none or it is not a map. */
static cbor_item_t *ad_extensions(const struct kc_authdata *ad)
{
    cbor_item_t *m = NULL;

    if (ad->extensions == NULL || ad->extensions_len == 0 ||
        kc_cbor_load(ad->extensions, ad->extensions_len, &m) != KC_OK)
        return NULL;
    if (!cbor_isa_map(m)) {
        cbor_decref(&m);
        return NULL;
    }
    return m;
}

/* Shows one authData extension output by its type. */
static void show_value(struct rc_ctx *ctx, const char *key, const cbor_item_t *v)
{
    uint64_t u;

    if (v == NULL)
        return;
    if (kc_cbor_is_bool(v))
        rc_out_bool(ctx, key, cbor_get_bool(v));
    else if (kc_cbor_uint(v, &u) == KC_OK)
        rc_out_int(ctx, key, (long long)u);
    else if (kc_cbor_is_bytes(v))
        rc_out_hex(ctx, key, cbor_bytestring_handle(v), cbor_bytestring_length(v));
}

void rc_ext_mc_show(struct rc_ctx *ctx, const struct rc_ext_opts *x,
                    const struct kc_attestation *att)
{
    cbor_item_t *m = ad_extensions(&att->ad);

    if (m != NULL) {
        show_value(ctx, "ext_cred_protect", kc_cbor_map_get_str(m, "credProtect"));
        show_value(ctx, "ext_hmac_secret", kc_cbor_map_get_str(m, "hmac-secret"));
        show_value(ctx, "ext_cred_blob", kc_cbor_map_get_str(m, "credBlob"));
        show_value(ctx, "ext_min_pin_length", kc_cbor_map_get_str(m, "minPinLength"));
        cbor_decref(&m);
    }
    if (att->large_blob_key != NULL)
        rc_out_hex(ctx, "large_blob_key", att->large_blob_key, att->large_blob_key_len);
    else if (x->large_blob_key)
        rc_verbose(ctx, 1, "the card returned no largeBlobKey");
}

static int parse_salts(const char *s, uint8_t salts[2 * SALT_LEN], size_t *n)
{
    const char *comma = strchr(s, ',');
    char first[2 * SALT_LEN + 1];
    uint8_t *b = NULL;
    size_t blen = 0, flen = comma != NULL ? (size_t)(comma - s) : strlen(s);

    if (flen >= sizeof(first))
        return -1;
    memcpy(first, s, flen);
    first[flen] = '\0';
    if (kcu_hex_decode_alloc(first, RC_DECODE_MAX, &b, &blen, NULL, 0) != 0 || blen != SALT_LEN) {
        free(b);
        return -1;
    }
    memcpy(salts, b, SALT_LEN);
    free(b);
    *n = 1;
    if (comma == NULL)
        return 0;
    if (kcu_hex_decode_alloc(comma + 1, RC_DECODE_MAX, &b, &blen, NULL, 0) != 0 ||
        blen != SALT_LEN) {
        free(b);
        return -1;
    }
    memcpy(salts + SALT_LEN, b, SALT_LEN);
    free(b);
    *n = 2;
    return 0;
}

/* {1: keyAgreement, 2: saltEnc, 3: saltAuth, 4: pinUvAuthProtocol} */
static int hmac_input(struct rc_ctx *ctx, const struct kc_info *info, const struct rc_ext_opts *x,
                      struct rc_hmac *h, cbor_item_t **out)
{
    uint8_t salts[2 * SALT_LEN], enc[2 * SALT_LEN + 16], auth[32];
    size_t enc_len = 0, auth_len = sizeof(auth);
    EVP_PKEY *peer = NULL, *mine = NULL;
    cbor_item_t *m = NULL, *cose = NULL;
    int e, proto = (int)x->hmac_protocol;

    if (parse_salts(x->salts, salts, &h->n_salts) != 0)
        return rc_usage_error("get-assertion",
                              "--hmac-secret wants one or two 32-byte salts in hex, "
                              "comma-separated");
    if (proto == 0 && kc_pin_choose_protocol(info, true, &proto, NULL) != KC_OK) {
        rc_err(ctx,
               "get-assertion: hmac-secret needs a PIN/UV auth protocol; the card offers none");
        rc_json_error(ctx, "KC_ERR_NO_PIN_PROTOCOL", RC_EXIT_CTAP);
        return RC_EXIT_CTAP;
    }
    if (!kc_info_supports_pin_protocol(info, proto)) {
        rc_err(ctx, "get-assertion: the card does not offer PIN/UV auth protocol %d", proto);
        rc_json_error(ctx, "PIN_PROTOCOL_NOT_OFFERED", RC_EXIT_CTAP);
        return RC_EXIT_CTAP;
    }
    h->protocol = proto;
    h->shared_len = sizeof(h->shared);
    if ((e = kc_pin_get_key_agreement(ctx->dev, proto, &peer)) != KC_OK)
        return rc_fail(ctx, "get-assertion: hmac-secret getKeyAgreement", e);
    e = kc_pinp_keypair_new(&mine);
    if (e == KC_OK)
        e = kc_pinp_shared_secret(proto, mine, peer, h->shared, &h->shared_len);
    if (e == KC_OK)
        e = kc_pinp_encrypt(proto, h->shared, h->shared_len, salts, h->n_salts * SALT_LEN, enc,
                            sizeof(enc), &enc_len);
    if (e == KC_OK)
        e = kc_pinp_authenticate(proto, h->shared, h->shared_len, enc, enc_len, auth, &auth_len);
    if (e == KC_OK)
        e = kc_cose_encode_item(mine, KC_COSE_ECDH_ES_HKDF_256, &cose);
    if (e == KC_OK && (m = cbor_new_definite_map(4)) == NULL)
        e = KC_ERR_NOMEM;
    if (e == KC_OK) {
        e = kc_cbor_map_add_int(m, 1, cose);
        cose = NULL;
    }
    if (e == KC_OK)
        e = kc_cbor_map_add_int(m, 2, kc_cbor_new_bytes(enc, enc_len));
    if (e == KC_OK)
        e = kc_cbor_map_add_int(m, 3, kc_cbor_new_bytes(auth, auth_len));
    if (e == KC_OK)
        e = kc_cbor_map_add_int(m, 4, kc_cbor_new_int(proto));
    EVP_PKEY_free(peer);
    EVP_PKEY_free(mine);
    OPENSSL_cleanse(salts, sizeof(salts));
    if (cose != NULL)
        cbor_decref(&cose);
    if (e != KC_OK) {
        if (m != NULL)
            cbor_decref(&m);
        rc_err(ctx, "get-assertion: hmac-secret input: %s", kc_strerror(e));
        return RC_EXIT_LOCAL;
    }
    *out = m;
    return RC_EXIT_OK;
}

int rc_ext_ga_request(struct rc_ctx *ctx, const struct kc_info *info, const struct rc_ext_opts *x,
                      struct rc_hmac *h, uint8_t **buf, size_t *len)
{
    cbor_item_t *m, *hm = NULL;
    int r = RC_EXIT_OK, e = KC_OK;

    memset(h, 0, sizeof(*h));
    *buf = NULL;
    *len = 0;
    if (x->cred_protect || x->min_pin_length || x->cred_blob != NULL ||
        (x->hmac_secret && x->salts == NULL))
        return rc_usage_error("get-assertion",
                              "--cred-protect, --min-pin-length and --cred-blob B64 belong to "
                              "make-credential; here --hmac-secret wants its salts and "
                              "--cred-blob takes none");
    if ((m = cbor_new_definite_map(3)) == NULL)
        return RC_EXIT_LOCAL;
    if (x->salts != NULL && (r = hmac_input(ctx, info, x, h, &hm)) != RC_EXIT_OK) {
        cbor_decref(&m);
        return r;
    }
    if (hm != NULL)
        e = kc_cbor_map_add_str(m, "hmac-secret", hm);
    if (e == KC_OK && x->get_cred_blob)
        e = add_bool(m, "getCredBlob");
    if (e == KC_OK && x->large_blob_key)
        e = add_bool(m, "largeBlobKey");
    if (e != KC_OK || finish_map(m, buf, len) != KC_OK) {
        if (e != KC_OK)
            cbor_decref(&m);
        rc_err(ctx, "get-assertion: cannot encode the extensions");
        return RC_EXIT_LOCAL;
    }
    return RC_EXIT_OK;
}

int rc_ext_ga_show(struct rc_ctx *ctx, const struct rc_ext_opts *x, const struct rc_hmac *h,
                   const struct kc_assertion *a)
{
    cbor_item_t *m = ad_extensions(&a->ad), *v;
    uint8_t out[2 * SALT_LEN + 16];
    size_t n = 0;
    int r = RC_EXIT_OK;

    if (x->get_cred_blob) {
        v = m != NULL ? kc_cbor_map_get_str(m, "credBlob") : NULL;
        if (kc_cbor_is_bytes(v))
            rc_out_hex(ctx, "cred_blob", cbor_bytestring_handle(v), cbor_bytestring_length(v));
        else
            rc_verbose(ctx, 1, "the card returned no credBlob");
    }
    if (x->salts != NULL) {
        v = m != NULL ? kc_cbor_map_get_str(m, "hmac-secret") : NULL;
        if (!kc_cbor_is_bytes(v)) {
            rc_err(ctx, "get-assertion: the card returned no hmac-secret output (credential "
                        "made without --hmac-secret?)");
            rc_json_error(ctx, "NO_HMAC_SECRET_OUTPUT", RC_EXIT_CTAP);
            r = RC_EXIT_CTAP;
        } else if (kc_pinp_decrypt(h->protocol, h->shared, h->shared_len, cbor_bytestring_handle(v),
                                   cbor_bytestring_length(v), out, sizeof(out), &n) != KC_OK ||
                   n != h->n_salts * SALT_LEN) {
            rc_err(ctx, "get-assertion: the hmac-secret output does not decrypt to %zu bytes",
                   h->n_salts * SALT_LEN);
            rc_json_error(ctx, "HMAC_SECRET_BAD_OUTPUT", RC_EXIT_VERIFY);
            r = RC_EXIT_VERIFY;
        } else {
            rc_out_int(ctx, "hmac_protocol", h->protocol);
            rc_out_hex(ctx, "hmac_output1", out, SALT_LEN);
            if (h->n_salts == 2)
                rc_out_hex(ctx, "hmac_output2", out + SALT_LEN, SALT_LEN);
        }
        OPENSSL_cleanse(out, sizeof(out));
    }
    if (a->large_blob_key != NULL)
        rc_out_hex(ctx, "large_blob_key", a->large_blob_key, a->large_blob_key_len);
    else if (x->large_blob_key)
        rc_verbose(ctx, 1, "the card returned no largeBlobKey");
    if (m != NULL)
        cbor_decref(&m);
    return r;
}
