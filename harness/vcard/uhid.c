/*
 * UHID backend of the virtual card: creates HID devices through
 * /dev/uhid and moves 64-byte reports between them and the caller.
 */
#include "harness/vcard/uhid.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/uhid.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/err.h"

#ifndef BUS_USB
#define BUS_USB 0x03
#endif

/*
 * The FIDO interface, as CTAP 2.1 section 11.2.8.1 describes it: one
 * application collection on the FIDO Alliance usage page, 64-byte input
 * and output reports without report ids.
 */
static const unsigned char fido_descriptor[] = {
    0x06, 0xd0, 0xf1, /* Usage Page (FIDO Alliance, 0xF1D0) */
    0x09, 0x01,       /* Usage (CTAPHID, 0x01) */
    0xa1, 0x01,       /* Collection (Application) */
    0x09, 0x20,       /*   Usage (Input Report Data, 0x20) */
    0x15, 0x00,       /*   Logical Minimum (0) */
    0x26, 0xff, 0x00, /*   Logical Maximum (255) */
    0x75, 0x08,       /*   Report Size (8 bits) */
    0x95, 0x40,       /*   Report Count (64) */
    0x81, 0x02,       /*   Input (Data, Variable, Absolute) */
    0x09, 0x21,       /*   Usage (Output Report Data, 0x21) */
    0x15, 0x00,       /*   Logical Minimum (0) */
    0x26, 0xff, 0x00, /*   Logical Maximum (255) */
    0x75, 0x08,       /*   Report Size (8 bits) */
    0x95, 0x40,       /*   Report Count (64) */
    0x91, 0x02,       /*   Output (Data, Variable, Absolute) */
    0xc0,             /* End Collection */
};

/*
 * The vendor interface beside it: same report shape, but a vendor-defined
 * usage page, so a FIDO client must not pick it.
 */
static const unsigned char vendor_descriptor[] = {
    0x06, 0x00, 0xff, /* Usage Page (Vendor Defined, 0xFF00) */
    0x09, 0x01,       /* Usage (Vendor Usage 1) */
    0xa1, 0x01,       /* Collection (Application) */
    0x09, 0x02,       /*   Usage (Vendor Usage 2) */
    0x15, 0x00,       /*   Logical Minimum (0) */
    0x26, 0xff, 0x00, /*   Logical Maximum (255) */
    0x75, 0x08,       /*   Report Size (8 bits) */
    0x95, 0x40,       /*   Report Count (64) */
    0x81, 0x02,       /*   Input (Data, Variable, Absolute) */
    0x09, 0x03,       /*   Usage (Vendor Usage 3) */
    0x15, 0x00,       /*   Logical Minimum (0) */
    0x26, 0xff, 0x00, /*   Logical Maximum (255) */
    0x75, 0x08,       /*   Report Size (8 bits) */
    0x95, 0x40,       /*   Report Count (64) */
    0x91, 0x02,       /*   Output (Data, Variable, Absolute) */
    0xc0,             /* End Collection */
};

/* One UHID device: its descriptor and what the kernel told us of it. */
struct uhid_dev {
    int fd;
    int started;
    int opened;
};

struct vc_uhid {
    struct uhid_dev fido;
    struct uhid_dev vendor; /* fd -1 without a vendor interface */
    unsigned long bad_outputs;
    unsigned long refused;
};

const unsigned char *vc_uhid_fido_descriptor(size_t *len)
{
    *len = sizeof(fido_descriptor);
    return fido_descriptor;
}

const unsigned char *vc_uhid_vendor_descriptor(size_t *len)
{
    *len = sizeof(vendor_descriptor);
    return vendor_descriptor;
}

