/* COSE_Key decoding and encoding against vectors made by python-fido2 and
 * the openssl CLI (fixtures/ctap/vectors.json), plus EVP round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/cose.h"
#include "ctaphid/status.h"
#include "tests/unit/ctaphid/ctap_vectors.h"

static int expect_code(const char *expect)
{
    if (strcmp(expect, "ok") == 0)
        return KC_OK;
    if (strcmp(expect, "unsupported") == 0)
        return KC_ERR_UNSUPPORTED;
    return KC_ERR_CBOR;
}

/* Canonical vectors re-encode to exactly the bytes python-fido2 wrote. */
static int roundtrip_exact(const char *name)
{
    return strcmp(name, "es256") == 0 || strcmp(name, "eddsa") == 0 || strcmp(name, "rs256") == 0 ||
           strcmp(name, "ecdh_es_hkdf_256") == 0;
}

static void test_cose_vectors(void **state)
{
    json_t *root = ctap_vectors_load(), *arr, *v;
    size_t i, n_ok = 0, n_bad = 0;

    (void)state;
    assert_non_null(root);
    arr = json_object_get(root, "cose");
    assert_true(json_array_size(arr) >= 20);
    json_array_foreach(arr, i, v)
    {
        const char *name = vec_str(v, "name");
        const char *expect = vec_str(v, "expect");
        struct kc_cose_key key;
        char why[160];
        size_t len, want, consumed = 99999;
        uint8_t *buf = vec_hex(v, "cbor", &len);
        int r;

        assert_non_null(buf);
        r = kc_cose_decode_reason(buf, len, &key, &consumed, why, sizeof(why));
        if (r != expect_code(expect))
            fail_msg("%s: got %s (%s), want %s", name, kc_err_name(r), why, expect);
        if (r == KC_OK) {
            n_ok++;
            assert_int_equal(key.kty, vec_int(v, "kty"));
            assert_int_equal(key.alg, vec_int(v, "alg"));
            assert_non_null(key.pkey);
            want = json_object_get(v, "consumed") != NULL ? (size_t)vec_int(v, "consumed") : len;
            if (consumed != want)
                fail_msg("%s: consumed %zu of %zu, want %zu", name, consumed, len, want);
            if (roundtrip_exact(name)) {
                uint8_t *enc = NULL;
                size_t enc_len = 0;
                assert_int_equal(kc_cose_encode(key.pkey, key.alg, &enc, &enc_len), KC_OK);
                assert_int_equal(enc_len, len);
                assert_memory_equal(enc, buf, len);
                free(enc);
            }
        } else {
            n_bad++;
            assert_null(key.pkey);
            assert_int_equal(consumed, 0);
            if (strstr(why, vec_str(v, "reason")) == NULL)
                fail_msg("%s: reason '%s' lacks '%s'", name, why, vec_str(v, "reason"));
        }
        kc_cose_key_free(&key);
        assert_null(key.pkey);
        free(buf);
    }
    assert_true(n_ok >= 5);
    assert_true(n_bad >= 15);
    json_decref(root);
}

static EVP_PKEY *keygen(int which)
{
    switch (which) {
    case 0:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case 1:
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    default:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    }
}

static void test_cose_roundtrip_fresh_keys(void **state)
{
    static const int algs[] = {KC_COSE_ES256, KC_COSE_EDDSA, KC_COSE_RS256};
    static const int ktys[] = {KC_COSE_KTY_EC2, KC_COSE_KTY_OKP, KC_COSE_KTY_RSA};

    (void)state;
    for (int i = 0; i < 3; i++) {
        EVP_PKEY *pk = keygen(i);
        struct kc_cose_key key;
        uint8_t *buf = NULL;
        size_t len = 0, consumed = 0;

        assert_non_null(pk);
        assert_int_equal(kc_cose_encode(pk, algs[i], &buf, &len), KC_OK);
        assert_int_equal(kc_cose_decode(buf, len, &key, &consumed), KC_OK);
        assert_int_equal(consumed, len);
        assert_int_equal(key.alg, algs[i]);
        assert_int_equal(key.kty, ktys[i]);
        assert_int_equal(EVP_PKEY_eq(pk, key.pkey), 1);
        kc_cose_key_free(&key);
        free(buf);
        EVP_PKEY_free(pk);
    }
}

