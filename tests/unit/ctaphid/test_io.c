/* CTAPHID framing through the scripted in-memory transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctaphid/io.h"
#include "ctaphid/io_int.h"
#include "ctaphid/status.h"
#include "ctaphid/transport.h"
#include "ctaphid/transport_int.h"
#include "ctaphid/transport_mem_int.h"

#define TEST_CID 0x01020304u

/* ---- scripted device helpers ------------------------------------------- */

enum init_mode { INIT_OK, INIT_WRONG_NONCE, INIT_SHORT, INIT_LONG, INIT_SILENT };

struct device {
    enum init_mode init_mode;
    bool wrong_then_right; /* INIT: first a foreign nonce, then ours */
    bool echo;             /* echo every complete message back with its command */
    struct kc_reassembly r;
    uint8_t msg[KC_HID_MAX_MSG];
    bool r_active;
};

static void push_message(struct kc_transport *t, uint32_t cid, uint8_t cmd, const uint8_t *msg,
                         size_t len, int delay_ms)
{
    uint8_t report[KC_HID_REPORT_LEN];

    for (size_t i = 0; i < kc_frag_count(len); i++) {
        assert_int_equal(kc_frag_report(cid, cmd, msg, len, i, report, sizeof(report)), KC_OK);
        assert_int_equal(kc_mem_push(t, report, sizeof(report), delay_ms), KC_OK);
    }
}

static void push_init_reply(struct kc_transport *t, const uint8_t *nonce, uint16_t bcnt)
{
    uint8_t body[32] = {0};
    uint8_t report[KC_HID_REPORT_LEN] = {0};

    memcpy(body, nonce, KC_HID_NONCE_LEN);
    body[8] = (TEST_CID >> 24) & 0xff;
    body[9] = (TEST_CID >> 16) & 0xff;
    body[10] = (TEST_CID >> 8) & 0xff;
    body[11] = TEST_CID & 0xff;
    body[12] = 2;    /* protocol */
    body[13] = 1;    /* major */
    body[14] = 2;    /* minor */
    body[15] = 3;    /* build */
    body[16] = 0x0d; /* WINK | CBOR | NMSG */
    memset(report, 0xff, 4);
    report[4] = KC_HID_INIT;
    report[5] = (uint8_t)(bcnt >> 8);
    report[6] = (uint8_t)bcnt;
    memcpy(report + 7, body, bcnt < sizeof(body) ? bcnt : sizeof(body));
    assert_int_equal(kc_mem_push(t, report, sizeof(report), 0), KC_OK);
}

static void responder(struct kc_transport *t, const uint8_t *report, size_t len, void *ctx)
{
    struct device *dev = ctx;

    if (len >= 15 && report[4] == KC_HID_INIT) {
        uint8_t nonce[8];
        memcpy(nonce, report + 7, 8);
        if (dev->wrong_then_right) {
            uint8_t other[8];
            memcpy(other, nonce, 8);
            other[0] ^= 0x55;
            push_init_reply(t, other, 17);
        }
        switch (dev->init_mode) {
        case INIT_OK:
            push_init_reply(t, nonce, 17);
            break;
        case INIT_WRONG_NONCE:
            nonce[7] ^= 1;
            push_init_reply(t, nonce, 17);
            break;
        case INIT_SHORT:
            push_init_reply(t, nonce, 16);
            break;
        case INIT_LONG:
            push_init_reply(t, nonce, 18);
            break;
        case INIT_SILENT:
            break;
        }
        return;
    }
    if (!dev->echo || report[4] == KC_HID_CANCEL)
        return;
    if (!dev->r_active) {
        kc_reassembly_init(&dev->r, TEST_CID, dev->msg, sizeof(dev->msg));
        dev->r_active = true;
    }
    int rc = kc_reassembly_feed(&dev->r, report, len);
    assert_true(rc >= 0);
    if (rc == 1) {
        push_message(t, TEST_CID, dev->r.cmd, dev->msg, dev->r.have, 0);
        dev->r_active = false;
    }
}

struct fixture {
    struct kc_transport *t;
    struct kc_dev *d;
    struct device dev;
};

static struct fixture *fixture_new(const struct kc_timeouts *to)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->t = kc_mem_transport_new();
    assert_non_null(f->t);
    kc_mem_set_responder(f->t, responder, &f->dev);
    assert_int_equal(kc_dev_wrap(&f->d, f->t, to), KC_OK);
    return f;
}

/* A device with channel TEST_CID already allocated, and the INIT exchange
 * removed from the written log. */
