/* CTAP1/U2F: APDU encoding, response parsing and verification against
 * vectors signed with python3-cryptography (fixtures/ctap/vectors.json),
 * and the command path through the scripted in-memory transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctaphid/io.h"
#include "ctaphid/io_int.h"
#include "ctaphid/status.h"
#include "ctaphid/transport.h"
#include "ctaphid/transport_mem_int.h"
#include "ctaphid/u2f.h"
#include "tests/unit/ctaphid/ctap_vectors.h"

struct u2f_vec {
    json_t *root, *u;
    uint8_t *chal, *app, *kh, *pub, *cert, *reg, *auth;
    size_t chal_len, app_len, kh_len, pub_len, cert_len, reg_len, auth_len;
};

static int setup(void **state)
{
    struct u2f_vec *v = calloc(1, sizeof(*v));

    if (v == NULL || (v->root = ctap_vectors_load()) == NULL)
        return -1;
    v->u = json_object_get(v->root, "u2f");
    v->chal = vec_hex(v->u, "challenge", &v->chal_len);
    v->app = vec_hex(v->u, "app_id_hash", &v->app_len);
    v->kh = vec_hex(v->u, "key_handle", &v->kh_len);
    v->pub = vec_hex(v->u, "public_key", &v->pub_len);
    v->cert = vec_hex(v->u, "cert", &v->cert_len);
    v->reg = vec_hex(v->u, "register", &v->reg_len);
    v->auth = vec_hex(v->u, "authenticate", &v->auth_len);
    if (v->chal_len != 32 || v->app_len != 32 || v->pub_len != 65 || v->reg == NULL ||
        v->auth == NULL || v->kh == NULL || v->cert == NULL)
        return -1;
    *state = v;
    return 0;
}

static int teardown(void **state)
{
    struct u2f_vec *v = *state;

    free(v->chal);
    free(v->app);
    free(v->kh);
    free(v->pub);
    free(v->cert);
    free(v->reg);
    free(v->auth);
    json_decref(v->root);
    free(v);
    return 0;
}

static void test_apdu_encoding(void **state)
{
    uint8_t data[64], out[128];
    size_t len = 0;
    static const uint8_t version[] = {0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00};

    (void)state;
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)i;
    assert_int_equal(
        kc_u2f_apdu_encode(KC_U2F_REGISTER, 0x00, 0x00, data, 64, out, sizeof(out), &len), KC_OK);
    assert_int_equal(len, 7 + 64 + 2);
    assert_int_equal(out[0], 0x00);
    assert_int_equal(out[1], KC_U2F_REGISTER);
    assert_int_equal(out[4], 0x00);
    assert_int_equal(out[5], 0x00);
    assert_int_equal(out[6], 64);
    assert_memory_equal(out + 7, data, 64);
    assert_int_equal(out[71], 0x00);
    assert_int_equal(out[72], 0x00);
    assert_int_equal(kc_u2f_apdu_encode(KC_U2F_AUTHENTICATE, KC_U2F_AUTH_CHECK_ONLY, 0, data, 10,
                                        out, sizeof(out), &len),
                     KC_OK);
    assert_int_equal(out[2], 0x07);
    assert_int_equal(out[6], 10);
    assert_int_equal(len, 19);
    assert_int_equal(kc_u2f_apdu_encode(KC_U2F_VERSION, 0, 0, NULL, 0, out, sizeof(out), &len),
                     KC_OK);
    assert_int_equal(len, sizeof(version));
    assert_memory_equal(out, version, sizeof(version));
    /* the buffer must hold it all */
    assert_int_equal(kc_u2f_apdu_encode(KC_U2F_REGISTER, 0, 0, data, 64, out, 72, &len),
                     KC_ERR_TOO_LARGE);
    assert_int_equal(kc_u2f_apdu_encode(KC_U2F_REGISTER, 0, 0, NULL, 4, out, 72, &len),
                     KC_ERR_INVALID_ARG);
}

