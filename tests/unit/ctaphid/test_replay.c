/* A JSON-lines trace recorded from a scripted device, played back through
 * the replay transport and a kc_dev handle. */
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
#include "ctaphid/discover.h"
#include "ctaphid/io.h"
#include "ctaphid/io_int.h"
#include "ctaphid/replay.h"
#include "ctaphid/replay_match.h"
#include "ctaphid/trace_msg.h"
#include "ctaphid/transport_int.h"
#include "ctaphid/transport_mem_int.h"
#include "ctaphid/verify.h"
#include "ctaphid/status.h"
#include "ctaphid/trace.h"
#include "ctaphid/transport.h"
#include "util/hex.h"

#define CID 0x11223344u

static uint8_t payload[150];

static void push_msg(struct kc_transport *t, uint8_t cmd, const uint8_t *msg, size_t len)
{
    uint8_t r[64];

    for (size_t i = 0; i < kc_frag_count(len); i++) {
        assert_int_equal(kc_frag_report(CID, cmd, msg, len, i, r, sizeof(r)), KC_OK);
        assert_int_equal(kc_mem_push(t, r, sizeof(r), 0), KC_OK);
    }
}

/* INIT with the host's nonce; a PING is answered with a keepalive and the
 * echo once its last report arrives. */
static void device(struct kc_transport *t, const uint8_t *report, size_t len, void *ctx)
{
    size_t *seen = ctx;

    if (len < 7)
        return;
    if (report[4] == KC_HID_INIT) {
        uint8_t body[17] = {0};
        memcpy(body, report + 7, 8);
        body[8] = 0x11, body[9] = 0x22, body[10] = 0x33, body[11] = 0x44;
        body[12] = 2, body[16] = 0x04;
        uint8_t r[64] = {0xff, 0xff, 0xff, 0xff, KC_HID_INIT, 0, 17};
        memcpy(r + 7, body, sizeof(body));
        kc_mem_push(t, r, sizeof(r), 0);
        return;
    }
    if (report[4] == KC_HID_PING || !(report[4] & 0x80)) {
        if (++*seen == kc_frag_count(sizeof(payload))) {
            uint8_t ka = KC_KEEPALIVE_PROCESSING;
            push_msg(t, KC_HID_KEEPALIVE, &ka, 1);
            push_msg(t, KC_HID_PING, payload, sizeof(payload));
            *seen = 0;
        }
    }
}

static char trace_path[64];

static int record_trace(void **state)
{
    (void)state;
    struct kc_transport *t = kc_mem_transport_new();
    struct kc_trace tr;
    struct kc_dev *d;
    uint8_t out[200];
    size_t n, seen = 0;
    FILE *f;
    int fd;

    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 3);
    snprintf(trace_path, sizeof(trace_path), "/tmp/kc_replay_XXXXXX");
    fd = mkstemp(trace_path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    kc_trace_init(&tr, f, KC_TRACE_JSON);
    kc_mem_set_responder(t, device, &seen);
    assert_int_equal(kc_dev_wrap(&d, t, NULL), KC_OK);
    kc_dev_set_trace(d, &tr);
    assert_int_equal(kc_dev_init(d, NULL), KC_OK);
    assert_int_equal(kc_dev_ping(d, payload, sizeof(payload), out, sizeof(out), &n), KC_OK);
    assert_int_equal(n, sizeof(payload));
    kc_dev_close(d);
    fclose(f);
    return 0;
}

static int remove_trace(void **state)
{
    (void)state;
    unlink(trace_path);
    return 0;
}

static void test_replay_through_dev(void **state)
{
    (void)state;
    char uri[128], err[256] = "";
    struct kc_timeouts to = {200, 200, 200, 20};
    struct kc_dev *d;
    uint8_t out[200];
    size_t n;

    snprintf(uri, sizeof(uri), "replay:%s", trace_path);
    /* kc_dev_open runs INIT with a fresh nonce: the replay patches it in */
    assert_int_equal(kc_dev_open(&d, uri, &to, err, sizeof(err)), KC_OK);
    assert_int_equal(kc_dev_init_info(d)->cid, CID);
    assert_int_equal(kc_dev_ping(d, payload, sizeof(payload), out, sizeof(out), &n), KC_OK);
    assert_int_equal(n, sizeof(payload));
    assert_memory_equal(out, payload, n);
    assert_int_equal(kc_dev_stats(d)->keepalives, 1);
    assert_int_equal(kc_replay_mismatches(kc_dev_transport(d)), 0);
    assert_int_equal(kc_replay_remaining(kc_dev_transport(d)), 0);
    /* past the end of the trace: refused at once, not after a timeout */
    uint64_t t0 = kc_now_us();
    assert_int_equal(kc_dev_ping(d, payload, 1, out, sizeof(out), &n), KC_ERR_REPLAY_DIVERGED);
    assert_true(kc_now_us() - t0 < 100000);
    assert_int_equal(kc_replay_mismatches(kc_dev_transport(d)), 1);
    assert_string_equal(kc_dev_transport(d)->last_error,
                        "replay diverged at report 10 (CTAPHID PING): the request comes after "
                        "the end of the trace (9 reports recorded)");
    assert_non_null(kc_replay_error(kc_dev_transport(d)));
    kc_dev_close(d);
}

