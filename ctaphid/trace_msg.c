/* A JSON-lines trace read back: the reports in order, and the host's reports
 * reassembled into the messages it sent (see trace_msg.h). */
#include "ctaphid/trace_msg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctaphid/status.h"
#include "util/err.h"
#include "util/hex.h"

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

bool kc_report_is_init(const uint8_t *report, size_t len)
{
    return report != NULL && len >= KC_HID_INIT_HDR && (report[4] & KC_HID_TYPE_INIT) != 0;
}

enum kc_asm_result kc_msg_asm_feed(struct kc_msg_asm *a, const uint8_t *report, size_t len)
{
    size_t chunk;

    if (a == NULL || report == NULL)
        return KC_ASM_STRAY;
    if (kc_report_is_init(report, len)) {
        size_t bcnt = (size_t)report[5] << 8 | report[6];
        if (bcnt > sizeof(a->buf))
            return KC_ASM_STRAY; /* no card takes it: compared as a report */
        a->active = true;
        a->cid = get_be32(report);
        a->cmd = report[4];
        a->bcnt = bcnt;
        a->next_seq = 0;
        chunk = bcnt < KC_HID_INIT_DATA ? bcnt : KC_HID_INIT_DATA;
        if (chunk > len - KC_HID_INIT_HDR)
            chunk = len - KC_HID_INIT_HDR;
        memcpy(a->buf, report + KC_HID_INIT_HDR, chunk);
        a->have = chunk;
        if (a->have == a->bcnt) {
            a->active = false;
            return KC_ASM_DONE;
        }
        return KC_ASM_MORE;
    }
    if (!a->active || len < KC_HID_CONT_HDR || get_be32(report) != a->cid ||
        report[4] != a->next_seq)
        return KC_ASM_STRAY;
    chunk = a->bcnt - a->have;
    if (chunk > KC_HID_CONT_DATA)
        chunk = KC_HID_CONT_DATA;
    if (chunk > len - KC_HID_CONT_HDR)
        chunk = len - KC_HID_CONT_HDR;
    memcpy(a->buf + a->have, report + KC_HID_CONT_HDR, chunk);
    a->have += chunk;
    a->next_seq++;
    if (a->have == a->bcnt || a->next_seq >= KC_HID_MAX_SEQ) {
        a->active = false;
        return a->have == a->bcnt ? KC_ASM_DONE : KC_ASM_MORE;
    }
    return KC_ASM_MORE;
}

/* ---- parsing ------------------------------------------------------------ */

static int add_rec(struct kc_trace_log *log, size_t *cap, const struct kc_trace_rec *r)
{
    if (log->n == *cap) {
        size_t ncap = *cap == 0 ? 64 : *cap * 2;
        struct kc_trace_rec *nr;
        if (ncap > KC_TRACE_LOG_MAX_REPORTS)
            ncap = KC_TRACE_LOG_MAX_REPORTS;
        if (log->n >= ncap)
            return KC_ERR_TOO_LARGE;
        if ((nr = realloc(log->rec, ncap * sizeof(*nr))) == NULL)
            return KC_ERR_NOMEM;
        log->rec = nr;
        *cap = ncap;
    }
    log->rec[log->n++] = *r;
    return KC_OK;
}

/* One line: a report record is added, an event or blank line is skipped. */
static int parse_line(struct kc_trace_log *log, const char *line, size_t len, size_t lineno,
                      size_t *cap, char *errbuf, size_t errlen)
{
    json_error_t jerr;
    json_t *o, *dir, *hex, *tu;
    struct kc_trace_rec r;
    int rc = KC_OK;

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    if (len == 0)
        return KC_OK;
    o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL || !json_is_object(o)) {
        kcu_set_err(errbuf, errlen, "replay %s line %zu: not a JSON object", log->name, lineno);
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
        kcu_hex_decode_alloc(json_string_value(hex), KC_TRACE_REPORT_MAX, &r.data, &r.len, NULL,
                             0) != 0) {
        kcu_set_err(errbuf, errlen,
                    "replay %s line %zu: expected \"dir\":\"in\"|\"out\" and a \"hex\" report "
                    "of 1..%u bytes",
                    log->name, lineno, KC_TRACE_REPORT_MAX);
        rc = KC_ERR_PROTOCOL;
        goto out;
    }
    r.in = strcmp(json_string_value(dir), "in") == 0;
    tu = json_object_get(o, "t_us");
    if (json_is_integer(tu) && json_integer_value(tu) >= 0) {
        r.has_t = true;
        r.t_us = (uint64_t)json_integer_value(tu);
    }
    r.line = lineno;
    r.report_no = log->n + 1;
    if ((rc = add_rec(log, cap, &r)) != KC_OK) {
        free(r.data);
        kcu_set_err(errbuf, errlen, "replay %s line %zu: %s", log->name, lineno,
                    rc == KC_ERR_TOO_LARGE ? "more reports than a trace may hold"
                                           : "out of memory");
    }