static struct fixture *fixture_ready(const struct kc_timeouts *to)
{
    struct fixture *f = fixture_new(to);
    uint8_t buf[64];

    assert_int_equal(kc_dev_init(f->d, NULL), KC_OK);
    while (kc_mem_pop_written(f->t, buf, sizeof(buf)) > 0)
        ;
    return f;
}

static void fixture_free(struct fixture *f)
{
    kc_dev_close(f->d);
    free(f);
}

static struct kc_timeouts short_timeouts(int init, int command, int presence, int cancel)
{
    struct kc_timeouts to = {init, command, presence, cancel};
    return to;
}

static uint8_t last_written_cmd(struct kc_transport *t)
{
    uint8_t buf[64], last[64] = {0};

    while (kc_mem_pop_written(t, buf, sizeof(buf)) > 0)
        memcpy(last, buf, sizeof(last));
    return last[4];
}

/* ---- INIT ------------------------------------------------------------- */

static void test_init_ok(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL);
    struct kc_init_info info;
    uint8_t w[64];

    assert_int_equal(kc_dev_init(f->d, &info), KC_OK);
    assert_int_equal(info.cid, TEST_CID);
    assert_int_equal(info.protocol_version, 2);
    assert_int_equal(info.major, 1);
    assert_int_equal(info.minor, 2);
    assert_int_equal(info.build, 3);
    assert_int_equal(info.capabilities, 0x0d);
    assert_int_equal(kc_dev_init_info(f->d)->cid, TEST_CID);
    /* the request: broadcast channel, INIT, 8-byte nonce */
    assert_int_equal(kc_mem_pop_written(f->t, w, sizeof(w)), 64);
    assert_memory_equal(w, "\xff\xff\xff\xff\x86\x00\x08", 7);
    fixture_free(f);
}

static void test_init_nonces_differ(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL);
    uint8_t a[64], b[64];

    assert_int_equal(kc_dev_init(f->d, NULL), KC_OK);
    assert_int_equal(kc_dev_init(f->d, NULL), KC_OK);
    assert_int_equal(kc_mem_pop_written(f->t, a, sizeof(a)), 64);
    assert_int_equal(kc_mem_pop_written(f->t, b, sizeof(b)), 64);
    assert_memory_not_equal(a + 7, b + 7, 8);
    fixture_free(f);
}

static void test_init_foreign_nonce_skipped(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL);

    f->dev.wrong_then_right = true;
    assert_int_equal(kc_dev_init(f->d, NULL), KC_OK);
    assert_int_equal(kc_dev_stats(f->d)->skipped_stale, 1);
    assert_int_equal(kc_dev_init_info(f->d)->cid, TEST_CID);
    fixture_free(f);
}

static void expect_init_timeout(enum init_mode mode)
{
    struct kc_timeouts to = short_timeouts(60, 100, 100, 50);
    struct fixture *f = fixture_new(&to);
    uint64_t t0 = kc_now_us();

    f->dev.init_mode = mode;
    assert_int_equal(kc_dev_init(f->d, NULL), KC_ERR_TIMEOUT);
    assert_true(kc_now_us() - t0 >= 60000);
    assert_int_equal(kc_dev_last_phase(f->d), KC_PHASE_INIT);
    assert_int_equal(kc_dev_stats(f->d)->skipped_stale, mode == INIT_SILENT ? 0 : 1);
    fixture_free(f);
}

static void test_init_nonce_mismatch(void **state)
{
    (void)state;
    expect_init_timeout(INIT_WRONG_NONCE);
}

static void test_init_wrong_length(void **state)
{
    (void)state;
    expect_init_timeout(INIT_SHORT);
    expect_init_timeout(INIT_LONG);
    expect_init_timeout(INIT_SILENT);
}

static void test_transact_inits_on_first_use(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL);
    uint8_t out[8];
    size_t n;

    f->dev.echo = true;
    assert_int_equal(kc_dev_ping(f->d, (const uint8_t *)"hi", 2, out, sizeof(out), &n), KC_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "hi", 2);
    assert_int_equal(kc_dev_init_info(f->d)->cid, TEST_CID);
    fixture_free(f);
}

/* ---- fragmentation and reassembly -------------------------------------- */

