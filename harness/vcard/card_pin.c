/* authenticatorClientPIN of the virtual card (CTAP 2.1, 6.5), protocols 1
 * and 2 through ctaphid/pin_proto.h, and the check of pinUvAuthParam that
 * makeCredential and getAssertion share.
 *
 * The PIN is kept as LEFT(SHA-256(pin), 16). Retries start at 8 and persist;
 * three wrong PINs in a row within one boot block PIN use until the next
 * power cycle. The key agreement key and the pinUvAuthToken are per boot;
 * the key agreement key is also replaced after each wrong PIN. Only the
 * personality's pinUvAuthProtocols are accepted; with forcePINChange set
 * (force-pin-change) the right PIN gets PIN_POLICY_VIOLATION instead of a
 * token until changePIN sets a different PIN. */
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

#include "ctaphid/cose.h"
#include "ctaphid/pin_proto.h"
#include "ctaphid/status.h"
#include "harness/vcard/card_int.h"
#include "util/rand.h"

static int new_key_agreement(struct vc_card *c)
{
    EVP_PKEY *k = NULL;

    if (kc_pinp_keypair_new(&k) != 0 || k == NULL)
        return -1;
    EVP_PKEY_free(c->ka_key);
    c->ka_key = k;
    return 0;
}

/* Invalidates any token handed out: the next one is fresh random bytes. */
static int token_reset(struct vc_card *c)
{
    c->token_in_use = false;
    c->token_perms = 0;
    c->token_has_rp = false;
    c->token_rp[0] = '\0';
    return kcu_random(c->token, sizeof(c->token));
}

int vc_pin_new_boot(struct vc_card *c)
{
    return new_key_agreement(c) == 0 && token_reset(c) == 0 ? 0 : -1;
}

/* Only the protocols the personality advertises are accepted (CTAP 2.1
 * 6.5.5.1: an unsupported pinUvAuthProtocol is CTAP1_ERR_INVALID_PARAMETER). */
uint8_t vc_pin_proto_check(const struct vc_card *c, const cbor_item_t *proto, int *out)
{
    uint64_t want;

    *out = 0;
    if (proto == NULL)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (!cbor_isa_uint(proto))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    want = cbor_get_int(proto);
    for (size_t i = 0; i < VC_PERS_MAX_PROTOS && c->pers->pin_protocols[i] != 0; i++)
        if ((uint64_t)c->pers->pin_protocols[i] == want) {
            *out = (int)want;
            return KC_CTAP2_OK;
        }
    return KC_CTAP1_ERR_INVALID_PARAMETER;
}

int vc_pin_hash(const char *pin, uint8_t out[16])
{
    uint8_t full[32];

    if (vc_sha256((const uint8_t *)pin, strlen(pin), full) != 0)
        return -1;
    memcpy(out, full, 16);
    OPENSSL_cleanse(full, sizeof(full));
    return 0;
}

uint8_t vc_pin_check_param(struct vc_card *c, const cbor_item_t *param, const cbor_item_t *proto,
                           const uint8_t cdh[32], uint8_t perm, const char *rp_id)
{
    int p;
    uint8_t st;

    if ((st = vc_pin_proto_check(c, proto, &p)) != KC_CTAP2_OK)
        return st;
    if (!c->pin_set)
        return KC_CTAP2_ERR_PIN_NOT_SET;
    if (!c->token_in_use ||
        kc_pinp_verify(p, c->token, sizeof(c->token), cdh, 32, cbor_bytestring_handle(param),
                       cbor_bytestring_length(param)) != 0)
        return KC_CTAP2_ERR_PIN_AUTH_INVALID;
    if ((c->token_perms & perm) == 0)
        return KC_CTAP2_ERR_PIN_AUTH_INVALID;
    if (c->token_has_rp && strcmp(c->token_rp, rp_id) != 0)
        return KC_CTAP2_ERR_PIN_AUTH_INVALID;
    if (!c->token_has_rp) {
        /* a token without an rp binds to the first rp it is used for */
        snprintf(c->token_rp, sizeof(c->token_rp), "%s", rp_id);
        c->token_has_rp = true;
    }
    return KC_CTAP2_OK;
}

