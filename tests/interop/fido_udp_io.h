/* Shared by the libfido2 interop programs (header-only: the Makefile builds
 * every .c file of tests/interop into its own program). libfido2's custom I/O hooks
 * carry its 64-byte reports over UDP to a simulator, either on a connect()ed
 * socket or, as the 8111/7112 simulator convention expects, on an unconnected
 * socket bound to a fixed local port (sendto/recvfrom). The hooks also watch
 * the wire (keepalives, CTAPHID ERROR codes) and can inject what libfido2 has
 * no API for: an unknown CTAPHID command, or a channel never allocated.
 * Every read is bounded, so a silent card fails a check, not the run, and a
 * whole run is cut off after RUN_LIMIT_S seconds. */
#ifndef KCARD_INTEROP_FIDO_UDP_IO_H
#define KCARD_INTEROP_FIDO_UDP_IO_H

#include <arpa/inet.h>
#include <fido.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define UDP_REPORT_LEN 64
#define HID_CMD_KEEPALIVE 0xbb
#define HID_CMD_ERROR 0xbf
#define HID_CID_BROADCAST 0xffffffffu
#define RUN_LIMIT_S 20 /* a whole run; SIGALRM ends it without a summary */

/* What the program asked for (command line) and what the hooks saw. */
struct udp_io {
    const char *host;
    int port;
    int local_port; /* -1: connect(); else bind here and use sendto/recvfrom */
    int timeout_ms; /* cap on every read */
    /* injection, armed by a test and disarmed by the write hook */
    int rewrite_cmd;   /* >0: the next init packet gets this CTAPHID command */
    uint32_t fake_cid; /* !=0: requests go out on this channel */
    uint32_t real_cid; /* the channel libfido2 believes it uses */
    /* observations */
    unsigned keepalive[4]; /* by status: 1 PROCESSING, 2 UPNEEDED */
    int last_error;        /* CTAPHID ERROR code, -1 none */
    uint32_t last_error_cid;
    uint32_t tx_cid;        /* the channel of the last request libfido2 sent */
    unsigned stray;         /* replies on neither that channel nor broadcast */
    unsigned foreign;       /* datagrams from another address, dropped */
    unsigned last_cbor_len; /* length of the last CTAPHID_CBOR message sent */
};

static struct udp_io g_io = {.local_port = -1, .timeout_ms = 5000, .last_error = -1};
static int g_passed, g_failed;

struct udp_handle {
    int fd;
    struct sockaddr_in card;
};

static inline void result(const char *name, int ok, const char *detail)
{
    if (ok) {
        g_passed++;
        printf("ok - %s\n", name);
    } else {
        g_failed++;
        printf("not ok - %s: %s\n", name, detail ? detail : "failed");
    }
    fflush(stdout);
}

static inline int finish_counts(void)
{
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}

static inline double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static inline void io_reset_observations(void)
{
    memset(g_io.keepalive, 0, sizeof(g_io.keepalive));
    g_io.last_error = -1;
    g_io.last_error_cid = 0;
}

static inline uint32_t get_cid(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put_cid(unsigned char *p, uint32_t cid)
{
    p[0] = (unsigned char)(cid >> 24);
    p[1] = (unsigned char)(cid >> 16);
    p[2] = (unsigned char)(cid >> 8);
    p[3] = (unsigned char)cid;
}

static inline void *udp_open(const char *path)
{
    struct udp_handle *h;
    struct sockaddr_in local = {.sin_family = AF_INET};

    (void)path; /* the address comes from the command line */
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return NULL;
    h->card.sin_family = AF_INET;
    h->card.sin_port = htons((uint16_t)g_io.port);
    h->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0 || inet_pton(AF_INET, g_io.host, &h->card.sin_addr) != 1)
        goto fail;
    if (g_io.local_port >= 0) {
        local.sin_port = htons((uint16_t)g_io.local_port);
        local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(h->fd, (struct sockaddr *)&local, sizeof(local)) != 0) {
            perror("bind");
            goto fail;
        }
    } else if (connect(h->fd, (struct sockaddr *)&h->card, sizeof(h->card)) != 0) {
        goto fail;
    }
    return h;
fail:
    if (h->fd >= 0)
        close(h->fd);
    free(h);
    return NULL;
}

static inline void udp_close(void *handle)
{
    struct udp_handle *h = handle;

    close(h->fd);
    free(h);
}

/* Notes keepalives and errors, and maps a reply on the injected channel back
 * to libfido2's own so it sees the card's answer. */
static inline void observe(unsigned char *buf, size_t n)
{
    uint32_t cid;

    if (n < 8) /* cid, command, length and the first payload byte */
        return;
    cid = get_cid(buf);
    if (buf[4] == HID_CMD_KEEPALIVE && buf[7] < 4)
        g_io.keepalive[buf[7]]++;
    if (buf[4] == HID_CMD_ERROR) {
        g_io.last_error = buf[7];
        g_io.last_error_cid = cid;
    }
    if (g_io.tx_cid != 0 && cid != g_io.tx_cid && cid != HID_CID_BROADCAST && cid != g_io.fake_cid)
        g_io.stray++;
    if (g_io.fake_cid != 0 && cid == g_io.fake_cid)
        put_cid(buf, g_io.real_cid);
}

