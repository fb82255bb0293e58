/* libmicrohttpd front of the services (see http.h).
 *
 * Threads: one event loop per core, each with its own libmicrohttpd daemon in
 * external epoll mode, all accepting from one listening socket; a loop reads
 * requests and runs handlers that do not block, and services may put their
 * own descriptors on it (k_proxy's upstream connections), so a request that
 * waits for one is resumed and answered on the thread that read it. A worker
 * pool runs the handlers that may block (cfg.may_block), with the connection
 * suspended meanwhile; a reaper closes connections past their request
 * deadline (libmicrohttpd itself only knows an idle timeout, which a client
 * trickling one byte at a time never reaches).
 *
 * Per connection there is one conn_state (allocated when the connection is
 * accepted, reused by every request on it); its buffers hold the body, the
 * rendered answer and the log line, so a request on a kept-alive connection
 * allocates little beyond what jansson and libmicrohttpd need. */
#include "services/common/http.h"
#include "services/common/http_int.h"
#include "services/common/svc_util.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "services/common/crypto.h"
#include "services/common/log.h"
#include "util/clock.h"
#include "util/hex.h"
#include "util/num.h"
#include "util/rand.h"

#define STOP_WAIT_MS 30000
#define REAP_INTERVAL_MS 100
#define MHD_LOG_LINES_PER_S 5 /* libmicrohttpd's own messages, before they are only counted */
#define FRAMING_HEADERS_MAX 16
/* libmicrohttpd's per-connection pool holds the request line, the headers
 * and the answer's headers (bodies go to conn_state), and is zeroed after
 * every request: 16 KiB (headers up to about 8 KiB) instead of its 32 */
#define CONNECTION_POOL_BYTES ((size_t)16 * 1024)
#define LISTEN_BACKLOG 4096

/* Who answers a handled request: the handler (returned) or ksvc_complete. */
enum handoff { HANDOFF_HANDLING, HANDOFF_RETURNED, HANDOFF_COMPLETED };

struct conn_state {
    struct ksvc_server *s;
    struct ksvc_loop *loop; /* the loop whose daemon holds the connection */
    struct MHD_Connection *conn;
    int fd;
    struct conn_state *prev, *next; /* s->conns, under s->conn_lock */
    atomic_llong deadline_ms;       /* monotonic; 0: none (a request is being answered) */
    unsigned char addr[16];         /* IPv6 or v4-mapped: the per-address key */
    bool has_addr;
    char remote[INET6_ADDRSTRLEN];

    /* the request in progress */
    struct ksvc_request req;
    uint64_t start_ns; /* kcu_now_ns() when the request began */
    bool reading;      /* headers seen, final call not yet */
    bool too_large;    /* the body passed max_body: 413 at the end */
    bool in_handler;   /* ksvc_defer may be called */
    bool deferred;     /* ksvc_defer was called */
    bool suspended;    /* libmicrohttpd suspended the connection for us */
    bool close;        /* answer with Connection: close */
    char *body;
    size_t len, cap;
    atomic_int handoff;
    json_t *early_log;           /* log members set before ksvc_defer */
    struct ksvc_flat early_flat; /* the same, kept flat */
    struct ksvc_response final;  /* given to ksvc_complete */
    bool have_final;             /* final is to be rendered by the polling thread */
    char *free_raw;              /* a raw body to free after rendering (/metrics) */
    struct MHD_Response *ready;  /* the answer, to queue on the polling thread */
    int ready_status;
    struct conn_state *job_next; /* the worker queue */

    char *out; /* the rendered answer (the MHD response points into it) */
    size_t out_len, out_cap;
    char *line; /* the log line */
    size_t line_len, line_cap;

    /* TLS: libmicrohttpd sends an answer's headers and body as two TLS
     * records; corking the session for a small answer makes them one
     * (tls_answer_begin, tls_answer_flush) */
    gnutls_session_t tls;
    bool tls_corked;   /* this answer is held in the session until completion */
    bool tcp_uncorked; /* libmicrohttpd's TCP_CORK on the socket was taken off */
};

/* Open connections per client address: linear probing, keyed by 16 bytes. */
struct addr_count {
    unsigned char key[16];
    unsigned count; /* 0: free slot */
};

/* ---- small helpers for handlers ---- */

const char *ksvc_request_header(const struct ksvc_request *req, const char *name)
{
    if (req->conn == NULL)
        return NULL;
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_HEADER_KIND, name);
}

bool ksvc_parse_bearer(const char *authorization, char *out, size_t cap)
{
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *tok = authorization + 7;
    while (*tok == ' ')
        tok++;
    size_t n = strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/");
    size_t pad = strspn(tok + n, "=");
    if (n == 0 || tok[n + pad] != '\0' || n + pad >= cap)
        return false;
    memcpy(out, tok, n + pad);
    out[n + pad] = '\0';
    return true;
}

void ksvc_reply(struct ksvc_response *resp, int status, json_t *body)
{
    json_decref(resp->body);
    resp->status = status;
    resp->body = body;
    resp->body_flat = false;
    resp->flat_body.n = 0;
    resp->bare_headers = false;
    resp->header_name = NULL; /* a new answer: its own headers */
}

void ksvc_reply_flat(struct ksvc_response *resp, int status)
{
    ksvc_reply(resp, status, NULL);
    resp->body_flat = true;
}

/* A member that does not fit the flat body: the body becomes jansson's. */
static void body_to_json(struct ksvc_response *resp)
{
    json_t *obj = json_object();
    if (obj != NULL)
        ksvc_flat_to_json(&resp->flat_body, obj);
    resp->body = obj;
    resp->body_flat = false;
    resp->flat_body.n = 0;
}

void ksvc_body_int(struct ksvc_response *resp, const char *key, long long v)
{
    if (resp->body_flat && ksvc_flat_int(&resp->flat_body, key, v) == 0)
        return;
    if (resp->body_flat)
        body_to_json(resp);
    if (resp->body != NULL)
        json_object_set_new(resp->body, key, json_integer(v));
}

void ksvc_body_str(struct ksvc_response *resp, const char *key, const char *s)
{
    if (resp->body_flat && ksvc_flat_str(&resp->flat_body, key, s) == 0)
        return;
    if (resp->body_flat)
        body_to_json(resp);
    if (resp->body != NULL)
        json_object_set_new(resp->body, key, json_string(s));
}

void ksvc_reply_error(struct ksvc_response *resp, int status, const char *code, const char *fmt,
                      ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *body = json_pack("{s:s, s:s}", "error", code, "message", msg);
    if (body == NULL) { /* not UTF-8 (a path echoed back): say it in ASCII */
        for (char *p = msg; *p != '\0'; p++)
            if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
                *p = '?';
        body = json_pack("{s:s, s:s}", "error", code, "message", msg);
    }
    ksvc_reply(resp, status, body);
    ksvc_log_field(resp, "error", json_string(code));
}

void ksvc_reply_method_not_allowed(struct ksvc_response *resp, const char *allow)
{
    snprintf(resp->allow, sizeof(resp->allow), "%s", allow);
    ksvc_reply_error(resp, 405, "method_not_allowed", "this path accepts only %s", allow);
}

void ksvc_log_field(struct ksvc_response *resp, const char *key, json_t *value)
{
    if (value == NULL)
        return;
    if (resp->log == NULL)
        resp->log = json_object();
    /* one object holds them all: the flat ones move to it first */
    if (resp->log != NULL && resp->log_flat.n > 0)
        ksvc_flat_to_json(&resp->log_flat, resp->log);
    resp->log_flat.n = 0;
    if (resp->log != NULL)
        json_object_set_new(resp->log, key, value);
    else
        json_decref(value);
}

void ksvc_log_int(struct ksvc_response *resp, const char *key, long long v)
{
    if (resp->log == NULL && ksvc_flat_int(&resp->log_flat, key, v) == 0)
        return;
    ksvc_log_field(resp, key, json_integer(v));
}

void ksvc_log_str(struct ksvc_response *resp, const char *key, const char *s)
{
    if (resp->log == NULL && ksvc_flat_str(&resp->log_flat, key, s) == 0)
        return;
    ksvc_log_field(resp, key, json_string(s));
}

