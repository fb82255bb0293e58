/* The services' HTTP(S) server: libmicrohttpd driven by our own event loops
 * (one polling thread per core, each with its own daemon in external epoll
 * mode on a shared listening socket), bodies collected up to a cap, the
 * answers of /healthz and /metrics (routes of every service's table), one
 * JSON log line per request, connection limits
 * (total and per client address, refusals counted in /metrics), a deadline
 * for each request's headers and body, and strict framing (a request that
 * could be read two ways is refused and its connection closed).
 *
 * Handlers see a parsed request and fill a JSON response. A handler runs on
 * the polling thread that read the request, so it must not block, unless
 * cfg.may_block says it may: then it runs on one of cfg.workers threads. A
 * handler that waits on something (an upstream call, a card operation) can
 * instead park its request with ksvc_defer and answer it later, from any
 * thread, with ksvc_complete: no thread waits meanwhile.
 *
 * A service can put its own descriptors and a timer on a polling thread's
 * loop (struct ksvc_loop, below): work it starts from a handler then finishes
 * on the same thread, so the answer is sent without a hand-over between
 * threads (k_proxy's client of k_server does this). */
#ifndef KCARD_SERVICES_HTTP_H
#define KCARD_SERVICES_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "services/common/flat.h"
#include "services/common/metrics.h"

#define KSVC_MAX_BODY_DEFAULT (16 * 1024)
#define KSVC_MAX_CONNECTIONS_DEFAULT 1024
#define KSVC_MAX_PER_ADDRESS_DEFAULT 256
#define KSVC_REQUEST_TIMEOUT_DEFAULT 10 /* seconds */
#define KSVC_IDLE_TIMEOUT_DEFAULT 60    /* seconds */
#define KSVC_WORKERS_DEFAULT 64

struct ksvc_request {
    const char *method;
    const char *path;
    const char *body; /* NUL-terminated; "" when there is none */
    size_t body_len;
    char request_id[24];    /* boot id (8 hex) + request number (12 hex) */
    char remote[64];        /* peer address */
    void *conn;             /* the MHD connection, for ksvc_request_header */
    void *state;            /* the HTTP layer's, for ksvc_defer; NULL outside a server */
    struct ksvc_loop *loop; /* the polling thread's loop running the handler; NULL on a
                               worker thread or outside a server */
    /* the server's registry, for a handler's counters (so no handler
     * reaches back into its server); NULL outside a server */
    struct ksvc_metrics *metrics;
};

struct ksvc_response {
    int status;
    json_t *body; /* owned; NULL: no body */
    char www_authenticate[64];
    char allow[64];
    char set_cookie[192]; /* "" or a Set-Cookie header value */
    int retry_after;      /* > 0: a Retry-After header of that many seconds (429, 503) */
    const char
        *content_type; /* non-NULL: raw (borrowed, copied before the call returns) is the body */
    const char *raw;
    size_t raw_len;
    json_t *log; /* extra members for the request's log line; owned */
    /* The hot paths' body and log members without jansson (flat.h): the
     * body is flat_body when body_flat; log members are in log_flat or, once
     * one is set with jansson (ksvc_log_field), all in log. */
    bool body_flat;
    struct ksvc_flat flat_body;
    struct ksvc_flat log_flat;
    /* Only Content-Type (and libmicrohttpd's Content-Length and Date): for
     * an answer only a machine peer can get (k_server's to a signed counter
     * call), whose every header line costs that peer's HTTP client. */
    bool bare_headers;
    /* One more header (bare answers too) when header_name is set: a literal.
     * ksvc_reply (and so every reply function) clears it and bare_headers. */
    const char *header_name;
    char header_value[128];
};

typedef void (*ksvc_handler_fn)(void *ctx, const struct ksvc_request *req,
                                struct ksvc_response *resp);
