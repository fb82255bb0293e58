/* The card side of CTAPHID (CTAP 2.1, section 11.2): channel allocation,
 * message reassembly with sequence and timeout checks, one transaction at a
 * time as real hardware does, LOCK, PING, WINK, CANCEL, KEEPALIVE, and the
 * HID-layer fault profiles. */
#include <stdlib.h>
#include <string.h>

#include "ctaphid/status.h"
#include "harness/vcard/hid.h"
#include "harness/vcard/personality.h"

#define PROTOCOL_VERSION 2

enum job_state {
    JOB_NONE = 0,
    JOB_READY,   /* complete message waiting for vc_hid_job_take */
    JOB_RUNNING, /* the core has it */
};

struct vc_hid {
    vc_hid_send_fn send;
    void *send_ctx;
    vc_hid_log_fn log;
    void *log_ctx;
    struct vc_faults faults;
    bool ctap1;
    bool ctap2;
    bool wink;
    bool wrong_channel;        /* the personality's quirk: like the wrong-cid fault */
    uint8_t device_version[3]; /* INIT major, minor, build */

    /* allocated channels: a ring, the oldest is forgotten when full */
    uint32_t chans[VC_HID_MAX_CHANNELS];
    size_t nchans;
    size_t chan_head;
    uint32_t next_cid;

    /* the message being received (at most one at a time) */
    bool rx_active;
    uint32_t rx_cid;
    uint8_t rx_cmd;
    struct vc_hid_peer rx_peer;
    size_t rx_total;
    size_t rx_got;
    uint8_t rx_seq;
    uint64_t rx_first_ms;
    uint64_t rx_last_ms;
    uint8_t buf[KC_HID_MAX_MSG];

    /* the message the core works on */
    enum job_state job;
    uint32_t job_cid;
    uint8_t job_cmd;
    struct vc_hid_peer job_peer;
    size_t job_len;
    uint64_t job_start_ms;
    bool job_cancelled;
    bool job_abandoned;
    uint8_t ka_status;
    uint64_t ka_next_ms;

    /* CTAPHID_LOCK */
    uint32_t lock_cid;
    uint64_t lock_until_ms;

    uint64_t reports_out; /* counts reports for drop-every/duplicate-every */
};

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

struct vc_hid *vc_hid_new(vc_hid_send_fn send, void *send_ctx)
{
    struct vc_hid *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->send = send;
    h->send_ctx = send_ctx;
    h->ctap1 = true;
    h->ctap2 = true;
    h->next_cid = 1;
    vc_hid_set_personality(h, NULL);
    return h;
}

void vc_hid_free(struct vc_hid *h)
{
    free(h);
}

void vc_hid_set_log(struct vc_hid *h, vc_hid_log_fn fn, void *ctx)
{
    h->log = fn;
    h->log_ctx = ctx;
}

void vc_hid_set_caps(struct vc_hid *h, bool ctap1, bool ctap2)
{
    h->ctap1 = ctap1;
    h->ctap2 = ctap2;
}

void vc_hid_set_personality(struct vc_hid *h, const struct vc_personality *p)
{
    if (p == NULL)
        p = vc_personality_default();
    h->wink = p->wink;
    h->wrong_channel = p->wrong_channel;
    memcpy(h->device_version, p->device_version, sizeof(h->device_version));
}

void vc_hid_set_faults(struct vc_hid *h, const struct vc_faults *f)
{
    h->faults = *f;
}

static bool fault(const struct vc_hid *h, enum vc_fault_kind k)
{
    return h->faults.on[k];
}

static bool ctap2_offered(const struct vc_hid *h)
{
    return h->ctap2 && !fault(h, VC_FAULT_CTAP1_ONLY);
}

static bool ctap1_offered(const struct vc_hid *h)
{
    return h->ctap1 || fault(h, VC_FAULT_CTAP1_ONLY);
}

/* ---- output ---------------------------------------------------------- */