json_t *ksvc_json_object_parse(const char *body, size_t len, const char *content_type,
                               struct ksvc_response *resp)
{
    if (content_type != NULL && strncasecmp(content_type, "application/json", 16) != 0) {
        ksvc_reply_error(resp, 415, "unsupported_media_type",
                         "the body must be application/json, not %.64s", content_type);
        return NULL;
    }
    json_error_t jerr;
    json_t *obj = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL) {
        ksvc_reply_error(resp, 400, "bad_json", "the body is not valid JSON: %s (at byte %d)",
                         jerr.text, jerr.position);
        return NULL;
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        ksvc_reply_error(resp, 400, "bad_json", "the body must be a JSON object");
        return NULL;
    }
    return obj;
}

json_t *ksvc_request_json_object(const struct ksvc_request *req, struct ksvc_response *resp)
{
    return ksvc_json_object_parse(req->body, req->body_len,
                                  ksvc_request_header(req, "Content-Type"), resp);
}

bool ksvc_always_blocks(void *ctx, const struct ksvc_request *req)
{
    (void)ctx;
    (void)req;
    return true;
}

/* ---- strict framing ---- */

const char *ksvc_framing_fault(const char *version, const char *const (*headers)[2], size_t n)
{
    unsigned hosts = 0, encodings = 0, lengths = 0;
    const char *first_length = NULL, *encoding = NULL;
    bool lengths_differ = false;
    for (size_t i = 0; i < n; i++) {
        const char *name = headers[i][0], *value = headers[i][1] ? headers[i][1] : "";
        if (strcasecmp(name, "Host") == 0) {
            hosts++;
        } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
            encodings++;
            encoding = value;
        } else if (strcasecmp(name, "Content-Length") == 0) {
            if (first_length != NULL && strcmp(first_length, value) != 0)
                lengths_differ = true;
            if (first_length == NULL)
                first_length = value;
            lengths++;
        }
    }
    if (encodings > 0 && lengths > 0)
        return "the request has both Content-Length and Transfer-Encoding";
    if (lengths_differ)
        return "the request has Content-Length headers with differing values";
    if (encodings > 1 || (encoding != NULL && strcasecmp(encoding, "chunked") != 0))
        return "the only Transfer-Encoding accepted is a single chunked";
    bool http11 = version != NULL && strncmp(version, "HTTP/1.", 7) == 0 && version[7] != '0';
    if (http11 && hosts == 0)
        return "an HTTP/1.1 request needs a Host header";
    if (hosts > 1)
        return "the request has more than one Host header";
    return NULL;
}

struct framing_headers {
    const char *h[FRAMING_HEADERS_MAX][2];
    size_t n;
    bool overflow;
};

static enum MHD_Result collect_framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                              const char *value)
{
    (void)kind;
    struct framing_headers *f = cls;
    if (strcasecmp(key, "Host") != 0 && strcasecmp(key, "Content-Length") != 0 &&
        strcasecmp(key, "Transfer-Encoding") != 0)
        return MHD_YES;
    if (f->n == FRAMING_HEADERS_MAX) {
        f->overflow = true;
        return MHD_NO;
    }
    f->h[f->n][0] = key;
    f->h[f->n][1] = value;
    f->n++;
    return MHD_YES;
}

static const char *framing_fault(struct MHD_Connection *conn, const char *version)
{
    struct framing_headers f = {.n = 0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_framing_header, &f);
    if (f.overflow)
        return "the request repeats Host, Content-Length or Transfer-Encoding too often";
    return ksvc_framing_fault(version, (const char *const(*)[2])f.h, f.n);
}

/* ---- growing buffers ---- */

static bool reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    char *b = realloc(*buf, n);
    if (b == NULL)
        return false;
    *buf = b;
    *cap = n;
    return true;
}

static int out_append(const char *data, size_t size, void *cls)
{
    struct conn_state *st = cls;
    if (!reserve(&st->out, &st->out_cap, st->out_len + size + 1))
        return -1;
    memcpy(st->out + st->out_len, data, size);
    st->out_len += size;
    return 0;
}

static int line_append(const char *data, size_t size, void *cls)
{
    struct conn_state *st = cls;
    if (!reserve(&st->line, &st->line_cap, st->line_len + size + 1))
        return -1;
    memcpy(st->line + st->line_len, data, size);
    st->line_len += size;
    return 0;
}

static void line_str(struct conn_state *st, const char *s)
{
    line_append(s, strlen(s), st);
}

/* s as a JSON string; bytes outside printable ASCII as \u00XX, so a path
 * that is not UTF-8 still makes a valid line. */
static void line_json_string(struct conn_state *st, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    line_append("\"", 1, st);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        size_t run = 0;
        while (p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > 0) {
            line_append((const char *)p, run, st);
            p += run - 1;
            continue;
        }
        char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
        if (*p == '"' || *p == '\\') {
            esc[1] = (char)*p;
            line_append(esc, 2, st);
        } else {
            line_append(esc, 6, st);
        }
    }
    line_append("\"", 1, st);
}

/* ---- answering ---- */

