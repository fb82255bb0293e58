/* The virtual card's UDP server: one datagram is one 64-byte report, every
 * reply goes to the address the request came from. A poll() loop owns the
 * sockets and the CTAPHID layer; the authenticator core runs in one worker
 * thread so keepalives, CANCEL and control commands keep flowing while it
 * computes or waits for presence. */
#ifndef KCARD_VCARD_SERVER_H
#define KCARD_VCARD_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness/vcard/card.h"

/* Upper bound of any presence wait: then it times out. */
#define VC_PRESENCE_MAX_MS 30000

enum vc_presence_mode {
    VC_PRESENCE_YES = 0,
    VC_PRESENCE_NO,
    VC_PRESENCE_TIMEOUT, /* wait arg ms (default the upper bound), then time out */
    VC_PRESENCE_DELAY,   /* wait arg ms, then approve */
    VC_PRESENCE_ASK,     /* wait for a control approve/deny */
};

struct vc_presence {
    enum vc_presence_mode mode;
    int ms;
};

/* "yes", "no", "timeout", "timeout:MS", "delay:MS", "ask". */
int vc_presence_parse(const char *s, struct vc_presence *p, char *err, size_t errlen);
/* Back to the spelling above (buf of at least 32 bytes). */
void vc_presence_format(const struct vc_presence *p, char *buf, size_t len);

struct vc_script;

struct vc_server_config {
    const char *listen;       /* "ADDR:PORT", port 0 picks a free one */
    const char *control_path; /* NULL: no control socket */
    const char *announce_dir; /* NULL: no announce file */
    struct vc_presence presence;
    struct vc_faults faults;
    bool verbose;     /* one JSON line per request on stderr */
    bool uhid;        /* also appear as a hidraw node through /dev/uhid */
    bool uhid_vendor; /* with a vendor-defined interface beside it */
    /* --script: a recorded card answers (script.h); the caller owns it */
    struct vc_script *script;
    uint16_t reply_port; /* --reply-port: replies to this port of the sender (0: its port) */
};

struct vc_server;

/* Binds the UDP socket, creates the control socket and the announce file.
 * The card stays owned by the caller. NULL with a message on failure. */
struct vc_server *vc_server_new(struct vc_card *card, const struct vc_server_config *cfg, char *err,
                                size_t errlen);
/* "udp:127.0.0.1:PORT" of the current socket. */
const char *vc_server_uri(const struct vc_server *s);
uint16_t vc_server_port(const struct vc_server *s);
/* Serves until *stop becomes non-zero (set it from a signal handler).
 * Returns 0, or -1 on a fatal socket error. */
int vc_server_run(struct vc_server *s, volatile sig_atomic_t *stop);
/* Runs one control command line ("status", "fault busy", ...) as the
 * control socket would; returns its JSON reply (malloc'd, no newline), or
 * NULL when out of memory. Thread-safe. */
char *vc_server_control(struct vc_server *s, const char *line);
/* Stops the worker, closes sockets, removes the control socket and the
 * announce file. */
void vc_server_free(struct vc_server *s);

#endif
