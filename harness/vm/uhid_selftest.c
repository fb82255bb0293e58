/*
 * Guest-side helper of the VM test: exercises harness/vcard/uhid.c on a
 * real kernel without the rest of the virtual card.
 *
 *   uhid_selftest serve [--no-vendor]   create the FIDO (+ vendor) device,
 *                                       answer CTAPHID INIT, log events on
 *                                       stdout, destroy on SIGTERM/SIGINT
 *   uhid_selftest init PATH             a CTAPHID INIT through hidraw
 *   uhid_selftest open PATH             open PATH read-write; exit 0 when
 *                                       it opens, 2 on EACCES, 1 otherwise
 *   uhid_selftest feature PATH          HIDIOCGFEATURE must fail at once
 *                                       (uhid.c refuses GET_REPORT), not
 *                                       after the kernel's 5 s timeout
 */
#include "harness/vcard/uhid.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/hidraw.h>

#include "util/clock.h"

#define SELFTEST_VID 0x1209
#define SELFTEST_PID 0x000a
#define SELFTEST_SERIAL "KC-SELFTEST-1"

#define CTAPHID_INIT 0x86 /* INIT with the initialisation-packet bit */
#define CTAPHID_ERROR 0xbf
#define CTAPHID_ERR_INVALID_CMD 0x01
#define INIT_NONCE_LEN 8
#define INIT_REPLY_LEN 17

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Builds the answer to one request report: INIT is answered, all else
 * gets ERR_INVALID_CMD. Returns 0 when the report deserves no answer. */
static int answer(const unsigned char *req, unsigned char *rsp, uint32_t *next_cid)
{
    size_t bcnt = (size_t)req[5] << 8 | req[6];

    memset(rsp, 0, VC_UHID_REPORT_LEN);
    memcpy(rsp, req, 4); /* same channel */
    if (!(req[4] & 0x80))
        return 0; /* a continuation packet: nothing to continue here */
    if (req[4] == CTAPHID_INIT && bcnt == INIT_NONCE_LEN) {
        rsp[4] = CTAPHID_INIT;
        rsp[6] = INIT_REPLY_LEN;
        memcpy(rsp + 7, req + 7, INIT_NONCE_LEN);
        put_be32(rsp + 15, (*next_cid)++);
        rsp[19] = 2;    /* CTAPHID protocol version */
        rsp[20] = 1;    /* device version major */
        rsp[21] = 0;    /* minor */
        rsp[22] = 0;    /* build */
        rsp[23] = 0x04; /* capabilities: CBOR */
        return 1;
    }
    rsp[4] = CTAPHID_ERROR;
    rsp[6] = 1;
    rsp[7] = CTAPHID_ERR_INVALID_CMD;
    return 1;
}

static int serve(int vendor)
{
    struct vc_uhid_config cfg;
    struct vc_uhid *u = NULL;
    unsigned char req[VC_UHID_REPORT_LEN], rsp[VC_UHID_REPORT_LEN];
    char err[256];
    uint32_t next_cid = 0x01020304;
    unsigned long bad_seen = 0, refused_seen = 0;
    struct sigaction sa;
    struct pollfd pfd[2];
    int open_seen = 0;
    int r;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
        perror("sigaction");
        return 1;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.vendor_id = SELFTEST_VID;
    cfg.product_id = SELFTEST_PID;
    cfg.name = "kcard selftest card";
    cfg.serial = SELFTEST_SERIAL;
    cfg.vendor_interface = vendor;
    cfg.start_timeout_ms = 5000;
    if (vc_uhid_open(&cfg, &u, err, sizeof(err)) != 0) {
        printf("error %s\n", err);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);

    while (!stop) {
        pfd[0].fd = vc_uhid_fd(u);
        pfd[0].events = POLLIN;
        pfd[1].fd = vc_uhid_vendor_fd(u);
        pfd[1].events = POLLIN;
        pfd[0].revents = pfd[1].revents = 0;
        r = poll(pfd, pfd[1].fd >= 0 ? 2 : 1, 1000);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            perror("poll");
            break;
        }
        if (pfd[1].fd >= 0 && (pfd[1].revents & POLLIN) && vc_uhid_service_vendor(u) != 0) {
            perror("vendor events");
            break;
        }
        if (pfd[0].revents & POLLIN) {
            while ((r = vc_uhid_read_output(u, req, 0)) == 1) {
                printf("event output cmd=%02x\n", req[4]);
                if (answer(req, rsp, &next_cid) && vc_uhid_send_input(u, rsp) != 0)
                    printf("error send: %s\n", strerror(errno));
            }
            if (r < 0) {
                printf("error read: %s\n", strerror(errno));
                break;
            }
        }
        if (vc_uhid_bad_outputs(u) != bad_seen) {
            bad_seen = vc_uhid_bad_outputs(u);
            printf("event bad-output total=%lu\n", bad_seen);
        }
        if (vc_uhid_refused_requests(u) != refused_seen) {
            refused_seen = vc_uhid_refused_requests(u);
            printf("event refused total=%lu\n", refused_seen);
        }
        if (vc_uhid_open_count(u) != open_seen) {
            open_seen = vc_uhid_open_count(u);
            printf("event open-count %d\n", open_seen);
        }
        fflush(stdout);
    }
    vc_uhid_close(u);
    printf("destroyed\n");
    fflush(stdout);
    return 0;
}

