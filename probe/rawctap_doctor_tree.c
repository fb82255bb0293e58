/* rawctap doctor's decision tree: a pure function from gathered evidence to
 * the first failing step, its stable code, the evidence and the one fix.
 * No I/O here, so tests/unit/probe/test_rawctap_doctor.c drives every
 * branch. The codes and their meaning are documented in
 * docs/runbook/TRIAGE.md; keep the two in step. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctaphid/status.h"
#include "probe/rawctap_doctor.h"

struct rc_doc_code {
    const char *code;
    int exit;
};

/* Exit classes: 0 pass or warning, 3 transport-level, 4 card-level, 5 what the
 * card signed does not verify (rawctap's verification exit). */
static const struct rc_doc_code rc_doc_code_table[] = {
    {"OK", 0},
    {"NO_PIN_PROTOCOLS", 0},
    {"NO_HIDRAW", 3},
    {"NON_FIDO_ONLY", 3},
    {"NOT_FIDO_NODE", 3},
    {"NO_DEVICE", 3},
    {"PERMISSION_DENIED", 3},
    {"OPEN_FAILED", 3},
    {"INIT_NO_REPLY", 3},
    {"UNPLUGGED", 3},
    {"REENUMERATED", 3},
    {"WRONG_CHANNEL", 3},
    {"PACKET_LOSS", 3},
    {"DUPLICATE_PACKETS", 3},
    {"FRAMING", 3},
    {"NO_REPLY", 3},
    {"BUSY", 4},
    {"CTAP1_ONLY", 4},
    {"CTAP1_SLOW", 4},
    {"HANG_BEFORE_PROMPT", 4},
    {"KEEPALIVE_MISSING", 4},
    {"PRESENCE_TIMEOUT", 4},
    {"PRESENCE_DENIED", 4},
    {"BAD_SIGNATURE", 5},
    {"COUNTER_ROLLBACK", 5},
    {"CTAP_ERROR", 4},
};

#define RC_DOC_NCODES (sizeof(rc_doc_code_table) / sizeof(rc_doc_code_table[0]))

const char *const *rc_doc_codes(void)
{
    static const char *names[RC_DOC_NCODES + 1];
    for (size_t i = 0; i < RC_DOC_NCODES; i++)
        names[i] = rc_doc_code_table[i].code;
    names[RC_DOC_NCODES] = NULL;
    return names;
}

int rc_doc_code_exit(const char *code)
{
    for (size_t i = 0; code && i < RC_DOC_NCODES; i++)
        if (strcmp(rc_doc_code_table[i].code, code) == 0)
            return rc_doc_code_table[i].exit;
    return -1;
}

const char *rc_doc_result_name(enum rc_doc_result r)
{
    switch (r) {
    case RC_DOC_PASS:
        return "pass";
    case RC_DOC_WARN:
        return "warn";
    case RC_DOC_FAIL:
        return "fail";
    default:
        return "skip";
    }
}

struct rc_doc_step *rc_doc_step_add(struct rc_doc_evidence *ev, const char *name,
                                    enum rc_doc_result r, long ms, const char *fmt, ...)
{
    va_list ap;
    if (ev->n_steps >= RC_DOC_MAX_STEPS)
        return NULL;
    struct rc_doc_step *s = &ev->steps[ev->n_steps++];
    s->name = name;
    s->result = r;
    s->ms = ms;
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
    va_end(ap);
    return s;
}

/* ---- building findings ---- */

static struct rc_doc_finding *finding_init(struct rc_doc_finding *f, const char *code,
                                           const char *step, bool warning)
{
    memset(f, 0, sizeof(*f));
    f->code = code;
    f->step = step;
    f->exit = warning ? 0 : rc_doc_code_exit(code);
    return f;
}

