/* The event loops of the services' HTTP front (see http.h): each polling
 * thread waits on one epoll set holding its libmicrohttpd daemon's epoll
 * descriptor, a wake-up eventfd and the descriptors services watch
 * (ksvc_loop_watch), runs the service timer, and runs libmicrohttpd when
 * it has work. http.c starts the daemons and the threads. */
#include "services/common/http.h"
#include "services/common/http_int.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <microhttpd.h>

#include "services/common/log.h"
#include "util/clock.h"

#define LOOP_EVENTS_MAX 64
#define LOOP_SLEEP_MAX_MS 1000

int64_t ksvc_now_ms(void)
{
    return (int64_t)kcu_now_ms();
}

unsigned ksvc_loop_index(const struct ksvc_loop *loop)
{
    return loop->index;
}

bool ksvc_loop_is_current(const struct ksvc_loop *loop)
{
    return pthread_equal(pthread_self(), loop->self);
}

int ksvc_loop_watch(struct ksvc_loop *loop, int fd, uint32_t events, ksvc_loop_io_fn fn, void *arg)
{
    if (fd < 0 || fd == loop->mhd_fd || fd == loop->wake_fd) {
        errno = EINVAL;
        return -1;
    }
    if ((size_t)fd >= loop->nwatches) {
        size_t n = loop->nwatches ? loop->nwatches : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct loop_watch *w = realloc(loop->watches, n * sizeof(*w));
        if (w == NULL)
            return -1;
        memset(w + loop->nwatches, 0, (n - loop->nwatches) * sizeof(*w));
        loop->watches = w;
        loop->nwatches = n;
    }
    struct loop_watch *w = &loop->watches[fd];
    if (events == 0) {
        if (w->in_set != 0)
            epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
        w->fn = NULL;
        w->arg = NULL;
        w->in_set = 0;
        return 0;
    }
    if (w->in_set != events) { /* an idle descriptor watched for the same events: no call */
        struct epoll_event ev = {.events = events, .data.fd = fd};
        int op = w->in_set != 0 ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (epoll_ctl(loop->epfd, op, fd, &ev) != 0) {
            /* a descriptor closed and reused behind our back: start afresh */
            op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
            if (epoll_ctl(loop->epfd, op, fd, &ev) != 0) {
                w->fn = NULL;
                w->arg = NULL;
                w->in_set = 0;
                return -1;
            }
        }
        w->in_set = events;
    }
    w->fn = fn;
    w->arg = arg;
    return 0;
}

void ksvc_loop_idle(struct ksvc_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->nwatches)
        return;
    loop->watches[fd].fn = NULL;
    loop->watches[fd].arg = NULL;
}

/* An event of a descriptor nobody watches: an idle one (its peer closed it,
 * or sent something unasked) leaves the set now. */
static void loop_drop_idle(struct ksvc_loop *loop, int fd)
{
    if ((size_t)fd < loop->nwatches && loop->watches[fd].in_set != 0) {
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
        loop->watches[fd].in_set = 0;
    }
}

void ksvc_loop_timer(struct ksvc_loop *loop, int64_t at_ms, ksvc_loop_timer_fn fn, void *arg)
{
    loop->timer_at = at_ms;
    loop->timer_fn = fn;
    loop->timer_arg = arg;
}

void ksvc_loop_wake(struct ksvc_loop *loop)
{
    uint64_t one = 1;
    if (write(loop->wake_fd, &one, sizeof(one)) < 0) { /* full: it is awake */
    }
}

/* How long the loop may sleep, and whether libmicrohttpd has work now. */
static int loop_sleep_ms(struct ksvc_loop *loop, bool *mhd_now)
{
    int64_t now = ksvc_now_ms(), until = now + LOOP_SLEEP_MAX_MS;
    MHD_UNSIGNED_LONG_LONG mt = 0;
    *mhd_now = loop->resumed;
    if (MHD_get_timeout(loop->daemon, &mt) == MHD_YES) {
        if (mt == 0)
            *mhd_now = true;
        else if ((int64_t)mt < until - now)
            until = now + (int64_t)mt;
    }
    if (loop->timer_at >= 0 && loop->timer_at < until)
        until = loop->timer_at;
    if (loop->accept_retry >= 0 && loop->accept_retry < until)
        until = loop->accept_retry;
    return *mhd_now || until <= now ? 0 : (int)(until - now);
}

/* Puts the calling polling thread under the configured policy. A policy
 * the operator chose for the process (anything but the kernel's default)
 * is kept. Being refused (by a seccomp profile or an LSM: from SCHED_OTHER
 * no privilege is needed) costs speed, not service: the first loop says so
 * in the log and every loop goes on under the policy it has. */
