/* rawctap CTAP2 commands: info, make-credential, get-assertion, selection,
 * reset. PIN handling follows the runbook rule: no PIN and no protocol on
 * the card means proceed without one; a PIN and no protocol is an error that
 * names what the card advertised. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctaphid/cose.h"
#include "ctaphid/ctap2.h"
#include "ctaphid/status.h"
#include "triage/rawctap.h"
#include "triage/rawctap_ext.h"
#include "util/b64url.h"
#include "util/hex.h"
#include "util/rand.h"

#define RC_MAX_ALLOW 16

/* ---- shared pieces ---- */

/* Build a clientDataJSON and hash it: clientDataHash as a browser makes it. */
static int rc_client_data_hash(struct rc_ctx *ctx, const char *type, const char *rp_id,
                               uint8_t cdh[KC_CDH_LEN])
{
    uint8_t challenge[32];
    char origin[300];
    if (kcu_random(challenge, sizeof(challenge)) != 0)
        return RC_EXIT_LOCAL;
    char *ch = kcu_b64url_encode_alloc(challenge, sizeof(challenge));
    if (ch == NULL)
        return RC_EXIT_LOCAL;
    snprintf(origin, sizeof(origin), "https://%s", rp_id);
    json_t *cd = json_pack("{s:s, s:s, s:s, s:b}", "type", type, "challenge", ch, "origin", origin,
                           "crossOrigin", 0);
    free(ch);
    char *s = cd ? json_dumps(cd, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(cd);
    if (s == NULL)
        return RC_EXIT_LOCAL;
    int r = rc_sha256(s, strlen(s), cdh);
    rc_verbose(ctx, 2, "clientDataJSON %s", s);
    free(s);
    return r == 0 ? RC_EXIT_OK : RC_EXIT_LOCAL;
}

bool rc_has_ctap2(struct rc_ctx *ctx)
{
    const struct kc_init_info *ii = kc_dev_init_info(ctx->dev);
    return (ii->capabilities & KC_HID_CAP_CBOR) != 0;
}

int rc_no_ctap2(struct rc_ctx *ctx, const char *what)
{
    const struct kc_init_info *ii = kc_dev_init_info(ctx->dev);
    rc_err(ctx,
           "%s: the card does not offer CTAP2 (INIT capabilities 0x%02x lack CBOR): it speaks "
           "CTAP1/U2F only; use u2f-register/u2f-authenticate or --ctap1-fallback",
           what, ii->capabilities);
    rc_json_failed(ctx, "CTAP2_NOT_OFFERED");
    return RC_EXIT_CTAP;
}

int rc_info_fetch(struct rc_ctx *ctx, struct kc_info *info)
{
    ctx->t_op_us = kc_now_us();
    int e = kc_ctap2_get_info(ctx->dev, info);
    if (e != KC_OK)
        return rc_fail(ctx, "getInfo", e);
    return RC_EXIT_OK;
}

int rc_open_ctap2_info(struct rc_ctx *ctx, const char *cmd, struct kc_info *info)
{
    int r = rc_open(ctx);
    if (r != 0)
        return r;
    if (!rc_has_ctap2(ctx))
        return rc_no_ctap2(ctx, cmd);
    memset(info, 0, sizeof(*info));
    return rc_info_fetch(ctx, info);
}

int rc_no_pin_protocol(struct rc_ctx *ctx, const struct kc_info *info, const char *what,
                       bool pin_optional)
{
    char list[128];
    int cp = kc_info_option(info, "clientPin");
    kc_info_pin_protocols_str(info, list, sizeof(list));
    rc_err(ctx,
           "%s: %sno PIN/UV auth protocol fits: the card advertised pinUvAuthProtocols [%s] and "
           "clientPin option %s; this tool speaks protocols 1 and 2%s",
           what, pin_optional ? "a PIN was given but " : "", list,
           cp < 0 ? "absent"
           : cp   ? "true"
                  : "false",
           pin_optional ? " (drop --pin to proceed without PIN)" : "");
    rc_json_failed(ctx, "KC_ERR_NO_PIN_PROTOCOL");
    if (ctx->json)
        json_object_set_new(ctx->result, "pin_protocols_advertised", json_string(list));
    return RC_EXIT_CTAP;
}

/* The runbook rule, with the -v explanation. Returns 0 or an exit code. */
static int rc_pin_decide(struct rc_ctx *ctx, const struct kc_info *info, bool have_pin,
                         const char *what)
{
    int proto = 0;
    struct kc_pin_outcome oc;
    char list[128];
    memset(&oc, 0, sizeof(oc));
    kc_info_pin_protocols_str(info, list, sizeof(list));
    int e = kc_pin_choose_protocol(info, have_pin, &proto, &oc);
    if (e == KC_ERR_NO_PIN_PROTOCOL)
        return rc_no_pin_protocol(ctx, info, what, true);
    if (e != KC_OK)
        return rc_fail(ctx, what, e);
    if (!have_pin) {
        if (oc.no_protocol)
            rc_verbose(ctx, 1, "card advertises no PIN/UV auth protocol; proceeding without PIN");
        else if (kc_info_option(info, "clientPin") == 1)
            rc_verbose(ctx, 1,
                       "card has a PIN set (clientPin true, protocols [%s]) but no PIN was "
                       "given; proceeding without PIN (the card may answer "
                       "CTAP2_ERR_PUAT_REQUIRED)",
                       list);
        else
            rc_verbose(ctx, 1, "no PIN given; proceeding without PIN (card protocols [%s])", list);
    } else {
        rc_verbose(ctx, 1, "using PIN/UV auth protocol %d (card advertised [%s])", proto, list);
    }
    return RC_EXIT_OK;
}

/* -v: say where the request asks for something the card did not advertise. */
static void rc_explain_options(struct rc_ctx *ctx, const struct kc_info *info, bool rk, bool uv)
{
    if (info->n_algorithms > 0) {
        bool listed = false;
        for (size_t i = 0; i < info->n_algorithms; i++)
            if (info->algorithms[i].alg == ctx->alg)
                listed = true;
        if (!listed)
            rc_verbose(ctx, 1,
                       "card does not list %s among its algorithms; asking anyway (expect "
                       "CTAP2_ERR_UNSUPPORTED_ALGORITHM)",
                       kc_cose_alg_name(ctx->alg));
    }
    if (rk && kc_info_option(info, "rk") != 1)
        rc_verbose(ctx, 1,
                   "card does not advertise rk=true; asking for a discoverable "
                   "credential anyway");
    if (uv && kc_info_option(info, "uv") != 1 && kc_info_option(info, "clientPin") != 1)
        rc_verbose(ctx, 1,
                   "--uv: the card has no built-in uv and no PIN set; expect "
                   "CTAP2_ERR_UNSUPPORTED_OPTION or CTAP2_ERR_PUAT_REQUIRED");
}

/* ---- info ---- */

static json_t *rc_json_strlist(const char (*list)[KC_INFO_NAME_MAX], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

static void rc_text_list(char *buf, size_t len, const char (*list)[KC_INFO_NAME_MAX], size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < len; i++) {
        int w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", list[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    if (n == 0)
        snprintf(buf, len, "none");
}

static int rc_info_u2f(struct rc_ctx *ctx);

int rc_cmd_info(struct rc_ctx *ctx, int argc, char **argv)
{
    int r = rc_parse_cmd_no_operands(ctx, argc, argv, "", NULL, NULL, NULL);
    if (r != 0)
        return r;
    if ((r = rc_open(ctx)) != 0)
        return r;
    if (!rc_has_ctap2(ctx)) {
        if (ctx->ctap1_fallback)
            return rc_info_u2f(ctx);
        return rc_no_ctap2(ctx, "info");
    }
    struct kc_info info;
    memset(&info, 0, sizeof(info));
    ctx->t_op_us = kc_now_us();
    int e = kc_ctap2_get_info(ctx->dev, &info);
    if (e != KC_OK) {
        if (ctx->ctap1_fallback) {
            rc_info(ctx, "getInfo failed (%s); trying CTAP1/U2F", kc_err_name(e));
            return rc_info_u2f(ctx);
        }
        return rc_fail(ctx, "getInfo", e);
    }
    char buf[2048];
    rc_text_list(buf, sizeof(buf), info.versions, info.n_versions);
    rc_out_json(ctx, "versions", rc_json_strlist(info.versions, info.n_versions), buf);
    rc_text_list(buf, sizeof(buf), info.extensions, info.n_extensions);
    rc_out_json(ctx, "extensions", rc_json_strlist(info.extensions, info.n_extensions), buf);
    rc_out_hex(ctx, "aaguid", info.aaguid, sizeof(info.aaguid));

    json_t *opts = json_object();
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < info.n_options; i++) {
        json_object_set_new(opts, info.options[i].name, json_boolean(info.options[i].value));
        int w = snprintf(buf + off, sizeof(buf) - off, "%s%s=%s", i ? ", " : "",
                         info.options[i].name, info.options[i].value ? "true" : "false");
        if (w > 0 && (size_t)w < sizeof(buf) - off)
            off += (size_t)w;
    }
    rc_out_json(ctx, "options", opts, info.n_options ? buf : "none");

    char plist[128];
    kc_info_pin_protocols_str(&info, plist, sizeof(plist));
    json_t *pp = json_array();
    for (size_t i = 0; i < info.n_pin_protocols; i++)
        json_array_append_new(pp, json_integer((json_int_t)info.pin_protocols[i]));
    rc_out_json(ctx, "pin_protocols", pp, plist);
    if (info.n_pin_protocols == 0)
        rc_verbose(ctx, 1,
                   "card advertises no PIN/UV auth protocol: commands will proceed without "
                   "PIN; --pin will be refused with this list");

    json_t *algs = json_array();
    off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < info.n_algorithms; i++) {
        json_array_append_new(algs, json_integer(info.algorithms[i].alg));
        int w = snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? ", " : "",
                         kc_cose_alg_name((int)info.algorithms[i].alg));
        if (w > 0 && (size_t)w < sizeof(buf) - off)
            off += (size_t)w;
    }
    rc_out_json(ctx, "algorithms", algs, info.n_algorithms ? buf : "not listed");
    rc_text_list(buf, sizeof(buf), info.transports, info.n_transports);
    rc_out_json(ctx, "transports", rc_json_strlist(info.transports, info.n_transports), buf);
    if (kc_info_has(&info, KC_INFO_MAX_MSG_SIZE))
        rc_out_int(ctx, "max_msg_size", (long long)info.max_msg_size);
    if (kc_info_has(&info, KC_INFO_MIN_PIN_LENGTH))
        rc_out_int(ctx, "min_pin_length", (long long)info.min_pin_length);
    if (kc_info_has(&info, KC_INFO_FORCE_PIN_CHANGE)) /* set by config set-min-pin-length */
        rc_out_bool(ctx, "force_pin_change", info.force_pin_change);
    if (kc_info_has(&info, KC_INFO_MAX_RPIDS_MIN_PIN))
        rc_out_int(ctx, "max_rpids_for_set_min_pin_length",
                   (long long)info.max_rpids_for_set_min_pin_length);
    if (kc_info_has(&info, KC_INFO_FIRMWARE_VERSION))
        rc_out_int(ctx, "firmware_version", (long long)info.firmware_version);
    if (kc_info_has(&info, KC_INFO_REMAINING_DISC_CREDS))
        rc_out_int(ctx, "remaining_discoverable_credentials",
                   (long long)info.remaining_discoverable_credentials);
    if (info.truncated)
        rc_verbose(ctx, 1, "some getInfo lists were longer than this tool keeps; truncated");
    rc_out_real(ctx, "seconds", rc_secs_since(ctx->t_op_us));
    return RC_EXIT_OK;
}

