/* chain-regress: the session chain's concurrency regression driver.
 * Pure logic (options, response parsing, the counter and latency analysis,
 * the report) lives in kcr_opts.c, kcr_parse.c, kcr_analyze.c, kcr_report.c
 * and is tested without sockets; kcr_http.c drives libcurl. */
#ifndef KCARD_REGRESSION_CHAIN_REGRESS_H
#define KCARD_REGRESSION_CHAIN_REGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#define KCR_VERSION "0.1.0"

/* exit codes */
#define KCR_EXIT_OK 0
#define KCR_EXIT_CHECK 1    /* a check failed */
#define KCR_EXIT_USAGE 2    /* bad command line */
#define KCR_EXIT_CONNECT 3  /* no HTTP answer: connect, TLS, CA file, timeout */
#define KCR_EXIT_REFUSED 4  /* /session/login answered 401 or 403 */
#define KCR_EXIT_INTERNAL 1 /* out of memory: reported as a failed check */

#define KCR_DEFAULT_BASE_URL "https://127.0.0.1:9771"
#define KCR_DEFAULT_USERNAME "alice"
#define KCR_DEFAULT_REQUESTS 20
#define KCR_DEFAULT_PARALLELISM 8
#define KCR_DEFAULT_TIMEOUT_MS 10000
#define KCR_DEFAULT_CARD_TIMEOUT_S 60
#define KCR_MAX_REQUESTS 100000
#define KCR_MAX_PARALLELISM 1000
#define KCR_MAX_TIMEOUT_MS 3600000L
#define KCR_MAX_CARD_TIMEOUT_S 3600L
#define KCR_MAX_BODY (64 * 1024) /* a longer answer is refused */

#define KCR_USERNAME_MAX 64
#define KCR_TOKEN_MAX 512
#define KCR_NAME_MAX 64 /* auth modes, error codes */
#define KCR_WHY_MAX 256

/* ---- options (kcr_opts.c) ------------------------------------------------ */

struct kcr_opts {
    char base_url[1024];
    char cacert[4096]; /* "" = system trust */
    char username[KCR_USERNAME_MAX + 1];
    unsigned requests;
    unsigned parallelism;
    long timeout_ms;
    long card_timeout_s;
    bool card_timeout_set;
    char expect_auth_mode[KCR_NAME_MAX]; /* "" = not checked */
    bool interactive_card;
    bool json;
    bool verbose;
    char analyze[4096]; /* --analyze FILE ("-" stdin); "" = run the chain */
};

/* environment values the options fall back on (NULL = unset) */
struct kcr_env {
    const char *requests;    /* REQUESTS */
    const char *parallelism; /* PARALLELISM */
    const char *ca;          /* KCARD_CA */
};

enum kcr_opts_rc {
    KCR_OPTS_RUN = 0,
    KCR_OPTS_HELP,
    KCR_OPTS_VERSION,
    KCR_OPTS_USAGE, /* err names the option */
};

/* Parses argv (getopt_long, restartable) over the defaults and env. */
int kcr_opts_parse(int argc, char **argv, const struct kcr_env *env, struct kcr_opts *o, char *err,
                   size_t errlen);
/* A whole number in [lo, hi]: digits only, no sign, no blanks. */
bool kcr_parse_number(const char *s, unsigned long long lo, unsigned long long hi,
                      unsigned long long *out);
bool kcr_valid_username(const char *s);
void kcr_usage(FILE *f);

/* ---- responses (kcr_parse.c) --------------------------------------------- */

enum kcr_parse_rc {
    KCR_PARSE_OK = 0,
    KCR_PARSE_BAD_JSON,  /* not JSON, or not an object */
    KCR_PARSE_MISSING,   /* a required field is absent */
    KCR_PARSE_BAD_TYPE,  /* a field has the wrong JSON type */
    KCR_PARSE_BAD_VALUE, /* right type, unusable value */
};

