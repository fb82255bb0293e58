/* HID node enumeration: sysfs (/sys/class/hidraw/hidrawN/device/{uevent,
 * report_descriptor}, the device symlink for the physical parent) or
 * hidapi's hid_enumerate, plus an open test per node. */
#include "ctaphid/hid_enum.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

#include <hidapi/hidapi.h>

#include "ctaphid/discover.h"
#include "ctaphid/hid_desc.h"
#include "ctaphid/status.h"
#include "ctaphid/sysfs.h"

#define MAX_NAMES 256
#define UEVENT_MAX 4096
#define KEY_MAX 640

#define UDEV_RULE "fixtures/udev/70-kcard-fido.rules"

const char *kc_hid_bus_name(uint16_t bus)
{
    switch (bus) {
    case 0x01:
        return "pci";
    case 0x03:
        return "usb";
    case 0x05:
        return "bluetooth";
    case 0x06:
        return "virtual";
    case 0x18:
        return "i2c";
    case 0x19:
        return "host";
    case 0x1c:
        return "spi";
    default:
        break;
    }
    return "other";
}

const char *kc_access_name(enum kc_access a)
{
    switch (a) {
    case KC_ACCESS_OK:
        return "ok";
    case KC_ACCESS_DENIED:
        return "denied";
    case KC_ACCESS_MISSING:
        return "missing";
    case KC_ACCESS_ERROR:
        return "error";
    default:
        return "unknown";
    }
}

/* ---- access ------------------------------------------------------------- */

void kc_hid_access_fix(bool fido, enum kc_access a, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return;
    buf[0] = '\0';
    switch (a) {
    case KC_ACCESS_DENIED:
        if (fido)
            snprintf(buf, len,
                     "install the udev rule " UDEV_RULE " as root (cp it to /etc/udev/rules.d/, "
                     "udevadm control --reload, udevadm trigger --subsystem-match=hidraw): "
                     "FIDO nodes get TAG+=\"uaccess\" (an ACL for the user at the seat) and group "
                     "plugdev mode 0660; a service account without a seat needs "
                     "`usermod -aG plugdev USER` and a new login; then re-plug the card");
        else
            snprintf(buf, len,
                     "none needed: not a FIDO interface, kcard does not use it and " UDEV_RULE
                     " leaves it closed on purpose; use the FIDO node of the same device");
        break;
    case KC_ACCESS_MISSING:
        snprintf(buf, len,
                 "sysfs lists the node but the device file does not exist: udev has not made it "
                 "yet (udevadm settle) or /dev is not the host's (container without the device)");
        break;
    case KC_ACCESS_ERROR:
        snprintf(buf, len, "re-plug the card; if it persists, check `dmesg` for HID errors");
        break;
    default:
        break;
    }
}

void kc_hid_node_check_access(struct kc_hid_node *nd)
{
    struct stat st;
    int fd;

    if (nd == NULL || nd->path[0] != '/')
        return;
    fd = open(nd->path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) {
        close(fd);
        nd->access = KC_ACCESS_OK;
        nd->access_errno = 0;
    } else {
        nd->access_errno = errno;
        if (errno == EACCES || errno == EPERM)
            nd->access = KC_ACCESS_DENIED;
        else if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
            nd->access = KC_ACCESS_MISSING;
        else
            nd->access = KC_ACCESS_ERROR;
    }
    if (stat(nd->path, &st) == 0) {
        struct passwd *pw = getpwuid(st.st_uid);
        struct group *gr = getgrgid(st.st_gid);
        nd->have_stat = true;
        nd->mode = (unsigned)(st.st_mode & 07777);
        if (pw != NULL)
            snprintf(nd->owner, sizeof(nd->owner), "%.60s", pw->pw_name);
        else
            snprintf(nd->owner, sizeof(nd->owner), "%u", (unsigned)st.st_uid);
        if (gr != NULL)
            snprintf(nd->group, sizeof(nd->group), "%.60s", gr->gr_name);
        else
            snprintf(nd->group, sizeof(nd->group), "%u", (unsigned)st.st_gid);
    }
    kc_hid_access_fix(nd->fido, nd->access, nd->fix, sizeof(nd->fix));
}

