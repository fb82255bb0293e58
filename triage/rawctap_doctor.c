/* rawctap doctor: walks the triage decision tree of docs/runbook/TRIAGE.md
 * against one card and names the first failing step with a stable code,
 * the evidence and the one fix. This file runs the steps and gathers the
 * evidence (discovery, open, INIT, PINGs, getInfo, a makeCredential on a
 * throwaway rp id, a getAssertion checked with its key, CTAP1 timing); the
 * PIN step is rawctap_doctor_pin.c, finding the card again (enumeration,
 * the watch while requests wait) rawctap_doctor_watch.c, and the decision
 * itself rawctap_doctor_tree.c, a pure function. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ctaphid/cose.h"
#include "ctaphid/credman.h"
#include "ctaphid/ctap2.h"
#include "ctaphid/discover.h"
#include "ctaphid/pin.h"
#include "ctaphid/status.h"
#include "ctaphid/u2f.h"
#include "ctaphid/verify.h"
#include "triage/rawctap.h"
#include "triage/rawctap_doctor.h"
#include "triage/rawctap_doctor_run.h"
#include "util/rand.h"
#include "util/num.h"

enum {
    RC_DOC_OPT_NO_PRESENCE = RC_OPT_CMD_BASE,
    RC_DOC_OPT_SLOW,
    RC_DOC_OPT_CRED_FILE,
    RC_DOC_OPT_PIN_LAST_TRY,
};

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ---- keepalives ---- */

static void rc_doc_on_keepalive(void *arg, uint8_t status, uint64_t elapsed_us)
{
    struct rc_doc_ka *ka = arg;
    if (elapsed_us > ka->last_us && elapsed_us - ka->last_us > ka->max_gap_us)
        ka->max_gap_us = elapsed_us - ka->last_us;
    if (elapsed_us > ka->last_us)
        ka->last_us = elapsed_us;
    if (status == KC_KEEPALIVE_UPNEEDED) {
        ka->upneeded++;
        if (!ka->told) {
            fprintf(stderr, "rawctap doctor: touch the card now (it asks for presence)\n");
            fflush(stderr);
            ka->told = true;
        }
    } else {
        ka->processing++;
    }
    rc_verbose(ka->ctx, 2, "keepalive %s +%.2fs", kc_keepalive_name(status),
               (double)elapsed_us / 1e6);
}

static void ka_reset(struct rc_doc_ka *ka)
{
    struct rc_ctx *ctx = ka->ctx;
    memset(ka, 0, sizeof(*ka));
    ka->ctx = ctx;
}

/* The final stretch: from the last keepalive to the reply (or deadline). */
static long ka_finish(struct rc_doc_ka *ka, uint64_t total_us)
{
    if (total_us > ka->last_us && total_us - ka->last_us > ka->max_gap_us)
        ka->max_gap_us = total_us - ka->last_us;
    return (long)(ka->max_gap_us / 1000u);
}

/* ---- discovery ---- */

static void append(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t l = strlen(buf);
    va_list ap;
    if (l >= cap - 1)
        return;
    va_start(ap, fmt);
    vsnprintf(buf + l, cap - l, fmt, ap);
    va_end(ap);
}

static void step_discover(struct rc_doc_run *run, struct kc_dev_entry *cands, size_t *n_cands,
                          bool *chosen_node)
{
    struct rc_doc_evidence *ev = run->ev;
    uint64_t t0 = kc_now_us();
    struct kc_dev_entry *ents = calloc(RC_DOC_MAX_NODES, sizeof(*ents));
    bool is_node[RC_DOC_MAX_NODES];
    size_t n_nodes = 0, n;

    *n_cands = 0;
    ev->discover_ran = true;
    snprintf(ev->sysfs_root, sizeof(ev->sysfs_root), "%s",
             rc_doc_env_or("KCARD_SYSFS_HIDRAW", KC_SYSFS_HIDRAW_DEFAULT));
    snprintf(ev->announce_dir, sizeof(ev->announce_dir), "%s",
             rc_doc_env_or("KCARD_ANNOUNCE_DIR", KC_ANNOUNCE_DIR_DEFAULT));
    if (ents == NULL) {
        rc_doc_step_add(ev, "discover", RC_DOC_SKIP, 0, "out of memory");
        return;
    }
    n = rc_doc_discover_all(ents, is_node, &n_nodes);
    ev->n_hidraw = n_nodes;
    for (size_t i = 0; i < n; i++) {
        const struct kc_dev_entry *e = &ents[i];
        if (!is_node[i]) {
            ev->n_announced++;
            continue;
        }
        append(ev->nodes, sizeof(ev->nodes), "%s%s %s %04x:%04x", ev->nodes[0] ? ", " : "",
               base_name(e->uri), e->fido ? "FIDO" : "not-FIDO", e->vid, e->pid);
        if (e->fido) {
            ev->n_fido++;
            append(ev->fido_nodes, sizeof(ev->fido_nodes), "%s%s", ev->fido_nodes[0] ? " or " : "",
                   e->uri + 7);
        }
    }
    if (ev->dev == RC_DOC_DEV_AUTO) {
        /* the same order as "auto": FIDO nodes, then announced cards */
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < n; i++)
                if ((pass == 0 && is_node[i] && ents[i].fido) || (pass == 1 && !is_node[i])) {
                    chosen_node[*n_cands] = is_node[i];
                    cands[(*n_cands)++] = ents[i];
                }
    } else {
        struct stat st;
        ev->named_exists = stat(ev->node_path, &st) == 0;
        ev->named_fido = -1;
        for (size_t i = 0; i < n; i++)
            if (is_node[i] && strcmp(base_name(ents[i].uri), base_name(ev->node_path)) == 0) {
                ev->named_fido = ents[i].fido ? 1 : 0;
                run->chosen = ents[i];
                run->have_chosen = ents[i].fido;
                run->chosen_node = true;
            }
    }
    rc_doc_step_add(ev, "discover", RC_DOC_PASS, rc_doc_ms_since(t0),
                    "%zu hidraw node(s) (%zu FIDO)%s%s, %zu announced card(s)", ev->n_hidraw,
                    ev->n_fido, ev->nodes[0] ? ": " : "", ev->nodes, ev->n_announced);
    free(ents);
}

/* ---- open ---- */

