/* A recorded card played back message by message (see replay_player.h). */
#include "ctaphid/replay_player.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/replay_match.h"
#include "ctaphid/status.h"

#define MAX_PACE_US (60u * 1000000u) /* no recorded gap is replayed longer than this */

struct kc_player {
    struct kc_trace_log *log;
    size_t next_msg;     /* the next recorded host message to match */
    size_t next_in;      /* the next record to consider for playback */
    size_t released_end; /* records before this index may be played */
    size_t stale_before; /* unplayed keepalives before this index are dropped */
    uint64_t release_wall_us;
    const struct kc_trace_rec *release_ref; /* the record the release is timed from */
    struct kc_msg_asm host;                 /* the host's message under way */

    /* the answer's bytes that echo the request take the host's bytes instead
     * (INIT nonce, PING payload) where the card echoed faithfully */
    bool patch_on;
    bool patch_active;
    uint32_t patch_cid;
    uint8_t patch_cmd;
    const uint8_t *patch_rec;
    size_t patch_rec_len;
    uint8_t patch_host[KC_HID_MAX_MSG];
    size_t patch_host_len;

    uint8_t synth[KC_HID_REPORT_LEN]; /* an INIT reply the trace lacks */
    bool have_synth;

    bool have_cdh;
    uint8_t cdh[32];

    bool diverged;
    uint64_t divergences;
    size_t diverged_report;
    size_t diverged_line;
    char error[KC_PLAYER_ERROR_MAX];
};

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static size_t first_out(const struct kc_trace_log *log)
{
    return log->nmsg > 0 ? log->msg[0].first : log->n;
}

int kc_player_new(struct kc_trace_log *log, uint64_t now_us, struct kc_player **out)
{
    struct kc_player *p;

    if (out == NULL || log == NULL) {
        kc_trace_log_free(log);
        return KC_ERR_INVALID_ARG;
    }
    *out = NULL;
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        kc_trace_log_free(log);
        return KC_ERR_NOMEM;
    }
    p->log = log;
    p->released_end = first_out(log); /* what the card sent before any request */
    p->release_wall_us = now_us;
    *out = p;
    return KC_OK;
}

void kc_player_free(struct kc_player *p)
{
    if (p == NULL)
        return;
    kc_trace_log_free(p->log);
    free(p);
}

static struct kc_replay_msg view_of(const struct kc_trace_msg *m)
{
    struct kc_replay_msg v = {m->cid, m->cmd, m->data, m->len, m->bcnt, m->complete};
    return v;
}

/* The records the card sent in answer to recorded message k. */
static size_t answer_end(const struct kc_player *p, size_t k)
{
    return k + 1 < p->log->nmsg ? p->log->msg[k + 1].first : p->log->n;
}

static const struct kc_trace_rec *init_reply_of(const struct kc_player *p, size_t k)
{
    for (size_t i = p->log->msg[k].first; i < answer_end(p, k); i++) {
        const struct kc_trace_rec *r = &p->log->rec[i];
        if (r->in && r->len >= KC_HID_INIT_HDR + KC_HID_INIT_RESP_LEN && r->data[4] == KC_HID_INIT)
            return r;
    }
    return NULL;
}

static int diverge(struct kc_player *p, size_t report_no, size_t line, const char *label,
                   const char *why)
{
    p->diverged = true;
    p->divergences++;
    p->diverged_report = report_no;
    p->diverged_line = line;
    snprintf(p->error, sizeof(p->error), "replay diverged at report %zu (%.48s): %.170s", report_no,
             label, why);
    return KC_ERR_REPLAY_DIVERGED;
}

static int after_end(struct kc_player *p, const struct kc_replay_msg *sent)
{
    char label[64], why[96];

    kc_replay_msg_label(sent, label, sizeof(label));
    snprintf(why, sizeof(why),
             "the request comes after the end of the trace (%zu reports recorded)", p->log->n);
    return diverge(p, p->log->n + 1, 0, label, why);
}

/* An INIT where the trace has none: the trace began after INIT, or the host
 * opened its channel again. Answered as the card last answered INIT, with
 * the host's nonce; silence when the card's last recorded INIT went
 * unanswered (a card that does not answer INIT stays that way). */
