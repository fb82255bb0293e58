/* k_proxy's HTTP routes (services/API.md): sessions, the protected counter
 * through k_server, and the user registry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "services/common/crypto.h"
#include "services/common/log.h"
#include "services/common/upstream.h"
#include "ctaphid/status.h"
#include "services/k_proxy/card_auth.h"
#include "services/k_proxy/card_worker.h"
#include "services/k_proxy/limits.h"
#include "services/k_proxy/proxy.h"
#include "services/k_proxy/reach.h"
#include "services/k_proxy/store.h"
#include "services/k_proxy/upstream_client.h"
#include "util/b64url.h"

#define BEARER_MAX 128

const char *kpx_auth_mode_answer(enum kpx_auth_mode m)
{
    return m == KPX_AUTH_FIDO2_DIRECT ? "fido2_assertion" : "card_probe";
}

/* Adds v to a counter of the request's registry (req->metrics: NULL
 * outside a server, when nothing is counted). */
static void add(struct ksvc_metrics *m, const char *name, const char *help, const char *labels,
                double v)
{
    if (m != NULL)
        ksvc_metric_add(m, name, help, labels, v);
}

static void count(struct ksvc_metrics *m, const char *name, const char *help, const char *label,
                  const char *value)
{
    char labels[96];
    snprintf(labels, sizeof(labels), "%s=\"%s\"", label, value);
    add(m, name, help, labels, 1);
}

/* The username of a {"username": ...} body, or false with resp set. */
static bool body_username(const struct ksvc_request *req, struct ksvc_response *resp,
                          char out[KPX_USERNAME_MAX + 1])
{
    json_t *body = ksvc_request_json_object(req, resp);
    if (body == NULL)
        return false;
    json_t *u = json_object_get(body, "username");
    bool ok = json_is_string(u) && kpx_username_valid(json_string_value(u));
    if (ok)
        snprintf(out, KPX_USERNAME_MAX + 1, "%s", json_string_value(u));
    else
        ksvc_reply_error(resp, 400, "bad_username",
                         json_is_string(u)
                             ? "username must be 1 to 64 characters of A-Z a-z 0-9 . _ -"
                             : "the body needs a string member \"username\"");
    json_decref(body);
    if (ok)
        ksvc_log_field(resp, "username", json_string(out));
    return ok;
}

static void reply_invalid_session(struct ksvc_response *resp, const char *why)
{
    snprintf(resp->www_authenticate, sizeof(resp->www_authenticate),
             "Bearer error=\"invalid_token\"");
    ksvc_reply_error(resp, 401, "invalid_session", "%s", why);
}