static void node_stat(struct rc_doc_evidence *ev, const char *path)
{
    struct stat st;
    snprintf(ev->node_path, sizeof(ev->node_path), "%s", path);
    ev->uid = (unsigned)geteuid();
    if (stat(path, &st) != 0)
        return;
    struct passwd *pw = getpwuid(st.st_uid);
    struct group *gr = getgrgid(st.st_gid);
    ev->have_stat = true;
    ev->mode = (unsigned)(st.st_mode & 07777);
    if (pw)
        snprintf(ev->owner, sizeof(ev->owner), "%s", pw->pw_name);
    else
        snprintf(ev->owner, sizeof(ev->owner), "%u", (unsigned)st.st_uid);
    if (gr)
        snprintf(ev->group, sizeof(ev->group), "%s", gr->gr_name);
    else
        snprintf(ev->group, sizeof(ev->group), "%u", (unsigned)st.st_gid);
    ev->in_group = getegid() == st.st_gid;
    gid_t groups[256];
    int ng = getgroups(256, groups);
    for (int i = 0; i < ng; i++)
        if (groups[i] == st.st_gid)
            ev->in_group = true;
}

static const char *hidraw_path_of(const char *uri)
{
    if (strncmp(uri, "hidraw:", 7) == 0)
        return uri + 7;
    if (uri[0] == '/' || uri[0] == '.' || strchr(uri, ':') == NULL)
        return uri;
    return NULL;
}

static int try_open(struct rc_doc_evidence *ev, const char *uri, struct kc_transport **t)
{
    char err[512] = "";
    int r = kc_transport_open(uri, t, err, sizeof(err));
    if (r != KC_OK) {
        ev->open_err = r;
        snprintf(ev->open_msg, sizeof(ev->open_msg), "%s", err[0] ? err : kc_strerror(r));
        const char *p = hidraw_path_of(uri);
        if (p)
            node_stat(ev, p);
    }
    return r;
}

/* What a failed open found, kept while other candidates are tried. */
struct open_facts {
    int err;
    char msg[512], path[256], owner[64], group[64];
    bool have_stat, in_group;
    unsigned mode;
};

static void open_facts_save(struct open_facts *f, const struct rc_doc_evidence *ev)
{
    f->err = ev->open_err;
    memcpy(f->msg, ev->open_msg, sizeof(f->msg));
    memcpy(f->path, ev->node_path, sizeof(f->path));
    memcpy(f->owner, ev->owner, sizeof(f->owner));
    memcpy(f->group, ev->group, sizeof(f->group));
    f->have_stat = ev->have_stat;
    f->in_group = ev->in_group;
    f->mode = ev->mode;
}

static void open_facts_restore(const struct open_facts *f, struct rc_doc_evidence *ev)
{
    ev->open_err = f->err;
    memcpy(ev->open_msg, f->msg, sizeof(ev->open_msg));
    memcpy(ev->node_path, f->path, sizeof(ev->node_path));
    memcpy(ev->owner, f->owner, sizeof(ev->owner));
    memcpy(ev->group, f->group, sizeof(ev->group));
    ev->have_stat = f->have_stat;
    ev->in_group = f->in_group;
    ev->mode = f->mode;
}

static struct kc_transport *step_open(struct rc_doc_run *run, const struct kc_dev_entry *cands,
                                      const bool *cand_node, size_t n_cands)
{
    struct rc_doc_evidence *ev = run->ev;
    struct kc_transport *t = NULL;
    uint64_t t0 = kc_now_us();
    ev->open_ran = true;
    if (ev->dev == RC_DOC_DEV_AUTO) {
        struct open_facts first;
        memset(&first, 0, sizeof(first));
        for (size_t i = 0; i < n_cands && t == NULL; i++) {
            if (try_open(ev, cands[i].uri, &t) == KC_OK) {
                run->chosen = cands[i];
                run->have_chosen = true;
                run->chosen_node = cand_node[i];
                break;
            }
            /* report the first failure; a permission problem wins */
            if (first.err == KC_OK ||
                (ev->open_err == KC_ERR_PERMISSION && first.err != KC_ERR_PERMISSION))
                open_facts_save(&first, ev);
        }
        if (t == NULL && n_cands == 0) {
            ev->open_err = KC_ERR_NO_DEVICE;
            snprintf(ev->open_msg, sizeof(ev->open_msg), "auto: no FIDO device found");
        } else if (t == NULL) {
            open_facts_restore(&first, ev);
        }
    } else {
        try_open(ev, run->ctx->uri, &t);
    }
    if (t == NULL) {
        rc_doc_step_add(ev, "open", RC_DOC_FAIL, rc_doc_ms_since(t0), "%s", ev->open_msg);
        return NULL;
    }
    ev->open_err = KC_OK;
    snprintf(ev->target, sizeof(ev->target), "%s", kc_transport_uri(t));
    rc_doc_step_add(ev, "open", RC_DOC_PASS, rc_doc_ms_since(t0), "opened %s", kc_transport_uri(t));
    return t;
}

/* ---- INIT and PINGs ---- */

static bool is_transport_trouble(int err)
{
    return err == KC_ERR_TIMEOUT || err == KC_ERR_NO_DEVICE || err == KC_ERR_UNPLUGGED ||
           err == KC_ERR_IO || err == KC_ERR_ABORTED;
}

static bool step_init(struct rc_doc_run *run)
{
    struct rc_doc_evidence *ev = run->ev;
    struct kc_init_info info;
    uint64_t t0 = kc_now_us();
    ev->init_ran = true;
    for (int attempt = 1; attempt <= 2; attempt++) {
        ev->init_attempts = attempt;
        int r = kc_dev_init(run->ctx->dev, &info);
        ev->init_err = r;
        rc_doc_note_gone(ev, r);
        if (r == KC_OK) {
            ev->init_ok_attempt = attempt;
            ev->caps = info.capabilities;
            ev->caps_known = true;
            break;
        }
        if (r != KC_ERR_TIMEOUT)
            break;
    }
    if (ev->init_ok_attempt == 0) {
        rc_doc_step_add(ev, "init", RC_DOC_FAIL, rc_doc_ms_since(t0),
                        "no INIT reply (%s) in %d attempt(s) of %d ms", kc_err_name(ev->init_err),
                        ev->init_attempts, ev->init_timeout_ms);
        return false;
    }
    rc_doc_step_add(ev, "init", RC_DOC_PASS, rc_doc_ms_since(t0),
                    "channel %08x, CTAPHID protocol %u, version %u.%u.%u, capabilities 0x%02x%s",
                    info.cid, info.protocol_version, info.major, info.minor, info.build,
                    info.capabilities, ev->init_ok_attempt > 1 ? " (second attempt)" : "");
    return true;
}