struct pin_req {
    int proto;
    cbor_item_t *ka, *auth, *new_pin, *pin_hash, *perms, *rp_id;
};

static uint8_t ecdh(struct vc_card *c, int proto, const cbor_item_t *ka, uint8_t *shared,
                    size_t *len)
{
    struct kc_cose_key peer;
    int rc;

    if (ka == NULL)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (!cbor_isa_map(ka))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    memset(&peer, 0, sizeof(peer));
    if (kc_cose_decode_item(ka, &peer) != 0 || peer.kty != KC_COSE_KTY_EC2 ||
        peer.crv != KC_COSE_CRV_P256) {
        kc_cose_key_free(&peer);
        return KC_CTAP1_ERR_INVALID_PARAMETER;
    }
    *len = KC_PINP_SHARED_MAX;
    rc = kc_pinp_shared_secret(proto, c->ka_key, peer.pkey, shared, len);
    kc_cose_key_free(&peer);
    return rc == 0 ? KC_CTAP2_OK : KC_CTAP1_ERR_INVALID_PARAMETER;
}

static uint8_t shared_secret(struct vc_card *c, const struct pin_req *r, uint8_t *shared,
                             size_t *len)
{
    return ecdh(c, r->proto, r->ka, shared, len);
}

/* hmac-secret input {1: keyAgreement, 2: saltEnc, 3: saltAuth, 4: protocol}:
 * saltAuth verified, salts decrypted (CTAP 2.1, 12.5). */
uint8_t vc_hmac_secret_input(struct vc_card *c, const cbor_item_t *in, struct vc_hmac_in *out)
{
    cbor_item_t *enc, *auth, *proto;
    size_t elen, want_iv;
    uint8_t st;

    memset(out, 0, sizeof(*out));
    if (in == NULL)
        return KC_CTAP2_OK;
    if (!cbor_isa_map(in))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    enc = kc_cbor_map_get_int(in, 2);
    auth = kc_cbor_map_get_int(in, 3);
    proto = kc_cbor_map_get_int(in, 4);
    if (enc == NULL || auth == NULL)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (!kc_cbor_is_bytes(enc) || !kc_cbor_is_bytes(auth))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    out->proto = 1;
    if (proto != NULL && (st = vc_pin_proto_check(c, proto, &out->proto)) != KC_CTAP2_OK)
        return st;
    if ((st = ecdh(c, out->proto, kc_cbor_map_get_int(in, 1), out->shared, &out->shared_len)) !=
        KC_CTAP2_OK)
        return st;
    elen = cbor_bytestring_length(enc);
    want_iv = out->proto == 2 ? 16 : 0;
    if (elen != 32 + want_iv && elen != 64 + want_iv)
        return KC_CTAP1_ERR_INVALID_LENGTH;
    if (kc_pinp_verify(out->proto, out->shared, out->shared_len, cbor_bytestring_handle(enc), elen,
                       cbor_bytestring_handle(auth), cbor_bytestring_length(auth)) != 0)
        return KC_CTAP2_ERR_PIN_AUTH_INVALID;
    if (kc_pinp_decrypt(out->proto, out->shared, out->shared_len, cbor_bytestring_handle(enc), elen,
                        out->salt, sizeof(out->salt), &out->salt_len) != 0 ||
        (out->salt_len != 32 && out->salt_len != 64))
        return KC_CTAP1_ERR_INVALID_PARAMETER;
    out->present = true;
    return KC_CTAP2_OK;
}

/* CredRandom is derived from the master key and the credential id, one
 * value with UV and another without, so nothing more has to be stored. */
int vc_hmac_secret_output(struct vc_card *c, const struct vc_hmac_in *in, const struct vc_cred *cr,
                          bool uv, uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t label[16] = "kcard-hmac-sec-", cred_random[32], outs[64];
    int rc = -1;

    label[15] = uv ? 1 : 0;
    if (vc_hmac_sha256(c->master_key, sizeof(c->master_key), label, sizeof(label), cr->id,
                       VC_CRED_ID_LEN, cred_random) != 0 ||
        vc_hmac_sha256(cred_random, 32, in->salt, 32, NULL, 0, outs) != 0 ||
        (in->salt_len == 64 &&
         vc_hmac_sha256(cred_random, 32, in->salt + 32, 32, NULL, 0, outs + 32) != 0) ||
        kc_pinp_encrypt(in->proto, in->shared, in->shared_len, outs, in->salt_len, out, cap,
                        out_len) != 0)
        goto out;
    rc = 0;
out:
    OPENSSL_cleanse(cred_random, sizeof(cred_random));
    OPENSSL_cleanse(outs, sizeof(outs));
    return rc;
}

