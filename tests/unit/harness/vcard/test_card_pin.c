/* ClientPIN of the virtual card core, driven from the host side through
 * ctaphid/pin_proto: setPIN, changePIN, tokens (protocols 1 and 2), tokens
 * used in makeCredential/getAssertion, retries, per-boot blocking, lockout,
 * power cycles, and reset with its window. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/harness/vcard/test_pin_host.h"

static bool client_pin_option(struct vc_card *c)
{
    cbor_item_t *r = NULL;
    bool b;

    assert_int_equal(send_cbor(c, KC_CTAP2_GET_INFO, NULL, &r, NULL), 0);
    b = cbor_get_bool(map_get_text(map_get(r, 4), "clientPin"));
    cbor_decref(&r);
    return b;
}

static void pin_flow(int proto)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    uint8_t token[32], auth[32], old[32];
    struct mc_opts o = {.rk = true, .pin_proto = proto};
    struct ga_opts go = {.pin_proto = proto, .cdh_seed = 2};
    struct made m;
    struct got g;

    assert_false(client_pin_option(c));
    assert_int_equal(get_token(c, proto, "1234", 0, NULL, token), KC_CTAP2_ERR_PIN_NOT_SET);
    assert_int_equal(set_pin(c, proto, "1234"), 0);
    assert_true(client_pin_option(c));
    assert_int_equal(set_pin(c, proto, "9999"), KC_CTAP2_ERR_NOT_ALLOWED);
    assert_int_equal(retries(c), 8);
    assert_int_equal(get_token(c, proto, "1234", 0, NULL, token), 0);
    /* makeCredential with the token: UV set */
    o.pin_auth = auth;
    o.pin_auth_len = param(proto, token, 7, auth);
    assert_int_equal(make_cred(c, &o, NULL, &m), 0);
    assert_true(m.ad.flags & KC_AD_UV);
    made_free(&m);
    /* getAssertion with the token */
    go.pin_auth = auth;
    go.pin_auth_len = param(proto, token, 2, auth);
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_true(g.flags & KC_AD_UV);
    /* a wrong pinUvAuthParam */
    auth[0] ^= 1;
    assert_int_equal(get_assert(c, &go, NULL, &g), KC_CTAP2_ERR_PIN_AUTH_INVALID);
    /* the token is now bound to example.com */
    go.rp = "other.example";
    go.pin_auth_len = param(proto, token, 2, auth);
    assert_int_equal(get_assert(c, &go, NULL, &g), KC_CTAP2_ERR_PIN_AUTH_INVALID);
    /* permission tokens: rp and permission enforced */
    assert_int_equal(get_token(c, proto, "1234", KC_PERM_GA, "example.com", token), 0);
    o.pin_auth_len = param(proto, token, 7, auth);
    assert_int_equal(make_cred(c, &o, NULL, &m), KC_CTAP2_ERR_PIN_AUTH_INVALID);
    go.rp = NULL;
    go.pin_auth_len = param(proto, token, 2, auth);
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_int_equal(get_token(c, proto, "1234", KC_PERM_CM, "example.com", token),
                     KC_CTAP2_ERR_UNAUTHORIZED_PERMISSION);
    /* changePIN: the old PIN stops working, tokens are invalidated */
    memcpy(old, token, 32);
    assert_int_equal(change_pin(c, proto, "0000", "5678"), KC_CTAP2_ERR_PIN_INVALID);
    assert_int_equal(change_pin(c, proto, "1234", "5678"), 0);
    go.pin_auth_len = param(proto, old, 2, auth);
    assert_int_equal(get_assert(c, &go, NULL, &g), KC_CTAP2_ERR_PIN_AUTH_INVALID);
    assert_int_equal(get_token(c, proto, "1234", 0, NULL, token), KC_CTAP2_ERR_PIN_INVALID);
    assert_int_equal(get_token(c, proto, "5678", 0, NULL, token), 0);
    assert_int_equal(retries(c), 8);
    vc_card_free(c);
}

static void test_pin_protocol_1(void **state)
{
    (void)state;
    pin_flow(1);
}

static void test_pin_protocol_2(void **state)
{
    (void)state;
    pin_flow(2);
}