static void one_ping(struct rc_doc_run *run, struct rc_doc_pings *p, size_t len)
{
    uint8_t out[RC_DOC_LARGE_LEN], in[RC_DOC_LARGE_LEN + 64];
    size_t got = 0;
    p->sent++;
    if (kcu_random(out, len) != 0) {
        p->other++;
        return;
    }
    int r = kc_dev_ping(run->ctx->dev, out, len, in, sizeof(in), &got);
    rc_doc_note_gone(run->ev, r);
    if (r == KC_OK) {
        if (got == len && memcmp(in, out, len) == 0)
            p->ok++;
        else
            p->mismatch++;
    } else if (r == KC_ERR_TIMEOUT) {
        p->timeout++;
    } else if (r == KC_ERR_PROTOCOL) {
        p->framing++;
    } else if (r == KC_ERR_HID) {
        uint8_t h = kc_dev_last_hid_error(run->ctx->dev);
        if (h == KC_HID_ERR_CHANNEL_BUSY)
            run->ev->busy = true;
        else
            run->ev->hid_err = h;
        p->other++;
    } else {
        p->other++;
    }
}

static void step_channel(struct rc_doc_run *run)
{
    struct rc_doc_evidence *ev = run->ev;
    struct kc_timeouts to = run->ctx->to;
    uint64_t t0 = kc_now_us();
    if (to.command_ms > RC_DOC_PING_BOUND_MS)
        to.command_ms = RC_DOC_PING_BOUND_MS;
    kc_dev_set_timeouts(run->ctx->dev, &to);
    ev->chan_ran = true;
    for (int i = 0; i < RC_DOC_SMALL_PINGS && !ev->busy; i++) {
        one_ping(run, &ev->small, RC_DOC_SMALL_LEN);
        /* silent twice with nothing working: no point in waiting more */
        if (ev->small.ok == 0 && ev->small.timeout >= 2)
            break;
    }
    if (!ev->busy && ev->small.ok > 0)
        for (int i = 0; i < RC_DOC_LARGE_PINGS; i++)
            one_ping(run, &ev->large, RC_DOC_LARGE_LEN);
    kc_dev_set_timeouts(run->ctx->dev, &run->ctx->to);
    const struct kc_dev_stats *st = kc_dev_stats(run->ctx->dev);
    if (st) {
        ev->other_cid = st->skipped_other_cid;
        ev->stale = st->skipped_stale;
    }
    bool good = ev->small.ok == ev->small.sent && ev->large.ok == ev->large.sent;
    rc_doc_step_add(ev, "channel", good ? RC_DOC_PASS : RC_DOC_FAIL, rc_doc_ms_since(t0),
                    "PING %d/%d one-report and %d/%d multi-report echoed; %llu report(s) on other "
                    "channels, %llu stale",
                    ev->small.ok, ev->small.sent, ev->large.ok, ev->large.sent,
                    (unsigned long long)ev->other_cid, (unsigned long long)ev->stale);
}

/* ---- getInfo ---- */

static void step_getinfo(struct rc_doc_run *run)
{
    struct rc_doc_evidence *ev = run->ev;
    uint64_t t0 = kc_now_us();
    if ((ev->caps & KC_HID_CAP_CBOR) == 0) {
        rc_doc_step_add(ev, "getinfo", RC_DOC_FAIL, 0,
                        "INIT capabilities 0x%02x lack CBOR: the card offers no CTAP2", ev->caps);
        return;
    }
    ev->info_ran = true;
    int r = kc_ctap2_get_info(run->ctx->dev, &run->info);
    ev->info_err = r;
    rc_doc_note_gone(ev, r);
    if (r != KC_OK) {
        rc_doc_step_add(ev, "getinfo", RC_DOC_FAIL, rc_doc_ms_since(t0), "getInfo failed: %s",
                        kc_err_name(r));
        return;
    }
    const struct kc_info *in = &run->info;
    for (size_t i = 0; i < in->n_versions; i++)
        append(ev->versions, sizeof(ev->versions), "%s%s", i ? ", " : "", in->versions[i]);
    ev->n_pin_protocols = in->n_pin_protocols;
    ev->client_pin = kc_info_option(in, "clientPin");
    ev->always_uv = kc_info_option(in, "alwaysUv");
    ev->uv = kc_info_option(in, "uv");
    ev->mc_uv_not_rqd = kc_info_option(in, "makeCredUvNotRqd");
    ev->force_pin_change = in->force_pin_change;
    char list[64];
    kc_info_pin_protocols_str(in, list, sizeof(list));
    snprintf(ev->pin_protocols, sizeof(ev->pin_protocols), "%s", list);
    ev->rk_remaining_known = kc_info_has(in, KC_INFO_REMAINING_DISC_CREDS);
    ev->rk_remaining = in->remaining_discoverable_credentials;
    char rk[64] = "";
    if (ev->rk_remaining_known)
        snprintf(rk, sizeof(rk), "; %llu discoverable credential slot(s) remaining",
                 (unsigned long long)ev->rk_remaining);
    bool warn = ev->n_pin_protocols == 0 && ev->client_pin != 1;
    rc_doc_step_add(ev, "getinfo", warn ? RC_DOC_WARN : RC_DOC_PASS, rc_doc_ms_since(t0),
                    "versions %s; pinUvAuthProtocols [%s]; clientPin %s%s%s%s%s",
                    ev->versions[0] ? ev->versions : "none", list,
                    ev->client_pin < 0 ? "absent"
                    : ev->client_pin   ? "set"
                                       : "not set",
                    ev->always_uv == 1 ? "; alwaysUv" : "",
                    ev->mc_uv_not_rqd == 1 ? "; makeCredUvNotRqd" : "",
                    ev->force_pin_change ? "; forcePINChange" : "", rk);
}

/* ---- capacity: credential management's metadata, read only ---- */

/* With the PIN the pin step saw accepted and a card offering credential
 * management: how many resident credentials exist and how many more fit,
 * added to the getinfo step's line. Nothing is deleted or advised: a full
 * card is a fact to report, not a fault. The metadata's cm token replaces
 * the card's current one, so the token for what follows (perm, rp_id) is
 * fetched again. */
