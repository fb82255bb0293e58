/* authenticatorConfig (0x0D) of the virtual card, driven by libctaphid's
 * request encoder (ctaphid/config.h): each subcommand, the acfg permission,
 * a wrong pinUvAuthParam, the minimum PIN length at setPIN and changePIN,
 * forcePINChange in getInfo, enterprise attestation on makeCredential,
 * --state and reset, and getPINRetries / getUVRetries. */
#include <stdio.h>
#include <unistd.h>

#include "ctaphid/config.h"
#include "harness/vcard/card_int.h"
#include "harness/vcard/personality.h"
#include "tests/unit/harness/vcard/test_pin_host.h"
#include "util/hex.h"

#define ACFG_RP "x.example"

static struct vc_card *card_named(const char *name, const char *state, bool uv)
{
    struct vc_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.ctap1 = true;
    cfg.uv = uv;
    cfg.reset_window_ms = 10000;
    cfg.state_path = state;
    cfg.personality = vc_personality_find(name);
    assert_non_null(cfg.personality);
    return card_from(&cfg);
}

static cbor_item_t *info(struct vc_card *c)
{
    cbor_item_t *r = NULL;

    assert_int_equal(send_cbor(c, KC_CTAP2_GET_INFO, NULL, &r, NULL), 0);
    assert_non_null(r);
    return r;
}

/* -1 absent, else the option's value */
static int info_opt(struct vc_card *c, const char *name)
{
    cbor_item_t *r = info(c), *v = map_get_text(map_get(r, 4), name);
    int o = v == NULL ? -1 : cbor_get_bool(v);

    cbor_decref(&r);
    return o;
}

/* -1 absent, else the integer or boolean at key */
static int64_t info_key(struct vc_card *c, uint64_t key)
{
    cbor_item_t *r = info(c), *v = map_get(r, key);
    int64_t n = v == NULL ? -1 : cbor_is_bool(v) ? cbor_get_bool(v) : (int64_t)cbor_get_int(v);

    cbor_decref(&r);
    return n;
}

/* One authenticatorConfig request as libctaphid encodes it. */
static uint8_t config(struct vc_card *c, int sub, const struct kc_min_pin_params *p,
                      const struct kc_pin_token *tok)
{
    uint8_t *body = NULL, req[1024], resp[64];
    size_t len = 0, rlen = 0;

    assert_int_equal(kc_config_encode(sub, p, tok, &body, &len), KC_OK);
    assert_true(len + 1 <= sizeof(req));
    req[0] = KC_CTAP2_AUTHENTICATOR_CONFIG;
    memcpy(req + 1, body, len);
    free(body);
    assert_int_equal(vc_card_cbor(c, req, len + 1, resp, sizeof(resp), &rlen, NULL, NULL), 0);
    assert_int_equal(rlen, 1); /* a status byte, never a body */
    return resp[0];
}

static uint8_t set_min(struct vc_card *c, size_t len, const char *const *rp, size_t n, bool force,
                       const struct kc_pin_token *tok)
{
    struct kc_min_pin_params p = {
        .new_min_pin_length = len, .rp_ids = rp, .n_rp_ids = n, .force_change_pin = force};

    return config(c, KC_CONFIG_SET_MIN_PIN_LENGTH, &p, tok);
}

/* A pinUvAuthToken over protocol 2 with the given permissions. */
static void token(struct vc_card *c, const char *pin, int perms, struct kc_pin_token *t)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(get_token(c, 2, pin, perms, ACFG_RP, t->token), 0);
    t->protocol = 2;
    t->len = 32;
}

static void hex(const char *s, uint8_t *out, size_t n)
{
    size_t got = 0;

    assert_int_equal(kcu_hex_decode(s, 2 * n, out, n, &got, NULL, 0), 0);
    assert_int_equal(got, n);
}

/* A published worked example (WebauthnWorks CTAP2.1 migration guide):
 * token 0125fe..ad, protocol 2, enableEnterpriseAttestation and
 * toggleAlwaysUv, whose pinUvAuthParam is HMAC over 32 x 0xff || 0x0d || sub. */
