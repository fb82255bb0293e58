/* CTAP1/U2F (FIDO U2F raw message formats v1.2) over CTAPHID_MSG. */
#include "ctaphid/u2f.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "ctaphid/cose.h"
#include "ctaphid/status.h"
#include "ctaphid/verify.h"
#include "util/clock.h"
#include "util/err.h"

#define APDU_HDR_LEN 7 /* CLA INS P1 P2 00 Lc1 Lc2 */
#define APDU_LE_LEN 2
#define SW_LEN 2
#define COUNTER_LEN 4
#define U2F_VERSION_V2 "U2F_V2"

int kc_u2f_apdu_encode(uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *data, size_t len,
                       uint8_t *out, size_t cap, size_t *out_len)
{
    size_t need;

    if (out == NULL || out_len == NULL || (data == NULL && len != 0))
        return KC_ERR_INVALID_ARG;
    if (len > 0xffff)
        return KC_ERR_TOO_LARGE;
    /* with data: header(7) data Le(2); without: CLA INS P1 P2 00 Le(2) */
    need = len != 0 ? APDU_HDR_LEN + len + APDU_LE_LEN : 4 + 1 + APDU_LE_LEN;
    if (need > cap)
        return KC_ERR_TOO_LARGE;
    out[0] = 0x00;
    out[1] = ins;
    out[2] = p1;
    out[3] = p2;
    out[4] = 0x00;
    if (len != 0) {
        out[5] = (uint8_t)(len >> 8);
        out[6] = (uint8_t)len;
        memcpy(out + APDU_HDR_LEN, data, len);
        out[APDU_HDR_LEN + len] = 0x00;
        out[APDU_HDR_LEN + len + 1] = 0x00;
    } else {
        out[5] = 0x00;
        out[6] = 0x00;
    }
    *out_len = need;
    return KC_OK;
}

int kc_u2f_split_sw(const uint8_t *resp, size_t len, uint16_t *sw, size_t *body_len)
{
    if (resp == NULL || sw == NULL || body_len == NULL)
        return KC_ERR_INVALID_ARG;
    if (len < SW_LEN)
        return KC_ERR_PROTOCOL;
    *sw = (uint16_t)((resp[len - 2] << 8) | resp[len - 1]);
    *body_len = len - SW_LEN;
    return KC_OK;
}

/* Length of the DER certificate at the front of buf, found by parsing it. */
static int cert_der_len(const uint8_t *buf, size_t len, size_t *cert_len)
{
    const unsigned char *p = buf;
    X509 *x;

    if (len == 0 || len > 0x7fffffff)
        return -1;
    x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL) {
        ERR_clear_error();
        return -1;
    }
    X509_free(x);
    *cert_len = (size_t)(p - buf);
    return 0;
}

int kc_u2f_register_parse(const uint8_t *body, size_t len, struct kc_u2f_register *out)
{
    size_t off = 0, kh_len, cert_len = 0, sig_len;
    uint16_t sw;

    if (out == NULL)
        return KC_ERR_INVALID_ARG;
    sw = out->sw;
    memset(out, 0, sizeof(*out));
    out->sw = sw;
    if (body == NULL) {
        kcu_set_err(out->reason, sizeof(out->reason), "no response");
        return KC_ERR_INVALID_ARG;
    }
    if (len < 1 + KC_U2F_PUBKEY_LEN + 1) {
        kcu_set_err(out->reason, sizeof(out->reason), "register response too short (%zu bytes)",
                    len);
        return KC_ERR_PROTOCOL;
    }
    if (body[off] != KC_U2F_REGISTER_ID) {
        kcu_set_err(out->reason, sizeof(out->reason),
                    "register response starts with 0x%02x, not the reserved 0x05", body[off]);
        return KC_ERR_PROTOCOL;
    }
    off++;
    if (body[off] != 0x04) {
        kcu_set_err(out->reason, sizeof(out->reason),
                    "user public key is not an uncompressed point");
        return KC_ERR_PROTOCOL;
    }
    memcpy(out->pubkey, body + off, KC_U2F_PUBKEY_LEN);
    off += KC_U2F_PUBKEY_LEN;
    kh_len = body[off++];
    if (kh_len == 0 || kh_len > len - off) {
        kcu_set_err(out->reason, sizeof(out->reason),
                    "key handle length %zu does not fit the %zu bytes left", kh_len, len - off);
        return KC_ERR_PROTOCOL;
    }
    memcpy(out->key_handle, body + off, kh_len);
    out->key_handle_len = kh_len;
    off += kh_len;
    if (cert_der_len(body + off, len - off, &cert_len) != 0 || cert_len > KC_U2F_CERT_MAX) {
        kcu_set_err(out->reason, sizeof(out->reason),
                    "attestation certificate is not valid DER X.509 (or too large)");
        return KC_ERR_PROTOCOL;
    }
    memcpy(out->cert, body + off, cert_len);
    out->cert_len = cert_len;
    off += cert_len;
    sig_len = len - off;
    if (sig_len == 0 || sig_len > KC_U2F_SIG_MAX) {
        kcu_set_err(out->reason, sizeof(out->reason), "signature length %zu is out of range",
                    sig_len);
        return KC_ERR_PROTOCOL;
    }
    memcpy(out->sig, body + off, sig_len);
    out->sig_len = sig_len;
    kcu_set_err(out->reason, sizeof(out->reason), "ok");
    return KC_OK;
}

