/* The virtual card's core, called directly: getInfo, makeCredential,
 * getAssertion, getNextAssertion, presence outcomes, request checking,
 * and the core fault profiles. */
#include <pthread.h>
#include <stdatomic.h>

#include "tests/unit/harness/vcard/test_card_util.h"

static const char *text_at(const cbor_item_t *arr, size_t i, char *buf, size_t cap)
{
    cbor_item_t *v = cbor_array_handle(arr)[i];
    size_t n = cbor_string_length(v);

    assert_true(n < cap);
    memcpy(buf, cbor_string_handle(v), n);
    buf[n] = '\0';
    return buf;
}

static void test_get_info(void **state)
{
    struct vc_card *c = card_with(VC_ATT_PACKED_BATCH, true, NULL);
    cbor_item_t *r = NULL, *v, *opts;
    char buf[64];

    (void)state;
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_INFO, NULL, &r, NULL), 0);
    assert_non_null(r);
    v = map_get(r, 1);
    assert_int_equal(cbor_array_size(v), 3);
    assert_string_equal(text_at(v, 0, buf, sizeof(buf)), "U2F_V2");
    assert_string_equal(text_at(v, 1, buf, sizeof(buf)), "FIDO_2_0");
    assert_string_equal(text_at(v, 2, buf, sizeof(buf)), "FIDO_2_1");
    v = map_get(r, 2);
    assert_string_equal(text_at(v, 0, buf, sizeof(buf)), "credProtect");
    assert_string_equal(text_at(v, 1, buf, sizeof(buf)), "hmac-secret");
    v = map_get(r, 3);
    assert_int_equal(cbor_bytestring_length(v), 16);
    assert_int_equal(cbor_bytestring_handle(v)[0], 0xa0);
    opts = map_get(r, 4);
    assert_true(cbor_get_bool(map_get_text(opts, "rk")));
    assert_true(cbor_get_bool(map_get_text(opts, "up")));
    assert_null(map_get_text(opts, "uv"));
    assert_false(cbor_get_bool(map_get_text(opts, "clientPin")));
    assert_true(cbor_get_bool(map_get_text(opts, "pinUvAuthToken")));
    assert_int_equal(cbor_get_int(map_get(r, 5)), 1200);
    v = map_get(r, 6);
    assert_int_equal(cbor_array_size(v), 2);
    assert_int_equal(cbor_get_int(cbor_array_handle(v)[0]), 2);
    assert_int_equal(cbor_get_int(cbor_array_handle(v)[1]), 1);
    assert_non_null(map_get(r, 7));
    assert_non_null(map_get(r, 8));
    assert_string_equal(text_at(map_get(r, 9), 0, buf, sizeof(buf)), "usb");
    v = map_get(r, 10);
    assert_int_equal(cbor_array_size(v), 2);
    assert_int_equal(cbor_get_int(map_get_text(cbor_array_handle(v)[0], "alg")), 6); /* -7 */
    assert_int_equal(cbor_get_int(map_get_text(cbor_array_handle(v)[1], "alg")), 7); /* -8 */
    assert_int_equal(cbor_get_int(map_get(r, 13)), 4);
    assert_non_null(map_get(r, 14));
    cbor_decref(&r);
    vc_card_free(c);
}

