/* The command line both floor programs share: options, the port file and
 * the stop signals (bench/floor/README.md). */
#ifndef KCARD_BENCH_FLOOR_CLI_H
#define KCARD_BENCH_FLOOR_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

struct floor_options {
    unsigned port;         /* --port, 0..65535 (0: any) */
    const char *port_file; /* --port-file, NULL: none */
    unsigned threads;      /* --threads, 1..256 (default: online CPUs) */
    const char *upstream;  /* --upstream http:// or https:// URL, NULL unless want_upstream */
    const char *ca_file;   /* --ca-file: the upstream's CA (want_upstream; needed for https) */
    const char *tls_cert;  /* --tls-certfile and --tls-keyfile: serve HTTPS, NULL: plain */
    const char *tls_key;
    char *cert_pem, *key_pem; /* their contents, read by floor_parse_args; floor_free_options */
};

/* argv into o, numbers strict (kcu_parse_int). With want_upstream,
 * --upstream is taken and required (https:// needs --ca-file). With
 * --tls-certfile and --tls-keyfile (both or neither), their files are read
 * into cert_pem and key_pem. 0 to run, 1 after --help (usage on
 * stdout), -1 on bad usage (said on stderr, prefixed with prog). */
int floor_parse_args(const char *prog, void (*usage)(FILE *), bool want_upstream, int argc,
                     char **argv, struct floor_options *o);
/* Frees what floor_parse_args read into o. */
void floor_free_options(struct floor_options *o);
/* The bound port and a newline into path: 0, or -1 (said on stderr). */
int floor_write_port_file(const char *prog, const char *path, unsigned port);
/* SIGTERM and SIGINT blocked in set (call before starting threads, so that
 * they inherit the mask, then sigwait on set); SIGPIPE ignored. 0 or -1. */
int floor_block_stop_signals(const char *prog, sigset_t *set);

#endif