static void step_capacity(struct rc_doc_run *run, uint8_t perm, const char *rp_id)
{
    struct rc_doc_evidence *ev = run->ev;
    struct kc_credman cm;
    struct kc_credman_metadata meta;
    if (!run->have_token || run->pin == NULL || kc_credman_command(&run->info) == 0)
        return;
    ev->cm_ran = true;
    memset(&meta, 0, sizeof(meta));
    int r = kc_credman_open(&cm, run->ctx->dev, &run->info, run->pin);
    if (r == KC_OK)
        r = kc_credman_metadata(&cm, &meta);
    kc_credman_close(&cm);
    ev->cm_err = r;
    rc_doc_note_gone(ev, r);
    if (r == KC_OK) {
        ev->cm_existing = meta.existing;
        ev->cm_remaining = meta.remaining;
    }
    kc_pin_token_clear(&run->token);
    run->have_token = false;
    int t = kc_pin_token_for(run->ctx->dev, &run->info, run->pin, perm, rp_id, &run->token);
    rc_doc_note_gone(ev, t);
    if (t == KC_OK) {
        run->have_token = true;
    } else {
        kc_pin_token_clear(&run->token);
        ev->token_err = t;
    }
    for (size_t i = 0; i < ev->n_steps; i++) {
        struct rc_doc_step *s = &ev->steps[i];
        if (strcmp(s->name, "getinfo") != 0)
            continue;
        if (r == KC_OK)
            append(s->detail, sizeof(s->detail),
                   "; resident credentials: %llu existing, %llu remaining (credMgmt)",
                   (unsigned long long)ev->cm_existing, (unsigned long long)ev->cm_remaining);
        else
            append(s->detail, sizeof(s->detail), "; credMgmt metadata: %s",
                   r > 0 ? kc_ctap2_status_name((uint8_t)r) : kc_err_name(r));
    }
}

/* ---- CTAP1 timing: VERSION, REGISTER's first answer, a check-only ---- */

/* needed: the card has no CTAP2, so CTAP1 is all it speaks. */
static int alive_after(struct rc_doc_run *run);

static void step_ctap1(struct rc_doc_run *run, bool needed)
{
    struct rc_doc_evidence *ev = run->ev;
    struct kc_dev *d = run->ctx->dev;
    uint8_t chal[KC_U2F_CHAL_LEN], app[KC_U2F_APP_LEN], kh[64];
    uint16_t sw = 0;
    struct kc_u2f_register *reg = calloc(1, sizeof(*reg));
    struct kc_u2f_auth auth;
    uint64_t t0 = kc_now_us();
    const uint8_t *handle = kh;
    size_t handle_len = sizeof(kh);

    ev->ctap1_ran = true;
    ev->ctap1_err = KC_OK;
    if (reg == NULL || kcu_random(chal, sizeof(chal)) != 0 || kcu_random(kh, sizeof(kh)) != 0 ||
        rc_sha256(RC_DOC_RP_ID, strlen(RC_DOC_RP_ID), app) != 0) {
        free(reg);
        ev->ctap1_err = KC_ERR_NOMEM;
        rc_doc_step_add(ev, "ctap1", RC_DOC_SKIP, 0, "local failure");
        return;
    }
    run->ctx->in_ctap1 = true;
    int r = kc_u2f_version(d, ev->u2f_version, sizeof(ev->u2f_version), &sw);
    if (r == KC_OK && rc_doc_ms_since(t0) > ev->slow_ms) {
        ev->ctap1_cut_short = true;
    } else if (r == KC_OK) {
        r = kc_u2f_register(d, chal, app, reg);
        if (r == KC_OK) {
            handle = reg->key_handle;
            handle_len = reg->key_handle_len;
        } else if (r == KC_ERR_U2F && reg->sw == KC_U2F_SW_CONDITIONS_NOT_SATISFIED) {
            r = KC_OK; /* needs a touch: the answer's time is what counts */
        } else {
            sw = reg->sw;
        }
        /* already over the limit: slow by the total, skip the check */
        if (r == KC_OK && rc_doc_ms_since(t0) <= ev->slow_ms) {
            memset(&auth, 0, sizeof(auth));
            r = kc_u2f_authenticate(d, KC_U2F_AUTH_CHECK_ONLY, chal, app, handle, handle_len, NULL,
                                    &auth);
            /* check-only answers CONDITIONS_NOT_SATISFIED for its own handle,
             * WRONG_DATA for another: both are the expected answers */
            if (r == KC_ERR_U2F &&
                (auth.sw == KC_U2F_SW_CONDITIONS_NOT_SATISFIED || auth.sw == KC_U2F_SW_WRONG_DATA))
                r = KC_OK;
            else if (r == KC_ERR_U2F)
                sw = auth.sw;
        }
    }
    run->ctx->in_ctap1 = false;
    rc_doc_note_gone(ev, r);
    /* nothing came back: slow, or gone from this address? (a card that
     * re-plugged between VERSION and REGISTER is not slow) */
    if (r == KC_ERR_TIMEOUT || r == KC_ERR_NO_DEVICE || r == KC_ERR_IO || r == KC_ERR_UNPLUGGED)
        ev->ctap1_alive_after = alive_after(run);
    ev->ctap1_err = r;
    ev->ctap1_sw = sw;
    ev->ctap1_ms = rc_doc_ms_since(t0);
    free(reg);
    bool slow =
        ev->ctap1_cut_short || r == KC_ERR_TIMEOUT || (r == KC_OK && ev->ctap1_ms > ev->slow_ms);
    enum rc_doc_result slow_result = needed ? RC_DOC_FAIL : RC_DOC_WARN;
    if (r == KC_OK || r == KC_ERR_TIMEOUT)
        rc_doc_step_add(ev, "ctap1", slow ? slow_result : RC_DOC_PASS, ev->ctap1_ms,
                        "U2F %s%s in %ld ms (limit %d ms)",
                        ev->u2f_version[0] ? ev->u2f_version : "VERSION",
                        r == KC_ERR_TIMEOUT   ? ": a request timed out"
                        : ev->ctap1_cut_short ? ": VERSION alone over the limit"
                                              : ", REGISTER and check answered",
                        ev->ctap1_ms, ev->slow_ms);
    else
        rc_doc_step_add(ev, "ctap1", needed ? RC_DOC_FAIL : RC_DOC_SKIP, ev->ctap1_ms,
                        "CTAP1 %s: %s", needed ? "failed" : "not available",
                        r == KC_ERR_U2F ? kc_u2f_sw_name(sw) : kc_err_name(r));
}