static void test_encode_known_answer(void **state)
{
    struct kc_pin_token t = {.protocol = 2, .len = 32};
    uint8_t want[8 + 32], *buf = NULL;
    size_t len = 0;

    (void)state;
    hex("0125fecfd8bf3f679bd9ec221324baa74f3cade0314b4fba8029500a320612ad", t.token, 32);
    hex("a3010103020458204e724bc8af8776d0e92a3961c28bf9980b7b3962c610ba7abf07c74a0972b074", want,
        sizeof(want));
    assert_int_equal(kc_config_encode(KC_CONFIG_ENABLE_EP, NULL, &t, &buf, &len), KC_OK);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(buf, want, len);
    free(buf);
    hex("a30102030204582040d0d64f5030fa46d8e27c1bb358d5eb7b0da88fd4955b83ed19335bb35d886c", want,
        sizeof(want));
    assert_int_equal(kc_config_encode(KC_CONFIG_TOGGLE_ALWAYS_UV, NULL, &t, &buf, &len), KC_OK);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(buf, want, len);
    free(buf);
    /* without a token: the subcommand alone */
    assert_int_equal(kc_config_encode(KC_CONFIG_TOGGLE_ALWAYS_UV, NULL, NULL, &buf, &len), KC_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "\xa1\x01\x02", 3);
    free(buf);
    /* bad arguments */
    struct kc_min_pin_params p = {.new_min_pin_length = 64};
    assert_int_equal(kc_config_encode(KC_CONFIG_SET_MIN_PIN_LENGTH, &p, NULL, &buf, &len),
                     KC_ERR_INVALID_ARG);
    p.new_min_pin_length = 6;
    assert_int_equal(kc_config_encode(KC_CONFIG_ENABLE_EP, &p, NULL, &buf, &len),
                     KC_ERR_INVALID_ARG);
    assert_int_equal(kc_config_encode(0x04, NULL, NULL, &buf, &len), KC_ERR_INVALID_ARG);
    /* setMinPINLength params: {1: 6, 2: ["a.example"], 3: true} */
    const char *rp[] = {"a.example"};
    p.rp_ids = rp;
    p.n_rp_ids = 1;
    p.force_change_pin = true;
    assert_int_equal(kc_config_encode(KC_CONFIG_SET_MIN_PIN_LENGTH, &p, NULL, &buf, &len), KC_OK);
    assert_int_equal(len, 21);
    assert_memory_equal(buf,
                        "\xa2\x01\x03\x02\xa3\x01\x06\x02\x81\x69"
                        "a.example\x03\xf5",
                        len);
    free(buf);
}

static void test_info(void **state)
{
    struct vc_card *c = card_named("ctap2.1-full", NULL, false);

    (void)state;
    assert_int_equal(info_opt(c, "authnrCfg"), 1);
    assert_int_equal(info_opt(c, "setMinPINLength"), 1);
    assert_int_equal(info_opt(c, "alwaysUv"), 0);
    assert_int_equal(info_opt(c, "ep"), 0);
    assert_int_equal(info_opt(c, "makeCredUvNotRqd"), 1);
    assert_int_equal(info_key(c, 0x0c), 0);
    assert_int_equal(info_key(c, 0x0d), 4);
    assert_int_equal(info_key(c, 0x10), 4);
    vc_card_free(c);
    /* the default card offers no authenticatorConfig and says nothing of it */
    c = card_named("kcard-2.1", NULL, false);
    assert_int_equal(info_opt(c, "authnrCfg"), -1);
    assert_int_equal(info_opt(c, "setMinPINLength"), -1);
    assert_int_equal(info_opt(c, "alwaysUv"), -1);
    assert_int_equal(info_opt(c, "ep"), -1);
    assert_int_equal(info_key(c, 0x10), -1);
    assert_int_equal(config(c, KC_CONFIG_TOGGLE_ALWAYS_UV, NULL, NULL),
                     KC_CTAP1_ERR_INVALID_COMMAND);
    /* nor grants the acfg permission */
    assert_int_equal(set_pin(c, 2, "1234"), 0);
    uint8_t t[32];
    assert_int_equal(get_token(c, 2, "1234", KC_PERM_ACFG, ACFG_RP, t),
                     KC_CTAP2_ERR_UNAUTHORIZED_PERMISSION);
    vc_card_free(c);
}

