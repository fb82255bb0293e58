/* The replay transport's JSON-lines parser, message grouping and playback
 * on arbitrary text: open from the buffer, then run INIT, one PING and one
 * CTAP2 getInfo through kc_dev (the matcher decides each). */
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/io.h"
#include "ctaphid/replay.h"
#include "ctaphid/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kc_transport *t;
    struct kc_timeouts to = {0, 0, 0, 0};
    struct kc_dev *d;
    uint8_t out[256];
    size_t n;
    char err[256];

    if (size > 65536)
        return 0;
    if (kc_replay_open_buffer((const char *)data, size, "fuzz", &t, err, sizeof(err)) != KC_OK)
        return 0;
    if (kc_dev_wrap(&d, t, &to) != KC_OK) {
        kc_transport_close(t);
        return 0;
    }
    if (kc_dev_init(d, NULL) == KC_OK) {
        uint8_t info = 0x04, cdh[32];
        (void)kc_dev_ping(d, (const uint8_t *)"ping", 4, out, sizeof(out), &n);
        (void)kc_dev_transact(d, KC_HID_CBOR, &info, 1, out, sizeof(out), &n);
        (void)kc_replay_recorded_cdh(kc_dev_transport(d), cdh);
        (void)kc_replay_error(kc_dev_transport(d));
    }
    kc_dev_close(d);
    return 0;
}
