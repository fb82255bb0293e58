/* CTAPHID reassembly and framing fed arbitrary reports: the input is cut
 * into reports (first byte of each chunk gives its length), fed to
 * kc_reassembly_feed and, through the mem transport, to kc_dev_transact. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ctaphid/io.h"
#include "ctaphid/io_int.h"
#include "ctaphid/status.h"
#include "ctaphid/transport.h"
#include "ctaphid/transport_mem_int.h"

static uint8_t msg[KC_HID_MAX_MSG];

static void feed_direct(const uint8_t *data, size_t size)
{
    struct kc_reassembly r;
    size_t cap = size > 0 ? (size_t)data[0] * 32 : 0;

    kc_reassembly_init(&r, 0x01020304u, msg, cap < sizeof(msg) ? cap : sizeof(msg));
    for (size_t off = 1; off < size;) {
        size_t len = data[off] % 80;
        off++;
        if (len > size - off)
            len = size - off;
        int rc = kc_reassembly_feed(&r, data + off, len);
        off += len;
        if (rc != 0) {
            if (rc == 1 && r.have != r.expected)
                __builtin_trap();
            break;
        }
    }
}

static void responder(struct kc_transport *t, const uint8_t *report, size_t len, void *ctx)
{
    uint8_t r[64] = {0xff, 0xff, 0xff, 0xff, KC_HID_INIT, 0, 17};

    (void)ctx;
    if (len < 15 || report[4] != KC_HID_INIT)
        return;
    memcpy(r + 7, report + 7, 8);
    memcpy(r + 15, "\x01\x02\x03\x04\x02\x00\x00\x00\x05", 9);
    kc_mem_push(t, r, sizeof(r), 0);
}

/* Every 64-byte chunk is one device report on the allocated channel (or
 * whatever channel the fuzzer writes). */
static void feed_dev(const uint8_t *data, size_t size)
{
    struct kc_transport *t = kc_mem_transport_new();
    struct kc_timeouts to = {0, 0, 0, 0};
    struct kc_dev *d;
    size_t n;

    if (t == NULL)
        return;
    kc_mem_set_responder(t, responder, NULL);
    if (kc_dev_wrap(&d, t, &to) != KC_OK) {
        kc_transport_close(t);
        return;
    }
    if (kc_dev_init(d, NULL) == KC_OK) {
        for (size_t off = 0; off + 64 <= size; off += 64)
            kc_mem_push(t, data + off, 64, 0);
        (void)kc_dev_transact(d, KC_HID_CBOR, (const uint8_t *)"\x04", 1, msg,
                              size > 0 && data[0] & 1 ? sizeof(msg) : 100, &n);
    }
    kc_dev_close(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    feed_direct(data, size);
    feed_dev(data, size);
    return 0;
}
