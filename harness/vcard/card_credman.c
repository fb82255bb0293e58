/* authenticatorCredentialManagement of the virtual card (CTAP 2.1, 6.8):
 * metadata, enumeration of relying parties and of one rp's credentials,
 * delete and user update, on the card's resident credentials (c->rks,
 * persisted by card_state.c). Command 0x0A on personalities offering
 * credMgmt, 0x41 on those and on 2.1-PRE ones (credentialMgmtPreview).
 *
 * pinUvAuthParam is checked over subCommand || subCommandParams. A 2.1
 * personality (pinUvAuthToken option) wants the token's cm permission and
 * honours the token's rp binding; a 2.1-PRE one has no permissions, so any
 * live token from getPinToken is enough, as on those cards. */
#include <string.h>

#include <openssl/crypto.h>

#include "ctaphid/cose.h"
#include "ctaphid/credman.h"
#include "ctaphid/pin_proto.h"
#include "ctaphid/status.h"
#include "harness/vcard/card_int.h"

struct cm_req {
    uint64_t sub;
    const cbor_item_t *params; /* NULL when absent */
    const cbor_item_t *proto, *auth;
};

void vc_credman_cancel(struct vc_card *c)
{
    c->cm_enum.kind = 0;
    c->cm_enum.n = c->cm_enum.next = 0;
}

static bool legacy_tokens(const struct vc_card *c)
{
    return c->pers->opt_pin_uv_auth_token != VC_OPT_TRUE;
}

/* The token's permission and rp checks of 6.8. rp_id NULL: the subcommand
 * is not about one rp, so a token bound to an rp is refused. */
static uint8_t check_token_rp(const struct vc_card *c, const char *rp_id)
{
    if (legacy_tokens(c))
        return KC_CTAP2_OK;
    if ((c->token_perms & KC_PERM_CM) == 0)
        return KC_CTAP2_ERR_UNAUTHORIZED_PERMISSION;
    if (c->token_has_rp && c->token_rp[0] != '\0' &&
        (rp_id == NULL || strcmp(c->token_rp, rp_id) != 0))
        return KC_CTAP2_ERR_UNAUTHORIZED_PERMISSION;
    return KC_CTAP2_OK;
}

/* verify(token, subCommand || subCommandParams, pinUvAuthParam) */
static uint8_t check_auth(struct vc_card *c, const struct cm_req *r)
{
    uint8_t *msg = NULL, *ser = NULL;
    size_t ser_len = 0, msg_len;
    uint8_t st;
    int proto;

    if (r->auth == NULL)
        return KC_CTAP2_ERR_PUAT_REQUIRED;
    if (!kc_cbor_is_bytes(r->auth))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    if ((st = vc_pin_proto_check(c, r->proto, &proto)) != KC_CTAP2_OK)
        return st;
    if (!c->pin_set)
        return KC_CTAP2_ERR_PIN_NOT_SET;
    if (r->params != NULL && kc_cbor_serialize(r->params, &ser, &ser_len) != KC_OK)
        return KC_CTAP1_ERR_OTHER;
    msg_len = 1 + ser_len;
    if ((msg = OPENSSL_malloc(msg_len)) == NULL) {
        free(ser);
        return KC_CTAP1_ERR_OTHER;
    }
    msg[0] = (uint8_t)r->sub;
    if (ser_len > 0)
        memcpy(msg + 1, ser, ser_len);
    free(ser);
    st = KC_CTAP2_OK;
    if (!c->token_in_use ||
        kc_pinp_verify(proto, c->token, sizeof(c->token), msg, msg_len,
                       cbor_bytestring_handle(r->auth), cbor_bytestring_length(r->auth)) != KC_OK)
        st = KC_CTAP2_ERR_PIN_AUTH_INVALID;
    OPENSSL_free(msg);
    return st;
}

static uint8_t reply_map(cbor_item_t *m, bool ok, uint8_t *resp, size_t cap, size_t *resp_len)
{
    uint8_t st = ok && m != NULL ? vc_reply_item(m, resp, cap, resp_len) : KC_CTAP1_ERR_OTHER;

    if (m != NULL)
        cbor_decref(&m);
    return st;
}

