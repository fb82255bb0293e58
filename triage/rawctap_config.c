/* rawctap config: authenticatorConfig (0x0D) — toggle-always-uv,
 * set-min-pin-length N [--rp-id ID]... [--force-change] and
 * enable-enterprise-attestation. With a PIN (--pin, --pin-file or
 * $RAWCTAP_PIN) a pinUvAuthToken with the acfg permission authenticates the
 * request; the PIN is never printed and is zeroed after use. After a change
 * getInfo is read again, so what is printed is what the card now says. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctaphid/config.h"
#include "ctaphid/ctap2.h"
#include "ctaphid/pin.h"
#include "triage/rawctap.h"
#include "util/num.h"

struct rc_cfg_opts {
    struct rc_pin_src pin;
    const char *rp_ids[KC_CONFIG_RPIDS_MAX];
    size_t n_rp_ids;
    bool force_change;
};

static int rc_cfg_opt(struct rc_ctx *ctx, void *st, int c, const char *arg)
{
    struct rc_cfg_opts *o = st;

    (void)ctx;
    if (rc_pin_src_opt(&o->pin, c, arg))
        return 0;
    switch (c) {
    case 'r':
        if (arg == NULL || arg[0] == '\0')
            return rc_usage_error("config", "--rp-id wants a relying party id");
        if (o->n_rp_ids == KC_CONFIG_RPIDS_MAX)
            return rc_usage_error("config", "at most %d --rp-id", KC_CONFIG_RPIDS_MAX);
        o->rp_ids[o->n_rp_ids++] = arg;
        return 0;
    case 'f':
        o->force_change = true;
        return 0;
    default:
        return rc_usage_error("config", "unexpected option");
    }
}

/* What getInfo says about the settings config changes. */
static void rc_cfg_report(struct rc_ctx *ctx, const struct kc_info *in)
{
    int auv = kc_info_option(in, "alwaysUv"), ep = kc_info_option(in, "ep");

    if (auv >= 0)
        rc_out_bool(ctx, "always_uv", auv == 1);
    if (ep >= 0)
        rc_out_bool(ctx, "enterprise_attestation", ep == 1);
    if (kc_info_has(in, KC_INFO_MIN_PIN_LENGTH))
        rc_out_int(ctx, "min_pin_length", (long long)in->min_pin_length);
    if (kc_info_has(in, KC_INFO_FORCE_PIN_CHANGE))
        rc_out_bool(ctx, "force_pin_change", in->force_pin_change);
}

/* The card lacks what the subcommand needs (getInfo options). */
static int rc_cfg_not_offered(struct rc_ctx *ctx, const char *sub, const char *option)
{
    rc_err(ctx,
           "config %s: the card does not offer it: getInfo has no %s option (authenticatorConfig "
           "is a CTAP 2.1 feature; `rawctap info` shows what the card offers)",
           sub, option);
    rc_json_error(ctx, "CONFIG_NOT_OFFERED", RC_EXIT_CTAP);
    return RC_EXIT_CTAP;
}

/* The card's refusal, with what it means for this command. */
static int rc_cfg_refused(struct rc_ctx *ctx, const char *sub, int e, const struct kc_info *in,
                          bool have_pin)
{
    char what[64];
    int r;

    snprintf(what, sizeof(what), "config %s", sub);
    r = rc_fail(ctx, what, e);
    if (e == KC_CTAP2_ERR_PUAT_REQUIRED)
        rc_info(ctx, "rawctap: the card is protected by a PIN (or alwaysUv is on): give it with "
                     "--pin, --pin-file or $RAWCTAP_PIN");
    else if (e == KC_CTAP2_ERR_PIN_AUTH_INVALID)
        rc_info(ctx, "rawctap: the card did not accept the token: it needs the acfg permission "
                     "(pinUvAuthToken option), or the token is stale; run the command again");
    else if (e == KC_CTAP2_ERR_PIN_POLICY_VIOLATION && strcmp(sub, "set-min-pin-length") == 0)
        rc_info(ctx,
                "rawctap: the minimum PIN length only grows (now %llu); only authenticatorReset "
                "lowers it, and reset erases every credential and the PIN",
                (unsigned long long)in->min_pin_length);
    else if (e == KC_CTAP2_ERR_PIN_POLICY_VIOLATION && have_pin)
        rc_info(ctx, "rawctap: the card wants its PIN changed first (forcePINChange): "
                     "rawctap pin change");
    else if (e == KC_CTAP2_ERR_PIN_NOT_SET)
        rc_info(ctx, "rawctap: --force-change needs a PIN on the card: rawctap pin set");
    else if (e == KC_CTAP2_ERR_KEY_STORE_FULL)
        rc_info(ctx, "rawctap: too many --rp-id for the card (it keeps %llu)",
                (unsigned long long)in->max_rpids_for_set_min_pin_length);
    else if (e == KC_CTAP2_ERR_PIN_INVALID || e == KC_CTAP2_ERR_PIN_BLOCKED ||
             e == KC_CTAP2_ERR_PIN_AUTH_BLOCKED)
        rc_info(ctx, "rawctap: `rawctap pin retries` says how many attempts are left and "
                     "what unblocks the PIN");
    return r;
}

