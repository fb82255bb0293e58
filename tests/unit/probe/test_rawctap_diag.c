/* rawctap's diagnosis against a scripted in-memory card: the sentence
 * printed for each way a card can fail (no INIT reply, a hang before the
 * presence prompt, nobody confirming, a slow CTAP1 answer, replies on the
 * wrong channel, CTAP and CTAPHID errors) and the exit code for every
 * libctaphid result. No sockets, no device. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctaphid/status.h"
#include "ctaphid/transport.h"
#include "probe/rawctap_diag.c"
#include "probe/rawctap_out.c"
#include "probe/rawctap_util.c"

enum script {
    CARD_SILENT,      /* never answers INIT */
    CARD_HANG,        /* keepalive PROCESSING, then nothing */
    CARD_NOBODY,      /* keepalive UPNEEDED, then nothing */
    CARD_WRONG_CID,   /* answers on a channel it never gave us */
    CARD_HID_BUSY,    /* CTAPHID_ERROR CHANNEL_BUSY */
    CARD_CBOR_DENIED, /* a CBOR reply carrying OPERATION_DENIED */
};

#define CARD_CID 0x01020304u

struct card {
    enum script script;
};

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void push_init(struct kc_transport *t, uint32_t cid, uint8_t cmd, const uint8_t *data,
                      size_t len, int delay_ms)
{
    uint8_t r[KC_HID_REPORT_LEN];
    memset(r, 0, sizeof(r));
    put_be32(r, cid);
    r[4] = cmd;
    r[5] = (uint8_t)(len >> 8);
    r[6] = (uint8_t)len;
    memcpy(r + 7, data, len);
    assert_int_equal(kc_mem_push(t, r, sizeof(r), delay_ms), 0);
}

static void responder(struct kc_transport *t, const uint8_t *rep, size_t len, void *arg)
{
    struct card *c = arg;
    if (len < 7)
        return;
    uint8_t cmd = rep[4];
    if (cmd == KC_HID_INIT) {
        if (c->script == CARD_SILENT)
            return;
        uint8_t resp[17];
        memcpy(resp, rep + 7, 8); /* the nonce */
        put_be32(resp + 8, CARD_CID);
        resp[12] = 2;
        resp[13] = 1;
        resp[14] = 0;
        resp[15] = 0;
        resp[16] = KC_HID_CAP_WINK | KC_HID_CAP_CBOR;
        push_init(t, KC_HID_BROADCAST_CID, KC_HID_INIT, resp, sizeof(resp), 0);
        return;
    }
    if (cmd == KC_HID_CANCEL)
        return; /* these cards ignore CANCEL */
    uint8_t ka_processing = KC_KEEPALIVE_PROCESSING, ka_up = KC_KEEPALIVE_UPNEEDED;
    uint8_t busy = KC_HID_ERR_CHANNEL_BUSY, denied = KC_CTAP2_ERR_OPERATION_DENIED;
    switch (c->script) {
    case CARD_HANG:
        push_init(t, CARD_CID, KC_HID_KEEPALIVE, &ka_processing, 1, 0);
        push_init(t, CARD_CID, KC_HID_KEEPALIVE, &ka_processing, 1, 40);
        break;
    case CARD_NOBODY:
        push_init(t, CARD_CID, KC_HID_KEEPALIVE, &ka_up, 1, 0);
        break;
    case CARD_WRONG_CID:
        push_init(t, 0x09090909u, cmd, rep + 7, 1, 0);
        push_init(t, 0x09090909u, cmd, rep + 7, 1, 10);
        break;
    case CARD_HID_BUSY:
        push_init(t, CARD_CID, KC_HID_ERROR, &busy, 1, 0);
        break;
    case CARD_CBOR_DENIED:
        push_init(t, CARD_CID, KC_HID_CBOR, &denied, 1, 0);
        break;
    default:
        break;
    }
}

struct fixture {
    struct rc_ctx ctx;
    struct card card;
};

/* A context in JSON mode (rc_err stores the message in "error") with a
 * device on a scripted transport; INIT is run unless the card is silent. */
