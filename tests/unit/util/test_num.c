/* util/num.c: strict decimal whole numbers, their ranges, and everything
 * strtol alone would have let through (spaces, '+', trailing bytes, hex,
 * overflow). */
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>

#include "util/num.h"

static void test_long_accepts_range(void **state)
{
    long v = 0;

    (void)state;
    assert_int_equal(kcu_parse_long("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(kcu_parse_long("10", 0, 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(kcu_parse_long("007", 1, 10, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(kcu_parse_long("-3", -5, 5, &v), 0);
    assert_int_equal(v, -3);
    assert_int_equal(kcu_parse_long("9223372036854775807", 0, LONG_MAX, &v), 0);
    assert_true(v == LONG_MAX);
}

static void test_long_refuses(void **state)
{
    static const char *const bad[] = {
        "",    " 5",  "5 ", "+5",  "5ms", "0x5",
        "1e3", "--5", "-",  "5.0", "٣",   "9223372036854775808", /* one past LONG_MAX */
    };
    long v = 42;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(kcu_parse_long(bad[i], LONG_MIN, LONG_MAX, &v), -1);
        assert_int_equal(v, 42); /* untouched */
    }
    assert_int_equal(kcu_parse_long(NULL, 0, 1, &v), -1);
    assert_int_equal(kcu_parse_long("11", 0, 10, &v), -1); /* above */
    assert_int_equal(kcu_parse_long("0", 1, 10, &v), -1);  /* below */
    assert_int_equal(kcu_parse_long("-1", 0, 10, &v), -1); /* no sign when lo >= 0 */
    assert_int_equal(kcu_parse_long("-6", -5, 5, &v), -1);
    assert_int_equal(v, 42);
}

static void test_int(void **state)
{
    int v = 0;

    (void)state;
    assert_int_equal(kcu_parse_int("65535", 0, 65535, &v), 0);
    assert_int_equal(v, 65535);
    assert_int_equal(kcu_parse_int("65536", 0, 65535, &v), -1);
    assert_int_equal(kcu_parse_int("2147483648", 0, INT_MAX, &v), -1);
    assert_int_equal(v, 65535);
}

static void test_u64(void **state)
{
    uint64_t v = 0;

    (void)state;
    assert_int_equal(kcu_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(kcu_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -1);
    assert_int_equal(kcu_parse_u64("-1", 0, UINT64_MAX, &v), -1); /* strtoull would wrap it */
    assert_int_equal(kcu_parse_u64(" 1", 0, UINT64_MAX, &v), -1);
    assert_int_equal(kcu_parse_u64("5", 6, 9, &v), -1);
    assert_int_equal(kcu_parse_u64("9", 6, 9, &v), 0);
    assert_true(v == 9);
}

/* kcu_format_u64 writes what printf's %" PRIu64 writes, and parses back. */
static void test_format_u64(void **state)
{
    static const uint64_t values[] = {
        0,         1, 9, 10, 99, 100, 1234567890, UINT64_C(9999999999999999999), UINT64_MAX - 1,
        UINT64_MAX};
    char got[KCU_U64_DEC_MAX], want[32];
    uint64_t back = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        int n = snprintf(want, sizeof(want), "%" PRIu64, values[i]);
        assert_int_equal(kcu_format_u64(values[i], got), (size_t)n);
        assert_string_equal(got, want);
        assert_int_equal(kcu_parse_u64(got, 0, UINT64_MAX, &back), 0);
        assert_true(back == values[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_accepts_range),
        cmocka_unit_test(test_long_refuses),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_u64),
        cmocka_unit_test(test_format_u64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
