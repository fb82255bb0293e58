/* authenticatorLargeBlobs on the platform side (see ctaphid/largeblob.h):
 * fragmented reads and writes of the serialized large-blob array with its
 * integrity hash, and per-credential blobs under a largeBlobKey. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/ctap2_int.h"
#include "ctaphid/largeblob.h"
#include "ctaphid/largeblob_int.h"
#include "ctaphid/pin.h"
#include "ctaphid/pin_proto.h"
#include "util/err.h"
#include "util/rand.h"

#define AUTH_MSG_LEN 70

size_t kc_largeblob_max_fragment(const struct kc_info *info)
{
    uint64_t m = info != NULL && info->max_msg_size > 0 ? info->max_msg_size : 1024;

    if (m > KC_CTAP2_RESP_MAX)
        m = KC_CTAP2_RESP_MAX;
    return m > 64 ? (size_t)m - 64 : 0;
}

static int sha256(const uint8_t *p, size_t len, uint8_t out[32])
{
    unsigned int n = 0;

    return EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32 ? KC_OK : KC_ERR_CRYPTO;
}

/* ---- requests and responses ------------------------------------------- */

static int encode_map(cbor_item_t *m, uint8_t **buf, size_t *len)
{
    int r = kc_cbor_serialize(m, buf, len);

    cbor_decref(&m);
    return r;
}

int kc_largeblob_encode_get(uint64_t want, uint64_t offset, uint8_t **buf, size_t *len)
{
    cbor_item_t *m;

    if (buf == NULL || len == NULL || want > INT64_MAX || offset > UINT32_MAX)
        return KC_ERR_INVALID_ARG;
    if ((m = cbor_new_definite_map(2)) == NULL)
        return KC_ERR_NOMEM;
    if (kc_cbor_map_add_int(m, 1, kc_cbor_new_int((int64_t)want)) != KC_OK ||
        kc_cbor_map_add_int(m, 3, kc_cbor_new_int((int64_t)offset)) != KC_OK) {
        cbor_decref(&m);
        return KC_ERR_NOMEM;
    }
    return encode_map(m, buf, len);
}

int kc_largeblob_encode_set(const uint8_t *frag, size_t frag_len, uint64_t offset, uint64_t total,
                            const uint8_t *param, size_t param_len, int protocol, uint8_t **buf,
                            size_t *len)
{
    cbor_item_t *m;
    bool ok;

    if (buf == NULL || len == NULL || (frag == NULL && frag_len > 0) || offset > UINT32_MAX ||
        total > UINT32_MAX || (param == NULL && param_len > 0))
        return KC_ERR_INVALID_ARG;
    if ((m = cbor_new_definite_map(5)) == NULL)
        return KC_ERR_NOMEM;
    ok = kc_cbor_map_add_int(m, 2, kc_cbor_new_bytes(frag, frag_len)) == KC_OK &&
         kc_cbor_map_add_int(m, 3, kc_cbor_new_int((int64_t)offset)) == KC_OK;
    /* length: only with the first fragment (6.10.2) */
    if (ok && offset == 0)
        ok = kc_cbor_map_add_int(m, 4, kc_cbor_new_int((int64_t)total)) == KC_OK;
    if (ok && param != NULL)
        ok = kc_cbor_map_add_int(m, 5, kc_cbor_new_bytes(param, param_len)) == KC_OK &&
             kc_cbor_map_add_int(m, 6, kc_cbor_new_int(protocol)) == KC_OK;
    if (!ok) {
        cbor_decref(&m);
        return KC_ERR_NOMEM;
    }
    return encode_map(m, buf, len);
}

