/* libctaphid's large-blob helpers: request encoding, the get response
 * parser, the serialized array's hash check, the per-fragment auth message,
 * and one credential's blob sealed and opened (AES-256-GCM over raw
 * DEFLATE), checked against OpenSSL and zlib directly; inflating streams
 * from another compressor (python3's zlib, fixed Huffman, RFC 1950) and
 * refusing truncated, mismatched and bomb streams; and the whole client against
 * the virtual card's core over an in-memory transport: fragmented writes and
 * reads, the lbw token, and a card that returns a damaged array. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cbor.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <zlib.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/io.h"
#include "ctaphid/io_int.h"
#include "ctaphid/largeblob.h"
#include "ctaphid/largeblob_int.h"
#include "ctaphid/pin.h"
#include "ctaphid/status.h"
#include "ctaphid/transport.h"
#include "ctaphid/transport_mem_int.h"
#include "harness/vcard/card.h"
#include "harness/vcard/personality.h"

static void test_max_fragment(void **state)
{
    struct kc_info info;

    (void)state;
    memset(&info, 0, sizeof(info));
    assert_int_equal(kc_largeblob_max_fragment(NULL), 1024 - 64);
    assert_int_equal(kc_largeblob_max_fragment(&info), 1024 - 64);
    info.max_msg_size = 2048;
    assert_int_equal(kc_largeblob_max_fragment(&info), 1984);
    info.max_msg_size = 40;
    assert_int_equal(kc_largeblob_max_fragment(&info), 0);
}

static void test_encode_requests(void **state)
{
    uint8_t *buf = NULL, param[16] = {0};
    size_t len = 0;
    /* {1: 1984, 3: 0} */
    static const uint8_t get0[] = {0xa2, 0x01, 0x19, 0x07, 0xc0, 0x03, 0x00};
    /* {2: h'6162', 3: 0, 4: 18} */
    static const uint8_t set0[] = {0xa3, 0x02, 0x42, 0x61, 0x62, 0x03, 0x00, 0x04, 0x12};
    cbor_item_t *m = NULL;

    (void)state;
    assert_int_equal(kc_largeblob_encode_get(1984, 0, &buf, &len), KC_OK);
    assert_int_equal(len, sizeof(get0));
    assert_memory_equal(buf, get0, sizeof(get0));
    free(buf);
    assert_int_equal(
        kc_largeblob_encode_set((const uint8_t *)"ab", 2, 0, 18, NULL, 0, 0, &buf, &len), KC_OK);
    assert_int_equal(len, sizeof(set0));
    assert_memory_equal(buf, set0, sizeof(set0));
    free(buf);
    /* a later fragment carries no length; a param brings its protocol */
    assert_int_equal(
        kc_largeblob_encode_set((const uint8_t *)"ab", 2, 300, 999, param, 16, 1, &buf, &len),
        KC_OK);
    assert_int_equal(kc_cbor_load(buf, len, &m), KC_OK);
    assert_null(kc_cbor_map_get_int(m, 4));
    assert_int_equal(cbor_get_int(kc_cbor_map_get_int(m, 3)), 300);
    assert_int_equal(cbor_bytestring_length(kc_cbor_map_get_int(m, 5)), 16);
    assert_int_equal(cbor_get_int(kc_cbor_map_get_int(m, 6)), 1);
    cbor_decref(&m);
    free(buf);
    assert_int_equal(kc_largeblob_encode_get(10, (uint64_t)UINT32_MAX + 1, &buf, &len),
                     KC_ERR_INVALID_ARG);
}

static void test_decode_get(void **state)
{
    static const uint8_t good[] = {0xa1, 0x01, 0x43, 0x01, 0x02, 0x03};
    static const uint8_t wrong_key[] = {0xa1, 0x02, 0x41, 0x01};
    static const uint8_t text[] = {0xa1, 0x01, 0x61, 0x41};
    static const uint8_t trailing[] = {0xa1, 0x01, 0x41, 0x01, 0x00};
    uint8_t out[8];
    size_t n = 0;

    (void)state;
    assert_int_equal(kc_largeblob_decode_get(good, sizeof(good), out, sizeof(out), &n), KC_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "\x01\x02\x03", 3);
    assert_int_equal(kc_largeblob_decode_get(good, sizeof(good), out, 2, &n), KC_ERR_TOO_LARGE);
    assert_int_equal(kc_largeblob_decode_get(wrong_key, sizeof(wrong_key), out, 8, &n),
                     KC_ERR_CBOR);
    assert_int_equal(kc_largeblob_decode_get(text, sizeof(text), out, 8, &n), KC_ERR_CBOR);
    assert_int_equal(kc_largeblob_decode_get(trailing, sizeof(trailing), out, 8, &n), KC_ERR_CBOR);
    assert_int_equal(kc_largeblob_decode_get(NULL, 0, out, 8, &n), KC_ERR_CBOR);
    assert_int_equal(kc_largeblob_decode_get(good, 3, out, 8, &n), KC_ERR_CBOR);
}

