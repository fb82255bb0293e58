/* libFuzzer target: one CTAPHID_CBOR message (command byte + CBOR request)
 * into the virtual card's core. A card without a state file, presence always
 * given. The card lives across inputs, so sequences (PIN, then tokens;
 * getAssertion, then getNextAssertion) are reachable too. The input's length
 * (in steps of 32 bytes) picks the personality the card plays, so every personality's getInfo and
 * PIN/UV policy is fuzzed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "harness/vcard/card.h"
#include "harness/vcard/personality.h"
#include "tests/fuzz/vcard_fuzz_card.h"

static enum vc_up_result approve(void *ctx)
{
    (void)ctx;
    return VC_UP_APPROVED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t resp[8192];
    size_t resp_len = 0;
    struct vc_card *c = fuzz_card();
    const struct vc_personality *p = vc_personality_at((size / 32) % vc_personality_count());

    if (p != vc_card_personality(c) && vc_card_set_personality(c, p, NULL, 0) != 0)
        abort();
    if (vc_card_cbor(c, data, size, resp, sizeof(resp), &resp_len, approve, NULL) != 0)
        abort(); /* the buffer is large enough for any response */
    if (resp_len < 1 || resp_len > sizeof(resp))
        abort();
    if (resp[0] != 0 && resp_len != 1)
        abort(); /* an error status carries no body */
    return 0;
}