static uint8_t metadata(struct vc_card *c, uint8_t *resp, size_t cap, size_t *resp_len)
{
    cbor_item_t *m = cbor_new_definite_map(2);
    bool ok =
        m != NULL &&
        kc_cbor_map_add_int(m, KC_CMRESP_EXISTING, kc_cbor_new_int((int64_t)c->n_rk)) == KC_OK &&
        kc_cbor_map_add_int(m, KC_CMRESP_REMAINING,
                            kc_cbor_new_int((int64_t)(VC_MAX_RK - c->n_rk))) == KC_OK;

    return reply_map(m, ok, resp, cap, resp_len);
}

static uint8_t rp_reply(const struct vc_card *c, size_t i, bool begin, size_t total, uint8_t *resp,
                        size_t cap, size_t *resp_len)
{
    const struct vc_rk *rk = &c->rks[i];
    cbor_item_t *m = cbor_new_definite_map(3), *rp = cbor_new_definite_map(1);
    bool ok = m != NULL && rp != NULL &&
              kc_cbor_map_add_str(rp, "id", kc_cbor_new_text(rk->rp_id)) == KC_OK;

    ok = ok && kc_cbor_map_add_int(m, KC_CMRESP_RP, rp) == KC_OK;
    rp = NULL;
    ok = ok && kc_cbor_map_add_int(m, KC_CMRESP_RP_ID_HASH,
                                   kc_cbor_new_bytes(rk->rp_id_hash, 32)) == KC_OK;
    if (begin)
        ok = ok &&
             kc_cbor_map_add_int(m, KC_CMRESP_TOTAL_RPS, kc_cbor_new_int((int64_t)total)) == KC_OK;
    if (rp != NULL)
        cbor_decref(&rp);
    return reply_map(m, ok, resp, cap, resp_len);
}

static uint8_t rps_begin(struct vc_card *c, uint8_t *resp, size_t cap, size_t *resp_len)
{
    struct vc_cm_enum *e = &c->cm_enum;

    vc_credman_cancel(c);
    for (size_t i = 0; i < c->n_rk; i++) {
        bool seen = false;
        for (size_t j = 0; j < e->n && !seen; j++)
            seen = memcmp(c->rks[e->idx[j]].rp_id_hash, c->rks[i].rp_id_hash, 32) == 0;
        if (!seen)
            e->idx[e->n++] = i;
    }
    if (e->n == 0)
        return KC_CTAP2_ERR_NO_CREDENTIALS;
    e->kind = VC_CM_ENUM_RPS;
    e->next = 1;
    return rp_reply(c, e->idx[0], true, e->n, resp, cap, resp_len);
}

static cbor_item_t *user_entity(const struct vc_rk *rk)
{
    cbor_item_t *u = cbor_new_definite_map(3);
    bool ok = u != NULL && kc_cbor_map_add_str(
                               u, "id", kc_cbor_new_bytes(rk->user_id, rk->user_id_len)) == KC_OK;

    if (ok && rk->user_name[0] != '\0')
        ok = kc_cbor_map_add_str(u, "name", kc_cbor_new_text(rk->user_name)) == KC_OK;
    if (ok && rk->display_name[0] != '\0')
        ok = kc_cbor_map_add_str(u, "displayName", kc_cbor_new_text(rk->display_name)) == KC_OK;
    if (ok)
        ok = kc_cbor_map_canonical(u) == KC_OK;
    if (!ok && u != NULL)
        cbor_decref(&u);
    return ok ? u : NULL;
}

static cbor_item_t *descriptor(const uint8_t *id)
{
    cbor_item_t *d = cbor_new_definite_map(2);

    if (d == NULL)
        return NULL;
    if (kc_cbor_map_add_str(d, "id", kc_cbor_new_bytes(id, VC_CRED_ID_LEN)) != KC_OK ||
        kc_cbor_map_add_str(d, "type", kc_cbor_new_text("public-key")) != KC_OK)
        cbor_decref(&d);
    return d;
}

static cbor_item_t *public_key(struct vc_card *c, const struct vc_rk *rk)
{
    struct vc_cred cr;
    EVP_PKEY *k;
    cbor_item_t *out = NULL;

    if (vc_cred_open(c, rk->id, VC_CRED_ID_LEN, rk->rp_id_hash, &cr) != 0)
        return NULL;
    if ((k = vc_cred_pkey(c, &cr)) != NULL) {
        if (kc_cose_encode_item(k, cr.alg, &out) != KC_OK)
            out = NULL;
        EVP_PKEY_free(k);
    }
    OPENSSL_cleanse(&cr, sizeof(cr));
    return out;
}

