/* authenticatorLargeBlobs' pure halves, test hooks: the request encoders
 * and the get response's decoder, which tests and the fuzzer drive without
 * a card. Included by ctaphid/largeblob.c and by tests only; not installed,
 * not exported by libctaphid.so. */
#ifndef KCARD_CTAPHID_LARGEBLOB_INT_H
#define KCARD_CTAPHID_LARGEBLOB_INT_H

#include <stddef.h>
#include <stdint.h>

#include "ctaphid/largeblob.h"

/* Request encoders and the get response's decoder. */
int kc_largeblob_encode_get(uint64_t want, uint64_t offset, uint8_t **buf, size_t *len);
int kc_largeblob_encode_set(const uint8_t *frag, size_t frag_len, uint64_t offset, uint64_t total,
                            const uint8_t *param, size_t param_len, int protocol, uint8_t **buf,
                            size_t *len);
/* {1: bytes}: the fragment copied into out. KC_ERR_CBOR when not that
 * shape, KC_ERR_TOO_LARGE when longer than cap. */
int kc_largeblob_decode_get(const uint8_t *body, size_t len, uint8_t *out, size_t cap,
                            size_t *out_len);

#endif
