/* COSE_Key decoding into OpenSSL EVP keys and encoding from them.
 * Only public keys: a map that carries a private part (label -4) is refused,
 * so a card that leaks one is noticed rather than silently accepted. */
#include "ctaphid/cose.h"

#include "ctaphid/cbor_util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "ctaphid/status.h"
#include "util/err.h"

/* COSE_Key labels (RFC 9052 section 7.1, RFC 9053 section 7) */
#define LBL_KTY 1
#define LBL_KID 2
#define LBL_ALG 3
#define LBL_KEY_OPS 4
#define LBL_BASE_IV 5
#define LBL_CRV_OR_N (-1)
#define LBL_X_OR_E (-2)
#define LBL_Y (-3)
#define LBL_D (-4)

#define P256_COORD_LEN 32
#define ED25519_KEY_LEN 32
#define RSA_MIN_BITS 2048
#define RSA_MAX_BYTES 1024 /* 8192-bit modulus */
#define RSA_MAX_E_BYTES 8

/* The fields of one COSE_Key map, borrowed from the CBOR item. */
struct cose_fields {
    int have_kty, have_alg, have_crv;
    int64_t kty, alg, crv;
    const cbor_item_t *crv_or_n; /* -1: crv (int) for EC2/OKP, n (bytes) for RSA */
    const cbor_item_t *x_or_e;   /* -2 */
    const cbor_item_t *y;        /* -3 */
    int have_d;
};

const char *kc_cose_alg_name(int alg)
{
    switch (alg) {
    case KC_COSE_ES256:
        return "ES256";
    case KC_COSE_EDDSA:
        return "EdDSA";
    case KC_COSE_RS256:
        return "RS256";
    case KC_COSE_ECDH_ES_HKDF_256:
        return "ECDH-ES+HKDF-256";
    default:
        return "UNKNOWN";
    }
}

int kc_cose_alg_is_signature(int alg)
{
    return alg == KC_COSE_ES256 || alg == KC_COSE_EDDSA || alg == KC_COSE_RS256;
}

static int collect_fields(const cbor_item_t *item, struct cose_fields *f, char *why, size_t whylen)
{
    struct cbor_pair *pairs;
    size_t n;
    int64_t label, v;
    unsigned seen = 0; /* bit per known label, to refuse duplicates */

    memset(f, 0, sizeof(*f));
    if (item == NULL || !cbor_isa_map(item) || !cbor_map_is_definite(item)) {
        kcu_set_err(why, whylen, "COSE_Key is not a definite-length CBOR map");
        return KC_ERR_CBOR;
    }
    n = cbor_map_size(item);
    pairs = cbor_map_handle(item);
    for (size_t i = 0; i < n; i++) {
        const cbor_item_t *val = pairs[i].value;
        unsigned bit;

        if (kc_cbor_int(pairs[i].key, &label) != KC_OK) {
            kcu_set_err(why, whylen, "COSE_Key label %zu is not an integer", i);
            return KC_ERR_CBOR;
        }
        if (label >= -4 && label <= 5) {
            bit = 1u << (unsigned)(label + 4);
            if (seen & bit) {
                kcu_set_err(why, whylen, "COSE_Key label %lld appears twice", (long long)label);
                return KC_ERR_CBOR;
            }
            seen |= bit;
        }
        switch (label) {
        case LBL_KTY:
            if (kc_cbor_int(val, &f->kty) != KC_OK) {
                kcu_set_err(why, whylen, "COSE_Key kty is not an integer");
                return KC_ERR_CBOR;
            }
            f->have_kty = 1;
            break;
        case LBL_ALG:
            if (kc_cbor_int(val, &f->alg) != KC_OK) {
                kcu_set_err(why, whylen, "COSE_Key alg is not an integer");
                return KC_ERR_CBOR;
            }
            f->have_alg = 1;
            break;
        case LBL_CRV_OR_N:
            f->crv_or_n = val;
            if (kc_cbor_int(val, &v) == KC_OK) {
                f->crv = v;
                f->have_crv = 1;
            }
            break;
        case LBL_X_OR_E:
            f->x_or_e = val;
            break;
        case LBL_Y:
            f->y = val;
            break;
        case LBL_D:
            f->have_d = 1;
            break;
        case LBL_KID:
        case LBL_KEY_OPS:
        case LBL_BASE_IV:
            break; /* optional, no bearing on the key itself */
        default:
            /* Labels below -4 are type-specific parameters we do not know
             * (e.g. RSA private parts); others are unknown and harmless. */
            if (label < LBL_D) {
                kcu_set_err(why, whylen, "COSE_Key has unknown key parameter %lld",
                            (long long)label);
                return KC_ERR_CBOR;
            }
            break;
        }
    }
    if (!f->have_kty) {
        kcu_set_err(why, whylen, "COSE_Key has no kty (label 1)");
        return KC_ERR_CBOR;
    }
    if (!f->have_alg) {
        kcu_set_err(why, whylen, "COSE_Key has no alg (label 3)");
        return KC_ERR_CBOR;
    }
    if (f->have_d) {
        kcu_set_err(why, whylen, "COSE_Key carries a private key (label -4)");
        return KC_ERR_CBOR;
    }
    return KC_OK;
}

