/* authenticatorCredentialManagement of the virtual card core, driven with
 * libctaphid's own request encoder and reply decoder (ctaphid/credman.h):
 * metadata counts, enumeration of rps and credentials, delete and user
 * update (also through the state file), the cm permission and the token's
 * rp binding, a wrong pinUvAuthParam, the 2.1-PRE command 0x41 and the
 * getInfo options each personality advertises. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/credman.h"
#include "ctaphid/credman_int.h"
#include "ctaphid/pin.h"
#include "harness/vcard/personality.h"
#include "tests/unit/harness/vcard/test_pin_host.h"

#define PIN "1234"

static int vc_sha256_test(const char *s, uint8_t out[32])
{
    unsigned int n = 0;

    return EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL) == 1 && n == 32 ? 0 : -1;
}

static struct vc_card *card_pers(const char *name, const char *state)
{
    struct vc_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.attestation = VC_ATT_NONE;
    cfg.reset_window_ms = 10000;
    cfg.state_path = state;
    cfg.pin = PIN;
    cfg.personality = vc_personality_find(name);
    assert_non_null(cfg.personality);
    return card_from(&cfg);
}

/* A token with perms (0: getPinToken) and an optional rp. */
static uint8_t token_for(struct vc_card *c, int proto, int perms, const char *rp,
                         struct kc_pin_token *tok)
{
    memset(tok, 0, sizeof(*tok));
    tok->protocol = proto;
    tok->len = 32;
    return get_token(c, proto, PIN, perms, rp, tok->token);
}

/* A resident credential for rp with user id byte uid; its id into made. */
static void add_rk(struct vc_card *c, int proto, bool legacy, const char *rp, uint8_t uid,
                   const char *name, struct made *m)
{
    struct kc_pin_token tok;
    uint8_t auth[32];
    struct mc_opts o = {
        .rk = true, .rp = rp, .user_id = uid, .user_name = name, .pin_proto = proto};

    assert_int_equal(token_for(c, proto, legacy ? 0 : KC_PERM_MC, rp, &tok), 0);
    o.pin_auth = auth;
    o.pin_auth_len = param(proto, tok.token, 7, auth);
    assert_int_equal(make_cred(c, &o, NULL, m), 0);
}

/* One credential management request through libctaphid's encoder; the
 * reply decoded (when st is 0 and dec is not NULL). Returns the status. */
static uint8_t cm_send(struct vc_card *c, uint8_t cmd, uint8_t sub, cbor_item_t *params,
                       const struct kc_pin_token *tok, struct kc_credman_reply *dec)
{
    uint8_t req[2048], resp[RESP_CAP], *body = NULL;
    size_t len = 0, rlen = 0;

    assert_int_equal(kc_credman_encode(sub, params, tok, &body, &len), KC_OK);
    if (params != NULL)
        cbor_decref(&params);
    assert_true(len + 1 <= sizeof(req));
    req[0] = cmd;
    memcpy(req + 1, body, len);
    free(body);
    assert_int_equal(vc_card_cbor(c, req, len + 1, resp, sizeof(resp), &rlen, NULL, NULL), 0);
    assert_true(rlen >= 1);
    if (resp[0] == 0 && dec != NULL)
        assert_int_equal(kc_credman_reply_decode(sub, resp + 1, rlen - 1, dec), KC_OK);
    return resp[0];
}

static cbor_item_t *rp_params(const char *rp)
{
    cbor_item_t *m = cbor_new_definite_map(1);
    uint8_t h[32];

    assert_int_equal(vc_sha256_test(rp, h), 0);
    put(m, num(1), bytes(h, 32));
    return m;
}

static cbor_item_t *cred_params(const uint8_t *id, size_t len, const cbor_item_t *user)
{
    cbor_item_t *m = cbor_new_definite_map(2), *d = cbor_new_definite_map(2);

    put(d, text("id"), bytes(id, len));
    put(d, text("type"), text("public-key"));
    put(m, num(2), d);
    if (user != NULL)
        put(m, num(3), cbor_incref((cbor_item_t *)user));
    return m;
}

static cbor_item_t *user_map(uint8_t uid, const char *name)
{
    cbor_item_t *u = cbor_new_definite_map(2);
    uint8_t id[8];

    memset(id, uid, sizeof(id));
    put(u, text("id"), bytes(id, sizeof(id)));
    if (name != NULL)
        put(u, text("name"), text(name));
    return u;
}