static int open_card(struct fixture *f, enum script s, int *init_rc)
{
    memset(f, 0, sizeof(*f));
    f->card.script = s;
    f->ctx.json = true;
    f->ctx.result = json_object();
    f->ctx.to.init_ms = 150;
    f->ctx.to.command_ms = 200;
    f->ctx.to.presence_ms = 150;
    f->ctx.to.cancel_ms = 50;
    struct kc_transport *t = kc_mem_transport_new();
    assert_non_null(t);
    kc_mem_set_responder(t, responder, &f->card);
    assert_int_equal(kc_dev_wrap(&f->ctx.dev, t, &f->ctx.to), KC_OK);
    kc_dev_set_keepalive_cb(f->ctx.dev, rc_on_keepalive, &f->ctx);
    struct kc_init_info info;
    f->ctx.t_op_us = kc_now_us();
    *init_rc = kc_dev_init(f->ctx.dev, &info);
    return 0;
}

static void close_card(struct fixture *f)
{
    kc_dev_close(f->ctx.dev);
    json_decref(f->ctx.result);
}

static const char *error_text(struct fixture *f)
{
    const char *s = json_string_value(json_object_get(f->ctx.result, "error"));
    assert_non_null(s);
    return s;
}

static int transact(struct fixture *f, uint8_t cmd)
{
    uint8_t req[1] = {KC_CTAP2_MAKE_CREDENTIAL}, out[64];
    size_t n = 0;
    f->ctx.t_op_us = kc_now_us();
    return kc_dev_transact(f->ctx.dev, cmd, req, sizeof(req), out, sizeof(out), &n);
}

static void test_no_init_reply(void **state)
{
    (void)state;
    struct fixture f;
    int rc;
    open_card(&f, CARD_SILENT, &rc);
    assert_int_equal(rc, KC_ERR_TIMEOUT);
    assert_int_equal(rc_fail(&f.ctx, "INIT", rc), RC_EXIT_TRANSPORT);
    const char *e = error_text(&f);
    assert_non_null(strstr(e, "INIT: timeout in INIT phase after 0."));
    assert_non_null(strstr(e, "no reply to INIT on the broadcast channel"));
    assert_string_equal(json_string_value(json_object_get(f.ctx.result, "phase")), "INIT");
    assert_int_equal(json_integer_value(json_object_get(f.ctx.result, "exit")), 3);
    close_card(&f);
}

static void test_hang_before_presence(void **state)
{
    (void)state;
    struct fixture f;
    int rc;
    open_card(&f, CARD_HANG, &rc);
    assert_int_equal(rc, KC_OK);
    f.ctx.presence_cmd = true;
    rc = transact(&f, KC_HID_CBOR);
    assert_int_equal(rc, KC_ERR_TIMEOUT);
    assert_true(f.ctx.ka_valid);
    assert_int_equal(f.ctx.ka_status, KC_KEEPALIVE_PROCESSING);
    assert_int_equal(rc_fail(&f.ctx, "make-credential", rc), RC_EXIT_TRANSPORT);
    const char *e = error_text(&f);
    assert_non_null(strstr(e, "make-credential: timeout in command phase after 0.20s: "
                              "last packet KEEPALIVE PROCESSING at +0.0"));
    assert_non_null(
        strstr(e, "the card never asked for presence (hang before the presence prompt)"));
    assert_string_equal(json_string_value(json_object_get(f.ctx.result, "error_name")),
                        "KC_ERR_TIMEOUT");
    close_card(&f);
}

static void test_hang_without_presence_command(void **state)
{
    (void)state;
    struct fixture f;
    int rc;
    open_card(&f, CARD_HANG, &rc);
    rc = transact(&f, KC_HID_PING);
    assert_int_equal(rc, KC_ERR_TIMEOUT);
    rc_fail(&f.ctx, "PING", rc);
    /* a PING cannot hang before a presence prompt: no such claim */
    assert_null(strstr(error_text(&f), "presence"));
    close_card(&f);
}

