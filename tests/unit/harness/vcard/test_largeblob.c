/* The virtual card's authenticatorLargeBlobs (CTAP 2.1 6.10) and its
 * growing signature-counter table: fragmented get/set, the array's hash,
 * the lbw permission, persistence across a restart, and more than 4096
 * counters surviving one. */
#include <stdio.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "harness/vcard/card_int.h"
#include "harness/vcard/personality.h"
#include "tests/unit/harness/vcard/test_pin_host.h"

#define FULL "ctap2.1-full" /* maxMsgSize 2048: fragments of 1984 */
#define MAX_FRAG 1984

static struct vc_card *card_named(const char *name, const char *state)
{
    struct vc_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.attestation = VC_ATT_PACKED_BATCH;
    cfg.ctap1 = true;
    cfg.reset_window_ms = 10000;
    cfg.state_path = state;
    cfg.personality = vc_personality_find(name);
    assert_non_null(cfg.personality);
    return card_from(&cfg);
}

static void temp_path(char *path, size_t cap)
{
    static int n;

    snprintf(path, cap, "/tmp/kcard-test-largeblob-%ld-%d.state", (long)getpid(), n++);
    unlink(path);
}

/* get: returns the status; on success copies the fragment into out. */
static uint8_t lb_get(struct vc_card *c, uint64_t want, uint64_t offset, uint8_t *out,
                      size_t *out_len)
{
    cbor_item_t *m = cbor_new_definite_map(2), *r = NULL, *v;
    uint8_t st;

    put(m, num(1), num((int64_t)want));
    put(m, num(3), num((int64_t)offset));
    st = send_cbor(c, KC_CTAP2_LARGE_BLOBS, m, &r, NULL);
    if (st == 0) {
        assert_non_null(r);
        v = map_get(r, 1);
        assert_non_null(v);
        *out_len = cbor_bytestring_length(v);
        memcpy(out, cbor_bytestring_handle(v), *out_len);
        cbor_decref(&r);
    }
    return st;
}

static uint8_t lb_set(struct vc_card *c, const uint8_t *frag, size_t len, uint64_t offset,
                      int64_t total, const uint8_t *token, int proto)
{
    cbor_item_t *m = cbor_new_definite_map(5);

    put(m, num(2), bytes(frag, len));
    put(m, num(3), num((int64_t)offset));
    if (total >= 0)
        put(m, num(4), num(total));
    if (token != NULL) {
        uint8_t msg[70], auth[32];
        size_t alen = 0;

        memset(msg, 0xff, 32);
        msg[32] = 0x0c;
        msg[33] = 0x00;
        for (int i = 0; i < 4; i++)
            msg[34 + i] = (uint8_t)(offset >> (8 * i));
        assert_non_null(SHA256(frag, len, msg + 38));
        assert_int_equal(kc_pinp_authenticate(proto, token, 32, msg, sizeof(msg), auth, &alen), 0);
        put(m, num(5), bytes(auth, alen));
        put(m, num(6), num(proto));
    }
    return send_cbor(c, KC_CTAP2_LARGE_BLOBS, m, NULL, NULL);
}

/* A serialized array of n bytes: a CBOR byte string filler then the hash. */
static void make_array(uint8_t *buf, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n - 16; i++)
        buf[i] = (uint8_t)(seed + i * 7);
    {
        uint8_t h[32];
        assert_non_null(SHA256(buf, n - 16, h));
        memcpy(buf + n - 16, h, 16);
    }
}

/* Writes the whole array in fragments of at most frag bytes. */
static uint8_t set_all(struct vc_card *c, const uint8_t *arr, size_t n, size_t frag,
                       const uint8_t *token, int proto)
{
    uint8_t st = 0;

    for (size_t off = 0; off < n && st == 0; off += frag) {
        size_t k = n - off < frag ? n - off : frag;
        st = lb_set(c, arr + off, k, off, off == 0 ? (int64_t)n : -1, token, proto);
    }
    return st;
}