/* Adds service members to the /healthz answer; returns false when not healthy (503). */
typedef bool (*ksvc_health_fn)(void *ctx, json_t *out);
/* Called before /metrics renders, to refresh gauges. */
typedef void (*ksvc_metrics_fn)(void *ctx, struct ksvc_metrics *m);

/* ---- the routes every service has ----
 * GET (or HEAD) /healthz and /metrics are routes of each service's table,
 * answered, like the others, by its handler, with ksvc_route_monitor:
 *  - /healthz: {"status":"ok","service":...,"uptime_s":...,"tls":...} and
 *    what health(ctx, out) adds (NULL: nothing); when health returns
 *    false, status "unhealthy" and 503.
 *  - /metrics: the registry req->metrics in Prometheus' text format, once
 *    refresh(ctx, req->metrics) (NULL: none) has set the service's gauges
 *    and the HTTP layer its own (connections, parked requests, dropped log
 *    lines).
 * Any other path, or a request not being handled by a server: 500. */
void ksvc_route_monitor(const struct ksvc_request *req, struct ksvc_response *resp,
                        ksvc_health_fn health, ksvc_metrics_fn refresh, void *ctx);
/* True when method is one of allow, a route's "GET, HEAD"-style list (also
 * the Allow header of its 405). */
bool ksvc_method_allowed(const char *allow, const char *method);
/* True when the handler may block on this request (it then runs on a worker thread). */
typedef bool (*ksvc_may_block_fn)(void *ctx, const struct ksvc_request *req);

struct ksvc_loop;
/* Called on each polling thread as its loop starts (before any request) and
 * as it ends (after the last); index is 0 .. threads-1. A start hook that
 * returns -1 stops the server from starting. */
typedef int (*ksvc_loop_start_fn)(void *ctx, struct ksvc_loop *loop, unsigned index);
typedef void (*ksvc_loop_stop_fn)(void *ctx, struct ksvc_loop *loop, unsigned index);

/* What keeps a service answering when clients misbehave (0: the default). */
struct ksvc_limits {
    unsigned max_connections;   /* open connections in all (1024) */
    unsigned max_per_address;   /* open connections from one client address (256) */
    unsigned request_timeout_s; /* to send a request's headers and body, counted from
                                   the connection or the previous answer (10 s) */
    unsigned idle_timeout_s;    /* no bytes moved while a response is sent (60 s) */
};

/* How the kernel schedules the polling threads. SCHED_BATCH (the default)
 * keeps a thread woken by a request from preempting the one running: on a
 * machine the load shares, k_server woken by each of k_proxy's calls halted
 * k_proxy mid-batch (1.24 context switches a request, 0.70 with batch). A
 * woken thread still runs at once on an idle core; beside CPU-bound work it
 * may wait for the scheduler's tick (see k_server(1) for the cost). */
enum ksvc_cpu_scheduling {
    KSVC_CPU_BATCH = 0, /* SCHED_BATCH, if the process runs SCHED_OTHER (the
                           kernel's default); one started under another
                           policy (chrt, systemd's CPUSchedulingPolicy=) keeps it */
    KSVC_CPU_INHERIT,   /* the process's policy, untouched */
};

struct ksvc_server_cfg {
    const char *service; /* "k_server": metric prefix kcard_k_server, log service */
    const char *host;    /* numeric IPv4 or IPv6 address, or "localhost" */
    int port;            /* 0: any free port, see ksvc_server_port */
    const char *tls_cert_file, *tls_key_file; /* both or neither */
    size_t max_body;                          /* 0: KSVC_MAX_BODY_DEFAULT */
    struct ksvc_limits limits;
    unsigned threads; /* polling threads; 0: one per online CPU */
    unsigned workers; /* threads for handlers that may block; 0: KSVC_WORKERS_DEFAULT */
    enum ksvc_cpu_scheduling cpu_scheduling; /* the polling threads' (others keep the process's) */
    /* Known paths, NULL-terminated: the route label of metrics; any other
     * path is counted as "other". NULL: every path not answered 404. */
    const char *const *routes;
    ksvc_handler_fn handler;
    ksvc_may_block_fn may_block; /* NULL: no handler blocks (all run on polling threads) */
    void *ctx;
    /* Headers added to every answer but a bare one (ksvc_response.bare_headers),
     * /healthz and /metrics included: name, value, name, value, ..., NULL (e.g.
     * the portal's Content-Security-Policy). NULL: none. Those answers also
     * have X-Content-Type-Options: nosniff. */
    const char *const *extra_headers;
    ksvc_loop_start_fn loop_start; /* NULL: none */
    ksvc_loop_stop_fn loop_stop;   /* NULL: none */
};

