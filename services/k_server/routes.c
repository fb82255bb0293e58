/* k_server's HTTP routes (services/API.md): POST /counter/next, served only
 * to requests signed by an authorised k_proxy, and GET /healthz and
 * /metrics with what they add about the counter. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "services/common/log.h"
#include "services/common/upstream.h"
#include "services/k_server/counter.h"
#include "services/k_server/server.h"
#include "util/num.h"

/* Why a request was refused, for its answer: after the verdict's code. */
static const char *refusal_hint(const struct ksvc_request *req, enum ksvc_upstream_verdict v)
{
    switch (v) {
    case KSVC_UPSTREAM_UNSIGNED:
        if (ksvc_request_header(req, "X-Proxy-Token") != NULL)
            return "; the static X-Proxy-Token header is no longer accepted, k_proxy signs "
                   "each request";
        return "; expected Authorization: KC-HMAC-SHA256";
    case KSVC_UPSTREAM_STALE:
        return "; check both clocks";
    case KSVC_UPSTREAM_REPLAYED:
        return "; this k_proxy instance's sequence number was served before, is below its "
               "window, or the instance signed before k_server restarted (k_proxy then "
               "continues under a new instance id)";
    case KSVC_UPSTREAM_STATE_FAILED:
        return "; cannot record the k_proxy instance in the state database";
    case KSVC_UPSTREAM_TOO_MANY:
        return "; too many k_proxy instances signed within the skew window";
    default:
        return "";
    }
}

/* Answers a request that is not signed by an authorised k_proxy: 401, or
 * 503 when k_server itself could not judge it; counted by reason. */
static void refuse(const struct ksvc_request *req, enum ksvc_upstream_verdict v,
                   const struct ksvc_upstream_auth *a, struct ksvc_response *resp)
{
    const char *code = ksvc_upstream_verdict_code(v);
    bool server_side = v == KSVC_UPSTREAM_STATE_FAILED || v == KSVC_UPSTREAM_TOO_MANY;
    if (req->metrics != NULL) {
        char labels[64];
        snprintf(labels, sizeof(labels), "reason=\"%s\"", code);
        ksvc_metric_add(req->metrics, "kcard_k_server_upstream_refused_total",
                        "Requests refused because they were not signed by an authorised "
                        "k_proxy.",
                        labels, 1);
    }
    if (!server_side)
        snprintf(resp->www_authenticate, sizeof(resp->www_authenticate), "KC-HMAC-SHA256");
    if (v == KSVC_UPSTREAM_REPLAYED)
        ksvc_log_field(resp, "seq", json_integer((json_int_t)a->seq));
    ksvc_reply_error(resp, server_side ? 503 : 401, code, "request refused: %s%s", code,
                     refusal_hint(req, v));
}

/* POST /counter/next: the next counter value, for a signed request. */
static void route_counter_next(struct k_server *ks, const struct ksvc_request *req,
                               struct ksvc_response *resp)
{
    const char *authz = ksvc_request_header(req, "Authorization");
    struct ksvc_upstream_auth a;
    enum ksvc_upstream_verdict v =
        ksvc_upstream_verify(ks->key, ks->replay, authz, req->method, req->path, req->body,
                             req->body_len, time(NULL), &a);
    if (v != KSVC_UPSTREAM_OK) {
        refuse(req, v, &a, resp);
        return;
    }
    int64_t value = 0;
    char err[256];
    if (ksrv_counter_next(ks->counter, &value, err, sizeof(err)) != 0) {
        ksvc_reply_error(resp, 500, "state_failed", "%s", err);
        return;
    }
    ksvc_log_str(resp, "ref", a.ref);
    ksvc_log_int(resp, "counter", value);
    ksvc_reply_flat(resp, 200); /* the hot path: no jansson objects */
    resp->bare_headers = true;  /* only k_proxy can sign, so only it gets this answer */
    /* the same for k_proxy to read without a JSON parse (services/API.md) */
    size_t n = kcu_format_u64((uint64_t)value, resp->header_value), ref_len = strlen(a.ref);
    if (n + 1 + ref_len < sizeof(resp->header_value)) {
        resp->header_value[n] = ' ';
        memcpy(resp->header_value + n + 1, a.ref, ref_len + 1);
        resp->header_name = KSVC_COUNTER_HEADER;
    }
    ksvc_body_int(resp, "counter", value);
    ksvc_body_str(resp, "ref", a.ref);
}

/* GET /healthz and /metrics, told apart by ksvc_route_monitor */
static void route_monitor(struct k_server *ks, const struct ksvc_request *req,
                          struct ksvc_response *resp)
{
    ksvc_route_monitor(req, resp, ksrv_health, ksrv_metrics_refresh, ks);
}

struct route {
    const char *path, *methods;
    void (*fn)(struct k_server *, const struct ksvc_request *, struct ksvc_response *);
};

static const struct route routes[] = {
    {"/counter/next", "POST", route_counter_next},
    {"/healthz", "GET, HEAD", route_monitor},
    {"/metrics", "GET, HEAD", route_monitor},
};

void ksrv_handle_request(void *ctx, const struct ksvc_request *req, struct ksvc_response *resp)
{
    struct k_server *ks = ctx;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(routes[i].path, req->path) != 0)
            continue;
        if (!ksvc_method_allowed(routes[i].methods, req->method)) {
            ksvc_reply_method_not_allowed(resp, routes[i].methods);
            return;
        }
        routes[i].fn(ks, req, resp);
        return;
    }
    ksvc_reply_error(resp, 404, "not_found", "no such endpoint: %.64s", req->path);
}

bool ksrv_health(void *ctx, json_t *out)
{
    struct k_server *ks = ctx;
    int64_t value = 0;
    char why[256] = "";
    bool ok = ksrv_counter_current(ks->counter, &value) == 0 &&
              ksrv_counter_healthy(ks->counter, why, sizeof(why));
    json_object_set_new(out, "counter", json_integer(value));
    json_object_set_new(out, "state_db", json_string(ks->state_db));
    json_object_set_new(out, "replay_instances",
                        json_integer((json_int_t)ksvc_replay_table_count(ks->replay)));
    if (!ok)
        json_object_set_new(out, "reason", json_string(why));
    return ok;
}

void ksrv_metrics_refresh(void *ctx, struct ksvc_metrics *m)
{
    struct k_server *ks = ctx;
    int64_t value = 0;
    if (ksrv_counter_current(ks->counter, &value) == 0)
        ksvc_metric_set(m, "kcard_k_server_counter_value", "The last counter value handed out.", "",
                        (double)value);
    ksvc_metric_set(m, "kcard_k_server_counter_reserved",
                    "The durable bound of counter values: a crash resumes above it.", "",
                    (double)ksrv_counter_reserved(ks->counter));
    ksvc_metric_set(m, "kcard_k_server_replay_instances",
                    "k_proxy instances whose replay windows k_server keeps.", "",
                    (double)ksvc_replay_table_count(ks->replay));
}
