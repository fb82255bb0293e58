/* k_proxy's card gate: outcome mapping, the signCount rule, configuration
 * checks, and the three operations end to end against the virtual card's
 * core answering over a scripted in-memory transport (no sockets). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ctaphid/io.h"
#include "ctaphid/io_int.h"
#include "ctaphid/status.h"
#include "ctaphid/transport_mem_int.h"
#include "harness/vcard/card.h"
#include "services/k_proxy/card_auth.h"

/* ---- a card behind the mem transport ------------------------------------ */

struct fake {
    struct vc_card *card;
    uint8_t caps;         /* INIT capabilities */
    bool answer_init;     /* false: silent to INIT */
    bool no_device;       /* the opener fails */
    enum vc_up_result up; /* what the person does */
    int up_sleep_ms;      /* time the person takes (blocks the host's write) */
    bool keepalive_up;    /* KEEPALIVE UPNEEDED before the answer ... */
    int answer_delay_ms;  /* ... which comes this much later */
    uint8_t hang_ctap;    /* CTAP2 command never answered (0: none) */
    bool no_selection;    /* a CTAP 2.0 card: selection is an unknown command */
    int opens;
    /* reassembly of the current request */
    uint8_t msg[KC_HID_MAX_MSG];
    size_t have, expected;
    uint8_t cmd;
    uint32_t cid;
    uint8_t resp[KC_HID_MAX_MSG];
};

static void push_message(struct kc_transport *t, uint32_t cid, uint8_t cmd, const uint8_t *msg,
                         size_t len, int delay_ms)
{
    uint8_t report[KC_HID_REPORT_LEN];
    size_t n = kc_frag_count(len);

    for (size_t i = 0; i < n; i++) {
        assert_int_equal(kc_frag_report(cid, cmd, msg, len, i, report, sizeof(report)), KC_OK);
        assert_int_equal(kc_mem_push(t, report, sizeof(report), delay_ms), KC_OK);
    }
}

static enum vc_up_result presence(void *ctx)
{
    struct fake *f = ctx;

