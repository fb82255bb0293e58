/* Card personalities of the virtual card: the table and its look-ups, each
 * personality's getInfo decoded with libcbor, the CTAPHID face (INIT
 * capabilities and version bytes, WINK, wrong channel), the PIN demands
 * (ctap2.0-pin, ctap2.1-pre, always-uv, needs-uv-mc), the PIN states
 * (pin-blocked, force-pin-change), --pin, and a switch at run time. */
#include <stdio.h>
#include <unistd.h>

#include "harness/vcard/hid.h"
#include "harness/vcard/personality.h"
#include "tests/unit/harness/vcard/test_pin_host.h"

#define FLAG_UP 0x01 /* authenticator data flags */
#define FLAG_UV 0x04

static struct vc_card *card_p(const char *name, const char *pin, const char *state, char *err,
                              size_t errlen)
{
    struct vc_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.attestation = VC_ATT_PACKED_BATCH;
    cfg.ctap1 = true;
    cfg.reset_window_ms = 10000;
    cfg.state_path = state;
    cfg.pin = pin;
    cfg.personality = name != NULL ? vc_personality_find(name) : NULL;
    if (name != NULL)
        assert_non_null(cfg.personality);
    return vc_card_new(&cfg, err, errlen);
}

static struct vc_card *card_ok(const char *name, const char *pin)
{
    char err[256];
    struct vc_card *c = card_p(name, pin, NULL, err, sizeof(err));

    if (c == NULL)
        print_error("vc_card_new(%s): %s\n", name != NULL ? name : "default", err);
    assert_non_null(c);
    return c;
}

static cbor_item_t *info(struct vc_card *c)
{
    cbor_item_t *r = NULL;

    assert_int_equal(send_cbor(c, KC_CTAP2_GET_INFO, NULL, &r, NULL), 0);
    assert_non_null(r);
    return r;
}

/* The text strings of an array, joined with ",". */
static void strings(const cbor_item_t *arr, char *buf, size_t cap)
{
    size_t used = 0;

    buf[0] = '\0';
    if (arr == NULL)
        return;
    assert_true(cbor_isa_array(arr));
    for (size_t i = 0; i < cbor_array_size(arr); i++) {
        cbor_item_t *v = cbor_array_handle(arr)[i];
        int n;

        assert_true(cbor_isa_string(v));
        n = snprintf(buf + used, cap - used, "%s%.*s", i ? "," : "", (int)cbor_string_length(v),
                     (const char *)cbor_string_handle(v));
        assert_true(n > 0 && (size_t)n < cap - used);
        used += (size_t)n;
    }
}

/* -1 absent, 0 false, 1 true */
static int opt(const cbor_item_t *r, const char *name)
{
    cbor_item_t *v = map_get_text(map_get(r, 4), name);

    if (v == NULL)
        return -1;
    assert_true(cbor_is_bool(v));
    return cbor_get_bool(v) ? 1 : 0;
}

static int64_t uint_at(const cbor_item_t *r, uint64_t key)
{
    cbor_item_t *v = map_get(r, key);

    if (v == NULL)
        return -1;
    assert_true(cbor_isa_uint(v));
    return (int64_t)cbor_get_int(v);
}

static void protocols(const cbor_item_t *r, char *buf, size_t cap)
{
    cbor_item_t *v = map_get(r, 6);
    size_t used = 0;

    buf[0] = '\0';
    if (v == NULL)
        return;
    for (size_t i = 0; i < cbor_array_size(v); i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%d", i ? "," : "",
                                 (int)cbor_get_int(cbor_array_handle(v)[i]));
}

/* Map keys in CTAP2 canonical order: ints ascending; text keys shorter
 * first, then bytewise. */
static void assert_canonical(const cbor_item_t *m)
{
    struct cbor_pair *p = cbor_map_handle(m);

    for (size_t i = 1; i < cbor_map_size(m); i++) {
        const cbor_item_t *a = p[i - 1].key, *b = p[i].key;

        if (cbor_isa_uint(a)) {
            assert_true(cbor_isa_uint(b));
            assert_true(cbor_get_int(a) < cbor_get_int(b));
        } else {
            size_t la = cbor_string_length(a), lb = cbor_string_length(b);

            assert_true(la < lb ||
                        (la == lb && memcmp(cbor_string_handle(a), cbor_string_handle(b), la) < 0));
        }
    }
}

/* ---- the table --------------------------------------------------------- */