static size_t get_all(struct vc_card *c, uint8_t *out, size_t cap)
{
    size_t got = 0, k = 0;

    for (;;) {
        assert_true(got + MAX_FRAG <= cap + MAX_FRAG);
        assert_int_equal(lb_get(c, MAX_FRAG, got, out + got, &k), 0);
        got += k;
        if (k < MAX_FRAG)
            return got;
        assert_true(got < cap);
    }
}

static void test_initial_and_offered(void **state)
{
    struct vc_card *c = card_named(FULL, NULL), *plain = card_named("kcard-2.1", NULL);
    uint8_t out[64];
    size_t n = 0;
    cbor_item_t *info = NULL, *opts;

    (void)state;
    assert_int_equal(lb_get(c, 100, 0, out, &n), 0);
    assert_int_equal(n, 17);
    assert_int_equal(out[0], 0x80);
    assert_memory_equal(out + 1, "\x76\xbe\x8b\x52\x8d\x00\x75\xf7\xaa\xe9\x8d\x6f\xa5\x7a\x6d\x3c",
                        16);
    /* reading past the end is refused; at the end it is empty */
    assert_int_equal(lb_get(c, 10, 18, out, &n), KC_CTAP1_ERR_INVALID_PARAMETER);
    assert_int_equal(lb_get(c, 10, 17, out, &n), 0);
    assert_int_equal(n, 0);
    /* more than maxFragmentLength at once */
    assert_int_equal(lb_get(c, MAX_FRAG + 1, 0, out, &n), KC_CTAP1_ERR_INVALID_LENGTH);
    /* getInfo: largeBlobs option and maxSerializedLargeBlobArray */
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_INFO, NULL, &info, NULL), 0);
    opts = map_get(info, 4);
    assert_non_null(opts);
    assert_non_null(map_get_text(opts, "largeBlobs"));
    assert_true(cbor_get_bool(map_get_text(opts, "largeBlobs")));
    assert_non_null(map_get(info, 11));
    assert_int_equal(cbor_get_int(map_get(info, 11)), 4096);
    cbor_decref(&info);
    /* the default personality does not offer it: unknown command, no option */
    assert_int_equal(lb_get(plain, 100, 0, out, &n), KC_CTAP1_ERR_INVALID_COMMAND);
    assert_int_equal(send_cbor(plain, KC_CTAP2_GET_INFO, NULL, &info, NULL), 0);
    assert_null(map_get_text(map_get(info, 4), "largeBlobs"));
    assert_null(map_get(info, 11));
    cbor_decref(&info);
    vc_card_free(plain);
    vc_card_free(c);
}

static void test_fragments_round_trip_persisted(void **state)
{
    char path[128];
    struct vc_card *c;
    uint8_t arr[3000], out[4096 + MAX_FRAG];
    size_t n;

    (void)state;
    temp_path(path, sizeof(path));
    c = card_named(FULL, path);
    make_array(arr, sizeof(arr), 3);
    /* a fragment larger than maxFragmentLength */
    assert_int_equal(lb_set(c, arr, MAX_FRAG + 1, 0, sizeof(arr), NULL, 0),
                     KC_CTAP1_ERR_INVALID_LENGTH);
    /* offset 0 needs length; a later fragment must not carry it */
    assert_int_equal(lb_set(c, arr, 100, 0, -1, NULL, 0), KC_CTAP1_ERR_INVALID_PARAMETER);
    assert_int_equal(lb_set(c, arr, 100, 0, sizeof(arr), NULL, 0), 0);
    assert_int_equal(lb_set(c, arr + 100, 100, 100, sizeof(arr), NULL, 0),
                     KC_CTAP1_ERR_INVALID_PARAMETER);
    /* out of sequence */
    assert_int_equal(lb_set(c, arr + 200, 100, 200, -1, NULL, 0), KC_CTAP1_ERR_INVALID_SEQ);
    /* larger than the card stores; shorter than a hash */
    assert_int_equal(lb_set(c, arr, 100, 0, 4097, NULL, 0), KC_CTAP2_ERR_LARGE_BLOB_STORAGE_FULL);
    assert_int_equal(lb_set(c, arr, 16, 0, 16, NULL, 0), KC_CTAP1_ERR_INVALID_PARAMETER);
    /* whole, in fragments of at most 1984 bytes (two of them), then 700s */
    assert_int_equal(set_all(c, arr, sizeof(arr), MAX_FRAG, NULL, 0), 0);
    n = get_all(c, out, sizeof(out));
    assert_int_equal(n, sizeof(arr));
    assert_memory_equal(out, arr, sizeof(arr));
    make_array(arr, sizeof(arr), 9);
    assert_int_equal(set_all(c, arr, sizeof(arr), 700, NULL, 0), 0);
    vc_card_free(c);
    /* restart: the array is still there */
    c = card_named(FULL, path);
    n = get_all(c, out, sizeof(out));
    assert_int_equal(n, sizeof(arr));
    assert_memory_equal(out, arr, sizeof(arr));
    vc_card_free(c);
    unlink(path);
}

