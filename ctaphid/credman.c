/* authenticatorCredentialManagement (CTAP 2.1, 6.8), host side: request
 * encoding with pinUvAuthParam over subCommand || subCommandParams, the
 * checked reply decoder, and the metadata / enumerate / delete / update
 * calls built on them (ctaphid/credman.h). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/credman.h"
#include "ctaphid/credman_int.h"
#include "ctaphid/ctap2_int.h"
#include "ctaphid/pin.h"
#include "ctaphid/pin_proto.h"

#define COSE_KEY_MAX 1024 /* a COSE_Key larger than this is not a credential key */

uint8_t kc_credman_command(const struct kc_info *info)
{
    if (info == NULL)
        return 0;
    if (kc_info_option(info, "credMgmt") == 1)
        return KC_CTAP2_CRED_MGMT;
    if (kc_info_option(info, "credentialMgmtPreview") == 1)
        return KC_CTAP2_CRED_MGMT_PRE;
    return 0;
}

int kc_credman_open(struct kc_credman *s, struct kc_dev *d, const struct kc_info *info,
                    const char *pin)
{
    int r;

    if (s == NULL || d == NULL)
        return KC_ERR_INVALID_ARG;
    memset(s, 0, sizeof(*s));
    s->dev = d;
    s->pin = pin;
    if (info != NULL)
        s->info = *info;
    else if ((r = kc_ctap2_get_info(d, &s->info)) != KC_OK)
        return r;
    if ((s->cmd = kc_credman_command(&s->info)) == 0)
        return KC_ERR_UNSUPPORTED;
    return KC_OK;
}

void kc_credman_close(struct kc_credman *s)
{
    if (s != NULL)
        OPENSSL_cleanse(s, sizeof(*s));
}

/* ---- request ------------------------------------------------------------ */

int kc_credman_encode(uint8_t sub, const cbor_item_t *params, const struct kc_pin_token *tok,
                      uint8_t **buf, size_t *len)
{
    uint8_t *ser = NULL, *msg = NULL, auth[KC_PINP_AUTH_MAX];
    size_t ser_len = 0, auth_len = 0;
    cbor_item_t *m = NULL;
    int r;

    if (buf == NULL || len == NULL)
        return KC_ERR_INVALID_ARG;
    *buf = NULL;
    *len = 0;
    if (params != NULL && (r = kc_cbor_serialize(params, &ser, &ser_len)) != KC_OK)
        return r;
    if (tok != NULL) {
        r = KC_ERR_NOMEM;
        if ((msg = malloc(1 + ser_len)) == NULL)
            goto out;
        msg[0] = sub;
        if (ser_len > 0)
            memcpy(msg + 1, ser, ser_len);
        if ((r = kc_pin_auth_param(tok, msg, 1 + ser_len, auth, &auth_len)) != KC_OK)
            goto out;
    }
    r = KC_ERR_NOMEM;
    if ((m = cbor_new_definite_map(4)) == NULL ||
        kc_cbor_map_add_int(m, KC_CMREQ_SUBCMD, kc_cbor_new_int(sub)) != KC_OK)
        goto out;
    if (params != NULL &&
        kc_cbor_map_add_int(m, KC_CMREQ_PARAMS, cbor_incref((cbor_item_t *)params)) != KC_OK)
        goto out;
    if (tok != NULL &&
        (kc_cbor_map_add_int(m, KC_CMREQ_PROTOCOL, kc_cbor_new_int(tok->protocol)) != KC_OK ||
         kc_cbor_map_add_int(m, KC_CMREQ_AUTH, kc_cbor_new_bytes(auth, auth_len)) != KC_OK))
        goto out;
    r = kc_cbor_serialize(m, buf, len);
out:
    if (m != NULL)
        cbor_decref(&m);
    free(ser);
    free(msg);
    OPENSSL_cleanse(auth, sizeof(auth));
    return r;
}

/* ---- reply -------------------------------------------------------------- */

void kc_credman_cred_free(struct kc_credman_cred *c)
{
    if (c == NULL)
        return;
    free(c->cred_id);
    free(c->public_key);
    OPENSSL_cleanse(c, sizeof(*c));
}