static bool peer_eq(const struct vc_hid_peer *a, const struct vc_hid_peer *b)
{
    return a->len == b->len && memcmp(a->addr, b->addr, a->len) == 0;
}

static bool channel_allocated(const struct vc_hid *h, uint32_t cid)
{
    for (size_t i = 0; i < h->nchans; i++)
        if (h->chans[i] == cid)
            return true;
    return false;
}

/* A channel id the host never got, for the wrong-cid fault. */
static uint32_t wrong_cid(const struct vc_hid *h, uint32_t cid)
{
    uint32_t w = cid ^ 0x5a000000u;

    while (w == 0 || w == KC_HID_BROADCAST_CID || w == cid || channel_allocated(h, w))
        w += 0x01000001u;
    return w;
}

/* Every report leaves through here, so the output faults see them all. */
static void send_report(struct vc_hid *h, const struct vc_hid_peer *to, uint8_t *rep)
{
    int copies = 1;

    if (fault(h, VC_FAULT_UNPLUG))
        return;
    h->reports_out++;
    if (fault(h, VC_FAULT_DROP_EVERY) && h->faults.arg[VC_FAULT_DROP_EVERY] > 0 &&
        h->reports_out % (uint64_t)h->faults.arg[VC_FAULT_DROP_EVERY] == 0)
        return;
    if (fault(h, VC_FAULT_DUPLICATE_EVERY) && h->faults.arg[VC_FAULT_DUPLICATE_EVERY] > 0 &&
        h->reports_out % (uint64_t)h->faults.arg[VC_FAULT_DUPLICATE_EVERY] == 0)
        copies = 2;
    if (fault(h, VC_FAULT_WRONG_CID) || h->wrong_channel) {
        uint32_t cid = get_be32(rep);

        if (cid != KC_HID_BROADCAST_CID)
            put_be32(rep, wrong_cid(h, cid));
    }
    for (int i = 0; i < copies; i++)
        h->send(h->send_ctx, to, rep);
}

/* Fragments one message into reports. */
static void emit(struct vc_hid *h, const struct vc_hid_peer *to, uint32_t cid, uint8_t cmd,
                 const uint8_t *msg, size_t len)
{
    uint8_t rep[KC_HID_REPORT_LEN];
    size_t off;
    size_t n;
    uint8_t seq = 0;

    if (len > KC_HID_MAX_MSG)
        len = KC_HID_MAX_MSG; /* cannot happen: callers check; never overrun */
    memset(rep, 0, sizeof(rep));
    put_be32(rep, cid);
    rep[4] = cmd;
    rep[5] = (uint8_t)(len >> 8);
    rep[6] = (uint8_t)len;
    n = len < KC_HID_INIT_DATA ? len : KC_HID_INIT_DATA;
    if (n > 0)
        memcpy(rep + KC_HID_INIT_HDR, msg, n);
    send_report(h, to, rep);
    off = n;
    while (off < len) {
        memset(rep, 0, sizeof(rep));
        put_be32(rep, cid);
        rep[4] = seq;
        if (fault(h, VC_FAULT_CORRUPT_SEQ))
            rep[4] = (uint8_t)((seq + 1) & 0x7f);
        n = len - off < KC_HID_CONT_DATA ? len - off : KC_HID_CONT_DATA;
        memcpy(rep + KC_HID_CONT_HDR, msg + off, n);
        send_report(h, to, rep);
        off += n;
        seq++;
    }
}

static void log_request(struct vc_hid *h, uint8_t cmd, uint32_t cid, uint8_t ctap_cmd,
                        const char *outcome, int status, uint64_t start_ms, uint64_t now_ms,
                        const struct vc_hid_peer *peer)
{
    struct vc_hid_log_entry e;

    if (h->log == NULL)
        return;
    e.cmd = cmd;
    e.cid = cid;
    e.ctap_cmd = ctap_cmd;
    e.outcome = outcome;
    e.status = status;
    e.duration_ms = now_ms >= start_ms ? now_ms - start_ms : 0;
    e.peer = peer;
    h->log(h->log_ctx, &e);
}

