/* rawctap doctor's runner internals, shared by the files that gather the
 * evidence: rawctap_doctor.c (the steps and the command),
 * rawctap_doctor_watch.c (finding the card again: discovery, enumeration,
 * watching it while requests wait) and rawctap_doctor_pin.c (the retries and
 * the PIN token). Only those files include this. */
#ifndef KCARD_PROBE_RAWCTAP_DOCTOR_RUN_H
#define KCARD_PROBE_RAWCTAP_DOCTOR_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ctaphid/ctap2.h"
#include "ctaphid/discover.h"
#include "triage/rawctap.h"
#include "triage/rawctap_doctor.h"

#define RC_DOC_RP_ID "doctor.kcard.invalid"
#define RC_DOC_MAX_NODES 64
#define RC_DOC_PING_BOUND_MS 1000
#define RC_DOC_SMALL_PINGS 3
#define RC_DOC_LARGE_PINGS 2
#define RC_DOC_SMALL_LEN 16
#define RC_DOC_LARGE_LEN 200     /* four reports */
#define RC_DOC_ENUM_WAIT_MS 1500 /* a USB re-enumeration takes about a second */
#define RC_DOC_ENUM_POLL_MS 50
#define RC_DOC_ENUM_SETTLE_MS 300
/* While a request waits, the card's announce file / node is looked at this
 * often: a card that moved is named at once, not after the request's
 * timeout (which may be seconds). */
#define RC_DOC_WATCH_MS 100
#define RC_DOC_CANCEL_MS 200 /* after an abort or timeout, CANCEL's answer */

struct rc_doc_opts {
    bool no_presence;
    int slow_ms;
    const char *cred_file;
    struct rc_pin_src pin;
    bool pin_last_try;
};

/* Keepalive bookkeeping for one request. */
struct rc_doc_ka {
    struct rc_ctx *ctx;
    int processing, upneeded;
    uint64_t last_us; /* elapsed time of the last packet seen */
    uint64_t max_gap_us;
    bool told;
};

struct rc_doc_run {
    struct rc_ctx *ctx;
    struct rc_doc_opts *opts;
    struct rc_doc_evidence *ev;
    struct kc_dev_entry chosen; /* the card's identity from discovery */
    bool have_chosen;
    bool chosen_node; /* a hidraw node (else an announced card) */
    struct rc_doc_ka ka;
    struct kc_info info;
    const char *pin;           /* NULL: none given; zeroed by the caller */
    struct kc_pin_token token; /* from the pin step, for the makeCredential */
    bool have_token;
    /* watching the card while a request waits */
    uint64_t watch_last_us;
    int watch_gone;         /* consecutive looks that found the announcement gone */
    bool moved_abort;       /* the abort callback saw the card move or go */
    char udp_announce[128]; /* explicit udp: the announce file naming it */
};

static inline long rc_doc_ms_since(uint64_t t0)
{
    return (long)((kc_now_us() - t0) / 1000u);
}

static inline const char *rc_doc_env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* A step's result said the descriptor is gone (POLLHUP, ENODEV, EOF). */
static inline void rc_doc_note_gone(struct rc_doc_evidence *ev, int err)
{
    if (err == KC_ERR_UNPLUGGED)
        ev->saw_unplugged = true;
}

/* rawctap_doctor_watch.c */

/* Every hidraw node (FIDO or not) and announced card; is_node marks the
 * hidraw nodes. ents and is_node hold RC_DOC_MAX_NODES. */
size_t rc_doc_discover_all(struct kc_dev_entry *ents, bool *is_node, size_t *n_nodes);
/* Same card: a node's HID id, serial and name, or the same announce file. */
bool rc_doc_same_card(const struct kc_dev_entry *a, bool a_node, const struct kc_dev_entry *b,
                      bool b_node);
/* The enumeration step: has the card moved or gone? wait_ms: how long a
 * card that is gone may take to reappear; settle_ms: how long a card found
 * where it was is watched before that is believed. */
void rc_doc_step_enumeration(struct rc_doc_run *run, int wait_ms, int settle_ms);
/* kc_abort_fn (arg: the run): ends a wait as soon as the card is seen
 * under another address, or its announcement is withdrawn. */
int rc_doc_watch(void *arg);
/* Explicit udp: remember which announce file names this address. */
void rc_doc_udp_watch_setup(struct rc_doc_run *run, const char *uri);
/* Explicit udp after a failure: the address its announce file names now. */
void rc_doc_udp_moved_hint(struct rc_doc_run *run);

/* rawctap_doctor_pin.c */

/* The pin step: getRetries when a PIN is set; with a PIN given and
 * attempts to spare, a pinUvAuthToken for perm and rp_id into run->token. */
void rc_doc_step_pin(struct rc_doc_run *run, bool last_try, uint8_t perm, const char *rp_id);

#endif