/* The bearer token of the request into token, or false with a 401 set. */
static bool bearer(const struct ksvc_request *req, struct ksvc_response *resp,
                   char token[BEARER_MAX])
{
    const char *authz = ksvc_request_header(req, "Authorization");
    if (authz == NULL) {
        snprintf(resp->www_authenticate, sizeof(resp->www_authenticate), "Bearer");
        ksvc_reply_error(resp, 401, "invalid_session",
                         "no session: send Authorization: Bearer <session_token>");
        return false;
    }
    if (!ksvc_parse_bearer(authz, token, BEARER_MAX)) {
        reply_invalid_session(resp, "the Authorization header is not a Bearer token");
        return false;
    }
    return true;
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* The session of the request's token, counted as one request when touch. */
static bool session_of(struct kpx_proxy *p, const struct ksvc_request *req,
                       struct ksvc_response *resp, bool touch, struct kpx_session *s)
{
    char token[BEARER_MAX], err[256];
    if (!bearer(req, resp, token))
        return false;
    int rc = touch ? kpx_store_session_touch(p->store, token, now_s(), s, err, sizeof(err))
                   : kpx_store_session_lookup(p->store, token, now_s(), s, err, sizeof(err));
    OPENSSL_cleanse(token, sizeof(token));
    if (rc == KPX_STORE_NOT_FOUND) {
        reply_invalid_session(resp, "the session is unknown, expired or logged out");
        return false;
    }
    if (rc != KPX_STORE_OK) {
        ksvc_reply_error(resp, 500, "state_failed", "%s", err);
        return false;
    }
    ksvc_log_str(resp, "username", s->username);
    return true;
}

/* Maps a card result to the answer and the log line; true when it was OK. */
static bool card_outcome(struct ksvc_metrics *m, const char *op, const struct kpx_card_result *r,
                         struct ksvc_response *resp)
{
    ksvc_log_field(resp, "card_outcome", json_string(kpx_card_outcome_name(r->outcome)));
    ksvc_log_field(resp, "card_step", json_string(r->step));
    ksvc_log_field(resp, "card_ms", json_real(r->total_ms));
    if (r->user_wait_ms >= 0)
        ksvc_log_field(resp, "user_wait_ms", json_real(r->user_wait_ms));
    ksvc_log_field(resp, "keepalives_upneeded", json_integer(r->keepalives_upneeded));
    if (r->uri[0] != '\0')
        ksvc_log_field(resp, "device", json_string(r->uri));
    char labels[96];
    snprintf(labels, sizeof(labels), "op=\"%s\",outcome=\"%s\"", op,
             kpx_card_outcome_name(r->outcome));
    add(m, "kcard_k_proxy_card_operations_total", "Card operations, by operation and outcome.",
        labels, 1);
    snprintf(labels, sizeof(labels), "op=\"%s\"", op);
    add(m, "kcard_k_proxy_card_seconds_total",
        "Seconds spent in card operations, waiting for the user included.", labels,
        r->total_ms > 0 ? r->total_ms / 1000.0 : 0);
    if (r->outcome == KPX_CARD_OK)
        return true;
    int status = 401;
    switch (r->outcome) {
    case KPX_CARD_UNAVAILABLE:
    case KPX_CARD_BUSY:
        status = 503;
        break;
    case KPX_CARD_TIMEOUT:
        status = 504;
        break;
    default:
        break;
    }
    if (r->fix[0] != '\0')
        ksvc_reply_error(resp, status, kpx_card_outcome_name(r->outcome), "%s Fix: %s", r->message,
                         r->fix);
    else
        ksvc_reply_error(resp, status, kpx_card_outcome_name(r->outcome), "%s", r->message);
    if (resp->body != NULL)
        json_object_set_new(resp->body, "upstream_called", json_false());
    return false;
}

static void reply_session(struct kpx_proxy *p, struct ksvc_response *resp, const char *username)
{
    char token[KPX_TOKEN_BUF], err[256];
    struct kpx_session s;
    const char *mode = kpx_auth_mode_answer(p->mode);
    int64_t now = now_s();
    /* expired sessions are swept by the store's thread, not by logins */
    if (kpx_store_session_create(p->store, username, mode, p->session_ttl_s, now, token, &s, err,
                                 sizeof(err)) != KPX_STORE_OK) {
        ksvc_reply_error(resp, 500, "state_failed", "%s", err);
        return;
    }
    ksvc_reply(resp, 200,
               json_pack("{s:s, s:s, s:s, s:I, s:I}", "session_token", token, "username", username,
                         "auth_mode", mode, "expires_at", (json_int_t)s.expires_at, "expires_in",
                         (json_int_t)(s.expires_at - now)));
    OPENSSL_cleanse(token, sizeof(token));
    ksvc_log_field(resp, "ref", json_string(s.ref));
}

/* ---- limits (limits.h) and the card thread (card_worker.h) ------------- */

static void reply_limited(struct ksvc_metrics *m, const char *route,
                          const struct kpx_limit_verdict *v, struct ksvc_response *resp)
{
    char labels[128];
    snprintf(labels, sizeof(labels), "route=\"%s\",scope=\"%s\"", route,
             kpx_limit_scope_name(v->scope));
    add(m, "kcard_k_proxy_rate_limited_total",
        "Requests refused by a rate limit or a lockout, by route and scope.", labels, 1);
    ksvc_log_field(resp, "limited", json_string(kpx_limit_scope_name(v->scope)));
    if (v->locked)
        ksvc_reply_error(resp, 429, "locked_out",
                         "too many denied card operations for this %s: locked for %d s",
                         kpx_limit_scope_name(v->scope), v->retry_after_s);
    else
        ksvc_reply_error(resp, 429, "rate_limited", "too many requests for this %s: retry in %d s",
                         kpx_limit_scope_name(v->scope), v->retry_after_s);
    resp->retry_after = v->retry_after_s;
}

/* The per-session and per-address limits of /resource/counter; false with
 * a 429 set. The session is keyed by a hash of its bearer token. */
static bool counter_allowed(struct kpx_proxy *p, const struct ksvc_request *req,
                            struct ksvc_response *resp)
{
    if (p->limits == NULL)
        return true;
    char token[BEARER_MAX] = "";
    const char *authz = ksvc_request_header(req, "Authorization");
    if (authz == NULL || !ksvc_parse_bearer(authz, token, sizeof(token)))
        token[0] = '\0';
    struct kpx_limit_verdict v;
    kpx_limits_counter(p->limits, token, req->remote, kpx_limits_now_ns(), &v);
    OPENSSL_cleanse(token, sizeof(token));
    if (v.scope == KPX_LIMIT_NONE)
        return true;
    reply_limited(req->metrics, "/resource/counter", &v, resp);
    return false;
}

/* The per-user and per-address limits and lockouts of a login or an
 * enrolment; false with a 429 set (the card is not asked). */
static bool attempt_allowed(struct kpx_proxy *p, const struct ksvc_request *req,
                            const char *username, struct ksvc_response *resp)
{
    if (p->limits == NULL)
        return true;
    struct kpx_limit_verdict v;
    kpx_limits_login(p->limits, username, req->remote, kpx_limits_now_ns(), &v);
    if (v.scope == KPX_LIMIT_NONE)
        return true;
    reply_limited(req->metrics, req->path, &v, resp);
    return false;
}

/* Feeds a card's answer to the lockouts: denials in a row lock the user
 * and the address out, an approval ends them. */
static void attempt_result(struct kpx_proxy *p, const char *route, const char *username,
                           const struct ksvc_request *req, enum kpx_card_outcome o,
                           struct ksvc_response *resp)
{
    if (p->limits == NULL)
        return;
    enum kpx_limit_result res = KPX_LIMIT_NEUTRAL;
    if (o == KPX_CARD_OK)
        res = KPX_LIMIT_SUCCESS;
    else if (o == KPX_CARD_DENIED || o == KPX_CARD_TIMEOUT || o == KPX_CARD_INVALID)
        res = KPX_LIMIT_DENIAL;
    int started =
        kpx_limits_login_result(p->limits, username, req->remote, res, kpx_limits_now_ns());
    if (started > 0) {
        char labels[96];
        snprintf(labels, sizeof(labels), "route=\"%s\"", route);
        add(req->metrics, "kcard_k_proxy_lockouts_total",
            "Lockouts started by card denials in a row (user or address), by route.", labels,
            started);
        ksvc_log_field(resp, "lockout_started", json_integer(started));
    }
}

enum card_op { OP_LOGIN, OP_REGISTER, OP_UNREGISTER };

/* A login or enrolment handed to the card thread. */
struct card_job {
    struct kpx_card_job base; /* first: the worker's view */
    struct kpx_proxy *p;
    const struct ksvc_request *req; /* valid until the answer (ksvc_defer) */
    struct ksvc_pending *pending;   /* NULL: run inline */
    enum card_op op;
    char username[KPX_USERNAME_MAX + 1];
    struct kpx_user u; /* login: the credential; register: the user to add;
                          unregister: the user's credential */
};

/* A job that waited for the card longer than one card operation may take
 * is answered card_busy without the card, as the card lock answers it. */
static bool queued_too_long(const struct card_job *j, struct kpx_card_result *r)
{
    int limit_ms = j->p->card_timeout_ms > 0 ? j->p->card_timeout_ms : KPX_CARD_TIMEOUT_DEFAULT_MS;
    double waited_ms = (double)(kpx_limits_now_ns() - j->base.queued_ns) / 1e6;
    if (j->pending == NULL || waited_ms <= limit_ms)
        return false;
    memset(r, 0, sizeof(*r));
    r->outcome = KPX_CARD_BUSY;
    r->err = KC_ERR_TIMEOUT;
    snprintf(r->step, sizeof(r->step), "lock");
    snprintf(r->message, sizeof(r->message),
             "card busy: other requests used the card for more than %d ms", limit_ms);
    r->fail_code = "";
    r->lock_wait_ms = waited_ms;
    r->probe_ms = r->op_ms = r->user_wait_ms = -1;
    r->total_ms = waited_ms;
    return true;
}

static void login_card(struct card_job *j, struct ksvc_response *resp);
static void register_card(struct card_job *j, struct ksvc_response *resp);
static void unregister_card(struct card_job *j, struct ksvc_response *resp);

static void run_job_body(struct card_job *j, struct ksvc_response *resp)
{
    switch (j->op) {
    case OP_LOGIN:
        login_card(j, resp);
        break;
    case OP_REGISTER:
        register_card(j, resp);
        break;
    case OP_UNREGISTER:
        unregister_card(j, resp);
        break;
    }
}

static void free_job(struct card_job *j)
{
    OPENSSL_cleanse(j, sizeof(*j));
    free(j);
}

/* On the card thread. */
static void run_card_job(struct kpx_card_job *base, bool cancelled)
{
    struct card_job *j = (struct card_job *)base;
    struct ksvc_response resp;
    memset(&resp, 0, sizeof(resp));
    if (cancelled)
        ksvc_reply_error(&resp, 503, "shutting_down", "the service is stopping");
    else
        run_job_body(j, &resp);
    ksvc_complete(j->pending, &resp);
    free_job(j);
}

/* Parks the request and queues j for the card thread (which answers it),
 * or answers 503 card_busy at once when --max-card-waiters are waiting.
 * Without a card thread (or outside a server) the job runs here. Takes j. */
static void to_card(struct kpx_proxy *p, struct card_job *j, struct ksvc_response *resp)
{
    j->base.run = run_card_job;
    j->pending = p->card_worker != NULL ? ksvc_defer(j->req) : NULL;
    if (j->pending == NULL) {
        run_job_body(j, resp);
        free_job(j);
        return;
    }
    enum kpx_card_submit rc = kpx_card_worker_submit(p->card_worker, &j->base);
    if (rc == KPX_CARD_QUEUED)
        return;
    struct ksvc_response busy;
    memset(&busy, 0, sizeof(busy));
    if (rc == KPX_CARD_FULL) {
        char labels[96];
        snprintf(labels, sizeof(labels), "route=\"%s\"", j->req->path);
        add(j->req->metrics, "kcard_k_proxy_card_waiters_refused_total",
            "Logins and enrolments refused at once because --max-card-waiters "
            "were waiting for the card, by route.",
            labels, 1);
        ksvc_reply_error(&busy, 503, "card_busy",
                         "%u requests are waiting for the card already: retry shortly",
                         kpx_card_worker_max_waiters(p->card_worker));
        busy.retry_after = 1;
    } else {
        ksvc_reply_error(&busy, 503, "shutting_down", "the service is stopping");
    }
    if (busy.body != NULL)
        json_object_set_new(busy.body, "upstream_called", json_false());
    ksvc_complete(j->pending, &busy);
    free_job(j);
}

/* A new job for req, or NULL with a 500 set. */
static struct card_job *new_job(struct kpx_proxy *p, const struct ksvc_request *req,
                                enum card_op op, const char *username, struct ksvc_response *resp)
{
    struct card_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        ksvc_reply_error(resp, 500, "internal", "out of memory");
        return NULL;
    }
    j->p = p;
    j->req = req;
    j->op = op;
    snprintf(j->username, sizeof(j->username), "%s", username);
    return j;
}

