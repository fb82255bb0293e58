/* CTAPHID framing over a transport: INIT and channel allocation, messages
 * fragmented into reports and reassembled, keepalives surfaced, and every
 * wait bounded by the deadline of its phase. */
#include "ctaphid/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "ctaphid/clock.h"
#include "ctaphid/io_int.h"
#include "ctaphid/status.h"
#include "ctaphid/transport_int.h"
#include "util/rand.h"

#define ABORT_POLL_MS 50
#define MAX_REPORT_LEN 1024
#define LATE_GRACE_US 20000u

struct kc_dev {
    struct kc_transport *t;
    struct kc_timeouts to;
    uint32_t cid;
    bool have_cid;
    struct kc_init_info info;
    struct kc_dev_stats stats;
    kc_keepalive_fn keepalive_fn;
    void *keepalive_ctx;
    kc_abort_fn abort_fn;
    void *abort_ctx;
    struct kc_trace *trace;
    uint8_t last_hid_error;
    enum kc_phase last_phase;
    struct kc_last_packet last_packet;
    bool saw_upneeded;
    bool no_busy_retry;  /* report CHANNEL_BUSY at once instead of retrying */
    bool follow;         /* opened as "auto": find the card again when it re-enumerates */
    bool reenumerated;   /* the last transact followed the card to a new node */
    uint64_t t_start_us; /* when the current request was sent */
    size_t in_len, out_len;
};

/* ---- pure helpers ------------------------------------------------------ */

static uint32_t get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

const char *kc_phase_name(enum kc_phase p)
{
    switch (p) {
    case KC_PHASE_NONE:
        return "none";
    case KC_PHASE_INIT:
        return "init";
    case KC_PHASE_SEND:
        return "send";
    case KC_PHASE_COMMAND:
        return "command";
    case KC_PHASE_PRESENCE:
        return "presence";
    case KC_PHASE_CANCEL:
        return "cancel";
    }
    return "unknown";
}

size_t kc_frag_count(size_t len)
{
    if (len <= KC_HID_INIT_DATA)
        return 1;
    return 1 + (len - KC_HID_INIT_DATA + KC_HID_CONT_DATA - 1) / KC_HID_CONT_DATA;
}

int kc_frag_report(uint32_t cid, uint8_t cmd, const uint8_t *msg, size_t len, size_t index,
                   uint8_t *report, size_t report_len)
{
    size_t off, chunk;

    if (report == NULL || report_len < KC_HID_REPORT_LEN || len > KC_HID_MAX_MSG ||
        (msg == NULL && len > 0) || index >= kc_frag_count(len) || (cmd & KC_HID_TYPE_INIT) == 0)
        return KC_ERR_INVALID_ARG;
    memset(report, 0, report_len);
    put_be32(report, cid);
    if (index == 0) {
        report[4] = cmd;
        report[5] = (uint8_t)(len >> 8);
        report[6] = (uint8_t)len;
        chunk = len < KC_HID_INIT_DATA ? len : KC_HID_INIT_DATA;
        if (chunk > 0)
            memcpy(report + KC_HID_INIT_HDR, msg, chunk);
        return KC_OK;
    }
    off = KC_HID_INIT_DATA + (index - 1) * KC_HID_CONT_DATA;
    chunk = len - off < KC_HID_CONT_DATA ? len - off : KC_HID_CONT_DATA;
    report[4] = (uint8_t)(index - 1);
    memcpy(report + KC_HID_CONT_HDR, msg + off, chunk);
    return KC_OK;
}

void kc_reassembly_init(struct kc_reassembly *r, uint32_t cid, uint8_t *buf, size_t cap)
{
    if (r == NULL)
        return;
    memset(r, 0, sizeof(*r));
    r->cid = cid;
    r->buf = buf;
    r->cap = buf != NULL ? cap : 0;
}

