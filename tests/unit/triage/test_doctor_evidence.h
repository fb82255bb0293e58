/* The evidence of a healthy CTAP2 card for the doctor tree's tests, which
 * change from it only what each case is about. Included by
 * tests/unit/triage/test_rawctap_doctor*.c only. */
#ifndef KCARD_TEST_DOCTOR_EVIDENCE_H
#define KCARD_TEST_DOCTOR_EVIDENCE_H

/* cmocka.h comes first, in the test */
#include <stdio.h>
#include <stdlib.h>

#include "ctaphid/status.h"
#include "triage/rawctap_doctor.h"

static inline struct rc_doc_evidence *ev_new(void)
{
    struct rc_doc_evidence *ev = calloc(1, sizeof(*ev));
    assert_non_null(ev);
    return ev;
}

/* A healthy CTAP2 card over udp: every step ran and passed. */
static inline struct rc_doc_evidence *healthy(void)
{
    struct rc_doc_evidence *ev = ev_new();
    ev->dev = RC_DOC_DEV_OTHER;
    snprintf(ev->device, sizeof(ev->device), "udp:127.0.0.1:8111");
    snprintf(ev->target, sizeof(ev->target), "udp:127.0.0.1:8111");
    ev->timeout_ms = 5000;
    ev->init_timeout_ms = 3000;
    ev->presence_timeout_ms = 30000;
    ev->slow_ms = 1500;
    ev->open_ran = true;
    ev->init_ran = true;
    ev->init_attempts = 1;
    ev->init_ok_attempt = 1;
    ev->caps = KC_HID_CAP_CBOR | KC_HID_CAP_WINK;
    ev->caps_known = true;
    ev->chan_ran = true;
    ev->small.sent = ev->small.ok = 3;
    ev->large.sent = ev->large.ok = 2;
    ev->info_ran = true;
    ev->n_pin_protocols = 2;
    ev->client_pin = 0;
    snprintf(ev->versions, sizeof(ev->versions), "FIDO_2_0, FIDO_2_1");
    ev->presence_ran = true;
    ev->mc_ms = 40;
    ev->max_gap_ms = 40;
    ev->verify_ran = true;
    ev->prev_count = 0;
    ev->new_count = 1;
    ev->ctap1_ran = true;
    ev->ctap1_ms = 30;
    snprintf(ev->u2f_version, sizeof(ev->u2f_version), "U2F_V2");
    return ev;
}

#endif
