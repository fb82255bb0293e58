/* HID report descriptor parser on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/hid_desc.h"
#include "ctaphid/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kc_hid_desc d;

    if (size > KC_HID_DESC_MAX)
        return 0;
    if (kc_hid_desc_parse(data, size, &d) == KC_OK) {
        if (d.in_report_len == 0 || d.out_report_len == 0)
            __builtin_trap();
        (void)kc_hid_desc_is_fido(&d);
    }
    return 0;
}
