/* chain-regress: each answer judged against the chain's contract, the
 * verdict and exit code, and the report (human lines or one JSON object). */
#include <stdlib.h>
#include <string.h>

#include "regression/chain_regress.h"
#include "util/err.h"

static const char *const step_names[KCR_STEP_COUNT] = {
    "login", "status", "counter", "logout", "after_logout",
};

const char *kcr_step_name(enum kcr_step_id id)
{
    if ((unsigned)id >= KCR_STEP_COUNT)
        return "?";
    return step_names[id];
}

/* an unexpected status: the service's error code and message when it sent them */
static void describe_status(long status, const char *body, size_t len, char *code, size_t codelen,
                            char *dst, size_t dstlen, const char *prefix)
{
    struct kcr_error_resp e;

    if (kcr_parse_error(body, len, &e) != KCR_PARSE_OK)
        memset(&e, 0, sizeof(e));
    if (code != NULL)
        kcu_set_err(code, codelen, "%s", e.error);
    if (e.error[0] != '\0' && e.message[0] != '\0')
        kcu_set_err(dst, dstlen, "%sHTTP %ld %s: %s", prefix, status, e.error, e.message);
    else if (e.error[0] != '\0')
        kcu_set_err(dst, dstlen, "%sHTTP %ld %s", prefix, status, e.error);
    else
        kcu_set_err(dst, dstlen, "%sHTTP %ld", prefix, status);
}

/* Starts judging a step that wants HTTP 200: false, with the step's detail
 * naming the status and the answer's error (after prefix), when it is not. */
static bool expect_200(long status, const char *body, size_t len, struct kcr_step *st,
                       const char *prefix)
{
    st->ran = true;
    st->ok = false;
    st->status = status;
    if (status == 200)
        return true;
    describe_status(status, body, len, st->error_code, sizeof(st->error_code), st->detail,
                    sizeof(st->detail), prefix);
    return false;
}

void kcr_judge_login(const struct kcr_opts *o, long status, const char *body, size_t len,
                     struct kcr_step *st, struct kcr_login_resp *login)
{
    char why[KCR_WHY_MAX];

    memset(login, 0, sizeof(*login));
    if (!expect_200(status, body, len, st, status == 401 || status == 403 ? "login refused: " : ""))
        return;
    if (kcr_parse_login(body, len, login, why, sizeof(why)) != KCR_PARSE_OK) {
        kcu_set_err(st->detail, sizeof(st->detail), "HTTP 200 but %s", why);
        return;
    }
    if (login->username[0] != '\0' && strcmp(login->username, o->username) != 0) {
        kcu_set_err(st->detail, sizeof(st->detail),
                    "HTTP 200 but the session is for \"%s\", not \"%s\"", login->username,
                    o->username);
        return;
    }
    if (o->expect_auth_mode[0] != '\0' && strcmp(login->auth_mode, o->expect_auth_mode) != 0) {
        kcu_set_err(st->detail, sizeof(st->detail), "auth_mode is %s, expected %s",
                    login->auth_mode, o->expect_auth_mode);
        return;
    }
    st->ok = true;
    if (login->has_expires_in)
        kcu_set_err(st->detail, sizeof(st->detail), "user %s, auth_mode %s, expires in %lld s",
                    o->username, login->auth_mode, login->expires_in);
    else
        kcu_set_err(st->detail, sizeof(st->detail), "user %s, auth_mode %s", o->username,
                    login->auth_mode);
}

void kcr_judge_status(const struct kcr_opts *o, long status, const char *body, size_t len,
                      struct kcr_step *st)
{
    struct kcr_status_resp s;
    char why[KCR_WHY_MAX];

    if (!expect_200(status, body, len, st, "expected 200, got "))
        return;
    if (kcr_parse_status(body, len, &s, why, sizeof(why)) != KCR_PARSE_OK) {
        kcu_set_err(st->detail, sizeof(st->detail), "HTTP 200 but %s", why);
        return;
    }
    if (!s.active) {
        kcu_set_err(st->detail, sizeof(st->detail), "HTTP 200 but the session is not active");
        return;
    }
    if (s.username[0] != '\0' && strcmp(s.username, o->username) != 0) {
        kcu_set_err(st->detail, sizeof(st->detail),
                    "HTTP 200 but the session is for \"%s\", not \"%s\"", s.username, o->username);
        return;
    }
    st->ok = true;
    if (s.has_requests)
        kcu_set_err(st->detail, sizeof(st->detail), "active, requests %lld", s.requests);
    else
        kcu_set_err(st->detail, sizeof(st->detail), "active");
}

