/* rawctap diagnosis: libctaphid results to exit codes, and the sentence a
 * person needs: which phase timed out, the last packet the card sent, what
 * that suggests (a hang before the presence prompt, a slow CTAP1 path, a
 * card answering on the wrong channel; for a udp card the transport's own
 * causes first: a reply sent to a fixed port, a simulator gone or moved).
 * Also the rule for a PIN/UV auth protocol the user asks for. */
#include <stdio.h>
#include <string.h>

#include "ctaphid/ctap2.h"
#include "ctaphid/status.h"
#include "ctaphid/transport.h"
#include "triage/rawctap.h"

void rc_on_keepalive(void *arg, uint8_t status, uint64_t elapsed_us)
{
    struct rc_ctx *ctx = arg;
    double s = (double)elapsed_us / 1e6;
    ctx->ka_valid = true;
    ctx->ka_status = status;
    ctx->ka_at_us = elapsed_us;
    ctx->ka_wall_us = kc_now_us();
    if (status == KC_KEEPALIVE_UPNEEDED) {
        fprintf(stderr, "keepalive UPNEEDED +%.2fs: confirm on the card\n", s);
        ctx->upneeded_said = true;
    } else {
        fprintf(stderr, "keepalive %s +%.2fs\n", kc_keepalive_name(status), s);
    }
    fflush(stderr);
}

int rc_exit_for(int err)
{
    if (err == KC_OK)
        return RC_EXIT_OK;
    if (err > 0)
        return RC_EXIT_CTAP;
    switch (err) {
    case KC_ERR_NO_DEVICE:
    case KC_ERR_PERMISSION:
    case KC_ERR_IO:
    case KC_ERR_TIMEOUT:
    case KC_ERR_UNPLUGGED:
    case KC_ERR_PROTOCOL:
    case KC_ERR_CBOR:
    case KC_ERR_TOO_LARGE:
    case KC_ERR_ABORTED:
        return RC_EXIT_TRANSPORT;
    case KC_ERR_HID:
    case KC_ERR_UNSUPPORTED:
    case KC_ERR_NO_PIN_PROTOCOL:
    case KC_ERR_U2F:
        return RC_EXIT_CTAP;
    case KC_ERR_VERIFY:
        return RC_EXIT_VERIFY;
    case KC_ERR_REPLAY_DIVERGED:
        return RC_EXIT_REPLAY;
    default:
        return RC_EXIT_LOCAL;
    }
}

static void rc_describe_last_packet(struct rc_ctx *ctx, char *buf, size_t len)
{
    const struct kc_last_packet *lp = ctx->dev ? kc_dev_last_packet(ctx->dev) : NULL;
    if (lp == NULL || !lp->valid) {
        if (ctx->ka_valid)
            snprintf(buf, len, "last packet KEEPALIVE %s at +%.2fs",
                     kc_keepalive_name(ctx->ka_status), (double)ctx->ka_at_us / 1e6);
        else
            snprintf(buf, len, "no packet from the card");
        return;
    }
    if (lp->cmd == KC_HID_KEEPALIVE) {
        snprintf(buf, len, "last packet KEEPALIVE %s at +%.2fs", kc_keepalive_name(lp->status),
                 (double)lp->at_us / 1e6);
    } else if (ctx->ka_valid && ctx->ka_at_us <= lp->at_us &&
               (lp->cmd == KC_HID_CBOR || lp->cmd == KC_HID_MSG)) {
        /* the library noted the card's answer to our CANCEL: report the
         * keepalive that came before the deadline, and the answer after */
        snprintf(buf, len, "last packet KEEPALIVE %s at +%.2fs (after CANCEL the card answered %s)",
                 kc_keepalive_name(ctx->ka_status), (double)ctx->ka_at_us / 1e6,
                 lp->cmd == KC_HID_CBOR ? kc_ctap2_status_name(lp->status)
                                        : kc_hid_cmd_name(lp->cmd));
    } else if (lp->cmd == KC_HID_ERROR) {
        snprintf(buf, len, "last packet ERROR %s at +%.2fs", kc_hid_err_name(lp->status),
                 (double)lp->at_us / 1e6);
    } else {
        snprintf(buf, len, "last packet %s at +%.2fs", kc_hid_cmd_name(lp->cmd),
                 (double)lp->at_us / 1e6);
    }
}

