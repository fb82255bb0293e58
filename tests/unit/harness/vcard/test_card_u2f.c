/* CTAP1/U2F of the virtual card core: VERSION, REGISTER, AUTHENTICATE in all
 * three modes, APDU encodings and errors, and a U2F key handle used through
 * CTAP2 getAssertion. */
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "tests/unit/harness/vcard/test_card_util.h"

struct rsp {
    uint8_t b[RESP_CAP];
    size_t n;
    uint16_t sw;
};

static void apdu(struct vc_card *c, const uint8_t *a, size_t len, struct presence *p, struct rsp *r)
{
    assert_int_equal(vc_card_msg(c, a, len, r->b, sizeof(r->b), &r->n, p ? presence_cb : NULL, p),
                     0);
    assert_true(r->n >= 2);
    r->sw = (uint16_t)(r->b[r->n - 2] << 8 | r->b[r->n - 1]);
    r->n -= 2;
}

/* Extended-length APDU: 00 INS P1 00 | 00 Lc1 Lc2 | data | 00 00 */
static size_t ext_apdu(uint8_t *out, uint8_t ins, uint8_t p1, const uint8_t *data, size_t len)
{
    size_t k = 0;

    out[k++] = 0;
    out[k++] = ins;
    out[k++] = p1;
    out[k++] = 0;
    out[k++] = 0;
    out[k++] = (uint8_t)(len >> 8);
    out[k++] = (uint8_t)len;
    memcpy(out + k, data, len);
    k += len;
    out[k++] = 0;
    out[k++] = 0;
    return k;
}

static EVP_PKEY *p256_pub(const uint8_t pub[65])
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *k = NULL;

    assert_non_null(bld);
    assert_int_equal(
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 65), 1);
    params = OSSL_PARAM_BLD_to_param(bld);
    assert_non_null(params);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params), 1);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    return k;
}

static int es256_ok(EVP_PKEY *k, const uint8_t *msg, size_t len, const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, msg, len) == 1;

    EVP_MD_CTX_free(ctx);
    return ok;
}

struct reg {
    uint8_t app[32], chal[32], pub[65], kh[255];
    size_t kh_len;
};

static void do_register(struct vc_card *c, struct reg *g, const char *rp)
{
    uint8_t data[64], a[100], msg[1 + 32 + 32 + 255 + 65];
    struct rsp r;
    const unsigned char *cp;
    X509 *cert;
    EVP_PKEY *ak;
    size_t k, cert_len;

    EVP_Digest(rp, strlen(rp), g->app, NULL, EVP_sha256(), NULL);
    memset(g->chal, 0x5a, 32);
    memcpy(data, g->chal, 32);
    memcpy(data + 32, g->app, 32);
    apdu(c, a, ext_apdu(a, KC_U2F_REGISTER, 0, data, 64), NULL, &r);
    assert_int_equal(r.sw, 0x9000);
    assert_int_equal(r.b[0], 0x05);
    memcpy(g->pub, r.b + 1, 65);
    assert_int_equal(g->pub[0], 0x04);
    g->kh_len = r.b[66];
    assert_true(g->kh_len > 0 && 67 + g->kh_len < r.n);
    memcpy(g->kh, r.b + 67, g->kh_len);
    cp = r.b + 67 + g->kh_len;
    cert = d2i_X509(NULL, &cp, (long)(r.n - 67 - g->kh_len));
    assert_non_null(cert);
    cert_len = (size_t)(cp - (r.b + 67 + g->kh_len));
    ak = X509_get0_pubkey(cert);
    assert_non_null(ak);
    k = 0;
    msg[k++] = 0;
    memcpy(msg + k, g->app, 32);
    k += 32;
    memcpy(msg + k, g->chal, 32);
    k += 32;
    memcpy(msg + k, g->kh, g->kh_len);
    k += g->kh_len;
    memcpy(msg + k, g->pub, 65);
    k += 65;
    assert_true(
        es256_ok(ak, msg, k, r.b + 67 + g->kh_len + cert_len, r.n - 67 - g->kh_len - cert_len));
    X509_free(cert);
}

