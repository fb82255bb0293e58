/* udp transport: the simulator convention, one 64-byte report per datagram
 * and no report-id byte. The socket is connect()ed to the device so only its
 * datagrams are read and an ICMP port-unreachable surfaces as ECONNREFUSED
 * ("nothing listens"), told apart from a card that listens but never answers
 * (a read timeout).
 *
 * "?local=PORT" is for simulators that always answer a fixed host port
 * (udp:127.0.0.1:8111?local=7112), often from another socket than the one
 * they listen on: the socket is bound to PORT and left unconnected, replies
 * from the card's address (any source port) are taken, datagrams from any
 * other address are ignored, counted and traced; IP_RECVERR keeps the
 * port-unreachable report that an unconnected socket would otherwise lose. */
#include "ctaphid/transport.h"
#include "ctaphid/udp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctaphid/status.h"
#include "ctaphid/trace.h"
#include "ctaphid/transport_int.h"
#include "util/err.h"

struct udp_priv {
    int fd;
    char host[100];
    char port[16];
    bool connected; /* false with ?local=: sendto/recvfrom with a filter */
    struct sockaddr_storage remote;
    socklen_t remote_len;
    uint64_t skipped; /* datagrams that were not exactly one report */
    uint64_t foreign; /* datagrams from another address than the card's */
    struct kc_trace *trace;
};

