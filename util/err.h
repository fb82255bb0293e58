/* Error text into a caller's buffer: the one printf-style setter every part
 * uses for its optional `char *err, size_t errlen` out-parameters. */
#ifndef KCARD_UTIL_ERR_H
#define KCARD_UTIL_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* vsnprintf into buf (truncating); nothing when buf is NULL or len is 0,
 * so callers may pass an optional error buffer straight through. */
void kcu_set_err(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void kcu_vset_err(char *buf, size_t len, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* kcu_set_err, then returns rc: `return kcu_set_err_rc(err, n, -1, "...")`. */
int kcu_set_err_rc(char *buf, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