void kcr_judge_counter(long status, const char *body, size_t len, struct kcr_sample *s)
{
    struct kcr_counter_resp c;
    char why[KCR_WHY_MAX];

    s->status = status;
    s->has_counter = false;
    s->why[0] = '\0';
    if (status != 200) {
        describe_status(status, body, len, NULL, 0, s->why, sizeof(s->why), "");
        return;
    }
    if (kcr_parse_counter(body, len, &c, why, sizeof(why)) != KCR_PARSE_OK) {
        kcu_set_err(s->why, sizeof(s->why), "HTTP 200 but %s", why);
        return;
    }
    s->has_counter = true;
    s->counter = c.counter;
}

void kcr_judge_logout(const struct kcr_opts *o, long status, const char *body, size_t len,
                      struct kcr_step *st)
{
    struct kcr_logout_resp l;
    char why[KCR_WHY_MAX];

    if (!expect_200(status, body, len, st, "expected 200, got "))
        return;
    if (kcr_parse_logout(body, len, &l, why, sizeof(why)) != KCR_PARSE_OK) {
        kcu_set_err(st->detail, sizeof(st->detail), "HTTP 200 but %s", why);
        return;
    }
    if (!l.logged_out) {
        kcu_set_err(st->detail, sizeof(st->detail), "HTTP 200 but logged_out is false");
        return;
    }
    if (l.username[0] != '\0' && strcmp(l.username, o->username) != 0) {
        kcu_set_err(st->detail, sizeof(st->detail), "HTTP 200 but logged out \"%s\", not \"%s\"",
                    l.username, o->username);
        return;
    }
    st->ok = true;
    kcu_set_err(st->detail, sizeof(st->detail), "logged out");
}

void kcr_judge_after_logout(long status, const char *body, size_t len, struct kcr_step *st)
{
    st->ran = true;
    st->status = status;
    st->ok = status == 401;
    if (st->ok) {
        char tmp[sizeof(st->detail)];
        describe_status(status, body, len, st->error_code, sizeof(st->error_code), tmp, sizeof(tmp),
                        "");
        kcu_set_err(st->detail, sizeof(st->detail), "old token refused, as expected: %s", tmp);
    } else if (status == 200) {
        kcu_set_err(st->detail, sizeof(st->detail),
                    "the old token still works after logout (HTTP 200)");
    } else {
        describe_status(status, body, len, st->error_code, sizeof(st->error_code), st->detail,
                        sizeof(st->detail), "expected 401 for the old token, got ");
    }
}

static int list_values(char *dst, size_t dstlen, const struct kcr_counter_analysis *a)
{
    size_t used = 0;
    int n;

    dst[0] = '\0';
    for (size_t i = 0; i < a->n_dup_values && used < dstlen; i++) {
        n = snprintf(dst + used, dstlen - used, "%s%lld", i ? "," : "", a->dup_values[i]);
        if (n < 0)
            return -1;
        used += (size_t)n;
    }
    return 0;
}

static int list_ranges(char *dst, size_t dstlen, const struct kcr_counter_analysis *a)
{
    size_t used = 0;
    int n;

    dst[0] = '\0';
    for (size_t i = 0; i < a->n_missing && used < dstlen; i++) {
        if (a->missing[i].from == a->missing[i].to)
            n = snprintf(dst + used, dstlen - used, "%s%lld", i ? "," : "", a->missing[i].from);
        else
            n = snprintf(dst + used, dstlen - used, "%s%lld..%lld", i ? "," : "",
                         a->missing[i].from, a->missing[i].to);
        if (n < 0)
            return -1;
        used += (size_t)n;
    }
    return 0;
}

/* the first failed request's reason, for the step line */
static const struct kcr_sample *first_bad(const struct kcr_run *r)
{
    for (size_t i = 0; i < r->n_samples; i++)
        if (r->samples[i].why[0] != '\0')
            return &r->samples[i];
    return NULL;
}

