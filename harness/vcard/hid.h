/* The virtual card's CTAPHID channel layer: 64-byte reports in from many
 * clients, reports out to the client that asked. No sockets, no threads and
 * no clock of its own: the caller passes the time in milliseconds and runs
 * CBOR/MSG messages through the core itself (vc_hid_job_take/finish), so the
 * state machine can be driven step by step from a unit test or a fuzzer.
 * Not thread-safe: the server calls it with its own lock held. */
#ifndef KCARD_VCARD_HID_H
#define KCARD_VCARD_HID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness/vcard/card.h"

#define VC_HID_PEER_MAX 28       /* fits a sockaddr_in6 */
#define VC_HID_MAX_CHANNELS 1024 /* allocated channels kept; oldest forgotten first */
#define VC_HID_MSG_TIMEOUT_MS 500
#define VC_HID_KEEPALIVE_MS 100
#define VC_HID_LOCK_MAX_S 10

/* Who sent a report: an opaque address compared bytewise. */
struct vc_hid_peer {
    uint8_t len;
    uint8_t addr[VC_HID_PEER_MAX];
};

/* Sends one 64-byte report to a client. */
typedef void (*vc_hid_send_fn)(void *ctx, const struct vc_hid_peer *to, const uint8_t *report);

/* One finished request, for the -v log. */
struct vc_hid_log_entry {
    uint8_t cmd;         /* CTAPHID command of the request */
    uint32_t cid;        /* channel it came on */
    uint8_t ctap_cmd;    /* first payload byte of CBOR, INS of MSG, else 0 */
    const char *outcome; /* "ok", "error", "abandoned" */
    int status;          /* CTAP2 status, U2F status word, or CTAPHID error code */
    uint64_t duration_ms;
    const struct vc_hid_peer *peer;
};
typedef void (*vc_hid_log_fn)(void *ctx, const struct vc_hid_log_entry *e);

/* A complete CBOR or MSG message for the core. data is valid until the next
 * call into the hid layer: copy it before dropping the caller's lock. */
struct vc_hid_job {
    uint32_t cid;
    uint8_t cmd; /* KC_HID_CBOR or KC_HID_MSG */
    struct vc_hid_peer peer;
    const uint8_t *data;
    size_t len;
    uint64_t started_ms;
};

struct vc_hid;

struct vc_hid *vc_hid_new(vc_hid_send_fn send, void *send_ctx);
void vc_hid_free(struct vc_hid *h);
void vc_hid_set_log(struct vc_hid *h, vc_hid_log_fn fn, void *ctx);
/* Which message commands are offered: decides the INIT capabilities (CBOR,
 * NMSG) and whether CBOR/MSG get INVALID_CMD. Both on by default. */
void vc_hid_set_caps(struct vc_hid *h, bool ctap1, bool ctap2);
struct vc_personality; /* personality.h */
/* What a personality changes here: the INIT device version bytes, the WINK
 * capability (WINK is INVALID_CMD without it) and the wrong-channel quirk
 * (every reply on a channel never allocated). NULL: kcard-2.1's (1.0.0,
 * WINK). Message commands stay with vc_hid_set_caps. */
void vc_hid_set_personality(struct vc_hid *h, const struct vc_personality *p);
/* HID-layer faults (output faults, busy, unplug, no-init-reply, ...). */
void vc_hid_set_faults(struct vc_hid *h, const struct vc_faults *f);

/* One report (up to 64 bytes; shorter ones are zero padded) from a client. */
void vc_hid_input(struct vc_hid *h, const struct vc_hid_peer *from, const uint8_t *report,
                  size_t len, uint64_t now_ms);
/* Timers: MSG_TIMEOUT, lock expiry, keepalives. Call at vc_hid_deadline. */
void vc_hid_tick(struct vc_hid *h, uint64_t now_ms);
/* When vc_hid_tick next has something to do (absolute ms), or UINT64_MAX. */
uint64_t vc_hid_deadline(const struct vc_hid *h);

/* A complete message is waiting for the core: fills *job, marks it running
 * (keepalives PROCESSING start 100 ms later). false when there is none. */
bool vc_hid_job_take(struct vc_hid *h, struct vc_hid_job *job);
bool vc_hid_job_running(const struct vc_hid *h);
/* CANCEL arrived for the running message, or its channel was resynced. */
bool vc_hid_job_cancelled(const struct vc_hid *h);
/* KC_KEEPALIVE_PROCESSING or KC_KEEPALIVE_UPNEEDED while the job runs. */
void vc_hid_job_set_status(struct vc_hid *h, uint8_t keepalive_status);
/* The core's answer: sent on the job's channel to its client, unless the
 * channel was resynced meanwhile (then dropped). Ends the job. */
void vc_hid_job_finish(struct vc_hid *h, const uint8_t *resp, size_t len, uint64_t now_ms);

/* Re-enumeration: forget every channel, transaction and lock. */
void vc_hid_reset(struct vc_hid *h);
size_t vc_hid_channel_count(const struct vc_hid *h);
bool vc_hid_busy(const struct vc_hid *h);

#endif
