/* Device discovery over a captured-style sysfs tree and announce directory,
 * URI dispatch, and the hidraw backend's open errors on plain files. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctaphid/trace.h"

#include "ctaphid/discover.h"
#include "ctaphid/hid_enum.h"
#include "ctaphid/status.h"
#include "ctaphid/transport.h"
#include "ctaphid/transport_int.h"
#include "ctaphid/transport_mem_int.h"

static const uint8_t fido_desc[] = {0x06, 0xd0, 0xf1, 0x09, 0x01, 0xa1, 0x01, 0x09, 0x20,
                                    0x15, 0x00, 0x26, 0xff, 0x00, 0x75, 0x08, 0x95, 0x40,
                                    0x81, 0x02, 0x09, 0x21, 0x15, 0x00, 0x26, 0xff, 0x00,
                                    0x75, 0x08, 0x95, 0x40, 0x91, 0x02, 0xc0};
static const uint8_t mouse_desc[] = {0x05, 0x01, 0x09, 0x02, 0xa1, 0x01, 0x75,
                                     0x08, 0x95, 0x03, 0x81, 0x02, 0xc0};

static char root[64];
static char sysfs[128], anndir[128];

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void add_node(const char *name, const uint8_t *desc, size_t len, const char *uevent)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", sysfs, name);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/%s/device", sysfs, name);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/%s/device/report_descriptor", sysfs, name);
    write_file(path, desc, len);
    snprintf(path, sizeof(path), "%s/%s/device/uevent", sysfs, name);
    write_file(path, uevent, strlen(uevent));
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/kc_disc_XXXXXX");
    assert_non_null(mkdtemp(root));
    snprintf(sysfs, sizeof(sysfs), "%s/hidraw", root);
    snprintf(anndir, sizeof(anndir), "%s/cards", root);
    setenv("KCARD_SYSFS_HIDRAW", sysfs, 1);
    setenv("KCARD_ANNOUNCE_DIR", anndir, 1);
    setenv("KCARD_DEV_DIR", "/dev", 1);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* The tests above share one tree on purpose; those below each start from
 * an empty one (the group teardown removes the last). */
static int fresh(void **state)
{
    if (teardown(state) != 0)
        return -1;
    return setup(state);
}

static void test_nothing_anywhere(void **state)
{
    (void)state;
    char uri[KC_URI_MAX], err[512];
    size_t n = 99;

    /* neither directory exists: no HID device yet, no card announced */
    assert_int_equal(kc_discover_auto(uri, sizeof(uri), err, sizeof(err)), KC_ERR_NO_DEVICE);
    assert_non_null(strstr(err, sysfs));
    assert_non_null(strstr(err, anndir));
    assert_int_equal(kc_discover_list(NULL, 0, &n), KC_OK);
    assert_int_equal(n, 0);
}

static void test_announced_card(void **state)
{
    (void)state;
    char uri[KC_URI_MAX], err[512];
    struct kc_dev_entry e[4];
    size_t n;

    assert_int_equal(mkdir(anndir, 0755), 0);
    {
        char p[256];
        snprintf(p, sizeof(p), "%s/b-card", anndir);
        write_file(p, "udp:127.0.0.1:8112\n", 19);
        snprintf(p, sizeof(p), "%s/a-card", anndir);
        write_file(p, "udp:127.0.0.1:8111?local=7112  \n", 32);
        snprintf(p, sizeof(p), "%s/junk", anndir);
        write_file(p, "auto\n", 5);
    }
    assert_int_equal(kc_discover_auto(uri, sizeof(uri), err, sizeof(err)), KC_OK);
    assert_string_equal(uri, "udp:127.0.0.1:8111?local=7112");
    assert_int_equal(kc_discover_list(e, 4, &n), KC_OK);
    assert_int_equal(n, 2);
    assert_string_equal(e[0].kind, "udp");
    assert_string_equal(e[0].name, "a-card");
    assert_string_equal(e[1].uri, "udp:127.0.0.1:8112");
    assert_true(e[1].fido);
}

