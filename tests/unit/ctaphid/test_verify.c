/* Attestation and assertion verification against vectors signed with
 * python3-cryptography and keys/certificates made by the openssl CLI
 * (fixtures/ctap/vectors.json); every pass is re-checked by python-fido2 at
 * generation time, every failure path has a vector and a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctaphid/cose.h"
#include "ctaphid/status.h"
#include "ctaphid/verify.h"
#include "tests/unit/ctaphid/ctap_vectors.h"

static int expect_code(const char *expect)
{
    if (strcmp(expect, "ok") == 0)
        return KC_OK;
    if (strcmp(expect, "verify") == 0)
        return KC_ERR_VERIFY;
    if (strcmp(expect, "unsupported") == 0)
        return KC_ERR_UNSUPPORTED;
    return KC_ERR_CBOR;
}

static void check_reason(const char *name, const char *got, const json_t *v)
{
    const char *want = vec_str(v, "reason");

    if (strstr(got, want) == NULL)
        fail_msg("%s: reason '%s' lacks '%s'", name, got, want);
}

static void test_attestation_vectors(void **state)
{
    json_t *root = ctap_vectors_load(), *arr, *v;
    size_t i, n_ok = 0, n_fail = 0;
    int seen_basic = 0, seen_self = 0, seen_none = 0;

    (void)state;
    assert_non_null(root);
    arr = json_object_get(root, "attestation");
    assert_true(json_array_size(arr) >= 25);
    json_array_foreach(arr, i, v)
    {
        const char *name = vec_str(v, "name");
        struct kc_verify_result res;
        size_t ad_len, st_len, cdh_len;
        uint8_t *ad = vec_hex(v, "auth_data", &ad_len);
        uint8_t *st = vec_hex(v, "att_stmt", &st_len);
        uint8_t *cdh = vec_hex(v, "client_data_hash", &cdh_len);
        int r;

        assert_non_null(ad);
        assert_non_null(st);
        assert_non_null(cdh);
        assert_int_equal(cdh_len, 32);
        r = kc_verify_attestation(vec_str(v, "fmt"), ad, ad_len, st, st_len, cdh,
                                  vec_str(v, "rp_id"), &res);
        if (r != expect_code(vec_str(v, "expect")))
            fail_msg("%s: got %s (%s), want %s", name, kc_err_name(r), res.reason,
                     vec_str(v, "expect"));
        if (r == KC_OK) {
            size_t id_len, key_len;
            uint8_t *id = vec_hex(v, "cred_id", &id_len);
            uint8_t *key_cbor = vec_hex(v, "cred_key", &key_len);
            struct kc_cose_key want;
            const char *type = vec_str(v, "type");

            n_ok++;
            assert_string_equal(res.reason, "ok");
            assert_string_equal(kc_att_type_name(res.att_type), type);
            seen_basic += res.att_type == KC_ATT_BASIC;
            seen_self += res.att_type == KC_ATT_SELF;
            seen_none += res.att_type == KC_ATT_NONE;
            assert_int_equal(res.sign_count, vec_int(v, "sign_count"));
            assert_int_equal(res.flags, vec_int(v, "flags"));
            assert_int_equal(res.cred_id_len, id_len);
            assert_memory_equal(res.cred_id, id, id_len);
            assert_int_equal(res.cred_key.alg, vec_int(v, "cred_alg"));
            assert_int_equal(kc_cose_decode(key_cbor, key_len, &want, NULL), KC_OK);
            assert_int_equal(EVP_PKEY_eq(want.pkey, res.cred_key.pkey), 1);
            if (json_object_get(v, "subject_contains") != NULL &&
                strstr(res.cert_subject, vec_str(v, "subject_contains")) == NULL)
                fail_msg("%s: subject '%s'", name, res.cert_subject);
            if (res.att_type != KC_ATT_BASIC)
                assert_string_equal(res.cert_subject, "");
            kc_cose_key_free(&want);
            free(id);
            free(key_cbor);
        } else {
            n_fail++;
            check_reason(name, res.reason, v);
            assert_null(res.cred_key.pkey); /* no key handed out on failure */
        }
        kc_verify_result_free(&res);
        free(ad);
        free(st);
        free(cdh);
    }
    assert_true(n_ok >= 6);
    assert_true(n_fail >= 20);
    assert_true(seen_basic >= 2 && seen_self >= 2 && seen_none >= 1);
    json_decref(root);
}