static void test_table(void **state)
{
    static const char *const required[] = {
        "kcard-2.1",    "ctap2.0-pin", "ctap2.0-nopin",     "ctap2.1-pre",
        "ctap2.1-full", "u2f-only",    "fido2-no-u2f-7609", "always-uv",
        "needs-uv-mc",  "pin-blocked", "force-pin-change",  "wrong-channel"};
    char err[400];

    (void)state;
    assert_true(vc_personality_count() >= 12);
    assert_string_equal(vc_personality_default()->name, "kcard-2.1");
    assert_ptr_equal(vc_personality_at(0), vc_personality_default());
    assert_null(vc_personality_at(vc_personality_count()));
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        const struct vc_personality *p = vc_personality_find(required[i]);

        assert_non_null(p);
        assert_string_equal(p->name, required[i]);
        assert_true(strlen(p->family) > 10 && strlen(p->source) > 3);
        assert_int_equal(strlen(p->aaguid), 16);
    }
    for (size_t i = 0; i < vc_personality_count(); i++)
        for (size_t j = i + 1; j < vc_personality_count(); j++) {
            assert_true(strcmp(vc_personality_at(i)->name, vc_personality_at(j)->name) != 0);
            assert_true(memcmp(vc_personality_at(i)->aaguid, vc_personality_at(j)->aaguid, 16));
        }
    assert_null(vc_personality_find("kcard-2.2"));
    assert_null(vc_personality_find(""));
    assert_null(vc_personality_find(NULL));
    vc_personality_unknown("bogus", err, sizeof(err));
    assert_non_null(strstr(err, "unknown personality 'bogus'"));
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        assert_non_null(strstr(err, required[i]));
    vc_personality_unknown("bogus", err, 20); /* truncated, still terminated */
    assert_int_equal(strlen(err), 19);
}

/* ---- getInfo ------------------------------------------------------------ */

struct want_info {
    const char *name;
    const char *versions, *extensions, *protocols;
    int64_t max_msg;
    int client_pin, uv, plat, always_uv, token, uv_not_rqd; /* -1 absent */
    int64_t fw;                                             /* -1 absent */
    int force_key;                                          /* 0x0C: -1 absent */
    size_t algs;
};

static const struct want_info wants[] = {
    {"kcard-2.1", "U2F_V2,FIDO_2_0,FIDO_2_1", "credProtect,hmac-secret", "2,1", 1200, 0, -1, -1, -1,
     1, 1, 0x10000, -1, 2},
    {"ctap2.0-pin", "U2F_V2,FIDO_2_0", "hmac-secret", "1", 4096, 0, -1, 0, -1, -1, -1, -1, -1, 0},
    {"ctap2.0-nopin", "U2F_V2,FIDO_2_0", "", "", 1200, -1, -1, 0, -1, -1, -1, -1, -1, 0},
    {"ctap2.1-pre", "U2F_V2,FIDO_2_0,FIDO_2_1_PRE", "credProtect,hmac-secret", "1", 1200, 0, -1, 0,
     -1, -1, -1, -1, -1, 2},
    /* alwaysUv false: authenticatorConfig's toggleAlwaysUv is offered */
    {"ctap2.1-full", "U2F_V2,FIDO_2_0,FIDO_2_1",
     "credBlob,credProtect,hmac-secret,largeBlobKey,minPinLength", "2,1", 2048, 0, -1, -1, 0, 1, 1,
     0x20001, 0, 2},
    {"fido2-no-u2f-7609", "FIDO_2_0,FIDO_2_1", "credProtect,hmac-secret", "2,1", 7609, 0, -1, -1, 0,
     1, 1, 0x10002, 0, 2},
    {"always-uv", "FIDO_2_0,FIDO_2_1", "credProtect,hmac-secret", "2,1", 1200, 0, -1, -1, 1, 1, 0,
     0x10000, 0, 2},
    {"needs-uv-mc", "U2F_V2,FIDO_2_0,FIDO_2_1_PRE", "credProtect,hmac-secret", "1", 1200, 0, 1, 0,
     -1, -1, -1, -1, -1, 1},
    {"pin-blocked", "U2F_V2,FIDO_2_0,FIDO_2_1", "credProtect,hmac-secret", "2,1", 1200, 1, -1, -1,
     -1, 1, 1, 0x10000, 0, 2},
    {"force-pin-change", "U2F_V2,FIDO_2_0,FIDO_2_1", "credProtect,hmac-secret", "2,1", 1200, 1, -1,
     -1, -1, 1, 1, 0x10000, 1, 2},
    {"wrong-channel", "U2F_V2,FIDO_2_0,FIDO_2_1", "credProtect,hmac-secret", "2,1", 1200, 0, -1, -1,
     -1, 1, 1, 0x10000, -1, 2},
};

