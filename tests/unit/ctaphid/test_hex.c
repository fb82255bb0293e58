/* Strict hex fields shared by the hidapi VID:PID spec, sysfs HID_ID and the
 * replay trace parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ctaphid/text_int.h"

static void test_digit(void **state)
{
    (void)state;
    assert_int_equal(kc_hex_digit('0'), 0);
    assert_int_equal(kc_hex_digit('9'), 9);
    assert_int_equal(kc_hex_digit('a'), 10);
    assert_int_equal(kc_hex_digit('F'), 15);
    assert_int_equal(kc_hex_digit('g'), -1);
    assert_int_equal(kc_hex_digit(' '), -1);
    assert_int_equal(kc_hex_digit('x'), -1);
    assert_int_equal(kc_hex_digit((char)0xb2), -1); /* superscript two in Latin-1 */
}

static void test_field_values_and_bounds(void **state)
{
    (void)state;
    uint32_t v = 7;
    assert_true(kc_hex_field("1050", 4, 4, &v));
    assert_int_equal(v, 0x1050);
    assert_true(kc_hex_field("00001209", 8, 8, &v));
    assert_int_equal(v, 0x1209);
    assert_true(kc_hex_field("fFfFfFfF", 8, 8, &v));
    assert_int_equal(v, 0xffffffffu);
    /* only the n bytes given are read */
    assert_true(kc_hex_field("12zz", 2, 4, &v));
    assert_int_equal(v, 0x12);
}

static void test_field_rejects(void **state)
{
    (void)state;
    uint32_t v = 7;
    assert_false(kc_hex_field("", 0, 4, &v));      /* empty */
    assert_false(kc_hex_field("10500", 5, 4, &v)); /* too many digits */
    assert_false(kc_hex_field("123456789", 9, 8, &v));
    assert_false(kc_hex_field("0x10", 4, 4, &v)); /* prefix is the caller's */
    assert_false(kc_hex_field("1 2", 3, 4, &v));
    assert_false(kc_hex_field("-1", 2, 4, &v));
    assert_int_equal(v, 7); /* untouched on failure */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digit),
        cmocka_unit_test(test_field_values_and_bounds),
        cmocka_unit_test(test_field_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
