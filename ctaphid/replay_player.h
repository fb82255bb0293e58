/* A recorded card played back, message by message: the host's reports are
 * reassembled into messages and matched structurally (replay_match.h)
 * against the messages the trace recorded; each match releases what the
 * card sent after that request, paced as recorded. The first request that
 * differs, or that comes after the end of the trace, ends the playback
 * with a sentence naming report and field. No clock and no I/O of its own:
 * the caller passes the time, so the replay transport (blocking reads) and
 * vcard --script (a poll loop, many clients) share it. */
#ifndef KCARD_CTAPHID_REPLAY_PLAYER_H
#define KCARD_CTAPHID_REPLAY_PLAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/trace_msg.h"

#define KC_PLAYER_ERROR_MAX 256

struct kc_player;

/* Takes ownership of log (freed by kc_player_free, also on failure). */
int kc_player_new(struct kc_trace_log *log, uint64_t now_us, struct kc_player **out);
void kc_player_free(struct kc_player *p);

/* One report from the host at now_us. KC_OK when it is taken (part of a
 * message, a matching message, an INIT the trace answers or ignores, a
 * CANCEL the trace did not record); KC_ERR_REPLAY_DIVERGED when the message
 * differs from the recorded one or comes after the end of the trace, with
 * kc_player_error() saying so. Once diverged, every report gets that. */
int kc_player_host_report(struct kc_player *p, const uint8_t *report, size_t len, uint64_t now_us);

/* The next card report due by now_us, copied into buf (at most cap bytes):
 * its length. 0 when none is due yet, with *due_us the time the next one
 * will be (UINT64_MAX: nothing more until the host sends something). */
size_t kc_player_card_report(struct kc_player *p, uint64_t now_us, uint8_t *buf, size_t cap,
                             uint64_t *due_us);

/* "replay diverged at report N (CTAP2 makeCredential): recorded ..., sent ..." */
const char *kc_player_error(const struct kc_player *p);
bool kc_player_diverged(const struct kc_player *p);
uint64_t kc_player_divergences(const struct kc_player *p);
/* The trace report number and line where the playback diverged (0 if not). */
size_t kc_player_diverged_report(const struct kc_player *p);
size_t kc_player_diverged_line(const struct kc_player *p);
/* The clientDataHash of the last matched request, when it was a CTAP2
 * makeCredential or getAssertion that had one. */
bool kc_player_recorded_cdh(const struct kc_player *p, uint8_t cdh[32]);
/* Recorded host messages matched so far, and in all. */
size_t kc_player_position(const struct kc_player *p);
size_t kc_player_messages(const struct kc_player *p);
/* Card reports not yet played back. */
size_t kc_player_in_remaining(const struct kc_player *p);
const struct kc_trace_log *kc_player_log(const struct kc_player *p);

#endif