int kc_largeblob_decode_get(const uint8_t *body, size_t len, uint8_t *out, size_t cap,
                            size_t *out_len)
{
    cbor_item_t *m = NULL, *v;
    int r = KC_ERR_CBOR;

    if (out == NULL || out_len == NULL || (body == NULL && len > 0))
        return KC_ERR_INVALID_ARG;
    if (body == NULL || kc_cbor_load(body, len, &m) != KC_OK)
        return KC_ERR_CBOR;
    v = cbor_isa_map(m) ? kc_cbor_map_get_int(m, 1) : NULL;
    if (kc_cbor_is_bytes(v)) {
        *out_len = cbor_bytestring_length(v);
        r = *out_len <= cap ? KC_OK : KC_ERR_TOO_LARGE;
        if (r == KC_OK && *out_len > 0)
            memcpy(out, cbor_bytestring_handle(v), *out_len);
    }
    cbor_decref(&m);
    return r;
}

int kc_largeblob_auth_message(uint64_t offset, const uint8_t *frag, size_t frag_len,
                              uint8_t out[AUTH_MSG_LEN])
{
    if (offset > UINT32_MAX || (frag == NULL && frag_len > 0))
        return KC_ERR_INVALID_ARG;
    memset(out, 0xff, 32);
    out[32] = 0x0c;
    out[33] = 0x00;
    for (int i = 0; i < 4; i++)
        out[34 + i] = (uint8_t)(offset >> (8 * i));
    return sha256(frag, frag_len, out + 38);
}

/* ---- the serialized array --------------------------------------------- */

int kc_largeblob_check(const uint8_t *serialized, size_t len)
{
    uint8_t h[32];
    cbor_item_t *arr = NULL;
    int r;

    if (serialized == NULL || len < KC_LARGEBLOB_HASH_LEN + 1)
        return KC_ERR_CBOR;
    if ((r = sha256(serialized, len - KC_LARGEBLOB_HASH_LEN, h)) != KC_OK)
        return r;
    if (CRYPTO_memcmp(h, serialized + len - KC_LARGEBLOB_HASH_LEN, KC_LARGEBLOB_HASH_LEN) != 0)
        return KC_ERR_VERIFY;
    if (kc_cbor_load(serialized, len - KC_LARGEBLOB_HASH_LEN, &arr) != KC_OK)
        return KC_ERR_CBOR;
    r = cbor_isa_array(arr) ? KC_OK : KC_ERR_CBOR;
    cbor_decref(&arr);
    return r;
}

int kc_largeblob_serialize(const uint8_t *cbor_array, size_t len, uint8_t **out, size_t *out_len)
{
    cbor_item_t *arr = NULL;
    uint8_t h[32], *p;
    int r;

    if (cbor_array == NULL || out == NULL || out_len == NULL || len > KC_LARGEBLOB_READ_MAX)
        return KC_ERR_INVALID_ARG;
    if (kc_cbor_load(cbor_array, len, &arr) != KC_OK)
        return KC_ERR_CBOR;
    r = cbor_isa_array(arr) ? KC_OK : KC_ERR_CBOR;
    cbor_decref(&arr);
    if (r != KC_OK)
        return r;
    if ((r = sha256(cbor_array, len, h)) != KC_OK)
        return r;
    if ((p = malloc(len + KC_LARGEBLOB_HASH_LEN)) == NULL)
        return KC_ERR_NOMEM;
    memcpy(p, cbor_array, len);
    memcpy(p + len, h, KC_LARGEBLOB_HASH_LEN);
    *out = p;
    *out_len = len + KC_LARGEBLOB_HASH_LEN;
    return KC_OK;
}

static int need_info(struct kc_dev *d, const struct kc_info **info, struct kc_info *store)
{
    int r;

    if (*info != NULL)
        return KC_OK;
    if ((r = kc_ctap2_get_info(d, store)) != KC_OK)
        return r;
    *info = store;
    return KC_OK;
}

