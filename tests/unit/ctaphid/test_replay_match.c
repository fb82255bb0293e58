/* The structural matcher of replay: the fields that differ between faithful
 * runs pass, every other difference is named by its field. Requests are
 * built with libcbor, as a client would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/replay_match.h"
#include "ctaphid/status.h"

#define CID 0x01020304u

/* What may vary in a makeCredential request. */
struct mc {
    uint8_t cdh_byte;
    uint8_t user_id_byte;
    const char *rp_id;
    const char *user_name;
    int64_t alg;
    bool rk;
    bool with_pin;
    uint8_t pin_byte;
    int pin_proto; /* 0: 2 */
    bool extra_ext;
};

static void defaults(struct mc *m)
{
    memset(m, 0, sizeof(*m));
    m->cdh_byte = 1;
    m->user_id_byte = 2;
    m->rp_id = "a.example";
    m->user_name = "rawctap";
    m->alg = -7;
}

static cbor_item_t *rp_map(const char *id)
{
    cbor_item_t *rp = cbor_new_definite_map(2);
    assert_int_equal(kc_cbor_map_add_str(rp, "id", kc_cbor_new_text(id)), KC_OK);
    assert_int_equal(kc_cbor_map_add_str(rp, "name", kc_cbor_new_text(id)), KC_OK);
    return rp;
}

/* The message body: command byte then the CBOR map. */
static size_t encode(uint8_t cmd, cbor_item_t *map, uint8_t *out, size_t cap)
{
    uint8_t *buf = NULL;
    size_t len = 0;

    out[0] = cmd;
    if (map == NULL)
        return 1;
    assert_int_equal(kc_cbor_serialize(map, &buf, &len), KC_OK);
    cbor_decref(&map);
    assert_true(len + 1 <= cap);
    memcpy(out + 1, buf, len);
    free(buf);
    return len + 1;
}

static size_t make_credential(const struct mc *m, uint8_t *out, size_t cap)
{
    uint8_t cdh[32], uid[16], pua[16];
    cbor_item_t *map = cbor_new_definite_map(8);
    cbor_item_t *user = cbor_new_definite_map(3);
    cbor_item_t *params = cbor_new_definite_array(1);
    cbor_item_t *p0 = cbor_new_definite_map(2);
    cbor_item_t *opts = cbor_new_definite_map(1);

    memset(cdh, m->cdh_byte, sizeof(cdh));
    memset(uid, m->user_id_byte, sizeof(uid));
    memset(pua, m->pin_byte, sizeof(pua));
    assert_int_equal(kc_cbor_map_add_int(map, 1, kc_cbor_new_bytes(cdh, sizeof(cdh))), KC_OK);
    assert_int_equal(kc_cbor_map_add_int(map, 2, rp_map(m->rp_id)), KC_OK);
    assert_int_equal(kc_cbor_map_add_str(user, "id", kc_cbor_new_bytes(uid, sizeof(uid))), KC_OK);
    assert_int_equal(kc_cbor_map_add_str(user, "name", kc_cbor_new_text(m->user_name)), KC_OK);
    assert_int_equal(kc_cbor_map_add_int(map, 3, user), KC_OK);
    assert_int_equal(kc_cbor_map_add_str(p0, "alg", kc_cbor_new_int(m->alg)), KC_OK);
    assert_int_equal(kc_cbor_map_add_str(p0, "type", kc_cbor_new_text("public-key")), KC_OK);
    assert_int_equal(kc_cbor_array_push(params, p0), KC_OK);
    assert_int_equal(kc_cbor_map_add_int(map, 4, params), KC_OK);
    if (m->extra_ext) {
        cbor_item_t *ext = cbor_new_definite_map(1);
        assert_int_equal(kc_cbor_map_add_str(ext, "credProtect", kc_cbor_new_int(2)), KC_OK);
        assert_int_equal(kc_cbor_map_add_int(map, 6, ext), KC_OK);
    }
    assert_int_equal(kc_cbor_map_add_str(opts, "rk", kc_cbor_new_bool(m->rk)), KC_OK);
    assert_int_equal(kc_cbor_map_add_int(map, 7, opts), KC_OK);
    if (m->with_pin) {
        assert_int_equal(kc_cbor_map_add_int(map, 8, kc_cbor_new_bytes(pua, sizeof(pua))), KC_OK);
        assert_int_equal(
            kc_cbor_map_add_int(map, 9, kc_cbor_new_int(m->pin_proto ? m->pin_proto : 2)), KC_OK);
    }
    return encode(KC_CTAP2_MAKE_CREDENTIAL, map, out, cap);
}

static struct kc_replay_msg msg(uint8_t cmd, const uint8_t *data, size_t len)
{
    struct kc_replay_msg m = {CID, cmd, data, len, len, true};
    return m;
}

