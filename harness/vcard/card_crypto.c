/* Keys of the virtual card: credential ids that wrap their own private key
 * (AES-256-GCM under the card's master key, bound to the rp), signatures,
 * the batch attestation certificate, and per-credential signature counters. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ctaphid/status.h"
#include "harness/vcard/card_int.h"
#include "util/rand.h"

#define FIDO_AAGUID_OID "1.3.6.1.4.1.45724.1.1.4"

int vc_sha256(const uint8_t *p, size_t len, uint8_t out[32])
{
    unsigned int n = 0;

    return EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32 ? 0 : -1;
}

static int gcm(int enc, const uint8_t key[32], const uint8_t *nonce, const uint8_t *aad,
               size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0, ok = 0;

    if (ctx == NULL)
        return -1;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, VC_CRED_NONCE_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1 ||
        EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, VC_CRED_TAG_LEN, tag) != 1)
        goto out;
    if (EVP_CipherFinal_ex(ctx, out + n, &fin) != 1)
        goto out;
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, VC_CRED_TAG_LEN, tag) != 1)
        goto out;
    ok = 1;
out:
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int priv_of(EVP_PKEY *k, int alg, uint8_t priv[32])
{
    BIGNUM *bn = NULL;
    size_t len = 32;
    int ok;

    if (alg == KC_COSE_EDDSA)
        return EVP_PKEY_get_raw_private_key(k, priv, &len) == 1 && len == 32 ? 0 : -1;
    if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1)
        return -1;
    ok = BN_bn2binpad(bn, priv, 32) == 32;
    BN_clear_free(bn);
    return ok ? 0 : -1;
}

int vc_cred_new(struct vc_card *c, int alg, int cred_protect, uint8_t flags,
                const uint8_t rp_id_hash[32], struct vc_cred *out, EVP_PKEY **pkey)
{
    uint8_t plain[VC_CRED_PLAIN_LEN];
    EVP_PKEY *k;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    *pkey = NULL;
    if (alg == KC_COSE_ES256)
        k = EVP_EC_gen("P-256");
    else if (alg == KC_COSE_EDDSA)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    else
        return -1;
    if (k == NULL)
        return -1;
    out->alg = alg;
    out->cred_protect = cred_protect;
    out->flags = flags;
    if (priv_of(k, alg, out->priv) != 0)
        goto out;
    plain[0] = alg == KC_COSE_ES256 ? 1 : 2;
    plain[1] = (uint8_t)cred_protect;
    plain[2] = flags;
    memcpy(plain + 3, out->priv, 32);
    out->id[0] = VC_CRED_FORMAT;
    if (kcu_random(out->id + 1, VC_CRED_NONCE_LEN) != 0 ||
        gcm(1, c->master_key, out->id + 1, rp_id_hash, 32, plain, sizeof(plain),
            out->id + 1 + VC_CRED_NONCE_LEN,
            out->id + 1 + VC_CRED_NONCE_LEN + VC_CRED_PLAIN_LEN) != 0)
        goto out;
    *pkey = k;
    k = NULL;
    rc = 0;
out:
    OPENSSL_cleanse(plain, sizeof(plain));
    EVP_PKEY_free(k);
    if (rc != 0)
        OPENSSL_cleanse(out, sizeof(*out));
    return rc;
}

int vc_cred_open(const struct vc_card *c, const uint8_t *id, size_t id_len,
                 const uint8_t rp_id_hash[32], struct vc_cred *out)
{
    uint8_t plain[VC_CRED_PLAIN_LEN];
    uint8_t tag[VC_CRED_TAG_LEN];
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (id_len != VC_CRED_ID_LEN || id[0] != VC_CRED_FORMAT)
        return -1;
    memcpy(tag, id + 1 + VC_CRED_NONCE_LEN + VC_CRED_PLAIN_LEN, sizeof(tag));
    if (gcm(0, c->master_key, id + 1, rp_id_hash, 32, id + 1 + VC_CRED_NONCE_LEN, VC_CRED_PLAIN_LEN,
            plain, tag) != 0)
        goto out;
    if (plain[0] == 1)
        out->alg = KC_COSE_ES256;
    else if (plain[0] == 2)
        out->alg = KC_COSE_EDDSA;
    else
        goto out;
    out->cred_protect = plain[1];
    out->flags = plain[2];
    memcpy(out->priv, plain + 3, 32);
    memcpy(out->id, id, VC_CRED_ID_LEN);
    rc = 0;
out:
    OPENSSL_cleanse(plain, sizeof(plain));
    return rc;
}

/* Rebuilds a P-256 key from its scalar: the public point is priv * G. */
static EVP_PKEY *p256_from_priv(const uint8_t priv[32])
{
    EC_GROUP *grp = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    EC_POINT *pt = NULL;
    BIGNUM *bn = BN_secure_new();
    BN_CTX *bctx = BN_CTX_new();
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *k = NULL;
    uint8_t pub[65];

    if (grp == NULL || bn == NULL || bctx == NULL || bld == NULL)
        goto out;
    if ((pt = EC_POINT_new(grp)) == NULL || BN_bin2bn(priv, 32, bn) == NULL ||
        EC_POINT_mul(grp, pt, bn, NULL, NULL, bctx) != 1 ||
        EC_POINT_point2oct(grp, pt, POINT_CONVERSION_UNCOMPRESSED, pub, sizeof(pub), bctx) !=
            sizeof(pub))
        goto out;
    if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)) != 1 ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto out;
    if ((pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
        EVP_PKEY_fromdata_init(pctx) != 1 ||
        EVP_PKEY_fromdata(pctx, &k, EVP_PKEY_KEYPAIR, params) != 1)
        k = NULL;
out:
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_CTX_free(bctx);
    BN_clear_free(bn);
    EC_POINT_free(pt);
    EC_GROUP_free(grp);
    return k;
}

