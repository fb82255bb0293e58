/* authenticatorClientPIN (0x06) over PIN/UV auth protocols 1 and 2, and the
 * runbook's rule for choosing (or not needing) a protocol. */
#include "ctaphid/pin.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/cose.h"
#include "ctaphid/ctap2_int.h"
#include "ctaphid/pin_proto.h"

#define PIN_PAD_LEN 64
#define PIN_HASH_LEFT 16

/* ---- protocol choice ---------------------------------------------------- */

int kc_pin_choose_protocol(const struct kc_info *info, bool have_pin, int *protocol,
                           struct kc_pin_outcome *out)
{
    int p = 0;

    if (protocol == NULL)
        return KC_ERR_INVALID_ARG;
    *protocol = 0;
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (info != NULL) {
        if (kc_info_supports_pin_protocol(info, 2))
            p = 2;
        else if (kc_info_supports_pin_protocol(info, 1))
            p = 1;
        else if (info->n_pin_protocols == 0 && kc_info_option(info, "clientPin") >= 0)
            p = 1; /* CTAP 2.0 cards with a PIN but no protocol list speak 1 */
    }
    if (!have_pin) {
        /* The runbook rule: no PIN given and nothing advertised is not an
         * error; the command simply goes without PIN/UV auth. */
        if (out != NULL && info != NULL && p == 0)
            out->no_protocol = true;
        return KC_OK;
    }
    if (info == NULL)
        return KC_ERR_INVALID_ARG;
    if (p == 0)
        return KC_ERR_NO_PIN_PROTOCOL;
    *protocol = p;
    if (out != NULL)
        out->protocol = p;
    return KC_OK;
}

/* ---- encoding and decoding ---------------------------------------------- */

int kc_client_pin_encode(const struct kc_client_pin_req *r, uint8_t **buf, size_t *len)
{
    cbor_item_t *map = NULL, *cose = NULL;
    int e = KC_ERR_NOMEM;

    if (r == NULL || buf == NULL || len == NULL || r->subcmd <= 0)
        return KC_ERR_INVALID_ARG;
    if ((map = cbor_new_definite_map(8)) == NULL)
        return KC_ERR_NOMEM;
    if (r->protocol > 0 &&
        (e = kc_cbor_map_add_int(map, KC_PINREQ_PROTOCOL, kc_cbor_new_int(r->protocol))) != KC_OK)
        goto out;
    if ((e = kc_cbor_map_add_int(map, KC_PINREQ_SUBCMD, kc_cbor_new_int(r->subcmd))) != KC_OK)
        goto out;
    if (r->key_agreement != NULL) {
        if ((e = kc_cose_encode_item(r->key_agreement, KC_COSE_ECDH_ES_HKDF_256, &cose)) != KC_OK)
            goto out;
        if ((e = kc_cbor_map_add_int(map, KC_PINREQ_KEY_AGREEMENT, cose)) != KC_OK)
            goto out;
    }
    if (r->pin_uv_auth_param != NULL &&
        (e = kc_cbor_map_add_int(
             map, KC_PINREQ_AUTH,
             kc_cbor_new_bytes(r->pin_uv_auth_param, r->pin_uv_auth_param_len))) != KC_OK)
        goto out;
    if (r->new_pin_enc != NULL &&
        (e = kc_cbor_map_add_int(map, KC_PINREQ_NEW_PIN_ENC,
                                 kc_cbor_new_bytes(r->new_pin_enc, r->new_pin_enc_len))) != KC_OK)
        goto out;
    if (r->pin_hash_enc != NULL &&
        (e = kc_cbor_map_add_int(map, KC_PINREQ_PIN_HASH_ENC,
                                 kc_cbor_new_bytes(r->pin_hash_enc, r->pin_hash_enc_len))) != KC_OK)
        goto out;
    if (r->permissions != 0 && (e = kc_cbor_map_add_int(map, KC_PINREQ_PERMISSIONS,
                                                        kc_cbor_new_int(r->permissions))) != KC_OK)
        goto out;
    if (r->rp_id != NULL &&
        (e = kc_cbor_map_add_int(map, KC_PINREQ_RP_ID, kc_cbor_new_text(r->rp_id))) != KC_OK)
        goto out;
    e = kc_cbor_serialize(map, buf, len);
out:
    cbor_decref(&map);
    return e;
}

