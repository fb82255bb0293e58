/*
 * harness/vcard/uhid.c without a kernel: the report descriptors are walked
 * item by item, events are decoded from hand-made buffers, and the device
 * side runs against a FIFO standing in for /dev/uhid (one whole event per
 * read and write, as uhid does).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/uhid.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctaphid/hid_desc.h"
#include "ctaphid/status.h"
#include "harness/vcard/uhid.h"

/* What a walk over a report descriptor found. */
struct desc_summary {
    uint32_t first_usage_page; /* usage page of the first collection */
    uint32_t first_usage;
    unsigned input_bits;
    unsigned output_bits;
    int collections; /* opened */
    int depth_max;
    int balanced; /* every collection closed, none closed twice */
    int items;
};

/* Walks the short items of a HID report descriptor (HID 1.11, 6.2.2.2). */
static int walk_descriptor(const unsigned char *d, size_t len, struct desc_summary *s)
{
    static const size_t data_len[4] = {0, 1, 2, 4};
    uint32_t usage_page = 0, report_size = 0, report_count = 0, last_usage = 0;
    size_t i = 0;
    int depth = 0;

    memset(s, 0, sizeof(*s));
    s->balanced = 1;
    while (i < len) {
        unsigned char prefix = d[i];
        size_t n = data_len[prefix & 3];
        unsigned type = (prefix >> 2) & 3, tag = prefix >> 4;
        uint32_t v = 0;

        if (prefix == 0xfe || i + 1 + n > len)
            return -1; /* long items are not used; overruns are bugs */
        for (size_t k = 0; k < n; k++)
            v |= (uint32_t)d[i + 1 + k] << (8 * k);
        i += 1 + n;
        s->items++;
        if (type == 1 && tag == 0)
            usage_page = v;
        else if (type == 1 && tag == 7)
            report_size = v;
        else if (type == 1 && tag == 9)
            report_count = v;
        else if (type == 2 && tag == 0)
            last_usage = v;
        else if (type == 0 && tag == 0xa) { /* Collection */
            if (s->collections == 0) {
                s->first_usage_page = usage_page;
                s->first_usage = last_usage;
            }
            s->collections++;
            if (++depth > s->depth_max)
                s->depth_max = depth;
        } else if (type == 0 && tag == 0xc) { /* End Collection */
            if (--depth < 0)
                s->balanced = 0;
        } else if (type == 0 && tag == 8) {
            s->input_bits += report_size * report_count;
        } else if (type == 0 && tag == 9) {
            s->output_bits += report_size * report_count;
        }
    }
    if (depth != 0)
        s->balanced = 0;
    return 0;
}

static void test_fido_descriptor(void **state)
{
    struct desc_summary s;
    const unsigned char *d;
    size_t len;

    (void)state;
    d = vc_uhid_fido_descriptor(&len);
    assert_non_null(d);
    assert_int_equal(walk_descriptor(d, len, &s), 0);
    assert_int_equal(s.first_usage_page, 0xf1d0);
    assert_int_equal(s.first_usage, 0x01);
    assert_int_equal(s.input_bits, 64 * 8);
    assert_int_equal(s.output_bits, 64 * 8);
    assert_int_equal(s.collections, 1);
    assert_true(s.balanced);
    /* tools find the FIDO interface by its first three bytes */
    assert_memory_equal(d, "\x06\xd0\xf1", 3);
}

/* libctaphid's own descriptor parser, as rawctap and fido2-probe use it. */
static void test_descriptors_through_libctaphid(void **state)
{
    struct kc_hid_desc hd;
    const unsigned char *d;
    size_t len;

    (void)state;
    d = vc_uhid_fido_descriptor(&len);
    assert_int_equal(kc_hid_desc_parse(d, len, &hd), KC_OK);
    assert_true(kc_hid_desc_is_fido(&hd));
    assert_int_equal(hd.in_report_len, VC_UHID_REPORT_LEN);
    assert_int_equal(hd.out_report_len, VC_UHID_REPORT_LEN);
    assert_false(hd.uses_report_ids);

    d = vc_uhid_vendor_descriptor(&len);
    assert_int_equal(kc_hid_desc_parse(d, len, &hd), KC_OK);
    assert_false(kc_hid_desc_is_fido(&hd));
    assert_int_equal(hd.usage_page, 0xff00);
}