static void loop_set_scheduling(const struct ksvc_loop *loop)
{
    struct sched_param param = {.sched_priority = 0};
    int policy = -1;
    if (loop->s->cfg.cpu_scheduling != KSVC_CPU_BATCH ||
        pthread_getschedparam(pthread_self(), &policy, &param) != 0 || policy != SCHED_OTHER) {
        atomic_store(&loop->s->scheduling_kept, true);
        return;
    }
    int rc = pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
    if (rc == 0)
        return;
    atomic_store(&loop->s->scheduling_kept, true);
    if (loop->index == 0)
        ksvc_log("warn", "cpu_scheduling_unavailable",
                 json_pack("{s:s, s:s}", "wanted", "batch", "error", strerror(rc)));
}

void *ksvc_loop_main(void *arg)
{
    struct ksvc_loop *loop = arg;
    loop->self = pthread_self();
    struct ksvc_server *s = loop->s;
    char name[16];
    snprintf(name, sizeof(name), "http-loop-%u", loop->index % 1000);
    pthread_setname_np(loop->self, name); /* top -H, ps -L */
    loop_set_scheduling(loop);
    int rc = 0;
    if (s->cfg.loop_start != NULL)
        rc = s->cfg.loop_start(s->cfg.ctx, loop, loop->index);
    pthread_mutex_lock(&loop->start_lock);
    loop->start_rc = rc;
    pthread_cond_signal(&loop->started);
    pthread_mutex_unlock(&loop->start_lock);
    if (rc != 0)
        return NULL;
    struct epoll_event ev[LOOP_EVENTS_MAX];
    while (!atomic_load(&loop->stop)) {
        bool mhd_now;
        int wait_ms = loop_sleep_ms(loop, &mhd_now);
        int n = epoll_wait(loop->epfd, ev, LOOP_EVENTS_MAX, wait_ms);
        /* woken by the timeout: libmicrohttpd's own timeouts may be due */
        bool run_mhd = mhd_now || n == 0;
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == loop->mhd_fd) {
                run_mhd = true;
            } else if (fd == loop->wake_fd) {
                run_mhd = true; /* a connection was resumed from another thread */
                uint64_t count;
                if (read(loop->wake_fd, &count, sizeof(count)) < 0) { /* drained already */
                }
            } else if (fd == s->listen_fd) {
                ksvc_loop_accept(loop);
                run_mhd = true;
            } else if ((size_t)fd < loop->nwatches && loop->watches[fd].fn != NULL) {
                loop->watches[fd].fn(loop->watches[fd].arg, fd, ev[i].events);
            } else {
                loop_drop_idle(loop, fd);
            }
        }
        if (loop->timer_at >= 0 && loop->timer_at <= ksvc_now_ms()) {
            loop->timer_at = -1;
            loop->timer_fn(loop->timer_arg);
        }
        if (atomic_load(&loop->handed) || loop->accept_retry >= 0) {
            ksvc_loop_accept_work(loop);
            run_mhd = true;
        }
        if (run_mhd || loop->resumed) {
            loop->resumed = false;
            MHD_run(loop->daemon);
        }
        if (atomic_load(&loop->quiesce) && !atomic_load(&loop->quiesced)) {
            /* the loops accept, not the daemons: the socket leaves this set */
            ksvc_loop_accept_off(loop);
            loop->accept_retry = -1;
            atomic_store(&loop->quiesced, true);
        }
    }
    if (s->cfg.loop_stop != NULL)
        s->cfg.loop_stop(s->cfg.ctx, loop, loop->index);
    return NULL;
}

void ksvc_loop_end(struct ksvc_loop *loop)
{
    if (loop->thread_started) {
        atomic_store(&loop->stop, true);
        ksvc_loop_wake(loop);
        pthread_join(loop->thread, NULL);
        loop->thread_started = false;
    }
    if (loop->daemon != NULL)
        MHD_stop_daemon(loop->daemon);
    loop->daemon = NULL;
    for (size_t i = 0; i < loop->handoff_len; i++)
        close(loop->handoff[i].fd); /* handed over as the loop stopped */
    free(loop->handoff);
    loop->handoff = NULL;
    loop->handoff_len = loop->handoff_cap = 0;
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->wake_fd >= 0)
        close(loop->wake_fd);
    loop->epfd = loop->wake_fd = -1;
    free(loop->watches);
    loop->watches = NULL;
    loop->nwatches = 0;
    if (loop->s != NULL) {
        pthread_mutex_destroy(&loop->start_lock);
        pthread_mutex_destroy(&loop->handoff_lock);
        pthread_cond_destroy(&loop->started);
        loop->s = NULL;
    }
}
