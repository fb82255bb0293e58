/* Unit tests of the services' HTTP layer pieces that need no socket: the
 * strict framing rules, the metrics tables (junk paths cannot crowd out a
 * service's own counters), the log ring and its drop count, error answers
 * for text that is not UTF-8, ksvc_defer outside a server, and the limit
 * options. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/common/http.h"
#include "services/common/log.h"
#include "services/common/metrics.h"
#include "services/common/svc_util.h"

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, v                                                                                       \
    }

static const char *fault(const char *version, const char *const (*h)[2], size_t n)
{
    return ksvc_framing_fault(version, h, n);
}

static void test_framing_accepts_ordinary_requests(void **state)
{
    (void)state;
    const char *const get[][2] = {H("Host", "x"), H("Accept", "*/*")};
    assert_null(fault("HTTP/1.1", get, 2));
    const char *const post[][2] = {H("host", "x"), H("content-length", "12")};
    assert_null(fault("HTTP/1.1", post, 2));
    const char *const chunked[][2] = {H("Host", "x"), H("Transfer-Encoding", "Chunked")};
    assert_null(fault("HTTP/1.1", chunked, 2));
    const char *const same[][2] = {H("Host", "x"), H("Content-Length", "5"),
                                   H("Content-Length", "5")};
    assert_null(fault("HTTP/1.1", same, 3));
    assert_null(fault("HTTP/1.0", NULL, 0)); /* HTTP/1.0 needs no Host */
}

static void test_framing_refuses_ambiguous_requests(void **state)
{
    (void)state;
    const char *const both[][2] = {H("Host", "x"), H("Content-Length", "4"),
                                   H("Transfer-Encoding", "chunked")};
    const char *why = fault("HTTP/1.1", both, 3);
    assert_non_null(why);
    assert_non_null(strstr(why, "Content-Length and Transfer-Encoding"));
    const char *const differ[][2] = {H("Host", "x"), H("Content-Length", "4"),
                                     H("content-length", "40")};
    why = fault("HTTP/1.1", differ, 3);
    assert_non_null(why);
    assert_non_null(strstr(why, "differing"));
    const char *const gzip[][2] = {H("Host", "x"), H("Transfer-Encoding", "gzip, chunked")};
    assert_non_null(strstr(fault("HTTP/1.1", gzip, 2), "chunked"));
    const char *const twice[][2] = {H("Host", "x"), H("Transfer-Encoding", "chunked"),
                                    H("Transfer-Encoding", "chunked")};
    assert_non_null(fault("HTTP/1.1", twice, 3));
    const char *const nohost[][2] = {H("Accept", "*/*")};
    assert_non_null(strstr(fault("HTTP/1.1", nohost, 1), "Host"));
    const char *const hosts[][2] = {H("Host", "a"), H("Host", "b")};
    assert_non_null(strstr(fault("HTTP/1.0", hosts, 2), "Host"));
}

static void test_junk_routes_cannot_crowd_out_service_metrics(void **state)
{
    (void)state;
    struct ksvc_metrics *m = ksvc_metrics_new("kcard_t");
    assert_non_null(m);
    char path[64], method[16];
    for (int i = 0; i < 20000; i++) { /* issue 10: random paths and methods */
        snprintf(path, sizeof(path), "/junk/%d", i);
        snprintf(method, sizeof(method), "M%d", i % 50);
        ksvc_metrics_request(m, path, method, 200 + i % 300, 0.001);
    }
    for (int i = 0; i < 100; i++) { /* and many service labels */
        char labels[64];
        snprintf(labels, sizeof(labels), "reason=\"r%d\"", i);
        ksvc_metric_add(m, "kcard_t_refused_total", "Refusals.", labels, 1);
    }
    ksvc_metric_add(m, "kcard_t_card_operations_total", "Card operations.",
                    "op=\"login\",outcome=\"card_denied\"", 1);
    char *text = ksvc_metrics_render(m);
    assert_non_null(text);
    assert_non_null(
        strstr(text, "\nkcard_t_card_operations_total{op=\"login\",outcome=\"card_denied\"} 1\n"));
    assert_non_null(strstr(text, "\nkcard_t_metrics_dropped_total 0\n"));
    /* 24 named routes at most, the rest under "other" with their methods folded */
    assert_non_null(strstr(text, "route=\"/junk/23\""));
    assert_null(strstr(text, "route=\"/junk/24\""));
    assert_non_null(strstr(text, "kcard_t_http_requests_total{route=\"other\",method=\"other\""));
    assert_null(strstr(text, "method=\"M1\""));
    free(text);
    ksvc_metrics_free(m);
}

