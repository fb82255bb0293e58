/* chain-regress --analyze: a run recorded elsewhere (plain curl on a client
 * without kcard, phase5_chain_regression.sh --remote curl), one line per
 * answer, judged here by the same judges, verdict and report as a run of
 * its own. The lines come from another machine: every field is checked for
 * its shape and range before it is used, and a bad line is named. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "regression/chain_regress.h"
#include "util/err.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* the next field: up to the next space or the end; *pos moves past it */
static bool next_field(const char *line, size_t len, size_t *pos, const char **f, size_t *flen)
{
    size_t start = *pos, end = start;

    if (start >= len)
        return false;
    while (end < len && line[end] != ' ')
        end++;
    *f = line + start;
    *flen = end - start;
    *pos = end;
    return true;
}

/* one space between fields, nothing else */
static bool skip_space(const char *line, size_t len, size_t *pos)
{
    if (*pos >= len || line[*pos] != ' ')
        return false;
    (*pos)++;
    return true;
}

/* 1 to maxdigits decimal digits, value in [0, max] */
static bool small_number(const char *f, size_t n, size_t maxdigits, long max, long *out)
{
    long v = 0;

    if (n == 0 || n > maxdigits)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(f[i]))
            return false;
        v = v * 10 + (f[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* curl's %{time_total}: DIGITS[.DIGITS], at most a day */
#define SECONDS_MAX 86400L
static bool seconds(const char *f, size_t n, double *ms)
{
    size_t dot = 0, i;
    long whole;
    double frac = 0, scale = 1;

    while (dot < n && f[dot] != '.')
        dot++;
    if (!small_number(f, dot, 6, SECONDS_MAX, &whole))
        return false;
    if (dot < n) {
        if (n - dot - 1 == 0 || n - dot - 1 > 9)
            return false;
        for (i = dot + 1; i < n; i++) {
            if (!is_digit(f[i]))
                return false;
            scale /= 10;
            frac += (f[i] - '0') * scale;
        }
    }
    *ms = ((double)whole + frac) * 1000.0;
    return true;
}

static bool step_by_name(const char *f, size_t n, struct kcr_line *out)
{
    static const struct {
        const char *name;
        enum kcr_line_kind kind;
        enum kcr_step_id step;
    } names[] = {
        {"login", KCR_LINE_STEP, KCR_STEP_LOGIN},
        {"status", KCR_LINE_STEP, KCR_STEP_STATUS},
        {"counter", KCR_LINE_STEP, KCR_STEP_COUNTER},
        {"logout", KCR_LINE_STEP, KCR_STEP_LOGOUT},
        {"after_logout", KCR_LINE_STEP, KCR_STEP_AFTER_LOGOUT},
        {"burst", KCR_LINE_BURST, KCR_STEP_COUNTER},
        {"cacert", KCR_LINE_CACERT, KCR_STEP_LOGIN},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i].name) == n && memcmp(names[i].name, f, n) == 0) {
            out->kind = names[i].kind;
            out->step = names[i].step;
            return true;
        }
    }
    return false;
}

/* printable ASCII and UTF-8 bytes; no control characters */
static bool printable_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            return false;
    return true;
}