static void test_check_and_serialize(void **state)
{
    /* the initial array of CTAP 2.1 6.10.2: 0x80 and LEFT(SHA-256(0x80), 16) */
    static const uint8_t initial[] = {0x80, 0x76, 0xbe, 0x8b, 0x52, 0x8d, 0x00, 0x75, 0xf7,
                                      0xaa, 0xe9, 0x8d, 0x6f, 0xa5, 0x7a, 0x6d, 0x3c};
    static const uint8_t empty[] = {0x80};
    static const uint8_t not_array[] = {0xa0};
    uint8_t *ser = NULL, bad[sizeof(initial)];
    size_t n = 0;

    (void)state;
    assert_int_equal(kc_largeblob_check(initial, sizeof(initial)), KC_OK);
    memcpy(bad, initial, sizeof(bad));
    bad[16] ^= 0x80;
    assert_int_equal(kc_largeblob_check(bad, sizeof(bad)), KC_ERR_VERIFY);
    assert_int_equal(kc_largeblob_check(initial, 16), KC_ERR_CBOR);
    assert_int_equal(kc_largeblob_serialize(empty, 1, &ser, &n), KC_OK);
    assert_int_equal(n, sizeof(initial));
    assert_memory_equal(ser, initial, sizeof(initial));
    free(ser);
    assert_int_equal(kc_largeblob_serialize(not_array, 1, &ser, &n), KC_ERR_CBOR);
    /* a map with a right hash is still not an array */
    {
        uint8_t m[17], h[32];
        m[0] = 0xa0;
        SHA256(m, 1, h);
        memcpy(m + 1, h, 16);
        assert_int_equal(kc_largeblob_check(m, sizeof(m)), KC_ERR_CBOR);
    }
}

static void test_auth_message(void **state)
{
    uint8_t msg[70], h[32];

    (void)state;
    assert_int_equal(kc_largeblob_auth_message(0x01020304, (const uint8_t *)"xyz", 3, msg), KC_OK);
    for (int i = 0; i < 32; i++)
        assert_int_equal(msg[i], 0xff);
    assert_int_equal(msg[32], 0x0c);
    assert_int_equal(msg[33], 0x00);
    assert_memory_equal(msg + 34, "\x04\x03\x02\x01", 4);
    SHA256((const uint8_t *)"xyz", 3, h);
    assert_memory_equal(msg + 38, h, 32);
}

/* Opens an entry with OpenSSL and zlib alone: the AD is "blob" ||
 * uint64LE(size) and the plaintext a raw DEFLATE stream (windowBits -15). */
static void open_by_hand(const uint8_t key[32], const uint8_t *entry, size_t len,
                         const uint8_t *want, size_t want_len)
{
    cbor_item_t *m = NULL;
    const uint8_t *ct, *nonce;
    size_t clen;
    uint8_t ad[12] = {'b', 'l', 'o', 'b'}, pt[256], plain[256];
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    z_stream zs;
    int n = 0;

    assert_int_equal(kc_cbor_load(entry, len, &m), KC_OK);
    assert_int_equal(cbor_get_int(kc_cbor_map_get_int(m, 3)), want_len);
    ct = cbor_bytestring_handle(kc_cbor_map_get_int(m, 1));
    clen = cbor_bytestring_length(kc_cbor_map_get_int(m, 1));
    nonce = cbor_bytestring_handle(kc_cbor_map_get_int(m, 2));
    assert_int_equal(cbor_bytestring_length(kc_cbor_map_get_int(m, 2)), 12);
    for (int i = 0; i < 8; i++)
        ad[4 + i] = (uint8_t)((uint64_t)want_len >> (8 * i));
    assert_true(clen >= 16 && clen <= sizeof(pt));
    assert_int_equal(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce), 1);
    assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &n, ad, sizeof(ad)), 1);
    assert_int_equal(EVP_DecryptUpdate(ctx, pt, &n, ct, (int)clen - 16), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)(ct + clen - 16)),
                     1);
    assert_int_equal(EVP_DecryptFinal_ex(ctx, pt + n, &n), 1);
    EVP_CIPHER_CTX_free(ctx);
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, -15), Z_OK);
    zs.next_in = pt;
    zs.avail_in = (uInt)(clen - 16);
    zs.next_out = plain;
    zs.avail_out = sizeof(plain);
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    assert_int_equal(zs.total_out, want_len);
    assert_int_equal(zs.avail_in, 0);
    inflateEnd(&zs);
    assert_memory_equal(plain, want, want_len);
    cbor_decref(&m);
}

