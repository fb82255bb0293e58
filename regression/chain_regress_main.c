/* chain-regress: the session chain's concurrency regression against
 * k_proxy: login, status, a burst of counter requests over one libcurl
 * multi handle, logout, and the old token refused. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <openssl/crypto.h>

#include "regression/chain_regress.h"
#include "util/clock.h"
#include "util/err.h"

struct burst_ctx {
    const struct kcr_opts *o;
    struct kcr_run *r;
};

/* a step that got no HTTP answer */
static void no_answer(struct kcr_step *st, const struct kcr_xfer *x)
{
    const char *hint = kcr_curl_hint(x->curl_code);

    st->ran = true;
    st->ok = false;
    st->status = 0;
    st->ms = x->ms;
    st->curl_code = x->curl_code;
    kcu_set_err(st->detail, sizeof(st->detail), "no answer: curl error %d: %s%s%s", x->curl_code,
                x->curl_error, hint[0] ? "; " : "", hint);
}

static void verbose_line(const struct kcr_opts *o, const char *path, const struct kcr_xfer *x,
                         const char *extra)
{
    if (!o->verbose)
        return;
    if (x->curl_code != 0)
        fprintf(stderr, "chain-regress: POST %s -> curl error %d (%s) in %.1f ms\n", path,
                x->curl_code, x->curl_error, x->ms);
    else
        fprintf(stderr, "chain-regress: POST %s -> %ld in %.1f ms%s\n", path, x->status, x->ms,
                extra);
}

/* one request through the shared multi handle; false: curl itself failed */
static bool one(struct kcr_http *h, const struct kcr_opts *o, struct kcr_xfer *x, const char *path,
                const char *body, const char *token, long timeout_ms)
{
    memset(x, 0, sizeof(*x));
    x->path = path;
    x->body = body;
    x->token = token;
    x->timeout_ms = timeout_ms;
    if (!kcr_http_run(h, x, 1, 1, NULL, NULL))
        return false;
    verbose_line(o, path, x, "");
    return true;
}

static void on_counter(void *ctx, size_t i, struct kcr_xfer *x)
{
    struct burst_ctx *b = ctx;
    struct kcr_sample *s = &b->r->samples[i];

    s->ms = x->ms;
    s->curl_code = x->curl_code;
    b->r->connections += x->new_connections;
    if (x->curl_code != 0) {
        s->status = 0;
        kcu_set_err(s->why, sizeof(s->why), "no answer: curl error %d: %s", x->curl_code,
                    x->curl_error);
    } else {
        kcr_judge_counter(x->status, x->resp, x->resp_len, s);
    }
    /* per-request lines only with -v: formatting costs the driver CPU */
    if (b->o->verbose) {
        char path[48], extra[64] = "";
        if (s->has_counter)
            kcu_set_err(extra, sizeof(extra), ", counter %lld", s->counter);
        kcu_set_err(path, sizeof(path), "/resource/counter #%zu", i + 1);
        verbose_line(b->o, path, x, s->why[0] ? "" : extra);
        if (x->curl_code == 0 && s->why[0] != '\0')
            fprintf(stderr, "chain-regress:   %s\n", s->why);
    }
    kcr_xfer_release(x);
}

static bool burst(struct kcr_http *h, const struct kcr_opts *o, struct kcr_run *r,
                  const char *token)
{
    struct kcr_xfer tmpl = {0};
    struct burst_ctx b = {o, r};
    double t0;
    bool good;

    tmpl.path = "/resource/counter";
    tmpl.token = token;
    tmpl.timeout_ms = o->timeout_ms;
    t0 = (double)kcu_now_us() / 1e3;
    good = kcr_http_repeat(h, &tmpl, o->requests, o->parallelism, on_counter, &b);
    r->burst_ms = (double)kcu_now_us() / 1e3 - t0;
    return good && kcr_judge_burst(o, r);
}

/* The per-request results of a long burst span megabytes: on huge pages
 * where the kernel allows (madvise mode), so that filling them costs a few
 * page faults rather than one per 4 KiB; smaller ones (and all of them in
 * sanitizer builds) come from calloc. */
#define HUGE_PAGE (2u * 1024 * 1024)

