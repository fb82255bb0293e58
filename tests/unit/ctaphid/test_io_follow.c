/* The framing layer follows a re-enumerated card only through the
 * transport's reopen callback (set by the discovery layer), never by
 * calling discovery itself: with follow on and a callback, an unplug mid-
 * command reopens, runs INIT again and resends once; without one it fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctaphid/discover.h"
#include "ctaphid/io.h"
#include "ctaphid/io_int.h"
#include "ctaphid/status.h"
#include "ctaphid/transport.h"
#include "ctaphid/transport_int.h"
#include "ctaphid/transport_mem_int.h"

#define TEST_CID 0x0a0b0c0du

/* The scripted card: answers INIT always, echoes PING only once it is
 * "back" (after the reopen callback ran). */
struct card {
    bool back;
    int reopen_calls;
    int reopen_timeout_ms;
    int reopen_rc;
};

static struct card the_card;

static void push_reply(struct kc_transport *t, uint32_t cid, uint8_t cmd, const uint8_t *msg,
                       size_t len)
{
    uint8_t report[KC_HID_REPORT_LEN];

    for (size_t i = 0; i < kc_frag_count(len); i++) {
        assert_int_equal(kc_frag_report(cid, cmd, msg, len, i, report, sizeof(report)), KC_OK);
        assert_int_equal(kc_mem_push(t, report, sizeof(report), 0), KC_OK);
    }
}

static void responder(struct kc_transport *t, const uint8_t *report, size_t len, void *ctx)
{
    struct card *c = ctx;
    size_t bcnt;

    if (len < 7)
        return;
    bcnt = (size_t)report[5] << 8 | report[6];
    if (report[4] == KC_HID_INIT && bcnt == KC_HID_NONCE_LEN) {
        uint8_t body[17] = {0};
        memcpy(body, report + 7, KC_HID_NONCE_LEN);
        body[8] = (TEST_CID >> 24) & 0xff;
        body[9] = (TEST_CID >> 16) & 0xff;
        body[10] = (TEST_CID >> 8) & 0xff;
        body[11] = TEST_CID & 0xff;
        body[12] = 2; /* protocol version */
        push_reply(t, 0xffffffffu, KC_HID_INIT, body, sizeof(body));
        return;
    }
    if (report[4] == KC_HID_PING && c->back && bcnt <= KC_HID_REPORT_LEN - 7)
        push_reply(t, TEST_CID, KC_HID_PING, report + 7, bcnt);
}

static int fake_reopen(struct kc_transport *t, int timeout_ms)
{
    (void)t;
    the_card.reopen_calls++;
    the_card.reopen_timeout_ms = timeout_ms;
    if (the_card.reopen_rc == KC_OK)
        the_card.back = true;
    return the_card.reopen_rc;
}

/* A device with its channel allocated and the card about to vanish: the
 * next read fails with KC_ERR_UNPLUGGED. */
static struct kc_dev *unplugging_dev(bool with_callback, bool follow)
{
    struct kc_transport *t = kc_mem_transport_new();
    struct kc_dev *d = NULL;

    memset(&the_card, 0, sizeof(the_card));
    assert_non_null(t);
    kc_mem_set_responder(t, responder, &the_card);
    t->reopen = with_callback ? fake_reopen : NULL;
    assert_int_equal(kc_dev_wrap(&d, t, NULL), KC_OK);
    assert_int_equal(kc_dev_init(d, NULL), KC_OK);
    kc_dev_set_follow(d, follow);
    assert_int_equal(kc_mem_push_error(t, KC_ERR_UNPLUGGED), KC_OK);
    return d;
}

static int ping(struct kc_dev *d, uint8_t *echo, size_t *n)
{
    return kc_dev_ping(d, (const uint8_t *)"hello", 5, echo, 16, n);
}

static void test_follow_through_callback(void **state)
{
    (void)state;
    struct kc_dev *d = unplugging_dev(true, true);
    uint8_t echo[16];
    size_t n = 0;

    assert_int_equal(ping(d, echo, &n), KC_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(echo, "hello", 5);
    assert_int_equal(the_card.reopen_calls, 1);
    assert_int_equal(the_card.reopen_timeout_ms, 3000);
    assert_true(kc_dev_reenumerated(d));
    assert_int_equal(kc_dev_stats(d)->reopens, 1);
    kc_dev_close(d);
}

static void test_no_callback_no_follow(void **state)
{
    (void)state;
    struct kc_dev *d = unplugging_dev(false, true);
    uint8_t echo[16];
    size_t n = 0;

    assert_int_equal(ping(d, echo, &n), KC_ERR_UNPLUGGED);
    assert_false(kc_dev_reenumerated(d));
    assert_int_equal(kc_dev_stats(d)->reopens, 0);
    kc_dev_close(d);
}

static void test_follow_off_ignores_callback(void **state)
{
    (void)state;
    struct kc_dev *d = unplugging_dev(true, false);
    uint8_t echo[16];
    size_t n = 0;

    assert_int_equal(ping(d, echo, &n), KC_ERR_UNPLUGGED);
    assert_int_equal(the_card.reopen_calls, 0);
    kc_dev_close(d);
}

static void test_card_not_back(void **state)
{
    (void)state;
    struct kc_dev *d = unplugging_dev(true, true);
    uint8_t echo[16];
    size_t n = 0;

    the_card.reopen_rc = KC_ERR_NO_DEVICE;
    assert_int_equal(ping(d, echo, &n), KC_ERR_UNPLUGGED);
    assert_int_equal(the_card.reopen_calls, 1);
    assert_false(kc_dev_reenumerated(d));
    kc_dev_close(d);
}

/* A transport wrapped straight from a backend carries no callback. */
static void test_backend_transport_has_no_callback(void **state)
{
    (void)state;
    struct kc_transport *t = kc_mem_transport_new();

    assert_non_null(t);
    assert_null(t->reopen);
    kc_transport_close(t);
}

/* Discovery's opener hands its reopen down; the backend table does not.
 * (A recorded trace is a transport that needs no device and no socket.) */
#define TRACE_URI "replay:fixtures/pcap/src/mc.jsonl"

static void test_discovery_open_sets_callback(void **state)
{
    (void)state;
    struct kc_transport *t = NULL;
    char err[256];

    assert_int_equal(kc_transport_open(TRACE_URI, &t, err, sizeof(err)), KC_OK);
    assert_true(t->reopen == kc_transport_reopen_wait);
    assert_false(t->opened_as_auto);
    kc_transport_close(t);
    assert_int_equal(kc_transport_open_backend(TRACE_URI, &t, err, sizeof(err)), KC_OK);
    assert_null(t->reopen);
    kc_transport_close(t);
    /* the table alone does not know "auto" */
    assert_int_not_equal(kc_transport_open_backend("auto", &t, err, sizeof(err)), KC_OK);
    assert_null(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follow_through_callback),
        cmocka_unit_test(test_no_callback_no_follow),
        cmocka_unit_test(test_follow_off_ignores_callback),
        cmocka_unit_test(test_card_not_back),
        cmocka_unit_test(test_backend_transport_has_no_callback),
        cmocka_unit_test(test_discovery_open_sets_callback),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
