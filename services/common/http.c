/* libmicrohttpd front of the services (see http.h). */
#include "services/common/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "services/common/crypto.h"
#include "services/common/log.h"

struct ksvc_server {
    struct ksvc_server_cfg cfg;
    struct MHD_Daemon *daemon;
    struct ksvc_metrics *metrics;
    char *cert_pem, *key_pem;
    size_t key_len;
    int port;
    time_t started;
};

/* Per-request state, from the first callback to the completion notice. */
struct request_state {
    char *body;
    size_t len, cap;
    bool too_large;
    struct timespec start;
};

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

char *ksvc_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int failed = buf == NULL || ferror(f);
    fclose(f);
    if (failed || n > max) {
        snprintf(err, errlen, "%s: %s", path, failed ? "read failed" : "file too large");
        if (buf != NULL)
            OPENSSL_cleanse(buf, max + 1);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

const char *ksvc_request_header(const struct ksvc_request *req, const char *name)
{
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
}

void ksvc_reply_error(struct ksvc_response *resp, int status, const char *code, const char *fmt,
                      ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ksvc_reply(resp, status, json_pack("{s:s, s:s}", "error", code, "message", msg));
    ksvc_log_field(resp, "error", json_string(code));
}

void ksvc_reply_method_not_allowed(struct ksvc_response *resp, const char *allow)
{
    snprintf(resp->allow, sizeof(resp->allow), "%s", allow);
    ksvc_reply_error(resp, 405, "method_not_allowed", "this path accepts only %s", allow);
}

void ksvc_log_field(struct ksvc_response *resp, const char *key, json_t *value)
{
    if (resp->log == NULL)
        resp->log = json_object();
    if (resp->log != NULL)
        json_object_set_new(resp->log, key, value);
    else
        json_decref(value);
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

static void remote_address(struct MHD_Connection *conn, char *out, size_t cap)
{
    snprintf(out, cap, "?");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)cap);
}

static void builtin_health(struct ksvc_server *s, struct ksvc_response *resp)
{
    json_t *out =
        json_pack("{s:s, s:s, s:I, s:b}", "status", "ok", "service", s->cfg.service, "uptime_s",
                  (json_int_t)(time(NULL) - s->started), "tls", s->cert_pem != NULL);
    bool healthy = true;
    if (out != NULL && s->cfg.health != NULL)
        healthy = s->cfg.health(s->cfg.ctx, out);
    if (out != NULL && !healthy)
        json_object_set_new(out, "status", json_string("unhealthy"));
    ksvc_reply(resp, healthy ? 200 : 503, out);
}

static enum MHD_Result queue(struct MHD_Connection *conn, int status, const char *type,
                             const char *body, size_t len, const struct ksvc_response *r,
                             const char *request_id)
{
    struct MHD_Response *mr =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (mr == NULL)
        return MHD_NO;
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(mr, "X-Request-Id", request_id);
    if (r != NULL && r->www_authenticate[0] != '\0')
        MHD_add_response_header(mr, MHD_HTTP_HEADER_WWW_AUTHENTICATE, r->www_authenticate);
    if (r != NULL && r->allow[0] != '\0')
        MHD_add_response_header(mr, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r != NULL && r->set_cookie[0] != '\0')
        MHD_add_response_header(mr, MHD_HTTP_HEADER_SET_COOKIE, r->set_cookie);
    if (r != NULL && r->content_type != NULL) /* pages: no framing, no sniffing */
        MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static void dispatch(struct ksvc_server *s, const struct ksvc_request *req,
                     struct ksvc_response *resp)
{
    if (strcmp(req->path, "/healthz") == 0 || strcmp(req->path, "/metrics") == 0) {
        if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
            ksvc_reply_method_not_allowed(resp, "GET, HEAD");
            return;
        }
        if (strcmp(req->path, "/healthz") == 0)
            builtin_health(s, resp);
        return; /* /metrics is rendered as text by the caller */
    }
    s->cfg.handler(s->cfg.ctx, req, resp);
    if (resp->status == 0)
        ksvc_reply_error(resp, 500, "internal", "the handler gave no answer");
}