static void test_vendor_descriptor(void **state)
{
    struct desc_summary s;
    const unsigned char *d;
    size_t len;

    (void)state;
    d = vc_uhid_vendor_descriptor(&len);
    assert_int_equal(walk_descriptor(d, len, &s), 0);
    assert_int_equal(s.first_usage_page, 0xff00);
    assert_int_equal(s.input_bits, 64 * 8);
    assert_int_equal(s.output_bits, 64 * 8);
    assert_true(s.balanced);
    assert_memory_not_equal(d, "\x06\xd0\xf1", 3);
}

/* An UHID_OUTPUT event as the kernel sends it for a hidraw write. */
static void make_output(struct uhid_event *e, const unsigned char *data, size_t size)
{
    memset(e, 0, sizeof(*e));
    e->type = UHID_OUTPUT;
    e->u.output.rtype = UHID_OUTPUT_REPORT;
    e->u.output.size = (uint16_t)size;
    memcpy(e->u.output.data, data, size);
}

static void test_parse_output(void **state)
{
    unsigned char data[VC_UHID_REPORT_LEN + 1];
    struct vc_uhid_event ev;
    struct uhid_event e;

    (void)state;
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i + 1);
    data[0] = 0; /* report id */

    make_output(&e, data, sizeof(data));
    assert_int_equal(vc_uhid_parse_event(&e, sizeof(e), &ev), 0);
    assert_int_equal(ev.kind, VC_UHID_EV_OUTPUT);
    assert_memory_equal(ev.report, data + 1, VC_UHID_REPORT_LEN); /* id stripped */

    /* 64 bytes from hidraw are an id and 63 bytes: too short */
    make_output(&e, data, VC_UHID_REPORT_LEN);
    assert_int_equal(vc_uhid_parse_event(&e, sizeof(e), &ev), 0);
    assert_int_equal(ev.kind, VC_UHID_EV_BAD_OUTPUT);

    /* longer than the descriptor says: the kernel lets it through */
    make_output(&e, data, sizeof(data));
    e.u.output.size = 200;
    assert_int_equal(vc_uhid_parse_event(&e, sizeof(e), &ev), 0);
    assert_int_equal(ev.kind, VC_UHID_EV_BAD_OUTPUT);

    /* a report id this descriptor does not have */
    data[0] = 1;
    make_output(&e, data, sizeof(data));
    assert_int_equal(vc_uhid_parse_event(&e, sizeof(e), &ev), 0);
    assert_int_equal(ev.kind, VC_UHID_EV_BAD_OUTPUT);
    data[0] = 0;

    make_output(&e, data, sizeof(data));
    e.u.output.rtype = UHID_FEATURE_REPORT;
    assert_int_equal(vc_uhid_parse_event(&e, sizeof(e), &ev), 0);
    assert_int_equal(ev.kind, VC_UHID_EV_BAD_OUTPUT);

    /* a truncated event cannot carry a whole report */
    make_output(&e, data, sizeof(data));
    assert_int_equal(vc_uhid_parse_event(&e, 4 + 40, &ev), 0);
    assert_int_equal(ev.kind, VC_UHID_EV_BAD_OUTPUT);
}