/* An EVP key must pass OpenSSL's public-key check (point on the curve, RSA
 * modulus sane) before it is trusted. */
static int public_check(EVP_PKEY *pkey)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok;

    if (ctx == NULL)
        return 0;
    ok = EVP_PKEY_public_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int pkey_from_params(const char *type, OSSL_PARAM *params, EVP_PKEY **out)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    int ok = 0;

    *out = NULL;
    if (ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1)
        ok = 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* The key's alg is not one its kty (kty_name) carries. */
static int alg_mismatch(const struct cose_fields *f, int kty, const char *kty_name, char *why,
                        size_t whylen)
{
    kcu_set_err(why, whylen, "alg %lld (%s) does not match kty %d (%s)", (long long)f->alg,
                kc_cose_alg_name((int)f->alg), kty, kty_name);
    return KC_ERR_CBOR;
}

static int no_crv(const char *kty_name, char *why, size_t whylen)
{
    kcu_set_err(why, whylen, "%s key has no integer crv (label -1)", kty_name);
    return KC_ERR_CBOR;
}

static int decode_ec2(const struct cose_fields *f, struct kc_cose_key *out, char *why,
                      size_t whylen)
{
    uint8_t point[1 + 2 * P256_COORD_LEN];
    char group[] = SN_X9_62_prime256v1;
    OSSL_PARAM params[3];
    EVP_PKEY *pkey = NULL;

    if (f->alg != KC_COSE_ES256 && f->alg != KC_COSE_ECDH_ES_HKDF_256) {
        return alg_mismatch(f, 2, "EC2", why, whylen);
    }
    if (!f->have_crv)
        return no_crv("EC2", why, whylen);
    if (f->crv != KC_COSE_CRV_P256) {
        kcu_set_err(why, whylen, "EC2 curve %lld is not P-256 (1)", (long long)f->crv);
        return KC_ERR_CBOR;
    }
    if (f->x_or_e == NULL || f->y == NULL) {
        kcu_set_err(why, whylen, "EC2 key lacks an x or y coordinate");
        return KC_ERR_CBOR;
    }
    if (!kc_cbor_is_bytes(f->x_or_e) || !kc_cbor_is_bytes(f->y)) {
        kcu_set_err(why, whylen, "EC2 coordinates must be byte strings");
        return KC_ERR_CBOR;
    }
    if (cbor_bytestring_length(f->x_or_e) != P256_COORD_LEN ||
        cbor_bytestring_length(f->y) != P256_COORD_LEN) {
        kcu_set_err(why, whylen, "EC2 coordinates are %zu and %zu bytes, P-256 needs 32",
                    cbor_bytestring_length(f->x_or_e), cbor_bytestring_length(f->y));
        return KC_ERR_CBOR;
    }
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, cbor_bytestring_handle(f->x_or_e), P256_COORD_LEN);
    memcpy(point + 1 + P256_COORD_LEN, cbor_bytestring_handle(f->y), P256_COORD_LEN);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
    params[2] = OSSL_PARAM_construct_end();
    if (!pkey_from_params("EC", params, &pkey) || !public_check(pkey)) {
        EVP_PKEY_free(pkey);
        kcu_set_err(why, whylen, "EC2 point is not on the P-256 curve");
        return KC_ERR_CBOR;
    }
    out->kty = KC_COSE_KTY_EC2;
    out->alg = (int)f->alg;
    out->crv = KC_COSE_CRV_P256;
    out->pkey = pkey;
    return KC_OK;
}