void kc_credman_reply_free(struct kc_credman_reply *r)
{
    if (r == NULL)
        return;
    kc_credman_cred_free(&r->cred);
    memset(r, 0, sizeof(*r));
}

/* A definite text string, copied truncated to cap - 1 bytes. */
static int text_trunc(const cbor_item_t *v, char *out, size_t cap, bool *truncated)
{
    size_t n;

    if (!kc_cbor_is_text(v))
        return KC_ERR_CBOR;
    n = cbor_string_length(v);
    if (n > cap - 1) {
        n = cap - 1;
        *truncated = true;
    }
    if (n > 0)
        memcpy(out, cbor_string_handle(v), n);
    out[n] = '\0';
    return KC_OK;
}

/* PublicKeyCredentialRpEntity: {"id": text, "name": text?} */
static int decode_rp(const cbor_item_t *v, struct kc_credman_rp *rp)
{
    const cbor_item_t *id, *name;

    if (!cbor_isa_map(v) || kc_cbor_map_check(v, true) != KC_OK)
        return KC_ERR_CBOR;
    if ((id = kc_cbor_map_get_str(v, "id")) == NULL ||
        text_trunc(id, rp->id, sizeof(rp->id), &rp->truncated) != KC_OK)
        return KC_ERR_CBOR;
    if ((name = kc_cbor_map_get_str(v, "name")) != NULL &&
        text_trunc(name, rp->name, sizeof(rp->name), &rp->truncated) != KC_OK)
        return KC_ERR_CBOR;
    return KC_OK;
}

/* PublicKeyCredentialUserEntity: {"id": bytes, "name"?, "displayName"?} */
static int decode_user(const cbor_item_t *v, struct kc_credman_cred *c)
{
    const cbor_item_t *id, *t;
    bool trunc = false;

    if (!cbor_isa_map(v) || kc_cbor_map_check(v, true) != KC_OK)
        return KC_ERR_CBOR;
    if ((id = kc_cbor_map_get_str(v, "id")) == NULL ||
        kc_cbor_bytes(id, 1, KC_CM_USER_ID_MAX, c->user_id, &c->user_id_len) != KC_OK)
        return KC_ERR_CBOR;
    if ((t = kc_cbor_map_get_str(v, "name")) != NULL &&
        text_trunc(t, c->user_name, sizeof(c->user_name), &trunc) != KC_OK)
        return KC_ERR_CBOR;
    if ((t = kc_cbor_map_get_str(v, "displayName")) != NULL &&
        text_trunc(t, c->display_name, sizeof(c->display_name), &trunc) != KC_OK)
        return KC_ERR_CBOR;
    return KC_OK;
}

/* PublicKeyCredentialDescriptor: {"id": bytes, "type": "public-key"} */
static int decode_cred_id(const cbor_item_t *v, struct kc_credman_cred *c)
{
    const cbor_item_t *id, *type;

    if (!cbor_isa_map(v) || kc_cbor_map_check(v, true) != KC_OK)
        return KC_ERR_CBOR;
    if ((id = kc_cbor_map_get_str(v, "id")) == NULL ||
        (type = kc_cbor_map_get_str(v, "type")) == NULL || !kc_cbor_is_text(type))
        return KC_ERR_CBOR;
    if (c->cred_id != NULL)
        return KC_ERR_CBOR;
    return kc_cbor_bytes_dup(id, 1, KC_CRED_ID_MAX, &c->cred_id, &c->cred_id_len);
}

/* COSE_Key: a map with integer keys, kept as its CBOR; alg (3) read. */
static int decode_public_key(const cbor_item_t *v, struct kc_credman_cred *c)
{
    const cbor_item_t *alg;

    if (!cbor_isa_map(v) || kc_cbor_map_check(v, false) != KC_OK || c->public_key != NULL)
        return KC_ERR_CBOR;
    if ((alg = kc_cbor_map_get_int(v, 3)) != NULL && kc_cbor_int(alg, &c->alg) != KC_OK)
        return KC_ERR_CBOR;
    if (kc_cbor_serialize(v, &c->public_key, &c->public_key_len) != KC_OK ||
        c->public_key_len > COSE_KEY_MAX)
        return KC_ERR_CBOR;
    return KC_OK;
}