int kc_largeblob_get_array(struct kc_dev *d, const struct kc_info *info, uint8_t **out,
                           size_t *out_len)
{
    struct kc_info store;
    uint8_t *acc = NULL, *req = NULL, *body = NULL, *grown, *frag = NULL;
    size_t frag_max, have = 0, req_len = 0, body_len = 0, frag_len = 0;
    int r;

    if (d == NULL || out == NULL || out_len == NULL)
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    *out_len = 0;
    if ((r = need_info(d, &info, &store)) != KC_OK)
        return r;
    if ((frag_max = kc_largeblob_max_fragment(info)) == 0)
        return KC_ERR_UNSUPPORTED;
    if ((frag = malloc(frag_max)) == NULL)
        return KC_ERR_NOMEM;
    for (;;) {
        if ((r = kc_largeblob_encode_get(frag_max, have, &req, &req_len)) != KC_OK)
            break;
        r = kc_ctap2_call(d, KC_CTAP2_LARGE_BLOBS, req, req_len, &body, &body_len);
        free(req);
        req = NULL;
        if (r != KC_OK)
            break;
        /* more than asked (KC_ERR_TOO_LARGE), or past what we accept */
        if ((r = kc_largeblob_decode_get(body, body_len, frag, frag_max, &frag_len)) != KC_OK)
            break;
        if (have + frag_len > KC_LARGEBLOB_READ_MAX) {
            r = KC_ERR_TOO_LARGE;
            break;
        }
        if (frag_len > 0) {
            if ((grown = realloc(acc, have + frag_len)) == NULL) {
                r = KC_ERR_NOMEM;
                break;
            }
            acc = grown;
            memcpy(acc + have, frag, frag_len);
            have += frag_len;
        }
        free(body);
        body = NULL;
        if (frag_len < frag_max)
            break;
    }
    free(body);
    free(frag);
    if (r == KC_OK && (r = kc_largeblob_check(acc, have)) == KC_OK) {
        *out = acc;
        *out_len = have - KC_LARGEBLOB_HASH_LEN;
        return KC_OK;
    }
    free(acc);
    return r;
}

int kc_largeblob_set_array(struct kc_dev *d, const struct kc_info *info,
                           const struct kc_pin_token *tok, const uint8_t *cbor_array, size_t len)
{
    struct kc_info store;
    uint8_t *ser = NULL, *req = NULL, *body = NULL, msg[AUTH_MSG_LEN], param[KC_PINP_AUTH_MAX];
    size_t ser_len = 0, frag_max, req_len = 0, body_len = 0, param_len = 0, k;
    int r;

    if (d == NULL || cbor_array == NULL)
        return KC_ERR_INVALID_ARG;
    if ((r = need_info(d, &info, &store)) != KC_OK)
        return r;
    if ((frag_max = kc_largeblob_max_fragment(info)) == 0)
        return KC_ERR_UNSUPPORTED;
    if ((r = kc_largeblob_serialize(cbor_array, len, &ser, &ser_len)) != KC_OK)
        return r;
    if (info->max_serialized_large_blob_array > 0 &&
        ser_len > info->max_serialized_large_blob_array) {
        free(ser);
        return KC_ERR_TOO_LARGE;
    }
    for (size_t off = 0; off < ser_len && r == KC_OK; off += k) {
        k = ser_len - off < frag_max ? ser_len - off : frag_max;
        param_len = 0;
        if (tok != NULL) {
            param_len = sizeof(param);
            if ((r = kc_largeblob_auth_message(off, ser + off, k, msg)) != KC_OK ||
                (r = kc_pin_auth_param(tok, msg, sizeof(msg), param, &param_len)) != KC_OK)
                break;
        }
        if ((r = kc_largeblob_encode_set(ser + off, k, off, ser_len, tok != NULL ? param : NULL,
                                         param_len, tok != NULL ? tok->protocol : 0, &req,
                                         &req_len)) != KC_OK)
            break;
        r = kc_ctap2_call(d, KC_CTAP2_LARGE_BLOBS, req, req_len, &body, &body_len);
        free(req);
        req = NULL;
        free(body);
        body = NULL;
    }
    OPENSSL_cleanse(param, sizeof(param));
    free(ser);
    return r;
}