int vc_uhid_parse_event(const void *buf, size_t len, struct vc_uhid_event *ev)
{
    struct uhid_event e;
    size_t need;

    memset(ev, 0, sizeof(*ev));
    if (buf == NULL || len < sizeof(e.type))
        return -1;
    /* the kernel sends whole events; a short one is zero-filled so that
     * every field read below is defined, and its own length is checked */
    memset(&e, 0, sizeof(e));
    memcpy(&e, buf, len < sizeof(e) ? len : sizeof(e));

    switch (e.type) {
    case UHID_START:
        ev->kind = VC_UHID_EV_START;
        return 0;
    case UHID_STOP:
        ev->kind = VC_UHID_EV_STOP;
        return 0;
    case UHID_OPEN:
        ev->kind = VC_UHID_EV_OPEN;
        return 0;
    case UHID_CLOSE:
        ev->kind = VC_UHID_EV_CLOSE;
        return 0;
    case UHID_GET_REPORT:
        need = sizeof(e.type) + sizeof(e.u.get_report.id);
        if (len < need)
            return -1;
        ev->kind = VC_UHID_EV_GET_REPORT;
        ev->request_id = e.u.get_report.id;
        return 0;
    case UHID_SET_REPORT:
        need = sizeof(e.type) + sizeof(e.u.set_report.id);
        if (len < need)
            return -1;
        ev->kind = VC_UHID_EV_SET_REPORT;
        ev->request_id = e.u.set_report.id;
        return 0;
    case UHID_OUTPUT:
        need = sizeof(e.type) + sizeof(e.u.output);
        ev->kind = VC_UHID_EV_BAD_OUTPUT;
        /* hidraw hands over the report-id byte and does not check the
         * length against the descriptor: accept exactly id 0 + 64 bytes */
        if (len < need || e.u.output.rtype != UHID_OUTPUT_REPORT ||
            e.u.output.size != VC_UHID_REPORT_LEN + 1 || e.u.output.data[0] != 0)
            return 0;
        ev->kind = VC_UHID_EV_OUTPUT;
        memcpy(ev->report, e.u.output.data + 1, VC_UHID_REPORT_LEN);
        return 0;
    default:
        ev->kind = VC_UHID_EV_OTHER;
        return 0;
    }
}