struct decode_ctx {
    struct kc_credman_reply *r;
    uint32_t seen; /* bit k: response key k */
};

static int decode_entry(int64_t key, const cbor_item_t *v, void *arg)
{
    struct decode_ctx *x = arg;
    struct kc_credman_reply *r = x->r;
    size_t n = 0;

    if (key >= 1 && key <= 31)
        x->seen |= 1u << key;
    switch (key) {
    case KC_CMRESP_EXISTING:
        return kc_cbor_uint(v, &r->meta.existing);
    case KC_CMRESP_REMAINING:
        return kc_cbor_uint(v, &r->meta.remaining);
    case KC_CMRESP_RP:
        return decode_rp(v, &r->rp);
    case KC_CMRESP_RP_ID_HASH:
        return kc_cbor_bytes(v, 32, 32, r->rp.id_hash, &n);
    case KC_CMRESP_TOTAL_RPS:
    case KC_CMRESP_TOTAL_CREDS:
        return kc_cbor_uint(v, &r->total);
    case KC_CMRESP_USER:
        return decode_user(v, &r->cred);
    case KC_CMRESP_CRED_ID:
        return decode_cred_id(v, &r->cred);
    case KC_CMRESP_PUBLIC_KEY:
        return decode_public_key(v, &r->cred);
    case KC_CMRESP_CRED_PROTECT:
        if (kc_cbor_uint(v, &r->cred.cred_protect) != KC_OK || r->cred.cred_protect < 1 ||
            r->cred.cred_protect > 3)
            return KC_ERR_CBOR;
        return KC_OK;
    case KC_CMRESP_LARGE_BLOB_KEY:
        r->cred.has_large_blob_key = true;
        return kc_cbor_bytes(v, 32, 32, r->cred.large_blob_key, &n);
    default:
        return KC_OK; /* unknown keys are skipped */
    }
}

#define BIT(k) (1u << (k))

static uint32_t required(uint8_t sub)
{
    switch (sub) {
    case KC_CM_GET_METADATA:
        return BIT(KC_CMRESP_EXISTING) | BIT(KC_CMRESP_REMAINING);
    case KC_CM_RPS_BEGIN:
        return BIT(KC_CMRESP_RP) | BIT(KC_CMRESP_RP_ID_HASH) | BIT(KC_CMRESP_TOTAL_RPS);
    case KC_CM_RPS_NEXT:
        return BIT(KC_CMRESP_RP) | BIT(KC_CMRESP_RP_ID_HASH);
    case KC_CM_CREDS_BEGIN:
        return BIT(KC_CMRESP_USER) | BIT(KC_CMRESP_CRED_ID) | BIT(KC_CMRESP_PUBLIC_KEY) |
               BIT(KC_CMRESP_TOTAL_CREDS);
    case KC_CM_CREDS_NEXT:
        return BIT(KC_CMRESP_USER) | BIT(KC_CMRESP_CRED_ID) | BIT(KC_CMRESP_PUBLIC_KEY);
    default:
        return 0;
    }
}

int kc_credman_reply_decode(uint8_t sub, const uint8_t *cbor, size_t len,
                            struct kc_credman_reply *r)
{
    struct decode_ctx x = {.r = r};
    int e;

    if (r == NULL || (cbor == NULL && len > 0) || sub < KC_CM_GET_METADATA ||
        sub > KC_CM_CREDS_NEXT)
        return KC_ERR_INVALID_ARG;
    memset(r, 0, sizeof(*r));
    if ((e = kc_cbor_int_map_each(cbor, len, decode_entry, &x)) != KC_OK)
        goto fail;
    e = KC_ERR_CBOR;
    if ((x.seen & required(sub)) != required(sub))
        goto fail;
    if ((sub == KC_CM_RPS_BEGIN || sub == KC_CM_CREDS_BEGIN) &&
        (r->total == 0 || r->total > KC_CM_MAX_ITEMS))
        goto fail;
    return KC_OK;
fail:
    kc_credman_reply_free(r);
    return e == KC_ERR_INVALID_ARG ? KC_ERR_CBOR : e;
}

