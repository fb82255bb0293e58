/* vcard --script without sockets: a trace built report by report is served
 * to a "client" that calls vc_script_input and vc_script_tick with its own
 * clock; what the script sends is collected and checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctaphid/io.h"
#include "ctaphid/io_int.h"
#include "ctaphid/status.h"
#include "ctaphid/trace_msg.h"
#include "harness/vcard/script.h"

#define CID 0x00000007u
#define MAX_SENT 64

struct sent {
    uint8_t r[MAX_SENT][KC_HID_REPORT_LEN];
    size_t n;
};

static void collect(void *ctx, const struct vc_hid_peer *to, const uint8_t *report)
{
    struct sent *s = ctx;

    assert_int_equal(to->len, 1);
    if (s->n < MAX_SENT)
        memcpy(s->r[s->n++], report, KC_HID_REPORT_LEN);
}

/* A trace under construction: JSON lines in a memory stream. */
struct trace {
    char *buf;
    size_t len;
    FILE *f;
};

static void trace_open(struct trace *t)
{
    t->f = open_memstream(&t->buf, &t->len);
    assert_non_null(t->f);
}

static void line(struct trace *t, uint64_t t_us, bool in, const uint8_t *r)
{
    char *l = kc_trace_report_line(t_us, in, r, KC_HID_REPORT_LEN);
    assert_non_null(l);
    fprintf(t->f, "%s\n", l);
    free(l);
}

/* Every report of one message. */
static void msg(struct trace *t, uint64_t t_us, bool in, uint32_t cid, uint8_t cmd,
                const uint8_t *data, size_t len)
{
    uint8_t r[KC_HID_REPORT_LEN];

    for (size_t i = 0; i < kc_frag_count(len); i++) {
        assert_int_equal(kc_frag_report(cid, cmd, data, len, i, r, sizeof(r)), KC_OK);
        line(t, t_us, in, r);
    }
}

static struct vc_script *load(struct trace *t, struct sent *s, FILE **log, char **logbuf,
                              size_t *loglen)
{
    struct vc_script *sc = NULL;
    char err[256] = "";

    assert_int_equal(fclose(t->f), 0);
    assert_int_equal(vc_script_load_buffer(t->buf, t->len, "t.jsonl", &sc, err, sizeof(err)),
                     KC_OK);
    free(t->buf);
    vc_script_set_send(sc, collect, s);
    *log = open_memstream(logbuf, loglen);
    assert_non_null(*log);
    vc_script_set_log(sc, *log);
    return sc;
}

static const struct vc_hid_peer peer = {1, {0xfe}};

/* The client's side: one message as reports into the script. */
static void send_msg(struct vc_script *sc, uint32_t cid, uint8_t cmd, const uint8_t *data,
                     size_t len, uint64_t now_ms)
{
    uint8_t r[KC_HID_REPORT_LEN];

    for (size_t i = 0; i < kc_frag_count(len); i++) {
        assert_int_equal(kc_frag_report(cid, cmd, data, len, i, r, sizeof(r)), KC_OK);
        vc_script_input(sc, &peer, r, sizeof(r), now_ms);
    }
}

static void init_exchange(struct trace *t, const uint8_t nonce[8])
{
    uint8_t resp[17] = {0};

    memcpy(resp, nonce, 8);
    resp[11] = (uint8_t)CID;
    resp[12] = 2;
    resp[16] = KC_HID_CAP_CBOR | KC_HID_CAP_WINK;
    msg(t, 1000, false, KC_HID_BROADCAST_CID, KC_HID_INIT, nonce, 8);
    msg(t, 1100, true, KC_HID_BROADCAST_CID, KC_HID_INIT, resp, sizeof(resp));
}

/* INIT and a PING with a keepalive, recorded; a client with its own nonce
 * and payload is answered as recorded, the echo carrying its bytes. */
