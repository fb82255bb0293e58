/* kc-forward's event loop: one thread, ppoll(2) over the listening socket and
 * both sockets of every connection. The listening socket is made in the listen
 * namespace; then the thread moves into the target namespace for good, so every
 * socket it creates afterwards (the connections to the target) lives there. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "harness/chain/forward.h"
#include "util/clock.h"

struct conn {
    int used;
    uint64_t id;
    int cfd;              /* accepted, listen namespace */
    int tfd;              /* to the target, target namespace */
    int connecting;       /* non-blocking connect to the target under way */
    struct kcf_half up;   /* client -> target */
    struct kcf_half down; /* target -> client */
    uint64_t start_ms, last_ms;
    int cidx, tidx; /* their slots in this round's pollfd array, -1: none */
};

struct relay {
    const struct kcf_options *opts;
    int lfd;
    uint16_t port; /* the port actually listened on */
    struct conn *conns;
    uint64_t next_id;
    unsigned active;
    uint64_t listen_pause_until;
    struct pollfd *pfds;
};

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void msg(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "kc-forward: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* One JSON line on stderr; fields is stolen. */
static void log_event(const struct relay *r, const char *event, json_t *fields)
{
    struct timespec ts;
    json_t *o;
    char *line;

    if (!r->opts->verbose) {
        json_decref(fields);
        return;
    }
    o = fields != NULL ? fields : json_object();
    if (o == NULL)
        return;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        memset(&ts, 0, sizeof(ts));
    json_object_set_new(o, "ts", json_real((double)ts.tv_sec + (double)ts.tv_nsec / 1e9));
    json_object_set_new(o, "prog", json_string("kc-forward"));
    json_object_set_new(o, "event", json_string(event));
    line = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (line == NULL)
        return;
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
    free(line);
}

static void conn_close(struct relay *r, struct conn *c, const char *reason)
{
    uint64_t t = kcu_now_ms();

    log_event(r, "close",
              json_pack("{sI sI sI ss sI}", "conn", (json_int_t)c->id, "bytes_to_target",
                        (json_int_t)c->up.bytes, "bytes_to_client", (json_int_t)c->down.bytes,
                        "reason", reason, "duration_ms", (json_int_t)(t - c->start_ms)));
    if (c->cfd >= 0)
        close(c->cfd);
    if (c->tfd >= 0)
        close(c->tfd);
    free(c->up.buf);
    free(c->down.buf);
    memset(c, 0, sizeof(*c));
    c->cfd = c->tfd = -1;
    r->active--;
}

/* A forwarder should not delay what the ends write: no Nagle on either side.
 * Failure only costs latency, so it is not an error. */
static void no_delay(int fd)
{
    int one = 1;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A non-blocking socket to 127.0.0.1:port in the current (target) namespace.
 * Returns the fd and sets *connecting, or -1 with errno. */
static int target_connect(uint16_t port, int *connecting)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    no_delay(fd);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        *connecting = 0;
        return fd;
    }
    if (errno == EINPROGRESS) {
        *connecting = 1;
        return fd;
    }
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

static void accept_one(struct relay *r, int cfd)
{
    struct conn *c = NULL;
    uint64_t id = ++r->next_id;
    int connecting = 0, tfd;

    if (r->active >= r->opts->max_conns) {
        log_event(r, "refused",
                  json_pack("{sI ss}", "conn", (json_int_t)id, "reason", "max_conns"));
        close(cfd);
        return;
    }
    for (unsigned i = 0; i < r->opts->max_conns; i++) {
        if (!r->conns[i].used) {
            c = &r->conns[i];
            break;
        }
    }
    if (c == NULL) {
        close(cfd);
        return;
    }
    no_delay(cfd);
    memset(c, 0, sizeof(*c));
    c->used = 1;
    c->id = id;
    c->cfd = cfd;
    c->tfd = -1;
    c->start_ms = c->last_ms = kcu_now_ms();
    r->active++;
    log_event(r, "open", json_pack("{sI}", "conn", (json_int_t)id));
    c->up.buf = malloc(KCF_HALF_BUF);
    c->down.buf = malloc(KCF_HALF_BUF);
    if (c->up.buf == NULL || c->down.buf == NULL) {
        conn_close(r, c, "out_of_memory");
        return;
    }
    tfd = target_connect(r->opts->spec.target_port, &connecting);
    if (tfd < 0) {
        /* closing at once tells the client quickly that the target is down */
        conn_close(r, c, errno == ECONNREFUSED ? "target_refused" : "target_unreachable");
        return;
    }
    c->tfd = tfd;
    c->connecting = connecting;
}

static void accept_all(struct relay *r)
{
    for (;;) {
        int fd = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            accept_one(r, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            /* out of descriptors or memory: back off instead of spinning */
            msg("accept: %s", strerror(errno));
            r->listen_pause_until = kcu_now_ms() + 100;
        }
        return;
    }
}

/* Finishes a non-blocking connect once the socket is writable. */
static void finish_connect(struct relay *r, struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->tfd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == EINPROGRESS || err == EALREADY)
        return;
    if (err != 0) {
        conn_close(r, c, err == ECONNREFUSED ? "target_refused" : "target_unreachable");
        return;
    }
    c->connecting = 0;
    c->last_ms = kcu_now_ms();
}