static void test_split_sw(void **state)
{
    uint8_t r[] = {0x01, 0x02, 0x69, 0x85};
    uint16_t sw = 0;
    size_t body = 99;

    (void)state;
    assert_int_equal(kc_u2f_split_sw(r, sizeof(r), &sw, &body), KC_OK);
    assert_int_equal(sw, KC_U2F_SW_CONDITIONS_NOT_SATISFIED);
    assert_int_equal(body, 2);
    assert_int_equal(kc_u2f_split_sw(r, 1, &sw, &body), KC_ERR_PROTOCOL);
    assert_string_equal(kc_u2f_sw_name(0x6985), "SW_CONDITIONS_NOT_SATISFIED");
}

static void test_register_parse_verify(void **state)
{
    struct u2f_vec *v = *state;
    struct kc_u2f_register reg;
    uint8_t other[32];

    memset(&reg, 0, sizeof(reg));
    assert_int_equal(kc_u2f_register_parse(v->reg, v->reg_len, &reg), KC_OK);
    assert_memory_equal(reg.pubkey, v->pub, 65);
    assert_int_equal(reg.key_handle_len, v->kh_len);
    assert_memory_equal(reg.key_handle, v->kh, v->kh_len);
    assert_int_equal(reg.cert_len, v->cert_len);
    assert_memory_equal(reg.cert, v->cert, v->cert_len);
    assert_int_equal(reg.sig_len, v->reg_len - 1 - 65 - 1 - v->kh_len - v->cert_len);
    assert_int_equal(kc_u2f_register_verify(&reg, v->chal, v->app), KC_OK);
    assert_string_equal(reg.reason, "ok");
    /* another challenge or app id: the signature does not cover it */
    memcpy(other, v->chal, 32);
    other[5] ^= 0x20;
    assert_int_equal(kc_u2f_register_verify(&reg, other, v->app), KC_ERR_VERIFY);
    assert_int_equal(kc_u2f_register_verify(&reg, v->chal, other), KC_ERR_VERIFY);
    assert_non_null(strstr(reg.reason, "does not verify"));
}

static void test_register_bad_inputs(void **state)
{
    struct u2f_vec *v = *state;
    struct kc_u2f_register reg;
    size_t len;
    uint8_t *bad = vec_hex(v->u, "register_bad_sig", &len);

    memset(&reg, 0, sizeof(reg));
    assert_non_null(bad);
    assert_int_equal(kc_u2f_register_parse(bad, len, &reg), KC_OK);
    assert_int_equal(kc_u2f_register_verify(&reg, v->chal, v->app), KC_ERR_VERIFY);
    free(bad);
    bad = vec_hex(v->u, "register_truncated", &len);
    assert_int_equal(kc_u2f_register_parse(bad, len, &reg), KC_ERR_PROTOCOL);
    free(bad);
    bad = vec_hex(v->u, "register_bad_reserved", &len);
    assert_int_equal(kc_u2f_register_parse(bad, len, &reg), KC_ERR_PROTOCOL);
    assert_non_null(strstr(reg.reason, "0x05"));
    free(bad);
    /* key handle length pointing past the end */
    bad = malloc(v->reg_len);
    assert_non_null(bad);
    memcpy(bad, v->reg, v->reg_len);
    bad[66] = 0xff;
    assert_int_equal(kc_u2f_register_parse(bad, 66 + 1 + 100, &reg), KC_ERR_PROTOCOL);
    /* nothing after the certificate: no signature */
    assert_int_equal(kc_u2f_register_parse(v->reg, 1 + 65 + 1 + v->kh_len + v->cert_len, &reg),
                     KC_ERR_PROTOCOL);
    /* key handle of zero length */
    memcpy(bad, v->reg, v->reg_len);
    bad[66] = 0x00;
    assert_int_equal(kc_u2f_register_parse(bad, v->reg_len, &reg), KC_ERR_PROTOCOL);
    /* compressed point marker */
    memcpy(bad, v->reg, v->reg_len);
    bad[1] = 0x02;
    assert_int_equal(kc_u2f_register_parse(bad, v->reg_len, &reg), KC_ERR_PROTOCOL);
    /* point off the curve parses but does not verify */
    memcpy(bad, v->reg, v->reg_len);
    bad[65] ^= 0x01;
    assert_int_equal(kc_u2f_register_parse(bad, v->reg_len, &reg), KC_OK);
    assert_int_equal(kc_u2f_register_verify(&reg, v->chal, v->app), KC_ERR_VERIFY);
    assert_non_null(strstr(reg.reason, "P-256"));
    free(bad);
}

