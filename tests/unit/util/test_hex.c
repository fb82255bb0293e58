/* util/hex.c: strict hex digits and fields (the hidapi VID:PID spec, sysfs
 * HID_ID), encoding, and decoding with errors that say what was wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/hex.h"

static void test_digit(void **state)
{
    (void)state;
    assert_int_equal(kcu_hex_digit('0'), 0);
    assert_int_equal(kcu_hex_digit('9'), 9);
    assert_int_equal(kcu_hex_digit('a'), 10);
    assert_int_equal(kcu_hex_digit('F'), 15);
    assert_int_equal(kcu_hex_digit('g'), -1);
    assert_int_equal(kcu_hex_digit(' '), -1);
    assert_int_equal(kcu_hex_digit('x'), -1);
    assert_int_equal(kcu_hex_digit((char)0xb2), -1); /* superscript two in Latin-1 */
    /* every byte (a table decides): exactly 0-9, a-f and A-F are digits */
    for (int c = 0; c < 256; c++) {
        const char *at = c != 0 ? strchr("0123456789abcdef", c) : NULL;
        const char *up = c != 0 ? strchr("0123456789ABCDEF", c) : NULL;
        int want = at != NULL   ? (int)(at - "0123456789abcdef")
                   : up != NULL ? (int)(up - "0123456789ABCDEF")
                                : -1;
        assert_int_equal(kcu_hex_digit((char)c), want);
        uint8_t out[1];
        size_t n = 0;
        char two[2] = {(char)c, '0'};
        assert_int_equal(kcu_hex_decode(two, 2, out, sizeof(out), &n, NULL, 0), want < 0 ? -1 : 0);
        if (want >= 0)
            assert_int_equal(out[0], want << 4);
    }
}

static void test_field_values_and_bounds(void **state)
{
    (void)state;
    uint32_t v = 7;
    assert_true(kcu_hex_field("1050", 4, 4, &v));
    assert_int_equal(v, 0x1050);
    assert_true(kcu_hex_field("00001209", 8, 8, &v));
    assert_int_equal(v, 0x1209);
    assert_true(kcu_hex_field("fFfFfFfF", 8, 8, &v));
    assert_int_equal(v, 0xffffffffu);
    /* only the n bytes given are read */
    assert_true(kcu_hex_field("12zz", 2, 4, &v));
    assert_int_equal(v, 0x12);
}

static void test_field_rejects(void **state)
{
    (void)state;
    uint32_t v = 7;
    assert_false(kcu_hex_field("", 0, 4, &v));      /* empty */
    assert_false(kcu_hex_field("10500", 5, 4, &v)); /* too many digits */
    assert_false(kcu_hex_field("123456789", 9, 8, &v));
    assert_false(kcu_hex_field("0x10", 4, 4, &v)); /* prefix is the caller's */
    assert_false(kcu_hex_field("1 2", 3, 4, &v));
    assert_false(kcu_hex_field("-1", 2, 4, &v));
    assert_int_equal(v, 7); /* untouched on failure */
}

static void test_encode(void **state)
{
    const uint8_t b[] = {0x00, 0x7f, 0xa5, 0xff};
    char out[2 * sizeof(b) + 1];
    char *h;

    (void)state;
    kcu_hex_encode(b, sizeof(b), out);
    assert_string_equal(out, "007fa5ff");
    kcu_hex_encode(b, 0, out);
    assert_string_equal(out, "");
    h = kcu_hex_encode_alloc(b, sizeof(b));
    assert_non_null(h);
    assert_string_equal(h, "007fa5ff");
    free(h);
}