static uint8_t need_bytes(const cbor_item_t *it)
{
    if (it == NULL)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    return kc_cbor_is_bytes(it) ? KC_CTAP2_OK : KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
}

/* Decrypts newPinEnc and checks the padded block and the PIN policy. */
static uint8_t new_pin_hash(const struct vc_card *c, const struct pin_req *r, const uint8_t *shared,
                            size_t slen, uint8_t hash[16], size_t *cp)
{
    uint8_t block[VC_PIN_BLOCK_LEN + 32], full[32];
    size_t blen = 0, plen;
    size_t want = VC_PIN_BLOCK_LEN + (r->proto == 2 ? 16 : 0);
    uint8_t st = KC_CTAP2_ERR_PIN_POLICY_VIOLATION;

    if (cbor_bytestring_length(r->new_pin) != want)
        return KC_CTAP1_ERR_INVALID_PARAMETER;
    if (kc_pinp_decrypt(r->proto, shared, slen, cbor_bytestring_handle(r->new_pin), want, block,
                        sizeof(block), &blen) != 0 ||
        blen != VC_PIN_BLOCK_LEN) {
        st = KC_CTAP1_ERR_INVALID_PARAMETER;
        goto out;
    }
    plen = strnlen((const char *)block, VC_PIN_BLOCK_LEN);
    /* minPINLength counts code points (setMinPINLength may have raised it) */
    *cp = vc_utf8_code_points(block, plen);
    if (plen < VC_PIN_MIN_LEN || plen > VC_PIN_BLOCK_LEN - 1 || *cp < vc_min_pin_len(c))
        goto out;
    if (vc_sha256(block, plen, full) != 0) {
        st = KC_CTAP1_ERR_OTHER;
        goto out;
    }
    memcpy(hash, full, 16);
    st = KC_CTAP2_OK;
out:
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(full, sizeof(full));
    return st;
}

static uint8_t blocked(const struct vc_card *c)
{
    if (c->pin_retries <= 0)
        return KC_CTAP2_ERR_PIN_BLOCKED;
    if (c->pin_boot_fails >= VC_PIN_BOOT_FAILS)
        return KC_CTAP2_ERR_PIN_AUTH_BLOCKED;
    return KC_CTAP2_OK;
}

/* Checks pinHashEnc against the stored PIN, counting retries as 6.5.5.5 says. */
static uint8_t check_pin_hash(struct vc_card *c, const struct pin_req *r, const uint8_t *shared,
                              size_t slen)
{
    uint8_t got[32];
    size_t glen = 0;
    size_t want = 16 + (r->proto == 2 ? 16 : 0);
    uint8_t st;

    if (cbor_bytestring_length(r->pin_hash) != want)
        return KC_CTAP1_ERR_INVALID_PARAMETER;
    c->pin_retries--;
    if (vc_persist(c) != 0)
        return KC_CTAP1_ERR_OTHER;
    if (kc_pinp_decrypt(r->proto, shared, slen, cbor_bytestring_handle(r->pin_hash), want, got,
                        sizeof(got), &glen) == 0 &&
        glen == 16 && CRYPTO_memcmp(got, c->pin_hash, 16) == 0) {
        OPENSSL_cleanse(got, sizeof(got));
        c->pin_retries = VC_PIN_RETRIES_MAX;
        c->pin_boot_fails = 0;
        return vc_persist(c) == 0 ? KC_CTAP2_OK : KC_CTAP1_ERR_OTHER;
    }
    OPENSSL_cleanse(got, sizeof(got));
    c->pin_boot_fails++;
    if (new_key_agreement(c) != 0) /* fresh key agreement key after a wrong PIN */
        return KC_CTAP1_ERR_OTHER;
    if ((st = blocked(c)) != KC_CTAP2_OK)
        return st;
    return KC_CTAP2_ERR_PIN_INVALID;
}

