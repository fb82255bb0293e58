/* The one log line per request, from a real server over a real socket: it
 * parses as JSON with no key twice, its fixed fields (status, ms,
 * bytes_in, ...) are the server's even when a handler names the same keys,
 * the handler's other fields follow them, and ms has three decimals. The
 * flat members and bodies of the hot paths (ksvc_log_int/str,
 * ksvc_reply_flat) give the same lines and byte for byte jansson's answer,
 * also when they do not fit a flat object, mix with jansson members, or are
 * set on both sides of ksvc_defer. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>

#include "services/common/http.h"
#include "services/common/log.h"

/* The flat paths; true when path was one of them. */
static bool flat_handler(const struct ksvc_request *req, struct ksvc_response *resp)
{
    if (strcmp(req->path, "/flat") == 0) {
        ksvc_log_int(resp, "note", 7);
        ksvc_log_str(resp, "ref", "abcDEF_-123");
        ksvc_log_str(resp, "status", "forged"); /* the server's wins */
        ksvc_log_int(resp, "neg", INT64_MIN);
        ksvc_reply_flat(resp, 200);
        ksvc_body_int(resp, "counter", 5);
        ksvc_body_str(resp, "username", "alice");
        ksvc_body_int(resp, "expires_in", -3);
        return true;
    }
    if (strcmp(req->path, "/bare") == 0 || strcmp(req->path, "/bare-then-error") == 0) {
        ksvc_reply_flat(resp, 200);
        ksvc_body_int(resp, "counter", 1);
        resp->bare_headers = true;
        resp->header_name = "Kcard-Test";
        snprintf(resp->header_value, sizeof(resp->header_value), "%s", "1 r");
        if (strcmp(req->path, "/bare-then-error") == 0) /* a new answer: the usual headers */
            ksvc_reply_error(resp, 409, "conflict", "not bare");
        return true;
    }
    if (strcmp(req->path, "/flat-bad") == 0) {
        /* not UTF-8: left out, as jansson leaves it out; the rest stays */
        ksvc_log_str(resp, "bad", "\xff\xfe");
        ksvc_log_int(resp, "good", 1);
        ksvc_log_str(resp, "none", NULL);
        ksvc_reply_flat(resp, 200);
        ksvc_body_str(resp, "bad", "\xff\xfe");
        ksvc_body_int(resp, "good", 1);
        return true;
    }
    if (strcmp(req->path, "/flat-mixed") == 0) {
        ksvc_log_str(resp, "name", "Jos\xc3\xa9 \"q\"");
        ksvc_log_int(resp, "a", 1);
        ksvc_log_int(resp, "b", 2);
        ksvc_log_int(resp, "c", 3);
        ksvc_log_int(resp, "d", 4); /* a fifth: all move to jansson */
        ksvc_log_field(resp, "took", json_real(1.5));
        ksvc_log_int(resp, "e", 5); /* after a jansson member: jansson's too */
        ksvc_reply_flat(resp, 200);
        ksvc_body_str(resp, "name", "say \"hi\"");
        ksvc_body_int(resp, "a", 1);
        ksvc_body_int(resp, "b", 2);
        ksvc_body_int(resp, "c", 3);
        ksvc_body_int(resp, "d", 4);
        ksvc_body_int(resp, "a", 10); /* replaced, after the move to jansson */
        return true;
    }
    if (strcmp(req->path, "/flat-defer") == 0 || strcmp(req->path, "/flat-defer-json") == 0) {
        ksvc_log_str(resp, "early", "e1");
        ksvc_log_int(resp, "dup", 1);
        struct ksvc_pending *p = ksvc_defer(req);
        assert_non_null(p);
        struct ksvc_response later;
        memset(&later, 0, sizeof(later));
        ksvc_log_int(&later, "dup", 2);
        if (strcmp(req->path, "/flat-defer-json") == 0)
            ksvc_log_field(&later, "late", json_real(0.5));
        else
            ksvc_log_str(&later, "late", "l1");
        ksvc_reply_flat(&later, 202);
        ksvc_body_int(&later, "x", 1);
        ksvc_complete(p, &later);
        return true;
    }
    return false;
}

static void handler(void *ctx, const struct ksvc_request *req, struct ksvc_response *resp)
{
    (void)ctx;
    if (flat_handler(req, resp))
        return;
    if (strcmp(req->path, "/forge") == 0) {
        /* fields a handler must not be able to forge */
        ksvc_log_field(resp, "status", json_string("forged"));
        ksvc_log_field(resp, "ms", json_integer(-1));
        ksvc_log_field(resp, "remote", json_string("10.9.9.9"));
    }
    if (strcmp(req->path, "/mixed") == 0) {
        /* what is not an integer or plain ASCII goes through jansson */
        ksvc_log_field(resp, "name", json_string("Jos\xc3\xa9 \"q\" \\"));
        ksvc_log_field(resp, "took", json_real(1.5));
        ksvc_log_field(resp, "nested", json_pack("{s:i}", "a", 1));
    }
    ksvc_log_field(resp, "note", json_integer(7));
    ksvc_log_field(resp, "ref", json_string("abcDEF_-123"));
    ksvc_log_field(resp, "big", json_integer(INT64_MAX));
    ksvc_log_field(resp, "neg", json_integer(INT64_MIN));
    ksvc_reply(resp, 201, json_pack("{s:b}", "ok", 1));
}

