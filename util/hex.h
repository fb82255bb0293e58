/* Hexadecimal text: lower-case encoding, and strict decoding (either case,
 * no prefix, no spaces) with an error that says what was wrong. */
#ifndef KCARD_UTIL_HEX_H
#define KCARD_UTIL_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 0..15 for 0-9, a-f, A-F; -1 for any other char (the locale plays no part). */
int kcu_hex_digit(char c);

/* s[0..n) is 1..max_digits hex digits and nothing else (max_digits <= 8):
 * true with the value in *out, else false and *out untouched. */
bool kcu_hex_field(const char *s, size_t n, size_t max_digits, uint32_t *out);

/* Lower-case hex of in[0..len) into out, which needs 2*len+1 bytes. */
void kcu_hex_encode(const uint8_t *in, size_t len, char *out);
/* The same into a malloc'd string; NULL when out of memory. */
char *kcu_hex_encode_alloc(const uint8_t *in, size_t len);

/* Decodes s[0..slen) into out (cap bytes): 0 with *out_len set, or -1 with
 * err (when given) naming the problem: an odd number of digits, the first
 * character that is not a hex digit and where, or more bytes than cap.
 * Empty text decodes to 0 bytes. */
int kcu_hex_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *out_len, char *err,
                   size_t errlen);

/* The NUL-terminated s is exactly 2*len hex digits: decoded into out[0..len)
 * and 0, or -1 with err. For fixed-size values (keys, ids, MACs). */
int kcu_hex_decode_exact(const char *s, uint8_t *out, size_t len, char *err, size_t errlen);

/* Decodes the NUL-terminated s, of 1..max_bytes bytes, into a malloc'd
 * buffer (*out, *out_len): 0, or -1 with err (empty text is an error). */
int kcu_hex_decode_alloc(const char *s, size_t max_bytes, uint8_t **out, size_t *out_len, char *err,
                         size_t errlen);

#endif
