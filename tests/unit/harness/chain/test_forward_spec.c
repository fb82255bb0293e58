/* kc-forward's command line: the qvm-connect-tcp spec (ports, empty fields,
 * namespace names) and the options (defaults, both value forms, rejections). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "harness/chain/forward.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void test_port(void **state)
{
    uint16_t p = 7;
    (void)state;
    assert_int_equal(kcf_parse_port("1", 1, 0, &p), 0);
    assert_int_equal(p, 1);
    assert_int_equal(kcf_parse_port("65535", 5, 0, &p), 0);
    assert_int_equal(p, 65535);
    assert_int_equal(kcf_parse_port("0", 1, 1, &p), 0);
    assert_int_equal(p, 0);
    p = 7;
    assert_int_equal(kcf_parse_port("0", 1, 0, &p), -1);
    assert_int_equal(kcf_parse_port("65536", 5, 0, &p), -1);
    assert_int_equal(kcf_parse_port("123456", 6, 0, &p), -1);
    assert_int_equal(kcf_parse_port("", 0, 1, &p), -1);
    assert_int_equal(kcf_parse_port("8a", 2, 0, &p), -1);
    assert_int_equal(kcf_parse_port("-1", 2, 0, &p), -1);
    assert_int_equal(kcf_parse_port(" 80", 3, 0, &p), -1);
    assert_int_equal(kcf_parse_port("+80", 3, 0, &p), -1);
    assert_int_equal(p, 7); /* untouched on failure */
    /* only len characters count */
    assert_int_equal(kcf_parse_port("9780:x", 4, 0, &p), 0);
    assert_int_equal(p, 9780);
}

static void test_netns_names(void **state)
{
    char longest[KCF_NETNS_MAX + 2];
    (void)state;
    assert_true(kcf_netns_name_ok("k_server"));
    assert_true(kcf_netns_name_ok("kcs-1234.proxy"));
    assert_true(kcf_netns_name_ok("..a"));
    assert_false(kcf_netns_name_ok(NULL));
    assert_false(kcf_netns_name_ok(""));
    assert_false(kcf_netns_name_ok("."));
    assert_false(kcf_netns_name_ok(".."));
    assert_false(kcf_netns_name_ok("../etc"));
    assert_false(kcf_netns_name_ok("a/b"));
    assert_false(kcf_netns_name_ok("a b"));
    assert_false(kcf_netns_name_ok("@default"));
    assert_false(kcf_netns_name_ok("k:s"));
    memset(longest, 'n', KCF_NETNS_MAX);
    longest[KCF_NETNS_MAX] = '\0';
    assert_true(kcf_netns_name_ok(longest));
    longest[KCF_NETNS_MAX] = 'n';
    longest[KCF_NETNS_MAX + 1] = '\0';
    assert_false(kcf_netns_name_ok(longest));
}

static void test_spec_runbook_forms(void **state)
{
    struct kcf_spec s;
    char err[128];
    (void)state;
    assert_int_equal(kcf_spec_parse("9780:k_server:8780", &s, err, sizeof(err)), 0);
    assert_int_equal(s.local_port, 9780);
    assert_int_equal(s.target_port, 8780);
    assert_string_equal(s.target, "k_server");
    assert_int_equal(kcf_spec_parse("9771:k_proxy:8771", &s, err, sizeof(err)), 0);
    assert_int_equal(s.local_port, 9771);
    assert_int_equal(s.target_port, 8771);
    assert_string_equal(s.target, "k_proxy");
}

static void test_spec_empty_fields(void **state)
{
    struct kcf_spec s;
    char err[128];
    (void)state;
    /* empty local port: the target port, as qvm-connect-tcp does */
    assert_int_equal(kcf_spec_parse(":k_server:8780", &s, err, sizeof(err)), 0);
    assert_int_equal(s.local_port, 8780);
    assert_string_equal(s.target, "k_server");
    /* empty target: no namespace switch */
    assert_int_equal(kcf_spec_parse("9780::8780", &s, err, sizeof(err)), 0);
    assert_int_equal(s.local_port, 9780);
    assert_string_equal(s.target, "");
    /* 0: any free port */
    assert_int_equal(kcf_spec_parse("0::8780", &s, err, sizeof(err)), 0);
    assert_int_equal(s.local_port, 0);
}

