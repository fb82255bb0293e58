/* libFuzzer: authenticatorMakeCredential response (attestation object). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ctaphid/ctap2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kc_attestation att;

    if (kc_attestation_decode(data, size, &att) == KC_OK) {
        /* the parsed view must lie inside the authData copy */
        if (att.ad.cred_id < att.auth_data ||
            att.ad.cred_id + att.ad.cred_id_len > att.auth_data + att.auth_data_len)
            __builtin_trap();
        kc_attestation_free(&att);
    }
    return 0;
}