/* Moves bytes both ways and passes EOF on; closes when both ways are done. */
static void service(struct relay *r, struct conn *c)
{
    enum kcf_pump_result u, d;

    u = kcf_half_pump(&c->up, c->cfd, c->tfd);
    d = kcf_half_pump(&c->down, c->tfd, c->cfd);
    if (u == KCF_PUMP_ERROR || d == KCF_PUMP_ERROR) {
        conn_close(r, c, "reset");
        return;
    }
    if (u == KCF_PUMP_MOVED || d == KCF_PUMP_MOVED)
        c->last_ms = kcu_now_ms();
    /* half-close: EOF from one side becomes a FIN to the other */
    if (kcf_half_drained(&c->up) && !c->up.shut) {
        if (shutdown(c->tfd, SHUT_WR) != 0 && errno != ENOTCONN) {
            conn_close(r, c, "reset");
            return;
        }
        c->up.shut = 1;
    }
    if (kcf_half_drained(&c->down) && !c->down.shut) {
        if (shutdown(c->cfd, SHUT_WR) != 0 && errno != ENOTCONN) {
            conn_close(r, c, "reset");
            return;
        }
        c->down.shut = 1;
    }
    if (c->up.shut && c->down.shut)
        conn_close(r, c, "eof");
}

static int add_pfd(struct relay *r, nfds_t *n, int fd, short events)
{
    if (events == 0)
        return -1;
    r->pfds[*n].fd = fd;
    r->pfds[*n].events = events;
    r->pfds[*n].revents = 0;
    return (int)(*n)++;
}

/* The poll timeout: the nearest connect or idle deadline, at most 1 s. */
static int next_timeout(const struct relay *r, uint64_t t)
{
    uint64_t best = t + 1000;

    if (r->listen_pause_until > t && r->listen_pause_until < best)
        best = r->listen_pause_until;
    for (unsigned i = 0; i < r->opts->max_conns; i++) {
        const struct conn *c = &r->conns[i];
        uint64_t dl;
        if (!c->used)
            continue;
        dl = c->last_ms + (c->connecting ? r->opts->connect_timeout_ms : r->opts->idle_timeout_ms);
        if (dl < best)
            best = dl;
    }
    return best <= t ? 0 : (int)(best - t);
}

static void expire(struct relay *r, uint64_t t)
{
    for (unsigned i = 0; i < r->opts->max_conns; i++) {
        struct conn *c = &r->conns[i];
        if (!c->used)
            continue;
        if (c->connecting && t - c->last_ms >= r->opts->connect_timeout_ms)
            conn_close(r, c, "connect_timeout");
        else if (!c->connecting && t - c->last_ms >= r->opts->idle_timeout_ms)
            conn_close(r, c, "idle_timeout");
    }
}

static int loop_once(struct relay *r, const sigset_t *waitmask)
{
    nfds_t n = 0;
    int lidx;
    uint64_t t = kcu_now_ms();
    struct timespec to;
    int ms, rc;

    lidx = add_pfd(r, &n, r->lfd, r->listen_pause_until > t ? 0 : POLLIN);
    for (unsigned i = 0; i < r->opts->max_conns; i++) {
        struct conn *c = &r->conns[i];
        short ce = 0, te = 0;
        if (!c->used)
            continue;
        if (c->connecting) {
            te = POLLOUT;
        } else {
            if (!c->up.eof && c->up.len < KCF_HALF_BUF)
                ce |= POLLIN;
            if (c->down.len > c->down.off)
                ce |= POLLOUT;
            if (!c->down.eof && c->down.len < KCF_HALF_BUF)
                te |= POLLIN;
            if (c->up.len > c->up.off)
                te |= POLLOUT;
        }
        c->cidx = add_pfd(r, &n, c->cfd, ce);
        c->tidx = add_pfd(r, &n, c->tfd, te);
    }
    ms = next_timeout(r, t);
    to.tv_sec = ms / 1000;
    to.tv_nsec = (long)(ms % 1000) * 1000000L;
    rc = ppoll(r->pfds, n, &to, waitmask);
    if (rc < 0) {
        if (errno == EINTR)
            return 0;
        msg("poll: %s", strerror(errno));
        return -1;
    }
    for (unsigned i = 0; i < r->opts->max_conns; i++) {
        struct conn *c = &r->conns[i];
        int ready;
        if (!c->used)
            continue;
        ready = (c->cidx >= 0 && r->pfds[c->cidx].revents != 0) ||
                (c->tidx >= 0 && r->pfds[c->tidx].revents != 0);
        if (!ready)
            continue;
        if (c->connecting) {
            finish_connect(r, c);
            if (!c->used || c->connecting)
                continue;
        }
        service(r, c);
    }
    if (lidx >= 0 && (r->pfds[lidx].revents & POLLIN))
        accept_all(r);
    expire(r, kcu_now_ms());
    return 0;
}