static void test_get_info_faults(void **state)
{
    struct vc_card *c = card_with(VC_ATT_PACKED_BATCH, false, NULL);
    struct vc_faults f;
    cbor_item_t *r = NULL, *opts;
    const uint8_t mc[] = {KC_CTAP2_MAKE_CREDENTIAL, 0xa0};

    (void)state;
    /* ctap1 off: no U2F_V2 */
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_INFO, NULL, &r, NULL), 0);
    assert_int_equal(cbor_array_size(map_get(r, 1)), 2);
    cbor_decref(&r);

    memset(&f, 0, sizeof(f));
    f.on[VC_FAULT_NO_PIN_PROTOCOLS] = true;
    vc_card_set_faults(c, &f);
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_INFO, NULL, &r, NULL), 0);
    assert_null(map_get(r, 6));
    opts = map_get(r, 4);
    assert_null(map_get_text(opts, "clientPin"));
    assert_non_null(map_get_text(opts, "rk"));
    cbor_decref(&r);
    {
        cbor_item_t *m = cbor_new_definite_map(1);
        put(m, num(2), num(KC_PIN_GET_RETRIES));
        assert_int_equal(send_cbor(c, KC_CTAP2_CLIENT_PIN, m, NULL, NULL),
                         KC_CTAP1_ERR_INVALID_COMMAND);
    }

    memset(&f, 0, sizeof(f));
    f.on[VC_FAULT_CTAP1_ONLY] = true;
    vc_card_set_faults(c, &f);
    assert_false(vc_card_ctap2_enabled(c));
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_INFO, NULL, NULL, NULL),
                     KC_CTAP1_ERR_INVALID_COMMAND);
    assert_int_equal(send_raw(c, mc, sizeof(mc)), KC_CTAP1_ERR_INVALID_COMMAND);
    memset(&f, 0, sizeof(f));
    vc_card_set_faults(c, &f);
    assert_true(vc_card_ctap2_enabled(c));
    assert_false(vc_card_ctap1_enabled(c));
    vc_card_free(c);
}

static void mc_then_ga(enum vc_attestation att, int alg)
{
    struct vc_card *c = card_with(att, true, NULL);
    struct presence p = {VC_UP_APPROVED, 0};
    struct mc_opts o = {.alg = alg};
    struct ga_opts go = {.cdh_seed = 3};
    struct kc_verify_result vr;
    struct made m;
    struct got g;
    uint8_t cdh[32];
    uint32_t newc = 0;

    assert_int_equal(make_cred(c, &o, &p, &m), 0);
    assert_int_equal(p.calls, 1);
    assert_int_equal(m.key.alg, alg);
    assert_int_equal(m.ad.flags & (KC_AD_UP | KC_AD_AT), KC_AD_UP | KC_AD_AT);
    assert_int_equal(m.ad.sign_count, 0);
    assert_int_equal(m.ad.aaguid[0], 0xa0);
    fill_cdh(cdh, 7);
    kc_verify_result_init(&vr);
    assert_int_equal(kc_verify_attestation_item(m.fmt, m.auth_data, m.auth_data_len, m.att_stmt,
                                                cdh, "example.com", &vr),
                     KC_OK);
    assert_int_equal(vr.att_type, att == VC_ATT_PACKED_BATCH ? KC_ATT_BASIC
                                  : att == VC_ATT_SELF       ? KC_ATT_SELF
                                                             : KC_ATT_NONE);
    if (att == VC_ATT_PACKED_BATCH)
        assert_non_null(strstr(vr.cert_subject, "Authenticator Attestation"));
    kc_verify_result_free(&vr);

    go.allow_id = m.cred_id;
    go.allow_len = m.cred_id_len;
    for (uint32_t i = 1; i <= 3; i++) {
        assert_int_equal(get_assert(c, &go, &p, &g), 0);
        assert_int_equal(g.count, i);
        assert_true(g.flags & KC_AD_UP);
        assert_memory_equal(g.cred_id, m.cred_id, m.cred_id_len);
        assert_true(check_assertion_sig(&m.key, &g, 3));
        assert_int_equal(kc_verify_assertion(&m.key, g.auth_data, g.auth_data_len, g.sig, g.sig_len,
                                             (fill_cdh(cdh, 3), cdh), "example.com", true, false,
                                             i - 1, &newc, NULL),
                         KC_OK);
        assert_int_equal(newc, i);
        assert_int_equal(g.user_id_len, 0); /* not resident: no user entity */
    }
    assert_int_equal(p.calls, 4);
    /* another rp cannot use it */
    go.rp = "evil.example";
    assert_int_equal(get_assert(c, &go, &p, &g), KC_CTAP2_ERR_NO_CREDENTIALS);
    /* a tampered id is not ours */
    go.rp = NULL;
    m.cred_id[20] ^= 1;
    assert_int_equal(get_assert(c, &go, &p, &g), KC_CTAP2_ERR_NO_CREDENTIALS);
    made_free(&m);
    vc_card_free(c);
}

static void test_es256_packed(void **state)
{
    (void)state;
    mc_then_ga(VC_ATT_PACKED_BATCH, KC_COSE_ES256);
}