int kc_u2f_authenticate_parse(const uint8_t *body, size_t len, struct kc_u2f_auth *out)
{
    size_t sig_len;
    uint16_t sw;

    if (out == NULL)
        return KC_ERR_INVALID_ARG;
    sw = out->sw;
    memset(out, 0, sizeof(*out));
    out->sw = sw;
    if (body == NULL) {
        kcu_set_err(out->reason, sizeof(out->reason), "no response");
        return KC_ERR_INVALID_ARG;
    }
    if (len < 1 + COUNTER_LEN + 1) {
        kcu_set_err(out->reason, sizeof(out->reason), "authenticate response too short (%zu bytes)",
                    len);
        return KC_ERR_PROTOCOL;
    }
    sig_len = len - 1 - COUNTER_LEN;
    if (sig_len > KC_U2F_SIG_MAX) {
        kcu_set_err(out->reason, sizeof(out->reason), "signature length %zu is out of range",
                    sig_len);
        return KC_ERR_PROTOCOL;
    }
    out->user_presence = body[0];
    out->counter = (uint32_t)body[1] << 24 | (uint32_t)body[2] << 16 | (uint32_t)body[3] << 8 |
                   (uint32_t)body[4];
    memcpy(out->sig, body + 1 + COUNTER_LEN, sig_len);
    out->sig_len = sig_len;
    kcu_set_err(out->reason, sizeof(out->reason), "ok");
    return KC_OK;
}

int kc_u2f_pubkey_evp(const uint8_t pubkey[KC_U2F_PUBKEY_LEN], EVP_PKEY **out)
{
    uint8_t point[KC_U2F_PUBKEY_LEN];
    char group[] = SN_X9_62_prime256v1;
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx;
    EVP_PKEY_CTX *chk = NULL;
    int ok = 0;

    if (pubkey == NULL || out == NULL)
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if (pubkey[0] != 0x04)
        return KC_ERR_VERIFY;
    memcpy(point, pubkey, sizeof(point));
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
    params[2] = OSSL_PARAM_construct_end();
    if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL)
        return KC_ERR_CRYPTO;
    if (EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1 &&
        (chk = EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL)) != NULL &&
        EVP_PKEY_public_check(chk) == 1)
        ok = 1;
    EVP_PKEY_CTX_free(chk);
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        EVP_PKEY_free(*out);
        *out = NULL;
        ERR_clear_error();
        return KC_ERR_VERIFY;
    }
    return KC_OK;
}

