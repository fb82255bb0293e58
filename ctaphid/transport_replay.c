/* replay transport: a JSON-lines trace (trace.c) played back as the device.
 * Each host write is checked against the trace's next "out" line, then the
 * "in" lines up to the following "out" line become readable. INIT nonces
 * differ between runs, so the replayed INIT reply carries the host's nonce. */
#include "ctaphid/replay.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctaphid/status.h"
#include "ctaphid/transport_int.h"
#include "ctaphid/text_int.h"
#include "ctaphid/trace.h"

#define REPLAY_MAX_REPORT 1024
#define REPLAY_MAX_RECORDS 200000

struct record {
    bool in; /* device to host */
    bool has_t;
    uint64_t t_us; /* the trace's own timestamp */
    size_t line;
    size_t len;
    uint8_t *data;
};

struct replay_priv {
    char name[128];
    struct record *rec;
    size_t n;
    size_t next_out;     /* index from which to look for the next "out" line */
    size_t next_in;      /* next record to consider for reading */
    size_t released_end; /* "in" records before this index are readable */
    uint8_t nonce[KC_HID_NONCE_LEN];
    bool have_nonce;
    uint64_t mismatches;
    uint64_t release_wall_us;         /* when the current "in" run became readable */
    const struct record *release_ref; /* the line it is timed from, or NULL */
    uint8_t synth[KC_HID_REPORT_LEN]; /* an INIT reply the trace lacks */
    bool have_synth;
};

static struct replay_priv *replay_of(const struct kc_transport *t)
{
    if (t == NULL || t->kind == NULL || strcmp(t->kind, "replay") != 0)
        return NULL;
    return t->priv;
}