static void test_hash_mismatch_refused(void **state)
{
    struct vc_card *c = card_named(FULL, NULL);
    uint8_t arr[500], bad[500], out[600];
    size_t n = 0;

    (void)state;
    make_array(arr, sizeof(arr), 1);
    assert_int_equal(set_all(c, arr, sizeof(arr), MAX_FRAG, NULL, 0), 0);
    make_array(bad, sizeof(bad), 2);
    bad[sizeof(bad) - 1] ^= 0x01; /* the hash no longer matches */
    assert_int_equal(set_all(c, bad, sizeof(bad), 200, NULL, 0), KC_CTAP2_ERR_INTEGRITY_FAILURE);
    /* the earlier array stays */
    assert_int_equal(lb_get(c, MAX_FRAG, 0, out, &n), 0);
    assert_int_equal(n, sizeof(arr));
    assert_memory_equal(out, arr, sizeof(arr));
    /* and the failed write left nothing to continue */
    assert_int_equal(lb_set(c, bad + 200, 100, 200, -1, NULL, 0), KC_CTAP1_ERR_INVALID_SEQ);
    vc_card_free(c);
}

static void test_lbw_permission(void **state)
{
    struct vc_card *c = card_named(FULL, NULL);
    uint8_t arr[2500], tok[32], out[600];
    size_t n = 0;

    (void)state;
    make_array(arr, sizeof(arr), 5);
    assert_int_equal(set_pin(c, 2, "123456"), 0);
    /* protected: no pinUvAuthParam */
    assert_int_equal(lb_set(c, arr, 100, 0, sizeof(arr), NULL, 0), KC_CTAP2_ERR_PUAT_REQUIRED);
    /* a token without lbw */
    assert_int_equal(get_token(c, 2, "123456", KC_PERM_MC | KC_PERM_GA, "example.com", tok), 0);
    assert_int_equal(lb_set(c, arr, 100, 0, sizeof(arr), tok, 2), KC_CTAP2_ERR_PIN_AUTH_INVALID);
    /* getPinToken grants mc and ga only */
    assert_int_equal(get_token(c, 2, "123456", 0, NULL, tok), 0);
    assert_int_equal(lb_set(c, arr, 100, 0, sizeof(arr), tok, 2), KC_CTAP2_ERR_PIN_AUTH_INVALID);
    /* lbw, no rp needed: protocol 2 then protocol 1 */
    assert_int_equal(get_token(c, 2, "123456", KC_PERM_LBW, NULL, tok), 0);
    /* num() encodes keys and values as 8-byte integers: leave room for them */
    assert_int_equal(set_all(c, arr, sizeof(arr), MAX_FRAG - 128, tok, 2), 0);
    assert_int_equal(get_token(c, 1, "123456", KC_PERM_LBW, NULL, tok), 0);
    /* a param over another offset does not pass */
    {
        cbor_item_t *m = cbor_new_definite_map(6);
        uint8_t msg[70], auth[32];
        size_t alen = 0;

        memset(msg, 0xff, 32);
        msg[32] = 0x0c;
        msg[33] = 0x00;
        memset(msg + 34, 0, 4);
        msg[34] = 1; /* offset 1, sent with offset 0 */
        assert_non_null(SHA256(arr, 100, msg + 38));
        assert_int_equal(kc_pinp_authenticate(1, tok, 32, msg, sizeof(msg), auth, &alen), 0);
        put(m, num(2), bytes(arr, 100));
        put(m, num(3), num(0));
        put(m, num(4), num(sizeof(arr)));
        put(m, num(5), bytes(auth, alen));
        put(m, num(6), num(1));
        assert_int_equal(send_cbor(c, KC_CTAP2_LARGE_BLOBS, m, NULL, NULL),
                         KC_CTAP2_ERR_PIN_AUTH_INVALID);
    }
    make_array(arr, 300, 8);
    assert_int_equal(set_all(c, arr, 300, 128, tok, 1), 0);
    /* get needs no token, and refuses one */
    assert_int_equal(lb_get(c, 500, 0, out, &n), 0);
    assert_int_equal(n, 300);
    assert_memory_equal(out, arr, 300);
    {
        cbor_item_t *m = cbor_new_definite_map(3);
        put(m, num(1), num(10));
        put(m, num(3), num(0));
        put(m, num(6), num(1));
        assert_int_equal(send_cbor(c, KC_CTAP2_LARGE_BLOBS, m, NULL, NULL),
                         KC_CTAP1_ERR_INVALID_PARAMETER);
    }
    /* a token asking for lbw on a card without large blobs is refused */
    {
        struct vc_card *plain = card_named("kcard-2.1", NULL);
        assert_int_equal(set_pin(plain, 2, "123456"), 0);
        assert_int_equal(get_token(plain, 2, "123456", KC_PERM_LBW, NULL, tok),
                         KC_CTAP2_ERR_UNAUTHORIZED_PERMISSION);
        vc_card_free(plain);
    }
    vc_card_free(c);
}

