/*
 * floor_proxy: the front half of the "library floor" for issue 9's chain
 * bench: the prescribed libraries (libmicrohttpd 0.9.75 + libcurl multi)
 * doing nothing but forwarding. N threads share one listening socket; each
 * owns an MHD daemon (external epoll, suspend/resume) and a curl multi, all
 * driven by one epoll loop per thread. A bench tool, not a service.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "bench/floor/cli.h"

#define REPLY_MAX 4096
#define MAX_EVENTS 64
#define UPSTREAM_CONNS 64L
#define UPSTREAM_TIMEOUT_MS 5000L

struct worker;

/* Per-connection state, recycled through the worker's free list. */
struct conn_state {
    struct worker *w;
    struct MHD_Connection *conn;
    struct transfer *xfer; /* set while an upstream call is attached */
    struct conn_state *next_free;
    long status;
    int answered; /* the upstream call finished (status/body valid) */
    size_t len;
    char body[REPLY_MAX];
};

/* A pooled easy handle; its options (PRIVATE/WRITEDATA = this) are set once. */
struct transfer {
    CURL *easy;
    CURLU *url; /* the upstream URL parsed once, as k_proxy's request slots keep it */
    struct conn_state *st;
    struct transfer *next_free;
    struct transfer *busy_prev, *busy_next; /* the worker's in-flight list */
};

struct worker {
    pthread_t thread;
    int thread_started;
    int epfd;
    int mhd_fd;
    int stop_fd; /* shared eventfd: readable once the process is stopping */
    int failed;
    int stopping; /* set at shutdown: answer 503 instead of suspending */
    struct MHD_Daemon *daemon;
    CURLM *multi;
    const char *upstream;
    const char *ca_file;        /* NULL: a plain upstream */
    long long curl_deadline_ms; /* -1: curl wants no timeout */
    struct conn_state *free_states;
    struct transfer *free_transfers;
    struct transfer *busy; /* attached to a connection: MHD_stop_daemon must not see them */
};

static void usage(FILE *f)
{
    fprintf(f, "usage: floor_proxy --upstream URL [--ca-file PATH] [--port N] [--port-file PATH]\n"
               "                   [--threads N] [--tls-certfile PATH --tls-keyfile PATH]\n"
               "  --upstream URL   where every request is POSTed (e.g. http://127.0.0.1:P/x)\n"
               "  --ca-file PATH   the CA that signed an https:// upstream's certificate\n"
               "  --port N         TCP port on 127.0.0.1 (0 = any; default 0)\n"
               "  --port-file PATH write the bound port and a newline to PATH\n"
               "  --threads N      event-loop threads (default: online CPUs)\n"
               "  --tls-certfile PATH, --tls-keyfile PATH  serve HTTPS with this PEM pair\n"
               "Answers with the upstream's status and body; stops on SIGTERM/SIGINT.\n");
}

static long long now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The one listening socket all threads' daemons accept from. */
static int open_listener(unsigned port, unsigned *bound_port)
{
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        fprintf(stderr, "floor_proxy: socket: %s\n", strerror(errno));
        return -1;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &alen) != 0) {
        fprintf(stderr, "floor_proxy: cannot listen on 127.0.0.1:%u: %s\n", port, strerror(errno));
        close(fd);
        return -1;
    }
    *bound_port = ntohs(addr.sin_port);
    return fd;
}

/* ---- curl side ---- */

static size_t on_upstream_data(char *data, size_t size, size_t nmemb, void *userp)
{
    struct transfer *t = userp;
    struct conn_state *st = t->st;
    size_t n = size * nmemb;

    if (st == NULL || n > sizeof(st->body) - st->len)
        return 0; /* more than REPLY_MAX: curl fails the transfer, we answer 502 */
    memcpy(st->body + st->len, data, n);
    st->len += n;
    return n;
}

