/* rawctap trace: `trace import` turns a Linux usbmon capture (pcap or
 * pcapng) of a real card into a kcard JSON-lines trace that --device
 * replay:FILE and vcard --script play back; and the sentence a diverged
 * replay ended with, printed once the command is over. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/replay.h"
#include "ctaphid/status.h"
#include "ctaphid/usbmon.h"
#include "triage/rawctap.h"
#include "util/num.h"

void rc_replay_note(struct rc_ctx *ctx)
{
    const char *e = ctx->dev != NULL ? kc_replay_error(kc_dev_transport(ctx->dev)) : NULL;

    if (e == NULL)
        return;
    /* rc_fail printed it where the divergence ended the command; the JSON
     * result keeps it whole */
    if (ctx->json && ctx->result != NULL) {
        json_object_set_new(ctx->result, "error", json_string(e));
        json_object_set_new(ctx->result, "replay_error", json_string(e));
    }
}

struct rc_import_opts {
    const char *out;
    int bus, dev;
};

static int rc_import_opt(struct rc_ctx *ctx, void *st, int c, const char *arg)
{
    struct rc_import_opts *o = st;
    (void)ctx;
    if (c != 'o')
        return rc_usage_error("trace", "unknown option");
    o->out = arg;
    return 0;
}

/* --device after "trace" names the USB device, BUS.DEV as usbmon numbers
 * them (the global option parser took it as a device URI). */
static int rc_import_device(const char *arg, struct rc_import_opts *o)
{
    const char *dot = strchr(arg, '.');
    char bus[16];
    long b, d;

    if (dot == NULL || (size_t)(dot - arg) >= sizeof(bus))
        return rc_usage_error("trace", "--device wants BUS.DEV (e.g. 1.5), not '%s'", arg);
    memcpy(bus, arg, (size_t)(dot - arg));
    bus[dot - arg] = '\0';
    if (kcu_parse_long(bus, 0, 65535, &b) != 0 || kcu_parse_long(dot + 1, 0, 255, &d) != 0)
        return rc_usage_error("trace", "--device wants BUS.DEV (e.g. 1.5), not '%s'", arg);
    o->bus = (int)b;
    o->dev = (int)d;
    return 0;
}

/* Exit codes of trace import (rawctap.1): 2 for what cannot be imported as
 * given (not a capture, another link type, no or several CTAPHID devices),
 * 3 for a damaged or truncated capture (the packet named), 1 when the
 * trace cannot be written. */
static int rc_import_exit(int rc)
{
    switch (rc) {
    case KC_ERR_PROTOCOL:
        return RC_EXIT_TRANSPORT;
    case KC_ERR_NOMEM:
        return RC_EXIT_LOCAL;
    default:
        return RC_EXIT_USAGE;
    }
}

static const char *rc_linktype_name(int lt)
{
    return lt == KC_LINKTYPE_USB_LINUX           ? "USB_LINUX"
           : lt == KC_LINKTYPE_USB_LINUX_MMAPPED ? "USB_LINUX_MMAPPED"
                                                 : "?";
}

