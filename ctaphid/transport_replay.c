/* replay transport: a JSON-lines trace (trace.c) played back as the device.
 * The host's reports are reassembled into messages and matched structurally
 * against the recorded ones (replay_player.h): fields that differ between
 * runs (nonces, clientDataHash, PIN key agreement, ...) may differ, anything
 * else ends the replay with KC_ERR_REPLAY_DIVERGED and a sentence in
 * last_error naming the report and the field. A match makes what the card
 * answered readable, paced as recorded. */
#include "ctaphid/replay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctaphid/clock.h"
#include "ctaphid/replay_player.h"
#include "ctaphid/status.h"
#include "ctaphid/trace.h"
#include "ctaphid/trace_msg.h"
#include "ctaphid/transport_int.h"

struct replay_priv {
    struct kc_player *player;
};

static struct kc_player *player_of(const struct kc_transport *t)
{
    const struct replay_priv *p;

    if (t == NULL || t->kind == NULL || strcmp(t->kind, "replay") != 0 || t->priv == NULL)
        return NULL;
    p = t->priv;
    return p->player;
}

static int replay_write(struct kc_transport *t, const uint8_t *report, size_t len)
{
    struct kc_player *pl = player_of(t);
    int rc;

    if (pl == NULL || report == NULL)
        return KC_ERR_INVALID_ARG;
    rc = kc_player_host_report(pl, report, len, kc_now_us());
    if (rc == KC_ERR_REPLAY_DIVERGED) {
        t->last_errno = 0;
        snprintf(t->last_error, sizeof(t->last_error), "%s", kc_player_error(pl));
    }
    return rc;
}

static void sleep_us(uint64_t us)
{
    struct timespec ts = {.tv_sec = (time_t)(us / 1000000u),
                          .tv_nsec = (long)(us % 1000000u) * 1000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int replay_read(struct kc_transport *t, uint8_t *buf, size_t cap, int timeout_ms)
{
    struct kc_player *pl = player_of(t);
    uint64_t deadline = kc_read_deadline(timeout_ms);

    if (pl == NULL || buf == NULL || cap == 0)
        return KC_ERR_INVALID_ARG;
    for (;;) {
        uint64_t due, now = kc_now_us();
        size_t n = kc_player_card_report(pl, now, buf, cap, &due);

        if (n > 0)
            return (int)n;
        /* Keep the trace's pace: keepalives and slow replies replay as
         * slowly as they were recorded; nothing more in the trace for now
         * means the device stays silent until the deadline. */
        if (due > deadline)
            due = deadline;
        if (due == UINT64_MAX || now >= deadline)
            return 0;
        if (due > now)
            sleep_us(due - now);
    }
}

static void replay_close(struct kc_transport *t)
{
    struct kc_player *pl = player_of(t);

    kc_player_free(pl);
    free(t->priv);
    free(t);
}

static const struct kc_transport_ops replay_ops = {
    .write = replay_write,
    .read = replay_read,
    .close = replay_close,
};

static int replay_wrap(struct kc_trace_log *log, struct kc_transport **out)
{
    struct kc_transport *t;
    struct replay_priv *p;
    char name[sizeof(log->name)];
    int rc;

    memcpy(name, log->name, sizeof(name));
    if ((t = kc_transport_alloc(&replay_ops, "replay", sizeof(*p))) == NULL) {
        kc_trace_log_free(log);
        return KC_ERR_NOMEM;
    }
    p = t->priv;
    if ((rc = kc_player_new(log, kc_now_us(), &p->player)) != KC_OK) {
        free(t->priv);
        free(t);
        return rc;
    }
    t->in_report_len = KC_HID_REPORT_LEN;
    t->out_report_len = KC_HID_REPORT_LEN;
    snprintf(t->uri, sizeof(t->uri), "replay:%.400s", name);
    *out = t;
    return KC_OK;
}

int kc_replay_open_buffer(const char *data, size_t len, const char *name, struct kc_transport **out,
                          char *errbuf, size_t errlen)
{
    struct kc_trace_log *log;
    int rc;

    if (out == NULL || (data == NULL && len > 0))
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if ((rc = kc_trace_log_parse(data, len, name, &log, errbuf, errlen)) != KC_OK)
        return rc;
    return replay_wrap(log, out);
}

int kc_replay_open(const char *file, struct kc_transport **out, char *errbuf, size_t errlen)
{
    struct kc_trace_log *log;
    int rc;

    if (out == NULL || file == NULL)
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if ((rc = kc_trace_log_load(file, &log, errbuf, errlen)) != KC_OK) {
        if (errbuf != NULL && errlen > 0 && rc != KC_ERR_PROTOCOL) {
            char tmp[256];
            snprintf(tmp, sizeof(tmp), "%s", errbuf);
            snprintf(errbuf, errlen, "replay:%s", tmp);
        }
        return rc;
    }
    return replay_wrap(log, out);
}

uint64_t kc_replay_mismatches(const struct kc_transport *t)
{
    return kc_player_divergences(player_of(t));
}

size_t kc_replay_remaining(const struct kc_transport *t)
{
    return kc_player_in_remaining(player_of(t));
}

int kc_replay_recorded_cdh(const struct kc_transport *t, uint8_t cdh[32])
{
    return kc_player_recorded_cdh(player_of(t), cdh) ? 1 : 0;
}

const char *kc_replay_error(const struct kc_transport *t)
{
    const struct kc_player *pl = player_of(t);

    return pl != NULL && kc_player_diverged(pl) ? kc_player_error(pl) : NULL;
}
