/* Structural comparison of two CTAPHID request messages: the one a trace
 * recorded and the one a host sends now. Fields that must differ between
 * runs may differ (INIT nonce, PING payload, clientDataHash, a random user
 * id, PIN key agreement, pinUvAuthParam, pinHashEnc/newPinEnc, hmac-secret
 * keyAgreement/saltEnc/saltAuth, the CTAP1 challenge); anything else that
 * differs is named, first difference first, e.g.
 *   recorded rp.id "a.example", sent "b.example"
 * CTAP2 requests are compared as decoded CBOR (libcbor), not as bytes. */
#ifndef KCARD_CTAPHID_REPLAY_MATCH_H
#define KCARD_CTAPHID_REPLAY_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A request message; cmd 0 is a stray report compared bytewise. */
struct kc_replay_msg {
    uint32_t cid;
    uint8_t cmd;
    const uint8_t *data;
    size_t len;    /* bytes present */
    size_t bcnt;   /* bytes the init packet announced */
    bool complete; /* len == bcnt */
};

/* true when sent may stand for recorded; otherwise false and why holds
 * "recorded X, sent Y" for the first difference. Channel ids are compared
 * only as broadcast or not (the caller knows which channel to expect). */
bool kc_replay_match(const struct kc_replay_msg *recorded, const struct kc_replay_msg *sent,
                     char *why, size_t why_len);
/* "CTAP2 makeCredential", "CTAPHID PING", "CTAP1 REGISTER", "stray report". */
void kc_replay_msg_label(const struct kc_replay_msg *m, char *buf, size_t len);
/* The clientDataHash of a CTAP2 makeCredential or getAssertion request:
 * true with it in cdh when m is one and carries a 32-byte one. */
bool kc_replay_msg_cdh(const struct kc_replay_msg *m, uint8_t cdh[32]);
/* Short name of a CTAP2 command ("makeCredential"), "0xNN" when unknown
 * (buf of at least 8 bytes for those). */
const char *kc_replay_ctap2_name(uint8_t cmd);

#endif
