/* rawctap CTAP1/U2F: u2f-register, u2f-authenticate, and the explicit, timed
 * --ctap1-fallback path of info, make-credential and get-assertion. Key
 * files use the credential-file format with "protocol": "ctap1". */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>

#include "ctaphid/cose.h"
#include "ctaphid/ctap2.h"
#include "ctaphid/status.h"
#include "ctaphid/u2f.h"
#include "triage/rawctap.h"
#include "util/b64url.h"
#include "util/hex.h"
#include "util/rand.h"

#define RC_U2F_POLL_MS 100

static int rc_u2f_fail(struct rc_ctx *ctx, const char *what, int e, uint16_t sw, const char *reason)
{
    if (e == KC_ERR_U2F) {
        rc_err(ctx, "%s: the card answered status word %04x %s", what, sw, kc_u2f_sw_name(sw));
        rc_json_failed(ctx, kc_u2f_sw_name(sw));
        return RC_EXIT_CTAP;
    }
    if (e == KC_ERR_TIMEOUT && sw == KC_U2F_SW_CONDITIONS_NOT_SATISFIED) {
        rc_err(ctx,
               "%s: timeout in presence phase after %.2fs: the card kept answering "
               "CONDITIONS_NOT_SATISFIED (nobody touched it)",
               what, (double)ctx->to.presence_ms / 1000.0);
        rc_json_failed(ctx, "KC_ERR_TIMEOUT");
        if (ctx->json)
            json_object_set_new(ctx->result, "phase", json_string("presence"));
        return RC_EXIT_TRANSPORT;
    }
    if ((e == KC_ERR_VERIFY || e == KC_ERR_PROTOCOL) && reason && reason[0]) {
        rc_err(ctx, "%s: %s", what, reason);
        rc_json_failed(ctx, kc_err_name(e));
        return rc_exit_for(e);
    }
    return rc_fail(ctx, what, e);
}

int rc_u2f_version(struct rc_ctx *ctx, char *buf, size_t len)
{
    uint16_t sw = 0;
    ctx->in_ctap1 = true;
    return kc_u2f_version(ctx->dev, buf, len, &sw);
}

int rc_u2f_register_run(struct rc_ctx *ctx, const char *app_id, const char *key_file, bool pem)
{
    uint8_t chal[KC_U2F_CHAL_LEN], app[KC_U2F_APP_LEN];
    struct kc_u2f_register *reg = calloc(1, sizeof(*reg));
    EVP_PKEY *pkey = NULL;
    uint8_t *cose = NULL;
    size_t cose_len = 0;
    char *pemtxt = NULL, *kh = NULL, *hex = NULL;
    int r;
    if (reg == NULL)
        return RC_EXIT_LOCAL;
    if (kcu_random(chal, sizeof(chal)) != 0 || rc_sha256(app_id, strlen(app_id), app) != 0) {
        r = RC_EXIT_LOCAL;
        goto out;
    }
    rc_verbose(ctx, 1, "U2F register, app id %s; touch the card when it blinks", app_id);
    ctx->t_op_us = kc_now_us();
    ctx->in_ctap1 = true;
    int e = kc_u2f_register_wait(ctx->dev, chal, app, reg, ctx->to.presence_ms, RC_U2F_POLL_MS);
    double secs = rc_secs_since(ctx->t_op_us);
    if (e != KC_OK) {
        r = rc_u2f_fail(ctx, "u2f-register", e, reg->sw, reg->reason);
        goto out;
    }
    e = kc_u2f_pubkey_evp(reg->pubkey, &pkey);
    if (e == KC_OK)
        e = kc_cose_encode(pkey, KC_COSE_ES256, &cose, &cose_len);
    if (e != KC_OK) {
        rc_err(ctx, "u2f-register: the card's public key is not a P-256 point (%s)",
               kc_err_name(e));
        r = RC_EXIT_VERIFY;
        goto out;
    }
    pemtxt = rc_pubkey_pem(pkey);
    kh = kcu_b64url_encode_alloc(reg->key_handle, reg->key_handle_len);
    hex = kcu_hex_encode_alloc(cose, cose_len);
    rc_out_str(ctx, "protocol", "ctap1");
    rc_out_str(ctx, "app_id", app_id);
    rc_out_str(ctx, "cred_id", kh);
    rc_out_str(ctx, "alg", kc_cose_alg_name(KC_COSE_ES256));
    rc_out_pubkey(ctx, hex, pemtxt, pem);
    rc_out_int(ctx, "certificate_bytes", (long long)reg->cert_len);
    rc_out_real(ctx, "seconds", secs);

    e = kc_u2f_register_verify(reg, chal, app);
    if (e != KC_OK) {
        rc_out_str(ctx, "attestation", "FAILED");
        r = rc_u2f_fail(ctx, "u2f-register: fido-u2f attestation did not verify", KC_ERR_VERIFY,
                        reg->sw, reg->reason[0] ? reg->reason : "bad signature");
        goto out;
    }
    rc_out_str(ctx, "attestation", "ok (fido-u2f, basic)");
    r = RC_EXIT_OK;
    if (key_file)
        r = rc_save_cred_file(ctx, key_file, app_id, reg->key_handle, reg->key_handle_len,
                              KC_COSE_ES256, cose, cose_len, pemtxt, 0, "ctap1");
out:
    EVP_PKEY_free(pkey);
    free(cose);
    free(pemtxt);
    free(kh);
    free(hex);
    free(reg);
    return r;
}