struct ksvc_server;

int ksvc_server_start(const struct ksvc_server_cfg *cfg, struct ksvc_server **out, char *err,
                      size_t errlen);
int ksvc_server_port(const struct ksvc_server *s);
bool ksvc_server_tls(const struct ksvc_server *s);
/* The polling threads' policy once started: "batch", or "inherited" when
 * they kept the process's (--cpu-scheduling inherit, a process started
 * under another policy, or batch refused: logged cpu_scheduling_unavailable). */
const char *ksvc_server_cpu_scheduling(const struct ksvc_server *s);
struct ksvc_metrics *ksvc_server_metrics(struct ksvc_server *s);
/* Stops accepting, answers requests still queued for a worker with 503,
 * waits (up to 30 s) for running handlers and every deferred request to be
 * completed, then stops the server and frees it. Whatever completes deferred
 * requests must keep running until this returns. */
void ksvc_server_stop(struct ksvc_server *s);

/* ---- a polling thread's event loop ----
 * Everything here is called on the loop's own thread (from a handler running
 * there, from a watch or timer callback, or from the loop hooks). */

/* Called with the epoll events (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP) of fd. */
typedef void (*ksvc_loop_io_fn)(void *arg, int fd, uint32_t events);
typedef void (*ksvc_loop_timer_fn)(void *arg);

/* Watches fd for events (EPOLLIN and/or EPOLLOUT), replacing what was
 * watched before; events 0 stops watching it (call that before closing a
 * descriptor that may be idle). 0 or -1 (errno set). */
int ksvc_loop_watch(struct ksvc_loop *loop, int fd, uint32_t events, ksvc_loop_io_fn fn, void *arg);
/* Nobody wants fd's events for now, but it stays open (a kept-alive upstream
 * connection between requests): it is left in the epoll set, so that
 * watching it again for the same events costs no system call, and leaves the
 * set only when it reports an event meanwhile. Its owner must call
 * ksvc_loop_watch(loop, fd, 0, NULL, NULL) before closing it. */
void ksvc_loop_idle(struct ksvc_loop *loop, int fd);
/* The loop's one service timer: fn(arg) runs once at at_ms (CLOCK_MONOTONIC
 * milliseconds; at or before now: on the next pass); -1 cancels it. */
void ksvc_loop_timer(struct ksvc_loop *loop, int64_t at_ms, ksvc_loop_timer_fn fn, void *arg);
unsigned ksvc_loop_index(const struct ksvc_loop *loop);
/* True when called on loop's own thread. */
bool ksvc_loop_is_current(const struct ksvc_loop *loop);
/* CLOCK_MONOTONIC in milliseconds, the clock of ksvc_loop_timer. */
int64_t ksvc_now_ms(void);

/* A ksvc_may_block_fn for services whose every handler may block. */
bool ksvc_always_blocks(void *ctx, const struct ksvc_request *req);

