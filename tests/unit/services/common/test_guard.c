/* The request guard (services/common/guard.c): Content-Type, Origin and Host
 * decisions, with fixed local addresses (no sockets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "services/common/guard.h"

static const char *const locals[] = {"10.20.0.2", "fd00::2", NULL};

static int setup(void **state)
{
    static struct ksvc_guard g;
    ksvc_guard_init(&g, "127.0.0.1", true);
    ksvc_guard_set_local(&g, locals);
    *state = &g;
    return 0;
}

static int teardown(void **state)
{
    ksvc_guard_free(*state);
    return 0;
}

static void test_json_type(void **state)
{
    (void)state;
    assert_true(ksvc_guard_json_type("application/json"));
    assert_true(ksvc_guard_json_type("Application/JSON"));
    assert_true(ksvc_guard_json_type("application/json; charset=utf-8"));
    assert_true(ksvc_guard_json_type("application/json ;charset=UTF-8"));
    assert_false(ksvc_guard_json_type("application/jsonx"));
    assert_false(ksvc_guard_json_type("application/json-patch+json"));
    assert_false(ksvc_guard_json_type("text/plain"));
    assert_false(ksvc_guard_json_type("application/x-www-form-urlencoded"));
    assert_false(ksvc_guard_json_type("multipart/form-data; boundary=x"));
    assert_false(ksvc_guard_json_type(""));
    assert_false(ksvc_guard_json_type(NULL));
}

static void test_host_name(void **state)
{
    (void)state;
    char n[64];
    assert_true(ksvc_guard_host_name("LocalHost:8770", n, sizeof(n)));
    assert_string_equal(n, "localhost");
    assert_true(ksvc_guard_host_name("[::1]:8770", n, sizeof(n)));
    assert_string_equal(n, "::1");
    assert_true(ksvc_guard_host_name("10.0.0.1", n, sizeof(n)));
    assert_string_equal(n, "10.0.0.1");
    assert_false(ksvc_guard_host_name("127.0.0.1:", n, sizeof(n)));
    assert_false(ksvc_guard_host_name("127.0.0.1:99999", n, sizeof(n)));
    assert_false(ksvc_guard_host_name("127.0.0.1:80x", n, sizeof(n)));
    assert_false(ksvc_guard_host_name("[::1", n, sizeof(n)));
    assert_false(ksvc_guard_host_name("[::1]x", n, sizeof(n)));
    assert_false(ksvc_guard_host_name("[evil.example]", n, sizeof(n)));
    assert_false(ksvc_guard_host_name("a b", n, sizeof(n)));
    assert_false(ksvc_guard_host_name("", n, sizeof(n)));
    assert_false(ksvc_guard_host_name(NULL, n, sizeof(n)));
    assert_false(ksvc_guard_host_name(
        "averyveryveryveryveryveryveryveryveryveryveryveryveryverylong", n, 16));
}

static void test_hosts(void **state)
{
    struct ksvc_guard *g = *state;
    /* loopback names and literals, any port (forwards change it) */
    assert_true(ksvc_guard_host_ok(g, "127.0.0.1:8770"));
    assert_true(ksvc_guard_host_ok(g, "127.0.0.1:9771"));
    assert_true(ksvc_guard_host_ok(g, "127.1.2.3"));
    assert_true(ksvc_guard_host_ok(g, "localhost:8770"));
    assert_true(ksvc_guard_host_ok(g, "LOCALHOST"));
    assert_true(ksvc_guard_host_ok(g, "[::1]:8770"));
    /* this machine's interfaces */
    assert_true(ksvc_guard_host_ok(g, "10.20.0.2:8771"));
    assert_true(ksvc_guard_host_ok(g, "[fd00::2]:8771"));
    /* DNS rebinding: a foreign name; foreign addresses; malformed */
    assert_false(ksvc_guard_host_ok(g, "evil.example:8770"));
    assert_false(ksvc_guard_host_ok(g, "127.0.0.1.evil.example"));
    assert_false(ksvc_guard_host_ok(g, "localhost.evil.example"));
    assert_false(ksvc_guard_host_ok(g, "10.20.0.3"));
    assert_false(ksvc_guard_host_ok(g, "[fd00::3]"));
    assert_false(ksvc_guard_host_ok(g, "0.0.0.0:8770"));
    assert_false(ksvc_guard_host_ok(g, "127.0.0.1:"));
    assert_false(ksvc_guard_host_ok(g, NULL));
    assert_false(ksvc_guard_host_ok(g, ""));

    char err[256];
    assert_int_equal(ksvc_guard_add_host(g, "Proxy.Example:443", err, sizeof(err)), 0);
    assert_true(ksvc_guard_host_ok(g, "proxy.example"));
    assert_true(ksvc_guard_host_ok(g, "PROXY.example:8771"));
    assert_false(ksvc_guard_host_ok(g, "www.proxy.example"));
    assert_int_equal(ksvc_guard_add_host(g, "bad name", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--allowed-host"));
    assert_int_equal(ksvc_guard_add_host(g, "", err, sizeof(err)), -1);
}

static void test_listen_host(void **state)
{
    (void)state;
    struct ksvc_guard g;
    ksvc_guard_init(&g, "0.0.0.0", false);
    ksvc_guard_set_local(&g, locals);
    /* listening everywhere is no reason to answer to any name */
    assert_false(ksvc_guard_host_ok(&g, "anything.example:80"));
    assert_true(ksvc_guard_host_ok(&g, "10.20.0.2:80"));
    assert_true(ksvc_guard_host_ok(&g, "localhost:80"));
    ksvc_guard_free(&g);
}

static void test_origins(void **state)
{
    struct ksvc_guard *g = *state;
    char err[256];
    assert_true(ksvc_guard_origin_ok(g, NULL));
    assert_false(ksvc_guard_origin_ok(g, "https://evil.example"));
    assert_false(ksvc_guard_origin_ok(g, "null"));
    assert_int_equal(ksvc_guard_add_origin(g, "https://Portal.Example:8766", err, sizeof(err)), 0);
    assert_true(ksvc_guard_origin_ok(g, "https://portal.example:8766"));
    assert_false(ksvc_guard_origin_ok(g, "http://portal.example:8766"));
    assert_false(ksvc_guard_origin_ok(g, "https://portal.example"));
    assert_int_equal(ksvc_guard_add_origin(g, "https://portal.example/path", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--allowed-origin"));
    assert_int_equal(ksvc_guard_add_origin(g, "ftp://portal.example", err, sizeof(err)), -1);
    assert_int_equal(ksvc_guard_add_origin(g, "portal.example", err, sizeof(err)), -1);
}

static void decide(struct ksvc_guard *g, const char *method, const char *host, const char *origin,
                   const char *type, const char *auth, size_t body_len, int want_status,
                   const char *want_code)
{
    struct ksvc_guard_verdict v;
    ksvc_guard_decide(g, method, host, origin, type, auth, body_len, &v);
    assert_int_equal(v.status, want_status);
    if (want_code == NULL)
        assert_null(v.code);
    else
        assert_string_equal(v.code, want_code);
    if (want_status != 0)
        assert_true(v.message[0] != '\0');
}

static void test_decide(void **state)
{
    struct ksvc_guard *g = *state;
    const char *h = "127.0.0.1:8770", *json = "application/json";
    decide(g, "POST", h, NULL, json, NULL, 20, 0, NULL);
    decide(g, "POST", h, NULL, "application/json; charset=utf-8", NULL, 20, 0, NULL);
    /* what a cross-site form or fetch without preflight sends */
    decide(g, "POST", h, NULL, NULL, NULL, 20, 415, "unsupported_media_type");
    decide(g, "POST", h, NULL, "text/plain", NULL, 0, 415, "unsupported_media_type");
    decide(g, "POST", h, NULL, "text/plain", NULL, 20, 415, "unsupported_media_type");
    decide(g, "POST", h, NULL, "application/jsonx", NULL, 20, 415, "unsupported_media_type");
    /* the runbook's bearer-only calls: empty body, no type; nothing to parse */
    decide(g, "POST", h, NULL, NULL, "Bearer abc", 0, 0, NULL);
    decide(g, "POST", h, NULL, NULL, NULL, 0, 0, NULL);
    decide(g, "POST", h, NULL, NULL, "Bearer abc", 5, 415, "unsupported_media_type");
    decide(g, "POST", h, NULL, "text/plain", "Bearer abc", 0, 415, "unsupported_media_type");
    /* Origin before Content-Type, Host before both */
    decide(g, "POST", h, "https://evil.example", NULL, NULL, 20, 403, "origin_not_allowed");
    decide(g, "POST", h, "https://evil.example", json, "Bearer abc", 20, 403, "origin_not_allowed");
    decide(g, "GET", h, "https://evil.example", NULL, NULL, 0, 403, "origin_not_allowed");
    decide(g, "POST", "evil.example:8770", "https://evil.example", NULL, NULL, 20, 421,
           "misdirected_request");
    decide(g, "POST", "evil.example:8770", NULL, json, NULL, 20, 421, "misdirected_request");
    decide(g, "GET", "evil.example", NULL, NULL, NULL, 0, 421, "misdirected_request");
    decide(g, "GET", NULL, NULL, NULL, NULL, 0, 421, "misdirected_request");
    /* GETs need no type */
    decide(g, "GET", h, NULL, NULL, NULL, 0, 0, NULL);

    struct ksvc_guard portal;
    ksvc_guard_init(&portal, "127.0.0.1", false);
    ksvc_guard_set_local(&portal, locals);
    decide(&portal, "POST", h, NULL, NULL, NULL, 20, 0, NULL);
    decide(&portal, "POST", "evil.example", NULL, json, NULL, 20, 421, "misdirected_request");
    ksvc_guard_free(&portal);
}

static void test_check_outside_server(void **state)
{
    struct ksvc_guard *g = *state;
    /* no connection: no headers, so no Host: refused with a JSON error */
    struct ksvc_request req = {.method = "POST", .path = "/session/login", .body = ""};
    struct ksvc_response resp = {0};
    assert_false(ksvc_guard_check(g, &req, &resp));
    assert_int_equal(resp.status, 421);
    assert_string_equal(json_string_value(json_object_get(resp.body, "error")),
                        "misdirected_request");
    assert_string_equal(json_string_value(json_object_get(resp.log, "guard")),
                        "misdirected_request");
    json_decref(resp.body);
    json_decref(resp.log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_type),
        cmocka_unit_test(test_host_name),
        cmocka_unit_test_setup_teardown(test_hosts, setup, teardown),
        cmocka_unit_test(test_listen_host),
        cmocka_unit_test_setup_teardown(test_origins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decide, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_outside_server, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
