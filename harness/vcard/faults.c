/* Fault profile names: parsing "drop-every:3,wrong-cid" into a vc_faults
 * set and naming each kind back, for the command line, the control socket
 * and the status report. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/vcard/card.h"
#include "util/num.h"

enum arg_rule {
    ARG_NONE,     /* the profile takes no ":N" */
    ARG_OPTIONAL, /* ":N" may follow; default_arg otherwise */
    ARG_REQUIRED, /* ":N" must follow */
};

struct fault_def {
    const char *name;
    enum arg_rule rule;
    int default_arg;
    int min_arg;
};

static const struct fault_def fault_defs[VC_FAULT_COUNT] = {
    [VC_FAULT_NO_INIT_REPLY] = {"no-init-reply", ARG_NONE, 0, 0},
    [VC_FAULT_HANG_BEFORE_UP] = {"hang-before-up", ARG_NONE, 0, 0},
    [VC_FAULT_NO_PIN_PROTOCOLS] = {"no-pin-protocols", ARG_NONE, 0, 0},
    [VC_FAULT_CTAP1_ONLY] = {"ctap1-only", ARG_NONE, 0, 0},
    [VC_FAULT_SLOW_CTAP1] = {"slow-ctap1", ARG_OPTIONAL, 2000, 0},
    [VC_FAULT_NO_KEEPALIVE] = {"no-keepalive", ARG_NONE, 0, 0},
    [VC_FAULT_DROP_EVERY] = {"drop-every", ARG_REQUIRED, 0, 1},
    [VC_FAULT_DUPLICATE_EVERY] = {"duplicate-every", ARG_REQUIRED, 0, 1},
    [VC_FAULT_CORRUPT_SEQ] = {"corrupt-seq", ARG_NONE, 0, 0},
    [VC_FAULT_WRONG_CID] = {"wrong-cid", ARG_NONE, 0, 0},
    [VC_FAULT_BUSY] = {"busy", ARG_NONE, 0, 0},
    [VC_FAULT_BOGUS_SIGNATURE] = {"bogus-signature", ARG_NONE, 0, 0},
    [VC_FAULT_COUNTER_ROLLBACK] = {"counter-rollback", ARG_NONE, 0, 0},
    [VC_FAULT_UNPLUG] = {"unplug", ARG_NONE, 0, 0},
    [VC_FAULT_REPLUG] = {"replug", ARG_NONE, 0, 0},
};

/* Largest argument accepted: an hour of delay, or every millionth report. */
#define FAULT_ARG_MAX 3600000

const char *vc_fault_name(enum vc_fault_kind k)
{
    if ((int)k < 0 || k >= VC_FAULT_COUNT)
        return "unknown";
    return fault_defs[k].name;
}

/* One "name" or "name:N" (not NUL-terminated: len bytes). */
static int parse_one(const char *item, size_t len, struct vc_faults *f, char *err, size_t errlen)
{
    char buf[64];
    char *colon;
    const char *argstr = NULL;
    int arg = 0;

    if (len == 0) {
        snprintf(err, errlen, "empty fault profile");
        return -1;
    }
    if (len >= sizeof(buf)) {
        snprintf(err, errlen, "unknown fault profile '%.40s...'", item);
        return -1;
    }
    memcpy(buf, item, len);
    buf[len] = '\0';
    if ((colon = strchr(buf, ':')) != NULL) {
        *colon = '\0';
        argstr = colon + 1;
    }
    for (int k = 0; k < VC_FAULT_COUNT; k++) {
        const struct fault_def *d = &fault_defs[k];

        if (strcmp(buf, d->name) != 0)
            continue;
        if (argstr == NULL) {
            if (d->rule == ARG_REQUIRED) {
                snprintf(err, errlen, "fault profile '%s' needs a count: %s:N", d->name, d->name);
                return -1;
            }
            arg = d->default_arg;
        } else {
            if (d->rule == ARG_NONE) {
                snprintf(err, errlen, "fault profile '%s' takes no argument (got '%s')", d->name,
                         argstr);
                return -1;
            }
            if (kcu_parse_int(argstr, 0, FAULT_ARG_MAX, &arg) < 0 || arg < d->min_arg) {
                snprintf(err, errlen, "fault profile '%s': bad argument '%s' (want %d..%d)",
                         d->name, argstr, d->min_arg, FAULT_ARG_MAX);
                return -1;
            }
        }
        f->on[k] = true;
        f->arg[k] = arg;
        return 0;
    }
    snprintf(err, errlen, "unknown fault profile '%s'", buf);
    return -1;
}

int vc_fault_parse(const char *spec, struct vc_faults *f, char *err, size_t errlen)
{
    struct vc_faults tmp;
    const char *p;

    if (spec == NULL || f == NULL) {
        snprintf(err, errlen, "no fault profile given");
        return -1;
    }
    /* all or nothing: a bad item in a list leaves *f untouched */
    tmp = *f;
    p = spec;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        if (parse_one(p, len, &tmp, err, errlen) < 0)
            return -1;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *f = tmp;
    return 0;
}