/* ---- presence: makeCredential on a throwaway rp id, then getAssertion ---- */

struct rc_doc_cred {
    bool have;
    uint8_t id[KC_CRED_ID_MAX];
    size_t id_len;
    struct kc_cose_key key;
    uint32_t count;
    char rp_id[256];
};

static int client_data_hash(uint8_t cdh[KC_CDH_LEN])
{
    return kcu_random(cdh, KC_CDH_LEN);
}

/* A status saying the request needs (or cannot have) the PIN: the step is a
 * warning; the PIN gate of the tree names it. */
static bool wants_pin(int r, bool used_pin)
{
    return r == KC_CTAP2_ERR_PIN_BLOCKED || r == KC_CTAP2_ERR_PIN_AUTH_BLOCKED ||
           r == KC_CTAP2_ERR_PIN_POLICY_VIOLATION ||
           (!used_pin && (r == KC_CTAP2_ERR_PUAT_REQUIRED || r == KC_CTAP2_ERR_PIN_NOT_SET ||
                          r == KC_ERR_NO_PIN_PROTOCOL));
}

/* A request timed out with not one KEEPALIVE: is the card still there at
 * all? A fresh CTAPHID_INIT (bounded by 1 s) tells a card that went silent
 * from one that is merely quiet while it works. 1 answered, -1 silent. */
static int alive_after(struct rc_doc_run *run)
{
    struct kc_init_info info;
    struct kc_timeouts to = run->ctx->to;
    if (to.init_ms > RC_DOC_PING_BOUND_MS)
        to.init_ms = RC_DOC_PING_BOUND_MS;
    kc_dev_set_timeouts(run->ctx->dev, &to);
    int r = kc_dev_init(run->ctx->dev, &info);
    kc_dev_set_timeouts(run->ctx->dev, &run->ctx->to);
    rc_doc_note_gone(run->ev, r);
    return r == KC_OK || r == KC_ERR_HID ? 1 : -1;
}

static void step_presence(struct rc_doc_run *run, struct rc_doc_cred *cred)
{
    struct rc_doc_evidence *ev = run->ev;
    struct kc_cred_request req;
    struct kc_attestation att;
    uint8_t uid[16];
    memset(&att, 0, sizeof(att));
    kc_cred_request_init(&req);
    ev->presence_ran = true;
    if (client_data_hash(req.client_data_hash) != 0 || kcu_random(uid, sizeof(uid)) != 0) {
        ev->mc_err = KC_ERR_CRYPTO;
        return;
    }
    req.rp_id = RC_DOC_RP_ID;
    req.rp_name = "kcard doctor";
    req.user_id = uid;
    req.user_id_len = sizeof(uid);
    req.user_name = "kcard-doctor";
    req.algs[0] = run->ctx->alg;
    req.n_algs = 1;
    req.info = &run->info;
    if (run->have_token) {
        req.token = &run->token;
        ev->mc_used_pin = true;
    } else if (ev->uv == 1) {
        /* a card with built-in user verification (a fingerprint) verifies
         * the person itself when asked: no PIN needed for that */
        req.uv = true;
        ev->mc_used_uv = true;
    }
    fprintf(stderr,
            "rawctap doctor: makeCredential for %s: touch the card if it asks (waiting at most "
            "%d ms for the prompt)\n",
            RC_DOC_RP_ID, ev->timeout_ms);
    ka_reset(&run->ka);
    uint64_t t0 = kc_now_us();
    int r = kc_ctap2_make_credential(run->ctx->dev, &req, &att);
    uint64_t total = kc_now_us() - t0;
    ev->mc_err = r;
    rc_doc_note_gone(ev, r);
    ev->mc_phase = kc_dev_last_phase(run->ctx->dev);
    ev->mc_ms = (long)(total / 1000u);
    ev->n_processing = run->ka.processing;
    ev->n_upneeded = run->ka.upneeded;
    ev->max_gap_ms = ka_finish(&run->ka, total);
    ev->att_err = KC_OK;
    /* the token's permissions may be spent by the makeCredential */
    kc_pin_token_clear(&run->token);
    run->have_token = false;
    if (r == KC_ERR_TIMEOUT && ev->n_processing + ev->n_upneeded == 0 && !run->moved_abort)
        ev->mc_alive_after = alive_after(run);
    if (r == KC_OK) {
        struct kc_verify_result vr;
        kc_verify_result_init(&vr);
        ev->att_err =
            kc_verify_attestation(att.fmt, att.auth_data, att.auth_data_len, att.att_stmt,
                                  att.att_stmt_len, req.client_data_hash, RC_DOC_RP_ID, &vr);
        if (ev->att_err != KC_OK) {
            snprintf(ev->att_reason, sizeof(ev->att_reason), "%.200s (%.32s)", vr.reason, att.fmt);
        } else if (!cred->have && vr.cred_id_len > 0 && vr.cred_id_len <= sizeof(cred->id)) {
            cred->have = true;
            memcpy(cred->id, vr.cred_id, vr.cred_id_len);
            cred->id_len = vr.cred_id_len;
            cred->key = vr.cred_key;
            memset(&vr.cred_key, 0, sizeof(vr.cred_key)); /* moved */
            cred->count = vr.sign_count;
            snprintf(cred->rp_id, sizeof(cred->rp_id), "%s", RC_DOC_RP_ID);
        }
        kc_verify_result_free(&vr);
    }
    kc_attestation_free(&att);
    bool good = r == KC_OK && ev->att_err == KC_OK && ev->max_gap_ms <= RC_DOC_KEEPALIVE_GAP_MS;
    rc_doc_step_add(ev, "presence",
                    good                            ? RC_DOC_PASS
                    : wants_pin(r, ev->mc_used_pin) ? RC_DOC_WARN
                                                    : RC_DOC_FAIL,
                    ev->mc_ms,
                    "makeCredential %s%s: %s after %ld ms; %d PROCESSING, %d UPNEEDED "
                    "keepalive(s), longest silence %ld ms%s",
                    RC_DOC_RP_ID,
                    ev->mc_used_pin  ? " with the PIN"
                    : ev->mc_used_uv ? " with built-in uv"
                                     : "",
                    r > 0 ? kc_ctap2_status_name((uint8_t)r) : kc_err_name(r), ev->mc_ms,
                    ev->n_processing, ev->n_upneeded, ev->max_gap_ms,
                    r == KC_OK
                        ? (ev->att_err == KC_OK ? "; attestation verified" : "; attestation FAILED")
                        : "");
}