/* ---- answering later ----
 *
 * struct ksvc_pending *p = ksvc_defer(req);
 *
 * Called by a handler that cannot answer now. The request's connection is
 * parked (libmicrohttpd suspends it: no thread waits, no bytes are read) and
 * the handler returns at once, leaving resp without a status. Then:
 *  - p must be passed to ksvc_complete exactly once, from any thread; it may
 *    be completed before the handler has returned.
 *  - Until then req and everything it points to (method, path, body, remote,
 *    request_id, ksvc_request_header) stay valid and may be read from any
 *    thread (one at a time). After ksvc_complete neither req nor p may be used.
 *  - Log fields added to resp before ksvc_defer are kept and written on the
 *    request's log line together with the completion's; resp's other members
 *    (status, body, headers) are ignored.
 *  - The request's log line and metrics (its duration included) are written
 *    when it is completed, by the polling thread that then sends the answer:
 *    ksvc_complete itself only hands the answer over and wakes that thread.
 *  - A deferred request is not timed out by the server: the caller bounds it
 *    (upstream timeout, card timeout) and completes it with an error answer.
 *  - ksvc_server_stop waits for outstanding deferred requests.
 * Returns NULL (and nothing is parked) when req is not a request being
 * handled by a ksvc server or when the request was deferred already; the
 * handler must then answer synchronously. */
struct ksvc_pending;
struct ksvc_pending *ksvc_defer(const struct ksvc_request *req);

/* Answers a deferred request with resp: its contents are taken (body and log
 * stolen, raw copied; resp is zeroed) and the connection is woken to send it.
 * A status of 0 becomes 500 internal. Any thread, exactly once per p. */
void ksvc_complete(struct ksvc_pending *p, struct ksvc_response *resp);

/* A request header (case-insensitive name), or NULL. */
const char *ksvc_request_header(const struct ksvc_request *req, const char *name);

/* The token of "Authorization: Bearer <token>" into out; false when the
 * header is missing or not a well-formed bearer token (RFC 6750 token68). */
bool ksvc_parse_bearer(const char *authorization, char *out, size_t cap);

/* The body as a JSON object (new reference) or NULL with resp set to 400
 * bad_json / 415 when the Content-Type says it is not JSON. */
json_t *ksvc_request_json_object(const struct ksvc_request *req, struct ksvc_response *resp);

/* The same for a body and Content-Type given directly (NULL type: JSON assumed). */
json_t *ksvc_json_object_parse(const char *body, size_t len, const char *content_type,
                               struct ksvc_response *resp);

/* Why a request's framing is refused: NULL when its headers are acceptable,
 * else a sentence naming the fault (Content-Length with Transfer-Encoding,
 * differing Content-Length values, a Transfer-Encoding other than chunked,
 * no or several Host headers in HTTP/1.1). headers is an array of n
 * name/value pairs; version is "HTTP/1.1" or "HTTP/1.0". */
const char *ksvc_framing_fault(const char *version, const char *const (*headers)[2], size_t n);

/* Sets a JSON body (stolen) and a status. */
void ksvc_reply(struct ksvc_response *resp, int status, json_t *body);
/* Sets {"error": code, "message": formatted} and a status. */
void ksvc_reply_error(struct ksvc_response *resp, int status, const char *code, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));
/* 405 with Allow. */
void ksvc_reply_method_not_allowed(struct ksvc_response *resp, const char *allow);
/* Adds one member to the request's log line (value stolen). */
void ksvc_log_field(struct ksvc_response *resp, const char *key, json_t *value);

/* The same without jansson, for hot paths (flat.h); key must be a string
 * literal. ksvc_reply_flat sets a status and an empty object body that
 * ksvc_body_int and ksvc_body_str fill; whatever does not fit a flat object
 * moves it to jansson, so every call takes effect. */
void ksvc_reply_flat(struct ksvc_response *resp, int status);
void ksvc_body_int(struct ksvc_response *resp, const char *key, long long v);
void ksvc_body_str(struct ksvc_response *resp, const char *key, const char *s);
void ksvc_log_int(struct ksvc_response *resp, const char *key, long long v);
void ksvc_log_str(struct ksvc_response *resp, const char *key, const char *s);

#endif
