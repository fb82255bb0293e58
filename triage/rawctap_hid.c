/* rawctap CTAPHID-level commands: init, ping, wink, cancel. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctaphid/ctap2.h"
#include "ctaphid/status.h"
#include "triage/rawctap.h"
#include "util/rand.h"
#include "util/num.h"

int rc_cmd_init(struct rc_ctx *ctx, int argc, char **argv)
{
    int r = rc_parse_cmd_no_operands(ctx, argc, argv, "", NULL, NULL, NULL);
    if (r != 0)
        return r;
    uint64_t t0 = kc_now_us();
    if ((r = rc_open(ctx)) != 0)
        return r;
    double secs = rc_secs_since(t0);
    const struct kc_init_info *ii = kc_dev_init_info(ctx->dev);
    char buf[32];
    snprintf(buf, sizeof(buf), "%08x", ii->cid);
    rc_out_str(ctx, "channel", buf);
    rc_out_int(ctx, "protocol_version", ii->protocol_version);
    snprintf(buf, sizeof(buf), "%u.%u.%u", ii->major, ii->minor, ii->build);
    rc_out_str(ctx, "device_version", buf);
    snprintf(buf, sizeof(buf), "0x%02x", ii->capabilities);
    rc_out_str(ctx, "capabilities", buf);
    rc_out_bool(ctx, "wink", (ii->capabilities & KC_HID_CAP_WINK) != 0);
    rc_out_bool(ctx, "cbor", (ii->capabilities & KC_HID_CAP_CBOR) != 0);
    rc_out_bool(ctx, "msg", (ii->capabilities & KC_HID_CAP_NMSG) == 0);
    rc_out_real(ctx, "seconds", secs);
    return RC_EXIT_OK;
}

struct rc_ping_opts {
    long size;
};

static int rc_ping_opt(struct rc_ctx *ctx, void *st, int c, const char *arg)
{
    struct rc_ping_opts *o = st;
    (void)ctx;
    if (c == 's') {
        if (kcu_parse_long(arg, 0, KC_HID_MAX_MSG, &o->size) != 0)
            return rc_usage_error("ping", "--size wants 0..%d, not '%s'", KC_HID_MAX_MSG, arg);
        return 0;
    }
    return rc_usage_error("ping", "unexpected option");
}

int rc_cmd_ping(struct rc_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {{"size", required_argument, NULL, 's'}, {NULL, 0, NULL, 0}};
    struct rc_ping_opts o = {.size = 64};
    int r = rc_parse_cmd_no_operands(ctx, argc, argv, "s:", lo, rc_ping_opt, &o);
    if (r != 0)
        return r;

    size_t n = (size_t)o.size;
    uint8_t *data = malloc(n ? n : 1), *echo = malloc(n ? n : 1);
    if (data == NULL || echo == NULL) {
        free(data);
        free(echo);
        return RC_EXIT_LOCAL;
    }
    if (kcu_random(data, n) != 0) {
        free(data);
        free(echo);
        return RC_EXIT_LOCAL;
    }
    if ((r = rc_open(ctx)) != 0)
        goto out;
    size_t got = 0;
    ctx->t_op_us = kc_now_us();
    int e = kc_dev_ping(ctx->dev, data, n, echo, n ? n : 1, &got);
    double secs = rc_secs_since(ctx->t_op_us);
    if (e != KC_OK) {
        r = rc_fail(ctx, "PING", e);
        goto out;
    }
    if (got != n || (n && CRYPTO_memcmp(data, echo, n) != 0)) {
        rc_err(ctx, "PING: echo differs (%zu bytes sent, %zu received)", n, got);
        r = RC_EXIT_TRANSPORT;
        goto out;
    }
    rc_out_int(ctx, "size", (long long)n);
    rc_out_real(ctx, "seconds", secs);
    if (secs > 0)
        rc_out_real(ctx, "bytes_per_second", (double)(2 * n) / secs);
    r = RC_EXIT_OK;
out:
    free(data);
    free(echo);
    return r;
}

int rc_cmd_wink(struct rc_ctx *ctx, int argc, char **argv)
{
    int r = rc_parse_cmd_no_operands(ctx, argc, argv, "", NULL, NULL, NULL);
    if (r != 0)
        return r;
    if ((r = rc_open(ctx)) != 0)
        return r;
    const struct kc_init_info *ii = kc_dev_init_info(ctx->dev);
    if (!(ii->capabilities & KC_HID_CAP_WINK))
        rc_verbose(ctx, 1, "card does not advertise CAPABILITY_WINK; sending WINK anyway");
    ctx->t_op_us = kc_now_us();
    int e = kc_dev_wink(ctx->dev);
    if (e != KC_OK)
        return rc_fail(ctx, "WINK", e);
    rc_out_bool(ctx, "winked", true);
    rc_out_real(ctx, "seconds", rc_secs_since(ctx->t_op_us));
    return RC_EXIT_OK;
}

/* ---- cancel ---- */