bool kcr_input_parse_line(const char *line, size_t len, struct kcr_line *out, char *why,
                          size_t whylen)
{
    const char *f = line;
    size_t n = 0, pos = 0;
    long v;

    memset(out, 0, sizeof(*out));
    if (line == NULL || len == 0)
        return kcu_set_err_rc(why, whylen, false, "the line is empty");
    if (len > KCR_LINE_MAX)
        return kcu_set_err_rc(why, whylen, false, "the line is longer than %d bytes", KCR_LINE_MAX);
    if (memchr(line, '\0', len) != NULL)
        return kcu_set_err_rc(why, whylen, false, "the line holds a NUL byte");
    if (!next_field(line, len, &pos, &f, &n) || !step_by_name(f, n, out))
        return kcu_set_err_rc(
            why, whylen, false,
            "STEP '%.*s' is not login, status, counter, logout, after_logout, burst or "
            "cacert",
            (int)(n > 16 ? 16 : n), printable_text(f, n > 16 ? 16 : n) ? f : "?");
    if (!skip_space(line, len, &pos) || !next_field(line, len, &pos, &f, &n) ||
        !small_number(f, n, 2, 99, &v))
        return kcu_set_err_rc(why, whylen, false, "CURL_EXIT is not a number from 0 to 99");
    out->curl_code = (int)v;
    if (!skip_space(line, len, &pos) || !next_field(line, len, &pos, &f, &n) || n != 3 ||
        !small_number(f, n, 3, 599, &v) || (v != 0 && v < 100))
        return kcu_set_err_rc(why, whylen, false,
                              "HTTP_CODE is not 000 or three digits from 100 to 599");
    out->status = v;
    if (!skip_space(line, len, &pos) || !next_field(line, len, &pos, &f, &n) ||
        !seconds(f, n, &out->ms))
        return kcu_set_err_rc(why, whylen, false, "SECONDS is not DIGITS[.DIGITS] from 0 to %ld",
                              SECONDS_MAX);
    if (!skip_space(line, len, &pos) || !next_field(line, len, &pos, &f, &n) ||
        !small_number(f, n, 4, 9999, &v))
        return kcu_set_err_rc(why, whylen, false, "CONNECTS is not a number from 0 to 9999");
    out->connects = v;
    /* the body: everything after one more space (none, or an empty one, is allowed) */
    if (pos < len) {
        if (!skip_space(line, len, &pos))
            return kcu_set_err_rc(why, whylen, false, "CONNECTS is not a number from 0 to 9999");
        out->body = line + pos;
        out->body_len = len - pos;
    } else {
        out->body = line + len;
        out->body_len = 0;
    }
    if (out->body_len > KCR_MAX_BODY)
        return kcu_set_err_rc(why, whylen, false, "BODY is longer than %d bytes", KCR_MAX_BODY);

    switch (out->kind) {
    case KCR_LINE_STEP:
        if (out->curl_code == 0 && out->status == 0)
            return kcu_set_err_rc(why, whylen, false, "HTTP_CODE 000 (no answer) with CURL_EXIT 0");
        break;
    case KCR_LINE_BURST:
        if (out->curl_code != 0 || out->status != 0 || out->connects != 0 || out->body_len != 0)
            return kcu_set_err_rc(why, whylen, false, "a burst line is 'burst 0 000 SECONDS 0'");
        break;
    case KCR_LINE_CACERT:
        if (out->curl_code != 0 || out->status != 0 || out->connects != 0)
            return kcu_set_err_rc(why, whylen, false, "a cacert line is 'cacert 0 000 0 0 PATH'");
        if (out->body_len == 0 || out->body_len >= sizeof(((struct kcr_opts *)0)->cacert) ||
            !printable_text(out->body, out->body_len))
            return kcu_set_err_rc(why, whylen, false,
                                  "the cacert PATH is empty, too long or holds control characters");
        break;
    }
    return true;
}

void kcr_input_init(struct kcr_input *in, struct kcr_opts *o, struct kcr_run *r)
{
    struct kcr_sample *samples = r->samples;

    memset(in, 0, sizeof(*in));
    in->o = o;
    in->r = r;
    in->last = -1;
    memset(r, 0, sizeof(*r));
    r->samples = samples;
    r->n_samples = 0;
}

/* curl's own message (the BODY of a failed request), made one printable line */
static void curl_message(const struct kcr_line *l, char *dst, size_t dstlen)
{
    size_t n = l->body_len < dstlen - 1 ? l->body_len : dstlen - 1;

    memcpy(dst, l->body, n);
    dst[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)dst[i] < 0x20 || (unsigned char)dst[i] >= 0x7f)
            dst[i] = '?';
    while (n > 0 && dst[n - 1] == ' ')
        dst[--n] = '\0';
    if (n == 0)
        snprintf(dst, dstlen, "curl gave no message");
}

