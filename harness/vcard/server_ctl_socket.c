/* The virtual card's control socket: a Unix stream socket, one command
 * line in, one JSON line out, for up to CTL_MAX_CLIENTS clients. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness/vcard/server_internal.h"

void vcs_conn_close(struct ctl_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->used = 0;
}

static void conn_reply(struct ctl_conn *c, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    size_t len;
    size_t off = 0;

    json_decref(o);
    if (text == NULL) {
        vcs_conn_close(c);
        return;
    }
    len = strlen(text);
    text[len] = '\n'; /* json_dumps' NUL becomes the line end */
    len++;
    while (off < len) {
        ssize_t n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            vcs_conn_close(c);
            break;
        }
        off += (size_t)n;
    }
    free(text);
}

void vcs_conn_read(struct vc_server *s, struct ctl_conn *c)
{
    ssize_t n = recv(c->fd, c->buf + c->used, sizeof(c->buf) - c->used, MSG_DONTWAIT);
    char *nl;

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        vcs_conn_close(c);
        return;
    }
    c->used += (size_t)n;
    while (c->fd >= 0 && (nl = memchr(c->buf, '\n', c->used)) != NULL) {
        size_t linelen = (size_t)(nl - c->buf);
        size_t consumed = linelen + 1;
        json_t *o;

        *nl = '\0';
        if (linelen > 0 && c->buf[linelen - 1] == '\r')
            c->buf[--linelen] = '\0';
        if (strlen(c->buf) != linelen) {
            o = vcs_reply_err("NUL byte in command");
        } else {
            pthread_mutex_lock(&s->mu);
            o = vcs_control_command(s, c->buf);
            pthread_mutex_unlock(&s->mu);
        }
        conn_reply(c, o);
        if (c->fd < 0)
            return;
        c->used -= consumed;
        memmove(c->buf, c->buf + consumed, c->used);
    }
    if (c->used == sizeof(c->buf)) {
        conn_reply(c, vcs_reply_err("command line too long"));
        vcs_conn_close(c);
    }
}

void vcs_ctl_accept(struct vc_server *s)
{
    int fd = accept4(s->ctl, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0)
        return;
    for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
        if (s->conns[i].fd < 0) {
            s->conns[i].fd = fd;
            s->conns[i].used = 0;
            return;
        }
    }
    close(fd); /* too many control clients */
}

int vcs_ctl_listen(struct vc_server *s, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "control socket path too long: %s", path);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    /* a stale socket from a killed run is replaced; any other file is not */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "control path %s exists and is not a socket", path);
            return -1;
        }
        (void)unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 8) < 0) {
        snprintf(err, errlen, "cannot create control socket %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    (void)chmod(path, 0600);
    s->ctl = fd;
    s->ctl_path = strdup(path);
    if (s->ctl_path == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
