/* udp transport extras (the transport itself is declared in transport.h). */
#ifndef KCARD_CTAPHID_UDP_H
#define KCARD_CTAPHID_UDP_H

#include <stdint.h>

#include "ctaphid/transport.h"

/* Datagrams skipped because they were not exactly one 64-byte report
 * (0 for a transport that is not udp). */
uint64_t kc_udp_skipped_datagrams(const struct kc_transport *t);

#endif
