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

#include "ctaphid/transport.h"

#define KC_ENUM_MAX_SIBLINGS 8
#define KC_ENUM_PATH_MAX 256

/* The fields of a HID device's sysfs uevent file that matter here. */
struct kc_hid_uevent {
    bool have_id;      /* HID_ID=BUS:VID:PID was present and well formed */
    uint16_t bus;      /* BUS_* of linux/input.h (3 USB, 5 Bluetooth, 6 virtual) */
    uint16_t vid, pid; /* HID_ID carries 32-bit fields; ids above 0xffff are rejected */
    char name[128];    /* HID_NAME */
    char uniq[64];     /* HID_UNIQ: the serial, often empty */
    char phys[128];    /* HID_PHYS: "usb-0000:00:14.0-1/input0" */
    char driver[32];   /* DRIVER */
};

/* Parses uevent text (KEY=VALUE lines; need not be NUL-terminated). Unknown
 * keys are ignored, over-long values truncated. KC_OK, or KC_ERR_INVALID_ARG. */
int kc_hid_uevent_parse(const char *text, size_t len, struct kc_hid_uevent *out);
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

/* Shared with discover.c: the entries of dir not starting with '.', in
 * natural order (hidraw2 before hidraw10), at most 256; NULL when the
 * directory cannot be read (*n is then 0). Free with kc_enum_free_names. */
char **kc_enum_list_dir(const char *dir, size_t *n);
void kc_enum_free_names(char **names, size_t n);
/* Reads at most cap bytes of a file; 0 when it cannot be read. */
size_t kc_enum_read_file(const char *path, void *buf, size_t cap);
/* The environment variable name when set and not empty, else def (the
 * KCARD_SYSFS_HIDRAW / KCARD_DEV_DIR / KCARD_ANNOUNCE_DIR overrides). */
const char *kc_enum_env_or(const char *name, const char *def);

#endif