/* What every answer but a bare one carries besides its Content-Type. */
static void add_usual_headers(struct MHD_Response *mr, const struct conn_state *st,
                              const struct ksvc_response *r)
{
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(mr, "X-Request-Id", st->req.request_id);
    if (r->www_authenticate[0] != '\0')
        MHD_add_response_header(mr, MHD_HTTP_HEADER_WWW_AUTHENTICATE, r->www_authenticate);
    if (r->allow[0] != '\0')
        MHD_add_response_header(mr, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->set_cookie[0] != '\0')
        MHD_add_response_header(mr, MHD_HTTP_HEADER_SET_COOKIE, r->set_cookie);
    if (r->retry_after > 0) {
        char secs[16];
        snprintf(secs, sizeof(secs), "%d", r->retry_after);
        MHD_add_response_header(mr, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff"); /* no sniffing */
    for (const char *const *h = st->s->cfg.extra_headers; h != NULL && h[0] != NULL && h[1] != NULL;
         h += 2)
        MHD_add_response_header(mr, h[0], h[1]);
}

static void add_headers(struct MHD_Response *mr, const struct conn_state *st,
                        const struct ksvc_response *r, const char *type)
{
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (!r->bare_headers)
        add_usual_headers(mr, st, r);
    if (r->header_name != NULL)
        MHD_add_response_header(mr, r->header_name, r->header_value);
    if (st->close)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
}

static const char *const fixed_log_keys[] = {"ts",         "service", "level",   "event",
                                             "request_id", "method",  "path",    "status",
                                             "ms",         "remote",  "bytes_in"};

/* v in decimal: a number of every log line, without printf's cost. */
static void line_uint(struct conn_state *st, uint64_t v)
{
    char digits[KCU_U64_DEC_MAX];
    line_append(digits, kcu_format_u64(v, digits), st);
}

/* secs as milliseconds with three decimals (%.3f of secs * 1000). */
static void line_ms(struct conn_state *st, double secs)
{
    uint64_t us = secs > 0 ? (uint64_t)(secs * 1e6 + 0.5) : 0;
    char frac[4] = {'.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10),
                    (char)('0' + us % 10)};
    line_uint(st, us / 1000);
    line_append(frac, sizeof(frac), st);
}

/* ,"key":value for the members a request line carries (session refs,
 * counter values, names): integers and plain ASCII strings written as they
 * are, since jansson's dump of a small object costs more than the rest of
 * the line. False when something else is met (real, UTF-8, nested): the
 * caller then has jansson write them all. */
static bool line_extra_plain(struct conn_state *st, json_t *extra)
{
    const char *key;
    json_t *value;
    json_object_foreach(extra, key, value)
    {
        bool is_int = json_is_integer(value);
        if (!ksvc_flat_plain_text(key, strlen(key)) ||
            !(is_int || (json_is_string(value) && ksvc_flat_plain_text(json_string_value(value),
                                                                       json_string_length(value)))))
            return false;
        if (is_int)
            ksvc_flat_write_member(line_append, st, true, key, false, json_integer_value(value),
                                   NULL, 0);
        else
            ksvc_flat_write_member(line_append, st, true, key, true, 0, json_string_value(value),
                                   json_string_length(value));
    }
    return true;
}

/* The handler's members after the fixed ones (the line's '}' follows). */
static void line_extra(struct conn_state *st, json_t *extra)
{
    size_t mark = st->line_len;
    if (line_extra_plain(st, extra))
        return;
    st->line_len = mark;
    if (json_dump_callback(extra, line_append, st,
                           JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) == 0 &&
        st->line_len > mark + 2) {
        /* the object's '{' becomes the separator; its '}' is dropped for the line's */
        st->line[mark] = ',';
        st->line_len--;
    } else {
        st->line_len = mark;
    }
}

/* True when a handler's log fields name one of the fixed ones (which win). */
static bool names_fixed_key(json_t *extra)
{
    const char *key;
    json_t *value;
    json_object_foreach(extra, key, value)
    {
        (void)value;
        for (size_t i = 0; i < sizeof(fixed_log_keys) / sizeof(fixed_log_keys[0]); i++)
            if (strcmp(key, fixed_log_keys[i]) == 0)
                return true;
    }
    return false;
}

/* The handler's plain flat members (a copy: the fixed names are dropped). */
static void line_flat(struct conn_state *st, struct ksvc_flat *flat)
{
    for (size_t i = 0; i < sizeof(fixed_log_keys) / sizeof(fixed_log_keys[0]); i++)
        ksvc_flat_del(flat, fixed_log_keys[i]);
    ksvc_flat_write(flat, true, line_append, st);
}

/* The request's log line, written by the logger thread: the handler's
 * members are extra (jansson's) or else flat. */
static void log_request(struct conn_state *st, int status, double secs, json_t *extra,
                        struct ksvc_flat *flat)
{
    char ts[32];
    ksvc_log_timestamp(ts);
    st->line_len = 0;
    line_str(st, "{\"ts\":\"");
    line_str(st, ts);
    line_str(st, "\",\"service\":");
    line_json_string(st, ksvc_log_service());
    line_str(st, status >= 500 ? ",\"level\":\"error\"" : ",\"level\":\"info\"");
    line_str(st, ",\"event\":\"request\",\"request_id\":\"");
    line_str(st, st->req.request_id);
    line_str(st, "\",\"method\":");
    line_json_string(st, st->req.method);
    line_str(st, ",\"path\":");
    line_json_string(st, st->req.path);
    line_str(st, ",\"status\":");
    line_uint(st, status > 0 ? (uint64_t)status : 0);
    line_str(st, ",\"ms\":");
    line_ms(st, secs);
    line_str(st, ",\"remote\":");
    line_json_string(st, st->remote);
    line_str(st, ",\"bytes_in\":");
    line_uint(st, st->len);
    if (extra != NULL) {
        if (names_fixed_key(extra))
            for (size_t i = 0; i < sizeof(fixed_log_keys) / sizeof(fixed_log_keys[0]); i++)
                json_object_del(extra, fixed_log_keys[i]);
        line_extra(st, extra);
    } else if (flat != NULL && flat->n > 0) {
        line_flat(st, flat);
    }
    line_str(st, "}");
    if (st->line != NULL)
        ksvc_log_text(st->line, st->line_len);
}

/* A plain flat body's text (finalize hands any other to jansson). */
static int render_flat(struct conn_state *st, const struct ksvc_flat *f)
{
    return out_append("{", 1, st) != 0 || ksvc_flat_write(f, false, out_append, st) != 0 ||
                   out_append("}\n", 2, st) != 0
               ? -1
               : 0;
}

/* The handler's log members: those set before ksvc_defer, then the
 * answer's (which win). Into *flat when all are flat, fit one flat object
 * and are plain (NULL returned), else a jansson object (returned, the
 * caller's), which leaves out what jansson refuses (not UTF-8). */
static json_t *log_members(struct conn_state *st, struct ksvc_response *resp,
                           struct ksvc_flat *flat)
{
    json_t *early = st->early_log, *late = resp->log;
    st->early_log = NULL;
    resp->log = NULL;
    flat->n = 0;
    if (early == NULL && late == NULL) {
        *flat = st->early_flat;
        if (ksvc_flat_merge(flat, &resp->log_flat) == 0 && ksvc_flat_plain(flat)) {
            st->early_flat.n = 0;
            resp->log_flat.n = 0;
            return NULL;
        }
        flat->n = 0; /* more than a flat object holds, or text to escape */
    }
    /* a jansson object holds a side's members alone (ksvc_log_field) */
    json_t *extra = early;
    if (extra == NULL && st->early_flat.n == 0 && late != NULL) {
        extra = late;
        late = NULL;
    } else if (extra == NULL) {
        extra = json_object();
    }
    if (extra != NULL) {
        ksvc_flat_to_json(&st->early_flat, extra);
        if (late != NULL)
            json_object_update(extra, late);
        ksvc_flat_to_json(&resp->log_flat, extra);
    }
    json_decref(late);
    st->early_flat.n = 0;
    resp->log_flat.n = 0;
    return extra;
}

/* Renders resp into st->ready (the MHD response), writes the log line and
 * the metrics, and frees what resp owns. Any thread. */
static void finalize(struct conn_state *st, struct ksvc_response *resp)
{
    struct ksvc_server *s = st->s;
    if (resp->status < 100 || resp->status > 599) {
        if (resp->status != 0)
            ksvc_log("error", "bad_status", json_pack("{s:i}", "status", resp->status));
        ksvc_reply_error(resp, 500, "internal", "the handler gave no answer");
    }
    const char *type = "application/json";
    st->out_len = 0;
    /* a flat body with something to escape is jansson's to write */
    if (resp->body_flat && !ksvc_flat_plain(&resp->flat_body))
        body_to_json(resp);
    if (resp->content_type != NULL) {
        type = resp->content_type;
        if (resp->raw_len > 0 && resp->raw != NULL && out_append(resp->raw, resp->raw_len, st) != 0)
            st->out_len = 0;
    } else if (resp->body_flat) {
        if (render_flat(st, &resp->flat_body) != 0)
            st->out_len = 0;
    } else if (resp->body != NULL) {
        /* JSON answers end with a newline, as curl users expect */
        if (json_dump_callback(resp->body, out_append, st, JSON_COMPACT | JSON_PRESERVE_ORDER) !=
                0 ||
            out_append("\n", 1, st) != 0)
            st->out_len = 0;
    }
    st->ready = MHD_create_response_from_buffer(st->out_len, st->out_len ? st->out : NULL,
                                                MHD_RESPMEM_PERSISTENT);
    st->ready_status = resp->status;
    if (st->ready != NULL)
        add_headers(st->ready, st, resp, type);

    double secs = (double)(kcu_now_ns() - st->start_ns) / 1e9;
    const char *route = "other";
    if (s->cfg.routes != NULL) {
        for (const char *const *r = s->cfg.routes; *r != NULL; r++)
            if (strcmp(*r, st->req.path) == 0)
                route = *r;
    } else if (resp->status != 404 && resp->status != 400) {
        route = st->req.path;
    }
    ksvc_metrics_request(s->metrics, route, st->req.method, resp->status, secs);

    struct ksvc_flat flat;
    json_t *extra = log_members(st, resp, &flat);
    log_request(st, resp->status, secs, extra, &flat);
    json_decref(extra);
    json_decref(resp->body);
    free(st->free_raw);
    st->free_raw = NULL;
    memset(resp, 0, sizeof(*resp));
}

/* A raw body is borrowed only until the answer is handed over: copy it. */
static void own_raw(struct conn_state *st, struct ksvc_response *f)
{
    if (f->content_type == NULL || f->raw == NULL || f->raw == st->free_raw)
        return;
    char *copy = malloc(f->raw_len ? f->raw_len : 1);
    if (copy != NULL)
        memcpy(copy, f->raw, f->raw_len);
    free(st->free_raw);
    st->free_raw = copy;
    f->raw = copy;
    if (copy == NULL) {
        f->content_type = NULL;
        ksvc_reply_error(f, 500, "internal", "out of memory");
    }
}

/* Hands resp to the parked connection and wakes it: its polling thread
 * renders, logs and sends it (on_request), so the thread completing it (a
 * service's event loop) does no more than this. After this st belongs to
 * the polling thread again. */
static void finish_parked(struct conn_state *st, struct ksvc_response *resp)
{
    if (resp != &st->final) {
        st->final = *resp;
        memset(resp, 0, sizeof(*resp));
    }
    own_raw(st, &st->final);
    st->have_final = true;
    struct ksvc_server *s = st->s;
    struct MHD_Connection *conn = st->conn;
    struct ksvc_loop *loop = st->loop;
    st->suspended = false;
    atomic_fetch_sub(&s->outstanding, 1);
    MHD_resume_connection(conn);
    /* from another thread, the loop may be asleep: libmicrohttpd's own
     * signal does not reach our epoll set */
    if (ksvc_loop_is_current(loop))
        loop->resumed = true; /* the loop runs libmicrohttpd before it sleeps */
    else
        ksvc_loop_wake(loop);
}

static void set_total(struct ksvc_server *s, const char *suffix, const char *help,
                      const char *labels, double v, bool gauge)
{
    char name[96];
    snprintf(name, sizeof(name), "%s_%s", s->prefix, suffix);
    if (gauge)
        ksvc_metric_set(s->metrics, name, help, labels, v);
    else
        ksvc_metric_set_total(s->metrics, name, help, labels, v);
}

static void refresh_http_metrics(struct ksvc_server *s)
{
    static const char refused[] = "Connections closed at once, by the limit they hit.";
    static const char closed[] = "Connections closed by the server, by reason.";
    pthread_mutex_lock(&s->conn_lock);
    unsigned open = s->nconns;
    pthread_mutex_unlock(&s->conn_lock);
    set_total(s, "connections_open", "Connections open now.", "", open, true);
    set_total(s, "connections_refused_total", refused, "reason=\"connection_limit\"",
              (double)atomic_load(&s->refused_limit), false);
    set_total(s, "connections_refused_total", refused, "reason=\"per_address_limit\"",
              (double)atomic_load(&s->refused_per_address), false);
    set_total(s, "connections_closed_total", closed, "reason=\"request_timeout\"",
              (double)atomic_load(&s->closed_timeout), false);
    set_total(s, "connections_closed_total", closed, "reason=\"bad_framing\"",
              (double)atomic_load(&s->closed_framing), false);
    set_total(s, "connections_closed_total", closed, "reason=\"answer_unsent\"",
              (double)atomic_load(&s->closed_unsent), false);
    for (unsigned i = 0; i < s->nloops; i++) {
        char label[32];
        snprintf(label, sizeof(label), "loop=\"%u\"", i);
        set_total(s, "loop_connections", "Connections each event loop serves now.", label,
                  atomic_load(&s->loops[i].conns), true);
    }
    set_total(s, "requests_parked", "Requests waiting for a worker or a deferred answer.", "",
              atomic_load(&s->outstanding), true);
    set_total(s, "log_lines_dropped_total", "Log lines dropped because the log ring was full.", "",
              (double)ksvc_log_dropped(), false);
    set_total(s, "http_messages_suppressed_total",
              "libmicrohttpd messages not logged because of their rate.", "",
              (double)atomic_load(&s->mhd_log_suppressed), false);
}

/* ---- the two routes every service has ---- */

bool ksvc_method_allowed(const char *allow, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = allow; *p != '\0';) {
        p += strspn(p, ", ");
        size_t len = strcspn(p, ", ");
        if (len == n && n > 0 && strncmp(p, method, n) == 0)
            return true;
        p += len;
    }
    return false;
}

static void route_healthz(const struct conn_state *st, struct ksvc_response *resp,
                          ksvc_health_fn health, void *ctx)
{
    const struct ksvc_server *s = st->s;
    json_t *out =
        json_pack("{s:s, s:s, s:I, s:b}", "status", "ok", "service", s->cfg.service, "uptime_s",
                  (json_int_t)(time(NULL) - s->started), "tls", s->cert_pem != NULL);
    bool healthy = true;
    if (out != NULL && health != NULL)
        healthy = health(ctx, out);
    if (out != NULL && !healthy)
        json_object_set_new(out, "status", json_string("unhealthy"));
    ksvc_reply(resp, healthy ? 200 : 503, out);
}

static void route_metrics(struct conn_state *st, struct ksvc_response *resp,
                          ksvc_metrics_fn refresh, void *ctx)
{
    if (refresh != NULL)
        refresh(ctx, st->req.metrics);
    refresh_http_metrics(st->s);
    /* the text is the connection's until its answer is rendered (finalize) */
    free(st->free_raw);
    st->free_raw = ksvc_metrics_render(st->req.metrics);
    resp->status = st->free_raw ? 200 : 500;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->raw = st->free_raw;
    resp->raw_len = st->free_raw ? strlen(st->free_raw) : 0;
}

void ksvc_route_monitor(const struct ksvc_request *req, struct ksvc_response *resp,
                        ksvc_health_fn health, ksvc_metrics_fn refresh, void *ctx)
{
    struct conn_state *st = req->state;
    bool metrics = strcmp(req->path, "/metrics") == 0;
    if (st == NULL || req != &st->req || req->metrics == NULL ||
        (!metrics && strcmp(req->path, "/healthz") != 0)) {
        ksvc_reply_error(resp, 500, "internal", "%.64s is not a monitoring request of a server",
                         req->path);
        return;
    }
    if (metrics)
        route_metrics(st, resp, refresh, ctx);
    else
        route_healthz(st, resp, health, ctx);
}

/* Every request goes to the service's handler, /healthz and /metrics too
 * (its route table names them, answered by ksvc_route_monitor). */
static void dispatch(struct ksvc_server *s, struct conn_state *st, struct ksvc_response *resp)
{
    st->in_handler = true;
    s->cfg.handler(s->cfg.ctx, &st->req, resp);
    st->in_handler = false;
}

/* Runs the request; true when its answer is in st->ready to be queued now
 * (the connection was never parked), false when it is or was parked (the
 * thread that completes it resumes the connection). */
static bool run_request(struct conn_state *st)
{
    struct ksvc_server *s = st->s;
    struct ksvc_response resp = {0};
    atomic_store(&st->handoff, HANDOFF_HANDLING);
    dispatch(s, st, &resp);
    if (st->deferred) {
        st->early_log = resp.log;
        resp.log = NULL;
        st->early_flat = resp.log_flat;
        json_decref(resp.body);
        if (atomic_exchange(&st->handoff, HANDOFF_RETURNED) == HANDOFF_COMPLETED)
            finish_parked(st, &st->final);
        return false;
    }
    if (st->suspended) { /* a worker ran it */
        finish_parked(st, &resp);
        return false;
    }
    finalize(st, &resp);
    return true;
}

struct ksvc_pending *ksvc_defer(const struct ksvc_request *req)
{
    struct conn_state *st = req->state;
    if (st == NULL || !st->in_handler || st->deferred)
        return NULL;
    if (!st->suspended) { /* on the polling thread: park the connection */
        MHD_suspend_connection(st->conn);
        st->suspended = true;
        atomic_fetch_add(&st->s->outstanding, 1);
    }
    st->deferred = true;
    return (struct ksvc_pending *)st;
}

void ksvc_complete(struct ksvc_pending *p, struct ksvc_response *resp)
{
    struct conn_state *st = (struct conn_state *)p;
    st->final = *resp;
    memset(resp, 0, sizeof(*resp));
    own_raw(st, &st->final); /* now: the handler may not have returned yet */
    if (atomic_exchange(&st->handoff, HANDOFF_COMPLETED) == HANDOFF_RETURNED)
        finish_parked(st, &st->final);
    /* else the handler has not returned yet: run_request finishes it */
}

/* ---- workers ---- */

static void *worker_main(void *arg)
{
    pthread_setname_np(pthread_self(), "http-worker"); /* top -H, ps -L */
    struct ksvc_server *s = arg;
    pthread_mutex_lock(&s->job_lock);
    for (;;) {
        while (s->job_head == NULL && !s->workers_stop)
            pthread_cond_wait(&s->job_ready, &s->job_lock);
        if (s->job_head == NULL)
            break;
        struct conn_state *st = s->job_head;
        s->job_head = st->job_next;
        if (s->job_head == NULL)
            s->job_tail = NULL;
        pthread_mutex_unlock(&s->job_lock);
        run_request(st);
        pthread_mutex_lock(&s->job_lock);
    }
    pthread_mutex_unlock(&s->job_lock);
    return NULL;
}

/* Queues st for a worker; false once the workers are stopping. */
static bool enqueue(struct ksvc_server *s, struct conn_state *st)
{
    st->job_next = NULL;
    pthread_mutex_lock(&s->job_lock);
    if (s->workers_stop) {
        pthread_mutex_unlock(&s->job_lock);
        return false;
    }
    if (s->job_tail != NULL)
        s->job_tail->job_next = st;
    else
        s->job_head = st;
    s->job_tail = st;
    pthread_cond_signal(&s->job_ready);
    pthread_mutex_unlock(&s->job_lock);
    return true;
}

/* ---- libmicrohttpd callbacks ---- */

/* An answer this small is held in the TLS session while libmicrohttpd
 * writes it and sent as one record when it is complete: libmicrohttpd 0.9.75
 * writes the headers and the body as two records, which costs every client
 * a second record to read and decrypt (measured: 8% of the chain's TLS
 * throughput on two cores). Larger answers go as libmicrohttpd writes them. */
#define TLS_CORK_MAX_BODY 8192

/* GnuTLS calls this once the peer's Finished is read. In TLS 1.3 that is
 * the handshake's last message and the server has nothing to send after it
 * (libmicrohttpd issues no session tickets), so the kernel delays its ACK;
 * a client that leaves Nagle on (a socket wrapped by Python's ssl module,
 * for one; nginx, whose OpenSSL sends tickets, answers it at once) then
 * holds its request until that ACK comes, 40 ms later. It goes out now. */
static int on_peer_finished(gnutls_session_t tls, unsigned type, unsigned when, unsigned incoming,
                            const gnutls_datum_t *msg)
{
    (void)type;
    (void)when;
    (void)msg;
    int fd = gnutls_transport_get_int(tls);
    int one = 1;
    if (incoming && fd >= 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
    return 0;
}

static void tls_answer_begin(struct conn_state *st)
{
    if (st->tls == NULL || st->out_len > TLS_CORK_MAX_BODY || st->tls_corked)
        return;
    gnutls_record_cork(st->tls);
    st->tls_corked = true;
}

/* Sends what tls_answer_begin held: from on_completed, which libmicrohttpd
 * calls once it has written the whole answer and before it closes or
 * reuses the connection. libmicrohttpd corks the TCP socket for its first
 * small write on a connection and keeps it corked, pushing each answer out
 * by setting TCP_NODELAY after its last write, before this record exists:
 * the cork is taken off once it is seen, or the record would wait for the
 * kernel's 200 ms cork timer. A record that cannot be sent now (the client
 * has let the socket's send buffer fill) ends the connection: nothing is
 * left half-sent in the session. */
static void tls_answer_flush(struct conn_state *st, bool answered)
{
    if (!st->tls_corked)
        return;
    st->tls_corked = false;
    if (!st->tcp_uncorked && st->fd >= 0) {
        int corked = 0;
        socklen_t len = sizeof(corked);
        if (getsockopt(st->fd, IPPROTO_TCP, TCP_CORK, &corked, &len) == 0 && corked) {
            int off = 0;
            if (setsockopt(st->fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off)) == 0)
                st->tcp_uncorked = true;
        }
    }
    int rc = gnutls_record_uncork(st->tls, 0);
    if (rc >= 0)
        return;
    if (answered) {
        atomic_fetch_add(&st->s->closed_unsent, 1);
        ksvc_log("warn", "answer_unsent",
                 json_pack("{s:s,s:s}", "remote", st->remote, "detail", gnutls_strerror(rc)));
    }
    if (st->fd >= 0)
        shutdown(st->fd, SHUT_RDWR);
}

static enum MHD_Result queue_ready(struct conn_state *st)
{
    if (st->ready == NULL)
        return MHD_NO;
    tls_answer_begin(st);
    enum MHD_Result ret = MHD_queue_response(st->conn, (unsigned)st->ready_status, st->ready);
    MHD_destroy_response(st->ready);
    st->ready = NULL;
    if (ret != MHD_YES)
        tls_answer_flush(st, false);
    return ret;
}

static void begin_request(struct ksvc_server *s, struct conn_state *st, const char *url,
                          const char *method)
{
    static const char hex[] = "0123456789abcdef";
    st->req = (struct ksvc_request){.method = method,
                                    .path = url,
                                    .conn = st->conn,
                                    .state = st,
                                    .loop = st->loop,
                                    .metrics = s->metrics};
    memcpy(st->req.request_id, s->boot_id, 8);
    unsigned long long n = atomic_fetch_add(&s->next_request, 1) + 1;
    for (int i = 19; i >= 8; i--, n >>= 4)
        st->req.request_id[i] = hex[n & 15];
    st->req.request_id[20] = '\0';
    _Static_assert(sizeof(st->req.remote) >= sizeof(st->remote), "a peer address fits");
    memcpy(st->req.remote, st->remote, sizeof(st->remote)); /* NUL-terminated inside */
    st->len = 0;
    st->reading = true;
    st->too_large = st->deferred = st->close = st->in_handler = false;
    st->start_ns = kcu_now_ns();
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct ksvc_server *s = ((struct ksvc_loop *)cls)->s;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_state *st = ci != NULL ? ci->socket_context : NULL;
    if (st == NULL)
        return MHD_NO;      /* no state (out of memory at accept): close */
    if (*con_cls == NULL) { /* the headers are in */
        *con_cls = st;
        begin_request(s, st, url, method);
        const char *fault = framing_fault(conn, version);
        if (fault == NULL)
            return MHD_YES;
        /* answered before the body: libmicrohttpd reads no further request on it */
        struct ksvc_response resp = {0};
        st->reading = false;
        st->close = true;
        atomic_store(&st->deadline_ms, 0);
        atomic_fetch_add(&s->closed_framing, 1);
        ksvc_reply_error(&resp, 400, "bad_request", "%s; the connection is closed", fault);
        finalize(st, &resp);
        return queue_ready(st);
    }
    if (*upload_size != 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (!st->reading)
            return MHD_YES;
        if (st->too_large || n > s->cfg.max_body - st->len) {
            st->too_large = true; /* keep reading, answer 413 at the end */
            return MHD_YES;
        }
        if (!reserve(&st->body, &st->cap, st->len + n + 1))
            return MHD_NO;
        memcpy(st->body + st->len, upload, n);
        st->len += n;
        st->body[st->len] = '\0';
        return MHD_YES;
    }
    if (st->have_final) { /* resumed with its answer */
        st->have_final = false;
        finalize(st, &st->final);
        return queue_ready(st);
    }
    if (!st->reading)
        return MHD_YES; /* nothing to do until it is answered */
    st->reading = false;
    atomic_store(&st->deadline_ms, 0);
    st->req.body = st->body ? st->body : "";
    st->req.body_len = st->len;
    if (st->too_large) {
        struct ksvc_response resp = {0};
        ksvc_reply_error(&resp, 413, "body_too_large", "the body is over the %zu-byte limit",
                         s->cfg.max_body);
        finalize(st, &resp);
        return queue_ready(st);
    }
    if (s->nworkers > 0 && s->cfg.may_block != NULL && s->cfg.may_block(s->cfg.ctx, &st->req)) {
        st->req.loop = NULL; /* a worker runs it */
        MHD_suspend_connection(conn);
        st->suspended = true;
        atomic_fetch_add(&s->outstanding, 1);
        if (!enqueue(s, st)) { /* stopping: a kept-alive client asked once more */
            struct ksvc_response resp = {0};
            ksvc_reply_error(&resp, 503, "shutting_down", "the service is stopping");
            finish_parked(st, &resp);
        }
        return MHD_YES;
    }
    if (run_request(st))
        return queue_ready(st);
    return MHD_YES;
}

/* Frees an answer that was never sent (the client went away first). */
static void discard_answer(struct conn_state *st)
{
    if (st->ready != NULL) {
        MHD_destroy_response(st->ready);
        st->ready = NULL;
    }
    if (st->have_final) {
        json_decref(st->final.body);
        json_decref(st->final.log);
        memset(&st->final, 0, sizeof(st->final));
        st->have_final = false;
    }
    json_decref(st->early_log);
    st->early_log = NULL;
    st->early_flat.n = 0;
    free(st->free_raw);
    st->free_raw = NULL;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)conn;
    struct ksvc_server *s = ((struct ksvc_loop *)cls)->s;
    struct conn_state *st = *con_cls;
    if (st == NULL)
        return;
    *con_cls = NULL;
    tls_answer_flush(st, code == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    discard_answer(st);
    /* bodies and answers carry usernames and tokens */
    if (st->body != NULL)
        OPENSSL_cleanse(st->body, st->len);
    if (st->out != NULL)
        OPENSSL_cleanse(st->out, st->out_len);
    st->len = st->out_len = 0;
    st->reading = false;
    /* the next request on this connection has the same time to arrive */
    atomic_store(&st->deadline_ms, ksvc_now_ms() + 1000LL * s->cfg.limits.request_timeout_s);
}

static bool address_key(const struct sockaddr *sa, unsigned char key[16], char *text, size_t cap)
{
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;
        memset(key, 0, 10);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &in4->sin_addr, 4);
        if (text != NULL)
            inet_ntop(AF_INET, &in4->sin_addr, text, (socklen_t)cap);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(key, &in6->sin6_addr, 16);
        if (text != NULL)
            inet_ntop(AF_INET6, &in6->sin6_addr, text, (socklen_t)cap);
        return true;
    }
    return false;
}