static uint8_t get_retries(struct vc_card *c, uint8_t *resp, size_t cap, size_t *resp_len)
{
    cbor_item_t *m = cbor_new_definite_map(2);
    uint8_t st = KC_CTAP1_ERR_OTHER;

    if (m != NULL && kc_cbor_map_add_int(m, 3, kc_cbor_new_int(c->pin_retries)) == KC_OK &&
        kc_cbor_map_add_int(m, 4, cbor_build_bool(c->pin_boot_fails >= VC_PIN_BOOT_FAILS)) == KC_OK)
        st = vc_reply_item(m, resp, cap, resp_len);
    if (m != NULL)
        cbor_decref(&m);
    return st;
}

/* getUVRetries (0x07): vcard's built-in UV never fails, so its
 * attempts are always all left. */
static uint8_t get_uv_retries(uint8_t *resp, size_t cap, size_t *resp_len)
{
    cbor_item_t *m = cbor_new_definite_map(1);
    uint8_t st = KC_CTAP1_ERR_OTHER;

    if (m != NULL && kc_cbor_map_add_int(m, 5, kc_cbor_new_int(VC_UV_RETRIES_MAX)) == KC_OK)
        st = vc_reply_item(m, resp, cap, resp_len);
    if (m != NULL)
        cbor_decref(&m);
    return st;
}

static uint8_t get_key_agreement(struct vc_card *c, uint8_t *resp, size_t cap, size_t *resp_len)
{
    cbor_item_t *m = cbor_new_definite_map(1), *k = NULL;
    uint8_t st = KC_CTAP1_ERR_OTHER;

    if (m != NULL && kc_cose_encode_item(c->ka_key, KC_COSE_ECDH_ES_HKDF_256, &k) == 0 &&
        kc_cbor_map_add_int(m, 1, k) == KC_OK)
        st = vc_reply_item(m, resp, cap, resp_len);
    if (m != NULL)
        cbor_decref(&m);
    return st;
}

static uint8_t set_pin(struct vc_card *c, const struct pin_req *r)
{
    uint8_t shared[KC_PINP_SHARED_MAX], hash[16], st;
    size_t slen = 0, cp = 0;

    if ((st = need_bytes(r->auth)) != KC_CTAP2_OK || (st = need_bytes(r->new_pin)) != KC_CTAP2_OK)
        return st;
    if (c->pin_set)
        return KC_CTAP2_ERR_NOT_ALLOWED;
    if ((st = shared_secret(c, r, shared, &slen)) != KC_CTAP2_OK)
        goto out;
    if (kc_pinp_verify(r->proto, shared, slen, cbor_bytestring_handle(r->new_pin),
                       cbor_bytestring_length(r->new_pin), cbor_bytestring_handle(r->auth),
                       cbor_bytestring_length(r->auth)) != 0) {
        st = KC_CTAP2_ERR_PIN_AUTH_INVALID;
        goto out;
    }
    if ((st = new_pin_hash(c, r, shared, slen, hash, &cp)) != KC_CTAP2_OK)
        goto out;
    memcpy(c->pin_hash, hash, 16);
    c->pin_code_points = cp;
    c->pin_set = true;
    c->pin_retries = VC_PIN_RETRIES_MAX;
    st = vc_persist(c) == 0 ? KC_CTAP2_OK : KC_CTAP1_ERR_OTHER;
out:
    OPENSSL_cleanse(shared, sizeof(shared));
    OPENSSL_cleanse(hash, sizeof(hash));
    return st;
}

