/* rawctap doctor's decision tree as a pure function: each branch from
 * hand-made evidence (no card, no sysfs), the first failing step winning
 * over later ones, warnings that keep exit 0, the exit class of every code,
 * and the --json shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctaphid/status.h"
#include "triage/rawctap_doctor.h"
#include "tests/unit/triage/test_doctor_evidence.h"

static void decide(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v, const char *code,
                   const char *step, int exit_code)
{
    rc_doc_decide(ev, v);
    assert_string_equal(v->primary.code, code);
    assert_string_equal(v->primary.step, step);
    assert_int_equal(v->primary.exit, exit_code);
    assert_int_equal(v->ok, exit_code == 0);
    assert_true(v->primary.fix[0] != '\0');
}

static bool has_evidence(const struct rc_doc_finding *f, const char *needle)
{
    for (size_t i = 0; i < f->n_evidence; i++)
        if (strstr(f->evidence[i], needle))
            return true;
    return false;
}

static void test_healthy_is_ok(void **state)
{
    (void)state;
    struct rc_doc_evidence *ev = healthy();
    struct rc_doc_verdict v;
    decide(ev, &v, "OK", "all", 0);
    assert_false(v.done);
    assert_int_equal(v.n_warnings, 0);
    free(ev);
}

static void test_discover(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = ev_new();
    ev->dev = RC_DOC_DEV_AUTO;
    ev->discover_ran = true;
    snprintf(ev->sysfs_root, sizeof(ev->sysfs_root), "/sys/class/hidraw");
    decide(ev, &v, "NO_HIDRAW", "discover", 3);
    assert_true(v.done);
    assert_non_null(strstr(v.primary.fix, "qvm-usb attach"));
    assert_true(has_evidence(&v.primary, "/sys/class/hidraw"));

    ev->n_hidraw = 1;
    snprintf(ev->nodes, sizeof(ev->nodes), "hidraw1 not-FIDO 1050:0407");
    decide(ev, &v, "NON_FIDO_ONLY", "discover", 3);
    assert_true(has_evidence(&v.primary, "hidraw1 not-FIDO"));

    /* an announced card is enough: nothing named yet */
    ev->n_announced = 1;
    rc_doc_decide(ev, &v);
    assert_false(v.done);
    ev->n_announced = 0;
    ev->n_fido = 1;
    rc_doc_decide(ev, &v);
    assert_false(v.done);

    /* explicit node: missing, or not the FIDO interface */
    ev->dev = RC_DOC_DEV_HIDRAW;
    snprintf(ev->node_path, sizeof(ev->node_path), "/dev/hidraw1");
    snprintf(ev->fido_nodes, sizeof(ev->fido_nodes), "/dev/hidraw0");
    ev->named_exists = false;
    decide(ev, &v, "NO_DEVICE", "discover", 3);
    assert_non_null(strstr(v.primary.fix, "/dev/hidraw0"));
    ev->n_hidraw = 0;
    decide(ev, &v, "NO_HIDRAW", "discover", 3);
    ev->n_hidraw = 2;
    ev->named_exists = true;
    ev->named_fido = 0;
    decide(ev, &v, "NOT_FIDO_NODE", "discover", 3);
    assert_non_null(strstr(v.primary.fix, "--device-path /dev/hidraw0"));
    ev->named_fido = -1; /* unknown to sysfs: let open decide */
    rc_doc_decide(ev, &v);
    assert_false(v.done);
    free(ev);
}

static void test_open(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = ev_new();
    ev->dev = RC_DOC_DEV_HIDRAW;
    ev->open_ran = true;
    ev->open_err = KC_ERR_PERMISSION;
    snprintf(ev->node_path, sizeof(ev->node_path), "/dev/hidraw0");
    ev->have_stat = true;
    snprintf(ev->owner, sizeof(ev->owner), "root");
    snprintf(ev->group, sizeof(ev->group), "root");
    ev->mode = 0600;
    ev->uid = 1000;
    decide(ev, &v, "PERMISSION_DENIED", "open", 3);
    assert_true(has_evidence(&v.primary, "open(/dev/hidraw0): permission denied"));
    assert_true(has_evidence(&v.primary, "owner root, group root, mode 0600"));
    assert_true(has_evidence(&v.primary, "uid 1000, not in group root"));
    assert_non_null(strstr(v.primary.fix, "fixtures/udev/70-kcard-fido.rules"));
    assert_non_null(strstr(v.primary.fix, "uaccess"));
    assert_non_null(strstr(v.primary.fix, "plugdev"));

    ev->open_err = KC_ERR_NO_DEVICE;
    decide(ev, &v, "NO_DEVICE", "open", 3);
    ev->open_err = KC_ERR_IO;
    snprintf(ev->open_msg, sizeof(ev->open_msg), "in use by another process");
    decide(ev, &v, "OPEN_FAILED", "open", 3);
    assert_true(has_evidence(&v.primary, "in use by another process"));
    free(ev);
}

static void test_init_and_movement(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = healthy();
    ev->dev = RC_DOC_DEV_HIDRAW; /* a USB card: power-cycling is the fix */
    ev->init_ok_attempt = 0;
    ev->init_attempts = 2;
    ev->init_err = KC_ERR_TIMEOUT;
    ev->init_timeout_ms = 300;
    decide(ev, &v, "INIT_NO_REPLY", "init", 3);
    assert_true(has_evidence(&v.primary, "in 2 attempt(s) of 300 ms"));
    assert_non_null(strstr(v.primary.fix, "power-cycle"));
    assert_non_null(strstr(v.primary.fix, "3 s"));

    ev->init_err = KC_ERR_NO_DEVICE;
    decide(ev, &v, "NO_DEVICE", "init", 3);
    ev->init_err = KC_ERR_UNPLUGGED;
    decide(ev, &v, "UNPLUGGED", "init", 3);

    /* the card moved: named before the timeout it caused */
    ev->init_err = KC_ERR_TIMEOUT;
    ev->enum_ran = true;
    ev->enum_changed = true;
    snprintf(ev->enum_old, sizeof(ev->enum_old), "hidraw:/dev/hidraw0");
    snprintf(ev->enum_new, sizeof(ev->enum_new), "hidraw:/dev/hidraw3");
    decide(ev, &v, "REENUMERATED", "enumeration", 3);
    assert_true(has_evidence(&v.primary, "hidraw:/dev/hidraw0 and is now hidraw:/dev/hidraw3"));
    ev->enum_changed = false;
    ev->enum_vanished = true;
    decide(ev, &v, "UNPLUGGED", "enumeration", 3);
    /* the descriptor said gone and nothing could check it */
    ev->enum_ran = false;
    ev->enum_vanished = false;
    ev->saw_unplugged = true;
    decide(ev, &v, "UNPLUGGED", "enumeration", 3);
    /* EOF on a node the same run still finds where it was: not an unplug */
    ev->dev = RC_DOC_DEV_HIDRAW;
    ev->enum_ran = true;
    ev->init_err = KC_ERR_UNPLUGGED;
    decide(ev, &v, "NO_REPLY", "init", 3);
    assert_true(has_evidence(&v.primary, "finds the card where it was"));
    assert_null(strstr(v.primary.fix, "qvm-usb attach VM"));
    assert_non_null(strstr(v.primary.fix, "reads fail"));
    ev->enum_vanished = true; /* the node is gone: now it is an unplug */
    decide(ev, &v, "UNPLUGGED", "enumeration", 3);
    free(ev);
}

