/* Attestation and assertion verification (WebAuthn L2 sections 7.1, 7.2 and
 * 8.2, 8.6, 8.7). Every failure leaves a sentence in the result's reason so a
 * tool or a service log can say exactly which check failed. */
#include "ctaphid/verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "ctaphid/cbor_util.h"
#include <openssl/x509v3.h>

#include "ctaphid/status.h"
#include "util/err.h"

#define OID_FIDO_GEN_CE_AAGUID "1.3.6.1.4.1.45724.1.1.4"
#define P256_POINT_LEN 65
#define ED25519_SIG_LEN 64
#define MAX_X5C 8

static void why(struct kc_verify_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void why(struct kc_verify_result *r, const char *fmt, ...)
{
    va_list ap;

    if (r == NULL)
        return;
    va_start(ap, fmt);
    kcu_vset_err(r->reason, sizeof(r->reason), fmt, ap);
    va_end(ap);
}

const char *kc_att_type_name(enum kc_att_type t)
{
    switch (t) {
    case KC_ATT_BASIC:
        return "basic";
    case KC_ATT_SELF:
        return "self";
    default:
        return "none";
    }
}

void kc_verify_result_init(struct kc_verify_result *r)
{
    if (r == NULL)
        return;
    memset(r, 0, sizeof(*r));
    snprintf(r->reason, sizeof(r->reason), "not verified");
}

void kc_verify_result_free(struct kc_verify_result *r)
{
    if (r == NULL)
        return;
    kc_cose_key_free(&r->cred_key);
}

int kc_sha256(const uint8_t *data, size_t len, uint8_t out[32])
{
    unsigned int n = 0;

    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return KC_ERR_CRYPTO;
    return KC_OK;
}

/* ------------------------------------------------------------ signatures */

static int key_fits_alg(EVP_PKEY *pkey, int alg)
{
    struct kc_cose_key tmp;
    int ok;

    /* kc_cose_key_from_pkey checks type and curve against alg */
    ok = kc_cose_key_from_pkey(pkey, alg, &tmp) == KC_OK;
    kc_cose_key_free(&tmp);
    return ok;
}

int kc_verify_signature(EVP_PKEY *pkey, int alg, const uint8_t *msg, size_t msg_len,
                        const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *ctx;
    const EVP_MD *md;
    EVP_PKEY_CTX *pctx = NULL;
    int ok;

    if (pkey == NULL || msg == NULL || (sig == NULL && sig_len != 0))
        return KC_ERR_INVALID_ARG;
    if (!kc_cose_alg_is_signature(alg) || !key_fits_alg(pkey, alg))
        return KC_ERR_INVALID_ARG;
    if (sig_len == 0)
        return KC_ERR_VERIFY;
    if (alg == KC_COSE_EDDSA) {
        if (sig_len != ED25519_SIG_LEN)
            return KC_ERR_VERIFY;
        md = NULL; /* Ed25519 hashes internally */
    } else {
        md = EVP_sha256();
    }
    if ((ctx = EVP_MD_CTX_new()) == NULL)
        return KC_ERR_NOMEM;
    ok = EVP_DigestVerifyInit(ctx, &pctx, md, NULL, pkey) == 1;
    if (ok && alg == KC_COSE_RS256)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
    if (ok)
        ok = EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error(); /* a failed verify leaves errors queued */
    return ok ? KC_OK : KC_ERR_VERIFY;
}

/* authData || clientDataHash, malloc'd */
static uint8_t *signed_message(const uint8_t *auth_data, size_t len, const uint8_t *cdh,
                               size_t *out_len)
{
    uint8_t *m = OPENSSL_malloc(len + KC_CLIENT_DATA_HASH_LEN);

    if (m == NULL)
        return NULL;
    memcpy(m, auth_data, len);
    memcpy(m + len, cdh, KC_CLIENT_DATA_HASH_LEN);
    *out_len = len + KC_CLIENT_DATA_HASH_LEN;
    return m;
}

/* ------------------------------------------------------- common checks */

static int check_rp_id(const struct kc_authdata *ad, const char *rp_id, struct kc_verify_result *r)
{
    uint8_t h[KC_AD_RPID_HASH_LEN];

    if (kc_sha256((const uint8_t *)rp_id, strlen(rp_id), h) != KC_OK) {
        why(r, "SHA-256 failed");
        return KC_ERR_CRYPTO;
    }
    if (CRYPTO_memcmp(h, ad->rp_id_hash, sizeof(h)) != 0) {
        why(r, "rpIdHash does not match rp id '%s'", rp_id);
        return KC_ERR_VERIFY;
    }
    return KC_OK;
}

/* Check the CBOR parts of authData (credential key, extensions) for sizes
 * that fit before kc_authdata_parse hands them to libcbor, which would
 * otherwise preallocate whatever a hostile header claims. Structural
 * problems are left for kc_authdata_parse to report. */
static int auth_data_cbor_sizes_ok(const uint8_t *buf, size_t len)
{
    size_t off = KC_AD_MIN_LEN, n = 0, id_len;
    uint8_t flags;

    if (buf == NULL || len < KC_AD_MIN_LEN)
        return 1;
    flags = buf[32];
    if (flags & KC_AD_AT) {
        if (len - off < KC_AAGUID_LEN + 2)
            return 1;
        id_len = (size_t)buf[off + KC_AAGUID_LEN] << 8 | buf[off + KC_AAGUID_LEN + 1];
        off += KC_AAGUID_LEN + 2;
        if (len - off < id_len)
            return 1;
        off += id_len;
        if (off < len) {
            if (kc_cbor_size_check(buf + off, len - off, &n) != KC_OK)
                return 0;
            off += n;
        }
    }
    if ((flags & KC_AD_ED) && off < len && kc_cbor_size_check(buf + off, len - off, NULL) != KC_OK)
        return 0;
    return 1;
}

static int parse_auth_data(const uint8_t *buf, size_t len, struct kc_authdata *ad,
                           struct kc_verify_result *r)
{
    int e = auth_data_cbor_sizes_ok(buf, len) ? kc_authdata_parse(buf, len, ad) : KC_ERR_CBOR;

    if (e != KC_OK) {
        why(r, "authData is malformed (%zu bytes): %s", len, kc_err_name(e));
        return e == KC_ERR_INVALID_ARG ? KC_ERR_INVALID_ARG : KC_ERR_CBOR;
    }
    if (r != NULL) {
        r->flags = ad->flags;
        r->sign_count = ad->sign_count;
    }
    return KC_OK;
}

/* ------------------------------------------------------- attStmt access */

struct att_stmt {
    int have_alg;
    int64_t alg;
    const cbor_item_t *sig;
    const cbor_item_t *x5c;
    const cbor_item_t *ecdaa;
    size_t n_pairs;
};

static int read_att_stmt(const cbor_item_t *map, struct att_stmt *st, struct kc_verify_result *r)
{
    struct cbor_pair *pairs;
    size_t n;

    memset(st, 0, sizeof(*st));
    if (map == NULL || !cbor_isa_map(map) || !cbor_map_is_definite(map)) {
        why(r, "attStmt is not a definite-length CBOR map");
        return KC_ERR_CBOR;
    }
    n = cbor_map_size(map);
    pairs = cbor_map_handle(map);
    st->n_pairs = n;
    for (size_t i = 0; i < n; i++) {
        const cbor_item_t *k = pairs[i].key, *v = pairs[i].value;
        const cbor_item_t **slot = NULL;

        if (!kc_cbor_is_text(k)) {
            why(r, "attStmt key %zu is not a text string", i);
            return KC_ERR_CBOR;
        }
        if (kc_cbor_text_eq(k, "alg")) {
            if (st->have_alg || kc_cbor_int(v, &st->alg) != KC_OK) {
                why(r, "attStmt alg is duplicated or not an integer");
                return KC_ERR_CBOR;
            }
            st->have_alg = 1;
            continue;
        }
        if (kc_cbor_text_eq(k, "sig"))
            slot = &st->sig;
        else if (kc_cbor_text_eq(k, "x5c"))
            slot = &st->x5c;
        else if (kc_cbor_text_eq(k, "ecdaaKeyId"))
            slot = &st->ecdaa;
        if (slot == NULL)
            continue; /* unknown members are ignored */
        if (*slot != NULL) {
            why(r, "attStmt has a duplicated key");
            return KC_ERR_CBOR;
        }
        *slot = v;
    }
    if (st->sig != NULL && !kc_cbor_is_bytes(st->sig)) {
        why(r, "attStmt sig is not a byte string");
        return KC_ERR_CBOR;
    }
    if (st->x5c != NULL) {
        size_t m;

        if (!cbor_isa_array(st->x5c) || !cbor_array_is_definite(st->x5c) ||
            (m = cbor_array_size(st->x5c)) == 0 || m > MAX_X5C) {
            why(r, "attStmt x5c is not an array of 1..%d certificates", MAX_X5C);
            return KC_ERR_CBOR;
        }
        for (size_t i = 0; i < m; i++) {
            if (!kc_cbor_is_bytes(cbor_array_handle(st->x5c)[i])) {
                why(r, "attStmt x5c[%zu] is not a byte string", i);
                return KC_ERR_CBOR;
            }
        }
    }
    return KC_OK;
}

/* ------------------------------------------------------- certificates */

static X509 *load_cert(const cbor_item_t *der_item, struct kc_verify_result *r)
{
    const unsigned char *p = cbor_bytestring_handle(der_item);
    size_t len = cbor_bytestring_length(der_item);
    X509 *x;

    if (len == 0 || len > 16384 || (x = d2i_X509(NULL, &p, (long)len)) == NULL) {
        ERR_clear_error();
        why(r, "attestation certificate is not valid DER X.509");
        return NULL;
    }
    if ((size_t)(p - cbor_bytestring_handle(der_item)) != len) {
        X509_free(x);
        why(r, "attestation certificate has trailing bytes");
        return NULL;
    }
    return x;
}

static void cert_subject(X509 *x, struct kc_verify_result *r)
{
    BIO *b;
    int n;

    if (r == NULL)
        return;
    r->cert_subject[0] = '\0';
    if ((b = BIO_new(BIO_s_mem())) == NULL)
        return;
    if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_read(b, r->cert_subject, (int)sizeof(r->cert_subject) - 1);
        r->cert_subject[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
}

static int subject_has(X509 *x, int nid, const char *want)
{
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, nid, -1);
    const ASN1_STRING *s;

    if (i < 0)
        return 0;
    if (want == NULL)
        return 1;
    s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    return s != NULL && (size_t)ASN1_STRING_length(s) == strlen(want) &&
           memcmp(ASN1_STRING_get0_data(s), want, strlen(want)) == 0;
}

/* Packed attestation certificate requirements (WebAuthn L2 8.2.1). */
static int check_packed_cert(X509 *x, const struct kc_authdata *ad, struct kc_verify_result *r)
{
    ASN1_OBJECT *oid;
    X509_EXTENSION *ext;
    const ASN1_OCTET_STRING *val;
    const unsigned char *p;
    ASN1_OCTET_STRING *inner;
    int idx;

    if (X509_get_version(x) != X509_VERSION_3) {
        why(r, "attestation certificate is not version 3");
        return KC_ERR_VERIFY;
    }
    if (X509_check_ca(x) != 0 || (X509_get_extension_flags(x) & EXFLAG_CA)) {
        why(r, "attestation certificate is a CA certificate");
        return KC_ERR_VERIFY;
    }
    if (!subject_has(x, NID_countryName, NULL) || !subject_has(x, NID_organizationName, NULL) ||
        !subject_has(x, NID_organizationalUnitName, "Authenticator Attestation") ||
        !subject_has(x, NID_commonName, NULL)) {
        why(r, "attestation certificate subject lacks C, O, CN or OU=Authenticator Attestation");
        return KC_ERR_VERIFY;
    }
    if ((oid = OBJ_txt2obj(OID_FIDO_GEN_CE_AAGUID, 1)) == NULL) {
        why(r, "OpenSSL could not build the aaguid OID");
        return KC_ERR_CRYPTO;
    }
    idx = X509_get_ext_by_OBJ(x, oid, -1);
    ASN1_OBJECT_free(oid);
    if (idx < 0)
        return KC_OK; /* optional */
    ext = X509_get_ext(x, idx);
    if (X509_EXTENSION_get_critical(ext)) {
        why(r, "attestation certificate aaguid extension must not be critical");
        return KC_ERR_VERIFY;
    }
    /* extnValue holds an OCTET STRING of the 16 aaguid bytes */
    val = X509_EXTENSION_get_data(ext);
    p = ASN1_STRING_get0_data(val);
    inner = d2i_ASN1_OCTET_STRING(NULL, &p, ASN1_STRING_length(val));
    if (inner == NULL || ASN1_STRING_length(inner) != KC_AAGUID_LEN ||
        p != ASN1_STRING_get0_data(val) + ASN1_STRING_length(val)) {
        ASN1_OCTET_STRING_free(inner);
        ERR_clear_error();
        why(r, "attestation certificate aaguid extension is malformed");
        return KC_ERR_VERIFY;
    }
    if (CRYPTO_memcmp(ASN1_STRING_get0_data(inner), ad->aaguid, KC_AAGUID_LEN) != 0) {
        ASN1_OCTET_STRING_free(inner);
        why(r, "attestation certificate aaguid does not match the authData aaguid");
        return KC_ERR_VERIFY;
    }
    ASN1_OCTET_STRING_free(inner);
    return KC_OK;
}

/* Each certificate in x5c must be signed by the next one. Whether the last
 * one is trusted is the caller's policy; this only refuses a chain that
 * does not hang together. */
static int check_chain_links(const cbor_item_t *x5c, X509 *leaf, struct kc_verify_result *r)
{
    size_t n = cbor_array_size(x5c);
    X509 *child = leaf, *parent = NULL;
    int e = KC_OK;

    for (size_t i = 1; i < n && e == KC_OK; i++) {
        if ((parent = load_cert(cbor_array_handle(x5c)[i], r)) == NULL) {
            e = KC_ERR_VERIFY;
            break;
        }
        if (X509_get0_pubkey(parent) == NULL || X509_verify(child, X509_get0_pubkey(parent)) != 1) {
            ERR_clear_error();
            why(r, "x5c[%zu] is not signed by x5c[%zu]", i - 1, i);
            e = KC_ERR_VERIFY;
        }
        if (child != leaf)
            X509_free(child);
        child = parent;
    }
    if (child != leaf)
        X509_free(child);
    return e;
}

/* ------------------------------------------------------- formats */

static int verify_packed(const struct att_stmt *st, const struct kc_authdata *ad,
                         const uint8_t *msg, size_t msg_len, struct kc_verify_result *r)
{
    X509 *leaf;
    EVP_PKEY *pub;
    int e;

    if (st->ecdaa != NULL) {
        why(r, "packed attestation with ECDAA is not supported");
        return KC_ERR_UNSUPPORTED;
    }
    if (!st->have_alg || st->sig == NULL) {
        why(r, "packed attStmt lacks alg or sig");
        return KC_ERR_CBOR;
    }
    if (st->x5c == NULL) {
        /* self attestation: the credential key signs */
        if (st->alg != r->cred_key.alg) {
            why(r, "packed self attestation alg %lld does not match the credential key alg %d",
                (long long)st->alg, r->cred_key.alg);
            return KC_ERR_VERIFY;
        }
        if (kc_verify_signature(r->cred_key.pkey, r->cred_key.alg, msg, msg_len,
                                cbor_bytestring_handle(st->sig),
                                cbor_bytestring_length(st->sig)) != KC_OK) {
            why(r, "packed self attestation signature does not verify");
            return KC_ERR_VERIFY;
        }
        r->att_type = KC_ATT_SELF;
        return KC_OK;
    }
    if ((leaf = load_cert(cbor_array_handle(st->x5c)[0], r)) == NULL)
        return KC_ERR_VERIFY;
    cert_subject(leaf, r);
    if ((e = check_packed_cert(leaf, ad, r)) != KC_OK ||
        (e = check_chain_links(st->x5c, leaf, r)) != KC_OK)
        goto done;
    pub = X509_get0_pubkey(leaf);
    if (!kc_cose_alg_is_signature((int)st->alg) || pub == NULL ||
        !key_fits_alg(pub, (int)st->alg)) {
        why(r, "packed attStmt alg %lld (%s) does not match the certificate's key",
            (long long)st->alg, kc_cose_alg_name((int)st->alg));
        e = KC_ERR_VERIFY;
        goto done;
    }
    if (kc_verify_signature(pub, (int)st->alg, msg, msg_len, cbor_bytestring_handle(st->sig),
                            cbor_bytestring_length(st->sig)) != KC_OK) {
        why(r, "packed attestation signature does not verify with the x5c certificate");
        e = KC_ERR_VERIFY;
        goto done;
    }
    r->att_type = KC_ATT_BASIC;
    e = KC_OK;
done:
    X509_free(leaf);
    return e;
}

/* The uncompressed 65-byte point of a P-256 key. */
static int p256_point(EVP_PKEY *pkey, uint8_t out[P256_POINT_LEN])
{
    size_t n = 0;

    if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out,
                                        P256_POINT_LEN, &n) != 1 ||
        n != P256_POINT_LEN || out[0] != 0x04)
        return -1;
    return 0;
}