static void reply_error(struct vc_hid *h, const struct vc_hid_peer *to, uint32_t cid, uint8_t cmd,
                        uint8_t code, uint64_t start_ms, uint64_t now_ms)
{
    emit(h, to, cid, KC_HID_ERROR, &code, 1);
    log_request(h, cmd, cid, 0, "error", code, start_ms, now_ms, to);
}

static void reply_ok(struct vc_hid *h, const struct vc_hid_peer *to, uint32_t cid, uint8_t cmd,
                     const uint8_t *msg, size_t len, uint64_t start_ms, uint64_t now_ms)
{
    emit(h, to, cid, cmd, msg, len);
    log_request(h, cmd, cid, 0, "ok", 0, start_ms, now_ms, to);
}

/* ---- channels -------------------------------------------------------- */

static uint32_t allocate_channel(struct vc_hid *h)
{
    uint32_t cid;

    do {
        cid = h->next_cid++;
    } while (cid == 0 || cid == KC_HID_BROADCAST_CID || channel_allocated(h, cid));
    if (h->nchans < VC_HID_MAX_CHANNELS) {
        h->chans[h->nchans++] = cid;
    } else {
        h->chans[h->chan_head] = cid;
        h->chan_head = (h->chan_head + 1) % VC_HID_MAX_CHANNELS;
    }
    return cid;
}

static bool locked_by_other(struct vc_hid *h, uint32_t cid, uint64_t now_ms)
{
    if (h->lock_cid == 0)
        return false;
    if (now_ms >= h->lock_until_ms) {
        h->lock_cid = 0;
        return false;
    }
    return cid != h->lock_cid;
}

static void abort_rx(struct vc_hid *h)
{
    h->rx_active = false;
    h->rx_got = 0;
    h->rx_total = 0;
}

static void handle_init(struct vc_hid *h, const struct vc_hid_peer *from, uint32_t cid,
                        const uint8_t *rep, size_t bcnt, uint64_t now_ms)
{
    uint8_t resp[KC_HID_INIT_RESP_LEN];
    uint32_t newcid;
    uint8_t caps = h->wink ? KC_HID_CAP_WINK : 0;

    if (fault(h, VC_FAULT_NO_INIT_REPLY))
        return;
    if (cid == 0) {
        reply_error(h, from, cid, KC_HID_INIT, KC_HID_ERR_INVALID_CHANNEL, now_ms, now_ms);
        return;
    }
    if (bcnt != KC_HID_NONCE_LEN) {
        reply_error(h, from, cid, KC_HID_INIT, KC_HID_ERR_INVALID_LEN, now_ms, now_ms);
        return;
    }
    if (locked_by_other(h, cid, now_ms)) {
        reply_error(h, from, cid, KC_HID_INIT, KC_HID_ERR_CHANNEL_BUSY, now_ms, now_ms);
        return;
    }
    if (cid == KC_HID_BROADCAST_CID) {
        newcid = allocate_channel(h);
    } else if (channel_allocated(h, cid)) {
        /* resync: whatever the channel was doing is forgotten */
        if (h->rx_active && h->rx_cid == cid)
            abort_rx(h);
        if (h->job != JOB_NONE && h->job_cid == cid) {
            h->job_cancelled = true;
            h->job_abandoned = true;
        }
        newcid = cid;
    } else {
        reply_error(h, from, cid, KC_HID_INIT, KC_HID_ERR_INVALID_CHANNEL, now_ms, now_ms);
        return;
    }
    if (ctap2_offered(h))
        caps |= KC_HID_CAP_CBOR;
    if (!ctap1_offered(h))
        caps |= KC_HID_CAP_NMSG;
    memcpy(resp, rep + KC_HID_INIT_HDR, KC_HID_NONCE_LEN);
    put_be32(resp + 8, newcid);
    resp[12] = PROTOCOL_VERSION;
    resp[13] = h->device_version[0];
    resp[14] = h->device_version[1];
    resp[15] = h->device_version[2];
    resp[16] = caps;
    reply_ok(h, from, cid, KC_HID_INIT, resp, sizeof(resp), now_ms, now_ms);
}

