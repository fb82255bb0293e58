/* CTAP2 command layer: request encoding (decoded back with libcbor),
 * response decoding (valid, unknown keys, wrong types, truncation), and whole
 * commands through the in-memory transport against a small scripted card
 * that answers INIT, getInfo, clientPIN (protocols 1 and 2), makeCredential,
 * getAssertion/getNextAssertion, selection and reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "ctaphid/authdata.h"
#include "ctaphid/cbor_util.h"
#include "ctaphid/cose.h"
#include "ctaphid/ctap2.h"
#include "ctaphid/io.h"
#include "ctaphid/io_int.h"
#include "ctaphid/pin.h"
#include "ctaphid/pin_proto.h"
#include "ctaphid/status.h"
#include "ctaphid/transport.h"
#include "ctaphid/transport_mem_int.h"

#define CARD_CID 0x0a0b0c0du
#define RP_ID "example.org"

/* ---- small builders (libcbor only; nothing hand-encoded) ---------------- */

static uint8_t *serialize(cbor_item_t *item, size_t *len)
{
    uint8_t *buf = NULL;
    assert_non_null(item);
    assert_int_equal(kc_cbor_serialize(item, &buf, len), KC_OK);
    cbor_decref(&item);
    return buf;
}

static cbor_item_t *str_array(const char *const *s, size_t n)
{
    cbor_item_t *a = cbor_new_definite_array(n);
    for (size_t i = 0; i < n; i++) {
        cbor_item_t *x = kc_cbor_new_text(s[i]);
        assert_true(cbor_array_push(a, x));
        cbor_decref(&x);
    }
    return a;
}

static void put_int(cbor_item_t *map, int64_t k, cbor_item_t *v)
{
    assert_int_equal(kc_cbor_map_add_int(map, k, v), KC_OK);
}

static void put_str(cbor_item_t *map, const char *k, cbor_item_t *v)
{
    assert_int_equal(kc_cbor_map_add_str(map, k, v), KC_OK);
}

/* getInfo as a card would send it; protos may be empty */
static uint8_t *info_bytes(const int *protos, size_t n_protos, int client_pin, bool token_opt,
                           bool extra_unknown, size_t *len)
{
    static const char *const versions[] = {"FIDO_2_0", "FIDO_2_1", "U2F_V2"};
    static const char *const exts[] = {"credProtect", "hmac-secret"};
    static const char *const transports[] = {"usb"};
    cbor_item_t *m = cbor_new_definite_map(16), *opts = cbor_new_definite_map(4);
    cbor_item_t *algs = cbor_new_definite_array(2), *pp;
    uint8_t aaguid[16];

    memset(aaguid, 0x11, sizeof(aaguid));
    put_int(m, 1, str_array(versions, 3));
    put_int(m, 2, str_array(exts, 2));
    put_int(m, 3, kc_cbor_new_bytes(aaguid, 16));
    put_str(opts, "rk", kc_cbor_new_bool(true));
    put_str(opts, "up", kc_cbor_new_bool(true));
    if (client_pin >= 0)
        put_str(opts, "clientPin", kc_cbor_new_bool(client_pin == 1));
    if (token_opt)
        put_str(opts, "pinUvAuthToken", kc_cbor_new_bool(true));
    put_int(m, 4, opts);
    put_int(m, 5, kc_cbor_new_int(1200));
    if (n_protos > 0) {
        pp = cbor_new_definite_array(n_protos);
        for (size_t i = 0; i < n_protos; i++) {
            cbor_item_t *x = kc_cbor_new_int(protos[i]);
            assert_true(cbor_array_push(pp, x));
            cbor_decref(&x);
        }
        put_int(m, 6, pp);
    }
    put_int(m, 7, kc_cbor_new_int(8));
    put_int(m, 8, kc_cbor_new_int(128));
    put_int(m, 9, str_array(transports, 1));
    for (int i = 0; i < 2; i++) {
        cbor_item_t *a = cbor_new_definite_map(2);
        put_str(a, "alg", kc_cbor_new_int(i == 0 ? KC_COSE_ES256 : KC_COSE_EDDSA));
        put_str(a, "type", kc_cbor_new_text("public-key"));
        assert_true(cbor_array_push(algs, a));
        cbor_decref(&a);
    }
    put_int(m, 10, algs);
    put_int(m, 13, kc_cbor_new_int(4));
    put_int(m, 14, kc_cbor_new_int(0x010203));
    put_int(m, 20, kc_cbor_new_int(25));
    if (extra_unknown) {
        put_int(m, 0x42, kc_cbor_new_text("vendor"));
        put_int(m, 0x15, kc_cbor_new_bytes(aaguid, 3));
    }
    return serialize(m, len);
}

static EVP_PKEY *cred_key;

/* authData: rpIdHash flags signCount [aaguid credIdLen credId COSE] [ext] */
static size_t authdata_bytes(uint8_t *ad, size_t cap, uint8_t flags, uint32_t count,
                             size_t cred_id_len, bool add_ext)
{
    unsigned int hl = 0;
    size_t off = 0;

    assert_true(cap >= 37);
    assert_int_equal(EVP_Digest(RP_ID, strlen(RP_ID), ad, &hl, EVP_sha256(), NULL), 1);
    off = 32;
    ad[off++] = flags;
    ad[off++] = (uint8_t)(count >> 24);
    ad[off++] = (uint8_t)(count >> 16);
    ad[off++] = (uint8_t)(count >> 8);
    ad[off++] = (uint8_t)count;
    if (flags & KC_AD_AT) {
        uint8_t *cose = NULL;
        size_t cose_len = 0;
        assert_true(cap >= off + 18 + cred_id_len);
        memset(ad + off, 0x22, 16);
        off += 16;
        ad[off++] = (uint8_t)(cred_id_len >> 8);
        ad[off++] = (uint8_t)cred_id_len;
        for (size_t i = 0; i < cred_id_len; i++)
            ad[off++] = (uint8_t)(0xc0 + i);
        assert_int_equal(kc_cose_encode(cred_key, KC_COSE_ES256, &cose, &cose_len), KC_OK);
        assert_true(cap >= off + cose_len);
        memcpy(ad + off, cose, cose_len);
        off += cose_len;
        free(cose);
    }
    if (add_ext) {
        cbor_item_t *m = cbor_new_definite_map(1);
        size_t n;
        uint8_t *e;
        put_str(m, "credProtect", kc_cbor_new_int(2));
        e = serialize(m, &n);
        assert_true(cap >= off + n);
        memcpy(ad + off, e, n);
        off += n;
        free(e);
    }
    return off;
}