/* Checks the body, the limits and (fido2-direct) the enrolment here, then
 * hands the card and the session's creation to the card thread. */
static void route_login(struct kpx_proxy *p, const struct ksvc_request *req,
                        struct ksvc_response *resp)
{
    char username[KPX_USERNAME_MAX + 1], err[256];
    if (!body_username(req, resp, username))
        return;
    if (!attempt_allowed(p, req, username, resp))
        return;
    struct card_job *j = new_job(p, req, OP_LOGIN, username, resp);
    if (j == NULL)
        return;
    if (p->mode != KPX_AUTH_PROBE) {
        int rc = kpx_store_user_get(p->store, username, &j->u, err, sizeof(err));
        if (rc == KPX_STORE_NOT_FOUND) {
            count(req->metrics, "kcard_k_proxy_logins_total", "Logins, by outcome.", "outcome",
                  "user_not_enrolled");
            ksvc_reply_error(resp, 401, "user_not_enrolled",
                             "%s has no credential: POST /enroll/register first", username);
            free_job(j);
            return;
        }
        if (rc != KPX_STORE_OK) {
            ksvc_reply_error(resp, 500, "state_failed", "%s", err);
            free_job(j);
            return;
        }
        if (j->u.cred.cred_id_len == 0) {
            ksvc_reply_error(resp, 401, "user_not_enrolled",
                             "%s was registered in probe mode and has no FIDO2 credential",
                             username);
            free_job(j);
            return;
        }
    }
    to_card(p, j, resp);
}

