/* chain-regress --analyze: the recorded-line parser (every field's shape
 * and range), the order of the lines, and a recorded run judged into the
 * same verdict and exit codes as a run of chain-regress's own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "regression/chain_regress.h"

#define LOGIN_OK                                                                                   \
    "login 0 200 0.012 1 {\"session_token\":\"tok_abc-123\",\"username\":\"alice\","               \
    "\"auth_mode\":\"card_probe\",\"expires_in\":300}"
#define STATUS_OK "status 0 200 0.002 0 {\"active\":true,\"username\":\"alice\",\"requests\":1}"
#define LOGOUT_OK "logout 0 200 0.002 0 {\"logged_out\":true,\"username\":\"alice\"}"
#define AFTER_OK "after_logout 0 401 0.001 0 {\"error\":\"invalid_session\"}"

struct fixture {
    struct kcr_opts o;
    struct kcr_run r;
    struct kcr_input in;
    char err[512];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char *argv[] = {(char *)"chain-regress", (char *)"--requests", (char *)"3", NULL};
    char err[128];

    if (f == NULL || kcr_opts_parse(3, argv, NULL, &f->o, err, sizeof(err)) != KCR_OPTS_RUN)
        return -1;
    f->r.samples = calloc(3, sizeof(*f->r.samples));
    if (f->r.samples == NULL)
        return -1;
    kcr_input_init(&f->in, &f->o, &f->r);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    free(f->r.samples);
    free(f);
    return 0;
}

static bool parse(const char *line, struct kcr_line *l, char *why, size_t whylen)
{
    return kcr_input_parse_line(line, strlen(line), l, why, whylen);
}

/* the line is refused, and why mentions want */
static void refused(const char *line, const char *want)
{
    struct kcr_line l;
    char why[KCR_WHY_MAX] = "";

    if (parse(line, &l, why, sizeof(why)))
        fail_msg("accepted: '%s'", line);
    if (strstr(why, want) == NULL)
        fail_msg("'%s': why '%s' lacks '%s'", line, why, want);
}

static void test_parse_fields(void **state)
{
    struct kcr_line l;
    char why[KCR_WHY_MAX];

    (void)state;
    assert_true(parse("counter 0 200 0.004512 1 {\"counter\":5}", &l, why, sizeof(why)));
    assert_int_equal(l.kind, KCR_LINE_STEP);
    assert_int_equal(l.step, KCR_STEP_COUNTER);
    assert_int_equal(l.curl_code, 0);
    assert_int_equal(l.status, 200);
    assert_true(l.ms > 4.511 && l.ms < 4.513);
    assert_int_equal(l.connects, 1);
    assert_int_equal(l.body_len, 13);
    assert_memory_equal(l.body, "{\"counter\":5}", 13);

    assert_true(parse("login 7 000 0.000123 0 curl: (7) Failed to connect", &l, why, sizeof(why)));
    assert_int_equal(l.curl_code, 7);
    assert_int_equal(l.status, 0);
    assert_string_equal(l.body, "curl: (7) Failed to connect");

    /* no body, with or without the separating space; whole seconds */
    assert_true(parse("logout 0 204 3 0", &l, why, sizeof(why)));
    assert_int_equal(l.body_len, 0);
    assert_true(l.ms == 3000.0);
    assert_true(parse("logout 0 204 3 0 ", &l, why, sizeof(why)));
    assert_int_equal(l.body_len, 0);

    assert_true(parse("burst 0 000 1.500000000 0", &l, why, sizeof(why)));
    assert_int_equal(l.kind, KCR_LINE_BURST);
    assert_true(l.ms == 1500.0);
    assert_true(parse("cacert 0 000 0 0 /home/user/it's ca.crt", &l, why, sizeof(why)));
    assert_int_equal(l.kind, KCR_LINE_CACERT);
    assert_string_equal(l.body, "/home/user/it's ca.crt");
}

