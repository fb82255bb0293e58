/* authenticatorConfig of the virtual card (CTAP 2.1, 6.11): enable
 * enterprise attestation, toggle alwaysUv and setMinPINLength (with the
 * relying parties allowed to see it and a forced PIN change), guarded by a
 * pinUvAuthToken with the acfg permission. Also what the rest of the card
 * reads from these settings (the UV policy, the minimum PIN length, the
 * enterpriseAttestation of makeCredential) and their place in --state.
 *
 * Only personalities with authnr_cfg offer the command; for the others the
 * settings are never consulted, so their behaviour is the personality's. */
#include <string.h>

#include "ctaphid/pin_proto.h"
#include "ctaphid/status.h"
#include "harness/vcard/card_int.h"

#define CFG_ENABLE_EP 0x01
#define CFG_TOGGLE_ALWAYS_UV 0x02
#define CFG_SET_MIN_PIN_LENGTH 0x03

/* enterpriseAttestation 1 (vendor-facilitated) is given only to the relying
 * parties the vendor listed in the card; vcard's list is this one id. */
static const char *const vendor_ep_rp_ids[] = {"enterprise.kcard.test"};

bool vc_config_offered(const struct vc_card *c)
{
    return c->pers->authnr_cfg;
}

bool vc_always_uv(const struct vc_card *c)
{
    if (vc_config_offered(c) && c->always_uv_set)
        return c->always_uv;
    return c->pers->opt_always_uv == VC_OPT_TRUE;
}

enum vc_uv_policy vc_uv_policy(const struct vc_card *c)
{
    if (!vc_config_offered(c))
        return c->pers->uv_policy;
    if (vc_always_uv(c))
        return VC_UV_POLICY_ALWAYS_UV;
    /* a card that shipped with alwaysUv and had it toggled off behaves as a
     * 2.1 card with makeCredUvNotRqd, which its getInfo then says */
    return c->pers->uv_policy == VC_UV_POLICY_ALWAYS_UV ? VC_UV_POLICY_UV_NOT_RQD
                                                        : c->pers->uv_policy;
}

size_t vc_min_pin_len(const struct vc_card *c)
{
    size_t m = VC_PIN_MIN_LEN;

    if (c->pers->min_pin_length > 0 && (size_t)c->pers->min_pin_length > m)
        m = (size_t)c->pers->min_pin_length;
    if (vc_config_offered(c) && c->min_pin_len > 0 && (size_t)c->min_pin_len > m)
        m = (size_t)c->min_pin_len;
    return m;
}

bool vc_min_pin_rp_allowed(const struct vc_card *c, const char *rp_id)
{
    if (rp_id == NULL || !vc_config_offered(c))
        return false;
    for (size_t i = 0; i < c->n_min_pin_rpids; i++)
        if (strcmp(c->min_pin_rpids[i], rp_id) == 0)
            return true;
    return false;
}

size_t vc_utf8_code_points(const uint8_t *p, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += (p[i] & 0xc0) != 0x80;
    return n;
}

void vc_config_reset(struct vc_card *c)
{
    c->min_pin_len = 0;
    c->always_uv = false;
    c->always_uv_set = false;
    c->ep = false;
    c->n_min_pin_rpids = 0;
    memset(c->min_pin_rpids, 0, sizeof(c->min_pin_rpids));
    c->pin_code_points = 0;
}

uint8_t vc_enterprise_attestation(const struct vc_card *c, const cbor_item_t *ea, const char *rp_id,
                                  bool *ep_att)
{
    uint64_t v;

    *ep_att = false;
    if (ea == NULL)
        return KC_CTAP2_OK;
    if (!cbor_isa_uint(ea))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    /* not capable, or capable but not enabled (6.1.2 step 9) */
    if (!vc_config_offered(c) || !c->ep)
        return KC_CTAP1_ERR_INVALID_PARAMETER;
    v = cbor_get_int(ea);
    if (v != 1 && v != 2)
        return KC_CTAP2_ERR_INVALID_OPTION;
    if (c->cfg.attestation == VC_ATT_NONE)
        return KC_CTAP2_OK; /* no attestation at all: nothing enterprise about it */
    if (v == 2) {
        *ep_att = true; /* platform-managed: the platform vouches for the rp */
        return KC_CTAP2_OK;
    }
    for (size_t i = 0; i < sizeof(vendor_ep_rp_ids) / sizeof(vendor_ep_rp_ids[0]); i++)
        if (rp_id != NULL && strcmp(rp_id, vendor_ep_rp_ids[i]) == 0)
            *ep_att = true;
    return KC_CTAP2_OK;
}

/* verify(token, 32 x 0xff || 0x0d || subCommand || subCommandParams) and
 * the acfg permission (6.11, steps 4.3-4.5). */