int kc_reassembly_feed(struct kc_reassembly *r, const uint8_t *report, size_t len)
{
    size_t chunk;

    if (r == NULL || report == NULL)
        return KC_ERR_INVALID_ARG;
    if (len < KC_HID_CONT_HDR || get_be32(report) != r->cid)
        return KC_ERR_PROTOCOL;
    if (report[4] & KC_HID_TYPE_INIT) {
        size_t bcnt;
        if (r->started || len < KC_HID_INIT_HDR)
            return KC_ERR_PROTOCOL;
        bcnt = ((size_t)report[5] << 8) | report[6];
        if (bcnt > KC_HID_MAX_MSG)
            return KC_ERR_PROTOCOL;
        if (bcnt > r->cap)
            return KC_ERR_TOO_LARGE;
        chunk = bcnt < KC_HID_INIT_DATA ? bcnt : KC_HID_INIT_DATA;
        if (len < KC_HID_INIT_HDR + chunk)
            return KC_ERR_PROTOCOL;
        if (chunk > 0)
            memcpy(r->buf, report + KC_HID_INIT_HDR, chunk);
        r->cmd = report[4];
        r->expected = bcnt;
        r->have = chunk;
        r->next_seq = 0;
        r->started = true;
    } else {
        /* A continuation before an init packet, after the message is
         * complete, or out of order. */
        if (!r->started || r->have >= r->expected || report[4] != r->next_seq)
            return KC_ERR_PROTOCOL;
        chunk = r->expected - r->have;
        if (chunk > KC_HID_CONT_DATA)
            chunk = KC_HID_CONT_DATA;
        if (len < KC_HID_CONT_HDR + chunk)
            return KC_ERR_PROTOCOL;
        memcpy(r->buf + r->have, report + KC_HID_CONT_HDR, chunk);
        r->have += chunk;
        r->next_seq++;
    }
    return r->have == r->expected ? 1 : 0;
}

/* ---- device handle ----------------------------------------------------- */

void kc_timeouts_default(struct kc_timeouts *to)
{
    if (to == NULL)
        return;
    to->init_ms = 3000;
    to->command_ms = 5000;
    to->presence_ms = 30000;
    to->cancel_ms = 500;
}

void kc_dev_set_timeouts(struct kc_dev *d, const struct kc_timeouts *to)
{
    struct kc_timeouts def;

    if (d == NULL)
        return;
    kc_timeouts_default(&def);
    if (to == NULL) {
        d->to = def;
        return;
    }
    /* A negative value means "the default": waits are never unbounded. */
    d->to.init_ms = to->init_ms >= 0 ? to->init_ms : def.init_ms;
    d->to.command_ms = to->command_ms >= 0 ? to->command_ms : def.command_ms;
    d->to.presence_ms = to->presence_ms >= 0 ? to->presence_ms : def.presence_ms;
    d->to.cancel_ms = to->cancel_ms >= 0 ? to->cancel_ms : def.cancel_ms;
}

int kc_dev_wrap(struct kc_dev **out, struct kc_transport *t, const struct kc_timeouts *to)
{
    struct kc_dev *d;

    if (out == NULL || t == NULL || t->ops == NULL)
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return KC_ERR_NOMEM;
    d->t = t;
    d->in_len = t->in_report_len != 0 ? t->in_report_len : KC_HID_REPORT_LEN;
    d->out_len = t->out_report_len != 0 ? t->out_report_len : KC_HID_REPORT_LEN;
    /* CTAPHID needs 64-byte reports; a larger report is zero-padded. */
    if (d->in_len < KC_HID_REPORT_LEN || d->out_len < KC_HID_REPORT_LEN ||
        d->in_len > MAX_REPORT_LEN || d->out_len > MAX_REPORT_LEN) {
        free(d);
        return KC_ERR_UNSUPPORTED;
    }
    kc_dev_set_timeouts(d, to);
    d->follow = t->opened_as_auto;
    *out = d;
    return KC_OK;
}

void kc_dev_close(struct kc_dev *d)
{
    if (d == NULL)
        return;
    kc_transport_close(d->t);
    free(d);
}

void kc_dev_set_keepalive_cb(struct kc_dev *d, kc_keepalive_fn fn, void *ctx)
{
    if (d == NULL)
        return;
    d->keepalive_fn = fn;
    d->keepalive_ctx = ctx;
}

