/* The portal's routes: GET /healthz and /metrics, the static page and the
 * same-origin JSON API, each API call forwarded to k_proxy with the bearer
 * token kept here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "services/common/log.h"
#include "services/common/svc_util.h"
#include "services/k_client_portal/portal.h"

#define COOKIE_ATTRS "Path=/; HttpOnly; SameSite=Strict"

/* Counts one in the request's registry (NULL outside a server: nothing). */
static void count(const struct ksvc_request *req, const char *name, const char *help,
                  const char *labels)
{
    if (req->metrics != NULL)
        ksvc_metric_add(req->metrics, name, help, labels, 1);
}

/* A failed call: k_proxy unreachable (502) or too slow (504). */
static void reply_transport(struct ksvc_response *out, const struct kcp_proxy_result *res)
{
    if (res->timed_out)
        ksvc_reply_error(out, 504, "proxy_timeout", "k_proxy did not answer in time: %s",
                         res->error);
    else
        ksvc_reply_error(out, 502, "proxy_unreachable", "cannot reach k_proxy: %s", res->error);
}

json_t *kcp_proxy_error_reply(long status, const json_t *body, int *out_status)
{
    json_t *err = json_object_get(body, "error");
    json_t *msg = json_object_get(body, "message");
    if (status < 400 || status > 599 || !json_is_string(err) || !json_is_string(msg)) {
        *out_status = 502;
        char text[128];
        snprintf(text, sizeof(text), "k_proxy answered HTTP %ld without an error object", status);
        return json_pack("{s:s, s:s}", "error", "bad_proxy_answer", "message", text);
    }
    *out_status = (int)status;
    json_t *out = json_pack("{s:O, s:O}", "error", err, "message", msg);
    json_t *called = json_object_get(body, "upstream_called");
    if (out != NULL && json_is_boolean(called))
        json_object_set(out, "upstream_called", called);
    return out;
}

static void reply_proxy_error(struct ksvc_response *out, const struct kcp_proxy_result *res)
{
    int status = 502;
    json_t *body = kcp_proxy_error_reply(res->status, res->body, &status);
    ksvc_reply(out, status, body);
    const char *code = json_string_value(json_object_get(body, "error"));
    if (code != NULL)
        ksvc_log_field(out, "error", json_string(code));
}

/* Forwards and, when k_proxy answered 2xx with a JSON object, returns true
 * with res filled; otherwise the reply is set and res cleared. */
static bool forward(struct kcp_portal *p, struct ksvc_response *out, const char *method,
                    const char *path, const char *bearer, const json_t *body,
                    struct kcp_proxy_result *res)
{
    int rc = kcp_proxy_call(&p->proxy, method, path, bearer, body, res);
    ksvc_log_field(out, "proxy_path", json_string(path));
    if (rc != 0) {
        reply_transport(out, res);
        kcp_proxy_result_clear(res);
        return false;
    }
    ksvc_log_field(out, "proxy_status", json_integer(res->status));
    if (res->status >= 200 && res->status < 300 && json_is_object(res->body))
        return true;
    if (res->status >= 200 && res->status < 300)
        ksvc_reply_error(out, 502, "bad_proxy_answer", "k_proxy answered HTTP %ld without JSON",
                         res->status);
    else
        reply_proxy_error(out, res);
    kcp_proxy_result_clear(res);
    return false;
}

/* The portal session named by the request's cookie. */
static bool current_session(struct kcp_portal *p, const char *cookie, char *sid,
                            struct kcp_session_view *s)
{
    if (!kcp_cookie_get(cookie, KCP_COOKIE_NAME, sid, KCP_SID_LEN + 1))
        return false;
    return kcp_sessions_get(p->sessions, sid, time(NULL), s);
}

/* Secure when the page itself is served over TLS. */
static const char *cookie_secure(const struct kcp_portal *p)
{
    return p->tls ? "; Secure" : "";
}

static void clear_cookie(const struct kcp_portal *p, struct ksvc_response *out)
{
    snprintf(out->set_cookie, sizeof(out->set_cookie), "%s=; Max-Age=0; %s%s", KCP_COOKIE_NAME,
             COOKIE_ATTRS, cookie_secure(p));
}

