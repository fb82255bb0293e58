/* The card's CTAPHID state machine (harness/vcard/hid.c) driven report by
 * report with a fake clock: no sockets, no threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <cmocka.h>

#include "ctaphid/status.h"
#include "harness/vcard/card.h"
#include "harness/vcard/hid.h"

#define MAX_OUT 400

struct capture {
    size_t n;
    uint8_t rep[MAX_OUT][KC_HID_REPORT_LEN];
    struct vc_hid_peer to[MAX_OUT];
};

struct fixture {
    struct vc_hid *h;
    struct capture out;
    struct vc_hid_peer a, b;
    uint64_t now;
};

static void capture_send(void *ctx, const struct vc_hid_peer *to, const uint8_t *report)
{
    struct capture *c = ctx;

    assert_true(c->n < MAX_OUT);
    memcpy(c->rep[c->n], report, KC_HID_REPORT_LEN);
    c->to[c->n] = *to;
    c->n++;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->h = vc_hid_new(capture_send, &f->out);
    assert_non_null(f->h);
    f->a.len = 2;
    f->a.addr[0] = 'A';
    f->b.len = 2;
    f->b.addr[0] = 'B';
    f->now = 1000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    vc_hid_free(f->h);
    free(f);
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Sends the first report of a message announcing total bytes. */
static void send_init_pkt(struct fixture *f, const struct vc_hid_peer *p, uint32_t cid, uint8_t cmd,
                          const uint8_t *data, size_t total)
{
    uint8_t rep[KC_HID_REPORT_LEN] = {0};
    size_t n = total < KC_HID_INIT_DATA ? total : KC_HID_INIT_DATA;

    put32(rep, cid);
    rep[4] = cmd;
    rep[5] = (uint8_t)(total >> 8);
    rep[6] = (uint8_t)total;
    if (data != NULL && n > 0)
        memcpy(rep + 7, data, n);
    vc_hid_input(f->h, p, rep, sizeof(rep), f->now);
}

static void send_cont_pkt(struct fixture *f, const struct vc_hid_peer *p, uint32_t cid, uint8_t seq,
                          const uint8_t *data, size_t n)
{
    uint8_t rep[KC_HID_REPORT_LEN] = {0};

    put32(rep, cid);
    rep[4] = seq;
    memcpy(rep + 5, data, n);
    vc_hid_input(f->h, p, rep, sizeof(rep), f->now);
}

static void send_msg(struct fixture *f, const struct vc_hid_peer *p, uint32_t cid, uint8_t cmd,
                     const uint8_t *data, size_t len)
{
    size_t off = len < KC_HID_INIT_DATA ? len : KC_HID_INIT_DATA;
    uint8_t seq = 0;

    send_init_pkt(f, p, cid, cmd, data, len);
    while (off < len) {
        size_t n = len - off < KC_HID_CONT_DATA ? len - off : KC_HID_CONT_DATA;

        send_cont_pkt(f, p, cid, seq++, data + off, n);
        off += n;
    }
}

static bool peer_is(const struct vc_hid_peer *x, const struct vc_hid_peer *y)
{
    return x->len == y->len && memcmp(x->addr, y->addr, x->len) == 0;
}