void kc_dev_set_abort_cb(struct kc_dev *d, kc_abort_fn fn, void *ctx)
{
    if (d == NULL)
        return;
    d->abort_fn = fn;
    d->abort_ctx = ctx;
}

void kc_dev_set_trace(struct kc_dev *d, struct kc_trace *tr)
{
    if (d != NULL)
        d->trace = tr;
}

struct kc_transport *kc_dev_transport(struct kc_dev *d)
{
    return d != NULL ? d->t : NULL;
}

const struct kc_init_info *kc_dev_init_info(const struct kc_dev *d)
{
    return d != NULL ? &d->info : NULL;
}

const struct kc_dev_stats *kc_dev_stats(const struct kc_dev *d)
{
    return d != NULL ? &d->stats : NULL;
}

uint8_t kc_dev_last_hid_error(const struct kc_dev *d)
{
    return d != NULL ? d->last_hid_error : 0;
}

enum kc_phase kc_dev_last_phase(const struct kc_dev *d)
{
    return d != NULL ? d->last_phase : KC_PHASE_NONE;
}

const struct kc_last_packet *kc_dev_last_packet(const struct kc_dev *d)
{
    return d != NULL ? &d->last_packet : NULL;
}

bool kc_dev_saw_upneeded(const struct kc_dev *d)
{
    return d != NULL && d->saw_upneeded;
}

/* ---- report I/O -------------------------------------------------------- */

static uint64_t elapsed_us(const struct kc_dev *d)
{
    uint64_t now = kc_now_us();

    return now >= d->t_start_us ? now - d->t_start_us : 0;
}

static void trace_transport_error(struct kc_dev *d, const char *what, int rc)
{
    char detail[320];

    snprintf(detail, sizeof(detail), "%s: %s", kc_err_name(rc),
             d->t->last_error[0] != '\0' ? d->t->last_error : kc_strerror(rc));
    kc_trace_event(d->trace, what, d->t->last_errno, detail);
}

static int write_report(struct kc_dev *d, const uint8_t *report)
{
    int rc = d->t->ops->write(d->t, report, d->out_len);

    if (rc != KC_OK) {
        trace_transport_error(d, "write", rc);
        return rc < 0 ? rc : KC_ERR_IO;
    }
    d->stats.reports_out++;
    kc_trace_report(d->trace, KC_TRACE_OUT, report, d->out_len);
    return KC_OK;
}

/* Reads one report before deadline_us. Returns its length, 0 when the
 * deadline passed, or a KC_ERR_*. With check_abort, the abort callback is
 * polled at least every ABORT_POLL_MS and *aborted set when it fires. */
static int read_report(struct kc_dev *d, uint8_t *buf, uint64_t deadline_us, bool check_abort,
                       bool *aborted)
{
    *aborted = false;
    for (;;) {
        uint64_t now = kc_now_us();
        uint64_t left_ms;
        int rc;

        if (check_abort && d->abort_fn != NULL && d->abort_fn(d->abort_ctx) != 0) {
            *aborted = true;
            return 0;
        }
        /* A passed deadline still takes reports that are already there,
         * but a device that never stops sending cannot hold the wait open. */
        if (now >= deadline_us + LATE_GRACE_US)
            return 0;
        left_ms = now >= deadline_us ? 0 : (deadline_us - now + 999) / 1000;
        if (check_abort && d->abort_fn != NULL && left_ms > ABORT_POLL_MS)
            left_ms = ABORT_POLL_MS;
        rc = d->t->ops->read(d->t, buf, d->in_len, (int)left_ms);
        if (rc < 0) {
            trace_transport_error(d, "read", rc);
            return rc;
        }
        if (rc > 0) {
            if ((size_t)rc > d->in_len)
                rc = (int)d->in_len;
            d->stats.reports_in++;
            kc_trace_report(d->trace, KC_TRACE_IN, buf, (size_t)rc);
            return rc;
        }
        if (now >= deadline_us)
            return 0;
    }
}

static void note_packet(struct kc_dev *d, const uint8_t *report, size_t len)
{
    d->last_packet.valid = true;
    d->last_packet.cmd = report[4];
    d->last_packet.status =
        len > KC_HID_INIT_HDR && (report[5] | report[6]) != 0 ? report[KC_HID_INIT_HDR] : 0;
    d->last_packet.at_us = elapsed_us(d);
}

