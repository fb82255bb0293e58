/* base64url without padding (see b64url.h). */
#include "util/b64url.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t kcu_b64url_encoded_len(size_t len)
{
    return len / 3 * 4 + (len % 3 != 0 ? len % 3 + 1 : 0);
}

int kcu_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    size_t n, o = 0;

    if (len > ((size_t)1 << 30) || (n = kcu_b64url_encoded_len(len)) >= cap)
        return -1;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t left = len - i;
        if (left > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        if (left > 1)
            out[o++] = alphabet[v >> 6 & 63];
        if (left > 2)
            out[o++] = alphabet[v & 63];
    }
    out[o] = '\0';
    return (int)n;
}

char *kcu_b64url_encode_alloc(const uint8_t *in, size_t len)
{
    size_t cap;
    char *out;

    if (len > ((size_t)1 << 30))
        return NULL;
    cap = kcu_b64url_encoded_len(len) + 1;
    if ((out = malloc(cap)) == NULL)
        return NULL;
    if (kcu_b64url_encode(in, len, out, cap) < 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* 0..63 for a character of the alphabet (and '+' '/' when lenient), else -1. */
static int sextet(char c, bool lenient)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-' || (lenient && c == '+'))
        return 62;
    if (c == '_' || (lenient && c == '/'))
        return 63;
    return -1;
}

static int bad_char(const char *s, size_t at, char *err, size_t errlen)
{
    unsigned char u = (unsigned char)s[at];

    if (s[at] == '=')
        return kcu_set_err_rc(err, errlen, -1, "padding '=' at offset %zu (base64url has none)",
                              at);
    if (u >= 0x21 && u < 0x7f)
        return kcu_set_err_rc(err, errlen, -1, "not a base64url character: '%c' at offset %zu",
                              s[at], at);
    return kcu_set_err_rc(err, errlen, -1, "not a base64url character: byte 0x%02x at offset %zu",
                          u, at);
}

int kcu_b64url_decode(const char *s, size_t slen, unsigned flags, uint8_t *out, size_t cap,
                      size_t *out_len, char *err, size_t errlen)
{
    bool lenient = (flags & KCU_B64URL_LENIENT) != 0;
    size_t n = slen, bytes, o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (lenient) {
        size_t pad = 0;
        while (n > 0 && s[n - 1] == '=') {
            n--;
            pad++;
        }
        if (pad > 2)
            return kcu_set_err_rc(err, errlen, -1, "%zu padding characters (at most 2)", pad);
    }
    if (n % 4 == 1)
        return kcu_set_err_rc(err, errlen, -1,
                              "%zu base64url characters: no encoding has that length", n);
    bytes = n / 4 * 3 + (n % 4 != 0 ? n % 4 - 1 : 0);
    if (bytes > cap)
        return kcu_set_err_rc(err, errlen, -1, "%zu bytes of base64url, more than the %zu allowed",
                              bytes, cap);
    for (size_t i = 0; i < n; i++) {
        int v = sextet(s[i], lenient);
        if (v < 0)
            return bad_char(s, i, err, errlen);
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    *out_len = o;
    return 0;
}

int kcu_b64url_decode_alloc(const char *s, size_t max_bytes, unsigned flags, uint8_t **out,
                            size_t *out_len, char *err, size_t errlen)
{
    size_t most = max_bytes > ((size_t)1 << 30) ? ((size_t)1 << 30) : max_bytes;
    /* the longest text that may hold max_bytes, with two '=' of padding */
    size_t slen = strnlen(s, kcu_b64url_encoded_len(most) + 3), n = 0;
    uint8_t *buf;

    if (slen == 0)
        return kcu_set_err_rc(err, errlen, -1, "empty base64url");
    if (slen > kcu_b64url_encoded_len(most) + 2)
        return kcu_set_err_rc(err, errlen, -1, "more than %zu bytes of base64url", most);
    if ((buf = malloc(slen / 4 * 3 + 3)) == NULL)
        return kcu_set_err_rc(err, errlen, -1, "out of memory");
    if (kcu_b64url_decode(s, slen, flags, buf, most, &n, err, errlen) != 0) {
        free(buf);
        return -1;
    }
    if (n == 0) { /* only padding */
        free(buf);
        return kcu_set_err_rc(err, errlen, -1, "empty base64url");
    }
    *out = buf;
    *out_len = n;
    return 0;
}
