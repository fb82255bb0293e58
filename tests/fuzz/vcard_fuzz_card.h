/* The card the request-decoder fuzzers (fuzz_vcard_ctap1.c, fuzz_vcard_ctap2.c)
 * feed: in memory, packed batch attestation, CTAP1 on. Created once and kept
 * across inputs, so sequences (PIN, then tokens; register, then authenticate)
 * are reachable too. */
#ifndef KCARD_TESTS_FUZZ_VCARD_FUZZ_CARD_H
#define KCARD_TESTS_FUZZ_VCARD_FUZZ_CARD_H

#include <stdlib.h>

#include "harness/vcard/card.h"

static struct vc_card *fuzz_card(void)
{
    static struct vc_card *c;
    struct vc_config cfg = {0};
    char err[256];

    if (c == NULL) {
        cfg.attestation = VC_ATT_PACKED_BATCH;
        cfg.ctap1 = true;
        cfg.reset_window_ms = 10000;
        if ((c = vc_card_new(&cfg, err, sizeof(err))) == NULL)
            abort();
    }
    return c;
}

#endif