static void test_decode(void **state)
{
    uint8_t out[4];
    size_t n = 99;
    char err[128] = "";

    (void)state;
    assert_int_equal(kcu_hex_decode("007FA5ff", 8, out, sizeof(out), &n, err, sizeof(err)), 0);
    assert_int_equal(n, 4);
    assert_int_equal(out[0], 0x00);
    assert_int_equal(out[1], 0x7f);
    assert_int_equal(out[2], 0xa5);
    assert_int_equal(out[3], 0xff);
    /* empty text: no bytes */
    assert_int_equal(kcu_hex_decode("", 0, out, sizeof(out), &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    /* exactly at the cap, and one byte past it */
    assert_int_equal(kcu_hex_decode("01020304", 8, out, 4, &n, err, sizeof(err)), 0);
    assert_int_equal(kcu_hex_decode("0102030405", 10, out, 4, &n, err, sizeof(err)), -1);
    assert_string_equal(err, "5 bytes of hex, more than the 4 allowed");
    /* only slen characters are read */
    assert_int_equal(kcu_hex_decode("abzz", 2, out, sizeof(out), &n, NULL, 0), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 0xab);
}

static void test_decode_errors(void **state)
{
    uint8_t out[8];
    size_t n = 77;
    char err[128];

    (void)state;
    assert_int_equal(kcu_hex_decode("abc", 3, out, sizeof(out), &n, err, sizeof(err)), -1);
    assert_string_equal(err, "an odd number of hex digits (3)");
    assert_int_equal(kcu_hex_decode("zz", 2, out, sizeof(out), &n, err, sizeof(err)), -1);
    assert_string_equal(err, "not a hex digit: 'z' at offset 0");
    assert_int_equal(kcu_hex_decode("0g", 2, out, sizeof(out), &n, err, sizeof(err)), -1);
    assert_string_equal(err, "not a hex digit: 'g' at offset 1");
    assert_int_equal(kcu_hex_decode("00 1", 4, out, sizeof(out), &n, err, sizeof(err)), -1);
    assert_string_equal(err, "not a hex digit: byte 0x20 at offset 2");
    assert_int_equal(kcu_hex_decode("0x10", 4, out, sizeof(out), &n, err, sizeof(err)), -1);
    assert_string_equal(err, "not a hex digit: 'x' at offset 1");
    assert_int_equal(n, 77); /* untouched on failure */
    /* no error buffer: still refused */
    assert_int_equal(kcu_hex_decode("1", 1, out, sizeof(out), &n, NULL, 0), -1);
}

static void test_decode_alloc(void **state)
{
    uint8_t *d = NULL;
    size_t n = 0;
    char err[128];

    (void)state;
    assert_int_equal(kcu_hex_decode_alloc("DEADbeef", 4, &d, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 4);
    assert_int_equal(d[0], 0xde);
    assert_int_equal(d[3], 0xef);
    free(d);
    assert_int_equal(kcu_hex_decode_alloc("", 4, &d, &n, err, sizeof(err)), -1);
    assert_string_equal(err, "empty hex");
    assert_int_equal(kcu_hex_decode_alloc("0102030405", 4, &d, &n, err, sizeof(err)), -1);
    assert_string_equal(err, "more than 4 bytes of hex");
    assert_int_equal(kcu_hex_decode_alloc("abc", 4, &d, &n, err, sizeof(err)), -1);
    assert_string_equal(err, "an odd number of hex digits (3)");
    assert_int_equal(kcu_hex_decode_alloc("a\x80", 4, &d, &n, err, sizeof(err)), -1);
    assert_string_equal(err, "not a hex digit: byte 0x80 at offset 1");
}

static void test_decode_exact(void **state)
{
    uint8_t b[4];
    char err[128];

    (void)state;
    assert_int_equal(kcu_hex_decode_exact("DEADbeef", b, 4, err, sizeof(err)), 0);
    assert_int_equal(b[0], 0xde);
    assert_int_equal(b[3], 0xef);
    assert_int_equal(kcu_hex_decode_exact("deadbee", b, 4, err, sizeof(err)), -1);
    assert_string_equal(err, "7 hex digits, want 8");
    assert_int_equal(kcu_hex_decode_exact("deadbeefaa", b, 4, err, sizeof(err)), -1);
    assert_string_equal(err, "more than 8 hex digits");
    assert_int_equal(kcu_hex_decode_exact("deadbeeg", b, 4, err, sizeof(err)), -1);
    assert_string_equal(err, "not a hex digit: 'g' at offset 7");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digit),         cmocka_unit_test(test_field_values_and_bounds),
        cmocka_unit_test(test_field_rejects), cmocka_unit_test(test_encode),
        cmocka_unit_test(test_decode),        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_alloc),  cmocka_unit_test(test_decode_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