/* A whole message has arrived in h->buf. */
static void dispatch(struct vc_hid *h, uint64_t now_ms)
{
    uint32_t cid = h->rx_cid;
    uint8_t cmd = h->rx_cmd;
    struct vc_hid_peer peer = h->rx_peer;
    size_t len = h->rx_total;
    uint64_t start = h->rx_first_ms;

    abort_rx(h);
    switch (cmd) {
    case KC_HID_PING:
        reply_ok(h, &peer, cid, cmd, h->buf, len, start, now_ms);
        return;
    case KC_HID_WINK:
        if (!h->wink) {
            reply_error(h, &peer, cid, cmd, KC_HID_ERR_INVALID_CMD, start, now_ms);
            return;
        }
        if (len != 0) {
            reply_error(h, &peer, cid, cmd, KC_HID_ERR_INVALID_LEN, start, now_ms);
            return;
        }
        reply_ok(h, &peer, cid, cmd, NULL, 0, start, now_ms);
        return;
    case KC_HID_LOCK:
        if (len != 1) {
            reply_error(h, &peer, cid, cmd, KC_HID_ERR_INVALID_LEN, start, now_ms);
            return;
        }
        if (h->buf[0] > VC_HID_LOCK_MAX_S) {
            reply_error(h, &peer, cid, cmd, KC_HID_ERR_INVALID_PAR, start, now_ms);
            return;
        }
        if (h->buf[0] == 0) {
            h->lock_cid = 0;
            h->lock_until_ms = 0;
        } else {
            h->lock_cid = cid;
            h->lock_until_ms = now_ms + (uint64_t)h->buf[0] * 1000;
        }
        reply_ok(h, &peer, cid, cmd, NULL, 0, start, now_ms);
        return;
    case KC_HID_MSG:
    case KC_HID_CBOR:
        if ((cmd == KC_HID_MSG && !ctap1_offered(h)) || (cmd == KC_HID_CBOR && !ctap2_offered(h))) {
            reply_error(h, &peer, cid, cmd, KC_HID_ERR_INVALID_CMD, start, now_ms);
            return;
        }
        if (len == 0) {
            reply_error(h, &peer, cid, cmd, KC_HID_ERR_INVALID_LEN, start, now_ms);
            return;
        }
        h->job = JOB_READY;
        h->job_cid = cid;
        h->job_cmd = cmd;
        h->job_peer = peer;
        h->job_len = len;
        h->job_start_ms = start;
        h->job_cancelled = false;
        h->job_abandoned = false;
        h->ka_status = KC_KEEPALIVE_PROCESSING;
        h->ka_next_ms = now_ms + VC_HID_KEEPALIVE_MS;
        return;
    default:
        reply_error(h, &peer, cid, cmd, KC_HID_ERR_INVALID_CMD, start, now_ms);
        return;
    }
}