static void roundtrip(size_t len)
{
    uint8_t *msg = malloc(len + 1), *back = malloc(len + 1);
    uint8_t report[64];
    struct kc_reassembly r;
    size_t count = kc_frag_count(len);
    int rc = 0;

    assert_non_null(msg);
    assert_non_null(back);
    for (size_t i = 0; i < len; i++)
        msg[i] = (uint8_t)(i * 7 + 1);
    kc_reassembly_init(&r, TEST_CID, back, len);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(kc_frag_report(TEST_CID, KC_HID_CBOR, msg, len, i, report, 64), KC_OK);
        if (i == 0) {
            assert_int_equal(report[4], KC_HID_CBOR);
            assert_int_equal((report[5] << 8) | report[6], len);
        } else {
            assert_int_equal(report[4], i - 1);
        }
        rc = kc_reassembly_feed(&r, report, sizeof(report));
        assert_int_equal(rc, i + 1 == count ? 1 : 0);
    }
    assert_int_equal(r.have, len);
    assert_int_equal(r.cmd, KC_HID_CBOR);
    if (len > 0)
        assert_memory_equal(msg, back, len);
    /* one index past the end is refused */
    assert_int_equal(kc_frag_report(TEST_CID, KC_HID_CBOR, msg, len, count, report, 64),
                     KC_ERR_INVALID_ARG);
    free(msg);
    free(back);
}

static void test_frag_counts(void **state)
{
    (void)state;
    assert_int_equal(kc_frag_count(0), 1);
    assert_int_equal(kc_frag_count(57), 1);
    assert_int_equal(kc_frag_count(58), 2);
    assert_int_equal(kc_frag_count(57 + 59), 2);
    assert_int_equal(kc_frag_count(57 + 59 + 1), 3);
    assert_int_equal(kc_frag_count(7609), 129);
}

static void test_frag_roundtrip_sizes(void **state)
{
    (void)state;
    roundtrip(0);
    roundtrip(1);
    roundtrip(57);
    roundtrip(58);
    roundtrip(116);
    roundtrip(7609);
}

static void test_frag_last_report_padded(void **state)
{
    (void)state;
    uint8_t msg[58], report[64];

    memset(msg, 0xaa, sizeof(msg));
    assert_int_equal(kc_frag_report(TEST_CID, KC_HID_PING, msg, 58, 1, report, 64), KC_OK);
    assert_int_equal(report[5], 0xaa);
    for (size_t i = 6; i < 64; i++)
        assert_int_equal(report[i], 0);
}

static void test_too_large_rejected(void **state)
{
    (void)state;
    static uint8_t big[KC_HID_MAX_MSG + 1];
    uint8_t report[64] = {0x01, 0x02, 0x03, 0x04, KC_HID_CBOR, 0x1d, 0xba}; /* 7610 */
    struct kc_reassembly r;
    struct fixture *f = fixture_ready(NULL);
    size_t n;

    assert_int_equal(kc_frag_report(TEST_CID, KC_HID_CBOR, big, sizeof(big), 0, report + 0, 64),
                     KC_ERR_INVALID_ARG);
    report[0] = 1, report[1] = 2, report[2] = 3, report[3] = 4, report[4] = KC_HID_CBOR;
    report[5] = 0x1d, report[6] = 0xba;
    kc_reassembly_init(&r, TEST_CID, big, sizeof(big));
    assert_int_equal(kc_reassembly_feed(&r, report, 64), KC_ERR_PROTOCOL);
    assert_int_equal(kc_dev_transact(f->d, KC_HID_CBOR, big, sizeof(big), big, sizeof(big), &n),
                     KC_ERR_TOO_LARGE);
    assert_int_equal(kc_mem_written_count(f->t), 0);
    fixture_free(f);
}

static void test_reply_larger_than_buffer(void **state)
{
    (void)state;
    struct fixture *f = fixture_ready(NULL);
    uint8_t msg[100] = {0}, out[10];
    size_t n = 99;

    push_message(f->t, TEST_CID, KC_HID_CBOR, msg, sizeof(msg), 0);
    assert_int_equal(kc_dev_transact(f->d, KC_HID_CBOR, msg, 1, out, sizeof(out), &n),
                     KC_ERR_TOO_LARGE);
    assert_int_equal(n, 0);
    fixture_free(f);
}

static void test_reassembly_bad_sequence(void **state)
{
    (void)state;
    uint8_t msg[200], back[200], report[64];
    struct kc_reassembly r;

    memset(msg, 1, sizeof(msg));
    kc_reassembly_init(&r, TEST_CID, back, sizeof(back));
    assert_int_equal(kc_frag_report(TEST_CID, KC_HID_CBOR, msg, 200, 0, report, 64), KC_OK);
    assert_int_equal(kc_reassembly_feed(&r, report, 64), 0);
    assert_int_equal(kc_frag_report(TEST_CID, KC_HID_CBOR, msg, 200, 2, report, 64), KC_OK);
    assert_int_equal(kc_reassembly_feed(&r, report, 64), KC_ERR_PROTOCOL); /* seq 1 before 0 */
}

