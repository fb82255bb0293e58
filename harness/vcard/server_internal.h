/* The virtual card server's insides, shared by its files (server*.c) and
 * by nothing else: server.h is the public face. Locking: s->mu guards the
 * hid layer, the job hand-off, presence state, faults and the sockets; the
 * worker drops it while the core runs. The poll loop's thread alone touches
 * the descriptors. */
#ifndef KCARD_VCARD_SERVER_INTERNAL_H
#define KCARD_VCARD_SERVER_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "ctaphid/status.h"
#include "harness/vcard/hid.h"
#include "harness/vcard/server.h"

struct vc_uhid;

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

/* ---- server_presence.c: presence modes and waits ---------------------- */

/* A whole number of milliseconds (0 .. 3600000) in s; 0 or -1. */
int vcs_parse_ms(const char *s, int *out);
/* Waits on s->cv until deadline (absolute monotonic ms, at most a second
 * at a time). Lock held. */
void vcs_wait_until(struct vc_server *s, uint64_t deadline_ms);
/* The core asks for presence: runs in the worker, lock not held. */
enum vc_up_result vcs_presence_cb(void *ctx);

/* ---- server_worker.c: the core's thread ------------------------------- */

void *vcs_worker_main(void *arg);

/* ---- server_udp.c: reports in and out over UDP, and their log --------- */

int vcs_parse_listen(const char *spec, struct sockaddr_in *sa, char *err, size_t errlen);
/* A non-blocking UDP socket bound to want (got: the real address); -1 with err. */
int vcs_bind_udp(const struct sockaddr_in *want, struct sockaddr_in *got, char *err, size_t errlen);
/* s->uri from s->addr. */
void vcs_set_uri(struct vc_server *s);
/* The hid layer's and the script's way out: UDP, or the UHID node. */
void vcs_send_cb(void *ctx, const struct vc_hid_peer *to, const uint8_t *report);
/* -v: one JSON line per request on stderr. */
void vcs_log_cb(void *ctx, const struct vc_hid_log_entry *e);
/* Hands a complete message to the worker. Lock held. */
void vcs_start_job(struct vc_server *s);
/* Reads a burst of datagrams; 0, or -1 on a socket error. */
int vcs_read_udp(struct vc_server *s);

/* ---- server_uhid.c: the --uhid hidraw face ---------------------------- */

int vcs_read_uhid(struct vc_server *s);
struct vc_uhid *vcs_new_uhid(const struct vc_server *s, char *err, size_t errlen);
void vcs_uhid_unplug(struct vc_server *s);
int vcs_uhid_plug(struct vc_server *s, char *err, size_t errlen);

/* ---- server_announce.c: the announce file ----------------------------- */

void vcs_announce_remove(struct vc_server *s);
/* Writes (atomically replaces) the announce file; 0, or -1 with errno. */
int vcs_announce_write(struct vc_server *s);

/* ---- server_replug.c: faults, unplug and replug ----------------------- */

void vcs_apply_faults(struct vc_server *s);
int vcs_do_replug(struct vc_server *s, char *err, size_t errlen);
void vcs_do_unplug(struct vc_server *s);

/* ---- server_control.c: the control commands --------------------------- */

/* {"ok": false, "error": msg}. */
json_t *vcs_reply_err(const char *msg);
/* One control line; returns the JSON reply. Lock held. */
json_t *vcs_control_command(struct vc_server *s, char *line);

/* ---- server_ctl_socket.c: the control socket -------------------------- */

void vcs_conn_close(struct ctl_conn *c);
void vcs_conn_read(struct vc_server *s, struct ctl_conn *c);
void vcs_ctl_accept(struct vc_server *s);
int vcs_ctl_listen(struct vc_server *s, const char *path, char *err, size_t errlen);

#endif
