/* The card-presence check of `fido2-probe --json` and of k_proxy's probe
 * auth mode: open the device, a bounded CTAPHID INIT, then
 * authenticatorGetInfo, each timed. Fills a fixed struct and prints nothing. */
#ifndef KCARD_CTAPHID_PROBE_H
#define KCARD_CTAPHID_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "ctaphid/ctap2.h"
#include "ctaphid/discover.h"
#include "ctaphid/io.h"
#include "ctaphid/transport.h"

#define KC_PROBE_TIMEOUT_DEFAULT_MS 3000

/* What failed, first failure only; stable names from kc_probe_fail_code. */
enum kc_probe_fail {
    KC_PROBE_OK = 0,
    KC_PROBE_NO_DEVICE,       /* "no-device": nothing at the URI / auto found nothing */
    KC_PROBE_PERMISSION,      /* "permission": the node exists, open denied (fix given) */
    KC_PROBE_BUSY,            /* "busy": another process holds the node */
    KC_PROBE_OPEN_FAILED,     /* "open-failed": any other open error */
    KC_PROBE_INIT_TIMEOUT,    /* "init-timeout": no answer to CTAPHID INIT in time */
    KC_PROBE_INIT_FAILED,     /* "init-failed": INIT answered wrongly or I/O failed */
    KC_PROBE_GETINFO_TIMEOUT, /* "getinfo-timeout" */
    KC_PROBE_GETINFO_FAILED,  /* "getinfo-failed": error status or bad CBOR */
    KC_PROBE_UNPLUGGED,       /* "unplugged": card re-enumerated or unplugged meanwhile */
};
const char *kc_probe_fail_code(enum kc_probe_fail f);

struct kc_probe_result {
    bool present;            /* INIT answered and getInfo answered (or CTAP1-only card) */
    enum kc_probe_fail fail; /* KC_PROBE_OK when present */
    int err;                 /* KC_ERR_* or CTAP2 status of the failed step, else KC_OK */
    char error[512];         /* one sentence naming what failed (path, step, time) */
    char fix[512];           /* what to do about it, "" when nothing to say */
    char uri[KC_URI_MAX];    /* the device checked ("auto" resolved) */
    bool have_id;            /* hidraw: the card's HID id and serial */
    struct kc_card_id id;
    /* milliseconds per step; -1 when the step did not run */
    double open_ms, init_ms, getinfo_ms, total_ms;
    bool init_ok;
    struct kc_init_info init; /* the INIT reply (channel, versions, capabilities) */
    bool ctap2;               /* INIT advertised CBOR: getInfo was asked */
    bool info_ok;
    struct kc_info info; /* versions, aaguid, options, pin_protocols, ... */
};

/* Checks the card at uri (NULL or "auto": the first FIDO hidraw node, else
 * the first announced card) with every wait bounded by timeout_ms (<= 0:
 * KC_PROBE_TIMEOUT_DEFAULT_MS). Returns KC_OK when the card is present,
 * else the KC_ERR_* (or CTAP2 status) also stored in out->err; out is
 * always filled. */
int kc_probe_card(const char *uri, int timeout_ms, struct kc_probe_result *out);

/* The INIT and getInfo steps on an already opened transport (taken over
 * and closed), for callers that open the device themselves and for tests.
 * out is reset; open_ms stays -1. */
int kc_probe_transport(struct kc_transport *t, int timeout_ms, struct kc_probe_result *out);

#endif