static void test_parse_refuses(void **state)
{
    (void)state;
    refused("", "empty");
    refused("counterx 0 200 0.1 1 {}", "STEP");
    refused("Counter 0 200 0.1 1 {}", "STEP");
    refused(" counter 0 200 0.1 1 {}", "STEP");
    refused("counter", "CURL_EXIT");
    refused("counter  0 200 0.1 1 {}", "CURL_EXIT");
    refused("counter 100 200 0.1 1 {}", "CURL_EXIT");
    refused("counter -1 200 0.1 1 {}", "CURL_EXIT");
    refused("counter 0 2x0 0.1 1 {}", "HTTP_CODE");
    refused("counter 0 20 0.1 1 {}", "HTTP_CODE");
    refused("counter 0 2000 0.1 1 {}", "HTTP_CODE");
    refused("counter 0 099 0.1 1 {}", "HTTP_CODE");
    refused("counter 0 600 0.1 1 {}", "HTTP_CODE");
    refused("counter 0 000 0.1 1 {}", "000");
    refused("counter 0 200 1. 1 {}", "SECONDS");
    refused("counter 0 200 .5 1 {}", "SECONDS");
    refused("counter 0 200 0,5 1 {}", "SECONDS");
    refused("counter 0 200 1e3 1 {}", "SECONDS");
    refused("counter 0 200 0.1234567890 1 {}", "SECONDS");
    refused("counter 0 200 86401 1 {}", "SECONDS");
    refused("counter 0 200 0.1 {}", "CONNECTS");
    refused("counter 0 200 0.1 10000 {}", "CONNECTS");
    refused("counter 0 200 0.1 1x {}", "CONNECTS");
    refused("counter 0 200 0.1", "CONNECTS");
    refused("burst 0 000 1.0 0 x", "burst 0 000");
    refused("burst 0 200 1.0 0", "burst 0 000");
    refused("cacert 0 000 0 0", "PATH");
    refused("cacert 0 000 0 0 /a\tb", "PATH");
    refused("cacert 0 000 0 3 /ca.crt", "cacert 0 000");
}

static void test_parse_lengths(void **state)
{
    struct kcr_line l;
    char why[KCR_WHY_MAX];
    static char line[KCR_LINE_MAX + 2];
    size_t head = strlen("counter 0 200 0.1 1 ");

    (void)state;
    /* a NUL byte inside the line */
    assert_false(kcr_input_parse_line("counter 0 200 0.1 1 {\0}", 24, &l, why, sizeof(why)));
    assert_non_null(strstr(why, "NUL"));
    /* the longest body passes, one byte more does not */
    memset(line, 'x', sizeof(line));
    memcpy(line, "counter 0 200 0.1 1 ", head);
    assert_true(kcr_input_parse_line(line, head + KCR_MAX_BODY, &l, why, sizeof(why)));
    assert_int_equal(l.body_len, KCR_MAX_BODY);
    assert_false(kcr_input_parse_line(line, head + KCR_MAX_BODY + 1, &l, why, sizeof(why)));
    assert_non_null(strstr(why, "BODY"));
    assert_false(kcr_input_parse_line(line, KCR_LINE_MAX + 1, &l, why, sizeof(why)));
    assert_non_null(strstr(why, "longer"));
}

static bool feed(struct fixture *f, const char *line)
{
    return kcr_input_feed(&f->in, line, strlen(line), f->err, sizeof(f->err));
}

static void feed_ok(struct fixture *f, const char *line)
{
    if (!feed(f, line))
        fail_msg("'%s' refused: %s", line, f->err);
}

static void test_whole_run_passes(void **state)
{
    struct fixture *f = *state;

    feed_ok(f, "cacert 0 000 0 0 /client/ca.crt");
    feed_ok(f, LOGIN_OK);
    feed_ok(f, STATUS_OK);
    feed_ok(f, "counter 0 200 0.004 1 {\"counter\":8}");
    feed_ok(f, "counter 0 200 0.003 1 {\"counter\":6}");
    feed_ok(f, "counter 0 200 0.005 1 {\"counter\":7}");
    feed_ok(f, "burst 0 000 0.010 0");
    feed_ok(f, LOGOUT_OK);
    feed_ok(f, AFTER_OK);
    assert_true(kcr_input_finish(&f->in));
    assert_int_equal(f->r.exit_code, KCR_EXIT_OK);
    assert_non_null(strstr(f->r.verdict, "PASS: alice"));
    assert_non_null(strstr(f->r.verdict, "values 6..8 unique and gap-free"));
    assert_string_equal(f->o.cacert, "/client/ca.crt");
    assert_string_equal(f->r.auth_mode, "card_probe");
    assert_int_equal(f->r.n_samples, 3);
    assert_int_equal(f->r.connections, 3);
    assert_true(f->r.burst_ms == 10.0);
    assert_true(f->r.latency.max == 5.0);
    assert_true(f->r.steps[KCR_STEP_LOGIN].ms == 12.0);
    assert_int_equal(f->r.steps[KCR_STEP_AFTER_LOGOUT].status, 401);
}