static void test_cose_ecdh_alg_roundtrip(void **state)
{
    EVP_PKEY *pk = keygen(0);
    cbor_item_t *item = NULL;
    struct kc_cose_key key;

    (void)state;
    assert_non_null(pk);
    assert_int_equal(kc_cose_encode_item(pk, KC_COSE_ECDH_ES_HKDF_256, &item), KC_OK);
    assert_int_equal(cbor_map_size(item), 5);
    assert_int_equal(kc_cose_decode_item(item, &key), KC_OK);
    assert_int_equal(key.alg, KC_COSE_ECDH_ES_HKDF_256);
    assert_int_equal(key.crv, KC_COSE_CRV_P256);
    assert_int_equal(EVP_PKEY_eq(pk, key.pkey), 1);
    kc_cose_key_free(&key);
    cbor_decref(&item);
    EVP_PKEY_free(pk);
}

static void test_cose_encode_rejects_mismatch(void **state)
{
    EVP_PKEY *ec = keygen(0), *ed = keygen(1), *p384;
    cbor_item_t *item = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(kc_cose_encode_item(ec, KC_COSE_EDDSA, &item), KC_ERR_INVALID_ARG);
    assert_null(item);
    assert_int_equal(kc_cose_encode_item(ed, KC_COSE_ES256, &item), KC_ERR_INVALID_ARG);
    assert_int_equal(kc_cose_encode(ed, KC_COSE_RS256, &buf, &len), KC_ERR_INVALID_ARG);
    assert_null(buf);
    p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    assert_non_null(p384);
    assert_int_equal(kc_cose_encode_item(p384, KC_COSE_ES256, &item), KC_ERR_UNSUPPORTED);
    assert_int_equal(kc_cose_encode_item(NULL, KC_COSE_ES256, &item), KC_ERR_INVALID_ARG);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(p384);
}

static void test_cose_key_from_pkey(void **state)
{
    EVP_PKEY *ec = keygen(0);
    struct kc_cose_key key;

    (void)state;
    assert_int_equal(kc_cose_key_from_pkey(ec, KC_COSE_ES256, &key), KC_OK);
    assert_ptr_equal(key.pkey, ec);
    assert_int_equal(key.kty, KC_COSE_KTY_EC2);
    kc_cose_key_free(&key); /* drops only the reference it took */
    assert_int_equal(kc_cose_key_from_pkey(ec, KC_COSE_EDDSA, &key), KC_ERR_INVALID_ARG);
    assert_null(key.pkey);
    EVP_PKEY_free(ec);
}

static void test_cose_decode_bad_args(void **state)
{
    struct kc_cose_key key;
    uint8_t junk[] = {0xff};
    size_t consumed = 7;

    (void)state;
    assert_int_equal(kc_cose_decode(NULL, 0, &key, NULL), KC_ERR_INVALID_ARG);
    assert_int_equal(kc_cose_decode(junk, sizeof(junk), NULL, NULL), KC_ERR_INVALID_ARG);
    assert_int_equal(kc_cose_decode(junk, sizeof(junk), &key, &consumed), KC_ERR_CBOR);
    assert_int_equal(consumed, 0);
    assert_int_equal(kc_cose_decode(junk, 0, &key, NULL), KC_ERR_CBOR);
    assert_int_equal(kc_cose_decode_item(NULL, &key), KC_ERR_CBOR);
    kc_cose_key_free(NULL);
}