int kc_u2f_register_verify(struct kc_u2f_register *reg, const uint8_t chal[KC_U2F_CHAL_LEN],
                           const uint8_t app[KC_U2F_APP_LEN])
{
    uint8_t msg[1 + KC_U2F_APP_LEN + KC_U2F_CHAL_LEN + KC_U2F_KH_MAX + KC_U2F_PUBKEY_LEN];
    const unsigned char *p;
    EVP_PKEY *user = NULL;
    X509 *cert;
    size_t off = 0;
    int e;

    if (reg == NULL || chal == NULL || app == NULL || reg->key_handle_len > KC_U2F_KH_MAX)
        return KC_ERR_INVALID_ARG;
    if (kc_u2f_pubkey_evp(reg->pubkey, &user) != KC_OK) {
        kcu_set_err(reg->reason, sizeof(reg->reason), "user public key is not on P-256");
        return KC_ERR_VERIFY;
    }
    EVP_PKEY_free(user);
    p = reg->cert;
    if ((cert = d2i_X509(NULL, &p, (long)reg->cert_len)) == NULL) {
        ERR_clear_error();
        kcu_set_err(reg->reason, sizeof(reg->reason), "attestation certificate does not parse");
        return KC_ERR_VERIFY;
    }
    msg[off++] = 0x00;
    memcpy(msg + off, app, KC_U2F_APP_LEN);
    off += KC_U2F_APP_LEN;
    memcpy(msg + off, chal, KC_U2F_CHAL_LEN);
    off += KC_U2F_CHAL_LEN;
    memcpy(msg + off, reg->key_handle, reg->key_handle_len);
    off += reg->key_handle_len;
    memcpy(msg + off, reg->pubkey, KC_U2F_PUBKEY_LEN);
    off += KC_U2F_PUBKEY_LEN;
    e = kc_verify_signature(X509_get0_pubkey(cert), KC_COSE_ES256, msg, off, reg->sig,
                            reg->sig_len);
    X509_free(cert);
    if (e == KC_ERR_INVALID_ARG) {
        kcu_set_err(reg->reason, sizeof(reg->reason), "attestation certificate key is not P-256");
        return KC_ERR_VERIFY;
    }
    if (e != KC_OK) {
        kcu_set_err(reg->reason, sizeof(reg->reason), "register signature does not verify");
        return KC_ERR_VERIFY;
    }
    kcu_set_err(reg->reason, sizeof(reg->reason), "ok");
    return KC_OK;
}

int kc_u2f_authenticate_verify(struct kc_u2f_auth *auth, const uint8_t chal[KC_U2F_CHAL_LEN],
                               const uint8_t app[KC_U2F_APP_LEN],
                               const uint8_t pubkey[KC_U2F_PUBKEY_LEN])
{
    uint8_t msg[KC_U2F_APP_LEN + 1 + COUNTER_LEN + KC_U2F_CHAL_LEN];
    EVP_PKEY *key = NULL;
    size_t off = 0;
    int e;

    if (auth == NULL || chal == NULL || app == NULL || pubkey == NULL)
        return KC_ERR_INVALID_ARG;
    if (kc_u2f_pubkey_evp(pubkey, &key) != KC_OK) {
        kcu_set_err(auth->reason, sizeof(auth->reason), "registered public key is not on P-256");
        return KC_ERR_VERIFY;
    }
    memcpy(msg + off, app, KC_U2F_APP_LEN);
    off += KC_U2F_APP_LEN;
    msg[off++] = auth->user_presence;
    msg[off++] = (uint8_t)(auth->counter >> 24);
    msg[off++] = (uint8_t)(auth->counter >> 16);
    msg[off++] = (uint8_t)(auth->counter >> 8);
    msg[off++] = (uint8_t)auth->counter;
    memcpy(msg + off, chal, KC_U2F_CHAL_LEN);
    off += KC_U2F_CHAL_LEN;
    e = kc_verify_signature(key, KC_COSE_ES256, msg, off, auth->sig, auth->sig_len);
    EVP_PKEY_free(key);
    if (e != KC_OK) {
        kcu_set_err(auth->reason, sizeof(auth->reason), "authenticate signature does not verify");
        return KC_ERR_VERIFY;
    }
    kcu_set_err(auth->reason, sizeof(auth->reason), "ok");
    return KC_OK;
}

/* One APDU over CTAPHID_MSG; the body lands in resp, the SW in *sw. A status
 * word other than NO_ERROR is KC_ERR_U2F, named in reason when one is given. */
