/* The virtual card's server: its life (new, the poll loop, free). The
 * parts live beside it, one concern each (server_internal.h lists them). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/vcard/script.h"
#include "harness/vcard/uhid.h"

#include "harness/vcard/server_internal.h"
#include "util/clock.h"

struct vc_server *vc_server_new(struct vc_card *card, const struct vc_server_config *cfg, char *err,
                                size_t errlen)
{
    struct vc_server *s = calloc(1, sizeof(*s));
    struct sockaddr_in want;
    pthread_condattr_t ca;

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->udp = -1;
    s->ctl = -1;
    s->wake[0] = s->wake[1] = -1;
    s->decision = -1;
    s->armed = -1;
    for (int i = 0; i < CTL_MAX_CLIENTS; i++)
        s->conns[i].fd = -1;
    s->card = card;
    s->verbose = cfg->verbose;
    s->reply_port = htons(cfg->reply_port);
    s->presence = cfg->presence;
    s->faults = cfg->faults;
    s->script = cfg->script;
    if (s->script != NULL)
        vc_script_set_send(s->script, vcs_send_cb, s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);

    if (vcs_parse_listen(cfg->listen ? cfg->listen : "127.0.0.1:8111", &want, err, errlen) < 0)
        goto fail;
    if ((s->udp = vcs_bind_udp(&want, &s->addr, err, errlen)) < 0)
        goto fail;
    vcs_set_uri(s);
    if (pipe2(s->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    if ((s->hid = vc_hid_new(vcs_send_cb, s)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    vc_hid_set_log(s->hid, vcs_log_cb, s);
    vcs_apply_faults(s);
    s->uhid_wanted = cfg->uhid;
    s->uhid_vendor = cfg->uhid_vendor;
    /* --fault unplug at start: no device until cleared or replugged */
    if (cfg->uhid && !s->faults.on[VC_FAULT_UNPLUG] &&
        (s->uhid = vcs_new_uhid(s, err, errlen)) == NULL)
        goto fail;
    if (cfg->control_path != NULL && vcs_ctl_listen(s, cfg->control_path, err, errlen) < 0)
        goto fail;
    if (cfg->announce_dir != NULL) {
        char path[PATH_MAX];
        int n = snprintf(path, sizeof(path), "%s/vcard-%ld.uri", cfg->announce_dir, (long)getpid());

        if (n < 0 || (size_t)n >= sizeof(path) ||
            (s->announce_dir = strdup(cfg->announce_dir)) == NULL ||
            (s->announce_path = strdup(path)) == NULL) {
            snprintf(err, errlen, "announce directory path too long");
            goto fail;
        }
        if (!s->faults.on[VC_FAULT_UNPLUG] && vcs_announce_write(s) < 0) {
            snprintf(err, errlen, "cannot write announce file %s: %s", path, strerror(errno));
            free(s->announce_path);
            s->announce_path = NULL;
            goto fail;
        }
    }
    if (pthread_create(&s->worker, NULL, vcs_worker_main, s) != 0) {
        snprintf(err, errlen, "cannot start the worker thread");
        goto fail;
    }
    s->worker_started = true;
    return s;
fail:
    vc_server_free(s);
    return NULL;
}

const char *vc_server_uri(const struct vc_server *s)
{
    return s->uri;
}

uint16_t vc_server_port(const struct vc_server *s)
{
    return ntohs(s->addr.sin_port);
}

/* One round's timers: the hid layer's and the script's, and a replug the
 * worker asked for. Returns the poll timeout until the next deadline. */
static int tick(struct vc_server *s, uint64_t now)
{
    uint64_t deadline;

    pthread_mutex_lock(&s->mu);
    vc_hid_tick(s->hid, now);
    if (s->script != NULL)
        vc_script_tick(s->script, now);
    if (s->replug_requested) {
        char err[160];

        s->replug_requested = false;
        s->faults.on[VC_FAULT_REPLUG] = false; /* once */
        if (vcs_do_replug(s, err, sizeof(err)) < 0)
            fprintf(stderr, "vcard: replug failed: %s\n", err);
    }
    deadline = vc_hid_deadline(s->hid);
    if (s->script != NULL && vc_script_deadline(s->script) < deadline)
        deadline = vc_script_deadline(s->script);
    pthread_mutex_unlock(&s->mu);
    if (deadline == UINT64_MAX)
        return POLL_MAX_MS;
    return deadline <= now ? 0 : deadline - now < POLL_MAX_MS ? (int)(deadline - now) : POLL_MAX_MS;
}

