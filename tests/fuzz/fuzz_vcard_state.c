/* libFuzzer target: the virtual card's state file (--state FILE), loaded by
 * vc_card_new. The input is served from a memfd through /proc/self/fd, so
 * nothing touches the disk; a file that loads must give a working card, one
 * that does not must give a message naming the file. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness/vcard/card.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t get_info[] = {0x04};
    struct vc_config cfg;
    struct vc_card *c;
    char path[64], err[512];
    uint8_t resp[2048];
    size_t resp_len = 0;
    int fd = memfd_create("vcard-state", MFD_CLOEXEC);

    if (fd < 0)
        abort();
    if (size > 0 && write(fd, data, size) != (ssize_t)size)
        abort();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    memset(&cfg, 0, sizeof(cfg));
    cfg.attestation = VC_ATT_PACKED_BATCH;
    cfg.ctap1 = true;
    cfg.state_path = path;
    c = vc_card_new(&cfg, err, sizeof(err));
    if (c == NULL) {
        if (strstr(err, path) == NULL)
            abort(); /* every refusal names the file */
    } else {
        if (vc_card_cbor(c, get_info, sizeof(get_info), resp, sizeof(resp), &resp_len, NULL,
                         NULL) != 0 ||
            resp_len < 2 || resp[0] != 0)
            abort(); /* a card that loaded answers getInfo */
        vc_card_free(c);
    }
    close(fd);
    return 0;
}