/* ---- calls -------------------------------------------------------------- */

static int need_token(struct kc_credman *s)
{
    int r;

    if (s->have_token)
        return KC_OK;
    if (s->pin == NULL)
        return KC_ERR_INVALID_ARG; /* credential management needs the PIN */
    if ((r = kc_pin_token_for(s->dev, &s->info, s->pin, KC_PERM_CM, NULL, &s->token)) != KC_OK)
        return r;
    s->have_token = true;
    return KC_OK;
}

/* One subcommand; authed ones carry pinUvAuthParam. The reply is decoded
 * into *out when out is not NULL. */
static int call(struct kc_credman *s, uint8_t sub, const cbor_item_t *params, bool authed,
                struct kc_credman_reply *out)
{
    uint8_t *req = NULL, *body = NULL;
    size_t req_len = 0, body_len = 0;
    int r;

    if (authed && (r = need_token(s)) != KC_OK)
        return r;
    if ((r = kc_credman_encode(sub, params, authed ? &s->token : NULL, &req, &req_len)) != KC_OK)
        return r;
    r = kc_ctap2_call(s->dev, s->cmd, req, req_len, &body, &body_len);
    if (r == KC_OK && out != NULL)
        r = kc_credman_reply_decode(sub, body, body_len, out);
    free(req);
    free(body);
    return r;
}

int kc_credman_metadata(struct kc_credman *s, struct kc_credman_metadata *out)
{
    struct kc_credman_reply rep;
    int r;

    if (s == NULL || out == NULL)
        return KC_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if ((r = call(s, KC_CM_GET_METADATA, NULL, true, &rep)) != KC_OK)
        return r;
    *out = rep.meta;
    kc_credman_reply_free(&rep);
    return KC_OK;
}

int kc_credman_rps(struct kc_credman *s, struct kc_credman_rp **rps, size_t *n)
{
    struct kc_credman_reply rep;
    struct kc_credman_rp *list = NULL;
    size_t total;
    int r;

    if (s == NULL || rps == NULL || n == NULL)
        return KC_ERR_INVALID_ARG;
    *rps = NULL;
    *n = 0;
    r = call(s, KC_CM_RPS_BEGIN, NULL, true, &rep);
    if (r == KC_CTAP2_ERR_NO_CREDENTIALS)
        return KC_OK;
    if (r != KC_OK)
        return r;
    total = (size_t)rep.total;
    if ((list = calloc(total, sizeof(*list))) == NULL) {
        kc_credman_reply_free(&rep);
        return KC_ERR_NOMEM;
    }
    list[0] = rep.rp;
    kc_credman_reply_free(&rep);
    for (size_t i = 1; i < total; i++) {
        if ((r = call(s, KC_CM_RPS_NEXT, NULL, false, &rep)) != KC_OK) {
            free(list);
            return r;
        }
        list[i] = rep.rp;
        kc_credman_reply_free(&rep);
    }
    *rps = list;
    *n = total;
    return KC_OK;
}

