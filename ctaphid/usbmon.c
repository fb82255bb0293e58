/* usbmon captures (pcap/pcapng through libpcap) to kcard traces: see
 * usbmon.h for what is read and how. */
#include "ctaphid/usbmon.h"

#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "ctaphid/status.h"
#include "ctaphid/trace_msg.h"
#include "util/err.h"

#define MAX_DEVICES 64

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

int kc_usbmon_parse(int linktype, const uint8_t *pkt, size_t caplen, size_t wirelen,
                    struct kc_usbmon_pkt *out, char *why, size_t whylen)
{
    size_t hdr, off;

    if (out == NULL || (pkt == NULL && caplen > 0))
        return KC_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (linktype == KC_LINKTYPE_USB_LINUX)
        hdr = KC_USBMON_HDR_LEN;
    else if (linktype == KC_LINKTYPE_USB_LINUX_MMAPPED)
        hdr = KC_USBMON_MMAP_HDR_LEN;
    else {
        kcu_set_err(why, whylen, "link type %d is not a Linux usbmon capture", linktype);
        return KC_ERR_UNSUPPORTED;
    }
    if (caplen < hdr) {
        kcu_set_err(why, whylen, "%zu bytes captured%s, shorter than the %zu-byte usbmon header",
                    caplen, wirelen > caplen ? " (the snap length cut it)" : "", hdr);
        return KC_ERR_PROTOCOL;
    }
    out->id = le64(pkt);
    out->type = (char)pkt[8];
    out->xfer_type = pkt[9];
    out->epnum = pkt[10];
    out->devnum = pkt[11];
    out->busnum = le16(pkt + 12);
    out->has_setup = pkt[14] == 0;
    out->has_data = pkt[15] == 0;
    out->ts_sec = (int64_t)le64(pkt + 16);
    out->ts_usec = (int32_t)le32(pkt + 24);
    out->status = (int32_t)le32(pkt + 28);
    out->length = le32(pkt + 32);
    out->len_cap = le32(pkt + 36);
    memcpy(out->setup, pkt + 40, 8);
    if (out->type != 'S' && out->type != 'C' && out->type != 'E') {
        kcu_set_err(why, whylen, "usbmon event type 0x%02x is none of 'S', 'C', 'E'",
                    (uint8_t)out->type);
        return KC_ERR_PROTOCOL;
    }
    if (out->xfer_type > 3) {
        kcu_set_err(why, whylen, "usbmon transfer type %u is none of 0..3", out->xfer_type);
        return KC_ERR_PROTOCOL;
    }
    off = hdr;
    if (linktype == KC_LINKTYPE_USB_LINUX_MMAPPED) {
        out->ndesc = le32(pkt + 60);
        if (out->ndesc > (caplen - hdr) / KC_USBMON_ISO_DESC_LEN) {
            kcu_set_err(why, whylen, "%u isochronous descriptors announced, %zu bytes captured",
                        out->ndesc, caplen);
            return KC_ERR_PROTOCOL;
        }
        off += (size_t)out->ndesc * KC_USBMON_ISO_DESC_LEN;
    }
    out->data = pkt + off;
    out->data_len = caplen - off;
    if (out->data_len > out->len_cap)
        out->data_len = out->len_cap; /* padding after the data is not data */
    if (!out->has_data)
        out->data_len = 0;
    return KC_OK;
}