static int rc_info_u2f(struct rc_ctx *ctx)
{
    char version[32];
    uint64_t t0 = kc_now_us();
    ctx->t_op_us = t0;
    int e = rc_u2f_version(ctx, version, sizeof(version));
    double secs = rc_secs_since(t0);
    if (e != KC_OK)
        return rc_fail(ctx, "CTAP1 fallback: U2F version", e);
    rc_info(ctx, "CTAP1 fallback: U2F version answered in %.3fs", secs);
    rc_out_str(ctx, "transport_protocol", "ctap1");
    rc_out_str(ctx, "u2f_version", version);
    rc_out_real(ctx, "ctap1_seconds", secs);
    return RC_EXIT_OK;
}

/* ---- make-credential ---- */

struct rc_mc_opts {
    const char *rp_id;
    const char *user;
    bool rk, uv, pem;
    struct rc_pin_src pin;
    const char *cred_file;
    struct rc_ext_opts ext; /* rawctap_ext.c */
};

static int rc_mc_opt(struct rc_ctx *ctx, void *st, int c, const char *arg)
{
    struct rc_mc_opts *o = st;
    (void)ctx;
    if (rc_pin_src_opt(&o->pin, c, arg))
        return 0;
    switch (c) {
    case 'r':
        o->rp_id = arg;
        return 0;
    case 'u':
        o->user = arg;
        return 0;
    case 'k':
        o->rk = true;
        return 0;
    case 'U':
        o->uv = true;
        return 0;
    case 'c':
        o->cred_file = arg;
        return 0;
    case 'm':
        o->pem = true;
        return 0;
    default: {
        int e = rc_ext_opt("make-credential", &o->ext, c, arg);
        return e >= 0 ? e : rc_usage_error("make-credential", "unexpected option");
    }
    }
}