static void test_fido_hidraw_first(void **state)
{
    (void)state;
    char uri[KC_URI_MAX], err[512];
    struct kc_dev_entry e[8];
    size_t n;

    assert_int_equal(mkdir(sysfs, 0755), 0);
    add_node("hidraw0", mouse_desc, sizeof(mouse_desc), "HID_ID=0003:0000046D:0000C077\n");
    add_node("hidraw10", fido_desc, sizeof(fido_desc),
             "DRIVER=hid-generic\nHID_ID=0003:00001050:00000407\nHID_NAME=Yubico YubiKey "
             "OTP+FIDO+CCID\nHID_UNIQ=\n");
    add_node("hidraw2", fido_desc, sizeof(fido_desc),
             "HID_ID=0003:000020A0:000042B1\nHID_NAME=Nitrokey 3\nHID_UNIQ=ABC123\n");
    assert_int_equal(kc_discover_auto(uri, sizeof(uri), err, sizeof(err)), KC_OK);
    assert_string_equal(uri, "hidraw:/dev/hidraw2"); /* hidraw2 sorts before hidraw10 */
    assert_int_equal(kc_discover_list(e, 8, &n), KC_OK);
    assert_int_equal(n, 4); /* two FIDO nodes, two announced cards */
    assert_string_equal(e[0].uri, "hidraw:/dev/hidraw2");
    assert_int_equal(e[0].vid, 0x20a0);
    assert_int_equal(e[0].pid, 0x42b1);
    assert_string_equal(e[0].name, "Nitrokey 3");
    assert_string_equal(e[0].serial, "ABC123");
    assert_string_equal(e[1].uri, "hidraw:/dev/hidraw10");
    assert_int_equal(e[1].vid, 0x1050);
    assert_string_equal(e[2].kind, "udp");
    assert_int_equal(kc_discover_list_all(e, 2, &n), KC_OK);
    assert_int_equal(n, 5); /* counted beyond cap */
    assert_string_equal(e[0].uri, "hidraw:/dev/hidraw0");
    assert_false(e[0].fido);
    assert_true(e[1].fido);
}

static void test_uri_dispatch_errors(void **state)
{
    (void)state;
    struct kc_transport *t = NULL;
    char err[512];

    assert_int_equal(kc_transport_open("bogus:thing", &t, err, sizeof(err)), KC_ERR_INVALID_ARG);
    assert_non_null(strstr(err, "unknown device URI"));
    assert_int_equal(kc_transport_open("", &t, err, sizeof(err)), KC_ERR_INVALID_ARG);
    assert_int_equal(kc_transport_open("/nonexistent/hidraw9", &t, err, sizeof(err)),
                     KC_ERR_NO_DEVICE);
    assert_non_null(strstr(err, "/nonexistent/hidraw9"));
    assert_int_equal(kc_transport_open("hidraw:/nonexistent/hidraw9", &t, err, sizeof(err)),
                     KC_ERR_NO_DEVICE);
    assert_int_equal(kc_transport_open("udp:localhost", &t, err, sizeof(err)), KC_ERR_INVALID_ARG);
    assert_int_equal(kc_transport_open("udp:127.0.0.1:70000", &t, err, sizeof(err)),
                     KC_ERR_INVALID_ARG);
    assert_int_equal(kc_transport_open("udp:127.0.0.1:8111?remote=1", &t, err, sizeof(err)),
                     KC_ERR_INVALID_ARG);
    assert_int_equal(kc_transport_open("udp:127.0.0.1:8111?local=0", &t, err, sizeof(err)),
                     KC_ERR_INVALID_ARG);
    assert_null(t);
}

/* A plain file stands in for a hidraw node: exclusivity, the report-id
 * byte on write, and the default report sizes when there is no descriptor. */