static uint16_t authenticate(struct vc_card *c, const struct reg *g, uint8_t mode,
                             struct presence *p, struct rsp *r)
{
    uint8_t data[32 + 32 + 1 + 255], a[400];
    size_t n = 65 + g->kh_len;

    memcpy(data, g->chal, 32);
    memcpy(data + 32, g->app, 32);
    data[64] = (uint8_t)g->kh_len;
    memcpy(data + 65, g->kh, g->kh_len);
    apdu(c, a, ext_apdu(a, KC_U2F_AUTHENTICATE, mode, data, n), p, r);
    return r->sw;
}

static void test_version(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    const uint8_t shrt[] = {0, KC_U2F_VERSION, 0, 0};
    const uint8_t shrt_le[] = {0, KC_U2F_VERSION, 0, 0, 0};
    const uint8_t ext[] = {0, KC_U2F_VERSION, 0, 0, 0, 0, 0};
    struct rsp r;

    (void)state;
    apdu(c, shrt, sizeof(shrt), NULL, &r);
    assert_int_equal(r.sw, 0x9000);
    assert_int_equal(r.n, 6);
    assert_memory_equal(r.b, "U2F_V2", 6);
    apdu(c, shrt_le, sizeof(shrt_le), NULL, &r);
    assert_int_equal(r.sw, 0x9000);
    apdu(c, ext, sizeof(ext), NULL, &r);
    assert_int_equal(r.sw, 0x9000);
    assert_memory_equal(r.b, "U2F_V2", 6);
    vc_card_free(c);
}

static void test_register_authenticate(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    struct presence p = {VC_UP_APPROVED, 0};
    struct reg g, other;
    struct rsp r;
    EVP_PKEY *k;
    uint8_t msg[69];

    (void)state;
    do_register(c, &g, "https://example.com");
    k = p256_pub(g.pub);
    /* check-only: ours */
    assert_int_equal(authenticate(c, &g, KC_U2F_AUTH_CHECK_ONLY, &p, &r), 0x6985);
    assert_int_equal(p.calls, 0);
    /* enforce: presence asked, signature over app||flags||counter||chal */
    assert_int_equal(authenticate(c, &g, KC_U2F_AUTH_ENFORCE, &p, &r), 0x9000);
    assert_int_equal(p.calls, 1);
    assert_int_equal(r.b[0], 0x01);
    assert_memory_equal(r.b + 1, "\x00\x00\x00\x01", 4);
    memcpy(msg, g.app, 32);
    memcpy(msg + 32, r.b, 5);
    memcpy(msg + 37, g.chal, 32);
    assert_true(es256_ok(k, msg, sizeof(msg), r.b + 5, r.n - 5));
    /* dont-enforce: no presence, flags 0, counter 2 */
    assert_int_equal(authenticate(c, &g, KC_U2F_AUTH_DONT_ENFORCE, &p, &r), 0x9000);
    assert_int_equal(p.calls, 1);
    assert_int_equal(r.b[0], 0x00);
    assert_memory_equal(r.b + 1, "\x00\x00\x00\x02", 4);
    memcpy(msg + 32, r.b, 5);
    assert_true(es256_ok(k, msg, sizeof(msg), r.b + 5, r.n - 5));
    /* enforce, denied */
    p.answer = VC_UP_DENIED;
    assert_int_equal(authenticate(c, &g, KC_U2F_AUTH_ENFORCE, &p, &r), 0x6985);
    /* another app, a tampered handle: wrong data */
    other = g;
    other.app[0] ^= 1;
    assert_int_equal(authenticate(c, &other, KC_U2F_AUTH_CHECK_ONLY, &p, &r), 0x6a80);
    other = g;
    other.kh[10] ^= 1;
    assert_int_equal(authenticate(c, &other, KC_U2F_AUTH_ENFORCE, &p, &r), 0x6a80);
    other.kh_len = 10;
    assert_int_equal(authenticate(c, &other, KC_U2F_AUTH_CHECK_ONLY, &p, &r), 0x6a80);
    /* register denied */
    {
        uint8_t data[64] = {0}, a[100];
        apdu(c, a, ext_apdu(a, KC_U2F_REGISTER, 0, data, 64), &p, &r);
        assert_int_equal(r.sw, 0x6985);
    }
    EVP_PKEY_free(k);
    vc_card_free(c);
}