static void test_authenticate_parse_verify(void **state)
{
    struct u2f_vec *v = *state;
    struct kc_u2f_auth auth;
    size_t len;
    uint8_t *other = vec_hex(v->u, "authenticate_other_challenge", &len);
    uint8_t *bad;

    memset(&auth, 0, sizeof(auth));
    assert_int_equal(kc_u2f_authenticate_parse(v->auth, v->auth_len, &auth), KC_OK);
    assert_int_equal(auth.user_presence, 1);
    assert_int_equal(auth.counter, vec_int(v->u, "authenticate_counter"));
    assert_int_equal(auth.sig_len, v->auth_len - 5);
    assert_int_equal(kc_u2f_authenticate_verify(&auth, v->chal, v->app, v->pub), KC_OK);
    assert_int_equal(kc_u2f_authenticate_verify(&auth, other, v->app, v->pub), KC_ERR_VERIFY);
    /* a tampered counter is caught by the signature */
    auth.counter++;
    assert_int_equal(kc_u2f_authenticate_verify(&auth, v->chal, v->app, v->pub), KC_ERR_VERIFY);
    free(other);
    bad = vec_hex(v->u, "authenticate_bad_sig", &len);
    assert_int_equal(kc_u2f_authenticate_parse(bad, len, &auth), KC_OK);
    assert_int_equal(kc_u2f_authenticate_verify(&auth, v->chal, v->app, v->pub), KC_ERR_VERIFY);
    assert_non_null(strstr(auth.reason, "does not verify"));
    free(bad);
    bad = vec_hex(v->u, "authenticate_truncated", &len);
    assert_int_equal(kc_u2f_authenticate_parse(bad, len, &auth), KC_ERR_PROTOCOL);
    free(bad);
    assert_int_equal(kc_u2f_authenticate_parse(v->auth, v->auth_len, NULL), KC_ERR_INVALID_ARG);
    /* a signature longer than any DER P-256 signature */
    bad = calloc(1, 5 + KC_U2F_SIG_MAX + 1);
    assert_non_null(bad);
    assert_int_equal(kc_u2f_authenticate_parse(bad, 5 + KC_U2F_SIG_MAX + 1, &auth),
                     KC_ERR_PROTOCOL);
    free(bad);
}

/* ---- command path through the in-memory transport ---- */

#define TEST_CID 0x0a0b0c0du

struct fake_card {
    struct u2f_vec *v;
    struct kc_reassembly ra;
    uint8_t buf[KC_HID_MAX_MSG];
    bool active;
    uint16_t register_sw;   /* what REGISTER answers (0x9000: the vector) */
    int touch_after;        /* answer 6985 this many times first */
    uint8_t last_apdu[512]; /* the last APDU the host sent */
    size_t last_apdu_len;
    int apdus;
};

static void send_msg(struct kc_transport *t, uint32_t cid, uint8_t cmd, const uint8_t *msg,
                     size_t len)
{
    uint8_t report[KC_HID_REPORT_LEN];

    for (size_t i = 0; i < kc_frag_count(len); i++) {
        assert_int_equal(kc_frag_report(cid, cmd, msg, len, i, report, sizeof(report)), KC_OK);
        assert_int_equal(kc_mem_push(t, report, sizeof(report), 0), KC_OK);
    }
}

