/* rawctap's --pin PIN and --pin-file F: the two options every command that
 * takes a PIN spells the same way, kept by one handler and read (or
 * $RAWCTAP_PIN) by one function, so that a command only says what it does
 * when no PIN was given. */
#include <stdbool.h>
#include <stddef.h>

#include "triage/rawctap.h"

bool rc_pin_src_opt(struct rc_pin_src *src, int c, const char *arg)
{
    if (c == RC_OPT_PIN)
        src->pin = arg;
    else if (c == RC_OPT_PIN_FILE)
        src->file = arg;
    else
        return false;
    return true;
}

int rc_pin_src_read(const struct rc_pin_src *src, char *buf, size_t cap, bool *have)
{
    int r = rc_pin_get(src->pin, src->file, buf, cap);

    *have = r == 1;
    return r == 0 || r == 1 ? 0 : r;
}

int rc_pin_src_need(const struct rc_pin_src *src, const char *cmd, const char *needs, char *buf,
                    size_t cap)
{
    bool have = false;
    int r = rc_pin_src_read(src, buf, cap, &have);

    if (r != 0)
        return r;
    if (!have)
        return rc_usage_error(cmd, "%s: --pin, --pin-file or $RAWCTAP_PIN", needs);
    return 0;
}