static json_t *username_object(const char *username)
{
    return json_pack("{s:s}", "username", username);
}

static bool read_username(const struct ksvc_request *req, const char *ctype,
                          struct ksvc_response *out, char username[KCP_USERNAME_MAX + 1])
{
    if (ctype != NULL && strncasecmp(ctype, "application/json", 16) != 0) {
        ksvc_reply_error(out, 415, "unsupported_media_type",
                         "the body must be application/json, not %.64s", ctype);
        return false;
    }
    const char *code = NULL;
    char msg[256];
    int status =
        kcp_parse_username_body(req->body, req->body_len, username, &code, msg, sizeof(msg));
    if (status != 0) {
        ksvc_reply_error(out, status, code, "%s", msg);
        return false;
    }
    ksvc_log_field(out, "username", json_string(username));
    return true;
}

static void api_register(struct kcp_portal *p, const struct ksvc_request *req,
                         const struct kcp_headers *h, struct ksvc_response *out, bool unregister)
{
    char username[KCP_USERNAME_MAX + 1];
    if (!read_username(req, h->content_type, out, username))
        return;
    json_t *body = username_object(username);
    struct kcp_proxy_result res;
    if (forward(p, out, "POST", unregister ? "/enroll/unregister" : "/enroll/register", NULL, body,
                &res)) {
        ksvc_reply(out, (int)res.status, json_incref(res.body));
        kcp_proxy_result_clear(&res);
    }
    json_decref(body);
}

static void api_users(struct kcp_portal *p, struct ksvc_response *out)
{
    struct kcp_proxy_result res;
    if (!forward(p, out, "GET", "/users", NULL, NULL, &res))
        return;
    if (!json_is_array(json_object_get(res.body, "users")))
        ksvc_reply_error(out, 502, "bad_proxy_answer", "k_proxy's user list has no users");
    else
        ksvc_reply(out, 200, json_pack("{s:O}", "users", json_object_get(res.body, "users")));
    kcp_proxy_result_clear(&res);
}

static void api_login(struct kcp_portal *p, const struct ksvc_request *req,
                      const struct kcp_headers *h, struct ksvc_response *out)
{
    const char *cookie = h->cookie;
    char username[KCP_USERNAME_MAX + 1];
    if (!read_username(req, h->content_type, out, username))
        return;
    json_t *body = username_object(username);
    struct kcp_proxy_result res;
    bool ok = forward(p, out, "POST", "/session/login", NULL, body, &res);
    json_decref(body);
    if (!ok) {
        count(req, "kcard_k_client_portal_logins_total", "Logins through the portal by result.",
              "result=\"refused\"");
        return;
    }
    json_t *tok = json_object_get(res.body, "session_token");
    json_t *ttl = json_object_get(res.body, "expires_in");
    if (!json_is_string(tok) || !json_is_integer(ttl) || json_integer_value(ttl) <= 0) {
        ksvc_reply_error(out, 502, "bad_proxy_answer",
                         "k_proxy's login answer has no session_token or expires_in");
        kcp_proxy_result_clear(&res);
        return;
    }
    /* a login replaces the browser's previous portal session */
    char old_sid[KCP_SID_LEN + 1];
    struct kcp_session_view old;
    if (current_session(p, cookie, old_sid, &old)) {
        kcp_sessions_remove(p->sessions, old_sid);
        struct kcp_proxy_result lo;
        if (kcp_proxy_call(&p->proxy, "POST", "/session/logout", old.token, NULL, &lo) == 0)
            kcp_proxy_result_clear(&lo);
        OPENSSL_cleanse(&old, sizeof(old));
    }
    json_int_t expires_in = json_integer_value(ttl);
    time_t now = time(NULL);
    char sid[KCP_SID_LEN + 1];
    if (kcp_sessions_put(p->sessions, json_string_value(tok), username, now + (time_t)expires_in,
                         now, sid) != 0) {
        ksvc_reply_error(out, 500, "internal", "cannot keep the session");
        kcp_proxy_result_clear(&res);
        return;
    }
    snprintf(out->set_cookie, sizeof(out->set_cookie), "%s=%s; Max-Age=%lld; %s%s", KCP_COOKIE_NAME,
             sid, (long long)expires_in, COOKIE_ATTRS, cookie_secure(p));
    OPENSSL_cleanse(sid, sizeof(sid));
    json_t *answer = json_pack("{s:b, s:s, s:I}", "logged_in", 1, "username", username,
                               "expires_in", expires_in);
    json_t *mode = json_object_get(res.body, "auth_mode");
    json_t *at = json_object_get(res.body, "expires_at");
    if (answer != NULL && json_is_string(mode))
        json_object_set(answer, "auth_mode", mode);
    if (answer != NULL && at != NULL)
        json_object_set(answer, "expires_at", at);
    ksvc_reply(out, 200, answer);
    count(req, "kcard_k_client_portal_logins_total", "Logins through the portal by result.",
          "result=\"ok\"");
    kcp_proxy_result_clear(&res);
}

