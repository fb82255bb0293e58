/* The virtual card's authenticator core: lifecycle, command dispatch, and the
 * small commands (getInfo, selection, reset). makeCredential/getAssertion live
 * in card_ctap2.c, ClientPIN in card_pin.c, U2F in card_u2f.c, the state file
 * in card_state.c.
 *
 * Locking: every entry point takes c->mu; the presence callback is called with
 * it released (vc_ask_presence), so the HID server's main thread can change
 * faults, power-cycle or read status while the worker waits for a touch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctaphid/credman.h"
#include "ctaphid/status.h"
#include "harness/vcard/card_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/rand.h"

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

bool vc_builtin_uv(const struct vc_card *c)
{
    return c->cfg.uv || c->pers->opt_uv == VC_OPT_TRUE;
}

int vc_persist(struct vc_card *c)
{
    if (c->state_path == NULL)
        return 0;
    return vc_state_save(c);
}

static int fresh_secrets(struct vc_card *c)
{
    if (kcu_random(c->master_key, sizeof(c->master_key)) != 0 || vc_attest_generate(c) != 0)
        return -1;
    c->pin_retries = VC_PIN_RETRIES_MAX;
    return 0;
}

static void set_pin_hash(struct vc_card *c, const uint8_t hash[16])
{
    memcpy(c->pin_hash, hash, 16);
    c->pin_set = true;
    c->pin_retries = VC_PIN_RETRIES_MAX;
    c->pin_code_points = 0; /* known only for PINs set through ClientPIN */
}

/* The PIN state --pin and the personality ask for; *changed when the card's
 * state was changed. at_start: --pin is checked against a PIN already set
 * (later, at a personality switch, the PIN may have been changed since). */
static int apply_start_pin(struct vc_card *c, bool at_start, bool *changed, char *err,
                           size_t errlen)
{
    enum vc_pin_start ps = c->pers->pin_start;
    uint8_t h[16];

    *changed = false;
    if (c->start_pin_given && !c->pin_set) {
        set_pin_hash(c, c->start_pin_hash);
        *changed = true;
    } else if (c->start_pin_given && at_start && ps != VC_PIN_START_BLOCKED &&
               CRYPTO_memcmp(c->pin_hash, c->start_pin_hash, 16) != 0) {
        kcu_set_err(err, errlen,
                    "vcard: --pin differs from the PIN already set in the state file %s "
                    "(give the same PIN, drop --pin, or reset the card)",
                    c->state_path != NULL ? c->state_path : "");
        return -1;
    }
    if (ps != VC_PIN_START_ASIS && !c->pin_set) {
        if (vc_pin_hash(VC_DEFAULT_START_PIN, h) != 0)
            return -1;
        set_pin_hash(c, h);
        OPENSSL_cleanse(h, sizeof(h));
        *changed = true;
    }
    if (ps == VC_PIN_START_BLOCKED && c->pin_retries != 0) {
        c->pin_retries = 0;
        *changed = true;
    }
    if (ps == VC_PIN_START_FORCE_CHANGE && !c->force_pin_change) {
        c->force_pin_change = true;
        *changed = true;
    }
    return 0;
}

/* The AAGUID of the personality unless the configuration named one. */
static void use_personality(struct vc_card *c, const struct vc_personality *p)
{
    c->pers = p != NULL ? p : vc_personality_default();
    if (!c->aaguid_given)
        memcpy(c->cfg.aaguid, c->pers->aaguid, 16);
}

struct vc_card *vc_card_new(const struct vc_config *cfg, char *err, size_t errlen)
{
    static const uint8_t zero[16];
    struct vc_card *c;
    bool changed = false;
    int rc, recert;