/* a step that got no HTTP answer, worded as chain-regress's own */
static void no_answer(struct kcr_step *st, const struct kcr_line *l)
{
    const char *hint = kcr_curl_hint(l->curl_code);
    char msg[KCR_WHY_MAX];

    curl_message(l, msg, sizeof(msg));
    st->ran = true;
    st->ok = false;
    st->status = 0;
    st->ms = l->ms;
    st->curl_code = l->curl_code;
    snprintf(st->detail, sizeof(st->detail), "no answer: curl error %d: %s%s%s", l->curl_code, msg,
             hint[0] ? "; " : "", hint);
}

static void judge_step(struct kcr_input *in, const struct kcr_line *l)
{
    struct kcr_step *st = &in->r->steps[l->step];
    struct kcr_login_resp login;

    if (l->curl_code != 0) {
        no_answer(st, l);
        return;
    }
    switch (l->step) {
    case KCR_STEP_LOGIN:
        kcr_judge_login(in->o, l->status, l->body, l->body_len, st, &login);
        snprintf(in->r->auth_mode, sizeof(in->r->auth_mode), "%s", login.auth_mode);
        OPENSSL_cleanse(&login, sizeof(login));
        break;
    case KCR_STEP_STATUS:
        kcr_judge_status(in->o, l->status, l->body, l->body_len, st);
        break;
    case KCR_STEP_LOGOUT:
        kcr_judge_logout(in->o, l->status, l->body, l->body_len, st);
        break;
    case KCR_STEP_AFTER_LOGOUT:
        kcr_judge_after_logout(l->status, l->body, l->body_len, st);
        break;
    default:
        return;
    }
    st->ms = l->ms;
}

static void judge_counter(struct kcr_input *in, const struct kcr_line *l)
{
    struct kcr_sample *s = &in->r->samples[in->counters++];
    char msg[KCR_WHY_MAX - 48];

    memset(s, 0, sizeof(*s));
    s->ms = l->ms;
    s->curl_code = l->curl_code;
    in->r->connections += l->connects;
    if (l->curl_code != 0) {
        curl_message(l, msg, sizeof(msg));
        snprintf(s->why, sizeof(s->why), "no answer: curl error %d: %s", l->curl_code, msg);
        return;
    }
    kcr_judge_counter(l->status, l->body, l->body_len, s);
}

/* where a line may come: the steps in the chain's order, the counters
 * and the burst's time between status and logout */
static bool in_order(const struct kcr_input *in, const struct kcr_line *l, char *why, size_t whylen)
{
    bool after_status = in->last == KCR_STEP_STATUS || in->last == KCR_STEP_COUNTER;

    switch (l->kind) {
    case KCR_LINE_CACERT:
        if (in->cacert_seen || in->last != -1)
            return kcu_set_err_rc(why, whylen, false,
                                  "a cacert line comes at most once, before the login line");
        return true;
    case KCR_LINE_BURST:
        if (in->burst_seen || !after_status)
            return kcu_set_err_rc(
                why, whylen, false,
                "a burst line comes at most once, after the status line and before "
                "logout");
        return true;
    case KCR_LINE_STEP:
        break;
    }
    switch (l->step) {
    case KCR_STEP_LOGIN:
        if (in->last != -1)
            return kcu_set_err_rc(why, whylen, false, "a second login line");
        break;
    case KCR_STEP_STATUS:
        if (in->last != KCR_STEP_LOGIN)
            return kcu_set_err_rc(why, whylen, false,
                                  "the status line must follow the login line, once");
        break;
    case KCR_STEP_COUNTER:
        if (!after_status || in->burst_seen)
            return kcu_set_err_rc(
                why, whylen, false,
                "counter lines come after the status line and before burst and logout");
        if (in->counters >= in->o->requests)
            return kcu_set_err_rc(why, whylen, false, "more counter lines than the %u requests",
                                  in->o->requests);
        break;
    case KCR_STEP_LOGOUT:
        if (!after_status)
            return kcu_set_err_rc(why, whylen, false,
                                  "the logout line must follow the status and counter lines");
        break;
    case KCR_STEP_AFTER_LOGOUT:
        if (in->last != KCR_STEP_LOGOUT)
            return kcu_set_err_rc(why, whylen, false,
                                  "the after_logout line must follow the logout line, once");
        break;
    default:
        return kcu_set_err_rc(why, whylen, false, "unknown step");
    }
    return true;
}