static EVP_PKEY *build_pkey(const struct vc_cred *cr)
{
    if (cr->alg == KC_COSE_EDDSA)
        return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, cr->priv, 32);
    return p256_from_priv(cr->priv);
}

EVP_PKEY *vc_cred_pkey(struct vc_card *c, const struct vc_cred *cr)
{
    struct vc_key_cache *e;
    EVP_PKEY *k;

    /* the id authenticates its contents, so equal ids mean equal keys */
    for (size_t i = 0; i < VC_KEY_CACHE; i++) {
        e = &c->kcache[i];
        if (e->key != NULL && CRYPTO_memcmp(e->id, cr->id, VC_CRED_ID_LEN) == 0)
            return EVP_PKEY_up_ref(e->key) == 1 ? e->key : NULL;
    }
    if ((k = build_pkey(cr)) == NULL)
        return NULL;
    e = &c->kcache[c->kcache_next];
    c->kcache_next = (c->kcache_next + 1) % VC_KEY_CACHE;
    EVP_PKEY_free(e->key);
    e->key = NULL;
    if (EVP_PKEY_up_ref(k) == 1) {
        memcpy(e->id, cr->id, VC_CRED_ID_LEN);
        e->key = k;
    }
    return k;
}

void vc_key_cache_clear(struct vc_card *c)
{
    for (size_t i = 0; i < VC_KEY_CACHE; i++) {
        EVP_PKEY_free(c->kcache[i].key);
        c->kcache[i].key = NULL;
    }
}

int vc_p256_raw_pub(EVP_PKEY *k, uint8_t out[65])
{
    size_t len = 0;

    if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out, 65, &len) !=
            1 ||
        len != 65 || out[0] != 0x04)
        return -1;
    return 0;
}