/* ---- one credential's blob -------------------------------------------- */

int kc_largeblob_deflate(const uint8_t *p, size_t len, uint8_t **out, size_t *out_len)
{
    z_stream zs;
    uLong bound;
    uint8_t *q;
    int zr;

    if ((p == NULL && len > 0) || out == NULL || out_len == NULL || len > KC_LARGEBLOB_ORIG_MAX)
        return KC_ERR_INVALID_ARG;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return KC_ERR_NOMEM;
    bound = deflateBound(&zs, (uLong)len);
    if ((q = malloc(bound > 0 ? bound : 1)) == NULL) {
        deflateEnd(&zs);
        return KC_ERR_NOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)p;
    zs.avail_in = (uInt)len;
    zs.next_out = q;
    zs.avail_out = (uInt)bound;
    /* one call: deflateBound guarantees room for the whole stream */
    zr = deflate(&zs, Z_FINISH);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    if (zr != Z_STREAM_END) {
        OPENSSL_cleanse(q, bound);
        free(q);
        return KC_ERR_NOMEM;
    }
    *out = q;
    return KC_OK;
}

/* One inflate pass with zlib's windowBits wbits (-15 raw, 15 RFC 1950)
 * into q (want bytes). A byte past want goes to a spare and means the
 * stream is longer than origSize. */
static int inflate_pass(const uint8_t *z, size_t zlen, size_t want, uint8_t *q, int wbits,
                        char *why, size_t why_cap)
{
    z_stream zs;
    uint8_t spare;
    bool past = false;
    int zr, r;

    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, wbits) != Z_OK)
        return kcu_set_err_rc(why, why_cap, KC_ERR_NOMEM, "zlib cannot start an inflater");
    zs.next_in = (Bytef *)(uintptr_t)z;
    zs.avail_in = (uInt)zlen;
    zs.next_out = q;
    zs.avail_out = (uInt)want;
    for (;;) {
        zr = inflate(&zs, Z_NO_FLUSH);
        if (zr == Z_STREAM_END || zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_MEM_ERROR)
            break;
        if (zs.avail_out == 0) {
            if (past)
                break; /* a byte went to the spare: more than origSize */
            past = true;
            zs.next_out = &spare;
            zs.avail_out = 1;
            continue;
        }
        if (zs.avail_in == 0 || zr != Z_OK)
            break; /* input used up before the final block ended */
    }
    if (zr == Z_MEM_ERROR)
        r = kcu_set_err_rc(why, why_cap, KC_ERR_NOMEM, "zlib ran out of memory inflating the blob");
    else if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT)
        r = kcu_set_err_rc(why, why_cap, KC_ERR_CBOR, "the DEFLATE stream is corrupt (zlib: %s)",
                           zr == Z_NEED_DICT ? "needs a preset dictionary"
                           : zs.msg != NULL  ? zs.msg
                                             : "data error");
    else if (zs.total_out > want)
        r = kcu_set_err_rc(why, why_cap, KC_ERR_TOO_LARGE,
                           "the DEFLATE stream inflates to more than origSize (%zu bytes)", want);
    else if (zr != Z_STREAM_END)
        r = kcu_set_err_rc(why, why_cap, KC_ERR_CBOR,
                           "the DEFLATE stream is truncated: %zu bytes end before its final block",
                           zlen);
    else if (zs.total_out != want)
        r = kcu_set_err_rc(why, why_cap, KC_ERR_VERIFY,
                           "the DEFLATE stream inflates to %lu bytes but origSize says %zu",
                           (unsigned long)zs.total_out, want);
    else if (zs.avail_in != 0)
        r = kcu_set_err_rc(why, why_cap, KC_ERR_CBOR,
                           "%u bytes follow the DEFLATE stream's final block", zs.avail_in);
    else
        r = KC_OK;
    inflateEnd(&zs);
    return r;
}