static size_t addr_hash(const unsigned char key[16])
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 1099511628211ULL;
    return (size_t)h;
}

/* The slot of key, or the free slot where it would go. Locked. */
static size_t addr_slot(const struct ksvc_server *s, const unsigned char key[16])
{
    size_t i = addr_hash(key) & s->addr_mask;
    while (s->addrs[i].count != 0 && memcmp(s->addrs[i].key, key, 16) != 0)
        i = (i + 1) & s->addr_mask;
    return i;
}

static void addr_remove_slot(struct ksvc_server *s, size_t i)
{
    /* backward-shift deletion keeps every probe chain unbroken */
    size_t j = i;
    s->addrs[i].count = 0;
    for (;;) {
        j = (j + 1) & s->addr_mask;
        if (s->addrs[j].count == 0)
            return;
        size_t k = addr_hash(s->addrs[j].key) & s->addr_mask;
        bool movable = i <= j ? (k <= i || k > j) : (k <= i && k > j);
        if (movable) {
            s->addrs[i] = s->addrs[j];
            s->addrs[j].count = 0;
            i = j;
        }
    }
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addrlen;
    struct ksvc_server *s = ((struct ksvc_loop *)cls)->s;
    unsigned char key[16];
    bool keyed = address_key(addr, key, NULL, 0);
    enum MHD_Result ok = MHD_YES;
    pthread_mutex_lock(&s->conn_lock);
    if (s->nconns >= s->cfg.limits.max_connections) {
        atomic_fetch_add(&s->refused_limit, 1);
        ok = MHD_NO;
    } else if (keyed && s->addrs[addr_slot(s, key)].count >= s->cfg.limits.max_per_address) {
        atomic_fetch_add(&s->refused_per_address, 1);
        ok = MHD_NO;
    }
    pthread_mutex_unlock(&s->conn_lock);
    return ok;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct ksvc_loop *loop = cls;
    struct ksvc_server *s = loop->s;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn_state *st = calloc(1, sizeof(*st));
        *socket_context = st;
        if (st == NULL)
            return;
        st->s = s;
        st->loop = loop;
        st->conn = conn;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        st->fd = ci != NULL ? ci->connect_fd : -1;
        if (s->cert_pem != NULL) {
            ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
            st->tls = ci != NULL ? (gnutls_session_t)ci->tls_session : NULL;
            if (st->tls != NULL)
                gnutls_handshake_set_hook_function(st->tls, GNUTLS_HANDSHAKE_FINISHED,
                                                   GNUTLS_HOOK_POST, on_peer_finished);
        }
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        snprintf(st->remote, sizeof(st->remote), "?");
        st->has_addr =
            ci != NULL && address_key(ci->client_addr, st->addr, st->remote, sizeof(st->remote));
        atomic_store(&st->deadline_ms, ksvc_now_ms() + 1000LL * s->cfg.limits.request_timeout_s);
        pthread_mutex_lock(&s->conn_lock);
        s->nconns++;
        if (st->has_addr) {
            size_t i = addr_slot(s, st->addr);
            if (s->addrs[i].count == 0)
                memcpy(s->addrs[i].key, st->addr, 16);
            s->addrs[i].count++;
        }
        st->next = s->conns;
        if (s->conns != NULL)
            s->conns->prev = st;
        s->conns = st;
        pthread_mutex_unlock(&s->conn_lock);
        return;
    }
    atomic_fetch_sub(&loop->conns, 1);
    struct conn_state *st = *socket_context;
    if (st == NULL)
        return;
    *socket_context = NULL;
    pthread_mutex_lock(&s->conn_lock);
    s->nconns--;
    if (st->has_addr) {
        size_t i = addr_slot(s, st->addr);
        if (s->addrs[i].count > 1)
            s->addrs[i].count--;
        else if (s->addrs[i].count == 1)
            addr_remove_slot(s, i);
    }
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        s->conns = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    pthread_mutex_unlock(&s->conn_lock);
    discard_answer(st);
    if (st->body != NULL)
        OPENSSL_cleanse(st->body, st->cap);
    if (st->out != NULL)
        OPENSSL_cleanse(st->out, st->out_cap);
    free(st->body);
    free(st->out);
    free(st->line);
    free(st);
}

