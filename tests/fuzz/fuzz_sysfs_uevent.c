/* libFuzzer: a HID device's sysfs uevent file (KEY=VALUE lines) as
 * kc_hid_uevent_parse reads it. The strings must come out NUL-terminated
 * within their fields, and HID_ID must be all-or-nothing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/hid_enum.h"
#include "ctaphid/status.h"

static void check_str(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kc_hid_uevent ue;
    char *copy = malloc(size > 0 ? size : 1);

    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size); /* exactly size bytes: reads past it trap */
    if (kc_hid_uevent_parse(copy, size, &ue) != KC_OK)
        abort();
    check_str(ue.name, sizeof(ue.name));
    check_str(ue.uniq, sizeof(ue.uniq));
    check_str(ue.phys, sizeof(ue.phys));
    check_str(ue.driver, sizeof(ue.driver));
    if (!ue.have_id && (ue.bus != 0 || ue.vid != 0 || ue.pid != 0))
        abort();
    (void)kc_hid_bus_name(ue.bus);
    free(copy);
    return 0;
}
