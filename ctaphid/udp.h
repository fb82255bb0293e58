/* udp transport extras (the transport itself is declared in transport.h). */
#ifndef KCARD_CTAPHID_UDP_H
#define KCARD_CTAPHID_UDP_H

#include <stdint.h>

#include "ctaphid/transport.h"

/* Datagrams skipped because they were not exactly one 64-byte report
 * (0 for a transport that is not udp). */
uint64_t kc_udp_skipped_datagrams(const struct kc_transport *t);

/* Datagrams ignored because they came from another address than the card's
 * (only an unconnected "?local=" socket can receive them; 0 otherwise). */
uint64_t kc_udp_foreign_datagrams(const struct kc_transport *t);

/* Where the transport traces what the framing layer never sees (datagrams
 * from other addresses). NULL: nowhere. A no-op for other transports. */
struct kc_trace;
void kc_udp_set_trace(struct kc_transport *t, struct kc_trace *tr);

#endif
