/* replay transport extras: open a JSON-lines trace held in memory (for the
 * fuzzer and tests) and count where the host departed from the trace. */
#ifndef KCARD_CTAPHID_REPLAY_H
#define KCARD_CTAPHID_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "ctaphid/transport.h"

#define KC_REPLAY_MAX_BYTES (16u * 1024u * 1024u)

/* As kc_replay_open, from a buffer; name is used in messages. */
int kc_replay_open_buffer(const char *data, size_t len, const char *name, struct kc_transport **out,
                          char *errbuf, size_t errlen);
/* Host writes that did not match the trace's "out" line (0 if not replay). */
uint64_t kc_replay_mismatches(const struct kc_transport *t);
/* "in" reports not yet played back. */
size_t kc_replay_remaining(const struct kc_transport *t);

#endif