static void test_reassembly_continuation_without_init(void **state)
{
    (void)state;
    uint8_t back[64], report[64] = {0x01, 0x02, 0x03, 0x04, 0x00};
    struct kc_reassembly r;

    kc_reassembly_init(&r, TEST_CID, back, sizeof(back));
    assert_int_equal(kc_reassembly_feed(&r, report, 64), KC_ERR_PROTOCOL);
    /* an init packet after a started message is refused too */
    report[4] = KC_HID_CBOR;
    report[6] = 100;
    assert_int_equal(kc_reassembly_feed(&r, report, 64), KC_ERR_TOO_LARGE);
    report[6] = 60;
    assert_int_equal(kc_reassembly_feed(&r, report, 64), 0);
    assert_int_equal(kc_reassembly_feed(&r, report, 64), KC_ERR_PROTOCOL);
    /* a short report cannot carry what it claims */
    kc_reassembly_init(&r, TEST_CID, back, sizeof(back));
    report[6] = 10;
    assert_int_equal(kc_reassembly_feed(&r, report, 12), KC_ERR_PROTOCOL);
    assert_int_equal(kc_reassembly_feed(&r, report, 17), 1);
}

static void test_transact_echo_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 57, 58, 7609};
    static uint8_t msg[KC_HID_MAX_MSG], out[KC_HID_MAX_MSG];
    struct fixture *f = fixture_ready(NULL);

    f->dev.echo = true;
    for (size_t i = 0; i < KC_HID_MAX_MSG; i++)
        msg[i] = (uint8_t)(i ^ (i >> 8));
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = 12345;
        assert_int_equal(kc_dev_ping(f->d, msg, sizes[k], out, sizeof(out), &n), KC_OK);
        assert_int_equal(n, sizes[k]);
        if (n > 0)
            assert_memory_equal(msg, out, n);
    }
    assert_int_equal(kc_dev_stats(f->d)->reports_out, 1 + 1 + 2 + 129 + 1);
    fixture_free(f);
}

static void test_transact_bad_sequence(void **state)
{
    (void)state;
    struct fixture *f = fixture_ready(NULL);
    uint8_t msg[200] = {0}, report[64], out[256];
    size_t n;

    assert_int_equal(kc_frag_report(TEST_CID, KC_HID_CBOR, msg, 200, 0, report, 64), KC_OK);
    kc_mem_push(f->t, report, 64, 0);
    assert_int_equal(kc_frag_report(TEST_CID, KC_HID_CBOR, msg, 200, 2, report, 64), KC_OK);
    kc_mem_push(f->t, report, 64, 0);
    assert_int_equal(kc_dev_transact(f->d, KC_HID_CBOR, msg, 1, out, sizeof(out), &n),
                     KC_ERR_PROTOCOL);
    assert_int_equal(kc_dev_last_phase(f->d), KC_PHASE_COMMAND);
    fixture_free(f);
}

/* ---- skipped packets --------------------------------------------------- */

static void test_other_channel_skipped(void **state)
{
    (void)state;
    struct fixture *f = fixture_ready(NULL);
    uint8_t out[16];
    size_t n;

    push_message(f->t, TEST_CID + 1, KC_HID_PING, (const uint8_t *)"nope", 4, 0);
    push_message(f->t, KC_HID_BROADCAST_CID, KC_HID_PING, (const uint8_t *)"nope", 4, 0);
    push_message(f->t, TEST_CID, KC_HID_PING, (const uint8_t *)"yes", 3, 0);
    assert_int_equal(kc_dev_ping(f->d, (const uint8_t *)"yes", 3, out, sizeof(out), &n), KC_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "yes", 3);
    assert_int_equal(kc_dev_stats(f->d)->skipped_other_cid, 2);
    assert_int_equal(kc_dev_stats(f->d)->skipped_stale, 0);
    fixture_free(f);
}

