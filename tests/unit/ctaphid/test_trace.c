/* Packet trace output, read back: JSON lines through jansson, hex lines by
 * their fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ctaphid/io.h"
#include "ctaphid/status.h"
#include "ctaphid/trace.h"
#include "ctaphid/transport.h"
#include "ctaphid/transport_mem_int.h"

static const uint8_t init_pkt[64] = {0xff, 0xff, 0xff, 0xff, 0x86, 0x00, 0x08, 1,
                                     2,    3,    4,    5,    6,    7,    8};
static const uint8_t cont_pkt[64] = {0x01, 0x02, 0x03, 0x04, 0x05, 0xaa};

struct capture {
    char *text;
    size_t len;
    FILE *f;
};

static void capture_open(struct capture *c)
{
    memset(c, 0, sizeof(*c));
    c->f = open_memstream(&c->text, &c->len);
    assert_non_null(c->f);
}

static void capture_close(struct capture *c)
{
    fclose(c->f);
}

/* The n-th line (0-based) parsed as JSON. */
static json_t *json_line(const char *text, int n)
{
    const char *p = text;
    json_error_t err;

    for (int i = 0; i < n; i++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    const char *end = strchr(p, '\n');
    assert_non_null(end);
    json_t *o = json_loadb(p, (size_t)(end - p), 0, &err);
    assert_non_null(o);
    return o;
}

static int count_lines(const char *text)
{
    int n = 0;

    for (const char *p = text; *p != '\0'; p++)
        n += *p == '\n';
    return n;
}

static void test_json_lines(void **state)
{
    (void)state;
    struct capture c;
    struct kc_trace tr;
    json_t *o;
    char hex[129];

    capture_open(&c);
    kc_trace_init(&tr, c.f, KC_TRACE_JSON);
    kc_trace_report(&tr, KC_TRACE_OUT, init_pkt, sizeof(init_pkt));
    kc_trace_report(&tr, KC_TRACE_IN, cont_pkt, sizeof(cont_pkt));
    kc_trace_event(&tr, "read", 5, "unplugged");
    capture_close(&c);
    assert_int_equal(count_lines(c.text), 3);

    o = json_line(c.text, 0);
    assert_string_equal(json_string_value(json_object_get(o, "dir")), "out");
    assert_string_equal(json_string_value(json_object_get(o, "cid")), "ffffffff");
    assert_string_equal(json_string_value(json_object_get(o, "cmd")), "INIT");
    assert_true(json_is_null(json_object_get(o, "seq")));
    assert_int_equal(json_integer_value(json_object_get(o, "len")), 8);
    assert_true(json_is_integer(json_object_get(o, "t_us")));
    for (size_t i = 0; i < 64; i++)
        snprintf(hex + 2 * i, 3, "%02x", init_pkt[i]);
    assert_string_equal(json_string_value(json_object_get(o, "hex")), hex);
    json_decref(o);

    o = json_line(c.text, 1);
    assert_string_equal(json_string_value(json_object_get(o, "dir")), "in");
    assert_string_equal(json_string_value(json_object_get(o, "cid")), "01020304");
    assert_true(json_is_null(json_object_get(o, "cmd")));
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 5);
    assert_int_equal(strlen(json_string_value(json_object_get(o, "hex"))), 128);
    json_decref(o);

    o = json_line(c.text, 2);
    assert_string_equal(json_string_value(json_object_get(o, "event")), "read");
    assert_int_equal(json_integer_value(json_object_get(o, "errno")), 5);
    assert_string_equal(json_string_value(json_object_get(o, "detail")), "unplugged");
    assert_true(json_is_string(json_object_get(o, "error")));
    json_decref(o);
    free(c.text);
}

static void test_timestamps_monotonic(void **state)
{
    (void)state;
    struct capture c;
    struct kc_trace tr;
    json_int_t prev = -1;

    capture_open(&c);
    kc_trace_init(&tr, c.f, KC_TRACE_JSON);
    for (int i = 0; i < 5; i++)
        kc_trace_report(&tr, KC_TRACE_IN, cont_pkt, sizeof(cont_pkt));
    capture_close(&c);
    for (int i = 0; i < 5; i++) {
        json_t *o = json_line(c.text, i);
        json_int_t t = json_integer_value(json_object_get(o, "t_us"));
        assert_true(t >= prev);
        prev = t;
        json_decref(o);
    }
    free(c.text);
}

