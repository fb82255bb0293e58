/* authenticatorLargeBlobs (0x0C, CTAP 2.1 6.10) on the platform side: the
 * serialized large-blob array read and written in fragments of
 * maxFragmentLength (maxMsgSize - 64), its trailing LEFT(SHA-256, 16)
 * integrity hash checked, and one credential's blob sealed or opened with
 * its largeBlobKey (AES-256-GCM, associated data "blob" || uint64LE(size)).
 *
 * Blobs are raw DEFLATE streams (RFC 1951), compressed and inflated with
 * zlib (windowBits -15). Reading trusts nothing in the entry: the inflated
 * size must equal origSize, and origSize (which sizes the output buffer)
 * is capped at KC_LARGEBLOB_ORIG_MAX, so a decompression bomb stops at the
 * first byte past either. RFC 1950 (zlib-wrapped) streams, which libfido2
 * wrote before 1.11, are read too. */
#ifndef KCARD_CTAPHID_LARGEBLOB_H
#define KCARD_CTAPHID_LARGEBLOB_H

#include <stddef.h>
#include <stdint.h>

#include "ctaphid/ctap2.h"

#define KC_LARGEBLOB_HASH_LEN 16
#define KC_LARGEBLOB_KEY_LEN 32
#define KC_LARGEBLOB_NONCE_LEN 12
#define KC_LARGEBLOB_TAG_LEN 16
#define KC_LARGEBLOB_READ_MAX (1u << 20) /* refuse arrays larger than this */
/* refuse a blob whose origSize is larger: no card's array (at most
 * READ_MAX) holds more that anyone would inflate on a client */
#define KC_LARGEBLOB_ORIG_MAX (1u << 20)

/* maxFragmentLength for the card: its maxMsgSize (1024 when absent) - 64. */
size_t kc_largeblob_max_fragment(const struct kc_info *info);

/* The message a fragment's pinUvAuthParam covers: 32 x 0xff || 0x0c 0x00 ||
 * uint32LE(offset) || SHA-256(fragment); out holds 70 bytes. */
int kc_largeblob_auth_message(uint64_t offset, const uint8_t *frag, size_t frag_len,
                              uint8_t out[70]);

/* Checks a serialized array: at least 17 bytes, the trailing hash matches
 * (KC_ERR_VERIFY when not) and what precedes it is one CBOR array
 * (KC_ERR_CBOR when not). */
int kc_largeblob_check(const uint8_t *serialized, size_t len);
/* Serializes a CBOR array (its encoded bytes) with its hash appended. */
int kc_largeblob_serialize(const uint8_t *cbor_array, size_t len, uint8_t **out, size_t *out_len);

/* Reads the whole array (fragments of maxFragmentLength) and checks it.
 * *out (malloc'd) receives the CBOR array without the hash. info may be
 * NULL (getInfo is run). KC_ERR_VERIFY: the card's hash is wrong. */
int kc_largeblob_get_array(struct kc_dev *d, const struct kc_info *info, uint8_t **out,
                           size_t *out_len);
/* Writes cbor_array (an encoded CBOR array) with its hash, in fragments,
 * each with a pinUvAuthParam from tok when tok is not NULL (a token with
 * the lbw permission). */
int kc_largeblob_set_array(struct kc_dev *d, const struct kc_info *info,
                           const struct kc_pin_token *tok, const uint8_t *cbor_array, size_t len);

/* Raw DEFLATE (zlib, best compression) of at most KC_LARGEBLOB_ORIG_MAX
 * bytes into *out (malloc'd). */
int kc_largeblob_deflate(const uint8_t *p, size_t len, uint8_t **out, size_t *out_len);
/* Inflates a raw DEFLATE stream (or an RFC 1950 one) that must give
 * exactly orig_size bytes into *out (malloc'd, orig_size bytes). Errors,
 * with why (when not NULL) saying what was wrong: KC_ERR_TOO_LARGE
 * (orig_size above KC_LARGEBLOB_ORIG_MAX, or the stream inflates past
 * it), KC_ERR_VERIFY (it inflates to fewer bytes), KC_ERR_CBOR (corrupt,
 * truncated, or bytes after the final block). */
int kc_largeblob_inflate(const uint8_t *z, size_t zlen, uint64_t orig_size, uint8_t **out,
                         char *why, size_t why_cap);

/* One credential's blob. seal: a map {1: ciphertext, 2: nonce, 3: origSize}
 * of the compressed blob, encoded into *entry (malloc'd). open: searches an
 * encoded CBOR array for the entry key opens and returns its blob
 * (malloc'd); 1 when no entry opens with key, an error from
 * kc_largeblob_inflate (why filled) when the key's entry does not inflate
 * to origSize. */
int kc_largeblob_seal(const uint8_t key[KC_LARGEBLOB_KEY_LEN], const uint8_t *blob, size_t len,
                      uint8_t **entry, size_t *entry_len);
int kc_largeblob_open(const uint8_t *cbor_array, size_t len,
                      const uint8_t key[KC_LARGEBLOB_KEY_LEN], uint8_t **blob, size_t *blob_len,
                      char *why, size_t why_cap);
/* Returns a new encoded array: cbor_array without the entries key
 * decrypts (readable or not; they are never inflated), plus entry (may be
 * NULL: delete only). */
int kc_largeblob_replace(const uint8_t *cbor_array, size_t len,
                         const uint8_t key[KC_LARGEBLOB_KEY_LEN], const uint8_t *entry,
                         size_t entry_len, uint8_t **out, size_t *out_len);

#endif