/* Writes one whole event; uhid takes it in a single write or not at all. */
static int write_event(int fd, const struct uhid_event *ev)
{
    ssize_t n;

    do {
        n = write(fd, ev, sizeof(*ev));
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if ((size_t)n != sizeof(*ev)) {
        errno = EIO;
        return -1;
    }
    return 0;
}

/* GET_REPORT/SET_REPORT block the asking process until answered (or for
 * the kernel's 5 s timeout): refuse them at once, the card has neither. */
static int refuse_request(int fd, const struct vc_uhid_event *ev)
{
    struct uhid_event reply;

    memset(&reply, 0, sizeof(reply));
    if (ev->kind == VC_UHID_EV_GET_REPORT) {
        reply.type = UHID_GET_REPORT_REPLY;
        reply.u.get_report_reply.id = ev->request_id;
        reply.u.get_report_reply.err = EIO;
    } else {
        reply.type = UHID_SET_REPORT_REPLY;
        reply.u.set_report_reply.id = ev->request_id;
        reply.u.set_report_reply.err = EIO;
    }
    return write_event(fd, &reply);
}

/*
 * Reads and handles one pending event of d. Returns 1 when it was an
 * output report (stored in ev), 0 for any other event, 2 when nothing was
 * pending, -1 on error.
 */
static int handle_one(struct vc_uhid *u, struct uhid_dev *d, struct vc_uhid_event *ev)
{
    struct uhid_event raw;
    ssize_t n;

    do {
        n = read(d->fd, &raw, sizeof(raw));
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 2 : -1;
    if (n == 0) {
        errno = EIO; /* uhid never ends its stream: not a uhid descriptor */
        return -1;
    }
    if (vc_uhid_parse_event(&raw, (size_t)n, ev) != 0) {
        errno = EPROTO;
        return -1;
    }
    switch (ev->kind) {
    case VC_UHID_EV_START:
        d->started = 1;
        break;
    case VC_UHID_EV_STOP:
        d->started = 0;
        break;
    case VC_UHID_EV_OPEN:
        d->opened++;
        break;
    case VC_UHID_EV_CLOSE:
        if (d->opened > 0)
            d->opened--;
        break;
    case VC_UHID_EV_GET_REPORT:
    case VC_UHID_EV_SET_REPORT:
        if (refuse_request(d->fd, ev) != 0)
            return -1;
        u->refused++;
        break;
    case VC_UHID_EV_OUTPUT:
        return 1;
    case VC_UHID_EV_BAD_OUTPUT:
        u->bad_outputs++;
        break;
    case VC_UHID_EV_OTHER:
        break;
    }
    return 0;
}

/* Waits until fd is readable or the deadline (-1: none) passes. */
static int wait_readable(int fd, int64_t deadline)
{
    struct pollfd pfd;
    int64_t left;
    int r;

    for (;;) {
        left = -1;
        if (deadline >= 0) {
            left = deadline - (int64_t)kcu_now_ms();
            if (left < 0)
                left = 0;
        }
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        r = poll(&pfd, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        if (pfd.revents & (POLLERR | POLLNVAL)) {
            errno = EIO;
            return -1;
        }
        return 1;
    }
}

static int create_dev(struct uhid_dev *d, const char *path, const struct vc_uhid_config *cfg,
                      const unsigned char *desc, size_t desc_len, int interface_no, char *err,
                      size_t errlen)
{
    struct uhid_event ev;
    const char *name = cfg->name ? cfg->name : VC_UHID_DEFAULT_NAME;
    const char *serial = cfg->serial ? cfg->serial : "";

    d->fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (d->fd < 0) {
        kcu_set_err(err, errlen, "open %s: %s%s", path, strerror(errno),
                    errno == ENOENT ? " (no uhid module loaded?)" : "");
        return -1;
    }
    memset(&ev, 0, sizeof(ev));
    ev.type = UHID_CREATE2;
    if (strlen(name) >= sizeof(ev.u.create2.name) || strlen(serial) >= sizeof(ev.u.create2.uniq)) {
        kcu_set_err(err, errlen, "name or serial too long for HID_NAME/HID_UNIQ");
        return -1;
    }
    memcpy(ev.u.create2.name, name, strlen(name));
    memcpy(ev.u.create2.uniq, serial, strlen(serial));
    /* like a USB composite device: one phys per interface, same prefix */
    snprintf((char *)ev.u.create2.phys, sizeof(ev.u.create2.phys), "kcard-vcard/input%d",
             interface_no);
    ev.u.create2.rd_size = (uint16_t)desc_len;
    ev.u.create2.bus = BUS_USB;
    ev.u.create2.vendor = cfg->vendor_id;
    ev.u.create2.product = cfg->product_id;
    ev.u.create2.version = 0x0100;
    memcpy(ev.u.create2.rd_data, desc, desc_len);
    if (write_event(d->fd, &ev) != 0) {
        kcu_set_err(err, errlen, "UHID_CREATE2 on %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Handles events of d until UHID_START or the timeout. */
static int wait_started(struct vc_uhid *u, struct uhid_dev *d, int timeout_ms, char *err,
                        size_t errlen)
{
    int64_t deadline = (int64_t)kcu_now_ms() + timeout_ms;
    struct vc_uhid_event ev;
    int r;

    while (!d->started) {
        r = wait_readable(d->fd, deadline);
        if (r == 0) {
            kcu_set_err(err, errlen,
                        "no UHID_START within %d ms: no HID driver bound "
                        "(is hid-generic loaded?)",
                        timeout_ms);
            return -1;
        }
        if (r < 0 || (r = handle_one(u, d, &ev)) < 0) {
            kcu_set_err(err, errlen, "uhid event: %s", strerror(errno));
            return -1;
        }
        if (r == 1)
            u->bad_outputs++; /* a report before start: nobody asked yet */
    }
    return 0;
}

int vc_uhid_open(const struct vc_uhid_config *cfg, struct vc_uhid **out, char *err, size_t errlen)
{
    const char *path;
    struct vc_uhid *u;

    *out = NULL;
    if (cfg == NULL) {
        kcu_set_err(err, errlen, "no configuration");
        return -1;
    }
    path = cfg->dev_path ? cfg->dev_path : VC_UHID_DEFAULT_PATH;
    if ((u = calloc(1, sizeof(*u))) == NULL) {
        kcu_set_err(err, errlen, "out of memory");
        return -1;
    }
    u->fido.fd = -1;
    u->vendor.fd = -1;
    if (create_dev(&u->fido, path, cfg, fido_descriptor, sizeof(fido_descriptor), 0, err, errlen) !=
        0)
        goto fail;
    if (cfg->start_timeout_ms > 0 &&
        wait_started(u, &u->fido, cfg->start_timeout_ms, err, errlen) != 0)
        goto fail;
    if (cfg->vendor_interface) {
        if (create_dev(&u->vendor, path, cfg, vendor_descriptor, sizeof(vendor_descriptor), 1, err,
                       errlen) != 0)
            goto fail;
        if (cfg->start_timeout_ms > 0 &&
            wait_started(u, &u->vendor, cfg->start_timeout_ms, err, errlen) != 0)
            goto fail;
    }
    *out = u;
    return 0;
fail:
    vc_uhid_close(u);
    return -1;
}

int vc_uhid_fd(const struct vc_uhid *u)
{
    return u->fido.fd;
}

int vc_uhid_vendor_fd(const struct vc_uhid *u)
{
    return u->vendor.fd;
}

int vc_uhid_read_output(struct vc_uhid *u, unsigned char report[VC_UHID_REPORT_LEN], int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : (int64_t)kcu_now_ms() + timeout_ms;
    struct vc_uhid_event ev;
    int r;

    for (;;) {
        r = handle_one(u, &u->fido, &ev);
        if (r < 0)
            return -1;
        if (r == 1) {
            memcpy(report, ev.report, VC_UHID_REPORT_LEN);
            return 1;
        }
        if (r == 0)
            continue; /* handled; look for more */
        if (timeout_ms == 0)
            return 0;
        r = wait_readable(u->fido.fd, deadline);
        if (r <= 0)
            return r;
    }
}

int vc_uhid_send_input(struct vc_uhid *u, const unsigned char report[VC_UHID_REPORT_LEN])
{
    struct uhid_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = UHID_INPUT2;
    ev.u.input2.size = VC_UHID_REPORT_LEN;
    memcpy(ev.u.input2.data, report, VC_UHID_REPORT_LEN);
    return write_event(u->fido.fd, &ev);
}

int vc_uhid_service_vendor(struct vc_uhid *u)
{
    struct vc_uhid_event ev;
    int r;

    if (u->vendor.fd < 0)
        return 0;
    while ((r = handle_one(u, &u->vendor, &ev)) != 2) {
        if (r < 0)
            return -1;
        /* r == 1: an output report to the vendor interface; not ours */
    }
    return 0;
}

int vc_uhid_is_started(const struct vc_uhid *u)
{
    return u->fido.started;
}

int vc_uhid_open_count(const struct vc_uhid *u)
{
    return u->fido.opened;
}

unsigned long vc_uhid_bad_outputs(const struct vc_uhid *u)
{
    return u->bad_outputs;
}

unsigned long vc_uhid_refused_requests(const struct vc_uhid *u)
{
    return u->refused;
}

static void destroy_dev(struct uhid_dev *d)
{
    struct uhid_event ev;

    if (d->fd < 0)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.type = UHID_DESTROY;
    /* closing destroys it too; the explicit event makes it immediate */
    (void)write_event(d->fd, &ev);
    (void)close(d->fd);
    d->fd = -1;
}

void vc_uhid_close(struct vc_uhid *u)
{
    if (u == NULL)
        return;
    destroy_dev(&u->vendor);
    destroy_dev(&u->fido);
    free(u);
}