struct kcr_login_resp {
    char session_token[KCR_TOKEN_MAX + 1];
    char username[KCR_USERNAME_MAX + 1]; /* "" when absent */
    char auth_mode[KCR_NAME_MAX];
    bool has_expires_in;
    long long expires_in;
};

struct kcr_status_resp {
    bool active;
    char username[KCR_USERNAME_MAX + 1];
    char auth_mode[KCR_NAME_MAX];
    bool has_requests;
    long long requests;
    bool has_expires_in;
    long long expires_in;
};

struct kcr_counter_resp {
    long long counter;
    char username[KCR_USERNAME_MAX + 1];
};

struct kcr_logout_resp {
    bool logged_out;
    char username[KCR_USERNAME_MAX + 1];
};

struct kcr_error_resp {
    char error[KCR_NAME_MAX];
    char message[KCR_WHY_MAX];
};

/* Each parses one answer body (not NUL-terminated, len bytes); on failure
 * why says which field was wrong and how. Only the listed types are
 * accepted: a counter of 5.0 or "5" is not an integer. */
int kcr_parse_login(const char *body, size_t len, struct kcr_login_resp *out, char *why,
                    size_t whylen);
int kcr_parse_status(const char *body, size_t len, struct kcr_status_resp *out, char *why,
                     size_t whylen);
int kcr_parse_counter(const char *body, size_t len, struct kcr_counter_resp *out, char *why,
                      size_t whylen);
int kcr_parse_logout(const char *body, size_t len, struct kcr_logout_resp *out, char *why,
                     size_t whylen);
/* The services' error shape {"error", "message"}; fields absent stay "". */
int kcr_parse_error(const char *body, size_t len, struct kcr_error_resp *out);
/* A token safe to put in an Authorization header (base64url and friends). */
bool kcr_valid_token(const char *s);

/* ---- analysis (kcr_analyze.c) -------------------------------------------- */

#define KCR_LIST_MAX 8 /* how many duplicate values / missing ranges are kept */

struct kcr_range {
    long long from, to; /* inclusive */
};

struct kcr_counter_analysis {
    size_t expected;     /* requests asked for */
    size_t count;        /* values received */
    long long min, max;  /* valid when count > 0 */
    size_t duplicates;   /* values seen more than once, counting the repeats */
    uint64_t gaps;       /* values missing between min and max */
    size_t n_dup_values; /* listed in dup_values */
    long long dup_values[KCR_LIST_MAX];
    size_t n_missing; /* ranges listed in missing */
    struct kcr_range missing[KCR_LIST_MAX];
    bool in_order; /* already ascending in the order given */
    bool unique, gap_free, complete, ok;
};

/* Any order, any int64 values; false only when out of memory. */
bool kcr_analyze_counters(const long long *values, size_t n, size_t expected,
                          struct kcr_counter_analysis *a);

struct kcr_latency {
    size_t n;
    double min, median, p95, max, mean; /* milliseconds; 0 when n == 0 */
};

/* median: the middle value (the mean of the two middle ones for even n);
 * p95: nearest rank, the ceil(0.95 n)-th smallest. False when out of memory. */
bool kcr_latency_stats(const double *ms, size_t n, struct kcr_latency *out);

/* ---- steps and report (kcr_report.c) ------------------------------------- */

enum kcr_step_id {
    KCR_STEP_LOGIN = 0,
    KCR_STEP_STATUS,
    KCR_STEP_COUNTER,
    KCR_STEP_LOGOUT,
    KCR_STEP_AFTER_LOGOUT,
    KCR_STEP_COUNT
};

struct kcr_step {
    bool ran;
    bool ok;
    long status;                   /* HTTP status, 0 when none */
    double ms;                     /* the request's duration */
    int curl_code;                 /* 0 when the request got an answer */
    char error_code[KCR_NAME_MAX]; /* the service's "error", if any */
    char detail[512];              /* measured figures, or why it failed */
};