enum kc_usbmon_kind kc_usbmon_report(const struct kc_usbmon_pkt *p, const uint8_t **report,
                                     size_t *len, char *why, size_t whylen)
{
    enum kc_usbmon_kind kind = KC_USBMON_OTHER;
    int report_id = 0;

    if (p == NULL || report == NULL || len == NULL)
        return KC_USBMON_OTHER;
    *report = NULL;
    *len = 0;
    if (p->type == 'S' && p->xfer_type == 1 && (p->epnum & 0x80) == 0) {
        kind = KC_USBMON_TO_CARD;
    } else if (p->type == 'C' && p->xfer_type == 1 && (p->epnum & 0x80) != 0 && p->status == 0 &&
               p->len_cap > 0) {
        kind = KC_USBMON_FROM_CARD;
    } else if (p->type == 'S' && p->xfer_type == 2 && p->has_setup && p->setup[0] == 0x21 &&
               p->setup[1] == 0x09 && p->setup[3] == 0x02) {
        /* HID class SET_REPORT, Output report, wValue low byte the id */
        kind = KC_USBMON_TO_CARD;
        report_id = p->setup[2];
    } else {
        return KC_USBMON_OTHER;
    }
    if (!p->has_data || p->len_cap == 0) {
        kcu_set_err(why, whylen, "a %s report transfer without its data",
                    kind == KC_USBMON_TO_CARD ? "host-to-card" : "card-to-host");
        return KC_USBMON_DAMAGED;
    }
    if (p->data_len < p->len_cap) {
        kcu_set_err(why, whylen, "captured %zu of the %u data bytes its usbmon header announces",
                    p->data_len, p->len_cap);
        return KC_USBMON_DAMAGED;
    }
    *report = p->data;
    *len = p->data_len;
    if (*len == KC_HID_REPORT_LEN + 1 && (*report)[0] == report_id) {
        (*report)++;
        (*len)--;
    }
    if (*len > KC_HID_REPORT_LEN) {
        kcu_set_err(why, whylen, "a report of %zu bytes (CTAPHID reports have 64)", *len);
        return KC_USBMON_DAMAGED;
    }
    return kind;
}

/* ---- import --------------------------------------------------------------- */

struct report {
    uint64_t t_us;
    uint16_t bus;
    uint8_t dev;
    bool in;
    uint8_t len;
    uint8_t data[KC_HID_REPORT_LEN];
};

struct device {
    uint16_t bus;
    uint8_t dev;
    bool ctaphid; /* the host sent INIT on the broadcast channel */
    uint64_t reports;
};

struct import {
    struct report *r;
    size_t n, cap;
    struct device devs[MAX_DEVICES];
    size_t ndevs;
};

static bool is_broadcast_init(const uint8_t *r, size_t len)
{
    return len >= KC_HID_INIT_HDR && r[0] == 0xff && r[1] == 0xff && r[2] == 0xff && r[3] == 0xff &&
           r[4] == KC_HID_INIT;
}

static int note_report(struct import *im, const struct kc_usbmon_pkt *p, uint64_t t_us, bool in,
                       const uint8_t *data, size_t len)
{
    struct device *d = NULL;
    struct report *r;

    for (size_t i = 0; i < im->ndevs; i++)
        if (im->devs[i].bus == p->busnum && im->devs[i].dev == p->devnum)
            d = &im->devs[i];
    if (d == NULL && im->ndevs < MAX_DEVICES) {
        d = &im->devs[im->ndevs++];
        memset(d, 0, sizeof(*d));
        d->bus = p->busnum;
        d->dev = p->devnum;
    }
    if (d != NULL) {
        d->reports++;
        if (!in && is_broadcast_init(data, len))
            d->ctaphid = true;
    }
    if (im->n == im->cap) {
        size_t ncap = im->cap == 0 ? 256 : im->cap * 2;
        struct report *nr;
        if (im->n >= KC_USBMON_MAX_REPORTS)
            return KC_ERR_TOO_LARGE;
        if ((nr = realloc(im->r, ncap * sizeof(*nr))) == NULL)
            return KC_ERR_NOMEM;
        im->r = nr;
        im->cap = ncap;
    }
    r = &im->r[im->n++];
    r->t_us = t_us;
    r->bus = p->busnum;
    r->dev = p->devnum;
    r->in = in;
    r->len = (uint8_t)len;
    memcpy(r->data, data, len);
    return KC_OK;
}

