/* chain-regress: each answer judged, the verdict and exit code, and the
 * human and JSON reports, from canned answers (no sockets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "regression/chain_regress.h"

#define S(lit) lit, sizeof(lit) - 1

static const char login_ok[] = "{\"session_token\": \"tok_abc-123\", \"username\": \"alice\", "
                               "\"auth_mode\": \"card_probe\", \"expires_in\": 300}";

struct fixture {
    struct kcr_opts o;
    struct kcr_run r;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char *argv[] = {(char *)"chain-regress", (char *)"--requests", (char *)"5", NULL};
    char err[128];

    if (f == NULL || kcr_opts_parse(3, argv, NULL, &f->o, err, sizeof(err)) != KCR_OPTS_RUN)
        return -1;
    f->r.samples = calloc(5, sizeof(*f->r.samples));
    f->r.n_samples = 5;
    if (f->r.samples == NULL)
        return -1;
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

/* a passing chain; counters start..start+4 in the order given by `order` */
static void good_chain(struct fixture *f, const long long *values)
{
    struct kcr_login_resp l;
    char body[64];

    kcr_judge_login(&f->o, 200, S(login_ok), &f->r.steps[KCR_STEP_LOGIN], &l);
    kcr_judge_status(&f->o, 200, S("{\"active\": true, \"username\": \"alice\", \"requests\": 0}"),
                     &f->r.steps[KCR_STEP_STATUS]);
    for (size_t i = 0; i < 5; i++) {
        int n = snprintf(body, sizeof(body), "{\"counter\": %lld}", values[i]);
        kcr_judge_counter(200, body, (size_t)n, &f->r.samples[i]);
        f->r.samples[i].ms = (double)(i + 1);
    }
    f->r.burst_ms = 10;
    f->r.connections = 3;
    assert_true(kcr_judge_burst(&f->o, &f->r));
    kcr_judge_logout(&f->o, 200, S("{\"logged_out\": true, \"username\": \"alice\"}"),
                     &f->r.steps[KCR_STEP_LOGOUT]);
    kcr_judge_after_logout(401, S("{\"error\": \"invalid_session\", \"message\": \"gone\"}"),
                           &f->r.steps[KCR_STEP_AFTER_LOGOUT]);
}

static char *human(struct fixture *f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);

    assert_non_null(m);
    kcr_print_human(&f->o, &f->r, m);
    assert_int_equal(fclose(m), 0);
    return buf;
}

static void test_pass(void **state)
{
    struct fixture *f = *state;
    const long long v[] = {25, 23, 24, 27, 26};
    char *out;
    json_t *j;

    good_chain(f, v);
    kcr_verdict(&f->o, &f->r);
    assert_int_equal(f->r.exit_code, KCR_EXIT_OK);
    assert_true(strncmp(f->r.verdict, "PASS", 4) == 0);
    assert_non_null(strstr(f->r.verdict, "23..27"));
    out = human(f);
    assert_non_null(strstr(out, "login         ok"));
    assert_non_null(strstr(out, "counter       ok"));
    assert_non_null(strstr(out, "median 3.0"));
    assert_non_null(strstr(out, "p95 5.0"));
    assert_non_null(strstr(out, "500.0 req/s"));
    assert_non_null(strstr(out, "after_logout  ok   401"));
    free(out);

    j = kcr_report_json(&f->o, &f->r);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_string_equal(json_string_value(json_object_get(j, "verdict")), "pass");
    assert_int_equal(json_array_size(json_object_get(j, "counters")), 5);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "counters"), 0)), 25);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "analysis"), "min")),
                     23);
    assert_true(json_is_true(json_object_get(json_object_get(j, "analysis"), "gap_free")));
    assert_false(json_is_true(json_object_get(json_object_get(j, "analysis"), "in_order")));
    assert_int_equal(json_array_size(json_object_get(j, "steps")), KCR_STEP_COUNT);
    /* the driver sets r.auth_mode; the judges do not */
    assert_true(json_is_null(json_object_get(j, "auth_mode")));
    json_decref(j);
}

static void test_duplicate_fails_with_1(void **state)
{
    struct fixture *f = *state;
    const long long v[] = {23, 24, 24, 25, 26};
    json_t *j;

    good_chain(f, v);
    kcr_verdict(&f->o, &f->r);
    assert_int_equal(f->r.exit_code, KCR_EXIT_CHECK);
    assert_false(f->r.steps[KCR_STEP_COUNTER].ok);
    assert_non_null(strstr(f->r.verdict, "FAIL: counter"));
    assert_non_null(strstr(f->r.verdict, "duplicates 1 (24)"));
    j = kcr_report_json(&f->o, &f->r);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "exit")), 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "analysis"), "duplicates")), 1);
    json_decref(j);
}