out:
    json_decref(o);
    return rc;
}

/* ---- the host's messages -------------------------------------------------- */

static int add_msg(struct kc_trace_log *log, size_t *cap, const struct kc_trace_msg *m,
                   const uint8_t *data)
{
    struct kc_trace_msg c = *m;

    if (log->nmsg == *cap) {
        size_t ncap = *cap == 0 ? 32 : *cap * 2;
        struct kc_trace_msg *nm = realloc(log->msg, ncap * sizeof(*nm));
        if (nm == NULL)
            return KC_ERR_NOMEM;
        log->msg = nm;
        *cap = ncap;
    }
    if ((c.data = malloc(c.len > 0 ? c.len : 1)) == NULL)
        return KC_ERR_NOMEM;
    if (c.len > 0)
        memcpy(c.data, data, c.len);
    log->msg[log->nmsg++] = c;
    return KC_OK;
}

static int group_messages(struct kc_trace_log *log)
{
    struct kc_msg_asm *a = calloc(1, sizeof(*a));
    struct kc_trace_msg cur;
    size_t cap = 0;
    bool open = false;
    int rc = KC_OK;

    if (a == NULL)
        return KC_ERR_NOMEM;
    memset(&cur, 0, sizeof(cur));
    for (size_t i = 0; i < log->n && rc == KC_OK; i++) {
        const struct kc_trace_rec *r = &log->rec[i];
        enum kc_asm_result res;

        if (r->in)
            continue;
        if (open && kc_report_is_init(r->data, r->len)) {
            /* a new message before the last was complete */
            cur.len = a->have;
            cur.complete = false;
            if ((rc = add_msg(log, &cap, &cur, a->buf)) != KC_OK)
                break;
            open = false;
            a->active = false;
        }
        res = kc_msg_asm_feed(a, r->data, r->len);
        if (res == KC_ASM_STRAY) {
            if (open) {
                cur.len = a->have;
                cur.complete = false;
                if ((rc = add_msg(log, &cap, &cur, a->buf)) != KC_OK)
                    break;
                open = false;
                a->active = false;
            }
            memset(&cur, 0, sizeof(cur));
            cur.first = cur.last = i;
            cur.cid = r->len >= 4 ? get_be32(r->data) : 0;
            cur.cmd = 0;
            cur.complete = true;
            cur.bcnt = cur.len = r->len;
            rc = add_msg(log, &cap, &cur, r->data);
            continue;
        }
        if (!open) {
            memset(&cur, 0, sizeof(cur));
            cur.first = i;
            cur.cid = a->cid;
            cur.cmd = a->cmd;
            cur.bcnt = a->bcnt;
            open = true;
        }
        cur.last = i;
        if (res == KC_ASM_DONE || !a->active) {
            cur.len = a->have;
            cur.complete = a->have == a->bcnt;
            rc = add_msg(log, &cap, &cur, a->buf);
            open = false;
        }
    }
    if (rc == KC_OK && open) {
        cur.len = a->have;
        cur.complete = false;
        rc = add_msg(log, &cap, &cur, a->buf);
    }
    free(a);
    return rc;
}

void kc_trace_log_free(struct kc_trace_log *log)
{
    if (log == NULL)
        return;
    for (size_t i = 0; i < log->n; i++)
        free(log->rec[i].data);
    for (size_t i = 0; i < log->nmsg; i++)
        free(log->msg[i].data);
    free(log->rec);
    free(log->msg);
    free(log);
}