static int rc_raw_point(EVP_PKEY *pkey, uint8_t out[KC_U2F_PUBKEY_LEN])
{
    size_t n = 0;
    if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out,
                                        KC_U2F_PUBKEY_LEN, &n) != 1 ||
        n != KC_U2F_PUBKEY_LEN)
        return -1;
    return 0;
}

int rc_u2f_authenticate_run(struct rc_ctx *ctx, const char *app_id, const struct rc_cred_file *cf,
                            const char *key_file, const struct kc_cred_id *allow, size_t n_allow,
                            bool up)
{
    uint8_t chal[KC_U2F_CHAL_LEN], app[KC_U2F_APP_LEN], point[KC_U2F_PUBKEY_LEN];
    struct kc_u2f_auth auth;
    struct kc_cose_key key;
    bool have_key = false;
    int r;
    memset(&auth, 0, sizeof(auth));
    memset(&key, 0, sizeof(key));
    if (n_allow != 1 || allow == NULL) {
        rc_err(ctx, "u2f-authenticate: CTAP1 needs exactly one key handle (--key-file, "
                    "--cred-file or --key-handle)");
        return RC_EXIT_USAGE;
    }
    if (allow[0].len > KC_U2F_KH_MAX) {
        rc_err(ctx, "u2f-authenticate: key handle of %zu bytes is longer than U2F allows",
               allow[0].len);
        return RC_EXIT_USAGE;
    }
    if (cf && cf->cose) {
        if (kc_cose_decode(cf->cose, cf->cose_len, &key, NULL) != KC_OK ||
            key.alg != KC_COSE_ES256 || rc_raw_point(key.pkey, point) != 0) {
            rc_err(ctx, "u2f-authenticate: the saved key is not an ES256 P-256 key");
            kc_cose_key_free(&key);
            return RC_EXIT_USAGE;
        }
        have_key = true;
    }
    if (kcu_random(chal, sizeof(chal)) != 0 || rc_sha256(app_id, strlen(app_id), app) != 0) {
        kc_cose_key_free(&key);
        return RC_EXIT_LOCAL;
    }
    uint8_t mode = up ? KC_U2F_AUTH_ENFORCE : KC_U2F_AUTH_DONT_ENFORCE;
    ctx->in_ctap1 = true;
    rc_verbose(ctx, 1, "U2F authenticate, app id %s, %s", app_id,
               up ? "presence enforced; touch the card" : "presence not enforced");
    ctx->t_op_us = kc_now_us();
    int e = kc_u2f_authenticate_wait(ctx->dev, mode, chal, app, allow[0].ptr, allow[0].len, NULL,
                                     &auth, ctx->to.presence_ms, RC_U2F_POLL_MS);
    double secs = rc_secs_since(ctx->t_op_us);
    if (e != KC_OK) {
        r = rc_u2f_fail(ctx, "u2f-authenticate", e, auth.sw, auth.reason);
        goto out;
    }
    rc_out_str(ctx, "protocol", "ctap1");
    rc_out_str(ctx, "app_id", app_id);
    rc_out_int(ctx, "sign_count", auth.counter);
    rc_out_bool(ctx, "up", (auth.user_presence & 1) != 0);
    rc_out_hex(ctx, "signature", auth.sig, auth.sig_len);
    rc_out_real(ctx, "seconds", secs);
    if (!have_key) {
        rc_verbose(ctx, 1, "signature not verified: no public key (use --key-file)");
        rc_out_str(ctx, "verified", "no key");
        r = RC_EXIT_OK;
        goto out;
    }
    e = kc_u2f_authenticate_verify(&auth, chal, app, point);
    if (e != KC_OK) {
        rc_out_str(ctx, "verified", "FAILED");
        r = rc_u2f_fail(ctx, "u2f-authenticate: signature did not verify", KC_ERR_VERIFY, 0,
                        auth.reason[0] ? auth.reason : "bad signature");
        goto out;
    }
    if (up && !(auth.user_presence & 1)) {
        rc_out_str(ctx, "verified", "FAILED");
        rc_err(ctx, "u2f-authenticate: presence was enforced but the user-presence bit is clear");
        r = RC_EXIT_VERIFY;
        goto out;
    }
    if ((cf->sign_count != 0 || auth.counter != 0) && auth.counter <= cf->sign_count) {
        rc_out_str(ctx, "verified", "FAILED");
        rc_err(ctx,
               "u2f-authenticate: counter did not increase (saved %u, card says %u): "
               "possible cloned card or counter rollback",
               cf->sign_count, auth.counter);
        rc_json_failed(ctx, "VERIFY_ASSERTION");
        r = RC_EXIT_VERIFY;
        goto out;
    }
    char text[96];
    snprintf(text, sizeof(text), "ok (ES256, counter %u -> %u)", cf->sign_count, auth.counter);
    rc_out_str(ctx, "verified", text);
    r = RC_EXIT_OK;
    if (key_file) {
        r = rc_save_cred_file(ctx, key_file, cf->rp_id ? cf->rp_id : app_id, cf->cred_id,
                              cf->cred_id_len, KC_COSE_ES256, cf->cose, cf->cose_len, NULL,
                              auth.counter, "ctap1");
    }
out:
    kc_cose_key_free(&key);
    return r;
}

