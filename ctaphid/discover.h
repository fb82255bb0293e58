/* Finding cards: FIDO hidraw nodes (usage page 0xF1D0 in the report
 * descriptor, read from sysfs) and virtual cards announced as files in
 * $KCARD_ANNOUNCE_DIR (default /run/kcard/cards), one URI per file.
 * $KCARD_SYSFS_HIDRAW (default /sys/class/hidraw) and $KCARD_DEV_DIR
 * (default /dev) let tests point the scan at captured sysfs trees.
 * The discovery layer also opens by URI ("auto" included) and follows a
 * card that re-enumerates; the layers below it never call up into it. */
#ifndef KCARD_CTAPHID_DISCOVER_H
#define KCARD_CTAPHID_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/io.h"
#include "ctaphid/sysfs.h" /* kc_card_id and the sysfs defaults */
#include "ctaphid/transport.h"

struct kc_dev_entry {
    char uri[KC_URI_MAX]; /* e.g. "hidraw:/dev/hidraw3" or "udp:127.0.0.1:8111" */
    char kind[16];        /* "hidraw" or the announced URI's scheme */
    uint16_t vid, pid;    /* 0 when unknown (announced cards) */
    uint16_t bus;         /* BUS_* from HID_ID (3 USB), 0 when unknown */
    char name[128];       /* HID_NAME, or the announcement's file name */
    char serial[64];      /* HID_UNIQ, may be empty */
    bool fido;            /* usage page 0xF1D0 (always true for announced cards) */
    bool announced;       /* from $KCARD_ANNOUNCE_DIR; name is the file's name */
};

/* Open a device by URI: "auto" is resolved here (kc_discover_auto, on
 * every open), anything else goes to the backend table
 * (kc_transport_open_backend). The transport gets kc_transport_reopen_wait
 * as its reopen callback, so the framing layer can follow the card. On
 * failure returns a KC_ERR_* and, if errbuf is not NULL, a sentence naming
 * the path and the fix (e.g. permissions). */
int kc_transport_open(const char *uri, struct kc_transport **out, char *errbuf, size_t errlen);
/* Open by URI (as kc_transport_open) and run INIT (kc_dev_open_transport). */
int kc_dev_open(struct kc_dev **out, const char *uri, const struct kc_timeouts *to, char *errbuf,
                size_t errlen);

/* Resolve "auto": the first FIDO hidraw node, else the first announced card.
 * Returns KC_OK, or KC_ERR_NO_DEVICE with a sentence in err naming where it
 * looked. A missing sysfs hidraw class is not an error: no HID device yet. */
int kc_discover_auto(char *uri, size_t len, char *err, size_t errlen);

/* The FIDO hidraw nodes, then the announced cards, in a stable order. *n
 * receives how many were found (may exceed cap; only cap are stored). */
int kc_discover_list(struct kc_dev_entry *out, size_t cap, size_t *n);
/* As kc_discover_list, but every hidraw node, FIDO or not (fido tells). */
int kc_discover_list_all(struct kc_dev_entry *out, size_t cap, size_t *n);

/* ---- a card's identity, and finding it again after re-enumeration ----- */

/* The URI of the card with this identity now: the FIDO hidraw node with
 * the same bus, ids and serial, or the announced card's current URI.
 * KC_ERR_NO_DEVICE with a sentence in err when it is not (yet) there. */
int kc_discover_find(const struct kc_card_id *id, char *uri, size_t len, char *err, size_t errlen);

/* Re-resolves a transport whose card re-enumerated or was unplugged and
 * plugged in again (the read or write said KC_ERR_UNPLUGGED): finds the
 * card by its remembered identity (hidraw: HID id and serial from open
 * time; udp: the announce file "auto" resolved it from), opens the new
 * node and swaps it into *t in place, so pointers to t (a kc_dev) stay
 * valid. The old descriptor is closed. The caller must run CTAPHID INIT
 * again (channels do not survive a replug); io.c / rawctap use it as:
 *     if (rc == KC_ERR_UNPLUGGED && kc_transport_reopen(t) == KC_OK)
 *         rc = kc_dev_init(d, &info);   then retry the command once
 * Returns KC_OK; KC_ERR_NO_DEVICE when the card is not back (t unchanged,
 * retry later or use kc_transport_reopen_wait); KC_ERR_UNSUPPORTED when t
 * has no remembered identity (e.g. udp given explicitly, not via auto);
 * or the open error. t->last_error gets the sentence either way. */
int kc_transport_reopen(struct kc_transport *t);
/* The same, retried every 100 ms for up to timeout_ms while the card is
 * not back (KC_ERR_NO_DEVICE). */
int kc_transport_reopen_wait(struct kc_transport *t, int timeout_ms);

#endif
