/* Internal to the services' HTTP front (http.c, http_loop.c): the server
 * and its event loops. Not for services: they see http.h. */
#ifndef KCARD_SERVICES_HTTP_INT_H
#define KCARD_SERVICES_HTTP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "services/common/http.h"
#include "services/common/metrics.h"

struct conn_state;
struct addr_count;

/* A descriptor a service watches on a loop. */
struct loop_watch {
    ksvc_loop_io_fn fn; /* NULL: nobody wants its events (idle, or not watched) */
    void *arg;
    uint32_t in_set; /* the events it has in the epoll set; 0: not in the set */
};

/* An accepted connection one loop hands another (struct ksvc_loop's handoff). */
struct loop_handoff {
    int fd;
    socklen_t addrlen;
    struct sockaddr_storage addr;
};

/* One polling thread: its libmicrohttpd daemon, its epoll set (the daemon's
 * own epoll descriptor, a wake-up eventfd and the services' descriptors) and
 * the service timer. Only its thread touches it, but for the flags below. */
struct ksvc_loop {
    struct ksvc_server *s;
    unsigned index;
    struct MHD_Daemon *daemon;
    int epfd, mhd_fd, wake_fd;
    pthread_t thread;
    pthread_t self; /* set by the loop's thread itself, first thing */
    bool thread_started;
    struct loop_watch *watches; /* indexed by descriptor */
    size_t nwatches;
    int64_t timer_at; /* -1: none */
    bool resumed;     /* a connection was resumed on this thread since MHD_run */
    ksvc_loop_timer_fn timer_fn;
    void *timer_arg;
    atomic_bool quiesce, quiesced, stop;
    int start_rc; /* the loop_start hook's; -2: not run yet */
    /* Accepting (http.c): every loop watches the listening socket, and a
     * loop serving more than twice the least busy one (and one) hands a new
     * connection to it */
    atomic_int conns;      /* connections given to this loop and not yet closed */
    atomic_bool accepting; /* the listening socket is in this loop's set */
    int64_t accept_retry;  /* out of descriptors: when to try accepting again; -1: not */
    bool accept_starved;   /* accept_paused is logged for this lack of descriptors */
    atomic_bool handed;    /* handoff holds connections */
    pthread_mutex_t handoff_lock;
    struct loop_handoff *handoff; /* from other loops, for this one's daemon */
    size_t handoff_len, handoff_cap;
    pthread_mutex_t start_lock;
    pthread_cond_t started;
};

struct ksvc_server {
    struct ksvc_server_cfg cfg;
    struct ksvc_loop *loops;
    unsigned nloops;
    int listen_fd;
    struct ksvc_metrics *metrics;
    char *cert_pem, *key_pem;
    size_t key_len;
    int port;
    time_t started;
    char boot_id[9];
    atomic_ullong next_request;
    atomic_bool scheduling_kept; /* a loop kept the process's policy (asked to,
                                    refused batch, or started under another) */
    char prefix[48];             /* kcard_<service> */

    pthread_mutex_t conn_lock; /* conns, nconns, addrs */
    struct conn_state *conns;
    unsigned nconns;
    struct addr_count *addrs;
    size_t addr_mask;

    atomic_ullong refused_limit, refused_per_address, closed_timeout, closed_framing, closed_unsent;
    atomic_uint outstanding; /* suspended connections not yet resumed */

    pthread_t reaper;
    bool reaper_started, reaper_stop;
    pthread_cond_t reaper_wake;

    pthread_mutex_t job_lock;
    pthread_cond_t job_ready;
    struct conn_state *job_head, *job_tail;
    pthread_t *workers;
    unsigned nworkers;
    bool workers_stop;

    atomic_llong mhd_log_window;
    atomic_int mhd_log_lines;
    atomic_ullong mhd_log_suppressed;
};

/* Wakes the loop's thread (a connection was resumed from another thread,
 * or the loop is to stop). */
void ksvc_loop_wake(struct ksvc_loop *loop);
/* Accepts what the listening socket holds (a batch) and gives each
 * connection to this loop's daemon at once or, when this loop serves more
 * than twice the least busy one (and one), to that loop through its
 * handoff (http.c; on the loop's thread). */
void ksvc_loop_accept(struct ksvc_loop *loop);
/* Takes the listening socket out of this loop's set (quiescing, or out of
 * descriptors); on the loop's thread. */
void ksvc_loop_accept_off(struct ksvc_loop *loop);
/* Takes the connections other loops handed this one, and starts accepting
 * again when an earlier lack of descriptors has had time to pass (http.c;
 * on the loop's thread, before libmicrohttpd runs). */
void ksvc_loop_accept_work(struct ksvc_loop *loop);
/* The body of a polling thread (pthread_create's start routine). */
void *ksvc_loop_main(void *arg);
/* Ends the loop's thread (its loop_stop hook runs there) and frees it. */
void ksvc_loop_end(struct ksvc_loop *loop);

#endif
