/* Internal to libctaphid: the layout of a transport (public callers hold
 * it as an opaque pointer, see ctaphid/transport.h) and the pieces the
 * concrete transports share. Included by libctaphid's own .c files and by
 * tests only; not installed, not a public API. */
#ifndef KCARD_CTAPHID_TRANSPORT_INT_H
#define KCARD_CTAPHID_TRANSPORT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/transport.h"

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

/* A zeroed transport with ops and kind set and a zeroed private part of
 * priv_size bytes in t->priv; NULL, with nothing allocated, when out of
 * memory. The transport's close op frees both. */
struct kc_transport *kc_transport_alloc(const struct kc_transport_ops *ops, const char *kind,
                                        size_t priv_size);

/* The deadline of a read with timeout_ms (< 0: none, UINT64_MAX), in
 * kc_now_us() time. */
uint64_t kc_read_deadline(int timeout_ms);

/* Waits in poll() until fd is readable: 1 with its poll revents in *revents,
 * 0 once deadline has passed (never when timeout_ms < 0), or -1 when poll
 * fails (errno kept). EINTR is retried. */
int kc_fd_wait_readable(int fd, int timeout_ms, uint64_t deadline, short *revents);

#endif