static void test_spec_rejects(void **state)
{
    static const char *bad[] = {
        "",           "9780",       "9780:k_server", "9780:k_server:8780:1",
        "a:k:1",      "9780:k:0",   "9780:k:",       "9780:k:65536",
        "70000:k:1",  "9780:a/b:1", "9780:..:1",     "9780:@dflt:80",
        "9780:k: 80", ":::",
    };
    struct kcf_spec s;
    char err[128];
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        memset(&s, 0x5a, sizeof(s));
        assert_int_equal(kcf_spec_parse(bad[i], &s, err, sizeof(err)), -1);
        assert_true(strlen(err) > 0);
        assert_int_equal(s.local_port, 0x5a5a); /* untouched */
    }
    assert_int_equal(kcf_spec_parse(NULL, &s, err, sizeof(err)), -1);
}

static void test_spec_target_length(void **state)
{
    char spec[KCF_NETNS_MAX + 32];
    struct kcf_spec s;
    char err[128];
    (void)state;
    memset(spec, 0, sizeof(spec));
    spec[0] = '1';
    spec[1] = ':';
    memset(spec + 2, 't', KCF_NETNS_MAX);
    strcpy(spec + 2 + KCF_NETNS_MAX, ":2");
    assert_int_equal(kcf_spec_parse(spec, &s, err, sizeof(err)), 0);
    assert_int_equal(strlen(s.target), KCF_NETNS_MAX);
    memset(spec + 2, 't', KCF_NETNS_MAX + 1);
    strcpy(spec + 3 + KCF_NETNS_MAX, ":2");
    assert_int_equal(kcf_spec_parse(spec, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "longer"));
}

static void test_options_defaults(void **state)
{
    char *argv[] = {"kc-forward", "9780:kcs-server:8780"};
    struct kcf_options o;
    char err[128];
    (void)state;
    assert_int_equal(kcf_options_parse(ARGC(argv), argv, &o, err, sizeof(err)), KCF_PARSE_OK);
    assert_int_equal(o.spec.local_port, 9780);
    assert_int_equal(o.spec.target_port, 8780);
    /* the middle field names the target namespace */
    assert_string_equal(o.target_netns, "kcs-server");
    assert_string_equal(o.listen_netns, "");
    assert_null(o.ready_file);
    assert_int_equal(o.verbose, 0);
    assert_int_equal(o.idle_timeout_ms, KCF_DEFAULT_IDLE_TIMEOUT_MS);
    assert_int_equal(o.connect_timeout_ms, KCF_DEFAULT_CONNECT_TIMEOUT_MS);
    assert_int_equal(o.max_conns, KCF_DEFAULT_MAX_CONNS);
}

static void test_options_all(void **state)
{
    char *argv[] = {"kc-forward",
                    "--listen-netns",
                    "run1-client",
                    "--target-netns=run1-proxy",
                    "--ready-file",
                    "/tmp/r",
                    "--idle-timeout-ms=1500",
                    "--connect-timeout-ms",
                    "250",
                    "--max-conns",
                    "3",
                    "-v",
                    "9771:k_proxy:8771"};
    struct kcf_options o;
    char err[128];
    (void)state;
    assert_int_equal(kcf_options_parse(ARGC(argv), argv, &o, err, sizeof(err)), KCF_PARSE_OK);
    assert_string_equal(o.listen_netns, "run1-client");
    /* --target-netns wins over the middle field, which is only a label then */
    assert_string_equal(o.target_netns, "run1-proxy");
    assert_string_equal(o.spec.target, "k_proxy");
    assert_string_equal(o.ready_file, "/tmp/r");
    assert_int_equal(o.idle_timeout_ms, 1500);
    assert_int_equal(o.connect_timeout_ms, 250);
    assert_int_equal(o.max_conns, 3);
    assert_int_equal(o.verbose, 1);
}

