/* rawctap pin: status, set, change (authenticatorClientPIN). PINs come from
 * options, files or the environment, are never printed and are zeroed after
 * use. --protocol N is sent only when the card offers N (getInfo's
 * pinUvAuthProtocols), unless --force-protocol says to send it anyway. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctaphid/ctap2.h"
#include "ctaphid/pin.h"
#include "triage/rawctap.h"
#include "util/num.h"

struct rc_pin_opts {
    struct rc_pin_src pin;
    const char *new_pin, *new_pin_file;
    long protocol;
    bool force_protocol;
};

static int rc_pin_opt(struct rc_ctx *ctx, void *st, int c, const char *arg)
{
    struct rc_pin_opts *o = st;
    (void)ctx;
    if (rc_pin_src_opt(&o->pin, c, arg))
        return 0;
    switch (c) {
    case 'n':
        o->new_pin = arg;
        return 0;
    case 'N':
        o->new_pin_file = arg;
        return 0;
    case 'x':
        if (kcu_parse_long(arg, 1, 2, &o->protocol) != 0)
            return rc_usage_error("pin", "--protocol wants 1 or 2, not '%s'", arg);
        return 0;
    case 'F':
        o->force_protocol = true;
        return 0;
    default:
        return rc_usage_error("pin", "unexpected option");
    }
}

/* New PIN: --new-pin, --new-pin-file, else $RAWCTAP_NEW_PIN. */
static int rc_new_pin_get(const struct rc_pin_opts *o, char *buf, size_t cap)
{
    if (o->new_pin || o->new_pin_file)
        return rc_pin_get(o->new_pin, o->new_pin_file, buf, cap);
    const char *env = getenv("RAWCTAP_NEW_PIN");
    if (env == NULL || *env == '\0')
        return 0;
    return rc_pin_get(env, NULL, buf, cap);
}

/* card: what getInfo said; info: the same with the protocol to use. */
static int rc_pin_status(struct rc_ctx *ctx, const struct kc_info *card, const struct kc_info *info)
{
    int cp = kc_info_option(card, "clientPin");
    rc_out_pin_protocols(ctx, card);
    rc_out_str(ctx, "client_pin", cp < 0 ? "absent" : cp ? "set" : "not set");
    if (ctx->json)
        json_object_set_new(ctx->result, "pin_set", json_boolean(cp == 1));
    if (cp < 0 && info->n_pin_protocols == 0) {
        rc_verbose(ctx, 1,
                   "card advertises no clientPin option and no PIN/UV auth protocol: "
                   "it has no PIN support; commands proceed without PIN");
        return RC_EXIT_OK;
    }
    struct kc_pin_retries rt;
    int used = 0;
    memset(&rt, 0, sizeof(rt));
    if (kc_pin_choose_protocol(info, true, &used, NULL) == KC_OK)
        rc_out_int(ctx, "protocol", used); /* getRetries carries it */
    ctx->t_op_us = kc_now_us();
    int e = kc_pin_get_retries(ctx->dev, info, &rt);
    if (e != KC_OK)
        return rc_fail(ctx, "pin status: getRetries", e);
    rc_out_int(ctx, "retries", (long long)rt.retries);
    if (rt.power_cycle_state)
        rc_out_bool(ctx, "power_cycle_required", true);
    return RC_EXIT_OK;
}

/* The block state of a PIN and what undoes it (JSON "pin_state", "fix"). */
static int rc_pin_blocked(struct rc_ctx *ctx, const char *state, const char *error_name,
                          const char *fix)
{
    rc_out_str(ctx, "pin_state", state);
    rc_err(ctx, "pin retries: %s", fix);
    if (ctx->json)
        json_object_set_new(ctx->result, "fix", json_string(fix));
    rc_json_error(ctx, error_name, RC_EXIT_CTAP);
    return RC_EXIT_CTAP;
}

/* getPINRetries (0x01): attempts left, and whether the PIN is blocked until
 * a power cycle (soft) or for good (hard). */