static void test_toggle_always_uv_unprotected(void **state)
{
    struct vc_card *c = card_named("ctap2.1-full", NULL, false);

    (void)state;
    assert_true(vc_card_ctap1_enabled(c));
    /* no PIN, no UV: configured without a token */
    assert_int_equal(config(c, KC_CONFIG_TOGGLE_ALWAYS_UV, NULL, NULL), 0);
    assert_int_equal(info_opt(c, "alwaysUv"), 1);
    assert_int_equal(info_opt(c, "makeCredUvNotRqd"), 0);
    assert_false(vc_card_ctap1_enabled(c)); /* U2F off under alwaysUv */
    /* alwaysUv now demands a token even on an unprotected card */
    assert_int_equal(config(c, KC_CONFIG_TOGGLE_ALWAYS_UV, NULL, NULL), KC_CTAP2_ERR_PUAT_REQUIRED);
    assert_int_equal(set_pin(c, 2, "1234"), 0);
    struct kc_pin_token t;
    token(c, "1234", KC_PERM_ACFG, &t);
    assert_int_equal(config(c, KC_CONFIG_TOGGLE_ALWAYS_UV, NULL, &t), 0);
    assert_int_equal(info_opt(c, "alwaysUv"), 0);
    assert_int_equal(info_opt(c, "makeCredUvNotRqd"), 1);
    assert_true(vc_card_ctap1_enabled(c));
    vc_card_free(c);
    /* the always-uv personality starts on and can be turned off */
    c = card_named("always-uv", NULL, false);
    assert_int_equal(info_opt(c, "alwaysUv"), 1);
    assert_int_equal(set_pin(c, 2, "1234"), 0);
    token(c, "1234", KC_PERM_ACFG, &t);
    assert_int_equal(config(c, KC_CONFIG_TOGGLE_ALWAYS_UV, NULL, &t), 0);
    assert_int_equal(info_opt(c, "alwaysUv"), 0);
    vc_card_free(c);
}

static void test_acfg_permission(void **state)
{
    struct vc_card *c = card_named("ctap2.1-full", NULL, false);
    struct kc_pin_token t;

    (void)state;
    assert_int_equal(set_pin(c, 2, "1234"), 0);
    /* protected: no token at all */
    assert_int_equal(config(c, KC_CONFIG_ENABLE_EP, NULL, NULL), KC_CTAP2_ERR_PUAT_REQUIRED);
    /* a token without acfg */
    token(c, "1234", KC_PERM_MC | KC_PERM_GA, &t);
    assert_int_equal(config(c, KC_CONFIG_ENABLE_EP, NULL, &t), KC_CTAP2_ERR_PIN_AUTH_INVALID);
    /* getPinToken's token has mc and ga only */
    memset(&t, 0, sizeof(t));
    assert_int_equal(get_token(c, 2, "1234", 0, NULL, t.token), 0);
    t.protocol = 2;
    t.len = 32;
    assert_int_equal(config(c, KC_CONFIG_ENABLE_EP, NULL, &t), KC_CTAP2_ERR_PIN_AUTH_INVALID);
    /* acfg, but a pinUvAuthParam made with another key */
    token(c, "1234", KC_PERM_ACFG, &t);
    struct kc_pin_token wrong = t;
    wrong.token[0] ^= 1;
    assert_int_equal(config(c, KC_CONFIG_ENABLE_EP, NULL, &wrong), KC_CTAP2_ERR_PIN_AUTH_INVALID);
    assert_int_equal(info_opt(c, "ep"), 0);
    assert_int_equal(config(c, KC_CONFIG_ENABLE_EP, NULL, &t), 0);
    assert_int_equal(info_opt(c, "ep"), 1);
    /* a token with acfg and mc together works for both */
    token(c, "1234", KC_PERM_ACFG | KC_PERM_MC, &t);
    assert_int_equal(config(c, KC_CONFIG_TOGGLE_ALWAYS_UV, NULL, &t), 0);
    /* unknown subcommands, and a malformed request */
    uint8_t bad[] = {KC_CTAP2_AUTHENTICATOR_CONFIG, 0xa1, 0x01, 0x18, 0xff};
    assert_int_equal(send_raw(c, bad, sizeof(bad)), KC_CTAP2_ERR_INVALID_SUBCOMMAND);
    uint8_t nosub[] = {KC_CTAP2_AUTHENTICATOR_CONFIG, 0xa0};
    assert_int_equal(send_raw(c, nosub, sizeof(nosub)), KC_CTAP2_ERR_MISSING_PARAMETER);
    uint8_t textsub[] = {KC_CTAP2_AUTHENTICATOR_CONFIG, 0xa1, 0x01, 0x61, 'a'};
    assert_int_equal(send_raw(c, textsub, sizeof(textsub)), KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE);
    uint8_t params_arr[] = {KC_CTAP2_AUTHENTICATOR_CONFIG, 0xa2, 0x01, 0x03, 0x02, 0x80};
    assert_int_equal(send_raw(c, params_arr, sizeof(params_arr)),
                     KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE);
    vc_card_free(c);
}