    kcu_set_err(err, errlen, "%s", "");
    if (cfg == NULL) {
        kcu_set_err(err, errlen, "vcard: no configuration");
        return NULL;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        kcu_set_err(err, errlen, "vcard: out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->cfg = *cfg;
    if (c->cfg.reset_window_ms <= 0)
        c->cfg.reset_window_ms = 10000;
    c->aaguid_given = memcmp(c->cfg.aaguid, zero, sizeof(zero)) != 0;
    use_personality(c, cfg->personality);
    c->cfg.personality = NULL;
    c->cfg.pin = NULL;
    if (cfg->pin != NULL) {
        size_t n = strlen(cfg->pin);

        if (n < VC_PIN_MIN_LEN || n > VC_PIN_MAX_LEN) {
            kcu_set_err(err, errlen, "vcard: --pin must be %d to %d bytes long (got %zu)",
                        VC_PIN_MIN_LEN, VC_PIN_MAX_LEN, n);
            goto fail;
        }
        if (vc_pin_hash(cfg->pin, c->start_pin_hash) != 0) {
            kcu_set_err(err, errlen, "vcard: hashing the PIN failed");
            goto fail;
        }
        c->start_pin_given = true;
    }
    c->cfg.state_path = NULL;
    if (cfg->state_path != NULL && (c->state_path = strdup(cfg->state_path)) == NULL) {
        kcu_set_err(err, errlen, "vcard: out of memory");
        goto fail;
    }
    rc = c->state_path != NULL ? vc_state_load(c, err, errlen) : 0;
    if (rc < 0)
        goto fail;
    if (rc == 0) {
        if (fresh_secrets(c) != 0) {
            kcu_set_err(err, errlen, "vcard: generating the card's keys failed");
            goto fail;
        }
    }
    if (apply_start_pin(c, true, &changed, err, errlen) != 0)
        goto fail;
    /* --pin's length in code points, which setMinPINLength compares (the
     * stored hash cannot tell it) */
    if (c->start_pin_given && c->pin_set && c->pin_code_points == 0 &&
        CRYPTO_memcmp(c->pin_hash, c->start_pin_hash, 16) == 0)
        c->pin_code_points = vc_utf8_code_points((const uint8_t *)cfg->pin, strlen(cfg->pin));
    if ((recert = vc_attest_match_aaguid(c)) < 0) {
        kcu_set_err(err, errlen, "vcard: issuing the attestation certificate failed");
        goto fail;
    }
    if ((changed || recert > 0 || rc == 0) && vc_persist(c) != 0) {
        kcu_set_err(err, errlen, "vcard: cannot write state file %s", c->state_path);
        goto fail;
    }
    if (vc_pin_new_boot(c) != 0) {
        kcu_set_err(err, errlen, "vcard: generating the key agreement key failed");
        goto fail;
    }
    c->boot_ms = kcu_now_ms();
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
    vc_largeblob_clear(c);
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
    c->boot_ms = kcu_now_ms();
    pthread_mutex_unlock(&c->mu);
}

void vc_card_set_faults(struct vc_card *c, const struct vc_faults *f)
{
    pthread_mutex_lock(&c->mu);
    c->faults = *f;
    pthread_mutex_unlock(&c->mu);
}

int vc_card_set_personality(struct vc_card *c, const struct vc_personality *p, char *err,
                            size_t errlen)
{
    bool changed = false;
    int recert, rc = -1;

    kcu_set_err(err, errlen, "%s", "");
    pthread_mutex_lock(&c->mu);
    use_personality(c, p);
    c->pending.active = false;
    if (apply_start_pin(c, false, &changed, err, errlen) != 0)
        goto out;
    if ((recert = vc_attest_match_aaguid(c)) < 0) {
        kcu_set_err(err, errlen, "vcard: issuing the attestation certificate failed");
        goto out;
    }
    if ((changed || recert > 0) && vc_persist(c) != 0) {
        kcu_set_err(err, errlen, "vcard: cannot write state file %s", c->state_path);
        goto out;
    }
    rc = 0;
out:
    pthread_mutex_unlock(&c->mu);
    return rc;
}

const struct vc_personality *vc_card_personality(const struct vc_card *c)
{
    struct vc_card *m = (struct vc_card *)c; /* the mutex is not part of the value */
    const struct vc_personality *p;

    pthread_mutex_lock(&m->mu);
    p = m->pers;
    pthread_mutex_unlock(&m->mu);
    return p;
}

bool vc_card_ctap2_enabled(const struct vc_card *c)
{
    struct vc_card *m = (struct vc_card *)c;
    bool on;

    pthread_mutex_lock(&m->mu);
    on = !m->faults.on[VC_FAULT_CTAP1_ONLY] && m->pers->ctap2;
    pthread_mutex_unlock(&m->mu);
    return on;
}

bool vc_card_ctap1_enabled(const struct vc_card *c)
{
    struct vc_card *m = (struct vc_card *)c;
    bool on;

    pthread_mutex_lock(&m->mu);
    /* alwaysUv turned on disables U2F, which cannot verify the user (7.2) */
    on = m->cfg.ctap1 && m->pers->ctap1 && !(vc_config_offered(m) && vc_always_uv(m));
    pthread_mutex_unlock(&m->mu);
    return on;
}

/* A NULL-terminated list of text strings; U2F_V2 is left out when CTAP1 is
 * not offered. */
static bool put_str_array(cbor_item_t *map, int key, const char *const *v, size_t max, bool u2f)
{
    cbor_item_t *arr;
    size_t n = 0;
    bool ok = true;

    for (size_t i = 0; i < max && v[i] != NULL; i++)
        n += u2f || strcmp(v[i], "U2F_V2") != 0;
    if (n == 0)
        return true;
    if ((arr = cbor_new_definite_array(n)) == NULL)
        return false;
    for (size_t i = 0; ok && i < max && v[i] != NULL; i++)
        if (u2f || strcmp(v[i], "U2F_V2") != 0)
            ok = kc_cbor_array_push(arr, kc_cbor_new_text(v[i])) == KC_OK;
    if (!ok) {
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

static bool put_opt(cbor_item_t *opts, const char *name, enum vc_opt v)
{
    if (v == VC_OPT_ABSENT)
        return true;
    return kc_cbor_map_add_str(opts, name, cbor_build_bool(v == VC_OPT_TRUE)) == KC_OK;
}

static enum vc_opt opt_of(bool present, bool value)
{
    return !present ? VC_OPT_ABSENT : value ? VC_OPT_TRUE : VC_OPT_FALSE;
}

/* options (0x04) in canonical CBOR order: shorter keys first, then bytewise */
static cbor_item_t *info_options(const struct vc_card *c, bool pin_protos)
{
    const struct vc_personality *p = c->pers;
    bool cfg = vc_config_offered(c);
    cbor_item_t *o = cbor_new_definite_map(16);
    bool ok = o != NULL;

    /* authenticatorConfig's options come from the card's settings */
    ok = ok && put_opt(o, "ep", opt_of(cfg, c->ep));
    ok = ok && put_opt(o, "rk", VC_OPT_TRUE) && put_opt(o, "up", VC_OPT_TRUE);
    ok = ok && put_opt(o, "uv", c->cfg.uv ? VC_OPT_TRUE : p->opt_uv);
    ok = ok && put_opt(o, "plat", opt_of(p->opt_plat, false));
    ok = ok && put_opt(o, "alwaysUv", cfg ? opt_of(true, vc_always_uv(c)) : p->opt_always_uv);
    ok = ok && put_opt(o, "credMgmt", opt_of(p->cred_mgmt == VC_CRED_MGMT_2_1, true));
    ok = ok && put_opt(o, "authnrCfg", opt_of(cfg, true));
    ok = ok && put_opt(o, "clientPin", opt_of(p->opt_client_pin && pin_protos, c->pin_set));
    ok = ok && put_opt(o, "largeBlobs", opt_of(p->max_large_blob > 0, true));
    ok = ok && put_opt(o, "pinUvAuthToken", p->opt_pin_uv_auth_token);
    ok = ok && put_opt(o, "setMinPINLength", opt_of(cfg, true));
    ok = ok && put_opt(o, "makeCredUvNotRqd",
                       cfg ? opt_of(true, !vc_always_uv(c)) : p->opt_make_cred_uv_not_rqd);
    ok = ok &&
         put_opt(o, "credentialMgmtPreview", opt_of(p->cred_mgmt == VC_CRED_MGMT_PREVIEW, true));
    if (!ok && o != NULL)
        cbor_decref(&o);
    return ok ? o : NULL;
}

static bool put_int_array(cbor_item_t *m, int key, const int *v, size_t max, bool algs)
{
    cbor_item_t *arr;
    size_t n = 0;
    bool ok = true;

    while (n < max && v[n] != 0)
        n++;
    if (n == 0)
        return true;
    if ((arr = cbor_new_definite_array(n)) == NULL)
        return false;
    for (size_t i = 0; ok && i < n; i++)
        ok = kc_cbor_array_push(arr, algs ? alg_entry(v[i]) : kc_cbor_new_int(v[i])) == KC_OK;
    if (!ok) {
        cbor_decref(&arr);
        return false;
    }
    return kc_cbor_map_add_int(m, key, arr) == KC_OK;
}

/* authenticatorGetInfo (CTAP 2.1 6.4) as the personality publishes it, keys
 * ascending. The no-pin-protocols fault removes clientPin and 0x06. */
static uint8_t get_info(struct vc_card *c, uint8_t *resp, size_t cap, size_t *resp_len)
{
    static const char *const transports[] = {"usb", NULL};
    const struct vc_personality *p = c->pers;
    bool pin_protos = !c->faults.on[VC_FAULT_NO_PIN_PROTOCOLS] && p->pin_protocols[0] != 0;
    bool u2f = c->cfg.ctap1 && p->ctap1 && !(vc_config_offered(c) && vc_always_uv(c));
    cbor_item_t *m = cbor_new_definite_map(24);
    cbor_item_t *opts = info_options(c, pin_protos);
    uint8_t st = KC_CTAP1_ERR_OTHER;
    bool ok;

    ok = m != NULL && opts != NULL;
    ok = ok && put_str_array(m, 1, p->versions, VC_PERS_MAX_STRINGS, u2f);
    ok = ok && put_str_array(m, 2, p->extensions, VC_PERS_MAX_STRINGS, true);
    ok = ok && kc_cbor_map_add_int(m, 3, kc_cbor_new_bytes(c->cfg.aaguid, 16)) == KC_OK;
    ok = ok && kc_cbor_map_add_int(m, 4, cbor_incref(opts)) == KC_OK;
    ok = ok && kc_cbor_map_add_int(m, 5, kc_cbor_new_int(p->max_msg_size)) == KC_OK;
    if (pin_protos)
        ok = ok && put_int_array(m, 6, p->pin_protocols, VC_PERS_MAX_PROTOS, false);
    if (p->max_cred_in_list > 0)
        ok = ok && kc_cbor_map_add_int(m, 7, kc_cbor_new_int(p->max_cred_in_list)) == KC_OK;
    if (p->cred_id_len_key)
        ok = ok && kc_cbor_map_add_int(m, 8, kc_cbor_new_int(VC_CRED_ID_LEN)) == KC_OK;
    if (p->transports_usb)
        ok = ok && put_str_array(m, 9, transports, 2, true);
    ok = ok && put_int_array(m, 10, p->algorithms, VC_PERS_MAX_ALGS, true);
    if (p->max_large_blob > 0)
        ok = ok && kc_cbor_map_add_int(m, 11, kc_cbor_new_int(p->max_large_blob)) == KC_OK;
    if (p->force_pin_change_key)
        ok = ok && kc_cbor_map_add_int(m, 12, cbor_build_bool(c->force_pin_change)) == KC_OK;
    if (p->min_pin_length > 0)
        ok = ok && kc_cbor_map_add_int(m, 13, kc_cbor_new_int((int64_t)vc_min_pin_len(c))) == KC_OK;
    if (p->firmware_version > 0)
        ok = ok && kc_cbor_map_add_int(m, 14, kc_cbor_new_int(p->firmware_version)) == KC_OK;
    if (p->max_cred_blob_len > 0)
        ok = ok && kc_cbor_map_add_int(m, 15, kc_cbor_new_int(p->max_cred_blob_len)) == KC_OK;
    if (vc_config_offered(c)) /* maxRPIDsForSetMinPINLength */
        ok = ok && kc_cbor_map_add_int(m, 16, kc_cbor_new_int(VC_MIN_PIN_RPIDS_MAX)) == KC_OK;
    /* remainingDiscoverableCredentials (CTAP 2.1 6.4, 0x14): a 2.1 card with
     * credential management says it; the 2.1-PRE ones did not have the key */
    if (p->cred_mgmt == VC_CRED_MGMT_2_1)
        ok = ok &&
             kc_cbor_map_add_int(m, 0x14, kc_cbor_new_int((int64_t)(VC_MAX_RK - c->n_rk))) == KC_OK;
    /* keys ascending, whatever order the lines above add them in */
    ok = ok && kc_cbor_map_canonical(m) == KC_OK;
    if (ok)
        st = vc_reply_item(m, resp, cap, resp_len);
    if (m != NULL)
        cbor_decref(&m);
    if (opts != NULL)
        cbor_decref(&opts);
    return st;
}

static uint8_t selection(struct vc_card *c, vc_presence_fn up, void *ctx)
{
    return vc_up_status(vc_ask_presence(c, up, ctx));
}

static uint8_t reset(struct vc_card *c, vc_presence_fn up, void *ctx)
{
    uint8_t st;

    if ((long long)(kcu_now_ms() - c->boot_ms) > c->cfg.reset_window_ms)
        return KC_CTAP2_ERR_NOT_ALLOWED;
    if ((st = vc_up_status(vc_ask_presence(c, up, ctx))) != KC_CTAP2_OK)
        return st;
    /* A new master key makes every non-resident credential id unopenable. */
    if (kcu_random(c->master_key, sizeof(c->master_key)) != 0)
        return KC_CTAP1_ERR_OTHER;
    vc_key_cache_clear(c);
    OPENSSL_cleanse(c->rks, sizeof(c->rks));
    c->n_rk = 0;
    free(c->ctrs);
    c->ctrs = NULL;
    c->n_ctr = 0;
    c->cap_ctr = 0;
    vc_largeblob_clear(c); /* back to the initial empty array (6.6) */
    c->pin_set = false;
    OPENSSL_cleanse(c->pin_hash, sizeof(c->pin_hash));
    c->pin_retries = VC_PIN_RETRIES_MAX;
    c->pin_boot_fails = 0;
    c->force_pin_change = false;
    vc_config_reset(c); /* alwaysUv, minPINLength and ep back to factory */
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
    if (c->faults.on[VC_FAULT_CTAP1_ONLY] || !c->pers->ctap2) {
        vc_reply_status(KC_CTAP1_ERR_INVALID_COMMAND, resp, resp_len);
        goto out;
    }
    if (req[0] != KC_CTAP2_GET_NEXT_ASSERTION)
        c->pending.active = false;
    if (req[0] != KC_CTAP2_CRED_MGMT && req[0] != KC_CTAP2_CRED_MGMT_PRE)
        vc_credman_cancel(c); /* an enumeration ends at any other command */
    /* getInfo advertises maxMsgSize: a longer request (command byte and
     * parameters) is refused before it is parsed, as a real card would */
    if (len > (size_t)c->pers->max_msg_size) {
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
        /* a card without PIN protocols has no ClientPIN command */
        if (c->faults.on[VC_FAULT_NO_PIN_PROTOCOLS] || c->pers->pin_protocols[0] == 0)
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
    case VC_CTAP2_CONFIG:
        st = vc_config(c, body, blen);
        break;
    case KC_CTAP2_CRED_MGMT:
    case KC_CTAP2_CRED_MGMT_PRE:
        st = vc_credman(c, req[0], body, blen, resp, cap, resp_len);
        break;
    case KC_CTAP2_LARGE_BLOBS:
        st = vc_large_blobs(c, body, blen, resp, cap, resp_len);
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
    if (vc_config_offered(c) && vc_always_uv(c)) { /* U2F off under alwaysUv (7.2) */
        resp[0] = (uint8_t)(KC_U2F_SW_INS_NOT_SUPPORTED >> 8);
        resp[1] = (uint8_t)KC_U2F_SW_INS_NOT_SUPPORTED;
        *resp_len = 2;
    } else {
        vc_u2f(c, apdu, apdu != NULL ? len : 0, resp, cap, resp_len, up, up_ctx);
    }
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
    json_object_set_new(o, "ctap2",
                        json_boolean(!m->faults.on[VC_FAULT_CTAP1_ONLY] && m->pers->ctap2));
    json_object_set_new(o, "ctap1", json_boolean(m->cfg.ctap1 && m->pers->ctap1));
    json_object_set_new(o, "uv", json_boolean(vc_builtin_uv(m)));
    json_object_set_new(o, "personality", json_string(m->pers->name));
    json_object_set_new(o, "force_pin_change", json_boolean(m->force_pin_change));
    json_object_set_new(o, "min_pin_length", json_integer((json_int_t)vc_min_pin_len(m)));
    if (vc_config_offered(m)) { /* authenticatorConfig's settings (card_config.c) */
        json_object_set_new(o, "always_uv", json_boolean(vc_always_uv(m)));
        json_object_set_new(o, "enterprise_attestation", json_boolean(m->ep));
    }
    json_object_set_new(
        o, "attestation",
        json_string(m->cfg.attestation <= VC_ATT_NONE ? att[m->cfg.attestation] : "unknown"));
    json_object_set_new(
        o, "reset_allowed",
        json_boolean((long long)(kcu_now_ms() - m->boot_ms) <= m->cfg.reset_window_ms));
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
