/* k_proxy's HTTP routes (services/API.md): sessions, the protected counter
 * through k_server, and the user registry. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "services/common/crypto.h"
#include "services/common/log.h"
#include "services/common/upstream.h"
#include "services/k_proxy/card_auth.h"
#include "services/k_proxy/proxy.h"
#include "services/k_proxy/store.h"
#include "services/k_proxy/upstream_client.h"

#define BEARER_MAX 128

const char *kpx_auth_mode_answer(enum kpx_auth_mode m)
{
    return m == KPX_AUTH_FIDO2_DIRECT ? "fido2_assertion" : "card_probe";
}

static struct ksvc_metrics *metrics(struct kpx_proxy *p)
{
    return ksvc_server_metrics(p->http);
}

static void count(struct kpx_proxy *p, const char *name, const char *help, const char *label,
                  const char *value)
{
    char labels[96];
    snprintf(labels, sizeof(labels), "%s=\"%s\"", label, value);
    ksvc_metric_add(metrics(p), name, help, labels, 1);
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
    ksvc_log_field(resp, "username", json_string(s->username));
    return true;
}

/* Maps a card result to the answer and the log line; true when it was OK. */
static bool card_outcome(struct kpx_proxy *p, const char *op, const struct kpx_card_result *r,
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
    ksvc_metric_add(metrics(p), "kcard_k_proxy_card_operations_total",
                    "Card operations, by operation and outcome.", labels, 1);
    snprintf(labels, sizeof(labels), "op=\"%s\"", op);
    ksvc_metric_add(metrics(p), "kcard_k_proxy_card_seconds_total",
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

static void route_login(struct kpx_proxy *p, const struct ksvc_request *req,
                        struct ksvc_response *resp)
{
    char username[KPX_USERNAME_MAX + 1], err[256];
    if (!body_username(req, resp, username))
        return;
    struct kpx_card_result r;
    if (p->mode == KPX_AUTH_PROBE) {
        kpx_card_probe_login(p->card, username, &r);
    } else {
        struct kpx_user u;
        int rc = kpx_store_user_get(p->store, username, &u, err, sizeof(err));
        if (rc == KPX_STORE_NOT_FOUND) {
            count(p, "kcard_k_proxy_logins_total", "Logins, by outcome.", "outcome",
                  "user_not_enrolled");
            ksvc_reply_error(resp, 401, "user_not_enrolled",
                             "%s has no credential: POST /enroll/register first", username);
            return;
        }
        if (rc != KPX_STORE_OK) {
            ksvc_reply_error(resp, 500, "state_failed", "%s", err);
            return;
        }
        if (u.cred.cred_id_len == 0) {
            ksvc_reply_error(resp, 401, "user_not_enrolled",
                             "%s was registered in probe mode and has no FIDO2 credential",
                             username);
            return;
        }
        if (kpx_card_assert_login(p->card, username, &u.cred, &r) == KPX_CARD_OK) {
            rc = kpx_store_user_update_sign_count(p->store, username, r.sign_count, err,
                                                  sizeof(err));
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
    }
    count(p, "kcard_k_proxy_logins_total", "Logins, by outcome.", "outcome",
          kpx_card_outcome_name(r.outcome));
    if (card_outcome(p, "login", &r, resp))
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

static void route_counter(struct kpx_proxy *p, const struct ksvc_request *req,
                          struct ksvc_response *resp)
{
    struct kpx_session s;
    if (!session_of(p, req, resp, true, &s))
        return;
    char msg[512];
    /* the reference was made at login: nothing to derive per request */
    ksvc_log_field(resp, "ref", json_string(s.ref));
    int64_t value = 0;
    enum kpx_upstream_status st =
        kpx_upstream_counter_next(p->upstream, s.ref, &value, msg, sizeof(msg));
    static const char *names[] = {"ok", "unreachable", "timeout", "refused", "bad_reply"};
    count(p, "kcard_k_proxy_upstream_requests_total", "Requests to k_server, by result.", "result",
          names[st]);
    if (st == KPX_UPSTREAM_TIMEOUT) {
        ksvc_reply_error(resp, 504, "upstream_timeout", "%s", msg);
        return;
    }
    if (st != KPX_UPSTREAM_OK) {
        ksvc_reply_error(resp, 502, "upstream_failed", "%s", msg);
        return;
    }
    ksvc_log_field(resp, "counter", json_integer(value));
    ksvc_reply(resp, 200,
               json_pack("{s:I, s:s, s:I}", "counter", (json_int_t)value, "username", s.username,
                         "expires_in", (json_int_t)(s.expires_at - now_s())));
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
    struct kpx_user u;
    memset(&u, 0, sizeof(u));
    int rc = kpx_store_user_get(p->store, username, &u, err, sizeof(err));
    if (rc == KPX_STORE_OK) { /* before the card: no touch for nothing */
        ksvc_reply_error(resp, 409, "already_registered", "%s is registered already", username);
        return;
    }
    if (rc != KPX_STORE_NOT_FOUND) {
        ksvc_reply_error(resp, 500, "state_failed", "%s", err);
        return;
    }
    memset(&u, 0, sizeof(u));
    snprintf(u.username, sizeof(u.username), "%s", username);
    snprintf(u.auth_mode, sizeof(u.auth_mode), "%s", kpx_auth_mode_answer(p->mode));
    u.registered_at = now_s();
    struct kpx_card_result r;
    if (p->mode == KPX_AUTH_PROBE)
        kpx_card_probe_login(p->card, username, &r);
    else
        kpx_card_register(p->card, username, &u.cred, &r);
    if (!card_outcome(p, "register", &r, resp))
        return;
    rc = kpx_store_user_add(p->store, &u, err, sizeof(err));
    if (rc == KPX_STORE_EXISTS) {
        ksvc_reply_error(resp, 409, "already_registered", "%s is registered already", username);
        return;
    }
    if (rc != KPX_STORE_OK) {
        ksvc_reply_error(resp, 500, "state_failed", "%s", err);
        return;
    }
    json_t *out = json_pack("{s:s, s:s, s:I}", "username", username, "auth_mode", u.auth_mode,
                            "registered_at", (json_int_t)u.registered_at);
    if (out != NULL && u.cred.cred_id_len > 0) {
        char id[2 * KPX_CRED_ID_MAX];
        if (ksvc_b64url_encode(u.cred.cred_id, u.cred.cred_id_len, id, sizeof(id)) > 0)
            json_object_set_new(out, "credential_id", json_string(id));
        json_object_set_new(out, "alg", json_integer(u.cred.alg));
    }
    ksvc_reply(resp, 201, out);
}

static void route_unregister(struct kpx_proxy *p, const struct ksvc_request *req,
                             struct ksvc_response *resp)
{
    char username[KPX_USERNAME_MAX + 1], err[256];
    if (!body_username(req, resp, username))
        return;
    struct kpx_user u;
    int rc = kpx_store_user_get(p->store, username, &u, err, sizeof(err));
    if (rc == KPX_STORE_NOT_FOUND) {
        ksvc_reply_error(resp, 404, "user_not_found", "%s is not registered", username);
        return;
    }
    if (rc != KPX_STORE_OK) {
        ksvc_reply_error(resp, 500, "state_failed", "%s", err);
        return;
    }
    /* Who may remove a user: that user's own session, or whoever holds the
     * card (approval in probe mode, the user's credential in fido2-direct). */
    if (ksvc_request_header(req, "Authorization") != NULL) {
        struct kpx_session sess;
        if (!session_of(p, req, resp, false, &sess))
            return;
        if (strcmp(sess.username, username) != 0) {
            ksvc_reply_error(resp, 403, "forbidden",
                             "a session of %s cannot unregister another user", sess.username);
            return;
        }
        ksvc_log_field(resp, "authorised_by", json_string("session"));
    } else {
        struct kpx_card_result r;
        if (u.cred.cred_id_len > 0)
            kpx_card_assert_login(p->card, username, &u.cred, &r);
        else
            kpx_card_probe_login(p->card, username, &r);
        if (!card_outcome(p, "unregister", &r, resp))
            return;
        ksvc_log_field(resp, "authorised_by", json_string("card"));
    }
    int64_t revoked = 0;
    rc = kpx_store_user_delete(p->store, username, &revoked, err, sizeof(err));
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

struct route {
    const char *path, *method;
    void (*fn)(struct kpx_proxy *, const struct ksvc_request *, struct ksvc_response *);
};

static const struct route routes[] = {
    {"/session/login", "POST", route_login},
    {"/session/status", "POST", route_status},
    {"/resource/counter", "POST", route_counter},
    {"/session/logout", "POST", route_logout},
    {"/enroll/register", "POST", route_register},
    {"/enroll/unregister", "POST", route_unregister},
    {"/users", "GET", route_users},
};

void kpx_handle_request(void *ctx, const struct ksvc_request *req, struct ksvc_response *resp)
{
    struct kpx_proxy *p = ctx;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(routes[i].path, req->path) != 0)
            continue;
        if (strcmp(routes[i].method, req->method) != 0) {
            ksvc_reply_method_not_allowed(resp, routes[i].method);
            return;
        }
        routes[i].fn(p, req, resp);
        return;
    }
    ksvc_reply_error(resp, 404, "not_found", "no such endpoint: %.64s", req->path);
}

/* Which requests may block their thread (the server runs those on its
 * workers): the card, SQLite writes and reads of the user registry, and the
 * upstream call. A session's status is answered from memory, and unknown
 * paths at once, on the polling thread. */
bool kpx_may_block(void *ctx, const struct ksvc_request *req)
{
    (void)ctx;
    if (strcmp(req->path, "/session/status") == 0)
        return false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(routes[i].path, req->path) == 0)
            return true;
    return false;
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
    if (p->upstream != NULL)
        ksvc_metric_set_total(m, "kcard_k_proxy_upstream_instance_renewals_total",
                              "New instance ids taken after k_server refused a request as "
                              "replayed (a restart of k_server).",
                              "", (double)kpx_upstream_renewals(p->upstream));
}
