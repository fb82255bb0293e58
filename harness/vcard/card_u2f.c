/* CTAP1/U2F over CTAPHID_MSG (FIDO U2F raw messages): VERSION, REGISTER and
 * AUTHENTICATE with check-only, enforce and dont-enforce. Key handles are
 * credential ids of the same format as CTAP2's, bound to the application
 * parameter, so a U2F registration also works through getAssertion. */
#include <string.h>

#include "ctaphid/status.h"
#include "harness/vcard/card_int.h"

#define U2F_BUF 2048
#define U2F_SIG_MAX 80

struct apdu {
    uint8_t cla, ins, p1, p2;
    const uint8_t *data;
    size_t lc;
};

/* Short (Lc 1 byte, Le 1 byte) and extended (00 Lc1 Lc2, Le 2 bytes)
 * encodings; returns 0 or -1 when the lengths do not add up. */
static int parse_apdu(const uint8_t *a, size_t len, struct apdu *out)
{
    memset(out, 0, sizeof(*out));
    if (len < 4)
        return -1;
    out->cla = a[0];
    out->ins = a[1];
    out->p1 = a[2];
    out->p2 = a[3];
    if (len == 4 || len == 5) /* no data; maybe a short Le */
        return 0;
    if (a[4] == 0) {
        if (len == 7) /* extended Le only */
            return 0;
        if (len < 7)
            return -1;
        out->lc = (size_t)a[5] << 8 | a[6];
        out->data = a + 7;
        if (len == 7 + out->lc || len == 7 + out->lc + 2)
            return 0;
        return -1;
    }
    out->lc = a[4];
    out->data = a + 5;
    if (len == 5 + out->lc || len == 5 + out->lc + 1)
        return 0;
    return -1;
}

static void sw(uint8_t *resp, size_t *resp_len, size_t at, uint16_t code)
{
    resp[at] = (uint8_t)(code >> 8);
    resp[at + 1] = (uint8_t)code;
    *resp_len = at + 2;
}

/* Copies body and the status word if they fit, else only the status word
 * SW_WRONG_LENGTH (the caller's buffer is too small for the answer). */
static void reply(const uint8_t *body, size_t n, uint8_t *resp, size_t cap, size_t *resp_len)
{
    if (n + 2 > cap) {
        sw(resp, resp_len, 0, KC_U2F_SW_WRONG_LENGTH);
        return;
    }
    memcpy(resp, body, n);
    sw(resp, resp_len, n, KC_U2F_SW_NO_ERROR);
}

static uint16_t do_register(struct vc_card *c, const struct apdu *ap, uint8_t *out, size_t *n,
                            vc_presence_fn up, void *ctx)
{
    const uint8_t *chal, *app;
    uint8_t msg[1 + 32 + 32 + VC_CRED_ID_LEN + 65], pub[65], sig[U2F_SIG_MAX];
    size_t sig_len = sizeof(sig), k = 0;
    struct vc_cred cr;
    EVP_PKEY *key = NULL;
    uint16_t code = KC_U2F_SW_CONDITIONS_NOT_SATISFIED;

    if (ap->lc != 64)
        return KC_U2F_SW_WRONG_LENGTH;
    chal = ap->data;
    app = ap->data + 32;
    if (vc_ask_presence(c, up, ctx) != VC_UP_APPROVED)
        return KC_U2F_SW_CONDITIONS_NOT_SATISFIED;
    if (vc_cred_new(c, KC_COSE_ES256, 0, 0, app, &cr, &key) != 0 || vc_p256_raw_pub(key, pub) != 0)
        goto out;
    msg[0] = 0x00;
    memcpy(msg + 1, app, 32);
    memcpy(msg + 33, chal, 32);
    memcpy(msg + 65, cr.id, VC_CRED_ID_LEN);
    memcpy(msg + 65 + VC_CRED_ID_LEN, pub, 65);
    if (vc_sign(c, c->att_key, KC_COSE_ES256, msg, sizeof(msg), NULL, 0, sig, &sig_len) != 0 ||
        1 + 65 + 1 + VC_CRED_ID_LEN + c->att_cert_len + sig_len > U2F_BUF)
        goto out;
    out[k++] = 0x05; /* reserved byte of the register response */
    memcpy(out + k, pub, 65);
    k += 65;
    out[k++] = VC_CRED_ID_LEN;
    memcpy(out + k, cr.id, VC_CRED_ID_LEN);
    k += VC_CRED_ID_LEN;
    memcpy(out + k, c->att_cert, c->att_cert_len);
    k += c->att_cert_len;
    memcpy(out + k, sig, sig_len);
    k += sig_len;
    vc_counter_set(c, cr.id, VC_CRED_ID_LEN, 0);
    if (vc_persist(c) != 0)
        goto out;
    *n = k;
    code = KC_U2F_SW_NO_ERROR;
out:
    OPENSSL_cleanse(&cr, sizeof(cr));
    EVP_PKEY_free(key);
    return code;
}