/* ---- node lists --------------------------------------------------------- */

struct node_list {
    struct kc_hid_node *v;
    char (*key)[KEY_MAX];
    size_t n, cap;
};

static struct kc_hid_node *list_add(struct node_list *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap == 0 ? 8 : l->cap * 2;
        struct kc_hid_node *v;
        char(*key)[KEY_MAX];
        if (cap > 4096)
            return NULL;
        if ((v = realloc(l->v, cap * sizeof(*v))) == NULL)
            return NULL;
        l->v = v;
        if ((key = realloc(l->key, cap * sizeof(*key))) == NULL)
            return NULL;
        l->key = key;
        l->cap = cap;
    }
    memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
    l->key[l->n][0] = '\0';
    return &l->v[l->n++];
}

static void list_free(struct node_list *l)
{
    free(l->v);
    free(l->key);
    memset(l, 0, sizeof(*l));
}

static void dirname_of(const char *path, char *out, size_t len)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL || slash == path)
        snprintf(out, len, "%s", slash == path ? "/" : ".");
    else
        snprintf(out, len, "%.*s", (int)(slash - path), path);
}

/* The physical device above a HID device directory: the USB device for a
 * USB interface (the parent has bInterfaceNumber), else the parent. */
static void physical_parent(struct kc_hid_node *nd, const char *hid_dev)
{
    char parent[PATH_MAX], file[PATH_MAX + 32], num[16];
    size_t n;

    dirname_of(hid_dev, parent, sizeof(parent));
    snprintf(file, sizeof(file), "%s/bInterfaceNumber", parent);
    n = kc_enum_read_file(file, num, sizeof(num) - 1);
    if (n > 0) {
        num[n] = '\0';
        nd->interface = (int)strtol(num, NULL, 16);
        dirname_of(parent, nd->device, sizeof(nd->device));
    } else {
        snprintf(nd->device, sizeof(nd->device), "%.255s", parent);
    }
    nd->is_virtual = strstr(nd->device, "/devices/virtual/") != NULL ||
                     (strlen(nd->device) >= 16 &&
                      strcmp(nd->device + strlen(nd->device) - 16, "/devices/virtual") == 0);
}

/* Nodes under a shared virtual parent (every uhid device hangs off
 * virtual/misc/uhid) belong together only with the same HID id, serial and
 * HID_PHYS prefix ("kcard-vcard/input0" and ".../input1"). */
static void device_key(const struct kc_hid_node *nd, char *key, size_t len)
{
    if (!nd->is_virtual) {
        snprintf(key, len, "%s", nd->device);
        return;
    }
    const char *slash = strrchr(nd->phys, '/');
    int plen = slash != NULL ? (int)(slash - nd->phys) : (int)strlen(nd->phys);
    snprintf(key, len, "%s|%04x:%04x:%04x|%s|%.*s", nd->device, nd->bus, nd->vid, nd->pid, nd->uniq,
             plen, nd->phys);
}

static void sysfs_node(const char *root, const char *devdir, const char *sysname,
                       struct kc_hid_node *nd, uint8_t *desc, char *key, size_t keylen)
{
    char path[PATH_MAX], real[PATH_MAX];
    char ue_text[UEVENT_MAX];
    struct kc_hid_uevent ue;
    struct kc_hid_desc d;
    size_t len;

    nd->interface = -1;
    snprintf(nd->kind, sizeof(nd->kind), "hidraw");
    snprintf(nd->sysname, sizeof(nd->sysname), "%.31s", sysname);
    snprintf(nd->path, sizeof(nd->path), "%.200s/%.40s", devdir, sysname);
    snprintf(nd->uri, sizeof(nd->uri), "hidraw:%s", nd->path);