static void test_malformed_requests(void **state)
{
    struct vc_card *c = card_named(FULL, NULL);
    cbor_item_t *m;
    uint8_t raw[] = {KC_CTAP2_LARGE_BLOBS, 0xa1, 0x01};

    (void)state;
    /* neither get nor set; both; no offset */
    m = cbor_new_definite_map(1);
    put(m, num(3), num(0));
    assert_int_equal(send_cbor(c, KC_CTAP2_LARGE_BLOBS, m, NULL, NULL),
                     KC_CTAP1_ERR_INVALID_PARAMETER);
    m = cbor_new_definite_map(3);
    put(m, num(1), num(5));
    put(m, num(2), bytes((const uint8_t *)"x", 1));
    put(m, num(3), num(0));
    assert_int_equal(send_cbor(c, KC_CTAP2_LARGE_BLOBS, m, NULL, NULL),
                     KC_CTAP1_ERR_INVALID_PARAMETER);
    m = cbor_new_definite_map(1);
    put(m, num(1), num(5));
    assert_int_equal(send_cbor(c, KC_CTAP2_LARGE_BLOBS, m, NULL, NULL),
                     KC_CTAP1_ERR_INVALID_PARAMETER);
    /* wrong types */
    m = cbor_new_definite_map(2);
    put(m, num(1), text("five"));
    put(m, num(3), num(0));
    assert_int_equal(send_cbor(c, KC_CTAP2_LARGE_BLOBS, m, NULL, NULL),
                     KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE);
    m = cbor_new_definite_map(3);
    put(m, num(2), text("x"));
    put(m, num(3), num(0));
    put(m, num(4), num(20));
    assert_int_equal(send_cbor(c, KC_CTAP2_LARGE_BLOBS, m, NULL, NULL),
                     KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE);
    /* truncated CBOR */
    assert_int_not_equal(send_raw(c, raw, sizeof(raw)), 0);
    vc_card_free(c);
}