static void test_hidraw_on_plain_file(void **state)
{
    (void)state;
    char path[256], err[512];
    struct kc_transport *t;
    uint8_t report[64], back[128];
    int fd, lock_fd;

    snprintf(path, sizeof(path), "%s/fake-hidraw", root);
    write_file(path, "", 0);
    lock_fd = open(path, O_RDONLY);
    assert_true(lock_fd >= 0);
    assert_int_equal(flock(lock_fd, LOCK_EX), 0);
    assert_int_equal(kc_hidraw_open(path, &t, err, sizeof(err)), KC_ERR_IO);
    assert_non_null(strstr(err, "in use by another process"));
    close(lock_fd);

    assert_int_equal(kc_hidraw_open(path, &t, err, sizeof(err)), KC_OK);
    assert_string_equal(t->kind, "hidraw");
    assert_int_equal(t->in_report_len, 64);
    assert_int_equal(t->out_report_len, 64);
    memset(report, 0xab, sizeof(report));
    assert_int_equal(t->ops->write(t, report, sizeof(report)), KC_OK);
    kc_transport_close(t);
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, back, sizeof(back)), 65);
    assert_int_equal(back[0], 0);
    assert_memory_equal(back + 1, report, 64);
    close(fd);
}

static void test_hidraw_permission_message(void **state)
{
    (void)state;
    char path[256];
    pid_t pid;
    int status;

    snprintf(path, sizeof(path), "%s/locked-hidraw", root);
    write_file(path, "", 0);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(chmod(root, 0755), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[512];
        struct kc_transport *t;
        /* as root, drop to an unprivileged user so the mode applies */
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(10);
        if (kc_hidraw_open(path, &t, err, sizeof(err)) != KC_ERR_PERMISSION)
            _exit(11);
        if (strstr(err, path) == NULL || strstr(err, "mode 0600") == NULL ||
            strstr(err, "uaccess") == NULL || strstr(err, "group") == NULL)
            _exit(12);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- uevent parsing ---------------------------------------------------- */

static void test_uevent_parse(void **state)
{
    (void)state;
    struct kc_hid_uevent ue;
    char longer[200];
    const char *text = "DRIVER=hid-generic\nHID_ID=0003:00001209:0000000A\nHID_NAME=kcard card\r\n"
                       "HID_PHYS=usb-0000:00:14.0-1/input0\nHID_UNIQ=KC-1\nMODALIAS=hid:b0003";

    assert_int_equal(kc_hid_uevent_parse(text, strlen(text), &ue), KC_OK);
    assert_true(ue.have_id);
    assert_int_equal(ue.bus, 3);
    assert_int_equal(ue.vid, 0x1209);
    assert_int_equal(ue.pid, 0x000a);
    assert_string_equal(ue.name, "kcard card"); /* \r stripped */
    assert_string_equal(ue.uniq, "KC-1");
    assert_string_equal(ue.phys, "usb-0000:00:14.0-1/input0");
    assert_string_equal(ue.driver, "hid-generic");
    /* not NUL-terminated: the length bounds the parse */
    assert_int_equal(kc_hid_uevent_parse("HID_UNIQ=ABCDEF", 12, &ue), KC_OK);
    assert_string_equal(ue.uniq, "ABC");
    assert_false(ue.have_id);

    static const char *const bad_ids[] = {
        "HID_ID=0003:1:2:3",    "HID_ID=0003:00010000:0001", "HID_ID=zz03:1:1",
        "HID_ID=:1:1",          "HID_ID=0003:1209",          "HID_ID=0003:1209:",
        "HID_ID=000000003:1:1", "HID_ID=0003:-1:1",
    };
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        assert_int_equal(kc_hid_uevent_parse(bad_ids[i], strlen(bad_ids[i]), &ue), KC_OK);
        assert_false(ue.have_id);
    }
    assert_int_equal(kc_hid_uevent_parse("HID_IDX=0003:1:1\nHID_ID", 23, &ue), KC_OK);
    assert_false(ue.have_id);
    memset(longer, 'x', sizeof(longer));
    memcpy(longer, "HID_UNIQ=", 9);
    assert_int_equal(kc_hid_uevent_parse(longer, sizeof(longer), &ue), KC_OK);
    assert_int_equal(strlen(ue.uniq), sizeof(ue.uniq) - 1);
    assert_int_equal(kc_hid_uevent_parse(NULL, 0, &ue), KC_OK);
    assert_int_equal(kc_hid_uevent_parse(NULL, 1, &ue), KC_ERR_INVALID_ARG);
    assert_int_equal(kc_hid_uevent_parse("", 0, NULL), KC_ERR_INVALID_ARG);
    assert_string_equal(kc_hid_bus_name(3), "usb");
    assert_string_equal(kc_hid_bus_name(5), "bluetooth");
    assert_string_equal(kc_hid_bus_name(0x77), "other");
}

/* ---- a realistic tree: USB composite card, uhid pairs ------------------ */

static char devdir[160];

static void mkdirs(const char *path)
{
    char cmd[1200];

    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static void write_str(const char *dir, const char *name, const char *text)
{
    char path[1200];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    write_file(path, text, strlen(text));
}

/* hidrawN whose device symlink points at devpath (below root/devices),
 * with a node file of the given mode in devdir (mode 0: no node) */
static void add_linked(const char *sysname, const char *devpath, const uint8_t *desc, size_t len,
                       const char *uevent, mode_t mode)
{
    char hid[512], link[1024], node[1024];

    snprintf(hid, sizeof(hid), "%s/devices/%s", root, devpath);
    mkdirs(hid);
    snprintf(link, sizeof(link), "%s/report_descriptor", hid);
    write_file(link, desc, len);
    write_str(hid, "uevent", uevent);
    snprintf(link, sizeof(link), "%s/%s", sysfs, sysname);
    mkdirs(link);
    snprintf(link, sizeof(link), "%s/%s/device", sysfs, sysname);
    assert_int_equal(symlink(hid, link), 0);
    if (mode != 0) {
        snprintf(node, sizeof(node), "%s/%s", devdir, sysname);
        write_file(node, "", 0);
        assert_int_equal(chmod(node, mode), 0);
    }
}

static const uint8_t vendor_desc[] = {0x06, 0x00, 0xff, 0x09, 0x01, 0xa1, 0x01, 0x75, 0x08,
                                      0x95, 0x20, 0x81, 0x02, 0x95, 0x20, 0x91, 0x02, 0xc0};

static void build_tree(void)
{
    char dir[512];

    snprintf(devdir, sizeof(devdir), "%s/dev", root);
    mkdirs(devdir);
    mkdirs(sysfs);
    setenv("KCARD_DEV_DIR", devdir, 1);
    assert_int_equal(chmod(root, 0755), 0);
    /* a USB card: FIDO on interface 0, vendor on interface 1 */
    snprintf(dir, sizeof(dir), "%s/devices/pci0000:00/usb1/1-2/1-2:1.0", root);
    mkdirs(dir);
    write_str(dir, "bInterfaceNumber", "00\n");
    snprintf(dir, sizeof(dir), "%s/devices/pci0000:00/usb1/1-2/1-2:1.1", root);
    mkdirs(dir);
    write_str(dir, "bInterfaceNumber", "01\n");
    add_linked("hidraw0", "pci0000:00/usb1/1-2/1-2:1.0/0003:1050:0407.0001", fido_desc,
               sizeof(fido_desc),
               "HID_ID=0003:00001050:00000407\nHID_NAME=Card A\nHID_UNIQ=SER-A\n"
               "HID_PHYS=usb-0000:00:14.0-2/input0\n",
               0600);
    add_linked("hidraw1", "pci0000:00/usb1/1-2/1-2:1.1/0003:1050:0407.0002", vendor_desc,
               sizeof(vendor_desc),
               "HID_ID=0003:00001050:00000407\nHID_NAME=Card A\nHID_UNIQ=SER-A\n"
               "HID_PHYS=usb-0000:00:14.0-2/input1\n",
               0600);
    /* another USB card of the same model */
    snprintf(dir, sizeof(dir), "%s/devices/pci0000:00/usb1/1-3/1-3:1.0", root);
    mkdirs(dir);
    write_str(dir, "bInterfaceNumber", "00\n");
    add_linked("hidraw2", "pci0000:00/usb1/1-3/1-3:1.0/0003:1050:0407.0003", fido_desc,
               sizeof(fido_desc),
               "HID_ID=0003:00001050:00000407\nHID_NAME=Card B\nHID_UNIQ=SER-B\n"
               "HID_PHYS=usb-0000:00:14.0-3/input0\n",
               0666);
    /* uhid: all under virtual/misc/uhid; the pair shares id, serial, phys prefix */
    add_linked("hidraw3", "virtual/misc/uhid/0003:1209:000A.0004", fido_desc, sizeof(fido_desc),
               "HID_ID=0003:00001209:0000000A\nHID_NAME=vcard\nHID_UNIQ=V-1\n"
               "HID_PHYS=kcard-vcard/input0\n",
               0666);
    add_linked("hidraw4", "virtual/misc/uhid/0003:1209:000A.0005", vendor_desc, sizeof(vendor_desc),
               "HID_ID=0003:00001209:0000000A\nHID_NAME=vcard\nHID_UNIQ=V-1\n"
               "HID_PHYS=kcard-vcard/input1\n",
               0666);
    add_linked("hidraw10", "virtual/misc/uhid/0003:1209:000A.0006", fido_desc, sizeof(fido_desc),
               "HID_ID=0003:00001209:0000000A\nHID_NAME=vcard\nHID_UNIQ=V-2\n"
               "HID_PHYS=kcard-vcard/input0\n",
               0);
}

static const struct kc_hid_node *by_name(const struct kc_hid_node *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].sysname, name) == 0)
            return &v[i];
    return NULL;
}