int rc_cmd_config(struct rc_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {RC_PIN_LONGOPTS,
                                       {"rp-id", required_argument, NULL, 'r'},
                                       {"force-change", no_argument, NULL, 'f'},
                                       {NULL, 0, NULL, 0}};
    struct rc_cfg_opts o;
    struct kc_info card, after;
    struct kc_pin_outcome oc;
    char pin[RC_PIN_MAX];
    const char *sub;
    long min_len = 0;
    int first = 0, e, r;
    bool have_pin = false;

    memset(&o, 0, sizeof(o));
    memset(pin, 0, sizeof(pin));
    if ((r = rc_parse_cmd(ctx, argc, argv, "", lo, rc_cfg_opt, &o, &first)) != 0)
        return r;
    if (first >= argc)
        return rc_usage_error(argv[0], "which one: toggle-always-uv, set-min-pin-length N or "
                                       "enable-enterprise-attestation?");
    sub = argv[first];
    bool is_auv = strcmp(sub, "toggle-always-uv") == 0;
    bool is_min = strcmp(sub, "set-min-pin-length") == 0;
    bool is_ep = strcmp(sub, "enable-enterprise-attestation") == 0;
    if (!is_auv && !is_min && !is_ep)
        return rc_usage_error(argv[0],
                              "unknown subcommand '%s' (toggle-always-uv, set-min-pin-length, "
                              "enable-enterprise-attestation)",
                              sub);
    if (is_min) {
        if (first + 1 >= argc)
            return rc_usage_error(argv[0], "set-min-pin-length needs the length N (4..63)");
        if (kcu_parse_long(argv[first + 1], KC_PIN_MIN_LEN, KC_PIN_MAX_LEN, &min_len) != 0)
            return rc_usage_error(argv[0], "set-min-pin-length wants 4..63 code points, not '%s'",
                                  argv[first + 1]);
        first++;
    } else if (o.n_rp_ids > 0 || o.force_change) {
        return rc_usage_error(argv[0], "--rp-id and --force-change go with set-min-pin-length");
    }
    if (first + 1 < argc)
        return rc_usage_error(argv[0], "unexpected argument '%s'", argv[first + 1]);
    if (ctx->json)
        json_object_set_new(ctx->result, "subcommand", json_string(sub));
    if ((r = rc_pin_src_read(&o.pin, pin, sizeof(pin), &have_pin)) != 0)
        return r;

    if ((r = rc_open_ctap2_info(ctx, "config", &card)) != 0)
        goto out;
    if (kc_info_option(&card, "authnrCfg") != 1) {
        r = rc_cfg_not_offered(ctx, sub, "authnrCfg");
        goto out;
    }
    if (is_min && kc_info_option(&card, "setMinPINLength") != 1) {
        r = rc_cfg_not_offered(ctx, sub, "setMinPINLength");
        goto out;
    }
    if (is_ep && kc_info_option(&card, "ep") < 0) {
        r = rc_cfg_not_offered(ctx, sub, "ep (enterprise attestation)");
        goto out;
    }
    if (!have_pin && kc_info_option(&card, "clientPin") == 1)
        rc_verbose(ctx, 1, "the card has a PIN and none was given: it will refuse the change");
    ctx->t_op_us = kc_now_us();
    if (is_auv)
        e = kc_config_toggle_always_uv(ctx->dev, &card, have_pin ? pin : NULL, &oc);
    else if (is_ep)
        e = kc_config_enable_ep(ctx->dev, &card, have_pin ? pin : NULL, &oc);
    else
        e = kc_config_set_min_pin_length(ctx->dev, &card, have_pin ? pin : NULL, (size_t)min_len,
                                         o.rp_ids, o.n_rp_ids, o.force_change, &oc);
    OPENSSL_cleanse(pin, sizeof(pin));
    if (oc.used_pin)
        rc_verbose(ctx, 1, "config %s with a pinUvAuthToken (acfg) over protocol %d", sub,
                   oc.protocol);
    if (e == KC_ERR_NO_PIN_PROTOCOL) {
        r = rc_no_pin_protocol(ctx, &card, "config", true);
        goto out;
    }
    if (e != KC_OK) {
        r = rc_cfg_refused(ctx, sub, e, &card, have_pin);
        goto out;
    }
    double secs = rc_secs_since(ctx->t_op_us);
    rc_out_str(ctx, "status",
               is_auv  ? "alwaysUv toggled"
               : is_ep ? "enterprise attestation enabled"
                       : "minimum PIN length set");
    if (is_min && o.n_rp_ids > 0 && ctx->json) {
        json_t *a = json_array();
        for (size_t i = 0; a != NULL && i < o.n_rp_ids; i++)
            json_array_append_new(a, json_string(o.rp_ids[i]));
        json_object_set_new(ctx->result, "rp_ids", a);
    }
    memset(&after, 0, sizeof(after));
    if ((r = rc_info_fetch(ctx, &after)) != 0)
        goto out;
    rc_cfg_report(ctx, &after);
    if (is_min && after.force_pin_change && !card.force_pin_change)
        rc_info(ctx, "rawctap: the card now wants the PIN changed before it is used again "
                     "(forcePINChange): rawctap pin change");
    rc_out_real(ctx, "seconds", secs);
    r = RC_EXIT_OK;
out:
    OPENSSL_cleanse(pin, sizeof(pin));
    return r;
}