static void handle_init_packet(struct vc_hid *h, const struct vc_hid_peer *from, uint32_t cid,
                               const uint8_t *rep, uint64_t now_ms)
{
    uint8_t cmd = rep[4];
    size_t bcnt = (size_t)rep[5] << 8 | rep[6];
    size_t n;

    if (cmd == KC_HID_INIT) {
        handle_init(h, from, cid, rep, bcnt, now_ms);
        return;
    }
    if (cmd == KC_HID_CANCEL) {
        /* never answered; only aborts the running message of that channel */
        if (h->job != JOB_NONE && h->job_cid == cid)
            h->job_cancelled = true;
        return;
    }
    if (cid == 0 || cid == KC_HID_BROADCAST_CID || !channel_allocated(h, cid)) {
        reply_error(h, from, cid, cmd, KC_HID_ERR_INVALID_CHANNEL, now_ms, now_ms);
        return;
    }
    if (fault(h, VC_FAULT_BUSY) || locked_by_other(h, cid, now_ms) || h->job != JOB_NONE) {
        reply_error(h, from, cid, cmd, KC_HID_ERR_CHANNEL_BUSY, now_ms, now_ms);
        return;
    }
    if (h->rx_active) {
        if (h->rx_cid != cid) {
            reply_error(h, from, cid, cmd, KC_HID_ERR_CHANNEL_BUSY, now_ms, now_ms);
            return;
        }
        /* a new message while the last one still wanted continuations */
        abort_rx(h);
        reply_error(h, from, cid, cmd, KC_HID_ERR_INVALID_SEQ, now_ms, now_ms);
        return;
    }
    if (bcnt > KC_HID_MAX_MSG) {
        reply_error(h, from, cid, cmd, KC_HID_ERR_INVALID_LEN, now_ms, now_ms);
        return;
    }
    h->rx_active = true;
    h->rx_cid = cid;
    h->rx_cmd = cmd;
    h->rx_peer = *from;
    h->rx_total = bcnt;
    h->rx_seq = 0;
    h->rx_first_ms = now_ms;
    h->rx_last_ms = now_ms;
    n = bcnt < KC_HID_INIT_DATA ? bcnt : KC_HID_INIT_DATA;
    memcpy(h->buf, rep + KC_HID_INIT_HDR, n);
    h->rx_got = n;
    if (h->rx_got == h->rx_total)
        dispatch(h, now_ms);
}

static void handle_cont_packet(struct vc_hid *h, const struct vc_hid_peer *from, uint32_t cid,
                               const uint8_t *rep, uint64_t now_ms)
{
    uint8_t seq = rep[4];
    size_t n;

    /* spurious continuations (no message on that channel) are ignored */
    if (!h->rx_active || h->rx_cid != cid || !peer_eq(&h->rx_peer, from))
        return;
    if (seq != h->rx_seq) {
        uint8_t cmd = h->rx_cmd;
        uint64_t start = h->rx_first_ms;

        abort_rx(h);
        reply_error(h, from, cid, cmd, KC_HID_ERR_INVALID_SEQ, start, now_ms);
        return;
    }
    n = h->rx_total - h->rx_got;
    if (n > KC_HID_CONT_DATA)
        n = KC_HID_CONT_DATA;
    memcpy(h->buf + h->rx_got, rep + KC_HID_CONT_HDR, n);
    h->rx_got += n;
    h->rx_seq++;
    h->rx_last_ms = now_ms;
    if (h->rx_got == h->rx_total)
        dispatch(h, now_ms);
}

void vc_hid_input(struct vc_hid *h, const struct vc_hid_peer *from, const uint8_t *report,
                  size_t len, uint64_t now_ms)
{
    uint8_t rep[KC_HID_REPORT_LEN];
    uint32_t cid;

    if (fault(h, VC_FAULT_UNPLUG))
        return;
    /* a report shorter than its header is noise; longer than 64 is not a report */
    if (len < KC_HID_INIT_HDR || len > KC_HID_REPORT_LEN)
        return;
    vc_hid_tick(h, now_ms);
    memset(rep, 0, sizeof(rep));
    memcpy(rep, report, len);
    cid = get_be32(rep);
    if (rep[4] & KC_HID_TYPE_INIT)
        handle_init_packet(h, from, cid, rep, now_ms);
    else
        handle_cont_packet(h, from, cid, rep, now_ms);
}