static void init_not_recorded(struct kc_player *p, const uint8_t *report, size_t len)
{
    const struct kc_trace_rec *reply = NULL;
    uint8_t *r = p->synth;
    uint32_t cid = 0x00000001u;

    for (size_t k = p->next_msg; k-- > 0;) {
        if (p->log->msg[k].cmd != KC_HID_INIT)
            continue;
        if ((reply = init_reply_of(p, k)) == NULL)
            return; /* silent to INIT */
        break;
    }
    if (len < KC_HID_INIT_HDR + KC_HID_NONCE_LEN)
        return;
    memset(r, 0, sizeof(p->synth));
    memcpy(r, report, 4); /* on the channel it came on */
    r[4] = KC_HID_INIT;
    r[6] = KC_HID_INIT_RESP_LEN;
    memcpy(r + KC_HID_INIT_HDR, report + KC_HID_INIT_HDR, KC_HID_NONCE_LEN);
    if (reply != NULL) {
        memcpy(r + KC_HID_INIT_HDR + KC_HID_NONCE_LEN, reply->data + KC_HID_INIT_HDR + 8, 9);
    } else {
        for (size_t i = 0; i < p->log->n; i++) {
            const struct kc_trace_rec *o = &p->log->rec[i];
            if (!o->in && o->len >= 4 && get_be32(o->data) != KC_HID_BROADCAST_CID &&
                get_be32(o->data) != 0) {
                cid = get_be32(o->data);
                break;
            }
        }
        put_be32(r + KC_HID_INIT_HDR + KC_HID_NONCE_LEN, cid);
        r[KC_HID_INIT_HDR + 12] = 2;                                 /* CTAPHID version */
        r[KC_HID_INIT_HDR + 16] = KC_HID_CAP_WINK | KC_HID_CAP_CBOR; /* capabilities */
    }
    p->have_synth = true;
}

static void accept(struct kc_player *p, size_t k, const struct kc_replay_msg *sent, uint64_t now)
{
    const struct kc_trace_msg *m = &p->log->msg[k];
    struct kc_replay_msg rec = view_of(m);

    p->next_msg = k + 1;
    p->stale_before = m->first;
    p->released_end = answer_end(p, k);
    p->release_wall_us = now;
    p->release_ref = &p->log->rec[m->last];
    p->patch_on = false;
    p->patch_active = false;
    if ((m->cmd == KC_HID_INIT || m->cmd == KC_HID_PING) && sent->len <= sizeof(p->patch_host)) {
        p->patch_on = true;
        p->patch_cid = m->cid;
        p->patch_cmd = m->cmd;
        p->patch_rec = m->data;
        p->patch_rec_len = m->len;
        memcpy(p->patch_host, sent->data, sent->len);
        p->patch_host_len = sent->len;
    }
    p->have_cdh = kc_replay_msg_cdh(&rec, p->cdh);
}

static int match_next(struct kc_player *p, const struct kc_replay_msg *sent, uint64_t now)
{
    const struct kc_trace_msg *m;
    struct kc_replay_msg rec;
    char label[64], why[256];

    if (p->next_msg >= p->log->nmsg) {
        if (sent->cmd == KC_HID_CANCEL)
            return KC_OK; /* nothing to cancel in a trace that ended */
        return after_end(p, sent);
    }
    m = &p->log->msg[p->next_msg];
    if (sent->cmd == KC_HID_CANCEL && m->cmd != KC_HID_CANCEL)
        return KC_OK; /* the recorded host never cancelled here: the card goes on */
    rec = view_of(m);
    kc_replay_msg_label(&rec, label, sizeof(label));
    if (!kc_replay_match(&rec, sent, why, sizeof(why)))
        return diverge(p, p->log->rec[m->first].report_no, p->log->rec[m->first].line, label, why);
    if (rec.cid != sent->cid) {
        snprintf(why, sizeof(why), "recorded channel %08x, sent channel %08x", rec.cid, sent->cid);
        return diverge(p, p->log->rec[m->first].report_no, p->log->rec[m->first].line, label, why);
    }
    accept(p, p->next_msg, sent, now);
    return KC_OK;
}

/* The host's message that stopped before its end, matched as it is. */
static int unfinished(struct kc_player *p, uint64_t now)
{
    struct kc_replay_msg sent = {p->host.cid,  p->host.cmd,  p->host.buf,
                                 p->host.have, p->host.bcnt, false};

    p->host.active = false;
    return match_next(p, &sent, now);
}

int kc_player_host_report(struct kc_player *p, const uint8_t *report, size_t len, uint64_t now_us)
{
    enum kc_asm_result res;
    int rc;

    if (p == NULL || report == NULL)
        return KC_ERR_INVALID_ARG;
    if (p->diverged)
        return KC_ERR_REPLAY_DIVERGED;
    if (kc_report_is_init(report, len)) {
        if (p->host.active && (rc = unfinished(p, now_us)) != KC_OK)
            return rc;
        if (report[4] == KC_HID_INIT &&
            (p->next_msg >= p->log->nmsg || p->log->msg[p->next_msg].cmd != KC_HID_INIT)) {
            init_not_recorded(p, report, len);
            return KC_OK;
        }
        if (p->next_msg >= p->log->nmsg && report[4] != KC_HID_CANCEL) {
            /* at once, not after the rest of the message */
            size_t bcnt = (size_t)report[5] << 8 | report[6];
            size_t have = len - KC_HID_INIT_HDR < bcnt ? len - KC_HID_INIT_HDR : bcnt;
            struct kc_replay_msg sent = {
                get_be32(report), report[4], report + KC_HID_INIT_HDR, have, bcnt, have == bcnt};
            return after_end(p, &sent);
        }
    }
    res = kc_msg_asm_feed(&p->host, report, len);
    if (res == KC_ASM_MORE)
        return p->host.active ? KC_OK : unfinished(p, now_us);
    if (res == KC_ASM_STRAY) {
        struct kc_replay_msg sent = {len >= 4 ? get_be32(report) : 0, 0, report, len, len, true};
        return match_next(p, &sent, now_us);
    }
    {
        struct kc_replay_msg sent = {p->host.cid,  p->host.cmd,  p->host.buf,
                                     p->host.have, p->host.bcnt, true};
        return match_next(p, &sent, now_us);
    }
}

