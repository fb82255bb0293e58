/* chain-regress: option parsing, defaults, environment, every value
 * validated with a message naming the option. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "regression/chain_regress.h"

static char err[512];

/* parse a NULL-terminated list of arguments after the program name */
static int parse_env(const struct kcr_env *env, struct kcr_opts *o, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    const char *a;

    argv[argc++] = (char *)"chain-regress";
    va_start(ap, o);
    while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return kcr_opts_parse(argc, argv, env, o, err, sizeof(err));
}

#define parse(o, ...) parse_env(NULL, o, __VA_ARGS__)

static void test_defaults(void **state)
{
    struct kcr_opts o;

    (void)state;
    assert_int_equal(parse(&o, NULL), KCR_OPTS_RUN);
    assert_string_equal(o.base_url, "https://127.0.0.1:9771");
    assert_string_equal(o.username, "alice");
    assert_string_equal(o.cacert, "");
    assert_int_equal(o.requests, 20);
    assert_int_equal(o.parallelism, 8);
    assert_int_equal(o.timeout_ms, 10000);
    assert_int_equal(o.card_timeout_s, 60);
    assert_false(o.card_timeout_set);
    assert_false(o.json);
    assert_false(o.verbose);
    assert_false(o.interactive_card);
    assert_string_equal(o.expect_auth_mode, "");
}

static void test_all_options(void **state)
{
    struct kcr_opts o;

    (void)state;
    assert_int_equal(parse(&o, "--base-url", "http://127.0.0.1:8770/", "--cacert", "/x/ca.crt",
                           "--username", "bob.b_1-x", "--requests", "50", "--parallelism", "12",
                           "--timeout-ms", "2500", "--card-timeout", "90", "--expect-auth-mode",
                           "fido2_assertion", "--interactive-card", "--json", "-v", NULL),
                     KCR_OPTS_RUN);
    assert_string_equal(o.base_url, "http://127.0.0.1:8770"); /* trailing slash dropped */
    assert_string_equal(o.cacert, "/x/ca.crt");
    assert_string_equal(o.username, "bob.b_1-x");
    assert_int_equal(o.requests, 50);
    assert_int_equal(o.parallelism, 12);
    assert_int_equal(o.timeout_ms, 2500);
    assert_int_equal(o.card_timeout_s, 90);
    assert_true(o.card_timeout_set);
    assert_string_equal(o.expect_auth_mode, "fido2_assertion");
    assert_true(o.interactive_card);
    assert_true(o.json);
    assert_true(o.verbose);
}

static void test_auth_mode_aliases(void **state)
{
    struct kcr_opts o;

    (void)state;
    assert_int_equal(parse(&o, "--expect-auth-mode", "probe", NULL), KCR_OPTS_RUN);
    assert_string_equal(o.expect_auth_mode, "card_probe");
    assert_int_equal(parse(&o, "--expect-auth-mode=fido2-direct", NULL), KCR_OPTS_RUN);
    assert_string_equal(o.expect_auth_mode, "fido2_assertion");
    assert_int_equal(parse(&o, "--expect-auth-mode", "", NULL), KCR_OPTS_USAGE);
    assert_int_equal(parse(&o, "--expect-auth-mode", "a b", NULL), KCR_OPTS_USAGE);
    assert_non_null(strstr(err, "--expect-auth-mode"));
}

static void test_bad_numbers_name_the_option(void **state)
{
    static const char *const cases[][2] = {
        {"--requests", "abc"},
        {"--requests", "0"},
        {"--requests", "-1"},
        {"--requests", "+5"},
        {"--requests", " 5"},
        {"--requests", "5x"},
        {"--requests", ""},
        {"--requests", "100001"},
        {"--requests", "99999999999999999999999"},
        {"--parallelism", "0"},
        {"--parallelism", "1001"},
        {"--parallelism", "1.5"},
        {"--timeout-ms", "0"},
        {"--timeout-ms", "ten"},
        {"--card-timeout", "0"},
        {"--card-timeout", "3601"},
    };
    struct kcr_opts o;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        assert_int_equal(parse(&o, cases[i][0], cases[i][1], NULL), KCR_OPTS_USAGE);
        assert_non_null(strstr(err, cases[i][0]));
    }
}

static void test_bad_strings(void **state)
{
    struct kcr_opts o;

    (void)state;
    assert_int_equal(parse(&o, "--base-url", "ftp://x", NULL), KCR_OPTS_USAGE);
    assert_non_null(strstr(err, "--base-url"));
    assert_int_equal(parse(&o, "--base-url", "https://", NULL), KCR_OPTS_USAGE);
    assert_int_equal(parse(&o, "--base-url", "http://a b", NULL), KCR_OPTS_USAGE);
    assert_int_equal(parse(&o, "--username", "", NULL), KCR_OPTS_USAGE);
    assert_non_null(strstr(err, "--username"));
    assert_int_equal(parse(&o, "--username", "al ice", NULL), KCR_OPTS_USAGE);
    assert_int_equal(parse(&o, "--username",
                           "a12345678901234567890123456789012345678901234567890123456789012345",
                           NULL),
                     KCR_OPTS_USAGE);
    assert_int_equal(parse(&o, "--cacert", "", NULL), KCR_OPTS_USAGE);
    assert_non_null(strstr(err, "--cacert"));
}

