/* libFuzzer target: the virtual card's CTAPHID input path (hid.c) with the
 * real authenticator core behind it, presence always approved.
 *
 * Input: one settings byte (HID faults to switch on), then records of 65
 * bytes: a control byte (low 2 bits: which of 4 clients sends; high 6 bits:
 * milliseconds to advance the clock, x20) and a 64-byte report. Complete
 * CBOR/MSG messages are run through the core at once, as the server would. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ctaphid/status.h"
#include "harness/vcard/card.h"
#include "harness/vcard/hid.h"

#define RECORD (1 + KC_HID_REPORT_LEN)

static struct vc_card *card;
static uint8_t resp[KC_HID_MAX_MSG];

static void sink(void *ctx, const struct vc_hid_peer *to, const uint8_t *report)
{
    size_t *count = ctx;

    /* touch every byte so ASan sees reads of the whole report */
    volatile uint8_t x = 0;
    for (size_t i = 0; i < KC_HID_REPORT_LEN; i++)
        x ^= report[i];
    (void)x;
    (void)to;
    (*count)++;
}

static enum vc_up_result approve(void *ctx)
{
    (void)ctx;
    return VC_UP_APPROVED;
}

static void run_job(struct vc_hid *h, uint64_t now)
{
    struct vc_hid_job job;
    size_t len = 0;
    int rc;

    if (!vc_hid_job_take(h, &job))
        return;
    if (job.cmd == KC_HID_CBOR)
        rc = vc_card_cbor(card, job.data, job.len, resp, sizeof(resp), &len, approve, NULL);
    else
        rc = vc_card_msg(card, job.data, job.len, resp, sizeof(resp), &len, approve, NULL);
    if (rc < 0 || len == 0 || len > sizeof(resp)) {
        resp[0] = KC_CTAP1_ERR_OTHER;
        len = 1;
    }
    vc_hid_tick(h, now + 100);
    vc_hid_job_finish(h, resp, len, now + 150);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum vc_fault_kind settable[] = {
        VC_FAULT_DROP_EVERY,   VC_FAULT_DUPLICATE_EVERY,
        VC_FAULT_CORRUPT_SEQ,  VC_FAULT_WRONG_CID,
        VC_FAULT_BUSY,         VC_FAULT_CTAP1_ONLY,
        VC_FAULT_NO_KEEPALIVE, VC_FAULT_NO_INIT_REPLY,
    };
    struct vc_faults faults;
    struct vc_hid_peer peers[4];
    struct vc_hid *h;
    size_t sent = 0;
    uint64_t now = 1000;

    if (card == NULL) {
        struct vc_config cfg;
        char err[256];

        memset(&cfg, 0, sizeof(cfg));
        cfg.attestation = VC_ATT_SELF;
        cfg.ctap1 = true;
        card = vc_card_new(&cfg, err, sizeof(err));
        if (card == NULL)
            return 0;
    }
    if (size < 1)
        return 0;
    memset(&faults, 0, sizeof(faults));
    for (size_t i = 0; i < sizeof(settable) / sizeof(settable[0]); i++) {
        if (data[0] & (1u << i)) {
            faults.on[settable[i]] = true;
            faults.arg[settable[i]] = 2 + (int)i;
        }
    }
    h = vc_hid_new(sink, &sent);
    if (h == NULL)
        return 0;
    vc_hid_set_faults(h, &faults);
    memset(peers, 0, sizeof(peers));
    for (int i = 0; i < 4; i++) {
        peers[i].len = 1;
        peers[i].addr[0] = (uint8_t)i;
    }
    data++;
    size--;
    while (size > 0) {
        size_t n = size < RECORD ? size : RECORD;
        uint8_t ctl = data[0];

        now += (uint64_t)(ctl >> 2) * 20;
        vc_hid_tick(h, now);
        if (n > 1)
            vc_hid_input(h, &peers[ctl & 3], data + 1, n - 1, now);
        run_job(h, now);
        data += n;
        size -= n;
    }
    vc_hid_tick(h, now + 1000);
    vc_hid_free(h);
    return 0;
}