static struct transfer *transfer_new(struct worker *w)
{
    struct transfer *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->easy = curl_easy_init();
    t->url = curl_url();
    if (t->easy == NULL || t->url == NULL) {
        curl_easy_cleanup(t->easy);
        curl_url_cleanup(t->url);
        free(t);
        return NULL;
    }
    if (curl_url_set(t->url, CURLUPART_URL, w->upstream, 0) != CURLUE_OK ||
        curl_easy_setopt(t->easy, CURLOPT_CURLU, t->url) != CURLE_OK ||
        curl_easy_setopt(t->easy, CURLOPT_POST, 1L) != CURLE_OK ||
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, "") != CURLE_OK ||
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE, 0L) != CURLE_OK ||
        curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_upstream_data) != CURLE_OK ||
        curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t) != CURLE_OK ||
        curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t) != CURLE_OK ||
        curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, UPSTREAM_TIMEOUT_MS) != CURLE_OK ||
        curl_easy_setopt(t->easy, CURLOPT_PROXY, "") != CURLE_OK ||
        (w->ca_file != NULL && curl_easy_setopt(t->easy, CURLOPT_CAINFO, w->ca_file) != CURLE_OK)) {
        curl_easy_cleanup(t->easy);
        curl_url_cleanup(t->url);
        free(t);
        return NULL;
    }
    return t;
}

static struct transfer *transfer_get(struct worker *w)
{
    struct transfer *t = w->free_transfers;

    if (t == NULL && (t = transfer_new(w)) == NULL)
        return NULL;
    if (t == w->free_transfers)
        w->free_transfers = t->next_free;
    t->next_free = NULL;
    t->busy_prev = NULL;
    t->busy_next = w->busy;
    if (w->busy != NULL)
        w->busy->busy_prev = t;
    w->busy = t;
    return t;
}

/* Detaches the transfer from its connection and back into the pool. */
static void transfer_put(struct worker *w, struct transfer *t)
{
    if (curl_multi_remove_handle(w->multi, t->easy) != CURLM_OK)
        fprintf(stderr, "floor_proxy: curl_multi_remove_handle failed\n");
    if (t->st != NULL)
        t->st->xfer = NULL;
    t->st = NULL;
    if (t->busy_prev != NULL)
        t->busy_prev->busy_next = t->busy_next;
    else
        w->busy = t->busy_next;
    if (t->busy_next != NULL)
        t->busy_next->busy_prev = t->busy_prev;
    t->busy_prev = t->busy_next = NULL;
    t->next_free = w->free_transfers;
    w->free_transfers = t;
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct worker *w = userp;
    struct epoll_event ev;

    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        /* curl may already have closed it: ENOENT/EBADF are fine here */
        if (epoll_ctl(w->epfd, EPOLL_CTL_DEL, s, NULL) != 0 && errno != ENOENT && errno != EBADF)
            fprintf(stderr, "floor_proxy: epoll_ctl DEL: %s\n", strerror(errno));
        return 0;
    }
    memset(&ev, 0, sizeof(ev));
    ev.data.fd = s;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev.events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, s, &ev) == 0)
        return 0;
    if (errno == ENOENT && epoll_ctl(w->epfd, EPOLL_CTL_ADD, s, &ev) == 0)
        return 0;
    fprintf(stderr, "floor_proxy: epoll_ctl for a curl socket: %s\n", strerror(errno));
    return -1;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct worker *w = userp;

    (void)multi;
    w->curl_deadline_ms = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    return 0;
}

static void curl_action(struct worker *w, curl_socket_t s, int bits)
{
    int running = 0;

    if (curl_multi_socket_action(w->multi, s, bits, &running) != CURLM_OK)
        fprintf(stderr, "floor_proxy: curl_multi_socket_action failed\n");
}

/* Stores each finished call's answer and resumes its connection. */
static int drain_finished(struct worker *w)
{
    int resumed = 0;
    int left = 0;
    CURLMsg *msg;

    while ((msg = curl_multi_info_read(w->multi, &left)) != NULL) {
        struct transfer *t = NULL;
        struct conn_state *st;
        long code = 0;

        if (msg->msg != CURLMSG_DONE)
            continue;
        if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t) != CURLE_OK ||
            t == NULL || t->st == NULL)
            continue;
        st = t->st;
        if (msg->data.result != CURLE_OK ||
            curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code < 100 ||
            code > 999) {
            st->status = MHD_HTTP_BAD_GATEWAY;
            st->len = 0;
        } else {
            st->status = code;
        }
        st->answered = 1;
        MHD_resume_connection(st->conn);
        resumed = 1;
    }
    return resumed;
}

