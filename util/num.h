/* Whole numbers from text (option values, control commands, config files):
 * strict decimal, so " 5", "+5", "5ms" and "0x5" are refused rather than
 * read as something the user did not write; and whole numbers to text, on
 * paths too hot for printf. */
#ifndef KCARD_UTIL_NUM_H
#define KCARD_UTIL_NUM_H

#include <stddef.h>
#include <stdint.h>

/* s is a decimal whole number within lo..hi: ASCII digits only, with one
 * leading '-' allowed when lo < 0, nothing before or after. 0 with the
 * value in *out, or -1 (out untouched) for anything else, overflow
 * included. */
int kcu_parse_long(const char *s, long lo, long hi, long *out);

/* kcu_parse_long for an int (lo and hi within int's range). */
int kcu_parse_int(const char *s, int lo, int hi, int *out);

/* The same for unsigned 64-bit values: digits only, no sign. */
int kcu_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* Room for any uint64_t in decimal, with its NUL. */
#define KCU_U64_DEC_MAX 21
/* v in decimal into out, NUL-terminated (what "%" PRIu64 writes, without
 * printf's parsing of a format); the number of digits. */
size_t kcu_format_u64(uint64_t v, char out[KCU_U64_DEC_MAX]);

#endif