static int rc_mc_u2f_fallback(struct rc_ctx *ctx, const struct rc_mc_opts *o, const char *why)
{
    rc_info(ctx, "%s; trying the CTAP1/U2F path (--ctap1-fallback)", why);
    uint64_t t0 = kc_now_us();
    int r = rc_u2f_register_run(ctx, o->rp_id, o->cred_file, o->pem);
    double secs = rc_secs_since(t0);
    rc_info(ctx, "CTAP1 fallback %s after %.3fs", r == RC_EXIT_OK ? "succeeded" : "failed", secs);
    rc_out_real(ctx, "ctap1_seconds", secs);
    return r;
}

int rc_cmd_make_credential(struct rc_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {
        {"rp-id", required_argument, NULL, 'r'},
        {"user", required_argument, NULL, 'u'},
        {"rk", no_argument, NULL, 'k'},
        {"uv", no_argument, NULL, 'U'},
        RC_PIN_LONGOPTS,
        {"cred-file", required_argument, NULL, 'c'},
        {"pem", no_argument, NULL, 'm'},
        {"hmac-secret", no_argument, NULL, RC_EXT_HMAC},
        {"cred-protect", required_argument, NULL, RC_EXT_CRED_PROTECT},
        {"cred-blob", required_argument, NULL, RC_EXT_CRED_BLOB},
        {"large-blob-key", no_argument, NULL, RC_EXT_LARGE_BLOB_KEY},
        {"min-pin-length", no_argument, NULL, RC_EXT_MIN_PIN_LENGTH},
        {NULL, 0, NULL, 0}};
    struct rc_mc_opts o = {.user = "rawctap"};
    uint8_t *ext_buf = NULL;
    size_t ext_len = 0;
    char pin[RC_PIN_MAX];
    int r = rc_parse_cmd_no_operands(ctx, argc, argv, "", lo, rc_mc_opt, &o);
    if (r != 0)
        return r;
    if (o.rp_id == NULL || *o.rp_id == '\0')
        return rc_usage_error(argv[0], "--rp-id is required");
    bool have_pin = false;
    if ((r = rc_pin_src_read(&o.pin, pin, sizeof(pin), &have_pin)) != 0)
        return r;

    struct kc_info info;
    struct kc_cred_request req;
    struct kc_attestation att;
    struct kc_cose_key key;
    uint8_t user_id[16];
    memset(&info, 0, sizeof(info));
    memset(&att, 0, sizeof(att));
    memset(&key, 0, sizeof(key));
    kc_cred_request_init(&req);

    if ((r = rc_open(ctx)) != 0)
        goto out;
    if (!rc_has_ctap2(ctx)) {
        if (ctx->ctap1_fallback) {
            r = rc_mc_u2f_fallback(ctx, &o, "card offers no CTAP2 (no CBOR capability)");
            goto out;
        }
        r = rc_no_ctap2(ctx, "make-credential");
        goto out;
    }
    if ((r = rc_info_fetch(ctx, &info)) != 0) {
        if (ctx->ctap1_fallback)
            r = rc_mc_u2f_fallback(ctx, &o, "getInfo failed");
        goto out;
    }
    if ((r = rc_pin_decide(ctx, &info, have_pin, "make-credential")) != 0)
        goto out;
    rc_explain_options(ctx, &info, o.rk, o.uv);
    if ((r = rc_client_data_hash(ctx, "webauthn.create", o.rp_id, req.client_data_hash)) != 0)
        goto out;
    if (kcu_random(user_id, sizeof(user_id)) != 0) {
        r = RC_EXIT_LOCAL;
        goto out;
    }
    req.rp_id = o.rp_id;
    req.rp_name = o.rp_id;
    req.user_id = user_id;
    req.user_id_len = sizeof(user_id);
    req.user_name = o.user;
    req.user_display_name = o.user;
    req.algs[0] = ctx->alg;
    req.n_algs = 1;
    req.rk = o.rk;
    req.uv = o.uv;
    req.pin = have_pin ? pin : NULL;
    req.info = &info;
    if ((r = rc_ext_mc_request(ctx, &o.ext, &req, &ext_buf, &ext_len)) != RC_EXIT_OK)
        goto out;
    req.extensions_cbor = ext_buf;
    req.extensions_len = ext_len;

    rc_verbose(ctx, 1, "makeCredential rp %s, %s%s%s", o.rp_id, kc_cose_alg_name(ctx->alg),
               o.rk ? ", rk" : "", o.uv ? ", uv" : "");
    ctx->presence_cmd = true;
    ctx->t_op_us = kc_now_us();
    int e = kc_ctap2_make_credential(ctx->dev, &req, &att);
    double secs = rc_secs_since(ctx->t_op_us);
    if (have_pin)
        OPENSSL_cleanse(pin, sizeof(pin));
    if (e == KC_ERR_NO_PIN_PROTOCOL) {
        char list[128];
        kc_info_pin_protocols_str(&info, list, sizeof(list));
        rc_err(ctx, "make-credential: no PIN/UV auth protocol fits; the card advertised [%s]",
               list);
        rc_json_error(ctx, "KC_ERR_NO_PIN_PROTOCOL", RC_EXIT_CTAP);
        r = RC_EXIT_CTAP;
        goto out;
    }
    if (e != KC_OK) {
        if (ctx->ctap1_fallback && e != KC_CTAP2_ERR_OPERATION_DENIED) {
            char why[128];
            snprintf(why, sizeof(why), "makeCredential failed (%s)", kc_err_name(e));
            r = rc_mc_u2f_fallback(ctx, &o, why);
            goto out;
        }
        r = rc_fail(ctx, "make-credential", e);
        goto out;
    }
    if (!att.ad.has_attested) {
        rc_err(ctx, "make-credential: authData carries no attested credential data");
        r = RC_EXIT_VERIFY;
        goto out;
    }
    int kr = kc_cose_decode(att.ad.cose_key, att.ad.cose_key_len, &key, NULL);
    if (kr != KC_OK) {
        rc_err(ctx, "make-credential: the credential public key is not a valid COSE key (%s)",
               kc_err_name(kr));
        r = RC_EXIT_VERIFY;
        goto out;
    }
    char *cid = kcu_b64url_encode_alloc(att.ad.cred_id, att.ad.cred_id_len);
    char *pem = rc_pubkey_pem(key.pkey);
    char *hex = kcu_hex_encode_alloc(att.ad.cose_key, att.ad.cose_key_len);
    rc_out_str(ctx, "rp_id", o.rp_id);
    rc_out_str(ctx, "fmt", att.fmt);
    rc_out_str(ctx, "cred_id", cid);
    rc_out_str(ctx, "alg", kc_cose_alg_name(key.alg));
    rc_out_pubkey(ctx, hex, pem, o.pem);
    rc_out_int(ctx, "sign_count", att.ad.sign_count);
    rc_out_bool(ctx, "up", (att.ad.flags & KC_AD_UP) != 0);
    rc_out_bool(ctx, "uv", (att.ad.flags & KC_AD_UV) != 0);
    rc_out_hex(ctx, "aaguid", att.ad.aaguid, sizeof(att.ad.aaguid));
    rc_out_bool(ctx, "pin_used", att.pin.used_pin);
    rc_ext_mc_show(ctx, &o.ext, &att);
    rc_out_real(ctx, "seconds", secs);
    if (key.alg != ctx->alg)
        rc_verbose(ctx, 1, "asked for %s, the card made %s", kc_cose_alg_name(ctx->alg),
                   kc_cose_alg_name(key.alg));

    r = rc_verify_attestation(ctx, o.rp_id, req.client_data_hash, &att);
    if (r == RC_EXIT_OK && o.cred_file)
        r = rc_save_cred_file(ctx, o.cred_file, o.rp_id, att.ad.cred_id, att.ad.cred_id_len,
                              key.alg, att.ad.cose_key, att.ad.cose_key_len, pem, att.ad.sign_count,
                              "ctap2");
    free(cid);
    free(pem);
    free(hex);
out:
    OPENSSL_cleanse(pin, sizeof(pin));
    free(ext_buf);
    kc_cose_key_free(&key);
    kc_attestation_free(&att);
    return r;
}