static void test_get_info_each(void **state)
{
    char buf[128];

    (void)state;
    for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
        const struct want_info *w = &wants[i];
        const struct vc_personality *p = vc_personality_find(w->name);
        struct vc_card *c = card_ok(w->name, NULL);
        cbor_item_t *r = info(c), *v;

        print_message("getInfo of %s\n", w->name);
        assert_true(cbor_isa_map(r) && cbor_map_is_definite(r));
        assert_canonical(r);
        assert_canonical(map_get(r, 4));
        strings(map_get(r, 1), buf, sizeof(buf));
        assert_string_equal(buf, w->versions);
        strings(map_get(r, 2), buf, sizeof(buf));
        assert_string_equal(buf, w->extensions);
        v = map_get(r, 3);
        assert_int_equal(cbor_bytestring_length(v), 16);
        assert_memory_equal(cbor_bytestring_handle(v), p->aaguid, 16);
        assert_int_equal(uint_at(r, 5), w->max_msg);
        protocols(r, buf, sizeof(buf));
        assert_string_equal(buf, w->protocols);
        assert_int_equal(opt(r, "rk"), 1);
        assert_int_equal(opt(r, "up"), 1);
        assert_int_equal(opt(r, "clientPin"), w->client_pin);
        assert_int_equal(opt(r, "uv"), w->uv);
        assert_int_equal(opt(r, "plat"), w->plat);
        assert_int_equal(opt(r, "alwaysUv"), w->always_uv);
        assert_int_equal(opt(r, "pinUvAuthToken"), w->token);
        assert_int_equal(opt(r, "makeCredUvNotRqd"), w->uv_not_rqd);
        /* credential management only where the personality offers it */
        assert_int_equal(opt(r, "credMgmt"), p->cred_mgmt == VC_CRED_MGMT_2_1 ? 1 : -1);
        assert_int_equal(opt(r, "credentialMgmtPreview"),
                         p->cred_mgmt == VC_CRED_MGMT_PREVIEW ? 1 : -1);
        assert_int_equal(uint_at(r, 14), w->fw);
        v = map_get(r, 12);
        assert_int_equal(v == NULL ? -1 : cbor_get_bool(v) ? 1 : 0, w->force_key);
        v = map_get(r, 10);
        assert_int_equal(v == NULL ? 0 : cbor_array_size(v), w->algs);
        cbor_decref(&r);
        vc_card_free(c);
    }
}

static void test_u2f_only(void **state)
{
    struct vc_card *c = card_ok("u2f-only", NULL);
    const uint8_t version_apdu[] = {0x00, 0x03, 0x00, 0x00, 0x00};
    const uint8_t gi[] = {KC_CTAP2_GET_INFO};
    uint8_t resp[64];
    size_t n = 0;

    (void)state;
    assert_false(vc_card_ctap2_enabled(c));
    assert_true(vc_card_ctap1_enabled(c));
    assert_int_equal(send_raw(c, gi, 1), KC_CTAP1_ERR_INVALID_COMMAND);
    assert_int_equal(
        vc_card_msg(c, version_apdu, sizeof(version_apdu), resp, sizeof(resp), &n, NULL, NULL), 0);
    assert_int_equal(n, 8);
    assert_memory_equal(resp, "U2F_V2\x90\x00", 8);
    vc_card_free(c);
}

static void test_no_u2f(void **state)
{
    struct vc_card *c = card_ok("fido2-no-u2f-7609", NULL);
    const uint8_t version_apdu[] = {0x00, 0x03, 0x00, 0x00, 0x00};
    uint8_t resp[64];
    size_t n = 0;

    (void)state;
    assert_true(vc_card_ctap2_enabled(c));
    assert_false(vc_card_ctap1_enabled(c));
    assert_int_equal(
        vc_card_msg(c, version_apdu, sizeof(version_apdu), resp, sizeof(resp), &n, NULL, NULL), 0);
    assert_int_equal(resp[n - 2] << 8 | resp[n - 1], KC_U2F_SW_INS_NOT_SUPPORTED);
    vc_card_free(c);
}

