/* fido2-probe: the presence check's verdicts over a scripted transport
 * (answered by the virtual card's core), and the list/presence output. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctaphid/io.h"
#include "ctaphid/io_int.h"
#include "ctaphid/probe.h"
#include "ctaphid/status.h"
#include "ctaphid/transport_mem_int.h"
#include "harness/vcard/card.h"
#include "triage/fido2_probe.h"

/* ---- a device behind the mem transport ---------------------------------- */

struct fake {
    struct vc_card *card; /* NULL: CBOR gets CTAPHID_ERROR INVALID_CMD */
    uint8_t caps;
    bool answer_init;
};

static void push_message(struct kc_transport *t, uint32_t cid, uint8_t cmd, const uint8_t *msg,
                         size_t len)
{
    uint8_t report[KC_HID_REPORT_LEN];
    size_t n = kc_frag_count(len);

    for (size_t i = 0; i < n; i++) {
        assert_int_equal(kc_frag_report(cid, cmd, msg, len, i, report, sizeof(report)), KC_OK);
        assert_int_equal(kc_mem_push(t, report, sizeof(report), 0), KC_OK);
    }
}

static void responder(struct kc_transport *t, const uint8_t *r, size_t len, void *ctx)
{
    struct fake *f = ctx;
    uint32_t cid = (uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3];
    size_t bcnt = (size_t)r[5] << 8 | r[6];

    if (len < KC_HID_REPORT_LEN || !(r[4] & KC_HID_TYPE_INIT))
        return;
    if (r[4] == KC_HID_INIT) {
        uint8_t reply[KC_HID_INIT_RESP_LEN] = {0};
        if (!f->answer_init)
            return;
        memcpy(reply, r + 7, KC_HID_NONCE_LEN);
        reply[8] = 0x11; /* new channel 0x11223344 */
        reply[9] = 0x22;
        reply[10] = 0x33;
        reply[11] = 0x44;
        reply[12] = 2;
        reply[13] = 1;
        reply[14] = 2;
        reply[15] = 3;
        reply[16] = f->caps;
        push_message(t, cid, KC_HID_INIT, reply, sizeof(reply));
    } else if (r[4] == KC_HID_CBOR) {
        uint8_t resp[2048];
        size_t rlen = 0;
        if (f->card == NULL) {
            uint8_t code = KC_HID_ERR_INVALID_CMD;
            push_message(t, cid, KC_HID_ERROR, &code, 1);
            return;
        }
        assert_true(bcnt <= KC_HID_INIT_DATA); /* getInfo fits one report */
        assert_int_equal(vc_card_cbor(f->card, r + 7, bcnt, resp, sizeof(resp), &rlen, NULL, NULL),
                         0);
        push_message(t, cid, KC_HID_CBOR, resp, rlen);
    }
}

static struct kc_transport *fake_transport(struct fake *f)
{
    struct kc_transport *t = kc_mem_transport_new();

    assert_non_null(t);
    kc_mem_set_responder(t, responder, f);
    return t;
}