static void trace_skip(struct kc_dev *d, const char *why, const uint8_t *report, size_t len)
{
    char detail[96];

    snprintf(detail, sizeof(detail), "%s (cid %08x, byte4 0x%02x)", why,
             len >= 5 ? get_be32(report) : 0, len >= 5 ? report[4] : 0);
    kc_trace_event(d->trace, "skip", 0, detail);
}

static int send_message(struct kc_dev *d, uint32_t cid, uint8_t cmd, const uint8_t *msg, size_t len)
{
    uint8_t report[MAX_REPORT_LEN];
    size_t n = kc_frag_count(len);
    int rc;

    for (size_t i = 0; i < n; i++) {
        if ((rc = kc_frag_report(cid, cmd, msg, len, i, report, d->out_len)) != KC_OK)
            return rc;
        if ((rc = write_report(d, report)) != KC_OK)
            return rc;
    }
    return KC_OK;
}

/* ---- INIT -------------------------------------------------------------- */

int kc_dev_init(struct kc_dev *d, struct kc_init_info *info)
{
    uint8_t nonce[KC_HID_NONCE_LEN];
    uint8_t buf[MAX_REPORT_LEN];
    uint64_t deadline;
    bool aborted;
    int rc;

    if (d == NULL)
        return KC_ERR_INVALID_ARG;
    d->last_phase = KC_PHASE_NONE;
    d->last_packet.valid = false;
    d->last_hid_error = 0;
    if (kcu_random(nonce, sizeof(nonce)) != 0)
        return KC_ERR_CRYPTO;
    d->t_start_us = kc_now_us();
    if ((rc = send_message(d, KC_HID_BROADCAST_CID, KC_HID_INIT, nonce, sizeof(nonce))) != KC_OK) {
        d->last_phase = KC_PHASE_SEND;
        return rc;
    }
    deadline = d->t_start_us + (uint64_t)d->to.init_ms * 1000u;
    for (;;) {
        rc = read_report(d, buf, deadline, false, &aborted);
        if (rc == 0) {
            d->last_phase = KC_PHASE_INIT;
            kc_trace_event(d->trace, "timeout", 0, "no INIT reply with our nonce");
            return KC_ERR_TIMEOUT;
        }
        if (rc < 0) {
            d->last_phase = KC_PHASE_INIT;
            return rc;
        }
        if (rc < KC_HID_INIT_HDR || get_be32(buf) != KC_HID_BROADCAST_CID) {
            d->stats.skipped_other_cid++;
            trace_skip(d, "not on the broadcast channel", buf, (size_t)rc);
            continue;
        }
        note_packet(d, buf, (size_t)rc);
        /* Another host's INIT reply, or a reply to an earlier INIT: only
         * our nonce and the exact length count. */
        if (buf[4] != KC_HID_INIT || buf[5] != 0 || buf[6] != KC_HID_INIT_RESP_LEN ||
            (size_t)rc < KC_HID_INIT_HDR + KC_HID_INIT_RESP_LEN ||
            CRYPTO_memcmp(buf + KC_HID_INIT_HDR, nonce, sizeof(nonce)) != 0) {
            d->stats.skipped_stale++;
            trace_skip(d, "INIT reply not for our nonce", buf, (size_t)rc);
            continue;
        }
        break;
    }
    {
        const uint8_t *p = buf + KC_HID_INIT_HDR + KC_HID_NONCE_LEN;
        uint32_t cid = get_be32(p);
        if (cid == 0 || cid == KC_HID_BROADCAST_CID) {
            d->last_phase = KC_PHASE_INIT;
            kc_trace_event(d->trace, "protocol", 0, "INIT reply allocated an unusable channel");
            return KC_ERR_PROTOCOL;
        }
        d->cid = cid;
        d->have_cid = true;
        d->info.cid = cid;
        d->info.protocol_version = p[4];
        d->info.major = p[5];
        d->info.minor = p[6];
        d->info.build = p[7];
        d->info.capabilities = p[8];
    }
    if (info != NULL)
        *info = d->info;
    return KC_OK;
}

