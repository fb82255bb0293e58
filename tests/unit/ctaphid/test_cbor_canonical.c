/* Canonical CBOR integers (RFC 8949 4.2.1): CTAP parsers such as
 * python-fido2 and many cards reject wider-than-needed integers, so both the
 * host library's requests and the virtual card's responses must use the
 * shortest form. Regression test for 8-byte integers seen in getInfo. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/ctap2.h"
#include "ctaphid/status.h"
#include "harness/vcard/card.h"

static void expect_bytes(int64_t v, const uint8_t *want, size_t want_len)
{
    cbor_item_t *item = kc_cbor_new_int(v);
    assert_non_null(item);
    unsigned char *buf = NULL;
    size_t cap = 0;
    size_t len = cbor_serialize_alloc(item, &buf, &cap);
    assert_int_equal(len, want_len);
    assert_memory_equal(buf, want, want_len);
    free(buf);
    cbor_decref(&item);
}

static void test_int_widths(void **state)
{
    (void)state;
    expect_bytes(0, (const uint8_t[]){0x00}, 1);
    expect_bytes(23, (const uint8_t[]){0x17}, 1);
    expect_bytes(24, (const uint8_t[]){0x18, 0x18}, 2);
    expect_bytes(255, (const uint8_t[]){0x18, 0xff}, 2);
    expect_bytes(256, (const uint8_t[]){0x19, 0x01, 0x00}, 3);
    expect_bytes(1200, (const uint8_t[]){0x19, 0x04, 0xb0}, 3);
    expect_bytes(65536, (const uint8_t[]){0x1a, 0x00, 0x01, 0x00, 0x00}, 5);
    expect_bytes(4294967296LL, (const uint8_t[]){0x1b, 0, 0, 0, 1, 0, 0, 0, 0}, 9);
    expect_bytes(-1, (const uint8_t[]){0x20}, 1);
    expect_bytes(KC_COSE_ES256, (const uint8_t[]){0x26}, 1);
    expect_bytes(KC_COSE_EDDSA, (const uint8_t[]){0x27}, 1);
    expect_bytes(-25, (const uint8_t[]){0x38, 0x18}, 2);
    expect_bytes(KC_COSE_RS256, (const uint8_t[]){0x39, 0x01, 0x00}, 3);
}

/* The card's getInfo must begin with map(n) then key 1 in one byte, and
 * maxMsgSize (key 5) must be 0x19 0x04 0xb0 (1200), not a 9-byte integer. */
static void test_vcard_get_info_is_canonical(void **state)
{
    (void)state;
    char err[256] = "";
    struct vc_config cfg = {.ctap1 = true};
    struct vc_card *card = vc_card_new(&cfg, err, sizeof(err));
    assert_non_null(card);
    uint8_t req[1] = {KC_CTAP2_GET_INFO};
    uint8_t resp[1024];
    size_t len = 0;
    assert_int_equal(vc_card_cbor(card, req, 1, resp, sizeof(resp), &len, NULL, NULL), 0);
    assert_int_equal(resp[0], KC_CTAP2_OK);
    assert_true((resp[1] & 0xe0) == 0xa0); /* a map */
    assert_int_equal(resp[2], 0x01);       /* key 1 as a one-byte integer */
    const uint8_t max_msg[] = {0x05, 0x19, 0x04, 0xb0};
    assert_non_null(memmem(resp + 1, len - 1, max_msg, sizeof(max_msg)));
    struct kc_info info;
    assert_int_equal(kc_info_decode(resp + 1, len - 1, &info), KC_OK);
    assert_int_equal(info.max_msg_size, 1200);
    vc_card_free(card);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_widths),
        cmocka_unit_test(test_vcard_get_info_is_canonical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