/* One datagram from the card within min(ms, timeout_ms); -1 otherwise. */
static inline int udp_read(void *handle, unsigned char *buf, size_t len, int ms)
{
    struct udp_handle *h = handle;
    struct pollfd p = {.fd = h->fd, .events = POLLIN};
    struct sockaddr_in from;
    socklen_t flen;
    int wait = (ms < 0 || ms > g_io.timeout_ms) ? g_io.timeout_ms : ms;
    double deadline = now_ms() + wait;
    ssize_t n;

    for (;;) {
        int left = (int)(deadline - now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return -1;
        flen = sizeof(from);
        n = recvfrom(h->fd, buf, len, 0, (struct sockaddr *)&from, &flen);
        if (n < 0)
            return -1;
        if (g_io.local_port >= 0 && (from.sin_addr.s_addr != h->card.sin_addr.s_addr ||
                                     from.sin_port != h->card.sin_port)) {
            g_io.foreign++;
            continue;
        }
        observe(buf, (size_t)n);
        return (int)n;
    }
}

/* libfido2 writes the report-id byte first; a UDP simulator takes the bare report. */
static inline int udp_write(void *handle, const unsigned char *buf, size_t len)
{
    struct udp_handle *h = handle;
    unsigned char out[UDP_REPORT_LEN];
    ssize_t n;

    if (len != UDP_REPORT_LEN + 1)
        return -1;
    memcpy(out, buf + 1, UDP_REPORT_LEN);
    if (out[4] == (0x80 | 0x10))
        g_io.last_cbor_len = (unsigned)out[5] << 8 | out[6];
    if (get_cid(out) != HID_CID_BROADCAST) {
        g_io.tx_cid = get_cid(out);
        if (g_io.rewrite_cmd > 0 && (out[4] & 0x80)) {
            out[4] = (unsigned char)(0x80 | g_io.rewrite_cmd);
            g_io.rewrite_cmd = 0;
        }
        if (g_io.fake_cid != 0) {
            g_io.real_cid = get_cid(out);
            put_cid(out, g_io.fake_cid);
        }
    }
    if (g_io.local_port >= 0)
        n = sendto(h->fd, out, sizeof(out), 0, (struct sockaddr *)&h->card, sizeof(h->card));
    else
        n = send(h->fd, out, sizeof(out), 0);
    return n == UDP_REPORT_LEN ? (int)len : -1;
}

/* A libfido2 device on the UDP card, opened (CTAPHID INIT and, for a CTAP2
 * card, getInfo); NULL with *err set when it could not be opened. */
static inline fido_dev_t *udp_dev_open(int *err)
{
    fido_dev_io_t io = {udp_open, udp_close, udp_read, udp_write};
    fido_dev_t *dev = fido_dev_new();
    int r = dev == NULL ? FIDO_ERR_INTERNAL : fido_dev_set_io_functions(dev, &io);

    if (r == FIDO_OK)
        r = fido_dev_open(dev, "udp");
    *err = r;
    if (r != FIDO_OK)
        fido_dev_free(&dev);
    return dev;
}

static inline void udp_dev_close(fido_dev_t **dev)
{
    if (*dev == NULL)
        return;
    fido_dev_close(*dev);
    fido_dev_free(dev);
}

/* A decimal number in [lo, hi] for option NAME, or exit 2 naming it. */
static inline int parse_num(const char *name, const char *s, long lo, long hi)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);

    if (end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "%s: '%s' is not a number in %ld..%ld\n", name, s, lo, hi);
        exit(2);
    }
    return (int)v;
}

/* The common arguments: [--local-port P] [--timeout-ms MS] HOST PORT; a
 * program's own "--name value" options go to extra (0: taken), if given.
 * Returns the index of the first argument after PORT, or exits 2. */
static inline int udp_io_args(int argc, char **argv, const char *usage,
                              int (*extra)(const char *opt, const char *val))
{
    int i = 1;

    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("usage: %s [--local-port P] [--timeout-ms MS] %s\n"
               "  --local-port P   bind to 127.0.0.1:P, unconnected (sendto/recvfrom)\n"
               "  --timeout-ms MS  cap on every socket read (default 5000)\n"
               "See the comment at the top of the program's source for the rest.\n",
               argv[0], usage);
        exit(0);
    }
    while (i + 1 < argc && strncmp(argv[i], "--", 2) == 0) {
        if (strcmp(argv[i], "--local-port") == 0)
            g_io.local_port = parse_num("--local-port", argv[i + 1], 1, 65535);
        else if (strcmp(argv[i], "--timeout-ms") == 0)
            g_io.timeout_ms = parse_num("--timeout-ms", argv[i + 1], 1, 60000);
        else if (extra == NULL || extra(argv[i], argv[i + 1]) != 0)
            break;
        i += 2;
    }
    if (argc - i < 2 || strncmp(argv[i], "--", 2) == 0) {
        if (i < argc && strncmp(argv[i], "--", 2) == 0)
            fprintf(stderr, "%s: unknown option '%s' (or no value)\n", argv[0], argv[i]);
        fprintf(stderr, "usage: %s [--local-port P] [--timeout-ms MS] %s\n", argv[0], usage);
        exit(2);
    }
    alarm(RUN_LIMIT_S);
    g_io.host = argv[i];
    g_io.port = parse_num("PORT", argv[i + 1], 1, 65535);
    return i + 2;
}

#endif
