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

#include "ctaphid/io.h"
#include "ctaphid/replay.h"
#include "ctaphid/status.h"
#include "ctaphid/trace.h"
#include "ctaphid/transport.h"

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
    /* past the end of the trace the device is silent */
    assert_int_equal(kc_dev_ping(d, payload, 1, out, sizeof(out), &n), KC_ERR_TIMEOUT);
    assert_true(kc_replay_mismatches(kc_dev_transport(d)) >= 1);
    kc_dev_close(d);
}

static void test_replay_reports_mismatch(void **state)
{
    (void)state;
    char uri[128], err[256] = "";
    struct kc_dev *d;
    uint8_t other[sizeof(payload)], out[200];
    size_t n;

    memset(other, 0x5a, sizeof(other));
    snprintf(uri, sizeof(uri), "replay:%s", trace_path);
    assert_int_equal(kc_dev_open(&d, uri, NULL, err, sizeof(err)), KC_OK);
    /* the host sends something else: noted, and the trace still plays */
    assert_int_equal(kc_dev_ping(d, other, sizeof(other), out, sizeof(out), &n), KC_OK);
    assert_memory_equal(out, payload, sizeof(payload));
    assert_int_equal(kc_replay_mismatches(kc_dev_transport(d)), 3);
    assert_non_null(strstr(kc_dev_transport(d)->last_error, "differs from the trace"));
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
    for (size_t i = 0; i < 64; i++)
        sprintf(out + 2 * i, "%02x", r[i]);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_through_dev),
        cmocka_unit_test(test_replay_reports_mismatch),
        cmocka_unit_test(test_replay_buffer_errors),
        cmocka_unit_test(test_replay_synthetic_init_and_pacing),
    };

    return cmocka_run_group_tests(tests, record_trace, remove_trace);
}