/* Broadcast INIT from peer p; returns the new channel. */
static uint32_t do_init(struct fixture *f, const struct vc_hid_peer *p)
{
    const uint8_t nonce[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    size_t before = f->out.n;

    send_init_pkt(f, p, KC_HID_BROADCAST_CID, KC_HID_INIT, nonce, 8);
    assert_int_equal(f->out.n, before + 1);
    return be32(f->out.rep[before] + 7 + 8);
}

static void assert_error(struct fixture *f, size_t idx, uint32_t cid, uint8_t code,
                         const struct vc_hid_peer *to)
{
    const uint8_t *r = f->out.rep[idx];

    assert_true(idx < f->out.n);
    assert_int_equal(be32(r), cid);
    assert_int_equal(r[4], KC_HID_ERROR);
    assert_int_equal(r[5], 0);
    assert_int_equal(r[6], 1);
    assert_int_equal(r[7], code);
    assert_true(peer_is(&f->out.to[idx], to));
}

static void test_init_echoes_nonce(void **state)
{
    struct fixture *f = *state;
    const uint8_t nonce[8] = {0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04};
    const uint8_t *r;
    uint32_t cid;

    send_init_pkt(f, &f->a, KC_HID_BROADCAST_CID, KC_HID_INIT, nonce, 8);
    assert_int_equal(f->out.n, 1);
    r = f->out.rep[0];
    assert_int_equal(be32(r), KC_HID_BROADCAST_CID);
    assert_int_equal(r[4], KC_HID_INIT);
    assert_int_equal(r[5] << 8 | r[6], KC_HID_INIT_RESP_LEN);
    assert_memory_equal(r + 7, nonce, 8);
    cid = be32(r + 15);
    assert_true(cid != 0 && cid != KC_HID_BROADCAST_CID);
    assert_int_equal(r[19], 2); /* CTAPHID protocol version */
    assert_int_equal(r[23], KC_HID_CAP_WINK | KC_HID_CAP_CBOR);
    assert_true(peer_is(&f->out.to[0], &f->a));
    assert_int_equal(vc_hid_channel_count(f->h), 1);
}

static void test_init_allocates_fresh_channels(void **state)
{
    struct fixture *f = *state;
    uint32_t c1 = do_init(f, &f->a);
    uint32_t c2 = do_init(f, &f->b);

    assert_int_not_equal(c1, c2);
    assert_true(peer_is(&f->out.to[1], &f->b));
    assert_int_equal(vc_hid_channel_count(f->h), 2);
}

static void test_init_caps_follow_config(void **state)
{
    struct fixture *f = *state;
    struct vc_faults faults;

    vc_hid_set_caps(f->h, false, true);
    (void)do_init(f, &f->a);
    assert_int_equal(f->out.rep[0][23], KC_HID_CAP_WINK | KC_HID_CAP_CBOR | KC_HID_CAP_NMSG);
    vc_hid_set_caps(f->h, true, true);
    memset(&faults, 0, sizeof(faults));
    faults.on[VC_FAULT_CTAP1_ONLY] = true;
    vc_hid_set_faults(f->h, &faults);
    (void)do_init(f, &f->a);
    assert_int_equal(f->out.rep[1][23], KC_HID_CAP_WINK);
}

static void test_init_bad_length(void **state)
{
    struct fixture *f = *state;
    const uint8_t nonce[8] = {0};

    send_init_pkt(f, &f->a, KC_HID_BROADCAST_CID, KC_HID_INIT, nonce, 7);
    assert_int_equal(f->out.n, 1);
    assert_error(f, 0, KC_HID_BROADCAST_CID, KC_HID_ERR_INVALID_LEN, &f->a);
    assert_int_equal(vc_hid_channel_count(f->h), 0);
}

static void test_invalid_channel(void **state)
{
    struct fixture *f = *state;
    const uint8_t x = 'x';

    send_msg(f, &f->a, 0x11223344, KC_HID_PING, &x, 1);
    assert_error(f, 0, 0x11223344, KC_HID_ERR_INVALID_CHANNEL, &f->a);
    send_msg(f, &f->a, KC_HID_BROADCAST_CID, KC_HID_PING, &x, 1);
    assert_error(f, 1, KC_HID_BROADCAST_CID, KC_HID_ERR_INVALID_CHANNEL, &f->a);
    send_msg(f, &f->a, 0, KC_HID_PING, &x, 1);
    assert_error(f, 2, 0, KC_HID_ERR_INVALID_CHANNEL, &f->a);
    /* INIT on a channel that was never allocated is not a resync */
    send_init_pkt(f, &f->a, 0x55667788, KC_HID_INIT, (const uint8_t *)"12345678", 8);
    assert_error(f, 3, 0x55667788, KC_HID_ERR_INVALID_CHANNEL, &f->a);
}

static void test_resync_aborts_message(void **state)
{
    struct fixture *f = *state;
    uint8_t data[100];
    uint32_t cid = do_init(f, &f->a);

    memset(data, 0x42, sizeof(data));
    send_init_pkt(f, &f->a, cid, KC_HID_PING, data, sizeof(data));
    assert_int_equal(f->out.n, 1);
    send_init_pkt(f, &f->a, cid, KC_HID_INIT, (const uint8_t *)"abcdefgh", 8);
    assert_int_equal(f->out.n, 2);
    assert_int_equal(be32(f->out.rep[1]), cid);
    assert_int_equal(be32(f->out.rep[1] + 15), cid);
    /* the old message's continuation is now spurious: ignored */
    send_cont_pkt(f, &f->a, cid, 0, data + 57, 43);
    assert_int_equal(f->out.n, 2);
    assert_false(vc_hid_busy(f->h));
}

static void test_channel_busy(void **state)
{
    struct fixture *f = *state;
    uint8_t data[100] = {0};
    uint32_t ca = do_init(f, &f->a);
    uint32_t cb = do_init(f, &f->b);

    send_init_pkt(f, &f->a, ca, KC_HID_PING, data, sizeof(data));
    send_msg(f, &f->b, cb, KC_HID_PING, data, 1);
    assert_int_equal(f->out.n, 3);
    assert_error(f, 2, cb, KC_HID_ERR_CHANNEL_BUSY, &f->b);
    /* a finishes its message undisturbed */
    send_cont_pkt(f, &f->a, ca, 0, data + 57, 43);
    assert_int_equal(f->out.n, 5);
    assert_int_equal(f->out.rep[3][4], KC_HID_PING);
    assert_true(peer_is(&f->out.to[3], &f->a));
}

static void test_msg_timeout(void **state)
{
    struct fixture *f = *state;
    uint8_t data[200] = {0};
    uint32_t cid = do_init(f, &f->a);

    send_init_pkt(f, &f->a, cid, KC_HID_PING, data, sizeof(data));
    f->now += 300;
    send_cont_pkt(f, &f->a, cid, 0, data, 59);
    /* 500 ms counts from the last packet */
    assert_int_equal(vc_hid_deadline(f->h), f->now + VC_HID_MSG_TIMEOUT_MS);
    vc_hid_tick(f->h, f->now + 499);
    assert_int_equal(f->out.n, 1);
    vc_hid_tick(f->h, f->now + 500);
    assert_int_equal(f->out.n, 2);
    assert_error(f, 1, cid, KC_HID_ERR_MSG_TIMEOUT, &f->a);
    assert_false(vc_hid_busy(f->h));
    assert_int_equal(vc_hid_deadline(f->h), UINT64_MAX);
}

static void test_invalid_seq(void **state)
{
    struct fixture *f = *state;
    uint8_t data[200] = {0};
    uint32_t cid = do_init(f, &f->a);

    send_init_pkt(f, &f->a, cid, KC_HID_PING, data, sizeof(data));
    send_cont_pkt(f, &f->a, cid, 1, data, 59);
    assert_error(f, 1, cid, KC_HID_ERR_INVALID_SEQ, &f->a);
    assert_false(vc_hid_busy(f->h));
    /* a new init packet while the old message wanted continuations */
    send_init_pkt(f, &f->a, cid, KC_HID_PING, data, sizeof(data));
    send_init_pkt(f, &f->a, cid, KC_HID_PING, data, 1);
    assert_error(f, 2, cid, KC_HID_ERR_INVALID_SEQ, &f->a);
}

static void test_invalid_len(void **state)
{
    struct fixture *f = *state;
    uint32_t cid = do_init(f, &f->a);

    send_init_pkt(f, &f->a, cid, KC_HID_PING, NULL, KC_HID_MAX_MSG + 1);
    assert_error(f, 1, cid, KC_HID_ERR_INVALID_LEN, &f->a);
    assert_false(vc_hid_busy(f->h));
    send_init_pkt(f, &f->a, cid, KC_HID_CBOR, NULL, 0);
    assert_error(f, 2, cid, KC_HID_ERR_INVALID_LEN, &f->a);
}

static void test_invalid_cmd(void **state)
{
    struct fixture *f = *state;
    uint32_t cid = do_init(f, &f->a);

    send_init_pkt(f, &f->a, cid, 0xa5, NULL, 0);
    assert_error(f, 1, cid, KC_HID_ERR_INVALID_CMD, &f->a);
    vc_hid_set_caps(f->h, false, true);
    send_init_pkt(f, &f->a, cid, KC_HID_MSG, (const uint8_t *)"\0\3\0\0", 4);
    assert_error(f, 2, cid, KC_HID_ERR_INVALID_CMD, &f->a);
}

static void test_ping_max_fragmented(void **state)
{
    struct fixture *f = *state;
    static uint8_t data[KC_HID_MAX_MSG];
    static uint8_t back[KC_HID_MAX_MSG];
    uint32_t cid = do_init(f, &f->a);
    size_t off;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 3);
    f->out.n = 0;
    send_msg(f, &f->a, cid, KC_HID_PING, data, sizeof(data));
    assert_int_equal(f->out.n, 129);
    assert_int_equal(f->out.rep[0][4], KC_HID_PING);
    assert_int_equal(f->out.rep[0][5] << 8 | f->out.rep[0][6], KC_HID_MAX_MSG);
    memcpy(back, f->out.rep[0] + 7, KC_HID_INIT_DATA);
    off = KC_HID_INIT_DATA;
    for (size_t i = 1; i < 129; i++) {
        size_t n = sizeof(back) - off < KC_HID_CONT_DATA ? sizeof(back) - off : KC_HID_CONT_DATA;

        assert_int_equal(be32(f->out.rep[i]), cid);
        assert_int_equal(f->out.rep[i][4], i - 1);
        memcpy(back + off, f->out.rep[i] + 5, n);
        off += n;
    }
    assert_int_equal(off, sizeof(back));
    assert_memory_equal(back, data, sizeof(data));
}