static void test_nobody_confirms(void **state)
{
    (void)state;
    struct fixture f;
    int rc;
    open_card(&f, CARD_NOBODY, &rc);
    f.ctx.presence_cmd = true;
    rc = transact(&f, KC_HID_CBOR);
    assert_int_equal(rc, KC_ERR_TIMEOUT);
    assert_true(f.ctx.upneeded_said);
    assert_int_equal(rc_fail(&f.ctx, "get-assertion", rc), RC_EXIT_TRANSPORT);
    const char *e = error_text(&f);
    assert_non_null(strstr(e, "timeout in presence phase after 0.15s"));
    assert_non_null(strstr(e, "last packet KEEPALIVE UPNEEDED"));
    assert_non_null(strstr(e, "nobody confirmed"));
    close_card(&f);
}

static void test_slow_ctap1(void **state)
{
    (void)state;
    struct fixture f;
    int rc;
    open_card(&f, CARD_HANG, &rc);
    f.ctx.in_ctap1 = true;
    rc = transact(&f, KC_HID_MSG);
    assert_int_equal(rc, KC_ERR_TIMEOUT);
    rc_fail(&f.ctx, "u2f-register", rc);
    assert_non_null(strstr(error_text(&f), "slow CTAP1: raise --timeout-ms"));
    close_card(&f);
}

static void test_wrong_channel(void **state)
{
    (void)state;
    struct fixture f;
    int rc;
    open_card(&f, CARD_WRONG_CID, &rc);
    rc = transact(&f, KC_HID_PING);
    assert_int_equal(rc, KC_ERR_TIMEOUT);
    rc_fail(&f.ctx, "PING", rc);
    assert_non_null(strstr(error_text(&f), "2 report(s) arrived on other channels"));
    close_card(&f);
}

static void test_hid_error_named(void **state)
{
    (void)state;
    struct fixture f;
    int rc;
    open_card(&f, CARD_HID_BUSY, &rc);
    rc = transact(&f, KC_HID_PING);
    assert_int_equal(rc, KC_ERR_HID);
    assert_int_equal(rc_fail(&f.ctx, "PING", rc), RC_EXIT_CTAP);
    assert_non_null(strstr(error_text(&f), "CTAPHID_ERROR CHANNEL_BUSY (0x06)"));
    assert_string_equal(json_string_value(json_object_get(f.ctx.result, "error_name")),
                        "CHANNEL_BUSY");
    close_card(&f);
}

static void test_ctap2_status_named(void **state)
{
    (void)state;
    struct fixture f;
    int rc;
    open_card(&f, CARD_CBOR_DENIED, &rc);
    assert_int_equal(rc_fail(&f.ctx, "make-credential", KC_CTAP2_ERR_OPERATION_DENIED),
                     RC_EXIT_CTAP);
    assert_string_equal(error_text(&f),
                        "make-credential: the card answered CTAP2_ERR_OPERATION_DENIED (0x27)");
    assert_int_equal(json_integer_value(json_object_get(f.ctx.result, "exit")), 4);
    close_card(&f);
}

