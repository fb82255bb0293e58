/* A transport moves whole HID reports between the host and one device.
 * It knows nothing of CTAPHID: reports in, reports out, a deadline on read.
 *
 * Device URIs (design.md, "Transports"):
 *   /dev/hidraw0 or hidraw:/dev/hidraw0   Linux hidraw
 *   hidapi:PATH or hidapi:VID:PID          through hidapi (hex ids)
 *   udp:HOST:PORT[?local=PORT]             simulator, one report per datagram
 *   replay:FILE                            a JSON-lines trace played back as a device
 *   auto                                   first FIDO interface (hidraw scan, then
 *                                          cards announced in $KCARD_ANNOUNCE_DIR);
 *                                          resolved by ctaphid/discover.h
 */
#ifndef KCARD_CTAPHID_TRANSPORT_H
#define KCARD_CTAPHID_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KC_URI_MAX 512

struct kc_transport;

/* Open a concrete device URI (not "auto": that is discovery's, see
 * kc_transport_open in ctaphid/discover.h) through the scheme-to-backend
 * table. On failure returns a KC_ERR_* and, if errbuf is not NULL, a
 * sentence naming the path and the fix (e.g. permissions). */
int kc_transport_open_backend(const char *uri, struct kc_transport **out, char *errbuf,
                              size_t errlen);
void kc_transport_close(struct kc_transport *t);

/* What a caller may know of an open transport (its layout is private):
 * the URI as resolved ("auto" becomes the concrete one), the backend's kind
 * ("hidraw", "hidapi", "udp", "replay", "mem"), a sentence on its last
 * failure ("" if none) and that failure's errno (0 if none). */
const char *kc_transport_uri(const struct kc_transport *t);
const char *kc_transport_kind(const struct kc_transport *t);
const char *kc_transport_last_error(const struct kc_transport *t);
int kc_transport_last_errno(const struct kc_transport *t);
/* Waits at most timeout_ms for one input report, outside any CTAPHID
 * exchange (e.g. to notice that the card went away): the bytes stored in
 * buf (> 0), 0 when the time passed with nothing read, or a negative
 * KC_ERR_* (KC_ERR_UNPLUGGED: the node is gone). */
int kc_transport_read(struct kc_transport *t, uint8_t *buf, size_t cap, int timeout_ms);

/* Backends, also callable directly. */
int kc_hidraw_open(const char *path, struct kc_transport **out, char *errbuf, size_t errlen);
int kc_hidapi_open(const char *spec, struct kc_transport **out, char *errbuf, size_t errlen);
int kc_udp_open(const char *spec, struct kc_transport **out, char *errbuf, size_t errlen);
int kc_replay_open(const char *file, struct kc_transport **out, char *errbuf, size_t errlen);

/* The identity a hidraw transport remembered when it opened (read from
 * sysfs, see ctaphid/sysfs.h). KC_OK, KC_ERR_INVALID_ARG for another kind,
 * KC_ERR_NO_DEVICE when sysfs knew nothing of the node. */
struct kc_card_id;
int kc_hidraw_identity(const struct kc_transport *t, struct kc_card_id *id);

#endif
