/* libFuzzer target: the CBOR body of an authenticatorConfig (0x0D) request
 * into the virtual card's core, a ctap2.1-full card without a PIN, so every
 * subcommand is reached without a token (the acfg checks are covered by
 * tests/unit/harness/vcard/test_config.c). The settings go back to factory before
 * each input: a raised minimum or alwaysUv turned on would otherwise close
 * the unauthenticated path for every input after it. Checks that the reply
 * is a status byte alone and that the settings stay in bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness/vcard/card_int.h"

static struct vc_card *card(void)
{
    static struct vc_card *c;
    struct vc_config cfg;
    char err[256];

    if (c == NULL) {
        memset(&cfg, 0, sizeof(cfg));
        cfg.attestation = VC_ATT_NONE;
        cfg.reset_window_ms = 10000;
        cfg.personality = vc_personality_find("ctap2.1-full");
        if (cfg.personality == NULL || (c = vc_card_new(&cfg, err, sizeof(err))) == NULL)
            abort();
    }
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t req[8192], resp[256];
    struct vc_card *c = card();
    size_t resp_len = 0;

    if (size + 1 > sizeof(req))
        return 0;
    vc_config_reset(c);
    c->force_pin_change = false;
    req[0] = VC_CTAP2_CONFIG;
    if (size > 0)
        memcpy(req + 1, data, size);
    if (vc_card_cbor(c, req, size + 1, resp, sizeof(resp), &resp_len, NULL, NULL) != 0)
        abort();
    if (resp_len != 1)
        abort(); /* authenticatorConfig answers a status byte, never a body */
    if (vc_min_pin_len(c) < VC_PIN_MIN_LEN || vc_min_pin_len(c) > VC_PIN_MAX_LEN ||
        c->n_min_pin_rpids > VC_MIN_PIN_RPIDS_MAX)
        abort();
    for (size_t i = 0; i < c->n_min_pin_rpids; i++)
        if (memchr(c->min_pin_rpids[i], '\0', sizeof(c->min_pin_rpids[i])) == NULL)
            abort();
    return 0;
}