/* ---- commands ---- */

struct rc_u2f_opts {
    const char *app_id;
    const char *key_file;
    const char *key_handle;
    bool pem, check_only, no_up;
};

static int rc_u2f_opt(struct rc_ctx *ctx, void *st, int c, const char *arg)
{
    struct rc_u2f_opts *o = st;
    (void)ctx;
    switch (c) {
    case 'a':
        o->app_id = arg;
        return 0;
    case 'k':
        o->key_file = arg;
        return 0;
    case 'H':
        o->key_handle = arg;
        return 0;
    case 'm':
        o->pem = true;
        return 0;
    case 'C':
        o->check_only = true;
        return 0;
    case 'n':
        o->no_up = true;
        return 0;
    default:
        return rc_usage_error(NULL, "unexpected option");
    }
}

static const struct option rc_u2f_longopts[] = {{"app-id", required_argument, NULL, 'a'},
                                                {"rp-id", required_argument, NULL, 'a'},
                                                {"key-file", required_argument, NULL, 'k'},
                                                {"cred-file", required_argument, NULL, 'k'},
                                                {"key-handle", required_argument, NULL, 'H'},
                                                {"cred-id", required_argument, NULL, 'H'},
                                                {"pem", no_argument, NULL, 'm'},
                                                {"check-only", no_argument, NULL, 'C'},
                                                {"no-up", no_argument, NULL, 'n'},
                                                {NULL, 0, NULL, 0}};

static int rc_u2f_open(struct rc_ctx *ctx)
{
    int r = rc_open(ctx);
    if (r != 0)
        return r;
    const struct kc_init_info *ii = kc_dev_init_info(ctx->dev);
    if (ii->capabilities & KC_HID_CAP_NMSG)
        rc_verbose(ctx, 1, "card sets CAPABILITY_NMSG (no CTAPHID_MSG); trying U2F anyway");
    return 0;
}

