/* rawctap doctor's pin step: the PIN retries first (never a PIN blind),
 * then, with a PIN given and attempts to spare, a pinUvAuthToken over a
 * protocol the card advertises (2 when offered) for what follows. The PIN
 * is never part of the evidence. */
#include <string.h>

#include "ctaphid/pin.h"
#include "triage/rawctap_doctor_run.h"

void rc_doc_step_pin(struct rc_doc_run *run, bool last_try, uint8_t perm, const char *rp_id)
{
    struct rc_doc_evidence *ev = run->ev;
    uint64_t t0 = kc_now_us();
    struct kc_pin_retries rt;
    if (ev->client_pin != 1 && !ev->pin_given)
        return; /* no PIN on the card, none given: nothing to check */
    ev->pin_ran = true;
    if (ev->client_pin != 1) {
        rc_doc_step_add(ev, "pin", RC_DOC_WARN, 0,
                        "a PIN was given, but the card has %s: testing without it",
                        ev->client_pin == 0 ? "no PIN set" : "no clientPin");
        return;
    }
    memset(&rt, 0, sizeof(rt));
    ev->retries_ran = true;
    ev->retries_err = kc_pin_get_retries(run->ctx->dev, &run->info, &rt);
    rc_doc_note_gone(ev, ev->retries_err);
    if (ev->retries_err == KC_OK) {
        ev->retries = rt.retries > 255 ? 255u : (unsigned)rt.retries;
        ev->power_cycle_state = rt.power_cycle_state;
    }
    char left[64];
    if (ev->retries_err == KC_OK)
        snprintf(left, sizeof(left), "%u attempt(s) left%s", ev->retries,
                 ev->power_cycle_state ? ", blocked until power cycle" : "");
    else
        snprintf(left, sizeof(left), "getRetries: %.40s", kc_err_name(ev->retries_err));
    if (ev->retries_err < 0 && ev->retries_err != KC_ERR_CBOR) {
        rc_doc_step_add(ev, "pin", RC_DOC_FAIL, rc_doc_ms_since(t0), "PIN set; %s", left);
        return;
    }
    if (!ev->pin_given) {
        bool bad = (ev->retries_err == KC_OK && ev->retries == 0) || ev->power_cycle_state ||
                   ev->force_pin_change;
        rc_doc_step_add(ev, "pin", bad ? RC_DOC_FAIL : RC_DOC_PASS, rc_doc_ms_since(t0),
                        "PIN set, %s; no PIN given (--pin-file, $RAWCTAP_PIN): testing what needs "
                        "none",
                        left);
        return;
    }
    const char *why = NULL;
    if (ev->retries_err != KC_OK)
        why = "retries unknown";
    else if (ev->retries == 0)
        why = "the PIN is blocked";
    else if (ev->power_cycle_state)
        why = "PIN use is blocked until a power cycle";
    else if (ev->force_pin_change)
        why = "the card wants the PIN changed first";
    else if (ev->retries <= RC_DOC_PIN_SPARE_RETRIES && !last_try)
        why = "a wrong PIN would block it (--pin-last-try to spend it)";
    if (why) {
        ev->pin_spared = ev->retries_err != KC_OK ||
                         (ev->retries > 0 && !ev->power_cycle_state && !ev->force_pin_change);
        rc_doc_step_add(ev, "pin", ev->pin_spared ? RC_DOC_WARN : RC_DOC_FAIL, rc_doc_ms_since(t0),
                        "PIN set, %s; the PIN given was not sent: %s", left, why);
        return;
    }
    ev->token_ran = true;
    ev->token_err = kc_pin_token_for(run->ctx->dev, &run->info, run->pin, perm, rp_id, &run->token);
    rc_doc_note_gone(ev, ev->token_err);
    if (ev->token_err == KC_OK) {
        run->have_token = true;
        ev->token_protocol = run->token.protocol;
        rc_doc_step_add(ev, "pin", RC_DOC_PASS, rc_doc_ms_since(t0),
                        "PIN set, %s; PIN accepted: pinUvAuthToken over protocol %d (card offers "
                        "[%s])",
                        left, ev->token_protocol, ev->pin_protocols);
        return;
    }
    kc_pin_token_clear(&run->token);
    if (ev->token_err == KC_CTAP2_ERR_PIN_INVALID) {
        memset(&rt, 0, sizeof(rt));
        if (kc_pin_get_retries(run->ctx->dev, &run->info, &rt) == KC_OK) {
            ev->retries_after_known = true;
            ev->retries_after = rt.retries > 255 ? 255u : (unsigned)rt.retries;
        }
    }
    rc_doc_step_add(ev, "pin", RC_DOC_FAIL, rc_doc_ms_since(t0), "PIN set, %s; PIN refused: %s",
                    left,
                    ev->token_err > 0 ? kc_ctap2_status_name((uint8_t)ev->token_err)
                                      : kc_err_name(ev->token_err));
}