static void test_enum_no_sysfs(void **state)
{
    (void)state;
    struct kc_hid_node *v = calloc(4, sizeof(*v));
    size_t n = 99;

    assert_non_null(v);
    assert_int_equal(kc_hid_enum(KC_ENUM_SYSFS, KC_ENUM_ALL | KC_ENUM_ANNOUNCED, v, 4, &n), KC_OK);
    assert_int_equal(n, 0);
    assert_int_equal(kc_hid_enum(KC_ENUM_SYSFS, 0, NULL, 0, &n), KC_OK);
    assert_int_equal(n, 0);
    assert_int_equal(kc_hid_enum(KC_ENUM_SYSFS, 0, NULL, 1, &n), KC_ERR_INVALID_ARG);
    assert_int_equal(kc_hid_enum(KC_ENUM_SYSFS, 0, v, 4, NULL), KC_ERR_INVALID_ARG);
    free(v);
}

static void test_enum_composite_and_siblings(void **state)
{
    (void)state;
    struct kc_hid_node *v = calloc(16, sizeof(*v));
    const struct kc_hid_node *a;
    size_t n;

    assert_non_null(v);
    build_tree();
    assert_int_equal(kc_hid_enum(KC_ENUM_SYSFS, KC_ENUM_ALL, v, 16, &n), KC_OK);
    assert_int_equal(n, 6);
    assert_string_equal(v[5].sysname, "hidraw10"); /* natural order */

    a = by_name(v, n, "hidraw0");
    assert_non_null(a);
    assert_true(a->fido);
    assert_true(a->have_desc);
    assert_int_equal(a->usage_page, 0xf1d0);
    assert_int_equal(a->usage, 1);
    assert_int_equal(a->in_report_len, 64);
    assert_int_equal(a->out_report_len, 64);
    assert_int_equal(a->bus, 3);
    assert_int_equal(a->vid, 0x1050);
    assert_int_equal(a->pid, 0x0407);
    assert_string_equal(a->name, "Card A");
    assert_string_equal(a->uniq, "SER-A");
    assert_int_equal(a->interface, 0);
    assert_false(a->is_virtual);
    assert_non_null(strstr(a->device, "/devices/pci0000:00/usb1/1-2"));
    assert_null(strstr(a->device, "1-2:1.0"));
    assert_int_equal(a->n_siblings, 1);
    assert_non_null(strstr(a->siblings[0], "/dev/hidraw1"));
    assert_int_equal(a->access, KC_ACCESS_OK); /* root */
    assert_int_equal(a->mode, 0600);

    a = by_name(v, n, "hidraw1");
    assert_false(a->fido);
    assert_int_equal(a->usage_page, 0xff00);
    assert_int_equal(a->in_report_len, 32);
    assert_int_equal(a->interface, 1);
    assert_int_equal(a->n_siblings, 1);
    assert_non_null(strstr(a->siblings[0], "/dev/hidraw0"));

    a = by_name(v, n, "hidraw2"); /* same model, other card */
    assert_int_equal(a->n_siblings, 0);

    a = by_name(v, n, "hidraw3");
    assert_true(a->is_virtual);
    assert_non_null(strstr(a->device, "/devices/virtual/misc/uhid"));
    assert_int_equal(a->n_siblings, 1);
    assert_non_null(strstr(a->siblings[0], "/dev/hidraw4"));
    a = by_name(v, n, "hidraw10"); /* same parent and ids, other serial */
    assert_int_equal(a->n_siblings, 0);
    assert_int_equal(a->access, KC_ACCESS_MISSING);
    assert_non_null(strstr(a->fix, "udev has not made it"));

    /* FIDO only; siblings still name the hidden vendor nodes */
    assert_int_equal(kc_hid_enum(KC_ENUM_SYSFS, 0, v, 16, &n), KC_OK);
    assert_int_equal(n, 4);
    a = by_name(v, n, "hidraw0");
    assert_non_null(a);
    assert_int_equal(a->n_siblings, 1);
    assert_null(by_name(v, n, "hidraw1"));
    /* the count goes beyond cap */
    assert_int_equal(kc_hid_enum(KC_ENUM_SYSFS, KC_ENUM_ALL | KC_ENUM_NO_ACCESS, v, 2, &n), KC_OK);
    assert_int_equal(n, 6);
    assert_int_equal(v[0].access, KC_ACCESS_UNKNOWN);
    free(v);
}

