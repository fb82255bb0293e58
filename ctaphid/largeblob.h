/* authenticatorLargeBlobs (0x0C, CTAP 2.1 6.10) on the platform side: the
 * serialized large-blob array read and written in fragments of
 * maxFragmentLength (maxMsgSize - 64), its trailing LEFT(SHA-256, 16)
 * integrity hash checked, and one credential's blob sealed or opened with
 * its largeBlobKey (AES-256-GCM, associated data "blob" || uint64LE(size)).
 *
 * Blobs are DEFLATE streams (RFC 1951). kcard writes them as stored
 * (uncompressed) blocks, which every inflater reads, and reads stored
 * blocks only: a blob with Huffman-coded blocks is KC_ERR_UNSUPPORTED. */
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

/* maxFragmentLength for the card: its maxMsgSize (1024 when absent) - 64. */
size_t kc_largeblob_max_fragment(const struct kc_info *info);

/* Request encoders and the get response's decoder (exposed for tests). */
int kc_largeblob_encode_get(uint64_t want, uint64_t offset, uint8_t **buf, size_t *len);
int kc_largeblob_encode_set(const uint8_t *frag, size_t frag_len, uint64_t offset, uint64_t total,
                            const uint8_t *param, size_t param_len, int protocol, uint8_t **buf,
                            size_t *len);
/* {1: bytes}: the fragment copied into out. KC_ERR_CBOR when not that
 * shape, KC_ERR_TOO_LARGE when longer than cap. */
int kc_largeblob_decode_get(const uint8_t *body, size_t len, uint8_t *out, size_t cap,
                            size_t *out_len);
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

/* One credential's blob. seal: a map {1: ciphertext, 2: nonce, 3: origSize}
 * encoded into *entry (malloc'd). open: searches an encoded CBOR array for
 * the entry key opens and returns its blob (malloc'd); KC_ERR_UNSUPPORTED
 * for a compressed blob, 1 when no entry opens with key. */
int kc_largeblob_seal(const uint8_t key[KC_LARGEBLOB_KEY_LEN], const uint8_t *blob, size_t len,
                      uint8_t **entry, size_t *entry_len);
int kc_largeblob_open(const uint8_t *cbor_array, size_t len,
                      const uint8_t key[KC_LARGEBLOB_KEY_LEN], uint8_t **blob, size_t *blob_len);
/* Returns a new encoded array: cbor_array without the entries key opens,
 * plus entry (may be NULL: delete only). */
int kc_largeblob_replace(const uint8_t *cbor_array, size_t len,
                         const uint8_t key[KC_LARGEBLOB_KEY_LEN], const uint8_t *entry,
                         size_t entry_len, uint8_t **out, size_t *out_len);

#endif
