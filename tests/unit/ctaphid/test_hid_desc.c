/* HID report descriptor parsing: a real FIDO descriptor, a keyboard, a
 * vendor descriptor with report ids, and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ctaphid/hid_desc.h"
#include "ctaphid/status.h"

/* The CTAPHID interface descriptor of CTAP 2.1, section 11.2.8.2, as real
 * security keys report it. */
static const uint8_t fido_desc[] = {
    0x06, 0xd0, 0xf1, /* Usage Page (FIDO Alliance) */
    0x09, 0x01,       /* Usage (CTAPHID) */
    0xa1, 0x01,       /* Collection (Application) */
    0x09, 0x20,       /*   Usage (Input Report Data) */
    0x15, 0x00,       /*   Logical Minimum (0) */
    0x26, 0xff, 0x00, /*   Logical Maximum (255) */
    0x75, 0x08,       /*   Report Size (8) */
    0x95, 0x40,       /*   Report Count (64) */
    0x81, 0x02,       /*   Input (Data, Var, Abs) */
    0x09, 0x21,       /*   Usage (Output Report Data) */
    0x15, 0x00,       /*   Logical Minimum (0) */
    0x26, 0xff, 0x00, /*   Logical Maximum (255) */
    0x75, 0x08,       /*   Report Size (8) */
    0x95, 0x40,       /*   Report Count (64) */
    0x91, 0x02,       /*   Output (Data, Var, Abs) */
    0xc0,             /* End Collection */
};

/* A boot keyboard: 8-byte input report, 1-byte LED output report. */
static const uint8_t keyboard_desc[] = {
    0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00, 0x25, 0x01,
    0x75, 0x01, 0x95, 0x08, 0x81, 0x02, 0x95, 0x01, 0x75, 0x08, 0x81, 0x01, 0x95, 0x05, 0x75, 0x01,
    0x05, 0x08, 0x19, 0x01, 0x29, 0x05, 0x91, 0x02, 0x95, 0x01, 0x75, 0x03, 0x91, 0x01, 0x95, 0x06,
    0x75, 0x08, 0x15, 0x00, 0x25, 0x65, 0x05, 0x07, 0x19, 0x00, 0x29, 0x65, 0x81, 0x00, 0xc0,
};

/* Vendor page 0xff00 with two input reports (ids 1 and 2). */
static const uint8_t vendor_desc[] = {
    0x06, 0x00, 0xff, 0x09, 0x01, 0xa1, 0x01, 0x85, 0x01, 0x75, 0x08, 0x95, 0x20,
    0x81, 0x02, 0x85, 0x02, 0x95, 0x10, 0x81, 0x02, 0x95, 0x08, 0x91, 0x02, 0xc0,
};

static void test_fido(void **state)
{
    (void)state;
    struct kc_hid_desc d;

    assert_int_equal(kc_hid_desc_parse(fido_desc, sizeof(fido_desc), &d), KC_OK);
    assert_int_equal(d.usage_page, 0xf1d0);
    assert_int_equal(d.usage, 0x01);
    assert_int_equal(d.in_report_len, 64);
    assert_int_equal(d.out_report_len, 64);
    assert_false(d.uses_report_ids);
    assert_true(kc_hid_desc_is_fido(&d));
}

static void test_keyboard(void **state)
{
    (void)state;
    struct kc_hid_desc d;

    assert_int_equal(kc_hid_desc_parse(keyboard_desc, sizeof(keyboard_desc), &d), KC_OK);
    assert_int_equal(d.usage_page, 0x01);
    assert_int_equal(d.usage, 0x06);
    assert_int_equal(d.in_report_len, 8);
    assert_int_equal(d.out_report_len, 1);
    assert_false(kc_hid_desc_is_fido(&d));
}

static void test_vendor_report_ids(void **state)
{
    (void)state;
    struct kc_hid_desc d;

    assert_int_equal(kc_hid_desc_parse(vendor_desc, sizeof(vendor_desc), &d), KC_OK);
    assert_int_equal(d.usage_page, 0xff00);
    assert_int_equal(d.usage, 0x01);
    assert_true(d.uses_report_ids);
    assert_int_equal(d.in_report_len, 32); /* report id 1 only */
    assert_int_equal(d.out_report_len, 8); /* report id 2, the first output */
    assert_false(kc_hid_desc_is_fido(&d));
}

static void test_extended_usage_and_defaults(void **state)
{
    (void)state;
    /* Usage with a 4-byte value carries the page; no reports declared. */
    static const uint8_t ext[] = {0x0b, 0x01, 0x00, 0xd0, 0xf1, 0xa1, 0x01, 0xc0};
    static const uint8_t longitem[] = {0xfe, 0x02, 0x10, 0xaa, 0xbb, 0x05,
                                       0x0c, 0x09, 0x01, 0xa1, 0x01, 0xc0};
    struct kc_hid_desc d;

    assert_int_equal(kc_hid_desc_parse(ext, sizeof(ext), &d), KC_OK);
    assert_int_equal(d.usage_page, 0xf1d0);
    assert_int_equal(d.usage, 0x01);
    assert_int_equal(d.in_report_len, 64);
    assert_int_equal(d.out_report_len, 64);
    assert_int_equal(kc_hid_desc_parse(longitem, sizeof(longitem), &d), KC_OK);
    assert_int_equal(d.usage_page, 0x0c);
    assert_int_equal(kc_hid_desc_parse(NULL, 0, &d), KC_OK);
    assert_int_equal(d.usage_page, 0);
}

static void test_malformed(void **state)
{
    (void)state;
    static const uint8_t truncated[] = {0x06, 0xd0};
    static const uint8_t stray_end[] = {0xc0};
    static const uint8_t bad_long[] = {0xfe, 0x10, 0x00, 0x01};
    static const uint8_t pop_empty[] = {0xb4};
    static const uint8_t zero_id[] = {0x85, 0x00};
    struct kc_hid_desc d;

    assert_int_equal(kc_hid_desc_parse(truncated, sizeof(truncated), &d), KC_ERR_PROTOCOL);
    assert_int_equal(kc_hid_desc_parse(fido_desc, sizeof(fido_desc) - 2, &d), KC_ERR_PROTOCOL);
    assert_int_equal(kc_hid_desc_parse(stray_end, sizeof(stray_end), &d), KC_ERR_PROTOCOL);
    assert_int_equal(kc_hid_desc_parse(bad_long, sizeof(bad_long), &d), KC_ERR_PROTOCOL);
    assert_int_equal(kc_hid_desc_parse(pop_empty, sizeof(pop_empty), &d), KC_ERR_PROTOCOL);
    assert_int_equal(kc_hid_desc_parse(zero_id, sizeof(zero_id), &d), KC_ERR_PROTOCOL);
    assert_int_equal(kc_hid_desc_parse(fido_desc, sizeof(fido_desc), NULL), KC_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fido),
        cmocka_unit_test(test_keyboard),
        cmocka_unit_test(test_vendor_report_ids),
        cmocka_unit_test(test_extended_usage_and_defaults),
        cmocka_unit_test(test_malformed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
