/* libFuzzer: authenticatorData parser. */
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/authdata.h"
#include "ctaphid/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kc_authdata ad;

    if (kc_authdata_parse(data, size, &ad) == KC_OK) {
        const uint8_t *end = data + size;
        if ((ad.cred_id != NULL && ad.cred_id + ad.cred_id_len > end) ||
            (ad.cose_key != NULL && ad.cose_key + ad.cose_key_len > end) ||
            (ad.extensions != NULL && ad.extensions + ad.extensions_len != end))
            __builtin_trap();
    }
    return 0;
}