/* Tests run as root: the open test must see what an ordinary user sees. */
static void test_enum_permission_as_nobody(void **state)
{
    (void)state;
    pid_t pid;
    int status;

    build_tree();
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct kc_hid_node *v = calloc(16, sizeof(*v));
        const struct kc_hid_node *a;
        size_t n;
        if (v == NULL)
            _exit(9);
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(10);
        if (kc_hid_enum(KC_ENUM_SYSFS, KC_ENUM_ALL, v, 16, &n) != KC_OK || n != 6)
            _exit(11);
        a = by_name(v, n, "hidraw0"); /* FIDO, 0600 root */
        if (a == NULL || a->access != KC_ACCESS_DENIED || a->access_errno != EACCES ||
            !a->have_stat || a->mode != 0600 || strcmp(a->owner, "root") != 0)
            _exit(12);
        if (strstr(a->fix, "fixtures/udev/70-kcard-fido.rules") == NULL ||
            strstr(a->fix, "uaccess") == NULL || strstr(a->fix, "plugdev") == NULL)
            _exit(13);
        a = by_name(v, n, "hidraw1"); /* vendor, 0600 root */
        if (a == NULL || a->access != KC_ACCESS_DENIED ||
            strstr(a->fix, "not a FIDO interface") == NULL)
            _exit(14);
        a = by_name(v, n, "hidraw2"); /* 0666 */
        if (a == NULL || a->access != KC_ACCESS_OK || a->fix[0] != '\0')
            _exit(15);
        free(v);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- identity, find, reopen -------------------------------------------- */

static void test_card_id_of_hidraw(void **state)
{
    (void)state;
    struct kc_card_id id;
    char p[512], s[128];
    int fd;

    build_tree();
    assert_int_equal(kc_card_id_of_hidraw("/elsewhere/hidraw2", -1, &id), KC_OK);
    assert_string_equal(id.kind, "hidraw");
    assert_int_equal(id.bus, 3);
    assert_int_equal(id.vid, 0x1050);
    assert_string_equal(id.serial, "SER-B");
    kc_card_id_str(&id, s, sizeof(s));
    assert_string_equal(s, "0003:1050:0407 serial SER-B");
    assert_int_equal(kc_card_id_of_hidraw("/dev/hidraw99", -1, &id), KC_ERR_NO_DEVICE);
    assert_int_equal(kc_card_id_of_hidraw("/dev/", -1, &id), KC_ERR_NO_DEVICE);
    assert_int_equal(kc_card_id_of_hidraw("..", -1, &id), KC_ERR_NO_DEVICE);
    /* with a descriptor: sysfs's dev must name the same device number */
    fd = open("/dev/null", O_RDWR);
    assert_true(fd >= 0);
    snprintf(p, sizeof(p), "%s/hidraw2", sysfs);
    write_str(p, "dev", "247:3\n");
    assert_int_equal(kc_card_id_of_hidraw("/dev/hidraw2", fd, &id), KC_ERR_NO_DEVICE);
    write_str(p, "dev", "1:3\n"); /* /dev/null is 1:3 */
    assert_int_equal(kc_card_id_of_hidraw("/dev/hidraw2", fd, &id), KC_OK);
    close(fd);
}

static void move_card(const char *from, const char *to)
{
    char a[512], b[512];

    snprintf(a, sizeof(a), "%s/%s", sysfs, from);
    snprintf(b, sizeof(b), "%s/%s", sysfs, to);
    assert_int_equal(rename(a, b), 0);
    /* a new device node, not the old inode (which the old descriptor holds) */
    snprintf(a, sizeof(a), "%s/%s", devdir, from);
    snprintf(b, sizeof(b), "%s/%s", devdir, to);
    assert_int_equal(unlink(a), 0);
    write_file(b, "", 0);
}

static void test_reopen_follows_card(void **state)
{
    (void)state;
    struct kc_transport *t = NULL, *m;
    struct kc_card_id id;
    char err[512], want[512];
    uint8_t report[64], back[128];
    int fd;

    build_tree();
    assert_int_equal(kc_transport_open("auto", &t, err, sizeof(err)), KC_OK);
    snprintf(want, sizeof(want), "hidraw:%s/hidraw0", devdir);
    assert_string_equal(t->uri, want);
    assert_int_equal(kc_hidraw_identity(t, &id), KC_OK);
    assert_string_equal(id.serial, "SER-A");

    /* card A re-enumerates as hidraw7; card B stays where it is */
    move_card("hidraw0", "hidraw7");
    assert_int_equal(kc_discover_find(&id, want, sizeof(want), err, sizeof(err)), KC_OK);
    assert_non_null(strstr(want, "/hidraw7"));
    assert_int_equal(kc_transport_reopen(t), KC_OK);
    assert_non_null(strstr(t->uri, "/hidraw7"));
    assert_non_null(strstr(t->last_error, "re-opened card 0003:1050:0407 serial SER-A"));
    memset(report, 0x5a, sizeof(report));
    assert_int_equal(t->ops->write(t, report, sizeof(report)), KC_OK);
    snprintf(want, sizeof(want), "%s/hidraw7", devdir);
    fd = open(want, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, back, sizeof(back)), 65);
    assert_memory_equal(back + 1, report, 64);
    close(fd);

    /* unplugged for good: t stays as it was, the sentence says why */
    move_card("hidraw7", ".gone7");
    assert_int_equal(kc_transport_reopen(t), KC_ERR_NO_DEVICE);
    assert_non_null(strstr(t->uri, "/hidraw7"));
    assert_non_null(strstr(t->last_error, "serial SER-A is not back"));
    uint64_t t0 = kc_now_us();
    assert_int_equal(kc_transport_reopen_wait(t, 200), KC_ERR_NO_DEVICE);
    assert_true(kc_now_us() - t0 >= 200000);
    kc_transport_close(t);

    /* a transport with no remembered identity */
    m = kc_mem_transport_new();
    assert_non_null(m);
    assert_int_equal(kc_transport_reopen(m), KC_ERR_UNSUPPORTED);
    assert_int_equal(kc_hidraw_identity(m, &id), KC_ERR_INVALID_ARG);
    kc_transport_close(m);
    assert_int_equal(kc_transport_reopen(NULL), KC_ERR_INVALID_ARG);
}