static void evidence(struct rc_doc_finding *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void evidence(struct rc_doc_finding *f, const char *fmt, ...)
{
    va_list ap;
    if (f->n_evidence >= RC_DOC_MAX_EVIDENCE)
        return;
    va_start(ap, fmt);
    vsnprintf(f->evidence[f->n_evidence++], RC_DOC_LINE, fmt, ap);
    va_end(ap);
}

static void fix(struct rc_doc_finding *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fix(struct rc_doc_finding *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->fix, sizeof(f->fix), fmt, ap);
    va_end(ap);
}

static struct rc_doc_finding *doc_fail(struct rc_doc_verdict *v, const char *code, const char *step)
{
    v->done = true;
    v->ok = false;
    return finding_init(&v->primary, code, step, false);
}

static struct rc_doc_finding *doc_warn(struct rc_doc_verdict *v, const char *code, const char *step)
{
    if (v->n_warnings >= RC_DOC_MAX_WARNINGS)
        return NULL;
    return finding_init(&v->warnings[v->n_warnings++], code, step, true);
}

static const char *attach_fix =
    "attach the card to this VM: in dom0 run `qvm-usb list` and `qvm-usb attach VM "
    "BACKEND:DEVICE` (attach the whole card, every interface), then check `ls -l /dev/hidraw*` "
    "and `rawctap list --all` in this VM";

static const char *power_cycle_fix =
    "power-cycle the card (unplug it, wait 5 s, plug it in), re-attach it to this VM "
    "(qvm-usb detach, then qvm-usb attach) and run `rawctap doctor` again";

/* ---- the steps of the tree, in order; each returns true when it named
 * a failure ---- */

static bool tree_discover(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v)
{
    struct rc_doc_finding *f;
    if (!ev->discover_ran)
        return false;
    if (ev->dev == RC_DOC_DEV_AUTO) {
        if (ev->n_hidraw == 0 && ev->n_announced == 0) {
            f = doc_fail(v, "NO_HIDRAW", "discover");
            evidence(f, "no hidraw node under %s", ev->sysfs_root);
            evidence(f, "no virtual card announced in %s", ev->announce_dir);
            fix(f, "%s", attach_fix);
            return true;
        }
        if (ev->n_fido == 0 && ev->n_announced == 0) {
            f = doc_fail(v, "NON_FIDO_ONLY", "discover");
            evidence(f, "%zu hidraw node(s), none with usage page 0xF1D0: %s", ev->n_hidraw,
                     ev->nodes);
            fix(f,
                "only a non-FIDO (vendor or keyboard) interface of the card reached this VM; "
                "such an interface cannot speak CTAPHID. %s",
                attach_fix);
            return true;
        }
        return false;
    }
    if (ev->dev != RC_DOC_DEV_HIDRAW)
        return false;
    if (!ev->named_exists) {
        if (ev->n_hidraw == 0) {
            f = doc_fail(v, "NO_HIDRAW", "discover");
            evidence(f, "%s does not exist", ev->node_path);
            evidence(f, "no hidraw node under %s", ev->sysfs_root);
            fix(f, "%s", attach_fix);
        } else {
            f = doc_fail(v, "NO_DEVICE", "discover");
            evidence(f, "%s does not exist", ev->node_path);
            evidence(f, "hidraw nodes present: %s", ev->nodes);
            if (ev->n_fido > 0)
                fix(f, "use the FIDO node: rawctap --device-path %s doctor (or --device auto)",
                    ev->fido_nodes);
            else
                fix(f, "%s", attach_fix);
        }
        return true;
    }
    if (ev->named_fido == 0) {
        f = doc_fail(v, "NOT_FIDO_NODE", "discover");
        evidence(f, "%s has no usage page 0xF1D0 in its report descriptor", ev->node_path);
        evidence(f, "hidraw nodes: %s", ev->nodes);
        if (ev->n_fido > 0)
            fix(f,
                "this is another interface of the card (the runbook's /dev/hidraw1 was a vendor "
                "interface); use the FIDO node: rawctap --device-path %s doctor, or --device auto",
                ev->fido_nodes);
        else
            fix(f, "no FIDO interface is visible at all. %s", attach_fix);
        return true;
    }
    return false;
}

static void permission_evidence(const struct rc_doc_evidence *ev, struct rc_doc_finding *f)
{
    evidence(f, "open(%s): permission denied", ev->node_path[0] ? ev->node_path : ev->target);
    if (ev->have_stat) {
        evidence(f, "owner %s, group %s, mode %04o", ev->owner, ev->group, ev->mode & 07777u);
        evidence(f, "you are uid %u, %sin group %s", ev->uid, ev->in_group ? "" : "not ",
                 ev->group);
    }
}

static bool tree_open(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v)
{
    struct rc_doc_finding *f;
    if (!ev->open_ran || ev->open_err == KC_OK)
        return false;
    if (ev->open_err == KC_ERR_PERMISSION) {
        f = doc_fail(v, "PERMISSION_DENIED", "open");
        permission_evidence(ev, f);
        fix(f, "install the udev rule fixtures/udev/70-kcard-fido.rules (it gives the FIDO "
               "interface, and only it, TAG+=\"uaccess\" for the person at the seat and GROUP "
               "\"plugdev\" mode 0660 for service accounts): cp it to /etc/udev/rules.d/, run "
               "`udevadm control --reload && udevadm trigger --subsystem-match=hidraw`, add a "
               "service user with `usermod -aG plugdev USER` and log in again "
               "(fixtures/udev/README.md)");
        return true;
    }
    if (ev->open_err == KC_ERR_NO_DEVICE) {
        f = doc_fail(v, "NO_DEVICE", "open");
        evidence(f, "%s", ev->open_msg[0] ? ev->open_msg : "no device at that address");
        fix(f, "check the device URI (`rawctap list`), or that the virtual card is running; %s",
            ev->dev == RC_DOC_DEV_OTHER ? "for a simulator, start it first" : attach_fix);
        return true;
    }
    f = doc_fail(v, "OPEN_FAILED", "open");
    evidence(f, "%s: %s", ev->target[0] ? ev->target : ev->device,
             ev->open_msg[0] ? ev->open_msg : kc_strerror(ev->open_err));
    fix(f, "close any other program holding the card (browsers, fido2 tools, a running k_proxy) "
           "and retry; if it persists, re-attach the card");
    return true;
}

/* The card moved or vanished between steps: named before the timeouts it
 * causes, which would otherwise mislead. */
static bool tree_moved(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v)
{
    struct rc_doc_finding *f;
    if (ev->enum_ran && ev->enum_changed) {
        f = doc_fail(v, "REENUMERATED", "enumeration");
        evidence(f, "the card was %s and is now %s", ev->enum_old, ev->enum_new);
        if (ev->saw_unplugged)
            evidence(f, "the old descriptor reported the device gone (stale descriptor)");
        fix(f, "the card re-enumerated under another node (a USB reset or a re-attach): address "
               "it as --device auto, which finds it by HID id and serial, never by hidrawN; if it "
               "keeps happening, check the cable, USB power and the VM's USB passthrough");
        return true;
    }
    if ((ev->enum_ran && ev->enum_vanished) || ev->saw_unplugged) {
        f = doc_fail(v, "UNPLUGGED", "enumeration");
        if (ev->enum_ran && ev->enum_vanished)
            evidence(f, "%s is gone and the card is not visible under another node",
                     ev->enum_old[0] ? ev->enum_old : ev->target);
        if (ev->saw_unplugged)
            evidence(f, "the descriptor reported the device gone (POLLHUP/ENODEV)");
        fix(f, "the card was unplugged or detached from this VM. %s", attach_fix);
        return true;
    }
    return false;
}

static bool tree_init(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v)
{
    struct rc_doc_finding *f;
    if (!ev->init_ran || ev->init_ok_attempt > 0)
        return false;
    if (ev->init_err == KC_ERR_NO_DEVICE) {
        f = doc_fail(v, "NO_DEVICE", "init");
        evidence(f, "nothing answers at %s (%s)", ev->target, kc_strerror(ev->init_err));
        fix(f, "check the device URI, or start the card or simulator first");
        return true;
    }
    if (ev->init_err == KC_ERR_UNPLUGGED) {
        f = doc_fail(v, "UNPLUGGED", "init");
        evidence(f, "%s: the descriptor reported the device gone during INIT", ev->target);
        fix(f, "the card was unplugged or detached from this VM. %s", attach_fix);
        return true;
    }
    f = doc_fail(v, "INIT_NO_REPLY", "init");
    if (ev->init_err == KC_ERR_TIMEOUT)
        evidence(f, "no reply to CTAPHID_INIT on the broadcast channel in %d attempt(s) of %d ms",
                 ev->init_attempts, ev->init_timeout_ms);
    else
        evidence(f, "CTAPHID_INIT failed: %s", kc_strerror(ev->init_err));
    evidence(f, "the node opened fine: the transport below CTAPHID is stuck");
    fix(f,
        "%s (in the runbook a manual INIT written to /dev/hidraw0 got no reply within 3 s; "
        "after a full power cycle and re-attach INIT replied again)",
        power_cycle_fix);
    return true;
}

/* Counts are small in practice; compare, never add, so no input overflows. */
static bool pings_failed(const struct rc_doc_pings *p)
{
    return p->sent > p->ok;
}

static void ping_evidence(struct rc_doc_finding *f, const char *what, const struct rc_doc_pings *p)
{
    if (p->sent == 0)
        return;
    evidence(f, "%s PINGs: %d sent, %d ok, %d timeout, %d bad sequence, %d wrong echo, %d other",
             what, p->sent, p->ok, p->timeout, p->framing, p->mismatch, p->other);
}

static bool tree_channel(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v)
{
    struct rc_doc_finding *f;
    if (!ev->chan_ran)
        return false;
    const struct rc_doc_pings *s = &ev->small, *l = &ev->large;
    bool failed = pings_failed(s) || pings_failed(l);
    bool ok = s->ok > 0 || l->ok > 0;
    bool timeouts = s->timeout > 0 || l->timeout > 0;
    if (ev->busy) {
        f = doc_fail(v, "BUSY", "channel");
        evidence(f, "the card answered CTAPHID_ERROR CHANNEL_BUSY to a PING on a fresh channel");
        fix(f, "another program is using the card (a browser tab, k_proxy, a fido2 tool): close "
               "it; if nothing else runs, the card's firmware is stuck busy: power-cycle it");
        return true;
    }
    if (!failed)
        return false; /* one lost INIT reply alone is only noted */
    if (ev->other_cid > 0) {
        f = doc_fail(v, "WRONG_CHANNEL", "channel");
        evidence(f, "%llu report(s) arrived on channels the card never gave this host",
                 (unsigned long long)ev->other_cid);
        ping_evidence(f, "one-report", s);
        fix(f, "the card answers on the wrong CTAPHID channel (firmware bug, or another host "
               "shares the card through the passthrough): detach it from every other VM, "
               "power-cycle it, and update its firmware if it persists");
        return true;
    }
    if (timeouts && (ok || ev->init_ok_attempt > 1)) {
        f = doc_fail(v, "PACKET_LOSS", "channel");
        ping_evidence(f, "one-report", s);
        ping_evidence(f, "multi-report", l);
        if (ev->init_ok_attempt > 1)
            evidence(f, "CTAPHID_INIT answered only on attempt %d", ev->init_ok_attempt);
        fix(f, "reports are being lost between the card and this VM: use another USB port or "
               "cable, avoid hubs, re-attach the card (qvm-usb), and check dmesg for USB "
               "errors");
        return true;
    }
    if (s->mismatch > 0 || l->mismatch > 0) {
        f = doc_fail(v, "DUPLICATE_PACKETS", "channel");
        ping_evidence(f, "one-report", s);
        ping_evidence(f, "multi-report", l);
        evidence(f, "%llu stale report(s) skipped", (unsigned long long)ev->stale);
        fix(f, "reports arrive twice or late (a PING echo that was not ours): re-attach the card, "
               "use another USB port, and make sure only one program reads the node");
        return true;
    }
    if (s->framing > 0 || l->framing > 0) {
        f = doc_fail(v, "FRAMING", "channel");
        ping_evidence(f, "one-report", s);
        ping_evidence(f, "multi-report", l);
        if (s->ok == s->sent && l->ok == 0)
            evidence(f, "one-report messages work, every multi-report message has a bad "
                        "continuation sequence");
        fix(f, "the card fragments long messages wrongly (continuation sequence numbers): "
               "update the card's firmware; short commands may work but CTAP2 replies are "
               "longer than one report");
        return true;
    }
    if (ev->hid_err != 0) {
        f = doc_fail(v, "CTAP_ERROR", "channel");
        evidence(f, "the card answered CTAPHID_ERROR %s (0x%02x) to PING",
                 kc_hid_err_name(ev->hid_err), ev->hid_err);
        fix(f, "the card does not implement CTAPHID_PING correctly: update its firmware");
        return true;
    }
    f = doc_fail(v, "NO_REPLY", "channel");
    ping_evidence(f, "one-report", s);
    ping_evidence(f, "multi-report", l);
    evidence(f, "INIT answered, then the card went silent");
    fix(f, "%s", power_cycle_fix);
    return true;
}

static bool has_ctap2(const struct rc_doc_evidence *ev)
{
    if (ev->caps_known && (ev->caps & KC_HID_CAP_CBOR) == 0)
        return false;
    if (ev->info_ran && ev->info_err > 0)
        return false; /* getInfo refused: CTAP2 not really there */
    return true;
}

static bool ctap1_slow(const struct rc_doc_evidence *ev)
{
    return ev->ctap1_ran && (ev->ctap1_cut_short || ev->ctap1_err == KC_ERR_TIMEOUT ||
                             (ev->ctap1_err == KC_OK && ev->ctap1_ms > ev->slow_ms));
}

static void ctap1_evidence(const struct rc_doc_evidence *ev, struct rc_doc_finding *f)
{
    if (ev->ctap1_err == KC_ERR_TIMEOUT)
        evidence(f, "a CTAP1 request got no answer within %d ms", ev->timeout_ms);
    else if (ev->ctap1_cut_short)
        evidence(f, "CTAP1 VERSION alone took %ld ms (limit --slow-ms %d)", ev->ctap1_ms,
                 ev->slow_ms);
    else
        evidence(f,
                 "CTAP1 VERSION, REGISTER (first answer) and check-only took %ld ms (limit "
                 "--slow-ms %d)",
                 ev->ctap1_ms, ev->slow_ms);
}

static bool tree_info(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v)
{
    struct rc_doc_finding *f;
    if (!ev->info_ran && !(ev->caps_known && (ev->caps & KC_HID_CAP_CBOR) == 0))
        return false;
    if (!has_ctap2(ev)) {
        if (!ev->ctap1_ran)
            return false; /* the runner times CTAP1 next */
        if (ctap1_slow(ev)) {
            f = doc_fail(v, "CTAP1_SLOW", "ctap1");
            evidence(f, "the card offers no CTAP2 (INIT capabilities 0x%02x%s)", ev->caps,
                     ev->info_err > 0 ? ", getInfo refused" : "");
            ctap1_evidence(ev, f);
            fix(f, "the only protocol this card speaks is too slow to promote (the runbook's "
                   "\"CTAP1 fallback did not complete quickly enough\"): keep k_proxy in probe "
                   "mode, or use a card with CTAP2; raise --slow-ms only if the delay is "
                   "acceptable to your users");
            return true;
        }
        if (ev->ctap1_err == KC_OK) {
            f = doc_fail(v, "CTAP1_ONLY", "ctap1");
            evidence(f, "INIT capabilities 0x%02x lack CBOR: no CTAP2", ev->caps);
            if (ev->info_err > 0)
                evidence(f, "getInfo answered %s", kc_ctap2_status_name((uint8_t)ev->info_err));
            evidence(f, "CTAP1/U2F works (%s, %ld ms)", ev->u2f_version[0] ? ev->u2f_version : "?",
                     ev->ctap1_ms);
            fix(f, "this card speaks only CTAP1/U2F: use rawctap --ctap1-fallback (timed) or "
                   "u2f-register/u2f-authenticate; fido2-direct auth in k_proxy needs a CTAP2 "
                   "card");
            return true;
        }
        f = doc_fail(v, "CTAP_ERROR", "ctap1");
        evidence(f, "no CTAP2 (INIT capabilities 0x%02x) and CTAP1 failed: %s", ev->caps,
                 ev->ctap1_err == KC_ERR_U2F ? kc_u2f_sw_name(ev->ctap1_sw)
                                             : kc_strerror(ev->ctap1_err));
        fix(f, "the card speaks neither CTAP2 nor CTAP1 here: %s", power_cycle_fix);
        return true;
    }
    if (ev->info_err < 0) {
        if (ev->info_err == KC_ERR_TIMEOUT) {
            f = doc_fail(v, "NO_REPLY", "getinfo");
            evidence(f, "authenticatorGetInfo got no reply within %d ms (PING worked)",
                     ev->timeout_ms);
            fix(f, "%s", power_cycle_fix);
        } else {
            f = doc_fail(v, "CTAP_ERROR", "getinfo");
            evidence(f, "authenticatorGetInfo failed: %s (%s)", kc_err_name(ev->info_err),
                     kc_strerror(ev->info_err));
            fix(f, "the card's getInfo answer is not valid CTAP2: update its firmware");
        }
        return true;
    }
    if (ev->info_ran && ev->n_pin_protocols == 0 && ev->client_pin != 1) {
        f = doc_warn(v, "NO_PIN_PROTOCOLS", "getinfo");
        if (f) {
            evidence(f,
                     "getInfo lists no pinUvAuthProtocols and no clientPin option "
                     "(versions %s)",
                     ev->versions[0] ? ev->versions : "?");
            evidence(f, "python-fido2 says \"No compatible PIN/UV protocols supported!\" for "
                        "such a card");
            fix(f, "nothing to fix for registration and login without PIN: kcard proceeds "
                   "without PIN (as the runbook's direct mode needed); a flow that requires a "
                   "PIN or UV will fail on this card, so do not pass --pin");
        }
    }
    return false;
}

/* Shared by makeCredential and getAssertion. */
static bool tree_ctap_failure(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v,
                              const char *step, const char *what, int err, enum kc_phase phase,
                              long gap)
{
    struct rc_doc_finding *f;
    if (err == KC_OK)
        return false;
    if (err == KC_ERR_TIMEOUT) {
        bool only_processing = ev->n_processing > 0 && ev->n_upneeded == 0;
        if (phase == KC_PHASE_PRESENCE && gap <= RC_DOC_KEEPALIVE_GAP_MS) {
            f = doc_fail(v, "PRESENCE_TIMEOUT", step);
            evidence(f,
                     "the card asked for presence (KEEPALIVE UPNEEDED) but nobody touched it "
                     "within %d ms",
                     ev->presence_timeout_ms);
            fix(f, "run doctor again and touch the card when it blinks (or pass "
                   "--no-presence-test)");
            return true;
        }
        if (only_processing && gap <= RC_DOC_KEEPALIVE_GAP_MS) {
            f = doc_fail(v, "HANG_BEFORE_PROMPT", step);
            evidence(f, "%s: %d KEEPALIVE PROCESSING, never UPNEEDED, no reply within %d ms", what,
                     ev->n_processing, ev->timeout_ms);
            evidence(f, "INIT and PING work: the transport is fine, the card hangs before its "
                        "presence prompt");
            fix(f,
                "the card accepted the request but never showed its confirmation prompt (the "
                "runbook's \"no card prompt on makeCredential\"): %s",
                power_cycle_fix);
            return true;
        }
        f = doc_fail(v, "KEEPALIVE_MISSING", step);
        evidence(f,
                 "%s: no KEEPALIVE for %ld ms while waiting (limit %d ms), then no reply "
                 "within %d ms",
                 what, gap, RC_DOC_KEEPALIVE_GAP_MS,
                 phase == KC_PHASE_PRESENCE ? ev->presence_timeout_ms : ev->timeout_ms);
        fix(f, "the card goes silent while it works or waits for a touch (CTAP requires a "
               "KEEPALIVE every 100 ms); hosts give up on it: update the card's firmware, and "
               "power-cycle it now");
        return true;
    }
    if (err == KC_CTAP2_ERR_OPERATION_DENIED) {
        f = doc_fail(v, "PRESENCE_DENIED", step);
        evidence(f, "%s: the card answered CTAP2_ERR_OPERATION_DENIED", what);
        fix(f, "the person declined on the card (pressed no): run doctor again and confirm");
        return true;
    }
    if (err == KC_CTAP2_ERR_USER_ACTION_TIMEOUT || err == KC_CTAP2_ERR_ACTION_TIMEOUT) {
        f = doc_fail(v, "PRESENCE_TIMEOUT", step);
        evidence(f, "%s: the card answered %s", what, kc_ctap2_status_name((uint8_t)err));
        fix(f, "run doctor again and touch the card when it blinks");
        return true;
    }
    if (err == KC_ERR_PROTOCOL) {
        f = doc_fail(v, "FRAMING", step);
        evidence(f, "%s: the reply's CTAPHID framing was wrong (%s)", what, kc_strerror(err));
        fix(f, "update the card's firmware; re-attach the card");
        return true;
    }
    if (err == KC_ERR_NO_DEVICE || err == KC_ERR_UNPLUGGED) {
        f = doc_fail(v, "UNPLUGGED", step);
        evidence(f, "%s: %s", what, kc_strerror(err));
        fix(f, "the card went away during the check. %s", attach_fix);
        return true;
    }
    f = doc_fail(v, "CTAP_ERROR", step);
    evidence(f, "%s: %s", what, err > 0 ? kc_ctap2_status_name((uint8_t)err) : kc_strerror(err));
    fix(f, "the card refused a plain, PIN-less request for a throwaway rp id; reset the card "
           "only if you may lose its credentials (rawctap reset), or update its firmware");
    return true;
}

static bool tree_presence(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v)
{
    struct rc_doc_finding *f;
    if (!ev->presence_ran)
        return false;
    if (tree_ctap_failure(ev, v, "presence", "makeCredential", ev->mc_err, ev->mc_phase,
                          ev->max_gap_ms))
        return true;
    if (ev->max_gap_ms > RC_DOC_KEEPALIVE_GAP_MS) {
        f = doc_fail(v, "KEEPALIVE_MISSING", "presence");
        evidence(f,
                 "makeCredential answered after %ld ms, with no KEEPALIVE for %ld ms "
                 "(limit %d ms)",
                 ev->mc_ms, ev->max_gap_ms, RC_DOC_KEEPALIVE_GAP_MS);
        fix(f, "the card goes silent while it waits (CTAP requires a KEEPALIVE every 100 ms); "
               "hosts with shorter read timeouts give up on it: update the card's firmware");
        return true;
    }
    if (ev->att_err != KC_OK) {
        f = doc_fail(v, "BAD_SIGNATURE", "presence");
        evidence(f, "the attestation statement did not verify: %s",
                 ev->att_reason[0] ? ev->att_reason : kc_strerror(ev->att_err));
        fix(f, "the card signs wrongly (or is not what it claims): do not enrol it; reset it or "
               "replace it");
        return true;
    }
    return false;
}

static bool tree_verify(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v)
{
    struct rc_doc_finding *f;
    if (!ev->verify_ran)
        return false;
    if (tree_ctap_failure(ev, v, "verify", "getAssertion", ev->ga_err, KC_PHASE_COMMAND,
                          ev->ga_max_gap_ms))
        return true;
    if (ev->sig_err != KC_OK) {
        f = doc_fail(v, "BAD_SIGNATURE", "verify");
        evidence(f, "the assertion did not verify with the credential's public key: %s",
                 ev->sig_reason[0] ? ev->sig_reason : kc_strerror(ev->sig_err));
        fix(f, "the card's signatures do not verify: do not trust it for login; reset or "
               "replace it");
        return true;
    }
    if ((ev->prev_count != 0 || ev->new_count != 0) && ev->new_count <= ev->prev_count) {
        f = doc_fail(v, "COUNTER_ROLLBACK", "verify");
        evidence(f, "signCount went from %u to %u%s", ev->prev_count, ev->new_count,
                 ev->verify_cred_file ? " (saved in --cred-file)" : "");
        fix(f, "a signature counter that does not increase means a cloned credential or a card "
               "whose state was restored: treat the credential as compromised, remove it from "
               "the relying party and enrol again");
        return true;
    }
    if (ev->ga_max_gap_ms > RC_DOC_KEEPALIVE_GAP_MS) {
        f = doc_fail(v, "KEEPALIVE_MISSING", "verify");
        evidence(f, "getAssertion: no KEEPALIVE for %ld ms (limit %d ms)", ev->ga_max_gap_ms,
                 RC_DOC_KEEPALIVE_GAP_MS);
        fix(f, "the card goes silent while it works: update its firmware");
        return true;
    }
    return false;
}

static void tree_ctap1_warning(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v)
{
    if (!ev->ctap1_ran || !has_ctap2(ev) || !ctap1_slow(ev))
        return;
    struct rc_doc_finding *f = doc_warn(v, "CTAP1_SLOW", "ctap1");
    if (f == NULL)
        return;
    ctap1_evidence(ev, f);
    evidence(f, "CTAP2 works, so kcard does not need the CTAP1 path");
    fix(f, "do not rely on the CTAP1 fallback with this card (the runbook's probe \"did not "
           "complete quickly enough\"); use CTAP2 (the default)");
}

void rc_doc_decide(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->ok = true;
    if (tree_discover(ev, v) || tree_open(ev, v) || tree_moved(ev, v) || tree_init(ev, v) ||
        tree_channel(ev, v) || tree_info(ev, v) || tree_presence(ev, v) || tree_verify(ev, v))
        return;
    tree_ctap1_warning(ev, v);
    if (v->n_warnings > 0) {
        v->primary = v->warnings[0];
        return;
    }
    struct rc_doc_finding *f = finding_init(&v->primary, "OK", "all", false);
    evidence(f, "every step passed on %s", ev->target[0] ? ev->target : ev->device);
    fix(f, "nothing to fix");
}

/* ---- JSON ---- */

static json_t *finding_json(const struct rc_doc_finding *f)
{
    json_t *o = json_object();
    json_t *a = json_array();
    if (o == NULL || a == NULL) {
        json_decref(o);
        json_decref(a);
        return NULL;
    }
    for (size_t i = 0; i < f->n_evidence; i++)
        json_array_append_new(a, json_string(f->evidence[i]));
    json_object_set_new(o, "code", json_string(f->code));
    json_object_set_new(o, "step", json_string(f->step));
    json_object_set_new(o, "evidence", a);
    json_object_set_new(o, "fix", json_string(f->fix));
    return o;
}

json_t *rc_doc_json(const struct rc_doc_evidence *ev, const struct rc_doc_verdict *v)
{
    json_t *o = finding_json(&v->primary);
    json_t *steps = json_array();
    json_t *warns = json_array();
    if (o == NULL || steps == NULL || warns == NULL) {
        json_decref(o);
        json_decref(steps);
        json_decref(warns);
        return NULL;
    }
    json_object_set_new(o, "ok", json_boolean(v->ok));
    json_object_set_new(o, "exit", json_integer(v->primary.exit));
    json_object_set_new(o, "level",
                        json_string(!v->ok              ? "error"
                                    : v->n_warnings > 0 ? "warning"
                                                        : "ok"));
    json_object_set_new(o, "device", json_string(ev->target[0] ? ev->target : ev->device));
    for (size_t i = 0; i < ev->n_steps; i++) {
        const struct rc_doc_step *s = &ev->steps[i];
        json_array_append_new(steps, json_pack("{s:s, s:s, s:I, s:s}", "name", s->name, "result",
                                               rc_doc_result_name(s->result), "ms",
                                               (json_int_t)s->ms, "detail", s->detail));
    }
    json_object_set_new(o, "steps", steps);
    for (size_t i = 0; i < v->n_warnings; i++)
        json_array_append_new(warns, finding_json(&v->warnings[i]));
    json_object_set_new(o, "warnings", warns);
    return o;
}
