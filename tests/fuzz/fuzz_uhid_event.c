/* UHID event decoding (harness/vcard/uhid.c) on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "harness/vcard/uhid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vc_uhid_event ev;

    if (vc_uhid_parse_event(data, size, &ev) != 0)
        return 0;
    if (ev.kind > VC_UHID_EV_OTHER)
        __builtin_trap();
    /* an accepted output report is the 64 bytes after the report id */
    if (ev.kind == VC_UHID_EV_OUTPUT &&
        (size < 4 + 1 + VC_UHID_REPORT_LEN || memcmp(ev.report, data + 5, VC_UHID_REPORT_LEN) != 0))
        __builtin_trap();
    return 0;
}