static void test_eddsa_packed(void **state)
{
    (void)state;
    mc_then_ga(VC_ATT_PACKED_BATCH, KC_COSE_EDDSA);
}

static void test_eddsa_self(void **state)
{
    (void)state;
    mc_then_ga(VC_ATT_SELF, KC_COSE_EDDSA);
}

static void test_es256_none(void **state)
{
    (void)state;
    mc_then_ga(VC_ATT_NONE, KC_COSE_ES256);
}

static void test_extensions(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    struct mc_opts o = {.cred_protect = 2, .hmac_secret = true};
    struct made m;
    struct cbor_load_result res;
    cbor_item_t *ext;

    (void)state;
    assert_int_equal(make_cred(c, &o, NULL, &m), 0);
    assert_true(m.ad.flags & KC_AD_ED);
    ext = cbor_load(m.ad.extensions, m.ad.extensions_len, &res);
    assert_non_null(ext);
    assert_int_equal(cbor_get_int(map_get_text(ext, "credProtect")), 2);
    assert_true(cbor_get_bool(map_get_text(ext, "hmac-secret")));
    cbor_decref(&ext);
    made_free(&m);
    vc_card_free(c);
}

static void test_resident_and_next(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    struct mc_opts o = {.rk = true};
    struct ga_opts go = {.cdh_seed = 9};
    struct made m[3];
    struct got g;
    const char *names[] = {"u0", "u1", "u2"};
    cbor_item_t *r = NULL;

    (void)state;
    for (int i = 0; i < 3; i++) {
        o.user_id = (uint8_t)i;
        o.user_name = names[i];
        o.alg = i == 1 ? KC_COSE_EDDSA : KC_COSE_ES256;
        assert_int_equal(make_cred(c, &o, NULL, &m[i]), 0);
    }
    /* one for another rp, and a replacement of user 0 would replace: skip */
    o.rp = "other.example";
    o.user_id = 9;
    {
        struct made x;
        assert_int_equal(make_cred(c, &o, NULL, &x), 0);
        made_free(&x);
    }
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_int_equal(g.number, 3);
    assert_string_equal(g.user_name, "u2"); /* newest first */
    assert_int_equal(g.user_id_len, 8);
    assert_memory_equal(g.cred_id, m[2].cred_id, m[2].cred_id_len);
    assert_true(check_assertion_sig(&m[2].key, &g, 9));
    for (int i = 1; i >= 0; i--) {
        assert_int_equal(send_cbor(c, KC_CTAP2_GET_NEXT_ASSERTION, NULL, &r, NULL), 0);
        parse_assertion(r, &g);
        cbor_decref(&r);
        assert_string_equal(g.user_name, names[i]);
        assert_int_equal(g.number, -1);
        assert_true(check_assertion_sig(&m[i].key, &g, 9));
    }
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_NEXT_ASSERTION, NULL, NULL, NULL),
                     KC_CTAP2_ERR_NOT_ALLOWED);
    /* any other command ends the sequence */
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_INFO, NULL, &r, NULL), 0);
    cbor_decref(&r);
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_NEXT_ASSERTION, NULL, NULL, NULL),
                     KC_CTAP2_ERR_NOT_ALLOWED);
    /* same rp + user id replaces the credential */
    o.rp = NULL;
    o.user_id = 0;
    o.user_name = "u0-new";
    {
        struct made x;
        assert_int_equal(make_cred(c, &o, NULL, &x), 0);
        made_free(&x);
    }
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_int_equal(g.number, 3);
    assert_string_equal(g.user_name, "u0-new");
    /* no credentials at all for an unknown rp */
    go.rp = "nobody.example";
    assert_int_equal(get_assert(c, &go, NULL, &g), KC_CTAP2_ERR_NO_CREDENTIALS);
    for (int i = 0; i < 3; i++)
        made_free(&m[i]);
    vc_card_free(c);
}