bool kcr_input_feed(struct kcr_input *in, const char *line, size_t len, char *err, size_t errlen)
{
    struct kcr_line l;
    char why[KCR_WHY_MAX];

    in->lineno++;
    if (!kcr_input_parse_line(line, len, &l, why, sizeof(why)) ||
        !in_order(in, &l, why, sizeof(why)))
        return kcu_set_err_rc(err, errlen, false, "line %zu: %s", in->lineno, why);
    switch (l.kind) {
    case KCR_LINE_CACERT:
        memcpy(in->o->cacert, l.body, l.body_len);
        in->o->cacert[l.body_len] = '\0';
        in->cacert_seen = true;
        return true;
    case KCR_LINE_BURST:
        in->r->burst_ms = l.ms;
        in->burst_seen = true;
        return true;
    case KCR_LINE_STEP:
        break;
    }
    if (l.step == KCR_STEP_COUNTER)
        judge_counter(in, &l);
    else
        judge_step(in, &l);
    in->last = (int)l.step;
    return true;
}

bool kcr_input_finish(struct kcr_input *in)
{
    const struct kcr_step *status = &in->r->steps[KCR_STEP_STATUS];
    bool good = true;

    /* the burst ran when the status got an answer, as in a run of our own */
    if (in->counters > 0 || (status->ran && status->curl_code == 0)) {
        in->r->n_samples = in->counters;
        good = kcr_judge_burst(in->o, in->r);
    }
    kcr_verdict(in->o, in->r);
    return good;
}

int kcr_input_read(FILE *f, struct kcr_opts *o, struct kcr_run *r, char *err, size_t errlen)
{
    struct kcr_input in;
    char *buf = malloc(KCR_LINE_MAX + 1);
    size_t len = 0;
    int c, rc = KCR_EXIT_OK;

    if (buf == NULL) {
        kcu_set_err(err, errlen, "out of memory");
        return KCR_EXIT_INTERNAL;
    }
    kcr_input_init(&in, o, r);
    while ((c = getc(f)) != EOF) {
        if (c != '\n') {
            if (len == KCR_LINE_MAX) {
                kcu_set_err(err, errlen, "line %zu: the line is longer than %d bytes",
                            in.lineno + 1, KCR_LINE_MAX);
                rc = KCR_EXIT_USAGE;
                goto out;
            }
            buf[len++] = (char)c;
            continue;
        }
        if (in.lineno >= KCR_LINES_MAX) {
            kcu_set_err(err, errlen, "line %zu: more than %d lines", in.lineno + 1, KCR_LINES_MAX);
            rc = KCR_EXIT_USAGE;
            goto out;
        }
        if (!kcr_input_feed(&in, buf, len, err, errlen)) {
            rc = KCR_EXIT_USAGE;
            goto out;
        }
        len = 0;
    }
    if (ferror(f)) {
        kcu_set_err(err, errlen, "read error after line %zu", in.lineno);
        rc = KCR_EXIT_INTERNAL;
    } else if (len > 0) {
        kcu_set_err(err, errlen, "line %zu: no newline at its end (the recording was cut off)",
                    in.lineno + 1);
        rc = KCR_EXIT_USAGE;
    } else if (in.last == -1) {
        kcu_set_err(err, errlen, "no login line: the input records no run");
        rc = KCR_EXIT_USAGE;
    } else if (!kcr_input_finish(&in)) {
        kcu_set_err(err, errlen, "out of memory while analysing the answers");
        rc = KCR_EXIT_INTERNAL;
    }
out:
    OPENSSL_cleanse(buf, KCR_LINE_MAX + 1);
    free(buf);
    return rc;
}