static int rc_phase_timeout_ms(const struct rc_ctx *ctx, enum kc_phase ph)
{
    switch (ph) {
    case KC_PHASE_INIT:
        return ctx->to.init_ms;
    case KC_PHASE_PRESENCE:
        return ctx->to.presence_ms;
    case KC_PHASE_CANCEL:
        return ctx->to.cancel_ms;
    default:
        return ctx->to.command_ms;
    }
}

void rc_json_error(struct rc_ctx *ctx, const char *name, int code)
{
    if (!ctx->json)
        return;
    json_object_set_new(ctx->result, "ok", json_false());
    json_object_set_new(ctx->result, "exit", json_integer(code));
    if (name)
        json_object_set_new(ctx->result, "error_name", json_string(name));
}

/* The udp device in use, split for the diagnosis: "udp:HOST:PORT" in base
 * and the ?local= port in local ("" when none). false for other devices. */
static bool rc_udp_device(const struct rc_ctx *ctx, char *base, size_t cap, char *local,
                          size_t lcap)
{
    const struct kc_transport *t = ctx->dev ? kc_dev_transport(ctx->dev) : NULL;
    const char *uri = t ? kc_transport_uri(t) : ctx->uri;
    if (uri == NULL || strncmp(uri, "udp:", 4) != 0)
        return false;
    const char *q = strchr(uri, '?');
    size_t n = q ? (size_t)(q - uri) : strlen(uri);
    snprintf(base, cap, "%.*s", (int)(n < 200 ? n : 200), uri);
    local[0] = '\0';
    if (q && strncmp(q, "?local=", 7) == 0)
        snprintf(local, lcap, "%.15s", q + 7);
    return true;
}

/* Longer than this without a KEEPALIVE, a working card has gone silent
 * (the same bound as doctor's). */
#define RC_KEEPALIVE_SILENCE_US 500000u

#define RC_UDP_MOVED                                                                               \
    "is the simulator running there? it may have moved (re-plugged; see the announce dir / "       \
    "vcard-ctl status)"

/* Why a udp card stayed silent, the transport's causes first: a reply sent
 * to a fixed host port never reaches an ephemeral one, and a simulator
 * that is gone or moved answers nothing. Power-cycling is no fix here. */
static void rc_udp_silent_why(const char *base, const char *local, bool init, bool presence_cmd,
                              char *buf, size_t cap)
{
    if (init && local[0] == '\0')
        snprintf(buf, cap,
                 " \xe2\x80\x94 nothing answered at %s. A simulator that replies to a fixed "
                 "host port never reaches this socket: open-source simulators reply to a fixed "
                 "host port, 7112: use %s?local=7112. Otherwise: " RC_UDP_MOVED,
                 base, base);
    else if (init)
        snprintf(buf, cap,
                 " \xe2\x80\x94 nothing answered at %s on local port %s: does the simulator "
                 "reply to port %s (open-source simulators reply to 7112)? " RC_UDP_MOVED,
                 base, local, local);
    else
        snprintf(buf, cap,
                 " \xe2\x80\x94 nothing answered at %s after the request: " RC_UDP_MOVED "%s", base,
                 presence_cmd ? "; a card that hangs before the presence prompt looks the same"
                              : "");
}