static int read_packets(pcap_t *pc, struct import *im, struct kc_usbmon_summary *s, char *err,
                        size_t errlen)
{
    struct pcap_pkthdr *h;
    const u_char *pkt;
    int lt = pcap_datalink(pc);
    int r;

    s->linktype = lt;
    if (lt != KC_LINKTYPE_USB_LINUX && lt != KC_LINKTYPE_USB_LINUX_MMAPPED) {
        kcu_set_err(err, errlen,
                    "link type %d (%s) is not a Linux usbmon capture (want 189 USB_LINUX or 220 "
                    "USB_LINUX_MMAPPED: capture on a usbmonN interface)",
                    lt, pcap_datalink_val_to_name(lt) ? pcap_datalink_val_to_name(lt) : "?");
        return KC_ERR_UNSUPPORTED;
    }
    while ((r = pcap_next_ex(pc, &h, &pkt)) == 1) {
        struct kc_usbmon_pkt p;
        const uint8_t *rep;
        size_t len;
        char why[160];
        enum kc_usbmon_kind kind;
        int rc;

        s->packets++;
        if (kc_usbmon_parse(lt, pkt, h->caplen, h->len, &p, why, sizeof(why)) != KC_OK) {
            s->bad_packet = s->packets;
            kcu_set_err(err, errlen, "packet %llu: %s", (unsigned long long)s->packets, why);
            return KC_ERR_PROTOCOL;
        }
        kind = kc_usbmon_report(&p, &rep, &len, why, sizeof(why));
        if (kind == KC_USBMON_DAMAGED) {
            s->bad_packet = s->packets;
            kcu_set_err(err, errlen, "packet %llu (bus %u device %u): %s",
                        (unsigned long long)s->packets, p.busnum, p.devnum, why);
            return KC_ERR_PROTOCOL;
        }
        if (kind == KC_USBMON_OTHER || len == 0)
            continue;
        rc = note_report(im, &p, (uint64_t)h->ts.tv_sec * 1000000u + (uint64_t)h->ts.tv_usec,
                         kind == KC_USBMON_FROM_CARD, rep, len);
        if (rc != KC_OK) {
            kcu_set_err(err, errlen, "packet %llu: %s", (unsigned long long)s->packets,
                        rc == KC_ERR_TOO_LARGE ? "more reports than a trace may hold"
                                               : "out of memory");
            return rc;
        }
    }
    if (r == PCAP_ERROR) {
        s->bad_packet = s->packets + 1;
        kcu_set_err(err, errlen, "packet %llu: %s", (unsigned long long)s->bad_packet,
                    pcap_geterr(pc));
        return KC_ERR_PROTOCOL;
    }
    return KC_OK;
}

static int choose_device(const struct import *im, const struct kc_usbmon_options *o,
                         struct kc_usbmon_summary *s, char *err, size_t errlen)
{
    size_t found = 0, at = 0;

    if (o != NULL && o->bus >= 0 && o->dev >= 0) {
        for (size_t i = 0; i < im->ndevs; i++)
            if (im->devs[i].bus == o->bus && im->devs[i].dev == o->dev) {
                s->bus = im->devs[i].bus;
                s->dev = im->devs[i].dev;
                return KC_OK;
            }
        kcu_set_err(err, errlen, "device %d.%d has no interrupt reports in this capture", o->bus,
                    o->dev);
        return KC_ERR_NO_DEVICE;
    }
    for (size_t i = 0; i < im->ndevs; i++)
        if (im->devs[i].ctaphid) {
            found++;
            at = i;
        }
    if (found == 1) {
        s->bus = im->devs[at].bus;
        s->dev = im->devs[at].dev;
        return KC_OK;
    }
    if (found == 0) {
        kcu_set_err(err, errlen,
                    "no device in this capture sent CTAPHID_INIT on the broadcast channel "
                    "(%zu device(s) with interrupt reports; name one with --device BUS.DEV)",
                    im->ndevs);
        return KC_ERR_NO_DEVICE;
    }
    {
        size_t o2 = 0;
        o2 += (size_t)snprintf(err, errlen, "%zu devices carry CTAPHID traffic:", found);
        for (size_t i = 0; i < im->ndevs && o2 < errlen; i++)
            if (im->devs[i].ctaphid)
                o2 += (size_t)snprintf(err + o2, errlen - o2, " %u.%u", im->devs[i].bus,
                                       im->devs[i].dev);
        if (o2 < errlen)
            snprintf(err + o2, errlen - o2, "; choose one with --device BUS.DEV");
    }
    return KC_ERR_INVALID_ARG;
}

