/* Finding cards: FIDO hidraw nodes (usage page 0xF1D0 in the report
 * descriptor, read from sysfs) and virtual cards announced as files in
 * $KCARD_ANNOUNCE_DIR (default /run/kcard/cards), one URI per file.
 * $KCARD_SYSFS_HIDRAW (default /sys/class/hidraw) and $KCARD_DEV_DIR
 * (default /dev) let tests point the scan at captured sysfs trees. */
#ifndef KCARD_CTAPHID_DISCOVER_H
#define KCARD_CTAPHID_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/transport.h"

#define KC_ANNOUNCE_DIR_DEFAULT "/run/kcard/cards"
#define KC_SYSFS_HIDRAW_DEFAULT "/sys/class/hidraw"

struct kc_dev_entry {
    char uri[KC_URI_MAX]; /* e.g. "hidraw:/dev/hidraw3" or "udp:127.0.0.1:8111" */
    char kind[16];        /* "hidraw" or the announced URI's scheme */
    uint16_t vid, pid;    /* 0 when unknown (announced cards) */
    char name[128];       /* HID_NAME, or the announcement's file name */
    char serial[64];      /* HID_UNIQ, may be empty */
    bool fido;            /* usage page 0xF1D0 (always true for announced cards) */
};

/* Resolve "auto": the first FIDO hidraw node, else the first announced card.
 * Returns KC_OK, or KC_ERR_NO_DEVICE with a sentence in err naming where it
 * looked. A missing sysfs hidraw class is not an error: no HID device yet. */
int kc_discover_auto(char *uri, size_t len, char *err, size_t errlen);

/* The FIDO hidraw nodes, then the announced cards, in a stable order. *n
 * receives how many were found (may exceed cap; only cap are stored). */
int kc_discover_list(struct kc_dev_entry *out, size_t cap, size_t *n);
/* As kc_discover_list, but every hidraw node, FIDO or not (fido tells). */
int kc_discover_list_all(struct kc_dev_entry *out, size_t cap, size_t *n);

#endif