static void test_unknown_missing_and_stray(void **state)
{
    struct kcr_opts o;

    (void)state;
    assert_int_equal(parse(&o, "--insecure", NULL), KCR_OPTS_USAGE);
    assert_non_null(strstr(err, "--insecure"));
    assert_int_equal(parse(&o, "-k", NULL), KCR_OPTS_USAGE);
    assert_int_equal(parse(&o, "--requests", NULL), KCR_OPTS_USAGE);
    assert_non_null(strstr(err, "--requests"));
    assert_non_null(strstr(err, "needs a value"));
    assert_int_equal(parse(&o, "stray", NULL), KCR_OPTS_USAGE);
    assert_non_null(strstr(err, "stray"));
}

static void test_help_and_version(void **state)
{
    struct kcr_opts o;

    (void)state;
    assert_int_equal(parse(&o, "--help", NULL), KCR_OPTS_HELP);
    assert_int_equal(parse(&o, "-h", NULL), KCR_OPTS_HELP);
    assert_int_equal(parse(&o, "--version", NULL), KCR_OPTS_VERSION);
}

static void test_environment(void **state)
{
    struct kcr_env env = {"50", "12", "/etc/kcard/ca.crt"};
    struct kcr_env bad = {"lots", NULL, NULL};
    struct kcr_env bad_p = {NULL, "0", NULL};
    struct kcr_opts o;

    (void)state;
    assert_int_equal(parse_env(&env, &o, NULL), KCR_OPTS_RUN);
    assert_int_equal(o.requests, 50);
    assert_int_equal(o.parallelism, 12);
    assert_string_equal(o.cacert, "/etc/kcard/ca.crt");
    /* the command line wins */
    assert_int_equal(parse_env(&env, &o, "--requests", "3", "--cacert", "/a", NULL), KCR_OPTS_RUN);
    assert_int_equal(o.requests, 3);
    assert_int_equal(o.parallelism, 12);
    assert_string_equal(o.cacert, "/a");
    assert_int_equal(parse_env(&bad, &o, NULL), KCR_OPTS_USAGE);
    assert_non_null(strstr(err, "REQUESTS"));
    assert_int_equal(parse_env(&bad_p, &o, NULL), KCR_OPTS_USAGE);
    assert_non_null(strstr(err, "PARALLELISM"));
}

static void test_parse_number(void **state)
{
    unsigned long long v = 0;

    (void)state;
    assert_true(kcr_parse_number("1", 1, 10, &v));
    assert_int_equal(v, 1);
    assert_true(kcr_parse_number("007", 1, 10, &v));
    assert_int_equal(v, 7);
    assert_false(kcr_parse_number("11", 1, 10, &v));
    assert_false(kcr_parse_number("18446744073709551616", 0, UINT64_MAX, &v));
    assert_false(kcr_parse_number(NULL, 0, 1, &v));
}

static void test_analyze(void **state)
{
    struct kcr_opts o;
    static char longname[5000];

    (void)state;
    assert_int_equal(parse(&o, NULL), KCR_OPTS_RUN);
    assert_string_equal(o.analyze, "");
    assert_int_equal(parse(&o, "--analyze", "-", "--requests", "7", NULL), KCR_OPTS_RUN);
    assert_string_equal(o.analyze, "-");
    assert_int_equal(o.requests, 7);
    assert_int_equal(parse(&o, "--analyze", "/tmp/run.lines", NULL), KCR_OPTS_RUN);
    assert_string_equal(o.analyze, "/tmp/run.lines");
    assert_int_equal(parse(&o, "--analyze", "", NULL), KCR_OPTS_USAGE);
    assert_non_null(strstr(err, "--analyze"));
    memset(longname, 'a', sizeof(longname) - 1);
    assert_int_equal(parse(&o, "--analyze", longname, NULL), KCR_OPTS_USAGE);
    assert_int_equal(parse(&o, "--analyze", NULL), KCR_OPTS_USAGE);
}

static void test_usage_names_exit_codes(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    (void)state;
    assert_non_null(f);
    kcr_usage(f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(buf, "--parallelism"));
    assert_non_null(strstr(buf, "  3  "));
    assert_non_null(strstr(buf, "  4  login refused"));
    assert_null(strstr(buf, "--insecure"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_all_options),
        cmocka_unit_test(test_auth_mode_aliases),
        cmocka_unit_test(test_bad_numbers_name_the_option),
        cmocka_unit_test(test_bad_strings),
        cmocka_unit_test(test_unknown_missing_and_stray),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_parse_number),
        cmocka_unit_test(test_analyze),
        cmocka_unit_test(test_usage_names_exit_codes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