static void test_channel(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = healthy();

    ev->busy = true;
    ev->small.ok = 0;
    ev->small.other = 1;
    ev->small.sent = 1;
    ev->large.sent = ev->large.ok = 0;
    decide(ev, &v, "BUSY", "channel", 4);
    ev->busy = false;

    /* silent on our channel, reports on another */
    ev->small = (struct rc_doc_pings){.sent = 2, .timeout = 2};
    ev->other_cid = 2;
    decide(ev, &v, "WRONG_CHANNEL", "channel", 3);
    ev->other_cid = 0;
    decide(ev, &v, "NO_REPLY", "channel", 3);

    /* some answers lost, some not */
    ev->small = (struct rc_doc_pings){.sent = 3, .ok = 2, .timeout = 1};
    ev->large = (struct rc_doc_pings){.sent = 2, .framing = 2};
    decide(ev, &v, "PACKET_LOSS", "channel", 3);
    assert_true(has_evidence(&v.primary, "one-report PINGs: 3 sent, 2 ok, 1 timeout"));
    /* a lost INIT reply plus timeouts is loss too */
    ev->small = (struct rc_doc_pings){.sent = 2, .timeout = 2};
    ev->init_ok_attempt = 2;
    decide(ev, &v, "PACKET_LOSS", "channel", 3);
    assert_true(has_evidence(&v.primary, "answered only on attempt 2"));
    ev->init_ok_attempt = 1;

    /* one-report fine, multi-report always broken */
    ev->small = (struct rc_doc_pings){.sent = 3, .ok = 3};
    ev->large = (struct rc_doc_pings){.sent = 2, .framing = 2};
    decide(ev, &v, "FRAMING", "channel", 3);
    assert_true(has_evidence(&v.primary, "every multi-report message"));

    ev->large = (struct rc_doc_pings){.sent = 2, .ok = 1, .mismatch = 1};
    decide(ev, &v, "DUPLICATE_PACKETS", "channel", 3);

    ev->large = (struct rc_doc_pings){.sent = 2, .ok = 1, .other = 1};
    ev->hid_err = KC_HID_ERR_INVALID_CMD;
    decide(ev, &v, "CTAP_ERROR", "channel", 4);
    assert_true(has_evidence(&v.primary, "INVALID_CMD"));

    /* a lost INIT reply alone is not a failure */
    ev->hid_err = 0;
    ev->large = (struct rc_doc_pings){.sent = 2, .ok = 2};
    ev->init_ok_attempt = 2;
    decide(ev, &v, "OK", "all", 0);
    free(ev);
}

static void test_ctap1_only_and_slow(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = healthy();
    ev->caps = KC_HID_CAP_WINK; /* no CBOR */
    ev->info_ran = false;
    ev->presence_ran = false;
    ev->verify_ran = false;
    ev->ctap1_ran = false;
    rc_doc_decide(ev, &v);
    assert_false(v.done); /* CTAP1 is timed next */

    ev->ctap1_ran = true;
    ev->ctap1_ms = 100;
    decide(ev, &v, "CTAP1_ONLY", "ctap1", 4);
    assert_true(has_evidence(&v.primary, "lack CBOR"));
    assert_true(has_evidence(&v.primary, "U2F_V2"));

    ev->ctap1_ms = 1800;
    decide(ev, &v, "CTAP1_SLOW", "ctap1", 4);
    assert_true(has_evidence(&v.primary, "1800 ms (limit --slow-ms 1500)"));
    ev->ctap1_err = KC_ERR_NO_DEVICE; /* on a CTAP2 card too: a silent card is no warning */
    ev->ctap1_alive_after = -1;
    ev->caps = KC_HID_CAP_CBOR;
    ev->info_ran = true;
    ev->presence_ran = ev->verify_ran = true;
    decide(ev, &v, "NO_REPLY", "ctap1", 3);
    assert_true(has_evidence(&v.primary, "failed to reach it"));
    ev->caps = KC_HID_CAP_WINK;
    ev->info_ran = ev->presence_ran = ev->verify_ran = false;
    ev->ctap1_err = KC_OK;
    ev->ctap1_alive_after = 0;
    ev->ctap1_ms = 300;
    ev->ctap1_err = KC_ERR_TIMEOUT;
    decide(ev, &v, "CTAP1_SLOW", "ctap1", 4);
    ev->ctap1_err = KC_OK;
    ev->ctap1_cut_short = true;
    decide(ev, &v, "CTAP1_SLOW", "ctap1", 4);
    ev->ctap1_cut_short = false;
    ev->ctap1_err = KC_ERR_U2F;
    ev->ctap1_sw = KC_U2F_SW_INS_NOT_SUPPORTED;
    decide(ev, &v, "CTAP_ERROR", "ctap1", 4);
    /* nothing came back, nor to a fresh INIT afterwards: gone, not slow */
    ev->ctap1_err = KC_ERR_TIMEOUT;
    ev->ctap1_alive_after = -1;
    decide(ev, &v, "NO_REPLY", "ctap1", 3);
    assert_true(has_evidence(&v.primary, "got no answer, and a fresh CTAPHID_INIT"));
    assert_null(strstr(v.primary.fix, "power-cycle"));
    ev->ctap1_alive_after = 1; /* it answers INIT: merely slow */
    decide(ev, &v, "CTAP1_SLOW", "ctap1", 4);
    ev->ctap1_alive_after = 0;

    /* CBOR advertised but getInfo refused: CTAP1 path as well */
    ev->caps = KC_HID_CAP_CBOR;
    ev->info_ran = true;
    ev->info_err = KC_CTAP1_ERR_INVALID_COMMAND;
    ev->ctap1_err = KC_OK;
    decide(ev, &v, "CTAP1_ONLY", "ctap1", 4);
    assert_true(has_evidence(&v.primary, "getInfo answered"));
    free(ev);
}