/* RFC 1950's two header bytes: deflate with a window of at most 32 KiB,
 * no preset dictionary, and the check bits right. */
static bool zlib_header(const uint8_t *z, size_t zlen)
{
    return zlen >= 2 && (z[0] & 0x0f) == 8 && (z[0] >> 4) <= 7 && (z[1] & 0x20) == 0 &&
           ((unsigned)z[0] << 8 | z[1]) % 31 == 0;
}

int kc_largeblob_inflate(const uint8_t *z, size_t zlen, uint64_t orig_size, uint8_t **out,
                         char *why, size_t why_cap)
{
    uint8_t *q;
    int r;

    if ((z == NULL && zlen > 0) || out == NULL)
        return KC_ERR_INVALID_ARG;
    if (why != NULL && why_cap > 0)
        why[0] = '\0';
    /* origSize comes from the card: never allocate more than the cap */
    if (orig_size > KC_LARGEBLOB_ORIG_MAX)
        return kcu_set_err_rc(why, why_cap, KC_ERR_TOO_LARGE,
                              "origSize %llu is larger than kcard accepts (%u bytes)",
                              (unsigned long long)orig_size, KC_LARGEBLOB_ORIG_MAX);
    if (zlen > UINT_MAX)
        return kcu_set_err_rc(why, why_cap, KC_ERR_TOO_LARGE, "the DEFLATE stream is too long");
    if ((q = malloc(orig_size > 0 ? (size_t)orig_size : 1)) == NULL)
        return KC_ERR_NOMEM;
    r = inflate_pass(z, zlen, (size_t)orig_size, q, -MAX_WBITS, why, why_cap);
    /* libfido2 before 1.11 wrote RFC 1950 (zlib-wrapped) blobs; read them
     * too, as it still does (Yubico/libfido2#560) */
    if (r != KC_OK && r != KC_ERR_NOMEM && zlib_header(z, zlen)) {
        char why2[160];

        if (inflate_pass(z, zlen, (size_t)orig_size, q, MAX_WBITS, why2, sizeof(why2)) == KC_OK)
            r = KC_OK;
    }
    if (r != KC_OK) {
        OPENSSL_cleanse(q, (size_t)orig_size);
        free(q);
        return r;
    }
    *out = q;
    return KC_OK;
}

static void blob_ad(uint64_t orig, uint8_t ad[12])
{
    memcpy(ad, "blob", 4);
    for (int i = 0; i < 8; i++)
        ad[4 + i] = (uint8_t)(orig >> (8 * i));
}

/* AES-256-GCM; ct gets len + 16 (tag) bytes when enc, pt len - 16 otherwise. */
static int gcm(bool enc, const uint8_t key[32], const uint8_t nonce[12], const uint8_t ad[12],
               const uint8_t *in, size_t len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    size_t body = enc ? len : len - KC_LARGEBLOB_TAG_LEN;
    int n = 0, ok;

    if (ctx == NULL || body > INT32_MAX)
        ok = 0;
    else
        ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, KC_LARGEBLOB_NONCE_LEN, NULL) == 1 &&
             EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) == 1 &&
             EVP_CipherUpdate(ctx, NULL, &n, ad, 12) == 1 &&
             (body == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)body) == 1) &&
             (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KC_LARGEBLOB_TAG_LEN,
                                         (void *)(in + body)) == 1) &&
             EVP_CipherFinal_ex(ctx, out + body, &n) == 1 &&
             (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KC_LARGEBLOB_TAG_LEN,
                                          out + body) == 1);
    EVP_CIPHER_CTX_free(ctx);
    return ok ? KC_OK : KC_ERR_VERIFY;
}

