/* Device discovery over a captured-style sysfs tree and announce directory,
 * URI dispatch, and the hidraw backend's open errors on plain files. */
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
#include <unistd.h>

#include <cmocka.h>

#include "ctaphid/discover.h"
#include "ctaphid/status.h"
#include "ctaphid/transport.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_anywhere),
        cmocka_unit_test(test_announced_card),
        cmocka_unit_test(test_fido_hidraw_first),
        cmocka_unit_test(test_uri_dispatch_errors),
        cmocka_unit_test(test_hidraw_on_plain_file),
        cmocka_unit_test(test_hidraw_permission_message),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
