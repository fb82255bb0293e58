/* Whole numbers from text (option values, control commands, config files):
 * strict decimal, so " 5", "+5", "5ms" and "0x5" are refused rather than
 * read as something the user did not write. */
#ifndef KCARD_UTIL_NUM_H
#define KCARD_UTIL_NUM_H

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

#endif
