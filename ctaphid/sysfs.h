/* Reading the sysfs hidraw class (no libudev): the HID uevent fields, the
 * natural-order directory listing and file reads the scans share, and a
 * card's identity read from them. $KCARD_SYSFS_HIDRAW (default
 * /sys/class/hidraw), $KCARD_DEV_DIR (default /dev) and $KCARD_ANNOUNCE_DIR
 * (default /run/kcard/cards) let tests point the scans at captured trees.
 * Bottom layer: no transport, no discovery. */
#ifndef KCARD_CTAPHID_SYSFS_H
#define KCARD_CTAPHID_SYSFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KC_ANNOUNCE_DIR_DEFAULT "/run/kcard/cards"
#define KC_SYSFS_HIDRAW_DEFAULT "/sys/class/hidraw"

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
/* The entries of dir not starting with '.', in
 * natural order (hidraw2 before hidraw10), at most 256; NULL when the
 * directory cannot be read (*n is then 0). Free with kc_enum_free_names. */
char **kc_enum_list_dir(const char *dir, size_t *n);
void kc_enum_free_names(char **names, size_t n);
/* Reads at most cap bytes of a file; 0 when it cannot be read. */
size_t kc_enum_read_file(const char *path, void *buf, size_t cap);
/* The environment variable name when set and not empty, else def (the
 * KCARD_SYSFS_HIDRAW / KCARD_DEV_DIR / KCARD_ANNOUNCE_DIR overrides). */
const char *kc_enum_env_or(const char *name, const char *def);

/* A card is its HID id and serial (HID_UNIQ), never its hidrawN number:
 * after a replug the kernel may give it another node. An announced virtual
 * card is its announce file (vcard rewrites it when it re-plugs under a
 * new address). */
struct kc_card_id {
    char kind[16]; /* "hidraw" or "announce" */
    uint16_t bus, vid, pid;
    char serial[64];    /* HID_UNIQ, may be empty (then the first node with the ids) */
    char announce[256]; /* kind "announce": the file's name in the announce dir */
};

/* "0003:1209:000a serial KC-1" or "announced vcard-12.uri". */
void kc_card_id_str(const struct kc_card_id *id, char *buf, size_t len);

/* The identity of the hidraw node at path (any directory; its last
 * component names the sysfs entry). With fd >= 0 the node's device number
 * must match sysfs's "dev" where sysfs has one. KC_OK or KC_ERR_NO_DEVICE. */
int kc_card_id_of_hidraw(const char *path, int fd, struct kc_card_id *id);

#endif