/* Closes connections past their request deadline. shutdown() only: the
 * polling thread sees the end of the stream and closes as usual, and the fd
 * cannot have been reused, as it stays listed until its CLOSED notice,
 * which comes before libmicrohttpd closes it and takes conn_lock. */
static void *reaper_main(void *arg)
{
    pthread_setname_np(pthread_self(), "http-reaper"); /* top -H, ps -L */
    struct ksvc_server *s = arg;
    pthread_mutex_lock(&s->conn_lock);
    while (!s->reaper_stop) {
        struct timespec until;
        kcu_deadline(CLOCK_REALTIME, REAP_INTERVAL_MS, &until);
        pthread_cond_timedwait(&s->reaper_wake, &s->conn_lock, &until);
        long long now = ksvc_now_ms();
        for (struct conn_state *st = s->conns; st != NULL; st = st->next) {
            long long d = atomic_load(&st->deadline_ms);
            if (d == 0 || now < d || st->fd < 0)
                continue;
            if (atomic_compare_exchange_strong(&st->deadline_ms, &d, 0)) {
                shutdown(st->fd, SHUT_RDWR);
                atomic_fetch_add(&s->closed_timeout, 1);
            }
        }
    }
    pthread_mutex_unlock(&s->conn_lock);
    return NULL;
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    struct ksvc_server *s = cls;
    long long sec = ksvc_now_ms() / 1000;
    long long window = atomic_load(&s->mhd_log_window);
    if (window != sec && atomic_compare_exchange_strong(&s->mhd_log_window, &window, sec))
        atomic_store(&s->mhd_log_lines, 0);
    if (atomic_fetch_add(&s->mhd_log_lines, 1) >= MHD_LOG_LINES_PER_S) {
        atomic_fetch_add(&s->mhd_log_suppressed, 1);
        return;
    }
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    ksvc_log("warn", "http_error", json_pack("{s:s}", "message", msg));
}

