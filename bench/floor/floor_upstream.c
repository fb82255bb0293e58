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

#include "bench/floor/cli.h"

static const char floor_body[] = "{\"counter\":1}\n";

static void usage(FILE *f)
{
    fprintf(f, "usage: floor_upstream [--port N] [--port-file PATH] [--threads N]\n"
               "  --port N         TCP port on 127.0.0.1 (0 = any; default 0)\n"
               "  --port-file PATH write the bound port and a newline to PATH\n"
               "  --threads N      MHD thread pool size (default: online CPUs)\n"
               "  --tls-certfile PATH, --tls-keyfile PATH  serve HTTPS with this PEM pair\n"
               "Answers every request 200 {\"counter\":1}; stops on SIGTERM/SIGINT.\n");
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
static struct MHD_Daemon *start_daemon(const struct floor_options *o,
                                       const struct sockaddr_in *addr,
                                       struct MHD_Response *response)
{
    const unsigned int flags =
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | (o->cert_pem != NULL ? MHD_USE_TLS : 0);
    const struct sockaddr *sa = (const struct sockaddr *)addr;
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, o->cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, o->key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem *tls_opts = o->cert_pem != NULL ? tls : tls + 2;

    if (o->threads <= 1)
        return MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, response,
                                MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_ARRAY, tls_opts,
                                MHD_OPTION_END);
    return MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, response,
                            MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_THREAD_POOL_SIZE,
                            (unsigned int)o->threads, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
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

/* Serves until SIGTERM/SIGINT: EXIT_SUCCESS or EXIT_FAILURE. */
static int serve(const struct floor_options *o)
{
    struct sockaddr_in addr;
    struct MHD_Response *response;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    sigset_t set;
    int status = EXIT_SUCCESS;

    if (floor_block_stop_signals("floor_upstream", &set) != 0)
        return EXIT_FAILURE;
    response = make_response();
    if (response == NULL)
        return EXIT_FAILURE;

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)o->port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = start_daemon(o, &addr, response);
    if (d == NULL) {
        fprintf(stderr, "floor_upstream: cannot start libmicrohttpd on 127.0.0.1:%u\n", o->port);
        MHD_destroy_response(response);
        return EXIT_FAILURE;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) {
        fprintf(stderr, "floor_upstream: cannot read the bound port\n");
        status = EXIT_FAILURE;
    } else if (o->port_file != NULL &&
               floor_write_port_file("floor_upstream", o->port_file, info->port) != 0) {
        status = EXIT_FAILURE;
    } else if (wait_for_stop(&set) != 0) {
        status = EXIT_FAILURE;
    }
    MHD_stop_daemon(d);
    MHD_destroy_response(response);
    return status;
}

int main(int argc, char **argv)
{
    struct floor_options o;
    int rc = floor_parse_args("floor_upstream", usage, false, argc, argv, &o);

    if (rc != 0)
        return rc > 0 ? EXIT_SUCCESS : 2;
    rc = serve(&o);
    floor_free_options(&o);
    return rc;
}