static void test_getinfo_failures(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = healthy();
    ev->info_err = KC_ERR_TIMEOUT;
    decide(ev, &v, "NO_REPLY", "getinfo", 3);
    ev->info_err = KC_ERR_CBOR;
    decide(ev, &v, "CTAP_ERROR", "getinfo", 4);
    free(ev);
}

static void test_warnings(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = healthy();
    ev->n_pin_protocols = 0;
    ev->client_pin = -1;
    decide(ev, &v, "NO_PIN_PROTOCOLS", "getinfo", 0);
    assert_false(v.done);
    assert_int_equal(v.n_warnings, 1);
    assert_true(has_evidence(&v.primary, "No compatible PIN/UV protocols supported!"));
    assert_non_null(strstr(v.primary.fix, "proceeds without PIN"));

    /* a CTAP 2.0 card with clientPin but no list speaks protocol 1 */
    ev->client_pin = 1;
    decide(ev, &v, "OK", "all", 0);

    /* both warnings: the first in tree order is the headline */
    ev->client_pin = -1;
    ev->ctap1_ms = 2000;
    decide(ev, &v, "NO_PIN_PROTOCOLS", "getinfo", 0);
    assert_int_equal(v.n_warnings, 2);
    assert_string_equal(v.warnings[1].code, "CTAP1_SLOW");
    assert_int_equal(v.warnings[1].exit, 0);

    ev->client_pin = 0;
    ev->n_pin_protocols = 1;
    decide(ev, &v, "CTAP1_SLOW", "ctap1", 0);
    assert_true(has_evidence(&v.primary, "CTAP2 works"));

    /* a warning never hides a later failure */
    ev->sig_err = KC_ERR_VERIFY;
    decide(ev, &v, "BAD_SIGNATURE", "verify", 5);
    free(ev);
}

static void test_presence(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = healthy();
    ev->timeout_ms = 700;

    ev->mc_err = KC_ERR_TIMEOUT;
    ev->mc_phase = KC_PHASE_COMMAND;
    ev->n_processing = 7;
    ev->max_gap_ms = 100;
    decide(ev, &v, "HANG_BEFORE_PROMPT", "presence", 4);
    assert_true(has_evidence(&v.primary, "7 KEEPALIVE PROCESSING, never UPNEEDED"));

    /* nothing at all while waiting */
    ev->n_processing = 0;
    ev->max_gap_ms = 700;
    decide(ev, &v, "KEEPALIVE_MISSING", "presence", 4);
    assert_true(has_evidence(&v.primary, "no KEEPALIVE for 700 ms"));

    /* UPNEEDED then keepalives, nobody touched */
    ev->mc_phase = KC_PHASE_PRESENCE;
    ev->n_upneeded = 300;
    ev->max_gap_ms = 100;
    decide(ev, &v, "PRESENCE_TIMEOUT", "presence", 4);
    /* UPNEEDED, then silence */
    ev->max_gap_ms = 2000;
    decide(ev, &v, "KEEPALIVE_MISSING", "presence", 4);

    /* answered, but with a long silence before */
    ev->mc_err = KC_OK;
    ev->mc_ms = 1500;
    ev->max_gap_ms = 1500;
    decide(ev, &v, "KEEPALIVE_MISSING", "presence", 4);
    ev->max_gap_ms = RC_DOC_KEEPALIVE_GAP_MS; /* at the limit is fine */
    decide(ev, &v, "OK", "all", 0);

    ev->mc_err = KC_CTAP2_ERR_OPERATION_DENIED;
    decide(ev, &v, "PRESENCE_DENIED", "presence", 4);
    ev->mc_err = KC_CTAP2_ERR_USER_ACTION_TIMEOUT;
    decide(ev, &v, "PRESENCE_TIMEOUT", "presence", 4);
    ev->mc_err = KC_CTAP2_ERR_UNSUPPORTED_ALGORITHM;
    decide(ev, &v, "CTAP_ERROR", "presence", 4);
    assert_true(has_evidence(&v.primary, "CTAP2_ERR_UNSUPPORTED_ALGORITHM"));
    assert_null(strstr(v.primary.fix, "reset"));
    ev->mc_err = KC_ERR_PROTOCOL;
    decide(ev, &v, "FRAMING", "presence", 3);
    /* an explicit udp card: nothing to unplug, it stopped answering here */
    ev->mc_err = KC_ERR_NO_DEVICE;
    decide(ev, &v, "NO_REPLY", "presence", 3);
    assert_non_null(strstr(v.primary.fix, "--device auto"));
    assert_null(strstr(v.primary.fix, "qvm-usb"));

    ev->mc_err = KC_OK;
    ev->att_err = KC_ERR_VERIFY;
    snprintf(ev->att_reason, sizeof(ev->att_reason), "signature does not verify (packed)");
    decide(ev, &v, "BAD_SIGNATURE", "presence", 5);
    assert_true(has_evidence(&v.primary, "signature does not verify (packed)"));
    free(ev);
}

static void test_verify(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = healthy();
    ev->sig_err = KC_ERR_VERIFY;
    decide(ev, &v, "BAD_SIGNATURE", "verify", 5);
    ev->sig_err = KC_OK;

    ev->verify_cred_file = true;
    ev->prev_count = 5;
    ev->new_count = 4;
    decide(ev, &v, "COUNTER_ROLLBACK", "verify", 5);
    assert_true(has_evidence(&v.primary, "signCount went from 5 to 4 (saved in --cred-file)"));
    ev->new_count = 5; /* equal is not an increase */
    decide(ev, &v, "COUNTER_ROLLBACK", "verify", 5);
    ev->prev_count = ev->new_count = 0; /* a card without a counter */
    decide(ev, &v, "OK", "all", 0);
    ev->new_count = 6;
    decide(ev, &v, "OK", "all", 0);

    ev->ga_err = KC_CTAP2_ERR_NO_CREDENTIALS;
    decide(ev, &v, "UNKNOWN_CREDENTIAL", "verify", 4);
    ev->verify_cred_file = false; /* doctor's own, fresh credential: a card fault */
    decide(ev, &v, "CTAP_ERROR", "verify", 4);
    assert_null(strstr(v.primary.fix, "throwaway"));
    ev->ga_err = KC_OK;
    ev->ga_max_gap_ms = 900;
    decide(ev, &v, "KEEPALIVE_MISSING", "verify", 4);
    free(ev);
}