/* maxMsgSize is what each card enforces (REQUEST_TOO_LARGE before parsing) */
static void test_max_msg_size(void **state)
{
    static const struct {
        const char *name;
        size_t max;
    } cards[] = {{"kcard-2.1", 1200}, {"ctap2.1-full", 2048}, {"fido2-no-u2f-7609", 7609}};
    static uint8_t req[7609 + 1];

    (void)state;
    memset(req, 0, sizeof(req));
    req[0] = KC_CTAP2_MAKE_CREDENTIAL;
    req[1] = 0xa0; /* an empty map, then padding: not too large means parsed */
    for (size_t i = 0; i < sizeof(cards) / sizeof(cards[0]); i++) {
        struct vc_card *c = card_ok(cards[i].name, NULL);

        assert_int_equal(send_raw(c, req, cards[i].max + 1), KC_CTAP2_ERR_REQUEST_TOO_LARGE);
        assert_true(send_raw(c, req, cards[i].max) != KC_CTAP2_ERR_REQUEST_TOO_LARGE);
        vc_card_free(c);
    }
}

/* ---- PIN demands -------------------------------------------------------- */

/* A credential made with a token, for assertions later. */
static void make_with_pin(struct vc_card *c, int proto, const char *pin, struct made *m)
{
    uint8_t token[32], auth[32];
    struct mc_opts o = {.pin_proto = proto};

    assert_int_equal(get_token(c, proto, pin, 0, NULL, token), 0);
    o.pin_auth = auth;
    o.pin_auth_len = param(proto, token, 7, auth);
    assert_int_equal(make_cred(c, &o, NULL, m), 0);
    assert_true(m->ad.flags & FLAG_UV);
}

static void test_ctap20_pin_demands(void **state)
{
    struct vc_card *c = card_ok("ctap2.0-pin", NULL);
    struct mc_opts plain = {0}, rk = {.rk = true};
    struct made m;
    struct got g;
    struct ga_opts go = {.cdh_seed = 3};
    cbor_item_t *opts, *req;
    uint8_t cdh[32];

    (void)state;
    /* no PIN yet: makeCredential without pinAuth works */
    assert_int_equal(make_cred(c, &plain, NULL, &m), 0);
    made_free(&m);
    assert_int_equal(set_pin(c, 1, "4321"), 0);
    /* a PIN set: every makeCredential demands it (CTAP2_ERR_PIN_REQUIRED 0x36) */
    assert_int_equal(make_cred(c, &plain, NULL, &m), 0x36);
    assert_int_equal(make_cred(c, &rk, NULL, &m), 0x36);
    /* protocol 2 is not offered: INVALID_PARAMETER */
    assert_int_equal(
        send_cbor(c, KC_CTAP2_CLIENT_PIN, pin_req(2, KC_PIN_GET_KEY_AGREEMENT), NULL, NULL),
        KC_CTAP1_ERR_INVALID_PARAMETER);
    make_with_pin(c, 1, "4321", &m);
    /* getAssertion up only: no PIN needed, UV clear */
    go.allow_id = m.cred_id;
    go.allow_len = m.cred_id_len;
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_true(g.flags & FLAG_UP);
    assert_false(g.flags & FLAG_UV);
    /* getAssertion with options.uv and no pinAuth: PIN_REQUIRED */
    req = cbor_new_definite_map(3);
    fill_cdh(cdh, 4);
    put(req, num(1), text("example.com"));
    put(req, num(2), bytes(cdh, 32));
    opts = cbor_new_definite_map(1);
    put(opts, text("uv"), cbor_build_bool(true));
    put(req, num(5), opts);
    assert_int_equal(send_cbor(c, KC_CTAP2_GET_ASSERTION, req, NULL, NULL), 0x36);
    made_free(&m);
    vc_card_free(c);
}

static void test_ctap20_nopin(void **state)
{
    struct vc_card *c = card_ok("ctap2.0-nopin", NULL);
    const uint8_t auth[16] = {1};
    struct mc_opts o = {.pin_auth = auth, .pin_auth_len = 16, .pin_proto = 1};
    struct made m;

    (void)state;
    assert_int_equal(send_cbor(c, KC_CTAP2_CLIENT_PIN, pin_req(1, KC_PIN_GET_RETRIES), NULL, NULL),
                     KC_CTAP1_ERR_INVALID_COMMAND);
    assert_int_equal(make_cred(c, &o, NULL, &m), KC_CTAP2_ERR_PIN_AUTH_INVALID);
    o.pin_auth = NULL;
    o.pin_proto = 0;
    assert_int_equal(make_cred(c, &o, NULL, &m), 0);
    made_free(&m);
    vc_card_free(c);
}

