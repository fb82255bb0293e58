/* Card-presence check: open, CTAPHID INIT, getInfo, each bounded and timed.
 * The first failing step decides the verdict and the fix. */
#include "ctaphid/probe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctaphid/clock.h"
#include "ctaphid/hid_enum.h"
#include "ctaphid/status.h"
#include "ctaphid/trace.h"
#include "ctaphid/transport_int.h"

const char *kc_probe_fail_code(enum kc_probe_fail f)
{
    switch (f) {
    case KC_PROBE_OK:
        return "ok";
    case KC_PROBE_NO_DEVICE:
        return "no-device";
    case KC_PROBE_PERMISSION:
        return "permission";
    case KC_PROBE_BUSY:
        return "busy";
    case KC_PROBE_OPEN_FAILED:
        return "open-failed";
    case KC_PROBE_INIT_TIMEOUT:
        return "init-timeout";
    case KC_PROBE_INIT_FAILED:
        return "init-failed";
    case KC_PROBE_GETINFO_TIMEOUT:
        return "getinfo-timeout";
    case KC_PROBE_GETINFO_FAILED:
        return "getinfo-failed";
    case KC_PROBE_UNPLUGGED:
        return "unplugged";
    }
    return "unknown";
}

static double ms_since(uint64_t start_us)
{
    return (double)(kc_now_us() - start_us) / 1000.0;
}

static int fail(struct kc_probe_result *out, enum kc_probe_fail f, int err, const char *fix)
{
    out->present = false;
    out->fail = f;
    out->err = err;
    if (fix != NULL)
        snprintf(out->fix, sizeof(out->fix), "%s", fix);
    return err != KC_OK ? err : KC_ERR_IO;
}

static const char *const FIX_NO_DEVICE =
    "attach the card to this VM (`fido2-probe --list --all` shows every HID node), or start "
    "a virtual card with `vcard --announce DIR` and set KCARD_ANNOUNCE_DIR=DIR";
static const char *const FIX_STUCK =
    "the transport is stuck: power-cycle the card and attach it to this VM again, then retry";
static const char *const FIX_UNPLUGGED =
    "the card re-enumerated or was unplugged: run `fido2-probe --list` to find its new node "
    "(or use --device auto) and retry";

static int open_step(struct kc_probe_result *out, const char *uri, struct kc_transport **t)
{
    uint64_t t0 = kc_now_us();
    char fix[512];
    int rc = kc_transport_open(uri, t, out->error, sizeof(out->error));

    out->open_ms = ms_since(t0);
    if (rc == KC_OK)
        return KC_OK;
    switch (rc) {
    case KC_ERR_PERMISSION:
        kc_hid_access_fix(true, KC_ACCESS_DENIED, fix, sizeof(fix));
        return fail(out, KC_PROBE_PERMISSION, rc, fix);
    case KC_ERR_NO_DEVICE:
        return fail(out, KC_PROBE_NO_DEVICE, rc, FIX_NO_DEVICE);
    default:
        if (strstr(out->error, "in use by another process") != NULL)
            return fail(out, KC_PROBE_BUSY, rc,
                        "close the other program that holds the card (k_proxy, rawctap, a "
                        "browser) and retry");
        return fail(out, KC_PROBE_OPEN_FAILED, rc, NULL);
    }
}

static int init_step(struct kc_probe_result *out, struct kc_dev *d, struct kc_transport *t,
                     int timeout_ms)
{
    uint64_t t0 = kc_now_us();
    int rc = kc_dev_init(d, &out->init);

    out->init_ms = ms_since(t0);
    if (rc == KC_OK) {
        out->init_ok = true;
        out->ctap2 = (out->init.capabilities & KC_HID_CAP_CBOR) != 0;
        return KC_OK;
    }
    if (rc == KC_ERR_TIMEOUT) {
        snprintf(out->error, sizeof(out->error),
                 "INIT timeout: %.300s: no reply to CTAPHID INIT within %d ms", out->uri,
                 timeout_ms);
        return fail(out, KC_PROBE_INIT_TIMEOUT, rc, FIX_STUCK);
    }
    if (rc == KC_ERR_UNPLUGGED) {
        snprintf(out->error, sizeof(out->error), "CTAPHID INIT: %.400s", t->last_error);
        return fail(out, KC_PROBE_UNPLUGGED, rc, FIX_UNPLUGGED);
    }
    snprintf(out->error, sizeof(out->error), "CTAPHID INIT on %.200s failed: %.250s", out->uri,
             t->last_error[0] != '\0' ? t->last_error : kc_strerror(rc));
    if (rc == KC_ERR_NO_DEVICE || t->last_errno == ECONNREFUSED)
        return fail(out, KC_PROBE_NO_DEVICE, rc,
                    "nothing answers at that address: start the (virtual) card or check the URI "
                    "(`fido2-probe --list` shows the announced cards)");
    return fail(out, KC_PROBE_INIT_FAILED, rc, FIX_STUCK);
}