static void test_reset_clears(void **state)
{
    struct vc_card *c = card_named(FULL, NULL);
    struct presence p = {VC_UP_APPROVED, 0};
    uint8_t arr[200], out[64];
    size_t n = 0;

    (void)state;
    make_array(arr, sizeof(arr), 4);
    assert_int_equal(set_all(c, arr, sizeof(arr), MAX_FRAG, NULL, 0), 0);
    assert_int_equal(send_cbor(c, KC_CTAP2_RESET, NULL, NULL, &p), 0);
    assert_int_equal(lb_get(c, 64, 0, out, &n), 0);
    assert_int_equal(n, 17);
    assert_int_equal(out[0], 0x80);
    vc_card_free(c);
}

/* More than the old 4096-entry table: every counter kept, none forgotten,
 * and all of them back after a restart. */
static void test_counters_grow_and_persist(void **state)
{
    enum { N = 5000 };
    char path[128];
    struct vc_card *c;
    uint8_t id[VC_CRED_ID_LEN];

    (void)state;
    temp_path(path, sizeof(path));
    c = card_named("kcard-2.1", path);
    memset(id, 0, sizeof(id));
    for (uint32_t i = 0; i < N; i++) {
        memcpy(id, &i, sizeof(i));
        assert_int_equal(vc_counter_next(c, id, sizeof(id)), 1);
        if (i % 2 == 0)
            assert_int_equal(vc_counter_next(c, id, sizeof(id)), 2);
    }
    assert_int_equal(c->n_ctr, N);
    /* the first counter was not dropped to make room */
    {
        uint32_t z = 0;
        memcpy(id, &z, sizeof(z));
        assert_int_equal(vc_counter_next(c, id, sizeof(id)), 3);
    }
    assert_int_equal(vc_state_save(c), 0);
    vc_card_free(c);
    c = card_named("kcard-2.1", path);
    assert_int_equal(c->n_ctr, N);
    for (uint32_t i = 0; i < N; i++) {
        uint32_t want = i == 0 ? 4 : i % 2 == 0 ? 3 : 2;
        memcpy(id, &i, sizeof(i));
        assert_int_equal(vc_counter_next(c, id, sizeof(id)), want);
    }
    /* a new one starts at 1 and lands in order */
    memset(id, 0xee, sizeof(id));
    assert_int_equal(vc_counter_next(c, id, sizeof(id)), 1);
    assert_int_equal(c->n_ctr, N + 1);
    for (size_t i = 1; i < c->n_ctr; i++)
        assert_true(memcmp(c->ctrs[i - 1].key, c->ctrs[i].key, 16) < 0);
    vc_card_free(c);
    unlink(path);
}

/* A real credential's counter through getAssertion, across a restart. */
static void test_assertion_counter_restart(void **state)
{
    char path[128];
    struct vc_card *c;
    struct presence p = {VC_UP_APPROVED, 0};
    struct mc_opts mo;
    struct ga_opts go;
    struct made made;
    struct got g;

    (void)state;
    temp_path(path, sizeof(path));
    c = card_named("kcard-2.1", path);
    memset(&mo, 0, sizeof(mo));
    assert_int_equal(make_cred(c, &mo, &p, &made), 0);
    memset(&go, 0, sizeof(go));
    go.allow_id = made.cred_id;
    go.allow_len = made.cred_id_len;
    assert_int_equal(get_assert(c, &go, &p, &g), 0);
    assert_int_equal(g.count, 1);
    assert_int_equal(get_assert(c, &go, &p, &g), 0);
    assert_int_equal(g.count, 2);
    vc_card_free(c);
    c = card_named("kcard-2.1", path);
    assert_int_equal(get_assert(c, &go, &p, &g), 0);
    assert_int_equal(g.count, 3);
    made_free(&made);
    vc_card_free(c);
    unlink(path);
}

