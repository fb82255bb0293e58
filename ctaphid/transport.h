/* A transport moves whole HID reports between the host and one device.
 * It knows nothing of CTAPHID: reports in, reports out, a deadline on read.
 *
 * Device URIs (design.md, "Transports"):
 *   /dev/hidraw0 or hidraw:/dev/hidraw0   Linux hidraw
 *   hidapi:PATH or hidapi:VID:PID          through hidapi (hex ids)
 *   udp:HOST:PORT[?local=PORT]             simulator, one report per datagram
 *   replay:FILE                            a JSON-lines trace played back as a device
 *   auto                                   first FIDO interface (hidraw scan, then
 *                                          cards announced in $KCARD_ANNOUNCE_DIR);
 *                                          resolved by ctaphid/discover.h
 */
#ifndef KCARD_CTAPHID_TRANSPORT_H
#define KCARD_CTAPHID_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KC_URI_MAX 512

struct kc_transport;

struct kc_transport_ops {
    /* Write one report of t->out_report_len bytes (no report-id byte; the
     * transport adds one where its medium needs it). Returns KC_OK or KC_ERR_*. */
    int (*write)(struct kc_transport *t, const uint8_t *report, size_t len);
    /* Wait at most timeout_ms for one report. Returns the number of bytes
     * stored in buf (> 0), 0 when the deadline passed with nothing read, or a
     * negative KC_ERR_*. A timeout_ms < 0 waits forever (never used by the
     * framing layer, which always passes a deadline). */
    int (*read)(struct kc_transport *t, uint8_t *buf, size_t cap, int timeout_ms);
    void (*close)(struct kc_transport *t);
};

struct kc_transport {
    const struct kc_transport_ops *ops;
    void *priv;            /* the backend's own state */
    const char *kind;      /* "hidraw", "hidapi", "udp", "replay", "mem" */
    char uri[KC_URI_MAX];  /* as resolved: "auto" becomes the concrete URI */
    size_t in_report_len;  /* bytes per input report (64 unless the descriptor says) */
    size_t out_report_len; /* bytes per output report */
    int last_errno;        /* errno of the last failed system call, 0 if none */
    bool opened_as_auto;   /* the user asked for "auto": the card, not the node */
    char last_error[256];  /* human description of the last failure */
    /* Finds the card again after it re-enumerated and swaps the new node
     * into t (KC_OK), waiting up to timeout_ms. Set by the discovery layer
     * (kc_transport_open) so the framing layer can follow a card without
     * calling up; NULL for a transport opened straight from a backend. */
    int (*reopen)(struct kc_transport *t, int timeout_ms);
};

/* Open a concrete device URI (not "auto": that is discovery's, see
 * kc_transport_open in ctaphid/discover.h) through the scheme-to-backend
 * table. On failure returns a KC_ERR_* and, if errbuf is not NULL, a
 * sentence naming the path and the fix (e.g. permissions). */
int kc_transport_open_backend(const char *uri, struct kc_transport **out, char *errbuf,
                              size_t errlen);
void kc_transport_close(struct kc_transport *t);

/* Backends, also callable directly. */
int kc_hidraw_open(const char *path, struct kc_transport **out, char *errbuf, size_t errlen);
int kc_hidapi_open(const char *spec, struct kc_transport **out, char *errbuf, size_t errlen);
int kc_udp_open(const char *spec, struct kc_transport **out, char *errbuf, size_t errlen);
int kc_replay_open(const char *file, struct kc_transport **out, char *errbuf, size_t errlen);

/* The identity a hidraw transport remembered when it opened (read from
 * sysfs, see ctaphid/sysfs.h). KC_OK, KC_ERR_INVALID_ARG for another kind,
 * KC_ERR_NO_DEVICE when sysfs knew nothing of the node. */
struct kc_card_id;
int kc_hidraw_identity(const struct kc_transport *t, struct kc_card_id *id);

/* Scripted in-memory transport for unit tests: the test queues the reports
 * the "device" will return and inspects what the host wrote. */
struct kc_mem_transport;
struct kc_transport *kc_mem_transport_new(void);
/* Queue a report the device returns on a later read; it becomes readable
 * delay_ms of wall-clock time after it was queued (0: at once). */
int kc_mem_push(struct kc_transport *t, const uint8_t *report, size_t len, int delay_ms);
/* Queue a read that fails with the given KC_ERR_* (to test error paths). */
int kc_mem_push_error(struct kc_transport *t, int err);
/* Reports written by the host, oldest first. Returns 0 when none left. */
size_t kc_mem_pop_written(struct kc_transport *t, uint8_t *buf, size_t cap);
size_t kc_mem_written_count(const struct kc_transport *t);
/* Optional responder: called on every host write, may push replies. Lets a
 * test answer INIT with the nonce the host chose. */
typedef void (*kc_mem_responder)(struct kc_transport *t, const uint8_t *report, size_t len,
                                 void *ctx);
void kc_mem_set_responder(struct kc_transport *t, kc_mem_responder fn, void *ctx);

#endif