static int client_init(const char *path)
{
    static const unsigned char nonce[INIT_NONCE_LEN] = {'k', 'c', 'a', 'r', 'd', 'v', 'm', '1'};
    unsigned char out[VC_UHID_REPORT_LEN + 1], in[VC_UHID_REPORT_LEN + 1];
    struct pollfd pfd;
    ssize_t n;
    int fd;

    if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
        printf("init: open %s: %s\n", path, strerror(errno));
        return 1;
    }
    memset(out, 0, sizeof(out));
    /* out[0] = 0: the report-id byte hidraw expects */
    put_be32(out + 1, 0xffffffff);
    out[5] = CTAPHID_INIT;
    out[7] = INIT_NONCE_LEN;
    memcpy(out + 8, nonce, sizeof(nonce));
    if ((n = write(fd, out, sizeof(out))) != (ssize_t)sizeof(out)) {
        printf("init: write: %s\n", n < 0 ? strerror(errno) : "short");
        close(fd);
        return 1;
    }
    pfd.fd = fd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, 3000) != 1) {
        printf("init: no reply within 3 s\n");
        close(fd);
        return 1;
    }
    n = read(fd, in, sizeof(in));
    close(fd);
    if (n != VC_UHID_REPORT_LEN) {
        printf("init: read %zd bytes, want %d\n", n, VC_UHID_REPORT_LEN);
        return 1;
    }
    if (get_be32(in) != 0xffffffff || in[4] != CTAPHID_INIT || in[5] != 0 ||
        in[6] != INIT_REPLY_LEN || memcmp(in + 7, nonce, sizeof(nonce)) != 0) {
        printf("init: reply does not echo the nonce on the broadcast channel\n");
        return 1;
    }
    printf("init ok cid=%08x version=%u caps=%02x\n", get_be32(in + 15), in[19], in[23]);
    return 0;
}

static int client_open(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    int saved = errno;

    if (fd >= 0) {
        close(fd);
        printf("open ok uid=%u\n", (unsigned)getuid());
        return 0;
    }
    printf("open failed uid=%u: %s\n", (unsigned)getuid(), strerror(saved));
    return saved == EACCES ? 2 : 1;
}

static int client_feature(const char *path)
{
    unsigned char buf[VC_UHID_REPORT_LEN + 1];
    uint64_t t0;
    long ms;
    int fd, r, saved;

    if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
        printf("feature: open %s: %s\n", path, strerror(errno));
        return 1;
    }
    memset(buf, 0, sizeof(buf)); /* buf[0]: report id 0 */
    t0 = kcu_now_ms();
    r = ioctl(fd, HIDIOCGFEATURE(sizeof(buf)), buf);
    saved = errno;
    ms = (long)(kcu_now_ms() - t0);
    close(fd);
    if (r >= 0) {
        printf("feature: got %d bytes, want a refusal\n", r);
        return 1;
    }
    printf("feature: %s after %ld ms\n", strerror(saved), ms);
    return ms < 2000 ? 0 : 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return serve(!(argc >= 3 && strcmp(argv[2], "--no-vendor") == 0));
    if (argc == 3 && strcmp(argv[1], "init") == 0)
        return client_init(argv[2]);
    if (argc == 3 && strcmp(argv[1], "open") == 0)
        return client_open(argv[2]);
    if (argc == 3 && strcmp(argv[1], "feature") == 0)
        return client_feature(argv[2]);
    fprintf(stderr, "usage: %s serve [--no-vendor] | init PATH | open PATH | feature PATH\n",
            argv[0]);
    return 64;
}
