/* The virtual card's --uhid face: a hidraw node through /dev/uhid, read by
 * the poll loop, unplugged and plugged in again with the card. */
#include <string.h>

#include "harness/vcard/script.h"
#include "harness/vcard/uhid.h"

#include "harness/vcard/server_internal.h"
#include "util/clock.h"

int vcs_read_uhid(struct vc_server *s)
{
    uint8_t rep[VC_UHID_REPORT_LEN];
    struct vc_hid_peer peer;
    int r;

    memset(&peer, 0, sizeof(peer));
    peer.len = 1;
    peer.addr[0] = UHID_PEER_MARK;
    for (int i = 0; i < UDP_BURST; i++) {
        if ((r = vc_uhid_read_output(s->uhid, rep, 0)) <= 0)
            return r;
        pthread_mutex_lock(&s->mu);
        if (s->replug_requested) { /* lost with the old node, as vcs_read_udp says */
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        if (s->script != NULL) {
            vc_script_input(s->script, &peer, rep, sizeof(rep), kcu_now_ms());
        } else {
            vc_hid_input(s->hid, &peer, rep, sizeof(rep), kcu_now_ms());
            vcs_start_job(s);
        }
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    return 0;
}

/* A new UHID device (the kernel gives it a new hidraw node); NULL with err
 * set on failure. */
struct vc_uhid *vcs_new_uhid(const struct vc_server *s, char *err, size_t errlen)
{
    struct vc_uhid_config ucfg;
    struct vc_uhid *u = NULL;

    memset(&ucfg, 0, sizeof(ucfg));
    ucfg.vendor_id = UHID_VID;
    ucfg.product_id = UHID_PID;
    ucfg.vendor_interface = s->uhid_vendor ? 1 : 0;
    ucfg.start_timeout_ms = 5000;
    if (vc_uhid_open(&ucfg, &u, err, errlen) != 0)
        return NULL;
    return u;
}

/* Unplug: the hidraw node goes away, and with it every descriptor open on
 * it. Only the poll loop's thread touches s->uhid's descriptors; the worker
 * sends through it with the lock held, as here. Lock held. */
void vcs_uhid_unplug(struct vc_server *s)
{
    vc_uhid_close(s->uhid);
    s->uhid = NULL;
}

/* Plug (back) in as a new device when --uhid asked for one and none is
 * there. Lock held. */
int vcs_uhid_plug(struct vc_server *s, char *err, size_t errlen)
{
    if (!s->uhid_wanted || s->uhid != NULL)
        return 0;
    return (s->uhid = vcs_new_uhid(s, err, errlen)) != NULL ? 0 : -1;
}