static void test_retries_and_blocking(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    uint8_t token[32];
    cbor_item_t *r = NULL;

    (void)state;
    assert_int_equal(set_pin(c, 2, "123456"), 0);
    assert_int_equal(get_token(c, 2, "000000", 0, NULL, token), KC_CTAP2_ERR_PIN_INVALID);
    assert_int_equal(get_token(c, 1, "000000", 0, NULL, token), KC_CTAP2_ERR_PIN_INVALID);
    assert_int_equal(get_token(c, 2, "000000", 0, NULL, token), KC_CTAP2_ERR_PIN_AUTH_BLOCKED);
    assert_int_equal(retries(c), 5);
    assert_int_equal(send_cbor(c, KC_CTAP2_CLIENT_PIN, pin_req(1, KC_PIN_GET_RETRIES), &r, NULL),
                     0);
    assert_true(cbor_get_bool(map_get(r, 4))); /* powerCycleState */
    cbor_decref(&r);
    /* blocked for this boot even with the right PIN, no retry spent */
    assert_int_equal(get_token(c, 2, "123456", 0, NULL, token), KC_CTAP2_ERR_PIN_AUTH_BLOCKED);
    assert_int_equal(retries(c), 5);
    vc_card_power_cycle(c);
    assert_int_equal(get_token(c, 2, "123456", 0, NULL, token), 0);
    assert_int_equal(retries(c), 8);
    /* eight wrong PINs across boots: blocked for good */
    for (int boot = 0; boot < 3; boot++) {
        for (int i = 0; i < 3 && retries(c) > 0; i++) {
            uint8_t st = get_token(c, 1, "999999", 0, NULL, token);
            if (retries(c) == 0)
                assert_int_equal(st, KC_CTAP2_ERR_PIN_BLOCKED);
            else if (i == 2)
                assert_int_equal(st, KC_CTAP2_ERR_PIN_AUTH_BLOCKED);
            else
                assert_int_equal(st, KC_CTAP2_ERR_PIN_INVALID);
        }
        vc_card_power_cycle(c);
    }
    assert_int_equal(retries(c), 0);
    assert_int_equal(get_token(c, 1, "123456", 0, NULL, token), KC_CTAP2_ERR_PIN_BLOCKED);
    assert_int_equal(change_pin(c, 1, "123456", "4444"), KC_CTAP2_ERR_PIN_BLOCKED);
    vc_card_free(c);
}

static void test_pin_requests(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    cbor_item_t *m;

    (void)state;
    assert_int_equal(set_pin(c, 1, "12"), KC_CTAP2_ERR_PIN_POLICY_VIOLATION);
    assert_int_equal(set_pin(c, 2, "123"), KC_CTAP2_ERR_PIN_POLICY_VIOLATION);
    assert_false(client_pin_option(c));
    /* missing subcommand, bad protocol, unknown subcommand, missing fields */
    m = cbor_new_definite_map(1);
    put(m, num(1), num(1));
    assert_int_equal(send_cbor(c, KC_CTAP2_CLIENT_PIN, m, NULL, NULL),
                     KC_CTAP2_ERR_MISSING_PARAMETER);
    assert_int_equal(
        send_cbor(c, KC_CTAP2_CLIENT_PIN, pin_req(3, KC_PIN_GET_KEY_AGREEMENT), NULL, NULL),
        KC_CTAP1_ERR_INVALID_PARAMETER);
    assert_int_equal(send_cbor(c, KC_CTAP2_CLIENT_PIN, pin_req(1, 0x42), NULL, NULL),
                     KC_CTAP2_ERR_INVALID_SUBCOMMAND);
    assert_int_equal(send_cbor(c, KC_CTAP2_CLIENT_PIN, pin_req(2, KC_PIN_SET_PIN), NULL, NULL),
                     KC_CTAP2_ERR_MISSING_PARAMETER);
    m = pin_req(2, KC_PIN_SET_PIN);
    put(m, num(3), num(1));
    put(m, num(4), bytes((const uint8_t *)"abcd", 4));
    put(m, num(5), bytes((const uint8_t *)"abcd", 4));
    assert_int_equal(send_cbor(c, KC_CTAP2_CLIENT_PIN, m, NULL, NULL),
                     KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE);
    m = pin_req(2, KC_PIN_SET_PIN);
    put(m, num(4), text("abcd"));
    assert_int_equal(send_cbor(c, KC_CTAP2_CLIENT_PIN, m, NULL, NULL),
                     KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE);
    /* a setPIN whose auth does not verify */
    {
        struct host h;
        uint8_t npe[128], auth[32] = {0};
        size_t nl;
        host_ka(c, 2, &h);
        m = pin_req(2, KC_PIN_SET_PIN);
        nl = new_pin_enc(&h, "123456", npe);
        put(m, num(3), host_cose(&h));
        put(m, num(4), bytes(auth, 32));
        put(m, num(5), bytes(npe, nl));
        host_free(&h);
        assert_int_equal(send_cbor(c, KC_CTAP2_CLIENT_PIN, m, NULL, NULL),
                         KC_CTAP2_ERR_PIN_AUTH_INVALID);
    }
    vc_card_free(c);
}