static void test_lock(void **state)
{
    struct fixture *f = *state;
    uint32_t ca = do_init(f, &f->a);
    uint32_t cb = do_init(f, &f->b);
    uint8_t secs = 2;

    send_msg(f, &f->a, ca, KC_HID_LOCK, &secs, 1);
    assert_int_equal(f->out.n, 3);
    assert_int_equal(f->out.rep[2][4], KC_HID_LOCK);
    send_msg(f, &f->b, cb, KC_HID_PING, &secs, 1);
    assert_error(f, 3, cb, KC_HID_ERR_CHANNEL_BUSY, &f->b);
    send_msg(f, &f->a, ca, KC_HID_PING, &secs, 1);
    assert_int_equal(f->out.rep[4][4], KC_HID_PING);
    f->now += 1999;
    send_msg(f, &f->b, cb, KC_HID_PING, &secs, 1);
    assert_error(f, 5, cb, KC_HID_ERR_CHANNEL_BUSY, &f->b);
    f->now += 1;
    send_msg(f, &f->b, cb, KC_HID_PING, &secs, 1);
    assert_int_equal(f->out.rep[6][4], KC_HID_PING);
    secs = 11;
    send_msg(f, &f->a, ca, KC_HID_LOCK, &secs, 1);
    assert_error(f, 7, ca, KC_HID_ERR_INVALID_PAR, &f->a);
    send_msg(f, &f->a, ca, KC_HID_LOCK, (const uint8_t *)"\1\1", 2);
    assert_error(f, 8, ca, KC_HID_ERR_INVALID_LEN, &f->a);
    /* LOCK 0 releases early */
    secs = 10;
    send_msg(f, &f->a, ca, KC_HID_LOCK, &secs, 1);
    secs = 0;
    send_msg(f, &f->a, ca, KC_HID_LOCK, &secs, 1);
    send_msg(f, &f->b, cb, KC_HID_PING, &secs, 1);
    assert_int_equal(f->out.rep[11][4], KC_HID_PING);
}

