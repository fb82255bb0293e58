/* Internal to libctaphid's CTAP2 layer: one call that sends a command with a
 * CBOR parameter map and returns the response body. Not a public API. */
#ifndef KCARD_CTAPHID_CTAP2_INT_H
#define KCARD_CTAPHID_CTAP2_INT_H

#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

#include "ctaphid/ctap2.h"

/* params (encoded CBOR map) may be NULL. On status 0, *body is a malloc'd copy of the bytes
 * after the status byte (NULL when there are none) and *body_len its length.
 * Returns 0, the card's status byte (> 0) or a KC_ERR_*. */
int kc_ctap2_call(struct kc_dev *d, uint8_t cmd, const uint8_t *params, size_t params_len,
                  uint8_t **body, size_t *body_len);

#endif
