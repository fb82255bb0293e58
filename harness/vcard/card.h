/* The virtual card's authenticator core: CTAP2.1 and CTAP1/U2F messages in,
 * responses out. No sockets and no CTAPHID framing here: hid.c and the UDP
 * server own those. Presence is asked of the caller through a callback, so
 * the server can send keepalives and honour CANCEL while the core waits. */
#ifndef KCARD_VCARD_CARD_H
#define KCARD_VCARD_CARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fault profiles (harness README and vcard.1). Some act in the core, most in
 * the HID layer; both read the same set. */
enum vc_fault_kind {
    VC_FAULT_NO_INIT_REPLY = 0, /* hid: silent to INIT */
    VC_FAULT_HANG_BEFORE_UP,    /* hid: keepalive PROCESSING forever on MC/GA */
    VC_FAULT_NO_PIN_PROTOCOLS,  /* core: getInfo without pinUvAuthProtocols/clientPin */
    VC_FAULT_CTAP1_ONLY,        /* core+hid: no CBOR capability, CTAP2 refused */
    VC_FAULT_SLOW_CTAP1,        /* hid: each U2F reply after arg ms (default 2000) */
    VC_FAULT_NO_KEEPALIVE,      /* hid: silent while waiting for presence */
    VC_FAULT_DROP_EVERY,        /* hid: drop every arg-th outgoing report */
    VC_FAULT_DUPLICATE_EVERY,   /* hid: send every arg-th outgoing report twice */
    VC_FAULT_CORRUPT_SEQ,       /* hid: continuation packets with wrong sequence */
    VC_FAULT_WRONG_CID,         /* hid: replies on a channel the host did not get */
    VC_FAULT_BUSY,              /* hid: every command answered CHANNEL_BUSY */
    VC_FAULT_BOGUS_SIGNATURE,   /* core: signatures that do not verify */
    VC_FAULT_COUNTER_ROLLBACK,  /* core: signCount goes down */
    VC_FAULT_UNPLUG,            /* hid: stops answering anything */
    VC_FAULT_REPLUG,            /* hid: new port, re-announced */
    VC_FAULT_COUNT
};

struct vc_faults {
    bool on[VC_FAULT_COUNT];
    int arg[VC_FAULT_COUNT];
};

/* Parse "drop-every:3", "hang-before-up", ... into *f (adds to it).
 * Returns 0, or -1 with a message in err naming what was wrong. */
int vc_fault_parse(const char *spec, struct vc_faults *f, char *err, size_t errlen);
const char *vc_fault_name(enum vc_fault_kind k);

enum vc_up_result {
    VC_UP_APPROVED = 0,
    VC_UP_DENIED,
    VC_UP_TIMEOUT,
    VC_UP_CANCELLED,
};

/* Blocks until presence is decided. Called from the core with no lock held
 * that the HID layer needs. */
typedef enum vc_up_result (*vc_presence_fn)(void *ctx);

enum vc_attestation {
    VC_ATT_PACKED_BATCH = 0, /* packed with x5c, batch cert made on first start */
    VC_ATT_SELF,             /* packed self attestation */
    VC_ATT_NONE,
};

struct vc_personality; /* personality.h */

struct vc_config {
    const char *state_path; /* NULL: state in memory only */
    enum vc_attestation attestation;
    bool uv;    /* advertise built-in uv option */
    bool ctap1; /* answer U2F over MSG (default true) */
    uint8_t aaguid[16];
    int reset_window_ms;                      /* reset allowed this long after power-up (10000) */
    const struct vc_personality *personality; /* NULL: kcard-2.1 */
    /* Start with this PIN set (--pin). A state file that already has
     * another PIN is refused, except by pin-blocked, which never checks it. */
    const char *pin;
};

struct vc_card;

/* Load state_path if it exists (creating keys otherwise). NULL on failure
 * with a message in err. */
struct vc_card *vc_card_new(const struct vc_config *cfg, char *err, size_t errlen);
void vc_card_free(struct vc_card *c);

/* One CTAPHID_CBOR message: req[0] is the command byte. resp[0] is the status
 * byte, followed by the CBOR response when it is 0. Always produces a
 * response (*resp_len >= 1); returns 0, or -1 only if cap is too small. */
int vc_card_cbor(struct vc_card *c, const uint8_t *req, size_t len, uint8_t *resp, size_t cap,
                 size_t *resp_len, vc_presence_fn up, void *up_ctx);
/* One CTAPHID_MSG (CTAP1 APDU, extended or short length). The response ends
 * with the two status word bytes. */
int vc_card_msg(struct vc_card *c, const uint8_t *apdu, size_t len, uint8_t *resp, size_t cap,
                size_t *resp_len, vc_presence_fn up, void *up_ctx);

/* A power cycle: reset window restarts, per-boot PIN blocking clears. */
void vc_card_power_cycle(struct vc_card *c);
/* Faults the core acts on (others are ignored here). Thread-safe. */
void vc_card_set_faults(struct vc_card *c, const struct vc_faults *f);
/* Whether CTAP2 is currently offered (false under ctap1-only). */
bool vc_card_ctap2_enabled(const struct vc_card *c);
bool vc_card_ctap1_enabled(const struct vc_card *c);
/* Switches to personality p (NULL: the default): its getInfo, capabilities
 * and behaviour from the next request on, and the PIN state it starts with
 * (pin-blocked, force-pin-change). The caller replugs the card. 0, or -1
 * with a message in err. Thread-safe. */
int vc_card_set_personality(struct vc_card *c, const struct vc_personality *p, char *err,
                            size_t errlen);
/* The personality in use (never NULL). Thread-safe. */
const struct vc_personality *vc_card_personality(const struct vc_card *c);
/* A JSON object (malloc'd string) describing credentials count, PIN set,
 * retries, faults: used by the control socket's status. */
char *vc_card_status_json(const struct vc_card *c);

#endif
