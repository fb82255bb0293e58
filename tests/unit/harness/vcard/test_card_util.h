/* Helpers shared by the virtual card core tests: a card, a scripted presence
 * callback, CBOR requests built with libcbor, and response parsing. Included
 * by tests/unit/harness/vcard/test_card*.c only (static functions). */
#ifndef KCARD_TEST_CARD_UTIL_H
#define KCARD_TEST_CARD_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cbor.h>
#include <openssl/evp.h>

#include "ctaphid/authdata.h"
#include "ctaphid/cose.h"
#include "ctaphid/status.h"
#include "ctaphid/verify.h"
#include "harness/vcard/card.h"

#define RESP_CAP 4096

struct presence {
    enum vc_up_result answer;
    int calls;
};

static inline enum vc_up_result presence_cb(void *ctx)
{
    struct presence *p = ctx;

    p->calls++;
    return p->answer;
}

/* A card from cfg; the test fails, naming why, if it cannot be made. */
static inline struct vc_card *card_from(const struct vc_config *cfg)
{
    char err[256];
    struct vc_card *c = vc_card_new(cfg, err, sizeof(err));

    if (c == NULL)
        print_error("vc_card_new: %s\n", err);
    assert_non_null(c);
    return c;
}

static inline struct vc_card *card_with(enum vc_attestation att, bool ctap1, const char *state)
{
    struct vc_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.attestation = att;
    cfg.ctap1 = ctap1;
    cfg.reset_window_ms = 10000;
    cfg.state_path = state;
    for (int i = 0; i < 16; i++)
        cfg.aaguid[i] = (uint8_t)(0xa0 + i);
    return card_from(&cfg);
}

static inline void put(cbor_item_t *map, cbor_item_t *k, cbor_item_t *v)
{
    assert_true(cbor_map_add(map, (struct cbor_pair){.key = cbor_move(k), .value = cbor_move(v)}));
}

static inline cbor_item_t *text(const char *s)
{
    return cbor_build_string(s);
}

static inline cbor_item_t *bytes(const uint8_t *p, size_t n)
{
    return cbor_build_bytestring(p, n);
}

static inline cbor_item_t *num(int64_t v)
{
    return v >= 0 ? cbor_build_uint64((uint64_t)v) : cbor_build_negint64((uint64_t)(-(v + 1)));
}

/* Sends cmd with the serialised map (or no body when req is NULL; the map is
 * released). Returns the status byte; *out receives the decoded response. */
static inline uint8_t send_cbor(struct vc_card *c, uint8_t cmd, cbor_item_t *req, cbor_item_t **out,
                                struct presence *p)
{
    uint8_t buf[RESP_CAP], resp[RESP_CAP];
    size_t len = 1, rlen = 0;
    struct cbor_load_result res;

    buf[0] = cmd;
    if (req != NULL) {
        uint8_t *ser = NULL;
        size_t cap = 0, n = cbor_serialize_alloc(req, &ser, &cap);
        assert_true(n > 0 && n < sizeof(buf) - 1);
        memcpy(buf + 1, ser, n);
        len += n;
        free(ser);
        cbor_decref(&req);
    }
    assert_int_equal(
        vc_card_cbor(c, buf, len, resp, sizeof(resp), &rlen, p ? presence_cb : NULL, p), 0);
    assert_true(rlen >= 1);
    if (out != NULL) {
        *out = NULL;
        if (resp[0] == 0 && rlen > 1) {
            *out = cbor_load(resp + 1, rlen - 1, &res);
            assert_non_null(*out);
            assert_int_equal(res.read, rlen - 1);
        }
    } else if (resp[0] == 0) {
        /* commands without a body answer only the status byte */
    }
    return resp[0];
}

static inline uint8_t send_raw(struct vc_card *c, const uint8_t *req, size_t len)
{
    uint8_t resp[RESP_CAP];
    size_t rlen = 0;

    assert_int_equal(vc_card_cbor(c, req, len, resp, sizeof(resp), &rlen, NULL, NULL), 0);
    assert_true(rlen >= 1);
    return resp[0];
}