static void test_cred_protect_hides(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    struct mc_opts o = {.rk = true, .cred_protect = 3};
    struct ga_opts go = {0};
    struct made m;
    struct got g;

    (void)state;
    assert_int_equal(make_cred(c, &o, NULL, &m), 0);
    assert_int_equal(get_assert(c, &go, NULL, &g), KC_CTAP2_ERR_NO_CREDENTIALS);
    go.allow_id = m.cred_id;
    go.allow_len = m.cred_id_len;
    assert_int_equal(get_assert(c, &go, NULL, &g), KC_CTAP2_ERR_NO_CREDENTIALS);
    made_free(&m);
    vc_card_free(c);
}

static void test_exclude_list(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    struct presence p = {VC_UP_APPROVED, 0};
    struct mc_opts o = {0};
    struct made m, x;

    (void)state;
    assert_int_equal(make_cred(c, &o, &p, &m), 0);
    o.exclude_id = m.cred_id;
    o.exclude_len = m.cred_id_len;
    p.calls = 0;
    assert_int_equal(make_cred(c, &o, &p, &x), KC_CTAP2_ERR_CREDENTIAL_EXCLUDED);
    assert_int_equal(p.calls, 1);
    /* excluded only for its own rp */
    o.rp = "other.example";
    assert_int_equal(make_cred(c, &o, &p, &x), 0);
    made_free(&x);
    made_free(&m);
    vc_card_free(c);
}

static void test_up_false(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    struct presence p = {VC_UP_DENIED, 0};
    struct mc_opts o = {0};
    struct ga_opts go = {.up_false = true};
    struct made m;
    struct got g;

    (void)state;
    assert_int_equal(make_cred(c, &o, NULL, &m), 0);
    go.allow_id = m.cred_id;
    go.allow_len = m.cred_id_len;
    assert_int_equal(get_assert(c, &go, &p, &g), 0);
    assert_int_equal(p.calls, 0);
    assert_int_equal(g.flags & KC_AD_UP, 0);
    assert_true(check_assertion_sig(&m.key, &g, 0));
    made_free(&m);
    vc_card_free(c);
}

static void test_presence_outcomes(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    struct presence p = {VC_UP_APPROVED, 0};
    struct mc_opts o = {0};
    struct ga_opts go = {0};
    struct made m;
    struct got g;
    const struct {
        enum vc_up_result r;
        uint8_t st;
    } cases[] = {{VC_UP_DENIED, KC_CTAP2_ERR_OPERATION_DENIED},
                 {VC_UP_TIMEOUT, KC_CTAP2_ERR_USER_ACTION_TIMEOUT},
                 {VC_UP_CANCELLED, KC_CTAP2_ERR_KEEPALIVE_CANCEL}};

    (void)state;
    assert_int_equal(make_cred(c, &o, &p, &m), 0);
    go.allow_id = m.cred_id;
    go.allow_len = m.cred_id_len;
    for (size_t i = 0; i < 3; i++) {
        struct made x;
        p.answer = cases[i].r;
        assert_int_equal(make_cred(c, &o, &p, &x), cases[i].st);
        assert_int_equal(get_assert(c, &go, &p, &g), cases[i].st);
        assert_int_equal(send_cbor(c, KC_CTAP2_SELECTION, NULL, NULL, &p), cases[i].st);
    }
    p.answer = VC_UP_APPROVED;
    assert_int_equal(send_cbor(c, KC_CTAP2_SELECTION, NULL, NULL, &p), 0);
    made_free(&m);
    vc_card_free(c);
}

