/* k_proxy's card thread and its bounded queue (card_worker.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/k_proxy/card_worker.h"
#include "services/k_proxy/limits.h"

struct kpx_card_worker {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    pthread_t thread;
    bool started, stopping, joined;
    unsigned max_waiters;
    unsigned waiters; /* queued + running */
    struct kpx_card_job *head, *tail;
};

static void *card_main(void *arg)
{
    pthread_setname_np(pthread_self(), "card-worker"); /* top -H, ps -L */
    struct kpx_card_worker *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->head == NULL && !w->stopping)
            pthread_cond_wait(&w->ready, &w->lock);
        if (w->head == NULL)
            break;
        struct kpx_card_job *job = w->head;
        w->head = job->next;
        if (w->head == NULL)
            w->tail = NULL;
        bool cancelled = w->stopping;
        pthread_mutex_unlock(&w->lock);
        job->next = NULL;
        job->run(job, cancelled); /* frees the job */
        pthread_mutex_lock(&w->lock);
        w->waiters--;
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

struct kpx_card_worker *kpx_card_worker_new(unsigned max_waiters, char *err, size_t errlen)
{
    if (max_waiters > KPX_MAX_CARD_WAITERS_LIMIT) {
        snprintf(err, errlen, "at most %d card waiters", KPX_MAX_CARD_WAITERS_LIMIT);
        return NULL;
    }
    struct kpx_card_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->max_waiters = max_waiters > 0 ? max_waiters : KPX_MAX_CARD_WAITERS_DEFAULT;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->ready, NULL);
    if (pthread_create(&w->thread, NULL, card_main, w) != 0) {
        snprintf(err, errlen, "cannot start the card thread");
        pthread_cond_destroy(&w->ready);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    w->started = true;
    return w;
}

enum kpx_card_submit kpx_card_worker_submit(struct kpx_card_worker *w, struct kpx_card_job *job)
{
    job->queued_ns = kpx_limits_now_ns();
    job->next = NULL;
    pthread_mutex_lock(&w->lock);
    enum kpx_card_submit rc = KPX_CARD_QUEUED;
    if (w->stopping)
        rc = KPX_CARD_STOPPING;
    else if (w->waiters >= w->max_waiters)
        rc = KPX_CARD_FULL;
    else {
        if (w->tail != NULL)
            w->tail->next = job;
        else
            w->head = job;
        w->tail = job;
        w->waiters++;
        pthread_cond_signal(&w->ready);
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

unsigned kpx_card_worker_waiters(struct kpx_card_worker *w)
{
    pthread_mutex_lock(&w->lock);
    unsigned n = w->waiters;
    pthread_mutex_unlock(&w->lock);
    return n;
}

unsigned kpx_card_worker_max_waiters(const struct kpx_card_worker *w)
{
    return w->max_waiters;
}

void kpx_card_worker_stop(struct kpx_card_worker *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    struct kpx_card_job *waiting = w->head; /* answered now, not after the card */
    w->head = w->tail = NULL;
    pthread_cond_broadcast(&w->ready);
    bool join = w->started && !w->joined;
    w->joined = true;
    pthread_mutex_unlock(&w->lock);
    while (waiting != NULL) {
        struct kpx_card_job *next = waiting->next;
        waiting->next = NULL;
        waiting->run(waiting, true);
        pthread_mutex_lock(&w->lock);
        w->waiters--;
        pthread_mutex_unlock(&w->lock);
        waiting = next;
    }
    if (join)
        pthread_join(w->thread, NULL);
}

void kpx_card_worker_free(struct kpx_card_worker *w)
{
    if (w == NULL)
        return;
    kpx_card_worker_stop(w);
    pthread_cond_destroy(&w->ready);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