/* On the card thread, for fido2-direct: the credential as stored now (the
 * user may have been removed, or have logged in, while this waited); false
 * with the answer set when there is none any more. */
static bool user_still_enrolled(struct card_job *j, struct ksvc_response *resp)
{
    char err[256];
    int rc = kpx_store_user_get(j->p->store, j->username, &j->u, err, sizeof(err));
    if (rc == KPX_STORE_OK && j->u.cred.cred_id_len > 0)
        return true;
    if (rc != KPX_STORE_OK && rc != KPX_STORE_NOT_FOUND) {
        ksvc_reply_error(resp, 500, "state_failed", "%s", err);
        return false;
    }
    count(j->req->metrics, "kcard_k_proxy_logins_total", "Logins, by outcome.", "outcome",
          "user_not_enrolled");
    ksvc_reply_error(resp, 401, "user_not_enrolled",
                     "%s has no credential: POST /enroll/register first", j->username);
    return false;
}

/* On the card thread: the card, then the session. */
static void login_card(struct card_job *j, struct ksvc_response *resp)
{
    struct kpx_proxy *p = j->p;
    const char *username = j->username;
    char err[256];
    struct kpx_card_result r;
    if (queued_too_long(j, &r)) { /* answered card_busy below */
    } else if (p->mode == KPX_AUTH_PROBE) {
        kpx_card_probe_login(p->card, username, &r);
    } else if (!user_still_enrolled(j, resp)) {
        return;
    } else if (kpx_card_assert_login(p->card, username, &j->u.cred, &r) == KPX_CARD_OK) {
        int rc =
            kpx_store_user_update_sign_count(p->store, username, r.sign_count, err, sizeof(err));
        if (rc == KPX_STORE_CONFLICT) {
            r.outcome = KPX_CARD_INVALID;
            snprintf(r.message, sizeof(r.message),
                     "signCount %u did not increase past the stored one: possible cloned "
                     "credential",
                     r.sign_count);
        } else if (rc != KPX_STORE_OK) {
            ksvc_reply_error(resp, 500, "state_failed", "%s", err);
            return;
        }
    }
    count(j->req->metrics, "kcard_k_proxy_logins_total", "Logins, by outcome.", "outcome",
          kpx_card_outcome_name(r.outcome));
    attempt_result(p, "/session/login", username, j->req, r.outcome, resp);
    if (card_outcome(j->req->metrics, "login", &r, resp))
        reply_session(p, resp, username);
}