static void test_probe_present(void **state)
{
    (void)state;
    struct vc_config cfg = {.ctap1 = true};
    char err[256];
    struct fake f = {.caps = KC_HID_CAP_CBOR | KC_HID_CAP_WINK, .answer_init = true};
    struct kc_probe_result *r = calloc(1, sizeof(*r));
    json_t *j;

    assert_non_null(r);
    f.card = vc_card_new(&cfg, err, sizeof(err));
    assert_non_null(f.card);
    assert_int_equal(kc_probe_transport(fake_transport(&f), 1000, r), KC_OK);
    assert_true(r->present);
    assert_int_equal(r->fail, KC_PROBE_OK);
    assert_true(r->init_ok);
    assert_true(r->ctap2);
    assert_true(r->info_ok);
    assert_int_equal(r->init.cid, 0x11223344);
    assert_true(kc_info_has_version(&r->info, "FIDO_2_1"));
    assert_true(r->open_ms < 0); /* opened by the caller */
    assert_true(r->init_ms >= 0 && r->getinfo_ms >= 0 && r->total_ms >= r->init_ms);

    j = fp_probe_json(r);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "present")));
    assert_true(json_is_null(json_object_get(j, "error")));
    assert_true(json_is_null(json_object_get(j, "open_ms")));
    assert_true(json_is_number(json_object_get(j, "init_ms")));
    assert_true(json_is_number(json_object_get(j, "getinfo_ms")));
    assert_string_equal(json_string_value(json_object_get(j, "aaguid")),
                        "6b636172-642d-7663-6172-642d30303031");
    assert_int_equal(json_array_size(json_object_get(j, "pin_protocols")), 2);
    assert_true(json_is_boolean(json_object_get(json_object_get(j, "options"), "rk")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "ctaphid"), "device_version")),
        "1.2.3");
    json_decref(j);
    vc_card_free(f.card);
    free(r);
}

static void test_probe_init_timeout(void **state)
{
    (void)state;
    struct fake f = {.answer_init = false};
    struct kc_probe_result *r = calloc(1, sizeof(*r));
    json_t *j;

    assert_non_null(r);
    assert_int_equal(kc_probe_transport(fake_transport(&f), 150, r), KC_ERR_TIMEOUT);
    assert_false(r->present);
    assert_int_equal(r->fail, KC_PROBE_INIT_TIMEOUT);
    assert_non_null(strstr(r->error, "INIT timeout"));
    assert_non_null(strstr(r->error, "150 ms"));
    assert_non_null(strstr(r->fix, "power-cycle"));
    assert_true(r->init_ms >= 150);
    assert_true(r->getinfo_ms < 0);
    j = fp_probe_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "error_code")), "init-timeout");
    assert_true(json_is_false(json_object_get(j, "present")));
    assert_true(json_is_null(json_object_get(j, "getinfo_ms")));
    json_decref(j);
    free(r);
}

static void test_probe_getinfo_failed_and_ctap1(void **state)
{
    (void)state;
    struct fake f = {.caps = KC_HID_CAP_CBOR, .answer_init = true};
    struct kc_probe_result *r = calloc(1, sizeof(*r));
    json_t *j;

    assert_non_null(r);
    assert_int_equal(kc_probe_transport(fake_transport(&f), 500, r), KC_ERR_HID);
    assert_false(r->present);
    assert_true(r->init_ok);
    assert_int_equal(r->fail, KC_PROBE_GETINFO_FAILED);
    assert_non_null(strstr(r->error, "authenticatorGetInfo"));

    /* no CBOR capability: a CTAP1 card is present, getInfo is not asked */
    f.caps = KC_HID_CAP_WINK;
    assert_int_equal(kc_probe_transport(fake_transport(&f), 500, r), KC_OK);
    assert_true(r->present);
    assert_false(r->ctap2);
    assert_false(r->info_ok);
    assert_true(r->getinfo_ms < 0);
    j = fp_probe_json(r);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "versions"), 0)),
                        "U2F_V2");
    json_decref(j);
    free(r);
}

static void test_probe_unplugged(void **state)
{
    (void)state;
    struct kc_probe_result *r = calloc(1, sizeof(*r));
    struct kc_transport *t = kc_mem_transport_new();

    assert_non_null(r);
    assert_non_null(t);
    assert_int_equal(kc_mem_push_error(t, KC_ERR_UNPLUGGED), KC_OK);
    assert_int_equal(kc_probe_transport(t, 500, r), KC_ERR_UNPLUGGED);
    assert_int_equal(r->fail, KC_PROBE_UNPLUGGED);
    assert_string_equal(kc_probe_fail_code(r->fail), "unplugged");
    assert_non_null(strstr(r->fix, "re-enumerated"));
    free(r);
}