static void test_seal_open_replace(void **state)
{
    uint8_t key[32], other[32], *entry = NULL, *arr = NULL, *arr2 = NULL, *blob = NULL;
    size_t elen = 0, alen = 0, alen2 = 0, blen = 0;
    static const uint8_t start[] = {0x82, 0x41, 0x78, 0xa1, 0x01, 0x02}; /* [h'78', {1: 2}] */
    cbor_item_t *it = NULL;

    (void)state;
    memset(key, 0x2a, sizeof(key));
    memset(other, 0x3b, sizeof(other));
    assert_int_equal(kc_largeblob_seal(key, (const uint8_t *)"hello", 5, &entry, &elen), KC_OK);
    open_by_hand(key, entry, elen, (const uint8_t *)"hello", 5);
    assert_int_equal(kc_largeblob_replace(start, sizeof(start), key, entry, elen, &arr, &alen),
                     KC_OK);
    free(entry);
    assert_int_equal(kc_cbor_load(arr, alen, &it), KC_OK);
    assert_int_equal(cbor_array_size(it), 3); /* others kept, ours appended */
    cbor_decref(&it);
    assert_int_equal(kc_largeblob_open(arr, alen, key, &blob, &blen, NULL, 0), KC_OK);
    assert_int_equal(blen, 5);
    assert_memory_equal(blob, "hello", 5);
    free(blob);
    assert_int_equal(kc_largeblob_open(arr, alen, other, &blob, &blen, NULL, 0), 1);
    /* replacing drops the old entry of the same key */
    assert_int_equal(kc_largeblob_seal(key, (const uint8_t *)"bye", 3, &entry, &elen), KC_OK);
    assert_int_equal(kc_largeblob_replace(arr, alen, key, entry, elen, &arr2, &alen2), KC_OK);
    free(entry);
    assert_int_equal(kc_cbor_load(arr2, alen2, &it), KC_OK);
    assert_int_equal(cbor_array_size(it), 3);
    cbor_decref(&it);
    assert_int_equal(kc_largeblob_open(arr2, alen2, key, &blob, &blen, NULL, 0), KC_OK);
    assert_int_equal(blen, 3);
    assert_memory_equal(blob, "bye", 3);
    free(blob);
    free(arr);
    /* delete only */
    assert_int_equal(kc_largeblob_replace(arr2, alen2, key, NULL, 0, &arr, &alen), KC_OK);
    assert_int_equal(kc_largeblob_open(arr, alen, key, &blob, &blen, NULL, 0), 1);
    assert_int_equal(alen, sizeof(start));
    assert_memory_equal(arr, start, sizeof(start));
    free(arr);
    free(arr2);
    /* an empty blob */
    assert_int_equal(kc_largeblob_seal(key, NULL, 0, &entry, &elen), KC_OK);
    assert_int_equal(kc_largeblob_replace(start, sizeof(start), key, entry, elen, &arr, &alen),
                     KC_OK);
    assert_int_equal(kc_largeblob_open(arr, alen, key, &blob, &blen, NULL, 0), KC_OK);
    assert_int_equal(blen, 0);
    free(blob);
    free(arr);
    free(entry);
}

/* python3: zlib.compressobj(9, zlib.DEFLATED, -15, 9).compress(MSG) +
 * flush(), MSG = b"kcard large blob test vector: " + b"the quick brown
 * fox jumps over the lazy dog; " * 4 (210 bytes, dynamic Huffman) */