/* A PING payload is random in every run: allowed to differ, and the
 * faithful echo carries the host's bytes. Its length is not allowed to. */
static void test_replay_ping_variants(void **state)
{
    (void)state;
    char uri[128], err[256] = "";
    struct kc_dev *d;
    uint8_t other[sizeof(payload)], out[200];
    uint8_t cdh[32];
    size_t n;

    memset(other, 0x5a, sizeof(other));
    snprintf(uri, sizeof(uri), "replay:%s", trace_path);
    assert_int_equal(kc_dev_open(&d, uri, NULL, err, sizeof(err)), KC_OK);
    assert_int_equal(kc_dev_ping(d, other, sizeof(other), out, sizeof(out), &n), KC_OK);
    assert_int_equal(n, sizeof(other));
    assert_memory_equal(out, other, sizeof(other));
    assert_int_equal(kc_replay_mismatches(kc_dev_transport(d)), 0);
    assert_null(kc_replay_error(kc_dev_transport(d)));
    assert_int_equal(kc_replay_recorded_cdh(kc_dev_transport(d), cdh), 0);
    kc_dev_close(d);

    assert_int_equal(kc_dev_open(&d, uri, NULL, err, sizeof(err)), KC_OK);
    assert_int_equal(kc_dev_ping(d, other, 10, out, sizeof(out), &n), KC_ERR_REPLAY_DIVERGED);
    assert_string_equal(kc_dev_transport(d)->last_error,
                        "replay diverged at report 3 (CTAPHID PING): recorded 150 bytes, sent 10 "
                        "bytes");
    /* and it stays diverged */
    assert_int_equal(kc_dev_ping(d, other, sizeof(other), out, sizeof(out), &n),
                     KC_ERR_REPLAY_DIVERGED);
    kc_dev_close(d);
}

/* Another command where the trace has a PING: refused at once. */
static void test_replay_other_command(void **state)
{
    (void)state;
    char uri[128], err[256] = "";
    struct kc_dev *d;
    uint64_t t0;

    snprintf(uri, sizeof(uri), "replay:%s", trace_path);
    assert_int_equal(kc_dev_open(&d, uri, NULL, err, sizeof(err)), KC_OK);
    t0 = kc_now_us();
    assert_int_equal(kc_dev_wink(d), KC_ERR_REPLAY_DIVERGED);
    assert_true(kc_now_us() - t0 < 100000);
    assert_string_equal(kc_dev_transport(d)->last_error,
                        "replay diverged at report 3 (CTAPHID PING): recorded CTAPHID PING, sent "
                        "CTAPHID WINK (0 bytes)");
    kc_dev_close(d);
}

static void test_replay_buffer_errors(void **state)
{
    (void)state;
    struct kc_transport *t;
    char err[256];
    static const char not_json[] = "{\"dir\":\"in\",\"hex\":\"00\"}\nnot json\n";
    static const char bad_hex[] = "{\"dir\":\"in\",\"hex\":\"0g\"}\n";
    static const char bad_dir[] = "{\"dir\":\"up\",\"hex\":\"00\"}\n";
    static const char events[] =
        "\n{\"event\":\"read\",\"errno\":5}\n{\"dir\":\"in\",\"hex\":\"0102\"}";
    uint8_t buf[64];

    assert_int_equal(kc_replay_open_buffer(not_json, strlen(not_json), "x", &t, err, sizeof(err)),
                     KC_ERR_PROTOCOL);
    assert_non_null(strstr(err, "line 2"));
    assert_int_equal(kc_replay_open_buffer(bad_hex, strlen(bad_hex), "x", &t, err, sizeof(err)),
                     KC_ERR_PROTOCOL);
    assert_int_equal(kc_replay_open_buffer(bad_dir, strlen(bad_dir), "x", &t, err, sizeof(err)),
                     KC_ERR_PROTOCOL);
    assert_int_equal(kc_replay_open_buffer(events, strlen(events), "x", &t, err, sizeof(err)),
                     KC_OK);
    /* an "in" line before any write is readable at once */
    assert_int_equal(t->ops->read(t, buf, sizeof(buf), 0), 2);
    assert_int_equal(buf[1], 0x02);
    assert_int_equal(t->ops->read(t, buf, sizeof(buf), 0), 0);
    kc_transport_close(t);
    assert_int_equal(kc_replay_open("/nonexistent/trace.jsonl", &t, err, sizeof(err)),
                     KC_ERR_NO_DEVICE);
}