static void test_ctap21_pre_demands(void **state)
{
    struct vc_card *c = card_ok("ctap2.1-pre", "1234");
    struct vc_card *d = card_ok(NULL, "1234");
    struct mc_opts plain = {0};
    struct made m;
    struct got g;
    struct ga_opts go = {.cdh_seed = 5};

    (void)state;
    /* without makeCredUvNotRqd: PUAT_REQUIRED for a non-resident one too */
    assert_int_equal(make_cred(c, &plain, NULL, &m), KC_CTAP2_ERR_PUAT_REQUIRED);
    /* kcard-2.1 with the same PIN allows it (makeCredUvNotRqd) */
    assert_int_equal(make_cred(d, &plain, NULL, &m), 0);
    made_free(&m);
    make_with_pin(c, 1, "1234", &m);
    go.allow_id = m.cred_id;
    go.allow_len = m.cred_id_len;
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_false(g.flags & FLAG_UV);
    made_free(&m);
    vc_card_free(c);
    vc_card_free(d);
}

static void test_always_uv(void **state)
{
    struct vc_card *c = card_ok("always-uv", NULL);
    struct mc_opts plain = {0};
    struct made m;
    struct got g;
    struct ga_opts go = {.cdh_seed = 6}, pre = {.cdh_seed = 6, .up_false = true};
    uint8_t token[32], auth[32];

    (void)state;
    /* no PIN set: still PUAT_REQUIRED (the platform must set one) */
    assert_int_equal(make_cred(c, &plain, NULL, &m), KC_CTAP2_ERR_PUAT_REQUIRED);
    assert_int_equal(get_assert(c, &go, NULL, &g), KC_CTAP2_ERR_PUAT_REQUIRED);
    /* an up=false pre-flight is not gated (6.2.2): it finds nothing */
    assert_int_equal(get_assert(c, &pre, NULL, &g), KC_CTAP2_ERR_NO_CREDENTIALS);
    assert_int_equal(set_pin(c, 2, "24680"), 0);
    assert_int_equal(make_cred(c, &plain, NULL, &m), KC_CTAP2_ERR_PUAT_REQUIRED);
    make_with_pin(c, 2, "24680", &m);
    go.allow_id = pre.allow_id = m.cred_id;
    go.allow_len = pre.allow_len = m.cred_id_len;
    assert_int_equal(get_assert(c, &go, NULL, &g), KC_CTAP2_ERR_PUAT_REQUIRED);
    assert_int_equal(get_assert(c, &pre, NULL, &g), 0);
    assert_false(g.flags & FLAG_UP);
    assert_int_equal(get_token(c, 2, "24680", 0, NULL, token), 0);
    go.pin_auth = auth;
    go.pin_auth_len = param(2, token, 6, auth);
    go.pin_proto = 2;
    assert_int_equal(get_assert(c, &go, NULL, &g), 0);
    assert_true(g.flags & FLAG_UV);
    made_free(&m);
    vc_card_free(c);
}

static void test_needs_uv_mc(void **state)
{
    struct vc_card *c = card_ok("needs-uv-mc", NULL);
    struct mc_opts plain = {0}, uv = {.uv_option = true};
    struct presence deny = {.answer = VC_UP_DENIED};
    struct made m;

    (void)state;
    /* built-in UV protects it even without a PIN: neither uv nor a token */
    assert_int_equal(make_cred(c, &plain, NULL, &m), KC_CTAP2_ERR_PUAT_REQUIRED);
    /* uv=true: built-in UV done with the touch */
    assert_int_equal(make_cred(c, &uv, NULL, &m), 0);
    assert_true(m.ad.flags & FLAG_UV);
    assert_true(m.ad.flags & FLAG_UP);
    made_free(&m);
    assert_int_equal(make_cred(c, &uv, &deny, &m), KC_CTAP2_ERR_OPERATION_DENIED);
    assert_int_equal(deny.calls, 1);
    vc_card_free(c);
}

/* ---- PIN states --------------------------------------------------------- */