static const uint8_t py_raw[] = {
    0xcd, 0xca, 0xd9, 0x11, 0x80, 0x20, 0x0c, 0x05, 0xc0, 0x56, 0x5e, 0x1d, 0x5a, 0x0d, 0x47,
    0x44, 0x25, 0x18, 0x0d, 0x01, 0x8f, 0xea, 0x9d, 0xb1, 0x0a, 0xbf, 0x77, 0x73, 0x70, 0x1a,
    0xc1, 0x4e, 0x13, 0xc1, 0xb3, 0x78, 0x18, 0x55, 0x43, 0xa7, 0x60, 0xa2, 0x03, 0x6c, 0x26,
    0x1c, 0x6d, 0x09, 0x19, 0x5e, 0xe5, 0xdc, 0x30, 0xc9, 0x85, 0xb5, 0x95, 0xbd, 0x42, 0x3a,
    0xe9, 0xc7, 0xec, 0x9e, 0x1b, 0x51, 0xd2, 0xf8, 0x97, 0xfc, 0x02};
/* python3 zlib.compress(b"zlib-wrapped blob, as libfido2 before 1.11
 * wrote it"): RFC 1950, header 78 9c and Adler-32 */
static const uint8_t py_zlib[] = {
    0x78, 0x9c, 0xab, 0xca, 0xc9, 0x4c, 0xd2, 0x2d, 0x2f, 0x4a, 0x2c, 0x28, 0x48, 0x4d, 0x51,
    0x48, 0xca, 0xc9, 0x4f, 0xd2, 0x51, 0x48, 0x2c, 0x56, 0x00, 0x0a, 0xa6, 0x65, 0xa6, 0xe4,
    0x1b, 0x29, 0x24, 0xa5, 0xa6, 0xe5, 0x17, 0xa5, 0x2a, 0x18, 0xea, 0x19, 0x1a, 0x2a, 0x94,
    0x17, 0xe5, 0x97, 0xa4, 0x2a, 0x64, 0x96, 0x00, 0x00, 0xd9, 0x6d, 0x11, 0x9e};
/* raw DEFLATE of "abc" with fixed Huffman codes (BTYPE=01) */
static const uint8_t fixed_abc[] = {0x4b, 0x4c, 0x4a, 0x06, 0x00};

static const char py_msg_head[] = "kcard large blob test vector: ";
static const char py_msg_tail[] = "the quick brown fox jumps over the lazy dog; ";

/* Raw DEFLATE of n zero bytes, straight from zlib (the bomb). */
static uint8_t *zeros_deflated(size_t n, size_t *zlen)
{
    uint8_t *zero = calloc(1, n), *z;
    z_stream zs;
    uLong bound;

    assert_non_null(zero);
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
    bound = deflateBound(&zs, n);
    z = malloc(bound);
    assert_non_null(z);
    zs.next_in = zero;
    zs.avail_in = (uInt)n;
    zs.next_out = z;
    zs.avail_out = (uInt)bound;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *zlen = zs.total_out;
    deflateEnd(&zs);
    free(zero);
    return z;
}

