/* The usbmon packet parser and the capture importer: headers of both link
 * types with every length checked, which transfers become reports, device
 * selection, and damaged captures named by packet. Captures are written in
 * memory with libpcap's own dumper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pcap/pcap.h>

#include "ctaphid/status.h"
#include "ctaphid/trace_msg.h"
#include "ctaphid/usbmon.h"

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

struct pkt_spec {
    char type;
    uint8_t xfer;
    uint8_t ep;
    uint8_t dev;
    uint16_t bus;
    int32_t status;
    const uint8_t *data;
    size_t len;
    const uint8_t *setup;
};

/* One usbmon packet: header (48 or 64 bytes) and data. */
static size_t make_pkt(int lt, const struct pkt_spec *s, uint8_t *out, size_t cap)
{
    size_t hdr = lt == KC_LINKTYPE_USB_LINUX ? 48 : 64;

    assert_true(hdr + s->len <= cap);
    memset(out, 0, hdr);
    put_le(out, 0x1234, 8);
    out[8] = (uint8_t)s->type;
    out[9] = s->xfer;
    out[10] = s->ep;
    out[11] = s->dev;
    put_le(out + 12, s->bus, 2);
    out[14] = s->setup != NULL ? 0 : '-';
    out[15] = s->len > 0 ? 0 : (s->ep & 0x80 ? '<' : '>');
    put_le(out + 16, 1764579600, 8);
    put_le(out + 24, 5, 4);
    put_le(out + 28, (uint32_t)s->status, 4);
    put_le(out + 32, s->len, 4);
    put_le(out + 36, s->len, 4);
    if (s->setup != NULL)
        memcpy(out + 40, s->setup, 8);
    if (s->len > 0)
        memcpy(out + hdr, s->data, s->len);
    return hdr + s->len;
}

static void report(uint8_t *r, uint32_t cid, uint8_t cmd, uint8_t b7)
{
    memset(r, 0, 64);
    r[0] = (uint8_t)(cid >> 24);
    r[1] = (uint8_t)(cid >> 16);
    r[2] = (uint8_t)(cid >> 8);
    r[3] = (uint8_t)cid;
    r[4] = cmd;
    r[6] = 8;
    r[7] = b7;
}

static void test_parse_headers(void **state)
{
    (void)state;
    uint8_t r[64], pkt[200];
    struct kc_usbmon_pkt p;
    struct pkt_spec s = {'S', 1, 0x01, 5, 1, -115, r, 64, NULL};
    const uint8_t *rep;
    size_t len, n;
    char why[160];

    report(r, 0xffffffffu, KC_HID_INIT, 0xaa);
    n = make_pkt(KC_LINKTYPE_USB_LINUX, &s, pkt, sizeof(pkt));
    assert_int_equal(n, 48 + 64);
    assert_int_equal(kc_usbmon_parse(KC_LINKTYPE_USB_LINUX, pkt, n, n, &p, why, sizeof(why)),
                     KC_OK);
    assert_int_equal(p.type, 'S');
    assert_int_equal(p.busnum, 1);
    assert_int_equal(p.devnum, 5);
    assert_int_equal(p.status, -115);
    assert_int_equal(p.data_len, 64);
    assert_int_equal(kc_usbmon_report(&p, &rep, &len, why, sizeof(why)), KC_USBMON_TO_CARD);
    assert_int_equal(len, 64);
    assert_memory_equal(rep, r, 64);

    n = make_pkt(KC_LINKTYPE_USB_LINUX_MMAPPED, &s, pkt, sizeof(pkt));
    assert_int_equal(n, 64 + 64);
    assert_int_equal(
        kc_usbmon_parse(KC_LINKTYPE_USB_LINUX_MMAPPED, pkt, n, n, &p, why, sizeof(why)), KC_OK);
    assert_int_equal(kc_usbmon_report(&p, &rep, &len, why, sizeof(why)), KC_USBMON_TO_CARD);
    assert_memory_equal(rep, r, 64);

    /* shorter than its header */
    assert_int_equal(
        kc_usbmon_parse(KC_LINKTYPE_USB_LINUX_MMAPPED, pkt, 50, 50, &p, why, sizeof(why)),
        KC_ERR_PROTOCOL);
    assert_string_equal(why, "50 bytes captured, shorter than the 64-byte usbmon header");
    /* not an event type usbmon writes */
    pkt[8] = 'X';
    assert_int_equal(
        kc_usbmon_parse(KC_LINKTYPE_USB_LINUX_MMAPPED, pkt, n, n, &p, why, sizeof(why)),
        KC_ERR_PROTOCOL);
    assert_non_null(strstr(why, "event type 0x58"));
    pkt[8] = 'S';
    /* isochronous descriptors that are not there */
    put_le(pkt + 60, 1000, 4);
    assert_int_equal(
        kc_usbmon_parse(KC_LINKTYPE_USB_LINUX_MMAPPED, pkt, n, n, &p, why, sizeof(why)),
        KC_ERR_PROTOCOL);
    /* another link type */
    assert_int_equal(kc_usbmon_parse(1, pkt, n, n, &p, why, sizeof(why)), KC_ERR_UNSUPPORTED);
}