static bool parse_port(const char *s, size_t n, char *out, size_t outlen)
{
    unsigned long v = 0;

    if (n == 0 || n >= outlen || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

/* HOST:PORT[?local=PORT]; HOST may be [v6]. */
static bool parse_spec(const char *spec, char *host, size_t hostlen, char *port, size_t portlen,
                       char *local, size_t locallen)
{
    const char *q = strchr(spec, '?');
    size_t n = q != NULL ? (size_t)(q - spec) : strlen(spec);
    const char *colon = NULL;

    local[0] = '\0';
    for (size_t i = n; i > 0; i--) {
        if (spec[i - 1] == ':') {
            colon = spec + i - 1;
            break;
        }
    }
    if (colon == NULL || colon == spec)
        return false;
    {
        const char *h = spec;
        size_t hn = (size_t)(colon - spec);
        if (h[0] == '[') {
            if (hn < 3 || h[hn - 1] != ']')
                return false;
            h++;
            hn -= 2;
        }
        if (hn == 0 || hn >= hostlen)
            return false;
        memcpy(host, h, hn);
        host[hn] = '\0';
    }
    if (!parse_port(colon + 1, (size_t)(spec + n - colon - 1), port, portlen))
        return false;
    if (q != NULL) {
        const char *v = q + 1;
        if (strncmp(v, "local=", 6) != 0)
            return false;
        v += 6;
        if (!parse_port(v, strlen(v), local, locallen))
            return false;
    }
    return true;
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

static int bind_local(int fd, const struct addrinfo *remote, const char *local)
{
    struct sockaddr_storage ss;
    unsigned short port = (unsigned short)strtoul(local, NULL, 10);

    memset(&ss, 0, sizeof(ss));
    if (remote->ai_family == AF_INET) {
        struct sockaddr_in *in = (void *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        /* Stay on loopback when the device is there: nothing else needs the port. */
        in->sin_addr.s_addr = htonl(is_loopback(remote->ai_addr) ? INADDR_LOOPBACK : INADDR_ANY);
        return bind(fd, (struct sockaddr *)in, sizeof(*in));
    }
    {
        struct sockaddr_in6 *in6 = (void *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        in6->sin6_addr = is_loopback(remote->ai_addr) ? in6addr_loopback : in6addr_any;
        return bind(fd, (struct sockaddr *)in6, sizeof(*in6));
    }
}

static struct udp_priv *udp_of(const struct kc_transport *t)
{
    if (t == NULL || t->kind == NULL || strcmp(t->kind, "udp") != 0)
        return NULL;
    return t->priv;
}

static int fail_errno(struct kc_transport *t, int err, const char *what)
{
    struct udp_priv *p = t->priv;

    t->last_errno = err;
    if (err == ECONNREFUSED) {
        /* an ICMP port unreachable: no socket is bound there at all, which
         * is not the same as a card that listens and stays silent */
        snprintf(t->last_error, sizeof(t->last_error),
                 "nothing listens at udp:%.64s:%s (ICMP port unreachable, seen on %s)", p->host,
                 p->port, what);
        return KC_ERR_NO_DEVICE;
    }
    snprintf(t->last_error, sizeof(t->last_error), "udp %s:%s: %s failed: %s", p->host, p->port,
             what, strerror(err));
    return KC_ERR_IO;
}

/* The address part of two socket addresses (the port is not compared). */
static bool same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

/* Address and port. */
static bool same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (!same_host(a, b))
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)(const void *)a)->sin_port ==
               ((const struct sockaddr_in *)(const void *)b)->sin_port;
    return ((const struct sockaddr_in6 *)(const void *)a)->sin6_port ==
           ((const struct sockaddr_in6 *)(const void *)b)->sin6_port;
}

static void addr_text(const struct sockaddr_storage *ss, socklen_t len, char *buf, size_t cap)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];

    if (getnameinfo((const struct sockaddr *)ss, len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        snprintf(buf, cap, "an unknown address");
    else
        snprintf(buf, cap, ss->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

/* Unconnected socket: empties the error queue that IP_RECVERR fills.
 * Returns true when one of the errors is a port unreachable for a datagram
 * sent to the card. */
static bool drain_errqueue(struct udp_priv *p)
{
    bool refused = false;

    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage dst;
        uint8_t data[128];
        union {
            char buf[512];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {.iov_base = data, .iov_len = sizeof(data)};
        struct msghdr mh;
        ssize_t n;

        memset(&mh, 0, sizeof(mh));
        memset(&dst, 0, sizeof(dst));
        mh.msg_name = &dst;
        mh.msg_namelen = sizeof(dst);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        n = recvmsg(p->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT);
        if (n < 0)
            break;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
            const struct sock_extended_err *ee;
            if (!((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                  (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)))
                continue;
            ee = (const void *)CMSG_DATA(c);
            /* the original destination is in msg_name: only the card's */
            if (ee->ee_errno == ECONNREFUSED && same_endpoint(&dst, &p->remote))
                refused = true;
        }
    }
    return refused;
}

static int udp_write(struct kc_transport *t, const uint8_t *report, size_t len)
{
    struct udp_priv *p = udp_of(t);
    ssize_t n;

    if (p == NULL || report == NULL || len != KC_HID_REPORT_LEN)
        return KC_ERR_INVALID_ARG;
    do
        n = p->connected
                ? send(p->fd, report, len, 0)
                : sendto(p->fd, report, len, 0, (const struct sockaddr *)&p->remote, p->remote_len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return fail_errno(t, errno, "send");
    if ((size_t)n != len) {
        t->last_errno = 0;
        snprintf(t->last_error, sizeof(t->last_error), "udp %s:%s: short send (%zd of %zu)",
                 p->host, p->port, n, len);
        return KC_ERR_IO;
    }
    return KC_OK;
}

static int udp_read(struct kc_transport *t, uint8_t *buf, size_t cap, int timeout_ms)
{
    struct udp_priv *p = udp_of(t);
    uint64_t deadline;

    if (p == NULL || buf == NULL || cap < KC_HID_REPORT_LEN)
        return KC_ERR_INVALID_ARG;
    deadline = kc_read_deadline(timeout_ms);
    for (;;) {
        uint8_t dgram[2048];
        struct sockaddr_storage from;
        socklen_t fromlen;
        short revents = 0;
        ssize_t n;
        int rc = kc_fd_wait_readable(p->fd, timeout_ms, deadline, &revents);

        if (rc == 0)
            return 0;
        if (rc < 0)
            return fail_errno(t, errno, "poll");
        if (p->connected) {
            n = recv(p->fd, dgram, sizeof(dgram), MSG_TRUNC | MSG_DONTWAIT);
        } else {
            fromlen = sizeof(from);
            n = recvfrom(p->fd, dgram, sizeof(dgram), MSG_TRUNC | MSG_DONTWAIT,
                         (struct sockaddr *)&from, &fromlen);
        }
        if (n < 0) {
            int err = errno;
            if (!p->connected && (err == ECONNREFUSED || (revents & POLLERR) != 0)) {
                /* the error queue holds what ICMP said; only the card's counts */
                if (drain_errqueue(p) || err == ECONNREFUSED)
                    return fail_errno(t, ECONNREFUSED, "recv");
            }
            if (err == EINTR || err == EAGAIN || err == EWOULDBLOCK)
                continue;
            return fail_errno(t, err, "recv");
        }
        if (!p->connected && !same_host(&from, &p->remote)) {
            char who[80], detail[256];
            p->foreign++;
            addr_text(&from, fromlen, who, sizeof(who));
            snprintf(detail, sizeof(detail),
                     "udp: ignored a %zd-byte datagram from %s (the card is %.64s)", n, who,
                     p->host);
            t->last_errno = 0;
            snprintf(t->last_error, sizeof(t->last_error), "%s", detail);
            kc_trace_event(p->trace, "skip", 0, detail);
            continue;
        }
        if (n != KC_HID_REPORT_LEN) {
            /* Not one report: never guess where the report is. */
            p->skipped++;
            t->last_errno = 0;
            snprintf(t->last_error, sizeof(t->last_error),
                     "udp %s:%s: skipped a %zd-byte datagram (reports are %d bytes)", p->host,
                     p->port, n, KC_HID_REPORT_LEN);
            continue;
        }
        memcpy(buf, dgram, KC_HID_REPORT_LEN);
        return KC_HID_REPORT_LEN;
    }
}

static void udp_close(struct kc_transport *t)
{
    struct udp_priv *p = udp_of(t);

    if (p != NULL) {
        if (p->fd >= 0)
            close(p->fd);
        free(p);
    }
    free(t);
}

static const struct kc_transport_ops udp_ops = {
    .write = udp_write,
    .read = udp_read,
    .close = udp_close,
};

uint64_t kc_udp_skipped_datagrams(const struct kc_transport *t)
{
    const struct udp_priv *p = udp_of(t);

    return p != NULL ? p->skipped : 0;
}

uint64_t kc_udp_foreign_datagrams(const struct kc_transport *t)
{
    const struct udp_priv *p = udp_of(t);

    return p != NULL ? p->foreign : 0;
}

void kc_udp_set_trace(struct kc_transport *t, struct kc_trace *tr)
{
    struct udp_priv *p = udp_of(t);

    if (p != NULL)
        p->trace = tr;
}

int kc_udp_open(const char *spec, struct kc_transport **out, char *errbuf, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    struct kc_transport *t = NULL;
    struct udp_priv *p = NULL;
    char local[16];
    int rc, gai;

    if (out == NULL || spec == NULL)
        return KC_ERR_INVALID_ARG;
    *out = NULL;
    if ((t = kc_transport_alloc(&udp_ops, "udp", sizeof(*p))) == NULL)
        return KC_ERR_NOMEM;
    p = t->priv;
    p->fd = -1;
    t->in_report_len = KC_HID_REPORT_LEN;
    t->out_report_len = KC_HID_REPORT_LEN;
    snprintf(t->uri, sizeof(t->uri), "udp:%s", spec);

    if (!parse_spec(spec, p->host, sizeof(p->host), p->port, sizeof(p->port), local,
                    sizeof(local))) {
        kcu_set_err(errbuf, errlen, "udp:%s: expected udp:HOST:PORT[?local=PORT]", spec);
        rc = KC_ERR_INVALID_ARG;
        goto fail;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    /* IPv4 first: "localhost" must reach a simulator on 127.0.0.1, not ::1. */
    hints.ai_family = AF_INET;
    if (getaddrinfo(p->host, p->port, &hints, &res) != 0 || res == NULL) {
        res = NULL;
        hints.ai_family = AF_UNSPEC;
        gai = getaddrinfo(p->host, p->port, &hints, &res);
    } else {
        gai = 0;
    }
    if (gai != 0 || res == NULL) {
        kcu_set_err(errbuf, errlen, "udp:%s: cannot resolve %s: %s", spec, p->host,
                    gai != 0 ? gai_strerror(gai) : "no address");
        rc = KC_ERR_NO_DEVICE;
        goto fail;
    }
    p->fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (p->fd < 0) {
        t->last_errno = errno;
        kcu_set_err(errbuf, errlen, "udp:%s: socket: %s", spec, strerror(errno));
        rc = KC_ERR_IO;
        goto fail;
    }
    if (local[0] != '\0' && bind_local(p->fd, res, local) != 0) {
        t->last_errno = errno;
        kcu_set_err(errbuf, errlen, "udp:%s: cannot bind local port %s: %s%s", spec, local,
                    strerror(errno),
                    errno == EADDRINUSE ? " (another client or simulator holds it)" : "");
        rc = errno == EACCES ? KC_ERR_PERMISSION : KC_ERR_IO;
        goto fail;
    }
    if (res->ai_addrlen > sizeof(p->remote)) {
        kcu_set_err(errbuf, errlen, "udp:%s: address too long", spec);
        rc = KC_ERR_INVALID_ARG;
        goto fail;
    }
    memcpy(&p->remote, res->ai_addr, res->ai_addrlen);
    p->remote_len = (socklen_t)res->ai_addrlen;
    if (local[0] != '\0') {
        /* unconnected: the card may answer from another port than it
         * listens on; ICMP errors still reach us through IP_RECVERR */
        int on = 1;
        if (res->ai_family == AF_INET6)
            (void)setsockopt(p->fd, SOL_IPV6, IPV6_RECVERR, &on, sizeof(on));
        else
            (void)setsockopt(p->fd, SOL_IP, IP_RECVERR, &on, sizeof(on));
        p->connected = false;
    } else if (connect(p->fd, res->ai_addr, res->ai_addrlen) != 0) {
        t->last_errno = errno;
        kcu_set_err(errbuf, errlen, "udp:%s: connect: %s", spec, strerror(errno));
        rc = KC_ERR_IO;
        goto fail;
    } else {
        p->connected = true;
    }
    freeaddrinfo(res);
    *out = t;
    return KC_OK;
fail:
    if (res != NULL)
        freeaddrinfo(res);
    udp_close(t);
    return rc;
}
