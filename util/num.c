/* Strict decimal whole numbers, and their text (see num.h). strtol alone would accept
 * leading spaces and a '+', and needs errno and end-pointer checks at every
 * call; this is that check, written once. */
#include "util/num.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* s is [-]digits: the '-' only when negative values are wanted. */
static int well_formed(const char *s, int allow_minus)
{
    if (s == NULL)
        return 0;
    if (*s == '-' && allow_minus)
        s++;
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

int kcu_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    long v;

    if (!well_formed(s, lo < 0))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int kcu_parse_int(const char *s, int lo, int hi, int *out)
{
    long v;

    if (kcu_parse_long(s, lo, hi, &v) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

int kcu_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    if (!well_formed(s, 0))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

size_t kcu_format_u64(uint64_t v, char out[KCU_U64_DEC_MAX])
{
    char digits[KCU_U64_DEC_MAX - 1];
    size_t i = sizeof(digits);
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    size_t n = sizeof(digits) - i;
    memcpy(out, digits + i, n);
    out[n] = '\0';
    return n;
}