static void test_bad_requests(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    struct mc_opts o = {0};
    uint8_t cdh[32] = {0};
    cbor_item_t *m;
    const uint8_t bad_cbor[] = {KC_CTAP2_MAKE_CREDENTIAL, 0xa1, 0x01};
    const uint8_t not_map[] = {KC_CTAP2_GET_ASSERTION, 0x01};
    const uint8_t trailing[] = {KC_CTAP2_GET_ASSERTION, 0xa0, 0x00};
    const uint8_t empty_mc[] = {KC_CTAP2_MAKE_CREDENTIAL};
    const uint8_t unknown[] = {0x42};
    /* a map head claiming 2^56 pairs in a few bytes (found by fuzzing) */
    const uint8_t huge_map[] = {KC_CTAP2_GET_ASSERTION,
                                0xa2,
                                0xbb,
                                0x01,
                                0x02,
                                0x02,
                                0x01,
                                0x01,
                                0x00,
                                0x7f,
                                0xff,
                                0xe2,
                                0x4b,
                                0x0a,
                                0x9b,
                                0x00};
    const uint8_t huge_array[] = {KC_CTAP2_MAKE_CREDENTIAL,
                                  0xa1,
                                  0x01,
                                  0x9b,
                                  0x10,
                                  0x00,
                                  0x00,
                                  0x00,
                                  0x00,
                                  0x00,
                                  0x00,
                                  0x00,
                                  0x00};
    uint8_t resp[4];
    size_t rlen = 0;

    (void)state;
    assert_int_equal(send_raw(c, bad_cbor, sizeof(bad_cbor)), KC_CTAP2_ERR_INVALID_CBOR);
    assert_int_equal(send_raw(c, not_map, sizeof(not_map)), KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE);
    assert_int_equal(send_raw(c, trailing, sizeof(trailing)), KC_CTAP2_ERR_INVALID_CBOR);
    assert_int_equal(send_raw(c, empty_mc, sizeof(empty_mc)), KC_CTAP2_ERR_MISSING_PARAMETER);
    assert_int_equal(send_raw(c, unknown, sizeof(unknown)), KC_CTAP1_ERR_INVALID_COMMAND);
    assert_int_equal(send_raw(c, huge_map, sizeof(huge_map)), KC_CTAP2_ERR_INVALID_CBOR);
    assert_int_equal(send_raw(c, huge_array, sizeof(huge_array)), KC_CTAP2_ERR_INVALID_CBOR);
    assert_int_equal(vc_card_cbor(c, unknown, 0, resp, sizeof(resp), &rlen, NULL, NULL), 0);
    assert_int_equal(resp[0], KC_CTAP1_ERR_INVALID_LENGTH);
    /* too small a response buffer */
    assert_int_equal(vc_card_cbor(c, (const uint8_t[]){KC_CTAP2_GET_INFO}, 1, resp, sizeof(resp),
                                  &rlen, NULL, NULL),
                     -1);

    /* makeCredential: missing user */
    m = mc_request(&o, cdh);
    {
        cbor_item_t *n = cbor_new_definite_map(3);
        put(n, num(1), cbor_incref(map_get(m, 1)));
        put(n, num(2), cbor_incref(map_get(m, 2)));
        put(n, num(4), cbor_incref(map_get(m, 4)));
        assert_int_equal(send_cbor(c, KC_CTAP2_MAKE_CREDENTIAL, n, NULL, NULL),
                         KC_CTAP2_ERR_MISSING_PARAMETER);
    }
    cbor_decref(&m);
    /* clientDataHash of the wrong type */
    m = cbor_new_definite_map(4);
    put(m, num(1), text("not bytes"));
    {
        cbor_item_t *rp = cbor_new_definite_map(1), *user = cbor_new_definite_map(1);
        cbor_item_t *params = cbor_new_definite_array(0);
        put(rp, text("id"), text("example.com"));
        put(user, text("id"), bytes(cdh, 4));
        put(m, num(2), rp);
        put(m, num(3), user);
        put(m, num(4), params);
    }
    assert_int_equal(send_cbor(c, KC_CTAP2_MAKE_CREDENTIAL, m, NULL, NULL),
                     KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE);
    /* only RS256 offered */
    o.alg = KC_COSE_RS256;
    m = mc_request(&o, cdh);
    assert_int_equal(send_cbor(c, KC_CTAP2_MAKE_CREDENTIAL, m, NULL, NULL),
                     KC_CTAP2_ERR_UNSUPPORTED_ALGORITHM);
    /* uv without built-in uv */
    o.alg = 0;
    o.uv_option = true;
    m = mc_request(&o, cdh);
    assert_int_equal(send_cbor(c, KC_CTAP2_MAKE_CREDENTIAL, m, NULL, NULL),
                     KC_CTAP2_ERR_INVALID_OPTION);
    /* getAssertion: missing clientDataHash, rpId not text, option not bool */
    m = cbor_new_definite_map(1);
    put(m, num(1), text("example.com"));
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_ASSERTION, m, NULL, NULL),
                     KC_CTAP2_ERR_MISSING_PARAMETER);
    m = cbor_new_definite_map(2);
    put(m, num(1), num(5));
    put(m, num(2), bytes(cdh, 32));
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_ASSERTION, m, NULL, NULL),
                     KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE);
    m = cbor_new_definite_map(3);
    put(m, num(1), text("example.com"));
    put(m, num(2), bytes(cdh, 32));
    {
        cbor_item_t *opt = cbor_new_definite_map(1);
        put(opt, text("up"), num(0));
        put(m, num(5), opt);
    }
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_ASSERTION, m, NULL, NULL),
                     KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE);
    /* allowList entry without id */
    m = cbor_new_definite_map(3);
    put(m, num(1), text("example.com"));
    put(m, num(2), bytes(cdh, 32));
    {
        cbor_item_t *al = cbor_new_definite_array(1), *d = cbor_new_definite_map(1);
        put(d, text("type"), text("public-key"));
        assert_true(cbor_array_push(al, cbor_move(d)));
        put(m, num(3), al);
    }
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_ASSERTION, m, NULL, NULL),
                     KC_CTAP2_ERR_MISSING_PARAMETER);
    vc_card_free(c);
}

