/* Internal to libctaphid's transports: pieces the concrete transports share.
 * Not a public API. */
#ifndef KCARD_CTAPHID_TRANSPORT_INT_H
#define KCARD_CTAPHID_TRANSPORT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "ctaphid/transport.h"

/* A zeroed transport with ops and kind set and a zeroed private part of
 * priv_size bytes in t->priv; NULL, with nothing allocated, when out of
 * memory. The transport's close op frees both. */
struct kc_transport *kc_transport_alloc(const struct kc_transport_ops *ops, const char *kind,
                                        size_t priv_size);

/* The deadline of a read with timeout_ms (< 0: none, UINT64_MAX), in
 * kc_now_us() time. */
uint64_t kc_read_deadline(int timeout_ms);

/* Waits in poll() until fd is readable: 1 with its poll revents in *revents,
 * 0 once deadline has passed (never when timeout_ms < 0), or -1 when poll
 * fails (errno kept). EINTR is retried. */
int kc_fd_wait_readable(int fd, int timeout_ms, uint64_t deadline, short *revents);

#endif