static void test_min_pin_length(void **state)
{
    struct vc_card *c = card_named("ctap2.1-full", NULL, false);
    const char *rps[] = {"a.example", "b.example", "c.example", "d.example", "e.example"};
    struct kc_pin_token t;

    (void)state;
    assert_int_equal(set_pin(c, 2, "1234"), 0);
    token(c, "1234", KC_PERM_ACFG, &t);
    assert_int_equal(info_key(c, 0x0c), 0);
    /* more rp ids than the card keeps; nothing changes */
    assert_int_equal(set_min(c, 6, rps, 5, false, &t), KC_CTAP2_ERR_KEY_STORE_FULL);
    assert_int_equal(info_key(c, 0x0d), 4);
    assert_int_equal(set_min(c, 6, rps, 2, false, &t), 0);
    assert_int_equal(info_key(c, 0x0d), 6);
    assert_true(vc_min_pin_rp_allowed(c, "b.example"));
    assert_false(vc_min_pin_rp_allowed(c, "c.example"));
    /* the 4-digit PIN is now too short: the card wants it changed */
    assert_int_equal(info_key(c, 0x0c), 1);
    uint8_t tok[32];
    assert_int_equal(get_token(c, 2, "1234", KC_PERM_ACFG, ACFG_RP, tok),
                     KC_CTAP2_ERR_PIN_POLICY_VIOLATION);
    /* the minimum only grows */
    assert_int_equal(set_min(c, 5, NULL, 0, false, &t), KC_CTAP2_ERR_PIN_POLICY_VIOLATION);
    /* changePIN: shorter than 6 code points is refused; 5 two-byte
     * characters are 10 bytes but 5 code points */
    assert_int_equal(change_pin(c, 2, "1234", "12345"), KC_CTAP2_ERR_PIN_POLICY_VIOLATION);
    assert_int_equal(change_pin(c, 2, "1234", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"),
                     KC_CTAP2_ERR_PIN_POLICY_VIOLATION);
    assert_int_equal(change_pin(c, 2, "1234", "123456"), 0);
    assert_int_equal(info_key(c, 0x0c), 0);
    token(c, "123456", KC_PERM_ACFG, &t);
    /* 6 code points meet 6: no forced change; forceChangePin sets it anyway */
    assert_int_equal(set_min(c, 6, NULL, 0, false, &t), 0);
    assert_int_equal(info_key(c, 0x0c), 0);
    assert_int_equal(set_min(c, 0, NULL, 0, true, &t), 0);
    assert_int_equal(info_key(c, 0x0c), 1);
    assert_int_equal(info_key(c, 0x0d), 6);
    vc_card_free(c);

    /* a PIN given with --pin: its length is known, 8 meets a minimum of 6 */
    struct vc_config cfg;
    char err[256];
    memset(&cfg, 0, sizeof(cfg));
    cfg.reset_window_ms = 10000;
    cfg.personality = vc_personality_find("ctap2.1-full");
    cfg.pin = "12345678";
    assert_non_null(c = vc_card_new(&cfg, err, sizeof(err)));
    token(c, "12345678", KC_PERM_ACFG, &t);
    assert_int_equal(set_min(c, 6, NULL, 0, false, &t), 0);
    assert_int_equal(info_key(c, 0x0c), 0);
    assert_int_equal(set_min(c, 9, NULL, 0, false, &t), 0);
    assert_int_equal(info_key(c, 0x0c), 1);
    vc_card_free(c);

    /* setPIN on an unprotected card follows the minimum too */
    c = card_named("ctap2.1-full", NULL, false);
    assert_int_equal(set_min(c, 0, NULL, 0, true, NULL), KC_CTAP2_ERR_PIN_NOT_SET);
    assert_int_equal(set_min(c, 8, NULL, 0, false, NULL), 0);
    assert_int_equal(set_pin(c, 2, "1234567"), KC_CTAP2_ERR_PIN_POLICY_VIOLATION);
    assert_int_equal(set_pin(c, 2, "12345678"), 0);
    assert_int_equal(info_key(c, 0x0c), 0);
    vc_card_free(c);
}

static void test_enterprise_attestation(void **state)
{
    struct vc_card *c = card_named("ctap2.1-full", NULL, false);
    struct mc_opts o;
    struct presence pr = {VC_UP_APPROVED, 0};
    uint8_t cdh[32];
    cbor_item_t *m, *r = NULL, *v;
    static const struct {
        int ea;
        const char *rp;
        uint8_t st;
        int ep_att; /* -1 absent */
    } cases[] = {
        {2, "example.com", 0, 1},
        {1, "example.com", 0, -1},
        {1, "enterprise.kcard.test", 0, 1},
        {3, "example.com", KC_CTAP2_ERR_INVALID_OPTION, -1},
        {0, "example.com", KC_CTAP2_ERR_INVALID_OPTION, -1},
    };

    (void)state;
    fill_cdh(cdh, 7);
    memset(&o, 0, sizeof(o));
    /* capable but not enabled: refused */
    m = mc_request(&o, cdh);
    put(m, num(10), num(2));
    assert_int_equal(send_cbor(c, KC_CTAP2_MAKE_CREDENTIAL, m, &r, &pr),
                     KC_CTAP1_ERR_INVALID_PARAMETER);
    assert_int_equal(config(c, KC_CONFIG_ENABLE_EP, NULL, NULL), 0);
    assert_int_equal(info_opt(c, "ep"), 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        o.rp = cases[i].rp;
        m = mc_request(&o, cdh);
        put(m, num(10), num(cases[i].ea));
        assert_int_equal(send_cbor(c, KC_CTAP2_MAKE_CREDENTIAL, m, &r, &pr), cases[i].st);
        if (cases[i].st != 0)
            continue;
        v = map_get(r, 4);
        assert_int_equal(v == NULL ? -1 : cbor_get_bool(v), cases[i].ep_att);
        cbor_decref(&r);
    }
    /* a text where the number goes */
    o.rp = NULL;
    m = mc_request(&o, cdh);
    put(m, num(10), text("2"));
    assert_int_equal(send_cbor(c, KC_CTAP2_MAKE_CREDENTIAL, m, &r, &pr),
                     KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE);
    vc_card_free(c);
    /* a card that offers no enterprise attestation refuses the parameter */
    c = card_named("kcard-2.1", NULL, false);
    m = mc_request(&o, cdh);
    put(m, num(10), num(2));
    assert_int_equal(send_cbor(c, KC_CTAP2_MAKE_CREDENTIAL, m, &r, &pr),
                     KC_CTAP1_ERR_INVALID_PARAMETER);
    vc_card_free(c);
}

static void test_state_and_reset(void **state)
{
    char path[] = "/tmp/kcard-test-config-XXXXXX";
    const char *rps[] = {"a.example"};
    struct presence pr = {VC_UP_APPROVED, 0};
    struct vc_card *c;
    int fd;

    (void)state;
    assert_true((fd = mkstemp(path)) >= 0);
    close(fd);
    unlink(path);
    c = card_named("ctap2.1-full", path, false);
    assert_int_equal(config(c, KC_CONFIG_ENABLE_EP, NULL, NULL), 0);
    assert_int_equal(config(c, KC_CONFIG_TOGGLE_ALWAYS_UV, NULL, NULL), 0);
    vc_card_free(c);
    c = card_named("ctap2.1-full", path, false);
    assert_int_equal(set_pin(c, 2, "1234"), 0);
    struct kc_pin_token t;
    token(c, "1234", KC_PERM_ACFG, &t);
    assert_int_equal(set_min(c, 7, rps, 1, false, &t), 0);
    vc_card_free(c);
    /* everything survives a restart */
    c = card_named("ctap2.1-full", path, false);
    assert_int_equal(info_opt(c, "ep"), 1);
    assert_int_equal(info_opt(c, "alwaysUv"), 1);
    assert_int_equal(info_key(c, 0x0d), 7);
    assert_int_equal(info_key(c, 0x0c), 1);
    assert_true(vc_min_pin_rp_allowed(c, "a.example"));
    /* reset: factory settings */
    assert_int_equal(send_cbor(c, KC_CTAP2_RESET, NULL, NULL, &pr), 0);
    assert_int_equal(info_opt(c, "ep"), 0);
    assert_int_equal(info_opt(c, "alwaysUv"), 0);
    assert_int_equal(info_key(c, 0x0d), 4);
    assert_int_equal(info_key(c, 0x0c), 0);
    assert_false(vc_min_pin_rp_allowed(c, "a.example"));
    vc_card_free(c);
    c = card_named("ctap2.1-full", path, false);
    assert_int_equal(info_key(c, 0x0d), 4);
    vc_card_free(c);
    unlink(path);
}

static cbor_item_t *retries_reply(struct vc_card *c, int sub, uint8_t *st)
{
    cbor_item_t *r = NULL;

    *st = send_cbor(c, KC_CTAP2_CLIENT_PIN, pin_req(2, sub), &r, NULL);
    return r;
}

static void test_retries(void **state)
{
    struct vc_card *c = card_named("ctap2.1-full", NULL, false);
    cbor_item_t *r;
    uint8_t st, t[32];

    (void)state;
    assert_int_equal(set_pin(c, 2, "1234"), 0);
    r = retries_reply(c, KC_PIN_GET_RETRIES, &st);
    assert_int_equal(st, 0);
    assert_int_equal(cbor_get_int(map_get(r, 3)), 8);
    assert_false(cbor_get_bool(map_get(r, 4)));
    cbor_decref(&r);
    assert_int_equal(get_token(c, 2, "9999", KC_PERM_ACFG, ACFG_RP, t), KC_CTAP2_ERR_PIN_INVALID);
    assert_int_equal(get_token(c, 2, "9999", KC_PERM_ACFG, ACFG_RP, t), KC_CTAP2_ERR_PIN_INVALID);
    assert_int_equal(get_token(c, 2, "9999", KC_PERM_ACFG, ACFG_RP, t),
                     KC_CTAP2_ERR_PIN_AUTH_BLOCKED);
    /* soft block: 5 left, powerCycleState true, even the right PIN refused */
    r = retries_reply(c, KC_PIN_GET_RETRIES, &st);
    assert_int_equal(cbor_get_int(map_get(r, 3)), 5);
    assert_true(cbor_get_bool(map_get(r, 4)));
    cbor_decref(&r);
    assert_int_equal(get_token(c, 2, "1234", KC_PERM_ACFG, ACFG_RP, t),
                     KC_CTAP2_ERR_PIN_AUTH_BLOCKED);
    vc_card_power_cycle(c);
    r = retries_reply(c, KC_PIN_GET_RETRIES, &st);
    assert_int_equal(cbor_get_int(map_get(r, 3)), 5);
    assert_false(cbor_get_bool(map_get(r, 4)));
    cbor_decref(&r);
    assert_int_equal(get_token(c, 2, "1234", KC_PERM_ACFG, ACFG_RP, t), 0);
    assert_int_equal(retries(c), 8);
    /* no built-in UV: getUVRetries is not a subcommand this card has */
    r = retries_reply(c, KC_PIN_GET_UV_RETRIES, &st);
    assert_int_equal(st, KC_CTAP2_ERR_INVALID_SUBCOMMAND);
    assert_null(r);
    vc_card_free(c);
    c = card_named("ctap2.1-full", NULL, true);
    r = retries_reply(c, KC_PIN_GET_UV_RETRIES, &st);
    assert_int_equal(st, 0);
    assert_int_equal(cbor_get_int(map_get(r, 5)), 8);
    cbor_decref(&r);
    vc_card_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_known_answer),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_toggle_always_uv_unprotected),
        cmocka_unit_test(test_acfg_permission),
        cmocka_unit_test(test_min_pin_length),
        cmocka_unit_test(test_enterprise_attestation),
        cmocka_unit_test(test_state_and_reset),
        cmocka_unit_test(test_retries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