/* ---- extensions: credBlob, largeBlobKey, credProtect ---- */

struct mc_out {
    uint8_t status;
    uint8_t cred_id[VC_CRED_ID_LEN];
    cbor_item_t *ext; /* authData extensions, NULL when none */
    uint8_t lbk[32];
    bool has_lbk;
};

static void mc_out_free(struct mc_out *o)
{
    if (o->ext != NULL)
        cbor_decref(&o->ext);
}

/* makeCredential with the given extensions map (taken) and rk option. */
static uint8_t mc_ext(struct vc_card *c, bool rk, uint8_t user, cbor_item_t *ext,
                      struct mc_out *out)
{
    struct presence p = {VC_UP_APPROVED, 0};
    struct mc_opts o;
    uint8_t cdh[32];
    cbor_item_t *m, *r = NULL, *v;
    struct kc_authdata ad;

    memset(out, 0, sizeof(*out));
    memset(&o, 0, sizeof(o));
    o.rk = rk;
    o.user_id = user;
    fill_cdh(cdh, 3);
    m = mc_request(&o, cdh);
    if (ext != NULL)
        put(m, num(6), ext);
    out->status = send_cbor(c, KC_CTAP2_MAKE_CREDENTIAL, m, &r, &p);
    if (out->status != 0)
        return out->status;
    v = map_get(r, 2);
    assert_non_null(v);
    assert_int_equal(kc_authdata_parse(cbor_bytestring_handle(v), cbor_bytestring_length(v), &ad),
                     KC_OK);
    assert_int_equal(ad.cred_id_len, VC_CRED_ID_LEN);
    memcpy(out->cred_id, ad.cred_id, VC_CRED_ID_LEN);
    if (ad.extensions_len > 0) {
        struct cbor_load_result res;
        out->ext = cbor_load(ad.extensions, ad.extensions_len, &res);
        assert_non_null(out->ext);
    }
    if ((v = map_get(r, 5)) != NULL) {
        assert_int_equal(cbor_bytestring_length(v), 32);
        memcpy(out->lbk, cbor_bytestring_handle(v), 32);
        out->has_lbk = true;
    }
    cbor_decref(&r);
    return 0;
}

struct ga_out {
    uint8_t status;
    uint8_t cred_id[VC_CRED_ID_LEN];
    cbor_item_t *ext;
    uint8_t lbk[32];
    bool has_lbk;
};

static uint8_t ga_ext(struct vc_card *c, const uint8_t *allow, cbor_item_t *ext, struct ga_out *out)
{
    struct presence p = {VC_UP_APPROVED, 0};
    uint8_t cdh[32];
    cbor_item_t *m = cbor_new_definite_map(4), *r = NULL, *v;
    struct kc_authdata ad;

    memset(out, 0, sizeof(*out));
    fill_cdh(cdh, 9);
    put(m, num(1), text("example.com"));
    put(m, num(2), bytes(cdh, 32));
    if (allow != NULL) {
        cbor_item_t *al = cbor_new_definite_array(1), *d = cbor_new_definite_map(2);
        put(d, text("id"), bytes(allow, VC_CRED_ID_LEN));
        put(d, text("type"), text("public-key"));
        assert_true(cbor_array_push(al, cbor_move(d)));
        put(m, num(3), al);
    }
    if (ext != NULL)
        put(m, num(4), ext);
    out->status = send_cbor(c, KC_CTAP2_GET_ASSERTION, m, &r, &p);
    if (out->status != 0)
        return out->status;
    v = map_get_text(map_get(r, 1), "id");
    assert_non_null(v);
    memcpy(out->cred_id, cbor_bytestring_handle(v), VC_CRED_ID_LEN);
    v = map_get(r, 2);
    assert_int_equal(kc_authdata_parse(cbor_bytestring_handle(v), cbor_bytestring_length(v), &ad),
                     KC_OK);
    if (ad.extensions_len > 0) {
        struct cbor_load_result res;
        out->ext = cbor_load(ad.extensions, ad.extensions_len, &res);
        assert_non_null(out->ext);
    }
    if ((v = map_get(r, 7)) != NULL) {
        assert_int_equal(cbor_bytestring_length(v), 32);
        memcpy(out->lbk, cbor_bytestring_handle(v), 32);
        out->has_lbk = true;
    }
    cbor_decref(&r);
    return 0;
}