static bool hex_decode(const char *s, uint8_t **out, size_t *outlen)
{
    size_t l = strlen(s);
    uint8_t *b;

    if (l % 2 != 0 || l == 0 || l / 2 > REPLAY_MAX_REPORT)
        return false;
    if ((b = malloc(l / 2)) == NULL)
        return false;
    for (size_t i = 0; i < l / 2; i++) {
        int hi = kc_hex_digit(s[2 * i]), lo = kc_hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return false;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = b;
    *outlen = l / 2;
    return true;
}

static bool is_init_packet(const uint8_t *p, size_t len)
{
    return len >= KC_HID_INIT_HDR && p[0] == 0xff && p[1] == 0xff && p[2] == 0xff && p[3] == 0xff &&
           p[4] == KC_HID_INIT;
}

static size_t find_out(const struct replay_priv *p, size_t from)
{
    while (from < p->n && p->rec[from].in)
        from++;
    return from;
}

static void mismatch(struct kc_transport *t, const char *fmt, size_t line)
{
    struct replay_priv *p = t->priv;

    p->mismatches++;
    t->last_errno = 0;
    snprintf(t->last_error, sizeof(t->last_error), "replay %.100s line %zu: %s", p->name, line,
             fmt);
}

static void synth_init_reply(struct replay_priv *p, const uint8_t *report, size_t len)
{
    size_t i = find_out(p, p->next_out);
    uint8_t *r = p->synth;

    if (len < KC_HID_INIT_HDR + KC_HID_NONCE_LEN)
        return;
    while (i < p->n &&
           (p->rec[i].len < KC_HID_CONT_HDR || is_init_packet(p->rec[i].data, p->rec[i].len)))
        i = find_out(p, i + 1);
    memset(r, 0, sizeof(p->synth));
    memset(r, 0xff, 4);
    r[4] = KC_HID_INIT;
    r[6] = KC_HID_INIT_RESP_LEN;
    memcpy(r + KC_HID_INIT_HDR, report + KC_HID_INIT_HDR, KC_HID_NONCE_LEN);
    if (i < p->n)
        memcpy(r + KC_HID_INIT_HDR + KC_HID_NONCE_LEN, p->rec[i].data, 4);
    else
        memcpy(r + KC_HID_INIT_HDR + KC_HID_NONCE_LEN, "\x00\x00\x00\x01", 4);
    r[KC_HID_INIT_HDR + 12] = 2;    /* CTAPHID protocol version */
    r[KC_HID_INIT_HDR + 16] = 0x05; /* WINK | CBOR */
    p->have_synth = true;
}

static int replay_write(struct kc_transport *t, const uint8_t *report, size_t len)
{
    struct replay_priv *p = replay_of(t);
    size_t i;

    if (p == NULL || report == NULL)
        return KC_ERR_INVALID_ARG;
    if (is_init_packet(report, len) && len >= KC_HID_INIT_HDR + KC_HID_NONCE_LEN) {
        memcpy(p->nonce, report + KC_HID_INIT_HDR, KC_HID_NONCE_LEN);
        p->have_nonce = true;
    }
    i = find_out(p, p->next_out);
    if (is_init_packet(report, len) &&
        (i >= p->n || !is_init_packet(p->rec[i].data, p->rec[i].len))) {
        /* A trace started after INIT: answer with the channel it uses. */
        synth_init_reply(p, report, len);
        return KC_OK;
    }
    if (i >= p->n) {
        mismatch(t, "host wrote past the end of the trace", p->n > 0 ? p->rec[p->n - 1].line : 0);
        return KC_OK;
    }
    {
        const struct record *r = &p->rec[i];
        /* INIT requests differ only in their nonce: compare the header. */
        size_t cmp = is_init_packet(report, len) ? KC_HID_INIT_HDR : len;
        if (r->len != len || memcmp(r->data, report, cmp) != 0)
            mismatch(t, "host wrote a report that differs from the trace's out line", r->line);
    }
    p->next_out = i + 1;
    p->released_end = find_out(p, i + 1);
    p->release_wall_us = kc_now_us();
    p->release_ref = &p->rec[i];
    return KC_OK;
}

static void sleep_us(uint64_t us)
{
    struct timespec ts = {.tv_sec = (time_t)(us / 1000000u),
                          .tv_nsec = (long)(us % 1000000u) * 1000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* When record r is due: as long after its run was released as it came
 * after the line that released it in the recording (at most 60 s). */
static uint64_t ready_at(const struct replay_priv *p, const struct record *r)
{
    const struct record *ref = p->release_ref;
    uint64_t delta;

    if (ref == NULL || !ref->has_t || !r->has_t || r->t_us <= ref->t_us)
        return p->release_wall_us;
    delta = r->t_us - ref->t_us;
    if (delta > 60u * 1000000u)
        delta = 60u * 1000000u;
    return p->release_wall_us + delta;
}

static int replay_read(struct kc_transport *t, uint8_t *buf, size_t cap, int timeout_ms)
{
    struct replay_priv *p = replay_of(t);

    if (p == NULL || buf == NULL || cap == 0)
        return KC_ERR_INVALID_ARG;
    if (p->have_synth && cap >= sizeof(p->synth)) {
        p->have_synth = false;
        memcpy(buf, p->synth, sizeof(p->synth));
        return (int)sizeof(p->synth);
    }
    while (p->next_in < p->released_end && !p->rec[p->next_in].in)
        p->next_in++;
    if (p->next_in < p->released_end) {
        const struct record *r = &p->rec[p->next_in];
        uint64_t ready = ready_at(p, r), now = kc_now_us();
        size_t n = r->len < cap ? r->len : cap;
        if (ready > now) {
            /* Keep the trace's pace: keepalives and slow replies replay
             * as slowly as they were recorded. */
            uint64_t wait = ready - now;
            if (timeout_ms >= 0 && wait > (uint64_t)timeout_ms * 1000u) {
                sleep_us((uint64_t)timeout_ms * 1000u);
                return 0;
            }
            sleep_us(wait);
        }
        p->next_in++;
        memcpy(buf, r->data, n);
        if (p->have_nonce && is_init_packet(buf, n) && n >= KC_HID_INIT_HDR + KC_HID_NONCE_LEN)
            memcpy(buf + KC_HID_INIT_HDR, p->nonce, KC_HID_NONCE_LEN);
        return (int)n;
    }
    /* Nothing more in the trace for now: the device stays silent. */
    if (timeout_ms > 0)
        sleep_us((uint64_t)timeout_ms * 1000u);
    return 0;
}

static void replay_free(struct replay_priv *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->rec[i].data);
    free(p->rec);
    free(p);
}

static void replay_close(struct kc_transport *t)
{
    replay_free(replay_of(t));
    free(t);
}

static const struct kc_transport_ops replay_ops = {
    .write = replay_write,
    .read = replay_read,
    .close = replay_close,
};

/* One line: a report record is added, an event or blank line is skipped. */
static int parse_line(struct replay_priv *p, const char *line, size_t len, size_t lineno,
                      size_t *cap, char *errbuf, size_t errlen)
{
    json_error_t jerr;
    json_t *o, *dir, *hex;
    struct record r;
    int rc = KC_OK;

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    if (len == 0)
        return KC_OK;
    o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL || !json_is_object(o)) {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "replay %s line %zu: not a JSON object", p->name, lineno);
        json_decref(o);
        return KC_ERR_PROTOCOL;
    }
    dir = json_object_get(o, "dir");
    hex = json_object_get(o, "hex");
    if (dir == NULL && json_object_get(o, "event") != NULL)
        goto out; /* an event line */
    memset(&r, 0, sizeof(r));
    if (!json_is_string(dir) || !json_is_string(hex) ||
        (strcmp(json_string_value(dir), "in") != 0 && strcmp(json_string_value(dir), "out") != 0) ||
        !hex_decode(json_string_value(hex), &r.data, &r.len)) {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen,
                     "replay %s line %zu: expected \"dir\":\"in\"|\"out\" and a \"hex\" report",
                     p->name, lineno);
        rc = KC_ERR_PROTOCOL;
        goto out;
    }
    r.in = strcmp(json_string_value(dir), "in") == 0;
    {
        json_t *tu = json_object_get(o, "t_us");
        if (json_is_integer(tu) && json_integer_value(tu) >= 0) {
            r.has_t = true;
            r.t_us = (uint64_t)json_integer_value(tu);
        }
    }
    r.line = lineno;
    if (p->n == *cap) {
        size_t ncap = *cap == 0 ? 64 : *cap * 2;
        struct record *nr;
        if (ncap > REPLAY_MAX_RECORDS || (nr = realloc(p->rec, ncap * sizeof(*nr))) == NULL) {
            free(r.data);
            rc = ncap > REPLAY_MAX_RECORDS ? KC_ERR_TOO_LARGE : KC_ERR_NOMEM;
            goto out;
        }
        p->rec = nr;
        *cap = ncap;
    }
    p->rec[p->n++] = r;
