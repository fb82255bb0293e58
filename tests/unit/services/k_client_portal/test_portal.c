/* k_client_portal's pure parts: Cookie header parsing, request validation,
 * the session table's bound and expiry, and the routes that answer before
 * anything is sent to k_proxy. No sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "services/k_client_portal/portal.h"

static void test_cookie_found_among_others(void **state)
{
    (void)state;
    char v[64];
    assert_true(kcp_cookie_get("a=1; kcp_session=abc; b=2", "kcp_session", v, sizeof(v)));
    assert_string_equal(v, "abc");
    assert_true(kcp_cookie_get("kcp_session=xyz", "kcp_session", v, sizeof(v)));
    assert_string_equal(v, "xyz");
    assert_true(kcp_cookie_get("a=1;kcp_session=q-_9 ;b", "kcp_session", v, sizeof(v)));
    assert_string_equal(v, "q-_9");
    assert_true(kcp_cookie_get("kcp_session=\"quoted\"", "kcp_session", v, sizeof(v)));
    assert_string_equal(v, "quoted");
    assert_true(kcp_cookie_get("kcp_session=", "kcp_session", v, sizeof(v)));
    assert_string_equal(v, "");
    /* the first of two wins */
    assert_true(kcp_cookie_get("kcp_session=one; kcp_session=two", "kcp_session", v, sizeof(v)));
    assert_string_equal(v, "one");
}

static void test_cookie_absent_or_malformed(void **state)
{
    (void)state;
    char v[8];
    assert_false(kcp_cookie_get(NULL, "kcp_session", v, sizeof(v)));
    assert_false(kcp_cookie_get("", "kcp_session", v, sizeof(v)));
    assert_false(kcp_cookie_get("a=1; b=2", "kcp_session", v, sizeof(v)));
    /* a name that only ends or starts with ours is another cookie */
    assert_false(kcp_cookie_get("xkcp_session=1", "kcp_session", v, sizeof(v)));
    assert_false(kcp_cookie_get("kcp_session2=1", "kcp_session", v, sizeof(v)));
    assert_false(kcp_cookie_get("kcp_session", "kcp_session", v, sizeof(v)));
    /* too long for the buffer, and characters a cookie value may not hold */
    assert_false(kcp_cookie_get("kcp_session=12345678", "kcp_session", v, sizeof(v)));
    assert_true(kcp_cookie_get("kcp_session=1234567", "kcp_session", v, sizeof(v)));
    assert_false(kcp_cookie_get("kcp_session=a\\b", "kcp_session", v, sizeof(v)));
    assert_false(kcp_cookie_get("kcp_session=a\x01", "kcp_session", v, sizeof(v)));
    assert_false(kcp_cookie_get("kcp_session=a,b", "kcp_session", v, sizeof(v)));
    assert_false(kcp_cookie_get("kcp_session=x", "", v, sizeof(v)));
}

static void test_sid_shape(void **state)
{
    (void)state;
    assert_true(kcp_sid_well_formed("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-_"));
    assert_false(kcp_sid_well_formed("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-"));
    assert_false(kcp_sid_well_formed("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-_A"));
    assert_false(kcp_sid_well_formed("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/"));
    assert_false(kcp_sid_well_formed(NULL));
}

static void test_username_rules(void **state)
{
    (void)state;
    char name[80];
    assert_true(kcp_username_valid("alice"));
    assert_true(kcp_username_valid("A.b_c-9"));
    memset(name, 'a', 64);
    name[64] = '\0';
    assert_true(kcp_username_valid(name));
    name[64] = 'a';
    name[65] = '\0';
    assert_false(kcp_username_valid(name));
    assert_false(kcp_username_valid(""));
    assert_false(kcp_username_valid("bad name"));
    assert_false(kcp_username_valid("al/ice"));
    assert_false(kcp_username_valid("é"));
    assert_false(kcp_username_valid(NULL));
}

static int parse(const char *body, char *out, const char **code)
{
    char msg[256];
    *code = NULL;
    return kcp_parse_username_body(body, strlen(body), out, code, msg, sizeof(msg));
}