static cbor_item_t *ext1(const char *name, cbor_item_t *v)
{
    cbor_item_t *m = cbor_new_definite_map(1);
    put(m, text(name), v);
    return m;
}

static void test_cred_blob_round_trip(void **state)
{
    char path[128];
    struct vc_card *c;
    struct mc_out mo;
    struct ga_out go;
    const uint8_t blob[] = "thirty-two bytes at the most!";
    uint8_t big[33];
    cbor_item_t *v;

    (void)state;
    temp_path(path, sizeof(path));
    c = card_named(FULL, path);
    /* stored with a resident credential: credBlob true */
    assert_int_equal(mc_ext(c, true, 1, ext1("credBlob", bytes(blob, sizeof(blob))), &mo), 0);
    assert_non_null(mo.ext);
    v = map_get_text(mo.ext, "credBlob");
    assert_non_null(v);
    assert_true(cbor_get_bool(v));
    mc_out_free(&mo);
    /* too long, or not resident: credBlob false */
    memset(big, 'x', sizeof(big));
    assert_int_equal(mc_ext(c, true, 2, ext1("credBlob", bytes(big, sizeof(big))), &mo), 0);
    assert_false(cbor_get_bool(map_get_text(mo.ext, "credBlob")));
    mc_out_free(&mo);
    assert_int_equal(mc_ext(c, false, 3, ext1("credBlob", bytes(blob, 4)), &mo), 0);
    assert_false(cbor_get_bool(map_get_text(mo.ext, "credBlob")));
    mc_out_free(&mo);
    /* wrong type */
    assert_int_equal(mc_ext(c, true, 4, ext1("credBlob", text("x")), &mo),
                     KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE);
    vc_card_free(c);
    /* after a restart: getCredBlob returns it; the newest (user 2) has none */
    c = card_named(FULL, path);
    assert_int_equal(ga_ext(c, NULL, ext1("getCredBlob", cbor_build_bool(true)), &go), 0);
    assert_non_null(go.ext);
    assert_int_equal(cbor_bytestring_length(map_get_text(go.ext, "credBlob")), 0);
    cbor_decref(&go.ext);
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_NEXT_ASSERTION, NULL, NULL, NULL), 0);
    /* asked by allowList for the first one */
    {
        struct mc_out first;
        assert_int_equal(mc_ext(c, true, 1, ext1("credBlob", bytes(blob, sizeof(blob))), &first),
                         0);
        mc_out_free(&first);
        assert_int_equal(ga_ext(c, first.cred_id, ext1("getCredBlob", cbor_build_bool(true)), &go),
                         0);
        v = map_get_text(go.ext, "credBlob");
        assert_non_null(v);
        assert_int_equal(cbor_bytestring_length(v), sizeof(blob));
        assert_memory_equal(cbor_bytestring_handle(v), blob, sizeof(blob));
        cbor_decref(&go.ext);
        /* not asked: not there */
        assert_int_equal(ga_ext(c, first.cred_id, NULL, &go), 0);
        assert_null(go.ext);
    }
    vc_card_free(c);
    unlink(path);
    /* a personality without credBlob ignores it */
    c = card_named("kcard-2.1", NULL);
    assert_int_equal(mc_ext(c, true, 1, ext1("credBlob", bytes(blob, 4)), &mo), 0);
    assert_null(mo.ext);
    vc_card_free(c);
}