static void test_inflate_streams(void **state)
{
    uint8_t want[256], *out = NULL, *z = NULL;
    size_t wlen = 0, zlen = 0;
    char why[160];

    (void)state;
    memcpy(want, py_msg_head, strlen(py_msg_head));
    wlen = strlen(py_msg_head);
    for (int i = 0; i < 4; i++) {
        memcpy(want + wlen, py_msg_tail, strlen(py_msg_tail));
        wlen += strlen(py_msg_tail);
    }
    assert_int_equal(wlen, 210);
    /* another compressor's dynamic-Huffman stream */
    assert_int_equal(kc_largeblob_inflate(py_raw, sizeof(py_raw), wlen, &out, why, sizeof(why)),
                     KC_OK);
    assert_memory_equal(out, want, wlen);
    free(out);
    out = NULL;
    /* fixed Huffman */
    assert_int_equal(kc_largeblob_inflate(fixed_abc, sizeof(fixed_abc), 3, &out, NULL, 0), KC_OK);
    assert_memory_equal(out, "abc", 3);
    free(out);
    out = NULL;
    /* RFC 1950, as libfido2 before 1.11 wrote */
    assert_int_equal(kc_largeblob_inflate(py_zlib, sizeof(py_zlib), 51, &out, why, sizeof(why)),
                     KC_OK);
    assert_memory_equal(out, "zlib-wrapped blob, as libfido2 before 1.11 wrote it", 51);
    free(out);
    out = NULL;
    /* ours, read back by ourselves, and smaller than the input */
    assert_int_equal(kc_largeblob_deflate(want, wlen, &z, &zlen), KC_OK);
    assert_true(zlen < wlen / 2);
    assert_int_equal(kc_largeblob_inflate(z, zlen, wlen, &out, NULL, 0), KC_OK);
    assert_memory_equal(out, want, wlen);
    free(out);
    free(z);
    out = NULL;
    /* the empty blob */
    assert_int_equal(kc_largeblob_deflate(NULL, 0, &z, &zlen), KC_OK);
    assert_int_equal(kc_largeblob_inflate(z, zlen, 0, &out, NULL, 0), KC_OK);
    free(out);
    free(z);
    out = NULL;

    /* truncated: every proper prefix fails, named */
    for (size_t cut = 0; cut < sizeof(py_raw); cut++) {
        why[0] = '\0';
        assert_true(kc_largeblob_inflate(py_raw, cut, wlen, &out, why, sizeof(why)) < 0);
        assert_null(out);
        assert_true(why[0] != '\0');
    }
    assert_int_equal(kc_largeblob_inflate(py_raw, sizeof(py_raw) - 1, wlen, &out, why, sizeof(why)),
                     KC_ERR_CBOR);
    assert_non_null(strstr(why, "truncated"));
    /* origSize mismatch, both ways */
    assert_int_equal(kc_largeblob_inflate(py_raw, sizeof(py_raw), wlen + 1, &out, why, sizeof(why)),
                     KC_ERR_VERIFY);
    assert_non_null(strstr(why, "inflates to 210 bytes but origSize says 211"));
    assert_int_equal(kc_largeblob_inflate(py_raw, sizeof(py_raw), wlen - 1, &out, why, sizeof(why)),
                     KC_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "more than origSize"));
    /* trailing bytes after the final block */
    {
        uint8_t tail[sizeof(fixed_abc) + 1];
        memcpy(tail, fixed_abc, sizeof(fixed_abc));
        tail[sizeof(fixed_abc)] = 0x00;
        assert_int_equal(kc_largeblob_inflate(tail, sizeof(tail), 3, &out, why, sizeof(why)),
                         KC_ERR_CBOR);
        assert_non_null(strstr(why, "follow"));
    }
    /* a reserved block type (BTYPE=11) */
    {
        static const uint8_t reserved[] = {0x07, 0x00};
        assert_int_equal(
            kc_largeblob_inflate(reserved, sizeof(reserved), 1, &out, why, sizeof(why)),
            KC_ERR_CBOR);
        assert_non_null(strstr(why, "corrupt"));
    }
    /* a damaged RFC 1950 stream (Adler-32 flipped) is not read */
    {
        uint8_t bad[sizeof(py_zlib)];
        memcpy(bad, py_zlib, sizeof(bad));
        bad[sizeof(bad) - 1] ^= 1;
        assert_true(kc_largeblob_inflate(bad, sizeof(bad), 51, &out, NULL, 0) < 0);
        assert_null(out);
    }
    /* the bomb: 4 MiB of zeros in a few KiB; a small origSize stops it at
     * the first extra byte, and origSize over the cap is refused unread */
    z = zeros_deflated(4u << 20, &zlen);
    assert_true(zlen < 8192);
    assert_int_equal(kc_largeblob_inflate(z, zlen, 16, &out, why, sizeof(why)), KC_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "more than origSize (16 bytes)"));
    assert_int_equal(kc_largeblob_inflate(z, zlen, KC_LARGEBLOB_ORIG_MAX, &out, why, sizeof(why)),
                     KC_ERR_TOO_LARGE);
    assert_int_equal(kc_largeblob_inflate(z, zlen, 4u << 20, &out, why, sizeof(why)),
                     KC_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "larger than kcard accepts"));
    assert_int_equal(kc_largeblob_inflate(z, zlen, UINT64_MAX, &out, why, sizeof(why)),
                     KC_ERR_TOO_LARGE);
    assert_null(out);
    free(z);
    assert_int_equal(kc_largeblob_deflate(want, KC_LARGEBLOB_ORIG_MAX + 1, &z, &zlen),
                     KC_ERR_INVALID_ARG);
}