static void test_find_announced(void **state)
{
    (void)state;
    struct kc_card_id id;
    char uri[KC_URI_MAX], err[512];

    mkdirs(anndir);
    write_str(anndir, "vcard-7.uri", "udp:127.0.0.1:9001\n");
    memset(&id, 0, sizeof(id));
    snprintf(id.kind, sizeof(id.kind), "announce");
    snprintf(id.announce, sizeof(id.announce), "vcard-7.uri");
    assert_int_equal(kc_discover_find(&id, uri, sizeof(uri), err, sizeof(err)), KC_OK);
    assert_string_equal(uri, "udp:127.0.0.1:9001");
    write_str(anndir, "vcard-7.uri", "udp:127.0.0.1:9002\n"); /* re-plugged elsewhere */
    assert_int_equal(kc_discover_find(&id, uri, sizeof(uri), err, sizeof(err)), KC_OK);
    assert_string_equal(uri, "udp:127.0.0.1:9002");
    snprintf(id.announce, sizeof(id.announce), "vcard-8.uri");
    assert_int_equal(kc_discover_find(&id, uri, sizeof(uri), err, sizeof(err)), KC_ERR_NO_DEVICE);
    assert_non_null(strstr(err, "announced vcard-8.uri"));
    snprintf(id.kind, sizeof(id.kind), "bogus");
    assert_int_equal(kc_discover_find(&id, uri, sizeof(uri), err, sizeof(err)), KC_ERR_INVALID_ARG);
}