static void test_first_failure_wins(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = healthy();
    /* later steps' evidence (all bad) must not matter */
    ev->att_err = KC_ERR_VERIFY;
    ev->sig_err = KC_ERR_VERIFY;
    ev->n_pin_protocols = 0;
    ev->client_pin = -1;
    ev->small = (struct rc_doc_pings){.sent = 3, .ok = 3};
    ev->large = (struct rc_doc_pings){.sent = 2, .framing = 2};
    decide(ev, &v, "FRAMING", "channel", 3);
    assert_int_equal(v.n_warnings, 0);
    ev->open_err = KC_ERR_PERMISSION;
    decide(ev, &v, "PERMISSION_DENIED", "open", 3);
    free(ev);
}

static void test_codes(void **state)
{
    (void)state;
    const char *const *codes = rc_doc_codes();
    size_t n = 0;
    for (; codes[n]; n++) {
        int e = rc_doc_code_exit(codes[n]);
        assert_true(e == 0 || e == 3 || e == 4 || e == 5);
        for (const char *c = codes[n]; *c; c++)
            assert_true((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_');
    }
    assert_true(n >= 20);
    assert_int_equal(rc_doc_code_exit("NOT_A_CODE"), -1);
    assert_int_equal(rc_doc_code_exit(NULL), -1);
    assert_int_equal(rc_doc_code_exit("INIT_NO_REPLY"), 3);
    /* what the card signed does not verify: rawctap's verification exit */
    assert_int_equal(rc_doc_code_exit("BAD_SIGNATURE"), 5);
    assert_int_equal(rc_doc_code_exit("COUNTER_ROLLBACK"), 5);
    assert_int_equal(rc_doc_code_exit("HANG_BEFORE_PROMPT"), 4);
    assert_int_equal(rc_doc_code_exit("CTAP1_ONLY"), 4);
    assert_int_equal(rc_doc_code_exit("KEEPALIVE_MISSING"), 4);
    assert_string_equal(rc_doc_result_name(RC_DOC_WARN), "warn");
    assert_string_equal(rc_doc_result_name(RC_DOC_SKIP), "skip");
}

static void test_json(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = healthy();
    assert_non_null(rc_doc_step_add(ev, "init", RC_DOC_PASS, 3, "channel %08x", 7u));
    assert_non_null(rc_doc_step_add(ev, "channel", RC_DOC_FAIL, 700, "PING %d/%d", 0, 2));
    ev->small = (struct rc_doc_pings){.sent = 2, .timeout = 2};
    ev->large = (struct rc_doc_pings){0};
    rc_doc_decide(ev, &v);
    json_t *o = rc_doc_json(ev, &v);
    assert_non_null(o);
    assert_false(json_is_true(json_object_get(o, "ok")));
    assert_string_equal(json_string_value(json_object_get(o, "code")), "NO_REPLY");
    assert_string_equal(json_string_value(json_object_get(o, "step")), "channel");
    assert_string_equal(json_string_value(json_object_get(o, "level")), "error");
    assert_int_equal(json_integer_value(json_object_get(o, "exit")), 3);
    assert_true(json_array_size(json_object_get(o, "evidence")) >= 1);
    assert_non_null(json_string_value(json_object_get(o, "fix")));
    json_t *steps = json_object_get(o, "steps");
    assert_int_equal(json_array_size(steps), 2);
    json_t *s1 = json_array_get(steps, 1);
    assert_string_equal(json_string_value(json_object_get(s1, "name")), "channel");
    assert_string_equal(json_string_value(json_object_get(s1, "result")), "fail");
    assert_int_equal(json_integer_value(json_object_get(s1, "ms")), 700);
    assert_string_equal(json_string_value(json_object_get(s1, "detail")), "PING 0/2");
    json_decref(o);

    /* a warning: ok true, level warning, listed under warnings */
    free(ev);
    ev = healthy();
    ev->n_pin_protocols = 0;
    ev->client_pin = -1;
    rc_doc_decide(ev, &v);
    o = rc_doc_json(ev, &v);
    assert_non_null(o);
    assert_true(json_is_true(json_object_get(o, "ok")));
    assert_string_equal(json_string_value(json_object_get(o, "level")), "warning");
    assert_int_equal(json_array_size(json_object_get(o, "warnings")), 1);
    json_decref(o);

    /* the step list is bounded */
    for (int i = 0; i < RC_DOC_MAX_STEPS; i++)
        rc_doc_step_add(ev, "x", RC_DOC_PASS, 0, "filler");
    assert_null(rc_doc_step_add(ev, "y", RC_DOC_PASS, 0, "one too many"));
    free(ev);
}

/* ---- PIN/UV: a card that wants its PIN is healthy ---- */

/* A CTAP 2.0 card with a PIN set: makeCredential without pinAuth answers
 * 0x36 (PIN_REQUIRED in 2.0, PUAT_REQUIRED in 2.1). */
static struct rc_doc_evidence *pin_card(void)
{
    struct rc_doc_evidence *ev = healthy();
    snprintf(ev->versions, sizeof(ev->versions), "FIDO_2_0");
    snprintf(ev->pin_protocols, sizeof(ev->pin_protocols), "1");
    ev->n_pin_protocols = 1;
    ev->client_pin = 1;
    ev->always_uv = -1;
    ev->uv = -1;
    ev->mc_uv_not_rqd = -1;
    ev->pin_ran = true;
    ev->retries_ran = true;
    ev->retries = 8;
    ev->mc_err = KC_CTAP2_ERR_PUAT_REQUIRED;
    ev->verify_ran = false; /* no credential was made */
    return ev;
}

static void test_pin_required(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = pin_card();
    decide(ev, &v, "PIN_REQUIRED", "pin", 0);
    assert_false(v.done); /* the runner goes on with what needs no PIN */
    assert_true(has_evidence(&v.primary, "clientPin set"));
    assert_true(has_evidence(&v.primary, "makeCredential answered CTAP2_ERR_PUAT_REQUIRED"));
    assert_true(has_evidence(&v.primary, "8 PIN attempt(s) left"));
    assert_non_null(strstr(v.primary.fix, "--pin-file"));
    assert_non_null(strstr(v.primary.fix, "RAWCTAP_PIN"));
    assert_non_null(strstr(v.primary.fix, "nothing is wrong with the card so far"));
    json_t *o = rc_doc_json(ev, &v);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "level")), "warning");
    assert_true(json_is_true(json_object_get(o, "ok")));
    assert_int_equal(json_integer_value(json_object_get(o, "exit")), 0);
    assert_false(json_is_true(json_object_get(o, "pin_given")));
    assert_int_equal(json_integer_value(json_object_get(o, "pin_retries")), 8);
    json_decref(o);

    /* the headline over a slow-CTAP1 warning */
    ev->ctap1_ms = 2000;
    decide(ev, &v, "PIN_REQUIRED", "pin", 0);
    assert_int_equal(v.n_warnings, 2);
    ev->ctap1_ms = 30;

    /* what needs no PIN still counts: a bad signature on --cred-file wins */
    ev->verify_ran = true;
    ev->verify_cred_file = true;
    ev->sig_err = KC_ERR_VERIFY;
    decide(ev, &v, "BAD_SIGNATURE", "verify", 5);
    ev->sig_err = KC_OK;
    ev->verify_ran = false;
    /* and a transport failure of the makeCredential is not a PIN matter */
    ev->mc_err = KC_ERR_PROTOCOL;
    decide(ev, &v, "FRAMING", "presence", 3);

    /* alwaysUv: getAssertion (up=false) on --cred-file wants it too */
    ev->presence_ran = false;
    ev->presence_skipped = true;
    ev->always_uv = 1;
    ev->verify_ran = true;
    ev->ga_err = KC_CTAP2_ERR_PUAT_REQUIRED;
    decide(ev, &v, "PIN_REQUIRED", "pin", 0);
    assert_true(has_evidence(&v.primary, "getAssertion (up=false) answered"));
    assert_true(has_evidence(&v.primary, "alwaysUv true"));
    /* alwaysUv and nothing tried: still the PIN */
    ev->verify_ran = false;
    decide(ev, &v, "PIN_REQUIRED", "pin", 0);
    assert_true(has_evidence(&v.primary, "alwaysUv: every makeCredential"));

    /* a 2.1 card with makeCredUvNotRqd registers without the PIN: OK */
    free(ev);
    ev = pin_card();
    ev->mc_uv_not_rqd = 1;
    ev->mc_err = KC_OK;
    ev->verify_ran = true;
    decide(ev, &v, "OK", "all", 0);
    free(ev);
}