static uint8_t check_auth(struct vc_card *c, uint64_t sub, const cbor_item_t *params,
                          const cbor_item_t *proto, const cbor_item_t *auth)
{
    uint8_t *enc = NULL, *msg = NULL;
    size_t enc_len = 0, msg_len;
    uint8_t st;
    int p;

    if (auth == NULL)
        return KC_CTAP2_ERR_PUAT_REQUIRED;
    if ((st = vc_pin_proto_check(c, proto, &p)) != KC_CTAP2_OK)
        return st;
    if (params != NULL && kc_cbor_serialize(params, &enc, &enc_len) != KC_OK)
        return KC_CTAP1_ERR_OTHER;
    msg_len = 32 + 2 + enc_len;
    if ((msg = OPENSSL_malloc(msg_len)) == NULL) {
        OPENSSL_free(enc);
        return KC_CTAP1_ERR_OTHER;
    }
    memset(msg, 0xff, 32);
    msg[32] = VC_CTAP2_CONFIG;
    msg[33] = (uint8_t)sub;
    if (enc_len > 0)
        memcpy(msg + 34, enc, enc_len);
    free(enc);
    st = KC_CTAP2_OK;
    if (!c->token_in_use ||
        kc_pinp_verify(p, c->token, sizeof(c->token), msg, msg_len, cbor_bytestring_handle(auth),
                       cbor_bytestring_length(auth)) != 0)
        st = KC_CTAP2_ERR_PIN_AUTH_INVALID;
    else if ((c->token_perms & KC_PERM_ACFG) == 0)
        st = KC_CTAP2_ERR_PIN_AUTH_INVALID;
    OPENSSL_free(msg);
    return st;
}

/* setMinPINLength (6.11.4): {1: newMinPINLength, 2: minPinLengthRPIDs,
 * 3: forceChangePin}, all optional. Checked whole before anything changes. */
static uint8_t set_min_pin_length(struct vc_card *c, const cbor_item_t *params)
{
    cbor_item_t *len = NULL, *rpids = NULL, *force = NULL, **v;
    size_t cur = vc_min_pin_len(c), want = cur, n = 0;
    bool force_change = false;

    if (params != NULL) {
        len = kc_cbor_map_get_int(params, 1);
        rpids = kc_cbor_map_get_int(params, 2);
        force = kc_cbor_map_get_int(params, 3);
    }
    if ((len != NULL && !cbor_isa_uint(len)) ||
        (rpids != NULL && (!cbor_isa_array(rpids) || !cbor_array_is_definite(rpids))) ||
        (force != NULL && !kc_cbor_is_bool(force)))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    if (len != NULL) {
        if (cbor_get_int(len) > VC_PIN_MAX_LEN)
            return KC_CTAP2_ERR_PIN_POLICY_VIOLATION; /* no PIN could meet it */
        want = (size_t)cbor_get_int(len);
    }
    /* the minimum only grows; reset is the way back */
    if (want < cur)
        return KC_CTAP2_ERR_PIN_POLICY_VIOLATION;
    if (rpids != NULL) {
        n = cbor_array_size(rpids);
        if (n > VC_MIN_PIN_RPIDS_MAX)
            return KC_CTAP2_ERR_KEY_STORE_FULL;
        v = cbor_array_handle(rpids);
        for (size_t i = 0; i < n; i++) {
            if (!kc_cbor_is_text(v[i]))
                return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
            if (cbor_string_length(v[i]) > VC_RP_ID_MAX)
                return KC_CTAP1_ERR_INVALID_LENGTH;
        }
    }
    if (force != NULL)
        force_change = cbor_get_bool(force);
    if (force_change && !c->pin_set)
        return KC_CTAP2_ERR_PIN_NOT_SET;
    c->min_pin_len = (int)want;
    /* a PIN shorter than the new minimum must be changed (an unknown length
     * counts as the shortest allowed, 4) */
    if (c->pin_set &&
        (c->pin_code_points > 0 ? c->pin_code_points : VC_PIN_MIN_LEN) < vc_min_pin_len(c))
        force_change = true;
    if (force_change)
        c->force_pin_change = true;
    if (rpids != NULL) {
        v = cbor_array_handle(rpids);
        memset(c->min_pin_rpids, 0, sizeof(c->min_pin_rpids));
        for (size_t i = 0; i < n; i++)
            vc_item_text_copy(v[i], c->min_pin_rpids[i], sizeof(c->min_pin_rpids[i]));
        c->n_min_pin_rpids = n;
    }
    return KC_CTAP2_OK;
}