static char last_answer[2048]; /* the whole of post_body's last answer */

/* One request on a new connection; the status code of the answer, and
 * its body into body_out (when not NULL). */
static int post_body(int port, const char *path, const char *body, char *body_out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     path, strlen(body), body);
    assert_int_equal(write(fd, req, (size_t)n), n);
    char answer[2048];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof(answer) - 1 && (r = read(fd, answer + got, sizeof(answer) - 1 - got)) > 0)
        got += (size_t)r;
    answer[got] = '\0';
    close(fd);
    int status = 0;
    assert_int_equal(sscanf(answer, "HTTP/1.1 %d", &status), 1);
    snprintf(last_answer, sizeof(last_answer), "%s", answer);
    if (body_out != NULL) {
        const char *b = strstr(answer, "\r\n\r\n");
        assert_non_null(b);
        snprintf(body_out, cap, "%s", b + 4);
    }
    return status;
}

static int post(int port, const char *path, const char *body)
{
    return post_body(port, path, body, NULL, 0);
}

/* The log line of path in the captured log: parsed, duplicate keys refused. */
static json_t *line_of(const char *log_path, const char *path, char *raw, size_t rawlen)
{
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    char buf[2048], want[128];
    snprintf(want, sizeof(want), "\"path\":\"%s\"", path);
    json_t *found = NULL;
    while (found == NULL && fgets(buf, sizeof(buf), f) != NULL) {
        if (strstr(buf, want) == NULL || strstr(buf, "\"event\":\"request\"") == NULL)
            continue;
        json_error_t e;
        found = json_loads(buf, JSON_REJECT_DUPLICATES, &e);
        if (found == NULL)
            fail_msg("the log line is not JSON with unique keys (%s): %s", e.text, buf);
        snprintf(raw, rawlen, "%s", buf);
    }
    fclose(f);
    assert_non_null(found);
    return found;
}