static int verify_fido_u2f(const struct att_stmt *st, const struct kc_authdata *ad,
                           const uint8_t *cdh, struct kc_verify_result *r)
{
    uint8_t point[P256_POINT_LEN];
    uint8_t *vdata = NULL;
    size_t vlen, off = 0;
    X509 *cert;
    EVP_PKEY *pub;
    int e = KC_ERR_VERIFY;

    if (st->sig == NULL || st->x5c == NULL) {
        why(r, "fido-u2f attStmt lacks sig or x5c");
        return KC_ERR_CBOR;
    }
    if (cbor_array_size(st->x5c) != 1) {
        why(r, "fido-u2f x5c must hold exactly one certificate, has %zu", cbor_array_size(st->x5c));
        return KC_ERR_VERIFY;
    }
    if (r->cred_key.alg != KC_COSE_ES256 || p256_point(r->cred_key.pkey, point) != 0) {
        why(r, "fido-u2f credential key must be ES256 on P-256, is %s",
            kc_cose_alg_name(r->cred_key.alg));
        return KC_ERR_VERIFY;
    }
    if ((cert = load_cert(cbor_array_handle(st->x5c)[0], r)) == NULL)
        return KC_ERR_VERIFY;
    cert_subject(cert, r);
    pub = X509_get0_pubkey(cert);
    if (pub == NULL || !key_fits_alg(pub, KC_COSE_ES256)) {
        why(r, "fido-u2f attestation certificate key is not P-256");
        goto done;
    }
    /* 0x00 || rpIdHash || clientDataHash || credId || publicKey */
    vlen = 1 + KC_AD_RPID_HASH_LEN + KC_CLIENT_DATA_HASH_LEN + ad->cred_id_len + P256_POINT_LEN;
    if ((vdata = OPENSSL_malloc(vlen)) == NULL) {
        why(r, "out of memory");
        e = KC_ERR_NOMEM;
        goto done;
    }
    vdata[off++] = 0x00;
    memcpy(vdata + off, ad->rp_id_hash, KC_AD_RPID_HASH_LEN);
    off += KC_AD_RPID_HASH_LEN;
    memcpy(vdata + off, cdh, KC_CLIENT_DATA_HASH_LEN);
    off += KC_CLIENT_DATA_HASH_LEN;
    memcpy(vdata + off, ad->cred_id, ad->cred_id_len);
    off += ad->cred_id_len;
    memcpy(vdata + off, point, P256_POINT_LEN);
    if (kc_verify_signature(pub, KC_COSE_ES256, vdata, vlen, cbor_bytestring_handle(st->sig),
                            cbor_bytestring_length(st->sig)) != KC_OK) {
        why(r, "fido-u2f attestation signature does not verify");
        goto done;
    }
    r->att_type = KC_ATT_BASIC;
    e = KC_OK;
done:
    OPENSSL_free(vdata);
    X509_free(cert);
    return e;
}