/* ---- accepting: every loop watches the listening socket ---- */

#define ACCEPT_BATCH 16     /* connections a loop accepts per wake-up */
#define ACCEPT_RETRY_MS 100 /* out of descriptors: try again this much later */

/* The listening socket joins the loop's set; EPOLLEXCLUSIVE wakes one loop
 * per connection, not all of them. */
static int accept_on(struct ksvc_loop *loop)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = loop->s->listen_fd};
    if (atomic_load(&loop->accepting))
        return 0;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->s->listen_fd, &ev) != 0)
        return -1;
    atomic_store(&loop->accepting, true);
    return 0;
}

void ksvc_loop_accept_off(struct ksvc_loop *loop)
{
    if (atomic_exchange(&loop->accepting, false))
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, loop->s->listen_fd, NULL);
}

/* Where a connection goes: the loop that accepted it, unless that loop
 * already serves more than twice as many (and one) as the least busy one,
 * which then takes it. Not an exact even spread, which measured slower on
 * two cores (7 of 7 paired plain rounds, by 2-22%: a loop with more of the
 * connections batches more work per wake-up), but never a whole burst on
 * one loop while another idles. */
static struct ksvc_loop *loop_for_connection(struct ksvc_loop *self)
{
    struct ksvc_server *s = self->s;
    struct ksvc_loop *least = self;
    int mine = atomic_load(&self->conns), fewest = mine;
    for (unsigned i = 0; i < s->nloops; i++) {
        struct ksvc_loop *l = &s->loops[i];
        int n = atomic_load(&l->conns);
        if (n < fewest && atomic_load(&l->accepting)) {
            least = l;
            fewest = n;
        }
    }
    return mine > 2 * fewest + 1 ? least : self;
}