static uint8_t cred_reply(struct vc_card *c, size_t i, bool begin, size_t total, uint8_t *resp,
                          size_t cap, size_t *resp_len)
{
    const struct vc_rk *rk = &c->rks[i];
    cbor_item_t *m = cbor_new_definite_map(6);
    uint8_t lbk[32];
    bool ok = m != NULL;

    ok = ok && kc_cbor_map_add_int(m, KC_CMRESP_USER, user_entity(rk)) == KC_OK;
    ok = ok && kc_cbor_map_add_int(m, KC_CMRESP_CRED_ID, descriptor(rk->id)) == KC_OK;
    ok = ok && kc_cbor_map_add_int(m, KC_CMRESP_PUBLIC_KEY, public_key(c, rk)) == KC_OK;
    if (begin)
        ok = ok && kc_cbor_map_add_int(m, KC_CMRESP_TOTAL_CREDS, kc_cbor_new_int((int64_t)total)) ==
                       KC_OK;
    ok = ok &&
         kc_cbor_map_add_int(m, KC_CMRESP_CRED_PROTECT,
                             kc_cbor_new_int(rk->cred_protect > 0 ? rk->cred_protect : 1)) == KC_OK;
    /* a card with large blobs hands out each credential's largeBlobKey
     * here too, so a platform can find its blob (CTAP 2.1 6.8.4) */
    if (ok && c->pers->max_large_blob > 0) {
        ok = vc_large_blob_key(c, rk->id, lbk) == 0 &&
             kc_cbor_map_add_int(m, KC_CMRESP_LARGE_BLOB_KEY, kc_cbor_new_bytes(lbk, 32)) == KC_OK;
        OPENSSL_cleanse(lbk, sizeof(lbk));
    }
    return reply_map(m, ok, resp, cap, resp_len);
}

static const char *rp_of_hash(const struct vc_card *c, const uint8_t hash[32])
{
    for (size_t i = 0; i < c->n_rk; i++)
        if (CRYPTO_memcmp(c->rks[i].rp_id_hash, hash, 32) == 0)
            return c->rks[i].rp_id;
    return NULL;
}

static uint8_t creds_begin(struct vc_card *c, const cbor_item_t *params, uint8_t *resp, size_t cap,
                           size_t *resp_len)
{
    struct vc_cm_enum *e = &c->cm_enum;
    const cbor_item_t *h =
        params != NULL ? kc_cbor_map_get_int(params, KC_CMPARAM_RP_ID_HASH) : NULL;
    const uint8_t *hash;
    const char *rp;
    uint8_t st;

    vc_credman_cancel(c);
    if (h == NULL)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (!kc_cbor_is_bytes(h))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    if (cbor_bytestring_length(h) != 32)
        return KC_CTAP1_ERR_INVALID_PARAMETER;
    hash = cbor_bytestring_handle(h);
    rp = rp_of_hash(c, hash);
    if ((st = check_token_rp(c, rp != NULL ? rp : "")) != KC_CTAP2_OK)
        return st;
    if (rp == NULL)
        return KC_CTAP2_ERR_NO_CREDENTIALS;
    /* oldest first, as they were made */
    for (size_t i = 0; i < c->n_rk; i++) {
        size_t j;
        if (memcmp(c->rks[i].rp_id_hash, hash, 32) != 0)
            continue;
        for (j = e->n; j > 0 && c->rks[e->idx[j - 1]].seq > c->rks[i].seq; j--)
            e->idx[j] = e->idx[j - 1];
        e->idx[j] = i;
        e->n++;
    }
    e->kind = VC_CM_ENUM_CREDS;
    e->next = 1;
    return cred_reply(c, e->idx[0], true, e->n, resp, cap, resp_len);
}

static uint8_t get_next(struct vc_card *c, int kind, uint8_t *resp, size_t cap, size_t *resp_len)
{
    struct vc_cm_enum *e = &c->cm_enum;
    size_t i;

    if (e->kind != kind || e->next >= e->n) {
        vc_credman_cancel(c);
        return KC_CTAP2_ERR_NOT_ALLOWED;
    }
    i = e->idx[e->next++];
    if (i >= c->n_rk) {
        vc_credman_cancel(c);
        return KC_CTAP2_ERR_NOT_ALLOWED;
    }
    return kind == VC_CM_ENUM_RPS ? rp_reply(c, i, false, 0, resp, cap, resp_len)
                                  : cred_reply(c, i, false, 0, resp, cap, resp_len);
}

