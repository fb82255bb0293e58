/* libFuzzer: authenticatorClientPIN response decoder. */
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/pin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kc_pin_response r;

    if (kc_pin_response_decode(data, size, &r) == KC_OK)
        kc_pin_response_free(&r);
    return 0;
}
