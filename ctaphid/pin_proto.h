/* PIN/UV auth protocols 1 and 2 (CTAP 2.1, 6.5.6 and 6.5.7): the primitives
 * both sides of ClientPIN need. The host library (pin.c) and the virtual card
 * use the same code. All crypto through OpenSSL EVP; secrets are zeroed. */
#ifndef KCARD_CTAPHID_PIN_PROTO_H
#define KCARD_CTAPHID_PIN_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define KC_PINP_SHARED_MAX 64 /* protocol 2: HMAC key (32) || AES key (32) */
#define KC_PINP_AUTH_MAX 32

/* A fresh P-256 key pair for ECDH. */
int kc_pinp_keypair_new(EVP_PKEY **out);
/* ECDH with the peer's P-256 public key, then the protocol's KDF:
 * protocol 1: SHA-256(Z), 32 bytes; protocol 2: HKDF-SHA-256 with salt of
 * 32 zero bytes, info "CTAP2 HMAC key" || "CTAP2 AES key", 64 bytes. */
int kc_pinp_shared_secret(int protocol, EVP_PKEY *mine, EVP_PKEY *peer, uint8_t *shared,
                          size_t *shared_len);
/* protocol 1: AES-256-CBC with zero IV, no padding, len multiple of 16;
 * protocol 2: random 16-byte IV prepended to the ciphertext. */
int kc_pinp_encrypt(int protocol, const uint8_t *shared, size_t shared_len, const uint8_t *pt,
                    size_t len, uint8_t *out, size_t cap, size_t *out_len);
/* Protocol 2 encrypt with a caller-chosen IV: for known-answer tests only;
 * kc_pinp_encrypt draws a fresh random IV. */
int kc_pinp2_encrypt_iv(const uint8_t *shared, size_t shared_len, const uint8_t iv[16],
                        const uint8_t *pt, size_t len, uint8_t *out, size_t cap, size_t *out_len);
int kc_pinp_decrypt(int protocol, const uint8_t *shared, size_t shared_len, const uint8_t *ct,
                    size_t len, uint8_t *out, size_t cap, size_t *out_len);
/* HMAC-SHA-256 with the protocol's key; protocol 1 truncates to 16 bytes.
 * key is the shared secret (protocol 2 uses its first 32 bytes) or a
 * pinUvAuthToken. */
int kc_pinp_authenticate(int protocol, const uint8_t *key, size_t key_len, const uint8_t *msg,
                         size_t len, uint8_t *out, size_t *out_len);
/* Constant-time check of an authenticate() result. KC_OK or KC_ERR_VERIFY. */
int kc_pinp_verify(int protocol, const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                   const uint8_t *sig, size_t sig_len);

#endif