/* Counter, status and logout: the bearer of the cookie's session. */
static void api_with_session(struct kcp_portal *p, const char *cookie, const char *what,
                             struct ksvc_response *out)
{
    char sid[KCP_SID_LEN + 1];
    struct kcp_session_view s;
    bool is_status = strcmp(what, "session") == 0, is_logout = strcmp(what, "logout") == 0;
    if (!current_session(p, cookie, sid, &s)) {
        if (is_status)
            ksvc_reply(out, 200, json_pack("{s:b}", "active", 0));
        else
            ksvc_reply_error(out, 401, "not_logged_in",
                             "this browser has no live session; log in first");
        return;
    }
    ksvc_log_field(out, "username", json_string(s.username));
    const char *path = is_status   ? "/session/status"
                       : is_logout ? "/session/logout"
                                   : "/resource/counter";
    struct kcp_proxy_result res;
    bool ok = forward(p, out, "POST", path, s.token, NULL, &res);
    OPENSSL_cleanse(&s, sizeof(s));
    if (ok) {
        ksvc_reply(out, 200, json_incref(res.body));
        if (json_is_integer(json_object_get(res.body, "counter")))
            ksvc_log_field(out, "counter",
                           json_integer(json_integer_value(json_object_get(res.body, "counter"))));
        kcp_proxy_result_clear(&res);
    }
    /* k_proxy no longer knows the session, or the user logged out: forget it */
    if (is_logout || out->status == 401) {
        kcp_sessions_remove(p->sessions, sid);
        clear_cookie(p, out);
    }
    if (is_status && out->status == 401) {
        ksvc_reply(out, 200, json_pack("{s:b}", "active", 0));
    }
    OPENSSL_cleanse(sid, sizeof(sid));
}

/* POSTs from another origin are refused; SameSite=Strict already keeps the
 * cookie off them, this also protects register and unregister. */
static bool same_origin(const char *origin, const char *host)
{
    if (origin == NULL)
        return true; /* not a browser cross-origin request */
    if (host == NULL)
        return false;
    char want[300];
    snprintf(want, sizeof(want), "http://%s", host);
    if (strcmp(origin, want) == 0)
        return true;
    snprintf(want, sizeof(want), "https://%s", host);
    return strcmp(origin, want) == 0;
}

static bool portal_health(void *ctx, json_t *out)
{
    struct kcp_portal *p = ctx;
    json_object_set_new(out, "sessions",
                        json_integer((json_int_t)kcp_sessions_count(p->sessions, time(NULL))));
    json_object_set_new(out, "proxy_base_url", json_string(p->proxy.base_url));
    return true;
}

static void portal_metrics(void *ctx, struct ksvc_metrics *m)
{
    struct kcp_portal *p = ctx;
    ksvc_metric_set(m, "kcard_k_client_portal_sessions",
                    "Live portal sessions (browser cookies mapped to k_proxy sessions).", "",
                    (double)kcp_sessions_count(p->sessions, time(NULL)));
}

/* GET /healthz and /metrics, told apart by ksvc_route_monitor */
static void route_monitor(struct kcp_portal *p, const struct ksvc_request *req,
                          struct ksvc_response *out)
{
    ksvc_route_monitor(req, out, portal_health, portal_metrics, p);
}

/* Monitoring's routes, answered before the Host check as in the other
 * services. */