static void test_pin_given(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = pin_card();
    ev->pin_given = true;
    ev->token_ran = true;
    ev->token_protocol = 1;
    ev->mc_used_pin = true;
    ev->mc_err = KC_OK;
    ev->verify_ran = true;
    ev->ga_used_pin = true;
    decide(ev, &v, "OK", "all", 0);
    json_t *o = rc_doc_json(ev, &v);
    assert_true(json_is_true(json_object_get(o, "pin_given")));
    json_decref(o);

    /* with the card's own token it still wants one: the card is wrong */
    ev->mc_err = KC_CTAP2_ERR_PUAT_REQUIRED;
    decide(ev, &v, "CTAP_ERROR", "presence", 4);
    assert_true(has_evidence(&v.primary, "carried a pinUvAuthParam"));
    ev->mc_err = KC_CTAP2_ERR_PIN_AUTH_INVALID;
    decide(ev, &v, "CTAP_ERROR", "presence", 4);
    ev->mc_err = KC_OK;

    /* the wrong PIN: its own code, the attempts left, no reset */
    ev->token_err = KC_CTAP2_ERR_PIN_INVALID;
    ev->mc_used_pin = ev->ga_used_pin = false;
    ev->retries_after_known = true;
    ev->retries_after = 7;
    decide(ev, &v, "PIN_INVALID", "pin", 4);
    assert_true(v.pin_gate);
    assert_true(has_evidence(&v.primary, "7 PIN attempt(s) left now"));
    assert_non_null(strstr(v.primary.fix, "7 attempt(s) are left"));
    assert_null(strcasestr(v.primary.fix, "reset"));

    /* the token request failing below the PIN */
    ev->token_err = KC_ERR_TIMEOUT;
    decide(ev, &v, "NO_REPLY", "pin", 3);
    assert_false(v.pin_gate);
    ev->token_err = KC_CTAP2_ERR_INVALID_CBOR;
    decide(ev, &v, "CTAP_ERROR", "pin", 4);
    assert_true(has_evidence(&v.primary, "before the PIN was checked"));
    ev->token_err = KC_ERR_NO_PIN_PROTOCOL;
    decide(ev, &v, "CTAP_ERROR", "pin", 4);
    assert_true(has_evidence(&v.primary, "no PIN/UV auth protocol fits"));
    ev->token_err = KC_OK;
    ev->retries_err = KC_ERR_TIMEOUT;
    decide(ev, &v, "NO_REPLY", "pin", 3);
    ev->retries_err = KC_CTAP1_ERR_INVALID_COMMAND; /* retries unknown: not a failure */
    ev->retries_ran = true;
    decide(ev, &v, "OK", "all", 0);
    ev->retries_err = KC_OK;

    /* the last attempt is not spent blindly */
    ev->token_ran = false;
    ev->pin_spared = true;
    ev->retries = 1;
    ev->mc_err = KC_CTAP2_ERR_PUAT_REQUIRED;
    ev->verify_ran = false;
    decide(ev, &v, "PIN_RETRIES_LOW", "pin", 0);
    assert_true(has_evidence(&v.primary, "1 PIN attempt(s) left"));
    assert_non_null(strstr(v.primary.fix, "--pin-last-try"));
    free(ev);
}

