/* The usbmon capture importer on arbitrary bytes: the packet parser with
 * both link types on the raw input, then the whole import (libpcap reading
 * pcap or pcapng from memory, device selection, trace lines). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ctaphid/usbmon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kc_usbmon_options o = {-1, -1};
    struct kc_usbmon_summary s;
    struct kc_usbmon_pkt p;
    const uint8_t *rep;
    size_t len;
    char why[160], err[512];
    FILE *in, *out;

    if (size > 262144)
        return 0;
    for (int lt = 0; lt < 2; lt++) {
        int linktype = lt == 0 ? KC_LINKTYPE_USB_LINUX : KC_LINKTYPE_USB_LINUX_MMAPPED;
        if (kc_usbmon_parse(linktype, data, size, size, &p, why, sizeof(why)) == 0)
            (void)kc_usbmon_report(&p, &rep, &len, why, sizeof(why));
    }
    if (size == 0 || (in = fmemopen((void *)data, size, "rb")) == NULL)
        return 0;
    if ((out = fopen("/dev/null", "w")) == NULL) {
        fclose(in);
        return 0;
    }
    (void)kc_usbmon_import_fp(in, &o, out, &s, err, sizeof(err));
    fclose(out);
    return 0;
}
