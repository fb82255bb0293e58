/* Checked libcbor helpers: what a card can send that libcbor itself would
 * abort on must come back as KC_ERR_CBOR. Regression for a fuzzer crash:
 * a getInfo option whose value was a float reached cbor_is_bool, which
 * asserts on floats in libcbor 0.8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/ctap2.h"
#include "ctaphid/status.h"

static void test_bool_rejects_floats_and_other_simple_values(void **state)
{
    (void)state;
    cbor_item_t *items[] = {
        cbor_build_float2(1.0f), cbor_build_float4(0.0f), cbor_build_float8(1.0),
        cbor_new_null(),         cbor_new_undef(),        cbor_build_uint8(1),
    };
    bool v = true;
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
        assert_non_null(items[i]);
        assert_false(kc_cbor_is_bool(items[i]));
        assert_int_equal(kc_cbor_bool(items[i], &v), KC_ERR_CBOR);
        cbor_decref(&items[i]);
    }
    cbor_item_t *t = cbor_build_bool(true), *f = cbor_build_bool(false);
    assert_int_equal(kc_cbor_bool(t, &v), KC_OK);
    assert_true(v);
    assert_int_equal(kc_cbor_bool(f, &v), KC_OK);
    assert_false(v);
    assert_int_equal(kc_cbor_bool(NULL, &v), KC_ERR_CBOR);
    cbor_decref(&t);
    cbor_decref(&f);
}

/* getInfo {1: ["FIDO_2_0"], 3: h'00..', 4: {"rk": 1.0 (half float)}} */
static void test_get_info_option_float_is_malformed(void **state)
{
    (void)state;
    static const uint8_t info[] = {
        0xa3, 0x01, 0x81, 0x68, 'F',  'I',  'D',  'O', '_', '2',  '_',  '0',  0x03,
        0x50, 0,    0,    0,    0,    0,    0,    0,   0,   0,    0,    0,    0,
        0,    0,    0,    0,    0x04, 0xa1, 0x62, 'r', 'k', 0xf9, 0x3c, 0x00,
    };
    struct kc_info out;
    assert_int_equal(kc_info_decode(info, sizeof(info), &out), KC_ERR_CBOR);
}

/* kc_cbor_int_map_each: the walk every CTAP2 response decoder shares */
struct seen {
    int64_t keys[8];
    size_t n;
    int64_t fail_at; /* the key whose entry fails, 0 for none */
};

static int note_key(int64_t key, const cbor_item_t *value, void *ctx)
{
    struct seen *s = ctx;

    assert_non_null(value);
    if (s->n < 8)
        s->keys[s->n++] = key;
    return key == s->fail_at ? KC_ERR_NOMEM : KC_OK;
}

static void test_int_map_each_walks_in_order(void **state)
{
    (void)state;
    /* {1: 0, -2: "a", 3: h''} */
    static const uint8_t map[] = {0xa3, 0x01, 0x00, 0x21, 0x61, 'a', 0x03, 0x40};
    struct seen s = {.fail_at = 0};
    assert_int_equal(kc_cbor_int_map_each(map, sizeof(map), note_key, &s), KC_OK);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.keys[0], 1);
    assert_int_equal(s.keys[1], -2);
    assert_int_equal(s.keys[2], 3);
}

static void test_int_map_each_stops_at_first_error(void **state)
{
    (void)state;
    static const uint8_t map[] = {0xa3, 0x01, 0x00, 0x21, 0x61, 'a', 0x03, 0x40};
    struct seen s = {.fail_at = -2};
    assert_int_equal(kc_cbor_int_map_each(map, sizeof(map), note_key, &s), KC_ERR_NOMEM);
    assert_int_equal(s.n, 2);
}

static void test_int_map_each_rejects_other_shapes(void **state)
{
    (void)state;
    static const uint8_t array[] = {0x81, 0x01};
    static const uint8_t text_key[] = {0xa1, 0x61, 'a', 0x01};
    static const uint8_t dup_key[] = {0xa2, 0x01, 0x00, 0x01, 0x01};
    static const uint8_t trailing[] = {0xa1, 0x01, 0x00, 0x00};
    static const uint8_t indefinite[] = {0xbf, 0x01, 0x00, 0xff};
    const struct {
        const uint8_t *p;
        size_t len;
    } bad[] = {
        {array, sizeof(array)},       {text_key, sizeof(text_key)},     {dup_key, sizeof(dup_key)},
        {trailing, sizeof(trailing)}, {indefinite, sizeof(indefinite)}, {array, 0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct seen s = {.fail_at = 0};
        assert_int_equal(kc_cbor_int_map_each(bad[i].p, bad[i].len, note_key, &s), KC_ERR_CBOR);
        assert_int_equal(s.n, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bool_rejects_floats_and_other_simple_values),
        cmocka_unit_test(test_get_info_option_float_is_malformed),
        cmocka_unit_test(test_int_map_each_walks_in_order),
        cmocka_unit_test(test_int_map_each_stops_at_first_error),
        cmocka_unit_test(test_int_map_each_rejects_other_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