static void route_status(struct kpx_proxy *p, const struct ksvc_request *req,
                         struct ksvc_response *resp)
{
    struct kpx_session s;
    if (!session_of(p, req, resp, false, &s))
        return;
    int64_t now = now_s();
    ksvc_reply(resp, 200,
               json_pack("{s:b, s:s, s:s, s:I, s:I, s:I, s:I}", "active", 1, "username", s.username,
                         "auth_mode", s.auth_mode, "created_at", (json_int_t)s.created_at,
                         "expires_at", (json_int_t)s.expires_at, "expires_in",
                         (json_int_t)(s.expires_at - now), "requests", (json_int_t)s.requests));
}

/* The counter's answer to what k_server said, and its metric. */
static void counter_answer(struct ksvc_metrics *m, const struct kpx_upstream_result *r,
                           const char *username, int64_t expires_at, struct ksvc_response *resp)
{
    static const char *names[] = {"ok", "unreachable", "timeout", "refused", "bad_reply"};
    count(m, "kcard_k_proxy_upstream_requests_total", "Requests to k_server, by result.", "result",
          names[r->status]);
    if (r->status == KPX_UPSTREAM_TIMEOUT) {
        ksvc_reply_error(resp, 504, "upstream_timeout", "%s", r->msg);
        return;
    }
    if (r->status != KPX_UPSTREAM_OK) {
        ksvc_reply_error(resp, 502, "upstream_failed", "%s", r->msg);
        return;
    }
    /* flat: the hot path's answer and log members without jansson objects */
    ksvc_log_int(resp, "counter", r->value);
    ksvc_reply_flat(resp, 200);
    ksvc_body_int(resp, "counter", r->value);
    ksvc_body_str(resp, "username", username);
    ksvc_body_int(resp, "expires_in", expires_at - now_s());
}

/* What a counter call carries through k_server's answer (copied into the
 * upstream client's request slot: the request is parked meanwhile). */
struct counter_call {
    struct ksvc_pending *pending;
    struct ksvc_metrics *metrics; /* the request's */
    int64_t expires_at;
    char username[KPX_USERNAME_MAX + 1];
};
_Static_assert(sizeof(struct counter_call) <= KPX_UPSTREAM_CALLER_MAX,
               "a counter call fits in an upstream request slot");

/* On the thread driving the request's upstream lane (the polling thread
 * that read the request). */
static void counter_done(void *arg, const struct kpx_upstream_result *r)
{
    (void)arg;
    struct counter_call *c = r->caller;
    struct ksvc_response resp;
    memset(&resp, 0, sizeof(resp));
    counter_answer(c->metrics, r, c->username, c->expires_at, &resp);
    ksvc_complete(c->pending, &resp);
}

/* The session is checked from memory on the polling thread; the request is
 * then parked until k_server answers: no thread waits for it. */
static void route_counter(struct kpx_proxy *p, const struct ksvc_request *req,
                          struct ksvc_response *resp)
{
    struct kpx_session s;
    if (!session_of(p, req, resp, true, &s))
        return;
    /* the reference was made at login: nothing to derive per request */
    ksvc_log_str(resp, "ref", s.ref);
    struct counter_call c = {.metrics = req->metrics, .expires_at = s.expires_at};
    snprintf(c.username, sizeof(c.username), "%s", s.username);
    c.pending = ksvc_defer(req);
    if (c.pending == NULL) { /* not parkable (outside a server): wait here */
        char msg[512];
        struct kpx_upstream_result r = {.msg = msg};
        r.status = kpx_upstream_counter_next(p->upstream, s.ref, &r.value, msg, sizeof(msg));
        counter_answer(req->metrics, &r, s.username, s.expires_at, resp);
        return;
    }
    if (kpx_upstream_counter_start(p->upstream, req->loop, s.ref, &c, sizeof(c), counter_done, p) !=
        0) {
        struct ksvc_response busy;
        memset(&busy, 0, sizeof(busy));
        count(req->metrics, "kcard_k_proxy_upstream_requests_total",
              "Requests to k_server, by result.", "result", "busy");
        ksvc_reply_error(&busy, 503, "upstream_busy",
                         "k_proxy has too many requests to k_server in flight (or is stopping)");
        ksvc_complete(c.pending, &busy);
    }
}

static void route_logout(struct kpx_proxy *p, const struct ksvc_request *req,
                         struct ksvc_response *resp)
{
    char token[BEARER_MAX], err[256];
    if (!bearer(req, resp, token))
        return;
    struct kpx_session s;
    int rc = kpx_store_session_revoke(p->store, token, now_s(), &s, err, sizeof(err));
    OPENSSL_cleanse(token, sizeof(token));
    if (rc == KPX_STORE_NOT_FOUND) {
        reply_invalid_session(resp, "the session is unknown, expired or logged out already");
        return;
    }
    if (rc == KPX_STORE_NOT_DURABLE) {
        /* failed closed: the token is refused from now on, but only a
         * written delete survives a restart, so this is no success */
        ksvc_log_field(resp, "username", json_string(s.username));
        resp->retry_after = 1;
        ksvc_reply_error(resp, 503, "logout_not_durable",
                         "the session is ended in this k_proxy, but its logout could not be "
                         "written to the state database (%s): k_proxy retries about once a "
                         "second, and a restart before then brings the session back; send the "
                         "logout again to know when it is written",
                         err);
        return;
    }
    if (rc != KPX_STORE_OK) {
        ksvc_reply_error(resp, 500, "state_failed", "%s", err);
        return;
    }
    ksvc_log_field(resp, "username", json_string(s.username));
    ksvc_reply(resp, 200, json_pack("{s:b, s:s}", "logged_out", 1, "username", s.username));
}