/* A getAssertion (or makeCredential, for the extension) whose boolean is a
 * half-precision float: libcbor's cbor_is_bool aborts on floats, the card
 * must answer CBOR_UNEXPECTED_TYPE instead (found by fuzzing). */
static void test_float_booleans(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    struct mc_opts o = {0};
    uint8_t cdh[32] = {0}, req[RESP_CAP];
    cbor_item_t *m, *v, *ext;
    unsigned char *enc = NULL;
    size_t cap = 0, len;
    /* getAssertion {1: "a", 2: 32 zero bytes, 5: {"up": 0.0 as a half float}} */
    uint8_t ga[8 + 32 + 8] = {KC_CTAP2_GET_ASSERTION, 0xa3, 0x01, 0x61, 'a', 0x02, 0x58, 0x20};
    const uint8_t opt_tail[8] = {0x05, 0xa1, 0x62, 'u', 'p', 0xf9, 0x00, 0x00};

    (void)state;
    memcpy(ga + 8 + 32, opt_tail, sizeof(opt_tail));
    assert_int_equal(send_raw(c, ga, sizeof(ga)), KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE);
    /* the hmac-secret extension of makeCredential, the same way */
    m = mc_request(&o, cdh);
    assert_non_null(m);
    assert_non_null(ext = cbor_new_definite_map(1));
    assert_non_null(v = cbor_new_float2());
    cbor_set_float2(v, 1.0f);
    assert_true(cbor_map_add(
        ext, (struct cbor_pair){cbor_move(cbor_build_string("hmac-secret")), cbor_move(v)}));
    assert_true(
        cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_uint8(6)), cbor_move(ext)}));
    len = cbor_serialize_alloc(m, &enc, &cap);
    assert_true(len > 0 && len + 1 <= sizeof(req));
    req[0] = KC_CTAP2_MAKE_CREDENTIAL;
    memcpy(req + 1, enc, len);
    assert_int_equal(send_raw(c, req, len + 1), KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE);
    free(enc);
    cbor_decref(&m);
    vc_card_free(c);
}

#define MAX_MSG_SIZE 1200 /* what getInfo advertises (checked below) */

/* A getAssertion request of exactly total bytes, command byte included,
 * padded with an extension the card does not know (and so ignores). */