void kc_credman_creds_free(struct kc_credman_cred *creds, size_t n)
{
    if (creds == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        kc_credman_cred_free(&creds[i]);
    free(creds);
}

static cbor_item_t *rp_hash_params(const char *rp_id)
{
    uint8_t h[32];
    unsigned int hl = 0;
    cbor_item_t *m;

    if (EVP_Digest(rp_id, strlen(rp_id), h, &hl, EVP_sha256(), NULL) != 1 || hl != 32)
        return NULL;
    if ((m = cbor_new_definite_map(1)) == NULL)
        return NULL;
    if (kc_cbor_map_add_int(m, KC_CMPARAM_RP_ID_HASH, kc_cbor_new_bytes(h, 32)) != KC_OK)
        cbor_decref(&m);
    return m;
}

int kc_credman_creds(struct kc_credman *s, const char *rp_id, struct kc_credman_cred **creds,
                     size_t *n)
{
    struct kc_credman_reply rep;
    struct kc_credman_cred *list = NULL;
    cbor_item_t *params;
    size_t total, got = 0;
    int r;

    if (s == NULL || rp_id == NULL || rp_id[0] == '\0' || creds == NULL || n == NULL)
        return KC_ERR_INVALID_ARG;
    *creds = NULL;
    *n = 0;
    if ((params = rp_hash_params(rp_id)) == NULL)
        return KC_ERR_NOMEM;
    r = call(s, KC_CM_CREDS_BEGIN, params, true, &rep);
    cbor_decref(&params);
    if (r == KC_CTAP2_ERR_NO_CREDENTIALS)
        return KC_OK;
    if (r != KC_OK)
        return r;
    total = (size_t)rep.total;
    if ((list = calloc(total, sizeof(*list))) == NULL) {
        kc_credman_reply_free(&rep);
        return KC_ERR_NOMEM;
    }
    list[got++] = rep.cred; /* ownership moves to the list */
    memset(&rep, 0, sizeof(rep));
    while (got < total) {
        if ((r = call(s, KC_CM_CREDS_NEXT, NULL, false, &rep)) != KC_OK) {
            kc_credman_creds_free(list, got);
            return r;
        }
        list[got++] = rep.cred;
        memset(&rep, 0, sizeof(rep));
    }
    *creds = list;
    *n = total;
    return KC_OK;
}

static cbor_item_t *descriptor(const uint8_t *id, size_t len)
{
    cbor_item_t *d = cbor_new_definite_map(2);

    if (d == NULL)
        return NULL;
    if (kc_cbor_map_add_str(d, "id", kc_cbor_new_bytes(id, len)) != KC_OK ||
        kc_cbor_map_add_str(d, "type", kc_cbor_new_text("public-key")) != KC_OK)
        cbor_decref(&d);
    return d;
}

int kc_credman_delete(struct kc_credman *s, const uint8_t *cred_id, size_t cred_id_len)
{
    cbor_item_t *params;
    int r;

    if (s == NULL || cred_id == NULL || cred_id_len == 0 || cred_id_len > KC_CRED_ID_MAX)
        return KC_ERR_INVALID_ARG;
    if ((params = cbor_new_definite_map(1)) == NULL)
        return KC_ERR_NOMEM;
    if (kc_cbor_map_add_int(params, KC_CMPARAM_CRED_ID, descriptor(cred_id, cred_id_len)) !=
        KC_OK) {
        cbor_decref(&params);
        return KC_ERR_NOMEM;
    }
    r = call(s, KC_CM_DELETE, params, true, NULL);
    cbor_decref(&params);
    return r;
}

int kc_credman_update_user(struct kc_credman *s, const uint8_t *cred_id, size_t cred_id_len,
                           const uint8_t *user_id, size_t user_id_len, const char *name,
                           const char *display_name)
{
    cbor_item_t *params = NULL, *user = NULL;
    int r = KC_ERR_NOMEM;

    if (s == NULL || cred_id == NULL || cred_id_len == 0 || cred_id_len > KC_CRED_ID_MAX ||
        user_id == NULL || user_id_len == 0 || user_id_len > KC_CM_USER_ID_MAX)
        return KC_ERR_INVALID_ARG;
    if ((params = cbor_new_definite_map(2)) == NULL || (user = cbor_new_definite_map(3)) == NULL)
        goto out;
    if (kc_cbor_map_add_str(user, "id", kc_cbor_new_bytes(user_id, user_id_len)) != KC_OK ||
        (name != NULL && kc_cbor_map_add_str(user, "name", kc_cbor_new_text(name)) != KC_OK) ||
        (display_name != NULL &&
         kc_cbor_map_add_str(user, "displayName", kc_cbor_new_text(display_name)) != KC_OK) ||
        kc_cbor_map_canonical(user) != KC_OK)
        goto out;
    if (kc_cbor_map_add_int(params, KC_CMPARAM_CRED_ID, descriptor(cred_id, cred_id_len)) != KC_OK)
        goto out;
    r = kc_cbor_map_add_int(params, KC_CMPARAM_USER, user);
    user = NULL; /* kc_cbor_map_add_int releases it in every case */
    if (r != KC_OK)
        goto out;
    r = call(s, KC_CM_UPDATE_USER, params, true, NULL);
out:
    if (user != NULL)
        cbor_decref(&user);
    if (params != NULL)
        cbor_decref(&params);
    return r;
}
