/* libFuzzer target: authenticatorCredentialManagement (0x0A) requests into
 * the virtual card's core with a pinUvAuthParam that verifies, so every
 * subcommand's parameter handling is reached (fuzz_vcard_ctap2.c reaches
 * only the unauthenticated paths). A ctap2.1-full card with a PIN and a cm
 * token; resident credentials are topped up to three before each input.
 * Input: byte 0 picks the subcommand (low 3 bits), whether the token is
 * bound to an rp (bit 3) and the command, 0x0A or 0x41 (bit 4); the rest,
 * when it is one CBOR item, is sent as subCommandParams. Checks the reply
 * shape and the store's bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/cose.h"
#include "ctaphid/pin_proto.h"
#include "ctaphid/status.h"
#include "harness/vcard/card_int.h"

static const char *const rps[] = {"a.example", "b.example"};

static struct vc_card *card(void)
{
    static struct vc_card *c;
    struct vc_config cfg;
    char err[256];

    if (c == NULL) {
        memset(&cfg, 0, sizeof(cfg));
        cfg.attestation = VC_ATT_NONE;
        cfg.reset_window_ms = 10000;
        cfg.pin = "1234";
        cfg.personality = vc_personality_find("ctap2.1-full");
        if (cfg.personality == NULL || (c = vc_card_new(&cfg, err, sizeof(err))) == NULL)
            abort();
    }
    return c;
}

static void top_up(struct vc_card *c)
{
    while (c->n_rk < 3) {
        struct vc_rk *rk = &c->rks[c->n_rk];
        struct vc_cred cr;
        EVP_PKEY *k = NULL;
        const char *rp = rps[c->n_rk % 2];

        memset(rk, 0, sizeof(*rk));
        snprintf(rk->rp_id, sizeof(rk->rp_id), "%s", rp);
        if (vc_sha256((const uint8_t *)rp, strlen(rp), rk->rp_id_hash) != 0 ||
            vc_cred_new(c, KC_COSE_ES256, 1, VC_CRED_FLAG_RK, rk->rp_id_hash, &cr, &k) != 0)
            abort();
        EVP_PKEY_free(k);
        memcpy(rk->id, cr.id, VC_CRED_ID_LEN);
        rk->user_id_len = 8;
        memset(rk->user_id, 'a' + (int)c->n_rk, 8);
        snprintf(rk->user_name, sizeof(rk->user_name), "user%zu", c->n_rk);
        rk->cred_protect = 1;
        rk->seq = ++c->next_seq;
        c->n_rk++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t resp[8192];
    struct vc_card *c = card();
    cbor_item_t *params = NULL, *req = NULL;
    uint8_t msg[4096], mac[32], *ser = NULL, *wire = NULL;
    size_t ser_len = 0, mac_len = 0, wire_len = 0, resp_len = 0;
    uint8_t sub;

    if (size < 1 || size > 2048)
        return 0;
    top_up(c);
    sub = (uint8_t)(1 + (data[0] & 7));
    memset(c->token, 0x5a, sizeof(c->token));
    c->token_in_use = true;
    c->token_perms = KC_PERM_CM;
    c->token_has_rp = (data[0] & 8) != 0;
    snprintf(c->token_rp, sizeof(c->token_rp), "%s", c->token_has_rp ? rps[0] : "");
    if (size > 1 && kc_cbor_load(data + 1, size - 1, &params) != KC_OK)
        params = NULL;
    if (params != NULL && kc_cbor_serialize(params, &ser, &ser_len) != KC_OK)
        abort();
    if (1 + ser_len > sizeof(msg))
        goto out;
    msg[0] = sub;
    if (ser_len > 0)
        memcpy(msg + 1, ser, ser_len);
    if (kc_pinp_authenticate(2, c->token, sizeof(c->token), msg, 1 + ser_len, mac, &mac_len) !=
        KC_OK)
        abort();
    if ((req = cbor_new_definite_map(4)) == NULL ||
        kc_cbor_map_add_int(req, 1, kc_cbor_new_int(sub)) != KC_OK ||
        (params != NULL && kc_cbor_map_add_int(req, 2, cbor_incref(params)) != KC_OK) ||
        kc_cbor_map_add_int(req, 3, kc_cbor_new_int(2)) != KC_OK ||
        kc_cbor_map_add_int(req, 4, kc_cbor_new_bytes(mac, mac_len)) != KC_OK ||
        kc_cbor_serialize(req, &wire, &wire_len) != KC_OK)
        abort();
    {
        uint8_t *full = malloc(wire_len + 1);
        if (full == NULL)
            abort();
        full[0] = (data[0] & 16) ? 0x41 : 0x0a; /* the 2.1 card takes both */
        memcpy(full + 1, wire, wire_len);
        if (vc_card_cbor(c, full, wire_len + 1, resp, sizeof(resp), &resp_len, NULL, NULL) != 0)
            abort();
        free(full);
    }
    if (resp_len < 1 || (resp[0] != 0 && resp_len != 1) || c->n_rk > VC_MAX_RK)
        abort();
    for (size_t i = 0; i < c->n_rk; i++)
        if (memchr(c->rks[i].user_name, '\0', sizeof(c->rks[i].user_name)) == NULL ||
            memchr(c->rks[i].display_name, '\0', sizeof(c->rks[i].display_name)) == NULL)
            abort();
    /* a GetNext after a successful begin, so the enumeration state is used */
    if (resp[0] == 0 && (sub == 2 || sub == 4)) {
        uint8_t next[] = {0x0a, 0xa1, 0x01, (uint8_t)(sub + 1)};
        if (vc_card_cbor(c, next, sizeof(next), resp, sizeof(resp), &resp_len, NULL, NULL) != 0)
            abort();
    }
out:
    if (req != NULL)
        cbor_decref(&req);
    if (params != NULL)
        cbor_decref(&params);
    free(ser);
    free(wire);
    return 0;
}