int kc_verify_attestation_item(const char *fmt, const uint8_t *auth_data, size_t auth_data_len,
                               const cbor_item_t *att_stmt,
                               const uint8_t client_data_hash[KC_CLIENT_DATA_HASH_LEN],
                               const char *expected_rp_id, struct kc_verify_result *out)
{
    struct kc_authdata ad;
    struct att_stmt st;
    char kwhy[160];
    uint8_t *msg = NULL;
    size_t msg_len = 0;
    int e;

    if (out == NULL)
        return KC_ERR_INVALID_ARG;
    kc_verify_result_init(out);
    if (fmt == NULL || auth_data == NULL || client_data_hash == NULL || expected_rp_id == NULL) {
        why(out, "missing argument");
        return KC_ERR_INVALID_ARG;
    }
    if (strcmp(fmt, "packed") != 0 && strcmp(fmt, "fido-u2f") != 0 && strcmp(fmt, "none") != 0) {
        why(out, "attestation format '%.64s' is not supported", fmt);
        return KC_ERR_UNSUPPORTED;
    }
    if ((e = parse_auth_data(auth_data, auth_data_len, &ad, out)) != KC_OK)
        return e;
    if ((e = check_rp_id(&ad, expected_rp_id, out)) != KC_OK)
        return e;
    if (!(ad.flags & KC_AD_UP)) {
        why(out, "UP flag not set in authData (flags 0x%02x)", ad.flags);
        return KC_ERR_VERIFY;
    }
    if (!(ad.flags & KC_AD_AT) || !ad.has_attested) {
        why(out, "AT flag not set: authData has no attested credential data");
        return KC_ERR_VERIFY;
    }
    memcpy(out->aaguid, ad.aaguid, KC_AAGUID_LEN);
    if (ad.cred_id_len > sizeof(out->cred_id)) {
        why(out, "credential id too long (%zu bytes)", ad.cred_id_len);
        return KC_ERR_CBOR;
    }
    memcpy(out->cred_id, ad.cred_id, ad.cred_id_len);
    out->cred_id_len = ad.cred_id_len;
    e = kc_cose_decode_reason(ad.cose_key, ad.cose_key_len, &out->cred_key, NULL, kwhy,
                              sizeof(kwhy));
    if (e != KC_OK) {
        why(out, "credential public key: %s", kwhy);
        return e;
    }
    if (!kc_cose_alg_is_signature(out->cred_key.alg)) {
        why(out, "credential public key alg %d is not a signature algorithm", out->cred_key.alg);
        e = KC_ERR_VERIFY;
        goto fail;
    }
    if ((e = read_att_stmt(att_stmt, &st, out)) != KC_OK)
        goto fail;

    if (strcmp(fmt, "none") == 0) {
        if (st.n_pairs != 0) {
            why(out, "fmt none requires an empty attStmt, it has %zu members", st.n_pairs);
            e = KC_ERR_VERIFY;
            goto fail;
        }
        out->att_type = KC_ATT_NONE;
    } else if (strcmp(fmt, "fido-u2f") == 0) {
        if ((e = verify_fido_u2f(&st, &ad, client_data_hash, out)) != KC_OK)
            goto fail;
    } else {
        if ((msg = signed_message(auth_data, auth_data_len, client_data_hash, &msg_len)) == NULL) {
            why(out, "out of memory");
            e = KC_ERR_NOMEM;
            goto fail;
        }
        e = verify_packed(&st, &ad, msg, msg_len, out);
        OPENSSL_free(msg);
        if (e != KC_OK)
            goto fail;
    }
    why(out, "ok");
    return KC_OK;
fail:
    /* a failed statement must not hand out a usable key */
    kc_cose_key_free(&out->cred_key);
    return e;
}

