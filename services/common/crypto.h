/* Small OpenSSL wrappers the services share: random tokens, SHA-256, HMAC,
 * HKDF, base64url and hex, and constant-time comparison. */
#ifndef KCARD_SERVICES_CRYPTO_H
#define KCARD_SERVICES_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KSVC_SHA256_LEN 32

/* base64url without padding of len bytes; out needs ceil(4*len/3)+1 bytes.
 * Returns the length written (without the NUL) or -1 when out is too small. */
int ksvc_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap);
/* Decodes unpadded base64url; returns the byte count or -1 (bad character,
 * bad length, or out too small). */
int ksvc_b64url_decode(const char *in, uint8_t *out, size_t cap);

/* Lower-case hex; out needs 2*len+1 bytes. */
void ksvc_hex(const uint8_t *in, size_t len, char *out);
/* Strict lower- or upper-case hex of exactly 2*len characters. */
bool ksvc_unhex(const char *in, uint8_t *out, size_t len);

int ksvc_random(uint8_t *out, size_t len); /* 0 or -1 */
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