static const struct {
    const char *path, *methods;
    void (*fn)(struct kcp_portal *, const struct ksvc_request *, struct ksvc_response *);
} monitor_routes[] = {
    {"/healthz", "GET, HEAD", route_monitor},
    {"/metrics", "GET, HEAD", route_monitor},
};

static const struct {
    const char *path, *method;
} api_routes[] = {
    {"/api/register", "POST"}, {"/api/users", "GET"},   {"/api/unregister", "POST"},
    {"/api/login", "POST"},    {"/api/session", "GET"}, {"/api/counter", "POST"},
    {"/api/logout", "POST"},
};

void kcp_handle(struct kcp_portal *p, const struct ksvc_request *req, const struct kcp_headers *h,
                struct ksvc_response *out)
{
    for (size_t m = 0; m < sizeof(monitor_routes) / sizeof(monitor_routes[0]); m++) {
        if (strcmp(req->path, monitor_routes[m].path) != 0)
            continue;
        if (!ksvc_method_allowed(monitor_routes[m].methods, req->method))
            ksvc_reply_method_not_allowed(out, monitor_routes[m].methods);
        else
            monitor_routes[m].fn(p, req, out);
        return;
    }
    if (p->guard != NULL ? !ksvc_guard_host_ok(p->guard, h->host)
                         : !kcp_host_allowed(h->host, p->listen_host)) {
        ksvc_reply_error(out, 421, "unknown_host",
                         "this portal answers to this machine's addresses, localhost, its --host "
                         "or an --allowed-host name, not %.80s",
                         h->host ? h->host : "(no Host header)");
        ksvc_log_field(out, "guard", json_string("unknown_host"));
        return;
    }
    const char *type = NULL;
    const char *file = kcp_static_asset(req->path, &type);
    if (file != NULL) {
        if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
            ksvc_reply_method_not_allowed(out, "GET, HEAD");
            return;
        }
        const struct kcp_asset *a = strcmp(file, "index.html") == 0 ? &p->index_html
                                    : strcmp(file, "app.js") == 0   ? &p->app_js
                                                                    : &p->style_css;
        out->status = 200;
        out->content_type = type;
        out->raw = a->data;
        out->raw_len = a->len;
        return;
    }
    size_t i;
    for (i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++)
        if (strcmp(req->path, api_routes[i].path) == 0)
            break;
    if (i == sizeof(api_routes) / sizeof(api_routes[0])) {
        ksvc_reply_error(out, 404, "not_found", "no such page or endpoint: %.64s", req->path);
        return;
    }
    if (strcmp(req->method, api_routes[i].method) != 0) {
        ksvc_reply_method_not_allowed(out, api_routes[i].method);
        return;
    }
    if (strcmp(req->method, "POST") == 0 && !same_origin(h->origin, h->host)) {
        ksvc_reply_error(out, 403, "cross_origin", "requests from %.80s are not accepted",
                         h->origin);
        return;
    }
    const char *what = req->path + 5;
    if (strcmp(what, "register") == 0 || strcmp(what, "unregister") == 0)
        api_register(p, req, h, out, what[0] == 'u');
    else if (strcmp(what, "users") == 0)
        api_users(p, out);
    else if (strcmp(what, "login") == 0)
        api_login(p, req, h, out);
    else
        api_with_session(p, h->cookie, what, out);
}

static int load_one(const char *dir, const char *name, struct kcp_asset *a, char *err,
                    size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
        snprintf(err, errlen, "--static-dir is too long");
        return -1;
    }
    a->data = ksvc_read_file(path, 1024 * 1024, &a->len, err, errlen);
    return a->data ? 0 : -1;
}

int kcp_load_assets(struct kcp_portal *p, const char *dir, char *err, size_t errlen)
{
    if (load_one(dir, "index.html", &p->index_html, err, errlen) != 0 ||
        load_one(dir, "app.js", &p->app_js, err, errlen) != 0 ||
        load_one(dir, "style.css", &p->style_css, err, errlen) != 0) {
        kcp_free_assets(p);
        return -1;
    }
    return 0;
}

void kcp_free_assets(struct kcp_portal *p)
{
    free(p->index_html.data);
    free(p->app_js.data);
    free(p->style_css.data);
    p->index_html = p->app_js = p->style_css = (struct kcp_asset){0};
}