static void test_report_kinds(void **state)
{
    (void)state;
    uint8_t r[65], pkt[200];
    uint8_t setup[8] = {0x21, 0x09, 0x00, 0x02, 0, 0, 64, 0};
    struct kc_usbmon_pkt p;
    const uint8_t *rep;
    size_t len, n;
    char why[160];

    /* a card-to-host completion with status 0 */
    struct pkt_spec in = {'C', 1, 0x81, 5, 1, 0, r, 64, NULL};
    report(r, 1, KC_HID_CBOR, 0);
    n = make_pkt(KC_LINKTYPE_USB_LINUX, &in, pkt, sizeof(pkt));
    assert_int_equal(kc_usbmon_parse(KC_LINKTYPE_USB_LINUX, pkt, n, n, &p, why, sizeof(why)),
                     KC_OK);
    assert_int_equal(kc_usbmon_report(&p, &rep, &len, why, sizeof(why)), KC_USBMON_FROM_CARD);
    /* unlinked (-ENOENT): not a report */
    in.status = -2;
    n = make_pkt(KC_LINKTYPE_USB_LINUX, &in, pkt, sizeof(pkt));
    kc_usbmon_parse(KC_LINKTYPE_USB_LINUX, pkt, n, n, &p, why, sizeof(why));
    assert_int_equal(kc_usbmon_report(&p, &rep, &len, why, sizeof(why)), KC_USBMON_OTHER);
    /* a SET_REPORT output with a 65-byte buffer: the report id 0 goes */
    struct pkt_spec ctl = {'S', 2, 0x00, 5, 1, -115, r, 65, setup};
    r[0] = 0;
    report(r + 1, 1, KC_HID_CBOR, 0x42);
    n = make_pkt(KC_LINKTYPE_USB_LINUX, &ctl, pkt, sizeof(pkt));
    kc_usbmon_parse(KC_LINKTYPE_USB_LINUX, pkt, n, n, &p, why, sizeof(why));
    assert_int_equal(kc_usbmon_report(&p, &rep, &len, why, sizeof(why)), KC_USBMON_TO_CARD);
    assert_int_equal(len, 64);
    assert_int_equal(rep[7], 0x42);
    /* a GET_REPORT is not a report the host sent */
    setup[1] = 0x01;
    n = make_pkt(KC_LINKTYPE_USB_LINUX, &ctl, pkt, sizeof(pkt));
    kc_usbmon_parse(KC_LINKTYPE_USB_LINUX, pkt, n, n, &p, why, sizeof(why));
    assert_int_equal(kc_usbmon_report(&p, &rep, &len, why, sizeof(why)), KC_USBMON_OTHER);
    /* an OUT submission cut by the snap length: damaged, named */
    struct pkt_spec out = {'S', 1, 0x01, 5, 1, -115, r, 64, NULL};
    n = make_pkt(KC_LINKTYPE_USB_LINUX, &out, pkt, sizeof(pkt));
    assert_int_equal(kc_usbmon_parse(KC_LINKTYPE_USB_LINUX, pkt, n - 10, n, &p, why, sizeof(why)),
                     KC_OK);
    assert_int_equal(kc_usbmon_report(&p, &rep, &len, why, sizeof(why)), KC_USBMON_DAMAGED);
    assert_string_equal(why, "captured 54 of the 64 data bytes its usbmon header announces");
    /* an OUT submission without data */
    out.len = 0;
    n = make_pkt(KC_LINKTYPE_USB_LINUX, &out, pkt, sizeof(pkt));
    kc_usbmon_parse(KC_LINKTYPE_USB_LINUX, pkt, n, n, &p, why, sizeof(why));
    assert_int_equal(kc_usbmon_report(&p, &rep, &len, why, sizeof(why)), KC_USBMON_DAMAGED);
}

