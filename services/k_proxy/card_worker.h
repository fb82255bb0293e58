/* k_proxy's card thread: logins and enrolments that need the card run here,
 * one at a time, never on an HTTP thread. The route parks its request
 * (ksvc_defer), queues a job and returns; this thread runs the card
 * operation and the store writes, then answers (ksvc_complete).
 *
 * The queue is bounded: at most max_waiters jobs wait for the card or use
 * it, and a job beyond that is refused at once (the route answers 503
 * card_busy with Retry-After) instead of waiting out the card timeout.
 * Thread-safe. */
#ifndef KCARD_K_PROXY_CARD_WORKER_H
#define KCARD_K_PROXY_CARD_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KPX_MAX_CARD_WAITERS_DEFAULT 8
#define KPX_MAX_CARD_WAITERS_LIMIT 4096

/* A job, embedded first in the caller's own struct. run is called once on
 * the card thread and owns the job from then on (frees it); cancelled is
 * true when the worker is stopping and the job must answer without the card. */
struct kpx_card_job {
    void (*run)(struct kpx_card_job *job, bool cancelled);
    int64_t queued_ns; /* set by submit: kpx_limits_now_ns() */
    struct kpx_card_job *next;
};

enum kpx_card_submit {
    KPX_CARD_QUEUED = 0,
    KPX_CARD_FULL = 1,     /* max_waiters jobs already: the job was not taken */
    KPX_CARD_STOPPING = 2, /* the worker is stopping: the job was not taken */
};

struct kpx_card_worker;

/* Starts the thread; max_waiters 0: the default. NULL with err set. */
struct kpx_card_worker *kpx_card_worker_new(unsigned max_waiters, char *err, size_t errlen);
/* Takes job (queued_ns set) or refuses it at once. */
enum kpx_card_submit kpx_card_worker_submit(struct kpx_card_worker *w, struct kpx_card_job *job);
/* Jobs waiting or running now. */
unsigned kpx_card_worker_waiters(struct kpx_card_worker *w);
unsigned kpx_card_worker_max_waiters(const struct kpx_card_worker *w);
/* Refuses new jobs, runs the queued ones cancelled at once (on the calling
 * thread), waits for the running one and the thread. Call before the HTTP server stops (it waits
 * for the answers). Idempotent. */
void kpx_card_worker_stop(struct kpx_card_worker *w);
/* Stops (if not yet) and frees. NULL is fine. */
void kpx_card_worker_free(struct kpx_card_worker *w);

#endif
