/* The structural request matcher on arbitrary pairs of messages: two
 * command bytes, the recorded message's length (2 bytes), then the
 * recorded and the sent message's bytes. CTAP2 ones are decoded and walked. */
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/replay_match.h"
#include "ctaphid/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kc_replay_msg r, s;
    size_t rlen;
    char why[256], label[64];
    uint8_t cdh[32];

    if (size < 4 || size > 2 * KC_HID_MAX_MSG + 4)
        return 0;
    rlen = (size_t)data[2] << 8 | data[3];
    if (rlen > size - 4)
        rlen = size - 4;
    r.cid = data[0] & 1 ? KC_HID_BROADCAST_CID : 1;
    r.cmd = data[0] | 0x80;
    r.data = data + 4;
    r.len = r.bcnt = rlen;
    r.complete = (data[1] & 0x40) == 0;
    s.cid = data[1] & 1 ? KC_HID_BROADCAST_CID : 1;
    s.cmd = data[1] & 0x20 ? r.cmd : (uint8_t)(data[1] | 0x80);
    s.data = data + 4 + rlen;
    s.len = s.bcnt = size - 4 - rlen;
    s.complete = true;
    if (data[1] & 0x10)
        r.cmd = s.cmd = KC_HID_CBOR;
    (void)kc_replay_match(&r, &s, why, sizeof(why));
    (void)kc_replay_match(&s, &r, why, sizeof(why));
    kc_replay_msg_label(&r, label, sizeof(label));
    (void)kc_replay_msg_cdh(&s, cdh);
    return 0;
}