static void test_duplicate_fails_1(void **state)
{
    struct fixture *f = *state;

    feed_ok(f, LOGIN_OK);
    feed_ok(f, STATUS_OK);
    feed_ok(f, "counter 0 200 0.004 1 {\"counter\":6}");
    feed_ok(f, "counter 0 200 0.003 1 {\"counter\":6}");
    feed_ok(f, "counter 0 200 0.005 1 {\"counter\":7}");
    feed_ok(f, LOGOUT_OK);
    feed_ok(f, AFTER_OK);
    assert_true(kcr_input_finish(&f->in));
    assert_int_equal(f->r.exit_code, KCR_EXIT_CHECK);
    assert_non_null(strstr(f->r.verdict, "FAIL: counter"));
    assert_non_null(strstr(f->r.verdict, "duplicates 1 (6)"));
}

static void test_counter_no_answer_fails_3(void **state)
{
    struct fixture *f = *state;

    feed_ok(f, LOGIN_OK);
    feed_ok(f, STATUS_OK);
    feed_ok(f, "counter 0 200 0.004 1 {\"counter\":6}");
    feed_ok(f, "counter 56 000 0.001 0 curl: (56) Recv failure: Connection reset by peer");
    feed_ok(f, "counter 7 000 0.001 0 curl: (7) Failed\x01 to connect");
    feed_ok(f, LOGOUT_OK);
    feed_ok(f, AFTER_OK);
    assert_true(kcr_input_finish(&f->in));
    assert_int_equal(f->r.exit_code, KCR_EXIT_CONNECT);
    assert_int_equal(f->r.transport_errors, 2);
    assert_int_equal(f->r.steps[KCR_STEP_COUNTER].curl_code, 56);
    assert_non_null(strstr(f->r.verdict, "first failure: no answer: curl error 56: curl: (56)"));
    assert_string_equal(f->r.samples[2].why,
                        "no answer: curl error 7: curl: (7) Failed? to connect");
}

static void test_login_refused_4(void **state)
{
    struct fixture *f = *state;

    feed_ok(f, "login 0 401 2.5 1 {\"error\":\"card_denied\",\"message\":\"no touch\"}");
    assert_true(kcr_input_finish(&f->in));
    assert_int_equal(f->r.exit_code, KCR_EXIT_REFUSED);
    assert_false(f->r.steps[KCR_STEP_STATUS].ran);
    assert_false(f->r.steps[KCR_STEP_COUNTER].ran);
    assert_string_equal(f->r.steps[KCR_STEP_LOGIN].error_code, "card_denied");
}

static void test_login_no_answer_3(void **state)
{
    struct fixture *f = *state;

    feed_ok(f, "cacert 0 000 0 0 /home/user/no-such/ca.crt");
    feed_ok(f, "login 77 000 0 0 curl: (77) error setting certificate file: "
               "/home/user/no-such/ca.crt");
    assert_true(kcr_input_finish(&f->in));
    assert_int_equal(f->r.exit_code, KCR_EXIT_CONNECT);
    assert_non_null(strstr(f->r.verdict, "FAIL: login: no answer: curl error 77: "));
    assert_non_null(strstr(f->r.verdict, "/home/user/no-such/ca.crt"));
    assert_non_null(strstr(f->r.verdict, "cannot be read as a CA certificate"));
}

static void test_cut_short_fails_1(void **state)
{
    struct fixture *f = *state;

    feed_ok(f, LOGIN_OK);
    feed_ok(f, STATUS_OK);
    feed_ok(f, "counter 0 200 0.004 1 {\"counter\":6}");
    assert_true(kcr_input_finish(&f->in));
    assert_int_equal(f->r.exit_code, KCR_EXIT_CHECK);
    assert_non_null(strstr(f->r.verdict, "FAIL: counter: "));
    assert_non_null(strstr(f->r.verdict, "1 of 3 values"));
}

/* each bad order is named with its line number */
static void bad_order(const char *const *lines, size_t n, const char *want)
{
    struct kcr_opts o;
    struct kcr_run r;
    struct kcr_input in;
    struct kcr_sample samples[2];
    char *argv[] = {(char *)"chain-regress", (char *)"--requests", (char *)"2", NULL};
    char err[512] = "";
    size_t i;

    assert_int_equal(kcr_opts_parse(3, argv, NULL, &o, err, sizeof(err)), KCR_OPTS_RUN);
    r.samples = samples;
    kcr_input_init(&in, &o, &r);
    for (i = 0; i < n; i++)
        if (!kcr_input_feed(&in, lines[i], strlen(lines[i]), err, sizeof(err)))
            break;
    if (i != n - 1)
        fail_msg("line %zu of %zu refused (wanted the last): %s", i + 1, n, err);
    if (strstr(err, want) == NULL)
        fail_msg("err '%s' lacks '%s'", err, want);
}

