/* hidapi transport: a device by hidapi path or by VID:PID (hex). hidapi
 * wants the report-id byte on write, as hidraw does. */
#include "ctaphid/transport.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include <hidapi/hidapi.h>

#include "ctaphid/status.h"
#include "ctaphid/transport_int.h"
#include "util/hex.h"

#define HIDAPI_MAX_REPORT 1024

struct hidapi_priv {
    hid_device *dev;
    char spec[128];
};

static struct hidapi_priv *hidapi_of(const struct kc_transport *t)
{
    if (t == NULL || t->kind == NULL || strcmp(t->kind, "hidapi") != 0)
        return NULL;
    return t->priv;
}

static void note_error(struct kc_transport *t, const char *what)
{
    struct hidapi_priv *p = t->priv;
    const wchar_t *msg = hid_error(p->dev);

    t->last_errno = errno;
    snprintf(t->last_error, sizeof(t->last_error), "hidapi %.100s: %s failed: %.100ls", p->spec,
             what, msg != NULL ? msg : L"unknown error");
}

static int hidapi_write(struct kc_transport *t, const uint8_t *report, size_t len)
{
    struct hidapi_priv *p = hidapi_of(t);
    uint8_t buf[HIDAPI_MAX_REPORT + 1];
    int n;

    if (p == NULL || report == NULL || len == 0 || len > HIDAPI_MAX_REPORT)
        return KC_ERR_INVALID_ARG;
    buf[0] = 0;
    memcpy(buf + 1, report, len);
    n = hid_write(p->dev, buf, len + 1);
    if (n < 0) {
        note_error(t, "hid_write");
        return KC_ERR_IO;
    }
    if ((size_t)n != len + 1) {
        t->last_errno = 0;
        snprintf(t->last_error, sizeof(t->last_error), "hidapi %.100s: short write (%d of %zu)",
                 p->spec, n, len + 1);
        return KC_ERR_IO;
    }
    return KC_OK;
}

static int hidapi_read(struct kc_transport *t, uint8_t *buf, size_t cap, int timeout_ms)
{
    struct hidapi_priv *p = hidapi_of(t);
    int n;

    if (p == NULL || buf == NULL || cap == 0)
        return KC_ERR_INVALID_ARG;
    n = hid_read_timeout(p->dev, buf, cap, timeout_ms < 0 ? -1 : timeout_ms);
    if (n < 0) {
        note_error(t, "hid_read_timeout");
        /* hidapi does not tell an unplug from other errors; the device
         * node going away is by far the common cause. */
        return KC_ERR_UNPLUGGED;
    }
    return n;
}

static void hidapi_close(struct kc_transport *t)
{
    struct hidapi_priv *p = hidapi_of(t);

    if (p != NULL) {
        if (p->dev != NULL)
            hid_close(p->dev);
        free(p);
    }
    free(t);
}

static const struct kc_transport_ops hidapi_ops = {
    .write = hidapi_write,
    .read = hidapi_read,
    .close = hidapi_close,
};

static bool parse_hex16(const char *s, size_t n, unsigned short *out)
{
    uint32_t v;

    if (!kcu_hex_field(s, n, 4, &v))
        return false;
    *out = (unsigned short)v;
    return true;
}

/* "1050:0407" (optionally 0x-prefixed) is a VID:PID; anything else a path. */
static bool parse_vid_pid(const char *spec, unsigned short *vid, unsigned short *pid)
{
    const char *colon = strchr(spec, ':');

    if (colon == NULL || strchr(colon + 1, ':') != NULL)
        return false;
    if (strncmp(spec, "0x", 2) == 0)
        spec += 2;
    if (strncmp(colon + 1, "0x", 2) == 0)
        colon += 2;
    return parse_hex16(spec, (size_t)(strchr(spec, ':') - spec), vid) &&
           parse_hex16(colon + 1, strlen(colon + 1), pid);
}

int kc_hidapi_open(const char *spec, struct kc_transport **out, char *errbuf, size_t errlen)
{
    struct kc_transport *t;
    struct hidapi_priv *p;
    unsigned short vid, pid;
    hid_device *dev;

    if (out == NULL || spec == NULL || spec[0] == '\0')
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if (hid_init() != 0) {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "hidapi: hid_init failed");
        return KC_ERR_IO;
    }
    errno = 0;
    if (parse_vid_pid(spec, &vid, &pid))
        dev = hid_open(vid, pid, NULL);
    else
        dev = hid_open_path(spec);
    if (dev == NULL) {
        int err = errno;
        if (errbuf != NULL && errlen > 0) {
            if (err == EACCES || err == EPERM)
                snprintf(errbuf, errlen,
                         "hidapi:%s: permission denied. Fix: a udev rule granting uaccess to "
                         "FIDO devices (TAG+=\"uaccess\") or add your user to the group that "
                         "owns the hidraw node",
                         spec);
            else
                snprintf(errbuf, errlen, "hidapi:%s: no such device or cannot open it%s%s", spec,
                         err != 0 ? ": " : "", err != 0 ? strerror(err) : "");
        }
        return err == EACCES || err == EPERM ? KC_ERR_PERMISSION : KC_ERR_NO_DEVICE;
    }
    if ((t = kc_transport_alloc(&hidapi_ops, "hidapi", sizeof(*p))) == NULL) {
        hid_close(dev);
        return KC_ERR_NOMEM;
    }
    p = t->priv;
    p->dev = dev;
    snprintf(p->spec, sizeof(p->spec), "%.127s", spec);
    t->in_report_len = KC_HID_REPORT_LEN;
    t->out_report_len = KC_HID_REPORT_LEN;
    snprintf(t->uri, sizeof(t->uri), "hidapi:%.500s", spec);
    *out = t;
    return KC_OK;
}