static uint16_t do_authenticate(struct vc_card *c, const struct apdu *ap, uint8_t *out, size_t *n,
                                vc_presence_fn up, void *ctx)
{
    const uint8_t *chal, *app, *kh;
    uint8_t msg[32 + 1 + 4 + 32], sig[U2F_SIG_MAX], flags = 0;
    size_t sig_len = sizeof(sig), kh_len;
    struct vc_cred cr;
    EVP_PKEY *key = NULL;
    uint32_t count;
    uint16_t code = KC_U2F_SW_CONDITIONS_NOT_SATISFIED;

    if (ap->p1 != KC_U2F_AUTH_CHECK_ONLY && ap->p1 != KC_U2F_AUTH_ENFORCE &&
        ap->p1 != KC_U2F_AUTH_DONT_ENFORCE)
        return KC_U2F_SW_WRONG_DATA;
    if (ap->lc < 65 || ap->lc != 65 + (size_t)ap->data[64])
        return KC_U2F_SW_WRONG_LENGTH;
    chal = ap->data;
    app = ap->data + 32;
    kh_len = ap->data[64];
    kh = ap->data + 65;
    if (vc_cred_open(c, kh, kh_len, app, &cr) != 0 || cr.alg != KC_COSE_ES256) {
        OPENSSL_cleanse(&cr, sizeof(cr));
        return KC_U2F_SW_WRONG_DATA;
    }
    if (ap->p1 == KC_U2F_AUTH_CHECK_ONLY)
        goto out; /* the handle is ours: "conditions not satisfied" says so */
    if (ap->p1 == KC_U2F_AUTH_ENFORCE) {
        if (vc_ask_presence(c, up, ctx) != VC_UP_APPROVED)
            goto out;
        flags = VC_AUTH_FLAG_UP;
    }
    if ((key = vc_cred_pkey(c, &cr)) == NULL)
        goto out;
    count = vc_counter_next(c, cr.id, VC_CRED_ID_LEN);
    memcpy(msg, app, 32);
    msg[32] = flags;
    msg[33] = (uint8_t)(count >> 24);
    msg[34] = (uint8_t)(count >> 16);
    msg[35] = (uint8_t)(count >> 8);
    msg[36] = (uint8_t)count;
    memcpy(msg + 37, chal, 32);
    if (vc_sign(c, key, KC_COSE_ES256, msg, sizeof(msg), NULL, 0, sig, &sig_len) != 0 ||
        vc_persist(c) != 0)
        goto out;
    memcpy(out, msg + 32, 5);
    memcpy(out + 5, sig, sig_len);
    *n = 5 + sig_len;
    code = KC_U2F_SW_NO_ERROR;
out:
    OPENSSL_cleanse(&cr, sizeof(cr));
    EVP_PKEY_free(key);
    return code;
}

void vc_u2f(struct vc_card *c, const uint8_t *apdu, size_t len, uint8_t *resp, size_t cap,
            size_t *resp_len, vc_presence_fn up, void *ctx)
{
    static const char version[] = "U2F_V2";
    uint8_t out[U2F_BUF];
    size_t n = 0;
    struct apdu ap;
    uint16_t code;

    if (!c->cfg.ctap1 || !c->pers->ctap1) {
        sw(resp, resp_len, 0, KC_U2F_SW_INS_NOT_SUPPORTED);
        return;
    }
    if (parse_apdu(apdu, len, &ap) != 0) {
        sw(resp, resp_len, 0, KC_U2F_SW_WRONG_LENGTH);
        return;
    }
    if (ap.cla != 0) {
        sw(resp, resp_len, 0, KC_U2F_SW_CLA_NOT_SUPPORTED);
        return;
    }
    switch (ap.ins) {
    case KC_U2F_VERSION:
        if (ap.lc != 0) {
            code = KC_U2F_SW_WRONG_LENGTH;
            break;
        }
        memcpy(out, version, sizeof(version) - 1);
        n = sizeof(version) - 1;
        code = KC_U2F_SW_NO_ERROR;
        break;
    case KC_U2F_REGISTER:
        code = do_register(c, &ap, out, &n, up, ctx);
        break;
    case KC_U2F_AUTHENTICATE:
        code = do_authenticate(c, &ap, out, &n, up, ctx);
        break;
    default:
        code = KC_U2F_SW_INS_NOT_SUPPORTED;
        break;
    }
    if (code == KC_U2F_SW_NO_ERROR)
        reply(out, n, resp, cap, resp_len);
    else
        sw(resp, resp_len, 0, code);
    OPENSSL_cleanse(out, sizeof(out));
}
