/* rawctap doctor's decision tree: a pure function from gathered evidence to
 * the first failing step, its stable code, the evidence and the one fix.
 * No I/O here, so tests/unit/triage/test_rawctap_doctor.c drives every
 * branch. The codes and their meaning are documented in
 * docs/runbook/TRIAGE.md; keep the two in step. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctaphid/status.h"
#include "triage/rawctap_doctor.h"

struct rc_doc_code {
    const char *code;
    int exit;
};

/* Exit classes: 0 pass or warning, 3 transport-level, 4 card-level, 5 what the
 * card signed does not verify (rawctap's verification exit). */
static const struct rc_doc_code rc_doc_code_table[] = {
    {"OK", 0},
    {"NO_PIN_PROTOCOLS", 0},
    {"PIN_REQUIRED", 0},
    {"PIN_RETRIES_LOW", 0},
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
    {"PIN_NOT_SET", 4},
    {"PIN_INVALID", 4},
    {"PIN_BLOCKED", 4},
    {"PIN_AUTH_BLOCKED", 4},
    {"PIN_CHANGE_REQUIRED", 4},
    {"UNKNOWN_CREDENTIAL", 4},
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

/* The only fix that destroys data. Named only where the evidence is that the
 * card is unusable otherwise (a blocked PIN), and always with what it erases. */
static const char *reset_fix =
    "only authenticatorReset recovers a blocked PIN, and it erases every credential on the card "
    "(every site and service must enrol the card again) and the PIN itself; the card accepts it "
    "only within about 10 s of power-up: unplug the card, plug it in and run `rawctap reset` at "
    "once. If its credentials must not be lost, keep using it only for what needs no PIN, or "
    "replace it";

static bool is_udp(const struct rc_doc_evidence *ev)
{
    return ev->dev == RC_DOC_DEV_OTHER && strncmp(ev->device, "udp:", 4) == 0;
}

static const char *where(const struct rc_doc_evidence *ev)
{
    return ev->target[0] ? ev->target : ev->device;
}

/* A card that answered before and then went silent: the fix depends on the
 * transport, since a UDP card has no power to cycle and no USB to re-attach. */
static void silent_fix(const struct rc_doc_evidence *ev, struct rc_doc_finding *f)
{
    if (is_udp(ev) && ev->moved_hint[0])
        fix(f,
            "the card stopped answering at %s, and the virtual card's announce file now names %s: "
            "it re-plugged under a new address. Use --device auto (it follows the card by its "
            "announce file) or --device %s",
            where(ev), ev->moved_hint, ev->moved_hint);
    else if (is_udp(ev))
        fix(f,
            "the card stopped answering at this address (%s): a virtual card may have moved "
            "(re-plugged under a new port: see the address in its announce directory or in "
            "`vcard-ctl status`) or stopped. Use --device auto (it follows an announced card) or "
            "the new address; restart the simulator if it is gone",
            where(ev));
    else if (ev->dev == RC_DOC_DEV_OTHER)
        fix(f, "the card stopped answering at %s: check that it is still attached, then %s",
            where(ev), power_cycle_fix);
    else
        fix(f, "%s", power_cycle_fix);
}

/* The descriptor said EOF or hang-up, but this run's enumeration still finds
 * the card at the same node with the same identity: not an unplug. */
static bool gone_contradicted(const struct rc_doc_evidence *ev)
{
    return ev->enum_ran && !ev->enum_vanished && !ev->enum_changed;
}

static void contradiction(const struct rc_doc_evidence *ev, struct rc_doc_finding *f)
{
    evidence(f,
             "yet this run's enumeration finds the card where it was (%s, same identity): it was "
             "not unplugged",
             ev->enum_old[0] ? ev->enum_old : where(ev));
}

/* Reads or writes failed (EOF, hang-up, an I/O error, nothing listening)
 * without the card having left: NO_REPLY with the transport's fix. */
static void io_fix(const struct rc_doc_evidence *ev, struct rc_doc_finding *f)
{
    if (ev->dev == RC_DOC_DEV_OTHER)
        silent_fix(ev, f);
    else
        fix(f,
            "the node is still there but reads fail: re-attach the card to this VM (qvm-usb "
            "detach, then qvm-usb attach), check `dmesg` for USB errors, and make sure no other "
            "program holds the node; if the card was re-plugged and got the same node back, run "
            "doctor again. %s",
            power_cycle_fix);
}

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
        fix(f, "the card re-enumerated under another node (USB re-enumeration or a re-attach): "
               "address "
               "it as --device auto, which finds it by HID id and serial, never by hidrawN; if it "
               "keeps happening, check the cable, USB power and the VM's USB passthrough");
        return true;
    }
    if ((ev->enum_ran && ev->enum_vanished) || (ev->saw_unplugged && !ev->enum_ran)) {
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
    if ((ev->init_err == KC_ERR_UNPLUGGED || ev->init_err == KC_ERR_IO) && gone_contradicted(ev)) {
        f = doc_fail(v, "NO_REPLY", "init");
        evidence(f, "%s: %s during CTAPHID_INIT (the descriptor reported EOF or hang-up)",
                 where(ev), kc_strerror(ev->init_err));
        contradiction(ev, f);
        io_fix(ev, f);
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
    if (is_udp(ev)) {
        bool local = strstr(ev->device, "local=") != NULL;
        evidence(f,
                 "%s is a UDP address: a reply sent to another port than the one rawctap reads "
                 "on is never seen%s",
                 ev->device, local ? " (a local port was set with ?local=)" : "");
        if (local)
            fix(f, "a UDP card has no power to cycle; the causes, most likely first: (1) the card "
                   "replies to another port than the ?local= port given: check which host port "
                   "the simulator sends its replies to and give exactly that one; (2) wrong "
                   "address or port: check where the simulator listens; (3) the simulator is "
                   "stuck or stopped: restart it");
        else
            fix(f, "a UDP card has no power to cycle; the causes, most likely first: (1) the card "
                   "replies to a fixed port: simulators reply to a fixed host port (7112): use "
                   "udp:HOST:PORT?local=7112; (2) wrong address or port: check where the "
                   "simulator listens (kcard's vcard prints it, or use --device auto); (3) the "
                   "simulator is stuck or stopped: restart it");
        return true;
    }
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
    if (ev->saw_unplugged && gone_contradicted(ev)) {
        evidence(f, "the descriptor reported EOF or hang-up");
        contradiction(ev, f);
        io_fix(ev, f);
    } else {
        silent_fix(ev, f);
    }
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
        if (ev->ctap1_alive_after < 0) {
            f = doc_fail(v, "NO_REPLY", "ctap1");
            evidence(f, "the card offers no CTAP2 (INIT capabilities 0x%02x)", ev->caps);
            evidence(f,
                     "a CTAP1 request %s, and a fresh CTAPHID_INIT afterwards no reply "
                     "either: the card stopped answering at %s",
                     ev->ctap1_err == KC_ERR_TIMEOUT ? "got no answer" : "failed to reach it",
                     where(ev));
            if (ev->moved_hint[0])
                evidence(f, "its announce file now names %s", ev->moved_hint);
            silent_fix(ev, f);
            return true;
        }
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
            silent_fix(ev, f);
        } else if (ev->info_err == KC_ERR_NO_DEVICE || ev->info_err == KC_ERR_UNPLUGGED ||
                   ev->info_err == KC_ERR_IO || ev->info_err == KC_ERR_ABORTED) {
            f = doc_fail(v, "NO_REPLY", "getinfo");
            evidence(f, "authenticatorGetInfo: %s (PING worked)", kc_strerror(ev->info_err));
            if (gone_contradicted(ev))
                contradiction(ev, f);
            io_fix(ev, f);
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

/* A status that says the request needs (or cannot have) PIN/UV auth: not a
 * fault of the card. Without a token these wait for the PIN gate, which runs
 * after everything that needs no PIN; with a token only the PIN states do. */
static bool pin_state_status(int err)
{
    return err == KC_CTAP2_ERR_PIN_BLOCKED || err == KC_CTAP2_ERR_PIN_AUTH_BLOCKED ||
           err == KC_CTAP2_ERR_PIN_POLICY_VIOLATION;
}

static bool needs_uv_status(int err)
{
    return err == KC_CTAP2_ERR_PUAT_REQUIRED || err == KC_CTAP2_ERR_PIN_NOT_SET ||
           err == KC_ERR_NO_PIN_PROTOCOL;
}

static bool pin_gated(int err, bool used_pin)
{
    return pin_state_status(err) || (!used_pin && needs_uv_status(err));
}

static const char *status_str(int err)
{
    return err > 0 ? kc_ctap2_status_name((uint8_t)err) : kc_err_name(err);
}

/* Shared by makeCredential and getAssertion. alive: after a silent timeout,
 * whether a fresh CTAPHID_INIT was answered (1), not (-1), not asked (0). */
static bool tree_ctap_failure(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v,
                              const char *step, const char *what, int err, enum kc_phase phase,
                              long gap, bool used_pin, int alive)
{
    struct rc_doc_finding *f;
    if (err == KC_OK || pin_gated(err, used_pin))
        return false;
    if (err == KC_ERR_TIMEOUT) {
        bool only_processing = ev->n_processing > 0 && ev->n_upneeded == 0;
        if (alive < 0) {
            /* nothing at all, and nothing afterwards: the card is gone from
             * this address, not slow with its keepalives */
            f = doc_fail(v, "NO_REPLY", step);
            evidence(f, "%s: no reply and no KEEPALIVE within %d ms", what,
                     phase == KC_PHASE_PRESENCE ? ev->presence_timeout_ms : ev->timeout_ms);
            evidence(f,
                     "afterwards a fresh CTAPHID_INIT got no reply either: the card stopped "
                     "answering at %s",
                     where(ev));
            if (ev->moved_hint[0])
                evidence(f, "its announce file now names %s", ev->moved_hint);
            silent_fix(ev, f);
            return true;
        }
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
        if (alive > 0)
            evidence(f, "a fresh CTAPHID_INIT afterwards was answered: the card is alive but "
                        "silent while it works");
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
    if (err == KC_ERR_NO_DEVICE || err == KC_ERR_UNPLUGGED || err == KC_ERR_IO ||
        err == KC_ERR_ABORTED) {
        /* UNPLUGGED only when the node is gone (tree_moved), or when nothing
         * could check it and the descriptor said so */
        if (err == KC_ERR_UNPLUGGED && ev->dev != RC_DOC_DEV_OTHER && !ev->enum_ran) {
            f = doc_fail(v, "UNPLUGGED", step);
            evidence(f, "%s: %s", what, kc_strerror(err));
            fix(f, "the card went away during the check. %s", attach_fix);
            return true;
        }
        f = doc_fail(v, "NO_REPLY", step);
        if (err == KC_ERR_ABORTED)
            evidence(f, "%s: given up while waiting: the card left this address", what);
        else
            evidence(f, "%s: %s", what, kc_strerror(err));
        if (gone_contradicted(ev))
            contradiction(ev, f);
        if (ev->moved_hint[0])
            evidence(f, "its announce file now names %s", ev->moved_hint);
        io_fix(ev, f);
        return true;
    }
    if (ev->verify_cred_file && strcmp(step, "verify") == 0 &&
        (err == KC_CTAP2_ERR_NO_CREDENTIALS || err == KC_CTAP2_ERR_INVALID_CREDENTIAL)) {
        f = doc_fail(v, "UNKNOWN_CREDENTIAL", step);
        evidence(f, "%s for the credential in --cred-file%s%s: the card answered %s", what,
                 ev->cred_file[0] ? " " : "", ev->cred_file, kc_ctap2_status_name((uint8_t)err));
        evidence(f, "the card does not know this credential (the card is healthy: it answered "
                    "at once)");
        fix(f,
            "the card's credentials were erased since this one was made (a factory wipe), or the "
            "file belongs to another card (or another rp id): make a new credential on this card "
            "with `rawctap "
            "make-credential --rp-id RP --cred-file FILE` and enrol it again where the old one "
            "was used");
        return true;
    }
    f = doc_fail(v, "CTAP_ERROR", step);
    evidence(f, "%s: %s%s", what, status_str(err),
             used_pin ? " (the request carried a pinUvAuthParam from the card's own token)" : "");
    fix(f,
        "the card refused %s with the status above (not a PIN matter: doctor names those "
        "itself); look the status up in the CTAP specification, check for a firmware update, and "
        "report it to the card's vendor with `rawctap --trace doctor` output",
        strcmp(step, "presence") == 0 ? "a plain makeCredential for a throwaway rp id"
        : ev->verify_cred_file        ? "a getAssertion for the credential in --cred-file"
                                      : "a getAssertion for the credential it had just made");
    return true;
}

static bool tree_presence(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v)
{
    struct rc_doc_finding *f;
    if (!ev->presence_ran)
        return false;
    if (tree_ctap_failure(ev, v, "presence", "makeCredential", ev->mc_err, ev->mc_phase,
                          ev->max_gap_ms, ev->mc_used_pin, ev->mc_alive_after))
        return true;
    if (ev->mc_err != KC_OK)
        return false; /* a PIN/UV matter: the PIN gate names it */
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
        fix(f, "the card signs wrongly (or is not what it claims): do not enrol it; replace it, "
               "and report it to its vendor with `rawctap --trace doctor` output");
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
                          ev->ga_max_gap_ms, ev->ga_used_pin, ev->ga_alive_after))
        return true;
    if (ev->ga_err != KC_OK)
        return false; /* a PIN/UV matter: the PIN gate names it */
    if (ev->sig_err != KC_OK) {
        f = doc_fail(v, "BAD_SIGNATURE", "verify");
        evidence(f, "the assertion did not verify with the credential's public key: %s",
                 ev->sig_reason[0] ? ev->sig_reason : kc_strerror(ev->sig_err));
        fix(f, "the card's signatures do not verify: do not trust it for login; replace it, and "
               "report it to its vendor with `rawctap --trace doctor` output");
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

/* ---- PIN/UV ---- */

static void retries_evidence(const struct rc_doc_evidence *ev, struct rc_doc_finding *f)
{
    if (ev->retries_ran && ev->retries_err == KC_OK)
        evidence(f, "getRetries: %u PIN attempt(s) left%s", ev->retries,
                 ev->power_cycle_state ? ", powerCycleState true" : "");
    else if (ev->retries_ran)
        evidence(f, "getRetries failed: %s", status_str(ev->retries_err));
}

static void info_pin_evidence(const struct rc_doc_evidence *ev, struct rc_doc_finding *f)
{
    evidence(f, "getInfo: versions %s; clientPin %s; pinUvAuthProtocols [%s]%s%s%s",
             ev->versions[0] ? ev->versions : "?",
             ev->client_pin < 0 ? "absent"
             : ev->client_pin   ? "set"
                                : "not set",
             ev->pin_protocols[0] ? ev->pin_protocols : "?",
             ev->always_uv == 1 ? "; alwaysUv true" : "",
             ev->mc_uv_not_rqd == 1   ? "; makeCredUvNotRqd true"
             : ev->mc_uv_not_rqd == 0 ? "; makeCredUvNotRqd false"
                                      : "; no makeCredUvNotRqd",
             ev->uv == 1   ? "; built-in uv configured"
             : ev->uv == 0 ? "; built-in uv not configured"
                           : "");
}

static void gated_evidence(const struct rc_doc_evidence *ev, struct rc_doc_finding *f)
{
    if (ev->presence_ran && ev->mc_err != KC_OK && pin_gated(ev->mc_err, ev->mc_used_pin))
        evidence(f, "makeCredential%s answered %s", ev->mc_used_pin ? " (with the PIN)" : "",
                 status_str(ev->mc_err));
    if (ev->verify_ran && ev->ga_err != KC_OK && pin_gated(ev->ga_err, ev->ga_used_pin))
        evidence(f, "getAssertion (up=false)%s answered %s",
                 ev->ga_used_pin ? " (with the PIN)" : "", status_str(ev->ga_err));
}

/* Did any PIN-bearing exchange answer this status? */
static bool pin_said(const struct rc_doc_evidence *ev, int status)
{
    return (ev->token_ran && ev->token_err == status) ||
           (ev->presence_ran && ev->mc_err == status) || (ev->verify_ran && ev->ga_err == status);
}

/* getRetries or the token request failed below the PIN: a transport or
 * card fault, named in order (step pin, after getinfo). */
static bool tree_pin(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v)
{
    struct rc_doc_finding *f;
    int err = KC_OK;
    const char *what = NULL;
    if (!ev->pin_ran)
        return false;
    if (ev->retries_ran && ev->retries_err < 0 && ev->retries_err != KC_ERR_CBOR) {
        err = ev->retries_err;
        what = "clientPIN getRetries";
    } else if (ev->token_ran && ev->token_err != KC_OK && !pin_state_status(ev->token_err) &&
               ev->token_err != KC_CTAP2_ERR_PIN_INVALID) {
        err = ev->token_err;
        what = "clientPIN getPinUvAuthToken";
    }
    if (what == NULL)
        return false;
    if (err == KC_ERR_TIMEOUT) {
        f = doc_fail(v, "NO_REPLY", "pin");
        evidence(f, "%s got no reply within %d ms (getInfo worked)", what, ev->timeout_ms);
        silent_fix(ev, f);
        return true;
    }
    if (err == KC_ERR_NO_DEVICE || err == KC_ERR_UNPLUGGED || err == KC_ERR_IO ||
        err == KC_ERR_ABORTED) {
        f = doc_fail(v, "NO_REPLY", "pin");
        evidence(f, "%s: %s", what, kc_strerror(err));
        if (gone_contradicted(ev))
            contradiction(ev, f);
        io_fix(ev, f);
        return true;
    }
    f = doc_fail(v, "CTAP_ERROR", "pin");
    if (err == KC_ERR_NO_PIN_PROTOCOL) {
        evidence(f,
                 "%s: no PIN/UV auth protocol fits: the card advertised [%s], kcard speaks 2 "
                 "and 1",
                 what, ev->pin_protocols[0] ? ev->pin_protocols : "none");
        fix(f, "the card offers no PIN/UV protocol kcard knows, so the PIN cannot be used: run "
               "doctor without a PIN to test what needs none, and check for a firmware update");
        return true;
    }
    evidence(f, "%s: %s (before the PIN was checked)", what, status_str(err));
    info_pin_evidence(ev, f);
    fix(f, "the card refused the PIN exchange itself (not the PIN): check for a firmware update "
           "and report it to the card's vendor with `rawctap --trace doctor` output");
    return true;
}

static struct rc_doc_finding *gate_fail(struct rc_doc_verdict *v, const char *code)
{
    struct rc_doc_finding *f = doc_fail(v, code, "pin");
    v->pin_gate = true;
    return f;
}

/* The PIN gate: after every step that needs no PIN has run, the card's
 * PIN/UV state (named from getInfo, getRetries, the token request and the
 * statuses makeCredential/getAssertion answered). */
static bool tree_pin_gate(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v)
{
    struct rc_doc_finding *f;
    bool have_token = ev->token_ran && ev->token_err == KC_OK;
    bool gated =
        (ev->presence_ran && ev->mc_err != KC_OK && pin_gated(ev->mc_err, ev->mc_used_pin)) ||
        (ev->verify_ran && ev->ga_err != KC_OK && pin_gated(ev->ga_err, ev->ga_used_pin));

    if ((ev->retries_ran && ev->retries_err == KC_OK && ev->retries == 0) ||
        pin_said(ev, KC_CTAP2_ERR_PIN_BLOCKED)) {
        f = gate_fail(v, "PIN_BLOCKED");
        retries_evidence(ev, f);
        if (pin_said(ev, KC_CTAP2_ERR_PIN_BLOCKED))
            evidence(f, "the card answered CTAP2_ERR_PIN_BLOCKED");
        evidence(f, "no PIN attempt is left: the PIN can never be entered again, so nothing that "
                    "needs the PIN or UV will work on this card");
        gated_evidence(ev, f);
        fix(f, "%s", reset_fix);
        return true;
    }
    if (ev->power_cycle_state || pin_said(ev, KC_CTAP2_ERR_PIN_AUTH_BLOCKED)) {
        f = gate_fail(v, "PIN_AUTH_BLOCKED");
        retries_evidence(ev, f);
        if (pin_said(ev, KC_CTAP2_ERR_PIN_AUTH_BLOCKED))
            evidence(f, "the card answered CTAP2_ERR_PIN_AUTH_BLOCKED");
        evidence(f, "too many wrong PINs in a row since power-up: the card refuses the PIN until "
                    "it is power-cycled (the retries left are not lost)");
        gated_evidence(ev, f);
        fix(f, "power-cycle the card (unplug it, wait 5 s, plug it in; for a virtual card restart "
               "it), then run doctor again with the right PIN; nothing is erased and nothing "
               "else is needed");
        return true;
    }
    if (ev->force_pin_change || pin_said(ev, KC_CTAP2_ERR_PIN_POLICY_VIOLATION)) {
        f = gate_fail(v, "PIN_CHANGE_REQUIRED");
        if (ev->force_pin_change)
            evidence(f, "getInfo: forcePINChange true");
        if (pin_said(ev, KC_CTAP2_ERR_PIN_POLICY_VIOLATION))
            evidence(f, "the card answered CTAP2_ERR_PIN_POLICY_VIOLATION to a PIN request");
        evidence(f, "the card refuses a PIN/UV token until the PIN is changed");
        retries_evidence(ev, f);
        fix(f, "change the PIN: `rawctap pin change --pin-file OLD --new-pin-file NEW` (or "
               "$RAWCTAP_PIN and $RAWCTAP_NEW_PIN), then run doctor again with the new PIN; "
               "nothing is erased");
        return true;
    }
    if (ev->token_ran && ev->token_err == KC_CTAP2_ERR_PIN_INVALID) {
        f = gate_fail(v, "PIN_INVALID");
        evidence(f, "the card answered CTAP2_ERR_PIN_INVALID: the PIN given is not this card's");
        if (ev->retries_after_known)
            evidence(f, "%u PIN attempt(s) left now", ev->retries_after);
        else
            retries_evidence(ev, f);
        if (ev->retries_after_known)
            fix(f,
                "run doctor again with the right PIN (--pin-file F or $RAWCTAP_PIN); %u "
                "attempt(s) are left, and when none is left the PIN is blocked for good, so do "
                "not guess; nothing is wrong with the card",
                ev->retries_after);
        else
            fix(f, "run doctor again with the right PIN (--pin-file F or $RAWCTAP_PIN); every "
                   "wrong PIN costs an attempt, and when none is left the PIN is blocked for "
                   "good, so do not guess; nothing is wrong with the card");
        return true;
    }
    if (ev->pin_spared) {
        f = doc_warn(v, "PIN_RETRIES_LOW", "pin");
        if (f) {
            retries_evidence(ev, f);
            evidence(f, "doctor did not send the PIN: a wrong PIN now would block the PIN for "
                        "good");
            gated_evidence(ev, f);
            fix(f,
                "make sure of the PIN first; then `rawctap doctor --pin-file F --pin-last-try` "
                "lets doctor spend the attempt (a right PIN restores the full count). Nothing is "
                "wrong with the card so far");
        }
        return false;
    }
    if (have_token)
        return false;
    if (!gated && ev->always_uv != 1)
        return false;
    if (ev->client_pin == 1) {
        f = doc_warn(v, "PIN_REQUIRED", "pin");
        if (f) {
            info_pin_evidence(ev, f);
            gated_evidence(ev, f);
            if (!gated)
                evidence(f, "alwaysUv: every makeCredential and getAssertion needs the PIN");
            retries_evidence(ev, f);
            fix(f, "run `rawctap doctor --pin-file F` (or set RAWCTAP_PIN) to test further; "
                   "nothing is wrong with the card so far: it wants its PIN for what doctor "
                   "does next");
        }
        return false;
    }
    f = gate_fail(v, "PIN_NOT_SET");
    info_pin_evidence(ev, f);
    gated_evidence(ev, f);
    if (ev->pin_given)
        evidence(f, "a PIN was given, but the card has none set");
    evidence(f, "the card requires user verification but no PIN is set: it refuses to register "
                "until one is");
    if (ev->client_pin == 0)
        fix(f, "set a PIN: `rawctap pin set --new-pin-file F` (or $RAWCTAP_NEW_PIN), then run "
               "`rawctap doctor --pin-file F`; nothing is erased");
    else
        fix(f, "the card offers no clientPin: set up its built-in user verification (e.g. enrol "
               "a fingerprint) with the vendor's tool, then run doctor again");
    return true;
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

/* A CTAP2 card whose CTAP1 timing got nothing, not even a fresh INIT
 * afterwards: it went away, which is not slowness. */
static bool tree_ctap1_silent(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v)
{
    struct rc_doc_finding *f;
    if (!ev->ctap1_ran || !has_ctap2(ev) || ev->ctap1_alive_after >= 0)
        return false;
    f = doc_fail(v, "NO_REPLY", "ctap1");
    evidence(f,
             "a CTAP1 request %s, and a fresh CTAPHID_INIT afterwards no reply either: the "
             "card stopped answering at %s",
             ev->ctap1_err == KC_ERR_TIMEOUT ? "got no answer" : "failed to reach it", where(ev));
    if (ev->moved_hint[0])
        evidence(f, "its announce file now names %s", ev->moved_hint);
    silent_fix(ev, f);
    return true;
}

void rc_doc_decide(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->ok = true;
    if (tree_discover(ev, v) || tree_open(ev, v) || tree_moved(ev, v) || tree_init(ev, v) ||
        tree_channel(ev, v) || tree_info(ev, v) || tree_pin(ev, v) || tree_presence(ev, v) ||
        tree_verify(ev, v) || tree_ctap1_silent(ev, v) || tree_pin_gate(ev, v))
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
    json_object_set_new(o, "pin_given", json_boolean(ev->pin_given));
    if (ev->retries_ran && ev->retries_err == KC_OK)
        json_object_set_new(o, "pin_retries", json_integer((json_int_t)ev->retries));
    if (ev->rk_remaining_known || ev->cm_ran) {
        /* resident-credential capacity: reported, never a finding */
        json_t *cap = json_object();
        if (ev->rk_remaining_known)
            json_object_set_new(cap, "remaining_discoverable_credentials",
                                json_integer((json_int_t)ev->rk_remaining));
        if (ev->cm_ran && ev->cm_err == KC_OK) {
            json_object_set_new(cap, "existing_resident_credentials",
                                json_integer((json_int_t)ev->cm_existing));
            json_object_set_new(cap, "remaining_resident_credentials",
                                json_integer((json_int_t)ev->cm_remaining));
        } else if (ev->cm_ran) {
            json_object_set_new(cap, "cred_mgmt_error",
                                json_string(ev->cm_err > 0
                                                ? kc_ctap2_status_name((uint8_t)ev->cm_err)
                                                : kc_err_name(ev->cm_err)));
        }
        json_object_set_new(o, "capacity", cap);
    }
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
