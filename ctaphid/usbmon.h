/* Linux usbmon captures (what Wireshark and tcpdump write for usbmonN, as
 * pcap or pcapng) of a card's interrupt transfers, turned into a kcard
 * JSON-lines trace (trace.h) that replay and vcard --script play back.
 *
 * Link types: LINKTYPE_USB_LINUX (189, a 48-byte usbmon header per packet)
 * and LINKTYPE_USB_LINUX_MMAPPED (220, a 64-byte header). The header is
 * read field by field, little-endian (libpcap hands it over in the reading
 * host's order; kcard runs on little-endian hosts), and every length in it
 * is checked against the bytes captured.
 *
 * What becomes a report: host to card, the data of an 'S' submission on an
 * interrupt OUT endpoint, or of a control SET_REPORT (Output) submission
 * (hidraw writes to a card without an OUT endpoint); card to host, the data
 * of a 'C' completion on an interrupt IN endpoint with status 0. Reports
 * are 64 bytes; a 65-byte transfer whose first byte is the report id the
 * SET_REPORT named (or 0 on an interrupt endpoint) loses that byte; other
 * lengths up to 64 are kept as they are. */
#ifndef KCARD_CTAPHID_USBMON_H
#define KCARD_CTAPHID_USBMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KC_LINKTYPE_USB_LINUX 189
#define KC_LINKTYPE_USB_LINUX_MMAPPED 220
#define KC_USBMON_HDR_LEN 48
#define KC_USBMON_MMAP_HDR_LEN 64
#define KC_USBMON_ISO_DESC_LEN 16
#define KC_USBMON_MAX_REPORTS 200000u

/* One usbmon packet header and where its data is. */
struct kc_usbmon_pkt {
    uint64_t id;
    char type;         /* 'S' submission, 'C' completion, 'E' error */
    uint8_t xfer_type; /* 0 isochronous, 1 interrupt, 2 control, 3 bulk */
    uint8_t epnum;     /* 0x80 set: IN */
    uint8_t devnum;
    uint16_t busnum;
    bool has_setup; /* flag_setup == 0 */
    bool has_data;  /* flag_data == 0 */
    uint8_t setup[8];
    int64_t ts_sec;
    int32_t ts_usec;
    int32_t status;
    uint32_t length;  /* of the URB */
    uint32_t len_cap; /* data bytes the header says follow */
    uint32_t ndesc;   /* isochronous descriptors (link type 220) */
    const uint8_t *data;
    size_t data_len; /* data bytes present in the packet */
};

/* Parses one packet as libpcap delivers it (caplen bytes captured of a
 * wirelen-byte packet). KC_OK, or KC_ERR_PROTOCOL with why naming what is
 * wrong (too short for its header, an event type or transfer type usbmon
 * never writes, more data announced than captured). */
int kc_usbmon_parse(int linktype, const uint8_t *pkt, size_t caplen, size_t wirelen,
                    struct kc_usbmon_pkt *out, char *why, size_t whylen);

enum kc_usbmon_kind {
    KC_USBMON_OTHER = 0,    /* not a CTAPHID report */
    KC_USBMON_TO_CARD,      /* host to card */
    KC_USBMON_FROM_CARD,    /* card to host */
    KC_USBMON_DAMAGED = -1, /* a report packet that lost its data (why set) */
};
/* What a parsed packet carries: *report and *len point into its data. */
enum kc_usbmon_kind kc_usbmon_report(const struct kc_usbmon_pkt *p, const uint8_t **report,
                                     size_t *len, char *why, size_t whylen);

struct kc_usbmon_options {
    int bus; /* with dev: import only this device; -1: the one with CTAPHID traffic */
    int dev;
};

struct kc_usbmon_summary {
    int linktype;
    uint64_t packets;
    uint16_t bus;
    uint8_t dev;
    uint64_t reports_out, reports_in;
    uint64_t transactions;      /* requests: init packets from the host */
    uint64_t first_us, last_us; /* capture time of the first and last report (epoch) */
    uint64_t bad_packet;        /* 1-based number of the damaged packet, 0 if none */
};

/* Reads a capture (pcap or pcapng) and writes the chosen device's reports
 * to out as trace lines (out may be NULL: summary only). Results:
 *   KC_OK
 *   KC_ERR_IO           not readable as a capture (err says why)
 *   KC_ERR_UNSUPPORTED  a link type other than 189/220
 *   KC_ERR_PROTOCOL     a damaged or truncated packet (s->bad_packet, err)
 *   KC_ERR_NO_DEVICE    no CTAPHID traffic, or none on the device asked for
 *   KC_ERR_INVALID_ARG  several devices carry CTAPHID traffic (err lists them)
 *   KC_ERR_TOO_LARGE    more than KC_USBMON_MAX_REPORTS reports
 * kc_usbmon_import_fp takes fp (closed in every case). */
int kc_usbmon_import_file(const char *path, const struct kc_usbmon_options *o, FILE *out,
                          struct kc_usbmon_summary *s, char *err, size_t errlen);
int kc_usbmon_import_fp(FILE *fp, const struct kc_usbmon_options *o, FILE *out,
                        struct kc_usbmon_summary *s, char *err, size_t errlen);

#endif