static void burst_detail(const struct kcr_opts *o, struct kcr_run *r)
{
    struct kcr_step *st = &r->steps[KCR_STEP_COUNTER];
    const struct kcr_counter_analysis *a = &r->counters;
    const struct kcr_sample *bad = first_bad(r);
    char values[160], checks[400], dups[128], gaps[160];
    double rps = r->burst_ms > 0 ? (double)r->n_samples * 1000.0 / r->burst_ms : 0;

    if (a->count > 0)
        kcu_set_err(values, sizeof(values), "values %lld..%lld", a->min, a->max);
    else
        kcu_set_err(values, sizeof(values), "no counter values");
    if (list_values(dups, sizeof(dups), a) != 0)
        dups[0] = '\0';
    if (list_ranges(gaps, sizeof(gaps), a) != 0)
        gaps[0] = '\0';
    if (a->ok)
        kcu_set_err(checks, sizeof(checks), "unique and gap-free");
    else
        kcu_set_err(
            checks, sizeof(checks), "%zu of %zu values, duplicates %zu%s%s%s, gaps %llu%s%s%s",
            a->count, a->expected, a->duplicates, dups[0] ? " (" : "", dups, dups[0] ? ")" : "",
            (unsigned long long)a->gaps, gaps[0] ? " (missing " : "", gaps, gaps[0] ? ")" : "");
    kcu_set_err(
        st->detail, sizeof(st->detail),
        "%zu x 200 of %u at parallelism %u, non-200 %zu, bad body %zu, no answer %zu: %s %s; "
        "latency ms min %.1f median %.1f p95 %.1f max %.1f; %.1f ms total, %.1f req/s, "
        "%ld connections%s%s",
        r->n_samples - r->non_200 - r->transport_errors, o->requests, o->parallelism, r->non_200,
        r->bad_body, r->transport_errors, values, checks, r->latency.min, r->latency.median,
        r->latency.p95, r->latency.max, r->burst_ms, rps, r->connections,
        bad != NULL ? "; first failure: " : "", bad != NULL ? bad->why : "");
}

bool kcr_judge_burst(const struct kcr_opts *o, struct kcr_run *r)
{
    struct kcr_step *st = &r->steps[KCR_STEP_COUNTER];
    long long *values = NULL;
    double *ms = NULL;
    size_t nv = 0, nm = 0;
    bool good = false;

    r->non_200 = r->bad_body = r->transport_errors = 0;
    st->ran = true;
    st->ok = false;
    st->status = 0;
    st->curl_code = 0;
    if (r->n_samples > 0) {
        values = calloc(r->n_samples, sizeof(*values));
        ms = calloc(r->n_samples, sizeof(*ms));
        if (values == NULL || ms == NULL)
            goto out;
    }
    for (size_t i = 0; i < r->n_samples; i++) {
        const struct kcr_sample *s = &r->samples[i];
        if (s->curl_code != 0) {
            r->transport_errors++;
            if (st->curl_code == 0)
                st->curl_code = s->curl_code;
            continue;
        }
        ms[nm++] = s->ms;
        if (s->status != 200)
            r->non_200++;
        else if (!s->has_counter)
            r->bad_body++;
        if (s->has_counter)
            values[nv++] = s->counter;
        if (st->status == 0 || s->status != 200)
            st->status = s->status;
    }
    if (!kcr_analyze_counters(values, nv, o->requests, &r->counters) ||
        !kcr_latency_stats(ms, nm, &r->latency))
        goto out;
    st->ms = r->burst_ms;
    st->ok = r->counters.ok && r->non_200 == 0 && r->bad_body == 0 && r->transport_errors == 0;
    burst_detail(o, r);
    good = true;
out:
    if (!good)
        kcu_set_err(st->detail, sizeof(st->detail), "out of memory while analysing the answers");
    free(values);
    free(ms);
    return good;
}

