/* The virtual card's UDP face: the listen address, the socket, reports in
 * and out, the clients seen, and the -v request log. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness/vcard/script.h"
#include "harness/vcard/uhid.h"

#include "harness/vcard/server_internal.h"
#include "util/clock.h"
#include "util/num.h"

int vcs_parse_listen(const char *spec, struct sockaddr_in *sa, char *err, size_t errlen)
{
    char host[64];
    const char *colon;
    int port;

    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    colon = spec ? strrchr(spec, ':') : NULL;
    if (colon == NULL || (size_t)(colon - spec) >= sizeof(host) ||
        kcu_parse_int(colon + 1, 0, 65535, &port) != 0) {
        snprintf(err, errlen, "bad listen address '%s' (want ADDR:PORT, e.g. 127.0.0.1:8111)",
                 spec ? spec : "");
        return -1;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        snprintf(err, errlen, "bad listen address '%s': '%s' is not an IPv4 address", spec, host);
        return -1;
    }
    sa->sin_port = htons((uint16_t)port);
    return 0;
}

int vcs_bind_udp(const struct sockaddr_in *want, struct sockaddr_in *got, char *err, size_t errlen)
{
    socklen_t slen = sizeof(*got);
    char host[INET_ADDRSTRLEN];
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (const struct sockaddr *)want, sizeof(*want)) < 0 ||
        getsockname(fd, (struct sockaddr *)got, &slen) < 0) {
        inet_ntop(AF_INET, &want->sin_addr, host, sizeof(host));
        snprintf(err, errlen, "cannot bind udp:%s:%u: %s", host, ntohs(want->sin_port),
                 strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void vcs_set_uri(struct vc_server *s)
{
    char host[INET_ADDRSTRLEN];

    inet_ntop(AF_INET, &s->addr.sin_addr, host, sizeof(host));
    snprintf(s->uri, sizeof(s->uri), "udp:%s:%u", host, ntohs(s->addr.sin_port));
}

void vcs_send_cb(void *ctx, const struct vc_hid_peer *to, const uint8_t *report)
{
    struct vc_server *s = ctx;
    struct sockaddr_in sa;

    if (to->len == 1 && to->addr[0] == UHID_PEER_MARK) {
        if (s->uhid != NULL)
            (void)vc_uhid_send_input(s->uhid, report); /* a lost report, as on a bus */
        return;
    }
    if (to->len != sizeof(sa))
        return;
    memcpy(&sa, to->addr, sizeof(sa));
    if (s->reply_port != 0)
        sa.sin_port = s->reply_port; /* --reply-port: a fixed host port, as simulators do */
    /* a full socket buffer drops the report, as a lossy link would */
    (void)sendto(s->udp, report, KC_HID_REPORT_LEN, MSG_DONTWAIT, (struct sockaddr *)&sa,
                 sizeof(sa));
}

static void peer_string(const struct vc_hid_peer *p, char *buf, size_t len)
{
    struct sockaddr_in sa;
    char host[INET_ADDRSTRLEN];

    if (p->len == 1 && p->addr[0] == UHID_PEER_MARK) {
        snprintf(buf, len, "uhid");
        return;
    }
    if (p->len != sizeof(sa)) {
        snprintf(buf, len, "?");
        return;
    }
    memcpy(&sa, p->addr, sizeof(sa));
    inet_ntop(AF_INET, &sa.sin_addr, host, sizeof(host));
    snprintf(buf, len, "%s:%u", host, ntohs(sa.sin_port));
}