static void test_username_body(void **state)
{
    (void)state;
    char u[KCP_USERNAME_MAX + 1];
    const char *code;
    assert_int_equal(parse("{\"username\": \"alice\"}", u, &code), 0);
    assert_string_equal(u, "alice");
    assert_int_equal(parse("{\"username\": \"bob\", \"extra\": 1}", u, &code), 0);
    assert_string_equal(u, "bob");

    assert_int_equal(parse("", u, &code), 400);
    assert_string_equal(code, "bad_json");
    assert_int_equal(parse("not json", u, &code), 400);
    assert_string_equal(code, "bad_json");
    assert_int_equal(parse("[\"alice\"]", u, &code), 400);
    assert_string_equal(code, "bad_json");
    assert_int_equal(parse("{\"username\": \"a\", \"username\": \"b\"}", u, &code), 400);
    assert_string_equal(code, "bad_json");

    assert_int_equal(parse("{}", u, &code), 400);
    assert_string_equal(code, "bad_username");
    assert_int_equal(parse("{\"username\": 7}", u, &code), 400);
    assert_string_equal(code, "bad_username");
    /* jansson refuses an escaped NUL outright */
    assert_int_equal(parse("{\"username\": \"a\\u0000b\"}", u, &code), 400);
    assert_string_equal(code, "bad_json");
    assert_int_equal(parse("{\"username\": \"../etc\"}", u, &code), 400);
    assert_string_equal(code, "bad_username");
    assert_string_equal(u, "");
}

static void test_host_names(void **state)
{
    (void)state;
    assert_true(kcp_host_allowed("127.0.0.1:8766", "127.0.0.1"));
    assert_true(kcp_host_allowed("127.0.0.1", "127.0.0.1"));
    assert_true(kcp_host_allowed("localhost:8766", "127.0.0.1"));
    assert_true(kcp_host_allowed("LocalHost:1", "127.0.0.1"));
    assert_true(kcp_host_allowed("[::1]:8766", "127.0.0.1"));
    assert_true(kcp_host_allowed("10.1.2.3:8766", "10.1.2.3"));
    /* listening everywhere is no reason to answer to any name (issue 10) */
    assert_false(kcp_host_allowed("anything.example:80", "0.0.0.0"));
    /* a rebinding name, and malformed ports and brackets */
    assert_false(kcp_host_allowed("evil.example:8766", "127.0.0.1"));
    assert_false(kcp_host_allowed("127.0.0.1.evil.example", "127.0.0.1"));
    assert_false(kcp_host_allowed("127.0.0.1:", "127.0.0.1"));
    assert_false(kcp_host_allowed("127.0.0.1:123456", "127.0.0.1"));
    assert_false(kcp_host_allowed("127.0.0.1:80x", "127.0.0.1"));
    assert_false(kcp_host_allowed("[::1", "127.0.0.1"));
    assert_false(kcp_host_allowed("[::1]x", "127.0.0.1"));
    assert_false(kcp_host_allowed("", "127.0.0.1"));
    assert_false(kcp_host_allowed(NULL, "127.0.0.1"));
}

static void test_static_assets(void **state)
{
    (void)state;
    const char *type = NULL;
    assert_string_equal(kcp_static_asset("/", &type), "index.html");
    assert_non_null(strstr(type, "text/html"));
    assert_string_equal(kcp_static_asset("/app.js", &type), "app.js");
    assert_non_null(strstr(type, "javascript"));
    assert_string_equal(kcp_static_asset("/style.css", &type), "style.css");
    assert_null(kcp_static_asset("/../static/app.js", &type));
    assert_null(kcp_static_asset("/portal.h", &type));
    assert_null(kcp_static_asset("/api/users", &type));
    assert_null(kcp_static_asset("", &type));
}