static enum MHD_Result answer(struct ksvc_server *s, struct MHD_Connection *conn, const char *url,
                              const char *method, struct request_state *st)
{
    struct ksvc_request req = {.method = method, .path = url, .conn = conn};
    struct ksvc_response resp = {0};
    uint8_t rid[8];
    if (ksvc_random(rid, sizeof(rid)) != 0)
        memset(rid, 0, sizeof(rid));
    ksvc_hex(rid, sizeof(rid), req.request_id);
    remote_address(conn, req.remote, sizeof(req.remote));
    req.body = st->body ? st->body : "";
    req.body_len = st->len;

    char *owned = NULL; /* a rendered body; a page's bytes are the handler's */
    const char *data = NULL, *type = "application/json";
    size_t len = 0;
    if (st->too_large)
        ksvc_reply_error(&resp, 413, "body_too_large", "the body is over the %zu-byte limit",
                         s->cfg.max_body);
    else
        dispatch(s, &req, &resp);
    if (resp.status == 0 && strcmp(url, "/metrics") == 0) {
        if (s->cfg.metrics_refresh != NULL)
            s->cfg.metrics_refresh(s->cfg.ctx, s->metrics);
        data = owned = ksvc_metrics_render(s->metrics);
        len = owned ? strlen(owned) : 0;
        type = "text/plain; version=0.0.4; charset=utf-8";
        resp.status = owned ? 200 : 500;
    } else if (resp.content_type != NULL) {
        type = resp.content_type;
        data = resp.raw;
        len = resp.raw_len;
    } else if (resp.body != NULL &&
               (owned = json_dumps(resp.body, JSON_COMPACT | JSON_PRESERVE_ORDER)) != NULL) {
        /* JSON answers end with a newline, as curl users expect */
        len = strlen(owned);
        char *nl = realloc(owned, len + 2);
        if (nl != NULL) {
            owned = nl;
            memcpy(owned + len++, "\n", 2);
        }
        data = owned;
    }
    enum MHD_Result ret =
        queue(conn, resp.status, type, data ? data : "", data ? len : 0, &resp, req.request_id);

    double secs = seconds_since(&st->start);
    const char *route = resp.status == 404 ? "other" : url;
    ksvc_metrics_request(s->metrics, route, method, resp.status, secs);
    json_t *fields =
        json_pack("{s:s, s:s, s:s, s:i, s:f, s:s, s:I}", "request_id", req.request_id, "method",
                  method, "path", url, "status", resp.status, "ms", secs * 1000.0, "remote",
                  req.remote, "bytes_in", (json_int_t)st->len);
    if (fields != NULL && resp.log != NULL)
        json_object_update(fields, resp.log);
    ksvc_log(resp.status >= 500 ? "error" : "info", "request", fields);
    json_decref(resp.log);
    json_decref(resp.body);
    free(owned);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct ksvc_server *s = cls;
    struct request_state *st = *con_cls;
    if (st == NULL) {
        st = calloc(1, sizeof(*st));
        if (st == NULL)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &st->start);
        *con_cls = st;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (st->too_large || n > s->cfg.max_body - st->len) {
            st->too_large = true; /* keep reading, answer 413 at the end */
            return MHD_YES;
        }
        if (st->len + n + 1 > st->cap) {
            size_t cap = st->len + n + 1 > 2 * st->cap ? st->len + n + 1 : 2 * st->cap;
            char *b = realloc(st->body, cap);
            if (b == NULL)
                return MHD_NO;
            st->body = b;
            st->cap = cap;
        }
        memcpy(st->body + st->len, upload, n);
        st->len += n;
        st->body[st->len] = '\0';
        return MHD_YES;
    }
    return answer(s, conn, url, method, st);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)conn;
    (void)code;
    struct request_state *st = *con_cls;
    if (st == NULL)
        return;
    if (st->body != NULL)
        OPENSSL_cleanse(st->body, st->cap); /* bodies carry usernames and tokens */
    free(st->body);
    free(st);
    *con_cls = NULL;
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    ksvc_log("warn", "http_error", json_pack("{s:s}", "message", msg));
}

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
    if (s->cfg.max_body == 0)
        s->cfg.max_body = KSVC_MAX_BODY_DEFAULT;
    if (s->cfg.max_connections == 0)
        s->cfg.max_connections = 256;
    if (s->cfg.idle_timeout_s == 0)
        s->cfg.idle_timeout_s = 60;
    s->started = time(NULL);
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "kcard_%s", cfg->service);
    s->metrics = ksvc_metrics_new(prefix);

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
    if (s->metrics == NULL || load_tls(s, err, errlen) != 0)
        goto fail;

    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0) | (s->cert_pem ? MHD_USE_TLS : 0);
    if (s->cert_pem != NULL)
        s->daemon = MHD_start_daemon(
            flags, (uint16_t)cfg->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
            on_mhd_error, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
            MHD_OPTION_CONNECTION_LIMIT, s->cfg.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
            s->cfg.idle_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
            MHD_OPTION_HTTPS_MEM_CERT, s->cert_pem, MHD_OPTION_HTTPS_MEM_KEY, s->key_pem,
            MHD_OPTION_END);
    else
        s->daemon = MHD_start_daemon(
            flags, (uint16_t)cfg->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
            on_mhd_error, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
            MHD_OPTION_CONNECTION_LIMIT, s->cfg.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
            s->cfg.idle_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (s->daemon == NULL) {
        snprintf(err, errlen,
                 "cannot listen on %s:%d%s (port in use, no permission, or bad TLS material)",
                 cfg->host, cfg->port, s->cert_pem ? " with TLS" : "");
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
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

struct ksvc_metrics *ksvc_server_metrics(struct ksvc_server *s)
{
    return s->metrics;
}

void ksvc_server_stop(struct ksvc_server *s)
{
    if (s == NULL)
        return;
    if (s->daemon != NULL)
        MHD_stop_daemon(s->daemon);
    if (s->key_pem != NULL)
        OPENSSL_cleanse(s->key_pem, s->key_len);
    free(s->key_pem);
    free(s->cert_pem);
    ksvc_metrics_free(s->metrics);
    free(s);
}

void ksvc_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int ksvc_wait_for_stop_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    return sig;
}