static uint64_t existing(struct vc_card *c, uint8_t cmd, const struct kc_pin_token *tok)
{
    struct kc_credman_reply r;
    uint64_t n;

    assert_int_equal(cm_send(c, cmd, KC_CM_GET_METADATA, NULL, tok, &r), 0);

    assert_int_equal(r.meta.existing + r.meta.remaining, 50);
    n = r.meta.existing;
    kc_credman_reply_free(&r);
    return n;
}

static void three_rks(struct vc_card *c, int proto, bool legacy, struct made m[3])
{
    add_rk(c, proto, legacy, "a.example", 1, "alice", &m[0]);
    add_rk(c, proto, legacy, "a.example", 2, "bob", &m[1]);
    add_rk(c, proto, legacy, "b.example", 3, "carol", &m[2]);
}

static void test_metadata_and_enumerate(void **state)
{
    (void)state;
    struct vc_card *c = card_pers("ctap2.1-full", NULL);
    struct kc_pin_token tok;
    struct kc_credman_reply r;
    struct kc_cose_key key;
    struct made m[3];

    assert_int_equal(token_for(c, 2, KC_PERM_CM, NULL, &tok), 0);
    assert_int_equal(existing(c, KC_CTAP2_CRED_MGMT, &tok), 0);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_RPS_BEGIN, NULL, &tok, NULL),
                     KC_CTAP2_ERR_NO_CREDENTIALS);
    three_rks(c, 2, false, m);
    assert_int_equal(token_for(c, 2, KC_PERM_CM, NULL, &tok), 0);
    assert_int_equal(existing(c, KC_CTAP2_CRED_MGMT, &tok), 3);

    /* rps: two, in the order they were first used */
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_RPS_BEGIN, NULL, &tok, &r), 0);
    assert_int_equal(r.total, 2);
    assert_string_equal(r.rp.id, "a.example");
    kc_credman_reply_free(&r);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_RPS_NEXT, NULL, NULL, &r), 0);
    assert_string_equal(r.rp.id, "b.example");
    {
        uint8_t h[32];
        assert_int_equal(vc_sha256_test("b.example", h), 0);
        assert_memory_equal(r.rp.id_hash, h, 32);
    }
    kc_credman_reply_free(&r);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_RPS_NEXT, NULL, NULL, NULL),
                     KC_CTAP2_ERR_NOT_ALLOWED);

    /* a.example's credentials, oldest first, with keys that match */
    assert_int_equal(
        cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_CREDS_BEGIN, rp_params("a.example"), &tok, &r), 0);
    assert_int_equal(r.total, 2);
    assert_string_equal(r.cred.user_name, "alice");
    assert_int_equal(r.cred.cred_id_len, m[0].cred_id_len);
    assert_memory_equal(r.cred.cred_id, m[0].cred_id, m[0].cred_id_len);
    assert_int_equal(r.cred.alg, KC_COSE_ES256);
    assert_int_equal(r.cred.cred_protect, 1);
    assert_true(r.cred.has_large_blob_key); /* ctap2.1-full has large blobs */
    memset(&key, 0, sizeof(key));
    assert_int_equal(kc_cose_decode(r.cred.public_key, r.cred.public_key_len, &key, NULL), KC_OK);
    assert_int_equal(EVP_PKEY_eq(key.pkey, m[0].key.pkey), 1);
    kc_cose_key_free(&key);
    kc_credman_reply_free(&r);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_CREDS_NEXT, NULL, NULL, &r), 0);
    assert_string_equal(r.cred.user_name, "bob");
    assert_memory_equal(r.cred.cred_id, m[1].cred_id, m[1].cred_id_len);
    kc_credman_reply_free(&r);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_CREDS_NEXT, NULL, NULL, NULL),
                     KC_CTAP2_ERR_NOT_ALLOWED);
    /* an rp without credentials, and a next that follows another command */
    assert_int_equal(
        cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_CREDS_BEGIN, rp_params("none.example"), &tok, NULL),
        KC_CTAP2_ERR_NO_CREDENTIALS);
    assert_int_equal(
        cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_CREDS_BEGIN, rp_params("a.example"), &tok, NULL), 0);
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_INFO, NULL, NULL, NULL), 0);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_CREDS_NEXT, NULL, NULL, NULL),
                     KC_CTAP2_ERR_NOT_ALLOWED);
    for (int i = 0; i < 3; i++)
        made_free(&m[i]);
    vc_card_free(c);
}

