/* What every service main and state file needs: the proxy token from a flag,
 * a file or the environment; the default state path; the state folder; the
 * port file that tells scripts where a --port 0 service listens. */
#ifndef KCARD_SERVICES_SVC_UTIL_H
#define KCARD_SERVICES_SVC_UTIL_H

#include <stddef.h>

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

struct ksvc_server;

/* The end of every service main: writes the port to port_file (when not
 * NULL), logs "stop" on SIGINT/SIGTERM. 0 when stopped by a signal, -1 when
 * the port file cannot be written (said on stderr, prefixed with prog). */
int ksvc_serve_until_stopped(const char *prog, struct ksvc_server *server, const char *port_file);

#endif