static void test_sessions_put_get_remove(void **state)
{
    (void)state;
    struct kcp_sessions *t = kcp_sessions_new(4);
    assert_non_null(t);
    char a[KCP_SID_LEN + 1], b[KCP_SID_LEN + 1];
    assert_int_equal(kcp_sessions_put(t, "token-a", "alice", 1300, 1000, a), 0);
    assert_int_equal(kcp_sessions_put(t, "token-b", "bob", 1300, 1000, b), 0);
    assert_true(kcp_sid_well_formed(a));
    assert_string_not_equal(a, b);
    struct kcp_session_view v;
    assert_true(kcp_sessions_get(t, a, 1001, &v));
    assert_string_equal(v.token, "token-a");
    assert_string_equal(v.username, "alice");
    assert_int_equal(v.expires_at, 1300);
    assert_true(kcp_sessions_get(t, b, 1001, &v));
    assert_string_equal(v.token, "token-b");
    assert_int_equal(kcp_sessions_count(t, 1001), 2);

    assert_true(kcp_sessions_remove(t, a));
    assert_false(kcp_sessions_remove(t, a));
    assert_false(kcp_sessions_get(t, a, 1001, &v));
    assert_int_equal(kcp_sessions_count(t, 1001), 1);

    /* unknown and malformed ids find nothing */
    char other[KCP_SID_LEN + 1];
    memcpy(other, b, sizeof(other));
    other[0] = other[0] == 'A' ? 'B' : 'A';
    assert_false(kcp_sessions_get(t, other, 1001, &v));
    assert_false(kcp_sessions_get(t, "short", 1001, &v));
    assert_false(kcp_sessions_get(t, NULL, 1001, &v));

    /* arguments that cannot be stored */
    char c[KCP_SID_LEN + 1];
    char long_token[KCP_TOKEN_MAX + 2];
    memset(long_token, 't', sizeof(long_token) - 1);
    long_token[sizeof(long_token) - 1] = '\0';
    assert_int_equal(kcp_sessions_put(t, long_token, "carol", 1300, 1000, c), -1);
    assert_int_equal(kcp_sessions_put(t, "", "carol", 1300, 1000, c), -1);
    assert_int_equal(kcp_sessions_put(NULL, "x", "carol", 1300, 1000, c), -1);
    kcp_sessions_free(t);
    assert_null(kcp_sessions_new(0));
}

static void test_sessions_expire(void **state)
{
    (void)state;
    struct kcp_sessions *t = kcp_sessions_new(4);
    assert_non_null(t);
    char a[KCP_SID_LEN + 1];
    assert_int_equal(kcp_sessions_put(t, "tok", "alice", 1300, 1000, a), 0);
    struct kcp_session_view v;
    assert_true(kcp_sessions_get(t, a, 1299, &v));
    assert_false(kcp_sessions_get(t, a, 1300, &v)); /* expiry is exclusive */
    assert_false(kcp_sessions_get(t, a, 1299, &v)); /* and the entry is gone */
    assert_int_equal(kcp_sessions_count(t, 1000), 0);
    kcp_sessions_free(t);
}

static void test_sessions_bound(void **state)
{
    (void)state;
    struct kcp_sessions *t = kcp_sessions_new(2);
    assert_non_null(t);
    char a[KCP_SID_LEN + 1], b[KCP_SID_LEN + 1], c[KCP_SID_LEN + 1], d[KCP_SID_LEN + 1];
    struct kcp_session_view v;
    assert_int_equal(kcp_sessions_put(t, "ta", "a", 2000, 1000, a), 0);
    assert_int_equal(kcp_sessions_put(t, "tb", "b", 1500, 1000, b), 0);
    /* full of live entries: the one ending soonest (b) makes room */
    assert_int_equal(kcp_sessions_put(t, "tc", "c", 1800, 1000, c), 0);
    assert_int_equal(kcp_sessions_count(t, 1000), 2);
    assert_false(kcp_sessions_get(t, b, 1001, &v));
    assert_true(kcp_sessions_get(t, a, 1001, &v));
    assert_true(kcp_sessions_get(t, c, 1001, &v));
    /* an expired entry goes before any live one */
    assert_int_equal(kcp_sessions_put(t, "td", "d", 3000, 1900, d), 0);
    assert_true(kcp_sessions_get(t, a, 1900, &v));
    assert_true(kcp_sessions_get(t, d, 1900, &v));
    assert_false(kcp_sessions_get(t, c, 1900, &v));
    kcp_sessions_free(t);
}

/* ---- routes that answer without k_proxy ---- */

struct fixture {
    struct kcp_portal p;
    char index[16], js[16], css[16];
};

static int route_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    /* a port nothing listens on: any call that should not happen fails loudly */
    f->p.proxy = (struct kcp_proxy_cfg){.base_url = "http://127.0.0.1:1", .timeout_ms = 500};
    f->p.sessions = kcp_sessions_new(8);
    f->p.listen_host = "127.0.0.1";
    snprintf(f->index, sizeof(f->index), "<html>");
    snprintf(f->js, sizeof(f->js), "js();");
    snprintf(f->css, sizeof(f->css), "b{}");
    f->p.index_html = (struct kcp_asset){f->index, strlen(f->index)};
    f->p.app_js = (struct kcp_asset){f->js, strlen(f->js)};
    f->p.style_css = (struct kcp_asset){f->css, strlen(f->css)};
    *state = f;
    return f->p.sessions ? 0 : -1;
}