static void test_stale_packets_skipped(void **state)
{
    (void)state;
    struct fixture *f = fixture_ready(NULL);
    uint8_t cont[64] = {0x01, 0x02, 0x03, 0x04, 0x05}, out[16];
    size_t n;

    /* the tail of an earlier reply, then a reply to another command */
    kc_mem_push(f->t, cont, sizeof(cont), 0);
    push_message(f->t, TEST_CID, KC_HID_CBOR, (const uint8_t *)"\x2d", 1, 0);
    push_message(f->t, TEST_CID, KC_HID_PING, (const uint8_t *)"ok", 2, 0);
    assert_int_equal(kc_dev_ping(f->d, (const uint8_t *)"ok", 2, out, sizeof(out), &n), KC_OK);
    assert_int_equal(n, 2);
    assert_int_equal(kc_dev_stats(f->d)->skipped_stale, 2);
    assert_int_equal(kc_dev_stats(f->d)->skipped_other_cid, 0);
    fixture_free(f);
}

/* ---- keepalive and timeouts ------------------------------------------- */

struct ka_log {
    int n;
    uint8_t status[8];
    uint64_t at[8];
};

static void on_keepalive(void *ctx, uint8_t status, uint64_t elapsed_us)
{
    struct ka_log *log = ctx;

    if (log->n < 8) {
        log->status[log->n] = status;
        log->at[log->n] = elapsed_us;
    }
    log->n++;
}

static void push_keepalive(struct kc_transport *t, uint8_t status, int delay_ms)
{
    push_message(t, TEST_CID, KC_HID_KEEPALIVE, &status, 1, delay_ms);
}

static void test_keepalive_callback(void **state)
{
    (void)state;
    struct fixture *f = fixture_ready(NULL);
    struct ka_log log = {0};
    uint8_t out[16];
    size_t n;

    kc_dev_set_keepalive_cb(f->d, on_keepalive, &log);
    push_keepalive(f->t, KC_KEEPALIVE_PROCESSING, 10);
    push_keepalive(f->t, KC_KEEPALIVE_UPNEEDED, 30);
    push_message(f->t, TEST_CID, KC_HID_CBOR, (const uint8_t *)"\x00", 1, 50);
    assert_int_equal(
        kc_dev_transact(f->d, KC_HID_CBOR, (const uint8_t *)"\x04", 1, out, sizeof(out), &n),
        KC_OK);
    assert_int_equal(n, 1);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.status[0], KC_KEEPALIVE_PROCESSING);
    assert_int_equal(log.status[1], KC_KEEPALIVE_UPNEEDED);
    assert_true(log.at[0] >= 10000);
    assert_true(log.at[1] >= 30000);
    assert_true(log.at[1] >= log.at[0]);
    assert_true(kc_dev_saw_upneeded(f->d));
    assert_int_equal(kc_dev_stats(f->d)->keepalives, 2);
    fixture_free(f);
}

static void test_command_timeout_sends_cancel(void **state)
{
    (void)state;
    struct kc_timeouts to = short_timeouts(500, 100, 2000, 50);
    struct fixture *f = fixture_ready(&to);
    const struct kc_last_packet *lp;
    uint8_t out[16];
    size_t n;
    uint64_t t0;

    /* PROCESSING keepalives do not extend the command deadline */
    push_keepalive(f->t, KC_KEEPALIVE_PROCESSING, 30);
    push_keepalive(f->t, KC_KEEPALIVE_PROCESSING, 60);
    push_keepalive(f->t, KC_KEEPALIVE_PROCESSING, 90);
    t0 = kc_now_us();
    assert_int_equal(
        kc_dev_transact(f->d, KC_HID_CBOR, (const uint8_t *)"\x02", 1, out, sizeof(out), &n),
        KC_ERR_TIMEOUT);
    assert_true(kc_now_us() - t0 >= 100000);
    assert_true(kc_now_us() - t0 < 1000000);
    assert_int_equal(kc_dev_last_phase(f->d), KC_PHASE_COMMAND);
    assert_string_equal(kc_phase_name(kc_dev_last_phase(f->d)), "command");
    assert_false(kc_dev_saw_upneeded(f->d));
    lp = kc_dev_last_packet(f->d);
    assert_true(lp->valid);
    assert_int_equal(lp->cmd, KC_HID_KEEPALIVE);
    assert_int_equal(lp->status, KC_KEEPALIVE_PROCESSING);
    assert_true(lp->at_us >= 90000);
    assert_int_equal(kc_dev_stats(f->d)->cancels_sent, 1);
    assert_int_equal(last_written_cmd(f->t), KC_HID_CANCEL);
    fixture_free(f);
}

