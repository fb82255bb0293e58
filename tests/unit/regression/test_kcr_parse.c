/* chain-regress: k_proxy's answers parsed and judged, every field checked
 * for its type, failures naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "regression/chain_regress.h"

#define S(lit) lit, sizeof(lit) - 1

static const char token_b64u[] = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd";

static void test_counter_ok(void **state)
{
    struct kcr_counter_resp c;
    char why[KCR_WHY_MAX];

    (void)state;
    assert_int_equal(kcr_parse_counter(S("{\"counter\": 42, \"username\": \"alice\", "
                                         "\"expires_in\": 300}"),
                                       &c, why, sizeof(why)),
                     KCR_PARSE_OK);
    assert_int_equal(c.counter, 42);
    assert_string_equal(c.username, "alice");
}

static void test_counter_huge_and_negative(void **state)
{
    struct kcr_counter_resp c;
    char why[KCR_WHY_MAX];

    (void)state;
    assert_int_equal(
        kcr_parse_counter(S("{\"counter\": 9223372036854775807}"), &c, why, sizeof(why)),
        KCR_PARSE_OK);
    assert_true(c.counter == INT64_MAX);
    assert_int_equal(kcr_parse_counter(S("{\"counter\": -5}"), &c, why, sizeof(why)), KCR_PARSE_OK);
    assert_true(c.counter == -5);
    /* beyond int64: jansson refuses it, so do we */
    assert_int_equal(
        kcr_parse_counter(S("{\"counter\": 9223372036854775808}"), &c, why, sizeof(why)),
        KCR_PARSE_BAD_JSON);
}

static void test_counter_missing_names_field(void **state)
{
    struct kcr_counter_resp c;
    char why[KCR_WHY_MAX];

    (void)state;
    assert_int_equal(kcr_parse_counter(S("{\"value\": 1}"), &c, why, sizeof(why)),
                     KCR_PARSE_MISSING);
    assert_non_null(strstr(why, "\"counter\""));
    assert_non_null(strstr(why, "missing"));
}

static void test_counter_wrong_types(void **state)
{
    static const struct {
        const char *body;
        const char *type;
    } cases[] = {
        {"{\"counter\": \"5\"}", "a string"},    {"{\"counter\": 5.0}", "a real number"},
        {"{\"counter\": 5e2}", "a real number"}, {"{\"counter\": null}", "null"},
        {"{\"counter\": true}", "a boolean"},    {"{\"counter\": [5]}", "an array"},
        {"{\"counter\": {}}", "an object"},
    };
    struct kcr_counter_resp c;
    char why[KCR_WHY_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            kcr_parse_counter(cases[i].body, strlen(cases[i].body), &c, why, sizeof(why)),
            KCR_PARSE_BAD_TYPE);
        assert_non_null(strstr(why, "\"counter\""));
        assert_non_null(strstr(why, cases[i].type));
        assert_non_null(strstr(why, "not an integer"));
    }
}

static void test_malformed_json(void **state)
{
    static const char *const bodies[] = {
        "",
        "{",
        "counter: 1",
        "{\"counter\": 1",
        "[1,2]",
        "42",
        "\"x\"",
        "null",
        "{\"counter\": 1, \"counter\": 2}", /* duplicate key */
        "{\"counter\": 1} trailing",
    };
    struct kcr_counter_resp c;
    struct kcr_login_resp l;
    struct kcr_status_resp s;
    struct kcr_logout_resp o;
    char why[KCR_WHY_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        size_t n = strlen(bodies[i]);
        why[0] = '\0';
        assert_int_equal(kcr_parse_counter(bodies[i], n, &c, why, sizeof(why)), KCR_PARSE_BAD_JSON);
        assert_true(why[0] != '\0');
        assert_int_equal(kcr_parse_login(bodies[i], n, &l, why, sizeof(why)), KCR_PARSE_BAD_JSON);
        assert_int_equal(kcr_parse_status(bodies[i], n, &s, why, sizeof(why)), KCR_PARSE_BAD_JSON);
        assert_int_equal(kcr_parse_logout(bodies[i], n, &o, why, sizeof(why)), KCR_PARSE_BAD_JSON);
    }
    assert_int_equal(kcr_parse_counter(NULL, 0, &c, why, sizeof(why)), KCR_PARSE_BAD_JSON);
    assert_non_null(strstr(why, "no body"));
}

static void test_body_not_nul_terminated(void **state)
{
    const char buf[] = {'{', '"', 'c', 'o', 'u', 'n', 't', 'e', 'r', '"', ':', '7', '}', '9'};
    struct kcr_counter_resp c;
    char why[KCR_WHY_MAX];

    (void)state;
    assert_int_equal(kcr_parse_counter(buf, 13, &c, why, sizeof(why)), KCR_PARSE_OK);
    assert_int_equal(c.counter, 7);
}

static void test_login_ok(void **state)
{
    char body[256];
    struct kcr_login_resp l;
    char why[KCR_WHY_MAX];

    (void)state;
    snprintf(body, sizeof(body),
             "{\"session_token\": \"%s\", \"username\": \"alice\", \"auth_mode\": "
             "\"card_probe\", \"expires_at\": 1700000300, \"expires_in\": 300}",
             token_b64u);
    assert_int_equal(kcr_parse_login(body, strlen(body), &l, why, sizeof(why)), KCR_PARSE_OK);
    assert_string_equal(l.session_token, token_b64u);
    assert_string_equal(l.username, "alice");
    assert_string_equal(l.auth_mode, "card_probe");
    assert_true(l.has_expires_in);
    assert_int_equal(l.expires_in, 300);
}