static int route_teardown(void **state)
{
    struct fixture *f = *state;
    kcp_sessions_free(f->p.sessions);
    free(f);
    return 0;
}

/* One request; returns the reply's status and leaves the reply in out. */
static int call(struct fixture *f, const char *method, const char *path, const char *body,
                const struct kcp_headers *h, struct ksvc_response *out)
{
    struct ksvc_request req = {.method = method, .path = path, .body = body ? body : ""};
    req.body_len = strlen(req.body);
    struct kcp_headers none = {.host = "127.0.0.1:8766"};
    memset(out, 0, sizeof(*out));
    kcp_handle(&f->p, &req, h ? h : &none, out);
    return out->status;
}

static const char *error_of(const struct ksvc_response *r)
{
    return json_string_value(json_object_get(r->body, "error"));
}

static void reply_free(struct ksvc_response *r)
{
    json_decref(r->body);
    json_decref(r->log);
}

static void test_route_static(void **state)
{
    struct fixture *f = *state;
    struct ksvc_response r;
    assert_int_equal(call(f, "GET", "/", NULL, NULL, &r), 200);
    assert_non_null(strstr(r.content_type, "text/html"));
    assert_int_equal(r.raw_len, strlen("<html>"));
    assert_memory_equal(r.raw, "<html>", r.raw_len);
    reply_free(&r);
    assert_int_equal(call(f, "GET", "/app.js", NULL, NULL, &r), 200);
    assert_memory_equal(r.raw, "js();", r.raw_len);
    reply_free(&r);
    assert_int_equal(call(f, "POST", "/", NULL, NULL, &r), 405);
    assert_string_equal(r.allow, "GET, HEAD");
    reply_free(&r);
    assert_int_equal(call(f, "GET", "/nothing", NULL, NULL, &r), 404);
    assert_string_equal(error_of(&r), "not_found");
    reply_free(&r);
}

static void test_route_methods_and_origin(void **state)
{
    struct fixture *f = *state;
    struct ksvc_response r;
    assert_int_equal(call(f, "GET", "/api/login", NULL, NULL, &r), 405);
    assert_string_equal(r.allow, "POST");
    reply_free(&r);
    assert_int_equal(call(f, "POST", "/api/users", NULL, NULL, &r), 405);
    assert_string_equal(r.allow, "GET");
    reply_free(&r);
    struct kcp_headers evil = {.origin = "http://evil.example", .host = "127.0.0.1:8766"};
    assert_int_equal(call(f, "POST", "/api/register", "{\"username\":\"a\"}", &evil, &r), 403);
    assert_string_equal(error_of(&r), "cross_origin");
    reply_free(&r);
    /* without a Host header, or under a name that is not ours: 421 */
    struct kcp_headers no_host = {.origin = "http://127.0.0.1:8766"};
    assert_int_equal(call(f, "POST", "/api/logout", NULL, &no_host, &r), 421);
    assert_string_equal(error_of(&r), "unknown_host");
    reply_free(&r);
    struct kcp_headers rebound = {.host = "evil.example:8766"};
    assert_int_equal(call(f, "GET", "/", NULL, &rebound, &r), 421);
    assert_null(r.raw);
    reply_free(&r);
    assert_int_equal(call(f, "POST", "/api/login", "{\"username\":\"a\"}", &rebound, &r), 421);
    reply_free(&r);
    /* the same origin passes the check and meets the next one */
    struct kcp_headers same = {.origin = "http://127.0.0.1:8766", .host = "127.0.0.1:8766"};
    assert_int_equal(call(f, "POST", "/api/logout", NULL, &same, &r), 401);
    assert_string_equal(error_of(&r), "not_logged_in");
    assert_string_equal(r.set_cookie, "");
    reply_free(&r);
}