static void test_parse_control_events(void **state)
{
    static const struct {
        uint32_t type;
        enum vc_uhid_event_kind kind;
    } cases[] = {
        {UHID_START, VC_UHID_EV_START},   {UHID_STOP, VC_UHID_EV_STOP},
        {UHID_OPEN, VC_UHID_EV_OPEN},     {UHID_CLOSE, VC_UHID_EV_CLOSE},
        {UHID_CREATE2, VC_UHID_EV_OTHER}, {0xdeadbeef, VC_UHID_EV_OTHER},
    };
    struct vc_uhid_event ev;
    struct uhid_event e;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&e, 0, sizeof(e));
        e.type = cases[i].type;
        assert_int_equal(vc_uhid_parse_event(&e, sizeof(e.type), &ev), 0);
        assert_int_equal(ev.kind, cases[i].kind);
    }

    memset(&e, 0, sizeof(e));
    e.type = UHID_GET_REPORT;
    e.u.get_report.id = 0x11223344;
    assert_int_equal(vc_uhid_parse_event(&e, sizeof(e), &ev), 0);
    assert_int_equal(ev.kind, VC_UHID_EV_GET_REPORT);
    assert_int_equal(ev.request_id, 0x11223344);
    /* without its id it cannot be answered */
    assert_int_equal(vc_uhid_parse_event(&e, sizeof(e.type) + 2, &ev), -1);

    memset(&e, 0, sizeof(e));
    e.type = UHID_SET_REPORT;
    e.u.set_report.id = 7;
    assert_int_equal(vc_uhid_parse_event(&e, sizeof(e), &ev), 0);
    assert_int_equal(ev.kind, VC_UHID_EV_SET_REPORT);
    assert_int_equal(ev.request_id, 7);

    assert_int_equal(vc_uhid_parse_event(&e, 3, &ev), -1);
    assert_int_equal(vc_uhid_parse_event(NULL, 100, &ev), -1);
}

static void test_open_errors(void **state)
{
    struct vc_uhid_config cfg;
    struct vc_uhid *u = (struct vc_uhid *)&cfg; /* must be reset to NULL */
    char err[256] = "";
    char longname[200];

    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    cfg.dev_path = "/nonexistent/kcard-uhid";
    assert_int_equal(vc_uhid_open(&cfg, &u, err, sizeof(err)), -1);
    assert_null(u);
    assert_non_null(strstr(err, "/nonexistent/kcard-uhid"));
    assert_non_null(strstr(err, "uhid module"));

    assert_int_equal(vc_uhid_open(NULL, &u, err, sizeof(err)), -1);
    assert_null(u);

    /* HID_NAME holds 127 bytes: refused before anything reaches the kernel */
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    cfg.dev_path = "/dev/null";
    cfg.name = longname;
    assert_int_equal(vc_uhid_open(&cfg, &u, err, sizeof(err)), -1);
    assert_null(u);
    assert_non_null(strstr(err, "too long"));

    vc_uhid_close(NULL); /* a no-op */
}

/* A FIFO in a fresh directory: the fake /dev/uhid. */
struct fake_uhid {
    char dir[64];
    char path[96];
    int kernel_fd; /* our end, the "kernel" */
};