int kc_largeblob_seal(const uint8_t key[KC_LARGEBLOB_KEY_LEN], const uint8_t *blob, size_t len,
                      uint8_t **entry, size_t *entry_len)
{
    uint8_t nonce[KC_LARGEBLOB_NONCE_LEN], ad[12], *z = NULL, *ct = NULL;
    size_t zlen = 0;
    cbor_item_t *m = NULL;
    int r;

    if (key == NULL || (blob == NULL && len > 0) || entry == NULL || entry_len == NULL ||
        len > KC_LARGEBLOB_ORIG_MAX)
        return KC_ERR_INVALID_ARG;
    if (kcu_random(nonce, sizeof(nonce)) != 0)
        return KC_ERR_CRYPTO;
    if ((r = kc_largeblob_deflate(blob, len, &z, &zlen)) != KC_OK)
        return r;
    blob_ad(len, ad);
    if ((ct = malloc(zlen + KC_LARGEBLOB_TAG_LEN)) == NULL) {
        r = KC_ERR_NOMEM;
        goto out;
    }
    if ((r = gcm(true, key, nonce, ad, z, zlen, ct)) != KC_OK) {
        r = KC_ERR_CRYPTO;
        goto out;
    }
    r = KC_ERR_NOMEM;
    if ((m = cbor_new_definite_map(3)) == NULL ||
        kc_cbor_map_add_int(m, 1, kc_cbor_new_bytes(ct, zlen + KC_LARGEBLOB_TAG_LEN)) != KC_OK ||
        kc_cbor_map_add_int(m, 2, kc_cbor_new_bytes(nonce, sizeof(nonce))) != KC_OK ||
        kc_cbor_map_add_int(m, 3, kc_cbor_new_int((int64_t)len)) != KC_OK)
        goto out;
    r = kc_cbor_serialize(m, entry, entry_len);
out:
    if (m != NULL)
        cbor_decref(&m);
    if (z != NULL) {
        OPENSSL_cleanse(z, zlen);
        free(z);
    }
    free(ct);
    return r;
}

/* Decrypts one array element with key: KC_OK (*z, *zlen: the DEFLATE
 * stream, *size: origSize), 1 when it is not this key's. */
static int decrypt_entry(const cbor_item_t *e, const uint8_t key[32], uint8_t **z, size_t *zlen,
                         uint64_t *size)
{
    const cbor_item_t *ct = cbor_isa_map(e) ? kc_cbor_map_get_int(e, 1) : NULL;
    const cbor_item_t *nonce = cbor_isa_map(e) ? kc_cbor_map_get_int(e, 2) : NULL;
    const cbor_item_t *orig = cbor_isa_map(e) ? kc_cbor_map_get_int(e, 3) : NULL;
    uint8_t ad[12], *p;
    size_t clen;

    /* elements of another shape belong to someone else: skip them (6.10.3) */
    if (!kc_cbor_is_bytes(ct) || !kc_cbor_is_bytes(nonce) || orig == NULL || !cbor_isa_uint(orig) ||
        cbor_bytestring_length(nonce) != KC_LARGEBLOB_NONCE_LEN ||
        (clen = cbor_bytestring_length(ct)) < KC_LARGEBLOB_TAG_LEN)
        return 1;
    /* origSize only feeds the associated data here: nothing is sized by it */
    *size = cbor_get_int(orig);
    if ((p = malloc(clen)) == NULL)
        return KC_ERR_NOMEM;
    blob_ad(*size, ad);
    if (gcm(false, key, cbor_bytestring_handle(nonce), ad, cbor_bytestring_handle(ct), clen, p) !=
        KC_OK) {
        free(p);
        return 1;
    }
    *z = p;
    *zlen = clen - KC_LARGEBLOB_TAG_LEN;
    return KC_OK;
}

/* Opens one array element with key: KC_OK (blob set), 1 when it is not
 * this key's, or an error (why says which) for this key's element whose
 * DEFLATE stream does not inflate to origSize bytes. */
