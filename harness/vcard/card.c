/* The virtual card's authenticator core: lifecycle, command dispatch, and the
 * small commands (getInfo, selection, reset). makeCredential/getAssertion live
 * in card_ctap2.c, ClientPIN in card_pin.c, U2F in card_u2f.c, the state file
 * in card_state.c.
 *
 * Locking: every entry point takes c->mu; the presence callback is called with
 * it released (vc_ask_presence), so the HID server's main thread can change
 * faults, power-cycle or read status while the worker waits for a touch. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctaphid/status.h"
#include "harness/vcard/card_int.h"

/* Used when the configuration leaves the AAGUID all zero. */
static const uint8_t default_aaguid[16] = {0x6b, 0x63, 0x61, 0x72, 0x64, 0x2d, 0x76, 0x63,
                                           0x61, 0x72, 0x64, 0x2d, 0x30, 0x30, 0x30, 0x31};

void vc_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void vc_now(struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
}

long long vc_ms_since(const struct timespec *t0)
{
    struct timespec now;

    vc_now(&now);
    return (long long)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

enum vc_up_result vc_ask_presence(struct vc_card *c, vc_presence_fn up, void *ctx)
{
    enum vc_up_result r = VC_UP_APPROVED;

    if (up == NULL)
        return r; /* no callback: presence is always given */
    pthread_mutex_unlock(&c->mu);
    r = up(ctx);
    pthread_mutex_lock(&c->mu);
    return r;
}

uint8_t vc_up_status(enum vc_up_result r)
{
    switch (r) {
    case VC_UP_APPROVED:
        return KC_CTAP2_OK;
    case VC_UP_DENIED:
        return KC_CTAP2_ERR_OPERATION_DENIED;
    case VC_UP_TIMEOUT:
        return KC_CTAP2_ERR_USER_ACTION_TIMEOUT;
    case VC_UP_CANCELLED:
        return KC_CTAP2_ERR_KEEPALIVE_CANCEL;
    }
    return KC_CTAP2_ERR_OPERATION_DENIED;
}

void vc_reply_status(uint8_t status, uint8_t *resp, size_t *resp_len)
{
    resp[0] = status;
    *resp_len = 1;
}

uint8_t vc_reply_item(cbor_item_t *item, uint8_t *resp, size_t cap, size_t *resp_len)
{
    uint8_t *buf = NULL;
    size_t len = 0;

    if (item == NULL || kc_cbor_serialize(item, &buf, &len) != KC_OK)
        return KC_CTAP1_ERR_OTHER;
    if (len + 1 > cap) {
        free(buf);
        return VC_ST_TOO_SMALL;
    }
    resp[0] = KC_CTAP2_OK;
    memcpy(resp + 1, buf, len);
    *resp_len = len + 1;
    free(buf);
    return KC_CTAP2_OK;
}

int vc_persist(struct vc_card *c)
{
    if (c->state_path == NULL)
        return 0;
    return vc_state_save(c);
}

static int fresh_secrets(struct vc_card *c)
{
    if (vc_random(c->master_key, sizeof(c->master_key)) != 0 || vc_attest_generate(c) != 0)
        return -1;
    c->pin_retries = VC_PIN_RETRIES_MAX;
    return 0;
}

struct vc_card *vc_card_new(const struct vc_config *cfg, char *err, size_t errlen)
{
    static const uint8_t zero[16];
    struct vc_card *c;
    int rc;

    vc_seterr(err, errlen, "%s", "");
    if (cfg == NULL) {
        vc_seterr(err, errlen, "vcard: no configuration");
        return NULL;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        vc_seterr(err, errlen, "vcard: out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->cfg = *cfg;
    if (c->cfg.reset_window_ms <= 0)
        c->cfg.reset_window_ms = 10000;
    if (memcmp(c->cfg.aaguid, zero, sizeof(zero)) == 0)
        memcpy(c->cfg.aaguid, default_aaguid, sizeof(default_aaguid));
    c->cfg.state_path = NULL;
    if (cfg->state_path != NULL && (c->state_path = strdup(cfg->state_path)) == NULL) {
        vc_seterr(err, errlen, "vcard: out of memory");
        goto fail;
    }
    rc = c->state_path != NULL ? vc_state_load(c, err, errlen) : 0;
    if (rc < 0)
        goto fail;
    if (rc == 0) {
        if (fresh_secrets(c) != 0) {
            vc_seterr(err, errlen, "vcard: generating the card's keys failed");
            goto fail;
        }
        if (vc_persist(c) != 0) {
            vc_seterr(err, errlen, "vcard: cannot write state file %s", c->state_path);
            goto fail;
        }
    }
    if (vc_pin_new_boot(c) != 0) {
        vc_seterr(err, errlen, "vcard: generating the key agreement key failed");
        goto fail;
    }
    vc_now(&c->boot);
    return c;
fail:
    vc_card_free(c);
    return NULL;
}

void vc_card_free(struct vc_card *c)
{
    if (c == NULL)
        return;
    vc_key_cache_clear(c);
    EVP_PKEY_free(c->att_key);
    EVP_PKEY_free(c->ka_key);
    free(c->att_cert);
    free(c->ctrs);
    free(c->state_path);
    pthread_mutex_destroy(&c->mu);
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}

void vc_card_power_cycle(struct vc_card *c)
{
    pthread_mutex_lock(&c->mu);
    c->pin_boot_fails = 0;
    c->pending.active = false;
    (void)vc_pin_new_boot(c);
    vc_now(&c->boot);
    pthread_mutex_unlock(&c->mu);
}

void vc_card_set_faults(struct vc_card *c, const struct vc_faults *f)
{
    pthread_mutex_lock(&c->mu);
    c->faults = *f;
    pthread_mutex_unlock(&c->mu);
}

bool vc_card_ctap2_enabled(const struct vc_card *c)
{
    struct vc_card *m = (struct vc_card *)c; /* the mutex is not part of the value */
    bool on;

    pthread_mutex_lock(&m->mu);
    on = !m->faults.on[VC_FAULT_CTAP1_ONLY];
    pthread_mutex_unlock(&m->mu);
    return on;
}

bool vc_card_ctap1_enabled(const struct vc_card *c)
{
    return c->cfg.ctap1;
}

static bool put_str_array(cbor_item_t *map, int key, const char *const *v, size_t n)
{
    cbor_item_t *arr = cbor_new_definite_array(n);

    if (arr == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (kc_cbor_array_push(arr, kc_cbor_new_text(v[i])) != KC_OK) {
            cbor_decref(&arr);
            return false;
        }
    return kc_cbor_map_add_int(map, key, arr) == KC_OK;
}

static cbor_item_t *alg_entry(int alg)
{
    cbor_item_t *m = cbor_new_definite_map(2);

    if (m == NULL)
        return NULL;
    if (kc_cbor_map_add_str(m, "alg", kc_cbor_new_int(alg)) != KC_OK ||
        kc_cbor_map_add_str(m, "type", kc_cbor_new_text("public-key")) != KC_OK) {
        cbor_decref(&m);
        return NULL;
    }
    return m;
}

static uint8_t get_info(struct vc_card *c, uint8_t *resp, size_t cap, size_t *resp_len)
{
    static const char *const v_u2f[] = {"U2F_V2", "FIDO_2_0", "FIDO_2_1"};
    static const char *const exts[] = {"credProtect", "hmac-secret"};
    static const char *const transports[] = {"usb"};
    bool pin_protos = !c->faults.on[VC_FAULT_NO_PIN_PROTOCOLS];
    cbor_item_t *m = cbor_new_definite_map(pin_protos ? 12 : 11);
    cbor_item_t *opts = cbor_new_definite_map(4 + (c->cfg.uv ? 1 : 0) + (pin_protos ? 1 : 0));
    cbor_item_t *protos = cbor_new_definite_array(2);
    cbor_item_t *algs = cbor_new_definite_array(2);
    uint8_t st = KC_CTAP1_ERR_OTHER;
    bool ok;

    ok = m != NULL && opts != NULL && protos != NULL && algs != NULL;
    ok = ok && (c->cfg.ctap1 ? put_str_array(m, 1, v_u2f, 3) : put_str_array(m, 1, v_u2f + 1, 2));
    ok = ok && put_str_array(m, 2, exts, 2);
    ok = ok && kc_cbor_map_add_int(m, 3, kc_cbor_new_bytes(c->cfg.aaguid, 16)) == KC_OK;
    /* options in canonical order: shorter keys first */
    ok = ok && kc_cbor_map_add_str(opts, "rk", cbor_build_bool(true)) == KC_OK;
    ok = ok && kc_cbor_map_add_str(opts, "up", cbor_build_bool(true)) == KC_OK;
    if (c->cfg.uv)
        ok = ok && kc_cbor_map_add_str(opts, "uv", cbor_build_bool(true)) == KC_OK;
    if (pin_protos)
        ok = ok && kc_cbor_map_add_str(opts, "clientPin", cbor_build_bool(c->pin_set)) == KC_OK;
    ok = ok && kc_cbor_map_add_str(opts, "pinUvAuthToken", cbor_build_bool(true)) == KC_OK;
    ok = ok && kc_cbor_map_add_str(opts, "makeCredUvNotRqd", cbor_build_bool(true)) == KC_OK;
    ok = ok && kc_cbor_map_add_int(m, 4, cbor_incref(opts)) == KC_OK;
    ok = ok && kc_cbor_map_add_int(m, 5, kc_cbor_new_int(VC_MAX_MSG_SIZE)) == KC_OK;
    if (pin_protos) {
        ok = ok && kc_cbor_array_push(protos, kc_cbor_new_int(2)) == KC_OK &&
             kc_cbor_array_push(protos, kc_cbor_new_int(1)) == KC_OK;
        ok = ok && kc_cbor_map_add_int(m, 6, cbor_incref(protos)) == KC_OK;
    }
    ok = ok && kc_cbor_map_add_int(m, 7, kc_cbor_new_int(VC_MAX_CRED_IN_LIST)) == KC_OK;
    ok = ok && kc_cbor_map_add_int(m, 8, kc_cbor_new_int(VC_CRED_ID_LEN)) == KC_OK;
    ok = ok && put_str_array(m, 9, transports, 1);
    ok = ok && kc_cbor_array_push(algs, alg_entry(KC_COSE_ES256)) == KC_OK &&
         kc_cbor_array_push(algs, alg_entry(KC_COSE_EDDSA)) == KC_OK;
    ok = ok && kc_cbor_map_add_int(m, 10, cbor_incref(algs)) == KC_OK;
    ok = ok && kc_cbor_map_add_int(m, 13, kc_cbor_new_int(VC_PIN_MIN_LEN)) == KC_OK;
    ok = ok && kc_cbor_map_add_int(m, 14, kc_cbor_new_int(VC_FIRMWARE_VERSION)) == KC_OK;
    if (ok)
        st = vc_reply_item(m, resp, cap, resp_len);
    if (m != NULL)
        cbor_decref(&m);
    if (opts != NULL)
        cbor_decref(&opts);
    if (protos != NULL)
        cbor_decref(&protos);
    if (algs != NULL)
        cbor_decref(&algs);
    return st;
}

static uint8_t selection(struct vc_card *c, vc_presence_fn up, void *ctx)
{
    return vc_up_status(vc_ask_presence(c, up, ctx));
}

static uint8_t reset(struct vc_card *c, vc_presence_fn up, void *ctx)
{
    uint8_t st;

    if (vc_ms_since(&c->boot) > c->cfg.reset_window_ms)
        return KC_CTAP2_ERR_NOT_ALLOWED;
    if ((st = vc_up_status(vc_ask_presence(c, up, ctx))) != KC_CTAP2_OK)
        return st;
    /* A new master key makes every non-resident credential id unopenable. */
    if (vc_random(c->master_key, sizeof(c->master_key)) != 0)
        return KC_CTAP1_ERR_OTHER;
    vc_key_cache_clear(c);
    OPENSSL_cleanse(c->rks, sizeof(c->rks));
    c->n_rk = 0;
    free(c->ctrs);
    c->ctrs = NULL;
    c->n_ctr = 0;
    c->pin_set = false;
    OPENSSL_cleanse(c->pin_hash, sizeof(c->pin_hash));
    c->pin_retries = VC_PIN_RETRIES_MAX;
    c->pin_boot_fails = 0;
    if (vc_pin_new_boot(c) != 0)
        return KC_CTAP1_ERR_OTHER;
    return vc_persist(c) == 0 ? KC_CTAP2_OK : KC_CTAP1_ERR_OTHER;
}

int vc_card_cbor(struct vc_card *c, const uint8_t *req, size_t len, uint8_t *resp, size_t cap,
                 size_t *resp_len, vc_presence_fn up, void *up_ctx)
{
    const uint8_t *body = req + 1;
    size_t blen = len > 0 ? len - 1 : 0;
    uint8_t st;
    int rc = 0;

    if (resp == NULL || resp_len == NULL || cap < 1)
        return -1;
    *resp_len = 0;
    if (req == NULL || len == 0) {
        vc_reply_status(KC_CTAP1_ERR_INVALID_LENGTH, resp, resp_len);
        return 0;
    }
    pthread_mutex_lock(&c->mu);
    if (c->faults.on[VC_FAULT_CTAP1_ONLY]) {
        vc_reply_status(KC_CTAP1_ERR_INVALID_COMMAND, resp, resp_len);
        goto out;
    }
    if (req[0] != KC_CTAP2_GET_NEXT_ASSERTION)
        c->pending.active = false;
    /* getInfo advertises maxMsgSize: a longer request (command byte and
     * parameters) is refused before it is parsed, as a real card would */
    if (len > VC_MAX_MSG_SIZE) {
        vc_reply_status(KC_CTAP2_ERR_REQUEST_TOO_LARGE, resp, resp_len);
        goto out;
    }
    switch (req[0]) {
    case KC_CTAP2_GET_INFO:
        st = get_info(c, resp, cap, resp_len);
        break;
    case KC_CTAP2_MAKE_CREDENTIAL:
        st = vc_make_credential(c, body, blen, resp, cap, resp_len, up, up_ctx);
        break;
    case KC_CTAP2_GET_ASSERTION:
        st = vc_get_assertion(c, body, blen, resp, cap, resp_len, up, up_ctx);
        break;
    case KC_CTAP2_GET_NEXT_ASSERTION:
        st = vc_get_next_assertion(c, resp, cap, resp_len);
        break;
    case KC_CTAP2_CLIENT_PIN:
        if (c->faults.on[VC_FAULT_NO_PIN_PROTOCOLS])
            st = KC_CTAP1_ERR_INVALID_COMMAND;
        else
            st = vc_client_pin(c, body, blen, resp, cap, resp_len);
        break;
    case KC_CTAP2_RESET:
        st = reset(c, up, up_ctx);
        break;
    case KC_CTAP2_SELECTION:
        st = selection(c, up, up_ctx);
        break;
    default:
        st = KC_CTAP1_ERR_INVALID_COMMAND;
        break;
    }
    if (st == VC_ST_TOO_SMALL) {
        st = KC_CTAP1_ERR_OTHER;
        rc = -1;
    }
    if (st != KC_CTAP2_OK || *resp_len == 0)
        vc_reply_status(st, resp, resp_len);
out:
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int vc_card_msg(struct vc_card *c, const uint8_t *apdu, size_t len, uint8_t *resp, size_t cap,
                size_t *resp_len, vc_presence_fn up, void *up_ctx)
{
    if (resp == NULL || resp_len == NULL || cap < 2)
        return -1;
    *resp_len = 0;
    pthread_mutex_lock(&c->mu);
    vc_u2f(c, apdu, apdu != NULL ? len : 0, resp, cap, resp_len, up, up_ctx);
    pthread_mutex_unlock(&c->mu);
    return *resp_len >= 2 ? 0 : -1;
}

char *vc_card_status_json(const struct vc_card *c)
{
    struct vc_card *m = (struct vc_card *)c;
    json_t *o = json_object(), *faults = json_array();
    char *s = NULL;
    static const char *const att[] = {"packed", "self", "none"};

    if (o == NULL || faults == NULL)
        goto out;
    pthread_mutex_lock(&m->mu);
    for (int k = 0; k < VC_FAULT_COUNT; k++) {
        if (!m->faults.on[k])
            continue;
        const char *name = vc_fault_name((enum vc_fault_kind)k);
        json_array_append_new(faults, json_string(name != NULL ? name : "unknown"));
    }
    json_object_set_new(o, "credentials", json_integer((json_int_t)m->n_rk));
    json_object_set_new(o, "counters", json_integer((json_int_t)m->n_ctr));
    json_object_set_new(o, "pin_set", json_boolean(m->pin_set));
    json_object_set_new(o, "pin_retries", json_integer(m->pin_retries));
    json_object_set_new(o, "pin_blocked_until_power_cycle",
                        json_boolean(m->pin_boot_fails >= VC_PIN_BOOT_FAILS));
    json_object_set_new(o, "ctap2", json_boolean(!m->faults.on[VC_FAULT_CTAP1_ONLY]));
    json_object_set_new(o, "ctap1", json_boolean(m->cfg.ctap1));
    json_object_set_new(o, "uv", json_boolean(m->cfg.uv));
    json_object_set_new(
        o, "attestation",
        json_string(m->cfg.attestation <= VC_ATT_NONE ? att[m->cfg.attestation] : "unknown"));
    json_object_set_new(o, "reset_allowed",
                        json_boolean(vc_ms_since(&m->boot) <= m->cfg.reset_window_ms));
    json_object_set_new(o, "state_file",
                        m->state_path != NULL ? json_string(m->state_path) : json_null());
    pthread_mutex_unlock(&m->mu);
    json_object_set(o, "faults", faults);
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
out:
    json_decref(faults);
    json_decref(o);
    return s;
}