static void test_delete_and_update(void **state)
{
    (void)state;
    char path[] = "/tmp/kcard-credman-XXXXXX";
    int fd = mkstemp(path);
    struct vc_card *c;
    struct kc_pin_token tok;
    struct kc_credman_reply r;
    struct made m[3];
    cbor_item_t *u;

    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    c = card_pers("ctap2.1-full", path);
    three_rks(c, 1, false, m);
    assert_int_equal(token_for(c, 1, KC_PERM_CM, NULL, &tok), 0);
    /* delete bob */
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_DELETE,
                             cred_params(m[1].cred_id, m[1].cred_id_len, NULL), &tok, NULL),
                     0);
    assert_int_equal(existing(c, KC_CTAP2_CRED_MGMT, &tok), 2);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_DELETE,
                             cred_params(m[1].cred_id, m[1].cred_id_len, NULL), &tok, NULL),
                     KC_CTAP2_ERR_NO_CREDENTIALS);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_DELETE, NULL, &tok, NULL),
                     KC_CTAP2_ERR_MISSING_PARAMETER);
    /* missing parameters are named before a missing pinUvAuthParam */
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_DELETE, NULL, NULL, NULL),
                     KC_CTAP2_ERR_MISSING_PARAMETER);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_DELETE,
                             cred_params(m[0].cred_id, m[0].cred_id_len, NULL), NULL, NULL),
                     KC_CTAP2_ERR_PUAT_REQUIRED);
    /* rename alice; another user id is refused */
    u = user_map(1, "alice2");
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_UPDATE_USER,
                             cred_params(m[0].cred_id, m[0].cred_id_len, u), &tok, NULL),
                     0);
    cbor_decref(&u);
    u = user_map(9, "mallory");
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_UPDATE_USER,
                             cred_params(m[0].cred_id, m[0].cred_id_len, u), &tok, NULL),
                     KC_CTAP1_ERR_INVALID_PARAMETER);
    cbor_decref(&u);
    vc_card_free(c);

    /* both survive a restart on the state file */
    c = card_pers("ctap2.1-full", path);
    assert_int_equal(token_for(c, 2, KC_PERM_CM, NULL, &tok), 0);
    assert_int_equal(existing(c, KC_CTAP2_CRED_MGMT, &tok), 2);
    assert_int_equal(
        cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_CREDS_BEGIN, rp_params("a.example"), &tok, &r), 0);
    assert_int_equal(r.total, 1);
    assert_string_equal(r.cred.user_name, "alice2");
    assert_string_equal(r.cred.display_name, ""); /* left out of the update: removed */
    kc_credman_reply_free(&r);
    vc_card_free(c);
    unlink(path);
    for (int i = 0; i < 3; i++)
        made_free(&m[i]);
}