int kc_dev_open_transport(struct kc_dev **out, struct kc_transport *t, const struct kc_timeouts *to,
                          const char *name, char *errbuf, size_t errlen)
{
    struct kc_dev *d = NULL;
    int rc;

    if (out == NULL || t == NULL || name == NULL) {
        kc_transport_close(t);
        return KC_ERR_INVALID_ARG;
    }
    *out = NULL;
    if ((rc = kc_dev_wrap(&d, t, to)) != KC_OK) {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "%s: reports of %zu/%zu bytes cannot carry CTAPHID", name,
                     t->in_report_len, t->out_report_len);
        kc_transport_close(t);
        return rc;
    }
    if ((rc = kc_dev_init(d, NULL)) != KC_OK) {
        if (errbuf != NULL && errlen > 0) {
            if (rc == KC_ERR_TIMEOUT)
                snprintf(errbuf, errlen, "%s: no answer to CTAPHID_INIT within %d ms", name,
                         d->to.init_ms);
            else if (t->last_error[0] != '\0')
                snprintf(errbuf, errlen, "%s: INIT failed: %s", name, t->last_error);
            else
                snprintf(errbuf, errlen, "%s: INIT failed: %s", name, kc_strerror(rc));
        }
        kc_dev_close(d);
        return rc;
    }
    *out = d;
    return KC_OK;
}

/* ---- transactions ------------------------------------------------------ */

static int send_cancel(struct kc_dev *d)
{
    uint8_t report[MAX_REPORT_LEN];
    int rc;

    if ((rc = kc_frag_report(d->cid, KC_HID_CANCEL, NULL, 0, 0, report, d->out_len)) != KC_OK)
        return rc;
    if ((rc = write_report(d, report)) != KC_OK)
        return rc;
    d->stats.cancels_sent++;
    return KC_OK;
}

/* After a deadline or an abort: CANCEL, then a short wait for the card to
 * close the request (a reply carrying KEEPALIVE_CANCEL, or an error). The
 * outcome only informs last_packet; the caller's result is already set. */
static void cancel_and_drain(struct kc_dev *d, uint8_t cmd)
{
    uint8_t buf[MAX_REPORT_LEN];
    uint64_t deadline;
    bool aborted;
    int rc;

    if (send_cancel(d) != KC_OK)
        return;
    deadline = kc_now_us() + (uint64_t)d->to.cancel_ms * 1000u;
    for (;;) {
        rc = read_report(d, buf, deadline, false, &aborted);
        if (rc <= 0) {
            if (rc == 0)
                kc_trace_event(d->trace, "cancel", 0, "no answer to CANCEL in time");
            return;
        }
        if (rc < KC_HID_INIT_HDR || get_be32(buf) != d->cid) {
            d->stats.skipped_other_cid++;
            continue;
        }
        if ((buf[4] & KC_HID_TYPE_INIT) == 0) {
            d->stats.skipped_stale++;
            continue;
        }
        if (buf[4] == KC_HID_KEEPALIVE) {
            d->stats.keepalives++;
            continue;
        }
        note_packet(d, buf, (size_t)rc);
        if (buf[4] == cmd || buf[4] == KC_HID_ERROR) {
            if (buf[4] == KC_HID_ERROR)
                d->last_hid_error = d->last_packet.status;
            return;
        }
        d->stats.skipped_stale++;
    }
}

static void on_keepalive(struct kc_dev *d, const uint8_t *report, size_t len, enum kc_phase *phase,
                         uint64_t *deadline)
{
    uint8_t status =
        len > KC_HID_INIT_HDR && (report[5] | report[6]) != 0 ? report[KC_HID_INIT_HDR] : 0;
    uint64_t at = elapsed_us(d);

    d->stats.keepalives++;
    if (d->keepalive_fn != NULL)
        d->keepalive_fn(d->keepalive_ctx, status, at);
    /* From the first UPNEEDED on, the card waits for a person: the presence
     * deadline replaces the command deadline. */
    if (status == KC_KEEPALIVE_UPNEEDED && !d->saw_upneeded) {
        d->saw_upneeded = true;
        *phase = KC_PHASE_PRESENCE;
        *deadline = kc_now_us() + (uint64_t)d->to.presence_ms * 1000u;
    }
}

