/* Fault profile parsing (harness/vcard/faults.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness/vcard/card.h"
#include "harness/vcard/server.h"

static void test_every_name_round_trips(void **state)
{
    (void)state;
    for (int k = 0; k < VC_FAULT_COUNT; k++) {
        struct vc_faults f;
        char err[128];
        char spec[64];
        const char *name = vc_fault_name((enum vc_fault_kind)k);

        memset(&f, 0, sizeof(f));
        if (k == VC_FAULT_DROP_EVERY || k == VC_FAULT_DUPLICATE_EVERY)
            snprintf(spec, sizeof(spec), "%s:3", name);
        else
            snprintf(spec, sizeof(spec), "%s", name);
        assert_int_equal(vc_fault_parse(spec, &f, err, sizeof(err)), 0);
        for (int j = 0; j < VC_FAULT_COUNT; j++)
            assert_int_equal(f.on[j], j == k);
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(vc_fault_name(VC_FAULT_NO_INIT_REPLY), "no-init-reply");
    assert_string_equal(vc_fault_name(VC_FAULT_HANG_BEFORE_UP), "hang-before-up");
    assert_string_equal(vc_fault_name(VC_FAULT_NO_PIN_PROTOCOLS), "no-pin-protocols");
    assert_string_equal(vc_fault_name(VC_FAULT_CTAP1_ONLY), "ctap1-only");
    assert_string_equal(vc_fault_name(VC_FAULT_SLOW_CTAP1), "slow-ctap1");
    assert_string_equal(vc_fault_name(VC_FAULT_NO_KEEPALIVE), "no-keepalive");
    assert_string_equal(vc_fault_name(VC_FAULT_DROP_EVERY), "drop-every");
    assert_string_equal(vc_fault_name(VC_FAULT_DUPLICATE_EVERY), "duplicate-every");
    assert_string_equal(vc_fault_name(VC_FAULT_CORRUPT_SEQ), "corrupt-seq");
    assert_string_equal(vc_fault_name(VC_FAULT_WRONG_CID), "wrong-cid");
    assert_string_equal(vc_fault_name(VC_FAULT_BUSY), "busy");
    assert_string_equal(vc_fault_name(VC_FAULT_BOGUS_SIGNATURE), "bogus-signature");
    assert_string_equal(vc_fault_name(VC_FAULT_COUNTER_ROLLBACK), "counter-rollback");
    assert_string_equal(vc_fault_name(VC_FAULT_UNPLUG), "unplug");
    assert_string_equal(vc_fault_name(VC_FAULT_REPLUG), "replug");
    assert_string_equal(vc_fault_name(VC_FAULT_COUNT), "unknown");
}

static void test_arguments(void **state)
{
    struct vc_faults f;
    char err[128];

    (void)state;
    memset(&f, 0, sizeof(f));
    assert_int_equal(vc_fault_parse("slow-ctap1", &f, err, sizeof(err)), 0);
    assert_true(f.on[VC_FAULT_SLOW_CTAP1]);
    assert_int_equal(f.arg[VC_FAULT_SLOW_CTAP1], 2000);
    assert_int_equal(vc_fault_parse("slow-ctap1:250", &f, err, sizeof(err)), 0);
    assert_int_equal(f.arg[VC_FAULT_SLOW_CTAP1], 250);
    assert_int_equal(vc_fault_parse("drop-every:7", &f, err, sizeof(err)), 0);
    assert_int_equal(f.arg[VC_FAULT_DROP_EVERY], 7);
    assert_int_equal(vc_fault_parse("duplicate-every:1", &f, err, sizeof(err)), 0);
    assert_int_equal(f.arg[VC_FAULT_DUPLICATE_EVERY], 1);
}

static void test_lists_add(void **state)
{
    struct vc_faults f;
    char err[128];

    (void)state;
    memset(&f, 0, sizeof(f));
    assert_int_equal(vc_fault_parse("busy", &f, err, sizeof(err)), 0);
    assert_int_equal(vc_fault_parse("wrong-cid,drop-every:2", &f, err, sizeof(err)), 0);
    assert_true(f.on[VC_FAULT_BUSY]);
    assert_true(f.on[VC_FAULT_WRONG_CID]);
    assert_true(f.on[VC_FAULT_DROP_EVERY]);
    assert_int_equal(f.arg[VC_FAULT_DROP_EVERY], 2);
}

static void expect_error(const char *spec, const char *must_mention)
{
    struct vc_faults f;
    struct vc_faults before;
    char err[128];

    memset(&f, 0, sizeof(f));
    f.on[VC_FAULT_BUSY] = true;
    before = f;
    err[0] = '\0';
    assert_int_equal(vc_fault_parse(spec, &f, err, sizeof(err)), -1);
    assert_non_null(strstr(err, must_mention));
    /* a rejected spec changes nothing, even when part of the list was good */
    assert_memory_equal(&f, &before, sizeof(f));
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("no-such-fault", "no-such-fault");
    expect_error("wrong-cid,bogus", "bogus");
    expect_error("drop-every", "drop-every");
    expect_error("drop-every:0", "drop-every");
    expect_error("drop-every:-1", "drop-every");
    expect_error("drop-every:x", "'x'");
    expect_error("drop-every:3x", "3x");
    expect_error("slow-ctap1:99999999999", "slow-ctap1");
    expect_error("busy:2", "busy");
    expect_error("", "empty");
    expect_error("busy,", "empty");
    expect_error("Busy", "Busy");
    expect_error("a-very-long-profile-name-that-goes-on-and-on-and-on-and-on-and-on-and-on",
                 "unknown fault profile");
}

static void test_null_args(void **state)
{
    struct vc_faults f;
    char err[64];

    (void)state;
    memset(&f, 0, sizeof(f));
    assert_int_equal(vc_fault_parse(NULL, &f, err, sizeof(err)), -1);
    assert_int_equal(vc_fault_parse("busy", NULL, err, sizeof(err)), -1);
}

static void test_presence_modes(void **state)
{
    static const char *const good[] = {"yes",         "no",      "ask",        "timeout",
                                       "timeout:300", "delay:0", "delay:30000"};
    static const char *const bad[] = {"",         "maybe",       "delay",       "delay:", "delay:x",
                                      "delay:-1", "delay:30001", "timeout:1e3", "YES",    "ask:1"};
    struct vc_presence p;
    char err[160];
    char back[32];

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct vc_presence again;

        assert_int_equal(vc_presence_parse(good[i], &p, err, sizeof(err)), 0);
        vc_presence_format(&p, back, sizeof(back));
        assert_int_equal(vc_presence_parse(back, &again, err, sizeof(err)), 0);
        assert_int_equal(again.mode, p.mode);
        assert_int_equal(again.ms, p.ms);
    }
    assert_int_equal(vc_presence_parse("timeout", &p, err, sizeof(err)), 0);
    assert_int_equal(p.mode, VC_PRESENCE_TIMEOUT);
    assert_int_equal(p.ms, VC_PRESENCE_MAX_MS);
    assert_int_equal(vc_presence_parse("delay:250", &p, err, sizeof(err)), 0);
    assert_int_equal(p.mode, VC_PRESENCE_DELAY);
    assert_int_equal(p.ms, 250);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(vc_presence_parse(bad[i], &p, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "presence"));
    }
    assert_int_equal(vc_presence_parse(NULL, &p, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_name_round_trips),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_lists_add),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_null_args),
        cmocka_unit_test(test_presence_modes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