/* The resident credential a subCommandParams' credentialID (0x02) names:
 * KC_CTAP2_OK with *slot, or the status to answer. */
static uint8_t find_cred(const struct vc_card *c, const cbor_item_t *params, size_t *slot)
{
    const cbor_item_t *d = params != NULL ? kc_cbor_map_get_int(params, KC_CMPARAM_CRED_ID) : NULL;
    const cbor_item_t *id, *type;

    if (d == NULL)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (!cbor_isa_map(d) || kc_cbor_map_check(d, true) != KC_OK)
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    id = kc_cbor_map_get_str(d, "id");
    type = kc_cbor_map_get_str(d, "type");
    if (id == NULL || type == NULL)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (!kc_cbor_is_bytes(id) || !kc_cbor_is_text(type))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    if (cbor_bytestring_length(id) != VC_CRED_ID_LEN)
        return KC_CTAP2_ERR_NO_CREDENTIALS;
    for (size_t i = 0; i < c->n_rk; i++)
        if (CRYPTO_memcmp(c->rks[i].id, cbor_bytestring_handle(id), VC_CRED_ID_LEN) == 0) {
            *slot = i;
            return KC_CTAP2_OK;
        }
    return KC_CTAP2_ERR_NO_CREDENTIALS;
}

static uint8_t delete_cred(struct vc_card *c, const cbor_item_t *params)
{
    size_t i;
    uint8_t st;

    if ((st = find_cred(c, params, &i)) != KC_CTAP2_OK)
        return st;
    if ((st = check_token_rp(c, c->rks[i].rp_id)) != KC_CTAP2_OK)
        return st;
    memmove(&c->rks[i], &c->rks[i + 1], (c->n_rk - i - 1) * sizeof(c->rks[0]));
    c->n_rk--;
    OPENSSL_cleanse(&c->rks[c->n_rk], sizeof(c->rks[0]));
    return vc_persist(c) == 0 ? KC_CTAP2_OK : KC_CTAP1_ERR_OTHER;
}

/* A text member of user that fits VC_NAME_MAX, or absent. */
static uint8_t user_text(const cbor_item_t *user, const char *key, char *dst)
{
    const cbor_item_t *v = kc_cbor_map_get_str(user, key);

    dst[0] = '\0';
    if (v == NULL)
        return KC_CTAP2_OK;
    if (!kc_cbor_is_text(v))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    vc_item_text_copy(v, dst, VC_NAME_MAX + 1);
    return KC_CTAP2_OK;
}

static uint8_t update_user(struct vc_card *c, const cbor_item_t *params)
{
    const cbor_item_t *user = params != NULL ? kc_cbor_map_get_int(params, KC_CMPARAM_USER) : NULL;
    const cbor_item_t *uid;
    char name[VC_NAME_MAX + 1], display[VC_NAME_MAX + 1];
    struct vc_rk *rk;
    size_t i;
    uint8_t st;

    if ((st = find_cred(c, params, &i)) != KC_CTAP2_OK)
        return st;
    if (user == NULL)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (!cbor_isa_map(user) || kc_cbor_map_check(user, true) != KC_OK)
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    rk = &c->rks[i];
    if ((st = check_token_rp(c, rk->rp_id)) != KC_CTAP2_OK)
        return st;
    if ((uid = kc_cbor_map_get_str(user, "id")) == NULL)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (!kc_cbor_is_bytes(uid))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    /* the user handle is the credential's identity: it cannot change */
    if (cbor_bytestring_length(uid) != rk->user_id_len ||
        memcmp(cbor_bytestring_handle(uid), rk->user_id, rk->user_id_len) != 0)
        return KC_CTAP1_ERR_INVALID_PARAMETER;
    if ((st = user_text(user, "name", name)) != KC_CTAP2_OK ||
        (st = user_text(user, "displayName", display)) != KC_CTAP2_OK)
        return st;
    memcpy(rk->user_name, name, sizeof(name));
    memcpy(rk->display_name, display, sizeof(display));
    return vc_persist(c) == 0 ? KC_CTAP2_OK : KC_CTAP1_ERR_OTHER;
}