static int rc_pin_retries(struct rc_ctx *ctx, const struct kc_info *info)
{
    struct kc_pin_retries rt;
    int e;

    memset(&rt, 0, sizeof(rt));
    ctx->t_op_us = kc_now_us();
    if ((e = kc_pin_get_retries(ctx->dev, info, &rt)) != KC_OK)
        return rc_fail(ctx, "pin retries: getPINRetries", e);
    rc_out_int(ctx, "retries", (long long)rt.retries);
    rc_out_bool(ctx, "power_cycle_state", rt.power_cycle_state);
    rc_out_real(ctx, "seconds", rc_secs_since(ctx->t_op_us));
    if (rt.retries == 0)
        return rc_pin_blocked(
            ctx, "blocked", "PIN_BLOCKED",
            "the PIN is blocked for good (hard block: 0 attempts left); nothing but "
            "authenticatorReset recovers it (`rawctap reset` within about 10 s of plugging the "
            "card in), and reset erases every credential on the card (every site must enrol it "
            "again), the PIN and the card's settings");
    if (rt.power_cycle_state)
        return rc_pin_blocked(
            ctx, "blocked-until-power-cycle", "PIN_AUTH_BLOCKED",
            "the PIN is blocked until the card is power-cycled (soft block: 3 wrong PINs in a row "
            "since power-up); the attempts left are kept and nothing is erased: unplug the card, "
            "plug it in (a virtual card: `vcard-ctl replug` or restart it) and enter the right "
            "PIN");
    rc_out_str(ctx, "pin_state", "ok");
    if (rt.retries <= 3)
        rc_info(ctx,
                "rawctap: only %llu PIN attempt(s) left: at 0 the PIN is blocked for good and only "
                "a reset (which erases every credential) recovers the card",
                (unsigned long long)rt.retries);
    return RC_EXIT_OK;
}

/* getUVRetries (0x07): built-in user verification attempts left. */
static int rc_pin_uv_retries(struct rc_ctx *ctx, const struct kc_info *info)
{
    struct kc_pin_retries rt;
    int e;

    memset(&rt, 0, sizeof(rt));
    if (kc_info_option(info, "uv") < 0)
        rc_verbose(ctx, 1, "the card advertises no uv option: it may have no built-in UV");
    ctx->t_op_us = kc_now_us();
    if ((e = kc_pin_get_uv_retries(ctx->dev, info, &rt)) != KC_OK) {
        int r = rc_fail(ctx, "pin uv-retries: getUVRetries", e);
        if (e == KC_CTAP2_ERR_INVALID_SUBCOMMAND || e == KC_CTAP1_ERR_INVALID_COMMAND)
            rc_info(ctx, "rawctap: the card has no built-in user verification to count");
        return r;
    }
    rc_out_int(ctx, "uv_retries", (long long)rt.uv_retries);
    rc_out_real(ctx, "seconds", rc_secs_since(ctx->t_op_us));
    if (rt.uv_retries == 0) {
        const char *fix = "built-in UV is blocked (0 attempts left): use the PIN instead; a "
                          "right PIN gives the UV attempts back";
        rc_out_str(ctx, "uv_state", "blocked");
        rc_err(ctx, "pin uv-retries: %s", fix);
        if (ctx->json)
            json_object_set_new(ctx->result, "fix", json_string(fix));
        rc_json_error(ctx, "UV_BLOCKED", RC_EXIT_CTAP);
        return RC_EXIT_CTAP;
    }
    rc_out_str(ctx, "uv_state", "ok");
    return RC_EXIT_OK;
}