static void test_wink(void **state)
{
    struct fixture *f = *state;
    uint32_t cid = do_init(f, &f->a);

    send_msg(f, &f->a, cid, KC_HID_WINK, NULL, 0);
    assert_int_equal(f->out.n, 2);
    assert_int_equal(f->out.rep[1][4], KC_HID_WINK);
    assert_int_equal(f->out.rep[1][6], 0);
}

static void test_job_keepalives_and_reply(void **state)
{
    struct fixture *f = *state;
    const uint8_t req[] = {KC_CTAP2_GET_INFO};
    const uint8_t resp[] = {0x00, 0xa0};
    struct vc_hid_job job;
    uint32_t ca = do_init(f, &f->a);
    uint32_t cb = do_init(f, &f->b);
    size_t ka = 0;
    uint64_t start;

    f->out.n = 0;
    send_msg(f, &f->a, ca, KC_HID_CBOR, req, sizeof(req));
    assert_int_equal(f->out.n, 0);
    assert_true(vc_hid_job_take(f->h, &job));
    assert_false(vc_hid_job_take(f->h, &job));
    assert_int_equal(job.cid, ca);
    assert_int_equal(job.cmd, KC_HID_CBOR);
    assert_int_equal(job.len, 1);
    assert_int_equal(job.data[0], KC_CTAP2_GET_INFO);
    /* keepalive PROCESSING every 100 ms, ticking every 10 ms for 1 s */
    start = f->now;
    for (uint64_t t = start; t <= start + 1000; t += 10)
        vc_hid_tick(f->h, t);
    for (size_t i = 0; i < f->out.n; i++) {
        assert_int_equal(f->out.rep[i][4], KC_HID_KEEPALIVE);
        assert_int_equal(f->out.rep[i][7], KC_KEEPALIVE_PROCESSING);
        assert_true(peer_is(&f->out.to[i], &f->a));
        ka++;
    }
    assert_int_equal(ka, 10);
    vc_hid_job_set_status(f->h, KC_KEEPALIVE_UPNEEDED);
    vc_hid_tick(f->h, start + 1100);
    assert_int_equal(f->out.n, 11);
    assert_int_equal(f->out.rep[10][7], KC_KEEPALIVE_UPNEEDED);
    /* another channel is busy while the core works */
    send_msg(f, &f->b, cb, KC_HID_PING, req, 1);
    assert_error(f, 11, cb, KC_HID_ERR_CHANNEL_BUSY, &f->b);
    vc_hid_job_finish(f->h, resp, sizeof(resp), start + 1150);
    assert_int_equal(f->out.n, 13);
    assert_int_equal(f->out.rep[12][4], KC_HID_CBOR);
    assert_memory_equal(f->out.rep[12] + 7, resp, sizeof(resp));
    assert_true(peer_is(&f->out.to[12], &f->a));
    assert_false(vc_hid_job_running(f->h));
    assert_int_equal(vc_hid_deadline(f->h), UINT64_MAX);
}