static int open_entry(const cbor_item_t *e, const uint8_t key[32], uint8_t **blob, size_t *blob_len,
                      char *why, size_t why_cap)
{
    uint8_t *z = NULL;
    size_t zlen = 0;
    uint64_t size = 0;
    int r;

    if ((r = decrypt_entry(e, key, &z, &zlen, &size)) != KC_OK)
        return r;
    r = kc_largeblob_inflate(z, zlen, size, blob, why, why_cap);
    OPENSSL_cleanse(z, zlen + KC_LARGEBLOB_TAG_LEN);
    free(z);
    if (r == KC_OK)
        *blob_len = (size_t)size;
    return r;
}

int kc_largeblob_open(const uint8_t *cbor_array, size_t len,
                      const uint8_t key[KC_LARGEBLOB_KEY_LEN], uint8_t **blob, size_t *blob_len,
                      char *why, size_t why_cap)
{
    cbor_item_t *arr = NULL;
    int r = 1;

    if (cbor_array == NULL || key == NULL || blob == NULL || blob_len == NULL)
        return KC_ERR_INVALID_ARG;
    if (why != NULL && why_cap > 0)
        why[0] = '\0';
    if (kc_cbor_load(cbor_array, len, &arr) != KC_OK)
        return kcu_set_err_rc(why, why_cap, KC_ERR_CBOR, "the large-blob array is not CBOR");
    if (!cbor_isa_array(arr)) {
        cbor_decref(&arr);
        return kcu_set_err_rc(why, why_cap, KC_ERR_CBOR,
                              "the large-blob array is not a CBOR array");
    }
    for (size_t i = 0; i < cbor_array_size(arr) && r == 1; i++)
        r = open_entry(cbor_array_handle(arr)[i], key, blob, blob_len, why, why_cap);
    cbor_decref(&arr);
    return r;
}

int kc_largeblob_replace(const uint8_t *cbor_array, size_t len,
                         const uint8_t key[KC_LARGEBLOB_KEY_LEN], const uint8_t *entry,
                         size_t entry_len, uint8_t **out, size_t *out_len)
{
    cbor_item_t *arr = NULL, *fresh = NULL, *add = NULL;
    size_t n;
    int r = KC_ERR_NOMEM;

    if (cbor_array == NULL || key == NULL || out == NULL || out_len == NULL ||
        (entry == NULL && entry_len > 0))
        return KC_ERR_INVALID_ARG;
    if (kc_cbor_load(cbor_array, len, &arr) != KC_OK || !cbor_isa_array(arr)) {
        if (arr != NULL)
            cbor_decref(&arr);
        return KC_ERR_CBOR;
    }
    if (entry != NULL && kc_cbor_load(entry, entry_len, &add) != KC_OK) {
        cbor_decref(&arr);
        return KC_ERR_CBOR;
    }
    n = cbor_array_size(arr);
    if ((fresh = cbor_new_definite_array(n + 1)) == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        cbor_item_t *e = cbor_array_handle(arr)[i];
        uint8_t *z = NULL;
        size_t zlen = 0;
        uint64_t size = 0;
        int o = decrypt_entry(e, key, &z, &zlen, &size);

        if (o == KC_OK) {
            /* this key's old entry, readable or not: dropped, never inflated */
            OPENSSL_cleanse(z, zlen + KC_LARGEBLOB_TAG_LEN);
            free(z);
            continue;
        }
        if (o < 0) {
            r = o;
            goto out;
        }
        if (!cbor_array_push(fresh, e))
            goto out;
    }
    if (add != NULL && !cbor_array_push(fresh, add))
        goto out;
    r = kc_cbor_serialize(fresh, out, out_len);
out:
    if (add != NULL)
        cbor_decref(&add);
    if (fresh != NULL)
        cbor_decref(&fresh);
    cbor_decref(&arr);
    return r;
}