void kc_pin_response_free(struct kc_pin_response *r)
{
    if (r == NULL)
        return;
    EVP_PKEY_free(r->key_agreement);
    OPENSSL_cleanse(r, sizeof(*r));
}

static int decode_pin_entry(int64_t key, const cbor_item_t *v, void *ctx)
{
    struct kc_pin_response *r = ctx;
    int e;

    switch (key) {
    case KC_PINRESP_KEY_AGREEMENT: {
        struct kc_cose_key k = {0};
        if (kc_cose_decode_item(v, &k) != KC_OK || k.kty != KC_COSE_KTY_EC2 ||
            k.crv != KC_COSE_CRV_P256 || k.pkey == NULL) {
            kc_cose_key_free(&k);
            return KC_ERR_CBOR;
        }
        r->key_agreement = k.pkey;
        k.pkey = NULL;
        kc_cose_key_free(&k);
        return KC_OK;
    }
    case KC_PINRESP_TOKEN:
        return kc_cbor_bytes(v, 16, KC_PIN_ENC_MAX, r->token_enc, &r->token_enc_len);
    case KC_PINRESP_RETRIES:
        e = kc_cbor_uint(v, &r->retries);
        r->has_retries = e == KC_OK;
        return e;
    case KC_PINRESP_POWER_CYCLE:
        return kc_cbor_bool(v, &r->power_cycle_state);
    case KC_PINRESP_UV_RETRIES:
        e = kc_cbor_uint(v, &r->uv_retries);
        r->has_uv_retries = e == KC_OK;
        return e;
    default:
        return KC_OK; /* unknown keys are skipped */
    }
}

int kc_pin_response_decode(const uint8_t *cbor, size_t len, struct kc_pin_response *r)
{
    int e;

    if (r == NULL || (cbor == NULL && len > 0))
        return KC_ERR_INVALID_ARG;
    memset(r, 0, sizeof(*r));
    if ((e = kc_cbor_int_map_each(cbor, len, decode_pin_entry, r)) != KC_OK)
        goto out;
    /* retry counters are small numbers; anything else is not a real card */
    if ((r->has_retries && r->retries > 255) || (r->has_uv_retries && r->uv_retries > 255)) {
        e = KC_ERR_CBOR;
        goto out;
    }
    e = KC_OK;
out:
    if (e != KC_OK)
        kc_pin_response_free(r);
    return e;
}

/* ---- commands ----------------------------------------------------------- */

static int pin_call(struct kc_dev *d, const struct kc_client_pin_req *req,
                    struct kc_pin_response *resp)
{
    uint8_t *enc = NULL, *body = NULL;
    size_t enc_len = 0, body_len = 0;
    int e;

    memset(resp, 0, sizeof(*resp));
    if ((e = kc_client_pin_encode(req, &enc, &enc_len)) != KC_OK)
        return e;
    e = kc_ctap2_call(d, KC_CTAP2_CLIENT_PIN, enc, enc_len, &body, &body_len);
    OPENSSL_cleanse(enc, enc_len);
    free(enc);
    if (e != KC_OK)
        return e;
    if (body_len > 0)
        e = kc_pin_response_decode(body, body_len, resp);
    if (body != NULL) {
        OPENSSL_cleanse(body, body_len);
        free(body);
    }
    return e;
}

/* info as given, or fetched into *store */
static int need_info(struct kc_dev *d, const struct kc_info **info, struct kc_info *store)
{
    int e;

    if (*info != NULL)
        return KC_OK;
    if ((e = kc_ctap2_get_info(d, store)) != KC_OK)
        return e;
    *info = store;
    return KC_OK;
}

/* getRetries and getUVRetries need no protocol; send one when the card has
 * one (2.0 cards insist on the field). */
static int retries_call(struct kc_dev *d, const struct kc_info *info, int subcmd,
                        struct kc_pin_response *resp)
{
    struct kc_client_pin_req req = {.subcmd = subcmd};
    struct kc_info store;
    int e;

