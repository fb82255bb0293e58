/* CTAPHID framing: one device handle, one allocated channel, messages in and
 * out as fragmented reports, keepalives surfaced to the caller, every wait
 * bounded by a deadline. Knows nothing of CBOR. */
#ifndef KCARD_CTAPHID_IO_H
#define KCARD_CTAPHID_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/trace.h"
#include "ctaphid/transport.h"

struct kc_dev;

/* Separate deadlines for the three kinds of wait. */
struct kc_timeouts {
    int init_ms;     /* INIT handshake on the broadcast channel (default 3000) */
    int command_ms;  /* command phase: from request sent until a reply or the
                        first KEEPALIVE UPNEEDED (default 5000) */
    int presence_ms; /* after UPNEEDED: waiting for the person (default 30000) */
    int cancel_ms;   /* after CANCEL: wait for KEEPALIVE_CANCEL (default 500) */
};

/* Called for every KEEPALIVE as it arrives: status (KC_KEEPALIVE_*) and the
 * time since the request was sent. Never cuts the wait short. */
typedef void (*kc_keepalive_fn)(void *ctx, uint8_t status, uint64_t elapsed_us);
/* Polled between reads (at least every 50 ms); non-zero aborts the wait, the
 * library sends CANCEL and returns KC_ERR_ABORTED (or the card's
 * CTAP2_ERR_KEEPALIVE_CANCEL status). */
typedef int (*kc_abort_fn)(void *ctx);

/* What the INIT response said. */
struct kc_init_info {
    uint32_t cid;
    uint8_t protocol_version;
    uint8_t major, minor, build;
    uint8_t capabilities; /* KC_HID_CAP_* */
};

/* Counters a triage tool prints. */
struct kc_dev_stats {
    uint64_t reports_out, reports_in;
    uint64_t skipped_other_cid; /* reports for another channel */
    uint64_t skipped_stale;     /* reports on our channel not belonging to this reply */
    uint64_t keepalives;
    uint64_t cancels_sent;
    uint64_t busy_retries; /* requests sent again after CHANNEL_BUSY */
    uint64_t reopens;      /* times the card was found again after re-enumerating */
};

/* Where the last failed wait stood: lets a tool say "timeout in the command
 * phase, last packet KEEPALIVE PROCESSING at +4.9s". */
enum kc_phase {
    KC_PHASE_NONE = 0,
    KC_PHASE_INIT,
    KC_PHASE_SEND,
    KC_PHASE_COMMAND,
    KC_PHASE_PRESENCE,
    KC_PHASE_CANCEL,
};
const char *kc_phase_name(enum kc_phase p);

struct kc_last_packet {
    bool valid;
    uint8_t cmd;    /* KC_HID_* of the last init packet seen (or KEEPALIVE) */
    uint8_t status; /* keepalive status or error code where it applies */
    uint64_t at_us; /* since the request was sent */
};

/* Wrap an opened transport t (taken: closed on failure) and run INIT; on
 * failure errbuf gets a sentence naming name (the URI). Opening by URI,
 * "auto" included, is discovery's: kc_dev_open in ctaphid/discover.h. */
int kc_dev_open_transport(struct kc_dev **out, struct kc_transport *t, const struct kc_timeouts *to,
                          const char *name, char *errbuf, size_t errlen);
/* Wrap an already opened transport (takes ownership) without INIT. */
int kc_dev_wrap(struct kc_dev **out, struct kc_transport *t, const struct kc_timeouts *to);
void kc_dev_close(struct kc_dev *d);

void kc_timeouts_default(struct kc_timeouts *to);
void kc_dev_set_timeouts(struct kc_dev *d, const struct kc_timeouts *to);
void kc_dev_set_keepalive_cb(struct kc_dev *d, kc_keepalive_fn fn, void *ctx);
void kc_dev_set_abort_cb(struct kc_dev *d, kc_abort_fn fn, void *ctx);
void kc_dev_set_trace(struct kc_dev *d, struct kc_trace *tr); /* not owned */
/* On (the default): a CHANNEL_BUSY answer before any reply is waited out
 * with backoff (5 ms doubling to 100 ms) and the request sent again, within
 * the command deadline. Off: CHANNEL_BUSY returns KC_ERR_HID at once. */
void kc_dev_set_busy_retry(struct kc_dev *d, bool on);
/* On for devices opened as "auto" (off otherwise): when the node goes away
 * mid-command (KC_ERR_UNPLUGGED), find the card again by its identity
 * (the transport's reopen callback, set by the discovery layer:
 * kc_transport_reopen_wait, up to 3 s), run INIT, and send the request
 * once more. kc_dev_reenumerated() tells whether the last transact did;
 * kc_transport(d)->uri is then the new node. */
void kc_dev_set_follow(struct kc_dev *d, bool on);
bool kc_dev_reenumerated(const struct kc_dev *d);

/* INIT on the broadcast channel with a fresh random 8-byte nonce; a reply is
 * accepted only with that nonce and exactly 17 bytes. Allocates the channel. */
int kc_dev_init(struct kc_dev *d, struct kc_init_info *info);

/* Send one message on the allocated channel and receive the reply to it.
 * cmd is KC_HID_*; the reply's command must match (CTAPHID_ERROR gives
 * KC_ERR_HID with the code in kc_dev_last_hid_error()). *out_len receives the
 * reply length; a reply longer than out_cap gives KC_ERR_TOO_LARGE. */
int kc_dev_transact(struct kc_dev *d, uint8_t cmd, const uint8_t *in, size_t in_len, uint8_t *out,
                    size_t out_cap, size_t *out_len);

/* Convenience wrappers. */
int kc_dev_ping(struct kc_dev *d, const uint8_t *data, size_t len, uint8_t *echo, size_t cap,
                size_t *echo_len);
int kc_dev_wink(struct kc_dev *d);
int kc_dev_lock(struct kc_dev *d, uint8_t seconds);
int kc_dev_cancel(struct kc_dev *d); /* send CANCEL now; no reply expected */

/* Accessors for diagnosis. */
struct kc_transport *kc_dev_transport(struct kc_dev *d);
const struct kc_init_info *kc_dev_init_info(const struct kc_dev *d);
const struct kc_dev_stats *kc_dev_stats(const struct kc_dev *d);
uint8_t kc_dev_last_hid_error(const struct kc_dev *d);
enum kc_phase kc_dev_last_phase(const struct kc_dev *d); /* phase of the last failure */
const struct kc_last_packet *kc_dev_last_packet(const struct kc_dev *d);
bool kc_dev_saw_upneeded(const struct kc_dev *d); /* during the last transact */

#endif
