/* rawctap's diagnosis against a scripted in-memory card: the sentence
 * printed for each way a card can fail (no INIT reply, a hang before the
 * presence prompt, nobody confirming, a slow CTAP1 answer, replies on the
 * wrong channel, CTAP and CTAPHID errors, a silent udp card named by its
 * transport's causes) and the exit code for every libctaphid result; the
 * --json error object; the rule for a PIN/UV auth protocol the user asks
 * for. No sockets, no device. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctaphid/ctap2.h"
#include "ctaphid/status.h"
#include "ctaphid/transport.h"
#include "ctaphid/transport_int.h"
#include "ctaphid/transport_mem_int.h"
#include "triage/rawctap.h"

enum script {
    CARD_SILENT,      /* never answers INIT */
    CARD_HANG,        /* keepalive PROCESSING, then nothing */
    CARD_NOBODY,      /* keepalive UPNEEDED, then nothing */
    CARD_WRONG_CID,   /* answers on a channel it never gave us */
    CARD_HID_BUSY,    /* CTAPHID_ERROR CHANNEL_BUSY */
    CARD_CBOR_DENIED, /* a CBOR reply carrying OPERATION_DENIED */
    CARD_MUTE,        /* answers INIT, then nothing at all */
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
 * device on a scripted transport named uri (NULL: the mem transport's own);
 * INIT is run unless the card is silent. */
static int open_card_at(struct fixture *f, enum script s, const char *uri, int *init_rc);

static int open_card(struct fixture *f, enum script s, int *init_rc)
{
    return open_card_at(f, s, NULL, init_rc);
}

static int open_card_at(struct fixture *f, enum script s, const char *uri, int *init_rc)
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
    if (uri != NULL)
        snprintf(t->uri, sizeof(t->uri), "%s", uri);
    f->ctx.uri = t->uri;
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

/* ---- a silent udp card: the transport's causes first ---- */

static void test_udp_init_wrong_port_first(void **state)
{
    (void)state;
    struct fixture f;
    int rc;
    open_card_at(&f, CARD_SILENT, "udp:127.0.0.1:8111", &rc);
    assert_int_equal(rc, KC_ERR_TIMEOUT);
    assert_int_equal(rc_fail(&f.ctx, "INIT", rc), RC_EXIT_TRANSPORT);
    const char *e = error_text(&f);
    const char *fixed = strstr(e, "open-source simulators reply to a fixed host port, 7112: use "
                                  "udp:127.0.0.1:8111?local=7112");
    const char *gone = strstr(e, "is the simulator running there? it may have moved "
                                 "(re-plugged; see the announce dir / vcard-ctl status)");
    assert_non_null(strstr(e, "nothing answered at udp:127.0.0.1:8111"));
    assert_non_null(fixed);
    assert_non_null(gone);
    assert_true(fixed < gone); /* the wrong port first */
    assert_null(strstr(e, "power-cycle"));
    assert_string_equal(json_string_value(json_object_get(f.ctx.result, "transport_cause")),
                        "UDP_NO_REPLY_WRONG_PORT_OR_GONE");
    assert_string_equal(json_string_value(json_object_get(f.ctx.result, "error_name")),
                        "KC_ERR_TIMEOUT");
    close_card(&f);
}

static void test_udp_init_with_local_port(void **state)
{
    (void)state;
    struct fixture f;
    int rc;
    open_card_at(&f, CARD_SILENT, "udp:127.0.0.1:8111?local=7112", &rc);
    assert_int_equal(rc_fail(&f.ctx, "INIT", rc), RC_EXIT_TRANSPORT);
    const char *e = error_text(&f);
    assert_non_null(strstr(e, "nothing answered at udp:127.0.0.1:8111 on local port 7112: does "
                              "the simulator reply to port 7112"));
    assert_non_null(strstr(e, "is the simulator running there?"));
    assert_null(strstr(e, "power-cycle"));
    assert_null(strstr(e, "?local=7112?")); /* no advice to add what is there */
    close_card(&f);
}

static void test_hidraw_init_keeps_power_cycle(void **state)
{
    (void)state;
    struct fixture f;
    int rc;
    open_card_at(&f, CARD_SILENT, "hidraw:/dev/hidraw3", &rc);
    rc_fail(&f.ctx, "INIT", rc);
    const char *e = error_text(&f);
    assert_non_null(strstr(e, "power-cycle and reattach the card"));
    assert_null(strstr(e, "?local="));
    assert_null(json_object_get(f.ctx.result, "transport_cause"));
    close_card(&f);
}

static void test_udp_silent_after_request(void **state)
{
    (void)state;
    struct fixture f;
    int rc;
    open_card_at(&f, CARD_MUTE, "udp:127.0.0.1:9000", &rc);
    assert_int_equal(rc, KC_OK);
    f.ctx.presence_cmd = true;
    rc = transact(&f, KC_HID_CBOR);
    assert_int_equal(rc, KC_ERR_TIMEOUT);
    assert_int_equal(rc_fail(&f.ctx, "make-credential", rc), RC_EXIT_TRANSPORT);
    const char *e = error_text(&f);
    assert_non_null(strstr(e, "timeout in command phase"));
    assert_non_null(strstr(e, "nothing answered at udp:127.0.0.1:9000 after the request: is the "
                              "simulator running there? it may have moved"));
    assert_non_null(strstr(e, "a card that hangs before the presence prompt looks the same"));
    assert_string_equal(json_string_value(json_object_get(f.ctx.result, "transport_cause")),
                        "UDP_NO_REPLY");
    close_card(&f);
}

static void test_udp_keepalives_then_silence_is_a_hang(void **state)
{
    (void)state;
    struct fixture f;
    int rc;
    /* keepalives came: the card is there, the firmware hangs */
    open_card_at(&f, CARD_HANG, "udp:127.0.0.1:9000", &rc);
    f.ctx.presence_cmd = true;
    rc = transact(&f, KC_HID_CBOR);
    rc_fail(&f.ctx, "make-credential", rc);
    const char *e = error_text(&f);
    assert_non_null(strstr(e, "hang before the presence prompt"));
    assert_null(strstr(e, "nothing answered"));
    close_card(&f);
}

static void test_udp_nothing_listens(void **state)
{
    (void)state;
    struct fixture f;
    int rc;
    open_card_at(&f, CARD_MUTE, "udp:127.0.0.1:9001", &rc);
    struct kc_transport *t = kc_dev_transport(f.ctx.dev);
    snprintf(t->last_error, sizeof(t->last_error),
             "nothing listens at udp:127.0.0.1:9001 (ICMP port unreachable, seen on recv)");
    assert_int_equal(rc_fail(&f.ctx, "PING", KC_ERR_NO_DEVICE), RC_EXIT_TRANSPORT);
    const char *e = error_text(&f);
    assert_non_null(strstr(e, "nothing listens at udp:127.0.0.1:9001"));
    assert_non_null(strstr(e, "is the simulator running there? it may have moved"));
    assert_string_equal(json_string_value(json_object_get(f.ctx.result, "error_name")),
                        "NO_DEVICE");
    close_card(&f);
}

/* ---- keepalives that stop: a card gone silent, not a person ---- */

static void silent_after_upneeded(const char *uri, const char *want, const char *not_want)
{
    struct fixture f;
    int rc;
    open_card_at(&f, CARD_NOBODY, uri, &rc);
    assert_int_equal(rc, KC_OK);
    f.ctx.to.presence_ms = 700; /* one UPNEEDED, then 700 ms of nothing */
    kc_dev_set_timeouts(f.ctx.dev, &f.ctx.to);
    f.ctx.presence_cmd = true;
    rc = transact(&f, KC_HID_CBOR);
    assert_int_equal(rc, KC_ERR_TIMEOUT);
    assert_int_equal(rc_fail(&f.ctx, "make-credential", rc), RC_EXIT_TRANSPORT);
    const char *e = error_text(&f);
    assert_non_null(strstr(e, "timeout in presence phase"));
    assert_non_null(strstr(e, "the card went silent at +0.00s (no KEEPALIVE since, though one is "
                              "due every 100 ms)"));
    assert_non_null(strstr(e, want));
    assert_null(strstr(e, not_want));
    assert_null(strstr(e, "nobody confirmed"));
    assert_true(json_is_true(json_object_get(f.ctx.result, "keepalives_stopped")));
    close_card(&f);
}

static void test_keepalives_stop_udp(void **state)
{
    (void)state;
    silent_after_upneeded("udp:127.0.0.1:9002",
                          "nothing answered at udp:127.0.0.1:9002 since: is the simulator "
                          "running there? it may have moved",
                          "firmware");
}

static void test_keepalives_stop_hidraw(void **state)
{
    (void)state;
    silent_after_upneeded("hidraw:/dev/hidraw4", "unplugged, re-enumerated, or its firmware hung",
                          "simulator");
}

/* ---- the --json error object ---- */

static void test_json_finish(void **state)
{
    (void)state;
    json_t *o = json_object();
    /* a failure that named nothing gets the generic name and a sentence */
    rc_json_finish(o, RC_EXIT_TRANSPORT);
    assert_true(json_is_false(json_object_get(o, "ok")));
    assert_int_equal(json_integer_value(json_object_get(o, "exit")), 3);
    assert_string_equal(json_string_value(json_object_get(o, "error_name")), "TRANSPORT_ERROR");
    assert_non_null(strstr(json_string_value(json_object_get(o, "error")), "exit 3"));
    json_decref(o);

    /* what the command said is kept; exit follows the real exit code */
    o = json_pack("{s:s, s:s, s:i}", "error", "cancel: too late", "error_name", "CANCEL_TOO_LATE",
                  "exit", 3);
    rc_json_finish(o, RC_EXIT_CTAP);
    assert_string_equal(json_string_value(json_object_get(o, "error")), "cancel: too late");
    assert_string_equal(json_string_value(json_object_get(o, "error_name")), "CANCEL_TOO_LATE");
    assert_int_equal(json_integer_value(json_object_get(o, "exit")), 4);
    json_decref(o);

    /* a usage failure carries the last usage message */
    rc_usage_note("ping: --size wants 0..%d, not '%s'", 7609, "x");
    o = json_object();
    rc_json_finish(o, RC_EXIT_USAGE);
    assert_string_equal(json_string_value(json_object_get(o, "error")),
                        "ping: --size wants 0..7609, not 'x'");
    assert_string_equal(json_string_value(json_object_get(o, "error_name")), "USAGE");
    json_decref(o);

    /* success: ok true, no error invented */
    o = json_object();
    rc_json_finish(o, RC_EXIT_OK);
    assert_true(json_is_true(json_object_get(o, "ok")));
    assert_int_equal(json_integer_value(json_object_get(o, "exit")), 0);
    assert_null(json_object_get(o, "error"));
    assert_null(json_object_get(o, "error_name"));
    json_decref(o);

    static const int codes[] = {RC_EXIT_LOCAL, RC_EXIT_USAGE,  RC_EXIT_TRANSPORT,
                                RC_EXIT_CTAP,  RC_EXIT_VERIFY, RC_EXIT_REPLAY};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *n = rc_exit_error_name(codes[i]);
        assert_non_null(n);
        for (const char *p = n; *p; p++)
            assert_true((*p >= 'A' && *p <= 'Z') || *p == '_');
    }
    assert_null(rc_exit_error_name(RC_EXIT_OK));
}