static int u2f_transact(struct kc_dev *d, uint8_t ins, uint8_t p1, const uint8_t *data, size_t len,
                        uint8_t *resp, size_t cap, size_t *body_len, uint16_t *sw, char *reason,
                        size_t reason_cap)
{
    uint8_t apdu[APDU_HDR_LEN + 1 + KC_U2F_APP_LEN + KC_U2F_CHAL_LEN + KC_U2F_KH_MAX + APDU_LE_LEN];
    size_t apdu_len = 0, resp_len = 0;
    int e;

    *sw = 0;
    *body_len = 0;
    if (d == NULL)
        return KC_ERR_INVALID_ARG;
    if ((e = kc_u2f_apdu_encode(ins, p1, 0x00, data, len, apdu, sizeof(apdu), &apdu_len)) != KC_OK)
        return e;
    if ((e = kc_dev_transact(d, KC_HID_MSG, apdu, apdu_len, resp, cap, &resp_len)) != KC_OK)
        return e;
    if ((e = kc_u2f_split_sw(resp, resp_len, sw, body_len)) != KC_OK)
        return e;
    if (*sw == KC_U2F_SW_NO_ERROR)
        return KC_OK;
    if (reason != NULL)
        kcu_set_err(reason, reason_cap, "card answered %s (0x%04x)", kc_u2f_sw_name(*sw), *sw);
    return KC_ERR_U2F;
}

int kc_u2f_version(struct kc_dev *d, char *version, size_t cap, uint16_t *sw)
{
    uint8_t resp[64];
    size_t body_len = 0;
    uint16_t local_sw;
    int e;

    if (version == NULL || cap == 0)
        return KC_ERR_INVALID_ARG;
    if (sw == NULL)
        sw = &local_sw;
    version[0] = '\0';
    e = u2f_transact(d, KC_U2F_VERSION, 0x00, NULL, 0, resp, sizeof(resp), &body_len, sw, NULL, 0);
    if (e != KC_OK)
        return e;
    if (body_len >= cap)
        return KC_ERR_TOO_LARGE;
    for (size_t i = 0; i < body_len; i++) /* printable ASCII only */
        version[i] = (resp[i] >= 0x20 && resp[i] < 0x7f) ? (char)resp[i] : '?';
    version[body_len] = '\0';
    return KC_OK;
}

int kc_u2f_check_version(struct kc_dev *d, char *version, size_t cap, uint16_t *sw)
{
    int e = kc_u2f_version(d, version, cap, sw);

    if (e != KC_OK)
        return e;
    return strcmp(version, U2F_VERSION_V2) == 0 ? KC_OK : KC_ERR_UNSUPPORTED;
}

int kc_u2f_register(struct kc_dev *d, const uint8_t chal[KC_U2F_CHAL_LEN],
                    const uint8_t app[KC_U2F_APP_LEN], struct kc_u2f_register *reg)
{
    uint8_t data[KC_U2F_CHAL_LEN + KC_U2F_APP_LEN];
    uint8_t resp[KC_HID_MAX_MSG];
    size_t body_len = 0;
    int e;

    if (reg == NULL || chal == NULL || app == NULL)
        return KC_ERR_INVALID_ARG;
    memset(reg, 0, sizeof(*reg));
    memcpy(data, chal, KC_U2F_CHAL_LEN);
    memcpy(data + KC_U2F_CHAL_LEN, app, KC_U2F_APP_LEN);
    e = u2f_transact(d, KC_U2F_REGISTER, 0x00, data, sizeof(data), resp, sizeof(resp), &body_len,
                     &reg->sw, reg->reason, sizeof(reg->reason));
    if (e != KC_OK)
        return e;
    if ((e = kc_u2f_register_parse(resp, body_len, reg)) != KC_OK)
        return e;
    return kc_u2f_register_verify(reg, chal, app);
}