static void test_permissions_and_auth(void **state)
{
    (void)state;
    struct vc_card *c = card_pers("ctap2.1-full", NULL);
    struct kc_pin_token tok, bad;
    struct made m[3];

    three_rks(c, 2, false, m);
    /* a token without cm */
    assert_int_equal(token_for(c, 2, KC_PERM_GA, "a.example", &tok), 0);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_GET_METADATA, NULL, &tok, NULL),
                     KC_CTAP2_ERR_UNAUTHORIZED_PERMISSION);
    /* cm bound to a.example: metadata and rps refused, a.example allowed, b.example not */
    assert_int_equal(token_for(c, 2, KC_PERM_CM, "a.example", &tok), 0);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_GET_METADATA, NULL, &tok, NULL),
                     KC_CTAP2_ERR_UNAUTHORIZED_PERMISSION);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_RPS_BEGIN, NULL, &tok, NULL),
                     KC_CTAP2_ERR_UNAUTHORIZED_PERMISSION);
    assert_int_equal(
        cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_CREDS_BEGIN, rp_params("a.example"), &tok, NULL), 0);
    assert_int_equal(
        cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_CREDS_BEGIN, rp_params("b.example"), &tok, NULL),
        KC_CTAP2_ERR_UNAUTHORIZED_PERMISSION);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_DELETE,
                             cred_params(m[2].cred_id, m[2].cred_id_len, NULL), &tok, NULL),
                     KC_CTAP2_ERR_UNAUTHORIZED_PERMISSION);
    /* no pinUvAuthParam; a wrong one; a wrong token; an unknown protocol */
    assert_int_equal(token_for(c, 2, KC_PERM_CM, NULL, &tok), 0);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_GET_METADATA, NULL, NULL, NULL),
                     KC_CTAP2_ERR_PUAT_REQUIRED);
    bad = tok;
    bad.token[0] ^= 1;
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_GET_METADATA, NULL, &bad, NULL),
                     KC_CTAP2_ERR_PIN_AUTH_INVALID);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_DELETE,
                             cred_params(m[2].cred_id, m[2].cred_id_len, NULL), &bad, NULL),
                     KC_CTAP2_ERR_PIN_AUTH_INVALID);
    assert_int_equal(existing(c, KC_CTAP2_CRED_MGMT, &tok), 3); /* nothing deleted */
    {
        /* a protocol the card does not offer */
        cbor_item_t *req = cbor_new_definite_map(3);
        uint8_t zero[32] = {0};
        put(req, num(1), num(KC_CM_GET_METADATA));
        put(req, num(3), num(3));
        put(req, num(4), bytes(zero, sizeof(zero)));
        assert_int_equal(send_cbor(c, KC_CTAP2_CRED_MGMT, req, NULL, NULL),
                         KC_CTAP1_ERR_INVALID_PARAMETER);
    }
    /* the MAC covers subCommandParams: one made for a.example does not open b.example */
    {
        cbor_item_t *pa = rp_params("a.example"), *req, *pb = rp_params("b.example");
        uint8_t msg[64], mac[32], resp[RESP_CAP], wire[256];
        size_t ml, macl = 0, rl = 0, wl;
        uint8_t *ser = NULL;
        assert_int_equal(kc_cbor_serialize(pa, &ser, &ml), KC_OK);
        msg[0] = KC_CM_CREDS_BEGIN;
        memcpy(msg + 1, ser, ml);
        free(ser);
        assert_int_equal(kc_pin_auth_param(&tok, msg, ml + 1, mac, &macl), KC_OK);
        req = cbor_new_definite_map(4);
        put(req, num(1), num(KC_CM_CREDS_BEGIN));
        put(req, num(2), pb);
        put(req, num(3), num(2));
        put(req, num(4), bytes(mac, macl));
        ser = NULL;
        assert_int_equal(kc_cbor_serialize(req, &ser, &wl), KC_OK);
        wire[0] = KC_CTAP2_CRED_MGMT;
        memcpy(wire + 1, ser, wl);
        free(ser);
        assert_int_equal(vc_card_cbor(c, wire, wl + 1, resp, sizeof(resp), &rl, NULL, NULL), 0);
        assert_int_equal(resp[0], KC_CTAP2_ERR_PIN_AUTH_INVALID);
        cbor_decref(&req);
        cbor_decref(&pa);
    }
    /* malformed requests */
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, 0x09, NULL, &tok, NULL),
                     KC_CTAP2_ERR_INVALID_SUBCOMMAND);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_CREDS_BEGIN, NULL, &tok, NULL),
                     KC_CTAP2_ERR_MISSING_PARAMETER);
    assert_int_equal(send_raw(c, (const uint8_t[]){KC_CTAP2_CRED_MGMT}, 1),
                     KC_CTAP2_ERR_MISSING_PARAMETER);
    assert_int_equal(send_raw(c, (const uint8_t[]){KC_CTAP2_CRED_MGMT, 0xa1, 0x02, 0x01}, 4),
                     KC_CTAP2_ERR_MISSING_PARAMETER);
    assert_int_equal(send_raw(c, (const uint8_t[]){KC_CTAP2_CRED_MGMT, 0xa1, 0x01, 0x61, 0x78}, 5),
                     KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE);
    /* the 2.1-PRE command works too, with the 2.1 rules (libfido2 1.12 sends it) */
    assert_int_equal(existing(c, KC_CTAP2_CRED_MGMT_PRE, &tok), 3);
    assert_int_equal(token_for(c, 2, KC_PERM_GA, "a.example", &bad), 0);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT_PRE, KC_CM_GET_METADATA, NULL, &bad, NULL),
                     KC_CTAP2_ERR_UNAUTHORIZED_PERMISSION);
    for (int i = 0; i < 3; i++)
        made_free(&m[i]);
    vc_card_free(c);
}

static int info_option(struct vc_card *c, const char *name)
{
    cbor_item_t *r = NULL, *v;
    int out;

    assert_int_equal(send_cbor(c, KC_CTAP2_GET_INFO, NULL, &r, NULL), 0);
    v = map_get_text(map_get(r, 4), name);
    out = v == NULL ? -1 : cbor_get_bool(v);
    cbor_decref(&r);
    return out;
}

