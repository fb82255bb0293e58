/* The CTAP2 command transport (request map in, status and body out) and the
 * parameterless commands: authenticatorSelection and authenticatorReset. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/ctap2.h"
#include "ctaphid/ctap2_int.h"

static int send_raw(struct kc_dev *d, uint8_t cmd, const uint8_t *params, size_t params_len,
                    uint8_t **resp, size_t *resp_len)
{
    uint8_t *msg = NULL, *rbuf = NULL;
    size_t rlen = 0;
    int r;

    *resp = NULL;
    *resp_len = 0;
    if (params_len > KC_HID_MAX_MSG - 1)
        return KC_ERR_TOO_LARGE;
    if ((msg = malloc(params_len + 1)) == NULL || (rbuf = malloc(KC_HID_MAX_MSG)) == NULL) {
        free(msg);
        return KC_ERR_NOMEM;
    }
    msg[0] = cmd;
    if (params_len > 0)
        memcpy(msg + 1, params, params_len);
    r = kc_dev_transact(d, KC_HID_CBOR, msg, params_len + 1, rbuf, KC_HID_MAX_MSG, &rlen);
    OPENSSL_cleanse(msg, params_len + 1); /* may carry encrypted PINs */
    free(msg);
    if (r != KC_OK) {
        free(rbuf);
        return r;
    }
    if (rlen == 0 || rlen > KC_HID_MAX_MSG) {
        free(rbuf);
        return KC_ERR_CBOR; /* a CTAP2 reply starts with a status byte */
    }
    *resp = rbuf;
    *resp_len = rlen;
    return KC_OK;
}

int kc_ctap2_command(struct kc_dev *d, uint8_t cmd, const uint8_t *params, size_t params_len,
                     uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int r;

    if (d == NULL || (params == NULL && params_len > 0) || out_len == NULL)
        return KC_ERR_INVALID_ARG;
    *out_len = 0;
    if ((r = send_raw(d, cmd, params, params_len, &resp, &resp_len)) != KC_OK)
        return r;
    if (resp[0] != KC_CTAP2_OK) {
        r = resp[0];
    } else if (resp_len - 1 > cap || (resp_len > 1 && out == NULL)) {
        r = KC_ERR_TOO_LARGE;
    } else {
        if (resp_len > 1)
            memcpy(out, resp + 1, resp_len - 1);
        *out_len = resp_len - 1;
        r = KC_OK;
    }
    OPENSSL_cleanse(resp, resp_len);
    free(resp);
    return r;
}

int kc_ctap2_call(struct kc_dev *d, uint8_t cmd, const uint8_t *params, size_t params_len,
                  uint8_t **body, size_t *body_len)
{
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int r;

    if (d == NULL || body == NULL || body_len == NULL || (params == NULL && params_len > 0))
        return KC_ERR_INVALID_ARG;
    *body = NULL;
    *body_len = 0;
    if ((r = send_raw(d, cmd, params, params_len, &resp, &resp_len)) != KC_OK)
        return r;
    if (resp[0] != KC_CTAP2_OK) {
        r = resp[0];
    } else if (resp_len > 1) {
        if ((*body = malloc(resp_len - 1)) == NULL) {
            r = KC_ERR_NOMEM;
        } else {
            memcpy(*body, resp + 1, resp_len - 1);
            *body_len = resp_len - 1;
            r = KC_OK;
        }
    } else {
        r = KC_OK;
    }
    OPENSSL_cleanse(resp, resp_len);
    free(resp);
    return r;
}

/* Commands with no parameters and no response body. */
static int simple_command(struct kc_dev *d, uint8_t cmd)
{
    uint8_t *body = NULL;
    size_t body_len = 0;
    int r = kc_ctap2_call(d, cmd, NULL, 0, &body, &body_len);

    free(body);
    return r;
}

int kc_ctap2_selection(struct kc_dev *d)
{
    return simple_command(d, KC_CTAP2_SELECTION);
}

int kc_ctap2_reset(struct kc_dev *d)
{
    return simple_command(d, KC_CTAP2_RESET);
}
