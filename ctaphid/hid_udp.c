/* udp transport: the simulator convention, one 64-byte report per datagram
 * and no report-id byte. The socket is connect()ed to the device so only its
 * datagrams are read and an ICMP port-unreachable surfaces as ECONNREFUSED.
 * "?local=PORT" binds the local port for simulators that always answer a
 * fixed host port (udp:127.0.0.1:8111?local=7112). */
#include "ctaphid/transport.h"
#include "ctaphid/udp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctaphid/status.h"
#include "ctaphid/text_int.h"
#include "ctaphid/trace.h"
#include "ctaphid/transport_int.h"

struct udp_priv {
    int fd;
    char host[100];
    char port[16];
    uint64_t skipped; /* datagrams that were not exactly one report */
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
        snprintf(t->last_error, sizeof(t->last_error), "udp: nothing listening on %s:%s (%s)",
                 p->host, p->port, what);
        return KC_ERR_NO_DEVICE;
    }
    snprintf(t->last_error, sizeof(t->last_error), "udp %s:%s: %s failed: %s", p->host, p->port,
             what, strerror(err));
    return KC_ERR_IO;
}

static int udp_write(struct kc_transport *t, const uint8_t *report, size_t len)
{
    struct udp_priv *p = udp_of(t);
    ssize_t n;

    if (p == NULL || report == NULL || len != KC_HID_REPORT_LEN)
        return KC_ERR_INVALID_ARG;
    do
        n = send(p->fd, report, len, 0);
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
        short revents = 0;
        ssize_t n;
        int rc = kc_fd_wait_readable(p->fd, timeout_ms, deadline, &revents);

        if (rc == 0)
            return 0;
        if (rc < 0)
            return fail_errno(t, errno, "poll");
        n = recv(p->fd, dgram, sizeof(dgram), MSG_TRUNC | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return fail_errno(t, errno, "recv");
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
        kc_set_text(errbuf, errlen, "udp:%s: expected udp:HOST:PORT[?local=PORT]", spec);
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
        kc_set_text(errbuf, errlen, "udp:%s: cannot resolve %s: %s", spec, p->host,
                    gai != 0 ? gai_strerror(gai) : "no address");
        rc = KC_ERR_NO_DEVICE;
        goto fail;
    }
    p->fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (p->fd < 0) {
        t->last_errno = errno;
        kc_set_text(errbuf, errlen, "udp:%s: socket: %s", spec, strerror(errno));
        rc = KC_ERR_IO;
        goto fail;
    }
    if (local[0] != '\0' && bind_local(p->fd, res, local) != 0) {
        t->last_errno = errno;
        kc_set_text(errbuf, errlen, "udp:%s: cannot bind local port %s: %s%s", spec, local,
                    strerror(errno),
                    errno == EADDRINUSE ? " (another client or simulator holds it)" : "");
        rc = errno == EACCES ? KC_ERR_PERMISSION : KC_ERR_IO;
        goto fail;
    }
    if (connect(p->fd, res->ai_addr, res->ai_addrlen) != 0) {
        t->last_errno = errno;
        kc_set_text(errbuf, errlen, "udp:%s: connect: %s", spec, strerror(errno));
        rc = KC_ERR_IO;
        goto fail;
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
