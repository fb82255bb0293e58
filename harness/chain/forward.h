/* kc-forward: a stand-in for Qubes' `qvm-connect-tcp LOCALPORT:TARGETVM:TARGETPORT`
 * built from Linux network namespaces. It listens on 127.0.0.1:LOCALPORT in one
 * namespace and, per accepted connection, connects to 127.0.0.1:TARGETPORT in
 * another one and copies opaque bytes both ways. */
#ifndef KCARD_HARNESS_CHAIN_FORWARD_H
#define KCARD_HARNESS_CHAIN_FORWARD_H

#include <stddef.h>
#include <stdint.h>

/* The longest namespace name accepted (ip-netns names are file names). */
#define KCF_NETNS_MAX 64

/* Exit codes of kc-forward. */
#define KCF_EXIT_OK 0
#define KCF_EXIT_RUNTIME 1
#define KCF_EXIT_USAGE 2
#define KCF_EXIT_SETUP 3

/* LOCALPORT:TARGET:TARGETPORT, as qvm-connect-tcp takes it. */
struct kcf_spec {
    uint16_t local_port;            /* 0: any free port (an extension) */
    uint16_t target_port;           /* 1..65535 */
    char target[KCF_NETNS_MAX + 1]; /* "" when the middle field is empty */
};

struct kcf_options {
    struct kcf_spec spec;
    char listen_netns[KCF_NETNS_MAX + 1]; /* "": the namespace we run in */
    char target_netns[KCF_NETNS_MAX + 1]; /* resolved: "" means no switch */
    const char *ready_file;               /* NULL: none */
    unsigned idle_timeout_ms;             /* close after this long without bytes */
    unsigned connect_timeout_ms;          /* give up connecting to the target */
    unsigned max_conns;                   /* connections served at once */
    int verbose;                          /* JSON line per connection event */
};

enum kcf_parse_result {
    KCF_PARSE_OK = 0,
    KCF_PARSE_HELP = 1,  /* --help given: print the usage, exit 0 */
    KCF_PARSE_USAGE = 2, /* a usage error, message in err */
};

#define KCF_DEFAULT_IDLE_TIMEOUT_MS 300000u
#define KCF_DEFAULT_CONNECT_TIMEOUT_MS 5000u
#define KCF_DEFAULT_MAX_CONNS 64u
#define KCF_MAX_CONNS_LIMIT 1024u

/* Parses a port 1..65535 (0 too when allow_zero); decimal only. 0 on success. */
int kcf_parse_port(const char *s, size_t len, int allow_zero, uint16_t *out);
/* 1 when name is a usable namespace name: 1..KCF_NETNS_MAX of [A-Za-z0-9._-],
 * not "." or "..". */
int kcf_netns_name_ok(const char *name);
/* Parses "[LOCALPORT]:[TARGET]:TARGETPORT"; an empty LOCALPORT means TARGETPORT.
 * 0 on success, -1 with a message in err otherwise. */
int kcf_spec_parse(const char *s, struct kcf_spec *out, char *err, size_t errlen);
/* Parses kc-forward's command line into opts (argv is not modified). */
enum kcf_parse_result kcf_options_parse(int argc, char *const argv[], struct kcf_options *opts,
                                        char *err, size_t errlen);
/* The usage text. */
const char *kcf_usage(void);

/* Opens /run/netns/NAME (O_RDONLY|O_CLOEXEC); -1 with errno set on failure. */
int kcf_netns_open(const char *name);
/* Switches the calling thread into the network namespace fd names; 0 or -1. */
int kcf_netns_enter(int fd);

/* One direction of a relayed connection: bytes read from one socket wait in
 * buf[off..len) until they are written to the other. */
#define KCF_HALF_BUF 16384
struct kcf_half {
    uint8_t *buf; /* KCF_HALF_BUF bytes */
    size_t off, len;
    int eof;        /* the source said EOF */
    int shut;       /* EOF passed on: the destination's write side is shut */
    uint64_t bytes; /* bytes written to the destination */
};

enum kcf_pump_result {
    KCF_PUMP_IDLE = 0,   /* nothing moved */
    KCF_PUMP_MOVED = 1,  /* bytes moved or EOF seen */
    KCF_PUMP_ERROR = -1, /* a read or write failed (reset, broken pipe) */
};

/* Moves what it can from src to dst without blocking (both non-blocking):
 * reads while there is room, writes what is buffered. Never shuts anything;
 * the caller does when kcf_half_drained says so. */
enum kcf_pump_result kcf_half_pump(struct kcf_half *h, int src, int dst);
/* 1 when the source said EOF and every byte has been written. */
int kcf_half_drained(const struct kcf_half *h);

/* Runs the forwarder until SIGINT/SIGTERM; returns a KCF_EXIT_* code. */
int kcf_run(const struct kcf_options *opts);

#endif