/* A pty stands in for a node whose device went away: the master closing is
 * what a hidraw descriptor sees on unplug (POLLHUP, then EIO). */
static void test_stale_descriptor_is_unplugged(void **state)
{
    (void)state;
    struct kc_transport *t;
    char err[512], slave[128];
    uint8_t buf[64];
    int m = posix_openpt(O_RDWR | O_NOCTTY);

    assert_true(m >= 0);
    assert_int_equal(grantpt(m), 0);
    assert_int_equal(unlockpt(m), 0);
    assert_int_equal(ptsname_r(m, slave, sizeof(slave)), 0);
    assert_int_equal(kc_hidraw_open(slave, &t, err, sizeof(err)), KC_OK);
    close(m);
    assert_int_equal(t->ops->read(t, buf, sizeof(buf), 1000), KC_ERR_UNPLUGGED);
    assert_non_null(strstr(t->last_error, "card re-enumerated or unplugged"));
    memset(buf, 0, sizeof(buf));
    assert_int_equal(t->ops->write(t, buf, sizeof(buf)), KC_ERR_UNPLUGGED);
    assert_int_equal(t->last_errno, EIO);
    assert_non_null(strstr(t->last_error, "card re-enumerated or unplugged"));
    kc_transport_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_anywhere),
        cmocka_unit_test(test_announced_card),
        cmocka_unit_test(test_fido_hidraw_first),
        cmocka_unit_test(test_uri_dispatch_errors),
        cmocka_unit_test(test_hidraw_on_plain_file),
        cmocka_unit_test(test_hidraw_permission_message),
        cmocka_unit_test_setup(test_uevent_parse, fresh),
        cmocka_unit_test_setup(test_enum_no_sysfs, fresh),
        cmocka_unit_test_setup(test_enum_composite_and_siblings, fresh),
        cmocka_unit_test_setup(test_enum_permission_as_nobody, fresh),
        cmocka_unit_test_setup(test_card_id_of_hidraw, fresh),
        cmocka_unit_test_setup(test_reopen_follows_card, fresh),
        cmocka_unit_test_setup(test_find_announced, fresh),
        cmocka_unit_test_setup(test_stale_descriptor_is_unplugged, fresh),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
