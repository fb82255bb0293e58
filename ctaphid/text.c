/* Small text helpers (see text_int.h). */
#include "ctaphid/text_int.h"

#include <stdarg.h>
#include <stdio.h>

int kc_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool kc_hex_field(const char *s, size_t n, size_t max_digits, uint32_t *out)
{
    uint32_t v = 0;

    if (n == 0 || n > max_digits)
        return false;
    for (size_t i = 0; i < n; i++) {
        int d = kc_hex_digit(s[i]);
        if (d < 0)
            return false;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return true;
}

void kc_set_text(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (buf == NULL || len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}