struct kcr_sample {
    long status;
    double ms;
    bool has_counter;
    long long counter;
    int curl_code;
    char why[KCR_WHY_MAX]; /* "" when this request passed */
};

struct kcr_run {
    struct kcr_step steps[KCR_STEP_COUNT];
    char auth_mode[KCR_NAME_MAX];
    struct kcr_sample *samples; /* opts.requests of them, in request order */
    size_t n_samples;
    size_t non_200, bad_body, transport_errors;
    struct kcr_counter_analysis counters;
    struct kcr_latency latency;
    double burst_ms;
    long connections; /* new connections opened during the burst */
    int exit_code;
    char verdict[512];
};

const char *kcr_step_name(enum kcr_step_id id);

/* Judging one answer: each fills the step (ok, detail, error_code) from
 * the HTTP status and body. */
void kcr_judge_login(const struct kcr_opts *o, long status, const char *body, size_t len,
                     struct kcr_step *st, struct kcr_login_resp *login);
void kcr_judge_status(const struct kcr_opts *o, long status, const char *body, size_t len,
                      struct kcr_step *st);
void kcr_judge_counter(long status, const char *body, size_t len, struct kcr_sample *s);
void kcr_judge_logout(const struct kcr_opts *o, long status, const char *body, size_t len,
                      struct kcr_step *st);
void kcr_judge_after_logout(long status, const char *body, size_t len, struct kcr_step *st);
/* The burst's step from its samples: analysis, latency, the counter step. */
bool kcr_judge_burst(const struct kcr_opts *o, struct kcr_run *r);
/* Sets exit_code and verdict from the steps. */
void kcr_verdict(const struct kcr_opts *o, struct kcr_run *r);

/* One line per step that ran, then the verdict. */
void kcr_print_human(const struct kcr_opts *o, const struct kcr_run *r, FILE *f);
/* The whole run as one JSON object; NULL when out of memory. */
json_t *kcr_report_json(const struct kcr_opts *o, const struct kcr_run *r);

/* ---- a run recorded elsewhere, analysed here (kcr_input.c) --------------- */

/* --analyze reads one line per answer, as phase5_chain_regression.sh
 * --remote curl records them with plain curl on the client (format in
 * chain-regress(1)):
 *   STEP SP CURL_EXIT SP HTTP_CODE SP SECONDS SP CONNECTS SP BODY LF
 * STEP is login, status, counter, logout, after_logout (answers), burst
 * (the burst's wall-clock SECONDS) or cacert (BODY: the CA file used). */
#define KCR_LINE_MAX (KCR_MAX_BODY + 128) /* bytes before the LF */
#define KCR_LINES_MAX (KCR_MAX_REQUESTS + 16)

enum kcr_line_kind {
    KCR_LINE_STEP = 0, /* step: a kcr_step_id */
    KCR_LINE_BURST,
    KCR_LINE_CACERT,
};

struct kcr_line {
    enum kcr_line_kind kind;
    enum kcr_step_id step; /* KCR_LINE_STEP only */
    int curl_code;         /* curl's exit status, 0..99 */
    long status;           /* 100..599; 0 (written 000) when there was no answer */
    double ms;             /* SECONDS in milliseconds */
    long connects;
    const char *body; /* into the line, body_len bytes; may be empty */
    size_t body_len;
};

/* One line without its LF; false with why naming the field that is wrong. */
bool kcr_input_parse_line(const char *line, size_t len, struct kcr_line *out, char *why,
                          size_t whylen);

struct kcr_input {
    struct kcr_opts *o; /* a cacert line sets o->cacert, for the report */
    struct kcr_run *r;  /* r->samples: o->requests of them */
    size_t lineno;
    int last; /* the last step line's kcr_step_id, -1 before login */
    bool burst_seen, cacert_seen;
    size_t counters; /* counter lines so far */
};