static void test_preview_and_info(void **state)
{
    (void)state;
    struct vc_card *c = card_pers("ctap2.1-pre", NULL);
    struct kc_pin_token tok;
    struct kc_credman_reply r;
    struct made m[3];

    assert_int_equal(info_option(c, "credentialMgmtPreview"), 1);
    assert_int_equal(info_option(c, "credMgmt"), -1);
    three_rks(c, 1, true, m);
    /* getPinToken: a 2.1-PRE token has no permissions and is enough */
    assert_int_equal(token_for(c, 1, 0, NULL, &tok), 0);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT, KC_CM_GET_METADATA, NULL, &tok, NULL),
                     KC_CTAP1_ERR_INVALID_COMMAND);
    assert_int_equal(existing(c, KC_CTAP2_CRED_MGMT_PRE, &tok), 3);
    assert_int_equal(
        cm_send(c, KC_CTAP2_CRED_MGMT_PRE, KC_CM_CREDS_BEGIN, rp_params("b.example"), &tok, &r), 0);
    assert_string_equal(r.cred.user_name, "carol");
    assert_false(r.cred.has_large_blob_key); /* ctap2.1-pre has none */
    kc_credman_reply_free(&r);
    assert_int_equal(cm_send(c, KC_CTAP2_CRED_MGMT_PRE, KC_CM_DELETE,
                             cred_params(m[2].cred_id, m[2].cred_id_len, NULL), &tok, NULL),
                     0);
    assert_int_equal(existing(c, KC_CTAP2_CRED_MGMT_PRE, &tok), 2);
    for (int i = 0; i < 3; i++)
        made_free(&m[i]);
    vc_card_free(c);

    c = card_pers("ctap2.1-full", NULL);
    assert_int_equal(info_option(c, "credMgmt"), 1);
    assert_int_equal(info_option(c, "credentialMgmtPreview"), -1);
    vc_card_free(c);
    /* kcard-2.1 keeps its getInfo: no credential management at all */
    c = card_pers("kcard-2.1", NULL);
    assert_int_equal(info_option(c, "credMgmt"), -1);
    assert_int_equal(info_option(c, "credentialMgmtPreview"), -1);
    assert_int_equal(token_for(c, 2, KC_PERM_CM, NULL, &tok), KC_CTAP2_ERR_UNAUTHORIZED_PERMISSION);
    assert_int_equal(send_raw(c, (const uint8_t[]){KC_CTAP2_CRED_MGMT, 0xa1, 0x01, 0x01}, 4),
                     KC_CTAP1_ERR_INVALID_COMMAND);
    vc_card_free(c);
}

/* The client decoder refuses replies missing what the subcommand needs. */
static void test_reply_decoder(void **state)
{
    (void)state;
    struct kc_credman_reply r;
    static const uint8_t meta[] = {0xa2, 0x01, 0x03, 0x02, 0x18, 0x2f};
    static const uint8_t meta_half[] = {0xa1, 0x01, 0x03};
    static const uint8_t meta_neg[] = {0xa2, 0x01, 0x20, 0x02, 0x01};
    static const uint8_t rps_no_total[] = {0xa2, 0x03, 0xa1, 0x62, 'i', 'd',
                                           0x61, 'x',  0x04, 0x41, 0x00};

    assert_int_equal(kc_credman_reply_decode(KC_CM_GET_METADATA, meta, sizeof(meta), &r), KC_OK);
    assert_int_equal(r.meta.existing, 3);
    assert_int_equal(r.meta.remaining, 47);
    kc_credman_reply_free(&r);
    assert_int_equal(kc_credman_reply_decode(KC_CM_GET_METADATA, meta_half, sizeof(meta_half), &r),
                     KC_ERR_CBOR);
    assert_int_equal(kc_credman_reply_decode(KC_CM_GET_METADATA, meta_neg, sizeof(meta_neg), &r),
                     KC_ERR_CBOR);
    assert_int_equal(
        kc_credman_reply_decode(KC_CM_RPS_BEGIN, rps_no_total, sizeof(rps_no_total), &r),
        KC_ERR_CBOR);
    assert_int_equal(kc_credman_reply_decode(KC_CM_DELETE, meta, sizeof(meta), &r),
                     KC_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata_and_enumerate), cmocka_unit_test(test_delete_and_update),
        cmocka_unit_test(test_permissions_and_auth),   cmocka_unit_test(test_preview_and_info),
        cmocka_unit_test(test_reply_decoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
