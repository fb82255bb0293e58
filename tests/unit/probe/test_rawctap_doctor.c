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
#include "probe/rawctap_doctor_tree.c"

static struct rc_doc_evidence *ev_new(void)
{
    struct rc_doc_evidence *ev = calloc(1, sizeof(*ev));
    assert_non_null(ev);
    return ev;
}

/* A healthy CTAP2 card over udp: every step ran and passed. */
static struct rc_doc_evidence *healthy(void)
{
    struct rc_doc_evidence *ev = ev_new();
    ev->dev = RC_DOC_DEV_OTHER;
    snprintf(ev->device, sizeof(ev->device), "udp:127.0.0.1:8111");
    snprintf(ev->target, sizeof(ev->target), "udp:127.0.0.1:8111");
    ev->timeout_ms = 5000;
    ev->init_timeout_ms = 3000;
    ev->presence_timeout_ms = 30000;
    ev->slow_ms = 1500;
    ev->open_ran = true;
    ev->init_ran = true;
    ev->init_attempts = 1;
    ev->init_ok_attempt = 1;
    ev->caps = KC_HID_CAP_CBOR | KC_HID_CAP_WINK;
    ev->caps_known = true;
    ev->chan_ran = true;
    ev->small.sent = ev->small.ok = 3;
    ev->large.sent = ev->large.ok = 2;
    ev->info_ran = true;
    ev->n_pin_protocols = 2;
    ev->client_pin = 0;
    snprintf(ev->versions, sizeof(ev->versions), "FIDO_2_0, FIDO_2_1");
    ev->presence_ran = true;
    ev->mc_ms = 40;
    ev->max_gap_ms = 40;
    ev->verify_ran = true;
    ev->prev_count = 0;
    ev->new_count = 1;
    ev->ctap1_ran = true;
    ev->ctap1_ms = 30;
    snprintf(ev->u2f_version, sizeof(ev->u2f_version), "U2F_V2");
    return ev;
}

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
    ev->enum_vanished = false;
    ev->saw_unplugged = true;
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
    ev->mc_err = KC_ERR_PROTOCOL;
    decide(ev, &v, "FRAMING", "presence", 3);
    ev->mc_err = KC_ERR_NO_DEVICE;
    decide(ev, &v, "UNPLUGGED", "presence", 3);

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
    decide(ev, &v, "CTAP_ERROR", "verify", 4);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
