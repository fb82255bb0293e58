/* WebAuthn verification the tools and the services share: attestation
 * statements (packed with x5c or self, fido-u2f, none) and assertions
 * (signature over authData || clientDataHash, rpIdHash, UP/UV, signCount).
 *
 * Trust in an attestation certificate (whose batch it is, which roots to
 * accept) is the caller's policy; this verifies the statement itself. */
#ifndef KCARD_CTAPHID_VERIFY_H
#define KCARD_CTAPHID_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>
#include <openssl/evp.h>

#include "ctaphid/authdata.h"
#include "ctaphid/cose.h"

#define KC_CLIENT_DATA_HASH_LEN 32
#define KC_VERIFY_REASON_MAX 256
#define KC_VERIFY_SUBJECT_MAX 256

enum kc_att_type {
    KC_ATT_NONE = 0,  /* fmt "none": nothing attested */
    KC_ATT_BASIC = 1, /* signed by an attestation certificate (x5c) */
    KC_ATT_SELF = 2,  /* packed, signed by the credential key itself */
};
const char *kc_att_type_name(enum kc_att_type t); /* "none", "basic", "self" */

struct kc_verify_result {
    char reason[KC_VERIFY_REASON_MAX]; /* "ok", or why verification failed */
    uint8_t flags;                     /* authData flags (KC_AD_*) */
    uint32_t sign_count;
    /* attestation only */
    enum kc_att_type att_type;
    uint8_t aaguid[KC_AAGUID_LEN];
    uint8_t cred_id[KC_CRED_ID_MAX];
    size_t cred_id_len;
    struct kc_cose_key cred_key;              /* owned: kc_verify_result_free() */
    char cert_subject[KC_VERIFY_SUBJECT_MAX]; /* leaf certificate (RFC 2253), "" if none */
};
void kc_verify_result_init(struct kc_verify_result *r);
void kc_verify_result_free(struct kc_verify_result *r);

/* Verify an attestation statement. att_stmt_cbor is the encoded attStmt map.
 * Returns KC_OK (out filled), KC_ERR_VERIFY (a check failed), KC_ERR_CBOR
 * (malformed authData or attStmt), KC_ERR_UNSUPPORTED (unknown fmt or key),
 * KC_ERR_INVALID_ARG; out->reason always says why. */
int kc_verify_attestation(const char *fmt, const uint8_t *auth_data, size_t auth_data_len,
                          const uint8_t *att_stmt_cbor, size_t att_stmt_len,
                          const uint8_t client_data_hash[KC_CLIENT_DATA_HASH_LEN],
                          const char *expected_rp_id, struct kc_verify_result *out);
/* The same with attStmt already decoded (as a makeCredential response has it). */
int kc_verify_attestation_item(const char *fmt, const uint8_t *auth_data, size_t auth_data_len,
                               const cbor_item_t *att_stmt,
                               const uint8_t client_data_hash[KC_CLIENT_DATA_HASH_LEN],
                               const char *expected_rp_id, struct kc_verify_result *out);

/* Verify an assertion made with the credential key `key`: the signature over
 * authData || clientDataHash, rpIdHash == SHA-256(expected_rp_id), UP and UV
 * when required, and the signature counter: when either prev_sign_count or
 * the new count is non-zero the new one must be greater. new_sign_count (may
 * be NULL) receives the counter from authData once the other checks pass.
 * out may be NULL; when given it receives the reason, flags and counter
 * (cred fields untouched). Returns KC_OK, KC_ERR_VERIFY, KC_ERR_CBOR or
 * KC_ERR_INVALID_ARG. */
int kc_verify_assertion(const struct kc_cose_key *key, const uint8_t *auth_data,
                        size_t auth_data_len, const uint8_t *sig, size_t sig_len,
                        const uint8_t client_data_hash[KC_CLIENT_DATA_HASH_LEN],
                        const char *expected_rp_id, bool require_up, bool require_uv,
                        uint32_t prev_sign_count, uint32_t *new_sign_count,
                        struct kc_verify_result *out);
/* The same with an EVP key and its COSE alg. */
int kc_verify_assertion_pkey(EVP_PKEY *pkey, int alg, const uint8_t *auth_data,
                             size_t auth_data_len, const uint8_t *sig, size_t sig_len,
                             const uint8_t client_data_hash[KC_CLIENT_DATA_HASH_LEN],
                             const char *expected_rp_id, bool require_up, bool require_uv,
                             uint32_t prev_sign_count, uint32_t *new_sign_count,
                             struct kc_verify_result *out);

/* One signature check: ES256 (DER ECDSA over SHA-256), EdDSA (raw 64-byte
 * Ed25519 over msg), RS256 (PKCS#1 v1.5, SHA-256). The key must fit alg.
 * Returns KC_OK, KC_ERR_VERIFY or KC_ERR_INVALID_ARG. */
int kc_verify_signature(EVP_PKEY *pkey, int alg, const uint8_t *msg, size_t msg_len,
                        const uint8_t *sig, size_t sig_len);

/* SHA-256 helper (OpenSSL EVP). Returns KC_OK or KC_ERR_CRYPTO. */
int kc_sha256(const uint8_t *data, size_t len, uint8_t out[32]);

#endif