static struct kcr_sample *alloc_samples(size_t n, size_t *mapped)
{
    size_t bytes = n * sizeof(struct kcr_sample), len;
    void *p;

    *mapped = 0;
    if (n == 0 || bytes / n != sizeof(struct kcr_sample))
        return NULL;
    /* sanitizer builds keep calloc, whose bounds AddressSanitizer checks */
    if (bytes < HUGE_PAGE || !kcr_alloc_enabled())
        return calloc(n, sizeof(struct kcr_sample));
    len = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    (void)madvise(p, len, MADV_HUGEPAGE); /* a hint: without it, 4 KiB pages */
    *mapped = len;
    return p; /* anonymous memory starts zeroed, as calloc's */
}

static void free_samples(struct kcr_sample *s, size_t mapped)
{
    if (mapped != 0)
        munmap(s, mapped);
    else
        free(s);
}

/* json_dumps's text goes back to the allocator jansson got it from */
static void free_json_text(char *text)
{
    json_free_t jfree;

    json_get_alloc_funcs(NULL, &jfree);
    jfree(text);
}

/* the chain, step by step; false only when curl or memory failed */
static bool run_chain(struct kcr_http *h, const struct kcr_opts *o, struct kcr_run *r)
{
    struct kcr_login_resp login;
    struct kcr_xfer x = {0};
    struct kcr_step *st;
    char *body;
    long login_timeout = o->timeout_ms;
    bool good = false;

    if (o->interactive_card || o->card_timeout_set)
        login_timeout = o->card_timeout_s * 1000;
    json_t *req = json_pack("{ss}", "username", o->username);

    body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL)
        return false;
    if (o->interactive_card) {
        fprintf(stderr, "touch the card to approve login for %s (waiting up to %ld s)\n",
                o->username, o->card_timeout_s);
        fflush(stderr);
    }
    memset(&login, 0, sizeof(login));
    st = &r->steps[KCR_STEP_LOGIN];
    if (!one(h, o, &x, "/session/login", body, NULL, login_timeout))
        goto out;
    st->ms = x.ms;
    if (x.curl_code != 0) {
        no_answer(st, &x);
        if (x.curl_code == 28 && !o->interactive_card) {
            size_t used = strlen(st->detail);
            kcu_set_err(st->detail + used, sizeof(st->detail) - used,
                        " (the card may be waiting for a touch: --interactive-card waits %ld s)",
                        o->card_timeout_s);
        }
        good = true;
        goto out;
    }
    kcr_judge_login(o, x.status, x.resp, x.resp_len, st, &login);
    kcr_xfer_release(&x);
    snprintf(r->auth_mode, sizeof(r->auth_mode), "%s", login.auth_mode);
    if (login.session_token[0] == '\0') {
        good = true;
        goto out;
    }

    st = &r->steps[KCR_STEP_STATUS];
    if (!one(h, o, &x, "/session/status", NULL, login.session_token, o->timeout_ms))
        goto out;
    st->ms = x.ms;
    if (x.curl_code != 0) {
        no_answer(st, &x);
        good = true;
        goto out;
    }
    kcr_judge_status(o, x.status, x.resp, x.resp_len, st);
    kcr_xfer_release(&x);

    if (!burst(h, o, r, login.session_token))
        goto out;

    st = &r->steps[KCR_STEP_LOGOUT];
    if (!one(h, o, &x, "/session/logout", NULL, login.session_token, o->timeout_ms))
        goto out;
    st->ms = x.ms;
    if (x.curl_code != 0) {
        no_answer(st, &x);
        good = true;
        goto out;
    }
    kcr_judge_logout(o, x.status, x.resp, x.resp_len, st);
    kcr_xfer_release(&x);

    st = &r->steps[KCR_STEP_AFTER_LOGOUT];
    if (!one(h, o, &x, "/resource/counter", NULL, login.session_token, o->timeout_ms))
        goto out;
    st->ms = x.ms;
    if (x.curl_code != 0)
        no_answer(st, &x);
    else
        kcr_judge_after_logout(x.status, x.resp, x.resp_len, st);
    kcr_xfer_release(&x);
    good = true;
out:
    kcr_xfer_release(&x);
    OPENSSL_cleanse(&login, sizeof(login));
    free_json_text(body);
    return good;
}