static void test_route_validation_before_proxy(void **state)
{
    struct fixture *f = *state;
    struct ksvc_response r;
    assert_int_equal(call(f, "POST", "/api/register", "{\"username\":\"bad name\"}", NULL, &r),
                     400);
    assert_string_equal(error_of(&r), "bad_username");
    reply_free(&r);
    assert_int_equal(call(f, "POST", "/api/login", "nope", NULL, &r), 400);
    assert_string_equal(error_of(&r), "bad_json");
    reply_free(&r);
    struct kcp_headers form = {.content_type = "application/x-www-form-urlencoded",
                               .host = "localhost:8766"};
    assert_int_equal(call(f, "POST", "/api/unregister", "username=a", &form, &r), 415);
    assert_string_equal(error_of(&r), "unsupported_media_type");
    reply_free(&r);
}

static void test_route_without_session(void **state)
{
    struct fixture *f = *state;
    struct ksvc_response r;
    /* no cookie: status says inactive, counter and logout are refused */
    assert_int_equal(call(f, "GET", "/api/session", NULL, NULL, &r), 200);
    assert_true(json_is_false(json_object_get(r.body, "active")));
    reply_free(&r);
    assert_int_equal(call(f, "POST", "/api/counter", NULL, NULL, &r), 401);
    assert_string_equal(error_of(&r), "not_logged_in");
    reply_free(&r);
    /* a cookie the table does not know is no session either */
    struct kcp_headers h = {.cookie = "kcp_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                            .host = "127.0.0.1"};
    assert_int_equal(call(f, "POST", "/api/counter", NULL, &h, &r), 401);
    assert_string_equal(error_of(&r), "not_logged_in");
    reply_free(&r);
}

static void test_proxy_error_passthrough(void **state)
{
    (void)state;
    int status = 0;
    /* a denied login: status, code, message and upstream_called kept */
    json_t *in = json_pack("{s:s, s:s, s:b, s:s}", "error", "card_denied", "message",
                           "the card refused", "upstream_called", 0, "session_token", "leak");
    json_t *out = kcp_proxy_error_reply(401, in, &status);
    assert_int_equal(status, 401);
    assert_string_equal(json_string_value(json_object_get(out, "error")), "card_denied");
    assert_string_equal(json_string_value(json_object_get(out, "message")), "the card refused");
    assert_true(json_is_false(json_object_get(out, "upstream_called")));
    assert_null(json_object_get(out, "session_token")); /* only the error members pass */
    json_decref(out);
    json_decref(in);

    in = json_pack("{s:s, s:s}", "error", "upstream_timeout", "message", "slow");
    out = kcp_proxy_error_reply(504, in, &status);
    assert_int_equal(status, 504);
    assert_null(json_object_get(out, "upstream_called"));
    json_decref(out);
    json_decref(in);

    /* not an error object, or not an error status: 502 bad_proxy_answer */
    out = kcp_proxy_error_reply(500, NULL, &status);
    assert_int_equal(status, 502);
    assert_string_equal(json_string_value(json_object_get(out, "error")), "bad_proxy_answer");
    json_decref(out);
    in = json_pack("{s:i, s:s}", "error", 3, "message", "x");
    out = kcp_proxy_error_reply(400, in, &status);
    assert_int_equal(status, 502);
    json_decref(out);
    json_decref(in);
    in = json_pack("{s:s, s:s}", "error", "x", "message", "y");
    out = kcp_proxy_error_reply(302, in, &status);
    assert_int_equal(status, 502);
    json_decref(out);
    json_decref(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cookie_found_among_others),
        cmocka_unit_test(test_cookie_absent_or_malformed),
        cmocka_unit_test(test_sid_shape),
        cmocka_unit_test(test_username_rules),
        cmocka_unit_test(test_username_body),
        cmocka_unit_test(test_host_names),
        cmocka_unit_test(test_static_assets),
        cmocka_unit_test(test_sessions_put_get_remove),
        cmocka_unit_test(test_sessions_expire),
        cmocka_unit_test(test_sessions_bound),
        cmocka_unit_test(test_proxy_error_passthrough),
        cmocka_unit_test_setup_teardown(test_route_static, route_setup, route_teardown),
        cmocka_unit_test_setup_teardown(test_route_methods_and_origin, route_setup, route_teardown),
        cmocka_unit_test_setup_teardown(test_route_validation_before_proxy, route_setup,
                                        route_teardown),
        cmocka_unit_test_setup_teardown(test_route_without_session, route_setup, route_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