static int fake_setup(void **state)
{
    struct fake_uhid *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/kcard-uhid-test.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/uhid", f->dir);
    if (mkfifo(f->path, 0600) != 0)
        return -1;
    f->kernel_fd = open(f->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (f->kernel_fd < 0)
        return -1;
    /* room for a few whole events in flight */
    (void)fcntl(f->kernel_fd, F_SETPIPE_SZ, 1 << 16);
    *state = f;
    return 0;
}

static int fake_teardown(void **state)
{
    struct fake_uhid *f = *state;

    close(f->kernel_fd);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Reads one whole event written by uhid.c. */
static void kernel_read(struct fake_uhid *f, struct uhid_event *e)
{
    ssize_t n = read(f->kernel_fd, e, sizeof(*e));

    assert_int_equal(n, (ssize_t)sizeof(*e));
}

static void kernel_write(struct fake_uhid *f, const struct uhid_event *e)
{
    assert_int_equal(write(f->kernel_fd, e, sizeof(*e)), (ssize_t)sizeof(*e));
}

static void kernel_send_type(struct fake_uhid *f, uint32_t type)
{
    struct uhid_event e;

    memset(&e, 0, sizeof(e));
    e.type = type;
    kernel_write(f, &e);
}

static void test_fake_device_round_trip(void **state)
{
    struct fake_uhid *f = *state;
    struct vc_uhid_config cfg;
    struct vc_uhid *u = NULL;
    unsigned char data[VC_UHID_REPORT_LEN + 1], report[VC_UHID_REPORT_LEN];
    const unsigned char *desc;
    struct uhid_event e;
    char err[256] = "";
    size_t desc_len;

    memset(&cfg, 0, sizeof(cfg));
    cfg.dev_path = f->path;
    cfg.vendor_id = 0x1209;
    cfg.product_id = 0x000a;
    cfg.name = "kcard test card";
    cfg.serial = "SERIAL-42";
    assert_int_equal(vc_uhid_open(&cfg, &u, err, sizeof(err)), 0);
    assert_non_null(u);
    assert_true(vc_uhid_fd(u) >= 0);
    assert_int_equal(vc_uhid_vendor_fd(u), -1);

    /* the CREATE2 request as the kernel gets it */
    kernel_read(f, &e);
    assert_int_equal(e.type, UHID_CREATE2);
    assert_string_equal((const char *)e.u.create2.name, "kcard test card");
    assert_string_equal((const char *)e.u.create2.uniq, "SERIAL-42");
    assert_string_equal((const char *)e.u.create2.phys, "kcard-vcard/input0");
    assert_int_equal(e.u.create2.bus, 0x03); /* BUS_USB */
    assert_int_equal(e.u.create2.vendor, 0x1209);
    assert_int_equal(e.u.create2.product, 0x000a);
    desc = vc_uhid_fido_descriptor(&desc_len);
    assert_int_equal(e.u.create2.rd_size, desc_len);
    assert_memory_equal(e.u.create2.rd_data, desc, desc_len);

    /* nothing pending: no report, no error */
    assert_int_equal(vc_uhid_read_output(u, report, 0), 0);

    kernel_send_type(f, UHID_START);
    kernel_send_type(f, UHID_OPEN);
    memset(data, 0xab, sizeof(data));
    data[0] = 0;
    data[1] = 0x42;
    make_output(&e, data, sizeof(data));
    kernel_write(f, &e);
    assert_int_equal(vc_uhid_read_output(u, report, 1000), 1);
    assert_int_equal(report[0], 0x42);
    assert_int_equal(report[63], 0xab);
    assert_true(vc_uhid_is_started(u));
    assert_int_equal(vc_uhid_open_count(u), 1);

    /* a short report is counted and skipped, the next good one returned */
    make_output(&e, data, 33);
    kernel_write(f, &e);
    data[1] = 0x43;
    make_output(&e, data, sizeof(data));
    kernel_write(f, &e);
    assert_int_equal(vc_uhid_read_output(u, report, 1000), 1);
    assert_int_equal(report[0], 0x43);
    assert_int_equal(vc_uhid_bad_outputs(u), 1);

    /* GET_REPORT is refused at once, so hidraw ioctls do not hang */
    memset(&e, 0, sizeof(e));
    e.type = UHID_GET_REPORT;
    e.u.get_report.id = 99;
    kernel_write(f, &e);
    /* a report behind it stops the module before it reads its own reply
     * back from the FIFO (a real uhid descriptor never echoes) */
    data[1] = 0x44;
    make_output(&e, data, sizeof(data));
    kernel_write(f, &e);
    assert_int_equal(vc_uhid_read_output(u, report, 1000), 1);
    assert_int_equal(report[0], 0x44);
    kernel_read(f, &e);
    assert_int_equal(e.type, UHID_GET_REPORT_REPLY);
    assert_int_equal(e.u.get_report_reply.id, 99);
    assert_int_equal(e.u.get_report_reply.err, EIO);
    assert_int_equal(vc_uhid_refused_requests(u), 1);

    /* an input report goes out as UHID_INPUT2 of 64 bytes */
    memset(report, 0x5a, sizeof(report));
    assert_int_equal(vc_uhid_send_input(u, report), 0);
    kernel_read(f, &e);
    assert_int_equal(e.type, UHID_INPUT2);
    assert_int_equal(e.u.input2.size, VC_UHID_REPORT_LEN);
    assert_memory_equal(e.u.input2.data, report, VC_UHID_REPORT_LEN);

    kernel_send_type(f, UHID_CLOSE);
    kernel_send_type(f, UHID_STOP);
    assert_int_equal(vc_uhid_read_output(u, report, 0), 0);
    assert_int_equal(vc_uhid_open_count(u), 0);
    assert_false(vc_uhid_is_started(u));

    vc_uhid_close(u);
    kernel_read(f, &e);
    assert_int_equal(e.type, UHID_DESTROY);
}

static void test_fake_vendor_interface(void **state)
{
    struct fake_uhid *f = *state;
    struct vc_uhid_config cfg;
    struct vc_uhid *u = NULL;
    unsigned char data[VC_UHID_REPORT_LEN + 1];
    const unsigned char *desc;
    struct uhid_event e;
    char err[256] = "";
    size_t desc_len;

    memset(&cfg, 0, sizeof(cfg));
    cfg.dev_path = f->path;
    cfg.vendor_interface = 1;
    assert_int_equal(vc_uhid_open(&cfg, &u, err, sizeof(err)), 0);
    assert_true(vc_uhid_vendor_fd(u) >= 0);

    kernel_read(f, &e); /* the FIDO interface first */
    assert_int_equal(e.type, UHID_CREATE2);
    assert_string_equal((const char *)e.u.create2.name, VC_UHID_DEFAULT_NAME);
    assert_string_equal((const char *)e.u.create2.phys, "kcard-vcard/input0");
    kernel_read(f, &e);
    assert_int_equal(e.type, UHID_CREATE2);
    assert_string_equal((const char *)e.u.create2.phys, "kcard-vcard/input1");
    desc = vc_uhid_vendor_descriptor(&desc_len);
    assert_int_equal(e.u.create2.rd_size, desc_len);
    assert_memory_equal(e.u.create2.rd_data, desc, desc_len);

    /* output to the vendor interface is drained and dropped */
    memset(data, 0, sizeof(data));
    make_output(&e, data, sizeof(data));
    kernel_write(f, &e);
    assert_int_equal(vc_uhid_service_vendor(u), 0);
    assert_int_equal(vc_uhid_service_vendor(u), 0); /* nothing left */
    assert_int_equal(vc_uhid_bad_outputs(u), 0);

    vc_uhid_close(u);
    kernel_read(f, &e);
    assert_int_equal(e.type, UHID_DESTROY);
    kernel_read(f, &e);
    assert_int_equal(e.type, UHID_DESTROY);
}

/* Without a bound driver the kernel never says START: a clear error. */
static void test_fake_no_start(void **state)
{
    struct fake_uhid *f = *state;
    struct vc_uhid_config cfg;
    struct vc_uhid *u = NULL;
    struct uhid_event e;
    char err[256] = "";

    memset(&cfg, 0, sizeof(cfg));
    cfg.dev_path = f->path;
    cfg.start_timeout_ms = 100;
    /* the module reads its own CREATE2 back from the FIFO: an event of
     * no interest, after which it waits for START in vain */
    assert_int_equal(vc_uhid_open(&cfg, &u, err, sizeof(err)), -1);
    assert_null(u);
    assert_non_null(strstr(err, "UHID_START"));
    assert_non_null(strstr(err, "hid-generic"));
    kernel_read(f, &e);
    assert_int_equal(e.type, UHID_DESTROY);
}

/* START arriving in time makes open succeed and the device started. */
static void test_fake_start(void **state)
{
    struct fake_uhid *f = *state;
    struct vc_uhid_config cfg;
    struct vc_uhid *u = NULL;
    struct uhid_event e;
    char err[256] = "";

    memset(&e, 0, sizeof(e));
    e.type = UHID_START;
    kernel_write(f, &e);
    memset(&cfg, 0, sizeof(cfg));
    cfg.dev_path = f->path;
    cfg.start_timeout_ms = 1000;
    /* START is read first (it was queued first); CREATE2 stays queued */
    assert_int_equal(vc_uhid_open(&cfg, &u, err, sizeof(err)), 0);
    assert_true(vc_uhid_is_started(u));
    kernel_read(f, &e);
    assert_int_equal(e.type, UHID_CREATE2);
    vc_uhid_close(u);
    kernel_read(f, &e);
    assert_int_equal(e.type, UHID_DESTROY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fido_descriptor),
        cmocka_unit_test(test_vendor_descriptor),
        cmocka_unit_test(test_descriptors_through_libctaphid),
        cmocka_unit_test(test_parse_output),
        cmocka_unit_test(test_parse_control_events),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test_setup_teardown(test_fake_device_round_trip, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_fake_vendor_interface, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_fake_no_start, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_fake_start, fake_setup, fake_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