/* ---- get-assertion ---- */

struct rc_ga_opts {
    const char *rp_id;
    const char *cred_ids[RC_MAX_ALLOW];
    size_t n_cred_ids;
    const char *cred_file;
    bool no_up, uv;
    struct rc_pin_src pin;
    struct rc_ext_opts ext; /* rawctap_ext.c */
};

static int rc_ga_opt(struct rc_ctx *ctx, void *st, int c, const char *arg)
{
    struct rc_ga_opts *o = st;
    (void)ctx;
    if (rc_pin_src_opt(&o->pin, c, arg))
        return 0;
    switch (c) {
    case 'r':
        o->rp_id = arg;
        return 0;
    case 'i':
        if (o->n_cred_ids >= RC_MAX_ALLOW)
            return rc_usage_error("get-assertion", "at most %d --cred-id", RC_MAX_ALLOW);
        o->cred_ids[o->n_cred_ids++] = arg;
        return 0;
    case 'c':
        o->cred_file = arg;
        return 0;
    case 'n':
        o->no_up = true;
        return 0;
    case 'U':
        o->uv = true;
        return 0;
    default: {
        int e = rc_ext_opt("get-assertion", &o->ext, c, arg);
        return e >= 0 ? e : rc_usage_error("get-assertion", "unexpected option");
    }
    }
}