static void rc_import_summary(struct rc_ctx *ctx, const char *capture, const char *out,
                              const struct kc_usbmon_summary *s)
{
    char dev[16], lt[48];
    double dur = s->last_us >= s->first_us ? (double)(s->last_us - s->first_us) / 1e6 : 0.0;
    FILE *fp = out != NULL ? stdout : stderr; /* the trace may be on stdout */

    snprintf(dev, sizeof(dev), "%u.%u", s->bus, s->dev);
    snprintf(lt, sizeof(lt), "%d (%s)", s->linktype, rc_linktype_name(s->linktype));
    if (ctx->json) {
        json_object_set_new(ctx->result, "capture", json_string(capture));
        json_object_set_new(ctx->result, "trace", out ? json_string(out) : json_null());
        json_object_set_new(ctx->result, "device", json_string(dev));
        json_object_set_new(ctx->result, "link_type", json_integer(s->linktype));
        json_object_set_new(ctx->result, "packets", json_integer((json_int_t)s->packets));
        json_object_set_new(ctx->result, "reports_out", json_integer((json_int_t)s->reports_out));
        json_object_set_new(ctx->result, "reports_in", json_integer((json_int_t)s->reports_in));
        json_object_set_new(ctx->result, "transactions", json_integer((json_int_t)s->transactions));
        json_object_set_new(ctx->result, "first_us", json_integer((json_int_t)s->first_us));
        json_object_set_new(ctx->result, "last_us", json_integer((json_int_t)s->last_us));
        json_object_set_new(ctx->result, "duration_s", json_real(dur));
        return;
    }
    fprintf(fp, "device: %s\n", dev);
    fprintf(fp, "link_type: %s\n", lt);
    fprintf(fp, "packets: %llu\n", (unsigned long long)s->packets);
    fprintf(fp, "reports_out: %llu\n", (unsigned long long)s->reports_out);
    fprintf(fp, "reports_in: %llu\n", (unsigned long long)s->reports_in);
    fprintf(fp, "transactions: %llu\n", (unsigned long long)s->transactions);
    fprintf(fp, "first: %llu.%06llu\n", (unsigned long long)(s->first_us / 1000000u),
            (unsigned long long)(s->first_us % 1000000u));
    fprintf(fp, "last: %llu.%06llu\n", (unsigned long long)(s->last_us / 1000000u),
            (unsigned long long)(s->last_us % 1000000u));
    fprintf(fp, "duration_s: %.6f\n", dur);
    if (out != NULL)
        fprintf(fp, "trace: %s\n", out);
}

static int rc_trace_import(struct rc_ctx *ctx, const struct rc_import_opts *o, const char *capture)
{
    struct kc_usbmon_options uo = {o->bus, o->dev};
    struct kc_usbmon_summary s;
    char err[512] = "";
    char *buf = NULL;
    size_t blen = 0;
    FILE *mem = NULL;
    int rc, code = RC_EXIT_OK;

    if (o->out != NULL && (mem = open_memstream(&buf, &blen)) == NULL) {
        rc_err(ctx, "trace import: out of memory");
        return RC_EXIT_LOCAL;
    }
    rc = kc_usbmon_import_file(capture, &uo, o->out != NULL ? mem : stdout, &s, err, sizeof(err));
    if (mem != NULL && fclose(mem) != 0 && rc == KC_OK)
        rc = KC_ERR_NOMEM;
    if (rc != KC_OK) {
        code = rc_import_exit(rc);
        rc_err(ctx, "trace import %s: %s", capture, err[0] ? err : kc_strerror(rc));
        rc_json_error(ctx, kc_err_name(rc), code);
        if (ctx->json && s.bad_packet > 0)
            json_object_set_new(ctx->result, "packet", json_integer((json_int_t)s.bad_packet));
        free(buf);
        return code;
    }
    fflush(stdout);
    if (o->out != NULL && rc_write_atomic(o->out, buf, blen) != 0) {
        rc_err(ctx, "trace import: cannot write %s: %s", o->out, strerror(errno));
        rc_json_error(ctx, "KC_ERR_IO", RC_EXIT_LOCAL);
        free(buf);
        return RC_EXIT_LOCAL;
    }
    free(buf);
    rc_import_summary(ctx, capture, o->out, &s);
    return RC_EXIT_OK;
}

int rc_cmd_trace(struct rc_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {{"output", required_argument, NULL, 'o'},
                                       {NULL, 0, NULL, 0}};
    struct rc_import_opts o = {NULL, -1, -1};
    const char *uri_before = ctx->uri;
    int first = 0;
    int r = rc_parse_cmd(ctx, argc, argv, "o:", lo, rc_import_opt, &o, &first);

    if (r != 0)
        return r;
    if (ctx->uri != uri_before && (r = rc_import_device(ctx->uri, &o)) != 0)
        return r;
    if (first >= argc)
        return rc_usage_error("trace", "which subcommand? (import)");
    if (strcmp(argv[first], "import") != 0)
        return rc_usage_error("trace", "unknown subcommand '%s' (import)", argv[first]);
    if (first + 1 >= argc)
        return rc_usage_error("trace", "import wants a capture file (.pcap or .pcapng)");
    if (first + 2 < argc)
        return rc_usage_error("trace", "unexpected argument '%s'", argv[first + 2]);
    if (ctx->json && o.out == NULL)
        return rc_usage_error("trace", "--json needs -o OUT (the trace would share stdout)");
    return rc_trace_import(ctx, &o, argv[first + 1]);
}