static void test_argv_has_json(void **state)
{
    (void)state;
    char a0[] = "rawctap", a1[] = "pin", a2[] = "--frob", a3[] = "--json", a4[] = "--";
    char *with[] = {a0, a1, a2, a3};
    char *without[] = {a0, a1, a2};
    char *after_dashes[] = {a0, a1, a4, a3};
    assert_true(rc_argv_has_json(4, with));
    assert_false(rc_argv_has_json(3, without));
    assert_false(rc_argv_has_json(4, after_dashes));
}

static void test_pin_source_problem_noted(void **state)
{
    (void)state;
    char buf[32];
    rc_usage_note("%s", "");
    assert_int_equal(rc_pin_get(NULL, "/nonexistent/kcard-pin", buf, sizeof(buf)), RC_EXIT_USAGE);
    assert_non_null(rc_usage_last());
    assert_non_null(strstr(rc_usage_last(), "cannot read PIN file /nonexistent/kcard-pin"));
}

/* ---- --protocol N: only what the card offers, unless forced ---- */

static void info_with(struct kc_info *info, const uint64_t *protos, size_t n, int client_pin)
{
    memset(info, 0, sizeof(*info));
    for (size_t i = 0; i < n; i++)
        info->pin_protocols[i] = protos[i];
    info->n_pin_protocols = n;
    if (client_pin >= 0) {
        snprintf(info->options[0].name, sizeof(info->options[0].name), "clientPin");
        info->options[0].value = client_pin == 1;
        info->n_options = 1;
    }
}

