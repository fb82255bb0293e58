/* hidraw transport (Linux): exclusive open, report sizes from the report
 * descriptor, a report-id byte of 0 before every output report, and reads
 * bounded by poll(). A vanished node is told apart from other I/O errors. */
#include "ctaphid/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/hidraw.h>

#include "ctaphid/hid_desc.h"
#include "ctaphid/status.h"
#include "ctaphid/sysfs.h"
#include "ctaphid/trace.h"
#include "ctaphid/transport_int.h"

#define HIDRAW_MAX_REPORT 1024

struct hidraw_priv {
    int fd;
    char path[256];
    bool have_id; /* the card's HID id and serial, for kc_transport_reopen */
    struct kc_card_id id;
};

static struct hidraw_priv *hidraw_of(const struct kc_transport *t)
{
    if (t == NULL || t->kind == NULL || strcmp(t->kind, "hidraw") != 0)
        return NULL;
    return t->priv;
}

static bool is_unplug_errno(int err)
{
    return err == EIO || err == ENODEV || err == ENXIO || err == EPIPE;
}

static int fail_errno(struct kc_transport *t, int err, const char *what)
{
    struct hidraw_priv *p = t->priv;

    t->last_errno = err;
    if (is_unplug_errno(err)) {
        snprintf(t->last_error, sizeof(t->last_error),
                 "%.160s: %s failed (%s): card re-enumerated or unplugged", p->path, what,
                 strerror(err));
        return KC_ERR_UNPLUGGED;
    }
    snprintf(t->last_error, sizeof(t->last_error), "%.160s: %s failed: %s", p->path, what,
             strerror(err));
    return KC_ERR_IO;
}

static int hidraw_write(struct kc_transport *t, const uint8_t *report, size_t len)
{
    struct hidraw_priv *p = hidraw_of(t);
    uint8_t buf[HIDRAW_MAX_REPORT + 1];
    ssize_t n;

    if (p == NULL || report == NULL || len == 0 || len > HIDRAW_MAX_REPORT)
        return KC_ERR_INVALID_ARG;
    buf[0] = 0; /* report id: FIDO interfaces use none, which hidraw spells 0 */
    memcpy(buf + 1, report, len);
    do
        n = write(p->fd, buf, len + 1);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return fail_errno(t, errno, "write");
    if ((size_t)n != len + 1) {
        t->last_errno = 0;
        snprintf(t->last_error, sizeof(t->last_error), "%.160s: short write (%zd of %zu)", p->path,
                 n, len + 1);
        return KC_ERR_IO;
    }
    return KC_OK;
}

static int hidraw_read(struct kc_transport *t, uint8_t *buf, size_t cap, int timeout_ms)
{
    struct hidraw_priv *p = hidraw_of(t);
    uint64_t deadline;

    if (p == NULL || buf == NULL || cap == 0)
        return KC_ERR_INVALID_ARG;
    deadline = kc_read_deadline(timeout_ms);
    for (;;) {
        short revents = 0;
        ssize_t n;
        int rc = kc_fd_wait_readable(p->fd, timeout_ms, deadline, &revents);

        if (rc == 0)
            return 0;
        if (rc < 0)
            return fail_errno(t, errno, "poll");
        if (revents & (POLLERR | POLLHUP | POLLNVAL)) {
            t->last_errno = ENODEV;
            snprintf(t->last_error, sizeof(t->last_error),
                     "%.160s: poll reported %s: card re-enumerated or unplugged", p->path,
                     revents & POLLHUP ? "hang-up" : "an error");
            return KC_ERR_UNPLUGGED;
        }
        n = read(p->fd, buf, cap);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return fail_errno(t, errno, "read");
        }
        if (n == 0) {
            t->last_errno = 0;
            snprintf(t->last_error, sizeof(t->last_error),
                     "%.160s: end of file: card re-enumerated or unplugged", p->path);
            return KC_ERR_UNPLUGGED;
        }
        return (int)n;
    }
}

static void hidraw_close(struct kc_transport *t)
{
    struct hidraw_priv *p = hidraw_of(t);

    if (p != NULL) {
        if (p->fd >= 0)
            close(p->fd); /* also drops the flock */
        free(p);
    }
    free(t);
}

static const struct kc_transport_ops hidraw_ops = {
    .write = hidraw_write,
    .read = hidraw_read,
    .close = hidraw_close,
};

