/* rawctap cred: authenticatorCredentialManagement (0x0A, or 0x41 on
 * 2.1-PRE cards) through ctaphid/credman.h: metadata, rps, list, delete and
 * update-user. Every subcommand needs the PIN (a pinUvAuthToken with the cm
 * permission); it is never printed and is zeroed after use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctaphid/cose.h"
#include "ctaphid/credman.h"
#include "ctaphid/ctap2.h"
#include "ctaphid/pin.h"
#include "triage/rawctap.h"
#include "util/b64url.h"
#include "util/hex.h"

int rc_cmd_cred(struct rc_ctx *ctx, int argc, char **argv);

struct rc_cred_opts {
    struct rc_pin_src pin;
    const char *rp_id, *cred_id, *user_id, *name, *display_name;
};

enum { O_RP = 'r', O_CRED = 'c', O_USER = 'u', O_NAME = 'n', O_DISP = 'd' };

static int rc_cred_opt(struct rc_ctx *ctx, void *st, int c, const char *arg)
{
    struct rc_cred_opts *o = st;
    (void)ctx;
    if (rc_pin_src_opt(&o->pin, c, arg))
        return 0;
    switch (c) {
    case O_RP:
        o->rp_id = arg;
        return 0;
    case O_CRED:
        o->cred_id = arg;
        return 0;
    case O_USER:
        o->user_id = arg;
        return 0;
    case O_NAME:
        o->name = arg;
        return 0;
    case O_DISP:
        o->display_name = arg;
        return 0;
    default:
        return rc_usage_error("cred", "unexpected option");
    }
}

static json_t *rc_b64_json(const uint8_t *p, size_t n)
{
    char *s = kcu_b64url_encode_alloc(p, n);
    json_t *j = s != NULL ? json_string(s) : json_null();
    free(s);
    return j;
}

static int rc_cred_metadata(struct rc_ctx *ctx, struct kc_credman *s)
{
    struct kc_credman_metadata m;
    int e = kc_credman_metadata(s, &m);

    if (e != KC_OK)
        return rc_fail(ctx, "cred metadata: getCredsMetadata", e);
    rc_out_int(ctx, "existing", (long long)m.existing);
    rc_out_int(ctx, "remaining", (long long)m.remaining);
    return RC_EXIT_OK;
}

static int rc_cred_rps(struct rc_ctx *ctx, struct kc_credman *s)
{
    struct kc_credman_rp *rps = NULL;
    size_t n = 0;
    json_t *arr;
    int e = kc_credman_rps(s, &rps, &n);

    if (e != KC_OK)
        return rc_fail(ctx, "cred rps: enumerateRPs", e);
    rc_out_int(ctx, "count", (long long)n);
    arr = ctx->json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        char *hash = kcu_hex_encode_alloc(rps[i].id_hash, 32);
        if (ctx->json) {
            json_t *o = json_object();
            json_object_set_new(o, "id", json_string(rps[i].id));
            if (rps[i].name[0] != '\0')
                json_object_set_new(o, "name", json_string(rps[i].name));
            json_object_set_new(o, "id_hash", hash != NULL ? json_string(hash) : json_null());
            json_array_append_new(arr, o);
        } else {
            printf("rp: %s%s%s%s sha256 %s\n", rps[i].id[0] ? rps[i].id : "(no id)",
                   rps[i].name[0] ? " (" : "", rps[i].name, rps[i].name[0] ? ")" : "",
                   hash != NULL ? hash : "?");
        }
        free(hash);
    }
    if (arr != NULL)
        json_object_set_new(ctx->result, "rps", arr);
    free(rps);
    return RC_EXIT_OK;
}

static void rc_cred_print(struct rc_ctx *ctx, json_t *arr, const struct kc_credman_cred *c)
{
    char *id = kcu_b64url_encode_alloc(c->cred_id, c->cred_id_len);
    char *uid = kcu_b64url_encode_alloc(c->user_id, c->user_id_len);
    char *key = kcu_hex_encode_alloc(c->public_key, c->public_key_len);
    const char *alg = kc_cose_alg_name((int)c->alg);

    if (ctx->json) {
        json_t *o = json_object();
        json_object_set_new(o, "cred_id", id != NULL ? json_string(id) : json_null());
        json_object_set_new(o, "user_id", uid != NULL ? json_string(uid) : json_null());
        json_object_set_new(o, "user_name", json_string(c->user_name));
        json_object_set_new(o, "display_name", json_string(c->display_name));
        json_object_set_new(o, "alg", json_integer((json_int_t)c->alg));
        json_object_set_new(o, "cred_protect", json_integer((json_int_t)c->cred_protect));
        json_object_set_new(o, "public_key", key != NULL ? json_string(key) : json_null());
        if (c->has_large_blob_key)
            json_object_set_new(o, "large_blob_key", json_true());
        json_array_append_new(arr, o);
    } else {
        printf("credential: %s\n  user: %s (%s) id %s\n  alg: %s  credProtect: %llu\n",
               id != NULL ? id : "?", c->user_name[0] ? c->user_name : "-",
               c->display_name[0] ? c->display_name : "-", uid != NULL ? uid : "?",
               alg != NULL ? alg : "?", (unsigned long long)c->cred_protect);
    }
    free(id);
    free(uid);
    free(key);
}

static int rc_cred_list(struct rc_ctx *ctx, struct kc_credman *s, const char *rp_id)
{
    struct kc_credman_cred *creds = NULL;
    size_t n = 0;
    json_t *arr;
    int e = kc_credman_creds(s, rp_id, &creds, &n);

    if (e != KC_OK)
        return rc_fail(ctx, "cred list: enumerateCredentials", e);
    rc_out_str(ctx, "rp_id", rp_id);
    rc_out_int(ctx, "count", (long long)n);
    arr = ctx->json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++)
        rc_cred_print(ctx, arr, &creds[i]);
    if (arr != NULL)
        json_object_set_new(ctx->result, "credentials", arr);
    kc_credman_creds_free(creds, n);
    return RC_EXIT_OK;
}

static int rc_cred_delete(struct rc_ctx *ctx, struct kc_credman *s, const uint8_t *id, size_t len)
{
    int e = kc_credman_delete(s, id, len);

    if (e != KC_OK)
        return rc_fail(ctx, "cred delete: deleteCredential", e);
    rc_out_json(ctx, "cred_id", rc_b64_json(id, len), NULL);
    rc_out_str(ctx, "status", "deleted");
    return RC_EXIT_OK;
}

static int rc_cred_update(struct rc_ctx *ctx, struct kc_credman *s, const uint8_t *id, size_t len,
                          const uint8_t *uid, size_t uid_len, const struct rc_cred_opts *o)
{
    int e = kc_credman_update_user(s, id, len, uid, uid_len, o->name, o->display_name);

    if (e != KC_OK)
        return rc_fail(ctx, "cred update-user: updateUserInformation", e);
    rc_out_json(ctx, "cred_id", rc_b64_json(id, len), NULL);
    rc_out_str(ctx, "status", "updated");
    return RC_EXIT_OK;
}

enum rc_cred_sub { SUB_METADATA, SUB_RPS, SUB_LIST, SUB_DELETE, SUB_UPDATE };

static int rc_cred_sub(const char *s)
{
    static const char *const names[] = {"metadata", "rps", "list", "delete", "update-user"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

/* The operands each subcommand needs; usage errors named. */
static int rc_cred_check(const char *cmd, int sub, const struct rc_cred_opts *o)
{
    if (sub == SUB_LIST && (o->rp_id == NULL || o->rp_id[0] == '\0'))
        return rc_usage_error(cmd, "cred list needs --rp-id ID");
    if ((sub == SUB_DELETE || sub == SUB_UPDATE) && o->cred_id == NULL)
        return rc_usage_error(cmd, "cred %s needs --cred-id B64URL",
                              sub == SUB_DELETE ? "delete" : "update-user");
    if (sub == SUB_UPDATE && o->user_id == NULL)
        return rc_usage_error(cmd, "cred update-user needs --user-id B64URL (the credential's)");
    if (sub != SUB_LIST && o->rp_id != NULL)
        return rc_usage_error(cmd, "--rp-id goes with cred list");
    if (sub != SUB_DELETE && sub != SUB_UPDATE && o->cred_id != NULL)
        return rc_usage_error(cmd, "--cred-id goes with cred delete or update-user");
    if (sub != SUB_UPDATE && (o->user_id || o->name || o->display_name))
        return rc_usage_error(cmd, "--user-id, --name and --display-name go with update-user");
    if (o->name != NULL && strlen(o->name) > 64)
        return rc_usage_error(cmd, "--name is longer than 64 bytes");
    if (o->display_name != NULL && strlen(o->display_name) > 64)
        return rc_usage_error(cmd, "--display-name is longer than 64 bytes");
    return 0;
}