static int decode_okp(const struct cose_fields *f, struct kc_cose_key *out, char *why,
                      size_t whylen)
{
    EVP_PKEY *pkey;

    if (f->alg != KC_COSE_EDDSA) {
        return alg_mismatch(f, 1, "OKP", why, whylen);
    }
    if (!f->have_crv)
        return no_crv("OKP", why, whylen);
    if (f->crv != KC_COSE_CRV_ED25519) {
        kcu_set_err(why, whylen, "OKP curve %lld is not Ed25519 (6)", (long long)f->crv);
        return KC_ERR_UNSUPPORTED;
    }
    if (f->y != NULL) {
        kcu_set_err(why, whylen, "OKP key must not have a y coordinate");
        return KC_ERR_CBOR;
    }
    if (f->x_or_e == NULL || !kc_cbor_is_bytes(f->x_or_e)) {
        kcu_set_err(why, whylen, "OKP key lacks the x byte string");
        return KC_ERR_CBOR;
    }
    if (cbor_bytestring_length(f->x_or_e) != ED25519_KEY_LEN) {
        kcu_set_err(why, whylen, "Ed25519 key is %zu bytes, needs 32",
                    cbor_bytestring_length(f->x_or_e));
        return KC_ERR_CBOR;
    }
    pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, cbor_bytestring_handle(f->x_or_e),
                                       ED25519_KEY_LEN);
    if (pkey == NULL) {
        kcu_set_err(why, whylen, "Ed25519 key rejected by OpenSSL");
        return KC_ERR_CBOR;
    }
    out->kty = KC_COSE_KTY_OKP;
    out->alg = KC_COSE_EDDSA;
    out->crv = KC_COSE_CRV_ED25519;
    out->pkey = pkey;
    return KC_OK;
}

static int decode_rsa(const struct cose_fields *f, struct kc_cose_key *out, char *why,
                      size_t whylen)
{
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    BIGNUM *n = NULL, *e = NULL;
    EVP_PKEY *pkey = NULL;
    size_t n_len, e_len;
    int r = KC_ERR_CBOR;

    if (f->alg != KC_COSE_RS256) {
        return alg_mismatch(f, 3, "RSA", why, whylen);
    }
    if (f->crv_or_n == NULL || f->x_or_e == NULL || !kc_cbor_is_bytes(f->crv_or_n) ||
        !kc_cbor_is_bytes(f->x_or_e)) {
        kcu_set_err(why, whylen, "RSA key lacks the n or e byte string");
        return KC_ERR_CBOR;
    }
    if (f->y != NULL) {
        kcu_set_err(why, whylen, "RSA key has unexpected label -3");
        return KC_ERR_CBOR;
    }
    n_len = cbor_bytestring_length(f->crv_or_n);
    e_len = cbor_bytestring_length(f->x_or_e);
    if (n_len == 0 || n_len > RSA_MAX_BYTES || e_len == 0 || e_len > RSA_MAX_E_BYTES) {
        kcu_set_err(why, whylen, "RSA n (%zu bytes) or e (%zu bytes) has an unusable size", n_len,
                    e_len);
        return KC_ERR_CBOR;
    }
    n = BN_bin2bn(cbor_bytestring_handle(f->crv_or_n), (int)n_len, NULL);
    e = BN_bin2bn(cbor_bytestring_handle(f->x_or_e), (int)e_len, NULL);
    if (n == NULL || e == NULL) {
        r = KC_ERR_NOMEM;
        goto done;
    }
    if (BN_num_bits(n) < RSA_MIN_BITS) {
        kcu_set_err(why, whylen, "RSA modulus is %d bits, at least %d required", BN_num_bits(n),
                    RSA_MIN_BITS);
        goto done;
    }
    /* OpenSSL's public check runs a randomised primality test on n, so the
     * same bytes could pass once and fail the next time; these checks are
     * deterministic and enough for verification (a bad n fails signatures). */
    if (!BN_is_odd(n) || !BN_is_odd(e) || BN_is_one(e) || BN_cmp(e, n) >= 0) {
        kcu_set_err(why, whylen, "RSA public key has an even modulus or an unusable exponent");
        goto done;
    }
    if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
        r = KC_ERR_CRYPTO;
        goto done;
    }
    if (!pkey_from_params("RSA", params, &pkey)) {
        kcu_set_err(why, whylen, "RSA public key rejected by OpenSSL");
        goto done;
    }
    out->kty = KC_COSE_KTY_RSA;
    out->alg = KC_COSE_RS256;
    out->crv = 0;
    out->pkey = pkey;
    pkey = NULL;
    r = KC_OK;
