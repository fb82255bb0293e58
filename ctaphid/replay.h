/* replay transport extras: open a JSON-lines trace held in memory (for the
 * fuzzer and tests), the divergence that ended a replay, and the recorded
 * request a replayed answer belongs to. */
#ifndef KCARD_CTAPHID_REPLAY_H
#define KCARD_CTAPHID_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "ctaphid/transport.h"

#define KC_REPLAY_MAX_BYTES (16u * 1024u * 1024u)

/* As kc_replay_open, from a buffer; name is used in messages. */
int kc_replay_open_buffer(const char *data, size_t len, const char *name, struct kc_transport **out,
                          char *errbuf, size_t errlen);
/* Host messages that diverged from the trace (0 if not replay). A replay
 * ends at the first: its writes fail with KC_ERR_REPLAY_DIVERGED. */
uint64_t kc_replay_mismatches(const struct kc_transport *t);
/* "in" reports not yet played back. */
size_t kc_replay_remaining(const struct kc_transport *t);
/* 1 with the clientDataHash in cdh when the last replayed request was a
 * CTAP2 makeCredential or getAssertion that carried one (the answer the
 * host got was signed over it, not over the host's), else 0. */
int kc_replay_recorded_cdh(const struct kc_transport *t, uint8_t cdh[32]);
/* "replay diverged at report N (...): recorded ..., sent ..." once the
 * replay diverged, else NULL (also for other transports). */
const char *kc_replay_error(const struct kc_transport *t);

#endif