int rc_cmd_get_assertion(struct rc_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {
        {"rp-id", required_argument, NULL, 'r'},
        {"cred-id", required_argument, NULL, 'i'},
        {"cred-file", required_argument, NULL, 'c'},
        {"no-up", no_argument, NULL, 'n'},
        {"uv", no_argument, NULL, 'U'},
        RC_PIN_LONGOPTS,
        {"hmac-secret", required_argument, NULL, RC_EXT_HMAC},
        {"hmac-protocol", required_argument, NULL, RC_EXT_HMAC_PROTOCOL},
        {"cred-blob", no_argument, NULL, RC_EXT_CRED_BLOB},
        {"large-blob-key", no_argument, NULL, RC_EXT_LARGE_BLOB_KEY},
        {NULL, 0, NULL, 0}};
    struct rc_ga_opts o;
    struct rc_hmac hmac;
    uint8_t *ext_buf = NULL;
    size_t ext_len = 0;
    struct rc_cred_file cf;
    struct kc_cred_id allow[RC_MAX_ALLOW + 1];
    uint8_t *decoded[RC_MAX_ALLOW];
    size_t n_allow = 0;
    char pin[RC_PIN_MAX];
    memset(&o, 0, sizeof(o));
    memset(&cf, 0, sizeof(cf));
    memset(decoded, 0, sizeof(decoded));
    int r = rc_parse_cmd_no_operands(ctx, argc, argv, "", lo, rc_ga_opt, &o);
    if (r != 0)
        return r;
    if (o.cred_file && o.n_cred_ids)
        return rc_usage_error(argv[0], "give --cred-id or --cred-file, not both");
    for (size_t i = 0; i < o.n_cred_ids; i++) {
        size_t len = 0;
        if (kcu_b64url_decode_alloc(o.cred_ids[i], RC_DECODE_MAX, KCU_B64URL_LENIENT, &decoded[i],
                                    &len, NULL, 0) != 0) {
            for (size_t k = 0; k < i; k++)
                free(decoded[k]);
            return rc_usage_error(argv[0], "--cred-id '%s' is not base64url", o.cred_ids[i]);
        }
        allow[n_allow].ptr = decoded[i];
        allow[n_allow].len = len;
        n_allow++;
    }
    bool have_pin = false;
    if ((r = rc_pin_src_read(&o.pin, pin, sizeof(pin), &have_pin)) != 0)
        goto out_free;
    if (o.cred_file) {
        if ((r = rc_cred_file_load(ctx, o.cred_file, &cf)) != 0)
            goto out_free;
        if (o.rp_id == NULL)
            o.rp_id = cf.rp_id;
        else if (strcmp(o.rp_id, cf.rp_id) != 0)
            rc_verbose(ctx, 1, "--rp-id %s differs from the file's %s: verification will fail",
                       o.rp_id, cf.rp_id);
        allow[0].ptr = cf.cred_id;
        allow[0].len = cf.cred_id_len;
        n_allow = 1;
    }
    if (o.rp_id == NULL || *o.rp_id == '\0') {
        r = rc_usage_error(argv[0], "--rp-id is required (or --cred-file)");
        goto out_free;
    }

    if ((r = rc_open(ctx)) != 0)
        goto out_free;
    if (cf.u2f || !rc_has_ctap2(ctx)) {
        if (cf.u2f || ctx->ctap1_fallback) {
            uint64_t t0 = kc_now_us();
            if (!cf.u2f)
                rc_info(ctx, "card offers no CTAP2 (no CBOR capability); trying the CTAP1/U2F "
                             "path (--ctap1-fallback)");
            r = rc_u2f_authenticate_run(ctx, o.rp_id, &cf, o.cred_file, allow, n_allow, !o.no_up);
            rc_info(ctx, "CTAP1 path %s after %.3fs", r == RC_EXIT_OK ? "succeeded" : "failed",
                    rc_secs_since(t0));
            goto out_free;
        }
        r = rc_no_ctap2(ctx, "get-assertion");
        goto out_free;
    }
    struct kc_info info;
    memset(&info, 0, sizeof(info));
    if ((r = rc_info_fetch(ctx, &info)) != 0)
        goto out_free;
    if ((r = rc_pin_decide(ctx, &info, have_pin, "get-assertion")) != 0)
        goto out_free;

    struct kc_assert_request req;
    struct kc_assertion a;
    memset(&a, 0, sizeof(a));
    kc_assert_request_init(&req);
    if ((r = rc_client_data_hash(ctx, "webauthn.get", o.rp_id, req.client_data_hash)) != 0)
        goto out_free;
    req.rp_id = o.rp_id;
    req.allow = n_allow ? allow : NULL;
    req.n_allow = n_allow;
    req.up = !o.no_up;
    req.uv = o.uv;
    req.pin = have_pin ? pin : NULL;
    req.info = &info;
    if ((r = rc_ext_ga_request(ctx, &info, &o.ext, &hmac, &ext_buf, &ext_len)) != RC_EXIT_OK)
        goto out_free;
    req.extensions_cbor = ext_buf;
    req.extensions_len = ext_len;
    rc_verbose(ctx, 1, "getAssertion rp %s, %zu allowed credential(s), up=%s", o.rp_id, n_allow,
               req.up ? "true" : "false");
    ctx->presence_cmd = true;
    ctx->t_op_us = kc_now_us();
    int e = kc_ctap2_get_assertion(ctx->dev, &req, &a);
    double secs = rc_secs_since(ctx->t_op_us);
    OPENSSL_cleanse(pin, sizeof(pin));
    if (e != KC_OK) {
        r = rc_fail(ctx, "get-assertion", e);
        kc_assertion_free(&a);
        goto out_free;
    }
    const uint8_t *used_id = a.cred_id ? a.cred_id : (n_allow == 1 ? allow[0].ptr : NULL);
    size_t used_len = a.cred_id ? a.cred_id_len : (n_allow == 1 ? allow[0].len : 0);
    char *cid = used_id ? kcu_b64url_encode_alloc(used_id, used_len) : NULL;
    rc_out_str(ctx, "rp_id", o.rp_id);
    rc_out_str(ctx, "cred_id", cid);
    free(cid);
    rc_out_int(ctx, "sign_count", a.ad.sign_count);
    rc_out_bool(ctx, "up", (a.ad.flags & KC_AD_UP) != 0);
    rc_out_bool(ctx, "uv", (a.ad.flags & KC_AD_UV) != 0);
    rc_out_hex(ctx, "signature", a.signature, a.signature_len);
    if (a.number_of_credentials)
        rc_out_int(ctx, "number_of_credentials", (long long)a.number_of_credentials);
    if (a.has_user && a.user_name)
        rc_out_str(ctx, "user_name", a.user_name);
    rc_out_bool(ctx, "pin_used", a.pin.used_pin);
    int xr = rc_ext_ga_show(ctx, &o.ext, &hmac, &a);
    rc_out_real(ctx, "seconds", secs);

    if (o.cred_file) {
        if (a.cred_id && (a.cred_id_len != cf.cred_id_len ||
                          CRYPTO_memcmp(a.cred_id, cf.cred_id, cf.cred_id_len) != 0)) {
            rc_err(ctx, "get-assertion: the card answered with another credential than the "
                        "file's");
            r = RC_EXIT_VERIFY;
        } else {
            r = rc_verify_assertion(ctx, o.rp_id, req.client_data_hash, &a, &cf, req.up,
                                    o.cred_file);
        }
    } else {
        rc_verbose(ctx, 1, "signature not verified: no public key (use --cred-file)");
        rc_out_str(ctx, "verified", "no key");
        r = RC_EXIT_OK;
    }
    if (r == RC_EXIT_OK)
        r = xr;
    kc_assertion_free(&a);
out_free:
    OPENSSL_cleanse(pin, sizeof(pin));
    OPENSSL_cleanse(&hmac, sizeof(hmac));
    free(ext_buf);
    for (size_t i = 0; i < o.n_cred_ids; i++)
        free(decoded[i]);
    rc_cred_file_free(&cf);
    return r;
}

/* ---- selection, reset ---- */

static int rc_simple(struct rc_ctx *ctx, int argc, char **argv, int (*fn)(struct kc_dev *),
                     const char *what)
{
    int r = rc_parse_cmd_no_operands(ctx, argc, argv, "", NULL, NULL, NULL);
    if (r != 0)
        return r;
    if ((r = rc_open(ctx)) != 0)
        return r;
    if (!rc_has_ctap2(ctx))
        return rc_no_ctap2(ctx, what);
    ctx->presence_cmd = true;
    ctx->t_op_us = kc_now_us();
    int e = fn(ctx->dev);
    double secs = rc_secs_since(ctx->t_op_us);
    if (e != KC_OK)
        return rc_fail(ctx, what, e);
    rc_out_str(ctx, "status", "CTAP2_OK");
    rc_out_real(ctx, "seconds", secs);
    return RC_EXIT_OK;
}

int rc_cmd_selection(struct rc_ctx *ctx, int argc, char **argv)
{
    return rc_simple(ctx, argc, argv, kc_ctap2_selection, "selection");
}

int rc_cmd_reset(struct rc_ctx *ctx, int argc, char **argv)
{
    return rc_simple(ctx, argc, argv, kc_ctap2_reset, "reset");
}