static void test_cose_alg_names(void **state)
{
    (void)state;
    assert_string_equal(kc_cose_alg_name(KC_COSE_ES256), "ES256");
    assert_string_equal(kc_cose_alg_name(KC_COSE_EDDSA), "EdDSA");
    assert_string_equal(kc_cose_alg_name(KC_COSE_RS256), "RS256");
    assert_string_equal(kc_cose_alg_name(KC_COSE_ECDH_ES_HKDF_256), "ECDH-ES+HKDF-256");
    assert_string_equal(kc_cose_alg_name(-35), "UNKNOWN");
    assert_true(kc_cose_alg_is_signature(KC_COSE_RS256));
    assert_false(kc_cose_alg_is_signature(KC_COSE_ECDH_ES_HKDF_256));
}

static void test_cbor_size_check(void **state)
{
    static const struct {
        const char *hex;
        int ok;
        size_t len;
    } cases[] = {
        {"01", 1, 1},
        {"1bffffffffffffffff", 1, 9},
        {"3bffffffffffffffff", 1, 9},
        {"4401020304ff", 1, 5},     /* trailing byte not part of the item */
        {"5f4201024103ff00", 0, 0}, /* indefinite byte string: not canonical CTAP2 CBOR */
        {"5f42010261", 0, 0},       /* chunk of the wrong major type */
        {"7f6161ff", 0, 0},         /* indefinite text: refused */
        {"9f0102ff", 0, 0},         /* indefinite array: refused */
        {"bf0102ff", 0, 0},         /* indefinite map: refused */
        {"bf01ff", 0, 0},           /* indefinite map with an odd count */
        {"a201020304", 1, 5},
        {"a2010203", 0, 0},             /* map short of a value */
        {"9b7fffffffffffffff00", 0, 0}, /* array claiming 2^63 elements */
        {"bb7fffffffffffffff01", 0, 0}, /* map claiming 2^63 pairs */
        {"5a7fffffff00", 0, 0},         /* byte string longer than the input */
        {"c24101", 1, 3},               /* tag 2 over a byte string */
        {"f93c00", 1, 3},               /* half float */
        {"fb3ff0000000000000", 1, 9},   /* double */
        {"fb3ff0", 0, 0},               /* truncated double */
        {"ff", 0, 0},                   /* a lone break */
        {"1c", 0, 0},                   /* reserved additional info */
        {"", 0, 0},
    };
    uint8_t buf[64];
    uint8_t deep[40];
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t hl = strlen(cases[i].hex) / 2, got = 99;
        for (size_t j = 0; j < hl; j++)
            buf[j] = (uint8_t)(kcu_hex_digit(cases[i].hex[2 * j]) << 4 |
                               kcu_hex_digit(cases[i].hex[2 * j + 1]));
        n = hl;
        if (kc_cbor_size_check(buf, n, &got) != (cases[i].ok ? KC_OK : KC_ERR_CBOR))
            fail_msg("case %s: wrong verdict", cases[i].hex);
        assert_int_equal(got, cases[i].ok ? cases[i].len : 0);
    }
    /* nesting: 24 arrays deep is fine, 30 is refused */
    memset(deep, 0x81, sizeof(deep));
    deep[24] = 0x00;
    assert_int_equal(kc_cbor_size_check(deep, 25, &n), KC_OK);
    assert_int_equal(n, 25);
    deep[24] = 0x81;
    deep[30] = 0x00;
    assert_int_equal(kc_cbor_size_check(deep, 31, &n), KC_ERR_CBOR);
    assert_int_equal(kc_cbor_size_check(NULL, 0, NULL), KC_ERR_CBOR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cose_vectors),
        cmocka_unit_test(test_cose_roundtrip_fresh_keys),
        cmocka_unit_test(test_cose_ecdh_alg_roundtrip),
        cmocka_unit_test(test_cose_encode_rejects_mismatch),
        cmocka_unit_test(test_cose_key_from_pkey),
        cmocka_unit_test(test_cose_decode_bad_args),
        cmocka_unit_test(test_cose_alg_names),
        cmocka_unit_test(test_cbor_size_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