static void test_presence_deadline_replaces_command(void **state)
{
    (void)state;
    struct kc_timeouts to = short_timeouts(500, 100, 400, 50);
    struct fixture *f = fixture_ready(&to);
    uint8_t out[16];
    size_t n;

    /* reply at 250 ms: past the command deadline, within the presence one */
    push_keepalive(f->t, KC_KEEPALIVE_UPNEEDED, 40);
    push_message(f->t, TEST_CID, KC_HID_CBOR, (const uint8_t *)"\x00", 1, 250);
    assert_int_equal(
        kc_dev_transact(f->d, KC_HID_CBOR, (const uint8_t *)"\x02", 1, out, sizeof(out), &n),
        KC_OK);
    assert_true(kc_dev_saw_upneeded(f->d));
    fixture_free(f);
}

static void test_presence_timeout(void **state)
{
    (void)state;
    struct kc_timeouts to = short_timeouts(500, 100, 200, 50);
    struct fixture *f = fixture_ready(&to);
    uint8_t out[16];
    size_t n;
    uint64_t t0 = kc_now_us();

    push_keepalive(f->t, KC_KEEPALIVE_UPNEEDED, 50);
    assert_int_equal(
        kc_dev_transact(f->d, KC_HID_CBOR, (const uint8_t *)"\x02", 1, out, sizeof(out), &n),
        KC_ERR_TIMEOUT);
    assert_true(kc_now_us() - t0 >= 250000);
    assert_int_equal(kc_dev_last_phase(f->d), KC_PHASE_PRESENCE);
    assert_int_equal(kc_dev_last_packet(f->d)->status, KC_KEEPALIVE_UPNEEDED);
    assert_int_equal(last_written_cmd(f->t), KC_HID_CANCEL);
    fixture_free(f);
}

static int abort_after(void *ctx)
{
    int *calls = ctx;

    return ++*calls >= 3;
}

static void test_abort_sends_cancel(void **state)
{
    (void)state;
    struct kc_timeouts to = short_timeouts(500, 5000, 5000, 300);
    struct fixture *f = fixture_ready(&to);
    const struct kc_last_packet *lp;
    uint8_t out[16];
    size_t n;
    int calls = 0;
    uint64_t t0 = kc_now_us();

    kc_dev_set_abort_cb(f->d, abort_after, &calls);
    /* the card's answer to CANCEL, due after the abort fires (~100 ms) */
    push_message(f->t, TEST_CID, KC_HID_CBOR, (const uint8_t *)"\x2d", 1, 150);
    assert_int_equal(
        kc_dev_transact(f->d, KC_HID_CBOR, (const uint8_t *)"\x02", 1, out, sizeof(out), &n),
        KC_ERR_ABORTED);
    assert_true(kc_now_us() - t0 < 1000000);
    assert_int_equal(calls, 3);
    assert_int_equal(kc_dev_stats(f->d)->cancels_sent, 1);
    lp = kc_dev_last_packet(f->d);
    assert_true(lp->valid);
    assert_int_equal(lp->cmd, KC_HID_CBOR);
    assert_int_equal(lp->status, KC_CTAP2_ERR_KEEPALIVE_CANCEL);
    assert_int_equal(last_written_cmd(f->t), KC_HID_CANCEL);
    fixture_free(f);
}

/* ---- errors ------------------------------------------------------------ */

static void test_ctaphid_error(void **state)
{
    (void)state;
    struct fixture *f = fixture_ready(NULL);
    uint8_t out[16];
    size_t n;

    /* with busy retry off, CHANNEL_BUSY is reported at once */
    kc_dev_set_busy_retry(f->d, false);
    push_message(f->t, TEST_CID, KC_HID_ERROR, (const uint8_t *)"\x06", 1, 0);
    assert_int_equal(
        kc_dev_transact(f->d, KC_HID_CBOR, (const uint8_t *)"\x04", 1, out, sizeof(out), &n),
        KC_ERR_HID);
    assert_int_equal(kc_dev_last_hid_error(f->d), KC_HID_ERR_CHANNEL_BUSY);
    assert_int_equal(kc_dev_stats(f->d)->cancels_sent, 0);
    assert_int_equal(kc_dev_stats(f->d)->busy_retries, 0);
    /* any other CTAPHID error is never retried */
    kc_dev_set_busy_retry(f->d, true);
    push_message(f->t, TEST_CID, KC_HID_ERROR, (const uint8_t *)"\x01", 1, 0);
    assert_int_equal(
        kc_dev_transact(f->d, KC_HID_CBOR, (const uint8_t *)"\x04", 1, out, sizeof(out), &n),
        KC_ERR_HID);
    assert_int_equal(kc_dev_last_hid_error(f->d), KC_HID_ERR_INVALID_CMD);
    assert_int_equal(kc_dev_stats(f->d)->busy_retries, 0);
    fixture_free(f);
}