static void test_probe_no_device(void **state)
{
    (void)state;
    struct kc_probe_result *r = calloc(1, sizeof(*r));
    char dir[64];

    assert_non_null(r);
    snprintf(dir, sizeof(dir), "/tmp/kc_fp_XXXXXX");
    assert_non_null(mkdtemp(dir));
    setenv("KCARD_SYSFS_HIDRAW", dir, 1); /* empty: no HID device */
    setenv("KCARD_ANNOUNCE_DIR", dir, 1);
    assert_int_equal(kc_probe_card(NULL, 100, r), KC_ERR_NO_DEVICE);
    assert_false(r->present);
    assert_int_equal(r->fail, KC_PROBE_NO_DEVICE);
    assert_non_null(strstr(r->error, "no FIDO device"));
    assert_non_null(strstr(r->fix, "attach the card"));
    assert_true(r->open_ms < 0);
    assert_int_equal(kc_probe_card("/nonexistent/hidraw9", 100, r), KC_ERR_NO_DEVICE);
    assert_non_null(strstr(r->error, "/nonexistent/hidraw9"));
    assert_true(r->open_ms >= 0);
    assert_int_equal(kc_probe_card("bogus:x", 100, r), KC_ERR_INVALID_ARG);
    assert_int_equal(r->fail, KC_PROBE_OPEN_FAILED);
    assert_int_equal(kc_probe_card("auto", 100, NULL), KC_ERR_INVALID_ARG);
    assert_int_equal(rmdir(dir), 0);
    free(r);
}

