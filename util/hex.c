/* Hexadecimal text (see hex.h). */
#include "util/hex.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

static const char digits[] = "0123456789abcdef";

/* a digit's value plus one by byte, 0 for what is not a hex digit: a table,
 * since k_server decodes 48 bytes of hex per counter call */
static const uint8_t digit_plus_one[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

int kcu_hex_digit(char c)
{
    return (int)digit_plus_one[(unsigned char)c] - 1;
}

bool kcu_hex_field(const char *s, size_t n, size_t max_digits, uint32_t *out)
{
    uint32_t v = 0;

    if (n == 0 || n > max_digits || max_digits > 8)
        return false;
    for (size_t i = 0; i < n; i++) {
        int d = kcu_hex_digit(s[i]);
        if (d < 0)
            return false;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return true;
}

void kcu_hex_encode(const uint8_t *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

char *kcu_hex_encode_alloc(const uint8_t *in, size_t len)
{
    char *out;

    if (len > (SIZE_MAX - 1) / 2 || (out = malloc(2 * len + 1)) == NULL)
        return NULL;
    kcu_hex_encode(in, len, out);
    return out;
}

/* A character for an error message: itself when printable, else its code. */
static void show_char(char c, char *buf, size_t cap)
{
    unsigned char u = (unsigned char)c;

    if (u >= 0x21 && u < 0x7f)
        kcu_set_err(buf, cap, "'%c'", c);
    else
        kcu_set_err(buf, cap, "byte 0x%02x", u);
}

int kcu_hex_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *out_len, char *err,
                   size_t errlen)
{
    char shown[16];

    if (slen % 2 != 0)
        return kcu_set_err_rc(err, errlen, -1, "an odd number of hex digits (%zu)", slen);
    if (slen / 2 > cap)
        return kcu_set_err_rc(err, errlen, -1, "%zu bytes of hex, more than the %zu allowed",
                              slen / 2, cap);
    for (size_t i = 0; i < slen; i += 2) {
        int hi = kcu_hex_digit(s[i]), lo = kcu_hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0) {
            size_t at = hi < 0 ? i : i + 1;
            show_char(s[at], shown, sizeof(shown));
            return kcu_set_err_rc(err, errlen, -1, "not a hex digit: %s at offset %zu", shown, at);
        }
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    *out_len = slen / 2;
    return 0;
}

int kcu_hex_decode_exact(const char *s, uint8_t *out, size_t len, char *err, size_t errlen)
{
    size_t slen = strnlen(s, 2 * len + 1), n = 0;

    if (slen > 2 * len)
        return kcu_set_err_rc(err, errlen, -1, "more than %zu hex digits", 2 * len);
    if (slen < 2 * len)
        return kcu_set_err_rc(err, errlen, -1, "%zu hex digits, want %zu", slen, 2 * len);
    return kcu_hex_decode(s, slen, out, len, &n, err, errlen);
}

int kcu_hex_decode_alloc(const char *s, size_t max_bytes, uint8_t **out, size_t *out_len, char *err,
                         size_t errlen)
{
    /* bounded so that 2 * most + 1 cannot wrap */
    size_t most = max_bytes > ((size_t)1 << 30) ? ((size_t)1 << 30) : max_bytes;
    size_t slen = strnlen(s, most * 2 + 1), n = 0;
    uint8_t *buf;

    if (slen == 0)
        return kcu_set_err_rc(err, errlen, -1, "empty hex");
    if (slen > most * 2)
        return kcu_set_err_rc(err, errlen, -1, "more than %zu bytes of hex", most);
    if ((buf = malloc(slen / 2 + 1)) == NULL)
        return kcu_set_err_rc(err, errlen, -1, "out of memory");
    if (kcu_hex_decode(s, slen, buf, slen / 2 + 1, &n, err, errlen) != 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = n;
    return 0;
}