/* ---- MHD side ---- */

static struct conn_state *state_get(struct worker *w, struct MHD_Connection *conn)
{
    struct conn_state *st = w->free_states;

    if (st != NULL)
        w->free_states = st->next_free;
    else if ((st = malloc(sizeof(*st))) == NULL)
        return NULL;
    st->w = w;
    st->conn = conn;
    st->xfer = NULL;
    st->next_free = NULL;
    st->status = 0;
    st->answered = 0;
    st->len = 0;
    return st;
}

static enum MHD_Result start_upstream_call(struct worker *w, struct conn_state *st)
{
    struct transfer *t = transfer_get(w);

    if (t == NULL)
        return MHD_NO;
    t->st = st;
    st->xfer = t;
    if (curl_multi_add_handle(w->multi, t->easy) != CURLM_OK) {
        transfer_put(w, t);
        return MHD_NO;
    }
    MHD_suspend_connection(st->conn);
    return MHD_YES;
}

static enum MHD_Result send_answer(struct worker *w, struct conn_state *st)
{
    struct MHD_Response *r;
    enum MHD_Result ret = MHD_NO;

    r = MHD_create_response_from_buffer(st->len, st->body, MHD_RESPMEM_MUST_COPY);
    if (r != NULL) {
        if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") == MHD_YES)
            ret = MHD_queue_response(st->conn, (unsigned int)st->status, r);
        MHD_destroy_response(r);
    }
    if (st->xfer != NULL)
        transfer_put(w, st->xfer);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct worker *w = cls;
    struct conn_state *st = *con_cls;

    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    if (st == NULL) {
        st = state_get(w, conn);
        if (st == NULL)
            return MHD_NO;
        *con_cls = st;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* the floor forwards an empty POST */
        return MHD_YES;
    }
    if (!st->answered && w->stopping) {
        st->status = MHD_HTTP_SERVICE_UNAVAILABLE;
        st->len = 0;
        st->answered = 1;
    }
    if (st->answered)
        return send_answer(w, st);
    if (st->xfer != NULL)
        return MHD_YES; /* still in flight (not expected while suspended) */
    return start_upstream_call(w, st);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct worker *w = cls;
    struct conn_state *st = *con_cls;

    (void)conn;
    (void)toe;
    if (st == NULL)
        return;
    if (st->xfer != NULL) /* client went away before the answer was sent */
        transfer_put(w, st->xfer);
    st->next_free = w->free_states;
    w->free_states = st;
    *con_cls = NULL;
}

/* ---- the per-thread loop ---- */

static int epoll_watch(int epfd, int fd)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        fprintf(stderr, "floor_proxy: epoll_ctl ADD: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* The epoll_wait timeout: the nearer of curl's and MHD's deadlines. */
static int loop_timeout(struct worker *w, long long now, long long *mhd_deadline)
{
    MHD_UNSIGNED_LONG_LONG mhd_ms = 0;
    long long wait = -1;

    *mhd_deadline = -1;
    if (MHD_get_timeout(w->daemon, &mhd_ms) == MHD_YES) {
        if (mhd_ms > 60000)
            mhd_ms = 60000;
        *mhd_deadline = now + (long long)mhd_ms;
        wait = (long long)mhd_ms;
    }
    if (w->curl_deadline_ms >= 0) {
        long long c = w->curl_deadline_ms > now ? w->curl_deadline_ms - now : 0;

        if (wait < 0 || c < wait)
            wait = c;
    }
    return (int)wait;
}

static int curl_bits(uint32_t events)
{
    int bits = 0;

    if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
        bits |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        bits |= CURL_CSELECT_OUT;
    if (events & EPOLLERR)
        bits |= CURL_CSELECT_ERR;
    return bits;
}

/* A dead loop would leave its share of connections hanging: stop the process. */
static void *worker_failed(struct worker *w)
{
    w->failed = 1;
    if (kill(getpid(), SIGTERM) != 0)
        fprintf(stderr, "floor_proxy: cannot stop the process: %s\n", strerror(errno));
    return NULL;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[MAX_EVENTS];

    for (;;) {
        long long mhd_deadline;
        long long now = now_ms();
        int timeout = loop_timeout(w, now, &mhd_deadline);
        int n = epoll_wait(w->epfd, evs, MAX_EVENTS, timeout);
        int run_mhd = 0;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "floor_proxy: epoll_wait: %s\n", strerror(errno));
            return worker_failed(w);
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;

            if (fd == w->stop_fd)
                return NULL;
            if (fd == w->mhd_fd)
                run_mhd = 1;
            else
                curl_action(w, fd, curl_bits(evs[i].events));
        }
        now = now_ms();
        if (w->curl_deadline_ms >= 0 && now >= w->curl_deadline_ms) {
            w->curl_deadline_ms = -1; /* curl sets the next one from inside the call */
            curl_action(w, CURL_SOCKET_TIMEOUT, 0);
        }
        if (drain_finished(w))
            run_mhd = 1;
        if (mhd_deadline >= 0 && now >= mhd_deadline)
            run_mhd = 1;
        if (run_mhd && MHD_run(w->daemon) != MHD_YES) {
            fprintf(stderr, "floor_proxy: MHD_run failed\n");
            return worker_failed(w);
        }
    }
}