static uint8_t change_pin(struct vc_card *c, const struct pin_req *r)
{
    uint8_t shared[KC_PINP_SHARED_MAX], hash[16], *msg = NULL, st;
    size_t slen = 0, l1, l2, cp = 0;

    if ((st = need_bytes(r->auth)) != KC_CTAP2_OK || (st = need_bytes(r->new_pin)) != KC_CTAP2_OK ||
        (st = need_bytes(r->pin_hash)) != KC_CTAP2_OK)
        return st;
    if (!c->pin_set)
        return KC_CTAP2_ERR_PIN_NOT_SET;
    if ((st = blocked(c)) != KC_CTAP2_OK)
        return st;
    if ((st = shared_secret(c, r, shared, &slen)) != KC_CTAP2_OK)
        goto out;
    l1 = cbor_bytestring_length(r->new_pin);
    l2 = cbor_bytestring_length(r->pin_hash);
    if ((msg = OPENSSL_malloc(l1 + l2 + 1)) == NULL) {
        st = KC_CTAP1_ERR_OTHER;
        goto out;
    }
    memcpy(msg, cbor_bytestring_handle(r->new_pin), l1);
    memcpy(msg + l1, cbor_bytestring_handle(r->pin_hash), l2);
    if (kc_pinp_verify(r->proto, shared, slen, msg, l1 + l2, cbor_bytestring_handle(r->auth),
                       cbor_bytestring_length(r->auth)) != 0) {
        st = KC_CTAP2_ERR_PIN_AUTH_INVALID;
        goto out;
    }
    if ((st = check_pin_hash(c, r, shared, slen)) != KC_CTAP2_OK ||
        (st = new_pin_hash(c, r, shared, slen, hash, &cp)) != KC_CTAP2_OK)
        goto out;
    /* a forced change must pick another PIN (vcard's reading of forcePINChange) */
    if (c->force_pin_change && CRYPTO_memcmp(hash, c->pin_hash, 16) == 0) {
        st = KC_CTAP2_ERR_PIN_POLICY_VIOLATION;
        goto out;
    }
    memcpy(c->pin_hash, hash, 16);
    c->pin_code_points = cp;
    c->force_pin_change = false;
    /* existing tokens stop working once the PIN changes */
    if (token_reset(c) != 0) {
        st = KC_CTAP1_ERR_OTHER;
        goto out;
    }
    st = vc_persist(c) == 0 ? KC_CTAP2_OK : KC_CTAP1_ERR_OTHER;
out:
    OPENSSL_free(msg);
    OPENSSL_cleanse(shared, sizeof(shared));
    OPENSSL_cleanse(hash, sizeof(hash));
    return st;
}

static uint8_t get_token(struct vc_card *c, const struct pin_req *r, bool with_perms, uint8_t *resp,
                         size_t cap, size_t *resp_len)
{
    uint8_t shared[KC_PINP_SHARED_MAX], enc[VC_TOKEN_LEN + 16], st;
    size_t slen = 0, elen = 0;
    uint8_t perms = KC_PERM_MC | KC_PERM_GA;
    cbor_item_t *m = NULL;
    uint64_t p;

    if ((st = need_bytes(r->pin_hash)) != KC_CTAP2_OK)
        return st;
    if (with_perms) {
        if (r->perms == NULL)
            return KC_CTAP2_ERR_MISSING_PARAMETER;
        if (!cbor_isa_uint(r->perms) || (r->rp_id != NULL && !kc_cbor_is_text(r->rp_id)))
            return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
        if ((p = cbor_get_int(r->perms)) == 0)
            return KC_CTAP1_ERR_INVALID_PARAMETER;
        if ((p &
             ~(uint64_t)(KC_PERM_MC | KC_PERM_GA | (c->pers->max_large_blob > 0 ? KC_PERM_LBW : 0) |
                         (c->pers->cred_mgmt == VC_CRED_MGMT_2_1 ? KC_PERM_CM : 0) |
                         (vc_config_offered(c) ? KC_PERM_ACFG : 0))) != 0)
            return KC_CTAP2_ERR_UNAUTHORIZED_PERMISSION;
        if (r->rp_id == NULL && (p & (KC_PERM_MC | KC_PERM_GA)) != 0)
            return KC_CTAP2_ERR_MISSING_PARAMETER; /* mc and ga need an rp */
        if (r->rp_id != NULL && cbor_string_length(r->rp_id) > VC_RP_ID_MAX)
            return KC_CTAP1_ERR_INVALID_LENGTH;
        perms = (uint8_t)p;
    }
    if (!c->pin_set)
        return KC_CTAP2_ERR_PIN_NOT_SET;
    if ((st = blocked(c)) != KC_CTAP2_OK)
        return st;
    if ((st = shared_secret(c, r, shared, &slen)) != KC_CTAP2_OK ||
        (st = check_pin_hash(c, r, shared, slen)) != KC_CTAP2_OK)
        goto out;
    /* the right PIN, but it must be changed first (CTAP 2.1 6.5.5.7) */
    if (c->force_pin_change) {
        st = KC_CTAP2_ERR_PIN_POLICY_VIOLATION;
        goto out;
    }
    /* a fresh token for each grant: earlier ones stop working */
    if (token_reset(c) != 0) {
        st = KC_CTAP1_ERR_OTHER;
        goto out;
    }
    c->token_in_use = true;
    c->token_perms = perms;
    c->token_has_rp = with_perms && r->rp_id != NULL;
    c->token_rp[0] = '\0';
    if (c->token_has_rp)
        vc_item_text_copy(r->rp_id, c->token_rp, sizeof(c->token_rp));
    st = KC_CTAP1_ERR_OTHER;
    if (kc_pinp_encrypt(r->proto, shared, slen, c->token, sizeof(c->token), enc, sizeof(enc),
                        &elen) != 0 ||
        (m = cbor_new_definite_map(1)) == NULL ||
        kc_cbor_map_add_int(m, 2, kc_cbor_new_bytes(enc, elen)) != KC_OK)
        goto out;
    st = vc_reply_item(m, resp, cap, resp_len);
out:
    if (m != NULL)
        cbor_decref(&m);
    OPENSSL_cleanse(shared, sizeof(shared));
    return st;
}

