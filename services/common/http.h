/* The services' HTTP(S) server: libmicrohttpd with a thread per connection
 * (handlers may wait on the card or on k_server), bodies collected up to a
 * cap, /healthz and /metrics answered here, and one JSON log line per
 * request. Handlers see a parsed request and fill a JSON response. */
#ifndef KCARD_SERVICES_HTTP_H
#define KCARD_SERVICES_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "services/common/metrics.h"

#define KSVC_MAX_BODY_DEFAULT (16 * 1024)

struct ksvc_request {
    const char *method;
    const char *path;
    const char *body; /* NUL-terminated; "" when there is none */
    size_t body_len;
    char request_id[24];
    char remote[64]; /* peer address */
    void *conn;      /* the MHD connection, for ksvc_request_header */
};

struct ksvc_response {
    int status;
    json_t *body; /* owned; NULL: no body */
    char www_authenticate[64];
    char allow[64];
    char set_cookie[192];     /* "" or a Set-Cookie header value */
    const char *content_type; /* non-NULL: raw (borrowed) is the body, not JSON */
    const char *raw;
    size_t raw_len;
    json_t *log; /* extra members for the request's log line; owned */
};

typedef void (*ksvc_handler_fn)(void *ctx, const struct ksvc_request *req,
                                struct ksvc_response *resp);
/* Adds service members to the /healthz answer; returns false when not healthy (503). */
typedef bool (*ksvc_health_fn)(void *ctx, json_t *out);
/* Called before /metrics renders, to refresh gauges. */
typedef void (*ksvc_metrics_fn)(void *ctx, struct ksvc_metrics *m);

struct ksvc_server_cfg {
    const char *service; /* "k_server": metric prefix kcard_k_server, log service */
    const char *host;    /* numeric IPv4 or IPv6 address, or "localhost" */
    int port;            /* 0: any free port, see ksvc_server_port */
    const char *tls_cert_file, *tls_key_file; /* both or neither */
    size_t max_body;                          /* 0: KSVC_MAX_BODY_DEFAULT */
    unsigned max_connections;                 /* 0: 256 */
    unsigned idle_timeout_s;                  /* 0: 60 */
    ksvc_handler_fn handler;
    ksvc_health_fn health;
    ksvc_metrics_fn metrics_refresh;
    void *ctx;
};

struct ksvc_server;

int ksvc_server_start(const struct ksvc_server_cfg *cfg, struct ksvc_server **out, char *err,
                      size_t errlen);
int ksvc_server_port(const struct ksvc_server *s);
bool ksvc_server_tls(const struct ksvc_server *s);
struct ksvc_metrics *ksvc_server_metrics(struct ksvc_server *s);
void ksvc_server_stop(struct ksvc_server *s);

/* Blocks until SIGINT or SIGTERM (which the caller has blocked in every
 * thread before starting the server); returns the signal number. */
int ksvc_wait_for_stop_signal(void);
/* Blocks SIGINT, SIGTERM and SIGPIPE in the calling thread (call first in main). */
void ksvc_block_signals(void);

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

/* Sets a JSON body (stolen) and a status. */
void ksvc_reply(struct ksvc_response *resp, int status, json_t *body);
/* Sets {"error": code, "message": formatted} and a status. */
void ksvc_reply_error(struct ksvc_response *resp, int status, const char *code, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));
/* 405 with Allow. */
void ksvc_reply_method_not_allowed(struct ksvc_response *resp, const char *allow);
/* Adds one member to the request's log line (value stolen). */
void ksvc_log_field(struct ksvc_response *resp, const char *key, json_t *value);

/* Reads a whole PEM/text file of at most max bytes; NULL with err set. */
char *ksvc_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);

#endif