static void test_pin_states(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = pin_card();

    /* no PIN set on a card that requires UV */
    ev->client_pin = 0;
    ev->retries_ran = false;
    ev->pin_ran = false;
    decide(ev, &v, "PIN_NOT_SET", "pin", 4);
    assert_true(v.pin_gate && v.done);
    assert_non_null(strstr(v.primary.fix, "rawctap pin set"));
    ev->mc_err = KC_CTAP2_ERR_PIN_NOT_SET;
    decide(ev, &v, "PIN_NOT_SET", "pin", 4);
    ev->pin_given = true;
    decide(ev, &v, "PIN_NOT_SET", "pin", 4);
    assert_true(has_evidence(&v.primary, "a PIN was given, but the card has none set"));
    ev->pin_given = false;
    ev->client_pin = -1; /* no clientPin at all: built-in UV */
    decide(ev, &v, "PIN_NOT_SET", "pin", 4);
    assert_non_null(strstr(v.primary.fix, "built-in user verification"));
    ev->client_pin = 0;
    ev->presence_ran = false; /* alwaysUv, nothing tried */
    ev->always_uv = 1;
    decide(ev, &v, "PIN_NOT_SET", "pin", 4);
    ev->presence_ran = true;
    ev->always_uv = -1;
    ev->mc_err = KC_CTAP2_ERR_PUAT_REQUIRED;

    /* blocked for good: the one place a reset is advised */
    free(ev);
    ev = pin_card();
    ev->retries = 0;
    decide(ev, &v, "PIN_BLOCKED", "pin", 4);
    assert_true(v.pin_gate);
    assert_true(has_evidence(&v.primary, "0 PIN attempt(s) left"));
    assert_non_null(strstr(v.primary.fix, "rawctap reset"));
    assert_non_null(strstr(v.primary.fix, "erases every credential"));
    assert_non_null(strstr(v.primary.fix, "the PIN itself"));
    assert_non_null(strstr(v.primary.fix, "10 s of power-up"));
    ev->retries = 8;
    ev->mc_err = KC_CTAP2_ERR_PIN_BLOCKED; /* said by the card */
    decide(ev, &v, "PIN_BLOCKED", "pin", 4);
    assert_true(has_evidence(&v.primary, "CTAP2_ERR_PIN_BLOCKED"));
    /* an earlier real failure still comes first */
    ev->small = (struct rc_doc_pings){.sent = 3, .ok = 3};
    ev->large = (struct rc_doc_pings){.sent = 2, .framing = 2};
    decide(ev, &v, "FRAMING", "channel", 3);
    ev->large = (struct rc_doc_pings){.sent = 2, .ok = 2};

    /* blocked until power cycle: a power cycle, never a reset */
    ev->mc_err = KC_CTAP2_ERR_PUAT_REQUIRED;
    ev->power_cycle_state = true;
    decide(ev, &v, "PIN_AUTH_BLOCKED", "pin", 4);
    assert_non_null(strstr(v.primary.fix, "power-cycle"));
    assert_null(strcasestr(v.primary.fix, "reset"));
    ev->power_cycle_state = false;
    ev->pin_given = true;
    ev->token_ran = true;
    ev->token_err = KC_CTAP2_ERR_PIN_AUTH_BLOCKED;
    decide(ev, &v, "PIN_AUTH_BLOCKED", "pin", 4);
    assert_true(has_evidence(&v.primary, "CTAP2_ERR_PIN_AUTH_BLOCKED"));

    /* forcePINChange: change it */
    ev->token_err = KC_CTAP2_ERR_PIN_POLICY_VIOLATION;
    decide(ev, &v, "PIN_CHANGE_REQUIRED", "pin", 4);
    assert_non_null(strstr(v.primary.fix, "rawctap pin change"));
    ev->token_ran = false;
    ev->pin_given = false;
    ev->force_pin_change = true;
    decide(ev, &v, "PIN_CHANGE_REQUIRED", "pin", 4);
    assert_true(has_evidence(&v.primary, "forcePINChange true"));
    assert_null(strcasestr(v.primary.fix, "reset"));
    free(ev);
}

/* ---- the wrong names for a silent card ---- */

static void test_silent_cards(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = healthy();

    /* (a) an explicit udp card that went silent mid-request, then did not
     * answer a fresh INIT: NO_REPLY with the udp fix, not a firmware fix */
    ev->mc_err = KC_ERR_TIMEOUT;
    ev->mc_phase = KC_PHASE_COMMAND;
    ev->max_gap_ms = 5000;
    ev->mc_alive_after = -1;
    decide(ev, &v, "NO_REPLY", "presence", 3);
    assert_true(has_evidence(&v.primary, "fresh CTAPHID_INIT got no reply either"));
    assert_non_null(strstr(v.primary.fix, "stopped answering at this address"));
    assert_non_null(strstr(v.primary.fix, "--device auto"));
    assert_non_null(strstr(v.primary.fix, "vcard-ctl status"));
    assert_null(strstr(v.primary.fix, "firmware"));
    snprintf(ev->moved_hint, sizeof(ev->moved_hint), "udp:127.0.0.1:9999");
    decide(ev, &v, "NO_REPLY", "presence", 3);
    assert_non_null(strstr(v.primary.fix, "--device udp:127.0.0.1:9999"));
    ev->moved_hint[0] = '\0';
    ev->mc_err = KC_ERR_ABORTED; /* the watch saw it leave */
    decide(ev, &v, "NO_REPLY", "presence", 3);
    assert_true(has_evidence(&v.primary, "the card left this address"));
    /* alive afterwards: it was only silent while it worked */
    ev->mc_err = KC_ERR_TIMEOUT;
    ev->mc_alive_after = 1;
    decide(ev, &v, "KEEPALIVE_MISSING", "presence", 4);
    assert_true(has_evidence(&v.primary, "was answered"));
    ev->mc_err = KC_OK;
    ev->max_gap_ms = 40;
    ev->ga_err = KC_ERR_TIMEOUT;
    ev->ga_alive_after = -1;
    decide(ev, &v, "NO_REPLY", "verify", 3);
    ev->ga_err = KC_OK;
    ev->info_err = KC_ERR_NO_DEVICE;
    decide(ev, &v, "NO_REPLY", "getinfo", 3);
    assert_non_null(strstr(v.primary.fix, "--device auto"));
    ev->info_err = KC_OK;

    /* (d) a UDP card that never answers INIT: the wrong port first */
    ev->init_ok_attempt = 0;
    ev->init_attempts = 2;
    ev->init_err = KC_ERR_TIMEOUT;
    decide(ev, &v, "INIT_NO_REPLY", "init", 3);
    const char *port = strstr(v.primary.fix, "simulators reply to a fixed host port (7112)");
    const char *local = strstr(v.primary.fix, "udp:HOST:PORT?local=7112");
    const char *restart = strstr(v.primary.fix, "restart it");
    assert_non_null(port);
    assert_non_null(local);
    assert_non_null(restart);
    assert_true(port < restart && local < restart);
    assert_null(strstr(v.primary.fix, "power-cycle the card"));
    assert_true(has_evidence(&v.primary, "is a UDP address"));
    snprintf(ev->device, sizeof(ev->device), "udp:127.0.0.1:8111?local=7112");
    decide(ev, &v, "INIT_NO_REPLY", "init", 3);
    assert_non_null(strstr(v.primary.fix, "another port than the ?local= port"));
    free(ev);

    /* (b) a hidraw node answering EOF: UNPLUGGED only when it is gone */
    ev = healthy();
    ev->dev = RC_DOC_DEV_HIDRAW;
    ev->saw_unplugged = true;
    ev->enum_ran = true;
    snprintf(ev->enum_old, sizeof(ev->enum_old), "hidraw:/dev/hidraw0");
    ev->small = (struct rc_doc_pings){.sent = 2, .other = 2};
    ev->large = (struct rc_doc_pings){0};
    decide(ev, &v, "NO_REPLY", "channel", 3);
    assert_true(has_evidence(&v.primary, "finds the card where it was (hidraw:/dev/hidraw0"));
    ev->small = (struct rc_doc_pings){.sent = 3, .ok = 3};
    ev->large = (struct rc_doc_pings){.sent = 2, .ok = 2};
    ev->mc_err = KC_ERR_UNPLUGGED;
    decide(ev, &v, "NO_REPLY", "presence", 3);
    assert_true(has_evidence(&v.primary, "it was not unplugged"));
    ev->enum_vanished = true;
    decide(ev, &v, "UNPLUGGED", "enumeration", 3);
    free(ev);
}