static inline cbor_item_t *map_get(const cbor_item_t *m, uint64_t key)
{
    struct cbor_pair *p = cbor_map_handle(m);

    for (size_t i = 0; i < cbor_map_size(m); i++)
        if (cbor_isa_uint(p[i].key) && cbor_get_int(p[i].key) == key)
            return p[i].value;
    return NULL;
}

static inline cbor_item_t *map_get_text(const cbor_item_t *m, const char *key)
{
    struct cbor_pair *p = cbor_map_handle(m);

    for (size_t i = 0; i < cbor_map_size(m); i++)
        if (cbor_isa_string(p[i].key) && cbor_string_length(p[i].key) == strlen(key) &&
            memcmp(cbor_string_handle(p[i].key), key, strlen(key)) == 0)
            return p[i].value;
    return NULL;
}

struct mc_opts {
    int alg; /* 0: ES256 */
    bool rk;
    const char *rp; /* default "example.com" */
    uint8_t user_id;
    const char *user_name;
    const uint8_t *exclude_id;
    size_t exclude_len;
    int cred_protect;
    bool hmac_secret;
    const uint8_t *pin_auth; /* with pin_proto */
    size_t pin_auth_len;
    int pin_proto;
    bool uv_option;
};

static inline cbor_item_t *mc_request(const struct mc_opts *o, const uint8_t cdh[32])
{
    cbor_item_t *m = cbor_new_definite_map(9), *rp = cbor_new_definite_map(2);
    cbor_item_t *user = cbor_new_definite_map(3), *params = cbor_new_definite_array(2);
    cbor_item_t *p1 = cbor_new_definite_map(2), *p2 = cbor_new_definite_map(2);
    uint8_t uid[8];

    memset(uid, o->user_id, sizeof(uid));
    put(m, num(1), bytes(cdh, 32));
    put(rp, text("id"), text(o->rp ? o->rp : "example.com"));
    put(rp, text("name"), text("Example"));
    put(m, num(2), rp);
    put(user, text("id"), bytes(uid, sizeof(uid)));
    put(user, text("name"), text(o->user_name ? o->user_name : "alice"));
    put(user, text("displayName"), text("Alice A."));
    put(m, num(3), user);
    put(p1, text("alg"), num(o->alg ? o->alg : KC_COSE_ES256));
    put(p1, text("type"), text("public-key"));
    put(p2, text("alg"), num(KC_COSE_RS256));
    put(p2, text("type"), text("public-key"));
    assert_true(cbor_array_push(params, cbor_move(p2)));
    assert_true(cbor_array_push(params, cbor_move(p1)));
    put(m, num(4), params);
    if (o->exclude_id != NULL) {
        cbor_item_t *ex = cbor_new_definite_array(1), *d = cbor_new_definite_map(2);
        put(d, text("id"), bytes(o->exclude_id, o->exclude_len));
        put(d, text("type"), text("public-key"));
        assert_true(cbor_array_push(ex, cbor_move(d)));
        put(m, num(5), ex);
    }
    if (o->cred_protect || o->hmac_secret) {
        cbor_item_t *ext = cbor_new_definite_map(2);
        if (o->cred_protect)
            put(ext, text("credProtect"), num(o->cred_protect));
        if (o->hmac_secret)
            put(ext, text("hmac-secret"), cbor_build_bool(true));
        put(m, num(6), ext);
    }
    if (o->rk || o->uv_option) {
        cbor_item_t *opt = cbor_new_definite_map(2);
        if (o->rk)
            put(opt, text("rk"), cbor_build_bool(true));
        if (o->uv_option)
            put(opt, text("uv"), cbor_build_bool(true));
        put(m, num(7), opt);
    }
    if (o->pin_auth != NULL || o->pin_proto) {
        put(m, num(8), bytes(o->pin_auth, o->pin_auth_len));
        put(m, num(9), num(o->pin_proto));
    }
    return m;
}