static void hex64(char *out, const uint8_t *p, size_t len)
{
    uint8_t r[64] = {0};

    memcpy(r, p, len);
    kcu_hex_encode(r, sizeof(r), out);
}

/* A trace that starts after INIT (the replay answers INIT itself with the
 * trace's channel) and whose replies are paced by their timestamps. */
static void test_replay_synthetic_init_and_pacing(void **state)
{
    (void)state;
    char ping_out[129], ka_in[129], ping_in[129], text[1024], err[256];
    const uint8_t ping[] = {0x0a, 0x0b, 0x0c, 0x0d, KC_HID_PING, 0, 2, 'h', 'i'};
    const uint8_t ka[] = {0x0a, 0x0b, 0x0c, 0x0d, KC_HID_KEEPALIVE, 0, 1, 1};
    struct kc_transport *t;
    struct kc_dev *d;
    uint8_t out[8];
    size_t n;
    uint64_t t0;

    hex64(ping_out, ping, sizeof(ping));
    hex64(ka_in, ka, sizeof(ka));
    hex64(ping_in, ping, sizeof(ping));
    snprintf(text, sizeof(text),
             "{\"t_us\":1000,\"dir\":\"out\",\"hex\":\"%s\"}\n"
             "{\"t_us\":61000,\"dir\":\"in\",\"hex\":\"%s\"}\n"
             "{\"t_us\":121000,\"dir\":\"in\",\"hex\":\"%s\"}\n",
             ping_out, ka_in, ping_in);
    assert_int_equal(kc_replay_open_buffer(text, strlen(text), "paced", &t, err, sizeof(err)),
                     KC_OK);
    assert_int_equal(kc_dev_wrap(&d, t, NULL), KC_OK);
    assert_int_equal(kc_dev_init(d, NULL), KC_OK);
    assert_int_equal(kc_dev_init_info(d)->cid, 0x0a0b0c0du);
    t0 = kc_now_us();
    assert_int_equal(kc_dev_ping(d, (const uint8_t *)"hi", 2, out, sizeof(out), &n), KC_OK);
    assert_true(kc_now_us() - t0 >= 110000);
    assert_true(kc_dev_last_packet(d)->at_us >= 110000);
    assert_int_equal(n, 2);
    assert_int_equal(kc_dev_stats(d)->keepalives, 1);
    assert_int_equal(kc_replay_mismatches(t), 0);
    kc_dev_close(d);
}

/* The makeCredential rawctap recorded against vcard (fixtures/pcap/src),
 * replayed through the library with a fresh clientDataHash and user id: it
 * matches, and the attestation verifies against the recorded hash only. */
#define MC_TRACE "fixtures/pcap/src/mc.jsonl"

