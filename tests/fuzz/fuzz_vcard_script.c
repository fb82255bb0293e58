/* vcard --script on arbitrary input: a trace (the text before the first
 * NUL byte) served to a client whose 64-byte reports follow, with a clock
 * that moves 7 ms per report and ticks in between. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "harness/vcard/script.h"

static void sink(void *ctx, const struct vc_hid_peer *to, const uint8_t *report)
{
    (void)ctx;
    (void)to;
    (void)report;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul != NULL ? (size_t)(nul - data) : size;
    struct vc_hid_peer peer = {1, {0xfe}};
    struct vc_script *sc = NULL;
    char err[256];
    uint64_t now = 1;
    FILE *log;
    json_t *st;

    if (size > 65536)
        return 0;
    if (vc_script_load_buffer((const char *)data, tlen, "fuzz", &sc, err, sizeof(err)) != 0)
        return 0;
    log = fopen("/dev/null", "w");
    vc_script_set_log(sc, log);
    vc_script_set_send(sc, sink, NULL);
    for (size_t off = tlen + 1; off < size; off += 64) {
        size_t n = size - off < 64 ? size - off : 64;
        vc_script_input(sc, &peer, data + off, n, now);
        now += 7;
        if (vc_script_deadline(sc) <= now + 100)
            vc_script_tick(sc, now + 100);
    }
    vc_script_tick(sc, now + 70000);
    st = vc_script_status(sc);
    json_decref(st);
    vc_script_free(sc);
    if (log != NULL)
        fclose(log);
    return 0;
}