static int rc_cred_decode_ids(const char *cmd, const struct rc_cred_opts *o, uint8_t **id,
                              size_t *id_len, uint8_t **uid, size_t *uid_len)
{
    if (o->cred_id != NULL &&
        (kcu_b64url_decode_alloc(o->cred_id, RC_DECODE_MAX, KCU_B64URL_LENIENT, id, id_len, NULL,
                                 0) != 0 ||
         *id_len == 0 || *id_len > KC_CRED_ID_MAX))
        return rc_usage_error(cmd, "--cred-id is not a base64url credential id: '%s'", o->cred_id);
    if (o->user_id != NULL &&
        (kcu_b64url_decode_alloc(o->user_id, RC_DECODE_MAX, KCU_B64URL_LENIENT, uid, uid_len, NULL,
                                 0) != 0 ||
         *uid_len == 0 || *uid_len > KC_CM_USER_ID_MAX))
        return rc_usage_error(cmd, "--user-id is not a base64url user id of 1..64 bytes: '%s'",
                              o->user_id);
    return 0;
}

static int rc_cred_run(struct rc_ctx *ctx, int sub, const char *pin, const struct rc_cred_opts *o,
                       const uint8_t *id, size_t id_len, const uint8_t *uid, size_t uid_len)
{
    struct kc_credman s;
    struct kc_info info;
    int r, e;

    if ((r = rc_open_ctap2_info(ctx, "cred", &info)) != 0)
        return r;
    ctx->t_op_us = kc_now_us();
    e = kc_credman_open(&s, ctx->dev, &info, pin);
    if (e == KC_ERR_UNSUPPORTED) {
        rc_err(ctx, "cred: the card offers no credential management (getInfo has neither "
                    "credMgmt nor credentialMgmtPreview)");
        rc_json_error(ctx, "CRED_MGMT_NOT_OFFERED", RC_EXIT_CTAP);
        return RC_EXIT_CTAP;
    }
    if (e != KC_OK)
        return rc_fail(ctx, "cred", e);
    rc_verbose(ctx, 1, "credential management over command 0x%02x (%s)", s.cmd,
               s.cmd == KC_CTAP2_CRED_MGMT ? "CTAP 2.1 credMgmt" : "2.1-PRE credentialMgmtPreview");
    rc_out_str(ctx, "command", s.cmd == KC_CTAP2_CRED_MGMT ? "0x0a" : "0x41");
    /* the token first, so a PIN problem is named as one */
    int proto = 0;
    if (kc_pin_choose_protocol(&info, true, &proto, NULL) == KC_ERR_NO_PIN_PROTOCOL) {
        kc_credman_close(&s);
        return rc_no_pin_protocol(ctx, &info, "cred", false);
    }
    rc_verbose(ctx, 1, "getting a pinUvAuthToken (permission cm) with protocol %d", proto);
    if ((e = kc_pin_token_for(ctx->dev, &info, pin, KC_PERM_CM, NULL, &s.token)) != KC_OK) {
        kc_credman_close(&s);
        return rc_fail(ctx, "cred: pinUvAuthToken", e);
    }
    s.have_token = true;
    switch (sub) {
    case SUB_METADATA:
        r = rc_cred_metadata(ctx, &s);
        break;
    case SUB_RPS:
        r = rc_cred_rps(ctx, &s);
        break;
    case SUB_LIST:
        r = rc_cred_list(ctx, &s, o->rp_id);
        break;
    case SUB_DELETE:
        r = rc_cred_delete(ctx, &s, id, id_len);
        break;
    default:
        r = rc_cred_update(ctx, &s, id, id_len, uid, uid_len, o);
        break;
    }
    if (r == RC_EXIT_OK)
        rc_out_real(ctx, "seconds", rc_secs_since(ctx->t_op_us));
    kc_credman_close(&s);
    return r;
}