void kcr_verdict(const struct kcr_opts *o, struct kcr_run *r)
{
    const struct kcr_step *login = &r->steps[KCR_STEP_LOGIN];
    const struct kcr_counter_analysis *a = &r->counters;

    for (int i = 0; i < KCR_STEP_COUNT; i++) {
        const struct kcr_step *st = &r->steps[i];
        if (st->ran && st->curl_code != 0) {
            r->exit_code = KCR_EXIT_CONNECT;
            kcu_set_err(r->verdict, sizeof(r->verdict), "FAIL: %s: %s", kcr_step_name(i),
                        st->detail);
            return;
        }
    }
    if (login->ran && !login->ok && (login->status == 401 || login->status == 403)) {
        r->exit_code = KCR_EXIT_REFUSED;
        kcu_set_err(r->verdict, sizeof(r->verdict), "FAIL: login: %s", login->detail);
        return;
    }
    for (int i = 0; i < KCR_STEP_COUNT; i++) {
        const struct kcr_step *st = &r->steps[i];
        if (!st->ran) {
            r->exit_code = KCR_EXIT_CHECK;
            kcu_set_err(r->verdict, sizeof(r->verdict), "FAIL: %s: not run", kcr_step_name(i));
            return;
        }
        if (!st->ok) {
            r->exit_code = KCR_EXIT_CHECK;
            kcu_set_err(r->verdict, sizeof(r->verdict), "FAIL: %s: %s", kcr_step_name(i),
                        st->detail);
            return;
        }
    }
    r->exit_code = KCR_EXIT_OK;
    kcu_set_err(
        r->verdict, sizeof(r->verdict),
        "PASS: %s at %s: %u counter requests at parallelism %u, values %lld..%lld unique and "
        "gap-free, 401 after logout",
        o->username, o->base_url, o->requests, o->parallelism, a->min, a->max);
}

void kcr_print_human(const struct kcr_opts *o, const struct kcr_run *r, FILE *f)
{
    (void)o;
    for (int i = 0; i < KCR_STEP_COUNT; i++) {
        const struct kcr_step *st = &r->steps[i];
        if (!st->ran)
            continue;
        if (i == KCR_STEP_COUNTER || st->curl_code != 0)
            fprintf(f, "%-13s %-4s %s\n", kcr_step_name(i), st->ok ? "ok" : "FAIL", st->detail);
        else
            fprintf(f, "%-13s %-4s %ld in %.1f ms: %s\n", kcr_step_name(i), st->ok ? "ok" : "FAIL",
                    st->status, st->ms, st->detail);
    }
    fprintf(f, "%s\n", r->verdict);
}

/* ---- JSON ---------------------------------------------------------------- */

/* json_object_set_new with the failure remembered */
static void put(json_t *obj, const char *key, json_t *v, bool *good)
{
    if (v == NULL || json_object_set_new(obj, key, v) != 0)
        *good = false;
}

/* a JSON string even when truncation split a UTF-8 sequence: bytes
 * above 0x7f become '?' in that case */
static json_t *text(const char *s)
{
    json_t *v = json_string(s);
    char *copy;

    if (v != NULL)
        return v;
    if ((copy = strdup(s)) == NULL)
        return NULL;
    for (char *p = copy; *p != '\0'; p++)
        if ((unsigned char)*p > 0x7f)
            *p = '?';
    v = json_string(copy);
    free(copy);
    return v;
}