static void test_cancel_marks_job(void **state)
{
    struct fixture *f = *state;
    const uint8_t req[] = {KC_CTAP2_GET_ASSERTION, 0xa0};
    struct vc_hid_job job;
    uint32_t ca = do_init(f, &f->a);
    uint32_t cb = do_init(f, &f->b);

    /* CANCEL with nothing running: ignored, no reply */
    send_init_pkt(f, &f->a, ca, KC_HID_CANCEL, NULL, 0);
    assert_int_equal(f->out.n, 2);
    send_msg(f, &f->a, ca, KC_HID_CBOR, req, sizeof(req));
    assert_true(vc_hid_job_take(f->h, &job));
    /* CANCEL on another channel does not touch it */
    send_init_pkt(f, &f->b, cb, KC_HID_CANCEL, NULL, 0);
    assert_false(vc_hid_job_cancelled(f->h));
    send_init_pkt(f, &f->a, ca, KC_HID_CANCEL, NULL, 0);
    assert_true(vc_hid_job_cancelled(f->h));
    assert_int_equal(f->out.n, 2);
}

static void test_resync_abandons_job(void **state)
{
    struct fixture *f = *state;
    const uint8_t req[] = {KC_CTAP2_GET_INFO};
    const uint8_t resp[] = {0x00};
    struct vc_hid_job job;
    uint32_t ca = do_init(f, &f->a);

    send_msg(f, &f->a, ca, KC_HID_CBOR, req, sizeof(req));
    assert_true(vc_hid_job_take(f->h, &job));
    send_init_pkt(f, &f->a, ca, KC_HID_INIT, (const uint8_t *)"zzzzzzzz", 8);
    assert_int_equal(f->out.n, 2);
    assert_true(vc_hid_job_cancelled(f->h));
    vc_hid_job_finish(f->h, resp, sizeof(resp), f->now);
    assert_int_equal(f->out.n, 2); /* the answer of an abandoned request is dropped */
}

static void set_fault(struct fixture *f, enum vc_fault_kind k, int arg)
{
    struct vc_faults faults;

    memset(&faults, 0, sizeof(faults));
    faults.on[k] = true;
    faults.arg[k] = arg;
    vc_hid_set_faults(f->h, &faults);
}

static void test_output_faults(void **state)
{
    struct fixture *f = *state;
    uint8_t data[200];
    uint32_t cid = do_init(f, &f->a);

    memset(data, 0x33, sizeof(data));
    set_fault(f, VC_FAULT_DROP_EVERY, 2);
    f->out.n = 0;
    send_msg(f, &f->a, cid, KC_HID_PING, data, sizeof(data)); /* 4 reports */
    assert_int_equal(f->out.n, 2);
    set_fault(f, VC_FAULT_DUPLICATE_EVERY, 2);
    f->out.n = 0;
    send_msg(f, &f->a, cid, KC_HID_PING, data, sizeof(data));
    assert_int_equal(f->out.n, 6);
    set_fault(f, VC_FAULT_CORRUPT_SEQ, 0);
    f->out.n = 0;
    send_msg(f, &f->a, cid, KC_HID_PING, data, sizeof(data));
    assert_int_equal(f->out.n, 4);
    assert_int_not_equal(f->out.rep[1][4], 0);
    set_fault(f, VC_FAULT_WRONG_CID, 0);
    f->out.n = 0;
    send_msg(f, &f->a, cid, KC_HID_PING, data, 1);
    assert_int_equal(f->out.n, 1);
    assert_int_not_equal(be32(f->out.rep[0]), cid);
    assert_int_not_equal(be32(f->out.rep[0]), KC_HID_BROADCAST_CID);
}