static bool match_mc(const struct mc *a, const struct mc *b, char *why, size_t why_len)
{
    uint8_t ba[512], bb[512];
    size_t la = make_credential(a, ba, sizeof(ba)), lb = make_credential(b, bb, sizeof(bb));
    struct kc_replay_msg ra = msg(KC_HID_CBOR, ba, la), rb = msg(KC_HID_CBOR, bb, lb);
    return kc_replay_match(&ra, &rb, why, why_len);
}

static void test_allowed_differences_pass(void **state)
{
    (void)state;
    struct mc a, b;
    char why[256] = "";

    defaults(&a);
    defaults(&b);
    b.cdh_byte = 9;     /* a fresh clientDataHash */
    b.user_id_byte = 7; /* a random user id */
    a.with_pin = b.with_pin = true;
    b.pin_byte = 5; /* pinUvAuthParam from a fresh token */
    assert_true(match_mc(&a, &b, why, sizeof(why)));
    assert_string_equal(why, "");
}

static void test_rp_id_named(void **state)
{
    (void)state;
    struct mc a, b;
    char why[256];

    defaults(&a);
    defaults(&b);
    b.rp_id = "b.example";
    assert_false(match_mc(&a, &b, why, sizeof(why)));
    assert_string_equal(why, "recorded rp.id \"a.example\", sent \"b.example\"");
}

static void test_other_fields_named(void **state)
{
    (void)state;
    struct mc a, b;
    char why[256];

    defaults(&a);
    defaults(&b);
    b.user_name = "other";
    assert_false(match_mc(&a, &b, why, sizeof(why)));
    assert_string_equal(why, "recorded user.name \"rawctap\", sent \"other\"");

    defaults(&b);
    b.alg = -8;
    assert_false(match_mc(&a, &b, why, sizeof(why)));
    assert_string_equal(why, "recorded pubKeyCredParams[0].alg -7, sent -8");

    defaults(&b);
    b.rk = true;
    assert_false(match_mc(&a, &b, why, sizeof(why)));
    assert_string_equal(why, "recorded options.rk false, sent true");

    defaults(&b);
    b.extra_ext = true;
    assert_false(match_mc(&a, &b, why, sizeof(why)));
    assert_string_equal(why, "recorded extensions (absent), sent {1 entry}");

    /* pinUvAuthParam may differ, the protocol it was made with may not */
    defaults(&b);
    a.with_pin = b.with_pin = true;
    b.pin_proto = 1;
    assert_false(match_mc(&a, &b, why, sizeof(why)));
    assert_string_equal(why, "recorded pinUvAuthProtocol 2, sent 1");
    a.with_pin = false;

    /* an allowed field still has to be there */
    defaults(&b);
    a.with_pin = true;
    assert_false(match_mc(&a, &b, why, sizeof(why)));
    assert_string_equal(why, "recorded pinUvAuthParam h'0000000000000000...' (16 bytes), sent "
                             "(absent)");
}

static void test_command_and_lengths(void **state)
{
    (void)state;
    uint8_t body[512], info = KC_CTAP2_GET_INFO, ping_a[64], ping_b[64], nonce_a[8], nonce_b[8];
    struct mc a;
    char why[256];
    struct kc_replay_msg r, s;

    defaults(&a);
    r = msg(KC_HID_CBOR, &info, 1);
    s = msg(KC_HID_PING, ping_a, sizeof(ping_a));
    assert_false(kc_replay_match(&r, &s, why, sizeof(why)));
    assert_string_equal(why, "recorded CTAP2 getInfo, sent CTAPHID PING (64 bytes)");

    s = msg(KC_HID_CBOR, body, make_credential(&a, body, sizeof(body)));
    assert_false(kc_replay_match(&r, &s, why, sizeof(why)));
    assert_string_equal(why, "recorded CTAP2 getInfo, sent CTAP2 makeCredential");

    /* PING and INIT payloads are fresh every run; their lengths are not */
    memset(ping_a, 1, sizeof(ping_a));
    memset(ping_b, 2, sizeof(ping_b));
    r = msg(KC_HID_PING, ping_a, sizeof(ping_a));
    s = msg(KC_HID_PING, ping_b, sizeof(ping_b));
    assert_true(kc_replay_match(&r, &s, why, sizeof(why)));
    s = msg(KC_HID_PING, ping_b, 32);
    assert_false(kc_replay_match(&r, &s, why, sizeof(why)));
    assert_string_equal(why, "recorded 64 bytes, sent 32 bytes");
    memset(nonce_a, 3, sizeof(nonce_a));
    memset(nonce_b, 4, sizeof(nonce_b));
    r = msg(KC_HID_INIT, nonce_a, 8);
    s = msg(KC_HID_INIT, nonce_b, 8);
    r.cid = s.cid = KC_HID_BROADCAST_CID;
    assert_true(kc_replay_match(&r, &s, why, sizeof(why)));
    s.cid = CID;
    assert_false(kc_replay_match(&r, &s, why, sizeof(why)));
    assert_string_equal(why, "recorded the broadcast channel, sent an allocated channel");

    /* LOCK carries a value that matters */
    r = msg(KC_HID_LOCK, nonce_a, 1);
    s = msg(KC_HID_LOCK, nonce_b, 1);
    assert_false(kc_replay_match(&r, &s, why, sizeof(why)));
    assert_string_equal(why, "recorded data h'03' (1 byte), sent h'04' (1 byte)");
}