static int rc_fail_timeout(struct rc_ctx *ctx, const char *what)
{
    enum kc_phase ph = ctx->dev ? kc_dev_last_phase(ctx->dev) : KC_PHASE_NONE;
    const struct kc_last_packet *lp = ctx->dev ? kc_dev_last_packet(ctx->dev) : NULL;
    char pkt[192];
    const char *why = "";
    rc_describe_last_packet(ctx, pkt, sizeof(pkt));
    double secs = (double)(kc_now_us() - ctx->t_op_us) / 1e6;
    if (ph != KC_PHASE_NONE && ph != KC_PHASE_INIT)
        secs = (double)rc_phase_timeout_ms(ctx, ph) / 1000.0;
    if (ph == KC_PHASE_NONE)
        ph = KC_PHASE_COMMAND;

    switch (ph) {
    case KC_PHASE_INIT:
        why = " \xe2\x80\x94 the card does not answer CTAPHID_INIT (firmware or USB/VM "
              "passthrough stuck: power-cycle and reattach the card)";
        snprintf(pkt, sizeof(pkt), "no reply to INIT on the broadcast channel");
        break;
    case KC_PHASE_COMMAND:
        if (ctx->in_ctap1)
            why = " \xe2\x80\x94 the card was still working on the CTAP1 request (slow CTAP1: "
                  "raise --timeout-ms)";
        else if (!ctx->presence_cmd)
            why = (lp && lp->valid) ? "" : " \xe2\x80\x94 the card sent nothing after the request";
        else if (lp && lp->valid && !kc_dev_saw_upneeded(ctx->dev))
            why = " \xe2\x80\x94 the card never asked for presence (hang before the presence "
                  "prompt)";
        else if (lp == NULL || !lp->valid)
            why = " \xe2\x80\x94 the card sent nothing after the request (hang before the "
                  "presence prompt)";
        break;
    case KC_PHASE_PRESENCE:
        why = " \xe2\x80\x94 the card asked for presence but nobody confirmed";
        break;
    case KC_PHASE_CANCEL:
        why = " \xe2\x80\x94 the card did not acknowledge CTAPHID_CANCEL";
        break;
    default:
        break;
    }
    /* keepalives are due every 100 ms while a card works or waits: a long
     * stretch without one before the deadline is a card that went silent
     * (unplugged, moved, hung), not a person who did not confirm */
    char silent_why[720] = "";
    bool went_silent = false;
    if ((ph == KC_PHASE_COMMAND || ph == KC_PHASE_PRESENCE) && lp && lp->valid &&
        lp->cmd == KC_HID_KEEPALIVE && ctx->ka_valid && ctx->ka_wall_us > 0 &&
        kc_now_us() - ctx->ka_wall_us > RC_KEEPALIVE_SILENCE_US) {
        char base[224], local[16];
        went_silent = true;
        if (rc_udp_device(ctx, base, sizeof(base), local, sizeof(local)))
            snprintf(silent_why, sizeof(silent_why),
                     " \xe2\x80\x94 the card went silent at +%.2fs (no KEEPALIVE since, though "
                     "one is due every 100 ms): nothing answered at %s since: " RC_UDP_MOVED,
                     (double)lp->at_us / 1e6, base);
        else
            snprintf(silent_why, sizeof(silent_why),
                     " \xe2\x80\x94 the card went silent at +%.2fs (no KEEPALIVE since, though "
                     "one is due every 100 ms): unplugged, re-enumerated, or its firmware hung",
                     (double)lp->at_us / 1e6);
        why = silent_why;
        if (ctx->json)
            json_object_set_new(ctx->result, "keepalives_stopped", json_true());
    }
    /* a udp card: the transport's causes come first */
    char base[224], local[16], udp_why[900];
    bool silent = ph == KC_PHASE_INIT ||
                  ((lp == NULL || !lp->valid) && ph == KC_PHASE_COMMAND && !ctx->in_ctap1);
    if (silent && !went_silent && rc_udp_device(ctx, base, sizeof(base), local, sizeof(local))) {
        rc_udp_silent_why(base, local, ph == KC_PHASE_INIT, ctx->presence_cmd, udp_why,
                          sizeof(udp_why));
        why = udp_why;
        if (ctx->json)
            json_object_set_new(ctx->result, "transport_cause",
                                json_string(ph == KC_PHASE_INIT && local[0] == '\0'
                                                ? "UDP_NO_REPLY_WRONG_PORT_OR_GONE"
                                                : "UDP_NO_REPLY"));
    }
    const char *phname = ph == KC_PHASE_INIT ? "INIT" : kc_phase_name(ph);
    char extra[160] = "";
    const struct kc_dev_stats *st = ctx->dev ? kc_dev_stats(ctx->dev) : NULL;
    if (st && st->skipped_other_cid > 0)
        snprintf(extra, sizeof(extra),
                 "; %llu report(s) arrived on other channels (does the card answer on the "
                 "wrong channel?)",
                 (unsigned long long)st->skipped_other_cid);
    rc_err(ctx, "%s: timeout in %s phase after %.2fs: %s%s%s", what, phname, secs, pkt, why, extra);
    if (ctx->json) {
        json_object_set_new(ctx->result, "phase", json_string(phname));
        json_object_set_new(ctx->result, "last_packet", json_string(pkt));
    }
    rc_json_error(ctx, "KC_ERR_TIMEOUT", RC_EXIT_TRANSPORT);
    return RC_EXIT_TRANSPORT;
}