static void test_request_counts_and_histogram(void **state)
{
    (void)state;
    struct ksvc_metrics *m = ksvc_metrics_new("kcard_t");
    assert_non_null(m);
    ksvc_metrics_request(m, "/counter/next", "POST", 200, 0.0005);
    ksvc_metrics_request(m, "/counter/next", "POST", 200, 0.2);
    ksvc_metrics_request(m, "/counter/next", "POST", 401, 0.002);
    ksvc_metric_set_total(m, "kcard_t_seen_total", "Seen.", "", 7);
    ksvc_metric_set_total(m, "kcard_t_seen_total", "Seen.", "", 9);
    char *text = ksvc_metrics_render(m);
    assert_non_null(text);
    assert_non_null(strstr(
        text,
        "kcard_t_http_requests_total{route=\"/counter/next\",method=\"POST\",code=\"200\"} 2\n"));
    assert_non_null(strstr(
        text,
        "kcard_t_http_requests_total{route=\"/counter/next\",method=\"POST\",code=\"401\"} 1\n"));
    assert_non_null(strstr(
        text,
        "kcard_t_http_request_duration_seconds_bucket{route=\"/counter/next\",le=\"0.001\"} 1\n"));
    assert_non_null(strstr(
        text,
        "kcard_t_http_request_duration_seconds_bucket{route=\"/counter/next\",le=\"0.25\"} 3\n"));
    assert_non_null(strstr(text, "# TYPE kcard_t_seen_total counter\nkcard_t_seen_total 9\n"));
    free(text);
    ksvc_metrics_free(m);
}

static void test_reply_error_with_bytes_that_are_not_utf8(void **state)
{
    (void)state;
    struct ksvc_response resp = {0};
    ksvc_reply_error(&resp, 404, "not_found", "no such endpoint: %s", "/\xff\xfe");
    assert_int_equal(resp.status, 404);
    assert_non_null(resp.body);
    assert_string_equal(json_string_value(json_object_get(resp.body, "message")),
                        "no such endpoint: /??");
    json_decref(resp.body);
    json_decref(resp.log);
}

static void test_defer_outside_a_server_is_refused(void **state)
{
    (void)state;
    struct ksvc_request req = {.method = "GET", .path = "/", .body = ""};
    assert_null(ksvc_defer(&req));
    assert_null(ksvc_request_header(&req, "Host"));
}

static void test_limit_options(void **state)
{
    (void)state;
    struct ksvc_limits l = {0};
    assert_int_equal(ksvc_limit_option("t", KSVC_OPT_MAX_CONNECTIONS, "300", &l), 1);
    assert_int_equal(ksvc_limit_option("t", KSVC_OPT_MAX_PER_ADDRESS, "30", &l), 1);
    assert_int_equal(ksvc_limit_option("t", KSVC_OPT_REQUEST_TIMEOUT, "3", &l), 1);
    assert_int_equal(l.max_connections, 300);
    assert_int_equal(l.max_per_address, 30);
    assert_int_equal(l.request_timeout_s, 3);
    assert_int_equal(ksvc_limit_option("t", 'p', "1", &l), 0);
    assert_int_equal(ksvc_limit_option("t", KSVC_OPT_MAX_CONNECTIONS, "0", &l), -1);
    assert_int_equal(ksvc_limit_option("t", KSVC_OPT_REQUEST_TIMEOUT, "3s", &l), -1);
    assert_int_equal(l.max_connections, 300);
}