static void step_verify(struct rc_doc_run *run, struct rc_doc_cred *cred)
{
    struct rc_doc_evidence *ev = run->ev;
    struct kc_assert_request req;
    struct kc_assertion a;
    struct kc_cred_id allow = {cred->id, cred->id_len};
    memset(&a, 0, sizeof(a));
    kc_assert_request_init(&req);
    ev->verify_ran = true;
    if (client_data_hash(req.client_data_hash) != 0) {
        ev->ga_err = KC_ERR_CRYPTO;
        return;
    }
    req.rp_id = cred->rp_id;
    req.allow = &allow;
    req.n_allow = 1;
    req.up = false; /* no second touch: the signature and counter are the point */
    req.info = &run->info;
    ka_reset(&run->ka);
    uint64_t t0 = kc_now_us();
    int r = KC_OK;
    struct kc_pin_token tok;
    memset(&tok, 0, sizeof(tok));
    if (ev->token_ran && ev->token_err == KC_OK && run->pin) {
        /* the PIN is known good: a fresh token for this rp id */
        ev->ga_used_pin = true;
        r = kc_pin_token_for(run->ctx->dev, &run->info, run->pin, KC_PERM_GA, cred->rp_id, &tok);
        req.token = &tok;
    }
    if (r == KC_OK)
        r = kc_ctap2_get_assertion(run->ctx->dev, &req, &a);
    kc_pin_token_clear(&tok);
    uint64_t total = kc_now_us() - t0;
    ev->ga_err = r;
    rc_doc_note_gone(ev, r);
    ev->ga_max_gap_ms = ka_finish(&run->ka, total);
    if (r == KC_ERR_TIMEOUT && run->ka.processing + run->ka.upneeded == 0 && !run->moved_abort)
        ev->ga_alive_after = alive_after(run);
    ev->prev_count = cred->count;
    if (r == KC_OK) {
        struct kc_verify_result vr;
        uint32_t newc = 0;
        kc_verify_result_init(&vr);
        /* counter left out here (prev 0): judged separately by the tree */
        ev->sig_err = kc_verify_assertion(&cred->key, a.auth_data, a.auth_data_len, a.signature,
                                          a.signature_len, req.client_data_hash, cred->rp_id, false,
                                          false, 0, &newc, &vr);
        if (ev->sig_err != KC_OK)
            snprintf(ev->sig_reason, sizeof(ev->sig_reason), "%s", vr.reason);
        ev->new_count = a.ad.sign_count;
        kc_verify_result_free(&vr);
    }
    kc_assertion_free(&a);
    bool rollback = (ev->prev_count || ev->new_count) && ev->new_count <= ev->prev_count;
    bool good = r == KC_OK && ev->sig_err == KC_OK && !rollback &&
                ev->ga_max_gap_ms <= RC_DOC_KEEPALIVE_GAP_MS;
    rc_doc_step_add(ev, "verify",
                    good                            ? RC_DOC_PASS
                    : wants_pin(r, ev->ga_used_pin) ? RC_DOC_WARN
                                                    : RC_DOC_FAIL,
                    (long)(total / 1000u),
                    "getAssertion (up=false%s) %s: %s; signature %s; signCount %u -> %u",
                    ev->ga_used_pin ? ", with the PIN" : "", cred->rp_id,
                    r > 0 ? kc_ctap2_status_name((uint8_t)r) : kc_err_name(r),
                    r != KC_OK             ? "not checked"
                    : ev->sig_err == KC_OK ? "verified"
                                           : "FAILED",
                    ev->prev_count, ev->new_count);
}

static int load_cred_file(struct rc_ctx *ctx, const char *path, struct rc_doc_cred *cred)
{
    struct rc_cred_file cf;
    memset(&cf, 0, sizeof(cf));
    int r = rc_cred_file_load(ctx, path, &cf);
    if (r != 0)
        return r;
    if (cf.u2f || cf.cred_id_len == 0 || cf.cred_id_len > sizeof(cred->id)) {
        rc_cred_file_free(&cf);
        return rc_usage_error("doctor", "--cred-file %s is not a CTAP2 credential file", path);
    }
    if (kc_cose_decode(cf.cose, cf.cose_len, &cred->key, NULL) != KC_OK) {
        rc_cred_file_free(&cf);
        return rc_usage_error("doctor", "--cred-file %s: the saved key is not a COSE key", path);
    }
    cred->have = true;
    memcpy(cred->id, cf.cred_id, cf.cred_id_len);
    cred->id_len = cf.cred_id_len;
    cred->count = cf.sign_count;
    snprintf(cred->rp_id, sizeof(cred->rp_id), "%s", cf.rp_id ? cf.rp_id : "");
    rc_cred_file_free(&cf);
    return 0;
}

/* ---- output ---- */

static void print_text(const struct rc_doc_evidence *ev, const struct rc_doc_verdict *v)
{
    printf("rawctap doctor: %s\n", ev->target[0] ? ev->target : ev->device);
    for (size_t i = 0; i < ev->n_steps; i++) {
        const struct rc_doc_step *s = &ev->steps[i];
        printf("  %-4s  %-11s %6ld ms  %s\n",
               s->result == RC_DOC_FAIL ? "FAIL" : rc_doc_result_name(s->result), s->name, s->ms,
               s->detail);
    }
    const struct rc_doc_finding *f = &v->primary;
    if (!v->ok)
        printf("diagnosis: %s (step %s, exit %d)\n", f->code, f->step, f->exit);
    else if (v->n_warnings > 0)
        printf("diagnosis: OK with warning %s (step %s)\n", f->code, f->step);
    else
        printf("diagnosis: OK\n");
    for (size_t i = 0; i < f->n_evidence; i++)
        printf("  evidence: %s\n", f->evidence[i]);
    printf("  fix: %s\n", f->fix);
    for (size_t w = v->ok ? 1 : 0; w < v->n_warnings; w++) {
        printf("warning: %s (step %s)\n", v->warnings[w].code, v->warnings[w].step);
        for (size_t i = 0; i < v->warnings[w].n_evidence; i++)
            printf("  evidence: %s\n", v->warnings[w].evidence[i]);
        printf("  fix: %s\n", v->warnings[w].fix);
    }
}