uint8_t vc_config(struct vc_card *c, const uint8_t *p, size_t len)
{
    cbor_item_t *req = NULL, *sub, *params, *proto, *auth;
    uint64_t cmd;
    uint8_t st;

    if (!vc_config_offered(c))
        return KC_CTAP1_ERR_INVALID_COMMAND;
    if ((st = vc_parse_request(p, len, &req)) != KC_CTAP2_OK)
        return st;
    sub = kc_cbor_map_get_int(req, 1);
    params = kc_cbor_map_get_int(req, 2);
    proto = kc_cbor_map_get_int(req, 3);
    auth = kc_cbor_map_get_int(req, 4);
    if (sub == NULL) {
        st = KC_CTAP2_ERR_MISSING_PARAMETER;
        goto out;
    }
    if (!cbor_isa_uint(sub) || (params != NULL && !cbor_isa_map(params)) ||
        (proto != NULL && !cbor_isa_uint(proto)) || (auth != NULL && !kc_cbor_is_bytes(auth))) {
        st = KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
        goto out;
    }
    cmd = cbor_get_int(sub);
    if (cmd != CFG_ENABLE_EP && cmd != CFG_TOGGLE_ALWAYS_UV && cmd != CFG_SET_MIN_PIN_LENGTH) {
        st = KC_CTAP2_ERR_INVALID_SUBCOMMAND; /* vendorPrototype (0xff) included */
        goto out;
    }
    /* protected by a PIN or built-in UV, or alwaysUv on: a token with acfg;
     * an unprotected card is configured without one */
    if ((c->pin_set || vc_builtin_uv(c) || vc_always_uv(c) || auth != NULL) &&
        (st = check_auth(c, cmd, params, proto, auth)) != KC_CTAP2_OK)
        goto out;
    switch (cmd) {
    case CFG_ENABLE_EP:
        c->ep = true;
        break;
    case CFG_TOGGLE_ALWAYS_UV:
        c->always_uv = !vc_always_uv(c);
        c->always_uv_set = true;
        break;
    default:
        if ((st = set_min_pin_length(c, params)) != KC_CTAP2_OK)
            goto out;
        break;
    }
    st = vc_persist(c) == 0 ? KC_CTAP2_OK : KC_CTAP1_ERR_OTHER;
out:
    if (req != NULL)
        cbor_decref(&req);
    return st;
}

/* ---- --state ------------------------------------------------------------ */

cbor_item_t *vc_config_state_item(const struct vc_card *c)
{
    cbor_item_t *m = cbor_new_definite_map(6);
    cbor_item_t *rp = cbor_new_definite_array(c->n_min_pin_rpids);
    bool ok = m != NULL && rp != NULL;

    for (size_t i = 0; ok && i < c->n_min_pin_rpids; i++)
        ok = kc_cbor_array_push(rp, kc_cbor_new_text(c->min_pin_rpids[i])) == KC_OK;
    ok = ok &&
         kc_cbor_map_add_str(m, "pin_code_points", kc_cbor_new_int((int64_t)c->pin_code_points)) ==
             KC_OK &&
         kc_cbor_map_add_str(m, "min_pin_len", kc_cbor_new_int(c->min_pin_len)) == KC_OK &&
         kc_cbor_map_add_str(m, "always_uv", cbor_build_bool(c->always_uv)) == KC_OK &&
         kc_cbor_map_add_str(m, "always_uv_set", cbor_build_bool(c->always_uv_set)) == KC_OK &&
         kc_cbor_map_add_str(m, "ep", cbor_build_bool(c->ep)) == KC_OK &&
         kc_cbor_map_add_str(m, "min_pin_rpids", cbor_incref(rp)) == KC_OK;
    if (rp != NULL)
        cbor_decref(&rp);
    if (!ok && m != NULL)
        cbor_decref(&m);
    return ok ? m : NULL;
}

static const char *load_bool(const cbor_item_t *m, const char *key, bool *out)
{
    cbor_item_t *v = kc_cbor_map_get_str(m, key);

    if (v == NULL || !kc_cbor_is_bool(v))
        return "a \"config\" flag is missing or not a boolean";
    *out = cbor_get_bool(v);
    return NULL;
}

const char *vc_config_state_load(struct vc_card *c, const cbor_item_t *m)
{
    cbor_item_t *v, **rp;
    const char *why;

    if (m == NULL)
        return NULL; /* files written before authenticatorConfig */
    if (!cbor_isa_map(m))
        return "\"config\" is not a map";
    v = kc_cbor_map_get_str(m, "pin_code_points");
    if (v == NULL || !cbor_isa_uint(v) || cbor_get_int(v) > VC_PIN_MAX_LEN)
        return "\"config\" has a bad pin_code_points";
    c->pin_code_points = (size_t)cbor_get_int(v);
    v = kc_cbor_map_get_str(m, "min_pin_len");
    if (v == NULL || !cbor_isa_uint(v) || cbor_get_int(v) > VC_PIN_MAX_LEN)
        return "\"config\" has a bad min_pin_len";
    c->min_pin_len = (int)cbor_get_int(v);
    if ((why = load_bool(m, "always_uv", &c->always_uv)) != NULL ||
        (why = load_bool(m, "always_uv_set", &c->always_uv_set)) != NULL ||
        (why = load_bool(m, "ep", &c->ep)) != NULL)
        return why;
    v = kc_cbor_map_get_str(m, "min_pin_rpids");
    if (v == NULL || !cbor_isa_array(v) || !cbor_array_is_definite(v) ||
        cbor_array_size(v) > VC_MIN_PIN_RPIDS_MAX)
        return "\"config\" has a bad min_pin_rpids";
    rp = cbor_array_handle(v);
    for (size_t i = 0; i < cbor_array_size(v); i++)
        if (kc_cbor_text(rp[i], c->min_pin_rpids[i], sizeof(c->min_pin_rpids[i])) != KC_OK)
            return "\"config\" has a bad relying party id";
    c->n_min_pin_rpids = cbor_array_size(v);
    return NULL;
}