static void test_pin_blocked(void **state)
{
    struct vc_card *c = card_ok("pin-blocked", "1234");
    uint8_t token[32];
    cbor_item_t *r;
    char *st;

    (void)state;
    assert_int_equal(retries(c), 0);
    r = info(c);
    assert_int_equal(opt(r, "clientPin"), 1);
    cbor_decref(&r);
    assert_int_equal(get_token(c, 2, "1234", 0, NULL, token), KC_CTAP2_ERR_PIN_BLOCKED);
    assert_int_equal(get_token(c, 1, "1234", 3, "example.com", token), KC_CTAP2_ERR_PIN_BLOCKED);
    assert_int_equal(change_pin(c, 2, "1234", "5678"), KC_CTAP2_ERR_PIN_BLOCKED);
    assert_int_equal(set_pin(c, 2, "5678"), KC_CTAP2_ERR_NOT_ALLOWED);
    assert_int_equal(retries(c), 0);
    st = vc_card_status_json(c);
    assert_non_null(strstr(st, "\"personality\":\"pin-blocked\""));
    assert_non_null(strstr(st, "\"pin_retries\":0"));
    free(st);
    /* only reset recovers */
    assert_int_equal(send_cbor(c, KC_CTAP2_RESET, NULL, NULL, NULL), 0);
    assert_int_equal(retries(c), 8);
    assert_int_equal(set_pin(c, 2, "5678"), 0);
    assert_int_equal(get_token(c, 2, "5678", 0, NULL, token), 0);
    vc_card_free(c);
}

static void test_force_pin_change(void **state)
{
    struct vc_card *c = card_ok("force-pin-change", NULL); /* default PIN 1234 */
    uint8_t token[32];
    cbor_item_t *r;

    (void)state;
    r = info(c);
    assert_true(cbor_get_bool(map_get(r, 12)));
    assert_int_equal(opt(r, "clientPin"), 1);
    cbor_decref(&r);
    assert_int_equal(get_token(c, 2, "1234", 0, NULL, token), KC_CTAP2_ERR_PIN_POLICY_VIOLATION);
    assert_int_equal(get_token(c, 1, "1234", 3, "example.com", token),
                     KC_CTAP2_ERR_PIN_POLICY_VIOLATION);
    /* a wrong PIN is still a wrong PIN, and counts */
    assert_int_equal(get_token(c, 2, "9999", 0, NULL, token), KC_CTAP2_ERR_PIN_INVALID);
    assert_int_equal(retries(c), 7);
    assert_int_equal(change_pin(c, 2, "1234", "1234"), KC_CTAP2_ERR_PIN_POLICY_VIOLATION);
    assert_int_equal(change_pin(c, 2, "1234", "8642"), 0);
    r = info(c);
    assert_false(cbor_get_bool(map_get(r, 12)));
    cbor_decref(&r);
    assert_int_equal(get_token(c, 2, "8642", 0, NULL, token), 0);
    vc_card_free(c);
}

static void test_force_pin_change_given_pin(void **state)
{
    struct vc_card *c = card_ok("force-pin-change", "5555");
    uint8_t token[32];

    (void)state;
    assert_int_equal(get_token(c, 2, "1234", 0, NULL, token), KC_CTAP2_ERR_PIN_INVALID);
    assert_int_equal(get_token(c, 2, "5555", 0, NULL, token), KC_CTAP2_ERR_PIN_POLICY_VIOLATION);
    vc_card_free(c);
}

/* ---- --pin and the state file --------------------------------------------- */