static void test_script_serves_recording(void **state)
{
    (void)state;
    struct trace t;
    struct sent s = {.n = 0};
    uint8_t nonce[8] = {1, 2, 3, 4, 5, 6, 7, 8}, mine[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    uint8_t ping[100], ping2[100], ka = KC_KEEPALIVE_PROCESSING;
    FILE *log;
    char *logbuf = NULL;
    size_t loglen = 0;
    struct vc_script *sc;
    json_t *st;

    memset(ping, 0x11, sizeof(ping));
    memset(ping2, 0x22, sizeof(ping2));
    trace_open(&t);
    init_exchange(&t, nonce);
    msg(&t, 2000, false, CID, KC_HID_PING, ping, sizeof(ping));
    msg(&t, 52000, true, CID, KC_HID_KEEPALIVE, &ka, 1);
    msg(&t, 102000, true, CID, KC_HID_PING, ping, sizeof(ping));
    sc = load(&t, &s, &log, &logbuf, &loglen);

    send_msg(sc, KC_HID_BROADCAST_CID, KC_HID_INIT, mine, 8, 1000);
    assert_int_equal(s.n, 0); /* recorded 100 us after the request */
    assert_int_equal(vc_script_deadline(sc), 1001);
    vc_script_tick(sc, 1001);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.r[0][4], KC_HID_INIT);
    assert_memory_equal(s.r[0] + 7, mine, 8); /* the client's nonce */
    assert_int_equal(s.r[0][7 + 11], CID);    /* the recorded channel */

    send_msg(sc, CID, KC_HID_PING, ping2, sizeof(ping2), 2000);
    assert_int_equal(s.n, 1); /* the recorded card took 50 ms to say anything */
    assert_int_equal(vc_script_deadline(sc), 2050);
    vc_script_tick(sc, 2049);
    assert_int_equal(s.n, 1);
    vc_script_tick(sc, 2050);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.r[1][4], KC_HID_KEEPALIVE);
    vc_script_tick(sc, 2100);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.r[2][4], KC_HID_PING);
    assert_memory_equal(s.r[2] + 7, ping2, 57); /* echoed as this client sent it */
    assert_memory_equal(s.r[3] + 5, ping2 + 57, sizeof(ping2) - 57);
    assert_int_equal(vc_script_deadline(sc), UINT64_MAX);

    st = vc_script_status(sc);
    assert_int_equal(json_integer_value(json_object_get(st, "position")), 2);
    assert_true(json_is_false(json_object_get(st, "diverged")));
    assert_string_equal(json_string_value(json_object_get(st, "file")), "t.jsonl");
    json_decref(st);

    /* after the end: CTAPHID_ERROR OTHER at once, one log line */
    send_msg(sc, CID, KC_HID_WINK, NULL, 0, 3000);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.r[4][4], KC_HID_ERROR);
    assert_int_equal(s.r[4][7], KC_HID_ERR_OTHER);
    send_msg(sc, CID, KC_HID_WINK, NULL, 0, 3001);
    assert_int_equal(s.n, 6);
    fflush(log);
    assert_non_null(strstr(logbuf, "{\"event\":\"script_diverged\",\"file\":\"t.jsonl\""));
    assert_non_null(strstr(logbuf, "after the end of the trace (7 reports recorded)"));
    assert_null(strchr(strchr(logbuf, '\n') + 1, '\n')); /* one line only */
    st = vc_script_status(sc);
    assert_true(json_is_true(json_object_get(st, "diverged")));
    assert_non_null(strstr(json_string_value(json_object_get(st, "error")), "CTAPHID WINK"));
    json_decref(st);
    vc_script_free(sc);
    fclose(log);
    free(logbuf);
}

/* A request other than the recorded one is refused and named. */
static void test_script_divergence(void **state)
{
    (void)state;
    struct trace t;
    struct sent s = {.n = 0};
    uint8_t nonce[8] = {1}, info = KC_CTAP2_GET_INFO, ok = 0, ping[64] = {0};
    FILE *log;
    char *logbuf = NULL;
    size_t loglen = 0;
    struct vc_script *sc;

    trace_open(&t);
    init_exchange(&t, nonce);
    msg(&t, 2000, false, CID, KC_HID_CBOR, &info, 1);
    msg(&t, 3000, true, CID, KC_HID_CBOR, &ok, 1);
    sc = load(&t, &s, &log, &logbuf, &loglen);
    send_msg(sc, KC_HID_BROADCAST_CID, KC_HID_INIT, nonce, 8, 10);
    vc_script_tick(sc, 11);
    assert_int_equal(s.n, 1);
    send_msg(sc, CID, KC_HID_PING, ping, sizeof(ping), 20);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.r[1][4], KC_HID_ERROR);
    assert_int_equal(s.r[1][7], KC_HID_ERR_OTHER);
    fflush(log);
    assert_non_null(strstr(logbuf, "replay diverged at report 3 (CTAP2 getInfo): recorded CTAP2 "
                                   "getInfo, sent CTAPHID PING (64 bytes)"));
    assert_non_null(strstr(logbuf, "\"report\":3"));
    vc_script_free(sc);
    fclose(log);
    free(logbuf);
}