static void test_assertion_vectors(void **state)
{
    json_t *root = ctap_vectors_load(), *arr, *v;
    size_t i, n_ok = 0, n_fail = 0;

    (void)state;
    assert_non_null(root);
    arr = json_object_get(root, "assertion");
    assert_true(json_array_size(arr) >= 20);
    json_array_foreach(arr, i, v)
    {
        const char *name = vec_str(v, "name");
        struct kc_verify_result res;
        struct kc_cose_key key;
        size_t ad_len, sig_len, cdh_len, key_len;
        uint8_t *ad = vec_hex(v, "auth_data", &ad_len);
        uint8_t *sig = vec_hex(v, "signature", &sig_len);
        uint8_t *cdh = vec_hex(v, "client_data_hash", &cdh_len);
        uint8_t *key_cbor = vec_hex(v, "cred_key", &key_len);
        bool up = json_is_true(json_object_get(v, "require_up"));
        bool uv = json_is_true(json_object_get(v, "require_uv"));
        uint32_t prev = (uint32_t)vec_int(v, "prev_sign_count");
        uint32_t count = 0xdeadbeef, count2 = 0xdeadbeef;
        int r, r2;

        assert_non_null(ad);
        assert_non_null(sig);
        assert_non_null(key_cbor);
        assert_int_equal(kc_cose_decode(key_cbor, key_len, &key, NULL), KC_OK);
        assert_int_equal(key.alg, vec_int(v, "alg"));
        kc_verify_result_init(&res);
        r = kc_verify_assertion(&key, ad, ad_len, sig, sig_len, cdh, vec_str(v, "rp_id"), up, uv,
                                prev, &count, &res);
        if (r != expect_code(vec_str(v, "expect")))
            fail_msg("%s: got %s (%s), want %s", name, kc_err_name(r), res.reason,
                     vec_str(v, "expect"));
        /* the EVP form and the no-result form agree */
        r2 = kc_verify_assertion_pkey(key.pkey, key.alg, ad, ad_len, sig, sig_len, cdh,
                                      vec_str(v, "rp_id"), up, uv, prev, &count2, NULL);
        assert_int_equal(r2, r);
        if (r == KC_OK) {
            n_ok++;
            assert_string_equal(res.reason, "ok");
            assert_int_equal(count, vec_int(v, "new_sign_count"));
            assert_int_equal(count2, count);
            assert_int_equal(res.sign_count, count);
        } else {
            n_fail++;
            check_reason(name, res.reason, v);
            assert_int_equal(count, 0xdeadbeef); /* untouched on failure */
        }
        kc_verify_result_free(&res);
        kc_cose_key_free(&key);
        free(ad);
        free(sig);
        free(cdh);
        free(key_cbor);
    }
    assert_true(n_ok >= 6);
    assert_true(n_fail >= 12);
    json_decref(root);
}

/* The first attestation vector with this name. */
static json_t *find_vec(json_t *root, const char *section, const char *name)
{
    json_t *v;
    size_t i;

    json_array_foreach(json_object_get(root, section), i, v)
    {
        if (strcmp(vec_str(v, "name"), name) == 0)
            return v;
    }
    fail_msg("vector %s/%s missing", section, name);
    return NULL;
}

static void test_attestation_item_and_malformed_stmt(void **state)
{
    json_t *root = ctap_vectors_load();
    json_t *v;
    struct kc_verify_result res;
    struct cbor_load_result lr;
    cbor_item_t *item;
    size_t ad_len, st_len, cdh_len;
    uint8_t *ad, *st, *cdh, *st2;

    (void)state;
    assert_non_null(root);
    v = find_vec(root, "attestation", "packed_x5c");
    ad = vec_hex(v, "auth_data", &ad_len);
    st = vec_hex(v, "att_stmt", &st_len);
    cdh = vec_hex(v, "client_data_hash", &cdh_len);
    item = cbor_load(st, st_len, &lr);
    assert_non_null(item);
    assert_int_equal(kc_verify_attestation_item("packed", ad, ad_len, item, cdh, "localhost", &res),
                     KC_OK);
    assert_int_equal(res.att_type, KC_ATT_BASIC);
    kc_verify_result_free(&res);
    /* same statement, claimed as fido-u2f: the signature is over other data */
    assert_int_equal(
        kc_verify_attestation_item("fido-u2f", ad, ad_len, item, cdh, "localhost", &res),
        KC_ERR_VERIFY);
    kc_verify_result_free(&res);
    cbor_decref(&item);

    /* trailing byte after the attStmt map */
    st2 = malloc(st_len + 1);
    assert_non_null(st2);
    memcpy(st2, st, st_len);
    st2[st_len] = 0x00;
    assert_int_equal(
        kc_verify_attestation("packed", ad, ad_len, st2, st_len + 1, cdh, "localhost", &res),
        KC_ERR_CBOR);
    assert_non_null(strstr(res.reason, "attStmt"));
    /* truncated attStmt */
    assert_int_equal(
        kc_verify_attestation("packed", ad, ad_len, st, st_len - 3, cdh, "localhost", &res),
        KC_ERR_CBOR);
    /* client data hash changed: signature no longer covers it */
    cdh[0] ^= 1;
    assert_int_equal(
        kc_verify_attestation("packed", ad, ad_len, st, st_len, cdh, "localhost", &res),
        KC_ERR_VERIFY);
    assert_non_null(strstr(res.reason, "signature does not verify"));
    /* missing arguments */
    assert_int_equal(kc_verify_attestation(NULL, ad, ad_len, st, st_len, cdh, "localhost", &res),
                     KC_ERR_INVALID_ARG);
    assert_int_equal(kc_verify_attestation("packed", ad, ad_len, st, st_len, cdh, NULL, &res),
                     KC_ERR_INVALID_ARG);
    assert_int_equal(kc_verify_attestation("packed", ad, ad_len, st, st_len, cdh, "x", NULL),
                     KC_ERR_INVALID_ARG);
    free(ad);
    free(st);
    free(st2);
    free(cdh);
    json_decref(root);
}

