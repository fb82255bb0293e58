/* authenticatorMakeCredential, authenticatorGetAssertion and
 * authenticatorGetNextAssertion of the virtual card (CTAP 2.1, 6.1-6.3).
 *
 * User verification policy: the personality's (personality.h). With
 * makeCredUvNotRqd (kcard-2.1), a PIN set and no pinUvAuthParam, a
 * non-resident makeCredential is allowed without UV, a resident one gets
 * PUAT_REQUIRED. A CTAP 2.0 card with a PIN set demands it for every
 * makeCredential (PIN_REQUIRED, 2.0 5.1 step 6); a 2.1 card without
 * makeCredUvNotRqd does once protected by a PIN or built-in UV (6.1.2);
 * alwaysUv demands UV for every makeCredential and every getAssertion with
 * up, PIN set or not (6.1.2 step 5; 6.2.2 step 5 gates only up=true, so
 * up=false pre-flights pass, as OpenSK does). Otherwise getAssertion without pinUvAuthParam
 * proceeds with UV clear (credProtect then hides what needs UV). With built-in UV (the uv option),
 * options.uv=true counts as UV performed together with the presence check, so a declined touch is
 * OPERATION_DENIED. hmac-secret: makeCredential reports it in authData; getAssertion computes the
 * outputs for the first credential; getNextAssertion returns none. */
#include <stdlib.h>
#include <string.h>

#include "ctaphid/cose.h"
#include "ctaphid/status.h"
#include "harness/vcard/card_int.h"
#include "util/clock.h"

#define AUTHDATA_MAX 1024
#define SIG_MAX 128

struct opts {
    bool rk, up, uv;
    bool has_up;
};

static uint8_t parse_opts(const cbor_item_t *m, struct opts *o)
{
    static const char *const names[] = {"rk", "up", "uv"};
    bool *dst[] = {&o->rk, &o->up, &o->uv};
    cbor_item_t *v;

    o->rk = false;
    o->up = true;
    o->uv = false;
    o->has_up = false;
    if (m == NULL)
        return KC_CTAP2_OK;
    if (!cbor_isa_map(m))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    for (size_t i = 0; i < 3; i++) {
        if ((v = kc_cbor_map_get_str(m, names[i])) == NULL)
            continue;
        if (!kc_cbor_is_bool(v))
            return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
        *dst[i] = cbor_get_bool(v);
        if (i == 1)
            o->has_up = true;
    }
    return KC_CTAP2_OK;
}

/* A PublicKeyCredentialDescriptor: {type: text, id: bytes}. *usable is false
 * for types other than "public-key", which are skipped. */
static uint8_t check_descriptor(const cbor_item_t *d, bool *usable)
{
    cbor_item_t *type, *id;

    *usable = false;
    if (!cbor_isa_map(d))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    type = kc_cbor_map_get_str(d, "type");
    id = kc_cbor_map_get_str(d, "id");
    if (type == NULL || id == NULL)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (!kc_cbor_is_text(type) || !kc_cbor_is_bytes(id))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    *usable = kc_cbor_text_eq(type, "public-key");
    return KC_CTAP2_OK;
}

static uint8_t check_descriptor_list(const cbor_item_t *list)
{
    cbor_item_t **v;
    bool usable;
    uint8_t st;

    if (list == NULL)
        return KC_CTAP2_OK;
    if (!cbor_isa_array(list) || !cbor_array_is_definite(list))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    v = cbor_array_handle(list);
    for (size_t i = 0; i < cbor_array_size(list); i++)
        if ((st = check_descriptor(v[i], &usable)) != KC_CTAP2_OK)
            return st;
    return KC_CTAP2_OK;
}

static uint8_t opt_text(const cbor_item_t *map, const char *key)
{
    cbor_item_t *v = kc_cbor_map_get_str(map, key);

    if (v != NULL && !kc_cbor_is_text(v))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    return KC_CTAP2_OK;
}

static uint8_t pick_alg(const cbor_item_t *params, int *alg)
{
    cbor_item_t **v;
    cbor_item_t *type, *a;
    int64_t n;

    *alg = 0;
    if (!cbor_isa_array(params) || !cbor_array_is_definite(params))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    v = cbor_array_handle(params);
    for (size_t i = 0; i < cbor_array_size(params); i++) {
        if (!cbor_isa_map(v[i]))
            return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
        type = kc_cbor_map_get_str(v[i], "type");
        a = kc_cbor_map_get_str(v[i], "alg");
        if (type == NULL || a == NULL)
            return KC_CTAP2_ERR_MISSING_PARAMETER;
        if (!kc_cbor_is_text(type) || !cbor_is_int(a))
            return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
        /* an int beyond int64 is no algorithm we know: skipped, not an error */
        if (*alg == 0 && kc_cbor_text_eq(type, "public-key") && kc_cbor_int(a, &n) == KC_OK &&
            (n == KC_COSE_ES256 || n == KC_COSE_EDDSA))
            *alg = (int)n;
    }
    return *alg != 0 ? KC_CTAP2_OK : KC_CTAP2_ERR_UNSUPPORTED_ALGORITHM;
}