static void ga_request_of_size(size_t total, uint8_t *buf)
{
    static uint8_t pad[2048];
    uint8_t cdh[32] = {0};
    size_t n = 1000, len = 0;

    for (int pass = 0; pass < 2; pass++) {
        cbor_item_t *m = cbor_new_definite_map(3), *ext = cbor_new_definite_map(1);
        unsigned char *enc = NULL;
        size_t cap = 0;

        assert_non_null(m);
        assert_non_null(ext);
        assert_true(
            cbor_map_add(ext, (struct cbor_pair){cbor_move(cbor_build_string("x-pad")),
                                                 cbor_move(cbor_build_bytestring(pad, n))}));
        assert_true(
            cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_uint8(1)),
                                               cbor_move(cbor_build_string("example.com"))}));
        assert_true(cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_uint8(2)),
                                                       cbor_move(cbor_build_bytestring(cdh, 32))}));
        assert_true(
            cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_uint8(4)), cbor_move(ext)}));
        len = cbor_serialize_alloc(m, &enc, &cap);
        assert_true(len > 0);
        if (pass == 0) {
            /* the pad's head has the same width for every n in 256..65535 */
            n = n + total - 1 - len;
        } else {
            assert_int_equal(len + 1, total);
            buf[0] = KC_CTAP2_GET_ASSERTION;
            memcpy(buf + 1, enc, len);
        }
        free(enc);
        cbor_decref(&m);
    }
}

static void test_max_msg_size(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    static uint8_t req[MAX_MSG_SIZE + 2];
    const uint8_t info[] = {KC_CTAP2_GET_INFO};
    uint8_t resp[RESP_CAP];
    size_t rlen = 0;
    struct cbor_load_result res;
    cbor_item_t *m;

    (void)state;
    /* the limit refused is the one getInfo advertises */
    assert_int_equal(vc_card_cbor(c, info, 1, resp, sizeof(resp), &rlen, NULL, NULL), 0);
    assert_int_equal(resp[0], 0);
    m = cbor_load(resp + 1, rlen - 1, &res);
    assert_non_null(m);
    assert_int_equal(cbor_get_int(map_get(m, 5)), MAX_MSG_SIZE);
    cbor_decref(&m);
    /* exactly maxMsgSize is parsed (no credentials for this rp) */
    ga_request_of_size(MAX_MSG_SIZE, req);
    assert_int_equal(send_raw(c, req, MAX_MSG_SIZE), KC_CTAP2_ERR_NO_CREDENTIALS);
    /* one byte more is refused before parsing */
    ga_request_of_size(MAX_MSG_SIZE + 1, req);
    assert_int_equal(send_raw(c, req, MAX_MSG_SIZE + 1), KC_CTAP2_ERR_REQUEST_TOO_LARGE);
    /* whatever the command and even when the bytes are not CBOR */
    memset(req, 0xff, sizeof(req));
    req[0] = KC_CTAP2_MAKE_CREDENTIAL;
    assert_int_equal(send_raw(c, req, sizeof(req)), KC_CTAP2_ERR_REQUEST_TOO_LARGE);
    req[0] = KC_CTAP2_CLIENT_PIN;
    assert_int_equal(send_raw(c, req, sizeof(req)), KC_CTAP2_ERR_REQUEST_TOO_LARGE);
    vc_card_free(c);
}

static void test_bogus_signature(void **state)
{
    struct vc_card *c = card_with(VC_ATT_PACKED_BATCH, true, NULL);
    struct mc_opts o = {0};
    struct ga_opts go = {0};
    struct vc_faults f;
    struct made m;
    struct got g;
    struct kc_verify_result vr;
    uint8_t cdh[32];

    (void)state;
    assert_int_equal(make_cred(c, &o, NULL, &m), 0);
    go.allow_id = m.cred_id;
    go.allow_len = m.cred_id_len;
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_true(check_assertion_sig(&m.key, &g, 0));
    memset(&f, 0, sizeof(f));
    f.on[VC_FAULT_BOGUS_SIGNATURE] = true;
    vc_card_set_faults(c, &f);
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_false(check_assertion_sig(&m.key, &g, 0));
    made_free(&m);
    /* the attestation signature is bogus too */
    assert_int_equal(make_cred(c, &o, NULL, &m), 0);
    fill_cdh(cdh, 7);
    kc_verify_result_init(&vr);
    assert_int_not_equal(kc_verify_attestation_item(m.fmt, m.auth_data, m.auth_data_len, m.att_stmt,
                                                    cdh, "example.com", &vr),
                         KC_OK);
    kc_verify_result_free(&vr);
    made_free(&m);
    vc_card_free(c);
}

