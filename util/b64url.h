/* base64url (RFC 4648 section 5) without padding: tokens, session and
 * credential ids. Decoding is strict unless asked to be lenient. */
#ifndef KCARD_UTIL_B64URL_H
#define KCARD_UTIL_B64URL_H

#include <stddef.h>
#include <stdint.h>

/* kcu_b64url_decode* flag: also take '=' padding (at most two) and the
 * standard alphabet's '+' and '/' (what a person may paste). */
#define KCU_B64URL_LENIENT 1u

/* The length of the unpadded encoding of len bytes (no NUL). */
size_t kcu_b64url_encoded_len(size_t len);

/* Encodes in[0..len) without padding into out (cap bytes, NUL-terminated):
 * the length written (without the NUL), or -1 when cap is too small. */
int kcu_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap);
/* The same into a malloc'd string; NULL when out of memory. */
char *kcu_b64url_encode_alloc(const uint8_t *in, size_t len);

/* Decodes s[0..slen) into out (cap bytes): 0 with *out_len set, or -1 with
 * err (when given) naming the problem: a character outside the alphabet and
 * where, padding (unless lenient) or padding inside, a length no encoding
 * has (4n+1), or more bytes than cap. Empty text decodes to 0 bytes. Unused
 * low bits of the last character are ignored, as OpenSSL's decoder does. */
int kcu_b64url_decode(const char *s, size_t slen, unsigned flags, uint8_t *out, size_t cap,
                      size_t *out_len, char *err, size_t errlen);

/* Decodes the NUL-terminated s, of 1..max_bytes bytes, into a malloc'd
 * buffer (*out, *out_len): 0, or -1 with err (empty text is an error). */
int kcu_b64url_decode_alloc(const char *s, size_t max_bytes, unsigned flags, uint8_t **out,
                            size_t *out_len, char *err, size_t errlen);

#endif