static void answer_apdu(struct kc_transport *t, struct fake_card *c, uint32_t cid,
                        const uint8_t *apdu, size_t len)
{
    uint8_t resp[KC_HID_MAX_MSG];
    size_t n = 0;
    uint16_t sw = KC_U2F_SW_NO_ERROR;

    c->apdus++;
    if (len <= sizeof(c->last_apdu)) {
        memcpy(c->last_apdu, apdu, len);
        c->last_apdu_len = len;
    }
    if (c->touch_after > 0) {
        c->touch_after--;
        sw = KC_U2F_SW_CONDITIONS_NOT_SATISFIED;
    } else if (apdu[1] == KC_U2F_VERSION) {
        memcpy(resp, "U2F_V2", 6);
        n = 6;
    } else if (apdu[1] == KC_U2F_REGISTER) {
        sw = c->register_sw;
        if (sw == KC_U2F_SW_NO_ERROR) {
            memcpy(resp, c->v->reg, c->v->reg_len);
            n = c->v->reg_len;
        }
    } else if (apdu[1] == KC_U2F_AUTHENTICATE) {
        if (apdu[2] == KC_U2F_AUTH_CHECK_ONLY) {
            sw = KC_U2F_SW_CONDITIONS_NOT_SATISFIED;
        } else {
            memcpy(resp, c->v->auth, c->v->auth_len);
            n = c->v->auth_len;
        }
    } else {
        sw = KC_U2F_SW_INS_NOT_SUPPORTED;
    }
    resp[n++] = (uint8_t)(sw >> 8);
    resp[n++] = (uint8_t)sw;
    send_msg(t, cid, KC_HID_MSG, resp, n);
}

static void responder(struct kc_transport *t, const uint8_t *report, size_t len, void *ctx)
{
    struct fake_card *c = ctx;
    uint32_t cid = (uint32_t)report[0] << 24 | (uint32_t)report[1] << 16 |
                   (uint32_t)report[2] << 8 | report[3];
    int r;

    if (len < KC_HID_REPORT_LEN)
        return;
    if ((report[4] & KC_HID_TYPE_INIT) && !c->active) {
        kc_reassembly_init(&c->ra, cid, c->buf, sizeof(c->buf));
        c->active = true;
    }
    if (!c->active)
        return;
    r = kc_reassembly_feed(&c->ra, report, len);
    if (r == 0)
        return;
    c->active = false;
    assert_int_equal(r, 1);
    if (c->ra.cmd == KC_HID_INIT) {
        uint8_t init[KC_HID_INIT_RESP_LEN] = {0};
        memcpy(init, c->buf, KC_HID_NONCE_LEN);
        init[8] = (uint8_t)(TEST_CID >> 24);
        init[9] = (uint8_t)(TEST_CID >> 16);
        init[10] = (uint8_t)(TEST_CID >> 8);
        init[11] = (uint8_t)TEST_CID;
        init[12] = 2;
        init[16] = KC_HID_CAP_WINK | KC_HID_CAP_CBOR;
        send_msg(t, cid, KC_HID_INIT, init, sizeof(init));
    } else if (c->ra.cmd == KC_HID_MSG) {
        answer_apdu(t, c, cid, c->buf, c->ra.have);
    }
}

static struct kc_dev *open_fake(struct fake_card *c, struct u2f_vec *v)
{
    struct kc_transport *t = kc_mem_transport_new();
    struct kc_timeouts to;
    struct kc_dev *d = NULL;

    memset(c, 0, sizeof(*c));
    c->v = v;
    c->register_sw = KC_U2F_SW_NO_ERROR;
    assert_non_null(t);
    kc_mem_set_responder(t, responder, c);
    kc_timeouts_default(&to);
    to.init_ms = to.command_ms = 500;
    assert_int_equal(kc_dev_wrap(&d, t, &to), KC_OK);
    assert_int_equal(kc_dev_init(d, NULL), KC_OK);
    return d;
}