static void test_large_blob_key(void **state)
{
    struct vc_card *c = card_named(FULL, NULL);
    struct mc_out a, b;
    struct ga_out go;

    (void)state;
    assert_int_equal(mc_ext(c, true, 1, ext1("largeBlobKey", cbor_build_bool(true)), &a), 0);
    assert_true(a.has_lbk);
    assert_int_equal(mc_ext(c, true, 2, ext1("largeBlobKey", cbor_build_bool(true)), &b), 0);
    assert_true(b.has_lbk);
    assert_memory_not_equal(a.lbk, b.lbk, 32);
    /* the same key on getAssertion, only when asked */
    assert_int_equal(ga_ext(c, a.cred_id, ext1("largeBlobKey", cbor_build_bool(true)), &go), 0);
    assert_true(go.has_lbk);
    assert_memory_equal(go.lbk, a.lbk, 32);
    assert_int_equal(ga_ext(c, a.cred_id, NULL, &go), 0);
    assert_false(go.has_lbk);
    /* only true, only for resident credentials */
    assert_int_equal(mc_ext(c, false, 3, ext1("largeBlobKey", cbor_build_bool(true)), &b),
                     KC_CTAP2_ERR_INVALID_OPTION);
    assert_int_equal(mc_ext(c, true, 3, ext1("largeBlobKey", cbor_build_bool(false)), &b),
                     KC_CTAP2_ERR_INVALID_OPTION);
    assert_int_equal(ga_ext(c, a.cred_id, ext1("largeBlobKey", cbor_build_bool(false)), &go),
                     KC_CTAP2_ERR_INVALID_OPTION);
    vc_card_free(c);
}

/* credProtect (CTAP 2.1 12.1): level 2 needs an allowList or UV, level 3 UV. */
static void test_cred_protect(void **state)
{
    struct vc_card *c = card_named(FULL, NULL);
    struct mc_out l1, l2, l3;
    struct ga_out go;

    (void)state;
    assert_int_equal(mc_ext(c, true, 1, ext1("credProtect", num(1)), &l1), 0);
    assert_int_equal(cbor_get_int(map_get_text(l1.ext, "credProtect")), 1);
    assert_int_equal(mc_ext(c, true, 2, ext1("credProtect", num(2)), &l2), 0);
    assert_int_equal(cbor_get_int(map_get_text(l2.ext, "credProtect")), 2);
    assert_int_equal(mc_ext(c, true, 3, ext1("credProtect", num(3)), &l3), 0);
    assert_int_equal(cbor_get_int(map_get_text(l3.ext, "credProtect")), 3);
    mc_out_free(&l1);
    mc_out_free(&l2);
    mc_out_free(&l3);
    /* without allowList or UV only level 1 shows */
    assert_int_equal(ga_ext(c, NULL, NULL, &go), 0);
    assert_memory_equal(go.cred_id, l1.cred_id, VC_CRED_ID_LEN);
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_NEXT_ASSERTION, NULL, NULL, NULL),
                     KC_CTAP2_ERR_NOT_ALLOWED);
    /* with an allowList level 2 answers, level 3 does not */
    assert_int_equal(ga_ext(c, l2.cred_id, NULL, &go), 0);
    assert_memory_equal(go.cred_id, l2.cred_id, VC_CRED_ID_LEN);
    assert_int_equal(ga_ext(c, l3.cred_id, NULL, &go), KC_CTAP2_ERR_NO_CREDENTIALS);
    vc_card_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_and_offered),
        cmocka_unit_test(test_fragments_round_trip_persisted),
        cmocka_unit_test(test_hash_mismatch_refused),
        cmocka_unit_test(test_lbw_permission),
        cmocka_unit_test(test_malformed_requests),
        cmocka_unit_test(test_reset_clears),
        cmocka_unit_test(test_counters_grow_and_persist),
        cmocka_unit_test(test_assertion_counter_restart),
        cmocka_unit_test(test_cred_blob_round_trip),
        cmocka_unit_test(test_large_blob_key),
        cmocka_unit_test(test_cred_protect),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