/* An array of one entry: z sealed by hand under key with origSize orig. */
static uint8_t *sealed_by_hand(const uint8_t key[32], const uint8_t *z, size_t zlen, uint64_t orig,
                               size_t *len)
{
    uint8_t nonce[12] = {9}, ad[12] = {'b', 'l', 'o', 'b'}, *ct = malloc(zlen + 16), *buf = NULL;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    cbor_item_t *m = cbor_new_definite_map(3), *arr = cbor_new_definite_array(1);
    int n = 0;

    assert_non_null(ct);
    for (int i = 0; i < 8; i++)
        ad[4 + i] = (uint8_t)(orig >> (8 * i));
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, NULL, &n, ad, sizeof(ad)), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, ct, &n, z, (int)zlen), 1);
    assert_int_equal(EVP_EncryptFinal_ex(ctx, ct + n, &n), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, ct + zlen), 1);
    EVP_CIPHER_CTX_free(ctx);
    assert_int_equal(kc_cbor_map_add_int(m, 1, kc_cbor_new_bytes(ct, zlen + 16)), KC_OK);
    assert_int_equal(kc_cbor_map_add_int(m, 2, kc_cbor_new_bytes(nonce, 12)), KC_OK);
    assert_int_equal(kc_cbor_map_add_int(m, 3, cbor_build_uint64(orig)), KC_OK);
    assert_true(cbor_array_push(arr, m));
    cbor_decref(&m);
    assert_int_equal(kc_cbor_serialize(arr, &buf, len), KC_OK);
    cbor_decref(&arr);
    free(ct);
    return buf;
}

/* Entries compressed by someone else open; this key's bad ones are named
 * (and dropped by replace, never inflated), others' are skipped. */
static void test_open_compressed(void **state)
{
    uint8_t key[32], other[32], *arr, *blob = NULL, *fresh = NULL, *z;
    size_t len = 0, blen = 0, flen = 0, zlen = 0;
    char why[160];
    cbor_item_t *it = NULL;

    (void)state;
    memset(key, 7, sizeof(key));
    memset(other, 8, sizeof(other));
    arr = sealed_by_hand(key, py_raw, sizeof(py_raw), 210, &len);
    assert_int_equal(kc_largeblob_open(arr, len, key, &blob, &blen, why, sizeof(why)), KC_OK);
    assert_int_equal(blen, 210);
    assert_memory_equal(blob, py_msg_head, strlen(py_msg_head));
    free(blob);
    blob = NULL;
    assert_int_equal(kc_largeblob_open(arr, len, other, &blob, &blen, why, sizeof(why)), 1);
    free(arr);
    /* truncated inside the ciphertext: authentic, but not a whole stream */
    arr = sealed_by_hand(key, py_raw, sizeof(py_raw) - 3, 210, &len);
    assert_int_equal(kc_largeblob_open(arr, len, key, &blob, &blen, why, sizeof(why)), KC_ERR_CBOR);
    assert_non_null(strstr(why, "truncated"));
    assert_null(blob);
    /* replace drops it without inflating */
    assert_int_equal(kc_largeblob_replace(arr, len, key, NULL, 0, &fresh, &flen), KC_OK);
    assert_int_equal(flen, 1);
    assert_int_equal(fresh[0], 0x80);
    free(fresh);
    /* another key's broken entry stays */
    assert_int_equal(kc_largeblob_replace(arr, len, other, NULL, 0, &fresh, &flen), KC_OK);
    assert_int_equal(kc_cbor_load(fresh, flen, &it), KC_OK);
    assert_int_equal(cbor_array_size(it), 1);
    cbor_decref(&it);
    free(fresh);
    free(arr);
    /* origSize mismatch */
    arr = sealed_by_hand(key, fixed_abc, sizeof(fixed_abc), 4, &len);
    assert_int_equal(kc_largeblob_open(arr, len, key, &blob, &blen, why, sizeof(why)),
                     KC_ERR_VERIFY);
    assert_non_null(strstr(why, "origSize says 4"));
    free(arr);
    /* a bomb under a small origSize, and an origSize over the cap */
    z = zeros_deflated(2u << 20, &zlen);
    arr = sealed_by_hand(key, z, zlen, 1000, &len);
    assert_int_equal(kc_largeblob_open(arr, len, key, &blob, &blen, why, sizeof(why)),
                     KC_ERR_TOO_LARGE);
    free(arr);
    arr = sealed_by_hand(key, z, zlen, 2u << 20, &len);
    assert_int_equal(kc_largeblob_open(arr, len, key, &blob, &blen, why, sizeof(why)),
                     KC_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "origSize 2097152 is larger than kcard accepts"));
    assert_null(blob);
    free(arr);
    free(z);
}