/* pinUvAuthParam of zero length: the platform asks which card to use. */
static uint8_t empty_pin_auth(struct vc_card *c, vc_presence_fn up, void *ctx)
{
    uint8_t st = vc_up_status(vc_ask_presence(c, up, ctx));

    if (st != KC_CTAP2_OK)
        return st;
    return c->pin_set ? KC_CTAP2_ERR_PIN_INVALID : KC_CTAP2_ERR_PIN_NOT_SET;
}

/* A pinUvAuthParam's first checks (6.1.2 steps 2-3, 6.2.2): a zero-length
 * one is the platform asking which card to use and ends the request (the
 * status is never KC_CTAP2_OK); otherwise its protocol must be one we have. */
static uint8_t pin_auth_preflight(struct vc_card *c, const cbor_item_t *pin_auth,
                                  const cbor_item_t *pin_proto, vc_presence_fn up, void *ctx)
{
    int proto;

    if (pin_auth == NULL)
        return KC_CTAP2_OK;
    if (cbor_bytestring_length(pin_auth) == 0)
        return empty_pin_auth(c, up, ctx);
    /* a card without PIN protocols (CTAP 2.0 5.1 step 5) */
    if (c->pers->pin_protocols[0] == 0)
        return KC_CTAP2_ERR_PIN_AUTH_INVALID;
    return vc_pin_proto_check(c, pin_proto, &proto);
}

/* User verification: a pinUvAuthParam verified over cdh for perm and rp_id,
 * or options.uv with built-in UV configured (*uv set); options.uv without
 * built-in UV and without pinUvAuthParam is an invalid option. */
static uint8_t check_uv(struct vc_card *c, const cbor_item_t *pin_auth,
                        const cbor_item_t *pin_proto, const struct opts *o, const cbor_item_t *cdh,
                        uint8_t perm, const char *rp_id, bool *uv)
{
    uint8_t st;

    bool builtin = vc_builtin_uv(c);

    *uv = false;
    if (pin_auth == NULL && o->uv && !builtin)
        /* a CTAP 2.0 card with a PIN wants it instead (2.0's PIN_REQUIRED is
         * 2.1's PUAT_REQUIRED, both 0x36) */
        return vc_uv_policy(c) == VC_UV_POLICY_CTAP20 && c->pin_set ? KC_CTAP2_ERR_PUAT_REQUIRED
                                                                    : KC_CTAP2_ERR_INVALID_OPTION;
    if (pin_auth != NULL) {
        if ((st = vc_pin_check_param(c, pin_auth, pin_proto, cbor_bytestring_handle(cdh), perm,
                                     rp_id)) != KC_CTAP2_OK)
            return st;
        *uv = true;
    } else if (o->uv && builtin) {
        *uv = true;
    }
    return KC_CTAP2_OK;
}