static void test_gap_fails_with_1(void **state)
{
    struct fixture *f = *state;
    const long long v[] = {23, 24, 26, 27, 28};

    good_chain(f, v);
    kcr_verdict(&f->o, &f->r);
    assert_int_equal(f->r.exit_code, KCR_EXIT_CHECK);
    assert_non_null(strstr(f->r.verdict, "gaps 1 (missing 25)"));
}

static void test_missing_counter_field_fails(void **state)
{
    struct fixture *f = *state;
    const long long v[] = {1, 2, 3, 4, 5};
    char *out;

    good_chain(f, v);
    kcr_judge_counter(200, S("{\"count\": 3}"), &f->r.samples[2]);
    assert_false(f->r.samples[2].has_counter);
    assert_non_null(strstr(f->r.samples[2].why, "field \"counter\" is missing"));
    assert_true(kcr_judge_burst(&f->o, &f->r));
    kcr_verdict(&f->o, &f->r);
    assert_int_equal(f->r.exit_code, KCR_EXIT_CHECK);
    assert_int_equal(f->r.bad_body, 1);
    out = human(f);
    assert_non_null(strstr(out, "counter       FAIL"));
    assert_non_null(strstr(out, "field \"counter\" is missing"));
    free(out);
}

static void test_non_200_counts(void **state)
{
    struct fixture *f = *state;
    const long long v[] = {1, 2, 3, 4, 5};

    good_chain(f, v);
    kcr_judge_counter(502, S("{\"error\": \"upstream_failed\", \"message\": \"k_server down\"}"),
                      &f->r.samples[4]);
    assert_true(kcr_judge_burst(&f->o, &f->r));
    kcr_verdict(&f->o, &f->r);
    assert_int_equal(f->r.exit_code, KCR_EXIT_CHECK);
    assert_int_equal(f->r.non_200, 1);
    assert_non_null(strstr(f->r.verdict, "upstream_failed"));
}

static void test_login_refused_is_4(void **state)
{
    struct fixture *f = *state;
    struct kcr_login_resp l;

    kcr_judge_login(&f->o, 401,
                    S("{\"error\": \"card_denied\", \"message\": \"presence refused\"}"),
                    &f->r.steps[KCR_STEP_LOGIN], &l);
    assert_string_equal(l.session_token, "");
    assert_string_equal(f->r.steps[KCR_STEP_LOGIN].error_code, "card_denied");
    kcr_verdict(&f->o, &f->r);
    assert_int_equal(f->r.exit_code, KCR_EXIT_REFUSED);
    assert_non_null(strstr(f->r.verdict, "card_denied"));

    kcr_judge_login(&f->o, 403, S("forbidden"), &f->r.steps[KCR_STEP_LOGIN], &l);
    kcr_verdict(&f->o, &f->r);
    assert_int_equal(f->r.exit_code, KCR_EXIT_REFUSED);
    /* a card that is not there is not a refusal */
    kcr_judge_login(&f->o, 503, S("{\"error\": \"card_unavailable\"}"), &f->r.steps[KCR_STEP_LOGIN],
                    &l);
    kcr_verdict(&f->o, &f->r);
    assert_int_equal(f->r.exit_code, KCR_EXIT_CHECK);
}

static void test_no_answer_is_3(void **state)
{
    struct fixture *f = *state;
    const long long v[] = {1, 2, 3, 4, 5};

    good_chain(f, v);
    f->r.samples[1].curl_code = 28;
    snprintf(f->r.samples[1].why, sizeof(f->r.samples[1].why), "no answer: timeout");
    assert_true(kcr_judge_burst(&f->o, &f->r));
    kcr_verdict(&f->o, &f->r);
    assert_int_equal(f->r.exit_code, KCR_EXIT_CONNECT);
    assert_int_equal(f->r.transport_errors, 1);
}

