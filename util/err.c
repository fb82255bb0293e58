/* Error text into a caller's buffer (see err.h). */
#include "util/err.h"

#include <stdio.h>

void kcu_vset_err(char *buf, size_t len, const char *fmt, va_list ap)
{
    if (buf == NULL || len == 0)
        return;
    vsnprintf(buf, len, fmt, ap);
}

void kcu_set_err(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    kcu_vset_err(buf, len, fmt, ap);
    va_end(ap);
}

int kcu_set_err_rc(char *buf, size_t len, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    kcu_vset_err(buf, len, fmt, ap);
    va_end(ap);
    return rc;
}