static uint8_t parse(const cbor_item_t *req, struct cm_req *r)
{
    const cbor_item_t *sub = kc_cbor_map_get_int(req, KC_CMREQ_SUBCMD);

    memset(r, 0, sizeof(*r));
    if (sub == NULL)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (!cbor_isa_uint(sub))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    r->sub = cbor_get_int(sub);
    r->params = kc_cbor_map_get_int(req, KC_CMREQ_PARAMS);
    r->proto = kc_cbor_map_get_int(req, KC_CMREQ_PROTOCOL);
    r->auth = kc_cbor_map_get_int(req, KC_CMREQ_AUTH);
    if (r->params != NULL && (!cbor_isa_map(r->params) || kc_cbor_map_check(r->params, false)))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    return KC_CTAP2_OK;
}

static uint8_t need_params(const struct cm_req *r)
{
    const cbor_item_t *p = r->params;

    switch (r->sub) {
    case KC_CM_CREDS_BEGIN:
        return p != NULL && kc_cbor_map_get_int(p, KC_CMPARAM_RP_ID_HASH) != NULL
                   ? KC_CTAP2_OK
                   : KC_CTAP2_ERR_MISSING_PARAMETER;
    case KC_CM_DELETE:
        return p != NULL && kc_cbor_map_get_int(p, KC_CMPARAM_CRED_ID) != NULL
                   ? KC_CTAP2_OK
                   : KC_CTAP2_ERR_MISSING_PARAMETER;
    case KC_CM_UPDATE_USER:
        return p != NULL && kc_cbor_map_get_int(p, KC_CMPARAM_CRED_ID) != NULL &&
                       kc_cbor_map_get_int(p, KC_CMPARAM_USER) != NULL
                   ? KC_CTAP2_OK
                   : KC_CTAP2_ERR_MISSING_PARAMETER;
    default:
        return KC_CTAP2_OK;
    }
}

static bool offered(const struct vc_card *c, uint8_t cmd)
{
    if (cmd == KC_CTAP2_CRED_MGMT)
        return c->pers->cred_mgmt == VC_CRED_MGMT_2_1;
    /* 0x41 on 2.1 cards too, as 2.1 firmware grown from 2.1-PRE keeps it:
     * libfido2 1.12 (fido2-token -L, -D) sends only 0x41 */
    return cmd == KC_CTAP2_CRED_MGMT_PRE && c->pers->cred_mgmt != VC_CRED_MGMT_NONE;
}

uint8_t vc_credman(struct vc_card *c, uint8_t cmd, const uint8_t *p, size_t len, uint8_t *resp,
                   size_t cap, size_t *resp_len)
{
    cbor_item_t *req = NULL;
    struct cm_req r;
    uint8_t st;

    if (!offered(c, cmd) || c->faults.on[VC_FAULT_NO_PIN_PROTOCOLS]) {
        vc_credman_cancel(c);
        return KC_CTAP1_ERR_INVALID_COMMAND;
    }
    if ((st = vc_parse_request(p, len, &req)) != KC_CTAP2_OK ||
        (st = parse(req, &r)) != KC_CTAP2_OK) {
        vc_credman_cancel(c);
        goto out;
    }
    if (r.sub == KC_CM_RPS_NEXT) {
        st = get_next(c, VC_CM_ENUM_RPS, resp, cap, resp_len);
        goto out;
    }
    if (r.sub == KC_CM_CREDS_NEXT) {
        st = get_next(c, VC_CM_ENUM_CREDS, resp, cap, resp_len);
        goto out;
    }
    vc_credman_cancel(c);
    if (r.sub < KC_CM_GET_METADATA || r.sub > KC_CM_UPDATE_USER) {
        st = KC_CTAP2_ERR_INVALID_SUBCOMMAND;
        goto out;
    }
    /* the parameters a subcommand needs are checked before its auth (6.8.4-6.8.6) */
    if ((st = need_params(&r)) != KC_CTAP2_OK || (st = check_auth(c, &r)) != KC_CTAP2_OK)
        goto out;
    switch (r.sub) {
    case KC_CM_GET_METADATA:
        if ((st = check_token_rp(c, NULL)) == KC_CTAP2_OK)
            st = metadata(c, resp, cap, resp_len);
        break;
    case KC_CM_RPS_BEGIN:
        if ((st = check_token_rp(c, NULL)) == KC_CTAP2_OK)
            st = rps_begin(c, resp, cap, resp_len);
        break;
    case KC_CM_CREDS_BEGIN:
        st = creds_begin(c, r.params, resp, cap, resp_len);
        break;
    case KC_CM_DELETE:
        st = delete_cred(c, r.params);
        break;
    default:
        st = update_user(c, r.params);
        break;
    }
out:
    if (req != NULL)
        cbor_decref(&req);
    return st;
}