static void test_login_no_answer_is_3(void **state)
{
    struct fixture *f = *state;
    struct kcr_step *st = &f->r.steps[KCR_STEP_LOGIN];
    char *out;

    st->ran = true;
    st->curl_code = 77;
    snprintf(st->detail, sizeof(st->detail), "no answer: curl error 77: %s", kcr_curl_hint(77));
    kcr_verdict(&f->o, &f->r);
    assert_int_equal(f->r.exit_code, KCR_EXIT_CONNECT);
    out = human(f);
    assert_non_null(strstr(out, "login         FAIL no answer: curl error 77"));
    assert_non_null(strstr(out, "--cacert"));
    assert_null(strstr(out, "status")); /* steps that did not run print nothing */
    free(out);
    assert_string_equal(kcr_curl_hint(0), "");
    assert_non_null(strstr(kcr_curl_hint(7), "could not connect"));
    assert_non_null(strstr(kcr_curl_hint(60), "--cacert"));
}

static void test_auth_mode_and_user_checks(void **state)
{
    struct fixture *f = *state;
    struct kcr_login_resp l;
    struct kcr_step *st = &f->r.steps[KCR_STEP_LOGIN];

    snprintf(f->o.expect_auth_mode, sizeof(f->o.expect_auth_mode), "fido2_assertion");
    kcr_judge_login(&f->o, 200, S(login_ok), st, &l);
    assert_false(st->ok);
    assert_non_null(strstr(st->detail, "auth_mode is card_probe, expected fido2_assertion"));
    assert_string_equal(l.session_token, "tok_abc-123"); /* kept: the run still logs out */
    snprintf(f->o.expect_auth_mode, sizeof(f->o.expect_auth_mode), "card_probe");
    kcr_judge_login(&f->o, 200, S(login_ok), st, &l);
    assert_true(st->ok);
    snprintf(f->o.username, sizeof(f->o.username), "bob");
    kcr_judge_login(&f->o, 200, S(login_ok), st, &l);
    assert_false(st->ok);
    assert_non_null(strstr(st->detail, "\"alice\", not \"bob\""));
}

static void test_status_logout_after(void **state)
{
    struct fixture *f = *state;
    struct kcr_step st;

    memset(&st, 0, sizeof(st));
    kcr_judge_status(&f->o, 200, S("{\"active\": false}"), &st);
    assert_false(st.ok);
    kcr_judge_status(&f->o, 401, S("{\"error\": \"invalid_session\"}"), &st);
    assert_false(st.ok);
    assert_string_equal(st.error_code, "invalid_session");
    kcr_judge_logout(&f->o, 200, S("{\"logged_out\": false}"), &st);
    assert_false(st.ok);
    kcr_judge_logout(&f->o, 200, S("{\"logged_out\": true}"), &st);
    assert_true(st.ok);
    kcr_judge_after_logout(200, S("{\"counter\": 9}"), &st);
    assert_false(st.ok);
    assert_non_null(strstr(st.detail, "still works"));
    kcr_judge_after_logout(404, S(""), &st);
    assert_false(st.ok);
    kcr_judge_after_logout(401, S(""), &st);
    assert_true(st.ok);
}

static void test_not_run_steps_fail(void **state)
{
    struct fixture *f = *state;
    struct kcr_login_resp l;
    json_t *j;

    kcr_judge_login(&f->o, 200, S(login_ok), &f->r.steps[KCR_STEP_LOGIN], &l);
    kcr_verdict(&f->o, &f->r);
    assert_int_equal(f->r.exit_code, KCR_EXIT_CHECK);
    assert_non_null(strstr(f->r.verdict, "status: not run"));
    j = kcr_report_json(&f->o, &f->r);
    assert_non_null(j);
    assert_null(json_object_get(j, "counters")); /* the burst did not run */
    assert_true(json_is_false(
        json_object_get(json_array_get(json_object_get(j, "steps"), KCR_STEP_STATUS), "ran")));
    json_decref(j);
}

static void test_json_survives_cut_utf8(void **state)
{
    struct fixture *f = *state;
    json_t *j;
    struct kcr_step *st = &f->r.steps[KCR_STEP_LOGIN];

    st->ran = true;
    memset(st->detail, 0, sizeof(st->detail));
    memcpy(st->detail, "cut \xc3", 5); /* half of a two-byte sequence */
    kcr_verdict(&f->o, &f->r);
    j = kcr_report_json(&f->o, &f->r);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "steps"), 0), "detail")),
                        "cut ?");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_fails_with_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_fails_with_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_counter_field_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_200_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_refused_is_4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_answer_is_3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_no_answer_is_3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_mode_and_user_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_logout_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_run_steps_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_survives_cut_utf8, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