done:
    EVP_PKEY_free(pkey);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return r;
}

int kc_cose_decode_item_reason(const cbor_item_t *item, struct kc_cose_key *out, char *why,
                               size_t whylen)
{
    struct cose_fields f;
    int r;

    if (out == NULL)
        return KC_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    kcu_set_err(why, whylen, "ok");
    if ((r = collect_fields(item, &f, why, whylen)) != KC_OK)
        return r;
    switch (f.kty) {
    case KC_COSE_KTY_EC2:
        return decode_ec2(&f, out, why, whylen);
    case KC_COSE_KTY_OKP:
        return decode_okp(&f, out, why, whylen);
    case KC_COSE_KTY_RSA:
        return decode_rsa(&f, out, why, whylen);
    default:
        kcu_set_err(why, whylen, "COSE key type %lld is not supported", (long long)f.kty);
        return KC_ERR_UNSUPPORTED;
    }
}

int kc_cose_decode_item(const cbor_item_t *item, struct kc_cose_key *out)
{
    return kc_cose_decode_item_reason(item, out, NULL, 0);
}

int kc_cose_decode_reason(const uint8_t *buf, size_t len, struct kc_cose_key *out, size_t *consumed,
                          char *why, size_t whylen)
{
    struct cbor_load_result res;
    cbor_item_t *item;
    int r;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (consumed != NULL)
        *consumed = 0;
    if (buf == NULL || out == NULL) {
        kcu_set_err(why, whylen, "no input");
        return KC_ERR_INVALID_ARG;
    }
    if (kc_cbor_size_check(buf, len, NULL) != KC_OK) {
        kcu_set_err(why, whylen, "COSE_Key is not well-formed CBOR");
        return KC_ERR_CBOR;
    }
    item = cbor_load(buf, len, &res);
    if (item == NULL || res.error.code != CBOR_ERR_NONE) {
        if (item != NULL)
            cbor_decref(&item);
        kcu_set_err(why, whylen, "COSE_Key is not well-formed CBOR");
        return KC_ERR_CBOR;
    }
    r = kc_cose_decode_item_reason(item, out, why, whylen);
    cbor_decref(&item);
    if (r == KC_OK && consumed != NULL)
        *consumed = res.read;
    return r;
}

int kc_cose_decode(const uint8_t *buf, size_t len, struct kc_cose_key *out, size_t *consumed)
{
    return kc_cose_decode_reason(buf, len, out, consumed, NULL, 0);
}

void kc_cose_key_free(struct kc_cose_key *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    memset(k, 0, sizeof(*k));
}

/* A provider-side copy of a public key (through its SubjectPublicKeyInfo):
 * keys built with the legacy EC_KEY/RSA API do not answer parameter
 * queries such as OSSL_PKEY_PARAM_EC_PUB_X. */
static EVP_PKEY *provider_copy(EVP_PKEY *pkey)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *copy;
    int len = i2d_PUBKEY(pkey, &der);

    if (len <= 0)
        return NULL;
    p = der;
    copy = d2i_PUBKEY_ex(NULL, &p, len, NULL, NULL);
    OPENSSL_free(der);
    return copy;
}