static int getinfo_step(struct kc_probe_result *out, struct kc_dev *d, struct kc_transport *t,
                        int timeout_ms)
{
    uint64_t t0 = kc_now_us();
    int rc = kc_ctap2_get_info(d, &out->info);

    out->getinfo_ms = ms_since(t0);
    if (rc == KC_OK) {
        out->info_ok = true;
        return KC_OK;
    }
    if (rc == KC_ERR_TIMEOUT) {
        snprintf(out->error, sizeof(out->error),
                 "getInfo timeout: %.300s answered INIT but not authenticatorGetInfo within %d ms "
                 "(%s phase)",
                 out->uri, timeout_ms, kc_phase_name(kc_dev_last_phase(d)));
        return fail(out, KC_PROBE_GETINFO_TIMEOUT, rc, FIX_STUCK);
    }
    if (rc == KC_ERR_UNPLUGGED) {
        snprintf(out->error, sizeof(out->error), "getInfo: %.400s", t->last_error);
        return fail(out, KC_PROBE_UNPLUGGED, rc, FIX_UNPLUGGED);
    }
    snprintf(out->error, sizeof(out->error), "authenticatorGetInfo on %.200s failed: %s (%s)",
             out->uri, kc_err_name(rc), rc > 0 ? "card status" : kc_strerror(rc));
    return fail(out, KC_PROBE_GETINFO_FAILED, rc, NULL);
}

/* INIT and getInfo on t (owned); out->uri is set by the caller. */
static int check_transport(struct kc_probe_result *out, struct kc_transport *t, int timeout_ms)
{
    struct kc_dev *d = NULL;
    struct kc_timeouts to;
    int rc;

    out->have_id = kc_hidraw_identity(t, &out->id) == KC_OK;
    kc_timeouts_default(&to);
    to.init_ms = to.command_ms = to.presence_ms = timeout_ms;
    if ((rc = kc_dev_wrap(&d, t, &to)) != KC_OK) {
        snprintf(out->error, sizeof(out->error),
                 "%.300s: reports of %zu/%zu bytes cannot carry CTAPHID (not a FIDO interface?)",
                 out->uri, t->in_report_len, t->out_report_len);
        kc_transport_close(t);
        return fail(out, KC_PROBE_OPEN_FAILED, rc, NULL);
    }
    if ((rc = init_step(out, d, t, timeout_ms)) == KC_OK && out->ctap2)
        rc = getinfo_step(out, d, t, timeout_ms);
    kc_dev_close(d); /* closes t too */
    if (rc != KC_OK)
        return rc;
    out->present = true;
    out->fail = KC_PROBE_OK;
    out->err = KC_OK;
    return KC_OK;
}

static void reset(struct kc_probe_result *out)
{
    memset(out, 0, sizeof(*out));
    out->open_ms = out->init_ms = out->getinfo_ms = out->total_ms = -1;
}

int kc_probe_transport(struct kc_transport *t, int timeout_ms, struct kc_probe_result *out)
{
    uint64_t start = kc_now_us();
    int rc;

    if (out == NULL || t == NULL) {
        kc_transport_close(t);
        return KC_ERR_INVALID_ARG;
    }
    reset(out);
    if (timeout_ms <= 0)
        timeout_ms = KC_PROBE_TIMEOUT_DEFAULT_MS;
    snprintf(out->uri, sizeof(out->uri), "%s", t->uri);
    rc = check_transport(out, t, timeout_ms);
    out->total_ms = ms_since(start);
    return rc;
}

int kc_probe_card(const char *uri, int timeout_ms, struct kc_probe_result *out)
{
    struct kc_transport *t = NULL;
    uint64_t start = kc_now_us();
    int rc;

    if (out == NULL)
        return KC_ERR_INVALID_ARG;
    reset(out);
    if (timeout_ms <= 0)
        timeout_ms = KC_PROBE_TIMEOUT_DEFAULT_MS;
    if (uri == NULL || uri[0] == '\0')
        uri = "auto";

    if (strcmp(uri, "auto") == 0) {
        rc = kc_discover_auto(out->uri, sizeof(out->uri), out->error, sizeof(out->error));
        if (rc != KC_OK)
            rc = fail(out, KC_PROBE_NO_DEVICE, rc, FIX_NO_DEVICE);
    } else if (strlen(uri) >= sizeof(out->uri)) {
        snprintf(out->error, sizeof(out->error), "device URI too long");
        rc = fail(out, KC_PROBE_OPEN_FAILED, KC_ERR_INVALID_ARG, NULL);
    } else {
        snprintf(out->uri, sizeof(out->uri), "%s", uri);
        rc = KC_OK;
    }
    if (rc == KC_OK && (rc = open_step(out, out->uri, &t)) == KC_OK) {
        snprintf(out->uri, sizeof(out->uri), "%s", t->uri);
        rc = check_transport(out, t, timeout_ms);
    }
    out->total_ms = ms_since(start);
    return rc;
}