static void route_register(struct kpx_proxy *p, const struct ksvc_request *req,
                           struct ksvc_response *resp)
{
    char username[KPX_USERNAME_MAX + 1], err[256];
    if (!body_username(req, resp, username))
        return;
    if (!attempt_allowed(p, req, username, resp))
        return;
    struct card_job *j = new_job(p, req, OP_REGISTER, username, resp);
    if (j == NULL)
        return;
    int rc = kpx_store_user_get(p->store, username, &j->u, err, sizeof(err));
    if (rc == KPX_STORE_OK) { /* before the card: no touch for nothing */
        ksvc_reply_error(resp, 409, "already_registered", "%s is registered already", username);
        free_job(j);
        return;
    }
    if (rc != KPX_STORE_NOT_FOUND) {
        ksvc_reply_error(resp, 500, "state_failed", "%s", err);
        free_job(j);
        return;
    }
    memset(&j->u, 0, sizeof(j->u));
    snprintf(j->u.username, sizeof(j->u.username), "%s", username);
    snprintf(j->u.auth_mode, sizeof(j->u.auth_mode), "%s", kpx_auth_mode_answer(p->mode));
    j->u.registered_at = now_s();
    to_card(p, j, resp);
}

/* On the card thread: the card, then the user's row. */
static void register_card(struct card_job *j, struct ksvc_response *resp)
{
    struct kpx_proxy *p = j->p;
    const char *username = j->username;
    struct kpx_user *u = &j->u;
    char err[256];
    struct kpx_card_result r;
    if (!queued_too_long(j, &r)) { /* else answered card_busy below */
        if (p->mode == KPX_AUTH_PROBE)
            kpx_card_probe_login(p->card, username, &r);
        else
            kpx_card_register(p->card, username, &u->cred, &r);
    }
    attempt_result(p, "/enroll/register", username, j->req, r.outcome, resp);
    if (!card_outcome(j->req->metrics, "register", &r, resp))
        return;
    int rc = kpx_store_user_add(p->store, u, err, sizeof(err));
    if (rc == KPX_STORE_EXISTS) {
        ksvc_reply_error(resp, 409, "already_registered", "%s is registered already", username);
        return;
    }
    if (rc != KPX_STORE_OK) {
        ksvc_reply_error(resp, 500, "state_failed", "%s", err);
        return;
    }
    json_t *out = json_pack("{s:s, s:s, s:I}", "username", username, "auth_mode", u->auth_mode,
                            "registered_at", (json_int_t)u->registered_at);
    if (out != NULL && u->cred.cred_id_len > 0) {
        char id[2 * KPX_CRED_ID_MAX];
        if (kcu_b64url_encode(u->cred.cred_id, u->cred.cred_id_len, id, sizeof(id)) > 0)
            json_object_set_new(out, "credential_id", json_string(id));
        json_object_set_new(out, "alg", json_integer(u->cred.alg));
    }
    ksvc_reply(resp, 201, out);
}

/* Removes the user and its sessions: the answer of both paths. */
static void unregister_user(struct kpx_proxy *p, const char *username, struct ksvc_response *resp)
{
    char err[256];
    int64_t revoked = 0;
    int rc = kpx_store_user_delete(p->store, username, &revoked, err, sizeof(err));
    if (rc == KPX_STORE_NOT_FOUND) {
        ksvc_reply_error(resp, 404, "user_not_found", "%s is not registered", username);
        return;
    }
    if (rc != KPX_STORE_OK) {
        ksvc_reply_error(resp, 500, "state_failed", "%s", err);
        return;
    }
    ksvc_reply(resp, 200,
               json_pack("{s:b, s:s, s:I}", "unregistered", 1, "username", username,
                         "sessions_ended", (json_int_t)revoked));
}

static void route_unregister(struct kpx_proxy *p, const struct ksvc_request *req,
                             struct ksvc_response *resp)
{
    char username[KPX_USERNAME_MAX + 1], err[256];
    if (!body_username(req, resp, username))
        return;
    if (!attempt_allowed(p, req, username, resp))
        return;
    struct card_job *j = new_job(p, req, OP_UNREGISTER, username, resp);
    if (j == NULL)
        return;
    int rc = kpx_store_user_get(p->store, username, &j->u, err, sizeof(err));
    if (rc == KPX_STORE_NOT_FOUND) {
        ksvc_reply_error(resp, 404, "user_not_found", "%s is not registered", username);
        free_job(j);
        return;
    }
    if (rc != KPX_STORE_OK) {
        ksvc_reply_error(resp, 500, "state_failed", "%s", err);
        free_job(j);
        return;
    }
    /* Who may remove a user: that user's own session, or whoever holds the
     * card (approval in probe mode, the user's credential in fido2-direct). */
    if (ksvc_request_header(req, "Authorization") != NULL) {
        free_job(j);
        struct kpx_session sess;
        if (!session_of(p, req, resp, false, &sess))
            return;
        if (strcmp(sess.username, username) != 0) {
            ksvc_reply_error(resp, 403, "forbidden",
                             "a session of %s cannot unregister another user", sess.username);
            return;
        }
        ksvc_log_field(resp, "authorised_by", json_string("session"));
        unregister_user(p, username, resp);
        return;
    }
    to_card(p, j, resp);
}

