/* The virtual card's UDP server, control socket and announce file. Locking:
 * s->mu guards the hid layer, the job hand-off, presence state, faults and
 * the socket; the worker drops it while the core runs. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctaphid/status.h"
#include "harness/vcard/hid.h"
#include "harness/vcard/personality.h"
#include "harness/vcard/script.h"
#include "harness/vcard/server.h"
#include "harness/vcard/uhid.h"

#define CTL_MAX_CLIENTS 16
#define CTL_LINE_MAX 512
#define CLIENTS_MAX 64
#define UDP_BURST 256           /* datagrams read per poll round */
#define ARMED_DECISION_MS 10000 /* an approve/deny sent early waits this long */
#define POLL_MAX_MS 1000
#define UHID_PEER_MARK 0xfe /* the hidraw side is one client, len 1 */
#define UHID_VID 0x1209     /* pid.codes test VID */
#define UHID_PID 0x000c

struct ctl_conn {
    int fd;
    size_t used;
    char buf[CTL_LINE_MAX];
};

struct client {
    struct sockaddr_in addr;
    uint64_t requests;
    uint64_t last_ms;
};

struct vc_server {
    struct vc_card *card;
    struct vc_hid *hid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t worker;
    bool worker_started;
    bool stopping;

    int udp;
    struct sockaddr_in addr; /* bound address (real port) */
    char uri[64];
    int ctl;
    char *ctl_path;
    struct ctl_conn conns[CTL_MAX_CLIENTS];
    char *announce_dir;
    char *announce_path;
    int wake[2];          /* the worker wakes the poll loop (replug requests) */
    struct vc_uhid *uhid; /* NULL without --uhid and while unplugged */
    bool uhid_wanted;     /* --uhid: the device follows unplug and replug */
    bool uhid_vendor;

    bool verbose;
    /* --script: a recorded card answers, not the core */
    struct vc_script *script;
    uint16_t reply_port; /* network order; 0: the sender's port */
    struct vc_presence presence;
    struct vc_faults faults;

    /* job hand-off: written by the loop only while the worker is idle */
    bool job_ready;
    bool job_active;
    uint8_t job_cmd;
    uint32_t job_cid;
    size_t job_len;
    uint8_t job_buf[KC_HID_MAX_MSG];
    uint8_t resp_buf[KC_HID_MAX_MSG];

    /* presence */
    bool presence_pending;
    int decision; /* -1 none, else enum vc_up_result */
    int armed;    /* decision sent before a wait started, -1 none */
    uint64_t armed_until_ms;

    bool power_cycle_pending;
    bool replug_requested;
    uint64_t completed;
    uint64_t replugs;

    struct client clients[CLIENTS_MAX];
    size_t nclients;
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- presence modes --------------------------------------------------- */

static int parse_ms(const char *s, int *out)
{
    char *end = NULL;
    long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > 3600000)
        return -1;
    *out = (int)v;
    return 0;
}

int vc_presence_parse(const char *s, struct vc_presence *p, char *err, size_t errlen)
{
    if (s == NULL) {
        snprintf(err, errlen, "no presence mode given");
        return -1;
    }
    p->ms = 0;
    if (strcmp(s, "yes") == 0) {
        p->mode = VC_PRESENCE_YES;
    } else if (strcmp(s, "no") == 0) {
        p->mode = VC_PRESENCE_NO;
    } else if (strcmp(s, "ask") == 0) {
        p->mode = VC_PRESENCE_ASK;
    } else if (strcmp(s, "timeout") == 0) {
        p->mode = VC_PRESENCE_TIMEOUT;
        p->ms = VC_PRESENCE_MAX_MS;
    } else if (strncmp(s, "timeout:", 8) == 0 && parse_ms(s + 8, &p->ms) == 0 &&
               p->ms <= VC_PRESENCE_MAX_MS) {
        p->mode = VC_PRESENCE_TIMEOUT;
    } else if (strncmp(s, "delay:", 6) == 0 && parse_ms(s + 6, &p->ms) == 0 &&
               p->ms <= VC_PRESENCE_MAX_MS) {
        p->mode = VC_PRESENCE_DELAY;
    } else {
        snprintf(err, errlen,
                 "bad presence mode '%s' (want yes, no, timeout[:MS], delay:MS or ask; "
                 "MS at most %d)",
                 s, VC_PRESENCE_MAX_MS);
        return -1;
    }
    return 0;
}