static void test_order(void **state)
{
    const char *status_first[] = {STATUS_OK};
    const char *two_logins[] = {LOGIN_OK, LOGIN_OK};
    const char *counter_early[] = {LOGIN_OK, "counter 0 200 0.1 1 {\"counter\":1}"};
    const char *too_many[] = {LOGIN_OK, STATUS_OK, "counter 0 200 0.1 1 {\"counter\":1}",
                              "counter 0 200 0.1 1 {\"counter\":2}",
                              "counter 0 200 0.1 1 {\"counter\":3}"};
    const char *after_logout[] = {LOGIN_OK, STATUS_OK, LOGOUT_OK,
                                  "counter 0 200 0.1 1 {\"counter\":1}"};
    const char *late_ca[] = {LOGIN_OK, "cacert 0 000 0 0 /ca.crt"};
    const char *two_bursts[] = {LOGIN_OK, STATUS_OK, "burst 0 000 1 0", "burst 0 000 1 0"};
    const char *after_burst[] = {LOGIN_OK, STATUS_OK, "burst 0 000 1 0",
                                 "counter 0 200 0.1 1 {\"counter\":1}"};
    const char *after_first[] = {LOGIN_OK, STATUS_OK, AFTER_OK};
    const char *bad_field[] = {LOGIN_OK, "status 0 20 0.1 1 {}"};

    (void)state;
    bad_order(status_first, 1, "line 1: the status line must follow the login line");
    bad_order(two_logins, 2, "line 2: a second login line");
    bad_order(counter_early, 2, "line 2: counter lines come after the status line");
    bad_order(too_many, 5, "line 5: more counter lines than the 2 requests");
    bad_order(after_logout, 4, "line 4: counter lines come after");
    bad_order(late_ca, 2, "line 2: a cacert line comes at most once, before the login");
    bad_order(two_bursts, 4, "line 4: a burst line comes at most once");
    bad_order(after_burst, 4, "line 4: counter lines come after the status line and before burst");
    bad_order(after_first, 3, "line 3: the after_logout line must follow the logout line");
    bad_order(bad_field, 2, "line 2: HTTP_CODE");
}

static int read_text(const char *text, size_t len, struct fixture *f)
{
    FILE *fp = fmemopen((void *)text, len, "r");
    int rc;

    assert_non_null(fp);
    rc = kcr_input_read(fp, &f->o, &f->r, f->err, sizeof(f->err));
    fclose(fp);
    return rc;
}

static void test_read_stream(void **state)
{
    struct fixture *f = *state;
    static const char good[] =
        LOGIN_OK "\n" STATUS_OK "\n"
                 "counter 0 200 0.1 1 {\"counter\":1}\n"
                 "counter 0 200 0.1 1 {\"counter\":2}\n"
                 "counter 0 200 0.1 1 {\"counter\":3}\n" LOGOUT_OK "\n" AFTER_OK "\n";
    static char longline[KCR_LINE_MAX + 400];

    assert_int_equal(read_text(good, sizeof(good) - 1, f), KCR_EXIT_OK);
    assert_int_equal(f->r.exit_code, KCR_EXIT_OK);

    /* the last line cut off before its newline */
    assert_int_equal(read_text(good, sizeof(good) - 2, f), KCR_EXIT_USAGE);
    assert_non_null(strstr(f->err, "line 7: no newline"));

    assert_int_equal(read_text("", 0, f), KCR_EXIT_USAGE);
    assert_non_null(strstr(f->err, "no login line"));
    assert_int_equal(read_text("cacert 0 000 0 0 /ca\n", 21, f), KCR_EXIT_USAGE);
    assert_non_null(strstr(f->err, "no login line"));

    assert_int_equal(read_text("\n", 1, f), KCR_EXIT_USAGE);
    assert_non_null(strstr(f->err, "line 1: the line is empty"));

    memset(longline, 'x', sizeof(longline));
    memcpy(longline, LOGIN_OK "\nstatus ", strlen(LOGIN_OK) + 8);
    longline[sizeof(longline) - 1] = '\n';
    assert_int_equal(read_text(longline, sizeof(longline), f), KCR_EXIT_USAGE);
    assert_non_null(strstr(f->err, "line 2: the line is longer than"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_parse_lengths),
        cmocka_unit_test_setup_teardown(test_whole_run_passes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_fails_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter_no_answer_fails_3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_refused_4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_no_answer_3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_short_fails_1, setup, teardown),
        cmocka_unit_test(test_order),
        cmocka_unit_test_setup_teardown(test_read_stream, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