static int worker_init(struct worker *w, int listen_fd, int stop_fd, const struct floor_options *o)
{
    const union MHD_DaemonInfo *info;
    /* as the chain's services serve HTTPS: libmicrohttpd's TLS, PEM in memory */
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, o->cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, o->key_pem},
        {MHD_OPTION_END, 0, NULL},
    };

    w->epfd = -1;
    w->stop_fd = stop_fd;
    w->upstream = o->upstream;
    w->ca_file = o->ca_file;
    w->curl_deadline_ms = -1;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        fprintf(stderr, "floor_proxy: epoll_create1: %s\n", strerror(errno));
        return -1;
    }
    w->daemon =
        MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                             (o->cert_pem != NULL ? MHD_USE_TLS : 0),
                         0, NULL, NULL, on_request, w, MHD_OPTION_LISTEN_SOCKET,
                         (MHD_socket)listen_fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, w,
                         MHD_OPTION_ARRAY, o->cert_pem != NULL ? tls : tls + 2, MHD_OPTION_END);
    if (w->daemon == NULL) {
        fprintf(stderr, "floor_proxy: cannot start a libmicrohttpd daemon\n");
        return -1;
    }
    info = MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL || info->epoll_fd < 0) {
        fprintf(stderr, "floor_proxy: cannot read libmicrohttpd's epoll fd\n");
        return -1;
    }
    w->mhd_fd = info->epoll_fd;
    w->multi = curl_multi_init();
    if (w->multi == NULL) {
        fprintf(stderr, "floor_proxy: curl_multi_init failed\n");
        return -1;
    }
    if (curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
        curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w) != CURLM_OK ||
        curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w) != CURLM_OK ||
        curl_multi_setopt(w->multi, CURLMOPT_MAX_HOST_CONNECTIONS, UPSTREAM_CONNS) != CURLM_OK ||
        curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, UPSTREAM_CONNS) != CURLM_OK) {
        fprintf(stderr, "floor_proxy: cannot configure the curl multi handle\n");
        return -1;
    }
    if (epoll_watch(w->epfd, w->mhd_fd) != 0 || epoll_watch(w->epfd, w->stop_fd) != 0)
        return -1;
    return 0;
}

/*
 * MHD 0.9.75 panics when stopped with suspended connections: answer every
 * call still in flight with 503, resume it and let MHD process it once.
 * While stopping, the handler answers 503 at once and suspends nothing new
 * (a kept-alive connection may bring its next request during that run).
 */
static void cancel_in_flight(struct worker *w)
{
    w->stopping = 1;
    while (w->busy != NULL) {
        struct transfer *t = w->busy;
        struct conn_state *st = t->st;

        transfer_put(w, t);
        if (st != NULL && !st->answered) {
            st->status = MHD_HTTP_SERVICE_UNAVAILABLE;
            st->len = 0;
            st->answered = 1;
            MHD_resume_connection(st->conn);
        }
    }
    if (MHD_run(w->daemon) != MHD_YES)
        fprintf(stderr, "floor_proxy: MHD_run during shutdown failed\n");
}

