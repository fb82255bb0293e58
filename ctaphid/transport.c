/* Device URIs to transports (design.md, "Transports"): a plain table from
 * the URI's scheme to its backend. "auto" is resolved a layer up, by
 * discovery (kc_transport_open in discover.c), which calls this table. */
#include "ctaphid/transport.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/clock.h"
#include "ctaphid/status.h"
#include "ctaphid/transport_int.h"

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int open_concrete(const char *uri, struct kc_transport **out, char *errbuf, size_t errlen)
{
    if (has_prefix(uri, "hidraw:"))
        return kc_hidraw_open(uri + 7, out, errbuf, errlen);
    if (has_prefix(uri, "hidapi:"))
        return kc_hidapi_open(uri + 7, out, errbuf, errlen);
    if (has_prefix(uri, "udp:"))
        return kc_udp_open(uri + 4, out, errbuf, errlen);
    if (has_prefix(uri, "replay:"))
        return kc_replay_open(uri + 7, out, errbuf, errlen);
    /* A bare path means hidraw. */
    if (uri[0] == '/' || uri[0] == '.' || strchr(uri, ':') == NULL)
        return kc_hidraw_open(uri, out, errbuf, errlen);
    if (errbuf != NULL && errlen > 0)
        snprintf(errbuf, errlen,
                 "%s: unknown device URI (use a hidraw path, hidraw:PATH, hidapi:PATH, "
                 "hidapi:VID:PID, udp:HOST:PORT[?local=PORT], replay:FILE or auto)",
                 uri);
    return KC_ERR_INVALID_ARG;
}

int kc_transport_open_backend(const char *uri, struct kc_transport **out, char *errbuf,
                              size_t errlen)
{
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (out == NULL || uri == NULL || uri[0] == '\0') {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "no device URI given");
        return KC_ERR_INVALID_ARG;
    }
    *out = NULL;
    return open_concrete(uri, out, errbuf, errlen);
}

void kc_transport_close(struct kc_transport *t)
{
    if (t != NULL && t->ops != NULL && t->ops->close != NULL)
        t->ops->close(t);
}

const char *kc_transport_uri(const struct kc_transport *t)
{
    return t != NULL ? t->uri : "";
}

const char *kc_transport_kind(const struct kc_transport *t)
{
    return t != NULL && t->kind != NULL ? t->kind : "";
}

const char *kc_transport_last_error(const struct kc_transport *t)
{
    return t != NULL ? t->last_error : "";
}

int kc_transport_last_errno(const struct kc_transport *t)
{
    return t != NULL ? t->last_errno : 0;
}

int kc_transport_read(struct kc_transport *t, uint8_t *buf, size_t cap, int timeout_ms)
{
    if (t == NULL || t->ops == NULL || t->ops->read == NULL || buf == NULL || cap == 0)
        return KC_ERR_INVALID_ARG;
    return t->ops->read(t, buf, cap, timeout_ms);
}

uint64_t kc_read_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? UINT64_MAX : kc_now_us() + (uint64_t)timeout_ms * 1000u;
}

int kc_fd_wait_readable(int fd, int timeout_ms, uint64_t deadline, short *revents)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        uint64_t now = kc_now_us();
        int wait_ms = -1;
        int rc;

        if (timeout_ms >= 0) {
            if (now >= deadline)
                return 0;
            wait_ms = (int)((deadline - now + 999) / 1000);
        }
        rc = poll(&pfd, 1, wait_ms);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (rc == 0)
            continue; /* re-check the deadline */
        *revents = pfd.revents;
        return 1;
    }
}

struct kc_transport *kc_transport_alloc(const struct kc_transport_ops *ops, const char *kind,
                                        size_t priv_size)
{
    struct kc_transport *t = calloc(1, sizeof(*t));
    void *priv = calloc(1, priv_size);

    if (t == NULL || priv == NULL) {
        free(t);
        free(priv);
        return NULL;
    }
    t->ops = ops;
    t->priv = priv;
    t->kind = kind;
    return t;
}