static void test_verify_signature_key_checks(void **state)
{
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    uint8_t msg[] = "kcard", sig[64] = {0};
    uint8_t sigbuf[128];
    size_t siglen = sizeof(sigbuf);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    (void)state;
    assert_non_null(ec);
    assert_non_null(ed);
    /* key does not fit alg */
    assert_int_equal(kc_verify_signature(ec, KC_COSE_EDDSA, msg, 5, sig, 64), KC_ERR_INVALID_ARG);
    assert_int_equal(kc_verify_signature(ed, KC_COSE_RS256, msg, 5, sig, 64), KC_ERR_INVALID_ARG);
    assert_int_equal(kc_verify_signature(ec, KC_COSE_ECDH_ES_HKDF_256, msg, 5, sig, 64),
                     KC_ERR_INVALID_ARG);
    /* empty and zero signatures */
    assert_int_equal(kc_verify_signature(ec, KC_COSE_ES256, msg, 5, sig, 0), KC_ERR_VERIFY);
    assert_int_equal(kc_verify_signature(ed, KC_COSE_EDDSA, msg, 5, sig, 64), KC_ERR_VERIFY);
    /* a real Ed25519 signature verifies; the same over other data does not */
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, ed), 1);
    assert_int_equal(EVP_DigestSign(ctx, sigbuf, &siglen, msg, 5), 1);
    assert_int_equal(siglen, 64);
    assert_int_equal(kc_verify_signature(ed, KC_COSE_EDDSA, msg, 5, sigbuf, siglen), KC_OK);
    assert_int_equal(kc_verify_signature(ed, KC_COSE_EDDSA, msg, 4, sigbuf, siglen), KC_ERR_VERIFY);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
}

static void test_assertion_bad_args(void **state)
{
    struct kc_cose_key none = {0};
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    uint8_t ad[37] = {0}, cdh[32] = {0}, sig[8] = {0};
    struct kc_verify_result res;

    (void)state;
    kc_verify_result_init(&res);
    assert_int_equal(kc_verify_assertion(&none, ad, sizeof(ad), sig, sizeof(sig), cdh, "localhost",
                                         true, false, 0, NULL, &res),
                     KC_ERR_INVALID_ARG);
    assert_int_equal(kc_verify_assertion_pkey(ec, KC_COSE_EDDSA, ad, sizeof(ad), sig, sizeof(sig),
                                              cdh, "localhost", true, false, 0, NULL, &res),
                     KC_ERR_INVALID_ARG);
    assert_non_null(strstr(res.reason, "does not fit"));
    /* too short to be authData */
    assert_int_equal(kc_verify_assertion_pkey(ec, KC_COSE_ES256, ad, 36, sig, sizeof(sig), cdh,
                                              "localhost", true, false, 0, NULL, &res),
                     KC_ERR_CBOR);
    assert_non_null(strstr(res.reason, "authData"));
    EVP_PKEY_free(ec);
}

static void test_sha256_and_names(void **state)
{
    uint8_t h[32];
    /* SHA-256("localhost") */
    static const uint8_t want[4] = {0x49, 0x96, 0x0d, 0xe5};

    (void)state;
    assert_int_equal(kc_sha256((const uint8_t *)"localhost", 9, h), KC_OK);
    assert_memory_equal(h, want, sizeof(want));
    assert_string_equal(kc_att_type_name(KC_ATT_BASIC), "basic");
    assert_string_equal(kc_att_type_name(KC_ATT_SELF), "self");
    assert_string_equal(kc_att_type_name(KC_ATT_NONE), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attestation_vectors),
        cmocka_unit_test(test_assertion_vectors),
        cmocka_unit_test(test_attestation_item_and_malformed_stmt),
        cmocka_unit_test(test_verify_signature_key_checks),
        cmocka_unit_test(test_assertion_bad_args),
        cmocka_unit_test(test_sha256_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
