/* The virtual card's worker thread: runs the core (or hangs, as a fault
 * asks) on each complete message, so the poll loop keeps answering. */
#include <unistd.h>

#include "harness/vcard/server_internal.h"
#include "util/clock.h"

static bool hangs_before_up(const struct vc_server *s, uint8_t cmd, const uint8_t *data, size_t len)
{
    return s->faults.on[VC_FAULT_HANG_BEFORE_UP] && cmd == KC_HID_CBOR && len > 0 &&
           (data[0] == KC_CTAP2_MAKE_CREDENTIAL || data[0] == KC_CTAP2_GET_ASSERTION);
}

static void wake_loop(struct vc_server *s)
{
    char c = 1;

    if (write(s->wake[1], &c, 1) < 0) {
        /* pipe full: the loop is already awake */
    }
}

void *vcs_worker_main(void *arg)
{
    struct vc_server *s = arg;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        uint8_t cmd;
        size_t len;
        size_t resp_len = 0;
        int rc;

        while (!s->job_ready && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stopping)
            break;
        s->job_ready = false;
        s->job_active = true;
        cmd = s->job_cmd;
        len = s->job_len;
        if (hangs_before_up(s, cmd, s->job_buf, len)) {
            /* keepalive PROCESSING forever: only CANCEL, a resync, clearing
             * the fault or shutting down ends it */
            while (!s->stopping && !vc_hid_job_cancelled(s->hid) &&
                   s->faults.on[VC_FAULT_HANG_BEFORE_UP])
                vcs_wait_until(s, kcu_now_ms() + POLL_MAX_MS);
            s->resp_buf[0] = vc_hid_job_cancelled(s->hid) || s->stopping
                                 ? KC_CTAP2_ERR_KEEPALIVE_CANCEL
                                 : KC_CTAP2_ERR_OPERATION_DENIED;
            resp_len = 1;
        } else {
            pthread_mutex_unlock(&s->mu);
            if (cmd == KC_HID_CBOR)
                rc = vc_card_cbor(s->card, s->job_buf, len, s->resp_buf, sizeof(s->resp_buf),
                                  &resp_len, vcs_presence_cb, s);
            else
                rc = vc_card_msg(s->card, s->job_buf, len, s->resp_buf, sizeof(s->resp_buf),
                                 &resp_len, vcs_presence_cb, s);
            pthread_mutex_lock(&s->mu);
            if (rc < 0 || resp_len == 0 || resp_len > sizeof(s->resp_buf)) {
                if (cmd == KC_HID_CBOR) {
                    s->resp_buf[0] = KC_CTAP1_ERR_OTHER;
                    resp_len = 1;
                } else {
                    s->resp_buf[0] = 0x6f; /* SW_UNKNOWN */
                    s->resp_buf[1] = 0x00;
                    resp_len = 2;
                }
            }
            if (cmd == KC_HID_MSG && s->faults.on[VC_FAULT_SLOW_CTAP1]) {
                uint64_t until = kcu_now_ms() + (uint64_t)s->faults.arg[VC_FAULT_SLOW_CTAP1];

                while (!s->stopping && !vc_hid_job_cancelled(s->hid) && kcu_now_ms() < until)
                    vcs_wait_until(s, until);
            }
        }
        vc_hid_job_finish(s->hid, s->resp_buf, resp_len, kcu_now_ms());
        s->job_active = false;
        s->completed++;
        if (s->power_cycle_pending) {
            s->power_cycle_pending = false;
            vc_card_power_cycle(s->card);
        }
        if (s->faults.on[VC_FAULT_REPLUG]) {
            /* --fault replug: the card re-enumerates after a finished request */
            s->replug_requested = true;
            wake_loop(s);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}
