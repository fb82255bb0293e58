/* Internal to libctaphid's commands: the request pieces makeCredential
 * (cred.c, where they are defined) shares with getAssertion (assert.c).
 * Not a public API. */
#ifndef KCARD_CTAPHID_CRED_INT_H
#define KCARD_CTAPHID_CRED_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

#include "ctaphid/ctap2.h"

/* Merge helper extensions into a caller's pre-encoded extension map (which
 * may be NULL); *out is NULL when there is nothing to send. */
int kc_ctap2_extensions(const uint8_t *raw, size_t raw_len, int cred_protect, bool hmac_secret,
                        cbor_item_t **out);

/* Request pieces shared by makeCredential and getAssertion. */
int kc_ctap2_check_cred_list(const struct kc_cred_id *list, size_t n);
cbor_item_t *kc_ctap2_cred_list(const struct kc_cred_id *list, size_t n);
/* the options map with only the non-default entries, NULL when empty */
int kc_ctap2_options(bool rk, bool up_false, bool uv, cbor_item_t **out);
/* The tail both requests share: extensions, options, pinUvAuthParam and
 * pinUvAuthProtocol under consecutive keys from first_key (each only when
 * present), then the map serialized into *buf. Takes *ext and *opts (set to
 * NULL); the map stays the caller's. */
int kc_ctap2_request_tail(cbor_item_t *map, int first_key, cbor_item_t **ext, cbor_item_t **opts,
                          const uint8_t *pin_uv_auth_param, size_t param_len, int pin_protocol,
                          uint8_t **buf, size_t *len);

#endif