struct made {
    uint8_t status;
    uint8_t cred_id[256];
    size_t cred_id_len;
    struct kc_cose_key key;
    uint8_t auth_data[1024];
    size_t auth_data_len;
    struct kc_authdata ad;
    char fmt[16];
    cbor_item_t *att_stmt; /* owned */
};

static inline void made_free(struct made *m)
{
    kc_cose_key_free(&m->key);
    if (m->att_stmt != NULL)
        cbor_decref(&m->att_stmt);
}

static inline void fill_cdh(uint8_t cdh[32], uint8_t seed)
{
    for (int i = 0; i < 32; i++)
        cdh[i] = (uint8_t)(seed + i);
}

static inline uint8_t make_cred(struct vc_card *c, const struct mc_opts *o, struct presence *p,
                                struct made *out)
{
    uint8_t cdh[32];
    cbor_item_t *r = NULL, *v;

    memset(out, 0, sizeof(*out));
    fill_cdh(cdh, 7);
    out->status = send_cbor(c, KC_CTAP2_MAKE_CREDENTIAL, mc_request(o, cdh), &r, p);
    if (out->status != 0)
        return out->status;
    assert_non_null(r);
    v = map_get(r, 1);
    assert_non_null(v);
    assert_true(cbor_string_length(v) < sizeof(out->fmt));
    memcpy(out->fmt, cbor_string_handle(v), cbor_string_length(v));
    v = map_get(r, 2);
    assert_non_null(v);
    assert_true(cbor_bytestring_length(v) <= sizeof(out->auth_data));
    out->auth_data_len = cbor_bytestring_length(v);
    memcpy(out->auth_data, cbor_bytestring_handle(v), out->auth_data_len);
    out->att_stmt = cbor_incref(map_get(r, 3));
    assert_non_null(out->att_stmt);
    assert_int_equal(kc_authdata_parse(out->auth_data, out->auth_data_len, &out->ad), KC_OK);
    assert_true(out->ad.has_attested);
    out->cred_id_len = out->ad.cred_id_len;
    memcpy(out->cred_id, out->ad.cred_id, out->cred_id_len);
    assert_int_equal(kc_cose_decode(out->ad.cose_key, out->ad.cose_key_len, &out->key, NULL),
                     KC_OK);
    cbor_decref(&r);
    return 0;
}

struct got {
    uint8_t status;
    uint8_t auth_data[512];
    size_t auth_data_len;
    uint8_t sig[128];
    size_t sig_len;
    uint8_t cred_id[256];
    size_t cred_id_len;
    uint8_t user_id[64];
    size_t user_id_len;
    char user_name[65];
    int64_t number;   /* numberOfCredentials, -1 if absent */
    uint8_t ext[256]; /* authData extensions, raw CBOR */
    size_t ext_len;
    uint8_t flags;
    uint32_t count;
};

