/* Small OpenSSL wrappers the services share: random tokens, SHA-256, HMAC,
 * HKDF and constant-time comparison (hex, base64url and random bytes are
 * util/'s: kcu_hex_*, kcu_b64url_*, kcu_random). */
#ifndef KCARD_SERVICES_CRYPTO_H
#define KCARD_SERVICES_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KSVC_SHA256_LEN 32

/* nbytes random bytes as base64url into out (cap bytes); 0 or -1. */
int ksvc_random_b64url(size_t nbytes, char *out, size_t cap);

int ksvc_sha256(const void *data, size_t len, uint8_t out[KSVC_SHA256_LEN]);
int ksvc_hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t len,
                     uint8_t out[KSVC_SHA256_LEN]);
int ksvc_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const char *salt, const char *info,
                     uint8_t *out, size_t out_len);

/* Constant-time equality of two equal-length buffers. */
bool ksvc_ct_equal(const void *a, const void *b, size_t len);

#endif