/* ---- the client against vcard's core, over an in-memory transport ---- */

#define CARD_CID 0x01020304u

struct vcard_link {
    struct vc_card *card;
    struct kc_reassembly r;
    uint8_t buf[KC_HID_MAX_MSG];
    bool corrupt_get; /* flip a byte of every large-blob get fragment */
    int lb_calls;
};

static void push_message(struct kc_transport *t, uint32_t cid, uint8_t cmd, const uint8_t *msg,
                         size_t len)
{
    for (size_t i = 0; i < kc_frag_count(len); i++) {
        uint8_t rep[KC_HID_REPORT_LEN];
        assert_int_equal(kc_frag_report(cid, cmd, msg, len, i, rep, sizeof(rep)), KC_OK);
        assert_int_equal(kc_mem_push(t, rep, sizeof(rep), 0), KC_OK);
    }
}

static void vcard_responder(struct kc_transport *t, const uint8_t *rep, size_t len, void *ctx)
{
    struct vcard_link *l = ctx;
    uint32_t cid;

    assert_true(len >= KC_HID_INIT_HDR);
    cid = (uint32_t)rep[0] << 24 | (uint32_t)rep[1] << 16 | (uint32_t)rep[2] << 8 | rep[3];
    if (cid == KC_HID_BROADCAST_CID && rep[4] == KC_HID_INIT) {
        uint8_t resp[KC_HID_INIT_RESP_LEN] = {0};
        memcpy(resp, rep + KC_HID_INIT_HDR, KC_HID_NONCE_LEN);
        resp[8] = CARD_CID >> 24;
        resp[9] = (CARD_CID >> 16) & 0xff;
        resp[10] = (CARD_CID >> 8) & 0xff;
        resp[11] = CARD_CID & 0xff;
        resp[12] = 2;
        resp[16] = KC_HID_CAP_CBOR;
        push_message(t, KC_HID_BROADCAST_CID, KC_HID_INIT, resp, sizeof(resp));
        return;
    }
    if (cid != CARD_CID)
        return;
    if (rep[4] & KC_HID_TYPE_INIT)
        kc_reassembly_init(&l->r, CARD_CID, l->buf, sizeof(l->buf));
    if (kc_reassembly_feed(&l->r, rep, len) == 1 && l->r.cmd == KC_HID_CBOR) {
        static uint8_t out[KC_HID_MAX_MSG];
        size_t n = 0;

        assert_int_equal(
            vc_card_cbor(l->card, l->buf, l->r.expected, out, sizeof(out), &n, NULL, NULL), 0);
        if (l->buf[0] == KC_CTAP2_LARGE_BLOBS) {
            l->lb_calls++;
            if (l->corrupt_get && out[0] == 0 && n > 8)
                out[n - 1] ^= 0x01; /* the last byte of the fragment */
        }
        push_message(t, CARD_CID, KC_HID_CBOR, out, n);
    }
}

static struct kc_dev *vcard_open(struct vcard_link *l, const char *personality)
{
    struct kc_transport *t = kc_mem_transport_new();
    struct vc_config cfg;
    struct kc_timeouts to;
    struct kc_dev *d = NULL;
    char err[256];

    memset(l, 0, sizeof(*l));
    memset(&cfg, 0, sizeof(cfg));
    cfg.attestation = VC_ATT_PACKED_BATCH;
    cfg.reset_window_ms = 10000;
    cfg.personality = vc_personality_find(personality);
    assert_non_null(cfg.personality);
    l->card = vc_card_new(&cfg, err, sizeof(err));
    assert_non_null(l->card);
    assert_non_null(t);
    kc_mem_set_responder(t, vcard_responder, l);
    kc_timeouts_default(&to);
    to.command_ms = 2000;
    assert_int_equal(kc_dev_wrap(&d, t, &to), KC_OK);
    return d;
}

