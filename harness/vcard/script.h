/* vcard --script: a recorded card (a kcard JSON-lines trace, from rawctap
 * --trace-format json or rawctap trace import) served to any client. Each
 * request message a client sends is matched structurally against the next
 * one the trace recorded (ctaphid/replay_player.h: fresh nonces, a fresh
 * clientDataHash, PIN key agreement may differ); a match sends what the card
 * answered, report for report and paced as recorded: its INIT reply (its
 * channel, version and capabilities), keepalives, CTAPHID errors, framing
 * faults. An INIT the card never answered stays unanswered; a request the
 * card never answered hangs as it did. A request that differs, or comes
 * after the end of the trace, gets CTAPHID_ERROR ERR_OTHER, one JSON line
 * {"event":"script_diverged",...} on the log, and every later request the
 * same error. No sockets, no threads, no clock: the server passes the time
 * and a send callback, so unit tests drive it directly. */
#ifndef KCARD_VCARD_SCRIPT_H
#define KCARD_VCARD_SCRIPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "harness/vcard/hid.h"

struct vc_script;

/* Loads a trace. NULL-free: on failure a KC_ERR_* and err naming the line. */
int vc_script_load(const char *path, struct vc_script **out, char *err, size_t errlen);
int vc_script_load_buffer(const char *data, size_t len, const char *name, struct vc_script **out,
                          char *err, size_t errlen);
void vc_script_free(struct vc_script *sc);

/* Where reports go, and where the divergence line is written (NULL: no log). */
void vc_script_set_send(struct vc_script *sc, vc_hid_send_fn send, void *ctx);
void vc_script_set_log(struct vc_script *sc, FILE *log);

/* One report from a client at now_ms (monotonic). What the recorded card
 * sent in answer goes out through the send callback, now or from
 * vc_script_tick as recorded. */
void vc_script_input(struct vc_script *sc, const struct vc_hid_peer *from, const uint8_t *report,
                     size_t len, uint64_t now_ms);
/* Sends the recorded reports that are due. */
void vc_script_tick(struct vc_script *sc, uint64_t now_ms);
/* When vc_script_tick next has something to send (ms), or UINT64_MAX. */
uint64_t vc_script_deadline(const struct vc_script *sc);

/* {"file","position","messages","diverged","error"}: position counts the
 * recorded requests answered so far; error is the divergence or null. */
json_t *vc_script_status(const struct vc_script *sc);

#endif