static json_t *step_json(int i, const struct kcr_step *st)
{
    json_t *j = json_object();
    bool good = j != NULL;

    if (!good)
        return NULL;
    put(j, "step", json_string(kcr_step_name(i)), &good);
    put(j, "ran", json_boolean(st->ran), &good);
    put(j, "ok", json_boolean(st->ran && st->ok), &good);
    if (st->ran) {
        put(j, "status", json_integer(st->status), &good);
        put(j, "ms", json_real(st->ms), &good);
        put(j, "detail", text(st->detail), &good);
        if (st->error_code[0] != '\0')
            put(j, "error", text(st->error_code), &good);
        if (st->curl_code != 0)
            put(j, "curl_code", json_integer(st->curl_code), &good);
    }
    if (!good) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static json_t *analysis_json(const struct kcr_counter_analysis *a)
{
    json_t *j = json_object(), *dups = json_array(), *missing = json_array();
    bool good = j != NULL && dups != NULL && missing != NULL;

    for (size_t i = 0; good && i < a->n_dup_values; i++)
        if (json_array_append_new(dups, json_integer(a->dup_values[i])) != 0)
            good = false;
    for (size_t i = 0; good && i < a->n_missing; i++)
        if (json_array_append_new(missing, json_pack("[II]", (json_int_t)a->missing[i].from,
                                                     (json_int_t)a->missing[i].to)) != 0)
            good = false;
    if (!good) {
        json_decref(j);
        json_decref(dups);
        json_decref(missing);
        return NULL;
    }
    put(j, "expected", json_integer((json_int_t)a->expected), &good);
    put(j, "count", json_integer((json_int_t)a->count), &good);
    put(j, "min", a->count > 0 ? json_integer(a->min) : json_null(), &good);
    put(j, "max", a->count > 0 ? json_integer(a->max) : json_null(), &good);
    put(j, "unique", json_boolean(a->unique), &good);
    put(j, "gap_free", json_boolean(a->gap_free), &good);
    put(j, "complete", json_boolean(a->complete), &good);
    put(j, "in_order", json_boolean(a->in_order), &good);
    put(j, "duplicates", json_integer((json_int_t)a->duplicates), &good);
    put(j, "duplicate_values", dups, &good);
    /* gaps can exceed what a JSON integer holds only with absurd counters */
    put(j, "gaps",
        a->gaps <= (uint64_t)INT64_MAX ? json_integer((json_int_t)a->gaps)
                                       : json_real((double)a->gaps),
        &good);
    put(j, "missing", missing, &good);
    put(j, "ok", json_boolean(a->ok), &good);
    if (!good) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static json_t *samples_json(const struct kcr_run *r, json_t *counters)
{
    json_t *arr = json_array();
    bool good = arr != NULL;

    for (size_t i = 0; good && i < r->n_samples; i++) {
        const struct kcr_sample *s = &r->samples[i];
        json_t *o = json_object();
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            good = false;
            break;
        }
        put(o, "i", json_integer((json_int_t)i), &good);
        put(o, "status", json_integer(s->status), &good);
        put(o, "ms", json_real(s->ms), &good);
        put(o, "counter", s->has_counter ? json_integer(s->counter) : json_null(), &good);
        if (s->why[0] != '\0')
            put(o, "error", text(s->why), &good);
        if (s->has_counter && json_array_append_new(counters, json_integer(s->counter)) != 0)
            good = false;
    }
    if (!good) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

json_t *kcr_report_json(const struct kcr_opts *o, const struct kcr_run *r)
{
    json_t *j = json_object(), *steps = json_array(), *counters = json_array();
    bool good = j != NULL && steps != NULL && counters != NULL;
    const struct kcr_step *burst = &r->steps[KCR_STEP_COUNTER];

    if (!good) {
        json_decref(j);
        json_decref(steps);
        json_decref(counters);
        return NULL;
    }
    for (int i = 0; good && i < KCR_STEP_COUNT; i++)
        if (json_array_append_new(steps, step_json(i, &r->steps[i])) != 0)
            good = false;
    put(j, "tool", json_string("chain-regress"), &good);
    put(j, "version", json_string(KCR_VERSION), &good);
    put(j, "base_url", text(o->base_url), &good);
    put(j, "cacert", o->cacert[0] ? text(o->cacert) : json_null(), &good);
    put(j, "username", text(o->username), &good);
    put(j, "requests", json_integer(o->requests), &good);
    put(j, "parallelism", json_integer(o->parallelism), &good);
    put(j, "timeout_ms", json_integer(o->timeout_ms), &good);
    put(j, "expect_auth_mode", o->expect_auth_mode[0] ? text(o->expect_auth_mode) : json_null(),
        &good);
    put(j, "auth_mode", r->auth_mode[0] ? text(r->auth_mode) : json_null(), &good);
    put(j, "steps", steps, &good);
    steps = NULL;
    if (burst->ran) {
        put(j, "results", samples_json(r, counters), &good);
        put(j, "counters", counters, &good);
        counters = NULL;
        put(j, "analysis", analysis_json(&r->counters), &good);
        put(j, "latency_ms",
            json_pack("{sI sf sf sf sf sf}", "n", (json_int_t)r->latency.n, "min", r->latency.min,
                      "median", r->latency.median, "p95", r->latency.p95, "max", r->latency.max,
                      "mean", r->latency.mean),
            &good);
        put(j, "burst_ms", json_real(r->burst_ms), &good);
        put(j, "throughput_rps",
            json_real(r->burst_ms > 0 ? (double)r->n_samples * 1000.0 / r->burst_ms : 0), &good);
        put(j, "connections", json_integer(r->connections), &good);
        put(j, "non_200", json_integer((json_int_t)r->non_200), &good);
        put(j, "bad_body", json_integer((json_int_t)r->bad_body), &good);
        put(j, "transport_errors", json_integer((json_int_t)r->transport_errors), &good);
    }
    json_decref(counters);
    put(j, "ok", json_boolean(r->exit_code == KCR_EXIT_OK), &good);
    put(j, "verdict", json_string(r->exit_code == KCR_EXIT_OK ? "pass" : "fail"), &good);
    put(j, "exit", json_integer(r->exit_code), &good);
    put(j, "message", text(r->verdict), &good);
    if (!good) {
        json_decref(j);
        return NULL;
    }
    return j;
}
