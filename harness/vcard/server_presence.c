/* The virtual card's presence modes (--presence, "vcard-ctl presence") and
 * the wait for a touch the core asks for. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/vcard/server_internal.h"
#include "util/clock.h"
#include "util/num.h"

int vcs_parse_ms(const char *s, int *out)
{
    return kcu_parse_int(s, 0, 3600000, out);
}

int vc_presence_parse(const char *s, struct vc_presence *p, char *err, size_t errlen)
{
    if (s == NULL) {
        snprintf(err, errlen, "no presence mode given");
        return -1;
    }
    p->ms = 0;
    if (strcmp(s, "yes") == 0) {
        p->mode = VC_PRESENCE_YES;
    } else if (strcmp(s, "no") == 0) {
        p->mode = VC_PRESENCE_NO;
    } else if (strcmp(s, "ask") == 0) {
        p->mode = VC_PRESENCE_ASK;
    } else if (strcmp(s, "timeout") == 0) {
        p->mode = VC_PRESENCE_TIMEOUT;
        p->ms = VC_PRESENCE_MAX_MS;
    } else if (strncmp(s, "timeout:", 8) == 0 && vcs_parse_ms(s + 8, &p->ms) == 0 &&
               p->ms <= VC_PRESENCE_MAX_MS) {
        p->mode = VC_PRESENCE_TIMEOUT;
    } else if (strncmp(s, "delay:", 6) == 0 && vcs_parse_ms(s + 6, &p->ms) == 0 &&
               p->ms <= VC_PRESENCE_MAX_MS) {
        p->mode = VC_PRESENCE_DELAY;
    } else {
        snprintf(err, errlen,
                 "bad presence mode '%s' (want yes, no, timeout[:MS], delay:MS or ask; "
                 "MS at most %d)",
                 s, VC_PRESENCE_MAX_MS);
        return -1;
    }
    return 0;
}

void vc_presence_format(const struct vc_presence *p, char *buf, size_t len)
{
    switch (p->mode) {
    case VC_PRESENCE_YES:
        snprintf(buf, len, "yes");
        break;
    case VC_PRESENCE_NO:
        snprintf(buf, len, "no");
        break;
    case VC_PRESENCE_TIMEOUT:
        snprintf(buf, len, "timeout:%d", p->ms);
        break;
    case VC_PRESENCE_DELAY:
        snprintf(buf, len, "delay:%d", p->ms);
        break;
    case VC_PRESENCE_ASK:
        snprintf(buf, len, "ask");
        break;
    }
}

/* Waits on s->cv until deadline (absolute monotonic ms). Lock held. */
void vcs_wait_until(struct vc_server *s, uint64_t deadline_ms)
{
    struct timespec ts;
    uint64_t now = kcu_now_ms();
    uint64_t until = deadline_ms;

    if (until <= now)
        return;
    if (until - now > POLL_MAX_MS)
        until = now + POLL_MAX_MS; /* re-check flags at least once a second */
    kcu_deadline(CLOCK_MONOTONIC, until - now, &ts);
    (void)pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

/* The core asks for presence: runs in the worker, lock not held. */
enum vc_up_result vcs_presence_cb(void *ctx)
{
    struct vc_server *s = ctx;
    enum vc_up_result r;
    uint64_t start = kcu_now_ms();

    pthread_mutex_lock(&s->mu);
    vc_hid_job_set_status(s->hid, KC_KEEPALIVE_UPNEEDED);
    s->presence_pending = true;
    s->decision = -1;
    if (s->armed >= 0 && start < s->armed_until_ms)
        s->decision = s->armed;
    s->armed = -1;
    for (;;) {
        uint64_t now = kcu_now_ms();
        uint64_t deadline = start + VC_PRESENCE_MAX_MS;

        if (s->stopping || vc_hid_job_cancelled(s->hid)) {
            r = VC_UP_CANCELLED;
            break;
        }
        if (s->decision >= 0) {
            r = (enum vc_up_result)s->decision;
            break;
        }
        /* the mode is read on every round: "presence yes" ends an ask wait */
        if (s->presence.mode == VC_PRESENCE_YES) {
            r = VC_UP_APPROVED;
            break;
        }
        if (s->presence.mode == VC_PRESENCE_NO) {
            r = VC_UP_DENIED;
            break;
        }
        if (s->presence.mode == VC_PRESENCE_TIMEOUT || s->presence.mode == VC_PRESENCE_DELAY)
            deadline = start + (uint64_t)s->presence.ms;
        if (now >= deadline) {
            r = s->presence.mode == VC_PRESENCE_DELAY ? VC_UP_APPROVED : VC_UP_TIMEOUT;
            break;
        }
        vcs_wait_until(s, deadline);
    }
    s->presence_pending = false;
    s->decision = -1;
    vc_hid_job_set_status(s->hid, KC_KEEPALIVE_PROCESSING);
    pthread_mutex_unlock(&s->mu);
    return r;
}