/* the report, lines or JSON, on stdout; rc unless writing it failed */
static int report(const struct kcr_opts *o, const struct kcr_run *r, int rc)
{
    if (o->json) {
        json_t *doc = kcr_report_json(o, r);
        if (doc == NULL || json_dumpf(doc, stdout, JSON_INDENT(2)) != 0) {
            fprintf(stderr, "chain-regress: could not write the JSON report\n");
            rc = rc == KCR_EXIT_OK ? KCR_EXIT_INTERNAL : rc;
        } else {
            fputc('\n', stdout);
        }
        json_decref(doc);
    } else {
        kcr_print_human(o, r, stdout);
    }
    if (fflush(stdout) != 0 && rc == KCR_EXIT_OK)
        rc = KCR_EXIT_INTERNAL;
    return rc;
}

/* --analyze: a run recorded elsewhere, judged and reported as our own */
static int analyze(struct kcr_opts *o)
{
    struct kcr_run r;
    FILE *f = stdin;
    char err[512];
    int rc;

    memset(&r, 0, sizeof(r));
    if (strcmp(o->analyze, "-") != 0 && (f = fopen(o->analyze, "r")) == NULL) {
        fprintf(stderr, "chain-regress: --analyze: cannot open '%s'\n", o->analyze);
        return KCR_EXIT_USAGE;
    }
    r.samples = calloc(o->requests, sizeof(*r.samples));
    if (r.samples == NULL) {
        rc = KCR_EXIT_INTERNAL;
        fprintf(stderr, "chain-regress: out of memory\n");
    } else if ((rc = kcr_input_read(f, o, &r, err, sizeof(err))) != KCR_EXIT_OK) {
        fprintf(stderr, "chain-regress: --analyze %s: %s\n", o->analyze, err);
    } else {
        rc = report(o, &r, r.exit_code);
    }
    if (f != stdin)
        fclose(f);
    free(r.samples);
    return rc;
}

int main(int argc, char **argv)
{
    struct kcr_env env = {getenv("REQUESTS"), getenv("PARALLELISM"), getenv("KCARD_CA")};
    struct kcr_opts o;
    struct kcr_run r;
    struct kcr_http *h = NULL;
    size_t samples_mapped = 0;
    char err[512];
    int rc;

    /* before any JSON value exists: jansson's blocks come from the cache too */
    if (kcr_alloc_enabled()) {
        kcr_alloc_bind_thread();
        json_set_alloc_funcs(kcr_alloc_malloc, kcr_alloc_free);
    }
    switch (kcr_opts_parse(argc, argv, &env, &o, err, sizeof(err))) {
    case KCR_OPTS_HELP:
        kcr_usage(stdout);
        return KCR_EXIT_OK;
    case KCR_OPTS_VERSION:
        printf("chain-regress %s\n", KCR_VERSION);
        return KCR_EXIT_OK;
    case KCR_OPTS_RUN:
        break;
    default:
        fprintf(stderr, "chain-regress: %s (see --help)\n", err);
        return KCR_EXIT_USAGE;
    }
    if (o.analyze[0] != '\0')
        return analyze(&o);
    memset(&r, 0, sizeof(r));
    /* CURLOPT_NOSIGNAL leaves SIGPIPE to us: a peer closing mid-write is an error, not death */
    signal(SIGPIPE, SIG_IGN);
    if (!kcr_http_global_init()) {
        fprintf(stderr, "chain-regress: libcurl could not be initialised\n");
        return KCR_EXIT_INTERNAL;
    }
    r.samples = alloc_samples(o.requests, &samples_mapped);
    r.n_samples = o.requests;
    h = kcr_http_new(o.base_url, o.cacert, o.parallelism);
    if (r.samples == NULL || h == NULL || !run_chain(h, &o, &r)) {
        fprintf(stderr, "chain-regress: out of memory or libcurl failure\n");
        rc = KCR_EXIT_INTERNAL;
        goto out;
    }
    kcr_verdict(&o, &r);
    rc = report(&o, &r, r.exit_code);
out:
    kcr_http_free(h);
    free_samples(r.samples, samples_mapped);
    kcr_http_global_cleanup();
    return rc;
}
