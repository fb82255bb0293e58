/* libctaphid benchmarks (figures, not a gate):
 *  1. library CPU time per 7609-byte message: fragmentation + reassembly alone,
 *     and a whole PING transaction through the in-memory transport (whose
 *     queue work is counted too, so this is an upper bound);
 *  2. with a device URI: PING round trip (64 bytes) and 7609-byte PING
 *     throughput over the real transport.
 * The target is < 50 us of library CPU per 7609-byte message, i.e. < 0.1% of
 * the wire time on USB full-speed HID (one 64-byte report per ms each way).
 * Usage: bench_ctaphid [URI] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "ctaphid/discover.h"
#include "ctaphid/io.h"
#include "ctaphid/io_int.h"
#include "ctaphid/status.h"
#include "ctaphid/transport.h"
#include "ctaphid/transport_mem_int.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Echo device for the in-memory transport: reassembles what the host sends
 * on any channel and answers INIT and PING like a card would. */
struct echo_dev {
    struct kc_reassembly r;
    uint8_t buf[KC_HID_MAX_MSG];
    uint8_t reply[KC_HID_MAX_MSG];
    int started;
};

static void echo_reply(struct kc_transport *t, uint32_t cid, uint8_t cmd, const uint8_t *msg,
                       size_t len)
{
    uint8_t report[KC_HID_REPORT_LEN];
    size_t n = kc_frag_count(len);
    for (size_t i = 0; i < n; i++) {
        if (kc_frag_report(cid, cmd, msg, len, i, report, sizeof(report)) != KC_OK)
            abort();
        kc_mem_push(t, report, sizeof(report), 0);
    }
}

static void echo_responder(struct kc_transport *t, const uint8_t *report, size_t len, void *ctx)
{
    struct echo_dev *e = ctx;
    uint32_t cid = (uint32_t)report[0] << 24 | (uint32_t)report[1] << 16 |
                   (uint32_t)report[2] << 8 | report[3];
    if (!e->started) {
        kc_reassembly_init(&e->r, cid, e->buf, sizeof(e->buf));
        e->started = 1;
    }
    int rc = kc_reassembly_feed(&e->r, report, len);
    if (rc == 0)
        return;
    e->started = 0;
    if (rc != 1)
        abort();
    if (e->r.cmd == KC_HID_INIT) {
        memcpy(e->reply, e->buf, KC_HID_NONCE_LEN);
        uint8_t init_tail[9] = {0x00, 0x00, 0x00, 0x07, 2, 1, 0, 0, KC_HID_CAP_CBOR};
        memcpy(e->reply + KC_HID_NONCE_LEN, init_tail, sizeof(init_tail));
        echo_reply(t, cid, KC_HID_INIT, e->reply, KC_HID_INIT_RESP_LEN);
    } else {
        echo_reply(t, cid, e->r.cmd, e->buf, e->r.have);
    }
}

static void bench_framing_cpu(void)
{
    static uint8_t msg[KC_HID_MAX_MSG], out[KC_HID_MAX_MSG];
    uint8_t report[KC_HID_REPORT_LEN];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 31 + 7);
    const int iters = 20000;
    double c0 = cpu_seconds();
    for (int it = 0; it < iters; it++) {
        struct kc_reassembly r;
        kc_reassembly_init(&r, 0x01020304, out, sizeof(out));
        size_t n = kc_frag_count(sizeof(msg));
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
            kc_frag_report(0x01020304, KC_HID_PING, msg, sizeof(msg), i, report, sizeof(report));
            rc = kc_reassembly_feed(&r, report, sizeof(report));
        }
        if (rc != 1 || memcmp(out, msg, sizeof(msg)) != 0) {
            fprintf(stderr, "framing round trip failed\n");
            exit(1);
        }
    }
    double us = (cpu_seconds() - c0) / iters * 1e6;
    double wire_us = 2.0 * (double)kc_frag_count(KC_HID_MAX_MSG) * 1000.0;
    printf("framing cpu per 7609-byte message (fragment + reassemble): %.2f us  "
           "(%.4f%% of %.0f ms USB FS HID wire time; target < 50 us, < 0.1%%)\n",
           us, us / wire_us * 100.0, wire_us / 1000.0);
}

