/* authenticatorLargeBlobs on the platform side (see ctaphid/largeblob.h):
 * fragmented reads and writes of the serialized large-blob array with its
 * integrity hash, and per-credential blobs under a largeBlobKey. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/ctap2_int.h"
#include "ctaphid/largeblob.h"
#include "ctaphid/pin.h"
#include "ctaphid/pin_proto.h"

#define AUTH_MSG_LEN 70
#define STORED_BLOCK_MAX 65535

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

/* Raw DEFLATE of stored blocks: BFINAL/BTYPE byte, LEN, NLEN, data. */
static int deflate_stored(const uint8_t *p, size_t len, uint8_t **out, size_t *out_len)
{
    size_t blocks = len == 0 ? 1 : (len + STORED_BLOCK_MAX - 1) / STORED_BLOCK_MAX;
    size_t n = len + 5 * blocks, o = 0;
    uint8_t *q;

    if ((q = malloc(n)) == NULL)
        return KC_ERR_NOMEM;
    for (size_t b = 0, off = 0; b < blocks; b++) {
        size_t k = len - off < STORED_BLOCK_MAX ? len - off : STORED_BLOCK_MAX;

        q[o++] = b + 1 == blocks ? 0x01 : 0x00;
        q[o++] = (uint8_t)(k & 0xff);
        q[o++] = (uint8_t)(k >> 8);
        q[o++] = (uint8_t)(~k & 0xff);
        q[o++] = (uint8_t)((~k >> 8) & 0xff);
        if (k > 0)
            memcpy(q + o, p + off, k);
        o += k;
        off += k;
    }
    *out = q;
    *out_len = o;
    return KC_OK;
}

/* Reads stored blocks only; want is origSize. */
static int inflate_stored(const uint8_t *p, size_t len, size_t want, uint8_t **out)
{
    uint8_t *q = malloc(want > 0 ? want : 1);
    size_t i = 0, o = 0;
    bool final = false;

    if (q == NULL)
        return KC_ERR_NOMEM;
    while (!final) {
        size_t k, nk;

        if (i + 5 > len || (p[i] & 0x06) != 0) {
            /* a Huffman block (BTYPE 01/10), or reserved, or truncated */
            free(q);
            return i + 5 > len ? KC_ERR_CBOR : KC_ERR_UNSUPPORTED;
        }
        if ((p[i] & 0xf8) != 0) {
            free(q);
            return KC_ERR_CBOR;
        }
        final = (p[i] & 0x01) != 0;
        k = (size_t)p[i + 1] | (size_t)p[i + 2] << 8;
        nk = (size_t)p[i + 3] | (size_t)p[i + 4] << 8;
        i += 5;
        if ((k ^ 0xffff) != nk || k > len - i || k > want - o) {
            free(q);
            return KC_ERR_CBOR;
        }
        if (k > 0)
            memcpy(q + o, p + i, k);
        i += k;
        o += k;
    }
    if (o != want || i != len) {
        free(q);
        return KC_ERR_CBOR;
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
        len > KC_LARGEBLOB_READ_MAX)
        return KC_ERR_INVALID_ARG;
    if (RAND_bytes(nonce, sizeof(nonce)) != 1)
        return KC_ERR_CRYPTO;
    if ((r = deflate_stored(blob, len, &z, &zlen)) != KC_OK)
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

/* Opens one array element with key: KC_OK (blob set), 1 when it is not
 * this key's, or an error for a malformed or compressed element. */
static int open_entry(const cbor_item_t *e, const uint8_t key[32], uint8_t **blob, size_t *blob_len)
{
    const cbor_item_t *ct = cbor_isa_map(e) ? kc_cbor_map_get_int(e, 1) : NULL;
    const cbor_item_t *nonce = cbor_isa_map(e) ? kc_cbor_map_get_int(e, 2) : NULL;
    const cbor_item_t *orig = cbor_isa_map(e) ? kc_cbor_map_get_int(e, 3) : NULL;
    uint8_t ad[12], *z;
    size_t clen;
    uint64_t size;
    int r;

    /* elements of another shape belong to someone else: skip them (6.10.3) */
    if (!kc_cbor_is_bytes(ct) || !kc_cbor_is_bytes(nonce) || orig == NULL || !cbor_isa_uint(orig) ||
        cbor_bytestring_length(nonce) != KC_LARGEBLOB_NONCE_LEN ||
        (clen = cbor_bytestring_length(ct)) < KC_LARGEBLOB_TAG_LEN)
        return 1;
    size = cbor_get_int(orig);
    if (size > KC_LARGEBLOB_READ_MAX)
        return 1;
    if ((z = malloc(clen)) == NULL)
        return KC_ERR_NOMEM;
    blob_ad(size, ad);
    if (gcm(false, key, cbor_bytestring_handle(nonce), ad, cbor_bytestring_handle(ct), clen, z) !=
        KC_OK) {
        free(z);
        return 1;
    }
    r = inflate_stored(z, clen - KC_LARGEBLOB_TAG_LEN, (size_t)size, blob);
    OPENSSL_cleanse(z, clen);
    free(z);
    if (r == KC_OK)
        *blob_len = (size_t)size;
    return r;
}

int kc_largeblob_open(const uint8_t *cbor_array, size_t len,
                      const uint8_t key[KC_LARGEBLOB_KEY_LEN], uint8_t **blob, size_t *blob_len)
{
    cbor_item_t *arr = NULL;
    int r = 1;

    if (cbor_array == NULL || key == NULL || blob == NULL || blob_len == NULL)
        return KC_ERR_INVALID_ARG;
    if (kc_cbor_load(cbor_array, len, &arr) != KC_OK)
        return KC_ERR_CBOR;
    if (!cbor_isa_array(arr)) {
        cbor_decref(&arr);
        return KC_ERR_CBOR;
    }
    for (size_t i = 0; i < cbor_array_size(arr) && r == 1; i++)
        r = open_entry(cbor_array_handle(arr)[i], key, blob, blob_len);
    cbor_decref(&arr);
    return r;
}

int kc_largeblob_replace(const uint8_t *cbor_array, size_t len,
                         const uint8_t key[KC_LARGEBLOB_KEY_LEN], const uint8_t *entry,
                         size_t entry_len, uint8_t **out, size_t *out_len)
{
    cbor_item_t *arr = NULL, *fresh = NULL, *add = NULL;
    uint8_t *blob = NULL;
    size_t blob_len = 0, n;
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
        int o = open_entry(e, key, &blob, &blob_len);

        if (o == KC_OK || o == KC_ERR_UNSUPPORTED) {
            /* this key's old entry: dropped */
            if (blob != NULL) {
                OPENSSL_cleanse(blob, blob_len);
                free(blob);
                blob = NULL;
            }
            continue;
        }
        if (o < 0 && o != KC_ERR_CBOR) {
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