    snprintf(path, sizeof(path), "%s/%s/device/report_descriptor", root, sysname);
    len = kc_enum_read_file(path, desc, KC_HID_DESC_MAX);
    if (len > 0 && kc_hid_desc_parse(desc, len, &d) == KC_OK) {
        nd->have_desc = true;
        nd->usage_page = d.usage_page;
        nd->usage = d.usage;
        nd->in_report_len = d.in_report_len;
        nd->out_report_len = d.out_report_len;
        nd->fido = kc_hid_desc_is_fido(&d);
    }
    snprintf(path, sizeof(path), "%s/%s/device/uevent", root, sysname);
    len = kc_enum_read_file(path, ue_text, sizeof(ue_text));
    if (kc_hid_uevent_parse(ue_text, len, &ue) == KC_OK) {
        nd->have_id = ue.have_id;
        nd->bus = ue.bus;
        nd->vid = ue.vid;
        nd->pid = ue.pid;
        memcpy(nd->name, ue.name, sizeof(nd->name));
        memcpy(nd->uniq, ue.uniq, sizeof(nd->uniq));
        memcpy(nd->phys, ue.phys, sizeof(nd->phys));
    }
    snprintf(path, sizeof(path), "%s/%s/device", root, sysname);
    if (realpath(path, real) == NULL)
        snprintf(real, sizeof(real), "%s", path);
    physical_parent(nd, real);
    device_key(nd, key, keylen);
}

static int enum_sysfs(struct node_list *l)
{
    const char *root = kc_enum_env_or("KCARD_SYSFS_HIDRAW", KC_SYSFS_HIDRAW_DEFAULT);
    const char *devdir = kc_enum_env_or("KCARD_DEV_DIR", "/dev");
    size_t count;
    char **names = kc_enum_list_dir(root, &count);
    uint8_t *desc;
    int rc = KC_OK;

    if (names == NULL)
        return KC_OK; /* no /sys/class/hidraw: no HID device has appeared yet */
    if ((desc = malloc(KC_HID_DESC_MAX)) == NULL) {
        kc_enum_free_names(names, count);
        return KC_ERR_NOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        struct kc_hid_node *nd;
        if (strncmp(names[i], "hidraw", 6) != 0)
            continue;
        if ((nd = list_add(l)) == NULL) {
            rc = KC_ERR_NOMEM;
            break;
        }
        sysfs_node(root, devdir, names[i], nd, desc, l->key[l->n - 1], KEY_MAX);
    }
    free(desc);
    kc_enum_free_names(names, count);
    return rc;
}

static void wide_to_ascii(const wchar_t *w, char *out, size_t len)
{
    size_t i = 0;

    if (len == 0)
        return;
    for (; w != NULL && w[i] != L'\0' && i + 1 < len; i++)
        out[i] = w[i] > 0x1f && w[i] < 0x7f ? (char)w[i] : '?';
    out[i] = '\0';
}

static uint16_t hidapi_bus(int bus_type)
{
    switch (bus_type) {
    case HID_API_BUS_USB:
        return 0x03;
    case HID_API_BUS_BLUETOOTH:
        return 0x05;
    case HID_API_BUS_I2C:
        return 0x18;
    case HID_API_BUS_SPI:
        return 0x1c;
    default:
        return 0;
    }
}

static int enum_hidapi(struct node_list *l)
{
    struct hid_device_info *devs, *d;
    int rc = KC_OK;

    if (hid_init() != 0)
        return KC_ERR_IO;
    devs = hid_enumerate(0, 0);
    for (d = devs; d != NULL; d = d->next) {
        struct kc_hid_node *nd;
        if (d->path == NULL)
            continue;
        if ((nd = list_add(l)) == NULL) {
            rc = KC_ERR_NOMEM;
            break;
        }
        nd->interface = d->interface_number;
        snprintf(nd->kind, sizeof(nd->kind), "hidapi");
        snprintf(nd->path, sizeof(nd->path), "%.250s", d->path);
        snprintf(nd->uri, sizeof(nd->uri), "hidapi:%s", nd->path);
        nd->have_id = true;
        nd->bus = hidapi_bus((int)d->bus_type);
        nd->vid = d->vendor_id;
        nd->pid = d->product_id;
        wide_to_ascii(d->product_string, nd->name, sizeof(nd->name));
        wide_to_ascii(d->serial_number, nd->uniq, sizeof(nd->uniq));
        nd->have_desc = d->usage_page != 0;
        nd->usage_page = d->usage_page;
        nd->usage = d->usage;
        nd->fido = d->usage_page == KC_FIDO_USAGE_PAGE;
        /* hidapi names no parent: the same ids and serial is the best guess */
        snprintf(nd->device, sizeof(nd->device), "hidapi %04x:%04x:%04x serial %.60s", nd->bus,
                 nd->vid, nd->pid, nd->uniq);
        snprintf(l->key[l->n - 1], KEY_MAX, "%s", nd->device);
    }
    hid_free_enumeration(devs);
    return rc;
}