/* The run starts empty; r->samples must hold o->requests samples. */
void kcr_input_init(struct kcr_input *in, struct kcr_opts *o, struct kcr_run *r);
/* One line (no LF): judged like the answer it records. False on bad
 * input, err naming the line number and what was wrong. */
bool kcr_input_feed(struct kcr_input *in, const char *line, size_t len, char *err, size_t errlen);
/* After the last line: the burst judged, then the verdict. False when out
 * of memory. */
bool kcr_input_finish(struct kcr_input *in);
/* Every line of f, fed and finished. KCR_EXIT_OK when the input was
 * well-formed (r has the verdict), KCR_EXIT_USAGE with err naming the line
 * when not, KCR_EXIT_INTERNAL when out of memory or f could not be read. */
int kcr_input_read(FILE *f, struct kcr_opts *o, struct kcr_run *r, char *err, size_t errlen);

/* ---- libcurl's allocations (kcr_alloc.c) ---------------------------------- */

/* malloc, free, realloc, calloc and strdup over a cache of freed blocks by
 * size class, kept by the one thread that called kcr_alloc_bind_thread
 * (other threads may use them too: they get and give plain malloc blocks);
 * blocks are only for these functions. Release frees that thread's cached
 * blocks (after curl_global_cleanup and the last jansson value is gone). */
void kcr_alloc_bind_thread(void);
void *kcr_alloc_malloc(size_t n);
void kcr_alloc_free(void *p);
void *kcr_alloc_realloc(void *p, size_t n);
void *kcr_alloc_calloc(size_t count, size_t size);
char *kcr_alloc_strdup(const char *s);
void kcr_alloc_release(void);
/* Whether chain-regress installs them for libcurl and jansson: not in
 * sanitizer builds, where AddressSanitizer must see every block. */
bool kcr_alloc_enabled(void);

/* ---- HTTP (kcr_http.c) --------------------------------------------------- */

struct kcr_xfer {
    /* in */
    const char *path;  /* "/session/login" */
    const char *body;  /* NULL: empty body */
    const char *token; /* NULL: no Authorization */
    long timeout_ms;
    /* out */
    long status;
    int curl_code;
    char curl_error[256];
    char *resp; /* NUL-terminated, resp_len bytes; free with kcr_xfer_release */
    size_t resp_len;
    bool resp_lent; /* resp is the slot's buffer, valid only inside on_done */
    double ms;
    long new_connections;
};

struct kcr_http;

/* curl_global_init, with libcurl allocating through kcr_alloc_* when
 * kcr_alloc_enabled(); cleanup also releases the cached blocks. */
bool kcr_http_global_init(void);
void kcr_http_global_cleanup(void);
/* One multi handle, its connections kept for reuse (up to max_conns). */
struct kcr_http *kcr_http_new(const char *base_url, const char *cacert, unsigned max_conns);
void kcr_http_free(struct kcr_http *h);
/* Runs n transfers with at most parallelism (and at most max_conns) in
 * flight; each is filled in. on_done (may be NULL) is called as each one
 * ends; its x->resp is then lent (reused for the next transfer once on_done
 * returns); without on_done each x->resp is the caller's. False only when
 * curl or epoll itself failed (out of memory, bad handle). */
bool kcr_http_run(struct kcr_http *h, struct kcr_xfer *x, size_t n, unsigned parallelism,
                  void (*on_done)(void *ctx, size_t i, struct kcr_xfer *x), void *ctx);
/* n transfers like tmpl (its path, body, token, timeout_ms), each handed
 * to on_done (required) as it ends: no per-transfer array, however many. */
bool kcr_http_repeat(struct kcr_http *h, const struct kcr_xfer *tmpl, size_t n,
                     unsigned parallelism, void (*on_done)(void *ctx, size_t i, struct kcr_xfer *x),
                     void *ctx);
void kcr_xfer_release(struct kcr_xfer *x);
/* A short hint for a curl error code, e.g. the CA file; "" when none. */
const char *kcr_curl_hint(int curl_code);

#endif