static void test_replay_make_credential(void **state)
{
    (void)state;
    struct kc_trace_log *log;
    struct kc_cred_request req;
    struct kc_attestation att;
    struct kc_verify_result vr;
    struct kc_dev *d;
    uint8_t want_cdh[32], got_cdh[32], uid[16];
    char err[256] = "";
    bool found = false;

    assert_int_equal(kc_trace_log_load(MC_TRACE, &log, err, sizeof(err)), KC_OK);
    for (size_t i = 0; i < log->nmsg && !found; i++) {
        const struct kc_trace_msg *m = &log->msg[i];
        struct kc_replay_msg v = {m->cid, m->cmd, m->data, m->len, m->bcnt, m->complete};
        found = kc_replay_msg_cdh(&v, want_cdh);
    }
    kc_trace_log_free(log);
    assert_true(found);

    assert_int_equal(kc_dev_open(&d, "replay:" MC_TRACE, NULL, err, sizeof(err)), KC_OK);
    kc_cred_request_init(&req);
    memset(req.client_data_hash, 0x42, sizeof(req.client_data_hash));
    memset(uid, 0x17, sizeof(uid));
    req.rp_id = req.rp_name = "fixture.example";
    req.user_id = uid;
    req.user_id_len = sizeof(uid);
    req.user_name = req.user_display_name = "rawctap";
    req.algs[0] = KC_COSE_ES256;
    req.n_algs = 1;
    memset(&att, 0, sizeof(att));
    {
        struct kc_info info;
        assert_int_equal(kc_ctap2_get_info(d, &info), KC_OK);
        assert_int_equal(kc_replay_recorded_cdh(kc_dev_transport(d), got_cdh), 0);
    }
    assert_int_equal(kc_ctap2_make_credential(d, &req, &att), KC_OK);
    assert_int_equal(kc_replay_recorded_cdh(kc_dev_transport(d), got_cdh), 1);
    assert_memory_equal(got_cdh, want_cdh, 32);
    kc_verify_result_init(&vr);
    assert_int_equal(kc_verify_attestation(att.fmt, att.auth_data, att.auth_data_len, att.att_stmt,
                                           att.att_stmt_len, got_cdh, "fixture.example", &vr),
                     KC_OK);
    kc_verify_result_free(&vr);
    kc_verify_result_init(&vr);
    assert_int_not_equal(kc_verify_attestation(att.fmt, att.auth_data, att.auth_data_len,
                                               att.att_stmt, att.att_stmt_len, req.client_data_hash,
                                               "fixture.example", &vr),
                         KC_OK);
    kc_verify_result_free(&vr);
    kc_attestation_free(&att);
    assert_int_equal(kc_replay_mismatches(kc_dev_transport(d)), 0);
    kc_dev_close(d);

    /* the same with another rp id: refused, named */
    assert_int_equal(kc_dev_open(&d, "replay:" MC_TRACE, NULL, err, sizeof(err)), KC_OK);
    req.rp_id = req.rp_name = "other.example";
    {
        struct kc_info info;
        assert_int_equal(kc_ctap2_get_info(d, &info), KC_OK);
    }
    memset(&att, 0, sizeof(att));
    assert_int_equal(kc_ctap2_make_credential(d, &req, &att), KC_ERR_REPLAY_DIVERGED);
    assert_non_null(strstr(kc_replay_error(kc_dev_transport(d)),
                           "(CTAP2 makeCredential): recorded rp.id \"fixture.example\", sent "
                           "\"other.example\""));
    kc_attestation_free(&att);
    kc_dev_close(d);
}

/* How a trace is cut into the host's messages: a message that stops
 * before its end, and a continuation that belongs to none. */
static void test_trace_messages(void **state)
{
    (void)state;
    uint8_t r[64];
    char *l1, *l2, *l3, *l4, text[2048], err[256];
    struct kc_trace_log *log;

    memset(r, 0, sizeof(r));
    r[3] = 1, r[4] = KC_HID_PING, r[5] = 0, r[6] = 100; /* wants 100 bytes */
    l1 = kc_trace_report_line(0, false, r, 64);
    r[4] = KC_HID_WINK, r[6] = 0; /* a new message before the PING's end */
    l2 = kc_trace_report_line(10, false, r, 64);
    r[4] = 5; /* a continuation of nothing */
    l3 = kc_trace_report_line(20, false, r, 64);
    l4 = kc_trace_report_line(30, true, r, 64);
    snprintf(text, sizeof(text), "%s\n{\"t_us\":1,\"event\":\"x\"}\n%s\n%s\n%s\n", l1, l2, l3, l4);
    free(l1), free(l2), free(l3), free(l4);
    assert_int_equal(kc_trace_log_parse(text, strlen(text), "m", &log, err, sizeof(err)), KC_OK);
    assert_int_equal(log->n, 4);
    assert_int_equal(log->rec[1].line, 3); /* the event line is skipped, counted */
    assert_int_equal(log->rec[3].report_no, 4);
    assert_int_equal(log->nmsg, 3);
    assert_int_equal(log->msg[0].cmd, KC_HID_PING);
    assert_false(log->msg[0].complete);
    assert_int_equal(log->msg[0].len, 57);
    assert_int_equal(log->msg[1].cmd, KC_HID_WINK);
    assert_true(log->msg[1].complete);
    assert_int_equal(log->msg[2].cmd, 0); /* stray */
    assert_int_equal(log->msg[2].len, 64);
    kc_trace_log_free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_through_dev),
        cmocka_unit_test(test_replay_ping_variants),
        cmocka_unit_test(test_replay_other_command),
        cmocka_unit_test(test_replay_buffer_errors),
        cmocka_unit_test(test_replay_synthetic_init_and_pacing),
        cmocka_unit_test(test_replay_make_credential),
        cmocka_unit_test(test_trace_messages),
    };

    return cmocka_run_group_tests(tests, record_trace, remove_trace);
}