static void test_command_version_register_authenticate(void **state)
{
    struct u2f_vec *v = *state;
    struct fake_card card;
    struct kc_dev *d = open_fake(&card, v);
    struct kc_u2f_register reg;
    struct kc_u2f_auth auth;
    char version[16];
    uint16_t sw = 0;

    assert_int_equal(kc_u2f_check_version(d, version, sizeof(version), &sw), KC_OK);
    assert_string_equal(version, "U2F_V2");
    assert_int_equal(sw, 0x9000);
    assert_int_equal(card.last_apdu_len, 7);

    assert_int_equal(kc_u2f_register(d, v->chal, v->app, &reg), KC_OK);
    assert_int_equal(reg.sw, 0x9000);
    assert_int_equal(reg.key_handle_len, v->kh_len);
    /* the APDU carried chal || app, extended length */
    assert_int_equal(card.last_apdu_len, 7 + 64 + 2);
    assert_int_equal(card.last_apdu[1], KC_U2F_REGISTER);
    assert_memory_equal(card.last_apdu + 7, v->chal, 32);
    assert_memory_equal(card.last_apdu + 39, v->app, 32);

    assert_int_equal(kc_u2f_authenticate(d, KC_U2F_AUTH_ENFORCE, v->chal, v->app, reg.key_handle,
                                         reg.key_handle_len, reg.pubkey, &auth),
                     KC_OK);
    assert_int_equal(auth.counter, vec_int(v->u, "authenticate_counter"));
    assert_int_equal(card.last_apdu[2], KC_U2F_AUTH_ENFORCE);
    assert_int_equal(card.last_apdu[6], 64 + 1 + v->kh_len);
    assert_int_equal(card.last_apdu[7 + 64], v->kh_len);
    assert_memory_equal(card.last_apdu + 7 + 65, v->kh, v->kh_len);

    /* a wrong challenge makes the card's (vector) signature fail to verify */
    {
        uint8_t other[32];
        memcpy(other, v->chal, 32);
        other[0] ^= 1;
        assert_int_equal(kc_u2f_authenticate(d, KC_U2F_AUTH_DONT_ENFORCE, other, v->app,
                                             reg.key_handle, reg.key_handle_len, reg.pubkey, &auth),
                         KC_ERR_VERIFY);
        assert_int_equal(card.last_apdu[2], KC_U2F_AUTH_DONT_ENFORCE);
    }

    /* check-only: the card answers CONDITIONS_NOT_SATISFIED for a known handle */
    assert_int_equal(kc_u2f_authenticate(d, KC_U2F_AUTH_CHECK_ONLY, v->chal, v->app, reg.key_handle,
                                         reg.key_handle_len, NULL, &auth),
                     KC_ERR_U2F);
    assert_int_equal(auth.sw, KC_U2F_SW_CONDITIONS_NOT_SATISFIED);
    assert_non_null(strstr(auth.reason, "CONDITIONS_NOT_SATISFIED"));
    assert_int_equal(kc_u2f_authenticate(d, 0x42, v->chal, v->app, reg.key_handle,
                                         reg.key_handle_len, NULL, &auth),
                     KC_ERR_INVALID_ARG);
    kc_dev_close(d);
}

static void test_command_status_words(void **state)
{
    struct u2f_vec *v = *state;
    struct fake_card card;
    struct kc_dev *d = open_fake(&card, v);
    struct kc_u2f_register reg;

    card.register_sw = KC_U2F_SW_WRONG_DATA;
    assert_int_equal(kc_u2f_register(d, v->chal, v->app, &reg), KC_ERR_U2F);
    assert_int_equal(reg.sw, KC_U2F_SW_WRONG_DATA);
    assert_non_null(strstr(reg.reason, kc_u2f_sw_name(KC_U2F_SW_WRONG_DATA)));

    /* touch needed twice, then the card answers */
    card.register_sw = KC_U2F_SW_NO_ERROR;
    card.touch_after = 2;
    card.apdus = 0;
    assert_int_equal(kc_u2f_register_wait(d, v->chal, v->app, &reg, 2000, 10), KC_OK);
    assert_int_equal(card.apdus, 3);
    assert_int_equal(reg.sw, 0x9000);

    /* never touched: bounded by the timeout */
    card.touch_after = 1000;
    assert_int_equal(kc_u2f_register_wait(d, v->chal, v->app, &reg, 60, 10), KC_ERR_TIMEOUT);
    assert_int_equal(reg.sw, KC_U2F_SW_CONDITIONS_NOT_SATISFIED);
    assert_true(card.apdus >= 4);
    kc_dev_close(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apdu_encoding),
        cmocka_unit_test(test_split_sw),
        cmocka_unit_test(test_register_parse_verify),
        cmocka_unit_test(test_register_bad_inputs),
        cmocka_unit_test(test_authenticate_parse_verify),
        cmocka_unit_test(test_command_version_register_authenticate),
        cmocka_unit_test(test_command_status_words),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
