/* What every service main and state file needs: the proxy token from a flag,
 * a file or the environment; the default state path; the state folder; the
 * port file that tells scripts where a --port 0 service listens; reading a
 * small file (PEM, token, page); the stop signals. */
#ifndef KCARD_SERVICES_SVC_UTIL_H
#define KCARD_SERVICES_SVC_UTIL_H

#include <stddef.h>
#include <time.h>

#include "services/common/http.h"

/* The token from --proxy-token (arg), --proxy-token-file (file, first line)
 * or KCARD_PROXY_TOKEN, in that order; prints why to stderr, prefixed with
 * prog, and returns -1 when there is none or both flags were given. */
int ksvc_load_token(const char *prog, const char *arg, const char *file, char *out, size_t cap);

/* $XDG_STATE_HOME/kcard/NAME, else $HOME/.local/state/kcard/NAME; 0 or -1. */
int ksvc_default_state_path(const char *name, char *out, size_t cap);

/* mkdir -p of path's folder, mode 0700 for what it creates; 0 or -1 with err. */
int ksvc_make_parent_dirs(const char *path, char *err, size_t errlen);

/* The whole number s for option opt, within lo..hi; otherwise prints
 * "PROG: OPT S: want a whole number from LO to HI" and returns -1. */
int ksvc_parse_int_option(const char *prog, const char *opt, const char *s, long lo, long hi,
                          int *out);

/* The connection limits every service takes (http.h, struct ksvc_limits):
 * part of KSVC_LISTEN_OPTIONS below, which services use (ksvc_listen_option
 * hands these codes to ksvc_limit_option); print KSVC_LIMIT_USAGE in --help
 * and pass the limits in ksvc_server_cfg.limits. */
#define KSVC_OPT_MAX_CONNECTIONS 0x4b01
#define KSVC_OPT_MAX_PER_ADDRESS 0x4b02
#define KSVC_OPT_REQUEST_TIMEOUT 0x4b03
/* clang-format off */
#define KSVC_LIMIT_OPTIONS                                                                         \
    {"max-connections", required_argument, NULL, KSVC_OPT_MAX_CONNECTIONS},                        \
    {"max-connections-per-address", required_argument, NULL, KSVC_OPT_MAX_PER_ADDRESS},            \
    {"request-timeout", required_argument, NULL, KSVC_OPT_REQUEST_TIMEOUT}
/* clang-format on */
#define KSVC_LIMIT_USAGE                                                                           \
    "  --max-connections N     open connections in all (default 1024); more are\n"                 \
    "                          closed at once and counted in /metrics\n"                           \
    "  --max-connections-per-address N\n"                                                          \
    "                          open connections from one client address (default 256)\n"           \
    "  --request-timeout S     seconds a client has to send a request's headers and\n"             \
    "                          body, from connecting or from the previous answer\n"                \
    "                          (default 10); slower connections are closed\n"

/* Where and how every service's front listens, as its command line says:
 * put KSVC_LISTEN_OPTIONS (which holds KSVC_LIMIT_OPTIONS) in the
 * getopt_long table, set the defaults in a struct ksvc_listen_opts, hand
 * every option code to ksvc_listen_option and call ksvc_listen_check once
 * parsing is done. The usage text stays each service's own (its defaults
 * differ). */
#define KSVC_OPT_HOST 0x4b10
#define KSVC_OPT_PORT 0x4b11
#define KSVC_OPT_TLS_CERT 0x4b12
#define KSVC_OPT_TLS_KEY 0x4b13
#define KSVC_OPT_PORT_FILE 0x4b14
#define KSVC_OPT_CPU_SCHEDULING 0x4b15
/* clang-format off */
#define KSVC_LISTEN_OPTIONS                                                                        \
    {"host", required_argument, NULL, KSVC_OPT_HOST},                                              \
    {"port", required_argument, NULL, KSVC_OPT_PORT},                                              \
    {"tls-certfile", required_argument, NULL, KSVC_OPT_TLS_CERT},                                  \
    {"tls-keyfile", required_argument, NULL, KSVC_OPT_TLS_KEY},                                    \
    {"port-file", required_argument, NULL, KSVC_OPT_PORT_FILE},                                    \
    {"cpu-scheduling", required_argument, NULL, KSVC_OPT_CPU_SCHEDULING},                          \
    KSVC_LIMIT_OPTIONS
/* clang-format on */

struct ksvc_listen_opts {
    const char *host;      /* --host */
    int port;              /* --port, 0..65535 (0: any free port) */
    const char *cert_file; /* --tls-certfile and --tls-keyfile, both or neither */
    const char *key_file;
    const char *port_file; /* --port-file */
    struct ksvc_limits limits;
    enum ksvc_cpu_scheduling cpu_scheduling; /* --cpu-scheduling batch|inherit */
};

/* The text of --cpu-scheduling for every service's --help. */
#define KSVC_SCHED_USAGE                                                                           \
    "  --cpu-scheduling batch|inherit\n"                                                           \
    "                          how the kernel schedules the request threads: batch\n"              \
    "                          (the default) moves them from SCHED_OTHER to\n"                     \
    "                          SCHED_BATCH, so a running thread finishes its slice\n"              \
    "                          rather than yield to each woken one: more requests per\n"           \
    "                          CPU under load, more latency beside CPU-bound work;\n"              \
    "                          inherit keeps the policy the process started with\n"

/* 1 when c is one of KSVC_LISTEN_OPTIONS and arg was stored in l, 0 when c
 * is another option, -1 when arg is not a valid value (said on stderr,
 * prefixed with prog). */
int ksvc_listen_option(const char *prog, int c, const char *arg, struct ksvc_listen_opts *l);

/* 0, or -1 when only one of the two TLS files was given (said on stderr). */
int ksvc_listen_check(const char *prog, const struct ksvc_listen_opts *l);

struct ksvc_limits;

/* 1 when c is one of KSVC_LIMIT_OPTIONS and arg was stored in limits, 0
 * when c is another option, -1 when arg is not a valid value (said on
 * stderr, prefixed with prog). */
int ksvc_limit_option(const char *prog, int c, const char *arg, struct ksvc_limits *limits);

/* Reads a whole PEM/text file of at most max bytes; NULL with err set. */
char *ksvc_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);

/* Blocks SIGINT, SIGTERM and SIGPIPE in the calling thread (call first in main). */
void ksvc_block_signals(void);
/* Blocks until SIGINT or SIGTERM (which the caller has blocked in every
 * thread before starting the server); returns the signal number. */
int ksvc_wait_for_stop_signal(void);

struct ksvc_server;

/* The end of every service main: writes the port to port_file (when not
 * NULL), logs "stop" on SIGINT/SIGTERM. 0 when stopped by a signal, -1 when
 * the port file cannot be written (said on stderr, prefixed with prog). */
int ksvc_serve_until_stopped(const char *prog, struct ksvc_server *server, const char *port_file);

#endif
