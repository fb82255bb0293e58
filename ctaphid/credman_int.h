/* authenticatorCredentialManagement's pure halves, test hooks: the request
 * encoder and the reply decoder, which the virtual card's tests and the
 * fuzzer drive without a card. Included by ctaphid/credman.c and by tests
 * only; not installed, not exported by libctaphid.so. */
#ifndef KCARD_CTAPHID_CREDMAN_INT_H
#define KCARD_CTAPHID_CREDMAN_INT_H

#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

#include "ctaphid/credman.h"

/* A decoded reply (pure). Which fields must be
 * present depends on sub: metadata 0x01/0x02, RPs 0x03/0x04 (+0x05 for
 * begin), credentials 0x06/0x07/0x08 (+0x09 for begin). */
struct kc_credman_reply {
    struct kc_credman_metadata meta;
    struct kc_credman_rp rp;
    struct kc_credman_cred cred;
    uint64_t total; /* totalRPs / totalCredentials, on begin */
};
int kc_credman_reply_decode(uint8_t sub, const uint8_t *cbor, size_t len,
                            struct kc_credman_reply *r);
void kc_credman_reply_free(struct kc_credman_reply *r);

/* The request body (after the command byte); pinUvAuthParam computed from
 * tok when tok is not NULL. Pure. free() *buf. params may be NULL. */
int kc_credman_encode(uint8_t sub, const cbor_item_t *params, const struct kc_pin_token *tok,
                      uint8_t **buf, size_t *len);

#endif