static int listen_socket(uint16_t port, uint16_t *bound)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
        goto fail;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        goto fail;
    *bound = ntohs(sa.sin_port);
    return fd;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

/* Writes "127.0.0.1:PORT\n" to path through a temporary file and rename, so a
 * reader never sees half of it. */
static int write_ready_file(const char *path, uint16_t port)
{
    char tmp[4096];
    FILE *f;
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());

    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -1;
    if ((f = fopen(tmp, "w")) == NULL)
        return -1;
    if (fprintf(f, "127.0.0.1:%u\n", (unsigned)port) < 0) {
        fclose(f);
        unlink(tmp);
        return -1;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int install_signals(sigset_t *waitmask)
{
    struct sigaction sa;
    sigset_t block;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
        return -1;
    /* the stop signals are only delivered inside ppoll: no lost wake-up */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &block, waitmask) != 0)
        return -1;
    sigdelset(waitmask, SIGINT);
    sigdelset(waitmask, SIGTERM);
    return 0;
}

/* Enters the listen namespace, listens, then enters the target namespace. */
static int setup(struct relay *r)
{
    const struct kcf_options *o = r->opts;
    int lns = -1, tns = -1;
    int rc = -1;

    /* open both before moving: a name is resolved in our mount namespace */
    if (o->listen_netns[0] != '\0' && (lns = kcf_netns_open(o->listen_netns)) < 0) {
        msg("cannot open /run/netns/%s: %s", o->listen_netns, strerror(errno));
        goto out;
    }
    if (o->target_netns[0] != '\0' && (tns = kcf_netns_open(o->target_netns)) < 0) {
        msg("cannot open /run/netns/%s: %s", o->target_netns, strerror(errno));
        goto out;
    }
    if (lns >= 0 && kcf_netns_enter(lns) != 0) {
        msg("cannot enter network namespace %s: %s", o->listen_netns, strerror(errno));
        goto out;
    }
    if ((r->lfd = listen_socket(o->spec.local_port, &r->port)) < 0) {
        msg("cannot listen on 127.0.0.1:%u: %s", (unsigned)o->spec.local_port, strerror(errno));
        goto out;
    }
    if (tns >= 0 && kcf_netns_enter(tns) != 0) {
        msg("cannot enter network namespace %s: %s", o->target_netns, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (lns >= 0)
        close(lns);
    if (tns >= 0)
        close(tns);
    return rc;
}

int kcf_run(const struct kcf_options *opts)
{
    struct relay r;
    sigset_t waitmask;
    int rc = KCF_EXIT_OK;

    memset(&r, 0, sizeof(r));
    r.opts = opts;
    r.lfd = -1;
    stop_signal = 0;
    if (opts->max_conns == 0 || opts->max_conns > KCF_MAX_CONNS_LIMIT)
        return KCF_EXIT_USAGE;
    if (install_signals(&waitmask) != 0) {
        msg("cannot install signal handlers: %s", strerror(errno));
        return KCF_EXIT_RUNTIME;
    }
    r.conns = calloc(opts->max_conns, sizeof(*r.conns));
    r.pfds = calloc(1 + 2 * (size_t)opts->max_conns, sizeof(*r.pfds));
    if (r.conns == NULL || r.pfds == NULL) {
        msg("out of memory");
        rc = KCF_EXIT_RUNTIME;
        goto out;
    }
    if (setup(&r) != 0) {
        rc = KCF_EXIT_SETUP;
        goto out;
    }
    if (opts->ready_file != NULL && write_ready_file(opts->ready_file, r.port) != 0) {
        msg("cannot write ready file %s: %s", opts->ready_file, strerror(errno));
        rc = KCF_EXIT_RUNTIME;
        goto out;
    }
    if (opts->verbose) {
        log_event(&r, "listen",
                  json_pack("{sI ss sI ss}", "port", (json_int_t)r.port, "listen_netns",
                            opts->listen_netns, "target_port", (json_int_t)opts->spec.target_port,
                            "target_netns", opts->target_netns));
    } else {
        msg("listening on 127.0.0.1:%u, forwarding to 127.0.0.1:%u%s%s", (unsigned)r.port,
            (unsigned)opts->spec.target_port, opts->target_netns[0] ? " in netns " : "",
            opts->target_netns);
    }
    while (!stop_signal) {
        if (loop_once(&r, &waitmask) != 0) {
            rc = KCF_EXIT_RUNTIME;
            break;
        }
    }
    for (unsigned i = 0; i < opts->max_conns; i++)
        if (r.conns[i].used)
            conn_close(&r, &r.conns[i], "shutdown");
    if (opts->ready_file != NULL)
        unlink(opts->ready_file);
    log_event(&r, "stop", json_pack("{si}", "signal", (int)stop_signal));
out:
    if (r.lfd >= 0)
        close(r.lfd);
    free(r.conns);
    free(r.pfds);
    return rc;
}