/* The daemon goes first, with nothing suspended; then the curl handles. */
static void worker_fini(struct worker *w)
{
    if (w->daemon != NULL) {
        if (w->multi != NULL)
            cancel_in_flight(w);
        MHD_quiesce_daemon(w->daemon); /* the shared socket is closed once, by main */
        MHD_stop_daemon(w->daemon);
    }
    while (w->free_transfers != NULL) {
        struct transfer *t = w->free_transfers;

        w->free_transfers = t->next_free;
        curl_easy_cleanup(t->easy);
        curl_url_cleanup(t->url);
        free(t);
    }
    while (w->free_states != NULL) {
        struct conn_state *st = w->free_states;

        w->free_states = st->next_free;
        free(st);
    }
    if (w->multi != NULL && curl_multi_cleanup(w->multi) != CURLM_OK)
        fprintf(stderr, "floor_proxy: curl_multi_cleanup failed\n");
    if (w->epfd >= 0)
        close(w->epfd);
}

static int start_workers(struct worker *ws, const struct floor_options *o, int listen_fd,
                         int stop_fd)
{
    for (unsigned i = 0; i < o->threads; i++)
        if (worker_init(&ws[i], listen_fd, stop_fd, o) != 0)
            return -1;
    for (unsigned i = 0; i < o->threads; i++) {
        int rc = pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);

        if (rc != 0) {
            fprintf(stderr, "floor_proxy: pthread_create: %s\n", strerror(rc));
            return -1;
        }
        ws[i].thread_started = 1;
    }
    return 0;
}

static int run(const struct floor_options *o, struct worker *ws, int listen_fd, int stop_fd,
               unsigned port)
{
    sigset_t set;
    int sig = 0;
    int rc;

    if (floor_block_stop_signals("floor_proxy", &set) != 0)
        return -1;
    if (start_workers(ws, o, listen_fd, stop_fd) != 0)
        return -1;
    if (o->port_file != NULL && floor_write_port_file("floor_proxy", o->port_file, port) != 0)
        return -1;
    rc = sigwait(&set, &sig);
    if (rc != 0) {
        fprintf(stderr, "floor_proxy: sigwait: %s\n", strerror(rc));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct floor_options o;
    struct worker *ws;
    unsigned port = 0;
    int listen_fd, stop_fd;
    int status = EXIT_SUCCESS;
    int rc = floor_parse_args("floor_proxy", usage, true, argc, argv, &o);
    uint64_t one = 1;

    if (rc != 0)
        return rc > 0 ? EXIT_SUCCESS : 2;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "floor_proxy: curl_global_init failed\n");
        floor_free_options(&o);
        return EXIT_FAILURE;
    }
    ws = calloc(o.threads, sizeof(*ws));
    for (unsigned i = 0; ws != NULL && i < o.threads; i++)
        ws[i].epfd = -1; /* so that cleanup after a partial start closes nothing else */
    listen_fd = open_listener(o.port, &port);
    stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ws == NULL || listen_fd < 0 || stop_fd < 0) {
        fprintf(stderr, "floor_proxy: cannot set up (memory, listener or eventfd)\n");
        status = EXIT_FAILURE;
    } else if (run(&o, ws, listen_fd, stop_fd, port) != 0) {
        status = EXIT_FAILURE;
    }
    /* wake every thread: the eventfd stays readable in all their epoll sets */
    if (stop_fd >= 0 && write(stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
        fprintf(stderr, "floor_proxy: cannot signal the threads: %s\n", strerror(errno));
        status = EXIT_FAILURE;
    }
    for (unsigned i = 0; ws != NULL && i < o.threads; i++) {
        if (ws[i].thread_started && pthread_join(ws[i].thread, NULL) != 0)
            status = EXIT_FAILURE;
        if (ws[i].failed)
            status = EXIT_FAILURE;
        worker_fini(&ws[i]);
    }
    free(ws);
    if (stop_fd >= 0)
        close(stop_fd);
    if (listen_fd >= 0)
        close(listen_fd);
    curl_global_cleanup();
    floor_free_options(&o);
    return status;
}