int vc_sign(struct vc_card *c, EVP_PKEY *key, int alg, const uint8_t *m1, size_t l1,
            const uint8_t *m2, size_t l2, uint8_t *sig, size_t *sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t *msg = malloc(l1 + l2 + 1);
    size_t cap = *sig_len;
    int rc = -1;

    if (ctx == NULL || msg == NULL)
        goto out;
    if (l1)
        memcpy(msg, m1, l1);
    if (l2)
        memcpy(msg + l1, m2, l2);
    if (EVP_DigestSignInit(ctx, NULL, alg == KC_COSE_EDDSA ? NULL : EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(ctx, NULL, sig_len, msg, l1 + l2) != 1 || *sig_len > cap ||
        EVP_DigestSign(ctx, sig, sig_len, msg, l1 + l2) != 1)
        goto out;
    /* bogus-signature: one flipped bit in the last byte keeps DER parseable
     * but the signature no longer verifies. */
    if (c->faults.on[VC_FAULT_BOGUS_SIGNATURE] && *sig_len > 0)
        sig[*sig_len - 1] ^= 0x01;
    rc = 0;
out:
    free(msg);
    EVP_MD_CTX_free(ctx);
    return rc;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
        return -1;
    ok = X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* id-fido-gen-ce-aaguid: an OCTET STRING holding the 16-byte AAGUID. */
static int add_aaguid_ext(X509 *x, const uint8_t aaguid[16])
{
    ASN1_OBJECT *obj = OBJ_txt2obj(FIDO_AAGUID_OID, 1);
    ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING *outer = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    unsigned char *der = NULL;
    int der_len, rc = -1;

    if (obj == NULL || inner == NULL || outer == NULL ||
        ASN1_OCTET_STRING_set(inner, aaguid, 16) != 1 ||
        (der_len = i2d_ASN1_OCTET_STRING(inner, &der)) <= 0 ||
        ASN1_OCTET_STRING_set(outer, der, der_len) != 1 ||
        (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, outer)) == NULL ||
        X509_add_ext(x, ext, -1) != 1)
        goto out;
    rc = 0;
out:
    X509_EXTENSION_free(ext);
    OPENSSL_free(der);
    ASN1_OCTET_STRING_free(outer);
    ASN1_OCTET_STRING_free(inner);
    ASN1_OBJECT_free(obj);
    return rc;
}

/* A self-signed batch certificate for key k as packed attestation asks for
 * it: version 3, OU "Authenticator Attestation", CA false, the AAGUID
 * extension. Replaces c->att_cert. */
static int make_cert(struct vc_card *c, EVP_PKEY *k)
{
    X509 *x = X509_new();
    X509_NAME *name = NULL;
    uint8_t serial[8];
    BIGNUM *sn = NULL;
    unsigned char *der = NULL;
    int der_len, rc = -1;

    if (k == NULL || x == NULL || kcu_random(serial, sizeof(serial)) != 0)
        goto out;
    serial[0] &= 0x7f;
    if ((sn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
        BN_to_ASN1_INTEGER(sn, X509_get_serialNumber(x)) == NULL || X509_set_version(x, 2) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -86400) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 20L * 365 * 86400) == NULL ||
        X509_set_pubkey(x, k) != 1)
        goto out;
    if ((name = X509_NAME_new()) == NULL ||
        X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"US", -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"kcard", -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC,
                                   (const unsigned char *)"Authenticator Attestation", -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (const unsigned char *)"kcard vcard batch", -1, -1, 0) != 1 ||
        X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1)
        goto out;
    if (add_ext(x, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        add_ext(x, NID_subject_key_identifier, "hash") != 0 ||
        add_aaguid_ext(x, c->cfg.aaguid) != 0 || X509_sign(x, k, EVP_sha256()) <= 0)
        goto out;
    if ((der_len = i2d_X509(x, &der)) <= 0)
        goto out;
    free(c->att_cert);
    if ((c->att_cert = malloc((size_t)der_len)) == NULL)
        goto out;
    memcpy(c->att_cert, der, (size_t)der_len);
    c->att_cert_len = (size_t)der_len;
    rc = 0;
out:
    OPENSSL_free(der);
    X509_NAME_free(name);
    BN_free(sn);
    X509_free(x);
    return rc;
}

int vc_attest_generate(struct vc_card *c)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");

    if (k == NULL || make_cert(c, k) != 0) {
        EVP_PKEY_free(k);
        return -1;
    }
    EVP_PKEY_free(c->att_key);
    c->att_key = k;
    return 0;
}

/* Whether the DER certificate carries aaguid in its id-fido-gen-ce-aaguid
 * extension. */