static void test_start_pin(void **state)
{
    char path[] = "/tmp/kcard-test-pers-XXXXXX";
    char file[64], err[256];
    struct vc_card *c;
    uint8_t token[32];
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    snprintf(file, sizeof(file), "%s", path);
    /* bad lengths */
    assert_null(card_p(NULL, "123", NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "--pin must be 4 to 63 bytes"));
    /* a PIN set from the start, kept in the state file */
    c = card_p(NULL, "1234", file, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(get_token(c, 2, "1234", 0, NULL, token), 0);
    vc_card_free(c);
    /* the same PIN again: fine; another one: refused, naming the file */
    c = card_p(NULL, "1234", file, err, sizeof(err));
    assert_non_null(c);
    vc_card_free(c);
    assert_null(card_p(NULL, "4321", file, err, sizeof(err)));
    assert_non_null(strstr(err, "--pin differs"));
    assert_non_null(strstr(err, file));
    /* no --pin: the stored PIN stays */
    c = card_p("ctap2.1-pre", NULL, file, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(get_token(c, 1, "1234", 0, NULL, token), 0);
    vc_card_free(c);
    /* pin-blocked never checks --pin, and blocks what is stored */
    c = card_p("pin-blocked", "4321", file, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(retries(c), 0);
    vc_card_free(c);
    c = card_p(NULL, NULL, file, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(retries(c), 0); /* the flash remembers */
    vc_card_free(c);
    unlink(file);
}

static void test_force_state_persists(void **state)
{
    char path[] = "/tmp/kcard-test-pers-XXXXXX";
    char err[256];
    struct vc_card *c;
    uint8_t token[32];
    cbor_item_t *r;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    c = card_p("force-pin-change", "1234", path, err, sizeof(err));
    assert_non_null(c);
    vc_card_free(c);
    /* another personality on the same flash: the change is still required */
    c = card_p("ctap2.1-full", NULL, path, err, sizeof(err));
    assert_non_null(c);
    r = info(c);
    assert_true(cbor_get_bool(map_get(r, 12)));
    cbor_decref(&r);
    assert_int_equal(get_token(c, 2, "1234", 0, NULL, token), KC_CTAP2_ERR_PIN_POLICY_VIOLATION);
    assert_int_equal(change_pin(c, 2, "1234", "7777"), 0);
    vc_card_free(c);
    c = card_p("ctap2.1-full", NULL, path, err, sizeof(err));
    assert_non_null(c);
    r = info(c);
    assert_false(cbor_get_bool(map_get(r, 12)));
    cbor_decref(&r);
    assert_int_equal(get_token(c, 2, "7777", 0, NULL, token), 0);
    vc_card_free(c);
    unlink(path);
}

/* ---- switching at run time ---------------------------------------------- */

static void verify_attestation(struct made *m)
{
    struct kc_verify_result vr;
    uint8_t cdh[32];

    fill_cdh(cdh, 7);
    kc_verify_result_init(&vr);
    assert_int_equal(kc_verify_attestation_item(m->fmt, m->auth_data, m->auth_data_len, m->att_stmt,
                                                cdh, "example.com", &vr),
                     KC_OK);
    kc_verify_result_free(&vr);
}

static void test_switch(void **state)
{
    struct vc_card *c = card_ok(NULL, NULL);
    struct mc_opts plain = {0};
    struct made m;
    cbor_item_t *r;
    char buf[128], err[256];

    (void)state;
    assert_string_equal(vc_card_personality(c)->name, "kcard-2.1");
    assert_int_equal(make_cred(c, &plain, NULL, &m), 0);
    verify_attestation(&m);
    assert_memory_equal(m.ad.aaguid, "kcard-vcard-0001", 16);
    made_free(&m);
    assert_int_equal(
        vc_card_set_personality(c, vc_personality_find("ctap2.1-pre"), err, sizeof(err)), 0);
    assert_string_equal(vc_card_personality(c)->name, "ctap2.1-pre");
    r = info(c);
    strings(map_get(r, 1), buf, sizeof(buf));
    assert_string_equal(buf, "U2F_V2,FIDO_2_0,FIDO_2_1_PRE");
    cbor_decref(&r);
    /* the batch certificate follows the new AAGUID: attestation verifies */
    assert_int_equal(make_cred(c, &plain, NULL, &m), 0);
    assert_memory_equal(m.ad.aaguid, "kcard-c21pre-001", 16);
    verify_attestation(&m);
    made_free(&m);
    assert_int_equal(vc_card_set_personality(c, vc_personality_find("u2f-only"), err, sizeof(err)),
                     0);
    assert_false(vc_card_ctap2_enabled(c));
    assert_int_equal(vc_card_set_personality(c, NULL, err, sizeof(err)), 0);
    assert_string_equal(vc_card_personality(c)->name, "kcard-2.1");
    assert_true(vc_card_ctap2_enabled(c));
    vc_card_free(c);
}

/* ---- CTAPHID face ----------------------------------------------------------- */

struct sink {
    uint8_t reps[8][64];
    size_t n;
};

static void sink_send(void *ctx, const struct vc_hid_peer *to, const uint8_t *report)
{
    struct sink *s = ctx;

    (void)to;
    if (s->n < 8)
        memcpy(s->reps[s->n++], report, 64);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* INIT on broadcast: returns the new channel, *caps and version bytes. */
static uint32_t hid_init(struct vc_hid *h, struct sink *s, uint8_t *caps, uint8_t ver[3])
{
    const struct vc_hid_peer peer = {.len = 1, .addr = {7}};
    uint8_t rep[64] = {0xff, 0xff, 0xff, 0xff, KC_HID_INIT, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};

    s->n = 0;
    vc_hid_input(h, &peer, rep, sizeof(rep), 1000);
    assert_int_equal(s->n, 1);
    assert_int_equal(s->reps[0][4], KC_HID_INIT);
    *caps = s->reps[0][7 + 16];
    memcpy(ver, s->reps[0] + 7 + 13, 3);
    return be32(s->reps[0] + 7 + 8);
}

static void hid_cmd(struct vc_hid *h, struct sink *s, uint32_t cid, uint8_t cmd)
{
    const struct vc_hid_peer peer = {.len = 1, .addr = {7}};
    uint8_t rep[64] = {0};

    rep[0] = (uint8_t)(cid >> 24);
    rep[1] = (uint8_t)(cid >> 16);
    rep[2] = (uint8_t)(cid >> 8);
    rep[3] = (uint8_t)cid;
    rep[4] = cmd;
    s->n = 0;
    vc_hid_input(h, &peer, rep, sizeof(rep), 1001);
    assert_int_equal(s->n, 1);
}

static void test_hid_face(void **state)
{
    struct sink s;
    struct vc_hid *h = vc_hid_new(sink_send, &s);
    uint8_t caps, ver[3];
    uint32_t cid;

    (void)state;
    assert_non_null(h);
    /* kcard-2.1: WINK and CBOR, device 1.0.0 */
    cid = hid_init(h, &s, &caps, ver);
    assert_int_equal(caps, KC_HID_CAP_WINK | KC_HID_CAP_CBOR);
    assert_memory_equal(ver, "\x01\x00\x00", 3);
    hid_cmd(h, &s, cid, KC_HID_WINK);
    assert_int_equal(s.reps[0][4], KC_HID_WINK);
    /* fido2-no-u2f-7609: CBOR and NMSG, no WINK */
    vc_hid_set_personality(h, vc_personality_find("fido2-no-u2f-7609"));
    vc_hid_set_caps(h, false, true);
    cid = hid_init(h, &s, &caps, ver);
    assert_int_equal(caps, KC_HID_CAP_CBOR | KC_HID_CAP_NMSG);
    hid_cmd(h, &s, cid, KC_HID_WINK);
    assert_int_equal(s.reps[0][4], KC_HID_ERROR);
    assert_int_equal(s.reps[0][7], KC_HID_ERR_INVALID_CMD);
    /* ctap2.1-pre: its device version */
    vc_hid_set_personality(h, vc_personality_find("ctap2.1-pre"));
    vc_hid_set_caps(h, true, true);
    cid = hid_init(h, &s, &caps, ver);
    assert_int_equal(caps, KC_HID_CAP_WINK | KC_HID_CAP_CBOR);
    assert_memory_equal(ver, "\x05\x02\x00", 3);
    /* u2f-only: WINK, no CBOR */
    vc_hid_set_personality(h, vc_personality_find("u2f-only"));
    vc_hid_set_caps(h, true, false);
    (void)hid_init(h, &s, &caps, ver);
    assert_int_equal(caps, KC_HID_CAP_WINK);
    /* wrong-channel: INIT answers on broadcast, the rest on a channel never given */
    vc_hid_set_personality(h, vc_personality_find("wrong-channel"));
    vc_hid_set_caps(h, true, true);
    cid = hid_init(h, &s, &caps, ver);
    assert_int_equal(be32(s.reps[0]), 0xffffffffu);
    hid_cmd(h, &s, cid, KC_HID_PING);
    assert_int_equal(s.reps[0][4], KC_HID_PING);
    assert_true(be32(s.reps[0]) != cid);
    /* back to the default */
    vc_hid_set_personality(h, NULL);
    cid = hid_init(h, &s, &caps, ver);
    hid_cmd(h, &s, cid, KC_HID_PING);
    assert_int_equal(be32(s.reps[0]), cid);
    vc_hid_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_get_info_each),
        cmocka_unit_test(test_u2f_only),
        cmocka_unit_test(test_no_u2f),
        cmocka_unit_test(test_max_msg_size),
        cmocka_unit_test(test_ctap20_pin_demands),
        cmocka_unit_test(test_ctap20_nopin),
        cmocka_unit_test(test_ctap21_pre_demands),
        cmocka_unit_test(test_always_uv),
        cmocka_unit_test(test_needs_uv_mc),
        cmocka_unit_test(test_pin_blocked),
        cmocka_unit_test(test_force_pin_change),
        cmocka_unit_test(test_force_pin_change_given_pin),
        cmocka_unit_test(test_start_pin),
        cmocka_unit_test(test_force_state_persists),
        cmocka_unit_test(test_switch),
        cmocka_unit_test(test_hid_face),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