    if ((e = need_info(d, &info, &store)) != KC_OK)
        return e;
    if (kc_pin_choose_protocol(info, true, &req.protocol, NULL) != KC_OK)
        req.protocol = 0;
    return pin_call(d, &req, resp);
}

int kc_pin_get_retries(struct kc_dev *d, const struct kc_info *info, struct kc_pin_retries *out)
{
    struct kc_pin_response resp;
    int e;

    if (d == NULL || out == NULL)
        return KC_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if ((e = retries_call(d, info, KC_PIN_GET_RETRIES, &resp)) != KC_OK)
        return e;
    if (!resp.has_retries) {
        kc_pin_response_free(&resp);
        return KC_ERR_CBOR;
    }
    out->retries = resp.retries;
    out->power_cycle_state = resp.power_cycle_state;
    kc_pin_response_free(&resp);
    return KC_OK;
}

int kc_pin_get_uv_retries(struct kc_dev *d, const struct kc_info *info, struct kc_pin_retries *out)
{
    struct kc_pin_response resp;
    int e;

    if (d == NULL || out == NULL)
        return KC_ERR_INVALID_ARG;
    if ((e = retries_call(d, info, KC_PIN_GET_UV_RETRIES, &resp)) != KC_OK)
        return e;
    if (!resp.has_uv_retries) {
        kc_pin_response_free(&resp);
        return KC_ERR_CBOR;
    }
    out->has_uv_retries = true;
    out->uv_retries = resp.uv_retries;
    kc_pin_response_free(&resp);
    return KC_OK;
}

int kc_pin_get_key_agreement(struct kc_dev *d, int protocol, EVP_PKEY **peer)
{
    struct kc_client_pin_req req = {.protocol = protocol, .subcmd = KC_PIN_GET_KEY_AGREEMENT};
    struct kc_pin_response resp;
    int e;

    if (d == NULL || peer == NULL || (protocol != 1 && protocol != 2))
        return KC_ERR_INVALID_ARG;
    *peer = NULL;
    if ((e = pin_call(d, &req, &resp)) != KC_OK)
        return e;
    if (resp.key_agreement == NULL) {
        kc_pin_response_free(&resp);
        return KC_ERR_CBOR;
    }
    *peer = resp.key_agreement;
    resp.key_agreement = NULL;
    kc_pin_response_free(&resp);
    return KC_OK;
}

/* One ECDH session: our key pair and the shared secret with the card. */
struct session {
    int protocol;
    EVP_PKEY *mine;
    uint8_t shared[KC_PINP_SHARED_MAX];
    size_t shared_len;
};

static void session_end(struct session *s)
{
    EVP_PKEY_free(s->mine);
    OPENSSL_cleanse(s, sizeof(*s));
}

static int session_start(struct kc_dev *d, int protocol, struct session *s)
{
    EVP_PKEY *peer = NULL;
    int e;

    memset(s, 0, sizeof(*s));
    s->protocol = protocol;
    if ((e = kc_pin_get_key_agreement(d, protocol, &peer)) != KC_OK)
        return e;
    if ((e = kc_pinp_keypair_new(&s->mine)) == KC_OK)
        e = kc_pinp_shared_secret(protocol, s->mine, peer, s->shared, &s->shared_len);
    EVP_PKEY_free(peer);
    if (e != KC_OK)
        session_end(s);
    return e;
}

/* code points in a UTF-8 string (continuation bytes not counted) */
static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

static int check_new_pin(const struct kc_info *info, const char *pin)
{
    size_t min = KC_PIN_MIN_LEN;

    if (pin == NULL || strlen(pin) > KC_PIN_MAX_LEN)
        return KC_ERR_INVALID_ARG;
    if (info->min_pin_length > min && info->min_pin_length <= KC_PIN_MAX_LEN)
        min = (size_t)info->min_pin_length;
    return utf8_len(pin) >= min ? KC_OK : KC_ERR_INVALID_ARG;
}

/* encrypt(shared, LEFT(SHA-256(pin), 16)) */
static int pin_hash_enc(const struct session *s, const char *pin, uint8_t *out, size_t cap,
                        size_t *out_len)
{
    uint8_t h[32];
    unsigned int hl = 0;
    int e;

    if (EVP_Digest(pin, strlen(pin), h, &hl, EVP_sha256(), NULL) != 1 || hl != 32)
        return KC_ERR_CRYPTO;
    e = kc_pinp_encrypt(s->protocol, s->shared, s->shared_len, h, PIN_HASH_LEFT, out, cap, out_len);
    OPENSSL_cleanse(h, sizeof(h));
    return e;
}