/* A card that never answered INIT stays silent to INIT, however often. */
static void test_script_silent_init(void **state)
{
    (void)state;
    struct trace t;
    struct sent s = {.n = 0};
    uint8_t nonce[8] = {4};
    FILE *log;
    char *logbuf = NULL;
    size_t loglen = 0;
    struct vc_script *sc;

    trace_open(&t);
    msg(&t, 1000, false, KC_HID_BROADCAST_CID, KC_HID_INIT, nonce, 8);
    sc = load(&t, &s, &log, &logbuf, &loglen);
    send_msg(sc, KC_HID_BROADCAST_CID, KC_HID_INIT, nonce, 8, 10);
    vc_script_tick(sc, 5000);
    send_msg(sc, KC_HID_BROADCAST_CID, KC_HID_INIT, nonce, 8, 6000);
    vc_script_tick(sc, 9000);
    assert_int_equal(s.n, 0);
    vc_script_free(sc);
    fclose(log);
    assert_int_equal(loglen, 0);
    free(logbuf);
}

/* A request the card never answered hangs with its keepalives until the
 * client cancels; the recorded answer to CANCEL follows. */
static void test_script_hang_until_cancel(void **state)
{
    (void)state;
    struct trace t;
    struct sent s = {.n = 0};
    uint8_t nonce[8] = {5}, req[3] = {KC_CTAP2_GET_ASSERTION, 0xa0, 0};
    uint8_t up = KC_KEEPALIVE_UPNEEDED, cancelled = KC_CTAP2_ERR_KEEPALIVE_CANCEL;
    FILE *log;
    char *logbuf = NULL;
    size_t loglen = 0;
    struct vc_script *sc;

    trace_open(&t);
    init_exchange(&t, nonce);
    msg(&t, 2000, false, CID, KC_HID_CBOR, req, 2);
    for (int i = 1; i <= 10; i++)
        msg(&t, 2000 + (uint64_t)i * 100000, true, CID, KC_HID_KEEPALIVE, &up, 1);
    msg(&t, 1002000, false, CID, KC_HID_CANCEL, NULL, 0);
    msg(&t, 1003000, true, CID, KC_HID_CBOR, &cancelled, 1);
    sc = load(&t, &s, &log, &logbuf, &loglen);
    send_msg(sc, KC_HID_BROADCAST_CID, KC_HID_INIT, nonce, 8, 0);
    send_msg(sc, CID, KC_HID_CBOR, req, 2, 10);
    vc_script_tick(sc, 320);
    assert_int_equal(s.n, 1 + 3); /* INIT reply, three keepalives in 310 ms */
    assert_int_equal(s.r[3][4], KC_HID_KEEPALIVE);
    assert_int_equal(s.r[3][7], KC_KEEPALIVE_UPNEEDED);
    send_msg(sc, CID, KC_HID_CANCEL, NULL, 0, 330);
    vc_script_tick(sc, 340);
    /* the keepalives not yet due are dropped; the answer to CANCEL comes */
    assert_int_equal(s.n, 5);
    assert_int_equal(s.r[4][4], KC_HID_CBOR);
    assert_int_equal(s.r[4][7], KC_CTAP2_ERR_KEEPALIVE_CANCEL);
    vc_script_free(sc);
    fclose(log);
    free(logbuf);
}

static void test_script_load_errors(void **state)
{
    (void)state;
    struct vc_script *sc = NULL;
    char err[256] = "";
    static const char bad[] = "{\"dir\":\"out\",\"hex\":\"zz\"}\n";

    assert_int_equal(vc_script_load_buffer(bad, strlen(bad), "bad.jsonl", &sc, err, sizeof(err)),
                     KC_ERR_PROTOCOL);
    assert_null(sc);
    assert_non_null(strstr(err, "bad.jsonl line 1"));
    assert_int_equal(vc_script_load("/nonexistent/t.jsonl", &sc, err, sizeof(err)),
                     KC_ERR_NO_DEVICE);
    assert_non_null(strstr(err, "cannot open"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_script_serves_recording),
        cmocka_unit_test(test_script_divergence),
        cmocka_unit_test(test_script_silent_init),
        cmocka_unit_test(test_script_hang_until_cancel),
        cmocka_unit_test(test_script_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
