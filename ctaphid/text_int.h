/* Internal to libctaphid: small text helpers: strict hex digits for the text
 * it parses (device specs, sysfs uevents, replay traces) and formatted
 * messages into callers' buffers. Not a public API. */
#ifndef KCARD_CTAPHID_TEXT_INT_H
#define KCARD_CTAPHID_TEXT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 0..15 for 0-9, a-f, A-F; -1 for any other char (locale plays no part). */
int kc_hex_digit(char c);

/* s[0..n) is 1..max_digits hex digits and nothing else (max_digits <= 8):
 * true with the value in *out, else false and *out untouched. */
bool kc_hex_field(const char *s, size_t n, size_t max_digits, uint32_t *out);

/* snprintf into buf; nothing when buf is NULL or len 0 (callers may pass
 * an optional error buffer straight through). */
void kc_set_text(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