/* A makeCredential without UV: the personality's policy decides. */
static uint8_t mc_without_uv(const struct vc_card *c, const struct opts *o)
{
    bool is_protected = c->pin_set || vc_builtin_uv(c);

    switch (vc_uv_policy(c)) {
    case VC_UV_POLICY_UV_NOT_RQD:
        return c->pin_set && o->rk ? KC_CTAP2_ERR_PUAT_REQUIRED : KC_CTAP2_OK;
    case VC_UV_POLICY_CTAP20: /* CTAP2_ERR_PIN_REQUIRED, 0x36 */
        return c->pin_set ? KC_CTAP2_ERR_PUAT_REQUIRED : KC_CTAP2_OK;
    case VC_UV_POLICY_UV_RQD:
        return is_protected ? KC_CTAP2_ERR_PUAT_REQUIRED : KC_CTAP2_OK;
    case VC_UV_POLICY_ALWAYS_UV:
        /* unprotected: PUAT_REQUIRED tells the platform to set a PIN first */
        return c->pers->opt_client_pin || is_protected ? KC_CTAP2_ERR_PUAT_REQUIRED
                                                       : KC_CTAP2_ERR_OPERATION_DENIED;
    }
    return KC_CTAP2_ERR_PUAT_REQUIRED;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* makeCredential's authData extensions, in canonical order: credBlob,
 * credProtect, hmac-secret, minPinLength. */
static cbor_item_t *ext_map(int cred_protect, bool hmac_secret, const struct vc_ext_mc *mx)
{
    cbor_item_t *m = cbor_new_definite_map(4);

    if (m == NULL)
        return NULL;
    if ((mx->cred_blob >= 0 &&
         kc_cbor_map_add_str(m, "credBlob", cbor_build_bool(mx->cred_blob == 1)) != KC_OK) ||
        (cred_protect &&
         kc_cbor_map_add_str(m, "credProtect", kc_cbor_new_int(cred_protect)) != KC_OK) ||
        (hmac_secret && kc_cbor_map_add_str(m, "hmac-secret", cbor_build_bool(true)) != KC_OK) ||
        (mx->min_pin >= 0 &&
         kc_cbor_map_add_str(m, "minPinLength", kc_cbor_new_int(mx->min_pin)) != KC_OK)) {
        cbor_decref(&m);
        return NULL;
    }
    return m;
}

static cbor_item_t *cred_descriptor(const uint8_t *id, size_t len)
{
    cbor_item_t *m = cbor_new_definite_map(2);

    if (m == NULL)
        return NULL;
    if (kc_cbor_map_add_str(m, "id", kc_cbor_new_bytes(id, len)) != KC_OK ||
        kc_cbor_map_add_str(m, "type", kc_cbor_new_text("public-key")) != KC_OK) {
        cbor_decref(&m);
        return NULL;
    }
    return m;
}

/* authData = rpIdHash || flags || signCount || [attestedCredData] || [ext] */
static int make_auth_data(struct vc_card *c, const uint8_t rp_id_hash[32], uint8_t flags,
                          uint32_t count, const struct vc_cred *cr, EVP_PKEY *pub,
                          const cbor_item_t *ext_item, uint8_t *ad, size_t *ad_len)
{
    uint8_t *cose = NULL, *ext = NULL;
    size_t cose_len = 0, ext_len = 0, n = 37;
    int rc = -1;

    memcpy(ad, rp_id_hash, 32);
    put_be32(ad + 33, count);
    if (cr != NULL) {
        flags |= VC_AUTH_FLAG_AT;
        if (kc_cose_encode(pub, cr->alg, &cose, &cose_len) != 0)
            goto out;
        if (n + 16 + 2 + VC_CRED_ID_LEN + cose_len > AUTHDATA_MAX)
            goto out;
        memcpy(ad + n, c->cfg.aaguid, 16);
        n += 16;
        ad[n++] = 0;
        ad[n++] = VC_CRED_ID_LEN;
        memcpy(ad + n, cr->id, VC_CRED_ID_LEN);
        n += VC_CRED_ID_LEN;
        memcpy(ad + n, cose, cose_len);
        n += cose_len;
    }
    if (ext_item != NULL) {
        flags |= VC_AUTH_FLAG_ED;
        if (kc_cbor_serialize(ext_item, &ext, &ext_len) != KC_OK || n + ext_len > AUTHDATA_MAX)
            goto out;
        memcpy(ad + n, ext, ext_len);
        n += ext_len;
    }
    ad[32] = flags;
    *ad_len = n;
    rc = 0;
out:
    free(ext);
    free(cose);
    return rc;
}

static cbor_item_t *att_stmt(struct vc_card *c, EVP_PKEY *cred_key, int alg, const uint8_t *ad,
                             size_t ad_len, const uint8_t cdh[32], const char **fmt)
{
    uint8_t sig[SIG_MAX];
    size_t sig_len = sizeof(sig);
    cbor_item_t *m, *x5c;
    bool batch = c->cfg.attestation == VC_ATT_PACKED_BATCH;

    if (c->cfg.attestation == VC_ATT_NONE) {
        *fmt = "none";
        return cbor_new_definite_map(0);
    }
    *fmt = "packed";
    if (vc_sign(c, batch ? c->att_key : cred_key, batch ? KC_COSE_ES256 : alg, ad, ad_len, cdh, 32,
                sig, &sig_len) != 0)
        return NULL;
    if ((m = cbor_new_definite_map(batch ? 3 : 2)) == NULL)
        return NULL;
    if (kc_cbor_map_add_str(m, "alg", kc_cbor_new_int(batch ? KC_COSE_ES256 : alg)) != KC_OK ||
        kc_cbor_map_add_str(m, "sig", kc_cbor_new_bytes(sig, sig_len)) != KC_OK)
        goto fail;
    if (batch) {
        if ((x5c = cbor_new_definite_array(1)) == NULL)
            goto fail;
        if (kc_cbor_array_push(x5c, kc_cbor_new_bytes(c->att_cert, c->att_cert_len)) != KC_OK ||
            kc_cbor_map_add_str(m, "x5c", x5c) != KC_OK) {
            goto fail;
        }
    }
    return m;
fail:
    cbor_decref(&m);
    return NULL;
}

static uint8_t parse_user(const cbor_item_t *user, struct vc_rk *rk)
{
    cbor_item_t *id, *v;
    uint8_t st;

    if (!cbor_isa_map(user))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    if ((id = kc_cbor_map_get_str(user, "id")) == NULL)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (!kc_cbor_is_bytes(id))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    if (cbor_bytestring_length(id) > VC_USER_ID_MAX)
        return KC_CTAP1_ERR_INVALID_LENGTH;
    if ((st = opt_text(user, "name")) != KC_CTAP2_OK ||
        (st = opt_text(user, "displayName")) != KC_CTAP2_OK ||
        (st = opt_text(user, "icon")) != KC_CTAP2_OK)
        return st;
    rk->user_id_len = cbor_bytestring_length(id);
    if (rk->user_id_len)
        memcpy(rk->user_id, cbor_bytestring_handle(id), rk->user_id_len);
    if ((v = kc_cbor_map_get_str(user, "name")) != NULL)
        vc_item_text_copy(v, rk->user_name, sizeof(rk->user_name));
    if ((v = kc_cbor_map_get_str(user, "displayName")) != NULL)
        vc_item_text_copy(v, rk->display_name, sizeof(rk->display_name));
    return KC_CTAP2_OK;
}

/* Where rk goes: the slot of the credential with the same rp and user id,
 * which the new one replaces, else the next free one; VC_MAX_RK when full. */
static size_t rk_slot(const struct vc_card *c, const struct vc_rk *rk)
{
    size_t slot = c->n_rk;

    for (size_t i = 0; i < c->n_rk; i++)
        if (memcmp(c->rks[i].rp_id_hash, rk->rp_id_hash, 32) == 0 &&
            c->rks[i].user_id_len == rk->user_id_len &&
            memcmp(c->rks[i].user_id, rk->user_id, rk->user_id_len) == 0)
            slot = i;
    return slot;
}

static uint8_t store_rk(struct vc_card *c, const struct vc_rk *rk)
{
    size_t slot = rk_slot(c, rk);

    if (slot == VC_MAX_RK)
        return KC_CTAP2_ERR_KEY_STORE_FULL;
    c->rks[slot] = *rk;
    c->rks[slot].seq = ++c->next_seq;
    if (slot == c->n_rk)
        c->n_rk++;
    return KC_CTAP2_OK;
}

/* 0 when d is a usable descriptor (already checked by check_descriptor_list)
 * naming a credential of this card for this rp; cr is then filled. */
static const struct vc_rk *find_rk(const struct vc_card *c, const uint8_t *id);

/* The credential a descriptor names, or -1. A resident credential's id
 * still opens after the credential was deleted (or overwritten): it is gone
 * all the same, as on a real card, unless it is still in the table. */
static int open_descriptor(const struct vc_card *c, const cbor_item_t *d,
                           const uint8_t rp_id_hash[32], struct vc_cred *cr)
{
    cbor_item_t *id;
    bool usable;

    if (check_descriptor(d, &usable) != KC_CTAP2_OK || !usable)
        return -1;
    id = kc_cbor_map_get_str(d, "id");
    if (vc_cred_open(c, cbor_bytestring_handle(id), cbor_bytestring_length(id), rp_id_hash, cr) !=
        0)
        return -1;
    if ((cr->flags & VC_CRED_FLAG_RK) != 0 && find_rk(c, cr->id) == NULL) {
        OPENSSL_cleanse(cr, sizeof(*cr));
        return -1;
    }
    return 0;
}

static uint8_t check_exclude(struct vc_card *c, const cbor_item_t *list,
                             const uint8_t rp_id_hash[32], vc_presence_fn up, void *ctx)
{
    cbor_item_t **v;
    struct vc_cred cr;
    enum vc_up_result r;

    if (list == NULL)
        return KC_CTAP2_OK;
    v = cbor_array_handle(list);
    for (size_t i = 0; i < cbor_array_size(list); i++) {
        if (open_descriptor(c, v[i], rp_id_hash, &cr) != 0)
            continue;
        OPENSSL_cleanse(&cr, sizeof(cr));
        r = vc_ask_presence(c, up, ctx);
        if (r == VC_UP_TIMEOUT || r == VC_UP_CANCELLED)
            return vc_up_status(r);
        return KC_CTAP2_ERR_CREDENTIAL_EXCLUDED;
    }
    return KC_CTAP2_OK;
}

struct mc_req {
    cbor_item_t *cdh, *rp, *user, *params, *exclude, *ext, *options, *pin_auth, *pin_proto;
    cbor_item_t *ea; /* enterpriseAttestation (0x0A) */
};

static uint8_t mc_fields(const cbor_item_t *m, struct mc_req *r)
{
    uint8_t st;

    r->cdh = kc_cbor_map_get_int(m, 1);
    r->rp = kc_cbor_map_get_int(m, 2);
    r->user = kc_cbor_map_get_int(m, 3);
    r->params = kc_cbor_map_get_int(m, 4);
    r->exclude = kc_cbor_map_get_int(m, 5);
    r->ext = kc_cbor_map_get_int(m, 6);
    r->options = kc_cbor_map_get_int(m, 7);
    r->pin_auth = kc_cbor_map_get_int(m, 8);
    r->pin_proto = kc_cbor_map_get_int(m, 9);
    r->ea = kc_cbor_map_get_int(m, 10);
    if (r->cdh == NULL || r->rp == NULL || r->user == NULL || r->params == NULL)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (!kc_cbor_is_bytes(r->cdh) || !cbor_isa_map(r->rp) ||
        (r->ext != NULL && !cbor_isa_map(r->ext)) ||
        (r->pin_auth != NULL && !kc_cbor_is_bytes(r->pin_auth)) ||
        (r->pin_proto != NULL && !cbor_isa_uint(r->pin_proto)))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    if (cbor_bytestring_length(r->cdh) != 32)
        return KC_CTAP1_ERR_INVALID_LENGTH;
    if ((st = check_descriptor_list(r->exclude)) != KC_CTAP2_OK)
        return st;
    return KC_CTAP2_OK;
}

uint8_t vc_make_credential(struct vc_card *c, const uint8_t *p, size_t len, uint8_t *resp,
                           size_t cap, size_t *resp_len, vc_presence_fn up, void *ctx)
{
    cbor_item_t *req = NULL, *id, *v, *stmt = NULL, *out = NULL, *ext = NULL;
    struct mc_req r;
    struct opts o;
    struct vc_rk rk;
    struct vc_cred cr;
    EVP_PKEY *key = NULL;
    uint8_t rp_id_hash[32], ad[AUTHDATA_MAX], flags = 0, st;
    size_t ad_len = 0;
    int alg, cred_protect = 0;
    bool hmac = false, uv = false;
    bool ep_att = false; /* an enterprise attestation given (card_config.c) */
    struct vc_ext_mc mx; /* credBlob, largeBlobKey, minPinLength (card_largeblob.c) */
    uint8_t lbk[32];
    const char *fmt = NULL;
    int64_t n;

    memset(&rk, 0, sizeof(rk));
    memset(&cr, 0, sizeof(cr));
    if ((st = vc_parse_request(p, len, &req)) != KC_CTAP2_OK ||
        (st = mc_fields(req, &r)) != KC_CTAP2_OK)
        goto out;
    /* rp */
    if ((id = kc_cbor_map_get_str(r.rp, "id")) == NULL) {
        st = KC_CTAP2_ERR_MISSING_PARAMETER;
        goto out;
    }
    if (!kc_cbor_is_text(id) || (st = opt_text(r.rp, "name")) != KC_CTAP2_OK ||
        (st = opt_text(r.rp, "icon")) != KC_CTAP2_OK) {
        st = KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
        goto out;
    }
    if (cbor_string_length(id) > VC_RP_ID_MAX) {
        st = KC_CTAP1_ERR_INVALID_LENGTH;
        goto out;
    }
    vc_item_text_copy(id, rk.rp_id, sizeof(rk.rp_id));
    if (vc_sha256(cbor_string_handle(id), cbor_string_length(id), rp_id_hash) != 0) {
        st = KC_CTAP1_ERR_OTHER;
        goto out;
    }
    memcpy(rk.rp_id_hash, rp_id_hash, 32);
    if ((st = parse_user(r.user, &rk)) != KC_CTAP2_OK ||
        (st = pick_alg(r.params, &alg)) != KC_CTAP2_OK ||
        (st = parse_opts(r.options, &o)) != KC_CTAP2_OK)
        goto out;
    /* extensions: unknown ones are ignored, known ones type-checked */
    if ((v = kc_cbor_map_get_str(r.ext, "credProtect")) != NULL) {
        if (!cbor_is_int(v)) {
            st = KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
            goto out;
        }
        if (kc_cbor_int(v, &n) == KC_OK && n >= 1 && n <= 3)
            cred_protect = (int)n;
    }
    if ((v = kc_cbor_map_get_str(r.ext, "hmac-secret")) != NULL) {
        if (!kc_cbor_is_bool(v)) {
            st = KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
            goto out;
        }
        hmac = cbor_get_bool(v);
    }
    if ((st = vc_ext_mc_parse(c, r.ext, o.rk, rk.rp_id, &mx)) != KC_CTAP2_OK)
        goto out;
    if ((st = pin_auth_preflight(c, r.pin_auth, r.pin_proto, up, ctx)) != KC_CTAP2_OK)
        goto out;
    if (o.has_up && !o.up) {
        st = KC_CTAP2_ERR_INVALID_OPTION;
        goto out;
    }
    if ((st = vc_enterprise_attestation(c, r.ea, rk.rp_id, &ep_att)) != KC_CTAP2_OK)
        goto out;
    if ((st = check_uv(c, r.pin_auth, r.pin_proto, &o, r.cdh, KC_PERM_MC, rk.rp_id, &uv)) !=
        KC_CTAP2_OK)
        goto out;
    if (uv)
        flags |= VC_AUTH_FLAG_UV;
    else if ((st = mc_without_uv(c, &o)) != KC_CTAP2_OK)
        goto out;
    if ((st = check_exclude(c, r.exclude, rp_id_hash, up, ctx)) != KC_CTAP2_OK)
        goto out;
    if ((st = vc_up_status(vc_ask_presence(c, up, ctx))) != KC_CTAP2_OK)
        goto out;
    flags |= VC_AUTH_FLAG_UP;
    if (o.rk && rk_slot(c, &rk) == VC_MAX_RK) {
        st = KC_CTAP2_ERR_KEY_STORE_FULL;
        goto out;
    }
    if ((cred_protect || hmac || mx.cred_blob >= 0 || mx.min_pin >= 0) &&
        (ext = ext_map(cred_protect, hmac, &mx)) == NULL) {
        st = KC_CTAP1_ERR_OTHER;
        goto out;
    }
    if (vc_cred_new(c, alg, cred_protect,
                    (uint8_t)((hmac ? VC_CRED_FLAG_HMAC_SECRET : 0) | (o.rk ? VC_CRED_FLAG_RK : 0)),
                    rp_id_hash, &cr, &key) != 0 ||
        make_auth_data(c, rp_id_hash, flags, 0, &cr, key, ext, ad, &ad_len) != 0 ||
        (stmt = att_stmt(c, key, alg, ad, ad_len, cbor_bytestring_handle(r.cdh), &fmt)) == NULL ||
        (out = cbor_new_definite_map(5)) == NULL ||
        kc_cbor_map_add_int(out, 1, kc_cbor_new_text(fmt)) != KC_OK ||
        kc_cbor_map_add_int(out, 2, kc_cbor_new_bytes(ad, ad_len)) != KC_OK ||
        kc_cbor_map_add_int(out, 3, cbor_incref(stmt)) != KC_OK) {
        st = KC_CTAP1_ERR_OTHER;
        goto out;
    }
    if (ep_att && kc_cbor_map_add_int(out, 4, cbor_build_bool(true)) != KC_OK) { /* epAtt */
        st = KC_CTAP1_ERR_OTHER;
        goto out;
    }
    if (mx.large_blob_key && (vc_large_blob_key(c, cr.id, lbk) != 0 ||
                              kc_cbor_map_add_int(out, 5, kc_cbor_new_bytes(lbk, 32)) != KC_OK)) {
        st = KC_CTAP1_ERR_OTHER;
        goto out;
    }
    if (o.rk) {
        memcpy(rk.id, cr.id, VC_CRED_ID_LEN);
        rk.cred_protect = cred_protect;
        if (mx.cred_blob == 1) {
            memcpy(rk.cred_blob, mx.blob, mx.blob_len);
            rk.cred_blob_len = mx.blob_len;
        }
        if ((st = store_rk(c, &rk)) != KC_CTAP2_OK)
            goto out;
    }
    vc_counter_set(c, cr.id, VC_CRED_ID_LEN, 0);
    if (vc_persist(c) != 0) {
        st = KC_CTAP1_ERR_OTHER;
        goto out;
    }
    st = vc_reply_item(out, resp, cap, resp_len);
out:
    OPENSSL_cleanse(&cr, sizeof(cr));
    OPENSSL_cleanse(lbk, sizeof(lbk));
    EVP_PKEY_free(key);
    if (ext != NULL)
        cbor_decref(&ext);
    if (stmt != NULL)
        cbor_decref(&stmt);
    if (out != NULL)
        cbor_decref(&out);
    if (req != NULL)
        cbor_decref(&req);
    return st;
}

static cbor_item_t *user_entity(const struct vc_rk *rk)
{
    size_t n = 1 + (rk->user_name[0] ? 1 : 0) + (rk->display_name[0] ? 1 : 0);
    cbor_item_t *m = cbor_new_definite_map(n);

    if (m == NULL)
        return NULL;
    if (kc_cbor_map_add_str(m, "id", kc_cbor_new_bytes(rk->user_id, rk->user_id_len)) != KC_OK ||
        (rk->user_name[0] &&
         kc_cbor_map_add_str(m, "name", kc_cbor_new_text(rk->user_name)) != KC_OK) ||
        (rk->display_name[0] &&
         kc_cbor_map_add_str(m, "displayName", kc_cbor_new_text(rk->display_name)) != KC_OK)) {
        cbor_decref(&m);
        return NULL;
    }
    return m;
}

/* One assertion with credential cr; rk (may be NULL) gives the user entity;
 * number > 0 adds numberOfCredentials. */
static uint8_t assertion(struct vc_card *c, const struct vc_cred *cr, const uint8_t rp_id_hash[32],
                         const struct vc_rk *rk, uint8_t flags, const uint8_t cdh[32],
                         size_t number, const struct vc_hmac_in *hs, const struct vc_ext_ga *gx,
                         uint8_t *resp, size_t cap, size_t *resp_len)
{
    uint8_t ad[AUTHDATA_MAX], sig[SIG_MAX], st = KC_CTAP1_ERR_OTHER, hout[80], lbk[32];
    /* credBlob and largeBlobKey belong to resident credentials (card_largeblob.c) */
    bool want_blob = gx != NULL && gx->cred_blob && rk != NULL;
    bool want_lbk = gx != NULL && gx->large_blob_key && rk != NULL;
    size_t ad_len = 0, sig_len = sizeof(sig), hlen = 0;
    EVP_PKEY *key = vc_cred_pkey(c, cr);
    cbor_item_t *m = NULL, *ext = NULL;
    uint32_t count;

    if (key == NULL)
        return KC_CTAP1_ERR_OTHER;
    /* authData extensions in canonical order: credBlob, then hmac-secret */
    if (want_blob &&
        ((ext = cbor_new_definite_map(2)) == NULL ||
         kc_cbor_map_add_str(ext, "credBlob",
                             kc_cbor_new_bytes(rk->cred_blob, rk->cred_blob_len)) != KC_OK))
        goto out;
    /* hmac-secret answers only for credentials made with it */
    if (hs != NULL && hs->present && (cr->flags & VC_CRED_FLAG_HMAC_SECRET)) {
        if (vc_hmac_secret_output(c, hs, cr, (flags & VC_AUTH_FLAG_UV) != 0, hout, sizeof(hout),
                                  &hlen) != 0 ||
            (ext == NULL && (ext = cbor_new_definite_map(1)) == NULL) ||
            kc_cbor_map_add_str(ext, "hmac-secret", kc_cbor_new_bytes(hout, hlen)) != KC_OK)
            goto out;
    }
    count = vc_counter_next(c, cr->id, VC_CRED_ID_LEN);
    if (make_auth_data(c, rp_id_hash, flags, count, NULL, NULL, ext, ad, &ad_len) != 0 ||
        vc_sign(c, key, cr->alg, ad, ad_len, cdh, 32, sig, &sig_len) != 0)
        goto out;
    if ((m = cbor_new_definite_map(3 + (rk ? 1 : 0) + (number ? 1 : 0) + (want_lbk ? 1 : 0))) ==
            NULL ||
        kc_cbor_map_add_int(m, 1, cred_descriptor(cr->id, VC_CRED_ID_LEN)) != KC_OK ||
        kc_cbor_map_add_int(m, 2, kc_cbor_new_bytes(ad, ad_len)) != KC_OK ||
        kc_cbor_map_add_int(m, 3, kc_cbor_new_bytes(sig, sig_len)) != KC_OK ||
        (rk && kc_cbor_map_add_int(m, 4, user_entity(rk)) != KC_OK) ||
        (number && kc_cbor_map_add_int(m, 5, kc_cbor_new_int((int64_t)number)) != KC_OK))
        goto out;
    if (want_lbk && (vc_large_blob_key(c, cr->id, lbk) != 0 ||
                     kc_cbor_map_add_int(m, 7, kc_cbor_new_bytes(lbk, 32)) != KC_OK))
        goto out;
    if (vc_persist(c) != 0)
        goto out;
    st = vc_reply_item(m, resp, cap, resp_len);
out:
    OPENSSL_cleanse(hout, sizeof(hout));
    OPENSSL_cleanse(lbk, sizeof(lbk));
    if (ext != NULL)
        cbor_decref(&ext);
    if (m != NULL)
        cbor_decref(&m);
    EVP_PKEY_free(key);
    return st;
}

static const struct vc_rk *find_rk(const struct vc_card *c, const uint8_t *id)
{
    for (size_t i = 0; i < c->n_rk; i++)
        if (memcmp(c->rks[i].id, id, VC_CRED_ID_LEN) == 0)
            return &c->rks[i];
    return NULL;
}

static bool cred_visible(int cred_protect, bool uv, bool by_allow_list)
{
    if (cred_protect == 3)
        return uv;
    if (cred_protect == 2)
        return uv || by_allow_list;
    return true;
}

struct ga_req {
    cbor_item_t *rp_id, *cdh, *allow, *ext, *options, *pin_auth, *pin_proto;
};

static uint8_t ga_fields(const cbor_item_t *m, struct ga_req *r)
{
    r->rp_id = kc_cbor_map_get_int(m, 1);
    r->cdh = kc_cbor_map_get_int(m, 2);
    r->allow = kc_cbor_map_get_int(m, 3);
    r->ext = kc_cbor_map_get_int(m, 4);
    r->options = kc_cbor_map_get_int(m, 5);
    r->pin_auth = kc_cbor_map_get_int(m, 6);
    r->pin_proto = kc_cbor_map_get_int(m, 7);
    if (r->rp_id == NULL || r->cdh == NULL)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (!kc_cbor_is_text(r->rp_id) || !kc_cbor_is_bytes(r->cdh) ||
        (r->ext != NULL && !cbor_isa_map(r->ext)) ||
        (r->pin_auth != NULL && !kc_cbor_is_bytes(r->pin_auth)) ||
        (r->pin_proto != NULL && !cbor_isa_uint(r->pin_proto)))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    if (cbor_bytestring_length(r->cdh) != 32 || cbor_string_length(r->rp_id) > VC_RP_ID_MAX)
        return KC_CTAP1_ERR_INVALID_LENGTH;
    return check_descriptor_list(r->allow);
}

uint8_t vc_get_assertion(struct vc_card *c, const uint8_t *p, size_t len, uint8_t *resp, size_t cap,
                         size_t *resp_len, vc_presence_fn up, void *ctx)
{
    cbor_item_t *req = NULL, **v;
    struct ga_req r;
    struct opts o;
    struct vc_cred cr;
    const struct vc_rk *rk = NULL;
    char rp_id[VC_RP_ID_MAX + 1];
    uint8_t rp_id_hash[32], flags = 0, st;
    bool found = false, uv = false;
    size_t nfound = 0, idx[VC_MAX_RK];
    struct vc_hmac_in hs;
    struct vc_ext_ga gx;

    memset(&cr, 0, sizeof(cr));
    memset(&hs, 0, sizeof(hs));
    memset(&gx, 0, sizeof(gx));
    if ((st = vc_parse_request(p, len, &req)) != KC_CTAP2_OK ||
        (st = ga_fields(req, &r)) != KC_CTAP2_OK || (st = parse_opts(r.options, &o)) != KC_CTAP2_OK)
        goto out;
    vc_item_text_copy(r.rp_id, rp_id, sizeof(rp_id));
    if (vc_sha256(cbor_string_handle(r.rp_id), cbor_string_length(r.rp_id), rp_id_hash) != 0) {
        st = KC_CTAP1_ERR_OTHER;
        goto out;
    }
    if ((st = pin_auth_preflight(c, r.pin_auth, r.pin_proto, up, ctx)) != KC_CTAP2_OK)
        goto out;
    if ((st = vc_hmac_secret_input(c, kc_cbor_map_get_str(r.ext, "hmac-secret"), &hs)) !=
            KC_CTAP2_OK ||
        (st = vc_ext_ga_parse(c, r.ext, &gx)) != KC_CTAP2_OK)
        goto out;
    if (kc_cbor_map_get_str(r.options, "rk") != NULL) {
        st = KC_CTAP2_ERR_UNSUPPORTED_OPTION;
        goto out;
    }
    if ((st = check_uv(c, r.pin_auth, r.pin_proto, &o, r.cdh, KC_PERM_GA, rp_id, &uv)) !=
        KC_CTAP2_OK)
        goto out;
    if (!uv && o.up && vc_uv_policy(c) == VC_UV_POLICY_ALWAYS_UV) {
        st = KC_CTAP2_ERR_PUAT_REQUIRED;
        goto out;
    }
    if (r.allow != NULL && cbor_array_size(r.allow) > 0) {
        v = cbor_array_handle(r.allow);
        for (size_t i = 0; i < cbor_array_size(r.allow) && !found; i++) {
            if (open_descriptor(c, v[i], rp_id_hash, &cr) != 0)
                continue;
            if (cred_visible(cr.cred_protect, uv, true))
                found = true;
            else
                OPENSSL_cleanse(&cr, sizeof(cr));
        }
        if (found)
            rk = find_rk(c, cr.id);
    } else {
        for (size_t i = 0; i < c->n_rk; i++)
            if (memcmp(c->rks[i].rp_id_hash, rp_id_hash, 32) == 0 &&
                cred_visible(c->rks[i].cred_protect, uv, false))
                idx[nfound++] = i;
        /* newest first */
        for (size_t i = 1; i < nfound; i++)
            for (size_t j = i; j > 0 && c->rks[idx[j]].seq > c->rks[idx[j - 1]].seq; j--) {
                size_t t = idx[j];
                idx[j] = idx[j - 1];
                idx[j - 1] = t;
            }
    }
    if (!found && nfound == 0) {
        st = KC_CTAP2_ERR_NO_CREDENTIALS;
        goto out;
    }
    if (o.up) {
        if ((st = vc_up_status(vc_ask_presence(c, up, ctx))) != KC_CTAP2_OK)
            goto out;
        flags |= VC_AUTH_FLAG_UP;
    }
    if (uv)
        flags |= VC_AUTH_FLAG_UV;
    if (!found) {
        rk = &c->rks[idx[0]];
        if (vc_cred_open(c, rk->id, VC_CRED_ID_LEN, rp_id_hash, &cr) != 0) {
            st = KC_CTAP2_ERR_INVALID_CREDENTIAL;
            goto out;
        }
    }
    st = assertion(c, &cr, rp_id_hash, rk, flags, cbor_bytestring_handle(r.cdh),
                   nfound > 1 ? nfound : 0, &hs, &gx, resp, cap, resp_len);
    if (st == KC_CTAP2_OK && nfound > 1) {
        c->pending.active = true;
        memcpy(c->pending.idx, idx, nfound * sizeof(idx[0]));
        c->pending.n = nfound;
        c->pending.next = 1;
        memcpy(c->pending.cdh, cbor_bytestring_handle(r.cdh), 32);
        c->pending.flags = flags;
        c->pending.ext_cred_blob = gx.cred_blob;
        c->pending.ext_large_blob_key = gx.large_blob_key;
        c->pending.started_ms = kcu_now_ms();
    }
out:
    OPENSSL_cleanse(&cr, sizeof(cr));
    OPENSSL_cleanse(&hs, sizeof(hs));
    if (req != NULL)
        cbor_decref(&req);
    return st;
}

uint8_t vc_get_next_assertion(struct vc_card *c, uint8_t *resp, size_t cap, size_t *resp_len)
{
    struct vc_pending *pd = &c->pending;
    const struct vc_rk *rk;
    struct vc_cred cr;
    struct vc_ext_ga gx;
    uint8_t st;

    if (!pd->active || pd->next >= pd->n ||
        (long long)(kcu_now_ms() - pd->started_ms) > VC_NEXT_ASSERTION_MS) {
        pd->active = false;
        return KC_CTAP2_ERR_NOT_ALLOWED;
    }
    if (pd->idx[pd->next] >= c->n_rk) {
        pd->active = false;
        return KC_CTAP2_ERR_NOT_ALLOWED;
    }
    rk = &c->rks[pd->idx[pd->next++]];
    if (vc_cred_open(c, rk->id, VC_CRED_ID_LEN, rk->rp_id_hash, &cr) != 0)
        return KC_CTAP2_ERR_INVALID_CREDENTIAL;
    gx.cred_blob = pd->ext_cred_blob;
    gx.large_blob_key = pd->ext_large_blob_key;
    st = assertion(c, &cr, rk->rp_id_hash, rk, pd->flags, pd->cdh, 0, NULL, &gx, resp, cap,
                   resp_len);
    OPENSSL_cleanse(&cr, sizeof(cr));
    pd->started_ms = kcu_now_ms(); /* the timer restarts with each response */
    if (pd->next >= pd->n)
        pd->active = false;
    return st;
}
