/* The host side of ClientPIN for the virtual card core tests: key
 * agreement, setPIN, changePIN, tokens, retries and pinUvAuthParam, built
 * on ctaphid/pin_proto. Included by tests/unit/harness/vcard/test_*.c only. */
#ifndef KCARD_TEST_PIN_HOST_H
#define KCARD_TEST_PIN_HOST_H

#include "ctaphid/pin_proto.h"
#include "tests/unit/harness/vcard/test_card_util.h"

struct host {
    int proto;
    EVP_PKEY *mine;
    uint8_t shared[KC_PINP_SHARED_MAX];
    size_t slen;
};

static inline cbor_item_t *pin_req(int proto, int sub)
{
    cbor_item_t *m = cbor_new_definite_map(8);

    put(m, num(1), num(proto));
    put(m, num(2), num(sub));
    return m;
}

/* getKeyAgreement and ECDH: fills h for one operation */
static inline void host_ka(struct vc_card *c, int proto, struct host *h)
{
    cbor_item_t *r = NULL;
    struct kc_cose_key peer;

    memset(h, 0, sizeof(*h));
    h->proto = proto;
    assert_int_equal(
        send_cbor(c, KC_CTAP2_CLIENT_PIN, pin_req(proto, KC_PIN_GET_KEY_AGREEMENT), &r, NULL), 0);
    memset(&peer, 0, sizeof(peer));
    assert_int_equal(kc_cose_decode_item(map_get(r, 1), &peer), KC_OK);
    assert_int_equal(peer.alg, KC_COSE_ECDH_ES_HKDF_256);
    assert_int_equal(kc_pinp_keypair_new(&h->mine), 0);
    h->slen = sizeof(h->shared);
    assert_int_equal(kc_pinp_shared_secret(proto, h->mine, peer.pkey, h->shared, &h->slen), 0);
    kc_cose_key_free(&peer);
    cbor_decref(&r);
}

static inline void host_free(struct host *h)
{
    EVP_PKEY_free(h->mine);
}

static inline cbor_item_t *host_cose(const struct host *h)
{
    cbor_item_t *k = NULL;

    assert_int_equal(kc_cose_encode_item(h->mine, KC_COSE_ECDH_ES_HKDF_256, &k), 0);
    return k;
}

static inline size_t enc(const struct host *h, const uint8_t *pt, size_t len, uint8_t *out)
{
    size_t n = 0;

    assert_int_equal(kc_pinp_encrypt(h->proto, h->shared, h->slen, pt, len, out, 128, &n), 0);
    return n;
}

static inline size_t new_pin_enc(const struct host *h, const char *pin, uint8_t *out)
{
    uint8_t padded[64] = {0};

    memcpy(padded, pin, strlen(pin));
    return enc(h, padded, 64, out);
}

static inline size_t pin_hash_enc(const struct host *h, const char *pin, uint8_t *out)
{
    uint8_t d[32];

    EVP_Digest(pin, strlen(pin), d, NULL, EVP_sha256(), NULL);
    return enc(h, d, 16, out);
}

static inline uint8_t set_pin(struct vc_card *c, int proto, const char *pin)
{
    struct host h;
    uint8_t npe[128], auth[32];
    size_t nl, al = 0;
    cbor_item_t *m;

    host_ka(c, proto, &h);
    m = pin_req(proto, KC_PIN_SET_PIN);
    nl = new_pin_enc(&h, pin, npe);
    assert_int_equal(kc_pinp_authenticate(proto, h.shared, h.slen, npe, nl, auth, &al), 0);
    put(m, num(3), host_cose(&h));
    put(m, num(4), bytes(auth, al));
    put(m, num(5), bytes(npe, nl));
    host_free(&h);
    return send_cbor(c, KC_CTAP2_CLIENT_PIN, m, NULL, NULL);
}

static inline uint8_t change_pin(struct vc_card *c, int proto, const char *old, const char *pin)
{
    struct host h;
    uint8_t npe[128], phe[64], msg[200], auth[32];
    size_t nl, pl, al = 0;
    cbor_item_t *m;

    host_ka(c, proto, &h);
    m = pin_req(proto, KC_PIN_CHANGE_PIN);
    nl = new_pin_enc(&h, pin, npe);
    pl = pin_hash_enc(&h, old, phe);
    memcpy(msg, npe, nl);
    memcpy(msg + nl, phe, pl);
    assert_int_equal(kc_pinp_authenticate(proto, h.shared, h.slen, msg, nl + pl, auth, &al), 0);
    put(m, num(3), host_cose(&h));
    put(m, num(4), bytes(auth, al));
    put(m, num(5), bytes(npe, nl));
    put(m, num(6), bytes(phe, pl));
    host_free(&h);
    return send_cbor(c, KC_CTAP2_CLIENT_PIN, m, NULL, NULL);
}

/* perms 0: getPinToken; else getPinUvAuthTokenUsingPinWithPermissions,
 * with rpId rp unless it is NULL */
static inline uint8_t get_token(struct vc_card *c, int proto, const char *pin, int perms,
                                const char *rp, uint8_t token[32])
{
    struct host h;
    uint8_t phe[64], tok[64];
    size_t pl, tl = 0;
    cbor_item_t *m, *r = NULL, *v;
    uint8_t st;

    host_ka(c, proto, &h);
    m = pin_req(proto, perms ? KC_PIN_GET_TOKEN_PIN_PERMISSIONS : KC_PIN_GET_PIN_TOKEN);
    pl = pin_hash_enc(&h, pin, phe);
    put(m, num(3), host_cose(&h));
    put(m, num(6), bytes(phe, pl));
    if (perms) {
        put(m, num(9), num(perms));
        if (rp != NULL)
            put(m, num(10), text(rp));
    }
    st = send_cbor(c, KC_CTAP2_CLIENT_PIN, m, &r, NULL);
    if (st == 0) {
        v = map_get(r, 2);
        assert_non_null(v);
        assert_int_equal(kc_pinp_decrypt(proto, h.shared, h.slen, cbor_bytestring_handle(v),
                                         cbor_bytestring_length(v), tok, sizeof(tok), &tl),
                         0);
        assert_int_equal(tl, 32);
        memcpy(token, tok, 32);
        cbor_decref(&r);
    }
    host_free(&h);
    return st;
}

static inline int64_t retries(struct vc_card *c)
{
    cbor_item_t *r = NULL;
    int64_t n;

    assert_int_equal(send_cbor(c, KC_CTAP2_CLIENT_PIN, pin_req(1, KC_PIN_GET_RETRIES), &r, NULL),
                     0);
    n = (int64_t)cbor_get_int(map_get(r, 3));
    cbor_decref(&r);
    return n;
}

static inline size_t param(int proto, const uint8_t token[32], uint8_t seed, uint8_t *out)
{
    uint8_t cdh[32];
    size_t n = 0;

    fill_cdh(cdh, seed);
    assert_int_equal(kc_pinp_authenticate(proto, token, 32, cdh, 32, out, &n), 0);
    return n;
}

#endif