int rc_cmd_u2f_register(struct rc_ctx *ctx, int argc, char **argv)
{
    struct rc_u2f_opts o = {.app_id = "localhost"};
    int r = rc_parse_cmd_no_operands(ctx, argc, argv, "", rc_u2f_longopts, rc_u2f_opt, &o);
    if (r != 0)
        return r;
    if (o.key_handle || o.check_only || o.no_up)
        return rc_usage_error(argv[0], "--key-handle, --check-only and --no-up belong to "
                                       "u2f-authenticate");
    if ((r = rc_u2f_open(ctx)) != 0)
        return r;
    return rc_u2f_register_run(ctx, o.app_id, o.key_file, o.pem);
}

int rc_cmd_u2f_authenticate(struct rc_ctx *ctx, int argc, char **argv)
{
    struct rc_u2f_opts o;
    struct rc_cred_file cf;
    struct kc_cred_id kh;
    uint8_t *kh_buf = NULL;
    memset(&o, 0, sizeof(o));
    memset(&cf, 0, sizeof(cf));
    int r = rc_parse_cmd_no_operands(ctx, argc, argv, "", rc_u2f_longopts, rc_u2f_opt, &o);
    if (r != 0)
        return r;
    if ((o.key_file == NULL) == (o.key_handle == NULL))
        return rc_usage_error(argv[0], "give --key-file or --key-handle (one of them)");
    if (o.key_file) {
        if ((r = rc_cred_file_load(ctx, o.key_file, &cf)) != 0)
            return r;
        kh.ptr = cf.cred_id;
        kh.len = cf.cred_id_len;
        if (o.app_id == NULL)
            o.app_id = cf.rp_id;
    } else {
        size_t len = 0;
        if (kcu_b64url_decode_alloc(o.key_handle, RC_DECODE_MAX, KCU_B64URL_LENIENT, &kh_buf, &len,
                                    NULL, 0) != 0)
            return rc_usage_error(argv[0], "--key-handle is not base64url");
        kh.ptr = kh_buf;
        kh.len = len;
    }
    if (o.app_id == NULL)
        o.app_id = "localhost";
    if ((r = rc_u2f_open(ctx)) != 0)
        goto out;
    if (o.check_only) {
        uint8_t chal[KC_U2F_CHAL_LEN], app[KC_U2F_APP_LEN];
        struct kc_u2f_auth auth;
        memset(&auth, 0, sizeof(auth));
        if (kcu_random(chal, sizeof(chal)) != 0 ||
            rc_sha256(o.app_id, strlen(o.app_id), app) != 0) {
            r = RC_EXIT_LOCAL;
            goto out;
        }
        ctx->t_op_us = kc_now_us();
        ctx->in_ctap1 = true;
        int e = kc_u2f_authenticate(ctx->dev, KC_U2F_AUTH_CHECK_ONLY, chal, app, kh.ptr, kh.len,
                                    NULL, &auth);
        /* check-only: CONDITIONS_NOT_SATISFIED means "this key handle is mine" */
        if (e == KC_ERR_U2F && auth.sw == KC_U2F_SW_CONDITIONS_NOT_SATISFIED) {
            rc_out_bool(ctx, "key_handle_known", true);
            r = RC_EXIT_OK;
        } else if (e == KC_ERR_U2F && auth.sw == KC_U2F_SW_WRONG_DATA) {
            rc_out_bool(ctx, "key_handle_known", false);
            r = RC_EXIT_OK;
        } else if (e != KC_OK) {
            r = rc_u2f_fail(ctx, "u2f-authenticate --check-only", e, auth.sw, auth.reason);
        } else {
            rc_err(ctx, "u2f-authenticate --check-only: the card signed instead of answering "
                        "CONDITIONS_NOT_SATISFIED");
            r = RC_EXIT_CTAP;
        }
        goto out;
    }
    r = rc_u2f_authenticate_run(ctx, o.app_id, o.key_file ? &cf : NULL, o.key_file, &kh, 1,
                                !o.no_up);
out:
    free(kh_buf);
    rc_cred_file_free(&cf);
    return r;
}