/* Gives libmicrohttpd an accepted connection, on its loop's thread. On
 * refusal (our limits, through on_accept) it has closed the socket. */
static void loop_add_connection(struct ksvc_loop *loop, int fd, const struct sockaddr *addr,
                                socklen_t addrlen)
{
    if (MHD_add_connection(loop->daemon, fd, addr, addrlen) != MHD_YES)
        atomic_fetch_sub(&loop->conns, 1);
}

static void hand_over(struct ksvc_loop *to, int fd, const struct sockaddr_storage *addr,
                      socklen_t addrlen)
{
    pthread_mutex_lock(&to->handoff_lock);
    if (to->handoff_len == to->handoff_cap) {
        size_t n = to->handoff_cap ? to->handoff_cap * 2 : ACCEPT_BATCH;
        struct loop_handoff *grown = realloc(to->handoff, n * sizeof(*grown));
        if (grown == NULL) {
            pthread_mutex_unlock(&to->handoff_lock);
            atomic_fetch_sub(&to->conns, 1);
            close(fd); /* out of memory: as if refused */
            return;
        }
        to->handoff = grown;
        to->handoff_cap = n;
    }
    struct loop_handoff *h = &to->handoff[to->handoff_len++];
    h->fd = fd;
    h->addr = *addr;
    h->addrlen = addrlen;
    atomic_store(&to->handed, true);
    pthread_mutex_unlock(&to->handoff_lock);
    ksvc_loop_wake(to);
}

void ksvc_loop_accept(struct ksvc_loop *loop)
{
    struct ksvc_server *s = loop->s;
    for (int i = 0; i < ACCEPT_BATCH && atomic_load(&loop->accepting); i++) {
        struct sockaddr_storage addr;
        socklen_t addrlen = sizeof(addr);
        int fd =
            accept4(s->listen_fd, (struct sockaddr *)&addr, &addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* the connection waits in the backlog; stop watching until
                 * descriptors may have been freed, or the socket stays ready
                 * and the loop spins */
                int e = errno;
                ksvc_loop_accept_off(loop);
                loop->accept_retry = ksvc_now_ms() + ACCEPT_RETRY_MS;
                if (!loop->accept_starved) /* one line until an accept succeeds again */
                    ksvc_log("error", "accept_paused",
                             json_pack("{s:s,s:i,s:i}", "error", strerror(e), "loop",
                                       (int)loop->index, "retry_ms", ACCEPT_RETRY_MS));
                loop->accept_starved = true;
            }
            return; /* EAGAIN: another loop took it, or none is left */
        }
        loop->accept_starved = false;
        struct ksvc_loop *to = loop_for_connection(loop);
        atomic_fetch_add(&to->conns, 1);
        if (to == loop)
            loop_add_connection(loop, fd, (struct sockaddr *)&addr, addrlen);
        else
            hand_over(to, fd, &addr, addrlen);
    }
}

void ksvc_loop_accept_work(struct ksvc_loop *loop)
{
    if (atomic_exchange(&loop->handed, false)) {
        pthread_mutex_lock(&loop->handoff_lock);
        struct loop_handoff *list = loop->handoff;
        size_t n = loop->handoff_len;
        loop->handoff = NULL;
        loop->handoff_len = loop->handoff_cap = 0;
        pthread_mutex_unlock(&loop->handoff_lock);
        for (size_t i = 0; i < n; i++)
            loop_add_connection(loop, list[i].fd, (struct sockaddr *)&list[i].addr,
                                list[i].addrlen);
        free(list);
    }
    if (loop->accept_retry >= 0 && loop->accept_retry <= ksvc_now_ms() &&
        !atomic_load(&loop->quiesce)) {
        loop->accept_retry = -1;
        if (accept_on(loop) != 0)
            loop->accept_retry = ksvc_now_ms() + ACCEPT_RETRY_MS;
    }
}

/* ---- starting the event loops (http_loop.c runs them) ---- */

/* The listening socket the loops share (each loop accepts from it). */
static int listen_socket(const struct sockaddr_storage *ss, bool v6)
{
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    socklen_t len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
        bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int loop_start(struct ksvc_server *s, struct ksvc_loop *loop, unsigned index, char *err,
                      size_t errlen)
{
    loop->s = s;
    loop->index = index;
    loop->epfd = loop->mhd_fd = loop->wake_fd = -1;
    loop->timer_at = -1;
    loop->start_rc = -2;
    pthread_mutex_init(&loop->start_lock, NULL);
    pthread_cond_init(&loop->started, NULL);
    pthread_mutex_init(&loop->handoff_lock, NULL);
    loop->accept_retry = -1;
    /* libmicrohttpd's own limit is only a backstop above ours (on_accept) */
    unsigned mhd_limit = s->cfg.limits.max_connections * 2 + 1;
    /* the loops accept (ksvc_loop_accept), not the daemons: daemons that all
     * accepted from the shared socket raced, and one loop often took all of
     * a burst of connections while the other idled (a 60 s run at 1.7 of 2
     * cores, 15-20% short) */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     MHD_USE_NO_LISTEN_SOCKET | (s->cert_pem ? MHD_USE_TLS : 0);
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, s->key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    loop->daemon = MHD_start_daemon(
        flags, 0, on_accept, loop, on_request, loop, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, s,
        MHD_OPTION_CONNECTION_LIMIT, mhd_limit, MHD_OPTION_CONNECTION_TIMEOUT,
        s->cfg.limits.idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_POOL_BYTES,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, loop, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, loop, MHD_OPTION_ARRAY, s->cert_pem ? tls_opts : tls_opts + 2,
        MHD_OPTION_END);
    if (loop->daemon == NULL) {
        snprintf(err, errlen, "libmicrohttpd did not start%s (bad TLS material?)",
                 s->cert_pem ? " with TLS" : "");
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(loop->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    loop->mhd_fd = di != NULL ? di->epoll_fd : -1;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event mhd_ev = {.events = EPOLLIN, .data.fd = loop->mhd_fd};
    struct epoll_event wake_ev = {.events = EPOLLIN, .data.fd = loop->wake_fd};
    if (loop->mhd_fd < 0 || loop->epfd < 0 || loop->wake_fd < 0 ||
        epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->mhd_fd, &mhd_ev) != 0 ||
        epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wake_fd, &wake_ev) != 0) {
        snprintf(err, errlen, "cannot set up an event loop: %s", strerror(errno));
        return -1;
    }
    if (pthread_create(&loop->thread, NULL, ksvc_loop_main, loop) != 0) {
        snprintf(err, errlen, "cannot start a polling thread");
        return -1;
    }
    loop->thread_started = true;
    pthread_mutex_lock(&loop->start_lock);
    while (loop->start_rc == -2)
        pthread_cond_wait(&loop->started, &loop->start_lock);
    int rc = loop->start_rc;
    pthread_mutex_unlock(&loop->start_lock);
    if (rc != 0) {
        snprintf(err, errlen, "the service could not set up polling thread %u", index);
        pthread_join(loop->thread, NULL);
        loop->thread_started = false;
        return -1;
    }
    return 0;
}

/* ---- start and stop ---- */

static int load_tls(struct ksvc_server *s, char *err, size_t errlen)
{
    const struct ksvc_server_cfg *c = &s->cfg;
    if ((c->tls_cert_file == NULL) != (c->tls_key_file == NULL)) {
        snprintf(err, errlen, "--tls-certfile and --tls-keyfile go together");
        return -1;
    }
    if (c->tls_cert_file == NULL)
        return 0;
    s->cert_pem = ksvc_read_file(c->tls_cert_file, 256 * 1024, NULL, err, errlen);
    if (s->cert_pem == NULL)
        return -1;
    s->key_pem = ksvc_read_file(c->tls_key_file, 64 * 1024, &s->key_len, err, errlen);
    return s->key_pem ? 0 : -1;
}

static int bind_address(const char *host, int port, struct sockaddr_storage *ss, bool *v6)
{
    memset(ss, 0, sizeof(*ss));
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *v6 = false;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *v6 = true;
        return 0;
    }
    return -1;
}