int vc_server_run(struct vc_server *s, volatile sig_atomic_t *stop)
{
    struct pollfd pfd[5 + CTL_MAX_CLIENTS];
    int rc = 0;

    while (!*stop) {
        int timeout = tick(s, kcu_now_ms());
        int nfds = 0;
        int conn_at[CTL_MAX_CLIENTS];
        int ctl_at = -1;
        int uhid_at = -1;
        int vendor_at = -1;

        pfd[nfds].fd = s->udp;
        pfd[nfds++].events = POLLIN;
        pfd[nfds].fd = s->wake[0];
        pfd[nfds++].events = POLLIN;
        if (s->ctl >= 0) {
            ctl_at = nfds;
            pfd[nfds].fd = s->ctl;
            pfd[nfds++].events = POLLIN;
        }
        if (s->uhid != NULL) {
            uhid_at = nfds;
            pfd[nfds].fd = vc_uhid_fd(s->uhid);
            pfd[nfds++].events = POLLIN;
            if (vc_uhid_vendor_fd(s->uhid) >= 0) {
                vendor_at = nfds;
                pfd[nfds].fd = vc_uhid_vendor_fd(s->uhid);
                pfd[nfds++].events = POLLIN;
            }
        }
        for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
            conn_at[i] = -1;
            if (s->conns[i].fd >= 0) {
                conn_at[i] = nfds;
                pfd[nfds].fd = s->conns[i].fd;
                pfd[nfds++].events = POLLIN;
            }
        }
        if (poll(pfd, (nfds_t)nfds, timeout) < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
            break;
        }
        if (pfd[0].revents & POLLIN && vcs_read_udp(s) < 0) {
            fprintf(stderr, "vcard: udp receive failed: %s\n", strerror(errno));
            rc = -1;
            break;
        }
        if (pfd[1].revents & POLLIN) {
            char drain[64];

            while (read(s->wake[0], drain, sizeof(drain)) > 0)
                ;
        }
        if (uhid_at >= 0 && pfd[uhid_at].revents & (POLLIN | POLLHUP | POLLERR) &&
            vcs_read_uhid(s) < 0) {
            fprintf(stderr, "vcard: uhid read failed: %s\n", strerror(errno));
            rc = -1;
            break;
        }
        if (vendor_at >= 0 && pfd[vendor_at].revents & POLLIN)
            (void)vc_uhid_service_vendor(s->uhid);
        if (ctl_at >= 0 && pfd[ctl_at].revents & POLLIN)
            vcs_ctl_accept(s);
        for (int i = 0; i < CTL_MAX_CLIENTS; i++)
            if (conn_at[i] >= 0 && pfd[conn_at[i]].revents & (POLLIN | POLLHUP | POLLERR))
                vcs_conn_read(s, &s->conns[i]);
    }
    return rc;
}

void vc_server_free(struct vc_server *s)
{
    if (s == NULL)
        return;
    if (s->worker_started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->worker, NULL);
    }
    for (int i = 0; i < CTL_MAX_CLIENTS; i++)
        vcs_conn_close(&s->conns[i]);
    if (s->ctl >= 0) {
        close(s->ctl);
        if (s->ctl_path != NULL)
            (void)unlink(s->ctl_path);
    }
    vcs_announce_remove(s);
    if (s->udp >= 0)
        close(s->udp);
    vc_uhid_close(s->uhid);
    if (s->wake[0] >= 0)
        close(s->wake[0]);
    if (s->wake[1] >= 0)
        close(s->wake[1]);
    vc_hid_free(s->hid);
    free(s->ctl_path);
    free(s->announce_dir);
    free(s->announce_path);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