    if (f->up_sleep_ms > 0) {
        struct timespec ts = {f->up_sleep_ms / 1000, (long)(f->up_sleep_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return f->up;
}

static void dispatch(struct fake *f, struct kc_transport *t)
{
    size_t rlen = 0;

    if (f->cmd == KC_HID_INIT) {
        uint8_t reply[KC_HID_INIT_RESP_LEN] = {0};
        if (!f->answer_init || f->have != KC_HID_NONCE_LEN)
            return;
        memcpy(reply, f->msg, KC_HID_NONCE_LEN);
        reply[8] = 0x11; /* channel 0x11223344 */
        reply[9] = 0x22;
        reply[10] = 0x33;
        reply[11] = 0x44;
        reply[12] = 2;
        reply[13] = 1;
        reply[16] = f->caps;
        push_message(t, f->cid, KC_HID_INIT, reply, sizeof(reply), 0);
        return;
    }
    if (f->cmd == KC_HID_CBOR) {
        uint8_t ctap = f->have > 0 ? f->msg[0] : 0;
        bool waits = ctap == KC_CTAP2_MAKE_CREDENTIAL || ctap == KC_CTAP2_GET_ASSERTION ||
                     ctap == KC_CTAP2_SELECTION;
        if (!(f->caps & KC_HID_CAP_CBOR)) {
            uint8_t code = KC_HID_ERR_INVALID_CMD;
            push_message(t, f->cid, KC_HID_ERROR, &code, 1, 0);
            return;
        }
        if (ctap == KC_CTAP2_SELECTION && f->no_selection) {
            uint8_t st = KC_CTAP1_ERR_INVALID_COMMAND;
            push_message(t, f->cid, KC_HID_CBOR, &st, 1, 0);
            return;
        }
        if (ctap != 0 && ctap == f->hang_ctap) {
            uint8_t st = KC_KEEPALIVE_PROCESSING;
            push_message(t, f->cid, KC_HID_KEEPALIVE, &st, 1, 0);
            return;
        }
        assert_int_equal(
            vc_card_cbor(f->card, f->msg, f->have, f->resp, sizeof(f->resp), &rlen, presence, f),
            0);
        if (waits && f->keepalive_up) {
            uint8_t st = KC_KEEPALIVE_UPNEEDED;
            push_message(t, f->cid, KC_HID_KEEPALIVE, &st, 1, 0);
            push_message(t, f->cid, KC_HID_CBOR, f->resp, rlen, f->answer_delay_ms);
        } else {
            push_message(t, f->cid, KC_HID_CBOR, f->resp, rlen, 0);
        }
        return;
    }
    if (f->cmd == KC_HID_MSG) {
        assert_int_equal(
            vc_card_msg(f->card, f->msg, f->have, f->resp, sizeof(f->resp), &rlen, presence, f), 0);
        push_message(t, f->cid, KC_HID_MSG, f->resp, rlen, 0);
    }
    /* CANCEL and the rest: no answer */
}

static void responder(struct kc_transport *t, const uint8_t *r, size_t len, void *ctx)
{
    struct fake *f = ctx;
    size_t take;

    if (len < KC_HID_REPORT_LEN)
        return;
    if (r[4] & KC_HID_TYPE_INIT) {
        f->cid = (uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3];
        f->cmd = r[4];
        f->expected = (size_t)r[5] << 8 | r[6];
        if (f->expected > sizeof(f->msg))
            return;
        take = f->expected < KC_HID_INIT_DATA ? f->expected : KC_HID_INIT_DATA;
        memcpy(f->msg, r + KC_HID_INIT_HDR, take);
        f->have = take;
    } else {
        size_t left = f->expected - f->have;
        take = left < KC_HID_CONT_DATA ? left : KC_HID_CONT_DATA;
        memcpy(f->msg + f->have, r + KC_HID_CONT_HDR, take);
        f->have += take;
    }
    if (f->have == f->expected)
        dispatch(f, t);
}

static int opener(void *ctx, const char *uri, struct kc_transport **out, char *err, size_t errlen)
{
    struct fake *f = ctx;
    struct kc_transport *t;

    (void)uri;
    __atomic_add_fetch(&f->opens, 1, __ATOMIC_SEQ_CST);
    if (f->no_device) {
        snprintf(err, errlen, "nothing at the test URI");
        return KC_ERR_NO_DEVICE;
    }
    t = kc_mem_transport_new();
    assert_non_null(t);
    kc_mem_set_responder(t, responder, f);
    *out = t;
    return KC_OK;
}

static struct fake *fake_new(bool ctap2)
{
    struct fake *f = calloc(1, sizeof(*f));
    struct vc_config cfg = {.ctap1 = true, .attestation = VC_ATT_PACKED_BATCH};
    char err[256];

    assert_non_null(f);
    cfg.reset_window_ms = 10000;
    f->card = vc_card_new(&cfg, err, sizeof(err));
    if (f->card == NULL)
        print_error("vc_card_new: %s\n", err);
    assert_non_null(f->card);
    f->caps = ctap2 ? (uint8_t)(KC_HID_CAP_CBOR | KC_HID_CAP_WINK)
                    : (uint8_t)KC_HID_CAP_WINK; /* NMSG clear: CTAP1 offered */
    f->answer_init = true;
    f->up = VC_UP_APPROVED;
    return f;
}

static void fake_free(struct fake *f)
{
    vc_card_free(f->card);
    free(f);
}

static struct kpx_card *card_for(struct fake *f, int timeout_ms, int command_ms, int busy_ms)
{
    struct kpx_card_cfg cfg = {.device_uri = "udp:127.0.0.1:1",
                               .rp_id = "localhost",
                               .timeout_ms = timeout_ms,
                               .command_ms = command_ms,
                               .busy_wait_ms = busy_ms};
    char err[256] = "";
    struct kpx_card *c = kpx_card_new(&cfg, err, sizeof(err));

    if (c == NULL)
        print_error("kpx_card_new: %s\n", err);
    assert_non_null(c);
    kpx_card_set_opener(c, opener, f);
    return c;
}

/* ---- pure pieces --------------------------------------------------------- */

static void test_outcome_mapping(void **state)
{
    (void)state;
    assert_int_equal(kpx_card_outcome_of(KC_OK, KC_PHASE_NONE, false), KPX_CARD_OK);
    /* the person said no, or did not come */
    assert_int_equal(kpx_card_outcome_of(KC_CTAP2_ERR_OPERATION_DENIED, KC_PHASE_NONE, true),
                     KPX_CARD_DENIED);
    assert_int_equal(kpx_card_outcome_of(KC_CTAP2_ERR_USER_ACTION_TIMEOUT, KC_PHASE_NONE, true),
                     KPX_CARD_DENIED);
    assert_int_equal(kpx_card_outcome_of(KC_CTAP2_ERR_ACTION_TIMEOUT, KC_PHASE_NONE, false),
                     KPX_CARD_DENIED);
    assert_int_equal(kpx_card_outcome_of(KC_CTAP2_ERR_KEEPALIVE_CANCEL, KC_PHASE_NONE, false),
                     KPX_CARD_DENIED);
    assert_int_equal(kpx_card_outcome_of(KC_CTAP2_ERR_UP_REQUIRED, KC_PHASE_NONE, false),
                     KPX_CARD_DENIED);
    assert_int_equal(kpx_card_outcome_of(KC_ERR_TIMEOUT, KC_PHASE_PRESENCE, true), KPX_CARD_DENIED);
    assert_int_equal(kpx_card_outcome_of(KC_ERR_TIMEOUT, KC_PHASE_CANCEL, true), KPX_CARD_DENIED);
    assert_int_equal(kpx_card_outcome_of(KC_ERR_ABORTED, KC_PHASE_COMMAND, false), KPX_CARD_DENIED);
    /* stuck before the presence prompt */
    assert_int_equal(kpx_card_outcome_of(KC_ERR_TIMEOUT, KC_PHASE_COMMAND, false),
                     KPX_CARD_TIMEOUT);
    assert_int_equal(kpx_card_outcome_of(KC_CTAP1_ERR_TIMEOUT, KC_PHASE_NONE, false),
                     KPX_CARD_TIMEOUT);
    /* no card to talk to */
    assert_int_equal(kpx_card_outcome_of(KC_ERR_TIMEOUT, KC_PHASE_INIT, false),
                     KPX_CARD_UNAVAILABLE);
    assert_int_equal(kpx_card_outcome_of(KC_ERR_NO_DEVICE, KC_PHASE_NONE, false),
                     KPX_CARD_UNAVAILABLE);
    assert_int_equal(kpx_card_outcome_of(KC_ERR_PERMISSION, KC_PHASE_NONE, false),
                     KPX_CARD_UNAVAILABLE);
    assert_int_equal(kpx_card_outcome_of(KC_ERR_UNPLUGGED, KC_PHASE_COMMAND, false),
                     KPX_CARD_UNAVAILABLE);
    assert_int_equal(kpx_card_outcome_of(KC_ERR_IO, KC_PHASE_SEND, false), KPX_CARD_UNAVAILABLE);
    assert_int_equal(kpx_card_outcome_of(KC_ERR_HID, KC_PHASE_COMMAND, false),
                     KPX_CARD_UNAVAILABLE);
    assert_int_equal(kpx_card_outcome_of(KC_ERR_UNSUPPORTED, KC_PHASE_NONE, false),
                     KPX_CARD_UNAVAILABLE);
    assert_int_equal(kpx_card_outcome_of(KC_CTAP2_ERR_PUAT_REQUIRED, KC_PHASE_NONE, false),
                     KPX_CARD_UNAVAILABLE);
    assert_int_equal(kpx_card_outcome_of(KC_CTAP1_ERR_INVALID_COMMAND, KC_PHASE_NONE, false),
                     KPX_CARD_UNAVAILABLE);
    /* answers that do not check out */
    assert_int_equal(kpx_card_outcome_of(KC_ERR_VERIFY, KC_PHASE_NONE, false), KPX_CARD_INVALID);
    assert_int_equal(kpx_card_outcome_of(KC_ERR_CBOR, KC_PHASE_NONE, false), KPX_CARD_INVALID);
    assert_int_equal(kpx_card_outcome_of(KC_CTAP2_ERR_NO_CREDENTIALS, KC_PHASE_NONE, true),
                     KPX_CARD_INVALID);
    assert_int_equal(kpx_card_outcome_of(KC_CTAP2_ERR_INVALID_CREDENTIAL, KC_PHASE_NONE, false),
                     KPX_CARD_INVALID);
}

static void test_outcome_names(void **state)
{
    (void)state;
    assert_string_equal(kpx_card_outcome_name(KPX_CARD_OK), "ok");
    assert_string_equal(kpx_card_outcome_name(KPX_CARD_DENIED), "card_denied");
    assert_string_equal(kpx_card_outcome_name(KPX_CARD_UNAVAILABLE), "card_unavailable");
    assert_string_equal(kpx_card_outcome_name(KPX_CARD_TIMEOUT), "card_timeout");
    assert_string_equal(kpx_card_outcome_name(KPX_CARD_INVALID), "assertion_invalid");
    assert_string_equal(kpx_card_outcome_name(KPX_CARD_BUSY), "card_busy");
    assert_string_equal(kpx_card_outcome_name((enum kpx_card_outcome)99), "unknown");
}

static void test_sign_count_rule(void **state)
{
    (void)state;
    assert_true(kpx_sign_count_ok(0, 0));
    assert_true(kpx_sign_count_ok(0, 1));
    assert_true(kpx_sign_count_ok(5, 6));
    assert_true(kpx_sign_count_ok(5, 0xffffffffu));
    assert_false(kpx_sign_count_ok(5, 5));
    assert_false(kpx_sign_count_ok(5, 4));
    assert_false(kpx_sign_count_ok(5, 0));
    assert_false(kpx_sign_count_ok(0xffffffffu, 0xffffffffu));
}

static void expect_bad_cfg(const struct kpx_card_cfg *cfg, const char *part)
{
    char err[256] = "";
    struct kpx_card *c = kpx_card_new(cfg, err, sizeof(err));

    assert_null(c);
    if (strstr(err, part) == NULL)
        print_error("err: %s\n", err);
    assert_non_null(strstr(err, part));
}

static void test_config_validation(void **state)
{
    struct kpx_card_cfg cfg = {0};
    char err[256] = "", long_uri[KC_URI_MAX + 8], long_rp[300];
    struct kpx_card *c;

    (void)state;
    expect_bad_cfg(NULL, "configuration");
    /* all defaults: auto, localhost, 30 s */
    c = kpx_card_new(&cfg, err, sizeof(err));
    assert_non_null(c);
    kpx_card_free(c);
    cfg.device_uri = "udp:127.0.0.1:8111?local=7112";
    cfg.rp_id = "login.example.org";
    cfg.timeout_ms = 1000;
    c = kpx_card_new(&cfg, err, sizeof(err));
    assert_non_null(c);
    kpx_card_free(c);

    cfg.device_uri = "udp:127.0.0.1:8111 extra";
    expect_bad_cfg(&cfg, "device URI");
    memset(long_uri, 'a', sizeof(long_uri) - 1);
    long_uri[sizeof(long_uri) - 1] = '\0';
    cfg.device_uri = long_uri;
    expect_bad_cfg(&cfg, "device URI");
    cfg.device_uri = "auto";
    cfg.rp_id = "";
    expect_bad_cfg(&cfg, "rp id");
    cfg.rp_id = "bad rp";
    expect_bad_cfg(&cfg, "rp id");
    cfg.rp_id = "https://example.org";
    expect_bad_cfg(&cfg, "rp id");
    memset(long_rp, 'r', sizeof(long_rp) - 1);
    long_rp[sizeof(long_rp) - 1] = '\0';
    cfg.rp_id = long_rp;
    expect_bad_cfg(&cfg, "rp id");
    cfg.rp_id = "localhost";
    cfg.timeout_ms = -1;
    expect_bad_cfg(&cfg, "timeouts");
    cfg.timeout_ms = 0;
    cfg.command_ms = -5;
    expect_bad_cfg(&cfg, "timeouts");
    cfg.command_ms = 0;
    cfg.busy_wait_ms = 700000;
    expect_bad_cfg(&cfg, "timeouts");
    kpx_card_free(NULL);
}

static void test_null_arguments(void **state)
{
    struct kpx_card_result r;
    struct kpx_cred cred;

    (void)state;
    assert_int_equal(kpx_card_probe_login(NULL, "alice", &r), KPX_CARD_UNAVAILABLE);
    assert_string_equal(r.step, "config");
    assert_int_equal(kpx_card_register(NULL, "alice", &cred, &r), KPX_CARD_UNAVAILABLE);
    assert_int_equal(kpx_card_assert_login(NULL, "alice", &cred, &r), KPX_CARD_UNAVAILABLE);
    assert_int_equal(kpx_card_probe_login(NULL, "alice", NULL), KPX_CARD_UNAVAILABLE);
}

/* ---- probe login --------------------------------------------------------- */

static void test_probe_login_approved(void **state)
{
    struct fake *f = fake_new(true);
    struct kpx_card *c = card_for(f, 2000, 1000, 0);
    struct kpx_card_result r;

    (void)state;
    f->keepalive_up = true;
    f->answer_delay_ms = 80;
    assert_int_equal(kpx_card_probe_login(c, "alice", &r), KPX_CARD_OK);
    assert_int_equal(r.outcome, KPX_CARD_OK);
    assert_int_equal(r.err, KC_OK);
    assert_string_equal(r.step, "selection");
    assert_string_equal(r.fail_code, "ok");
    assert_true(r.card_present);
    assert_true(r.ctap2);
    assert_true(r.has_aaguid);
    assert_non_null(strstr(r.versions, "FIDO_2_1"));
    assert_false(r.used_u2f);
    assert_true(r.saw_upneeded);
    assert_true(r.keepalives_upneeded >= 1);
    assert_true(r.user_wait_ms >= 60);
    assert_true(r.probe_ms >= 0 && r.op_ms >= r.user_wait_ms && r.total_ms >= r.op_ms);
    assert_true(r.lock_wait_ms >= 0 && r.lock_wait_ms < 100);
    assert_int_equal(f->opens, 2); /* probe, then the command on a fresh open */
    assert_non_null(strstr(r.message, "approved"));
    kpx_card_free(c);
    fake_free(f);
}

static void test_probe_login_denied(void **state)
{
    struct fake *f = fake_new(true);
    struct kpx_card *c = card_for(f, 2000, 1000, 0);
    struct kpx_card_result r;

    (void)state;
    f->up = VC_UP_DENIED;
    assert_int_equal(kpx_card_probe_login(c, "alice", &r), KPX_CARD_DENIED);
    assert_int_equal(r.err, KC_CTAP2_ERR_OPERATION_DENIED);
    assert_string_equal(r.step, "selection");
    assert_non_null(strstr(r.message, "refused"));
    f->up = VC_UP_TIMEOUT;
    assert_int_equal(kpx_card_probe_login(c, "alice", &r), KPX_CARD_DENIED);
    assert_int_equal(r.err, KC_CTAP2_ERR_USER_ACTION_TIMEOUT);
    kpx_card_free(c);
    fake_free(f);
}

static void test_probe_login_no_device(void **state)
{
    struct fake *f = fake_new(true);
    struct kpx_card *c = card_for(f, 2000, 1000, 0);
    struct kpx_card_result r;

    (void)state;
    f->no_device = true;
    assert_int_equal(kpx_card_probe_login(c, "alice", &r), KPX_CARD_UNAVAILABLE);
    assert_string_equal(r.step, "probe");
    assert_string_equal(r.fail_code, "no-device");
    assert_non_null(strstr(r.message, "no-device"));
    assert_true(r.fix[0] != '\0');
    assert_false(r.card_present);
    assert_int_equal(f->opens, 1);
    kpx_card_free(c);
    fake_free(f);
}

static void test_probe_login_init_timeout(void **state)
{
    struct fake *f = fake_new(true);
    struct kpx_card *c = card_for(f, 2000, 150, 0);
    struct kpx_card_result r;

    (void)state;
    f->answer_init = false;
    assert_int_equal(kpx_card_probe_login(c, "alice", &r), KPX_CARD_UNAVAILABLE);
    assert_string_equal(r.fail_code, "init-timeout");
    assert_non_null(strstr(r.message, "init-timeout"));
    assert_non_null(strstr(r.fix, "power-cycle"));
    assert_true(r.probe_ms >= 140);
    kpx_card_free(c);
    fake_free(f);
}

static void test_probe_login_hang_before_prompt(void **state)
{
    struct fake *f = fake_new(true);
    struct kpx_card *c = card_for(f, 2000, 200, 0);
    struct kpx_card_result r;

    (void)state;
    f->hang_ctap = KC_CTAP2_SELECTION;
    assert_int_equal(kpx_card_probe_login(c, "alice", &r), KPX_CARD_TIMEOUT);
    assert_int_equal(r.err, KC_ERR_TIMEOUT);
    assert_string_equal(r.step, "selection");
    assert_false(r.saw_upneeded);
    assert_true(r.keepalives_processing >= 1);
    assert_null(strstr(r.message, " 0 keepalives"));
    assert_non_null(strstr(r.message, "hangs before asking"));
    assert_true(r.op_ms >= 190);
    kpx_card_free(c);
    fake_free(f);
}

static void test_probe_login_ctap1_card(void **state)
{
    struct fake *f = fake_new(false);
    struct kpx_card *c = card_for(f, 400, 1000, 0);
    struct kpx_card_result r;

    (void)state;
    assert_int_equal(kpx_card_probe_login(c, "alice", &r), KPX_CARD_OK);
    assert_true(r.used_u2f);
    assert_false(r.ctap2);
    assert_string_equal(r.step, "u2f-presence");
    assert_string_equal(r.versions, "U2F_V2");
    /* nobody touches: the card keeps answering CONDITIONS_NOT_SATISFIED */
    f->up = VC_UP_DENIED;
    assert_int_equal(kpx_card_probe_login(c, "alice", &r), KPX_CARD_DENIED);
    assert_string_equal(r.step, "u2f-presence");
    assert_non_null(strstr(r.message, "nobody touched"));
    assert_true(r.op_ms >= 150); /* polled until the next poll would pass 400 ms */
    kpx_card_free(c);
    fake_free(f);
}

static void test_probe_login_ctap20_card(void **state)
{
    struct fake *f = fake_new(true);
    struct kpx_card *c = card_for(f, 2000, 1000, 0);
    struct kpx_card_result r;

    (void)state;
    /* no authenticatorSelection, but a CTAP1 side: presence through U2F */
    f->no_selection = true;
    assert_int_equal(kpx_card_probe_login(c, "alice", &r), KPX_CARD_OK);
    assert_true(r.used_u2f);
    assert_true(r.ctap2);
    assert_string_equal(r.step, "u2f-presence");
    /* neither: said so, not a hang or a refusal */
    f->caps |= KC_HID_CAP_NMSG;
    assert_int_equal(kpx_card_probe_login(c, "alice", &r), KPX_CARD_UNAVAILABLE);
    assert_int_equal(r.err, KC_ERR_UNSUPPORTED);
    assert_non_null(strstr(r.message, "neither"));
    assert_non_null(strstr(r.message, "FIDO_2_1"));
    kpx_card_free(c);
    fake_free(f);
}

struct busy_arg {
    struct kpx_card *card;
    struct kpx_card_result r;
};

static void *login_thread(void *arg)
{
    struct busy_arg *a = arg;

    kpx_card_probe_login(a->card, "first", &a->r);
    return NULL;
}

static void test_card_busy(void **state)
{
    struct fake *f = fake_new(true);
    struct kpx_card *c = card_for(f, 3000, 2000, 150);
    struct busy_arg a = {.card = c};
    struct kpx_card_result r;
    struct timespec ts = {0, 5 * 1000000L};
    pthread_t th;

    (void)state;
    f->up_sleep_ms = 700; /* the first user takes 0.7 s to touch */
    assert_int_equal(pthread_create(&th, NULL, login_thread, &a), 0);
    /* wait until the first login holds the card (it opens it under the lock) */
    for (int i = 0; i < 200 && __atomic_load_n(&f->opens, __ATOMIC_SEQ_CST) < 2; i++)
        nanosleep(&ts, NULL);
    assert_true(__atomic_load_n(&f->opens, __ATOMIC_SEQ_CST) >= 2);
    assert_int_equal(kpx_card_probe_login(c, "second", &r), KPX_CARD_BUSY);
    assert_string_equal(r.step, "lock");
    assert_non_null(strstr(r.message, "card busy"));
    assert_true(r.lock_wait_ms >= 140);
    assert_true(r.probe_ms < 0); /* never reached the card */
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(a.r.outcome, KPX_CARD_OK);
    f->up_sleep_ms = 0;
    assert_int_equal(kpx_card_probe_login(c, "second", &r), KPX_CARD_OK);
    kpx_card_free(c);
    fake_free(f);
}

/* ---- fido2-direct -------------------------------------------------------- */

static void test_register_and_login(void **state)
{
    struct fake *f = fake_new(true);
    struct kpx_card *c = card_for(f, 2000, 1000, 0);
    struct kpx_card_result r;
    struct kpx_cred cred, cred2;

    (void)state;
    assert_int_equal(kpx_card_register(c, "alice", &cred, &r), KPX_CARD_OK);
    assert_string_equal(r.step, "verify");
    assert_int_equal(cred.alg, KC_COSE_ES256);
    assert_true(cred.cred_id_len > 0 && cred.cred_id_len <= KPX_CRED_ID_MAX);
    assert_true(cred.cose_key_len > 60 && cred.cose_key_len <= KPX_COSE_KEY_MAX);
    assert_int_equal(cred.user_id_len, KPX_USER_ID_LEN);
    assert_int_equal(cred.sign_count, r.sign_count);
    assert_non_null(strstr(r.message, "enrolled"));

    assert_int_equal(kpx_card_assert_login(c, "alice", &cred, &r), KPX_CARD_OK);
    assert_string_equal(r.step, "verify");
    assert_int_equal(r.prev_sign_count, cred.sign_count);
    assert_true(kpx_sign_count_ok(cred.sign_count, r.sign_count));
    cred.sign_count = r.sign_count;
    assert_int_equal(kpx_card_assert_login(c, "alice", &cred, &r), KPX_CARD_OK);
    assert_true(kpx_sign_count_ok(cred.sign_count, r.sign_count));

    /* a stored counter ahead of the card's: a cloned credential */
    cred.sign_count = r.sign_count + 100;
    assert_int_equal(kpx_card_assert_login(c, "alice", &cred, &r), KPX_CARD_INVALID);
    assert_string_equal(r.step, "sign-count");
    assert_non_null(strstr(r.message, "signCount did not increase: possible cloned credential"));

    /* another credential's key does not verify this credential's signature */
    assert_int_equal(kpx_card_register(c, "bob", &cred2, &r), KPX_CARD_OK);
    cred.sign_count = 0;
    memcpy(cred.cose_key, cred2.cose_key, cred2.cose_key_len);
    cred.cose_key_len = cred2.cose_key_len;
    assert_int_equal(kpx_card_assert_login(c, "alice", &cred, &r), KPX_CARD_INVALID);
    assert_string_equal(r.step, "verify");
    assert_non_null(strstr(r.message, "did not verify"));

    /* the user refuses the login */
    f->up = VC_UP_DENIED;
    assert_int_equal(kpx_card_assert_login(c, "bob", &cred2, &r), KPX_CARD_DENIED);
    assert_string_equal(r.step, "get-assertion");
    kpx_card_free(c);
    fake_free(f);
}

static void test_login_unknown_credential(void **state)
{
    struct fake *f = fake_new(true);
    struct kpx_card *c = card_for(f, 2000, 1000, 0);
    struct kpx_card_result r;
    struct kpx_cred cred;

    (void)state;
    assert_int_equal(kpx_card_register(c, "alice", &cred, &r), KPX_CARD_OK);
    for (size_t i = 0; i < cred.cred_id_len; i++)
        cred.cred_id[i] ^= 0x5a; /* not a credential this card made */
    assert_int_equal(kpx_card_assert_login(c, "alice", &cred, &r), KPX_CARD_INVALID);
    assert_string_equal(r.step, "get-assertion");
    assert_non_null(strstr(r.message, "does not hold"));
    kpx_card_free(c);
    fake_free(f);
}

static void test_login_unusable_stored_key(void **state)
{
    struct fake *f = fake_new(true);
    struct kpx_card *c = card_for(f, 2000, 1000, 0);
    struct kpx_card_result r;
    struct kpx_cred cred;

    (void)state;
    memset(&cred, 0, sizeof(cred));
    cred.cred_id_len = 16;
    cred.cose_key_len = 3;
    cred.cose_key[0] = 0xa1; /* a truncated map */
    cred.alg = KC_COSE_ES256;
    assert_int_equal(kpx_card_assert_login(c, "alice", &cred, &r), KPX_CARD_INVALID);
    assert_string_equal(r.step, "config");
    assert_int_equal(f->opens, 0); /* the user was not asked to touch */
    cred.cose_key_len = 0;
    assert_int_equal(kpx_card_assert_login(c, "alice", &cred, &r), KPX_CARD_INVALID);
    kpx_card_free(c);
    fake_free(f);
}

static void test_register_denied_and_ctap1(void **state)
{
    struct fake *f = fake_new(true), *u2f = fake_new(false);
    struct kpx_card *c = card_for(f, 2000, 1000, 0), *c1 = card_for(u2f, 2000, 1000, 0);
    struct kpx_card_result r;
    struct kpx_cred cred;

    (void)state;
    f->up = VC_UP_DENIED;
    assert_int_equal(kpx_card_register(c, "alice", &cred, &r), KPX_CARD_DENIED);
    assert_string_equal(r.step, "make-credential");
    assert_int_equal(cred.cred_id_len, 0);

    assert_int_equal(kpx_card_register(c1, "alice", &cred, &r), KPX_CARD_UNAVAILABLE);
    assert_non_null(strstr(r.message, "CTAP1"));
    assert_int_equal(u2f->opens, 1); /* decided by the probe */
    kpx_card_free(c);
    kpx_card_free(c1);
    fake_free(f);
    fake_free(u2f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcome_mapping),
        cmocka_unit_test(test_outcome_names),
        cmocka_unit_test(test_sign_count_rule),
        cmocka_unit_test(test_config_validation),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_probe_login_approved),
        cmocka_unit_test(test_probe_login_denied),
        cmocka_unit_test(test_probe_login_no_device),
        cmocka_unit_test(test_probe_login_init_timeout),
        cmocka_unit_test(test_probe_login_hang_before_prompt),
        cmocka_unit_test(test_probe_login_ctap1_card),
        cmocka_unit_test(test_probe_login_ctap20_card),
        cmocka_unit_test(test_card_busy),
        cmocka_unit_test(test_register_and_login),
        cmocka_unit_test(test_login_unknown_credential),
        cmocka_unit_test(test_login_unusable_stored_key),
        cmocka_unit_test(test_register_denied_and_ctap1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
