/* HID node enumeration for triage (`fido2-probe --list`): every hidraw node
 * with its bus, ids, HID_NAME/HID_UNIQ, report descriptor usage and report
 * sizes, whether this user can open it (and if not, owner, mode and the
 * fix), and the other nodes of the same physical device. Two backends:
 * sysfs (no libudev; honours $KCARD_SYSFS_HIDRAW and $KCARD_DEV_DIR like
 * discover.h) and hidapi's hid_enumerate (portable, fewer details).
 * A card is identified by HID id and serial, never by its hidrawN number. */
#ifndef KCARD_CTAPHID_HID_ENUM_H
#define KCARD_CTAPHID_HID_ENUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/sysfs.h" /* kc_hid_uevent, kc_enum_* */
#include "ctaphid/transport.h"

#define KC_ENUM_MAX_SIBLINGS 8
#define KC_ENUM_PATH_MAX 256

/* "usb", "bluetooth", "virtual", "i2c", ... or "other". */
const char *kc_hid_bus_name(uint16_t bus);

enum kc_access {
    KC_ACCESS_UNKNOWN = 0, /* not checked (announced cards) */
    KC_ACCESS_OK,          /* opened read-write as this user */
    KC_ACCESS_DENIED,      /* EACCES/EPERM: owner, group, mode and fix filled */
    KC_ACCESS_MISSING,     /* sysfs has it, the device node does not exist */
    KC_ACCESS_ERROR,       /* another open error (access_errno) */
};
const char *kc_access_name(enum kc_access a); /* "ok", "denied", ... */

struct kc_hid_node {
    char uri[KC_URI_MAX];        /* "hidraw:/dev/hidraw0", "hidapi:PATH", "udp:..." */
    char kind[16];               /* "hidraw", "hidapi", or an announced URI's scheme */
    char path[KC_ENUM_PATH_MAX]; /* the node; for announced cards the announce file */
    char sysname[32];            /* "hidraw0" (sysfs backend), else "" */
    bool have_id;
    uint16_t bus, vid, pid;
    char name[128]; /* HID_NAME / product string / announce file name */
    char uniq[64];  /* HID_UNIQ / serial number */
    char phys[128]; /* HID_PHYS where known */
    bool have_desc; /* report descriptor read and parsed */
    uint16_t usage_page, usage;
    size_t in_report_len, out_report_len; /* 0 when unknown */
    bool fido;                            /* usage page 0xF1D0 (announced cards: true) */
    bool is_virtual;                      /* sysfs parent under /devices/virtual (uhid) */
    int interface;                        /* USB interface number, -1 when unknown */
    /* access(2) is not enough (ACLs from uaccess, LSMs): an open test */
    enum kc_access access;
    int access_errno;
    bool have_stat;
    char owner[64], group[64];
    unsigned mode; /* permission bits of the node */
    char fix[512]; /* what to do when access is not KC_ACCESS_OK */
    /* the physical device: for USB the device above the interface, for
     * uhid the shared virtual/misc/uhid parent plus HID id, serial and phys */
    char device[KC_ENUM_PATH_MAX];
    char siblings[KC_ENUM_MAX_SIBLINGS][KC_ENUM_PATH_MAX]; /* paths of other nodes */
    size_t n_siblings;
};

enum kc_enum_backend {
    KC_ENUM_SYSFS = 0,
    KC_ENUM_HIDAPI,
};

#define KC_ENUM_ALL 0x1u       /* non-FIDO nodes too */
#define KC_ENUM_ANNOUNCED 0x2u /* then the cards announced in $KCARD_ANNOUNCE_DIR */
#define KC_ENUM_NO_ACCESS 0x4u /* skip the open test */

/* Nodes in a stable order (hidraw2 before hidraw10), FIDO and (with
 * KC_ENUM_ALL) non-FIDO, then announced cards. Siblings are found among all
 * nodes whatever the filter. *n receives how many matched (may exceed cap).
 * A missing sysfs hidraw class is not an error: *n is 0. */
int kc_hid_enum(enum kc_enum_backend backend, unsigned flags, struct kc_hid_node *out, size_t cap,
                size_t *n);

/* The open test and, when it fails, owner/group/mode and the fix. */
void kc_hid_node_check_access(struct kc_hid_node *node);

/* The fix text for a node this user may not open (FIDO or not). */
void kc_hid_access_fix(bool fido, enum kc_access a, char *buf, size_t len);

#endif