static void test_counter_rollback(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    struct mc_opts o = {0};
    struct ga_opts go = {0};
    struct vc_faults f;
    struct made m;
    struct got g;
    char *js;

    (void)state;
    assert_int_equal(make_cred(c, &o, NULL, &m), 0);
    go.allow_id = m.cred_id;
    go.allow_len = m.cred_id_len;
    for (uint32_t i = 1; i <= 3; i++) {
        assert_int_equal(get_assert(c, &go, NULL, &g), 0);
        assert_int_equal(g.count, i);
    }
    memset(&f, 0, sizeof(f));
    f.on[VC_FAULT_COUNTER_ROLLBACK] = true;
    vc_card_set_faults(c, &f);
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_int_equal(g.count, 2);
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_int_equal(g.count, 1);
    assert_true(check_assertion_sig(&m.key, &g, 0));
    js = vc_card_status_json(c);
    assert_non_null(js);
    assert_non_null(strstr(js, "counter-rollback"));
    assert_non_null(strstr(js, "\"pin_set\":false"));
    free(js);
    made_free(&m);
    vc_card_free(c);
}

/* The presence callback runs without the card's lock: the HID server's main
 * thread must be able to read status or change faults meanwhile. */
struct reentrant {
    struct vc_card *card;
    int calls;
};

static enum vc_up_result presence_reenters(void *ctx)
{
    struct reentrant *r = ctx;
    struct vc_faults f;
    char *js = vc_card_status_json(r->card);

    assert_non_null(js);
    free(js);
    memset(&f, 0, sizeof(f));
    vc_card_set_faults(r->card, &f);
    r->calls++;
    return VC_UP_APPROVED;
}

struct hammer {
    struct vc_card *card;
    atomic_int stop;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    struct vc_faults f;

    memset(&f, 0, sizeof(f));
    while (!atomic_load(&h->stop)) {
        char *js = vc_card_status_json(h->card);
        free(js);
        f.on[VC_FAULT_DROP_EVERY] = !f.on[VC_FAULT_DROP_EVERY];
        vc_card_set_faults(h->card, &f);
        vc_card_power_cycle(h->card);
        (void)vc_card_ctap2_enabled(h->card);
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    struct reentrant r = {c, 0};
    struct mc_opts o = {.rk = true};
    uint8_t req[512], resp[RESP_CAP], cdh[32];
    size_t len, rlen = 0, cap = 0;
    uint8_t *ser = NULL;
    cbor_item_t *m;
    struct hammer h = {.card = c};
    pthread_t t;
    struct ga_opts go = {0};
    struct got g;

    (void)state;
    fill_cdh(cdh, 7);
    m = mc_request(&o, cdh);
    len = cbor_serialize_alloc(m, &ser, &cap);
    cbor_decref(&m);
    assert_true(len > 0 && len < sizeof(req));
    req[0] = KC_CTAP2_MAKE_CREDENTIAL;
    memcpy(req + 1, ser, len);
    free(ser);
    assert_int_equal(
        vc_card_cbor(c, req, len + 1, resp, sizeof(resp), &rlen, presence_reenters, &r), 0);
    assert_int_equal(resp[0], 0);
    assert_int_equal(r.calls, 1);

    assert_int_equal(pthread_create(&t, NULL, hammer_main, &h), 0);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(
            vc_card_cbor(c, req, len + 1, resp, sizeof(resp), &rlen, presence_reenters, &r), 0);
        assert_int_equal(resp[0], 0);
        assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    }
    atomic_store(&h.stop, 1);
    pthread_join(t, NULL);
    vc_card_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_info),           cmocka_unit_test(test_get_info_faults),
        cmocka_unit_test(test_es256_packed),       cmocka_unit_test(test_eddsa_packed),
        cmocka_unit_test(test_eddsa_self),         cmocka_unit_test(test_es256_none),
        cmocka_unit_test(test_extensions),         cmocka_unit_test(test_resident_and_next),
        cmocka_unit_test(test_cred_protect_hides), cmocka_unit_test(test_exclude_list),
        cmocka_unit_test(test_up_false),           cmocka_unit_test(test_presence_outcomes),
        cmocka_unit_test(test_bad_requests),       cmocka_unit_test(test_max_msg_size),
        cmocka_unit_test(test_float_booleans),     cmocka_unit_test(test_bogus_signature),
        cmocka_unit_test(test_counter_rollback),   cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