static void test_pin_protocol_offered(void **state)
{
    (void)state;
    struct kc_info info;
    const uint64_t one[] = {1}, both[] = {2, 1};
    info_with(&info, one, 1, 1);
    assert_true(rc_pin_protocol_offered(&info, 1));
    assert_false(rc_pin_protocol_offered(&info, 2));
    info_with(&info, both, 2, 0);
    assert_true(rc_pin_protocol_offered(&info, 2));
    assert_true(rc_pin_protocol_offered(&info, 1));
    /* CTAP 2.0 with clientPin and no list: protocol 1 is implied */
    info_with(&info, NULL, 0, 1);
    assert_true(rc_pin_protocol_offered(&info, 1));
    assert_false(rc_pin_protocol_offered(&info, 2));
    /* no clientPin, no list: nothing */
    info_with(&info, NULL, 0, -1);
    assert_false(rc_pin_protocol_offered(&info, 1));
}

static void test_pin_protocol_refused_and_forced(void **state)
{
    (void)state;
    struct rc_ctx ctx;
    struct kc_info card, use;
    const uint64_t one[] = {1};
    info_with(&card, one, 1, 1);

    memset(&ctx, 0, sizeof(ctx));
    ctx.json = true;
    ctx.result = json_object();
    memset(&use, 0, sizeof(use));
    assert_int_equal(rc_pin_protocol_pick(&ctx, &card, 2, false, "pin set", &use), RC_EXIT_CTAP);
    assert_string_equal(json_string_value(json_object_get(ctx.result, "error")),
                        "pin set: the card offers PIN/UV auth protocols [1]; --protocol 2 is not "
                        "among them; --force-protocol sends it anyway");
    assert_string_equal(json_string_value(json_object_get(ctx.result, "error_name")),
                        "PIN_PROTOCOL_NOT_OFFERED");
    assert_int_equal(json_integer_value(json_object_get(ctx.result, "exit")), 4);
    /* what the card offers, not what was asked */
    json_t *pp = json_object_get(ctx.result, "pin_protocols");
    assert_int_equal(json_array_size(pp), 1);
    assert_int_equal(json_integer_value(json_array_get(pp, 0)), 1);
    json_decref(ctx.result);

    ctx.result = json_object();
    assert_int_equal(rc_pin_protocol_pick(&ctx, &card, 2, true, "pin set", &use), RC_EXIT_OK);
    assert_int_equal(use.n_pin_protocols, 1);
    assert_int_equal(use.pin_protocols[0], 2);
    assert_true(json_is_true(json_object_get(ctx.result, "protocol_forced")));
    assert_null(json_object_get(ctx.result, "error_name"));
    json_decref(ctx.result);

    ctx.result = json_object();
    assert_int_equal(rc_pin_protocol_pick(&ctx, &card, 1, false, "pin status", &use), RC_EXIT_OK);
    assert_int_equal(use.pin_protocols[0], 1);
    assert_null(json_object_get(ctx.result, "protocol_forced"));
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
        cmocka_unit_test(test_udp_init_wrong_port_first),
        cmocka_unit_test(test_udp_init_with_local_port),
        cmocka_unit_test(test_hidraw_init_keeps_power_cycle),
        cmocka_unit_test(test_udp_silent_after_request),
        cmocka_unit_test(test_udp_keepalives_then_silence_is_a_hang),
        cmocka_unit_test(test_udp_nothing_listens),
        cmocka_unit_test(test_keepalives_stop_udp),
        cmocka_unit_test(test_keepalives_stop_hidraw),
        cmocka_unit_test(test_json_finish),
        cmocka_unit_test(test_argv_has_json),
        cmocka_unit_test(test_pin_source_problem_noted),
        cmocka_unit_test(test_pin_protocol_offered),
        cmocka_unit_test(test_pin_protocol_refused_and_forced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
