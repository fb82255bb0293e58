/* Packet trace: every report in and out with a monotonic timestamp,
 * direction, channel, command and sequence, as hex lines or JSON lines.
 * Transport errors are traced with their errno. A JSON-lines trace can be
 * replayed as a scripted device (the "replay:" transport). */
#ifndef KCARD_CTAPHID_TRACE_H
#define KCARD_CTAPHID_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ctaphid/clock.h" /* kc_now_us, once declared here */

enum kc_trace_format {
    KC_TRACE_HEX = 0,  /* "+0.001234 > cid=01020304 INIT len=8 | 86 00 08 ..." */
    KC_TRACE_JSON = 1, /* {"t_us":1234,"dir":"out","cid":"01020304","cmd":"INIT",
                           "seq":null,"len":8,"hex":"..."} */
};

enum kc_trace_dir {
    KC_TRACE_OUT = 0, /* host to device */
    KC_TRACE_IN = 1,  /* device to host */
};

struct kc_trace {
    FILE *out;
    enum kc_trace_format format;
    uint64_t t0_us; /* monotonic start */
};

void kc_trace_init(struct kc_trace *tr, FILE *out, enum kc_trace_format format);
void kc_trace_report(struct kc_trace *tr, enum kc_trace_dir dir, const uint8_t *report, size_t len);
/* A transport or framing event that is not a report: a failed read/write
 * (with errno, 0 if none), a timeout, a skipped packet. */
void kc_trace_event(struct kc_trace *tr, const char *event, int err, const char *detail);

#endif