static void test_options_help_and_dashdash(void **state)
{
    char *help[] = {"kc-forward", "9780:k:1", "--help"};
    char *h[] = {"kc-forward", "-h"};
    char *dd[] = {"kc-forward", "--", "9780::8780"};
    struct kcf_options o;
    char err[128];
    (void)state;
    assert_int_equal(kcf_options_parse(ARGC(help), help, &o, err, sizeof(err)), KCF_PARSE_HELP);
    assert_int_equal(kcf_options_parse(ARGC(h), h, &o, err, sizeof(err)), KCF_PARSE_HELP);
    assert_int_equal(kcf_options_parse(ARGC(dd), dd, &o, err, sizeof(err)), KCF_PARSE_OK);
    assert_string_equal(o.target_netns, "");
    assert_non_null(strstr(kcf_usage(), "LOCALPORT"));
}

static void expect_usage(char **argv, int argc, const char *words)
{
    struct kcf_options o;
    char err[160];
    err[0] = '\0';
    assert_int_equal(kcf_options_parse(argc, argv, &o, err, sizeof(err)), KCF_PARSE_USAGE);
    assert_non_null(strstr(err, words));
}

static void test_options_rejects(void **state)
{
    char *none[] = {"kc-forward"};
    char *two[] = {"kc-forward", "1::2", "3::4"};
    char *unknown[] = {"kc-forward", "--bogus", "1::2"};
    char *novalue[] = {"kc-forward", "1::2", "--listen-netns"};
    char *badns[] = {"kc-forward", "--target-netns", "../x", "1::2"};
    char *badidle[] = {"kc-forward", "--idle-timeout-ms", "0", "1::2"};
    char *badidle2[] = {"kc-forward", "--idle-timeout-ms=5s", "1::2"};
    char *badmax[] = {"kc-forward", "--max-conns", "1025", "1::2"};
    char *badready[] = {"kc-forward", "--ready-file=", "1::2"};
    char *badspec[] = {"kc-forward", "9780:k_server"};
    char *prefix[] = {"kc-forward", "--listen-netnsX", "a", "1::2"};
    (void)state;
    expect_usage(none, ARGC(none), "missing");
    expect_usage(two, ARGC(two), "one spec only");
    expect_usage(unknown, ARGC(unknown), "--bogus");
    expect_usage(novalue, ARGC(novalue), "needs a value");
    expect_usage(badns, ARGC(badns), "not a namespace name");
    expect_usage(badidle, ARGC(badidle), "--idle-timeout-ms");
    expect_usage(badidle2, ARGC(badidle2), "--idle-timeout-ms");
    expect_usage(badmax, ARGC(badmax), "--max-conns");
    expect_usage(badready, ARGC(badready), "--ready-file");
    expect_usage(badspec, ARGC(badspec), "LOCALPORT:TARGET:TARGETPORT");
    expect_usage(prefix, ARGC(prefix), "unknown option");
}

static void test_options_repeatable_calls(void **state)
{
    char *a[] = {"kc-forward", "-v", "1:x:2"};
    char *b[] = {"kc-forward", "3::4"};
    struct kcf_options o;
    char err[128];
    (void)state;
    /* no state carries over from one call to the next */
    assert_int_equal(kcf_options_parse(ARGC(a), a, &o, err, sizeof(err)), KCF_PARSE_OK);
    assert_int_equal(o.verbose, 1);
    assert_int_equal(kcf_options_parse(ARGC(b), b, &o, err, sizeof(err)), KCF_PARSE_OK);
    assert_int_equal(o.verbose, 0);
    assert_string_equal(o.target_netns, "");
    assert_int_equal(o.spec.local_port, 3);
}

static void test_netns_open_rejects_bad_names(void **state)
{
    (void)state;
    /* the name check comes before any file system access */
    assert_int_equal(kcf_netns_open("../../etc/passwd"), -1);
    assert_int_equal(kcf_netns_open(""), -1);
    assert_int_equal(kcf_netns_enter(-1), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_port),
        cmocka_unit_test(test_netns_names),
        cmocka_unit_test(test_spec_runbook_forms),
        cmocka_unit_test(test_spec_empty_fields),
        cmocka_unit_test(test_spec_rejects),
        cmocka_unit_test(test_spec_target_length),
        cmocka_unit_test(test_options_defaults),
        cmocka_unit_test(test_options_all),
        cmocka_unit_test(test_options_help_and_dashdash),
        cmocka_unit_test(test_options_rejects),
        cmocka_unit_test(test_options_repeatable_calls),
        cmocka_unit_test(test_netns_open_rejects_bad_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