int rc_cmd_pin(struct rc_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {RC_PIN_LONGOPTS,
                                       {"new-pin", required_argument, NULL, 'n'},
                                       {"new-pin-file", required_argument, NULL, 'N'},
                                       {"protocol", required_argument, NULL, 'x'},
                                       {"force-protocol", no_argument, NULL, 'F'},
                                       {NULL, 0, NULL, 0}};
    struct rc_pin_opts o;
    char pin[RC_PIN_MAX], newpin[RC_PIN_MAX];
    int first = 0;
    memset(&o, 0, sizeof(o));
    memset(pin, 0, sizeof(pin));
    memset(newpin, 0, sizeof(newpin));
    int r = rc_parse_cmd(ctx, argc, argv, "", lo, rc_pin_opt, &o, &first);
    if (r != 0)
        return r;
    if (first >= argc)
        return rc_usage_error(argv[0], "which one: status, set, change, retries or uv-retries?");
    const char *sub = argv[first];
    if (first + 1 < argc)
        return rc_usage_error(argv[0], "unexpected argument '%s'", argv[first + 1]);
    bool is_status = strcmp(sub, "status") == 0;
    bool is_set = strcmp(sub, "set") == 0;
    bool is_change = strcmp(sub, "change") == 0;
    bool is_retries = strcmp(sub, "retries") == 0;
    bool is_uv_retries = strcmp(sub, "uv-retries") == 0;
    if (!is_status && !is_set && !is_change && !is_retries && !is_uv_retries)
        return rc_usage_error(
            argv[0], "unknown subcommand '%s' (status, set, change, retries, uv-retries)", sub);
    if (o.force_protocol && o.protocol == 0)
        return rc_usage_error(argv[0], "--force-protocol goes with --protocol N");
    if (ctx->json)
        json_object_set_new(ctx->result, "subcommand", json_string(sub));

    int have_new = 0;
    if (is_set || is_change) {
        have_new = rc_new_pin_get(&o, newpin, sizeof(newpin));
        if (have_new != 0 && have_new != 1) {
            r = have_new;
            goto out;
        }
        if (have_new == 0) {
            r = rc_usage_error(argv[0],
                               "pin %s needs --new-pin, --new-pin-file or "
                               "$RAWCTAP_NEW_PIN",
                               sub);
            goto out;
        }
    }
    if (is_change) {
        r = rc_pin_src_need(&o.pin, argv[0], "pin change needs the current PIN", pin, sizeof(pin));
        if (r != 0)
            goto out;
    }

    struct kc_info card, info;
    if ((r = rc_open_ctap2_info(ctx, "pin", &card)) != 0)
        goto out;
    info = card;
    if (o.protocol) {
        char what[32];
        snprintf(what, sizeof(what), "pin %s", sub);
        if ((r = rc_pin_protocol_pick(ctx, &card, (int)o.protocol, o.force_protocol, what,
                                      &info)) != 0)
            goto out;
    }
    if (is_status) {
        r = rc_pin_status(ctx, &card, &info);
        goto out;
    }
    if (is_retries || is_uv_retries) {
        r = is_retries ? rc_pin_retries(ctx, &info) : rc_pin_uv_retries(ctx, &info);
        goto out;
    }
    char list[128];
    kc_info_pin_protocols_str(&card, list, sizeof(list));
    int proto = 0;
    struct kc_pin_outcome oc;
    if (kc_pin_choose_protocol(&info, true, &proto, &oc) == KC_ERR_NO_PIN_PROTOCOL) {
        char what[32];
        snprintf(what, sizeof(what), "pin %s", sub);
        r = rc_no_pin_protocol(ctx, &card, what, false);
        goto out;
    }
    /* the card's minimum (getInfo minPINLength, which setMinPINLength raises)
     * in code points: said here rather than as a bare invalid argument */
    size_t min_cp = KC_PIN_MIN_LEN, new_cp = 0;
    if (kc_info_has(&card, KC_INFO_MIN_PIN_LENGTH) && card.min_pin_length > KC_PIN_MIN_LEN &&
        card.min_pin_length <= KC_PIN_MAX_LEN)
        min_cp = (size_t)card.min_pin_length;
    for (const char *q = newpin; *q != '\0'; q++)
        new_cp += ((unsigned char)*q & 0xc0) != 0x80;
    if (new_cp < min_cp) {
        rc_err(ctx,
               "pin %s: the new PIN has %zu code point(s); the card's minimum is %zu "
               "(getInfo minPINLength)",
               sub, new_cp, min_cp);
        rc_json_error(ctx, "PIN_TOO_SHORT", RC_EXIT_USAGE);
        r = RC_EXIT_USAGE;
        goto out;
    }
    rc_verbose(ctx, 1, "pin %s with protocol %d (card advertised [%s])", sub, proto, list);
    /* what the card offers and what is sent, also when the card refuses it */
    rc_out_pin_protocols(ctx, &card);
    rc_out_int(ctx, "protocol", proto);
    ctx->t_op_us = kc_now_us();
    int e;
    if (is_set)
        e = kc_pin_set(ctx->dev, &info, newpin);
    else
        e = kc_pin_change(ctx->dev, &info, pin, newpin);
    OPENSSL_cleanse(pin, sizeof(pin));
    OPENSSL_cleanse(newpin, sizeof(newpin));
    if (e == KC_ERR_NO_PIN_PROTOCOL) {
        rc_err(ctx, "pin %s: no PIN/UV auth protocol fits; the card advertised [%s]", sub, list);
        rc_json_error(ctx, "KC_ERR_NO_PIN_PROTOCOL", RC_EXIT_CTAP);
        r = RC_EXIT_CTAP;
        goto out;
    }
    if (e != KC_OK) {
        r = rc_fail(ctx, is_set ? "pin set" : "pin change", e);
        goto out;
    }
    rc_out_str(ctx, "status", is_set ? "PIN set" : "PIN changed");
    rc_out_real(ctx, "seconds", rc_secs_since(ctx->t_op_us));
    r = RC_EXIT_OK;
out:
    OPENSSL_cleanse(pin, sizeof(pin));
    OPENSSL_cleanse(newpin, sizeof(newpin));
    return r;
}