/* A card serves one channel at a time and answers others CHANNEL_BUSY (CTAP
 * 2.1, 11.2.9.1.6); clients sharing a card wait and send again. Backs off
 * from 5 ms doubling to 100 ms, only before any reply or keepalive came, and
 * never past the command deadline: then the BUSY error is returned as is. */
#define BUSY_BACKOFF_MIN_US 5000u
#define BUSY_BACKOFF_MAX_US 100000u

static bool busy_retry(struct kc_dev *d, uint64_t *backoff_us, uint64_t deadline, bool heard)
{
    uint64_t now = kc_now_us();
    struct timespec ts;

    if (d->no_busy_retry || d->last_hid_error != KC_HID_ERR_CHANNEL_BUSY || heard ||
        now + *backoff_us >= deadline)
        return false;
    ts.tv_sec = (time_t)(*backoff_us / 1000000u);
    ts.tv_nsec = (long)(*backoff_us % 1000000u) * 1000;
    nanosleep(&ts, NULL);
    *backoff_us = *backoff_us * 2 > BUSY_BACKOFF_MAX_US ? BUSY_BACKOFF_MAX_US : *backoff_us * 2;
    d->stats.busy_retries++;
    kc_trace_event(d->trace, "busy-retry", 0, "CHANNEL_BUSY: sending again");
    return true;
}

void kc_dev_set_busy_retry(struct kc_dev *d, bool on)
{
    if (d != NULL)
        d->no_busy_retry = !on;
}

static int transact_once(struct kc_dev *d, uint8_t cmd, const uint8_t *in, size_t in_len,
                         uint8_t *out, size_t out_cap, size_t *out_len)
{
    uint8_t buf[MAX_REPORT_LEN];
    struct kc_reassembly r;
    enum kc_phase phase;
    uint64_t deadline, backoff_us, keepalives_before;
    bool aborted;
    int rc;

    if (out_len != NULL)
        *out_len = 0;
    if (d == NULL || (in == NULL && in_len > 0) || (cmd & KC_HID_TYPE_INIT) == 0 ||
        cmd == KC_HID_INIT)
        return KC_ERR_INVALID_ARG;
    if (in_len > KC_HID_MAX_MSG)
        return KC_ERR_TOO_LARGE;
    /* A wrapped transport gets its channel on first use. */
    if (!d->have_cid && (rc = kc_dev_init(d, NULL)) != KC_OK)
        return rc;

    d->last_phase = KC_PHASE_NONE;
    d->last_packet.valid = false;
    d->last_hid_error = 0;
    d->saw_upneeded = false;
    d->t_start_us = kc_now_us();
    if ((rc = send_message(d, d->cid, cmd, in, in_len)) != KC_OK) {
        d->last_phase = KC_PHASE_SEND;
        return rc;
    }

    phase = KC_PHASE_COMMAND;
    deadline = kc_now_us() + (uint64_t)d->to.command_ms * 1000u;
    backoff_us = BUSY_BACKOFF_MIN_US;
    keepalives_before = d->stats.keepalives;
    kc_reassembly_init(&r, d->cid, out, out_cap);
    for (;;) {
        rc = read_report(d, buf, deadline, true, &aborted);
        if (aborted || rc == 0) {
            d->last_phase = phase;
            kc_trace_event(d->trace, aborted ? "abort" : "timeout", 0, kc_phase_name(phase));
            cancel_and_drain(d, cmd);
            return aborted ? KC_ERR_ABORTED : KC_ERR_TIMEOUT;
        }
        if (rc < 0) {
            d->last_phase = phase;
            return rc;
        }
        if (rc < KC_HID_CONT_HDR || get_be32(buf) != d->cid) {
            d->stats.skipped_other_cid++;
            trace_skip(d, "other channel", buf, (size_t)rc);
            continue;
        }
        if (buf[4] & KC_HID_TYPE_INIT) {
            if (rc < KC_HID_INIT_HDR) {
                d->stats.skipped_stale++;
                trace_skip(d, "short init packet", buf, (size_t)rc);
                continue;
            }
            note_packet(d, buf, (size_t)rc);
            if (buf[4] == KC_HID_KEEPALIVE) {
                on_keepalive(d, buf, (size_t)rc, &phase, &deadline);
                continue;
            }
            if (buf[4] == KC_HID_ERROR) {
                d->last_hid_error = d->last_packet.status;
                if (busy_retry(d, &backoff_us, deadline,
                               d->stats.keepalives != keepalives_before)) {
                    if ((rc = send_message(d, d->cid, cmd, in, in_len)) != KC_OK) {
                        d->last_phase = KC_PHASE_SEND;
                        return rc;
                    }
                    continue;
                }
                d->last_phase = phase;
                return KC_ERR_HID;
            }
            if (buf[4] != cmd) {
                /* The late answer to an earlier, cancelled request. */
                d->stats.skipped_stale++;
                trace_skip(d, "reply to another command", buf, (size_t)rc);
                continue;
            }
        } else if (!r.started) {
            d->stats.skipped_stale++;
            trace_skip(d, "continuation without init packet", buf, (size_t)rc);
            continue;
        }
        rc = kc_reassembly_feed(&r, buf, (size_t)rc);
        if (rc < 0) {
            d->last_phase = phase;
            kc_trace_event(d->trace, "reassembly", 0, kc_err_name(rc));
            return rc;
        }
        if (rc == 1)
            break;
    }
    if (out_len != NULL)
        *out_len = r.have;
    return KC_OK;
}