void vcs_log_cb(void *ctx, const struct vc_hid_log_entry *e)
{
    struct vc_server *s = ctx;
    char peer[64];
    char cid[16];
    const char *status_name = NULL;
    json_t *o;
    char *line;

    if (!s->verbose)
        return;
    peer_string(e->peer, peer, sizeof(peer));
    snprintf(cid, sizeof(cid), "0x%08x", e->cid);
    if (strcmp(e->outcome, "error") == 0)
        status_name = kc_hid_err_name((uint8_t)e->status);
    else if (e->cmd == KC_HID_CBOR && e->status >= 0)
        status_name = kc_ctap2_status_name((uint8_t)e->status);
    else if (e->cmd == KC_HID_MSG && e->status >= 0)
        status_name = kc_u2f_sw_name((uint16_t)e->status);
    o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:s}", "command", kc_hid_cmd_name(e->cmd), "channel",
                  cid, "outcome", e->outcome, "status", e->status, "duration_ms",
                  (json_int_t)e->duration_ms, "client", peer);
    if (o == NULL)
        return;
    if (status_name != NULL)
        json_object_set_new(o, "status_name", json_string(status_name));
    if (e->cmd == KC_HID_CBOR)
        json_object_set_new(o, "ctap", json_string(kc_ctap2_cmd_name(e->ctap_cmd)));
    else if (e->cmd == KC_HID_MSG) {
        char ins[8];

        snprintf(ins, sizeof(ins), "0x%02x", e->ctap_cmd);
        json_object_set_new(o, "ins", json_string(ins));
    }
    line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (line != NULL) {
        fprintf(stderr, "%s\n", line);
        free(line);
    }
    json_decref(o);
}

static void note_client(struct vc_server *s, const struct sockaddr_in *sa, uint64_t now)
{
    size_t oldest = 0;

    for (size_t i = 0; i < s->nclients; i++) {
        if (s->clients[i].addr.sin_addr.s_addr == sa->sin_addr.s_addr &&
            s->clients[i].addr.sin_port == sa->sin_port) {
            s->clients[i].requests++;
            s->clients[i].last_ms = now;
            return;
        }
        if (s->clients[i].last_ms < s->clients[oldest].last_ms)
            oldest = i;
    }
    if (s->nclients < CLIENTS_MAX)
        oldest = s->nclients++;
    s->clients[oldest].addr = *sa;
    s->clients[oldest].requests = 1;
    s->clients[oldest].last_ms = now;
}

/* Hands a complete message to the worker. Lock held. */
void vcs_start_job(struct vc_server *s)
{
    struct vc_hid_job job;

    if (s->job_ready || s->job_active || !vc_hid_job_take(s->hid, &job))
        return;
    memcpy(s->job_buf, job.data, job.len);
    s->job_len = job.len;
    s->job_cmd = job.cmd;
    s->job_cid = job.cid;
    s->job_ready = true;
}

int vcs_read_udp(struct vc_server *s)
{
    uint8_t buf[KC_HID_REPORT_LEN + 1];

    for (int i = 0; i < UDP_BURST; i++) {
        struct sockaddr_in sa;
        socklen_t slen = sizeof(sa);
        struct vc_hid_peer peer;
        ssize_t n = recvfrom(s->udp, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&sa, &slen);
        uint64_t now;

        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return 0;
            if (errno == ECONNREFUSED) /* an ICMP error from an earlier send */
                continue;
            return -1;
        }
        if (slen != sizeof(sa) || sa.sin_family != AF_INET)
            continue;
        memset(&peer, 0, sizeof(peer));
        peer.len = sizeof(sa);
        memcpy(peer.addr, &sa, sizeof(sa));
        now = kcu_now_ms();
        pthread_mutex_lock(&s->mu);
        if (s->replug_requested) {
            /* --fault replug: the card left this address when it answered;
             * what reaches the old socket afterwards is lost, as on a bus */
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        if (s->faults.on[VC_FAULT_UNPLUG]) {
            /* unplugged (from the start too): nothing answers, scripts included */
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        note_client(s, &sa, now);
        if (s->script != NULL) {
            vc_script_input(s->script, &peer, buf, (size_t)n, now);
        } else {
            vc_hid_input(s->hid, &peer, buf, (size_t)n, now);
            vcs_start_job(s);
        }
        /* a CANCEL or a resync may concern the worker: let it look */
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    return 0;
}
