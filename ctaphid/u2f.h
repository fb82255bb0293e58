/* CTAP1/U2F over CTAPHID_MSG: VERSION, REGISTER and AUTHENTICATE as
 * extended-length APDUs, responses parsed with every length checked,
 * signatures verified, status words kept for the caller to name. */
#ifndef KCARD_CTAPHID_U2F_H
#define KCARD_CTAPHID_U2F_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "ctaphid/io.h"

#define KC_U2F_CHAL_LEN 32
#define KC_U2F_APP_LEN 32
#define KC_U2F_PUBKEY_LEN 65 /* uncompressed P-256 point */
#define KC_U2F_KH_MAX 255
#define KC_U2F_CERT_MAX 4096
#define KC_U2F_SIG_MAX 80 /* DER ECDSA P-256 is at most 72 */
#define KC_U2F_REGISTER_ID 0x05

struct kc_u2f_register {
    uint16_t sw; /* status word of the response (0x9000 on success) */
    uint8_t pubkey[KC_U2F_PUBKEY_LEN];
    uint8_t key_handle[KC_U2F_KH_MAX];
    size_t key_handle_len;
    uint8_t cert[KC_U2F_CERT_MAX]; /* attestation certificate, DER */
    size_t cert_len;
    uint8_t sig[KC_U2F_SIG_MAX];
    size_t sig_len;
    char reason[160]; /* why parsing or verification failed, "ok" otherwise */
};

struct kc_u2f_auth {
    uint16_t sw;
    uint8_t user_presence; /* bit 0: user present */
    uint32_t counter;
    uint8_t sig[KC_U2F_SIG_MAX];
    size_t sig_len;
    char reason[160];
};

/* Extended-length APDU: CLA 00, INS, P1, P2, 00, Lc (2 bytes), data,
 * Le (2 bytes, 00 00). Without data: CLA INS P1 P2 00 00 00.
 * Returns KC_OK, KC_ERR_TOO_LARGE (cap too small / data > 65535). */
int kc_u2f_apdu_encode(uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *data, size_t len,
                       uint8_t *out, size_t cap, size_t *out_len);
/* Split the trailing status word off a response: *body_len = len - 2.
 * KC_ERR_PROTOCOL when shorter than 2 bytes. */
int kc_u2f_split_sw(const uint8_t *resp, size_t len, uint16_t *sw, size_t *body_len);

/* Pure parsers over a response body (status word already removed).
 * KC_OK or KC_ERR_PROTOCOL with out->reason set. */
int kc_u2f_register_parse(const uint8_t *body, size_t len, struct kc_u2f_register *out);
int kc_u2f_authenticate_parse(const uint8_t *body, size_t len, struct kc_u2f_auth *out);

/* Signature checks. Register: the attestation certificate's key signs
 * 0x00 || app || chal || keyHandle || pubkey. Authenticate: the registered
 * key signs app || up || counter || chal. KC_OK or KC_ERR_VERIFY. */
int kc_u2f_register_verify(struct kc_u2f_register *reg, const uint8_t chal[KC_U2F_CHAL_LEN],
                           const uint8_t app[KC_U2F_APP_LEN]);
int kc_u2f_authenticate_verify(struct kc_u2f_auth *auth, const uint8_t chal[KC_U2F_CHAL_LEN],
                               const uint8_t app[KC_U2F_APP_LEN],
                               const uint8_t pubkey[KC_U2F_PUBKEY_LEN]);

/* An EVP key from an uncompressed P-256 point (checked on the curve). */
int kc_u2f_pubkey_evp(const uint8_t pubkey[KC_U2F_PUBKEY_LEN], EVP_PKEY **out);

/* Commands over CTAPHID_MSG. A status word other than 0x9000 gives
 * KC_ERR_U2F with the word in *sw / reg->sw / auth->sw (name it with
 * kc_u2f_sw_name); transport and framing errors pass through. */
int kc_u2f_version(struct kc_dev *d, char *version, size_t cap, uint16_t *sw);
/* Expects "U2F_V2": KC_OK, or KC_ERR_UNSUPPORTED naming what it got. */
int kc_u2f_check_version(struct kc_dev *d, char *version, size_t cap, uint16_t *sw);
int kc_u2f_register(struct kc_dev *d, const uint8_t chal[KC_U2F_CHAL_LEN],
                    const uint8_t app[KC_U2F_APP_LEN], struct kc_u2f_register *reg);
/* mode: KC_U2F_AUTH_CHECK_ONLY, KC_U2F_AUTH_ENFORCE or KC_U2F_AUTH_DONT_ENFORCE.
 * pubkey may be NULL to skip verification (e.g. check-only). */
int kc_u2f_authenticate(struct kc_dev *d, uint8_t mode, const uint8_t chal[KC_U2F_CHAL_LEN],
                        const uint8_t app[KC_U2F_APP_LEN], const uint8_t *key_handle,
                        size_t key_handle_len, const uint8_t *pubkey, struct kc_u2f_auth *auth);

/* The same, repeated every poll_ms while the card answers
 * CONDITIONS_NOT_SATISFIED (touch needed) until timeout_ms has passed; then
 * KC_ERR_TIMEOUT with the last status word kept. */
int kc_u2f_register_wait(struct kc_dev *d, const uint8_t chal[KC_U2F_CHAL_LEN],
                         const uint8_t app[KC_U2F_APP_LEN], struct kc_u2f_register *reg,
                         int timeout_ms, int poll_ms);
int kc_u2f_authenticate_wait(struct kc_dev *d, uint8_t mode, const uint8_t chal[KC_U2F_CHAL_LEN],
                             const uint8_t app[KC_U2F_APP_LEN], const uint8_t *key_handle,
                             size_t key_handle_len, const uint8_t *pubkey, struct kc_u2f_auth *auth,
                             int timeout_ms, int poll_ms);

#endif