uint8_t vc_client_pin(struct vc_card *c, const uint8_t *p, size_t len, uint8_t *resp, size_t cap,
                      size_t *resp_len)
{
    cbor_item_t *req = NULL, *sub;
    struct pin_req r;
    uint8_t st;
    uint64_t cmd;

    memset(&r, 0, sizeof(r));
    if ((st = vc_parse_request(p, len, &req)) != KC_CTAP2_OK)
        goto out;
    if ((sub = kc_cbor_map_get_int(req, 2)) == NULL) {
        st = KC_CTAP2_ERR_MISSING_PARAMETER;
        goto out;
    }
    if (!cbor_isa_uint(sub)) {
        st = KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
        goto out;
    }
    cmd = cbor_get_int(sub);
    r.ka = kc_cbor_map_get_int(req, 3);
    r.auth = kc_cbor_map_get_int(req, 4);
    r.new_pin = kc_cbor_map_get_int(req, 5);
    r.pin_hash = kc_cbor_map_get_int(req, 6);
    r.perms = kc_cbor_map_get_int(req, 9);
    r.rp_id = kc_cbor_map_get_int(req, 10);
    if (cmd == KC_PIN_GET_RETRIES) {
        st = get_retries(c, resp, cap, resp_len);
        goto out;
    }
    if (cmd == KC_PIN_GET_UV_RETRIES && vc_builtin_uv(c)) {
        st = get_uv_retries(resp, cap, resp_len);
        goto out;
    }
    if (cmd != KC_PIN_GET_KEY_AGREEMENT && cmd != KC_PIN_SET_PIN && cmd != KC_PIN_CHANGE_PIN &&
        cmd != KC_PIN_GET_PIN_TOKEN && cmd != KC_PIN_GET_TOKEN_PIN_PERMISSIONS) {
        st = KC_CTAP2_ERR_INVALID_SUBCOMMAND; /* no built-in UV: 0x06, 0x07 too */
        goto out;
    }
    if ((st = vc_pin_proto_check(c, kc_cbor_map_get_int(req, 1), &r.proto)) != KC_CTAP2_OK)
        goto out;
    switch (cmd) {
    case KC_PIN_GET_KEY_AGREEMENT:
        st = get_key_agreement(c, resp, cap, resp_len);
        break;
    case KC_PIN_SET_PIN:
        st = set_pin(c, &r);
        break;
    case KC_PIN_CHANGE_PIN:
        st = change_pin(c, &r);
        break;
    case KC_PIN_GET_PIN_TOKEN:
        st = get_token(c, &r, false, resp, cap, resp_len);
        break;
    default:
        st = get_token(c, &r, true, resp, cap, resp_len);
        break;
    }
out:
    if (req != NULL)
        cbor_decref(&req);
    return st;
}