void vc_presence_format(const struct vc_presence *p, char *buf, size_t len)
{
    switch (p->mode) {
    case VC_PRESENCE_YES:
        snprintf(buf, len, "yes");
        break;
    case VC_PRESENCE_NO:
        snprintf(buf, len, "no");
        break;
    case VC_PRESENCE_TIMEOUT:
        snprintf(buf, len, "timeout:%d", p->ms);
        break;
    case VC_PRESENCE_DELAY:
        snprintf(buf, len, "delay:%d", p->ms);
        break;
    case VC_PRESENCE_ASK:
        snprintf(buf, len, "ask");
        break;
    }
}

/* Waits on s->cv until deadline (absolute monotonic ms). Lock held. */
static void wait_until(struct vc_server *s, uint64_t deadline_ms)
{
    struct timespec ts;
    uint64_t now = now_ms();
    uint64_t until = deadline_ms;

    if (until <= now)
        return;
    if (until - now > POLL_MAX_MS)
        until = now + POLL_MAX_MS; /* re-check flags at least once a second */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)((until - now) / 1000);
    ts.tv_nsec += (long)((until - now) % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    (void)pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

/* The core asks for presence: runs in the worker, lock not held. */
static enum vc_up_result presence_cb(void *ctx)
{
    struct vc_server *s = ctx;
    enum vc_up_result r;
    uint64_t start = now_ms();

    pthread_mutex_lock(&s->mu);
    vc_hid_job_set_status(s->hid, KC_KEEPALIVE_UPNEEDED);
    s->presence_pending = true;
    s->decision = -1;
    if (s->armed >= 0 && start < s->armed_until_ms)
        s->decision = s->armed;
    s->armed = -1;
    for (;;) {
        uint64_t now = now_ms();
        uint64_t deadline = start + VC_PRESENCE_MAX_MS;

        if (s->stopping || vc_hid_job_cancelled(s->hid)) {
            r = VC_UP_CANCELLED;
            break;
        }
        if (s->decision >= 0) {
            r = (enum vc_up_result)s->decision;
            break;
        }
        /* the mode is read on every round: "presence yes" ends an ask wait */
        if (s->presence.mode == VC_PRESENCE_YES) {
            r = VC_UP_APPROVED;
            break;
        }
        if (s->presence.mode == VC_PRESENCE_NO) {
            r = VC_UP_DENIED;
            break;
        }
        if (s->presence.mode == VC_PRESENCE_TIMEOUT || s->presence.mode == VC_PRESENCE_DELAY)
            deadline = start + (uint64_t)s->presence.ms;
        if (now >= deadline) {
            r = s->presence.mode == VC_PRESENCE_DELAY ? VC_UP_APPROVED : VC_UP_TIMEOUT;
            break;
        }
        wait_until(s, deadline);
    }
    s->presence_pending = false;
    s->decision = -1;
    vc_hid_job_set_status(s->hid, KC_KEEPALIVE_PROCESSING);
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* ---- worker ----------------------------------------------------------- */

static bool hangs_before_up(const struct vc_server *s, uint8_t cmd, const uint8_t *data, size_t len)
{
    return s->faults.on[VC_FAULT_HANG_BEFORE_UP] && cmd == KC_HID_CBOR && len > 0 &&
           (data[0] == KC_CTAP2_MAKE_CREDENTIAL || data[0] == KC_CTAP2_GET_ASSERTION);
}

static void wake_loop(struct vc_server *s)
{
    char c = 1;

    if (write(s->wake[1], &c, 1) < 0) {
        /* pipe full: the loop is already awake */
    }
}

static void *worker_main(void *arg)
{
    struct vc_server *s = arg;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        uint8_t cmd;
        size_t len;
        size_t resp_len = 0;
        int rc;

        while (!s->job_ready && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stopping)
            break;
        s->job_ready = false;
        s->job_active = true;
        cmd = s->job_cmd;
        len = s->job_len;
        if (hangs_before_up(s, cmd, s->job_buf, len)) {
            /* keepalive PROCESSING forever: only CANCEL, a resync, clearing
             * the fault or shutting down ends it */
            while (!s->stopping && !vc_hid_job_cancelled(s->hid) &&
                   s->faults.on[VC_FAULT_HANG_BEFORE_UP])
                wait_until(s, now_ms() + POLL_MAX_MS);
            s->resp_buf[0] = vc_hid_job_cancelled(s->hid) || s->stopping
                                 ? KC_CTAP2_ERR_KEEPALIVE_CANCEL
                                 : KC_CTAP2_ERR_OPERATION_DENIED;
            resp_len = 1;
        } else {
            pthread_mutex_unlock(&s->mu);
            if (cmd == KC_HID_CBOR)
                rc = vc_card_cbor(s->card, s->job_buf, len, s->resp_buf, sizeof(s->resp_buf),
                                  &resp_len, presence_cb, s);
            else
                rc = vc_card_msg(s->card, s->job_buf, len, s->resp_buf, sizeof(s->resp_buf),
                                 &resp_len, presence_cb, s);
            pthread_mutex_lock(&s->mu);
            if (rc < 0 || resp_len == 0 || resp_len > sizeof(s->resp_buf)) {
                if (cmd == KC_HID_CBOR) {
                    s->resp_buf[0] = KC_CTAP1_ERR_OTHER;
                    resp_len = 1;
                } else {
                    s->resp_buf[0] = 0x6f; /* SW_UNKNOWN */
                    s->resp_buf[1] = 0x00;
                    resp_len = 2;
                }
            }
            if (cmd == KC_HID_MSG && s->faults.on[VC_FAULT_SLOW_CTAP1]) {
                uint64_t until = now_ms() + (uint64_t)s->faults.arg[VC_FAULT_SLOW_CTAP1];

                while (!s->stopping && !vc_hid_job_cancelled(s->hid) && now_ms() < until)
                    wait_until(s, until);
            }
        }
        vc_hid_job_finish(s->hid, s->resp_buf, resp_len, now_ms());
        s->job_active = false;
        s->completed++;
        if (s->power_cycle_pending) {
            s->power_cycle_pending = false;
            vc_card_power_cycle(s->card);
        }
        if (s->faults.on[VC_FAULT_REPLUG]) {
            /* --fault replug: the card re-enumerates after a finished request */
            s->replug_requested = true;
            wake_loop(s);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- UDP -------------------------------------------------------------- */

static int parse_listen(const char *spec, struct sockaddr_in *sa, char *err, size_t errlen)
{
    char host[64];
    const char *colon;
    int port;

    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    colon = spec ? strrchr(spec, ':') : NULL;
    if (colon == NULL || (size_t)(colon - spec) >= sizeof(host) || parse_ms(colon + 1, &port) < 0 ||
        port > 65535) {
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

static int bind_udp(const struct sockaddr_in *want, struct sockaddr_in *got, char *err,
                    size_t errlen)
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

static void set_uri(struct vc_server *s)
{
    char host[INET_ADDRSTRLEN];

    inet_ntop(AF_INET, &s->addr.sin_addr, host, sizeof(host));
    snprintf(s->uri, sizeof(s->uri), "udp:%s:%u", host, ntohs(s->addr.sin_port));
}

static void send_cb(void *ctx, const struct vc_hid_peer *to, const uint8_t *report)
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

static void log_cb(void *ctx, const struct vc_hid_log_entry *e)
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
static void start_job(struct vc_server *s)
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

static int read_udp(struct vc_server *s)
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
        now = now_ms();
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
            start_job(s);
        }
        /* a CANCEL or a resync may concern the worker: let it look */
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    return 0;
}

static int read_uhid(struct vc_server *s)
{
    uint8_t rep[VC_UHID_REPORT_LEN];
    struct vc_hid_peer peer;
    int r;

    memset(&peer, 0, sizeof(peer));
    peer.len = 1;
    peer.addr[0] = UHID_PEER_MARK;
    for (int i = 0; i < UDP_BURST; i++) {
        if ((r = vc_uhid_read_output(s->uhid, rep, 0)) <= 0)
            return r;
        pthread_mutex_lock(&s->mu);
        if (s->replug_requested) { /* lost with the old node, as read_udp says */
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        if (s->script != NULL) {
            vc_script_input(s->script, &peer, rep, sizeof(rep), now_ms());
        } else {
            vc_hid_input(s->hid, &peer, rep, sizeof(rep), now_ms());
            start_job(s);
        }
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    return 0;
}

/* A new UHID device (the kernel gives it a new hidraw node); NULL with err
 * set on failure. */
static struct vc_uhid *new_uhid(const struct vc_server *s, char *err, size_t errlen)
{
    struct vc_uhid_config ucfg;
    struct vc_uhid *u = NULL;

    memset(&ucfg, 0, sizeof(ucfg));
    ucfg.vendor_id = UHID_VID;
    ucfg.product_id = UHID_PID;
    ucfg.vendor_interface = s->uhid_vendor ? 1 : 0;
    ucfg.start_timeout_ms = 5000;
    if (vc_uhid_open(&ucfg, &u, err, errlen) != 0)
        return NULL;
    return u;
}

/* Unplug: the hidraw node goes away, and with it every descriptor open on
 * it. Only the poll loop's thread touches s->uhid's descriptors; the worker
 * sends through it with the lock held, as here. Lock held. */
static void uhid_unplug(struct vc_server *s)
{
    vc_uhid_close(s->uhid);
    s->uhid = NULL;
}

/* Plug (back) in as a new device when --uhid asked for one and none is
 * there. Lock held. */
static int uhid_plug(struct vc_server *s, char *err, size_t errlen)
{
    if (!s->uhid_wanted || s->uhid != NULL)
        return 0;
    return (s->uhid = new_uhid(s, err, errlen)) != NULL ? 0 : -1;
}

/* ---- announce file ---------------------------------------------------- */

static void announce_remove(struct vc_server *s)
{
    if (s->announce_path != NULL)
        (void)unlink(s->announce_path);
}

static int announce_write(struct vc_server *s)
{
    char tmp[PATH_MAX];
    char line[160];
    int fd;
    int n;
    bool ok;

    if (s->announce_path == NULL)
        return 0;
    n = snprintf(tmp, sizeof(tmp), "%s/.vcard-%ld.uri.tmp", s->announce_dir, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -1;
    /* the first line is the URI alone (what discovery reads) */
    n = snprintf(line, sizeof(line), "%s\npersonality %s\n", s->uri,
                 vc_card_personality(s->card)->name);
    if (n < 0 || (size_t)n >= sizeof(line))
        return -1;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = false;
    if (!ok || rename(tmp, s->announce_path) != 0) {
        (void)unlink(tmp);
        return -1;
    }
    return 0;
}

/* ---- faults, replug --------------------------------------------------- */

/* Lock held. */
static void apply_faults(struct vc_server *s)
{
    vc_card_set_faults(s->card, &s->faults);
    vc_hid_set_faults(s->hid, &s->faults);
    vc_hid_set_personality(s->hid, vc_card_personality(s->card));
    vc_hid_set_caps(s->hid, vc_card_ctap1_enabled(s->card), vc_card_ctap2_enabled(s->card));
}

/* Comes back on a new port of the same address with no channels, and with
 * --uhid as a new UHID device (a new hidraw node). Nothing changes when
 * either cannot be made. Lock held. */
static int do_replug(struct vc_server *s, char *err, size_t errlen)
{
    struct sockaddr_in want = s->addr;
    struct sockaddr_in got;
    struct vc_uhid *u = NULL;
    int fd;

    /* made while the old one still exists, so its node number differs */
    if (s->uhid_wanted && (u = new_uhid(s, err, errlen)) == NULL)
        return -1;
    want.sin_port = 0; /* the old socket is still bound: the port differs */
    fd = bind_udp(&want, &got, err, errlen);
    if (fd < 0) {
        vc_uhid_close(u);
        return -1;
    }
    if (s->uhid_wanted) {
        uhid_unplug(s);
        s->uhid = u;
    }
    close(s->udp);
    s->udp = fd;
    s->addr = got;
    set_uri(s);
    vc_hid_reset(s->hid);
    s->faults.on[VC_FAULT_UNPLUG] = false;
    apply_faults(s);
    if (s->job_active || s->job_ready)
        s->power_cycle_pending = true;
    else
        vc_card_power_cycle(s->card);
    s->nclients = 0;
    s->replugs++;
    if (announce_write(s) < 0)
        fprintf(stderr, "vcard: cannot rewrite announce file %s: %s\n", s->announce_path,
                strerror(errno));
    fprintf(stderr, "vcard: replugged, listening on %s\n", s->uri);
    return 0;
}

static void do_unplug(struct vc_server *s)
{
    s->faults.on[VC_FAULT_UNPLUG] = true;
    apply_faults(s);
    announce_remove(s);
    uhid_unplug(s);
}

/* ---- control socket --------------------------------------------------- */

static json_t *faults_json(const struct vc_faults *f)
{
    json_t *a = json_array();

    for (int k = 0; a != NULL && k < VC_FAULT_COUNT; k++) {
        char buf[48];

        if (!f->on[k])
            continue;
        if (k == VC_FAULT_SLOW_CTAP1 || k == VC_FAULT_DROP_EVERY || k == VC_FAULT_DUPLICATE_EVERY)
            snprintf(buf, sizeof(buf), "%s:%d", vc_fault_name((enum vc_fault_kind)k), f->arg[k]);
        else
            snprintf(buf, sizeof(buf), "%s", vc_fault_name((enum vc_fault_kind)k));
        json_array_append_new(a, json_string(buf));
    }
    return a;
}

static json_t *status_json(struct vc_server *s)
{
    char host[INET_ADDRSTRLEN];
    char mode[32];
    json_t *o;
    json_t *clients = json_array();
    char *card;

    inet_ntop(AF_INET, &s->addr.sin_addr, host, sizeof(host));
    vc_presence_format(&s->presence, mode, sizeof(mode));
    for (size_t i = 0; clients != NULL && i < s->nclients; i++) {
        char a[INET_ADDRSTRLEN];
        char peer[64];

        inet_ntop(AF_INET, &s->clients[i].addr.sin_addr, a, sizeof(a));
        snprintf(peer, sizeof(peer), "%s:%u", a, ntohs(s->clients[i].addr.sin_port));
        json_array_append_new(clients, json_pack("{s:s, s:I}", "address", peer, "reports",
                                                 (json_int_t)s->clients[i].requests));
    }
    o = json_pack("{s:b, s:s, s:s, s:i, s:s, s:o, s:b, s:b, s:b, s:o, s:i, s:I, s:I}", "ok", 1,
                  "uri", s->uri, "listen", host, "port", ntohs(s->addr.sin_port), "presence", mode,
                  "faults", faults_json(&s->faults), "presence_pending", s->presence_pending,
                  "busy", s->job_active || s->job_ready, "unplugged", s->faults.on[VC_FAULT_UNPLUG],
                  "clients", clients ? clients : json_array(), "channels",
                  (int)vc_hid_channel_count(s->hid), "requests", (json_int_t)s->completed,
                  "replugs", (json_int_t)s->replugs);
    if (o == NULL)
        return NULL;
    if (s->announce_path != NULL)
        json_object_set_new(o, "announce", json_string(s->announce_path));
    json_object_set_new(o, "personality", json_string(vc_card_personality(s->card)->name));
    json_object_set_new(o, "reply_port",
                        s->reply_port ? json_integer(ntohs(s->reply_port)) : json_null());
    json_object_set_new(o, "uhid", json_boolean(s->uhid != NULL));
    if (s->script != NULL)
        json_object_set_new(o, "script", vc_script_status(s->script));
    card = vc_card_status_json(s->card);
    if (card != NULL) {
        json_t *c = json_loads(card, 0, NULL);

        if (c != NULL)
            json_object_set_new(o, "card", c);
        free(card);
    }
    return o;
}

static json_t *reply_ok(void)
{
    return json_pack("{s:b}", "ok", 1);
}

static json_t *reply_err(const char *msg)
{
    json_t *o = json_pack("{s:b, s:s}", "ok", 0, "error", msg);

    /* jansson refuses text that is not UTF-8: never leave the caller empty */
    return o ? o : json_pack("{s:b, s:s}", "ok", 0, "error", "bad command");
}

static bool printable_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 ? *s != '\t' : (unsigned char)*s > 0x7e)
            return false;
    return true;
}

static json_t *decide(struct vc_server *s, enum vc_up_result d)
{
    if (s->presence_pending) {
        s->decision = (int)d;
        pthread_cond_broadcast(&s->cv);
        return json_pack("{s:b, s:s}", "ok", 1, "applied", "pending");
    }
    s->armed = (int)d;
    s->armed_until_ms = now_ms() + ARMED_DECISION_MS;
    return json_pack("{s:b, s:s}", "ok", 1, "applied", "next");
}

/* One control line; returns the JSON reply. Lock held. */
static json_t *control_command(struct vc_server *s, char *line)
{
    char err[320];
    char *arg;

    if (!printable_ascii(line))
        return reply_err("commands are printable ASCII");
    while (*line == ' ' || *line == '\t')
        line++;
    arg = strpbrk(line, " \t");
    if (arg != NULL) {
        *arg++ = '\0';
        while (*arg == ' ' || *arg == '\t')
            arg++;
        if (*arg == '\0')
            arg = NULL;
    }
    if (strcmp(line, "approve") == 0 || strcmp(line, "deny") == 0) {
        if (arg != NULL)
            return reply_err("approve/deny take no argument");
        return decide(s, line[0] == 'a' ? VC_UP_APPROVED : VC_UP_DENIED);
    }
    if (strcmp(line, "presence") == 0) {
        struct vc_presence p;

        if (vc_presence_parse(arg, &p, err, sizeof(err)) < 0)
            return reply_err(err);
        s->presence = p;
        pthread_cond_broadcast(&s->cv);
        return reply_ok();
    }
    if (strcmp(line, "fault") == 0) {
        struct vc_faults f = s->faults;

        if (vc_fault_parse(arg, &f, err, sizeof(err)) < 0)
            return reply_err(err);
        if (f.on[VC_FAULT_REPLUG]) {
            /* an action, not a state: replug now */
            f.on[VC_FAULT_REPLUG] = false;
            s->faults = f;
            if (do_replug(s, err, sizeof(err)) < 0)
                return reply_err(err);
            return json_pack("{s:b, s:s}", "ok", 1, "uri", s->uri);
        }
        s->faults = f;
        if (f.on[VC_FAULT_UNPLUG])
            do_unplug(s);
        else
            apply_faults(s);
        pthread_cond_broadcast(&s->cv);
        return reply_ok();
    }
    if (strcmp(line, "personality") == 0) {
        const struct vc_personality *p = vc_personality_find(arg);

        if (p == NULL) {
            vc_personality_unknown(arg, err, sizeof(err));
            return reply_err(err);
        }
        /* another card model plugged in: a replug with the new personality */
        if (vc_card_set_personality(s->card, p, err, sizeof(err)) < 0 ||
            do_replug(s, err, sizeof(err)) < 0)
            return reply_err(err);
        return json_pack("{s:b, s:s, s:s}", "ok", 1, "uri", s->uri, "personality", p->name);
    }
    if (arg != NULL)
        return reply_err("this command takes no argument");
    if (strcmp(line, "clear") == 0) {
        bool was_unplugged = s->faults.on[VC_FAULT_UNPLUG];

        memset(&s->faults, 0, sizeof(s->faults));
        apply_faults(s);
        if (was_unplugged && announce_write(s) < 0)
            return reply_err("cannot rewrite the announce file");
        if (was_unplugged && uhid_plug(s, err, sizeof(err)) < 0)
            return reply_err(err);
        pthread_cond_broadcast(&s->cv);
        return reply_ok();
    }
    if (strcmp(line, "unplug") == 0) {
        do_unplug(s);
        return reply_ok();
    }
    if (strcmp(line, "replug") == 0) {
        if (do_replug(s, err, sizeof(err)) < 0)
            return reply_err(err);
        return json_pack("{s:b, s:s}", "ok", 1, "uri", s->uri);
    }
    if (strcmp(line, "status") == 0) {
        json_t *o = status_json(s);

        return o ? o : reply_err("out of memory");
    }
    snprintf(err, sizeof(err),
             "unknown command '%.40s' (approve, deny, presence MODE, fault PROFILE, clear, "
             "unplug, replug, personality NAME, status)",
             line);
    return reply_err(err);
}

char *vc_server_control(struct vc_server *s, const char *line)
{
    char buf[CTL_LINE_MAX];
    size_t len = strlen(line);
    json_t *o;
    char *text;

    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len >= sizeof(buf) || memchr(line, '\n', len) != NULL) {
        o = reply_err("command line too long or not one line");
    } else {
        memcpy(buf, line, len);
        buf[len] = '\0';
        pthread_mutex_lock(&s->mu);
        o = control_command(s, buf);
        pthread_mutex_unlock(&s->mu);
    }
    text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return text;
}

static void conn_close(struct ctl_conn *c)
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
        conn_close(c);
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
            conn_close(c);
            break;
        }
        off += (size_t)n;
    }
    free(text);
}

static void conn_read(struct vc_server *s, struct ctl_conn *c)
{
    ssize_t n = recv(c->fd, c->buf + c->used, sizeof(c->buf) - c->used, MSG_DONTWAIT);
    char *nl;

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
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
            o = reply_err("NUL byte in command");
        } else {
            pthread_mutex_lock(&s->mu);
            o = control_command(s, c->buf);
            pthread_mutex_unlock(&s->mu);
        }
        conn_reply(c, o);
        if (c->fd < 0)
            return;
        c->used -= consumed;
        memmove(c->buf, c->buf + consumed, c->used);
    }
    if (c->used == sizeof(c->buf)) {
        conn_reply(c, reply_err("command line too long"));
        conn_close(c);
    }
}