static void find_siblings(struct node_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        l->v[i].n_siblings = 0;
        if (l->key[i][0] == '\0')
            continue;
        for (size_t j = 0; j < l->n; j++) {
            if (j == i || strcmp(l->key[i], l->key[j]) != 0)
                continue;
            if (l->v[i].n_siblings < KC_ENUM_MAX_SIBLINGS)
                snprintf(l->v[i].siblings[l->v[i].n_siblings++], KC_ENUM_PATH_MAX, "%s",
                         l->v[j].path);
        }
    }
}

static void add_out(struct kc_hid_node *out, size_t cap, size_t *n, const struct kc_hid_node *nd)
{
    if (out != NULL && *n < cap)
        out[*n] = *nd;
    (*n)++;
}

static int add_announced(struct kc_hid_node *out, size_t cap, size_t *n)
{
    const char *dir = kc_enum_env_or("KCARD_ANNOUNCE_DIR", KC_ANNOUNCE_DIR_DEFAULT);
    struct kc_dev_entry *e = calloc(MAX_NAMES, sizeof(*e));
    size_t m = 0;

    if (e == NULL)
        return KC_ERR_NOMEM;
    if (kc_discover_list(e, MAX_NAMES, &m) != KC_OK)
        m = 0;
    if (m > MAX_NAMES)
        m = MAX_NAMES;
    for (size_t i = 0; i < m; i++) {
        struct kc_hid_node nd;
        if (!e[i].announced)
            continue;
        memset(&nd, 0, sizeof(nd));
        nd.interface = -1;
        nd.fido = true;
        nd.is_virtual = true;
        snprintf(nd.uri, sizeof(nd.uri), "%s", e[i].uri);
        snprintf(nd.kind, sizeof(nd.kind), "%s", e[i].kind);
        snprintf(nd.path, sizeof(nd.path), "%.120s/%.120s", dir, e[i].name);
        snprintf(nd.name, sizeof(nd.name), "%s", e[i].name);
        snprintf(nd.device, sizeof(nd.device), "%s", nd.path);
        add_out(out, cap, n, &nd);
    }
    free(e);
    return KC_OK;
}

int kc_hid_enum(enum kc_enum_backend backend, unsigned flags, struct kc_hid_node *out, size_t cap,
                size_t *n)
{
    struct node_list l;
    int rc;

    if (n == NULL || (out == NULL && cap > 0))
        return KC_ERR_INVALID_ARG;
    *n = 0;
    memset(&l, 0, sizeof(l));
    if (backend == KC_ENUM_HIDAPI)
        rc = enum_hidapi(&l);
    else if (backend == KC_ENUM_SYSFS)
        rc = enum_sysfs(&l);
    else
        rc = KC_ERR_INVALID_ARG;
    if (rc != KC_OK) {
        list_free(&l);
        return rc;
    }
    find_siblings(&l);
    for (size_t i = 0; i < l.n; i++) {
        if (!(flags & KC_ENUM_ALL) && !l.v[i].fido)
            continue;
        if (!(flags & KC_ENUM_NO_ACCESS))
            kc_hid_node_check_access(&l.v[i]);
        add_out(out, cap, n, &l.v[i]);
    }
    list_free(&l);
    if (flags & KC_ENUM_ANNOUNCED)
        return add_announced(out, cap, n);
    return KC_OK;
}