static void test_request_log_line(void **state)
{
    (void)state;
    char log_path[] = "/tmp/kcard-test-request-log.XXXXXX";
    int log_fd = mkstemp(log_path);
    assert_true(log_fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(log_fd, STDERR_FILENO) >= 0);
    ksvc_log_init("test_log");

    struct ksvc_server_cfg cfg = {
        .service = "test_log", .host = "127.0.0.1", .threads = 1, .workers = 1, .handler = handler};
    struct ksvc_server *s = NULL;
    char err[256] = "";
    assert_int_equal(ksvc_server_start(&cfg, &s, err, sizeof(err)), 0);
    int port = ksvc_server_port(s);
    int plain = post(port, "/plain", "{\"a\":1}");
    int forged = post(port, "/forge", "{}");
    int mixed = post(port, "/mixed", "{}");
    char flat_body[512], flat_mixed_body[512], defer_body[512], defer_json_body[512];
    int flat = post_body(port, "/flat", "", flat_body, sizeof(flat_body));
    int flat_mixed = post_body(port, "/flat-mixed", "", flat_mixed_body, sizeof(flat_mixed_body));
    int defer = post_body(port, "/flat-defer", "", defer_body, sizeof(defer_body));
    int defer_json =
        post_body(port, "/flat-defer-json", "", defer_json_body, sizeof(defer_json_body));
    char flat_bad_body[512];
    int flat_bad = post_body(port, "/flat-bad", "", flat_bad_body, sizeof(flat_bad_body));
    int bare = post(port, "/bare", "");
    bool bare_ok = strstr(last_answer, "X-Request-Id") == NULL &&
                   strstr(last_answer, "nosniff") == NULL &&
                   strstr(last_answer, "Content-Type: application/json") != NULL &&
                   strstr(last_answer, "Kcard-Test: 1 r\r\n") != NULL;
    int bare_error = post(port, "/bare-then-error", "");
    bool bare_error_ok = strstr(last_answer, "X-Request-Id: ") != NULL &&
                         strstr(last_answer, "X-Content-Type-Options: nosniff") != NULL &&
                         strstr(last_answer, "Cache-Control: no-store") != NULL &&
                         strstr(last_answer, "Kcard-Test") == NULL;
    ksvc_server_stop(s);
    ksvc_log_flush(5000);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    assert_int_equal(plain, 201);
    assert_int_equal(forged, 201);
    assert_int_equal(mixed, 201);
    assert_int_equal(flat, 200);
    assert_int_equal(flat_bad, 200);
    assert_string_equal(flat_bad_body, "{\"good\":1}\n");
    assert_int_equal(bare, 200);
    assert_true(bare_ok);
    assert_int_equal(bare_error, 409);
    assert_true(bare_error_ok);
    assert_int_equal(flat_mixed, 200);
    assert_int_equal(defer, 202);
    assert_int_equal(defer_json, 202);
    /* byte for byte what jansson's compact dump gives, and a newline */
    assert_string_equal(flat_body, "{\"counter\":5,\"username\":\"alice\",\"expires_in\":-3}\n");
    assert_string_equal(flat_mixed_body,
                        "{\"name\":\"say \\\"hi\\\"\",\"a\":10,\"b\":2,\"c\":3,\"d\":4}\n");
    assert_string_equal(defer_body, "{\"x\":1}\n");
    assert_string_equal(defer_json_body, "{\"x\":1}\n");

    char raw[2048];
    json_t *j = line_of(log_path, "/plain", raw, sizeof(raw));
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 201);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_in")), 7);
    assert_string_equal(json_string_value(json_object_get(j, "remote")), "127.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(j, "note")), 7);
    assert_string_equal(json_string_value(json_object_get(j, "ref")), "abcDEF_-123");
    assert_true(json_integer_value(json_object_get(j, "big")) == INT64_MAX);
    assert_true(json_integer_value(json_object_get(j, "neg")) == INT64_MIN);
    assert_true(json_is_real(json_object_get(j, "ms")));
    assert_true(json_real_value(json_object_get(j, "ms")) >= 0.0);
    /* three decimals, as "ms":0.123 */
    const char *ms = strstr(raw, "\"ms\":");
    assert_non_null(ms);
    const char *dot = strchr(ms, '.');
    assert_non_null(dot);
    assert_true(dot[1] >= '0' && dot[1] <= '9' && dot[2] >= '0' && dot[2] <= '9' && dot[3] >= '0' &&
                dot[3] <= '9' && dot[4] == ',');
    json_decref(j);

    j = line_of(log_path, "/forge", raw, sizeof(raw));
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 201);
    assert_true(json_is_real(json_object_get(j, "ms")));
    assert_string_equal(json_string_value(json_object_get(j, "remote")), "127.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_in")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "note")), 7);
    json_decref(j);

    /* UTF-8, quotes, a real and an object: the same values come back */
    j = line_of(log_path, "/mixed", raw, sizeof(raw));
    assert_string_equal(json_string_value(json_object_get(j, "name")), "Jos\xc3\xa9 \"q\" \\");
    assert_true(json_real_value(json_object_get(j, "took")) == 1.5);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "nested"), "a")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "ref")), "abcDEF_-123");
    assert_true(json_integer_value(json_object_get(j, "neg")) == INT64_MIN);
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 201);
    json_decref(j);

    j = line_of(log_path, "/flat", raw, sizeof(raw));
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "note")), 7);
    assert_string_equal(json_string_value(json_object_get(j, "ref")), "abcDEF_-123");
    assert_true(json_integer_value(json_object_get(j, "neg")) == INT64_MIN);
    assert_string_equal(json_string_value(json_object_get(j, "remote")), "127.0.0.1");
    json_decref(j);

    j = line_of(log_path, "/flat-bad", raw, sizeof(raw));
    assert_int_equal(json_integer_value(json_object_get(j, "good")), 1);
    assert_null(json_object_get(j, "bad"));
    assert_null(json_object_get(j, "none"));
    json_decref(j);

    j = line_of(log_path, "/flat-mixed", raw, sizeof(raw));
    assert_string_equal(json_string_value(json_object_get(j, "name")), "Jos\xc3\xa9 \"q\"");
    assert_int_equal(json_integer_value(json_object_get(j, "a")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "d")), 4);
    assert_int_equal(json_integer_value(json_object_get(j, "e")), 5);
    assert_true(json_real_value(json_object_get(j, "took")) == 1.5);
    json_decref(j);

    /* the members set before ksvc_defer, then those of the answer, which win */
    j = line_of(log_path, "/flat-defer", raw, sizeof(raw));
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 202);
    assert_string_equal(json_string_value(json_object_get(j, "early")), "e1");
    assert_string_equal(json_string_value(json_object_get(j, "late")), "l1");
    assert_int_equal(json_integer_value(json_object_get(j, "dup")), 2);
    json_decref(j);
    j = line_of(log_path, "/flat-defer-json", raw, sizeof(raw));
    assert_string_equal(json_string_value(json_object_get(j, "early")), "e1");
    assert_true(json_real_value(json_object_get(j, "late")) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(j, "dup")), 2);
    json_decref(j);
    close(log_fd);
    unlink(log_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_log_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