static void test_make_credential_pin_rules(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    struct presence p = {VC_UP_APPROVED, 0};
    uint8_t auth[32] = {1};
    struct mc_opts o = {.pin_auth = auth, .pin_auth_len = 16, .pin_proto = 1};
    struct made m;

    (void)state;
    assert_int_equal(make_cred(c, &o, &p, &m), KC_CTAP2_ERR_PIN_NOT_SET);
    o.pin_auth_len = 0;
    assert_int_equal(make_cred(c, &o, &p, &m), KC_CTAP2_ERR_PIN_NOT_SET);
    assert_int_equal(p.calls, 1);
    /* a protocol the card does not know */
    o.pin_auth_len = 16;
    o.pin_proto = 7;
    assert_int_equal(make_cred(c, &o, &p, &m), KC_CTAP1_ERR_INVALID_PARAMETER);
    assert_int_equal(set_pin(c, 1, "4321"), 0);
    o.pin_proto = 1;
    o.pin_auth_len = 0;
    p.calls = 0;
    assert_int_equal(make_cred(c, &o, &p, &m), KC_CTAP2_ERR_PIN_INVALID);
    assert_int_equal(p.calls, 1);
    /* PIN set, no pinUvAuthParam: non-resident allowed without UV, resident not */
    memset(&o, 0, sizeof(o));
    assert_int_equal(make_cred(c, &o, &p, &m), 0);
    assert_int_equal(m.ad.flags & KC_AD_UV, 0);
    made_free(&m);
    o.rk = true;
    assert_int_equal(make_cred(c, &o, &p, &m), KC_CTAP2_ERR_PUAT_REQUIRED);
    vc_card_free(c);
}

static struct vc_card *card_window(int ms)
{
    struct vc_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.attestation = VC_ATT_NONE;
    cfg.ctap1 = true;
    cfg.reset_window_ms = ms;
    return card_from(&cfg);
}

static void test_reset(void **state)
{
    struct vc_card *c = card_window(10000);
    struct presence p = {VC_UP_DENIED, 0};
    struct mc_opts o = {.rk = true};
    struct ga_opts go = {0};
    struct made m;
    struct got g;
    struct timespec ts = {0, 300 * 1000000L};

    (void)state;
    assert_int_equal(make_cred(c, &o, NULL, &m), 0);
    assert_int_equal(set_pin(c, 2, "1234"), 0);
    assert_int_equal(send_cbor(c, KC_CTAP2_RESET, NULL, NULL, &p), KC_CTAP2_ERR_OPERATION_DENIED);
    p.answer = VC_UP_APPROVED;
    assert_int_equal(send_cbor(c, KC_CTAP2_RESET, NULL, NULL, &p), 0);
    assert_false(client_pin_option(c));
    assert_int_equal(get_assert(c, &go, NULL, &g), KC_CTAP2_ERR_NO_CREDENTIALS);
    go.allow_id = m.cred_id;
    go.allow_len = m.cred_id_len;
    assert_int_equal(get_assert(c, &go, NULL, &g), KC_CTAP2_ERR_NO_CREDENTIALS);
    made_free(&m);
    vc_card_free(c);

    c = card_window(200);
    nanosleep(&ts, NULL);
    assert_int_equal(send_cbor(c, KC_CTAP2_RESET, NULL, NULL, &p), KC_CTAP2_ERR_NOT_ALLOWED);
    vc_card_power_cycle(c);
    assert_int_equal(send_cbor(c, KC_CTAP2_RESET, NULL, NULL, &p), 0);
    vc_card_free(c);
}

/* getAssertion's hmac-secret input: {1: keyAgreement, 2: saltEnc, 3: saltAuth, 4: proto} */
static cbor_item_t *hmac_ext(struct vc_card *c, int proto, struct host *h, const uint8_t *salt,
                             size_t salt_len, bool bad_auth)
{
    cbor_item_t *ext = cbor_new_definite_map(1), *in = cbor_new_definite_map(4);
    uint8_t se[128], sa[32];
    size_t sel, sal = 0;

    host_ka(c, proto, h);
    sel = enc(h, salt, salt_len, se);
    assert_int_equal(kc_pinp_authenticate(proto, h->shared, h->slen, se, sel, sa, &sal), 0);
    if (bad_auth)
        sa[0] ^= 1;
    put(in, num(1), host_cose(h));
    put(in, num(2), bytes(se, sel));
    put(in, num(3), bytes(sa, sal));
    put(in, num(4), num(proto));
    put(ext, text("hmac-secret"), in);
    return ext;
}

