/* Packet trace: one line per report or event, as hex text or JSON lines.
 * JSON lines carry the whole report in "hex" so the replay transport can
 * play a trace back as a device. */
#include "ctaphid/trace.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctaphid/clock.h"
#include "ctaphid/status.h"
#include "util/hex.h"

void kc_trace_init(struct kc_trace *tr, FILE *out, enum kc_trace_format format)
{
    if (tr == NULL)
        return;
    tr->out = out;
    tr->format = format;
    tr->t0_us = kc_now_us();
}

static uint64_t trace_elapsed(const struct kc_trace *tr)
{
    uint64_t now = kc_now_us();

    return now >= tr->t0_us ? now - tr->t0_us : 0;
}

/* What a report says about itself, for the human and JSON lines. */
struct report_view {
    char cid[9];
    bool init;
    uint8_t cmd;
    uint8_t seq;
    int bcnt; /* -1 when the report is too short to hold it */
};

static void view_report(const uint8_t *report, size_t len, struct report_view *v)
{
    memset(v, 0, sizeof(*v));
    v->bcnt = -1;
    if (len < 5) {
        snprintf(v->cid, sizeof(v->cid), "%s", "?");
        return;
    }
    snprintf(v->cid, sizeof(v->cid), "%02x%02x%02x%02x", report[0], report[1], report[2],
             report[3]);
    v->init = (report[4] & KC_HID_TYPE_INIT) != 0;
    if (v->init) {
        v->cmd = report[4];
        if (len >= 7)
            v->bcnt = (report[5] << 8) | report[6];
    } else {
        v->seq = report[4];
    }
}

/* Hex of a report with a space between bytes, for the text trace. */
static void hex_spaced(const uint8_t *p, size_t len, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (i > 0)
            out[o++] = ' ';
        kcu_hex_encode(p + i, 1, out + o);
        o += 2;
    }
    out[o] = '\0';
}

static void emit_json(struct kc_trace *tr, json_t *obj)
{
    char *line;

    if (obj == NULL)
        return;
    line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (line != NULL) {
        fprintf(tr->out, "%s\n", line);
        free(line);
    }
    json_decref(obj);
    fflush(tr->out);
}

void kc_trace_report(struct kc_trace *tr, enum kc_trace_dir dir, const uint8_t *report, size_t len)
{
    struct report_view v;
    uint64_t t;
    char *hex;

    if (tr == NULL || tr->out == NULL || (report == NULL && len > 0))
        return;
    t = trace_elapsed(tr);
    view_report(report, len, &v);
    hex = malloc(len * 3 + 1);
    if (hex == NULL)
        return;

    if (tr->format == KC_TRACE_JSON) {
        json_t *o = json_object();
        kcu_hex_encode(report, len, hex);
        json_object_set_new(o, "t_us", json_integer((json_int_t)t));
        json_object_set_new(o, "dir", json_string(dir == KC_TRACE_OUT ? "out" : "in"));
        json_object_set_new(o, "cid", json_string(v.cid));
        json_object_set_new(o, "cmd", v.init ? json_string(kc_hid_cmd_name(v.cmd)) : json_null());
        json_object_set_new(o, "seq", v.init || len < 5 ? json_null() : json_integer(v.seq));
        json_object_set_new(o, "len", v.bcnt >= 0 ? json_integer(v.bcnt) : json_null());
        json_object_set_new(o, "hex", json_string(hex));
        emit_json(tr, o);
    } else {
        hex_spaced(report, len, hex);
        fprintf(tr->out, "+%" PRIu64 ".%06" PRIu64 " %c cid=%s ", t / 1000000u, t % 1000000u,
                dir == KC_TRACE_OUT ? '>' : '<', v.cid);
        if (v.init && v.bcnt >= 0)
            fprintf(tr->out, "%s len=%d", kc_hid_cmd_name(v.cmd), v.bcnt);
        else if (v.init)
            fprintf(tr->out, "%s", kc_hid_cmd_name(v.cmd));
        else
            fprintf(tr->out, "seq=%u", v.seq);
        fprintf(tr->out, " | %s\n", hex);
        fflush(tr->out);
    }
    free(hex);
}

void kc_trace_event(struct kc_trace *tr, const char *event, int err, const char *detail)
{
    uint64_t t;

    if (tr == NULL || tr->out == NULL)
        return;
    t = trace_elapsed(tr);
    if (event == NULL)
        event = "event";
    if (tr->format == KC_TRACE_JSON) {
        json_t *o = json_object();
        json_object_set_new(o, "t_us", json_integer((json_int_t)t));
        json_object_set_new(o, "event", json_string(event));
        json_object_set_new(o, "errno", json_integer(err));
        json_object_set_new(o, "error", err != 0 ? json_string(strerror(err)) : json_null());
        json_object_set_new(o, "detail", detail != NULL ? json_string(detail) : json_null());
        emit_json(tr, o);
    } else {
        fprintf(tr->out, "+%" PRIu64 ".%06" PRIu64 " ! %s", t / 1000000u, t % 1000000u, event);
        if (err != 0)
            fprintf(tr->out, " errno=%d (%s)", err, strerror(err));
        if (detail != NULL)
            fprintf(tr->out, ": %s", detail);
        fputc('\n', tr->out);
        fflush(tr->out);
    }
}