static void test_listen_options(void **state)
{
    (void)state;
    struct ksvc_listen_opts o = {.host = "127.0.0.1", .port = 8780};
    assert_int_equal(ksvc_listen_option("t", KSVC_OPT_HOST, "::1", &o), 1);
    assert_int_equal(ksvc_listen_option("t", KSVC_OPT_PORT, "0", &o), 1);
    assert_int_equal(ksvc_listen_option("t", KSVC_OPT_PORT_FILE, "/tmp/p", &o), 1);
    assert_int_equal(ksvc_listen_option("t", KSVC_OPT_MAX_CONNECTIONS, "300", &o), 1);
    assert_string_equal(o.host, "::1");
    assert_int_equal(o.port, 0);
    assert_string_equal(o.port_file, "/tmp/p");
    assert_int_equal(o.limits.max_connections, 300);
    /* a bad value leaves the setting as it was */
    assert_int_equal(ksvc_listen_option("t", KSVC_OPT_PORT, "65536", &o), -1);
    assert_int_equal(ksvc_listen_option("t", KSVC_OPT_PORT, " 5", &o), -1);
    assert_int_equal(o.port, 0);
    assert_int_equal(ksvc_listen_option("t", 'x', "1", &o), 0);
    /* the TLS files go together */
    assert_int_equal(ksvc_listen_check("t", &o), 0);
    assert_int_equal(ksvc_listen_option("t", KSVC_OPT_TLS_CERT, "c.pem", &o), 1);
    assert_int_equal(ksvc_listen_check("t", &o), -1);
    assert_int_equal(ksvc_listen_option("t", KSVC_OPT_TLS_KEY, "k.pem", &o), 1);
    assert_int_equal(ksvc_listen_check("t", &o), 0);
    assert_string_equal(o.cert_file, "c.pem");
    assert_string_equal(o.key_file, "k.pem");
}

/* Runs last: it starts the logger thread with stderr sent to a file. */
static void test_log_ring_writes_every_line_in_order(void **state)
{
    (void)state;
    char path[] = "/tmp/kcard-test-http-log.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);

    char ts[32];
    ksvc_log_timestamp(ts);
    assert_int_equal(strlen(ts), 24); /* 2026-12-03T12:00:00.123Z */
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[23], 'Z');

    ksvc_log_init("unit");
    unsigned long long dropped = ksvc_log_dropped();
    char line[64];
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(line, sizeof(line), "{\"n\":%d}", i);
        ksvc_log_text(line, (size_t)n);
    }
    char *big = malloc(KSVC_LOG_LINE_MAX + 1);
    assert_non_null(big);
    memset(big, 'x', KSVC_LOG_LINE_MAX);
    ksvc_log_text(big, KSVC_LOG_LINE_MAX); /* too long: dropped and counted */
    free(big);
    ksvc_log("info", "done", json_pack("{s:i}", "lines", 2000));
    ksvc_log_flush(5000);
    assert_int_equal(ksvc_log_dropped(), dropped + 1);

    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[256];
    int expect = 0, done = 0;
    while (fgets(buf, sizeof(buf), f) != NULL) {
        int n = -1;
        if (sscanf(buf, "{\"n\":%d}", &n) == 1) {
            assert_int_equal(n, expect);
            expect++;
        } else if (strstr(buf, "\"service\":\"unit\"") && strstr(buf, "\"event\":\"done\"")) {
            done++;
        }
    }
    fclose(f);
    close(fd);
    unlink(path);
    assert_int_equal(expect, 2000);
    assert_int_equal(done, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing_accepts_ordinary_requests),
        cmocka_unit_test(test_framing_refuses_ambiguous_requests),
        cmocka_unit_test(test_junk_routes_cannot_crowd_out_service_metrics),
        cmocka_unit_test(test_request_counts_and_histogram),
        cmocka_unit_test(test_reply_error_with_bytes_that_are_not_utf8),
        cmocka_unit_test(test_defer_outside_a_server_is_refused),
        cmocka_unit_test(test_limit_options),
        cmocka_unit_test(test_listen_options),
        cmocka_unit_test(test_log_ring_writes_every_line_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