/* getAssertion: clientDataHash, pinUvAuthParam and the hmac-secret salts
 * pass; the allowList does not. */
static size_t get_assertion(uint8_t cdh_byte, uint8_t salt_byte, uint8_t cred_byte, uint8_t *out,
                            size_t cap)
{
    uint8_t cdh[32], salt[32], cred[20], ka_x[32];
    cbor_item_t *map = cbor_new_definite_map(4);
    cbor_item_t *allow = cbor_new_definite_array(1);
    cbor_item_t *desc = cbor_new_definite_map(2);
    cbor_item_t *ext = cbor_new_definite_map(1);
    cbor_item_t *hs = cbor_new_definite_map(3);
    cbor_item_t *ka = cbor_new_definite_map(1);

    memset(cdh, cdh_byte, sizeof(cdh));
    memset(salt, salt_byte, sizeof(salt));
    memset(ka_x, salt_byte, sizeof(ka_x));
    memset(cred, cred_byte, sizeof(cred));
    assert_int_equal(kc_cbor_map_add_int(map, 1, kc_cbor_new_text("a.example")), KC_OK);
    assert_int_equal(kc_cbor_map_add_int(map, 2, kc_cbor_new_bytes(cdh, sizeof(cdh))), KC_OK);
    assert_int_equal(kc_cbor_map_add_str(desc, "id", kc_cbor_new_bytes(cred, sizeof(cred))), KC_OK);
    assert_int_equal(kc_cbor_map_add_str(desc, "type", kc_cbor_new_text("public-key")), KC_OK);
    assert_int_equal(kc_cbor_array_push(allow, desc), KC_OK);
    assert_int_equal(kc_cbor_map_add_int(map, 3, allow), KC_OK);
    assert_int_equal(kc_cbor_map_add_int(ka, -2, kc_cbor_new_bytes(ka_x, sizeof(ka_x))), KC_OK);
    assert_int_equal(kc_cbor_map_add_int(hs, 1, ka), KC_OK);
    assert_int_equal(kc_cbor_map_add_int(hs, 2, kc_cbor_new_bytes(salt, sizeof(salt))), KC_OK);
    assert_int_equal(kc_cbor_map_add_int(hs, 3, kc_cbor_new_bytes(salt, 16)), KC_OK);
    assert_int_equal(kc_cbor_map_add_str(ext, "hmac-secret", hs), KC_OK);
    assert_int_equal(kc_cbor_map_add_int(map, 4, ext), KC_OK);
    return encode(KC_CTAP2_GET_ASSERTION, map, out, cap);
}

static void test_get_assertion(void **state)
{
    (void)state;
    uint8_t a[512], b[512], cdh[32];
    size_t la = get_assertion(1, 1, 1, a, sizeof(a));
    size_t lb = get_assertion(2, 2, 1, b, sizeof(b));
    struct kc_replay_msg r = msg(KC_HID_CBOR, a, la), s = msg(KC_HID_CBOR, b, lb);
    char why[256];

    assert_true(kc_replay_match(&r, &s, why, sizeof(why)));
    assert_true(kc_replay_msg_cdh(&r, cdh));
    assert_int_equal(cdh[0], 1);
    assert_int_equal(cdh[31], 1);
    lb = get_assertion(2, 2, 9, b, sizeof(b));
    s = msg(KC_HID_CBOR, b, lb);
    assert_false(kc_replay_match(&r, &s, why, sizeof(why)));
    assert_string_equal(why, "recorded allowList[0].id h'0101010101010101...' (20 bytes), sent "
                             "h'0909090909090909...' (20 bytes)");
    /* not a request with a clientDataHash */
    r = msg(KC_HID_PING, a, 10);
    assert_false(kc_replay_msg_cdh(&r, cdh));
}