int kc_u2f_authenticate(struct kc_dev *d, uint8_t mode, const uint8_t chal[KC_U2F_CHAL_LEN],
                        const uint8_t app[KC_U2F_APP_LEN], const uint8_t *key_handle,
                        size_t key_handle_len, const uint8_t *pubkey, struct kc_u2f_auth *auth)
{
    uint8_t data[KC_U2F_CHAL_LEN + KC_U2F_APP_LEN + 1 + KC_U2F_KH_MAX];
    uint8_t resp[KC_HID_MAX_MSG];
    size_t body_len = 0, off = 0;
    int e;

    if (auth == NULL || chal == NULL || app == NULL || key_handle == NULL || key_handle_len == 0 ||
        key_handle_len > KC_U2F_KH_MAX)
        return KC_ERR_INVALID_ARG;
    if (mode != KC_U2F_AUTH_CHECK_ONLY && mode != KC_U2F_AUTH_ENFORCE &&
        mode != KC_U2F_AUTH_DONT_ENFORCE)
        return KC_ERR_INVALID_ARG;
    memset(auth, 0, sizeof(*auth));
    memcpy(data, chal, KC_U2F_CHAL_LEN);
    off += KC_U2F_CHAL_LEN;
    memcpy(data + off, app, KC_U2F_APP_LEN);
    off += KC_U2F_APP_LEN;
    data[off++] = (uint8_t)key_handle_len;
    memcpy(data + off, key_handle, key_handle_len);
    off += key_handle_len;
    e = u2f_transact(d, KC_U2F_AUTHENTICATE, mode, data, off, resp, sizeof(resp), &body_len,
                     &auth->sw, auth->reason, sizeof(auth->reason));
    if (e != KC_OK)
        return e;
    if ((e = kc_u2f_authenticate_parse(resp, body_len, auth)) != KC_OK)
        return e;
    if (pubkey == NULL)
        return KC_OK;
    return kc_u2f_authenticate_verify(auth, chal, app, pubkey);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Between attempts at a command the card holds until touched: sleeps poll_ms
 * and true, or false with reason set once that would pass the deadline. */
static bool wait_for_touch(int64_t deadline, int poll_ms, int timeout_ms, char *reason, size_t cap)
{
    if ((int64_t)kcu_now_ms() + poll_ms > deadline) {
        kcu_set_err(reason, cap,
                    "no touch within %d ms (card kept answering CONDITIONS_NOT_SATISFIED)",
                    timeout_ms);
        return false;
    }
    sleep_ms(poll_ms);
    return true;
}

int kc_u2f_register_wait(struct kc_dev *d, const uint8_t chal[KC_U2F_CHAL_LEN],
                         const uint8_t app[KC_U2F_APP_LEN], struct kc_u2f_register *reg,
                         int timeout_ms, int poll_ms)
{
    int64_t deadline = (int64_t)kcu_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int e;

    if (poll_ms <= 0)
        poll_ms = 200;
    for (;;) {
        e = kc_u2f_register(d, chal, app, reg);
        if (e != KC_ERR_U2F || reg->sw != KC_U2F_SW_CONDITIONS_NOT_SATISFIED)
            return e;
        if (!wait_for_touch(deadline, poll_ms, timeout_ms, reg->reason, sizeof(reg->reason)))
            return KC_ERR_TIMEOUT;
    }
}

int kc_u2f_authenticate_wait(struct kc_dev *d, uint8_t mode, const uint8_t chal[KC_U2F_CHAL_LEN],
                             const uint8_t app[KC_U2F_APP_LEN], const uint8_t *key_handle,
                             size_t key_handle_len, const uint8_t *pubkey, struct kc_u2f_auth *auth,
                             int timeout_ms, int poll_ms)
{
    int64_t deadline = (int64_t)kcu_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int e;

    if (poll_ms <= 0)
        poll_ms = 200;
    for (;;) {
        e = kc_u2f_authenticate(d, mode, chal, app, key_handle, key_handle_len, pubkey, auth);
        /* check-only answers CONDITIONS_NOT_SATISFIED for a known handle: final */
        if (mode == KC_U2F_AUTH_CHECK_ONLY || e != KC_ERR_U2F ||
            auth->sw != KC_U2F_SW_CONDITIONS_NOT_SATISFIED)
            return e;
        if (!wait_for_touch(deadline, poll_ms, timeout_ms, auth->reason, sizeof(auth->reason)))
            return KC_ERR_TIMEOUT;
    }
}
