/* fido2-probe: list HID nodes (--list) or check that a card is present
 * (bounded CTAPHID INIT plus getInfo, timed), for people or as JSON. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/status.h"
#include "ctaphid/trace.h"
#include "triage/fido2_probe.h"
#include "util/num.h"

#define FP_LIST_MAX 128

struct fp_opts {
    bool list, json, all;
    const char *device;
    int timeout_ms;
    int follow_ms; /* 0: no --follow */
    enum kc_enum_backend backend;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fido2-probe [--json] [--device URI] [--timeout-ms MS] [--backend B]\n"
            "       fido2-probe --list [--all] [--json] [--backend sysfs|hidapi]\n"
            "Without --list: the card-presence check, a bounded CTAPHID INIT plus\n"
            "authenticatorGetInfo on the chosen (--device) or auto-found card, timed.\n"
            "\n"
            "  -l, --list             list FIDO HID nodes and announced virtual cards\n"
            "  -a, --all              list non-FIDO HID nodes too (implies --list)\n"
            "  -j, --json             JSON on stdout (list: an array of node objects)\n"
            "  -d, --device URI       hidraw:/dev/hidrawN, /dev/hidrawN, hidapi:PATH,\n"
            "                         udp:HOST:PORT[?local=PORT] or auto (default)\n"
            "  -t, --timeout-ms MS    bound of INIT and of getInfo (default %d)\n"
            "  -b, --backend B        enumeration: sysfs (default) or hidapi\n"
            "  -f, --follow MS        after the check, hold the card's node and wait up to MS\n"
            "                         for it to re-enumerate; find it again by HID id and\n"
            "                         serial and check it at its new node (hidraw)\n"
            "  -h, --help             this text\n"
            "  -V, --version          print the version\n"
            "\n"
            "Environment: KCARD_SYSFS_HIDRAW, KCARD_DEV_DIR, KCARD_ANNOUNCE_DIR.\n"
            "Exit status: 0 listed / card present, 1 card not present or the check failed\n"
            "(the output says why), 2 usage error.\n",
            KC_PROBE_TIMEOUT_DEFAULT_MS);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "fido2-probe: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'fido2-probe --help'.\n");
    return FP_EXIT_USAGE;
}

