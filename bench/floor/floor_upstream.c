/*
 * floor_upstream: the upstream half of the "library floor" for issue 9's
 * chain bench: a libmicrohttpd epoll thread pool that answers every request
 * with the same persistent {"counter":1} response and does nothing else.
 * It measures what the prescribed library can do on its own; it is a bench
 * tool, not a service (no auth, no logging, no real counter).
 */
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

static const char floor_body[] = "{\"counter\":1}\n";

struct options {
    unsigned port;
    const char *port_file;
    unsigned threads;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: floor_upstream [--port N] [--port-file PATH] [--threads N]\n"
               "  --port N         TCP port on 127.0.0.1 (0 = any; default 0)\n"
               "  --port-file PATH write the bound port and a newline to PATH\n"
               "  --threads N      MHD thread pool size (default: online CPUs)\n"
               "Answers every request 200 {\"counter\":1}; stops on SIGTERM/SIGINT.\n");
}

static int parse_uint(const char *name, const char *s, unsigned min, unsigned max, unsigned *out)
{
    char *end = NULL;
    unsigned long v;

    if (s == NULL || *s == '\0') {
        fprintf(stderr, "floor_upstream: %s needs a value\n", name);
        return -1;
    }
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "floor_upstream: bad %s '%s' (want %u..%u)\n", name, s, min, max);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        return 1;
    if (n > 256)
        return 256;
    return (unsigned)n;
}

/* Returns 0 to run, 1 after --help, -1 on bad usage. */
static int parse_args(int argc, char **argv, struct options *o)
{
    o->port = 0;
    o->port_file = NULL;
    o->threads = online_cpus();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(a, "--port") == 0) {
            if (parse_uint(a, v, 0, 65535, &o->port) != 0)
                return -1;
            i++;
        } else if (strcmp(a, "--port-file") == 0) {
            if (v == NULL || *v == '\0') {
                fprintf(stderr, "floor_upstream: --port-file needs a path\n");
                return -1;
            }
            o->port_file = v;
            i++;
        } else if (strcmp(a, "--threads") == 0) {
            if (parse_uint(a, v, 1, 256, &o->threads) != 0)
                return -1;
            i++;
        } else {
            fprintf(stderr, "floor_upstream: unknown option '%s'\n", a);
            usage(stderr);
            return -1;
        }
    }
    return 0;
}

static int write_port_file(const char *path, unsigned port)
{
    FILE *f = fopen(path, "w");

    if (f == NULL) {
        fprintf(stderr, "floor_upstream: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fprintf(f, "%u\n", port) < 0) {
        fprintf(stderr, "floor_upstream: cannot write %s\n", path);
        fclose(f);
        return -1;
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "floor_upstream: cannot close %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    static int first_call_marker;
    struct MHD_Response *response = cls;

    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        *con_cls = &first_call_marker;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* drain and ignore any upload */
        return MHD_YES;
    }
    return MHD_queue_response(conn, MHD_HTTP_OK, response);
}

static struct MHD_Response *make_response(void)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        sizeof(floor_body) - 1, (void *)(uintptr_t)floor_body, MHD_RESPMEM_PERSISTENT);

    if (r == NULL) {
        fprintf(stderr, "floor_upstream: cannot create the response\n");
        return NULL;
    }
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") != MHD_YES) {
        fprintf(stderr, "floor_upstream: cannot add Content-Type\n");
        MHD_destroy_response(r);
        return NULL;
    }
    return r;
}

/* A pool size of 0 or 1 makes MHD warn: one thread means no pool option. */
static struct MHD_Daemon *start_daemon(const struct options *o, const struct sockaddr_in *addr,
                                       struct MHD_Response *response)
{
    const unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    const struct sockaddr *sa = (const struct sockaddr *)addr;

    if (o->threads <= 1)
        return MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, response,
                                MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_END);
    return MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, response,
                            MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_THREAD_POOL_SIZE,
                            (unsigned int)o->threads, MHD_OPTION_END);
}

static int block_stop_signals(sigset_t *set)
{
    int rc;

    if (sigemptyset(set) != 0 || sigaddset(set, SIGTERM) != 0 || sigaddset(set, SIGINT) != 0) {
        fprintf(stderr, "floor_upstream: cannot build the signal set\n");
        return -1;
    }
    /* before MHD starts, so its threads inherit the mask */
    rc = pthread_sigmask(SIG_BLOCK, set, NULL);
    if (rc != 0) {
        fprintf(stderr, "floor_upstream: pthread_sigmask: %s\n", strerror(rc));
        return -1;
    }
    return 0;
}

static int wait_for_stop(const sigset_t *set)
{
    int sig = 0;
    int rc = sigwait(set, &sig);

    if (rc != 0) {
        fprintf(stderr, "floor_upstream: sigwait: %s\n", strerror(rc));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    struct sockaddr_in addr;
    struct MHD_Response *response;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    sigset_t set;
    int rc = parse_args(argc, argv, &o);
    int status = EXIT_SUCCESS;

    if (rc != 0)
        return rc > 0 ? EXIT_SUCCESS : 2;
    if (block_stop_signals(&set) != 0)
        return EXIT_FAILURE;
    response = make_response();
    if (response == NULL)
        return EXIT_FAILURE;

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)o.port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = start_daemon(&o, &addr, response);
    if (d == NULL) {
        fprintf(stderr, "floor_upstream: cannot start libmicrohttpd on 127.0.0.1:%u\n", o.port);
        MHD_destroy_response(response);
        return EXIT_FAILURE;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) {
        fprintf(stderr, "floor_upstream: cannot read the bound port\n");
        status = EXIT_FAILURE;
    } else if (o.port_file != NULL && write_port_file(o.port_file, info->port) != 0) {
        status = EXIT_FAILURE;
    } else if (wait_for_stop(&set) != 0) {
        status = EXIT_FAILURE;
    }
    MHD_stop_daemon(d);
    MHD_destroy_response(response);
    return status;
}