int kc_verify_attestation(const char *fmt, const uint8_t *auth_data, size_t auth_data_len,
                          const uint8_t *att_stmt_cbor, size_t att_stmt_len,
                          const uint8_t client_data_hash[KC_CLIENT_DATA_HASH_LEN],
                          const char *expected_rp_id, struct kc_verify_result *out)
{
    struct cbor_load_result res;
    cbor_item_t *item;
    int e;

    if (out == NULL)
        return KC_ERR_INVALID_ARG;
    kc_verify_result_init(out);
    if (att_stmt_cbor == NULL) {
        why(out, "missing attStmt");
        return KC_ERR_INVALID_ARG;
    }
    if (kc_cbor_size_check(att_stmt_cbor, att_stmt_len, NULL) != KC_OK) {
        why(out, "attStmt is not one well-formed CBOR item");
        return KC_ERR_CBOR;
    }
    item = cbor_load(att_stmt_cbor, att_stmt_len, &res);
    if (item == NULL || res.error.code != CBOR_ERR_NONE || res.read != att_stmt_len) {
        if (item != NULL)
            cbor_decref(&item);
        why(out, "attStmt is not one well-formed CBOR item");
        return KC_ERR_CBOR;
    }
    e = kc_verify_attestation_item(fmt, auth_data, auth_data_len, item, client_data_hash,
                                   expected_rp_id, out);
    cbor_decref(&item);
    return e;
}