/* "owner root:plugdev mode 0660", best effort. */
static void describe_node(const char *path, char *out, size_t len)
{
    struct stat st;
    struct passwd *pw;
    struct group *gr;
    char user[64], group[64];

    if (stat(path, &st) != 0) {
        snprintf(out, len, "cannot stat it: %s", strerror(errno));
        return;
    }
    pw = getpwuid(st.st_uid);
    gr = getgrgid(st.st_gid);
    if (pw != NULL)
        snprintf(user, sizeof(user), "%.60s", pw->pw_name);
    else
        snprintf(user, sizeof(user), "%u", (unsigned)st.st_uid);
    if (gr != NULL)
        snprintf(group, sizeof(group), "%.60s", gr->gr_name);
    else
        snprintf(group, sizeof(group), "%u", (unsigned)st.st_gid);
    snprintf(out, len, "owner %s:%s mode %04o", user, group, (unsigned)(st.st_mode & 07777));
}

static void read_report_sizes(struct kc_transport *t, int fd)
{
    struct hidraw_report_descriptor rd;
    struct kc_hid_desc desc;
    int size = 0;

    t->in_report_len = KC_HID_REPORT_LEN;
    t->out_report_len = KC_HID_REPORT_LEN;
    memset(&rd, 0, sizeof(rd));
    if (ioctl(fd, HIDIOCGRDESCSIZE, &size) != 0 || size <= 0 || size > HID_MAX_DESCRIPTOR_SIZE)
        return;
    rd.size = (uint32_t)size;
    if (ioctl(fd, HIDIOCGRDESC, &rd) != 0)
        return;
    if (kc_hid_desc_parse(rd.value, rd.size, &desc) != KC_OK)
        return;
    if (desc.in_report_len <= HIDRAW_MAX_REPORT)
        t->in_report_len = desc.in_report_len;
    if (desc.out_report_len <= HIDRAW_MAX_REPORT)
        t->out_report_len = desc.out_report_len;
}

int kc_hidraw_open(const char *path, struct kc_transport **out, char *errbuf, size_t errlen)
{
    struct kc_transport *t;
    struct hidraw_priv *p;
    char who[160];
    int fd, err;

    if (out == NULL || path == NULL || path[0] == '\0')
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if (strlen(path) >= sizeof(p->path)) {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "hidraw path too long");
        return KC_ERR_INVALID_ARG;
    }
    fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        err = errno;
        if (errbuf != NULL && errlen > 0) {
            if (err == EACCES || err == EPERM) {
                describe_node(path, who, sizeof(who));
                snprintf(errbuf, errlen,
                         "%s: permission denied (%s). Fix: install the udev rule "
                         "fixtures/udev/70-kcard-fido.rules, which grants uaccess to FIDO "
                         "devices (TAG+=\"uaccess\") and group plugdev, or add your user to the "
                         "group that owns the node, then re-plug the card or log in again",
                         path, who);
            } else if (err == ENOENT || err == ENODEV || err == ENXIO) {
                snprintf(errbuf, errlen, "%s: no such device (%s); `rawctap list` shows the cards",
                         path, strerror(err));
            } else {
                snprintf(errbuf, errlen, "%s: open failed: %s", path, strerror(err));
            }
        }
        errno = err;
        if (err == EACCES || err == EPERM)
            return KC_ERR_PERMISSION;
        if (err == ENOENT || err == ENODEV || err == ENXIO)
            return KC_ERR_NO_DEVICE;
        return KC_ERR_IO;
    }
    /* One owner at a time: two tools interleaving reports corrupt both. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        err = errno;
        if (errbuf != NULL && errlen > 0) {
            if (err == EWOULDBLOCK)
                snprintf(errbuf, errlen,
                         "%s: in use by another process (it holds an exclusive lock); "
                         "close the other tool and retry",
                         path);
            else
                snprintf(errbuf, errlen, "%s: flock failed: %s", path, strerror(err));
        }
        close(fd);
        errno = err;
        return KC_ERR_IO;
    }
    if ((t = kc_transport_alloc(&hidraw_ops, "hidraw", sizeof(*p))) == NULL) {
        close(fd);
        return KC_ERR_NOMEM;
    }
    p = t->priv;
    p->fd = fd;
    snprintf(p->path, sizeof(p->path), "%s", path);
    snprintf(t->uri, sizeof(t->uri), "hidraw:%s", path);
    read_report_sizes(t, fd);
    p->have_id = kc_card_id_of_hidraw(path, fd, &p->id) == KC_OK;
    *out = t;
    return KC_OK;
}

int kc_hidraw_identity(const struct kc_transport *t, struct kc_card_id *id)
{
    const struct hidraw_priv *p = hidraw_of(t);

    if (p == NULL || id == NULL)
        return KC_ERR_INVALID_ARG;
    if (!p->have_id)
        return KC_ERR_NO_DEVICE;
    *id = p->id;
    return KC_OK;
}