static int parse_opts(int argc, char **argv, struct fp_opts *o, bool *done, int *rc)
{
    static const struct option lo[] = {
        {"list", no_argument, NULL, 'l'},
        {"all", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"device", required_argument, NULL, 'd'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"backend", required_argument, NULL, 'b'},
        {"follow", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;

    *done = false;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":lajd:t:b:f:hV", lo, NULL)) != -1) {
        switch (c) {
        case 'l':
            o->list = true;
            break;
        case 'a':
            o->all = o->list = true;
            break;
        case 'j':
            o->json = true;
            break;
        case 'd':
            o->device = optarg;
            break;
        case 't':
            if (kcu_parse_int(optarg, 1, 600000, &o->timeout_ms) != 0)
                return usage_error("--timeout-ms wants 1..600000, not '%s'", optarg);
            break;
        case 'f':
            if (kcu_parse_int(optarg, 1, 3600000, &o->follow_ms) != 0)
                return usage_error("--follow wants 1..3600000 ms, not '%s'", optarg);
            break;
        case 'b':
            if (strcmp(optarg, "sysfs") == 0)
                o->backend = KC_ENUM_SYSFS;
            else if (strcmp(optarg, "hidapi") == 0)
                o->backend = KC_ENUM_HIDAPI;
            else
                return usage_error("--backend is sysfs or hidapi, not '%s'", optarg);
            break;
        case 'h':
            usage(stdout);
            *done = true;
            *rc = FP_EXIT_OK;
            return 0;
        case 'V':
            printf("fido2-probe %s\n", FP_VERSION);
            *done = true;
            *rc = FP_EXIT_OK;
            return 0;
        case ':':
            return usage_error("%s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (o->list && o->device != NULL)
        return usage_error("--device is for the presence check, not --list");
    if (o->list && o->follow_ms > 0)
        return usage_error("--follow is for the presence check, not --list");
    return 0;
}

static int run_list(const struct fp_opts *o)
{
    struct kc_hid_node *nodes = calloc(FP_LIST_MAX, sizeof(*nodes));
    unsigned flags = KC_ENUM_ANNOUNCED | (o->all ? KC_ENUM_ALL : 0);
    size_t n = 0, all_n = 0;
    int rc;

    if (nodes == NULL) {
        fprintf(stderr, "fido2-probe: out of memory\n");
        return FP_EXIT_FAIL;
    }
    if ((rc = kc_hid_enum(o->backend, flags, nodes, FP_LIST_MAX, &n)) != KC_OK) {
        fprintf(stderr, "fido2-probe: enumeration failed: %s\n", kc_strerror(rc));
        free(nodes);
        return FP_EXIT_FAIL;
    }
    if (n > FP_LIST_MAX) {
        fprintf(stderr, "fido2-probe: %zu nodes, showing the first %d\n", n, FP_LIST_MAX);
        n = FP_LIST_MAX;
    }
    /* the runbook's "only a non-FIDO interface visible": say so, aside */
    if (n == 0 && !o->all &&
        kc_hid_enum(o->backend, KC_ENUM_ALL | KC_ENUM_NO_ACCESS, NULL, 0, &all_n) == KC_OK &&
        all_n > 0)
        fprintf(stderr,
                "fido2-probe: %zu HID node(s) without the FIDO usage page 0xF1D0 hidden; "
                "--all shows them\n",
                all_n);
    if (o->json)
        rc = fp_print_list_json(stdout, nodes, n) == 0 ? FP_EXIT_OK : FP_EXIT_FAIL;
    else {
        fp_print_list_text(stdout, nodes, n);
        rc = FP_EXIT_OK;
    }
    free(nodes);
    return rc;
}

/* --backend hidapi without --device: the first FIDO node hidapi finds. */
static const char *hidapi_auto(char *uri, size_t len)
{
    struct kc_hid_node *nodes = calloc(16, sizeof(*nodes));
    size_t n = 0;
    const char *r = "auto";

    if (nodes != NULL && kc_hid_enum(KC_ENUM_HIDAPI, KC_ENUM_NO_ACCESS, nodes, 16, &n) == KC_OK &&
        n > 0) {
        snprintf(uri, len, "%s", nodes[0].uri);
        r = uri;
    }
    free(nodes);
    return r;
}

struct fp_follow {
    bool done;
    char from[KC_URI_MAX], to[KC_URI_MAX];
    double waited_ms;
    char error[640];
};

/* --follow: hold the node the check used until it goes away (a stale
 * descriptor reads as KC_ERR_UNPLUGGED), find the same card again with
 * kc_transport_reopen and check it there. */
static int follow_card(const struct fp_opts *o, const struct kc_probe_result *first,
                       struct kc_probe_result *second, struct fp_follow *fo)
{
    struct kc_transport *t = NULL;
    uint8_t buf[1024];
    uint64_t start, deadline;
    char err[512];
    int rc;

    snprintf(fo->from, sizeof(fo->from), "%s", first->uri);
    if ((rc = kc_transport_open(first->uri, &t, err, sizeof(err))) != KC_OK) {
        snprintf(fo->error, sizeof(fo->error), "cannot hold the card: %s", err);
        return rc;
    }
    fprintf(stderr, "fido2-probe: holding %s; waiting up to %d ms for the card to re-enumerate\n",
            kc_transport_uri(t), o->follow_ms);
    fflush(stderr);
    start = kc_now_us();
    deadline = start + (uint64_t)o->follow_ms * 1000u;
    for (;;) {
        uint64_t now = kc_now_us();
        int wait_ms;
        if (now >= deadline) {
            snprintf(fo->error, sizeof(fo->error),
                     "the card at %.300s did not go away within %d ms", kc_transport_uri(t),
                     o->follow_ms);
            kc_transport_close(t);
            return KC_ERR_TIMEOUT;
        }
        wait_ms = (int)((deadline - now) / 1000u);
        rc = kc_transport_read(t, buf, sizeof(buf), wait_ms > 200 ? 200 : wait_ms);
        if (rc == KC_ERR_UNPLUGGED)
            break;
        if (rc < 0) {
            snprintf(fo->error, sizeof(fo->error), "while holding the card: %s",
                     kc_transport_last_error(t));
            kc_transport_close(t);
            return rc;
        }
    }
    rc = kc_transport_reopen_wait(t, (int)((deadline - kc_now_us()) / 1000u));
    if (rc != KC_OK) {
        snprintf(fo->error, sizeof(fo->error), "the card did not come back: %s",
                 kc_transport_last_error(t));
        kc_transport_close(t);
        return rc;
    }
    fo->waited_ms = (double)(kc_now_us() - start) / 1000.0;
    snprintf(fo->to, sizeof(fo->to), "%s", kc_transport_uri(t));
    fo->done = true;
    return kc_probe_transport(t, o->timeout_ms, second);
}

static int print_json(json_t *j)
{
    int rc =
        j != NULL && json_dumpf(j, stdout,
                                JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) == 0
            ? 0
            : -1;

    json_decref(j);
    fputc('\n', stdout);
    return rc;
}

static int report(const struct fp_opts *o, const struct kc_probe_result *first,
                  const struct kc_probe_result *second, const struct fp_follow *fo)
{
    if (!o->json) {
        fp_print_probe_text(stdout, first);
        if (fo == NULL)
            return 0;
        if (!fo->done) {
            printf("follow: %s\n", fo->error);
            return 0;
        }
        printf("followed: %s -> %s after %.1f ms\n", fo->from, fo->to, fo->waited_ms);
        fp_print_probe_text(stdout, second);
        return 0;
    }
    json_t *j = fp_probe_json(fo != NULL && fo->done ? second : first);
    if (j != NULL && fo != NULL) {
        json_t *f = json_object();
        json_object_set_new(f, "from", json_string(fo->from));
        json_object_set_new(f, "to", fo->done ? json_string(fo->to) : json_null());
        json_object_set_new(f, "waited_ms", fo->done ? json_real(fo->waited_ms) : json_null());
        json_object_set_new(f, "error", fo->done ? json_null() : json_string(fo->error));
        if (fo->done)
            json_object_set_new(f, "first", fp_probe_json(first));
        json_object_set_new(j, "follow", f);
    }
    return print_json(j);
}

static int run_probe(const struct fp_opts *o)
{
    struct kc_probe_result *r = calloc(2, sizeof(*r));
    struct fp_follow fo;
    char uri[KC_URI_MAX];
    const char *dev = o->device;
    bool ok;

    if (r == NULL) {
        fprintf(stderr, "fido2-probe: out of memory\n");
        return FP_EXIT_FAIL;
    }
    memset(&fo, 0, sizeof(fo));
    if (dev == NULL && o->backend == KC_ENUM_HIDAPI)
        dev = hidapi_auto(uri, sizeof(uri));
    kc_probe_card(dev, o->timeout_ms, &r[0]);
    ok = r[0].present;
    if (o->follow_ms > 0) {
        if (r[0].open_ms >= 0 && r[0].fail != KC_PROBE_PERMISSION &&
            r[0].fail != KC_PROBE_NO_DEVICE) {
            (void)follow_card(o, &r[0], &r[1], &fo);
        } else {
            snprintf(fo.from, sizeof(fo.from), "%s", r[0].uri);
            snprintf(fo.error, sizeof(fo.error),
                     "nothing to follow: the check did not open the card");
        }
        ok = fo.done && r[1].present;
    }
    if (report(o, &r[0], &r[1], o->follow_ms > 0 ? &fo : NULL) != 0)
        ok = false;
    free(r);
    return ok ? FP_EXIT_OK : FP_EXIT_FAIL;
}

int main(int argc, char **argv)
{
    struct fp_opts o = {.timeout_ms = KC_PROBE_TIMEOUT_DEFAULT_MS, .backend = KC_ENUM_SYSFS};
    bool done;
    int rc = 0;

    if (parse_opts(argc, argv, &o, &done, &rc) != 0)
        return FP_EXIT_USAGE;
    if (done)
        return rc;
    return o.list ? run_list(&o) : run_probe(&o);
}