static int pkey_kind_direct(EVP_PKEY *pkey, int *kty, int *crv);

/* Which COSE key type and curve an EVP key is, or -1. */
static int pkey_kind(EVP_PKEY *pkey, int *kty, int *crv)
{
    EVP_PKEY *copy;
    int r;

    if (pkey_kind_direct(pkey, kty, crv) == 0)
        return 0;
    if (!EVP_PKEY_is_a(pkey, "EC") || (copy = provider_copy(pkey)) == NULL)
        return -1;
    r = pkey_kind_direct(copy, kty, crv);
    EVP_PKEY_free(copy);
    return r;
}

static int pkey_kind_direct(EVP_PKEY *pkey, int *kty, int *crv)
{
    char group[64];
    size_t glen = 0;

    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        *kty = KC_COSE_KTY_OKP;
        *crv = KC_COSE_CRV_ED25519;
        return 0;
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        *kty = KC_COSE_KTY_RSA;
        *crv = 0;
        return 0;
    }
    if (EVP_PKEY_is_a(pkey, "EC")) {
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           &glen) != 1)
            return -1;
        if (strcmp(group, SN_X9_62_prime256v1) != 0 && strcmp(group, "P-256") != 0)
            return -1;
        *kty = KC_COSE_KTY_EC2;
        *crv = KC_COSE_CRV_P256;
        return 0;
    }
    return -1;
}

static int alg_fits(int kty, int alg)
{
    switch (kty) {
    case KC_COSE_KTY_EC2:
        return alg == KC_COSE_ES256 || alg == KC_COSE_ECDH_ES_HKDF_256;
    case KC_COSE_KTY_OKP:
        return alg == KC_COSE_EDDSA;
    case KC_COSE_KTY_RSA:
        return alg == KC_COSE_RS256;
    default:
        return 0;
    }
}

int kc_cose_key_from_pkey(EVP_PKEY *pkey, int alg, struct kc_cose_key *out)
{
    int kty, crv;

    if (out == NULL || pkey == NULL)
        return KC_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (pkey_kind(pkey, &kty, &crv) != 0)
        return KC_ERR_UNSUPPORTED;
    if (!alg_fits(kty, alg))
        return KC_ERR_INVALID_ARG;
    if (EVP_PKEY_up_ref(pkey) != 1)
        return KC_ERR_CRYPTO;
    out->kty = kty;
    out->alg = alg;
    out->crv = crv;
    out->pkey = pkey;
    return KC_OK;
}

/* Append label -> value to the map; takes the value reference. */
static int map_put(cbor_item_t *map, int64_t label, cbor_item_t *value)
{
    cbor_item_t *key = kc_cbor_new_int(label);
    bool ok;

    if (key == NULL || value == NULL) {
        if (key != NULL)
            cbor_decref(&key);
        if (value != NULL)
            cbor_decref(&value);
        return -1;
    }
    ok = cbor_map_add(map, (struct cbor_pair){.key = key, .value = value});
    cbor_decref(&key);
    cbor_decref(&value);
    return ok ? 0 : -1;
}

static int bn_param_bytes(EVP_PKEY *pkey, const char *name, uint8_t **buf, size_t *len,
                          size_t pad_to)
{
    BIGNUM *bn = NULL;
    int n;

    *buf = NULL;
    *len = 0;
    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1)
        return -1;
    n = BN_num_bytes(bn);
    if (pad_to != 0 && (size_t)n > pad_to) {
        BN_free(bn);
        return -1;
    }
    *len = pad_to != 0 ? pad_to : (size_t)n;
    if (*len == 0 || (*buf = malloc(*len)) == NULL || BN_bn2binpad(bn, *buf, (int)*len) < 0) {
        free(*buf);
        *buf = NULL;
        BN_free(bn);
        return -1;
    }
    BN_free(bn);
    return 0;
}

static int encode_item(EVP_PKEY *pkey, int alg, cbor_item_t **out);