/* ------------------------------------------------------- assertions */

int kc_verify_assertion_pkey(EVP_PKEY *pkey, int alg, const uint8_t *auth_data,
                             size_t auth_data_len, const uint8_t *sig, size_t sig_len,
                             const uint8_t client_data_hash[KC_CLIENT_DATA_HASH_LEN],
                             const char *expected_rp_id, bool require_up, bool require_uv,
                             uint32_t prev_sign_count, uint32_t *new_sign_count,
                             struct kc_verify_result *out)
{
    struct kc_verify_result local;
    struct kc_verify_result *r = out;
    struct kc_authdata ad;
    uint8_t *msg;
    size_t msg_len = 0;
    int e;

    if (r == NULL) {
        r = &local;
        memset(r, 0, sizeof(*r));
    } else {
        snprintf(r->reason, sizeof(r->reason), "not verified");
    }
    if (pkey == NULL || auth_data == NULL || (sig == NULL && sig_len != 0) ||
        client_data_hash == NULL || expected_rp_id == NULL) {
        why(r, "missing argument");
        return KC_ERR_INVALID_ARG;
    }
    if (!kc_cose_alg_is_signature(alg) || !key_fits_alg(pkey, alg)) {
        why(r, "credential key does not fit alg %d (%s)", alg, kc_cose_alg_name(alg));
        return KC_ERR_INVALID_ARG;
    }
    if ((e = parse_auth_data(auth_data, auth_data_len, &ad, r)) != KC_OK)
        return e;
    if ((e = check_rp_id(&ad, expected_rp_id, r)) != KC_OK)
        return e;
    if (require_up && !(ad.flags & KC_AD_UP)) {
        why(r, "UP flag not set in authData (flags 0x%02x)", ad.flags);
        return KC_ERR_VERIFY;
    }
    if (require_uv && !(ad.flags & KC_AD_UV)) {
        why(r, "UV flag not set in authData (flags 0x%02x)", ad.flags);
        return KC_ERR_VERIFY;
    }
    if ((msg = signed_message(auth_data, auth_data_len, client_data_hash, &msg_len)) == NULL) {
        why(r, "out of memory");
        return KC_ERR_NOMEM;
    }
    e = kc_verify_signature(pkey, alg, msg, msg_len, sig, sig_len);
    OPENSSL_free(msg);
    if (e != KC_OK) {
        why(r, "assertion signature does not verify (%s)", kc_cose_alg_name(alg));
        return KC_ERR_VERIFY;
    }
    /* a cloned authenticator shows up as a counter that does not move on */
    if ((prev_sign_count != 0 || ad.sign_count != 0) && ad.sign_count <= prev_sign_count) {
        why(r, "signCount did not increase (%u -> %u)", (unsigned)prev_sign_count,
            (unsigned)ad.sign_count);
        return KC_ERR_VERIFY;
    }
    if (new_sign_count != NULL)
        *new_sign_count = ad.sign_count;
    why(r, "ok");
    return KC_OK;
}

int kc_verify_assertion(const struct kc_cose_key *key, const uint8_t *auth_data,
                        size_t auth_data_len, const uint8_t *sig, size_t sig_len,
                        const uint8_t client_data_hash[KC_CLIENT_DATA_HASH_LEN],
                        const char *expected_rp_id, bool require_up, bool require_uv,
                        uint32_t prev_sign_count, uint32_t *new_sign_count,
                        struct kc_verify_result *out)
{
    if (key == NULL || key->pkey == NULL) {
        if (out != NULL)
            why(out, "no credential key");
        return KC_ERR_INVALID_ARG;
    }
    return kc_verify_assertion_pkey(key->pkey, key->alg, auth_data, auth_data_len, sig, sig_len,
                                    client_data_hash, expected_rp_id, require_up, require_uv,
                                    prev_sign_count, new_sign_count, out);
}