/* When record r is due: as long after its release as it came after the
 * record that released it in the recording (at most MAX_PACE_US). */
static uint64_t ready_at(const struct kc_player *p, const struct kc_trace_rec *r)
{
    const struct kc_trace_rec *ref = p->release_ref;
    uint64_t delta;

    if (ref == NULL || !ref->has_t || !r->has_t || r->t_us <= ref->t_us)
        return p->release_wall_us;
    delta = r->t_us - ref->t_us;
    if (delta > MAX_PACE_US)
        delta = MAX_PACE_US;
    return p->release_wall_us + delta;
}

/* Bytes of the answer that echo the recorded request take the host's. */
static void patch(struct kc_player *p, uint8_t *buf, size_t n)
{
    size_t off, start;

    if (!p->patch_on || n < KC_HID_CONT_HDR || get_be32(buf) != p->patch_cid)
        return;
    if (buf[4] & KC_HID_TYPE_INIT) {
        if (buf[4] != p->patch_cmd || n < KC_HID_INIT_HDR) {
            p->patch_active = false;
            return;
        }
        p->patch_active = true;
        off = 0;
        start = KC_HID_INIT_HDR;
    } else {
        if (!p->patch_active)
            return;
        off = KC_HID_INIT_DATA + (size_t)buf[4] * KC_HID_CONT_DATA;
        start = KC_HID_CONT_HDR;
    }
    for (size_t i = start; i < n; i++) {
        size_t j = off + (i - start);
        if (j >= p->patch_rec_len || j >= p->patch_host_len)
            break;
        if (buf[i] == p->patch_rec[j])
            buf[i] = p->patch_host[j];
    }
}

static bool is_keepalive(const struct kc_trace_rec *r)
{
    return r->len >= KC_HID_INIT_HDR && r->data[4] == KC_HID_KEEPALIVE;
}

size_t kc_player_card_report(struct kc_player *p, uint64_t now_us, uint8_t *buf, size_t cap,
                             uint64_t *due_us)
{
    if (due_us != NULL)
        *due_us = UINT64_MAX;
    if (p == NULL || buf == NULL || cap == 0)
        return 0;
    if (p->have_synth) {
        size_t n = cap < sizeof(p->synth) ? cap : sizeof(p->synth);
        p->have_synth = false;
        memcpy(buf, p->synth, n);
        return n;
    }
    while (p->next_in < p->released_end) {
        const struct kc_trace_rec *r = &p->log->rec[p->next_in];
        uint64_t ready;
        size_t n;

        /* the host moved on before the card's keepalives were due: a card
         * that got the next request does not send them any more */
        if (!r->in || (p->next_in < p->stale_before && is_keepalive(r))) {
            p->next_in++;
            continue;
        }
        ready = ready_at(p, r);
        if (ready > now_us) {
            if (due_us != NULL)
                *due_us = ready;
            return 0;
        }
        n = r->len < cap ? r->len : cap;
        memcpy(buf, r->data, n);
        patch(p, buf, n);
        p->next_in++;
        return n;
    }
    return 0;
}

const char *kc_player_error(const struct kc_player *p)
{
    return p != NULL ? p->error : "";
}

bool kc_player_diverged(const struct kc_player *p)
{
    return p != NULL && p->diverged;
}

uint64_t kc_player_divergences(const struct kc_player *p)
{
    return p != NULL ? p->divergences : 0;
}

size_t kc_player_diverged_report(const struct kc_player *p)
{
    return p != NULL ? p->diverged_report : 0;
}

size_t kc_player_diverged_line(const struct kc_player *p)
{
    return p != NULL ? p->diverged_line : 0;
}

bool kc_player_recorded_cdh(const struct kc_player *p, uint8_t cdh[32])
{
    if (p == NULL || cdh == NULL || !p->have_cdh)
        return false;
    memcpy(cdh, p->cdh, 32);
    return true;
}

size_t kc_player_position(const struct kc_player *p)
{
    return p != NULL ? p->next_msg : 0;
}

size_t kc_player_messages(const struct kc_player *p)
{
    return p != NULL ? p->log->nmsg : 0;
}

size_t kc_player_in_remaining(const struct kc_player *p)
{
    size_t left = 0;

    if (p == NULL)
        return 0;
    for (size_t i = p->next_in; i < p->log->n; i++)
        left += p->log->rec[i].in ? 1 : 0;
    return left;
}

const struct kc_trace_log *kc_player_log(const struct kc_player *p)
{
    return p != NULL ? p->log : NULL;
}