/* clientPIN: the platform key and the encrypted PIN are fresh each run. */
static void test_client_pin(void **state)
{
    (void)state;
    uint8_t a[256], b[256], x[32], enc_a[16], enc_b[16];
    struct kc_replay_msg r, s;
    char why[256];
    size_t la, lb;

    for (int v = 0; v < 2; v++) {
        cbor_item_t *map = cbor_new_definite_map(4);
        cbor_item_t *ka = cbor_new_definite_map(1);
        memset(x, v + 1, sizeof(x));
        assert_int_equal(kc_cbor_map_add_int(map, 1, kc_cbor_new_int(2)), KC_OK);
        assert_int_equal(kc_cbor_map_add_int(map, 2, kc_cbor_new_int(5)), KC_OK);
        assert_int_equal(kc_cbor_map_add_int(ka, -2, kc_cbor_new_bytes(x, sizeof(x))), KC_OK);
        assert_int_equal(kc_cbor_map_add_int(map, 3, ka), KC_OK);
        memset(v == 0 ? enc_a : enc_b, v + 7, 16);
        assert_int_equal(kc_cbor_map_add_int(map, 6, kc_cbor_new_bytes(v == 0 ? enc_a : enc_b, 16)),
                         KC_OK);
        if (v == 0)
            la = encode(KC_CTAP2_CLIENT_PIN, map, a, sizeof(a));
        else
            lb = encode(KC_CTAP2_CLIENT_PIN, map, b, sizeof(b));
    }
    r = msg(KC_HID_CBOR, a, la);
    s = msg(KC_HID_CBOR, b, lb);
    assert_true(kc_replay_match(&r, &s, why, sizeof(why)));
    /* the subcommand is not */
    {
        cbor_item_t *map = cbor_new_definite_map(2);
        assert_int_equal(kc_cbor_map_add_int(map, 1, kc_cbor_new_int(2)), KC_OK);
        assert_int_equal(kc_cbor_map_add_int(map, 2, kc_cbor_new_int(4)), KC_OK);
        lb = encode(KC_CTAP2_CLIENT_PIN, map, b, sizeof(b));
    }
    s = msg(KC_HID_CBOR, b, lb);
    assert_false(kc_replay_match(&r, &s, why, sizeof(why)));
    assert_string_equal(why, "recorded subCommand 5, sent 4");
}

static void test_malformed_and_labels(void **state)
{
    (void)state;
    uint8_t info = KC_CTAP2_GET_INFO, mc[512], bad[4] = {KC_CTAP2_MAKE_CREDENTIAL, 0xa1, 0x01, 0};
    struct mc m;
    struct kc_replay_msg r, s;
    char why[256], label[64];

    defaults(&m);
    r = msg(KC_HID_CBOR, mc, make_credential(&m, mc, sizeof(mc)));
    s = msg(KC_HID_CBOR, bad, 3);
    assert_false(kc_replay_match(&r, &s, why, sizeof(why)));
    assert_non_null(strstr(why, "sent malformed CBOR (2 bytes)"));
    kc_replay_msg_label(&r, label, sizeof(label));
    assert_string_equal(label, "CTAP2 makeCredential");
    r = msg(KC_HID_CBOR, &info, 1);
    kc_replay_msg_label(&r, label, sizeof(label));
    assert_string_equal(label, "CTAP2 getInfo");
    r = msg(KC_HID_WINK, NULL, 0);
    kc_replay_msg_label(&r, label, sizeof(label));
    assert_string_equal(label, "CTAPHID WINK");
    assert_false(kc_replay_match(NULL, &r, why, sizeof(why)));
}

/* CTAP1: a fresh challenge passes, another application parameter does not. */
static void test_u2f(void **state)
{
    (void)state;
    uint8_t a[4 + 1 + 64 + 1], b[sizeof(a)];
    struct kc_replay_msg r, s;
    char why[256];

    memset(a, 0, sizeof(a));
    a[1] = 0x01; /* REGISTER */
    a[4] = 64;
    memset(a + 5, 0x11, 32);
    memset(a + 37, 0x22, 32);
    memcpy(b, a, sizeof(a));
    memset(b + 5, 0x33, 32);
    r = msg(KC_HID_MSG, a, sizeof(a));
    s = msg(KC_HID_MSG, b, sizeof(b));
    assert_true(kc_replay_match(&r, &s, why, sizeof(why)));
    b[40] ^= 0xff;
    assert_false(kc_replay_match(&r, &s, why, sizeof(why)));
    assert_non_null(strstr(why, "recorded application parameter h'2222222222222222...'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed_differences_pass),
        cmocka_unit_test(test_rp_id_named),
        cmocka_unit_test(test_other_fields_named),
        cmocka_unit_test(test_command_and_lengths),
        cmocka_unit_test(test_get_assertion),
        cmocka_unit_test(test_client_pin),
        cmocka_unit_test(test_malformed_and_labels),
        cmocka_unit_test(test_u2f),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