int rc_fail(struct rc_ctx *ctx, const char *what, int err)
{
    int code = rc_exit_for(err);
    if (err == KC_ERR_TIMEOUT)
        return rc_fail_timeout(ctx, what);
    if (err > 0) {
        rc_err(ctx, "%s: the card answered %s (0x%02x)", what, kc_ctap2_status_name((uint8_t)err),
               err);
        rc_json_error(ctx, kc_ctap2_status_name((uint8_t)err), code);
        return code;
    }
    if (err == KC_ERR_HID && ctx->dev) {
        uint8_t h = kc_dev_last_hid_error(ctx->dev);
        rc_err(ctx, "%s: the card answered CTAPHID_ERROR %s (0x%02x)", what, kc_hid_err_name(h), h);
        rc_json_error(ctx, kc_hid_err_name(h), code);
        return code;
    }
    struct kc_transport *t = ctx->dev ? kc_dev_transport(ctx->dev) : NULL;
    char base[224], local[16];
    if (err == KC_ERR_NO_DEVICE && t && kc_transport_last_error(t)[0] &&
        rc_udp_device(ctx, base, sizeof(base), local, sizeof(local)))
        rc_err(ctx, "%s: %s (%s): " RC_UDP_MOVED, what, kc_strerror(err),
               kc_transport_last_error(t));
    else if (t && kc_transport_last_error(t)[0] && code == RC_EXIT_REPLAY)
        rc_err(ctx, "%s: %s", what,
               kc_transport_last_error(t)); /* the replay names where it diverged */
    else if (t && kc_transport_last_error(t)[0] && code == RC_EXIT_TRANSPORT)
        rc_err(ctx, "%s: %s (%s)", what, kc_strerror(err), kc_transport_last_error(t));
    else
        rc_err(ctx, "%s: %s", what, kc_strerror(err));
    rc_json_error(ctx, kc_err_name(err), code);
    return code;
}

/* ---- a PIN/UV auth protocol the user asked for ---- */

bool rc_pin_protocol_offered(const struct kc_info *info, int protocol)
{
    if (kc_info_supports_pin_protocol(info, protocol))
        return true;
    /* a CTAP 2.0 card with clientPin and no list speaks protocol 1 */
    return protocol == 1 && info->n_pin_protocols == 0 && kc_info_option(info, "clientPin") >= 0;
}

int rc_pin_protocol_pick(struct rc_ctx *ctx, const struct kc_info *card, int protocol, bool force,
                         const char *what, struct kc_info *use)
{
    char list[128];
    kc_info_pin_protocols_str(card, list, sizeof(list));
    if (!rc_pin_protocol_offered(card, protocol)) {
        if (!force) {
            rc_err(ctx,
                   "%s: the card offers PIN/UV auth protocols [%s]; --protocol %d is not among "
                   "them; --force-protocol sends it anyway",
                   what, list, protocol);
            rc_json_error(ctx, "PIN_PROTOCOL_NOT_OFFERED", RC_EXIT_CTAP);
            rc_out_pin_protocols(ctx, card);
            return RC_EXIT_CTAP;
        }
        rc_info(ctx,
                "rawctap: %s: sending PIN/UV auth protocol %d although the card offers [%s] "
                "(--force-protocol)",
                what, protocol, list);
        if (ctx->json)
            json_object_set_new(ctx->result, "protocol_forced", json_true());
    } else {
        rc_verbose(ctx, 1, "%s: PIN/UV auth protocol %d as asked (the card offers [%s])", what,
                   protocol, list);
    }
    *use = *card;
    use->pin_protocols[0] = (uint64_t)protocol;
    use->n_pin_protocols = 1;
    return RC_EXIT_OK;
}

void rc_out_pin_protocols(struct rc_ctx *ctx, const struct kc_info *card)
{
    char list[128];
    kc_info_pin_protocols_str(card, list, sizeof(list));
    json_t *pp = json_array();
    for (size_t i = 0; pp && i < card->n_pin_protocols; i++)
        json_array_append_new(pp, json_integer((json_int_t)card->pin_protocols[i]));
    rc_out_json(ctx, "pin_protocols", pp, list);
}