static void test_unknown_credential(void **state)
{
    (void)state;
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = healthy();
    ev->presence_ran = false;
    ev->verify_cred_file = true;
    snprintf(ev->cred_file, sizeof(ev->cred_file), "old.json");
    ev->ga_err = KC_CTAP2_ERR_NO_CREDENTIALS;
    decide(ev, &v, "UNKNOWN_CREDENTIAL", "verify", 4);
    assert_true(has_evidence(&v.primary, "--cred-file old.json"));
    assert_non_null(strstr(v.primary.fix, "another card"));
    assert_non_null(strstr(v.primary.fix, "make a new credential"));
    assert_null(strstr(v.primary.fix, "throwaway"));
    assert_null(strcasestr(v.primary.fix, "reset"));
    ev->ga_err = KC_CTAP2_ERR_INVALID_CREDENTIAL;
    decide(ev, &v, "UNKNOWN_CREDENTIAL", "verify", 4);
    free(ev);
}

/* ---- every code, and where a reset may be advised ---- */

typedef void (*scenario_fn)(struct rc_doc_evidence *ev);

static void sc_ok(struct rc_doc_evidence *ev)
{
    (void)ev;
}
static void sc_no_pin_protocols(struct rc_doc_evidence *ev)
{
    ev->n_pin_protocols = 0;
    ev->client_pin = -1;
}
static void sc_pin_required(struct rc_doc_evidence *ev)
{
    ev->client_pin = 1;
    ev->mc_err = KC_CTAP2_ERR_PUAT_REQUIRED;
    ev->verify_ran = false;
}
static void sc_pin_retries_low(struct rc_doc_evidence *ev)
{
    sc_pin_required(ev);
    ev->pin_given = ev->pin_ran = ev->retries_ran = ev->pin_spared = true;
    ev->retries = 1;
}
static void sc_no_hidraw(struct rc_doc_evidence *ev)
{
    ev->dev = RC_DOC_DEV_AUTO;
    ev->discover_ran = true;
}
static void sc_non_fido_only(struct rc_doc_evidence *ev)
{
    sc_no_hidraw(ev);
    ev->n_hidraw = 1;
}
static void sc_not_fido_node(struct rc_doc_evidence *ev)
{
    ev->dev = RC_DOC_DEV_HIDRAW;
    ev->discover_ran = ev->named_exists = true;
    ev->n_hidraw = 2;
    ev->named_fido = 0;
}
static void sc_no_device(struct rc_doc_evidence *ev)
{
    ev->open_err = KC_ERR_NO_DEVICE;
}
static void sc_no_device_hidraw(struct rc_doc_evidence *ev)
{
    ev->dev = RC_DOC_DEV_HIDRAW;
    ev->open_err = KC_ERR_NO_DEVICE;
}
static void sc_permission(struct rc_doc_evidence *ev)
{
    ev->open_err = KC_ERR_PERMISSION;
}
static void sc_open_failed(struct rc_doc_evidence *ev)
{
    ev->open_err = KC_ERR_IO;
}
static void sc_init_no_reply(struct rc_doc_evidence *ev)
{
    ev->init_ok_attempt = 0;
    ev->init_err = KC_ERR_TIMEOUT;
}
static void sc_init_no_reply_hidraw(struct rc_doc_evidence *ev)
{
    sc_init_no_reply(ev);
    ev->dev = RC_DOC_DEV_HIDRAW;
}
static void sc_unplugged(struct rc_doc_evidence *ev)
{
    ev->dev = RC_DOC_DEV_HIDRAW;
    ev->enum_ran = ev->enum_vanished = true;
    ev->mc_err = KC_ERR_UNPLUGGED;
}
static void sc_reenumerated(struct rc_doc_evidence *ev)
{
    ev->dev = RC_DOC_DEV_AUTO;
    ev->enum_ran = ev->enum_changed = true;
}
static void sc_wrong_channel(struct rc_doc_evidence *ev)
{
    ev->small = (struct rc_doc_pings){.sent = 2, .timeout = 2};
    ev->other_cid = 3;
}
static void sc_packet_loss(struct rc_doc_evidence *ev)
{
    ev->small = (struct rc_doc_pings){.sent = 3, .ok = 2, .timeout = 1};
}
static void sc_duplicates(struct rc_doc_evidence *ev)
{
    ev->large = (struct rc_doc_pings){.sent = 2, .ok = 1, .mismatch = 1};
}
static void sc_framing(struct rc_doc_evidence *ev)
{
    ev->large = (struct rc_doc_pings){.sent = 2, .framing = 2};
}
static void sc_no_reply(struct rc_doc_evidence *ev)
{
    ev->small = (struct rc_doc_pings){.sent = 2, .timeout = 2};
    ev->large = (struct rc_doc_pings){0};
}
static void sc_no_reply_hidraw(struct rc_doc_evidence *ev)
{
    sc_no_reply(ev);
    ev->dev = RC_DOC_DEV_HIDRAW;
}
static void sc_busy(struct rc_doc_evidence *ev)
{
    ev->busy = true;
    ev->small = (struct rc_doc_pings){.sent = 1, .other = 1};
}
static void sc_ctap1_only(struct rc_doc_evidence *ev)
{
    ev->caps = 0;
    ev->info_ran = false;
}
static void sc_ctap1_slow(struct rc_doc_evidence *ev)
{
    sc_ctap1_only(ev);
    ev->ctap1_ms = 5000;
}
static void sc_ctap1_broken(struct rc_doc_evidence *ev)
{
    sc_ctap1_only(ev);
    ev->ctap1_err = KC_ERR_U2F;
}
static void sc_hang(struct rc_doc_evidence *ev)
{
    ev->mc_err = KC_ERR_TIMEOUT;
    ev->n_processing = 5;
}
static void sc_keepalive_missing(struct rc_doc_evidence *ev)
{
    ev->mc_err = KC_ERR_TIMEOUT;
    ev->max_gap_ms = 900;
}
static void sc_presence_timeout(struct rc_doc_evidence *ev)
{
    ev->mc_err = KC_CTAP2_ERR_USER_ACTION_TIMEOUT;
}
static void sc_presence_denied(struct rc_doc_evidence *ev)
{
    ev->mc_err = KC_CTAP2_ERR_OPERATION_DENIED;
}
static void sc_bad_attestation(struct rc_doc_evidence *ev)
{
    ev->att_err = KC_ERR_VERIFY;
}
static void sc_bad_assertion(struct rc_doc_evidence *ev)
{
    ev->sig_err = KC_ERR_VERIFY;
}
static void sc_rollback(struct rc_doc_evidence *ev)
{
    ev->prev_count = 9;
    ev->new_count = 3;
}
static void sc_pin_not_set(struct rc_doc_evidence *ev)
{
    ev->client_pin = 0;
    ev->mc_err = KC_CTAP2_ERR_PIN_NOT_SET;
    ev->verify_ran = false;
}
static void sc_pin_invalid(struct rc_doc_evidence *ev)
{
    ev->client_pin = 1;
    ev->pin_given = ev->pin_ran = ev->token_ran = true;
    ev->token_err = KC_CTAP2_ERR_PIN_INVALID;
}
static void sc_pin_blocked(struct rc_doc_evidence *ev)
{
    ev->client_pin = 1;
    ev->pin_ran = ev->retries_ran = true;
    ev->retries = 0;
}
static void sc_pin_auth_blocked(struct rc_doc_evidence *ev)
{
    ev->client_pin = 1;
    ev->pin_ran = ev->retries_ran = ev->power_cycle_state = true;
    ev->retries = 5;
}
static void sc_pin_change(struct rc_doc_evidence *ev)
{
    ev->client_pin = 1;
    ev->force_pin_change = true;
}
static void sc_unknown_credential(struct rc_doc_evidence *ev)
{
    ev->verify_cred_file = true;
    ev->ga_err = KC_CTAP2_ERR_NO_CREDENTIALS;
}
static void sc_ctap_error_mc(struct rc_doc_evidence *ev)
{
    ev->mc_err = KC_CTAP2_ERR_UNSUPPORTED_ALGORITHM;
}
static void sc_ctap_error_ga(struct rc_doc_evidence *ev)
{
    ev->ga_err = KC_CTAP2_ERR_INVALID_CBOR;
}
static void sc_ctap_error_ping(struct rc_doc_evidence *ev)
{
    ev->large = (struct rc_doc_pings){.sent = 2, .ok = 1, .other = 1};
    ev->hid_err = KC_HID_ERR_INVALID_CMD;
}
static void sc_ctap_error_info(struct rc_doc_evidence *ev)
{
    ev->info_err = KC_ERR_CBOR;
}
static void sc_ctap_error_token(struct rc_doc_evidence *ev)
{
    sc_pin_invalid(ev);
    ev->token_err = KC_CTAP2_ERR_INVALID_CBOR;
}