static int finish(struct rc_doc_run *run)
{
    struct rc_doc_verdict *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return RC_EXIT_LOCAL;
    rc_doc_decide(run->ev, v);
    int code = v->primary.exit;
    /* the step that named the diagnosis shows it (discover passes its own
     * listing but may be where the tree stops) */
    for (size_t i = 0; i < run->ev->n_steps; i++) {
        struct rc_doc_step *s = &run->ev->steps[i];
        if (!v->ok && s->result == RC_DOC_PASS && strcmp(s->name, v->primary.step) == 0)
            s->result = RC_DOC_FAIL;
    }
    if (run->ctx->json) {
        json_t *o = rc_doc_json(run->ev, v);
        if (o) {
            json_object_update(run->ctx->result, o);
            json_decref(o);
        }
        if (!v->ok) {
            /* a failed diagnosis is a JSON failure like any other: its code
             * is the error's name, its first evidence the sentence */
            json_object_set_new(run->ctx->result, "error_name", json_string(v->primary.code));
            json_object_set_new(
                run->ctx->result, "error",
                json_string(v->primary.n_evidence > 0 ? v->primary.evidence[0] : v->primary.fix));
        }
    } else {
        print_text(run->ev, v);
    }
    free(v);
    return code;
}

/* Decide now; true when a failure is already named (stop gathering). */
static bool named(struct rc_doc_run *run)
{
    struct rc_doc_verdict *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return true;
    rc_doc_decide(run->ev, v);
    /* a PIN/UV state is named at the end: what needs no PIN is tested first */
    bool done = v->done && !v->pin_gate;
    free(v);
    return done;
}

/* After a transport-level failure: has the card moved or gone? */
static void check_moved(struct rc_doc_run *run, int err)
{
    if (!is_transport_trouble(err) && !run->moved_abort)
        return;
    if (run->ev->dev != RC_DOC_DEV_OTHER)
        /* EOF or hang-up comes with the node's removal: a node still there
         * after a short look is not re-enumerating; a silent card may be
         * about to, so it gets the full wait */
        rc_doc_step_enumeration(run, RC_DOC_ENUM_WAIT_MS,
                                err == KC_ERR_UNPLUGGED || err == KC_ERR_IO ? RC_DOC_ENUM_SETTLE_MS
                                                                            : RC_DOC_ENUM_WAIT_MS);
    else
        rc_doc_udp_moved_hint(run);
}

/* ---- the command ---- */

static int rc_doc_opt(struct rc_ctx *ctx, void *st, int c, const char *arg)
{
    struct rc_doc_opts *o = st;
    long v;
    (void)ctx;
    if (rc_pin_src_opt(&o->pin, c, arg))
        return 0;
    switch (c) {
    case RC_DOC_OPT_NO_PRESENCE:
        o->no_presence = true;
        return 0;
    case RC_DOC_OPT_SLOW:
        if (kcu_parse_long(arg, 1, 3600000, &v) != 0)
            return rc_usage_error("doctor", "--slow-ms wants milliseconds, not '%s'", arg);
        o->slow_ms = (int)v;
        return 0;
    case RC_DOC_OPT_CRED_FILE:
        o->cred_file = arg;
        return 0;
    case RC_DOC_OPT_PIN_LAST_TRY:
        o->pin_last_try = true;
        return 0;
    default:
        return rc_usage_error("doctor", "unexpected option");
    }
}

static void classify_device(const char *uri, struct rc_doc_evidence *ev)
{
    const char *p;
    snprintf(ev->device, sizeof(ev->device), "%s", uri);
    if (strcmp(uri, "auto") == 0) {
        ev->dev = RC_DOC_DEV_AUTO;
    } else if ((p = hidraw_path_of(uri)) != NULL) {
        ev->dev = RC_DOC_DEV_HIDRAW;
        snprintf(ev->node_path, sizeof(ev->node_path), "%s", p);
    } else {
        ev->dev = RC_DOC_DEV_OTHER;
    }
}

static int open_trace(struct rc_ctx *ctx)
{
    if (!ctx->trace_on || ctx->trace_fp != NULL)
        return 0;
    ctx->trace_fp = ctx->trace_file ? fopen(ctx->trace_file, "w") : stderr;
    if (ctx->trace_fp == NULL) {
        rc_err(ctx, "cannot write trace file %s: %s", ctx->trace_file, strerror(errno));
        return RC_EXIT_LOCAL;
    }
    kc_trace_init(&ctx->trace, ctx->trace_fp, ctx->trace_format);
    return 0;
}