/* Another client holds the card: the first try gets CHANNEL_BUSY, the
 * request is sent again after a backoff and then answered. */
static void test_channel_busy_is_retried(void **state)
{
    (void)state;
    struct fixture *f = fixture_ready(NULL);
    uint8_t out[16], buf[64];
    size_t n = 0, writes = 0;

    push_message(f->t, TEST_CID, KC_HID_ERROR, (const uint8_t *)"\x06", 1, 0);
    push_message(f->t, TEST_CID, KC_HID_CBOR, (const uint8_t *)"\x00\xa0", 2, 30);
    assert_int_equal(
        kc_dev_transact(f->d, KC_HID_CBOR, (const uint8_t *)"\x04", 1, out, sizeof(out), &n),
        KC_OK);
    assert_int_equal(n, 2);
    assert_int_equal(kc_dev_stats(f->d)->busy_retries, 1);
    while (kc_mem_pop_written(f->t, buf, sizeof(buf)) > 0) {
        assert_int_equal(buf[4], KC_HID_CBOR);
        writes++;
    }
    assert_int_equal(writes, 2); /* the request, and the same request again */
    fixture_free(f);
}

/* A card busy for good: retries stop at the command deadline and the BUSY
 * error is returned, well inside a bounded time. */
static void busy_responder(struct kc_transport *t, const uint8_t *report, size_t len, void *ctx)
{
    (void)ctx;
    if (len >= 5 && report[4] == KC_HID_CBOR)
        push_message(t, TEST_CID, KC_HID_ERROR, (const uint8_t *)"\x06", 1, 0);
}

static void test_channel_busy_gives_up_at_deadline(void **state)
{
    (void)state;
    struct kc_timeouts to = short_timeouts(500, 200, 1000, 50);
    struct fixture *f = fixture_ready(&to);
    uint8_t out[16];
    size_t n;

    kc_mem_set_responder(f->t, busy_responder, NULL);
    uint64_t t0 = kc_now_us();
    assert_int_equal(
        kc_dev_transact(f->d, KC_HID_CBOR, (const uint8_t *)"\x04", 1, out, sizeof(out), &n),
        KC_ERR_HID);
    uint64_t took_ms = (kc_now_us() - t0) / 1000u;
    assert_int_equal(kc_dev_last_hid_error(f->d), KC_HID_ERR_CHANNEL_BUSY);
    assert_true(kc_dev_stats(f->d)->busy_retries >= 3); /* 5, 10, 20, 40 ms ... */
    assert_true(took_ms <= 400);
    kc_mem_set_responder(f->t, NULL, NULL);
    fixture_free(f);
}

static void test_transport_error_propagates(void **state)
{
    (void)state;
    struct fixture *f = fixture_ready(NULL);
    uint8_t out[16];
    size_t n;

    assert_int_equal(kc_mem_push_error(f->t, KC_ERR_UNPLUGGED), KC_OK);
    assert_int_equal(
        kc_dev_transact(f->d, KC_HID_CBOR, (const uint8_t *)"\x04", 1, out, sizeof(out), &n),
        KC_ERR_UNPLUGGED);
    assert_int_equal(kc_dev_last_phase(f->d), KC_PHASE_COMMAND);
    assert_int_not_equal(kc_dev_transport(f->d)->last_errno, 0);
    assert_true(strlen(kc_dev_transport(f->d)->last_error) > 0);
    /* not retried: exactly one request went out */
    assert_int_equal(kc_mem_written_count(f->t), 1);
    fixture_free(f);
}

static void test_wrappers_and_defaults(void **state)
{
    (void)state;
    struct fixture *f = fixture_ready(NULL);
    struct kc_timeouts to;
    uint8_t w[64];

    kc_timeouts_default(&to);
    assert_int_equal(to.init_ms, 3000);
    assert_int_equal(to.command_ms, 5000);
    assert_int_equal(to.presence_ms, 30000);
    assert_int_equal(to.cancel_ms, 500);
    push_message(f->t, TEST_CID, KC_HID_WINK, NULL, 0, 0);
    assert_int_equal(kc_dev_wink(f->d), KC_OK);
    push_message(f->t, TEST_CID, KC_HID_LOCK, NULL, 0, 0);
    assert_int_equal(kc_dev_lock(f->d, 5), KC_OK);
    assert_int_equal(kc_dev_cancel(f->d), KC_OK);
    assert_int_equal(kc_mem_pop_written(f->t, w, sizeof(w)), 64);
    assert_int_equal(w[4], KC_HID_WINK);
    assert_int_equal(kc_mem_pop_written(f->t, w, sizeof(w)), 64);
    assert_int_equal(w[4], KC_HID_LOCK);
    assert_int_equal(w[6], 1);
    assert_int_equal(w[7], 5);
    assert_int_equal(kc_mem_pop_written(f->t, w, sizeof(w)), 64);
    assert_memory_equal(w, "\x01\x02\x03\x04\x91\x00\x00", 7);
    assert_string_equal(kc_phase_name(KC_PHASE_PRESENCE), "presence");
    assert_string_equal(kc_phase_name(KC_PHASE_INIT), "init");
    assert_int_equal(kc_dev_transact(f->d, 0x10, NULL, 0, NULL, 0, NULL), KC_ERR_INVALID_ARG);
    fixture_free(f);
}

