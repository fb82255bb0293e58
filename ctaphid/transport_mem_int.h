/* The scripted in-memory transport ("mem"), a test hook: unit tests,
 * fuzzers and benches drive libctaphid with it instead of a card. Included
 * by ctaphid/transport_mem.c and by tests only; not installed, not exported
 * by libctaphid.so. */
#ifndef KCARD_CTAPHID_TRANSPORT_MEM_INT_H
#define KCARD_CTAPHID_TRANSPORT_MEM_INT_H

#include <stddef.h>
#include <stdint.h>

#include "ctaphid/transport.h"

/* Scripted in-memory transport for unit tests: the test queues the reports
 * the "device" will return and inspects what the host wrote. */
struct kc_mem_transport;
struct kc_transport *kc_mem_transport_new(void);
/* Queue a report the device returns on a later read; it becomes readable
 * delay_ms of wall-clock time after it was queued (0: at once). */
int kc_mem_push(struct kc_transport *t, const uint8_t *report, size_t len, int delay_ms);
/* Queue a read that fails with the given KC_ERR_* (to test error paths). */
int kc_mem_push_error(struct kc_transport *t, int err);
/* Reports written by the host, oldest first. Returns 0 when none left. */
size_t kc_mem_pop_written(struct kc_transport *t, uint8_t *buf, size_t cap);
size_t kc_mem_written_count(const struct kc_transport *t);
/* Optional responder: called on every host write, may push replies. Lets a
 * test answer INIT with the nonce the host chose. */
typedef void (*kc_mem_responder)(struct kc_transport *t, const uint8_t *report, size_t len,
                                 void *ctx);
void kc_mem_set_responder(struct kc_transport *t, kc_mem_responder fn, void *ctx);

#endif