struct rc_cancel_state {
    uint64_t start_us;
    uint64_t after_us;
    uint64_t fired_us; /* 0 until the abort fired */
};

static int rc_cancel_poll(void *arg)
{
    struct rc_cancel_state *s = arg;
    uint64_t now = kc_now_us();
    if (s->fired_us)
        return 1;
    if (now - s->start_us >= s->after_us) {
        s->fired_us = now;
        return 1;
    }
    return 0;
}

struct rc_cancel_opts {
    long after_ms;
    const char *rp_id;
};

static int rc_cancel_opt(struct rc_ctx *ctx, void *st, int c, const char *arg)
{
    struct rc_cancel_opts *o = st;
    (void)ctx;
    if (c == 'a') {
        if (kcu_parse_long(arg, 0, 600000, &o->after_ms) != 0)
            return rc_usage_error("cancel", "--after-ms wants 0..600000, not '%s'", arg);
        return 0;
    }
    if (c == 'r') {
        o->rp_id = arg;
        return 0;
    }
    return rc_usage_error("cancel", "unexpected option");
}

int rc_cmd_cancel(struct rc_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {{"after-ms", required_argument, NULL, 'a'},
                                       {"rp-id", required_argument, NULL, 'r'},
                                       {NULL, 0, NULL, 0}};
    struct rc_cancel_opts o = {.after_ms = 500, .rp_id = "rawctap.cancel"};
    int r = rc_parse_cmd_no_operands(ctx, argc, argv, "", lo, rc_cancel_opt, &o);
    if (r != 0)
        return r;
    if ((r = rc_open(ctx)) != 0)
        return r;

    struct kc_cred_request req;
    struct kc_attestation att;
    uint8_t user_id[16];
    kc_cred_request_init(&req);
    memset(&att, 0, sizeof(att));
    if (kcu_random(req.client_data_hash, sizeof(req.client_data_hash)) != 0 ||
        kcu_random(user_id, sizeof(user_id)) != 0)
        return RC_EXIT_LOCAL;
    req.rp_id = o.rp_id;
    req.user_id = user_id;
    req.user_id_len = sizeof(user_id);
    req.user_name = "rawctap-cancel";
    req.algs[0] = ctx->alg;
    req.n_algs = 1;

    struct rc_cancel_state cs = {0};
    cs.after_us = (uint64_t)o.after_ms * 1000;
    /* the presence wait must outlast the cancel delay */
    if (ctx->to.presence_ms < o.after_ms + 1000) {
        ctx->to.presence_ms = (int)o.after_ms + 1000;
        kc_dev_set_timeouts(ctx->dev, &ctx->to);
    }
    if (ctx->to.command_ms < o.after_ms + 1000) {
        ctx->to.command_ms = (int)o.after_ms + 1000;
        kc_dev_set_timeouts(ctx->dev, &ctx->to);
    }
    ctx->abort_fn = rc_cancel_poll;
    ctx->abort_ctx = &cs;
    rc_verbose(ctx, 1, "makeCredential for %s; CTAPHID_CANCEL after %ld ms", o.rp_id, o.after_ms);
    ctx->presence_cmd = true;
    cs.start_us = ctx->t_op_us = kc_now_us();
    int e = kc_ctap2_make_credential(ctx->dev, &req, &att);
    uint64_t end = kc_now_us();
    ctx->abort_fn = NULL;
    kc_attestation_free(&att);

    double total = (double)(end - cs.start_us) / 1e6;
    rc_out_int(ctx, "after_ms", o.after_ms);
    rc_out_real(ctx, "seconds", total);
    rc_out_bool(ctx, "cancel_sent", cs.fired_us != 0);
    /* The library answers an abort with KC_ERR_ABORTED and keeps the card's
     * reply to the CANCEL as the last packet. */
    const struct kc_last_packet *lp = kc_dev_last_packet(ctx->dev);
    bool card_cancelled = e == KC_CTAP2_ERR_KEEPALIVE_CANCEL;
    double answer_s = -1;
    if (e == KC_ERR_ABORTED && cs.fired_us && lp && lp->valid && lp->cmd == KC_HID_CBOR &&
        lp->status == KC_CTAP2_ERR_KEEPALIVE_CANCEL) {
        card_cancelled = true;
        uint64_t fired_rel = cs.fired_us - cs.start_us;
        answer_s = lp->at_us > fired_rel ? (double)(lp->at_us - fired_rel) / 1e6 : 0.0;
    } else if (card_cancelled && cs.fired_us) {
        answer_s = (double)(end - cs.fired_us) / 1e6;
    }
    if (card_cancelled) {
        rc_out_str(ctx, "answer", kc_ctap2_status_name(KC_CTAP2_ERR_KEEPALIVE_CANCEL));
        if (answer_s >= 0)
            rc_out_real(ctx, "cancel_answer_seconds", answer_s);
        rc_info(ctx,
                "cancelled: the card answered CTAP2_ERR_KEEPALIVE_CANCEL %.3fs after "
                "CANCEL (%.3fs in all)",
                answer_s >= 0 ? answer_s : 0.0, total);
        return RC_EXIT_OK;
    }
    /* The card's final answer to the request it was asked to cancel:
     * CTAP2_OK means the CANCEL came too late (exit 4, as for any answer
     * other than KEEPALIVE_CANCEL); none at all is a transport failure. */
    int answer = -1;
    if (e == KC_OK)
        answer = KC_CTAP2_OK;
    else if (e == KC_ERR_ABORTED && lp && lp->valid && lp->cmd == KC_HID_CBOR)
        answer = lp->status;
    if (answer == KC_CTAP2_OK) {
        rc_out_str(ctx, "answer", "CTAP2_OK");
        if (cs.fired_us)
            rc_err(ctx,
                   "cancel: the card answered CTAP2_OK: the operation completed before the "
                   "CANCEL (sent after %ld ms) took effect; the cancel came too late",
                   o.after_ms);
        else
            rc_err(ctx,
                   "cancel: the card answered CTAP2_OK before CANCEL was sent (presence "
                   "given within %ld ms); the cancel came too late",
                   o.after_ms);
        rc_json_error(ctx, "CANCEL_TOO_LATE", RC_EXIT_CTAP);
        return RC_EXIT_CTAP;
    }
    if (answer > 0) {
        const char *name = kc_ctap2_status_name((uint8_t)answer);
        rc_out_str(ctx, "answer", name);
        rc_err(ctx,
               "cancel: after CANCEL the card answered %s (0x%02x), not "
               "CTAP2_ERR_KEEPALIVE_CANCEL",
               name, answer);
        rc_json_error(ctx, name, RC_EXIT_CTAP);
        return RC_EXIT_CTAP;
    }
    if (e == KC_ERR_ABORTED && lp && lp->valid && lp->cmd == KC_HID_ERROR) {
        const char *name = kc_hid_err_name(lp->status);
        rc_out_str(ctx, "answer", name);
        rc_err(ctx, "cancel: after CANCEL the card answered CTAPHID_ERROR %s (0x%02x)", name,
               lp->status);
        rc_json_error(ctx, name, RC_EXIT_CTAP);
        return RC_EXIT_CTAP;
    }
    if (e == KC_ERR_ABORTED) {
        char what[96] = "nothing";
        if (lp && lp->valid)
            snprintf(what, sizeof(what), "%s", kc_hid_cmd_name(lp->cmd));
        rc_out_str(ctx, "answer", what);
        rc_err(ctx,
               "cancel: CANCEL sent after %ld ms but the card did not answer it within %d ms "
               "(last packet: %s): it ignores CTAPHID_CANCEL",
               o.after_ms, ctx->to.cancel_ms, what);
        rc_json_error(ctx, "CANCEL_NOT_ANSWERED", RC_EXIT_TRANSPORT);
        return RC_EXIT_TRANSPORT;
    }
    return rc_fail(ctx, "cancel", e);
}
