/* The virtual card's faults, unplug and replug: a replug comes back on a
 * new port (and a new hidraw node) with no channels, as a re-enumerated
 * card does. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness/vcard/uhid.h"

#include "harness/vcard/server_internal.h"

/* Lock held. */
void vcs_apply_faults(struct vc_server *s)
{
    vc_card_set_faults(s->card, &s->faults);
    vc_hid_set_faults(s->hid, &s->faults);
    vc_hid_set_personality(s->hid, vc_card_personality(s->card));
    vc_hid_set_caps(s->hid, vc_card_ctap1_enabled(s->card), vc_card_ctap2_enabled(s->card));
}

/* Comes back on a new port of the same address with no channels, and with
 * --uhid as a new UHID device (a new hidraw node). Nothing changes when
 * either cannot be made. Lock held. */
int vcs_do_replug(struct vc_server *s, char *err, size_t errlen)
{
    struct sockaddr_in want = s->addr;
    struct sockaddr_in got;
    struct vc_uhid *u = NULL;
    int fd;

    /* made while the old one still exists, so its node number differs */
    if (s->uhid_wanted && (u = vcs_new_uhid(s, err, errlen)) == NULL)
        return -1;
    want.sin_port = 0; /* the old socket is still bound: the port differs */
    fd = vcs_bind_udp(&want, &got, err, errlen);
    if (fd < 0) {
        vc_uhid_close(u);
        return -1;
    }
    if (s->uhid_wanted) {
        vcs_uhid_unplug(s);
        s->uhid = u;
    }
    close(s->udp);
    s->udp = fd;
    s->addr = got;
    vcs_set_uri(s);
    vc_hid_reset(s->hid);
    s->faults.on[VC_FAULT_UNPLUG] = false;
    vcs_apply_faults(s);
    if (s->job_active || s->job_ready)
        s->power_cycle_pending = true;
    else
        vc_card_power_cycle(s->card);
    s->nclients = 0;
    s->replugs++;
    if (vcs_announce_write(s) < 0)
        fprintf(stderr, "vcard: cannot rewrite announce file %s: %s\n", s->announce_path,
                strerror(errno));
    fprintf(stderr, "vcard: replugged, listening on %s\n", s->uri);
    return 0;
}

void vcs_do_unplug(struct vc_server *s)
{
    s->faults.on[VC_FAULT_UNPLUG] = true;
    vcs_apply_faults(s);
    vcs_announce_remove(s);
    vcs_uhid_unplug(s);
}