/* Tests run as root: the permission verdict as an ordinary user sees it. */
static void test_probe_permission(void **state)
{
    (void)state;
    char dir[64], node[128];
    pid_t pid;
    int status;
    FILE *f;

    snprintf(dir, sizeof(dir), "/tmp/kc_fp_XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chmod(dir, 0755), 0);
    snprintf(node, sizeof(node), "%s/hidraw0", dir);
    f = fopen(node, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(chmod(node, 0600), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct kc_probe_result *r = calloc(1, sizeof(*r));
        if (r == NULL)
            _exit(9);
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(10);
        if (kc_probe_card(node, 100, r) != KC_ERR_PERMISSION || r->present ||
            r->fail != KC_PROBE_PERMISSION)
            _exit(11);
        if (strstr(r->error, node) == NULL || strstr(r->error, "mode 0600") == NULL)
            _exit(12);
        if (strstr(r->fix, "fixtures/udev/70-kcard-fido.rules") == NULL ||
            strcmp(kc_probe_fail_code(r->fail), "permission") != 0 || r->init_ms >= 0)
            _exit(13);
        free(r);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(unlink(node), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* ---- list output --------------------------------------------------------- */

static char *capture(void (*fn)(FILE *, const struct kc_hid_node *, size_t),
                     const struct kc_hid_node *v, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    fn(f, v, n);
    fclose(f);
    return buf;
}

static void list_json(FILE *f, const struct kc_hid_node *v, size_t n)
{
    assert_int_equal(fp_print_list_json(f, v, n), 0);
}

static void fill_nodes(struct kc_hid_node *v)
{
    memset(v, 0, 2 * sizeof(*v));
    snprintf(v[0].path, sizeof(v[0].path), "/dev/hidraw0");
    snprintf(v[0].uri, sizeof(v[0].uri), "hidraw:/dev/hidraw0");
    snprintf(v[0].kind, sizeof(v[0].kind), "hidraw");
    v[0].have_id = v[0].have_desc = v[0].fido = true;
    v[0].bus = 3;
    v[0].vid = 0x1209;
    v[0].pid = 0xa;
    v[0].usage_page = 0xf1d0;
    v[0].usage = 1;
    v[0].in_report_len = v[0].out_report_len = 64;
    v[0].interface = 0;
    snprintf(v[0].uniq, sizeof(v[0].uniq), "KC-1");
    v[0].access = KC_ACCESS_DENIED;
    v[0].access_errno = EACCES;
    v[0].have_stat = true;
    v[0].mode = 0600;
    snprintf(v[0].owner, sizeof(v[0].owner), "root");
    snprintf(v[0].group, sizeof(v[0].group), "root");
    kc_hid_access_fix(true, v[0].access, v[0].fix, sizeof(v[0].fix));
    v[0].n_siblings = 1;
    snprintf(v[0].siblings[0], sizeof(v[0].siblings[0]), "/dev/hidraw1");
    snprintf(v[1].path, sizeof(v[1].path), "/run/kcard/cards/vcard-1.uri");
    snprintf(v[1].uri, sizeof(v[1].uri), "udp:127.0.0.1:8111");
    snprintf(v[1].kind, sizeof(v[1].kind), "udp");
    v[1].fido = true;
    v[1].interface = -1;
}

static void test_list_output(void **state)
{
    (void)state;
    struct kc_hid_node v[2];
    json_error_t jerr;
    json_t *arr, *o;
    char *s;

    s = capture(fp_print_list_text, NULL, 0);
    assert_string_equal(s, "No CTAP HID devices found.\n");
    free(s);
    s = capture(list_json, NULL, 0);
    assert_string_equal(s, "[]\n");
    free(s);

    fill_nodes(v);
    s = capture(list_json, v, 2);
    assert_int_equal(strncmp(s, "[\n{\"path\":\"/dev/hidraw0\"", 24), 0); /* one object per line */
    arr = json_loads(s, 0, &jerr);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 2);
    o = json_array_get(arr, 0);
    assert_true(json_is_false(json_object_get(o, "permission")));
    assert_string_equal(json_string_value(json_object_get(o, "mode")), "0600");
    assert_string_equal(json_string_value(json_object_get(o, "usage_page")), "0xf1d0");
    assert_string_equal(json_string_value(json_object_get(o, "vendor_id")), "1209");
    assert_string_equal(json_string_value(json_object_get(o, "bus")), "usb");
    assert_string_equal(json_string_value(json_object_get(o, "hid_uniq")), "KC-1");
    assert_non_null(strstr(json_string_value(json_object_get(o, "fix")), "70-kcard-fido.rules"));
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "siblings"), 0)),
                        "/dev/hidraw1");
    o = json_array_get(arr, 1);
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "udp");
    assert_true(json_is_null(json_object_get(o, "permission")));
    assert_null(json_object_get(o, "fix"));
    json_decref(arr);
    free(s);

    s = capture(fp_print_list_text, v, 2);
    assert_non_null(strstr(s, "/dev/hidraw0  FIDO  hidraw  usb 1209:000a  serial KC-1\n"));
    assert_non_null(strstr(s, "read-write: no (Permission denied; owner root:root mode 0600)"));
    assert_non_null(strstr(s, "same device: /dev/hidraw1"));
    assert_non_null(strstr(s, "announced virtual card: udp:127.0.0.1:8111"));
    free(s);
}

static void test_probe_text(void **state)
{
    (void)state;
    struct kc_probe_result *r = calloc(1, sizeof(*r));
    struct fake f = {.answer_init = false};
    char *buf = NULL;
    size_t len = 0;
    FILE *out;

    assert_non_null(r);
    kc_probe_transport(fake_transport(&f), 50, r);
    out = open_memstream(&buf, &len);
    assert_non_null(out);
    fp_print_probe_text(out, r);
    fclose(out);
    assert_non_null(strstr(buf, "present: no\nerror: INIT timeout"));
    assert_non_null(strstr(buf, "[init-timeout]\nfix: "));
    assert_non_null(strstr(buf, "timings: open - init "));
    free(buf);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_present),
        cmocka_unit_test(test_probe_init_timeout),
        cmocka_unit_test(test_probe_getinfo_failed_and_ctap1),
        cmocka_unit_test(test_probe_unplugged),
        cmocka_unit_test(test_probe_no_device),
        cmocka_unit_test(test_probe_permission),
        cmocka_unit_test(test_list_output),
        cmocka_unit_test(test_probe_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