void vc_hid_tick(struct vc_hid *h, uint64_t now_ms)
{
    if (h->rx_active && now_ms >= h->rx_last_ms + VC_HID_MSG_TIMEOUT_MS) {
        struct vc_hid_peer peer = h->rx_peer;
        uint32_t cid = h->rx_cid;
        uint8_t cmd = h->rx_cmd;
        uint64_t start = h->rx_first_ms;

        abort_rx(h);
        reply_error(h, &peer, cid, cmd, KC_HID_ERR_MSG_TIMEOUT, start, now_ms);
    }
    if (h->lock_cid != 0 && now_ms >= h->lock_until_ms)
        h->lock_cid = 0;
    if (h->job != JOB_NONE && now_ms >= h->ka_next_ms) {
        if (!h->job_abandoned && !fault(h, VC_FAULT_NO_KEEPALIVE)) {
            uint8_t st = h->ka_status;

            emit(h, &h->job_peer, h->job_cid, KC_HID_KEEPALIVE, &st, 1);
        }
        /* catch up without a burst if the caller was late */
        h->ka_next_ms += VC_HID_KEEPALIVE_MS;
        if (h->ka_next_ms <= now_ms)
            h->ka_next_ms = now_ms + VC_HID_KEEPALIVE_MS;
    }
}

uint64_t vc_hid_deadline(const struct vc_hid *h)
{
    uint64_t d = UINT64_MAX;

    if (h->rx_active && h->rx_last_ms + VC_HID_MSG_TIMEOUT_MS < d)
        d = h->rx_last_ms + VC_HID_MSG_TIMEOUT_MS;
    if (h->lock_cid != 0 && h->lock_until_ms < d)
        d = h->lock_until_ms;
    if (h->job != JOB_NONE && h->ka_next_ms < d)
        d = h->ka_next_ms;
    return d;
}

bool vc_hid_job_take(struct vc_hid *h, struct vc_hid_job *job)
{
    if (h->job != JOB_READY)
        return false;
    h->job = JOB_RUNNING;
    job->cid = h->job_cid;
    job->cmd = h->job_cmd;
    job->peer = h->job_peer;
    job->data = h->buf;
    job->len = h->job_len;
    job->started_ms = h->job_start_ms;
    return true;
}

bool vc_hid_job_running(const struct vc_hid *h)
{
    return h->job != JOB_NONE;
}

bool vc_hid_job_cancelled(const struct vc_hid *h)
{
    return h->job != JOB_NONE && h->job_cancelled;
}

void vc_hid_job_set_status(struct vc_hid *h, uint8_t keepalive_status)
{
    h->ka_status = keepalive_status;
}

void vc_hid_job_finish(struct vc_hid *h, const uint8_t *resp, size_t len, uint64_t now_ms)
{
    uint8_t ctap_cmd;
    int status;

    if (h->job == JOB_NONE)
        return;
    h->job = JOB_NONE;
    ctap_cmd = h->job_len > 0 ? h->buf[h->job_cmd == KC_HID_MSG && h->job_len > 1 ? 1 : 0] : 0;
    if (h->job_abandoned) {
        log_request(h, h->job_cmd, h->job_cid, ctap_cmd, "abandoned", -1, h->job_start_ms, now_ms,
                    &h->job_peer);
        return;
    }
    if (len > KC_HID_MAX_MSG) {
        reply_error(h, &h->job_peer, h->job_cid, h->job_cmd, KC_HID_ERR_OTHER, h->job_start_ms,
                    now_ms);
        return;
    }
    if (h->job_cmd == KC_HID_MSG)
        status = len >= 2 ? (resp[len - 2] << 8 | resp[len - 1]) : -1;
    else
        status = len >= 1 ? resp[0] : -1;
    emit(h, &h->job_peer, h->job_cid, h->job_cmd, resp, len);
    log_request(h, h->job_cmd, h->job_cid, ctap_cmd, "ok", status, h->job_start_ms, now_ms,
                &h->job_peer);
}

void vc_hid_reset(struct vc_hid *h)
{
    h->nchans = 0;
    h->chan_head = 0;
    abort_rx(h);
    if (h->job != JOB_NONE) {
        h->job_cancelled = true;
        h->job_abandoned = true;
    }
    h->lock_cid = 0;
    h->lock_until_ms = 0;
}

size_t vc_hid_channel_count(const struct vc_hid *h)
{
    return h->nchans;
}

bool vc_hid_busy(const struct vc_hid *h)
{
    return h->job != JOB_NONE || h->rx_active;
}