static void bad_cid_responder(struct kc_transport *t, const uint8_t *report, size_t len, void *ctx)
{
    uint8_t r[64] = {0xff, 0xff, 0xff, 0xff, KC_HID_INIT, 0, 17};

    (void)ctx;
    if (len < 15 || report[4] != KC_HID_INIT)
        return;
    memcpy(r + 7, report + 7, 8);
    memset(r + 15, 0xff, 4); /* the broadcast channel cannot be allocated */
    kc_mem_push(t, r, sizeof(r), 0);
}

static void test_init_unusable_channel(void **state)
{
    (void)state;
    struct kc_transport *t = kc_mem_transport_new();
    struct kc_dev *d;

    kc_mem_set_responder(t, bad_cid_responder, NULL);
    assert_int_equal(kc_dev_wrap(&d, t, NULL), KC_OK);
    assert_int_equal(kc_dev_init(d, NULL), KC_ERR_PROTOCOL);
    assert_int_equal(kc_dev_last_phase(d), KC_PHASE_INIT);
    kc_dev_close(d);
}

static void test_wrap_checks(void **state)
{
    (void)state;
    struct kc_transport *t = kc_mem_transport_new();
    struct kc_timeouts neg = {-1, -1, 10, -5};
    struct kc_dev *d = NULL;

    t->in_report_len = 32; /* cannot carry a CTAPHID packet */
    assert_int_equal(kc_dev_wrap(&d, t, NULL), KC_ERR_UNSUPPORTED);
    assert_null(d);
    t->in_report_len = 64;
    assert_int_equal(kc_dev_wrap(&d, t, &neg), KC_OK);
    assert_int_equal(kc_dev_wrap(NULL, t, NULL), KC_ERR_INVALID_ARG);
    assert_int_equal(kc_dev_cancel(d), KC_ERR_INVALID_ARG); /* no channel yet */
    kc_dev_close(d);
    kc_dev_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_ok),
        cmocka_unit_test(test_init_nonces_differ),
        cmocka_unit_test(test_init_foreign_nonce_skipped),
        cmocka_unit_test(test_init_nonce_mismatch),
        cmocka_unit_test(test_init_wrong_length),
        cmocka_unit_test(test_init_unusable_channel),
        cmocka_unit_test(test_wrap_checks),
        cmocka_unit_test(test_transact_inits_on_first_use),
        cmocka_unit_test(test_frag_counts),
        cmocka_unit_test(test_frag_roundtrip_sizes),
        cmocka_unit_test(test_frag_last_report_padded),
        cmocka_unit_test(test_too_large_rejected),
        cmocka_unit_test(test_reply_larger_than_buffer),
        cmocka_unit_test(test_reassembly_bad_sequence),
        cmocka_unit_test(test_reassembly_continuation_without_init),
        cmocka_unit_test(test_transact_echo_sizes),
        cmocka_unit_test(test_transact_bad_sequence),
        cmocka_unit_test(test_other_channel_skipped),
        cmocka_unit_test(test_stale_packets_skipped),
        cmocka_unit_test(test_keepalive_callback),
        cmocka_unit_test(test_command_timeout_sends_cancel),
        cmocka_unit_test(test_presence_deadline_replaces_command),
        cmocka_unit_test(test_presence_timeout),
        cmocka_unit_test(test_abort_sends_cancel),
        cmocka_unit_test(test_ctaphid_error),
        cmocka_unit_test(test_channel_busy_is_retried),
        cmocka_unit_test(test_channel_busy_gives_up_at_deadline),
        cmocka_unit_test(test_transport_error_propagates),
        cmocka_unit_test(test_wrappers_and_defaults),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