static void test_input_faults(void **state)
{
    struct fixture *f = *state;
    const uint8_t nonce[8] = {9};
    uint32_t cid = do_init(f, &f->a);

    set_fault(f, VC_FAULT_BUSY, 0);
    send_msg(f, &f->a, cid, KC_HID_PING, nonce, 1);
    assert_error(f, 1, cid, KC_HID_ERR_CHANNEL_BUSY, &f->a);
    set_fault(f, VC_FAULT_NO_INIT_REPLY, 0);
    send_init_pkt(f, &f->a, KC_HID_BROADCAST_CID, KC_HID_INIT, nonce, 8);
    assert_int_equal(f->out.n, 2);
    set_fault(f, VC_FAULT_UNPLUG, 0);
    send_msg(f, &f->a, cid, KC_HID_PING, nonce, 1);
    send_init_pkt(f, &f->a, KC_HID_BROADCAST_CID, KC_HID_INIT, nonce, 8);
    assert_int_equal(f->out.n, 2);
}

static void test_no_keepalive_fault(void **state)
{
    struct fixture *f = *state;
    const uint8_t req[] = {KC_CTAP2_GET_INFO};
    struct vc_hid_job job;
    uint32_t cid = do_init(f, &f->a);

    set_fault(f, VC_FAULT_NO_KEEPALIVE, 0);
    send_msg(f, &f->a, cid, KC_HID_CBOR, req, sizeof(req));
    assert_true(vc_hid_job_take(f->h, &job));
    vc_hid_job_set_status(f->h, KC_KEEPALIVE_UPNEEDED);
    for (uint64_t t = f->now; t <= f->now + 1000; t += 10)
        vc_hid_tick(f->h, t);
    assert_int_equal(f->out.n, 1);
}

static void test_reset_drops_channels(void **state)
{
    struct fixture *f = *state;
    const uint8_t x = 1;
    uint32_t cid = do_init(f, &f->a);

    vc_hid_reset(f->h);
    assert_int_equal(vc_hid_channel_count(f->h), 0);
    send_msg(f, &f->a, cid, KC_HID_PING, &x, 1);
    assert_error(f, 1, cid, KC_HID_ERR_INVALID_CHANNEL, &f->a);
}

static void test_short_and_long_reports(void **state)
{
    struct fixture *f = *state;
    uint8_t rep[80] = {0xff, 0xff, 0xff, 0xff, KC_HID_INIT, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};

    vc_hid_input(f->h, &f->a, rep, 5, f->now);  /* shorter than a header */
    vc_hid_input(f->h, &f->a, rep, 65, f->now); /* not a report */
    assert_int_equal(f->out.n, 0);
    vc_hid_input(f->h, &f->a, rep, 15, f->now); /* short datagrams are zero padded */
    assert_int_equal(f->out.n, 1);
    assert_int_equal(f->out.rep[0][4], KC_HID_INIT);
}

static bool map_add(cbor_item_t *map, cbor_item_t *k, cbor_item_t *v)
{
    bool ok = k != NULL && v != NULL &&
              cbor_map_add(map, (struct cbor_pair){.key = cbor_move(k), .value = cbor_move(v)});

    return ok;
}

/* makeCredential {1: clientDataHash, 2: rp, 3: user, 4: [ES256]}, command
 * byte first. Returns the length. */
