/* libFuzzer: authenticatorGetAssertion / GetNextAssertion response. */
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/ctap2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kc_assertion a;

    if (kc_assertion_decode(data, size, &a) == KC_OK)
        kc_assertion_free(&a);
    return 0;
}