int kc_trace_log_parse(const char *data, size_t len, const char *name, struct kc_trace_log **out,
                       char *errbuf, size_t errlen)
{
    struct kc_trace_log *log;
    size_t cap = 0, lineno = 0, pos = 0;
    int rc;

    if (out == NULL || (data == NULL && len > 0))
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if (len > KC_TRACE_LOG_MAX_BYTES) {
        kcu_set_err(errbuf, errlen, "replay %s: larger than %u bytes", name ? name : "(buffer)",
                    KC_TRACE_LOG_MAX_BYTES);
        return KC_ERR_TOO_LARGE;
    }
    if ((log = calloc(1, sizeof(*log))) == NULL)
        return KC_ERR_NOMEM;
    snprintf(log->name, sizeof(log->name), "%.127s", name != NULL ? name : "(buffer)");
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t l = nl != NULL ? (size_t)(nl - (data + pos)) : len - pos;
        lineno++;
        if ((rc = parse_line(log, data + pos, l, lineno, &cap, errbuf, errlen)) != KC_OK) {
            kc_trace_log_free(log);
            return rc;
        }
        pos += l + (nl != NULL ? 1 : 0);
    }
    if ((rc = group_messages(log)) != KC_OK) {
        kcu_set_err(errbuf, errlen, "replay %s: out of memory", log->name);
        kc_trace_log_free(log);
        return rc;
    }
    *out = log;
    return KC_OK;
}

int kc_trace_log_load(const char *path, struct kc_trace_log **out, char *errbuf, size_t errlen)
{
    FILE *f;
    char *buf;
    size_t n;
    int rc;

    if (out == NULL || path == NULL)
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if ((f = fopen(path, "rb")) == NULL) {
        int err = errno;
        kcu_set_err(errbuf, errlen, "%s: cannot open: %s", path, strerror(err));
        return err == ENOENT ? KC_ERR_NO_DEVICE : err == EACCES ? KC_ERR_PERMISSION : KC_ERR_IO;
    }
    if ((buf = malloc(KC_TRACE_LOG_MAX_BYTES + 1)) == NULL) {
        fclose(f);
        return KC_ERR_NOMEM;
    }
    n = fread(buf, 1, KC_TRACE_LOG_MAX_BYTES + 1, f);
    if (ferror(f)) {
        kcu_set_err(errbuf, errlen, "%s: cannot read: %s", path, strerror(errno));
        fclose(f);
        free(buf);
        return KC_ERR_IO;
    }
    fclose(f);
    if (n > KC_TRACE_LOG_MAX_BYTES) {
        kcu_set_err(errbuf, errlen, "%s: larger than %u bytes", path, KC_TRACE_LOG_MAX_BYTES);
        free(buf);
        return KC_ERR_TOO_LARGE;
    }
    rc = kc_trace_log_parse(buf, n, path, out, errbuf, errlen);
    free(buf);
    return rc;
}

/* ---- writing ------------------------------------------------------------- */

char *kc_trace_report_line(uint64_t t_us, bool in, const uint8_t *report, size_t len)
{
    json_t *o;
    char cid[9] = "?";
    char *hex, *line;
    bool init = kc_report_is_init(report, len);

    if (report == NULL || len == 0 || len > KC_TRACE_REPORT_MAX)
        return NULL;
    if ((hex = kcu_hex_encode_alloc(report, len)) == NULL)
        return NULL;
    if (len >= 5)
        snprintf(cid, sizeof(cid), "%02x%02x%02x%02x", report[0], report[1], report[2], report[3]);
    o = json_object();
    if (o == NULL) {
        free(hex);
        return NULL;
    }
    json_object_set_new(o, "t_us", json_integer((json_int_t)t_us));
    json_object_set_new(o, "dir", json_string(in ? "in" : "out"));
    json_object_set_new(o, "cid", json_string(cid));
    json_object_set_new(o, "cmd", init ? json_string(kc_hid_cmd_name(report[4])) : json_null());
    json_object_set_new(o, "seq", init || len < 5 ? json_null() : json_integer(report[4]));
    json_object_set_new(o, "len", init ? json_integer((report[5] << 8) | report[6]) : json_null());
    json_object_set_new(o, "hex", json_string(hex));
    free(hex);
    line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return line;
}