static inline void parse_assertion(const cbor_item_t *r, struct got *g)
{
    cbor_item_t *v, *cred = map_get(r, 1), *user = map_get(r, 4), *n = map_get(r, 5);

    assert_non_null(cred);
    v = map_get_text(cred, "id");
    assert_non_null(v);
    g->cred_id_len = cbor_bytestring_length(v);
    memcpy(g->cred_id, cbor_bytestring_handle(v), g->cred_id_len);
    v = map_get(r, 2);
    assert_non_null(v);
    g->auth_data_len = cbor_bytestring_length(v);
    assert_true(g->auth_data_len >= 37 && g->auth_data_len <= sizeof(g->auth_data));
    memcpy(g->auth_data, cbor_bytestring_handle(v), g->auth_data_len);
    {
        struct kc_authdata ad;
        assert_int_equal(kc_authdata_parse(g->auth_data, g->auth_data_len, &ad), KC_OK);
        g->ext_len = ad.extensions_len;
        if (ad.extensions_len > 0) {
            assert_true(ad.extensions_len <= sizeof(g->ext));
            memcpy(g->ext, ad.extensions, ad.extensions_len);
        }
    }
    g->flags = g->auth_data[32];
    g->count = (uint32_t)g->auth_data[33] << 24 | (uint32_t)g->auth_data[34] << 16 |
               (uint32_t)g->auth_data[35] << 8 | g->auth_data[36];
    v = map_get(r, 3);
    assert_non_null(v);
    g->sig_len = cbor_bytestring_length(v);
    assert_true(g->sig_len <= sizeof(g->sig));
    memcpy(g->sig, cbor_bytestring_handle(v), g->sig_len);
    g->user_id_len = 0;
    g->user_name[0] = '\0';
    if (user != NULL) {
        v = map_get_text(user, "id");
        assert_non_null(v);
        g->user_id_len = cbor_bytestring_length(v);
        memcpy(g->user_id, cbor_bytestring_handle(v), g->user_id_len);
        if ((v = map_get_text(user, "name")) != NULL) {
            memcpy(g->user_name, cbor_string_handle(v), cbor_string_length(v));
            g->user_name[cbor_string_length(v)] = '\0';
        }
    }
    g->number = n != NULL ? (int64_t)cbor_get_int(n) : -1;
}

struct ga_opts {
    const char *rp;
    const uint8_t *allow_id;
    size_t allow_len;
    bool up_false;
    const uint8_t *pin_auth;
    size_t pin_auth_len;
    int pin_proto;
    uint8_t cdh_seed;
    cbor_item_t *ext; /* extensions map; get_assert takes ownership */
};

static inline uint8_t get_assert(struct vc_card *c, const struct ga_opts *o, struct presence *p,
                                 struct got *g)
{
    cbor_item_t *m = cbor_new_definite_map(6), *r = NULL;
    uint8_t cdh[32];

    memset(g, 0, sizeof(*g));
    fill_cdh(cdh, o->cdh_seed);
    put(m, num(1), text(o->rp ? o->rp : "example.com"));
    put(m, num(2), bytes(cdh, 32));
    if (o->allow_id != NULL) {
        cbor_item_t *al = cbor_new_definite_array(1), *d = cbor_new_definite_map(2);
        put(d, text("id"), bytes(o->allow_id, o->allow_len));
        put(d, text("type"), text("public-key"));
        assert_true(cbor_array_push(al, cbor_move(d)));
        put(m, num(3), al);
    }
    if (o->ext != NULL)
        put(m, num(4), o->ext);
    if (o->up_false) {
        cbor_item_t *opt = cbor_new_definite_map(1);
        put(opt, text("up"), cbor_build_bool(false));
        put(m, num(5), opt);
    }
    if (o->pin_auth != NULL || o->pin_proto) {
        put(m, num(6), bytes(o->pin_auth, o->pin_auth_len));
        put(m, num(7), num(o->pin_proto));
    }
    g->status = send_cbor(c, KC_CTAP2_GET_ASSERTION, m, &r, p);
    if (g->status == 0) {
        assert_non_null(r);
        parse_assertion(r, g);
        cbor_decref(&r);
    }
    return g->status;
}

/* Checks an assertion signature with OpenSSL directly and with kcard's verifier. */
static inline int check_assertion_sig(const struct kc_cose_key *key, const struct got *g,
                                      uint8_t seed)
{
    uint8_t cdh[32], msg[600];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;

    fill_cdh(cdh, seed);
    memcpy(msg, g->auth_data, g->auth_data_len);
    memcpy(msg + g->auth_data_len, cdh, 32);
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL,
                                          key->alg == KC_COSE_EDDSA ? NULL : EVP_sha256(), NULL,
                                          key->pkey),
                     1);
    ok = EVP_DigestVerify(ctx, g->sig, g->sig_len, msg, g->auth_data_len + 32) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

#endif