/* On the card thread: the card, then the removal. */
static void unregister_card(struct card_job *j, struct ksvc_response *resp)
{
    struct kpx_proxy *p = j->p;
    struct kpx_card_result r;
    if (!queued_too_long(j, &r)) { /* else answered card_busy below */
        if (j->u.cred.cred_id_len > 0)
            kpx_card_assert_login(p->card, j->username, &j->u.cred, &r);
        else
            kpx_card_probe_login(p->card, j->username, &r);
    }
    attempt_result(p, "/enroll/unregister", j->username, j->req, r.outcome, resp);
    if (!card_outcome(j->req->metrics, "unregister", &r, resp))
        return;
    ksvc_log_field(resp, "authorised_by", json_string("card"));
    unregister_user(p, j->username, resp);
}

static int add_user(void *ctx, const struct kpx_user *u)
{
    json_t *list = ctx;
    return json_array_append_new(list, json_pack("{s:s, s:I, s:s}", "username", u->username,
                                                 "registered_at", (json_int_t)u->registered_at,
                                                 "auth_mode", u->auth_mode));
}

static void route_users(struct kpx_proxy *p, const struct ksvc_request *req,
                        struct ksvc_response *resp)
{
    (void)req;
    char err[256];
    json_t *list = json_array();
    if (list == NULL ||
        kpx_store_user_list(p->store, add_user, list, err, sizeof(err)) != KPX_STORE_OK) {
        json_decref(list);
        ksvc_reply_error(resp, 500, "state_failed", "cannot list users");
        return;
    }
    ksvc_reply(resp, 200, json_pack("{s:o}", "users", list));
}

/* GET /healthz and /metrics, told apart by ksvc_route_monitor */
static void route_monitor(struct kpx_proxy *p, const struct ksvc_request *req,
                          struct ksvc_response *resp)
{
    ksvc_route_monitor(req, resp, kpx_health, kpx_metrics_refresh, p);
}

/* monitor: answered before the guard, as to any monitoring system;
 * blocks: may block its thread (the server runs it on a worker). SQLite
 * writes and reads of the user registry block. The card does not: a login
 * or enrolment is parked on its way to the card thread (to_card), so a
 * worker only checks it and moves on. A session's status is answered from
 * memory, a counter call is parked while k_server answers (route_counter),
 * health and metrics read memory, and unknown paths are answered at once,
 * on the polling thread. */
struct route {
    const char *path, *methods;
    void (*fn)(struct kpx_proxy *, const struct ksvc_request *, struct ksvc_response *);
    bool monitor, blocks;
};

static const struct route routes[] = {
    {"/session/login", "POST", route_login, false, true},
    {"/session/status", "POST", route_status, false, false},
    {"/resource/counter", "POST", route_counter, false, false},
    {"/session/logout", "POST", route_logout, false, true},
    {"/enroll/register", "POST", route_register, false, true},
    {"/enroll/unregister", "POST", route_unregister, false, true},
    {"/users", "GET", route_users, false, true},
    {"/healthz", "GET, HEAD", route_monitor, true, false},
    {"/metrics", "GET, HEAD", route_monitor, true, false},
};

static const struct route *route_find(const char *path)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(routes[i].path, path) == 0)
            return &routes[i];
    return NULL;
}

void kpx_handle_request(void *ctx, const struct ksvc_request *req, struct ksvc_response *resp)
{
    struct kpx_proxy *p = ctx;
    const struct route *r = route_find(req->path);
    /* 421, 403 or 415: the card is not asked */
    if ((r == NULL || !r->monitor) && !ksvc_guard_check(&p->guard, req, resp))
        return;
    if (r == NULL) {
        ksvc_reply_error(resp, 404, "not_found", "no such endpoint: %.64s", req->path);
        return;
    }
    if (!ksvc_method_allowed(r->methods, req->method)) {
        ksvc_reply_method_not_allowed(resp, r->methods);
        return;
    }
    if (r->fn == route_counter && !counter_allowed(p, req, resp))
        return; /* 429 per session or address, before the session is looked up */
    r->fn(p, req, resp);
}

bool kpx_may_block(void *ctx, const struct ksvc_request *req)
{
    (void)ctx;
    const struct route *r = route_find(req->path);
    return r != NULL && r->blocks;
}

/* Health and metrics read the store's figures from memory: no table scan,
 * no wait on SQLite (issue 10, point 5). */
