/* libFuzzer: authenticatorGetInfo response decoder. */
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/ctap2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kc_info info;
    char buf[64];

    if (kc_info_decode(data, size, &info) == KC_OK) {
        (void)kc_info_option(&info, "clientPin");
        kc_info_pin_protocols_str(&info, buf, sizeof(buf));
    }
    return 0;
}