int kc_cose_encode_item(EVP_PKEY *pkey, int alg, cbor_item_t **out)
{
    EVP_PKEY *copy;
    int r;

    if (out == NULL || pkey == NULL)
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if ((r = encode_item(pkey, alg, out)) != KC_ERR_CRYPTO)
        return r;
    /* a legacy key: retry on a provider-side copy */
    ERR_clear_error();
    if ((copy = provider_copy(pkey)) == NULL)
        return KC_ERR_CRYPTO;
    r = encode_item(copy, alg, out);
    EVP_PKEY_free(copy);
    return r;
}

static int encode_item(EVP_PKEY *pkey, int alg, cbor_item_t **out)
{
    cbor_item_t *map = NULL;
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    int kty, crv, r = KC_ERR_CRYPTO;

    if (out == NULL || pkey == NULL)
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if (pkey_kind(pkey, &kty, &crv) != 0)
        return KC_ERR_UNSUPPORTED;
    if (!alg_fits(kty, alg))
        return KC_ERR_INVALID_ARG;

    switch (kty) {
    case KC_COSE_KTY_EC2:
        if (bn_param_bytes(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &a, &alen, P256_COORD_LEN) != 0 ||
            bn_param_bytes(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &b, &blen, P256_COORD_LEN) != 0)
            goto done;
        break;
    case KC_COSE_KTY_OKP:
        alen = ED25519_KEY_LEN;
        if ((a = malloc(alen)) == NULL) {
            r = KC_ERR_NOMEM;
            goto done;
        }
        if (EVP_PKEY_get_raw_public_key(pkey, a, &alen) != 1 || alen != ED25519_KEY_LEN)
            goto done;
        break;
    default: /* RSA: a = n, b = e */
        if (bn_param_bytes(pkey, OSSL_PKEY_PARAM_RSA_N, &a, &alen, 0) != 0 ||
            bn_param_bytes(pkey, OSSL_PKEY_PARAM_RSA_E, &b, &blen, 0) != 0)
            goto done;
        break;
    }

    /* CTAP2 canonical order: 1, 3, -1, -2, -3 */
    r = KC_ERR_NOMEM;
    if ((map = cbor_new_definite_map(kty == KC_COSE_KTY_EC2 ? 5 : 4)) == NULL)
        goto done;
    if (map_put(map, LBL_KTY, kc_cbor_new_int(kty)) != 0 ||
        map_put(map, LBL_ALG, kc_cbor_new_int(alg)) != 0)
        goto done;
    if (kty == KC_COSE_KTY_RSA) {
        if (map_put(map, LBL_CRV_OR_N, cbor_build_bytestring(a, alen)) != 0 ||
            map_put(map, LBL_X_OR_E, cbor_build_bytestring(b, blen)) != 0)
            goto done;
    } else {
        if (map_put(map, LBL_CRV_OR_N, kc_cbor_new_int(crv)) != 0 ||
            map_put(map, LBL_X_OR_E, cbor_build_bytestring(a, alen)) != 0)
            goto done;
        if (kty == KC_COSE_KTY_EC2 && map_put(map, LBL_Y, cbor_build_bytestring(b, blen)) != 0)
            goto done;
    }
    *out = map;
    map = NULL;
    r = KC_OK;
done:
    if (map != NULL)
        cbor_decref(&map);
    free(a);
    free(b);
    return r;
}

int kc_cose_encode(EVP_PKEY *pkey, int alg, uint8_t **buf, size_t *len)
{
    cbor_item_t *item = NULL;
    unsigned char *out = NULL;
    size_t cap = 0, n;
    int r;

    if (buf == NULL || len == NULL)
        return KC_ERR_INVALID_ARG;
    *buf = NULL;
    *len = 0;
    if ((r = kc_cose_encode_item(pkey, alg, &item)) != KC_OK)
        return r;
    n = cbor_serialize_alloc(item, &out, &cap);
    cbor_decref(&item);
    if (n == 0) {
        free(out);
        return KC_ERR_NOMEM;
    }
    *buf = out;
    *len = n;
    return KC_OK;
}