/* encrypt(shared, pin padded with zeros to 64 bytes) */
static int new_pin_enc(const struct session *s, const char *pin, uint8_t *out, size_t cap,
                       size_t *out_len)
{
    uint8_t padded[PIN_PAD_LEN] = {0};
    int e;

    memcpy(padded, pin, strlen(pin));
    e = kc_pinp_encrypt(s->protocol, s->shared, s->shared_len, padded, sizeof(padded), out, cap,
                        out_len);
    OPENSSL_cleanse(padded, sizeof(padded));
    return e;
}

static int set_or_change(struct kc_dev *d, const struct kc_info *info, const char *old_pin,
                         const char *pin)
{
    struct kc_client_pin_req req = {0};
    struct kc_pin_response resp;
    struct kc_info store;
    struct session s;
    uint8_t npe[PIN_PAD_LEN + 16], phe[32], msg[sizeof(npe) + sizeof(phe)];
    uint8_t auth[KC_PINP_AUTH_MAX];
    size_t npe_len = 0, phe_len = 0, auth_len = 0, msg_len;
    int protocol, e;

    if (d == NULL || pin == NULL)
        return KC_ERR_INVALID_ARG;
    if ((e = need_info(d, &info, &store)) != KC_OK)
        return e;
    if ((e = check_new_pin(info, pin)) != KC_OK)
        return e;
    if (old_pin != NULL && (strlen(old_pin) == 0 || strlen(old_pin) > KC_PIN_MAX_LEN))
        return KC_ERR_INVALID_ARG;
    if ((e = kc_pin_choose_protocol(info, true, &protocol, NULL)) != KC_OK)
        return e;
    if ((e = session_start(d, protocol, &s)) != KC_OK)
        return e;
    if ((e = new_pin_enc(&s, pin, npe, sizeof(npe), &npe_len)) != KC_OK)
        goto out;
    memcpy(msg, npe, npe_len);
    msg_len = npe_len;
    if (old_pin != NULL) {
        if ((e = pin_hash_enc(&s, old_pin, phe, sizeof(phe), &phe_len)) != KC_OK)
            goto out;
        memcpy(msg + msg_len, phe, phe_len);
        msg_len += phe_len;
    }
    if ((e = kc_pinp_authenticate(protocol, s.shared, s.shared_len, msg, msg_len, auth,
                                  &auth_len)) != KC_OK)
        goto out;
    req.protocol = protocol;
    req.subcmd = old_pin != NULL ? KC_PIN_CHANGE_PIN : KC_PIN_SET_PIN;
    req.key_agreement = s.mine;
    req.pin_uv_auth_param = auth;
    req.pin_uv_auth_param_len = auth_len;
    req.new_pin_enc = npe;
    req.new_pin_enc_len = npe_len;
    if (old_pin != NULL) {
        req.pin_hash_enc = phe;
        req.pin_hash_enc_len = phe_len;
    }
    if ((e = pin_call(d, &req, &resp)) == KC_OK)
        kc_pin_response_free(&resp);
out:
    OPENSSL_cleanse(npe, sizeof(npe));
    OPENSSL_cleanse(phe, sizeof(phe));
    OPENSSL_cleanse(msg, sizeof(msg));
    session_end(&s);
    return e;
}

int kc_pin_set(struct kc_dev *d, const struct kc_info *info, const char *pin)
{
    return set_or_change(d, info, NULL, pin);
}

int kc_pin_change(struct kc_dev *d, const struct kc_info *info, const char *old_pin,
                  const char *new_pin)
{
    if (old_pin == NULL)
        return KC_ERR_INVALID_ARG;
    return set_or_change(d, info, old_pin, new_pin);
}