/* A CBOR array of one byte string of n bytes. */
static uint8_t *big_array(size_t n, size_t *len)
{
    uint8_t *p = malloc(n + 4);

    assert_non_null(p);
    p[0] = 0x81;
    p[1] = 0x59;
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    for (size_t i = 0; i < n; i++)
        p[4 + i] = (uint8_t)(i * 13);
    *len = n + 4;
    return p;
}

static void test_client_against_vcard(void **state)
{
    struct vcard_link l;
    struct kc_dev *d = vcard_open(&l, "ctap2.1-full");
    struct kc_info info;
    struct kc_pin_token tok;
    uint8_t *arr, *got = NULL;
    size_t len = 0, got_len = 0;

    (void)state;
    assert_int_equal(kc_ctap2_get_info(d, &info), KC_OK);
    assert_int_equal(kc_largeblob_max_fragment(&info), 1984);
    /* the initial array: empty */
    assert_int_equal(kc_largeblob_get_array(d, &info, &got, &got_len), KC_OK);
    assert_int_equal(got_len, 1);
    assert_int_equal(got[0], 0x80);
    free(got);
    /* 3000 bytes: two fragments each way (a third, empty read ends it
     * only when the size is a multiple of 1984) */
    arr = big_array(2980, &len);
    l.lb_calls = 0;
    assert_int_equal(kc_largeblob_set_array(d, &info, NULL, arr, len), KC_OK);
    assert_int_equal(l.lb_calls, 2);
    l.lb_calls = 0;
    assert_int_equal(kc_largeblob_get_array(d, &info, &got, &got_len), KC_OK);
    assert_int_equal(l.lb_calls, 2);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, arr, len);
    free(got);
    /* a damaged fragment: the hash check names it */
    l.corrupt_get = true;
    assert_int_equal(kc_largeblob_get_array(d, &info, &got, &got_len), KC_ERR_VERIFY);
    assert_null(got);
    l.corrupt_get = false;
    /* too large for the card: refused before anything is sent */
    free(arr);
    arr = big_array(4096, &len);
    l.lb_calls = 0;
    assert_int_equal(kc_largeblob_set_array(d, &info, NULL, arr, len), KC_ERR_TOO_LARGE);
    assert_int_equal(l.lb_calls, 0);
    free(arr);
    /* with a PIN: a token with lbw for every fragment, protocols 2 and 1 */
    assert_int_equal(kc_pin_set(d, &info, "4321"), KC_OK);
    assert_int_equal(kc_ctap2_get_info(d, &info), KC_OK);
    arr = big_array(2500, &len);
    assert_int_equal(kc_largeblob_set_array(d, &info, NULL, arr, len), KC_CTAP2_ERR_PUAT_REQUIRED);
    memset(&tok, 0, sizeof(tok));
    assert_int_equal(kc_pin_token_for(d, &info, "4321", KC_PERM_LBW, NULL, &tok), KC_OK);
    assert_int_equal(tok.protocol, 2);
    assert_int_equal(kc_largeblob_set_array(d, &info, &tok, arr, len), KC_OK);
    kc_pin_token_clear(&tok);
    assert_int_equal(kc_pin_token_for(d, &info, "4321", KC_PERM_GA, "example.com", &tok), KC_OK);
    assert_int_equal(kc_largeblob_set_array(d, &info, &tok, arr, len),
                     KC_CTAP2_ERR_PIN_AUTH_INVALID);
    kc_pin_token_clear(&tok);
    assert_int_equal(kc_largeblob_get_array(d, &info, &got, &got_len), KC_OK);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, arr, len);
    free(got);
    free(arr);
    kc_dev_close(d);
    vc_card_free(l.card);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_fragment),         cmocka_unit_test(test_encode_requests),
        cmocka_unit_test(test_decode_get),           cmocka_unit_test(test_check_and_serialize),
        cmocka_unit_test(test_auth_message),         cmocka_unit_test(test_seal_open_replace),
        cmocka_unit_test(test_inflate_streams),      cmocka_unit_test(test_open_compressed),
        cmocka_unit_test(test_client_against_vcard),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