out:
    json_decref(o);
    return rc;
}

int kc_replay_open_buffer(const char *data, size_t len, const char *name, struct kc_transport **out,
                          char *errbuf, size_t errlen)
{
    struct kc_transport *t;
    struct replay_priv *p;
    size_t cap = 0, lineno = 0, pos = 0;
    int rc;

    if (out == NULL || (data == NULL && len > 0))
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if (len > KC_REPLAY_MAX_BYTES)
        return KC_ERR_TOO_LARGE;
    if ((t = kc_transport_alloc(&replay_ops, "replay", sizeof(*p))) == NULL)
        return KC_ERR_NOMEM;
    p = t->priv;
    snprintf(p->name, sizeof(p->name), "%.127s", name != NULL ? name : "(buffer)");
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t l = nl != NULL ? (size_t)(nl - (data + pos)) : len - pos;
        lineno++;
        if ((rc = parse_line(p, data + pos, l, lineno, &cap, errbuf, errlen)) != KC_OK) {
            replay_free(p);
            free(t);
            return rc;
        }
        pos += l + (nl != NULL ? 1 : 0);
    }
    p->released_end = find_out(p, 0); /* "in" lines before the first write */
    p->release_wall_us = kc_now_us();
    t->in_report_len = KC_HID_REPORT_LEN;
    t->out_report_len = KC_HID_REPORT_LEN;
    snprintf(t->uri, sizeof(t->uri), "replay:%.400s", p->name);
    *out = t;
    return KC_OK;
}

int kc_replay_open(const char *file, struct kc_transport **out, char *errbuf, size_t errlen)
{
    FILE *f;
    char *buf;
    size_t n;
    int rc;

    if (out == NULL || file == NULL)
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if ((f = fopen(file, "rb")) == NULL) {
        int err = errno;
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "replay:%s: cannot open: %s", file, strerror(err));
        return err == ENOENT ? KC_ERR_NO_DEVICE : err == EACCES ? KC_ERR_PERMISSION : KC_ERR_IO;
    }
    if ((buf = malloc(KC_REPLAY_MAX_BYTES + 1)) == NULL) {
        fclose(f);
        return KC_ERR_NOMEM;
    }
    n = fread(buf, 1, KC_REPLAY_MAX_BYTES + 1, f);
    fclose(f);
    if (n > KC_REPLAY_MAX_BYTES) {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "replay:%s: larger than %u bytes", file, KC_REPLAY_MAX_BYTES);
        free(buf);
        return KC_ERR_TOO_LARGE;
    }
    rc = kc_replay_open_buffer(buf, n, file, out, errbuf, errlen);
    free(buf);
    return rc;
}

uint64_t kc_replay_mismatches(const struct kc_transport *t)
{
    const struct replay_priv *p = replay_of(t);

    return p != NULL ? p->mismatches : 0;
}

size_t kc_replay_remaining(const struct kc_transport *t)
{
    const struct replay_priv *p = replay_of(t);
    size_t left = 0;

    if (p == NULL)
        return 0;
    for (size_t i = p->next_in; i < p->n; i++)
        left += p->rec[i].in ? 1 : 0;
    return left;
}