static int get_token(struct kc_dev *d, const struct kc_info *info, const char *pin, int subcmd,
                     uint8_t permissions, const char *rp_id, struct kc_pin_token *tok)
{
    struct kc_client_pin_req req = {0};
    struct kc_pin_response resp;
    struct kc_info store;
    struct session s;
    uint8_t phe[32], plain[KC_PIN_ENC_MAX];
    size_t phe_len = 0, plain_len = 0;
    int protocol, e;

    if (d == NULL || pin == NULL || tok == NULL || strlen(pin) == 0 || strlen(pin) > KC_PIN_MAX_LEN)
        return KC_ERR_INVALID_ARG;
    memset(tok, 0, sizeof(*tok));
    if ((e = need_info(d, &info, &store)) != KC_OK)
        return e;
    if ((e = kc_pin_choose_protocol(info, true, &protocol, NULL)) != KC_OK)
        return e;
    if ((e = session_start(d, protocol, &s)) != KC_OK)
        return e;
    if ((e = pin_hash_enc(&s, pin, phe, sizeof(phe), &phe_len)) != KC_OK)
        goto out;
    req.protocol = protocol;
    req.subcmd = subcmd;
    req.key_agreement = s.mine;
    req.pin_hash_enc = phe;
    req.pin_hash_enc_len = phe_len;
    if (subcmd == KC_PIN_GET_TOKEN_PIN_PERMISSIONS) {
        req.permissions = permissions;
        req.rp_id = rp_id;
    }
    if ((e = pin_call(d, &req, &resp)) != KC_OK)
        goto out;
    if (resp.token_enc_len == 0) {
        e = KC_ERR_CBOR;
    } else if ((e = kc_pinp_decrypt(protocol, s.shared, s.shared_len, resp.token_enc,
                                    resp.token_enc_len, plain, sizeof(plain), &plain_len)) !=
               KC_OK) {
        e = KC_ERR_CBOR; /* not a whole number of blocks */
    } else if (plain_len != 32 && !(protocol == 1 && plain_len == 16)) {
        e = KC_ERR_CBOR; /* p1 tokens are 16 or 32 bytes, p2 tokens 32 */
    } else {
        memcpy(tok->token, plain, plain_len);
        tok->len = plain_len;
        tok->protocol = protocol;
    }
    kc_pin_response_free(&resp);
out:
    OPENSSL_cleanse(plain, sizeof(plain));
    OPENSSL_cleanse(phe, sizeof(phe));
    session_end(&s);
    return e;
}

int kc_pin_get_token(struct kc_dev *d, const struct kc_info *info, const char *pin,
                     struct kc_pin_token *tok)
{
    return get_token(d, info, pin, KC_PIN_GET_PIN_TOKEN, 0, NULL, tok);
}

int kc_pin_get_token_with_permissions(struct kc_dev *d, const struct kc_info *info, const char *pin,
                                      uint8_t permissions, const char *rp_id,
                                      struct kc_pin_token *tok)
{
    if (permissions == 0)
        return KC_ERR_INVALID_ARG;
    return get_token(d, info, pin, KC_PIN_GET_TOKEN_PIN_PERMISSIONS, permissions, rp_id, tok);
}

int kc_pin_token_for(struct kc_dev *d, const struct kc_info *info, const char *pin,
                     uint8_t permissions, const char *rp_id, struct kc_pin_token *tok)
{
    struct kc_info store;
    int e;

    if (d == NULL)
        return KC_ERR_INVALID_ARG;
    if ((e = need_info(d, &info, &store)) != KC_OK)
        return e;
    if (kc_info_option(info, "pinUvAuthToken") == 1)
        return kc_pin_get_token_with_permissions(d, info, pin, permissions, rp_id, tok);
    return kc_pin_get_token(d, info, pin, tok);
}

int kc_pin_auth_param(const struct kc_pin_token *tok, const uint8_t *msg, size_t len, uint8_t *out,
                      size_t *out_len)
{
    if (tok == NULL || tok->len == 0 || tok->len > KC_PIN_TOKEN_MAX)
        return KC_ERR_INVALID_ARG;
    return kc_pinp_authenticate(tok->protocol, tok->token, tok->len, msg, len, out, out_len);
}

void kc_pin_token_clear(struct kc_pin_token *t)
{
    if (t != NULL)
        OPENSSL_cleanse(t, sizeof(*t));
}
