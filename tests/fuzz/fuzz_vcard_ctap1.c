/* libFuzzer target: one CTAPHID_MSG APDU into the virtual card's core
 * (VERSION, REGISTER, AUTHENTICATE, short and extended lengths). The first
 * input byte picks whether presence is given, so both paths are explored. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "harness/vcard/card.h"
#include "tests/fuzz/vcard_fuzz_card.h"

static enum vc_up_result presence(void *ctx)
{
    return *(const uint8_t *)ctx & 1 ? VC_UP_DENIED : VC_UP_APPROVED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t resp[4096];
    size_t resp_len = 0;
    uint8_t mode = size > 0 ? data[0] : 0;

    if (size > 0) {
        data++;
        size--;
    }
    if (vc_card_msg(fuzz_card(), data, size, resp, sizeof(resp), &resp_len, presence, &mode) != 0)
        abort();
    if (resp_len < 2 || resp_len > sizeof(resp))
        abort();
    return 0;
}