/* How long a card that re-enumerated may take to come back (a USB
 * re-enumeration plus udev is well under a second; Qubes re-attach more). */
#define REENUMERATE_WAIT_MS 3000

int kc_dev_transact(struct kc_dev *d, uint8_t cmd, const uint8_t *in, size_t in_len, uint8_t *out,
                    size_t out_cap, size_t *out_len)
{
    int rc;

    if (d != NULL)
        d->reenumerated = false;
    rc = transact_once(d, cmd, in, in_len, out, out_cap, out_len);
    if (rc != KC_ERR_UNPLUGGED || !d->follow)
        return rc;
    /* The node went away under us. An "auto" device is the card, not the
     * node: find it again by its identity, open a channel, and send the
     * request once more (the card never completed the first one). */
    kc_trace_event(d->trace, "unplugged", d->t->last_errno, d->t->uri);
    if (d->t->reopen == NULL || d->t->reopen(d->t, REENUMERATE_WAIT_MS) != KC_OK)
        return KC_ERR_UNPLUGGED;
    kc_trace_event(d->trace, "re-enumerated", 0, d->t->uri);
    d->have_cid = false;
    d->reenumerated = true;
    d->stats.reopens++;
    if ((rc = kc_dev_init(d, NULL)) != KC_OK)
        return rc;
    return transact_once(d, cmd, in, in_len, out, out_cap, out_len);
}

bool kc_dev_reenumerated(const struct kc_dev *d)
{
    return d != NULL && d->reenumerated;
}

void kc_dev_set_follow(struct kc_dev *d, bool on)
{
    if (d != NULL)
        d->follow = on;
}

int kc_dev_ping(struct kc_dev *d, const uint8_t *data, size_t len, uint8_t *echo, size_t cap,
                size_t *echo_len)
{
    return kc_dev_transact(d, KC_HID_PING, data, len, echo, cap, echo_len);
}

int kc_dev_wink(struct kc_dev *d)
{
    size_t n;

    return kc_dev_transact(d, KC_HID_WINK, NULL, 0, NULL, 0, &n);
}

int kc_dev_lock(struct kc_dev *d, uint8_t seconds)
{
    size_t n;

    return kc_dev_transact(d, KC_HID_LOCK, &seconds, 1, NULL, 0, &n);
}

int kc_dev_cancel(struct kc_dev *d)
{
    if (d == NULL || !d->have_cid)
        return KC_ERR_INVALID_ARG;
    return send_cancel(d);
}