static size_t build_make_credential(uint8_t *out, size_t cap)
{
    const uint8_t hash[32] = {0x11};
    const uint8_t uid[1] = {0x01};
    cbor_item_t *req = cbor_new_definite_map(4);
    cbor_item_t *rp = cbor_new_definite_map(1);
    cbor_item_t *user = cbor_new_definite_map(2);
    cbor_item_t *params = cbor_new_definite_array(1);
    cbor_item_t *es256 = cbor_new_definite_map(2);
    size_t len;

    assert_non_null(req);
    assert_non_null(rp);
    assert_non_null(user);
    assert_non_null(params);
    assert_non_null(es256);
    assert_true(map_add(rp, cbor_build_string("id"), cbor_build_string("a.b")));
    assert_true(map_add(user, cbor_build_string("id"), cbor_build_bytestring(uid, sizeof(uid))));
    assert_true(map_add(user, cbor_build_string("name"), cbor_build_string("u")));
    assert_true(map_add(es256, cbor_build_string("alg"), cbor_build_negint8(6)));
    assert_true(map_add(es256, cbor_build_string("type"), cbor_build_string("public-key")));
    assert_true(cbor_array_push(params, cbor_move(es256)));
    assert_true(map_add(req, cbor_build_uint8(1), cbor_build_bytestring(hash, sizeof(hash))));
    assert_true(map_add(req, cbor_build_uint8(2), rp));
    assert_true(map_add(req, cbor_build_uint8(3), user));
    assert_true(map_add(req, cbor_build_uint8(4), params));
    out[0] = KC_CTAP2_MAKE_CREDENTIAL;
    len = cbor_serialize(req, out + 1, cap - 1);
    assert_true(len > 0);
    cbor_decref(&req);
    return len + 1;
}

/* The real core behind the state machine: CANCEL arrives while the core
 * waits for presence; the core must answer KEEPALIVE_CANCEL. */
struct up_ctx {
    struct fixture *f;
    uint32_t cid;
    int calls;
};

static enum vc_up_result up_cancel(void *ctx)
{
    struct up_ctx *u = ctx;
    struct fixture *f = u->f;

    u->calls++;
    vc_hid_job_set_status(f->h, KC_KEEPALIVE_UPNEEDED);
    f->now += 250;
    vc_hid_tick(f->h, f->now - 150);
    vc_hid_tick(f->h, f->now - 50);
    send_init_pkt(f, &f->a, u->cid, KC_HID_CANCEL, NULL, 0);
    return vc_hid_job_cancelled(f->h) ? VC_UP_CANCELLED : VC_UP_APPROVED;
}

static void test_cancel_during_presence_with_core(void **state)
{
    struct fixture *f = *state;
    struct vc_config cfg;
    struct vc_card *card;
    struct vc_hid_job job;
    struct up_ctx u;
    uint8_t resp[1024];
    size_t resp_len = 0;
    char err[256];
    size_t ka_up = 0;
    uint8_t mc[256];
    size_t mc_len = build_make_credential(mc, sizeof(mc));

    memset(&cfg, 0, sizeof(cfg));
    cfg.attestation = VC_ATT_SELF;
    cfg.ctap1 = true;
    card = vc_card_new(&cfg, err, sizeof(err));
    assert_non_null(card);
    u.f = f;
    u.cid = do_init(f, &f->a);
    u.calls = 0;
    f->out.n = 0;
    send_msg(f, &f->a, u.cid, KC_HID_CBOR, mc, mc_len);
    assert_true(vc_hid_job_take(f->h, &job));
    assert_int_equal(
        vc_card_cbor(card, job.data, job.len, resp, sizeof(resp), &resp_len, up_cancel, &u), 0);
    assert_int_equal(u.calls, 1);
    assert_int_equal(resp_len, 1);
    assert_int_equal(resp[0], KC_CTAP2_ERR_KEEPALIVE_CANCEL);
    for (size_t i = 0; i < f->out.n; i++)
        if (f->out.rep[i][4] == KC_HID_KEEPALIVE && f->out.rep[i][7] == KC_KEEPALIVE_UPNEEDED)
            ka_up++;
    assert_int_equal(ka_up, 2);
    vc_hid_job_finish(f->h, resp, resp_len, f->now);
    assert_int_equal(f->out.rep[f->out.n - 1][4], KC_HID_CBOR);
    assert_int_equal(f->out.rep[f->out.n - 1][7], KC_CTAP2_ERR_KEEPALIVE_CANCEL);
    vc_card_free(card);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_echoes_nonce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_allocates_fresh_channels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_caps_follow_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_bad_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resync_aborts_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msg_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_len, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_cmd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping_max_fragmented, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_keepalives_and_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_marks_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resync_abandons_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_input_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_keepalive_fault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_drops_channels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_and_long_reports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_during_presence_with_core, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