static void test_exit_codes(void **state)
{
    (void)state;
    static const struct {
        int err, code;
    } v[] = {
        {KC_OK, RC_EXIT_OK},
        {KC_CTAP2_ERR_OPERATION_DENIED, RC_EXIT_CTAP},
        {KC_CTAP2_ERR_PIN_INVALID, RC_EXIT_CTAP},
        {KC_ERR_NO_DEVICE, RC_EXIT_TRANSPORT},
        {KC_ERR_PERMISSION, RC_EXIT_TRANSPORT},
        {KC_ERR_IO, RC_EXIT_TRANSPORT},
        {KC_ERR_TIMEOUT, RC_EXIT_TRANSPORT},
        {KC_ERR_UNPLUGGED, RC_EXIT_TRANSPORT},
        {KC_ERR_PROTOCOL, RC_EXIT_TRANSPORT},
        {KC_ERR_CBOR, RC_EXIT_TRANSPORT},
        {KC_ERR_HID, RC_EXIT_CTAP},
        {KC_ERR_U2F, RC_EXIT_CTAP},
        {KC_ERR_UNSUPPORTED, RC_EXIT_CTAP},
        {KC_ERR_NO_PIN_PROTOCOL, RC_EXIT_CTAP},
        {KC_ERR_VERIFY, RC_EXIT_VERIFY},
        {KC_ERR_NOMEM, RC_EXIT_LOCAL},
        {KC_ERR_CRYPTO, RC_EXIT_LOCAL},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        assert_int_equal(rc_exit_for(v[i].err), v[i].code);
}

static void test_text_output(void **state)
{
    (void)state;
    struct rc_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.json = true;
    ctx.result = json_object();
    rc_out_str(&ctx, "cred_id", "AQID");
    rc_out_int(&ctx, "sign_count", 7);
    rc_out_bool(&ctx, "up", true);
    const uint8_t b[] = {0xde, 0xad};
    rc_out_hex(&ctx, "sig", b, sizeof(b));
    assert_string_equal(json_string_value(json_object_get(ctx.result, "cred_id")), "AQID");
    assert_int_equal(json_integer_value(json_object_get(ctx.result, "sign_count")), 7);
    assert_true(json_is_true(json_object_get(ctx.result, "up")));
    assert_string_equal(json_string_value(json_object_get(ctx.result, "sig")), "dead");
    /* the first error wins: later ones do not overwrite it */
    rc_err(&ctx, "first %d", 1);
    rc_err(&ctx, "second");
    assert_string_equal(json_string_value(json_object_get(ctx.result, "error")), "first 1");
    json_decref(ctx.result);
}

/* What fn(ctx) prints on stdout, in buf. */
static void stdout_of(void (*fn)(struct rc_ctx *), struct rc_ctx *ctx, char *buf, size_t cap)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDOUT_FILENO) >= 0);
    fn(ctx);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    size_t n = fread(buf, 1, cap - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
}

static void pubkey_as_pem(struct rc_ctx *ctx)
{
    rc_out_pubkey(ctx, "a101", "PEM\n", true);
}

static void pubkey_as_cose(struct rc_ctx *ctx)
{
    rc_out_pubkey(ctx, "a101", "PEM\n", false);
}

static void pubkey_no_pem(struct rc_ctx *ctx)
{
    rc_out_pubkey(ctx, "a101", NULL, true);
}

static void test_pubkey_and_failure_output(void **state)
{
    (void)state;
    struct rc_ctx ctx;
    char out[128];
    memset(&ctx, 0, sizeof(ctx));
    /* text mode: the PEM block when asked, else the COSE hex; no JSON touched */
    stdout_of(pubkey_as_pem, &ctx, out, sizeof(out));
    assert_string_equal(out, "public_key_pem:\nPEM\n");
    stdout_of(pubkey_as_cose, &ctx, out, sizeof(out));
    assert_string_equal(out, "public_key_cose: a101\n");
    stdout_of(pubkey_no_pem, &ctx, out, sizeof(out));
    assert_string_equal(out, "public_key_pem:\n");
    rc_json_failed(&ctx, "VERIFY_ASSERTION"); /* no result object: nothing to mark */
    /* JSON mode: both forms stored, nothing printed */
    ctx.json = true;
    ctx.result = json_object();
    stdout_of(pubkey_as_pem, &ctx, out, sizeof(out));
    assert_string_equal(out, "");
    assert_string_equal(json_string_value(json_object_get(ctx.result, "public_key_cose")), "a101");
    assert_string_equal(json_string_value(json_object_get(ctx.result, "public_key_pem")), "PEM\n");
    rc_json_failed(&ctx, "VERIFY_ASSERTION");
    assert_true(json_is_false(json_object_get(ctx.result, "ok")));
    assert_string_equal(json_string_value(json_object_get(ctx.result, "error_name")),
                        "VERIFY_ASSERTION");
    json_decref(ctx.result);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_init_reply),
        cmocka_unit_test(test_hang_before_presence),
        cmocka_unit_test(test_hang_without_presence_command),
        cmocka_unit_test(test_nobody_confirms),
        cmocka_unit_test(test_slow_ctap1),
        cmocka_unit_test(test_wrong_channel),
        cmocka_unit_test(test_hid_error_named),
        cmocka_unit_test(test_ctap2_status_named),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_text_output),
        cmocka_unit_test(test_pubkey_and_failure_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