/* Raises the soft open-file limit to the hard one and returns it: every
 * connection is a descriptor. */
static unsigned long open_file_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max > 1048576 ? 1048576 : rl.rlim_max;
        if (want > rl.rlim_cur) {
            struct rlimit raised = {.rlim_cur = want, .rlim_max = rl.rlim_max};
            if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
                rl.rlim_cur = want;
        }
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1048576 : (unsigned long)rl.rlim_cur;
}

static void apply_defaults(struct ksvc_server *s)
{
    struct ksvc_server_cfg *c = &s->cfg;
    struct ksvc_limits *l = &c->limits;
    if (c->max_body == 0)
        c->max_body = KSVC_MAX_BODY_DEFAULT;
    if (l->max_connections == 0)
        l->max_connections = KSVC_MAX_CONNECTIONS_DEFAULT;
    if (l->max_per_address == 0)
        l->max_per_address = KSVC_MAX_PER_ADDRESS_DEFAULT;
    if (l->request_timeout_s == 0)
        l->request_timeout_s = KSVC_REQUEST_TIMEOUT_DEFAULT;
    if (l->idle_timeout_s == 0)
        l->idle_timeout_s = KSVC_IDLE_TIMEOUT_DEFAULT;
    if (c->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->threads = n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
    }
    if (c->workers == 0)
        c->workers = KSVC_WORKERS_DEFAULT;
    /* leave descriptors for the workers' files, sockets and the database */
    unsigned long fds = open_file_limit();
    unsigned long usable = fds > 256 ? fds - 128 : fds / 2;
    if (l->max_connections > usable)
        l->max_connections = (unsigned)usable;
    if (l->max_per_address > l->max_connections)
        l->max_per_address = l->max_connections;
}

int ksvc_server_start(const struct ksvc_server_cfg *cfg, struct ksvc_server **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    struct ksvc_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->cfg = *cfg;
    s->listen_fd = -1;
    pthread_mutex_init(&s->conn_lock, NULL);
    pthread_cond_init(&s->reaper_wake, NULL);
    pthread_mutex_init(&s->job_lock, NULL);
    pthread_cond_init(&s->job_ready, NULL);
    apply_defaults(s);
    s->started = time(NULL);
    snprintf(s->prefix, sizeof(s->prefix), "kcard_%s", cfg->service);
    s->metrics = ksvc_metrics_new(s->prefix);
    uint8_t boot[4];
    if (kcu_random(boot, sizeof(boot)) != 0)
        memset(boot, 0, sizeof(boot));
    kcu_hex_encode(boot, sizeof(boot), s->boot_id);

    size_t slots = 64;
    while (slots < 4 * (size_t)s->cfg.limits.max_connections)
        slots *= 2;
    s->addrs = calloc(slots, sizeof(*s->addrs));
    s->addr_mask = slots - 1;

    struct sockaddr_storage ss;
    bool v6 = false;
    if (cfg->port < 0 || cfg->port > 65535) {
        snprintf(err, errlen, "port %d is out of range", cfg->port);
        goto fail;
    }
    if (bind_address(cfg->host, cfg->port, &ss, &v6) != 0) {
        snprintf(err, errlen, "--host %s is not a numeric IPv4/IPv6 address or localhost",
                 cfg->host);
        goto fail;
    }
    if (s->metrics == NULL || s->addrs == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (load_tls(s, err, errlen) != 0)
        goto fail;

    if (s->cfg.may_block != NULL) {
        s->workers = calloc(s->cfg.workers, sizeof(*s->workers));
        if (s->workers == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        for (; s->nworkers < s->cfg.workers; s->nworkers++)
            if (pthread_create(&s->workers[s->nworkers], NULL, worker_main, s) != 0) {
                snprintf(err, errlen, "cannot start worker threads");
                goto fail;
            }
    }
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        snprintf(err, errlen, "cannot start the connection reaper");
        goto fail;
    }
    s->reaper_started = true;

    s->listen_fd = listen_socket(&ss, v6);
    if (s->listen_fd < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->host, cfg->port, strerror(errno));
        goto fail;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    s->port = cfg->port;
    if (getsockname(s->listen_fd, (struct sockaddr *)&bound, &blen) == 0)
        s->port =
            ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)(void *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)(void *)&bound)->sin_port);
    s->loops = calloc(s->cfg.threads, sizeof(*s->loops));
    if (s->loops == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (; s->nloops < s->cfg.threads; s->nloops++)
        if (loop_start(s, &s->loops[s->nloops], s->nloops, err, errlen) != 0) {
            s->nloops++; /* half set up: ksvc_loop_end frees it */
            goto fail;
        }
    for (unsigned i = 0; i < s->nloops; i++)
        if (accept_on(&s->loops[i]) != 0) {
            snprintf(err, errlen, "cannot watch the listening socket: %s", strerror(errno));
            goto fail;
        }
    *out = s;
    return 0;
fail:
    ksvc_server_stop(s);
    return -1;
}

int ksvc_server_port(const struct ksvc_server *s)
{
    return s->port;
}

bool ksvc_server_tls(const struct ksvc_server *s)
{
    return s->cert_pem != NULL;
}

const char *ksvc_server_cpu_scheduling(const struct ksvc_server *s)
{
    return atomic_load(&s->scheduling_kept) ? "inherited" : "batch";
}

struct ksvc_metrics *ksvc_server_metrics(struct ksvc_server *s)
{
    return s->metrics;
}

static void stop_workers(struct ksvc_server *s)
{
    pthread_mutex_lock(&s->job_lock);
    s->workers_stop = true;
    struct conn_state *queued = s->job_head;
    s->job_head = s->job_tail = NULL;
    pthread_cond_broadcast(&s->job_ready);
    pthread_mutex_unlock(&s->job_lock);
    while (queued != NULL) { /* never started: answered, not dropped */
        struct conn_state *next = queued->job_next;
        struct ksvc_response resp = {0};
        ksvc_reply_error(&resp, 503, "shutting_down", "the service is stopping");
        finish_parked(queued, &resp);
        queued = next;
    }
    for (unsigned i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    s->nworkers = 0;
}

/* Stops every loop accepting (each quiesces its own daemon) and waits, up
 * to a second, until they have. */
static void quiesce_loops(struct ksvc_server *s)
{
    for (unsigned i = 0; i < s->nloops; i++) {
        if (!s->loops[i].thread_started)
            continue;
        atomic_store(&s->loops[i].quiesce, true);
        ksvc_loop_wake(&s->loops[i]);
    }
    long long until = ksvc_now_ms() + 1000;
    for (unsigned i = 0; i < s->nloops; i++)
        while (s->loops[i].thread_started && !atomic_load(&s->loops[i].quiesced) &&
               ksvc_now_ms() < until)
            usleep(1000);
}

void ksvc_server_stop(struct ksvc_server *s)
{
    if (s == NULL)
        return;
    quiesce_loops(s);
    stop_workers(s);
    long long until = ksvc_now_ms() + STOP_WAIT_MS;
    while (atomic_load(&s->outstanding) > 0 && ksvc_now_ms() < until)
        usleep(5000);
    unsigned left = atomic_load(&s->outstanding);
    if (s->reaper_started) {
        pthread_mutex_lock(&s->conn_lock);
        s->reaper_stop = true;
        pthread_cond_signal(&s->reaper_wake);
        pthread_mutex_unlock(&s->conn_lock);
        pthread_join(s->reaper, NULL);
    }
    if (left > 0) {
        /* libmicrohttpd cannot stop with parked connections: leave it be */
        ksvc_log("error", "stop_incomplete",
                 json_pack("{s:i}", "requests_not_completed", (int)left));
        return;
    }
    for (unsigned i = 0; i < s->nloops; i++)
        ksvc_loop_end(&s->loops[i]);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->key_pem != NULL)
        OPENSSL_cleanse(s->key_pem, s->key_len);
    free(s->key_pem);
    free(s->cert_pem);
    free(s->loops);
    free(s->workers);
    free(s->addrs);
    ksvc_metrics_free(s->metrics);
    pthread_mutex_destroy(&s->conn_lock);
    pthread_cond_destroy(&s->reaper_wake);
    pthread_mutex_destroy(&s->job_lock);
    pthread_cond_destroy(&s->job_ready);
    free(s);
}