static void test_hex_lines(void **state)
{
    (void)state;
    struct capture c;
    struct kc_trace tr;
    char line0[400], line1[400], line2[400];
    unsigned long sec, usec;

    capture_open(&c);
    kc_trace_init(&tr, c.f, KC_TRACE_HEX);
    kc_trace_report(&tr, KC_TRACE_OUT, init_pkt, sizeof(init_pkt));
    kc_trace_report(&tr, KC_TRACE_IN, cont_pkt, sizeof(cont_pkt));
    kc_trace_event(&tr, "write", 19, "no such device");
    capture_close(&c);
    assert_int_equal(count_lines(c.text), 3);
    assert_int_equal(sscanf(c.text, "%399[^\n]\n%399[^\n]\n%399[^\n]", line0, line1, line2), 3);

    assert_int_equal(sscanf(line0, "+%lu.%6lu", &sec, &usec), 2);
    assert_non_null(strstr(line0, " > cid=ffffffff INIT len=8 | ff ff ff ff 86 00 08 01 02"));
    assert_non_null(strstr(line1, " < cid=01020304 seq=5 | 01 02 03 04 05 aa 00"));
    assert_non_null(strstr(line2, " ! write errno=19 ("));
    assert_non_null(strstr(line2, "): no such device"));
    free(c.text);
}

static void test_null_is_noop(void **state)
{
    (void)state;
    struct kc_trace tr;

    kc_trace_report(NULL, KC_TRACE_OUT, init_pkt, sizeof(init_pkt));
    kc_trace_event(NULL, "x", 0, NULL);
    kc_trace_init(&tr, NULL, KC_TRACE_JSON);
    kc_trace_report(&tr, KC_TRACE_OUT, init_pkt, sizeof(init_pkt));
    kc_trace_event(&tr, "x", 1, "y");
    assert_null(tr.out);
}

static void init_responder(struct kc_transport *t, const uint8_t *report, size_t len, void *ctx)
{
    uint8_t r[64] = {0xff, 0xff, 0xff, 0xff, 0x86, 0x00, 17};

    (void)ctx;
    if (len < 15 || report[4] != KC_HID_INIT)
        return;
    memcpy(r + 7, report + 7, 8);
    memcpy(r + 15, "\x0a\x0b\x0c\x0d\x02\x01\x00\x00\x04", 9);
    kc_mem_push(t, r, sizeof(r), 0);
}

/* A device handle traces every report and the timeout. */
static void test_dev_traces_reports(void **state)
{
    (void)state;
    struct capture c;
    struct kc_trace tr;
    struct kc_transport *t = kc_mem_transport_new();
    struct kc_timeouts to = {200, 30, 100, 10};
    struct kc_dev *d;
    uint8_t out[8];
    size_t n;
    int lines;

    capture_open(&c);
    kc_trace_init(&tr, c.f, KC_TRACE_JSON);
    kc_mem_set_responder(t, init_responder, NULL);
    assert_int_equal(kc_dev_wrap(&d, t, &to), KC_OK);
    kc_dev_set_trace(d, &tr);
    assert_int_equal(kc_dev_init(d, NULL), KC_OK);
    assert_int_equal(kc_dev_ping(d, (const uint8_t *)"x", 1, out, sizeof(out), &n), KC_ERR_TIMEOUT);
    kc_dev_close(d);
    capture_close(&c);

    /* INIT out, INIT in, PING out, timeout event, CANCEL out, cancel event */
    lines = count_lines(c.text);
    assert_int_equal(lines, 6);
    json_t *o = json_line(c.text, 1);
    assert_string_equal(json_string_value(json_object_get(o, "dir")), "in");
    assert_string_equal(json_string_value(json_object_get(o, "cmd")), "INIT");
    json_decref(o);
    o = json_line(c.text, 2);
    assert_string_equal(json_string_value(json_object_get(o, "cid")), "0a0b0c0d");
    assert_string_equal(json_string_value(json_object_get(o, "cmd")), "PING");
    json_decref(o);
    o = json_line(c.text, 3);
    assert_string_equal(json_string_value(json_object_get(o, "event")), "timeout");
    assert_string_equal(json_string_value(json_object_get(o, "detail")), "command");
    json_decref(o);
    o = json_line(c.text, 4);
    assert_string_equal(json_string_value(json_object_get(o, "cmd")), "CANCEL");
    json_decref(o);
    free(c.text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_lines),         cmocka_unit_test(test_timestamps_monotonic),
        cmocka_unit_test(test_hex_lines),          cmocka_unit_test(test_null_is_noop),
        cmocka_unit_test(test_dev_traces_reports),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