/* A capture in memory, written with libpcap. */
struct cap {
    char *buf;
    size_t len;
};

static void cap_write(struct cap *c, int lt, const struct pkt_spec *specs, size_t n, size_t cut)
{
    FILE *f = open_memstream(&c->buf, &c->len);
    pcap_t *dead = pcap_open_dead(lt, 65535);
    pcap_dumper_t *d;
    uint8_t pkt[256];

    assert_non_null(f);
    assert_non_null(dead);
    d = pcap_dump_fopen(dead, f);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) {
        struct pcap_pkthdr h;
        size_t len = make_pkt(lt, &specs[i], pkt, sizeof(pkt));
        memset(&h, 0, sizeof(h));
        h.ts.tv_sec = 1764579600;
        h.ts.tv_usec = (long)(1000 * i);
        h.caplen = h.len = (bpf_u_int32)len;
        pcap_dump((u_char *)d, &h, pkt);
    }
    pcap_dump_close(d); /* closes f */
    pcap_close(dead);
    if (cut > 0 && cut < c->len)
        c->len -= cut;
}

static int cap_import(struct cap *c, const struct kc_usbmon_options *o, char **trace,
                      size_t *trace_len, struct kc_usbmon_summary *s, char *err, size_t errlen)
{
    FILE *in = fmemopen(c->buf, c->len, "rb");
    FILE *out = open_memstream(trace, trace_len);
    int rc;

    assert_non_null(in);
    assert_non_null(out);
    rc = kc_usbmon_import_fp(in, o, out, s, err, errlen);
    fclose(out);
    return rc;
}

static void test_import(void **state)
{
    (void)state;
    uint8_t init[64], reply[64], mouse[4] = {0, 1, 2, 0};
    struct pkt_spec specs[] = {
        {'C', 1, 0x81, 3, 1, 0, mouse, 4, NULL},    /* a mouse on 1.3 */
        {'S', 1, 0x01, 5, 1, -115, init, 64, NULL}, /* the card on 1.5 */
        {'C', 1, 0x01, 5, 1, 0, NULL, 0, NULL},     /* its completion */
        {'S', 1, 0x81, 5, 1, -115, NULL, 0, NULL},  /* IN submitted */
        {'C', 1, 0x81, 5, 1, 0, reply, 64, NULL},   /* INIT reply */
        {'C', 1, 0x81, 5, 1, -2, NULL, 0, NULL},    /* unlinked */
    };
    struct kc_usbmon_options o = {-1, -1};
    struct kc_usbmon_summary s;
    struct kc_trace_log *log;
    struct cap c = {NULL, 0};
    char *trace = NULL, err[256] = "";
    size_t tlen = 0;

    report(init, 0xffffffffu, KC_HID_INIT, 0x11);
    report(reply, 0xffffffffu, KC_HID_INIT, 0x11);
    reply[6] = 17;
    for (int lt = KC_LINKTYPE_USB_LINUX; lt != 0;
         lt = lt == KC_LINKTYPE_USB_LINUX ? KC_LINKTYPE_USB_LINUX_MMAPPED : 0) {
        cap_write(&c, lt, specs, sizeof(specs) / sizeof(specs[0]), 0);
        assert_int_equal(cap_import(&c, &o, &trace, &tlen, &s, err, sizeof(err)), KC_OK);
        assert_int_equal(s.linktype, lt);
        assert_int_equal(s.packets, 6);
        assert_int_equal(s.bus, 1);
        assert_int_equal(s.dev, 5);
        assert_int_equal(s.reports_out, 1);
        assert_int_equal(s.reports_in, 1);
        assert_int_equal(s.transactions, 1);
        assert_int_equal(s.first_us, 1764579600001000ull);
        assert_int_equal(s.last_us, 1764579600004000ull);
        /* the trace reads back as the two reports, timed from the first */
        assert_int_equal(kc_trace_log_parse(trace, tlen, "t", &log, err, sizeof(err)), KC_OK);
        assert_int_equal(log->n, 2);
        assert_false(log->rec[0].in);
        assert_memory_equal(log->rec[0].data, init, 64);
        assert_true(log->rec[1].in);
        assert_int_equal(log->rec[1].t_us, 3000);
        assert_int_equal(log->nmsg, 1);
        assert_int_equal(log->msg[0].cmd, KC_HID_INIT);
        kc_trace_log_free(log);
        free(trace);
        trace = NULL;

        /* the mouse by name: it has reports, none of them CTAPHID */
        o.bus = 1;
        o.dev = 3;
        assert_int_equal(cap_import(&c, &o, &trace, &tlen, &s, err, sizeof(err)), KC_OK);
        assert_int_equal(s.reports_in, 1);
        free(trace);
        trace = NULL;
        o.bus = 4;
        o.dev = 4;
        assert_int_equal(cap_import(&c, &o, &trace, &tlen, &s, err, sizeof(err)), KC_ERR_NO_DEVICE);
        assert_string_equal(err, "device 4.4 has no interrupt reports in this capture");
        free(trace);
        trace = NULL;
        o.bus = o.dev = -1;

        /* cut in the middle of the last packet: named */
        free(c.buf);
        cap_write(&c, lt, specs, sizeof(specs) / sizeof(specs[0]), 20);
        assert_int_equal(cap_import(&c, &o, &trace, &tlen, &s, err, sizeof(err)), KC_ERR_PROTOCOL);
        assert_int_equal(s.bad_packet, 6);
        assert_non_null(strstr(err, "packet 6: truncated"));
        free(trace);
        trace = NULL;
        free(c.buf);
    }
}