static void test_u2f_handle_in_ctap2(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    struct reg g;
    struct ga_opts go = {.cdh_seed = 4};
    struct got gt;
    struct kc_cose_key key;

    (void)state;
    do_register(c, &g, "example.com");
    go.allow_id = g.kh;
    go.allow_len = g.kh_len;
    assert_int_equal(get_assert(c, &go, NULL, &gt), 0);
    memset(&key, 0, sizeof(key));
    key.alg = KC_COSE_ES256;
    key.pkey = p256_pub(g.pub);
    assert_true(check_assertion_sig(&key, &gt, 4));
    assert_int_equal(gt.count, 1);
    EVP_PKEY_free(key.pkey);
    vc_card_free(c);
}

static void test_apdu_errors(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL), *off;
    const uint8_t bad_cla[] = {0x80, KC_U2F_VERSION, 0, 0};
    const uint8_t bad_ins[] = {0, 0x55, 0, 0};
    const uint8_t short3[] = {0, 1, 0};
    const uint8_t bad_lc[] = {0, KC_U2F_REGISTER, 0, 0, 10, 1, 2};
    const uint8_t bad_ext[] = {0, KC_U2F_REGISTER, 0, 0, 0, 0, 64, 1, 2, 3};
    const uint8_t ver_data[] = {0, KC_U2F_VERSION, 0, 0, 1, 0xaa};
    uint8_t data[64] = {0}, a[100];
    struct rsp r;

    (void)state;
    apdu(c, bad_cla, sizeof(bad_cla), NULL, &r);
    assert_int_equal(r.sw, 0x6e00);
    apdu(c, bad_ins, sizeof(bad_ins), NULL, &r);
    assert_int_equal(r.sw, 0x6d00);
    apdu(c, short3, sizeof(short3), NULL, &r);
    assert_int_equal(r.sw, 0x6700);
    apdu(c, bad_lc, sizeof(bad_lc), NULL, &r);
    assert_int_equal(r.sw, 0x6700);
    apdu(c, bad_ext, sizeof(bad_ext), NULL, &r);
    assert_int_equal(r.sw, 0x6700);
    apdu(c, ver_data, sizeof(ver_data), NULL, &r);
    assert_int_equal(r.sw, 0x6700);
    apdu(c, a, ext_apdu(a, KC_U2F_REGISTER, 0, data, 63), NULL, &r);
    assert_int_equal(r.sw, 0x6700);
    apdu(c, a, ext_apdu(a, KC_U2F_AUTHENTICATE, 0x07, data, 40), NULL, &r);
    assert_int_equal(r.sw, 0x6700);
    apdu(c, a, ext_apdu(a, KC_U2F_AUTHENTICATE, 0x09, data, 40), NULL, &r);
    assert_int_equal(r.sw, 0x6a80);
    vc_card_free(c);

    off = card_with(VC_ATT_NONE, false, NULL);
    apdu(off, a, ext_apdu(a, KC_U2F_VERSION, 0, data, 0), NULL, &r);
    assert_int_equal(r.sw, 0x6d00);
    vc_card_free(off);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_register_authenticate),
        cmocka_unit_test(test_u2f_handle_in_ctap2),
        cmocka_unit_test(test_apdu_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