int rc_cmd_cred(struct rc_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {RC_PIN_LONGOPTS,
                                       {"rp-id", required_argument, NULL, O_RP},
                                       {"cred-id", required_argument, NULL, O_CRED},
                                       {"user-id", required_argument, NULL, O_USER},
                                       {"name", required_argument, NULL, O_NAME},
                                       {"display-name", required_argument, NULL, O_DISP},
                                       {NULL, 0, NULL, 0}};
    struct rc_cred_opts o;
    char pin[RC_PIN_MAX];
    uint8_t *id = NULL, *uid = NULL;
    size_t id_len = 0, uid_len = 0;
    int first = 0, sub;
    int r;

    memset(&o, 0, sizeof(o));
    memset(pin, 0, sizeof(pin));
    if ((r = rc_parse_cmd(ctx, argc, argv, "", lo, rc_cred_opt, &o, &first)) != 0)
        return r;
    if (first >= argc)
        return rc_usage_error(argv[0], "which one: metadata, rps, list, delete or update-user?");
    if ((sub = rc_cred_sub(argv[first])) < 0)
        return rc_usage_error(argv[0],
                              "unknown subcommand '%s' (metadata, rps, list, delete, update-user)",
                              argv[first]);
    if (first + 1 < argc)
        return rc_usage_error(argv[0], "unexpected argument '%s'", argv[first + 1]);
    if (ctx->json)
        json_object_set_new(ctx->result, "subcommand", json_string(argv[first]));
    if ((r = rc_cred_check(argv[0], sub, &o)) != 0 ||
        (r = rc_cred_decode_ids(argv[0], &o, &id, &id_len, &uid, &uid_len)) != 0)
        goto out;
    if ((r = rc_pin_src_need(&o.pin, argv[0], "cred needs the card's PIN", pin, sizeof(pin))) != 0)
        goto out;
    r = rc_cred_run(ctx, sub, pin, &o, id, id_len, uid, uid_len);
out:
    OPENSSL_cleanse(pin, sizeof(pin));
    free(id);
    free(uid);
    return r;
}