static void test_import_choices(void **state)
{
    (void)state;
    uint8_t init[64];
    struct pkt_spec two[] = {
        {'S', 1, 0x01, 5, 1, -115, init, 64, NULL},
        {'S', 1, 0x02, 7, 2, -115, init, 64, NULL},
    };
    struct pkt_spec none[] = {
        {'C', 1, 0x81, 3, 1, 0, init, 4, NULL},
    };
    struct pkt_spec bad[] = {
        {'S', 1, 0x01, 5, 1, -115, init, 64, NULL},
        {'Z', 1, 0x01, 5, 1, -115, init, 64, NULL},
    };
    struct kc_usbmon_options o = {-1, -1};
    struct kc_usbmon_summary s;
    struct cap c = {NULL, 0};
    char *trace = NULL, err[256] = "";
    size_t tlen = 0;

    report(init, 0xffffffffu, KC_HID_INIT, 0);
    cap_write(&c, KC_LINKTYPE_USB_LINUX, two, 2, 0);
    assert_int_equal(cap_import(&c, &o, &trace, &tlen, &s, err, sizeof(err)), KC_ERR_INVALID_ARG);
    assert_string_equal(err, "2 devices carry CTAPHID traffic: 1.5 2.7; choose one with --device "
                             "BUS.DEV");
    free(trace);
    free(c.buf);
    trace = NULL;
    cap_write(&c, KC_LINKTYPE_USB_LINUX, none, 1, 0);
    assert_int_equal(cap_import(&c, &o, &trace, &tlen, &s, err, sizeof(err)), KC_ERR_NO_DEVICE);
    free(trace);
    free(c.buf);
    trace = NULL;
    cap_write(&c, KC_LINKTYPE_USB_LINUX, bad, 2, 0);
    assert_int_equal(cap_import(&c, &o, &trace, &tlen, &s, err, sizeof(err)), KC_ERR_PROTOCOL);
    assert_string_equal(err, "packet 2: usbmon event type 0x5a is none of 'S', 'C', 'E'");
    free(trace);
    free(c.buf);
    trace = NULL;
    /* an Ethernet capture */
    cap_write(&c, 1, NULL, 0, 0);
    assert_int_equal(cap_import(&c, &o, &trace, &tlen, &s, err, sizeof(err)), KC_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "link type 1 (EN10MB) is not a Linux usbmon capture"));
    free(trace);
    free(c.buf);
    /* not a capture at all */
    {
        FILE *in = fmemopen((void *)"hello, world\n", 13, "rb");
        assert_int_equal(kc_usbmon_import_fp(in, &o, NULL, &s, err, sizeof(err)), KC_ERR_IO);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_headers),
        cmocka_unit_test(test_report_kinds),
        cmocka_unit_test(test_import),
        cmocka_unit_test(test_import_choices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