static bool cert_has_aaguid(const uint8_t *der, size_t len, const uint8_t aaguid[16])
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.4.1.45724.1.1.4", 1);
    ASN1_OCTET_STRING *inner = NULL;
    const ASN1_OCTET_STRING *outer;
    const unsigned char *ip;
    X509_EXTENSION *ext;
    bool same = false;
    int at;

    if (x == NULL || obj == NULL || (at = X509_get_ext_by_OBJ(x, obj, -1)) < 0 ||
        (ext = X509_get_ext(x, at)) == NULL || (outer = X509_EXTENSION_get_data(ext)) == NULL)
        goto out;
    ip = ASN1_STRING_get0_data(outer);
    if ((inner = d2i_ASN1_OCTET_STRING(NULL, &ip, ASN1_STRING_length(outer))) == NULL)
        goto out;
    same = ASN1_STRING_length(inner) == 16 && memcmp(ASN1_STRING_get0_data(inner), aaguid, 16) == 0;
out:
    ASN1_OCTET_STRING_free(inner);
    ASN1_OBJECT_free(obj);
    X509_free(x);
    return same;
}

int vc_attest_match_aaguid(struct vc_card *c)
{
    if (c->att_key == NULL)
        return -1;
    if (c->att_cert != NULL && cert_has_aaguid(c->att_cert, c->att_cert_len, c->cfg.aaguid))
        return 0;
    return make_cert(c, c->att_key) == 0 ? 1 : -1;
}

static struct vc_counter *counter_find(struct vc_card *c, const uint8_t *id, size_t id_len,
                                       bool create)
{
    uint8_t h[32];
    struct vc_counter *n;
    size_t lo = 0, hi = c->n_ctr, mid;
    int cmp;

    if (vc_sha256(id, id_len, h) != 0)
        return NULL;
    /* The table is sorted by key: a binary search keeps lookups fast however
     * many credentials the card has signed with. */
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        cmp = memcmp(c->ctrs[mid].key, h, sizeof(c->ctrs[mid].key));
        if (cmp == 0)
            return &c->ctrs[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!create)
        return NULL;
    if (c->ctrs == NULL || c->n_ctr >= c->cap_ctr) {
        size_t cap = c->n_ctr < 16 ? 32 : c->n_ctr * 2;

        if (cap > SIZE_MAX / sizeof(*c->ctrs) ||
            (n = realloc(c->ctrs, cap * sizeof(*c->ctrs))) == NULL)
            return NULL;
        c->ctrs = n;
        c->cap_ctr = cap;
    }
    memmove(c->ctrs + lo + 1, c->ctrs + lo, (c->n_ctr - lo) * sizeof(*c->ctrs));
    c->n_ctr++;
    n = &c->ctrs[lo];
    memcpy(n->key, h, sizeof(n->key));
    n->count = 0;
    return n;
}

uint32_t vc_counter_next(struct vc_card *c, const uint8_t *id, size_t id_len)
{
    struct vc_counter *k = counter_find(c, id, id_len, true);

    if (k == NULL)
        return 0;
    if (c->faults.on[VC_FAULT_COUNTER_ROLLBACK]) {
        /* counter-rollback: each use goes one lower, as a cloned key would */
        if (k->count > 0)
            k->count--;
    } else if (k->count < UINT32_MAX) {
        k->count++;
    }
    return k->count;
}

void vc_counter_set(struct vc_card *c, const uint8_t *id, size_t id_len, uint32_t v)
{
    struct vc_counter *k = counter_find(c, id, id_len, true);

    if (k != NULL)
        k->count = v;
}

int vc_hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *m1, size_t l1, const uint8_t *m2,
                   size_t l2, uint8_t out[32])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t n = 0;
    int ok = ctx != NULL && EVP_MAC_init(ctx, key, klen, params) == 1 &&
             EVP_MAC_update(ctx, m1, l1) == 1 && (l2 == 0 || EVP_MAC_update(ctx, m2, l2) == 1) &&
             EVP_MAC_final(ctx, out, &n, 32) == 1 && n == 32;

    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok ? 0 : -1;
}