bool kpx_health(void *ctx, json_t *out)
{
    struct kpx_proxy *p = ctx;
    int64_t active = 0;
    bool ok = kpx_store_sessions_active(p->store, now_s(), &active, NULL, 0) == KPX_STORE_OK;
    json_object_set_new(out, "auth_mode", json_string(kpx_auth_mode_answer(p->mode)));
    json_object_set_new(out, "device", json_string(p->device));
    json_object_set_new(out, "server_base_url", json_string(p->server_base_url));
    json_object_set_new(out, "sessions_active", json_integer(active));
    /* k_server and the card, as the background check last saw them */
    ok = kpx_reach_report(p->reach, out) && ok;
    /* logouts that hold only in memory (the state database refused their
     * delete): unhealthy until the retries write them */
    struct kpx_store_stats st;
    kpx_store_stats(p->store, now_s(), &st);
    if (st.revocations_pending > 0) {
        char detail[320], reason[1200];
        snprintf(detail, sizeof(detail),
                 "%lld logout%s not written to the state database yet (%s); retried about once "
                 "a second",
                 (long long)st.revocations_pending, st.revocations_pending == 1 ? "" : "s",
                 st.revocation_error);
        json_object_set_new(out, "state_db", json_pack("{s:b, s:s}", "ok", 0, "detail", detail));
        const char *before = json_string_value(json_object_get(out, "reason"));
        snprintf(reason, sizeof(reason), "%s%s%s", before != NULL ? before : "",
                 before != NULL ? "; " : "", detail);
        json_object_set_new(out, "reason", json_string(reason));
        ok = false;
    }
    return ok;
}

void kpx_metrics_refresh(void *ctx, struct ksvc_metrics *m)
{
    struct kpx_proxy *p = ctx;
    struct kpx_store_stats st;
    kpx_store_stats(p->store, now_s(), &st);
    ksvc_metric_set(m, "kcard_k_proxy_sessions_active", "Sessions live now.", "",
                    (double)st.sessions_active);
    /* counters kept by the store: set, not added */
    ksvc_metric_set_total(m, "kcard_k_proxy_sessions_expired_total",
                          "Expired sessions swept from memory and the database.", "",
                          (double)st.sessions_swept);
    ksvc_metric_set_total(m, "kcard_k_proxy_request_count_flushes_total",
                          "Write-backs of the sessions' request counts, by result.",
                          "result=\"ok\"", (double)st.flushes);
    ksvc_metric_set_total(m, "kcard_k_proxy_request_count_flushes_total",
                          "Write-backs of the sessions' request counts, by result.",
                          "result=\"failed\"", (double)st.flush_failures);
    ksvc_metric_set_total(m, "kcard_k_proxy_state_db_failures_total",
                          "SQLite statements or transactions of the state database that failed "
                          "(a full disk, a read-only file).",
                          "", (double)st.db_failures);
    ksvc_metric_set(m, "kcard_k_proxy_logouts_not_durable",
                    "Logouts refused in memory whose delete the state database has not taken "
                    "yet (retried about once a second).",
                    "", (double)st.revocations_pending);
    if (p->upstream != NULL)
        ksvc_metric_set_total(m, "kcard_k_proxy_upstream_instance_renewals_total",
                              "New instance ids taken after k_server refused a request as "
                              "replayed (a restart of k_server).",
                              "", (double)kpx_upstream_renewals(p->upstream));
    if (p->card_worker != NULL) {
        ksvc_metric_set(m, "kcard_k_proxy_card_waiters",
                        "Logins and enrolments waiting for the card or using it now.", "",
                        (double)kpx_card_worker_waiters(p->card_worker));
        ksvc_metric_set(m, "kcard_k_proxy_card_waiters_max", "--max-card-waiters.", "",
                        (double)kpx_card_worker_max_waiters(p->card_worker));
    }
    if (p->limits != NULL) {
        const struct kpx_limits_cfg *c = kpx_limits_cfg(p->limits);
        const struct {
            const char *name;
            double value;
        } limits[] = {
            {"counter_session_rate", c->counter_session.rate},
            {"counter_session_burst", c->counter_session.burst},
            {"counter_address_rate", c->counter_address.rate},
            {"counter_address_burst", c->counter_address.burst},
            {"login_user_rate", c->login_user.rate},
            {"login_user_burst", c->login_user.burst},
            {"login_address_rate", c->login_address.rate},
            {"login_address_burst", c->login_address.burst},
            {"lockout_after_user", c->lockout_after_user},
            {"lockout_after_address", c->lockout_after_address},
            {"lockout_base_seconds", c->lockout_base_ms / 1000.0},
            {"lockout_max_seconds", c->lockout_max_s},
        };
        for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
            char labels[64];
            snprintf(labels, sizeof(labels), "limit=\"%s\"", limits[i].name);
            ksvc_metric_set(m, "kcard_k_proxy_limit",
                            "The configured limits (rates per second; 0: unlimited).", labels,
                            limits[i].value);
        }
    }
}