static void ctl_accept(struct vc_server *s)
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

static int ctl_listen(struct vc_server *s, const char *path, char *err, size_t errlen)
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

/* ---- lifecycle -------------------------------------------------------- */

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
        vc_script_set_send(s->script, send_cb, s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);

    if (parse_listen(cfg->listen ? cfg->listen : "127.0.0.1:8111", &want, err, errlen) < 0)
        goto fail;
    if ((s->udp = bind_udp(&want, &s->addr, err, errlen)) < 0)
        goto fail;
    set_uri(s);
    if (pipe2(s->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    if ((s->hid = vc_hid_new(send_cb, s)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    vc_hid_set_log(s->hid, log_cb, s);
    apply_faults(s);
    s->uhid_wanted = cfg->uhid;
    s->uhid_vendor = cfg->uhid_vendor;
    /* --fault unplug at start: no device until cleared or replugged */
    if (cfg->uhid && !s->faults.on[VC_FAULT_UNPLUG] && (s->uhid = new_uhid(s, err, errlen)) == NULL)
        goto fail;
    if (cfg->control_path != NULL && ctl_listen(s, cfg->control_path, err, errlen) < 0)
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
        if (!s->faults.on[VC_FAULT_UNPLUG] && announce_write(s) < 0) {
            snprintf(err, errlen, "cannot write announce file %s: %s", path, strerror(errno));
            free(s->announce_path);
            s->announce_path = NULL;
            goto fail;
        }
    }
    if (pthread_create(&s->worker, NULL, worker_main, s) != 0) {
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

int vc_server_run(struct vc_server *s, volatile sig_atomic_t *stop)
{
    struct pollfd pfd[5 + CTL_MAX_CLIENTS];
    int rc = 0;

    while (!*stop) {
        uint64_t now = now_ms();
        uint64_t deadline;
        int timeout;
        int nfds = 0;
        int conn_at[CTL_MAX_CLIENTS];
        int ctl_at = -1;
        int uhid_at = -1;
        int vendor_at = -1;

        pthread_mutex_lock(&s->mu);
        vc_hid_tick(s->hid, now);
        if (s->script != NULL)
            vc_script_tick(s->script, now);
        if (s->replug_requested) {
            char err[160];

            s->replug_requested = false;
            s->faults.on[VC_FAULT_REPLUG] = false; /* once */
            if (do_replug(s, err, sizeof(err)) < 0)
                fprintf(stderr, "vcard: replug failed: %s\n", err);
        }
        deadline = vc_hid_deadline(s->hid);
        if (s->script != NULL && vc_script_deadline(s->script) < deadline)
            deadline = vc_script_deadline(s->script);
        pthread_mutex_unlock(&s->mu);
        timeout = POLL_MAX_MS;
        if (deadline != UINT64_MAX)
            timeout = deadline <= now                ? 0
                      : deadline - now < POLL_MAX_MS ? (int)(deadline - now)
                                                     : POLL_MAX_MS;
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
        if (pfd[0].revents & POLLIN && read_udp(s) < 0) {
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
            read_uhid(s) < 0) {
            fprintf(stderr, "vcard: uhid read failed: %s\n", strerror(errno));
            rc = -1;
            break;
        }
        if (vendor_at >= 0 && pfd[vendor_at].revents & POLLIN)
            (void)vc_uhid_service_vendor(s->uhid);
        if (ctl_at >= 0 && pfd[ctl_at].revents & POLLIN)
            ctl_accept(s);
        for (int i = 0; i < CTL_MAX_CLIENTS; i++)
            if (conn_at[i] >= 0 && pfd[conn_at[i]].revents & (POLLIN | POLLHUP | POLLERR))
                conn_read(s, &s->conns[i]);
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
        conn_close(&s->conns[i]);
    if (s->ctl >= 0) {
        close(s->ctl);
        if (s->ctl_path != NULL)
            (void)unlink(s->ctl_path);
    }
    announce_remove(s);
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
