/* COSE keys (RFC 8152 / 9053) as CTAP uses them: EC2 P-256 (ES256, and
 * ECDH-ES+HKDF-256 = -25 for key agreement), OKP Ed25519 (EdDSA), RSA (RS256),
 * decoded into OpenSSL EVP keys and encoded from them. */
#ifndef KCARD_CTAPHID_COSE_H
#define KCARD_CTAPHID_COSE_H

#include <stddef.h>
#include <stdint.h>

#include <cbor.h>
#include <openssl/evp.h>

#define KC_COSE_ECDH_ES_HKDF_256 (-25)
#define KC_COSE_KTY_OKP 1
#define KC_COSE_KTY_EC2 2
#define KC_COSE_KTY_RSA 3
#define KC_COSE_CRV_P256 1
#define KC_COSE_CRV_ED25519 6

struct kc_cose_key {
    int kty;
    int alg;
    int crv;        /* 0 for RSA */
    EVP_PKEY *pkey; /* owned */
};

/* Decode a COSE_Key map. Rejects an alg that does not match the key type and
 * curve, missing or wrongly sized coordinates, points not on the curve.
 * Returns KC_OK or KC_ERR_CBOR / KC_ERR_UNSUPPORTED. */
int kc_cose_decode_item(const cbor_item_t *item, struct kc_cose_key *out);
/* Same from bytes; *consumed (may be NULL) receives how many bytes the map
 * took, since in authData the key may be followed by extensions. */
int kc_cose_decode(const uint8_t *buf, size_t len, struct kc_cose_key *out, size_t *consumed);
/* Encode an EVP public key as a COSE_Key with the given alg. */
int kc_cose_encode_item(EVP_PKEY *pkey, int alg, cbor_item_t **out);
int kc_cose_encode(EVP_PKEY *pkey, int alg, uint8_t **buf, size_t *len); /* free() buf */
void kc_cose_key_free(struct kc_cose_key *k);
const char *kc_cose_alg_name(int alg); /* "ES256", "EdDSA", "RS256", "ECDH-ES+HKDF-256" */

/* Additions. */

/* As kc_cose_decode_item, and on failure a sentence saying what was wrong
 * (e.g. "alg -8 (EdDSA) does not match kty 2") in why (may be NULL). */
int kc_cose_decode_item_reason(const cbor_item_t *item, struct kc_cose_key *out, char *why,
                               size_t whylen);
int kc_cose_decode_reason(const uint8_t *buf, size_t len, struct kc_cose_key *out, size_t *consumed,
                          char *why, size_t whylen);
/* Wrap an existing EVP key (a reference is taken) after checking that alg fits
 * its type and curve. */
int kc_cose_key_from_pkey(EVP_PKEY *pkey, int alg, struct kc_cose_key *out);
/* Is alg one this library can verify signatures with (ES256, EdDSA, RS256)? */
int kc_cose_alg_is_signature(int alg);

#endif