static void test_login_bad_fields(void **state)
{
    static const struct {
        const char *body;
        int rc;
        const char *field;
    } cases[] = {
        {"{\"auth_mode\": \"card_probe\"}", KCR_PARSE_MISSING, "session_token"},
        {"{\"session_token\": 5, \"auth_mode\": \"x\"}", KCR_PARSE_BAD_TYPE, "session_token"},
        {"{\"session_token\": \"\", \"auth_mode\": \"x\"}", KCR_PARSE_BAD_VALUE, "session_token"},
        {"{\"session_token\": \"a b\", \"auth_mode\": \"x\"}", KCR_PARSE_BAD_VALUE,
         "session_token"},
        {"{\"session_token\": \"a\\r\\nX-Evil: 1\", \"auth_mode\": \"x\"}", KCR_PARSE_BAD_VALUE,
         "session_token"},
        {"{\"session_token\": \"abc\"}", KCR_PARSE_MISSING, "auth_mode"},
        {"{\"session_token\": \"abc\", \"auth_mode\": 1}", KCR_PARSE_BAD_TYPE, "auth_mode"},
        {"{\"session_token\": \"abc\", \"auth_mode\": \"x\", \"username\": 3}", KCR_PARSE_BAD_TYPE,
         "username"},
        {"{\"session_token\": \"abc\", \"auth_mode\": \"x\", \"expires_in\": \"300\"}",
         KCR_PARSE_BAD_TYPE, "expires_in"},
    };
    struct kcr_login_resp l;
    char why[KCR_WHY_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            kcr_parse_login(cases[i].body, strlen(cases[i].body), &l, why, sizeof(why)),
            cases[i].rc);
        assert_non_null(strstr(why, cases[i].field));
        assert_string_equal(l.session_token, ""); /* never half a token */
    }
}

static void test_login_overlong_token(void **state)
{
    size_t n = KCR_TOKEN_MAX + 1;
    char *body = malloc(n + 64);
    struct kcr_login_resp l;
    char why[KCR_WHY_MAX];

    (void)state;
    assert_non_null(body);
    strcpy(body, "{\"auth_mode\": \"x\", \"session_token\": \"");
    memset(body + strlen(body), 'a', n);
    strcpy(body + strlen("{\"auth_mode\": \"x\", \"session_token\": \"") + n, "\"}");
    assert_int_equal(kcr_parse_login(body, strlen(body), &l, why, sizeof(why)),
                     KCR_PARSE_BAD_VALUE);
    assert_non_null(strstr(why, "longer than"));
    free(body);
}

static void test_status_and_logout(void **state)
{
    struct kcr_status_resp s;
    struct kcr_logout_resp o;
    char why[KCR_WHY_MAX];

    (void)state;
    assert_int_equal(kcr_parse_status(S("{\"active\": true, \"username\": \"alice\", "
                                        "\"requests\": 3, \"expires_in\": 200}"),
                                      &s, why, sizeof(why)),
                     KCR_PARSE_OK);
    assert_true(s.active);
    assert_true(s.has_requests);
    assert_int_equal(s.requests, 3);
    assert_int_equal(kcr_parse_status(S("{\"active\": 1}"), &s, why, sizeof(why)),
                     KCR_PARSE_BAD_TYPE);
    assert_non_null(strstr(why, "\"active\""));
    assert_int_equal(kcr_parse_status(S("{}"), &s, why, sizeof(why)), KCR_PARSE_MISSING);
    assert_int_equal(kcr_parse_logout(S("{\"logged_out\": true, \"username\": \"alice\"}"), &o, why,
                                      sizeof(why)),
                     KCR_PARSE_OK);
    assert_true(o.logged_out);
    assert_int_equal(kcr_parse_logout(S("{\"logged_out\": \"yes\"}"), &o, why, sizeof(why)),
                     KCR_PARSE_BAD_TYPE);
    assert_non_null(strstr(why, "logged_out"));
}

static void test_error_shape(void **state)
{
    struct kcr_error_resp e;

    (void)state;
    assert_int_equal(kcr_parse_error(S("{\"error\": \"card_denied\", \"message\": \"the card "
                                       "refused\\npresence\"}"),
                                     &e),
                     KCR_PARSE_OK);
    assert_string_equal(e.error, "card_denied");
    assert_string_equal(e.message, "the card refused?presence"); /* one line */
    assert_int_equal(kcr_parse_error(S("{\"error\": 4}"), &e), KCR_PARSE_OK);
    assert_string_equal(e.error, "");
    assert_int_not_equal(kcr_parse_error(S("<html>"), &e), KCR_PARSE_OK);
}

static void test_valid_token(void **state)
{
    (void)state;
    assert_true(kcr_valid_token(token_b64u));
    assert_false(kcr_valid_token(""));
    assert_false(kcr_valid_token("a:b"));
    assert_false(kcr_valid_token("a\tb"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_ok),
        cmocka_unit_test(test_counter_huge_and_negative),
        cmocka_unit_test(test_counter_missing_names_field),
        cmocka_unit_test(test_counter_wrong_types),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_body_not_nul_terminated),
        cmocka_unit_test(test_login_ok),
        cmocka_unit_test(test_login_bad_fields),
        cmocka_unit_test(test_login_overlong_token),
        cmocka_unit_test(test_status_and_logout),
        cmocka_unit_test(test_error_shape),
        cmocka_unit_test(test_valid_token),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