static const scenario_fn scenarios[] = {
    sc_ok,
    sc_no_pin_protocols,
    sc_pin_required,
    sc_pin_retries_low,
    sc_no_hidraw,
    sc_non_fido_only,
    sc_not_fido_node,
    sc_no_device,
    sc_no_device_hidraw,
    sc_permission,
    sc_open_failed,
    sc_init_no_reply,
    sc_init_no_reply_hidraw,
    sc_unplugged,
    sc_reenumerated,
    sc_wrong_channel,
    sc_packet_loss,
    sc_duplicates,
    sc_framing,
    sc_no_reply,
    sc_no_reply_hidraw,
    sc_busy,
    sc_ctap1_only,
    sc_ctap1_slow,
    sc_ctap1_broken,
    sc_hang,
    sc_keepalive_missing,
    sc_presence_timeout,
    sc_presence_denied,
    sc_bad_attestation,
    sc_bad_assertion,
    sc_rollback,
    sc_pin_not_set,
    sc_pin_invalid,
    sc_pin_blocked,
    sc_pin_auth_blocked,
    sc_pin_change,
    sc_unknown_credential,
    sc_ctap_error_mc,
    sc_ctap_error_ga,
    sc_ctap_error_ping,
    sc_ctap_error_info,
    sc_ctap_error_token,
};

/* Walks every code through at least one scenario: a destructive reset is
 * advised only for PIN_BLOCKED, and there always with what it erases. */
static void test_reset_only_where_justified(void **state)
{
    (void)state;
    const char *const *codes = rc_doc_codes();
    size_t n_codes = 0;
    while (codes[n_codes])
        n_codes++;
    bool *seen = calloc(n_codes, sizeof(*seen));
    assert_non_null(seen);
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        struct rc_doc_verdict v;
        struct rc_doc_evidence *ev = healthy();
        scenarios[i](ev);
        rc_doc_decide(ev, &v);
        const struct rc_doc_finding *all[1 + RC_DOC_MAX_WARNINGS];
        size_t n = 0;
        all[n++] = &v.primary;
        for (size_t w = 0; w < v.n_warnings; w++)
            all[n++] = &v.warnings[w];
        for (size_t k = 0; k < n; k++) {
            const struct rc_doc_finding *f = all[k];
            bool reset = strcasestr(f->fix, "reset") != NULL;
            if (reset) {
                if (strcmp(f->code, "PIN_BLOCKED") != 0)
                    fail_msg("scenario %zu: %s advises a reset: %s", i, f->code, f->fix);
                assert_non_null(strstr(f->fix, "erases"));
            }
            for (size_t c = 0; c < n_codes; c++)
                if (strcmp(codes[c], f->code) == 0)
                    seen[c] = true;
        }
        free(ev);
    }
    for (size_t c = 0; c < n_codes; c++)
        if (!seen[c])
            fail_msg("no scenario names %s: add one", codes[c]);
    /* and the one place it must be */
    struct rc_doc_verdict v;
    struct rc_doc_evidence *ev = healthy();
    sc_pin_blocked(ev);
    rc_doc_decide(ev, &v);
    assert_non_null(strstr(v.primary.fix, "rawctap reset"));
    free(ev);
    free(seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthy_is_ok),
        cmocka_unit_test(test_discover),
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_init_and_movement),
        cmocka_unit_test(test_channel),
        cmocka_unit_test(test_ctap1_only_and_slow),
        cmocka_unit_test(test_getinfo_failures),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_presence),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_first_failure_wins),
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_pin_required),
        cmocka_unit_test(test_pin_given),
        cmocka_unit_test(test_pin_states),
        cmocka_unit_test(test_silent_cards),
        cmocka_unit_test(test_unknown_credential),
        cmocka_unit_test(test_reset_only_where_justified),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