static uint8_t *attestation_bytes(uint8_t flags, bool unknown_key, size_t *len)
{
    uint8_t ad[512], sig[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    size_t ad_len = authdata_bytes(ad, sizeof(ad), flags, 0, 16, (flags & KC_AD_ED) != 0);
    cbor_item_t *m = cbor_new_definite_map(5), *st = cbor_new_definite_map(2);

    put_int(m, 1, kc_cbor_new_text("packed"));
    put_int(m, 2, kc_cbor_new_bytes(ad, ad_len));
    put_str(st, "alg", kc_cbor_new_int(KC_COSE_ES256));
    put_str(st, "sig", kc_cbor_new_bytes(sig, sizeof(sig)));
    put_int(m, 3, st);
    if (unknown_key)
        put_int(m, 0x30, kc_cbor_new_text("ignored"));
    put_int(m, 4, kc_cbor_new_bool(false));
    return serialize(m, len);
}

static uint8_t *assertion_bytes(uint8_t id_byte, int n_creds, bool unknown_key, size_t *len)
{
    uint8_t ad[64], sig[70], cid[20], uid[8];
    size_t ad_len = authdata_bytes(ad, sizeof(ad), KC_AD_UP, 7, 0, false);
    cbor_item_t *m = cbor_new_definite_map(6), *c = cbor_new_definite_map(2),
                *u = cbor_new_definite_map(3);

    memset(sig, 0x30, sizeof(sig));
    memset(cid, id_byte, sizeof(cid));
    memset(uid, 0x55, sizeof(uid));
    put_str(c, "id", kc_cbor_new_bytes(cid, sizeof(cid)));
    put_str(c, "type", kc_cbor_new_text("public-key"));
    put_int(m, 1, c);
    put_int(m, 2, kc_cbor_new_bytes(ad, ad_len));
    put_int(m, 3, kc_cbor_new_bytes(sig, sizeof(sig)));
    put_str(u, "id", kc_cbor_new_bytes(uid, sizeof(uid)));
    put_str(u, "name", kc_cbor_new_text("alice"));
    put_str(u, "displayName", kc_cbor_new_text("Alice A."));
    put_int(m, 4, u);
    if (n_creds > 0)
        put_int(m, 5, kc_cbor_new_int(n_creds));
    if (unknown_key)
        put_int(m, 0x33, kc_cbor_new_bool(true));
    return serialize(m, len);
}

/* every strict prefix of a valid encoding must be rejected as CBOR */
typedef int (*decode_fn)(const uint8_t *, size_t, void *);

static void assert_prefixes_fail(const uint8_t *buf, size_t len, decode_fn fn, void *out)
{
    for (size_t i = 0; i < len; i++)
        assert_int_equal(fn(buf, i, out), KC_ERR_CBOR);
}

static int info_fn(const uint8_t *b, size_t n, void *o)
{
    return kc_info_decode(b, n, o);
}

static int att_fn(const uint8_t *b, size_t n, void *o)
{
    int r = kc_attestation_decode(b, n, o);
    kc_attestation_free(o);
    return r;
}

static int assert_fn(const uint8_t *b, size_t n, void *o)
{
    int r = kc_assertion_decode(b, n, o);
    kc_assertion_free(o);
    return r;
}

static int pinresp_fn(const uint8_t *b, size_t n, void *o)
{
    int r = kc_pin_response_decode(b, n, o);
    kc_pin_response_free(o);
    return r;
}

/* map keys in CTAP2 canonical order: shorter encoding first, then bytes */
static void assert_canonical(const cbor_item_t *map)
{
    struct cbor_pair *p = cbor_map_handle(map);
    for (size_t i = 1; i < cbor_map_size(map); i++) {
        unsigned char *a = NULL, *b = NULL;
        size_t ac = 0, bc = 0;
        size_t al = cbor_serialize_alloc(p[i - 1].key, &a, &ac);
        size_t bl = cbor_serialize_alloc(p[i].key, &b, &bc);
        assert_true(al < bl || (al == bl && memcmp(a, b, al) < 0));
        free(a);
        free(b);
    }
}

/* ---- hostile CBOR ------------------------------------------------------- */

/* Malformed on purpose, so these few bytes are written out by hand: libcbor
 * cannot build them. A header promising 2^32 items must fail at once rather
 * than allocate; indefinite lengths are not CTAP2 canonical CBOR. */
static void test_cbor_load_hostile(void **state)
{
    static const uint8_t huge_array[] = {0x9a, 0xfe, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t huge_map[] = {0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x01, 0x02};
    static const uint8_t nested_huge[] = {0xa1, 0x01, 0x9a, 0xfe, 0xff, 0xff, 0xff, 0x25};
    static const uint8_t map_owes_more[] = {0xa3, 0x01, 0x02, 0x03}; /* 3 pairs, 2 items */
    static const uint8_t indef_array[] = {0x9f, 0x01, 0xff};
    static const uint8_t indef_bytes[] = {0x5f, 0x41, 0x00, 0xff};
    static const uint8_t stray_break[] = {0xff};
    static const uint8_t ok_map[] = {0xa1, 0x01, 0x02};
    cbor_item_t *item = NULL;
    size_t used = 0;
    struct kc_info info;
    (void)state;

    assert_int_equal(kc_cbor_load(huge_array, sizeof(huge_array), &item), KC_ERR_CBOR);
    assert_int_equal(kc_cbor_load(huge_map, sizeof(huge_map), &item), KC_ERR_CBOR);
    assert_int_equal(kc_cbor_load(nested_huge, sizeof(nested_huge), &item), KC_ERR_CBOR);
    assert_int_equal(kc_cbor_load(map_owes_more, sizeof(map_owes_more), &item), KC_ERR_CBOR);
    assert_int_equal(kc_cbor_load(indef_array, sizeof(indef_array), &item), KC_ERR_CBOR);
    assert_int_equal(kc_cbor_load(indef_bytes, sizeof(indef_bytes), &item), KC_ERR_CBOR);
    assert_int_equal(kc_cbor_load(stray_break, sizeof(stray_break), &item), KC_ERR_CBOR);
    assert_null(item);
    assert_int_equal(kc_info_decode(nested_huge, sizeof(nested_huge), &info), KC_ERR_CBOR);
    /* the good map, alone and as a prefix */
    assert_int_equal(kc_cbor_load(ok_map, sizeof(ok_map), &item), KC_OK);
    assert_int_equal(cbor_map_size(item), 1);
    cbor_decref(&item);
    assert_int_equal(kc_cbor_load_prefix(huge_map + 9, 2, &item, &used), KC_OK);
    assert_int_equal(used, 1);
    cbor_decref(&item);
    assert_int_equal(kc_cbor_load(huge_map + 9, 2, &item), KC_ERR_CBOR); /* trailing byte */
}

/* ---- getInfo decoding --------------------------------------------------- */

static void test_info_decode(void **state)
{
    static const int protos[] = {2, 1};
    struct kc_info info;
    char buf[32];
    size_t len;
    uint8_t *b = info_bytes(protos, 2, 1, true, true, &len);
    (void)state;

    assert_int_equal(kc_info_decode(b, len, &info), KC_OK);
    assert_int_equal(info.n_versions, 3);
    assert_string_equal(info.versions[1], "FIDO_2_1");
    assert_true(kc_info_has_version(&info, "U2F_V2"));
    assert_false(kc_info_has_version(&info, "FIDO_2_2"));
    assert_true(kc_info_has_extension(&info, "hmac-secret"));
    assert_int_equal(info.aaguid[15], 0x11);
    assert_int_equal(kc_info_option(&info, "rk"), 1);
    assert_int_equal(kc_info_option(&info, "clientPin"), 1);
    assert_int_equal(kc_info_option(&info, "uv"), -1);
    assert_int_equal(info.max_msg_size, 1200);
    assert_int_equal(info.n_pin_protocols, 2);
    assert_int_equal(info.pin_protocols[0], 2);
    assert_true(kc_info_supports_pin_protocol(&info, 1));
    assert_false(kc_info_supports_pin_protocol(&info, 3));
    assert_int_equal(info.max_cred_count_in_list, 8);
    assert_int_equal(info.max_cred_id_len, 128);
    assert_string_equal(info.transports[0], "usb");
    assert_int_equal(info.n_algorithms, 2);
    assert_string_equal(info.algorithms[1].type, "public-key");
    assert_int_equal(info.algorithms[1].alg, KC_COSE_EDDSA);
    assert_int_equal(info.min_pin_length, 4);
    assert_int_equal(info.firmware_version, 0x010203);
    assert_int_equal(info.remaining_discoverable_credentials, 25);
    assert_true(kc_info_has(&info, KC_INFO_FIRMWARE_VERSION));
    assert_false(kc_info_has(&info, KC_INFO_MAX_LARGE_BLOB));
    assert_false(info.truncated);
    kc_info_pin_protocols_str(&info, buf, sizeof(buf));
    assert_string_equal(buf, "2, 1");

    assert_prefixes_fail(b, len, info_fn, &info);
    /* a trailing byte is not a getInfo response */
    b = realloc(b, len + 1);
    b[len] = 0x00;
    assert_int_equal(kc_info_decode(b, len + 1, &info), KC_ERR_CBOR);
    free(b);
}

/* one wrong field at a time, everything else valid */
static void info_with(int64_t key, cbor_item_t *value, int expect)
{
    static const char *const v[] = {"FIDO_2_0"};
    cbor_item_t *m = cbor_new_definite_map(3);
    struct kc_info info;
    uint8_t aaguid[16] = {0}, *b;
    size_t len;

    put_int(m, 1, str_array(v, 1));
    if (key != 3)
        put_int(m, 3, kc_cbor_new_bytes(aaguid, 16));
    put_int(m, key, value);
    b = serialize(m, &len);
    assert_int_equal(kc_info_decode(b, len, &info), expect);
    free(b);
}

static void test_info_wrong_types(void **state)
{
    uint8_t x[17] = {0};
    cbor_item_t *opts = cbor_new_definite_map(1), *pp = cbor_new_definite_array(1), *t;
    (void)state;

    info_with(3, kc_cbor_new_bytes(x, 15), KC_ERR_CBOR);
    info_with(3, kc_cbor_new_bytes(x, 17), KC_ERR_CBOR);
    info_with(3, kc_cbor_new_text("0123456789abcdef"), KC_ERR_CBOR);
    info_with(2, kc_cbor_new_text("hmac-secret"), KC_ERR_CBOR);
    info_with(5, kc_cbor_new_int(-1), KC_ERR_CBOR);
    info_with(5, kc_cbor_new_bool(true), KC_ERR_CBOR);
    put_str(opts, "rk", kc_cbor_new_int(1));
    info_with(4, opts, KC_ERR_CBOR);
    t = kc_cbor_new_text("2");
    assert_true(cbor_array_push(pp, t));
    cbor_decref(&t);
    info_with(6, pp, KC_ERR_CBOR);
    info_with(12, kc_cbor_new_int(0), KC_ERR_CBOR);
    /* unknown keys with any type are skipped */
    info_with(0x63, kc_cbor_new_bool(false), KC_OK);

    /* not a map, an empty buffer, a map without versions */
    {
        struct kc_info info;
        size_t len;
        uint8_t *b = serialize(kc_cbor_new_int(4), &len);
        assert_int_equal(kc_info_decode(b, len, &info), KC_ERR_CBOR);
        free(b);
        assert_int_equal(kc_info_decode(NULL, 0, &info), KC_ERR_CBOR);
        b = serialize(cbor_new_definite_map(0), &len);
        assert_int_equal(kc_info_decode(b, len, &info), KC_ERR_CBOR);
        free(b);
    }
}

static void test_info_long_lists_truncate(void **state)
{
    const char *many[KC_INFO_LIST_MAX + 5];
    char longname[KC_INFO_NAME_MAX + 10];
    struct kc_info info;
    (void)state;

    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    for (size_t i = 0; i < KC_INFO_LIST_MAX + 5; i++)
        many[i] = i == 3 ? longname : "ext";
    {
        cbor_item_t *m = cbor_new_definite_map(3);
        uint8_t aaguid[16] = {0}, *b;
        size_t len;
        put_int(m, 1, str_array(many, 2));
        put_int(m, 2, str_array(many, KC_INFO_LIST_MAX + 5));
        put_int(m, 3, kc_cbor_new_bytes(aaguid, 16));
        b = serialize(m, &len);
        assert_int_equal(kc_info_decode(b, len, &info), KC_OK);
        free(b);
    }
    assert_true(info.truncated);
    assert_int_equal(info.n_extensions, KC_INFO_LIST_MAX);
}

static void test_pin_protocol_choice(void **state)
{
    static const int only1[] = {1}, both[] = {1, 2};
    struct kc_info info;
    struct kc_pin_outcome out;
    uint8_t *b;
    size_t len;
    int p;
    char names[16];
    (void)state;

    /* no protocols, no clientPin option, no PIN: proceed, and say so */
    b = info_bytes(NULL, 0, -1, false, false, &len);
    assert_int_equal(kc_info_decode(b, len, &info), KC_OK);
    free(b);
    assert_int_equal(kc_pin_choose_protocol(&info, false, &p, &out), KC_OK);
    assert_int_equal(p, 0);
    assert_true(out.no_protocol);
    /* ... and with a PIN: our own error, naming what the card advertised */
    assert_int_equal(kc_pin_choose_protocol(&info, true, &p, &out), KC_ERR_NO_PIN_PROTOCOL);
    kc_info_pin_protocols_str(&info, names, sizeof(names));
    assert_string_equal(names, "none");
    assert_string_not_equal(kc_strerror(KC_ERR_NO_PIN_PROTOCOL),
                            "No compatible PIN/UV protocols supported!");

    /* only protocol 1 */
    b = info_bytes(only1, 1, 1, false, false, &len);
    assert_int_equal(kc_info_decode(b, len, &info), KC_OK);
    free(b);
    assert_int_equal(kc_pin_choose_protocol(&info, true, &p, &out), KC_OK);
    assert_int_equal(p, 1);
    assert_int_equal(kc_pin_choose_protocol(&info, false, &p, &out), KC_OK);
    assert_false(out.no_protocol);

    /* both, listed 1 first: 2 is still preferred */
    b = info_bytes(both, 2, 0, false, false, &len);
    assert_int_equal(kc_info_decode(b, len, &info), KC_OK);
    free(b);
    assert_int_equal(kc_pin_choose_protocol(&info, true, &p, &out), KC_OK);
    assert_int_equal(p, 2);
    assert_int_equal(out.protocol, 2);

    /* a 2.0 card with clientPin but no list speaks protocol 1 */
    b = info_bytes(NULL, 0, 1, false, false, &len);
    assert_int_equal(kc_info_decode(b, len, &info), KC_OK);
    free(b);
    assert_int_equal(kc_pin_choose_protocol(&info, true, &p, &out), KC_OK);
    assert_int_equal(p, 1);
}

/* ---- authData ----------------------------------------------------------- */

static void test_authdata_parse(void **state)
{
    uint8_t ad[600];
    struct kc_authdata a;
    size_t n;
    (void)state;

    n = authdata_bytes(ad, sizeof(ad), KC_AD_UP | KC_AD_UV, 0x01020304, 0, false);
    assert_int_equal(n, 37);
    assert_int_equal(kc_authdata_parse(ad, n, &a), KC_OK);
    assert_int_equal(a.flags, KC_AD_UP | KC_AD_UV);
    assert_int_equal(a.sign_count, 0x01020304);
    assert_false(a.has_attested);
    assert_null(a.extensions);
    assert_int_equal(kc_authdata_parse(ad, 36, &a), KC_ERR_CBOR);
    assert_int_equal(kc_authdata_parse(ad, 38, &a), KC_ERR_CBOR); /* trailing byte */

    n = authdata_bytes(ad, sizeof(ad), KC_AD_UP | KC_AD_AT | KC_AD_ED, 1, 16, true);
    assert_int_equal(kc_authdata_parse(ad, n, &a), KC_OK);
    assert_true(a.has_attested);
    assert_int_equal(a.aaguid[0], 0x22);
    assert_int_equal(a.cred_id_len, 16);
    assert_int_equal(a.cred_id[15], 0xcf);
    assert_non_null(a.cose_key);
    assert_ptr_equal(a.cose_key, ad + 37 + 18 + 16);
    assert_non_null(a.extensions);
    assert_int_equal(a.extensions_len, n - (size_t)(a.extensions - ad));
    {
        struct kc_cose_key k = {0};
        assert_int_equal(kc_cose_decode(a.cose_key, a.cose_key_len, &k, NULL), KC_OK);
        assert_int_equal(k.alg, KC_COSE_ES256);
        kc_cose_key_free(&k);
    }
    /* every truncation fails */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(kc_authdata_parse(ad, i, &a), KC_ERR_CBOR);
    /* ED set without extensions, ED clear with them */
    ad[32] = KC_AD_UP | KC_AD_AT;
    assert_int_equal(kc_authdata_parse(ad, n, &a), KC_ERR_CBOR);
    n = authdata_bytes(ad, sizeof(ad), KC_AD_UP | KC_AD_AT, 1, 16, false);
    ad[32] |= KC_AD_ED;
    assert_int_equal(kc_authdata_parse(ad, n, &a), KC_ERR_CBOR);
    /* AT set with nothing behind it */
    n = authdata_bytes(ad, sizeof(ad), KC_AD_UP, 1, 0, false);
    ad[32] |= KC_AD_AT;
    assert_int_equal(kc_authdata_parse(ad, n, &a), KC_ERR_CBOR);
    /* credential id length 0 and 1024 */
    n = authdata_bytes(ad, sizeof(ad), KC_AD_UP | KC_AD_AT, 1, 16, false);
    ad[53] = 0;
    ad[54] = 0;
    assert_int_equal(kc_authdata_parse(ad, n, &a), KC_ERR_CBOR);
    ad[53] = 0x04;
    assert_int_equal(kc_authdata_parse(ad, n, &a), KC_ERR_CBOR);
    /* the COSE key is not a map */
    n = authdata_bytes(ad, sizeof(ad), KC_AD_UP | KC_AD_AT, 1, 16, false);
    ad[37 + 18 + 16] = 0x01; /* an unsigned int where the map starts */
    assert_int_equal(kc_authdata_parse(ad, n, &a), KC_ERR_CBOR);
    assert_int_equal(kc_authdata_parse(NULL, 0, &a), KC_ERR_INVALID_ARG);
}

/* ---- makeCredential ----------------------------------------------------- */

static void test_make_credential_encode(void **state)
{
    static const uint8_t uid[] = {1, 2, 3, 4};
    static const uint8_t ex1[] = {0xe1, 0xe2}, ex2[] = {0xe3};
    struct kc_cred_id excl[2] = {{ex1, sizeof(ex1)}, {ex2, sizeof(ex2)}};
    uint8_t param[16], *buf = NULL, *ext;
    size_t len = 0, ext_len;
    struct kc_cred_request req;
    cbor_item_t *m, *v, *e;
    (void)state;

    kc_cred_request_init(&req);
    memset(req.client_data_hash, 0xcd, 32);
    memset(param, 0xaa, sizeof(param));
    req.rp_id = RP_ID;
    req.rp_name = "Example";
    req.user_id = uid;
    req.user_id_len = sizeof(uid);
    req.user_name = "alice";
    req.user_display_name = "Alice";
    req.algs[0] = KC_COSE_EDDSA;
    req.algs[1] = KC_COSE_ES256;
    req.n_algs = 2;
    req.exclude = excl;
    req.n_exclude = 2;
    req.rk = true;
    req.uv = true;
    /* the caller's own extension map goes through; helpers are merged */
    e = cbor_new_definite_map(1);
    put_str(e, "credBlob", kc_cbor_new_bytes(ex1, sizeof(ex1)));
    ext = serialize(e, &ext_len);
    req.extensions_cbor = ext;
    req.extensions_len = ext_len;
    req.cred_protect = 2;
    req.hmac_secret = true;

    assert_int_equal(kc_make_credential_encode(&req, NULL, 0, 0, &buf, &len), KC_OK);
    assert_int_equal(kc_cbor_load(buf, len, &m), KC_OK);
    assert_int_equal(kc_cbor_map_check(m, false), KC_OK);
    assert_canonical(m);
    v = kc_cbor_map_get_int(m, 1);
    assert_true(cbor_isa_bytestring(v) && cbor_bytestring_length(v) == 32);
    v = kc_cbor_map_get_int(m, 2);
    assert_true(kc_cbor_text_eq(kc_cbor_map_get_str(v, "id"), RP_ID));
    assert_true(kc_cbor_text_eq(kc_cbor_map_get_str(v, "name"), "Example"));
    assert_canonical(v);
    v = kc_cbor_map_get_int(m, 3);
    assert_int_equal(cbor_map_size(v), 3);
    assert_int_equal(cbor_bytestring_length(kc_cbor_map_get_str(v, "id")), 4);
    assert_true(kc_cbor_text_eq(kc_cbor_map_get_str(v, "displayName"), "Alice"));
    assert_canonical(v);
    v = kc_cbor_map_get_int(m, 4);
    assert_true(cbor_isa_array(v) && cbor_array_size(v) == 2);
    {
        int64_t alg;
        cbor_item_t *p0 = cbor_array_get(v, 0);
        assert_int_equal(kc_cbor_int(kc_cbor_map_get_str(p0, "alg"), &alg), KC_OK);
        assert_int_equal(alg, KC_COSE_EDDSA);
        assert_true(kc_cbor_text_eq(kc_cbor_map_get_str(p0, "type"), "public-key"));
        assert_canonical(p0);
        cbor_decref(&p0);
    }
    v = kc_cbor_map_get_int(m, 5);
    assert_true(cbor_isa_array(v) && cbor_array_size(v) == 2);
    {
        cbor_item_t *d1 = cbor_array_get(v, 1);
        assert_int_equal(cbor_bytestring_length(kc_cbor_map_get_str(d1, "id")), 1);
        cbor_decref(&d1);
    }
    v = kc_cbor_map_get_int(m, 6);
    assert_int_equal(cbor_map_size(v), 3);
    assert_non_null(kc_cbor_map_get_str(v, "credBlob"));
    assert_int_equal(cbor_get_int(kc_cbor_map_get_str(v, "credProtect")), 2);
    assert_true(cbor_get_bool(kc_cbor_map_get_str(v, "hmac-secret")));
    assert_canonical(v);
    v = kc_cbor_map_get_int(m, 7);
    assert_true(cbor_get_bool(kc_cbor_map_get_str(v, "rk")));
    assert_true(cbor_get_bool(kc_cbor_map_get_str(v, "uv")));
    assert_null(kc_cbor_map_get_int(m, 8));
    assert_null(kc_cbor_map_get_int(m, 9));
    cbor_decref(&m);
    free(buf);

    /* with a pinUvAuthParam: keys 8 and 9, and no uv option */
    req.rk = false;
    req.n_exclude = 0;
    req.extensions_cbor = NULL;
    req.cred_protect = 0;
    req.hmac_secret = false;
    assert_int_equal(kc_make_credential_encode(&req, param, 16, 1, &buf, &len), KC_OK);
    assert_int_equal(kc_cbor_load(buf, len, &m), KC_OK);
    assert_null(kc_cbor_map_get_int(m, 5));
    assert_null(kc_cbor_map_get_int(m, 6));
    assert_null(kc_cbor_map_get_int(m, 7));
    assert_int_equal(cbor_bytestring_length(kc_cbor_map_get_int(m, 8)), 16);
    assert_int_equal(cbor_get_int(kc_cbor_map_get_int(m, 9)), 1);
    cbor_decref(&m);
    free(buf);

    /* invalid requests */
    req.user_id_len = 65;
    assert_int_equal(kc_make_credential_encode(&req, NULL, 0, 0, &buf, &len), KC_ERR_INVALID_ARG);
    req.user_id_len = 4;
    req.rp_id = "";
    assert_int_equal(kc_make_credential_encode(&req, NULL, 0, 0, &buf, &len), KC_ERR_INVALID_ARG);
    req.rp_id = RP_ID;
    excl[0].len = KC_CRED_ID_MAX + 1;
    req.n_exclude = 1;
    assert_int_equal(kc_make_credential_encode(&req, NULL, 0, 0, &buf, &len), KC_ERR_INVALID_ARG);
    req.n_exclude = 0;
    req.cred_protect = 4;
    assert_int_equal(kc_make_credential_encode(&req, NULL, 0, 0, &buf, &len), KC_ERR_INVALID_ARG);
    req.cred_protect = 0;
    req.extensions_cbor = ex1; /* not a CBOR map */
    req.extensions_len = sizeof(ex1);
    assert_int_equal(kc_make_credential_encode(&req, NULL, 0, 0, &buf, &len), KC_ERR_INVALID_ARG);
    req.extensions_cbor = NULL;
    assert_int_equal(kc_make_credential_encode(&req, param, 16, 3, &buf, &len), KC_ERR_INVALID_ARG);
    free(ext);
}

static void test_attestation_decode(void **state)
{
    struct kc_attestation att;
    size_t len;
    uint8_t *b = attestation_bytes(KC_AD_UP | KC_AD_AT | KC_AD_ED, true, &len);
    cbor_item_t *st;
    (void)state;

    assert_int_equal(kc_attestation_decode(b, len, &att), KC_OK);
    assert_string_equal(att.fmt, "packed");
    assert_true(att.has_ep_att);
    assert_false(att.ep_att);
    assert_true(att.ad.has_attested);
    assert_int_equal(att.ad.cred_id_len, 16);
    assert_true(att.ad.cred_id >= att.auth_data &&
                att.ad.cred_id + 16 <= att.auth_data + att.auth_data_len);
    assert_non_null(att.ad.extensions);
    assert_int_equal(kc_cbor_load(att.att_stmt, att.att_stmt_len, &st), KC_OK);
    assert_int_equal(cbor_bytestring_length(kc_cbor_map_get_str(st, "sig")), 8);
    cbor_decref(&st);
    kc_attestation_free(&att);
    assert_null(att.auth_data);
    assert_prefixes_fail(b, len, att_fn, &att);
    free(b);

    /* authData without attested credential data is not a new credential */
    b = attestation_bytes(KC_AD_UP, false, &len);
    assert_int_equal(kc_attestation_decode(b, len, &att), KC_ERR_CBOR);
    assert_null(att.auth_data);
    free(b);

    /* wrong types and missing members */
    {
        cbor_item_t *m = cbor_new_definite_map(2);
        put_int(m, 1, kc_cbor_new_int(1));
        put_int(m, 3, cbor_new_definite_map(0));
        b = serialize(m, &len);
        assert_int_equal(kc_attestation_decode(b, len, &att), KC_ERR_CBOR);
        free(b);
        m = cbor_new_definite_map(2);
        put_int(m, 1, kc_cbor_new_text("none"));
        put_int(m, 3, cbor_new_definite_map(0));
        b = serialize(m, &len);
        assert_int_equal(kc_attestation_decode(b, len, &att), KC_ERR_CBOR); /* no authData */
        free(b);
        m = cbor_new_definite_map(1);
        put_int(m, 1, kc_cbor_new_text("a-format-name-longer-than-32-chars"));
        b = serialize(m, &len);
        assert_int_equal(kc_attestation_decode(b, len, &att), KC_ERR_CBOR);
        free(b);
    }
}

/* ---- getAssertion ------------------------------------------------------- */

static void test_get_assertion_encode(void **state)
{
    static const uint8_t id[] = {9, 9, 9};
    struct kc_cred_id allow = {id, sizeof(id)};
    struct kc_assert_request req;
    uint8_t param[32], *buf = NULL;
    size_t len = 0;
    cbor_item_t *m, *v;
    (void)state;

    kc_assert_request_init(&req);
    assert_true(req.up);
    memset(req.client_data_hash, 0x01, 32);
    req.rp_id = RP_ID;
    assert_int_equal(kc_get_assertion_encode(&req, NULL, 0, 0, &buf, &len), KC_OK);
    assert_int_equal(kc_cbor_load(buf, len, &m), KC_OK);
    assert_int_equal(cbor_map_size(m), 2); /* rpId and clientDataHash only */
    assert_true(kc_cbor_text_eq(kc_cbor_map_get_int(m, 1), RP_ID));
    assert_int_equal(cbor_bytestring_length(kc_cbor_map_get_int(m, 2)), 32);
    cbor_decref(&m);
    free(buf);

    req.allow = &allow;
    req.n_allow = 1;
    req.up = false;
    req.uv = true;
    memset(param, 0x77, sizeof(param));
    assert_int_equal(kc_get_assertion_encode(&req, NULL, 0, 0, &buf, &len), KC_OK);
    assert_int_equal(kc_cbor_load(buf, len, &m), KC_OK);
    assert_canonical(m);
    v = kc_cbor_map_get_int(m, 3);
    assert_true(cbor_isa_array(v) && cbor_array_size(v) == 1);
    v = kc_cbor_map_get_int(m, 5);
    assert_false(cbor_get_bool(kc_cbor_map_get_str(v, "up")));
    assert_true(cbor_get_bool(kc_cbor_map_get_str(v, "uv")));
    assert_canonical(v);
    cbor_decref(&m);
    free(buf);

    assert_int_equal(kc_get_assertion_encode(&req, param, 32, 2, &buf, &len), KC_OK);
    assert_int_equal(kc_cbor_load(buf, len, &m), KC_OK);
    v = kc_cbor_map_get_int(m, 5);
    assert_null(kc_cbor_map_get_str(v, "uv"));
    assert_int_equal(cbor_bytestring_length(kc_cbor_map_get_int(m, 6)), 32);
    assert_int_equal(cbor_get_int(kc_cbor_map_get_int(m, 7)), 2);
    cbor_decref(&m);
    free(buf);

    req.rp_id = NULL;
    assert_int_equal(kc_get_assertion_encode(&req, NULL, 0, 0, &buf, &len), KC_ERR_INVALID_ARG);
}

static void test_assertion_decode(void **state)
{
    struct kc_assertion a;
    size_t len;
    uint8_t *b = assertion_bytes(0xab, 3, true, &len);
    (void)state;

    assert_int_equal(kc_assertion_decode(b, len, &a), KC_OK);
    assert_int_equal(a.cred_id_len, 20);
    assert_int_equal(a.cred_id[0], 0xab);
    assert_int_equal(a.signature_len, 70);
    assert_int_equal(a.ad.sign_count, 7);
    assert_int_equal(a.ad.flags, KC_AD_UP);
    assert_true(a.has_user);
    assert_int_equal(a.user_id_len, 8);
    assert_string_equal(a.user_name, "alice");
    assert_string_equal(a.user_display_name, "Alice A.");
    assert_int_equal(a.number_of_credentials, 3);
    kc_assertion_free(&a);
    assert_prefixes_fail(b, len, assert_fn, &a);
    free(b);

    /* numberOfCredentials 0, signature of the wrong type, no signature */
    b = assertion_bytes(0xab, 0, false, &len);
    assert_int_equal(kc_assertion_decode(b, len, &a), KC_OK);
    assert_int_equal(a.number_of_credentials, 0);
    kc_assertion_free(&a);
    free(b);
    {
        uint8_t ad[64];
        size_t ad_len = authdata_bytes(ad, sizeof(ad), KC_AD_UP, 1, 0, false);
        cbor_item_t *m = cbor_new_definite_map(3);
        put_int(m, 2, kc_cbor_new_bytes(ad, ad_len));
        put_int(m, 3, kc_cbor_new_text("sig"));
        b = serialize(m, &len);
        assert_int_equal(kc_assertion_decode(b, len, &a), KC_ERR_CBOR);
        free(b);
        m = cbor_new_definite_map(1);
        put_int(m, 2, kc_cbor_new_bytes(ad, ad_len));
        b = serialize(m, &len);
        assert_int_equal(kc_assertion_decode(b, len, &a), KC_ERR_CBOR);
        free(b);
        m = cbor_new_definite_map(3);
        put_int(m, 2, kc_cbor_new_bytes(ad, ad_len));
        put_int(m, 3, kc_cbor_new_bytes(ad, 8));
        put_int(m, 5, kc_cbor_new_int(0));
        b = serialize(m, &len);
        assert_int_equal(kc_assertion_decode(b, len, &a), KC_ERR_CBOR);
        free(b);
        /* duplicate keys */
        m = cbor_new_definite_map(3);
        put_int(m, 2, kc_cbor_new_bytes(ad, ad_len));
        put_int(m, 3, kc_cbor_new_bytes(ad, 8));
        put_int(m, 3, kc_cbor_new_bytes(ad, 9));
        b = serialize(m, &len);
        assert_int_equal(kc_assertion_decode(b, len, &a), KC_ERR_CBOR);
        free(b);
    }
}

/* ---- clientPIN encoding and responses ----------------------------------- */

static void test_client_pin_encode_decode(void **state)
{
    EVP_PKEY *k = NULL;
    uint8_t *buf = NULL, enc[32];
    size_t len = 0;
    cbor_item_t *m, *v;
    struct kc_pin_response r;
    struct kc_client_pin_req req = {.protocol = 2, .subcmd = KC_PIN_GET_TOKEN_PIN_PERMISSIONS};
    (void)state;

    assert_int_equal(kc_pinp_keypair_new(&k), KC_OK);
    memset(enc, 0x5e, sizeof(enc));
    req.key_agreement = k;
    req.pin_hash_enc = enc;
    req.pin_hash_enc_len = 32;
    req.permissions = KC_PERM_MC | KC_PERM_GA;
    req.rp_id = RP_ID;
    assert_int_equal(kc_client_pin_encode(&req, &buf, &len), KC_OK);
    assert_int_equal(kc_cbor_load(buf, len, &m), KC_OK);
    assert_canonical(m);
    assert_int_equal(cbor_get_int(kc_cbor_map_get_int(m, 1)), 2);
    assert_int_equal(cbor_get_int(kc_cbor_map_get_int(m, 2)), 9);
    v = kc_cbor_map_get_int(m, 3);
    {
        int64_t alg;
        assert_int_equal(kc_cbor_int(kc_cbor_map_get_int(v, 3), &alg), KC_OK);
        assert_int_equal(alg, KC_COSE_ECDH_ES_HKDF_256);
        assert_null(kc_cbor_map_get_int(v, -4)); /* never the private part */
    }
    assert_int_equal(cbor_bytestring_length(kc_cbor_map_get_int(m, 6)), 32);
    assert_int_equal(cbor_get_int(kc_cbor_map_get_int(m, 9)), 3);
    assert_true(kc_cbor_text_eq(kc_cbor_map_get_int(m, 10), RP_ID));
    assert_null(kc_cbor_map_get_int(m, 4));
    cbor_decref(&m);
    free(buf);

    /* response: keyAgreement, token, retries, unknown key */
    m = cbor_new_definite_map(5);
    assert_int_equal(kc_cose_encode_item(k, KC_COSE_ECDH_ES_HKDF_256, &v), KC_OK);
    put_int(m, 1, v);
    put_int(m, 2, kc_cbor_new_bytes(enc, 32));
    put_int(m, 3, kc_cbor_new_int(8));
    put_int(m, 4, kc_cbor_new_bool(true));
    put_int(m, 0x20, kc_cbor_new_text("x"));
    buf = serialize(m, &len);
    assert_int_equal(kc_pin_response_decode(buf, len, &r), KC_OK);
    assert_non_null(r.key_agreement);
    assert_int_equal(EVP_PKEY_eq(r.key_agreement, k), 1);
    assert_int_equal(r.token_enc_len, 32);
    assert_true(r.has_retries);
    assert_int_equal(r.retries, 8);
    assert_true(r.power_cycle_state);
    kc_pin_response_free(&r);
    assert_prefixes_fail(buf, len, pinresp_fn, &r);
    free(buf);

    /* wrong types and bounds */
    m = cbor_new_definite_map(1);
    put_int(m, 3, kc_cbor_new_text("8"));
    buf = serialize(m, &len);
    assert_int_equal(kc_pin_response_decode(buf, len, &r), KC_ERR_CBOR);
    free(buf);
    m = cbor_new_definite_map(1);
    put_int(m, 3, kc_cbor_new_int(1000));
    buf = serialize(m, &len);
    assert_int_equal(kc_pin_response_decode(buf, len, &r), KC_ERR_CBOR);
    free(buf);
    m = cbor_new_definite_map(1);
    put_int(m, 2, kc_cbor_new_bytes(enc, 8));
    buf = serialize(m, &len);
    assert_int_equal(kc_pin_response_decode(buf, len, &r), KC_ERR_CBOR);
    free(buf);
    m = cbor_new_definite_map(1);
    put_int(m, 1, kc_cbor_new_bytes(enc, 32));
    buf = serialize(m, &len);
    assert_int_equal(kc_pin_response_decode(buf, len, &r), KC_ERR_CBOR);
    free(buf);
    EVP_PKEY_free(k);
}

/* ---- a scripted card behind the in-memory transport --------------------- */

struct fake {
    struct kc_reassembly r;
    uint8_t buf[KC_HID_MAX_MSG];
    /* the card's view of the world */
    uint8_t *info;
    size_t info_len;
    EVP_PKEY *key;
    char pin[80];
    bool pin_set;
    uint8_t token[32];
    uint8_t fail_status; /* answer every CTAP2 command with this, if set */
    bool silent;         /* never answer a CTAP2 command */
    bool empty_ok;       /* answer status OK with no body */
    /* what the host sent */
    uint8_t cmds[64];
    size_t n_cmds;
    uint8_t last_req[KC_HID_MAX_MSG];
    size_t last_req_len;
    int subcmds[16];
    size_t n_subcmds;
    uint8_t perms;
    char perm_rp[64];
    bool param_seen, param_ok;
    int next_index;
};

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void push_message(struct kc_transport *t, uint32_t cid, uint8_t cmd, const uint8_t *msg,
                         size_t len)
{
    size_t n = kc_frag_count(len);
    for (size_t i = 0; i < n; i++) {
        uint8_t rep[KC_HID_REPORT_LEN];
        assert_int_equal(kc_frag_report(cid, cmd, msg, len, i, rep, sizeof(rep)), KC_OK);
        assert_int_equal(kc_mem_push(t, rep, sizeof(rep), 0), KC_OK);
    }
}

static size_t reply_item(uint8_t *out, cbor_item_t *item)
{
    size_t len = 0;
    uint8_t *b = serialize(item, &len);
    out[0] = KC_CTAP2_OK;
    memcpy(out + 1, b, len);
    free(b);
    return len + 1;
}

/* the card's half of ClientPIN: the shared secret from the host's key */
static bool card_shared(struct fake *f, const cbor_item_t *req, int proto, uint8_t *shared,
                        size_t *shared_len)
{
    struct kc_cose_key k = {0};
    bool ok = kc_cose_decode_item(kc_cbor_map_get_int(req, 3), &k) == KC_OK &&
              kc_pinp_shared_secret(proto, f->key, k.pkey, shared, shared_len) == KC_OK;
    kc_cose_key_free(&k);
    return ok;
}

static bool card_pin_hash_ok(struct fake *f, int proto, const uint8_t *shared, size_t shared_len,
                             const cbor_item_t *phe)
{
    uint8_t plain[32], h[32];
    size_t n = 0;
    unsigned int hl = 0;

    if (phe == NULL || !cbor_isa_bytestring(phe) ||
        kc_pinp_decrypt(proto, shared, shared_len, cbor_bytestring_handle(phe),
                        cbor_bytestring_length(phe), plain, sizeof(plain), &n) != KC_OK ||
        n != 16)
        return false;
    EVP_Digest(f->pin, strlen(f->pin), h, &hl, EVP_sha256(), NULL);
    return memcmp(plain, h, 16) == 0;
}

static size_t card_client_pin(struct fake *f, const cbor_item_t *req, uint8_t *out)
{
    int64_t proto = 0, sub = 0;
    uint8_t shared[64], tmp[128];
    size_t shared_len = 0, n = 0;
    cbor_item_t *m;

    kc_cbor_int(kc_cbor_map_get_int(req, 1), &proto);
    assert_int_equal(kc_cbor_int(kc_cbor_map_get_int(req, 2), &sub), KC_OK);
    if (f->n_subcmds < 16)
        f->subcmds[f->n_subcmds++] = (int)sub;
    switch (sub) {
    case KC_PIN_GET_RETRIES:
        m = cbor_new_definite_map(2);
        put_int(m, 3, kc_cbor_new_int(7));
        put_int(m, 4, kc_cbor_new_bool(false));
        return reply_item(out, m);
    case KC_PIN_GET_KEY_AGREEMENT: {
        cbor_item_t *cose = NULL;
        assert_true(proto == 1 || proto == 2);
        assert_int_equal(kc_cose_encode_item(f->key, KC_COSE_ECDH_ES_HKDF_256, &cose), KC_OK);
        m = cbor_new_definite_map(1);
        put_int(m, 1, cose);
        return reply_item(out, m);
    }
    case KC_PIN_SET_PIN:
    case KC_PIN_CHANGE_PIN: {
        const cbor_item_t *npe = kc_cbor_map_get_int(req, 5), *auth = kc_cbor_map_get_int(req, 4);
        const cbor_item_t *phe = kc_cbor_map_get_int(req, 6);
        uint8_t msg[256];
        size_t msg_len;
        if (!card_shared(f, req, (int)proto, shared, &shared_len) || npe == NULL || auth == NULL)
            return out[0] = KC_CTAP2_ERR_MISSING_PARAMETER, 1;
        msg_len = cbor_bytestring_length(npe);
        memcpy(msg, cbor_bytestring_handle(npe), msg_len);
        if (sub == KC_PIN_CHANGE_PIN) {
            if (!card_pin_hash_ok(f, (int)proto, shared, shared_len, phe))
                return out[0] = KC_CTAP2_ERR_PIN_INVALID, 1;
            memcpy(msg + msg_len, cbor_bytestring_handle(phe), cbor_bytestring_length(phe));
            msg_len += cbor_bytestring_length(phe);
        } else if (f->pin_set) {
            return out[0] = KC_CTAP2_ERR_NOT_ALLOWED, 1;
        }
        if (kc_pinp_verify((int)proto, shared, shared_len, msg, msg_len,
                           cbor_bytestring_handle(auth), cbor_bytestring_length(auth)) != KC_OK)
            return out[0] = KC_CTAP2_ERR_PIN_AUTH_INVALID, 1;
        assert_int_equal(kc_pinp_decrypt((int)proto, shared, shared_len,
                                         cbor_bytestring_handle(npe), cbor_bytestring_length(npe),
                                         tmp, sizeof(tmp), &n),
                         KC_OK);
        assert_int_equal(n, 64);
        memcpy(f->pin, tmp, 64);
        f->pin[64] = '\0';
        f->pin_set = true;
        out[0] = KC_CTAP2_OK;
        return 1;
    }
    case KC_PIN_GET_PIN_TOKEN:
    case KC_PIN_GET_TOKEN_PIN_PERMISSIONS: {
        if (!card_shared(f, req, (int)proto, shared, &shared_len))
            return out[0] = KC_CTAP2_ERR_MISSING_PARAMETER, 1;
        if (!card_pin_hash_ok(f, (int)proto, shared, shared_len, kc_cbor_map_get_int(req, 6)))
            return out[0] = KC_CTAP2_ERR_PIN_INVALID, 1;
        if (sub == KC_PIN_GET_TOKEN_PIN_PERMISSIONS) {
            uint64_t perms = 0;
            assert_int_equal(kc_cbor_uint(kc_cbor_map_get_int(req, 9), &perms), KC_OK);
            f->perms = (uint8_t)perms;
            assert_int_equal(
                kc_cbor_text(kc_cbor_map_get_int(req, 10), f->perm_rp, sizeof(f->perm_rp)), KC_OK);
        }
        assert_int_equal(
            kc_pinp_encrypt((int)proto, shared, shared_len, f->token, 32, tmp, sizeof(tmp), &n),
            KC_OK);
        m = cbor_new_definite_map(1);
        put_int(m, 2, kc_cbor_new_bytes(tmp, n));
        return reply_item(out, m);
    }
    default:
        return out[0] = KC_CTAP2_ERR_INVALID_SUBCOMMAND, 1;
    }
}

/* a request's pinUvAuthParam (key pk) with protocol (key pk + 1) */
static void card_check_param(struct fake *f, const cbor_item_t *req, int64_t pk,
                             const cbor_item_t *cdh)
{
    const cbor_item_t *param = kc_cbor_map_get_int(req, pk);
    int64_t proto = 0;

    f->param_seen = param != NULL;
    if (param == NULL)
        return;
    assert_int_equal(kc_cbor_int(kc_cbor_map_get_int(req, pk + 1), &proto), KC_OK);
    f->param_ok =
        kc_pinp_verify((int)proto, f->token, 32, cbor_bytestring_handle(cdh), 32,
                       cbor_bytestring_handle(param), cbor_bytestring_length(param)) == KC_OK;
}

static size_t card_ctap2(struct fake *f, const uint8_t *msg, size_t len, uint8_t *out)
{
    cbor_item_t *req = NULL;
    uint8_t *b;
    size_t n;

    assert_true(len >= 1);
    if (f->n_cmds < sizeof(f->cmds))
        f->cmds[f->n_cmds++] = msg[0];
    memcpy(f->last_req, msg + 1, len - 1);
    f->last_req_len = len - 1;
    if (f->fail_status != 0)
        return out[0] = f->fail_status, 1;
    if (f->empty_ok)
        return out[0] = KC_CTAP2_OK, 1;
    if (len > 1)
        assert_int_equal(kc_cbor_load(msg + 1, len - 1, &req), KC_OK);
    switch (msg[0]) {
    case KC_CTAP2_GET_INFO:
        assert_int_equal(len, 1);
        out[0] = KC_CTAP2_OK;
        memcpy(out + 1, f->info, f->info_len);
        return f->info_len + 1;
    case KC_CTAP2_CLIENT_PIN:
        n = card_client_pin(f, req, out);
        break;
    case KC_CTAP2_MAKE_CREDENTIAL:
        card_check_param(f, req, 8, kc_cbor_map_get_int(req, 1));
        if (f->param_seen && !f->param_ok) {
            n = 1;
            out[0] = KC_CTAP2_ERR_PIN_AUTH_INVALID;
            break;
        }
        b = attestation_bytes(KC_AD_UP | KC_AD_AT, false, &n);
        out[0] = KC_CTAP2_OK;
        memcpy(out + 1, b, n);
        free(b);
        n++;
        break;
    case KC_CTAP2_GET_ASSERTION:
    case KC_CTAP2_GET_NEXT_ASSERTION:
        if (msg[0] == KC_CTAP2_GET_ASSERTION) {
            card_check_param(f, req, 6, kc_cbor_map_get_int(req, 2));
            f->next_index = 0;
        } else if (f->next_index >= 2) {
            n = 1;
            out[0] = KC_CTAP2_ERR_NOT_ALLOWED;
            break;
        }
        b = assertion_bytes((uint8_t)(0xa0 + f->next_index), f->next_index == 0 ? 2 : 0, false, &n);
        f->next_index++;
        out[0] = KC_CTAP2_OK;
        memcpy(out + 1, b, n);
        free(b);
        n++;
        break;
    case KC_CTAP2_SELECTION:
    case KC_CTAP2_RESET:
        assert_int_equal(len, 1);
        n = 1;
        out[0] = KC_CTAP2_OK;
        break;
    default:
        n = 1;
        out[0] = KC_CTAP1_ERR_INVALID_COMMAND;
        break;
    }
    if (req != NULL)
        cbor_decref(&req);
    return n;
}

static void card_responder(struct kc_transport *t, const uint8_t *rep, size_t len, void *ctx)
{
    struct fake *f = ctx;
    uint32_t cid;
    int rc;

    assert_true(len >= KC_HID_INIT_HDR);
    cid = (uint32_t)rep[0] << 24 | (uint32_t)rep[1] << 16 | (uint32_t)rep[2] << 8 | rep[3];
    if (cid == KC_HID_BROADCAST_CID && rep[4] == KC_HID_INIT) {
        uint8_t resp[KC_HID_INIT_RESP_LEN] = {0};
        memcpy(resp, rep + KC_HID_INIT_HDR, KC_HID_NONCE_LEN);
        put_be32(resp + 8, CARD_CID);
        resp[12] = 2;
        resp[16] = KC_HID_CAP_CBOR | KC_HID_CAP_WINK;
        push_message(t, KC_HID_BROADCAST_CID, KC_HID_INIT, resp, sizeof(resp));
        return;
    }
    if (cid != CARD_CID)
        return;
    if (rep[4] & KC_HID_TYPE_INIT)
        kc_reassembly_init(&f->r, CARD_CID, f->buf, sizeof(f->buf));
    rc = kc_reassembly_feed(&f->r, rep, len);
    assert_true(rc >= 0);
    if (rc == 1 && f->r.cmd == KC_HID_CBOR && !f->silent) {
        static uint8_t out[KC_HID_MAX_MSG];
        size_t n = card_ctap2(f, f->buf, f->r.expected, out);
        push_message(t, CARD_CID, KC_HID_CBOR, out, n);
    }
}

static struct kc_dev *fake_open(struct fake *f, const int *protos, size_t n_protos, int client_pin,
                                bool token_opt)
{
    struct kc_transport *t = kc_mem_transport_new();
    struct kc_timeouts to;
    struct kc_dev *d = NULL;

    memset(f, 0, sizeof(*f));
    f->info = info_bytes(protos, n_protos, client_pin, token_opt, false, &f->info_len);
    assert_int_equal(kc_pinp_keypair_new(&f->key), KC_OK);
    strcpy(f->pin, "1234");
    f->pin_set = client_pin == 1;
    for (int i = 0; i < 32; i++)
        f->token[i] = (uint8_t)(0x40 + i);
    assert_non_null(t);
    kc_mem_set_responder(t, card_responder, f);
    kc_timeouts_default(&to);
    to.command_ms = 500;
    assert_int_equal(kc_dev_wrap(&d, t, &to), KC_OK);
    return d;
}

static void fake_close(struct fake *f, struct kc_dev *d)
{
    kc_dev_close(d);
    EVP_PKEY_free(f->key);
    free(f->info);
}

static void fill_cred_request(struct kc_cred_request *req)
{
    static const uint8_t uid[] = {0x75, 0x69, 0x64};
    kc_cred_request_init(req);
    memset(req->client_data_hash, 0x3c, 32);
    req->rp_id = RP_ID;
    req->user_id = uid;
    req->user_id_len = sizeof(uid);
    req->user_name = "alice";
}

static void test_dev_get_info(void **state)
{
    static const int protos[] = {2, 1};
    struct fake f;
    struct kc_dev *d = fake_open(&f, protos, 2, 1, true);
    struct kc_info info;
    (void)state;

    assert_int_equal(kc_ctap2_get_info(d, &info), KC_OK);
    assert_int_equal(f.n_cmds, 1);
    assert_int_equal(f.cmds[0], KC_CTAP2_GET_INFO);
    assert_int_equal(f.last_req_len, 0);
    assert_int_equal(info.n_pin_protocols, 2);
    assert_int_equal(kc_info_option(&info, "pinUvAuthToken"), 1);

    /* a CTAP2 error status comes back as itself */
    f.fail_status = KC_CTAP2_ERR_OPERATION_DENIED;
    assert_int_equal(kc_ctap2_get_info(d, &info), KC_CTAP2_ERR_OPERATION_DENIED);
    assert_int_equal(kc_ctap2_selection(d), KC_CTAP2_ERR_OPERATION_DENIED);
    f.fail_status = 0;
    assert_int_equal(kc_ctap2_selection(d), KC_OK);
    assert_int_equal(kc_ctap2_reset(d), KC_OK);
    assert_int_equal(f.cmds[f.n_cmds - 2], KC_CTAP2_SELECTION);
    assert_int_equal(f.cmds[f.n_cmds - 1], KC_CTAP2_RESET);

    /* the raw command: body after the status byte, bounded by cap */
    {
        uint8_t out[1024];
        size_t out_len = 0;
        assert_int_equal(
            kc_ctap2_command(d, KC_CTAP2_GET_INFO, NULL, 0, out, sizeof(out), &out_len), KC_OK);
        assert_int_equal(out_len, f.info_len);
        assert_memory_equal(out, f.info, f.info_len);
        assert_int_equal(kc_ctap2_command(d, KC_CTAP2_GET_INFO, NULL, 0, out, 10, &out_len),
                         KC_ERR_TOO_LARGE);
    }

    /* status OK with no body is not a getInfo, nor an assertion */
    f.empty_ok = true;
    assert_int_equal(kc_ctap2_get_info(d, &info), KC_ERR_CBOR);
    {
        struct kc_assertion a;
        assert_int_equal(kc_ctap2_get_next_assertion(d, &a), KC_ERR_CBOR);
        assert_null(a.auth_data);
    }
    assert_int_equal(kc_ctap2_selection(d), KC_OK);
    f.empty_ok = false;

    /* a silent card: the framing's deadline comes back unchanged */
    {
        struct kc_timeouts to;
        kc_timeouts_default(&to);
        to.command_ms = 50;
        to.cancel_ms = 20;
        kc_dev_set_timeouts(d, &to);
        f.silent = true;
        assert_int_equal(kc_ctap2_get_info(d, &info), KC_ERR_TIMEOUT);
        assert_int_equal(kc_dev_last_phase(d), KC_PHASE_COMMAND);
    }
    fake_close(&f, d);
}

/* The runbook's field failure: a card with no PIN/UV protocols. */
static void test_dev_no_pin_protocol(void **state)
{
    struct fake f;
    struct kc_dev *d = fake_open(&f, NULL, 0, -1, false);
    struct kc_info info;
    struct kc_cred_request req;
    struct kc_attestation att;
    char names[16];
    (void)state;

    assert_int_equal(kc_ctap2_get_info(d, &info), KC_OK);
    fill_cred_request(&req);
    req.info = &info;
    assert_int_equal(kc_ctap2_make_credential(d, &req, &att), KC_OK);
    assert_true(att.pin.no_protocol);
    assert_false(att.pin.used_pin);
    assert_false(f.param_seen);
    assert_int_equal(f.cmds[f.n_cmds - 1], KC_CTAP2_MAKE_CREDENTIAL);
    assert_int_equal(att.ad.cred_id_len, 16);
    kc_attestation_free(&att);

    /* with a PIN: refused before anything is sent, the card's list named */
    req.pin = "1234";
    f.n_cmds = 0;
    assert_int_equal(kc_ctap2_make_credential(d, &req, &att), KC_ERR_NO_PIN_PROTOCOL);
    assert_int_equal(f.n_cmds, 0);
    kc_info_pin_protocols_str(&info, names, sizeof(names));
    assert_string_equal(names, "none");
    /* without info the library asks the card itself */
    req.info = NULL;
    assert_int_equal(kc_ctap2_make_credential(d, &req, &att), KC_ERR_NO_PIN_PROTOCOL);
    assert_int_equal(f.n_cmds, 1);
    assert_int_equal(f.cmds[0], KC_CTAP2_GET_INFO);
    fake_close(&f, d);
}

static void run_pin_flow(int protocol, bool token_opt)
{
    const int protos[] = {protocol};
    struct fake f;
    struct kc_dev *d = fake_open(&f, protos, 1, 1, token_opt);
    struct kc_cred_request req;
    struct kc_attestation att;
    struct kc_assert_request areq;
    struct kc_assertion a;
    struct kc_pin_token tok;
    struct kc_pin_retries ret;

    assert_int_equal(kc_pin_get_retries(d, NULL, &ret), KC_OK);
    assert_int_equal(ret.retries, 7);

    fill_cred_request(&req);
    req.pin = "1234";
    req.uv = true;
    assert_int_equal(kc_ctap2_make_credential(d, &req, &att), KC_OK);
    assert_true(f.param_seen);
    assert_true(f.param_ok);
    assert_true(att.pin.used_pin);
    assert_int_equal(att.pin.protocol, protocol);
    assert_false(att.pin.no_protocol);
    kc_attestation_free(&att);
    if (token_opt) {
        assert_int_equal(f.subcmds[f.n_subcmds - 1], KC_PIN_GET_TOKEN_PIN_PERMISSIONS);
        assert_int_equal(f.perms, KC_PERM_MC);
        assert_string_equal(f.perm_rp, RP_ID);
    } else {
        assert_int_equal(f.subcmds[f.n_subcmds - 1], KC_PIN_GET_PIN_TOKEN);
    }

    /* a wrong PIN is the card's status, not ours */
    req.pin = "9999";
    assert_int_equal(kc_ctap2_make_credential(d, &req, &att), KC_CTAP2_ERR_PIN_INVALID);

    /* a token obtained once and reused for getAssertion + getNextAssertion */
    assert_int_equal(kc_pin_get_token_with_permissions(d, NULL, "1234", KC_PERM_GA, RP_ID, &tok),
                     KC_OK);
    assert_int_equal(tok.protocol, protocol);
    assert_int_equal(tok.len, 32);
    assert_memory_equal(tok.token, f.token, 32);
    kc_assert_request_init(&areq);
    memset(areq.client_data_hash, 0x44, 32);
    areq.rp_id = RP_ID;
    areq.token = &tok;
    assert_int_equal(kc_ctap2_get_assertion(d, &areq, &a), KC_OK);
    assert_true(f.param_ok);
    assert_int_equal(a.number_of_credentials, 2);
    assert_int_equal(a.cred_id[0], 0xa0);
    assert_true(a.pin.used_pin);
    kc_assertion_free(&a);
    assert_int_equal(kc_ctap2_get_next_assertion(d, &a), KC_OK);
    assert_int_equal(a.cred_id[0], 0xa1);
    assert_int_equal(f.last_req_len, 0);
    kc_assertion_free(&a);
    assert_int_equal(kc_ctap2_get_next_assertion(d, &a), KC_CTAP2_ERR_NOT_ALLOWED);
    kc_pin_token_clear(&tok);
    assert_int_equal(tok.len, 0);

    /* changePIN, then the new PIN works and the old one does not */
    assert_int_equal(kc_pin_change(d, NULL, "1234", "56789"), KC_OK);
    assert_string_equal(f.pin, "56789");
    assert_int_equal(kc_pin_get_token(d, NULL, "1234", &tok), KC_CTAP2_ERR_PIN_INVALID);
    assert_int_equal(kc_pin_get_token(d, NULL, "56789", &tok), KC_OK);
    assert_int_equal(kc_pin_change(d, NULL, "0000", "4444"), KC_CTAP2_ERR_PIN_INVALID);
    /* too short a new PIN never reaches the card */
    f.n_cmds = 0;
    assert_int_equal(kc_pin_change(d, NULL, "56789", "12"), KC_ERR_INVALID_ARG);
    assert_int_equal(f.n_cmds, 1); /* only getInfo */
    fake_close(&f, d);
}

static void test_dev_pin_flow_p1(void **state)
{
    (void)state;
    run_pin_flow(1, false);
}

static void test_dev_pin_flow_p2(void **state)
{
    (void)state;
    run_pin_flow(2, true);
}

static void test_dev_set_pin(void **state)
{
    const int protos[] = {2, 1};
    struct fake f;
    struct kc_dev *d = fake_open(&f, protos, 2, 0, true);
    struct kc_pin_token tok;
    (void)state;

    assert_false(f.pin_set);
    assert_int_equal(kc_pin_set(d, NULL, "24680"), KC_OK);
    assert_true(f.pin_set);
    assert_string_equal(f.pin, "24680");
    assert_int_equal(kc_pin_set(d, NULL, "13579"), KC_CTAP2_ERR_NOT_ALLOWED);
    assert_int_equal(kc_pin_token_for(d, NULL, "24680", KC_PERM_MC, RP_ID, &tok), KC_OK);
    assert_int_equal(tok.protocol, 2);
    kc_pin_token_clear(&tok);
    fake_close(&f, d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cbor_load_hostile),
        cmocka_unit_test(test_info_decode),
        cmocka_unit_test(test_info_wrong_types),
        cmocka_unit_test(test_info_long_lists_truncate),
        cmocka_unit_test(test_pin_protocol_choice),
        cmocka_unit_test(test_authdata_parse),
        cmocka_unit_test(test_make_credential_encode),
        cmocka_unit_test(test_attestation_decode),
        cmocka_unit_test(test_get_assertion_encode),
        cmocka_unit_test(test_assertion_decode),
        cmocka_unit_test(test_client_pin_encode_decode),
        cmocka_unit_test(test_dev_get_info),
        cmocka_unit_test(test_dev_no_pin_protocol),
        cmocka_unit_test(test_dev_pin_flow_p1),
        cmocka_unit_test(test_dev_pin_flow_p2),
        cmocka_unit_test(test_dev_set_pin),
    };
    int rc;

    assert_int_equal(kc_pinp_keypair_new(&cred_key), KC_OK);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    EVP_PKEY_free(cred_key);
    return rc;
}