static void bench_transact_cpu(void)
{
    struct kc_transport *t = kc_mem_transport_new();
    struct echo_dev *e = calloc(1, sizeof(*e));
    if (t == NULL || e == NULL)
        exit(1);
    kc_mem_set_responder(t, echo_responder, e);
    struct kc_dev *d = NULL;
    struct kc_timeouts to;
    kc_timeouts_default(&to);
    if (kc_dev_wrap(&d, t, &to) != KC_OK || kc_dev_init(d, NULL) != KC_OK) {
        fprintf(stderr, "mem transport init failed\n");
        exit(1);
    }
    static uint8_t msg[KC_HID_MAX_MSG], echo[KC_HID_MAX_MSG];
    memset(msg, 0xa5, sizeof(msg));
    const int iters = 5000;
    double c0 = cpu_seconds();
    for (int it = 0; it < iters; it++) {
        size_t n = 0;
        int rc = kc_dev_ping(d, msg, sizeof(msg), echo, sizeof(echo), &n);
        if (rc != KC_OK || n != sizeof(msg)) {
            fprintf(stderr, "mem ping failed: %s\n", kc_err_name(rc));
            exit(1);
        }
        /* the host side wrote 130 reports; drop the log so it does not grow */
        while (kc_mem_pop_written(t, echo, sizeof(echo)) > 0)
            ;
    }
    double us = (cpu_seconds() - c0) / iters * 1e6;
    printf("whole PING transaction cpu, 7609 bytes each way, in-memory transport "
           "(host + scripted device): %.2f us\n",
           us);
    kc_dev_close(d);
    free(e);
}

static void bench_device(const char *uri)
{
    struct kc_dev *d = NULL;
    char err[256] = "";
    struct kc_timeouts to;
    kc_timeouts_default(&to);
    int rc = kc_dev_open(&d, uri, &to, err, sizeof(err));
    if (rc != KC_OK) {
        fprintf(stderr, "open %s: %s: %s\n", uri, kc_err_name(rc), err);
        exit(3);
    }
    static uint8_t msg[KC_HID_MAX_MSG], echo[KC_HID_MAX_MSG];
    memset(msg, 0x5a, sizeof(msg));
    enum { N_SMALL = 2000, N_BIG = 200 };
    static double rtt[N_SMALL];
    for (int i = 0; i < N_SMALL; i++) {
        size_t n = 0;
        double w0 = wall_seconds();
        rc = kc_dev_ping(d, msg, 57, echo, sizeof(echo), &n);
        rtt[i] = (wall_seconds() - w0) * 1e6;
        if (rc != KC_OK || n != 57) {
            fprintf(stderr, "ping failed: %s\n", kc_err_name(rc));
            exit(3);
        }
    }
    qsort(rtt, N_SMALL, sizeof(double), cmp_double);
    printf("%s: PING 57 bytes round trip: median %.1f us, p99 %.1f us (%d pings)\n", uri,
           rtt[N_SMALL / 2], rtt[N_SMALL * 99 / 100], N_SMALL);
    double w0 = wall_seconds(), c0 = cpu_seconds();
    for (int i = 0; i < N_BIG; i++) {
        size_t n = 0;
        rc = kc_dev_ping(d, msg, sizeof(msg), echo, sizeof(echo), &n);
        if (rc != KC_OK || n != sizeof(msg) || memcmp(msg, echo, n) != 0) {
            fprintf(stderr, "big ping failed: %s\n", kc_err_name(rc));
            exit(3);
        }
    }
    double secs = wall_seconds() - w0, cpu = cpu_seconds() - c0;
    printf("%s: PING 7609 bytes: %.1f messages/s, %.2f MB/s payload each way, "
           "%.1f us wall and %.1f us client cpu (incl. syscalls) per message\n",
           uri, N_BIG / secs, N_BIG * 7609.0 / secs / 1e6, secs / N_BIG * 1e6, cpu / N_BIG * 1e6);
    kc_dev_close(d);
}

int main(int argc, char **argv)
{
    bench_framing_cpu();
    bench_transact_cpu();
    if (argc > 1)
        bench_device(argv[1]);
    return 0;
}