static int doctor_run(struct rc_doc_run *run)
{
    struct rc_ctx *ctx = run->ctx;
    struct rc_doc_evidence *ev = run->ev;
    struct rc_doc_cred cred;
    struct kc_dev_entry *cands = NULL;
    bool cand_node[RC_DOC_MAX_NODES];
    size_t n_cands = 0;
    int r;

    memset(&cred, 0, sizeof(cred));
    if (run->opts->cred_file && (r = load_cred_file(ctx, run->opts->cred_file, &cred)) != 0)
        return r;
    if (run->opts->cred_file) {
        ev->verify_cred_file = true;
        snprintf(ev->cred_file, sizeof(ev->cred_file), "%s", run->opts->cred_file);
    }
    if ((r = open_trace(ctx)) != 0)
        goto out;

    /* discover: no hidraw at all, only a non-FIDO interface */
    if (ev->dev != RC_DOC_DEV_OTHER) {
        if ((cands = calloc(RC_DOC_MAX_NODES, sizeof(*cands))) == NULL) {
            r = RC_EXIT_LOCAL;
            goto out;
        }
        step_discover(run, cands, &n_cands, cand_node);
        if (named(run))
            goto done;
    }
    /* open: permission */
    struct kc_transport *t = step_open(run, cands, cand_node, n_cands);
    if (t == NULL) {
        if (ev->open_err == KC_ERR_INVALID_ARG) {
            r = rc_usage_error("doctor", "%s", ev->open_msg);
            goto out;
        }
        goto done;
    }
    if ((r = kc_dev_wrap(&ctx->dev, t, &ctx->to)) != KC_OK) {
        kc_transport_close(t);
        r = RC_EXIT_LOCAL;
        goto out;
    }
    /* a card that moves is a finding (REENUMERATED), not something to hide;
     * it is watched while requests wait, so it is named at once */
    kc_dev_set_follow(ctx->dev, false);
    if (ev->dev == RC_DOC_DEV_OTHER)
        rc_doc_udp_watch_setup(run, kc_transport_uri(t));
    kc_dev_set_abort_cb(ctx->dev, rc_doc_watch, run);
    if (ctx->trace_on)
        kc_dev_set_trace(ctx->dev, &ctx->trace);
    run->ka.ctx = ctx;
    kc_dev_set_keepalive_cb(ctx->dev, rc_doc_on_keepalive, &run->ka);

    /* INIT within the bound */
    if (!step_init(run)) {
        check_moved(run, ev->init_err);
        goto done;
    }
    /* framing and channel health */
    step_channel(run);
    if (ev->small.timeout + ev->large.timeout > 0 || ev->saw_unplugged || run->moved_abort)
        check_moved(run, KC_ERR_TIMEOUT);
    if (named(run))
        goto done;
    /* getinfo: CTAP2 present? PIN/UV protocols; CTAP1 only */
    step_getinfo(run);
    check_moved(run, ev->info_err);
    if (named(run))
        goto done;
    bool ctap2 = (ev->caps & KC_HID_CAP_CBOR) && ev->info_err == KC_OK;
    if (!ctap2) {
        step_ctap1(run, true);
        check_moved(run, ev->ctap1_err);
        goto done;
    }
    /* PIN retries (never a PIN blind), and with a PIN a token for what follows */
    bool mc_next = !run->opts->no_presence;
    rc_doc_step_pin(run, run->opts->pin_last_try, mc_next ? KC_PERM_MC : KC_PERM_GA,
                    mc_next || !cred.have ? RC_DOC_RP_ID : cred.rp_id);
    check_moved(run, ev->retries_err != KC_OK ? ev->retries_err : ev->token_err);
    if (named(run))
        goto done;
    /* capacity: the resident credentials, when the PIN opened the way */
    step_capacity(run, mc_next ? KC_PERM_MC : KC_PERM_GA,
                  mc_next || !cred.have ? RC_DOC_RP_ID : cred.rp_id);
    if (ev->cm_ran) {
        check_moved(run, ev->cm_err != KC_OK ? ev->cm_err : ev->token_err);
        if (named(run))
            goto done;
    }
    /* presence: the prompt and keepalives while waiting */
    if (!run->opts->no_presence) {
        step_presence(run, &cred);
        check_moved(run, ev->mc_err == KC_ERR_TIMEOUT && ev->n_processing + ev->n_upneeded > 0
                             ? KC_OK
                             : ev->mc_err);
        if (named(run))
            goto done;
    } else {
        rc_doc_step_add(ev, "presence", RC_DOC_SKIP, 0, "--no-presence-test");
    }
    /* signature and counter */
    if (cred.have) {
        step_verify(run, &cred);
        check_moved(run, ev->ga_err);
        if (named(run))
            goto done;
    } else {
        rc_doc_step_add(ev, "verify", RC_DOC_SKIP, 0, "no credential to check (see --cred-file)");
    }
    /* ctap1: the fallback's speed, when the card offers CTAP1 */
    if ((ev->caps & KC_HID_CAP_NMSG) == 0)
        step_ctap1(run, false);
    else
        rc_doc_step_add(ev, "ctap1", RC_DOC_SKIP, 0, "the card does not offer CTAP1 (NMSG)");
    /* enumeration: did the card move while we worked? */
    if (ev->dev != RC_DOC_DEV_OTHER)
        rc_doc_step_enumeration(run, 0, 0);
done:
    r = finish(run);
out:
    free(cands);
    if (cred.have)
        kc_cose_key_free(&cred.key);
    return r;
}

/* CTAP's PIN rule: at least 4 code points, at most 63 bytes. A PIN outside
 * it cannot be right, so it is refused before any attempt is spent. */
static bool pin_length_ok(const char *pin)
{
    size_t bytes = strlen(pin), points = 0;
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char)pin[i] & 0xc0) != 0x80)
            points++;
    return points >= KC_PIN_MIN_LEN && bytes <= KC_PIN_MAX_LEN;
}

int rc_cmd_doctor(struct rc_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {
        {"no-presence-test", no_argument, NULL, RC_DOC_OPT_NO_PRESENCE},
        {"slow-ms", required_argument, NULL, RC_DOC_OPT_SLOW},
        {"cred-file", required_argument, NULL, RC_DOC_OPT_CRED_FILE},
        RC_PIN_LONGOPTS,
        {"pin-last-try", no_argument, NULL, RC_DOC_OPT_PIN_LAST_TRY},
        {NULL, 0, NULL, 0},
    };
    struct rc_doc_opts opts;
    char pin[RC_PIN_MAX];
    memset(&opts, 0, sizeof(opts));
    memset(pin, 0, sizeof(pin));
    opts.slow_ms = RC_DOC_SLOW_MS_DEFAULT;
    int r = rc_parse_cmd_no_operands(ctx, argc, argv, "", lo, rc_doc_opt, &opts);
    if (r != 0)
        return r;
    bool have_pin = false;
    if ((r = rc_pin_src_read(&opts.pin, pin, sizeof(pin), &have_pin)) != 0)
        return r;
    if (have_pin && !pin_length_ok(pin)) {
        OPENSSL_cleanse(pin, sizeof(pin));
        return rc_usage_error("doctor",
                              "a PIN has at least %d characters and at most %d bytes; the one "
                              "given does not, so it was not sent",
                              KC_PIN_MIN_LEN, KC_PIN_MAX_LEN);
    }

    struct rc_doc_evidence *ev = calloc(1, sizeof(*ev));
    if (ev == NULL) {
        OPENSSL_cleanse(pin, sizeof(pin));
        return RC_EXIT_LOCAL;
    }
    classify_device(ctx->uri, ev);
    ev->timeout_ms = ctx->to.command_ms;
    ev->init_timeout_ms = ctx->to.init_ms;
    ev->presence_timeout_ms = ctx->to.presence_ms;
    ev->slow_ms = opts.slow_ms;
    ev->pin_given = have_pin;
    /* an aborted or timed-out request: its CANCEL answer is not worth long */
    if (ctx->to.cancel_ms > RC_DOC_CANCEL_MS)
        ctx->to.cancel_ms = RC_DOC_CANCEL_MS;
    struct rc_doc_run run;
    memset(&run, 0, sizeof(run));
    run.ctx = ctx;
    run.opts = &opts;
    run.ev = ev;
    run.pin = have_pin ? pin : NULL;
    r = doctor_run(&run);
    kc_pin_token_clear(&run.token);
    OPENSSL_cleanse(pin, sizeof(pin));
    OPENSSL_cleanse(&run.info, sizeof(run.info));
    free(ev);
    return r;
}