/* The decrypted hmac-secret output of an assertion, or 0 if there is none. */
static size_t hmac_out(const struct host *h, const struct got *g, uint8_t *out)
{
    struct cbor_load_result res;
    cbor_item_t *m, *v;
    size_t n = 0;

    if (g->ext_len == 0)
        return 0;
    m = cbor_load(g->ext, g->ext_len, &res);
    assert_non_null(m);
    v = map_get_text(m, "hmac-secret");
    if (v != NULL)
        assert_int_equal(kc_pinp_decrypt(h->proto, h->shared, h->slen, cbor_bytestring_handle(v),
                                         cbor_bytestring_length(v), out, 128, &n),
                         0);
    cbor_decref(&m);
    return n;
}

static void test_hmac_secret(void **state)
{
    struct vc_card *c = card_with(VC_ATT_NONE, true, NULL);
    struct mc_opts o = {.hmac_secret = true};
    struct ga_opts go = {0};
    struct made m, plain;
    struct got g;
    struct host h;
    uint8_t salt[64], out1[128], out2[128], out3[128], token[32], auth[32];
    size_t n1, n2, n3;

    (void)state;
    for (int i = 0; i < 64; i++)
        salt[i] = (uint8_t)(i * 3);
    assert_int_equal(make_cred(c, &o, NULL, &m), 0);
    go.allow_id = m.cred_id;
    go.allow_len = m.cred_id_len;
    for (int proto = 1; proto <= 2; proto++) {
        go.ext = hmac_ext(c, proto, &h, salt, 32, false);
        assert_int_equal(get_assert(c, &go, NULL, &g), 0);
        n1 = hmac_out(&h, &g, out1);
        host_free(&h);
        assert_int_equal(n1, 32);
        go.ext = hmac_ext(c, proto, &h, salt, 64, false);
        assert_int_equal(get_assert(c, &go, NULL, &g), 0);
        n2 = hmac_out(&h, &g, out2);
        host_free(&h);
        assert_int_equal(n2, 64);
        assert_memory_equal(out1, out2, 32); /* same salt, same secret */
        assert_memory_not_equal(out2, out2 + 32, 32);
        go.ext = hmac_ext(c, proto, &h, salt, 32, true);
        assert_int_equal(get_assert(c, &go, NULL, &g), KC_CTAP2_ERR_PIN_AUTH_INVALID);
        host_free(&h);
    }
    /* with UV the credential answers with its other secret */
    assert_int_equal(set_pin(c, 2, "1234"), 0);
    assert_int_equal(get_token(c, 2, "1234", 0, NULL, token), 0);
    go.pin_auth = auth;
    go.pin_auth_len = param(2, token, 0, auth);
    go.pin_proto = 2;
    go.ext = hmac_ext(c, 2, &h, salt, 32, false);
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_true(g.flags & KC_AD_UV);
    n3 = hmac_out(&h, &g, out3);
    host_free(&h);
    assert_int_equal(n3, 32);
    assert_memory_not_equal(out1, out3, 32);
    /* a credential made without hmac-secret gives no output */
    o.hmac_secret = false;
    assert_int_equal(make_cred(c, &o, NULL, &plain), 0);
    memset(&go, 0, sizeof(go));
    go.allow_id = plain.cred_id;
    go.allow_len = plain.cred_id_len;
    go.ext = hmac_ext(c, 1, &h, salt, 32, false);
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_int_equal(hmac_out(&h, &g, out1), 0);
    host_free(&h);
    made_free(&plain);
    made_free(&m);
    vc_card_free(c);
}

/* PIN hash and retries live in the state file and survive a restart;
 * the per-boot block does not. */
static void test_pin_state_file(void **state)
{
    char dir[64], file[128];
    struct vc_card *c;
    uint8_t token[32];

    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vcard-pin-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/state", dir);
    c = card_with(VC_ATT_NONE, true, file);
    assert_int_equal(set_pin(c, 2, "24680"), 0);
    for (int i = 0; i < 3; i++)
        assert_int_not_equal(get_token(c, 2, "11111", 0, NULL, token), 0);
    vc_card_free(c);
    c = card_with(VC_ATT_NONE, true, file);
    assert_true(client_pin_option(c));
    assert_int_equal(retries(c), 5);
    assert_int_equal(get_token(c, 1, "24680", 0, NULL, token), 0);
    assert_int_equal(retries(c), 8);
    vc_card_free(c);
    unlink(file);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pin_protocol_1),
        cmocka_unit_test(test_pin_protocol_2),
        cmocka_unit_test(test_retries_and_blocking),
        cmocka_unit_test(test_pin_requests),
        cmocka_unit_test(test_make_credential_pin_rules),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_pin_state_file),
        cmocka_unit_test(test_hmac_secret),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
