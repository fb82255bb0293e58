/* authenticatorConfig (0x0D, CTAP 2.1 6.11): enable enterprise attestation,
 * toggle alwaysUv and set the minimum PIN length, authenticated by a
 * pinUvAuthToken with the acfg permission over
 * 32 x 0xff || 0x0d || subCommand || subCommandParams.
 *
 * Return convention as ctaphid/ctap2.h: 0, the card's status (> 0) or a
 * KC_ERR_*. pin may be NULL (a card without a PIN is configured without
 * one); info may be NULL (fetched when a PIN needs it). out, when not NULL,
 * says what was done about PIN/UV auth, also on failure. */
#ifndef KCARD_CTAPHID_CONFIG_H
#define KCARD_CTAPHID_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/ctap2.h"

#define KC_CONFIG_RPIDS_MAX 32 /* minPinLengthRPIDs we send at most */

enum kc_config_subcmd {
    KC_CONFIG_ENABLE_EP = 0x01,
    KC_CONFIG_TOGGLE_ALWAYS_UV = 0x02,
    KC_CONFIG_SET_MIN_PIN_LENGTH = 0x03,
};

/* setMinPINLength's subCommandParams; zero/NULL members are not sent. */
struct kc_min_pin_params {
    size_t new_min_pin_length; /* code points; 0: unchanged */
    const char *const *rp_ids; /* minPinLengthRPIDs */
    size_t n_rp_ids;
    bool force_change_pin;
};

int kc_config_enable_ep(struct kc_dev *d, const struct kc_info *info, const char *pin,
                        struct kc_pin_outcome *out);
int kc_config_toggle_always_uv(struct kc_dev *d, const struct kc_info *info, const char *pin,
                               struct kc_pin_outcome *out);
/* len 0 leaves the minimum as it is (to set only rp ids or force a change). */
int kc_config_set_min_pin_length(struct kc_dev *d, const struct kc_info *info, const char *pin,
                                 size_t len, const char *const *rp_ids, size_t n_rp_ids,
                                 bool force_change, struct kc_pin_outcome *out);

/* Pure: the request CBOR (after the command byte) for subcmd with params
 * (only for setMinPINLength; may be NULL), authenticated with tok (NULL:
 * no pinUvAuthParam). free() *buf. */
int kc_config_encode(int subcmd, const struct kc_min_pin_params *params,
                     const struct kc_pin_token *tok, uint8_t **buf, size_t *len);

#endif