static int write_trace(const struct import *im, FILE *out, struct kc_usbmon_summary *s)
{
    bool first = true;

    for (size_t i = 0; i < im->n; i++) {
        const struct report *r = &im->r[i];
        char *line;

        if (r->bus != s->bus || r->dev != s->dev)
            continue;
        if (first) {
            s->first_us = r->t_us;
            first = false;
        }
        s->last_us = r->t_us;
        if (r->in)
            s->reports_in++;
        else
            s->reports_out++;
        if (!r->in && kc_report_is_init(r->data, r->len))
            s->transactions++;
        if (out == NULL)
            continue;
        line = kc_trace_report_line(r->t_us >= s->first_us ? r->t_us - s->first_us : 0, r->in,
                                    r->data, r->len);
        if (line == NULL)
            return KC_ERR_NOMEM;
        if (fprintf(out, "%s\n", line) < 0) {
            free(line);
            return KC_ERR_IO;
        }
        free(line);
    }
    return KC_OK;
}

static int import_pcap(pcap_t *pc, const struct kc_usbmon_options *o, FILE *out,
                       struct kc_usbmon_summary *s, char *err, size_t errlen)
{
    struct import im;
    int rc;

    memset(&im, 0, sizeof(im));
    if ((rc = read_packets(pc, &im, s, err, errlen)) == KC_OK &&
        (rc = choose_device(&im, o, s, err, errlen)) == KC_OK) {
        rc = write_trace(&im, out, s);
        if (rc != KC_OK)
            kcu_set_err(err, errlen, "%s",
                        rc == KC_ERR_IO ? "cannot write the trace" : "out of memory");
    }
    free(im.r);
    return rc;
}

/* Imports from a capture libpcap opened (pc NULL: perr says why), then
 * closes it (and with it a FILE it was opened from). */
static int import_opened(pcap_t *pc, const char *perr, const struct kc_usbmon_options *o, FILE *out,
                         struct kc_usbmon_summary *s, char *err, size_t errlen)
{
    struct kc_usbmon_summary dummy;
    int rc;

    if (s == NULL)
        s = &dummy;
    memset(s, 0, sizeof(*s));
    if (pc == NULL) {
        kcu_set_err(err, errlen, "%s", perr);
        return KC_ERR_IO;
    }
    rc = import_pcap(pc, o, out, s, err, errlen);
    pcap_close(pc);
    return rc;
}

int kc_usbmon_import_file(const char *path, const struct kc_usbmon_options *o, FILE *out,
                          struct kc_usbmon_summary *s, char *err, size_t errlen)
{
    char perr[PCAP_ERRBUF_SIZE] = "";

    if (path == NULL)
        return KC_ERR_INVALID_ARG;
    return import_opened(
        pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO, perr), perr, o,
        out, s, err, errlen);
}

int kc_usbmon_import_fp(FILE *fp, const struct kc_usbmon_options *o, FILE *out,
                        struct kc_usbmon_summary *s, char *err, size_t errlen)
{
    char perr[PCAP_ERRBUF_SIZE] = "";
    pcap_t *pc;

    if (fp == NULL)
        return KC_ERR_INVALID_ARG;
    pc = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_MICRO, perr);
    if (pc == NULL)
        fclose(fp); /* libpcap keeps it only when it opens */
    return import_opened(pc, perr, o, out, s, err, errlen);
}
