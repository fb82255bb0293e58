/* k_client_portal: the browser page of the kcard session chain (the
 * runbook's k_client_portal.py, in C). It serves the page and a same-origin
 * JSON API that forwards to k_proxy; the k_proxy bearer token stays here,
 * the browser holds only an HttpOnly cookie naming it. */
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "services/common/http.h"
#include "services/common/log.h"
#include "services/common/svc_util.h"
#include "services/k_client_portal/portal.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_START 3

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: k_client_portal [options]\n"
        "\n"
        "The browser page of the kcard session chain: register, list and unregister\n"
        "users, log in through the card, call the protected counter, log out. Every\n"
        "call goes to k_proxy; its session token stays in this process.\n"
        "\n"
        "  --host ADDR             address to listen on (default 127.0.0.1)\n"
        "  --port N                port (default 8766; 0 picks a free one)\n"
        "  --proxy-base-url URL    k_proxy (default https://127.0.0.1:9771)\n"
        "  --proxy-ca-file FILE    CA certificate that signed k_proxy's (HTTPS)\n"
        "  --proxy-timeout-ms MS   bound on one k_proxy request, card touch included\n"
        "                          (default 65000)\n"
        "  --max-sessions N        browser sessions kept at most (default 1024)\n"
        "  --static-dir DIR        the page's files (default: ../../services/\n"
        "                          k_client_portal/static from the executable, i.e.\n"
        "                          the source tree of a build/bin binary)\n"
        "  --tls-certfile FILE     serve HTTPS with this PEM certificate chain\n"
        "  --tls-keyfile FILE      and this PEM private key (the cookie is then Secure)\n"
        "  --allowed-host NAME     also answer requests whose Host names NAME (repeatable;\n"
        "                          always answered: localhost, this machine's name and\n"
        "                          any address of its interfaces; others get 421)\n"
        "  --port-file FILE        write the port listened on to FILE once ready\n" KSVC_LIMIT_USAGE
            KSVC_SCHED_USAGE "  -h, --help              this text\n"
        "  --version               the version\n"
        "\n"
        "Page: GET / (index.html, app.js, style.css). API: POST /api/register\n"
        "/api/unregister /api/login /api/counter /api/logout, GET /api/users\n"
        "/api/session; GET /healthz /metrics. Logs one JSON line per event on stderr.\n"
        "\n"
        "Exit status: 0 stopped by SIGINT/SIGTERM, 1 runtime failure, 2 usage,\n"
        "3 could not start (page files, address in use).\n");
}

/* The nearest services/k_client_portal/static above the executable's folder
 * (build/bin and build/san/bin both find the source tree's), else
 * ../share/kcard/portal beside it (where `make install` puts the page). */
static int default_static_dir(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char up[PATH_MAX];
    snprintf(up, sizeof(up), "%s", dirname(exe));
    for (int depth = 0; depth < 4; depth++) {
        char probe[PATH_MAX + 64];
        struct stat st;
        snprintf(probe, sizeof(probe), "%s/services/k_client_portal/static/index.html", up);
        if (stat(probe, &st) == 0 && S_ISREG(st.st_mode)) {
            if (snprintf(out, cap, "%s/services/k_client_portal/static", up) >= (int)cap)
                return -1;
            return 0;
        }
        if (depth == 1) {
            snprintf(probe, sizeof(probe), "%s/share/kcard/portal/index.html", up);
            if (stat(probe, &st) == 0 && S_ISREG(st.st_mode))
                return snprintf(out, cap, "%s/share/kcard/portal", up) >= (int)cap ? -1 : 0;
        }
        size_t len = strlen(up);
        if (len + 3 >= sizeof(up))
            return -1;
        memcpy(up + len, "/..", 4);
    }
    return -1;
}

/* On every answer: the page loads only its own files, is never framed
 * (clickjacking the card's buttons), and leaks no URL to other sites. */
static const char *const page_headers[] = {
    "Content-Security-Policy",
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options",
    "DENY",
    "Referrer-Policy",
    "no-referrer",
    NULL,
};

/* The shared server's handler: the headers the portal's routes look at. */
static void on_request(void *ctx, const struct ksvc_request *req, struct ksvc_response *resp)
{
    struct kcp_headers h = {
        .cookie = ksvc_request_header(req, "Cookie"),
        .origin = ksvc_request_header(req, "Origin"),
        .host = ksvc_request_header(req, "Host"),
        .content_type = ksvc_request_header(req, "Content-Type"),
    };
    kcp_handle(ctx, req, &h, resp);
}

struct options {
    struct ksvc_listen_opts front;
    const char *base, *ca, *static_dir;
    int timeout_ms, max_sessions;
    const char *allowed_hosts[KSVC_GUARD_NAMES_MAX];
    size_t nallowed_hosts;
};

static const struct option long_options[] = {
    KSVC_LISTEN_OPTIONS,
    {"proxy-base-url", required_argument, NULL, 'u'},
    {"proxy-ca-file", required_argument, NULL, 'c'},
    {"proxy-timeout-ms", required_argument, NULL, 't'},
    {"max-sessions", required_argument, NULL, 'm'},
    {"static-dir", required_argument, NULL, 's'},
    {"allowed-host", required_argument, NULL, 'A'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* The command line into o: -1 to go on and start, else the exit status
 * (0 after --help or --version; usage errors are said on stderr). */
static int parse_options(int argc, char **argv, struct options *o)
{
    int c;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case 'u':
            o->base = optarg;
            break;
        case 'c':
            o->ca = optarg;
            break;
        case 't':
            if (ksvc_parse_int_option("k_client_portal", "--proxy-timeout-ms", optarg, 100, 600000,
                                      &o->timeout_ms) != 0)
                return EXIT_USAGE;
            break;
        case 'm':
            if (ksvc_parse_int_option("k_client_portal", "--max-sessions", optarg, 1, 1000000,
                                      &o->max_sessions) != 0)
                return EXIT_USAGE;
            break;
        case 's':
            o->static_dir = optarg;
            break;
        case 'A':
            if (o->nallowed_hosts == KSVC_GUARD_NAMES_MAX) {
                fprintf(stderr, "k_client_portal: --allowed-host: at most %d\n",
                        KSVC_GUARD_NAMES_MAX);
                return EXIT_USAGE;
            }
            o->allowed_hosts[o->nallowed_hosts++] = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("k_client_portal (kcard) 0.1\n");
            return 0;
        default: {
            int r = ksvc_listen_option("k_client_portal", c, optarg, &o->front);
            if (r == 0)
                usage(stderr);
            if (r <= 0)
                return EXIT_USAGE;
            break;
        }
        }
    }
    if (optind != argc) {
        fprintf(stderr, "k_client_portal: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (ksvc_listen_check("k_client_portal", &o->front) != 0)
        return EXIT_USAGE;
    if (strncmp(o->base, "http://", 7) != 0 && strncmp(o->base, "https://", 8) != 0) {
        fprintf(stderr,
                "k_client_portal: --proxy-base-url %s: must start with http:// or "
                "https://\n",
                o->base);
        return EXIT_USAGE;
    }
    return -1;
}

/* The Host check (guard), the proxy's base URL without trailing slashes and
 * the page folder from o; 0, or an exit status (said on stderr). */
static int configure(const struct options *o, struct ksvc_guard *guard, char *base_url,
                     size_t base_cap, char *dir, size_t dir_cap)
{
    /* the Host check on every address, 0.0.0.0 too: DNS-rebinding pages
     * name their own host */
    ksvc_guard_init(guard, o->front.host, false);
    for (size_t i = 0; i < o->nallowed_hosts; i++) {
        char gerr[256];
        if (ksvc_guard_add_host(guard, o->allowed_hosts[i], gerr, sizeof(gerr)) != 0) {
            fprintf(stderr, "k_client_portal: %s\n", gerr);
            return EXIT_USAGE;
        }
    }
    snprintf(base_url, base_cap, "%s", o->base);
    size_t bl = strlen(base_url);
    while (bl > 0 && base_url[bl - 1] == '/') /* paths are appended with their slash */
        base_url[--bl] = '\0';
    if (o->static_dir != NULL)
        snprintf(dir, dir_cap, "%s", o->static_dir);
    else if (default_static_dir(dir, dir_cap) != 0) {
        fprintf(stderr, "k_client_portal: cannot find the page files; give --static-dir\n");
        return EXIT_USAGE;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o = {.front = {.host = "127.0.0.1", .port = 8766},
                        .base = "https://127.0.0.1:9771",
                        .timeout_ms = 65000,
                        .max_sessions = KCP_SESSIONS_DEFAULT};
    int status = parse_options(argc, argv, &o);
    if (status >= 0)
        return status;
    static struct ksvc_guard guard;
    char base_url[1024];
    char dir[PATH_MAX + 64];
    if ((status = configure(&o, &guard, base_url, sizeof(base_url), dir, sizeof(dir))) != 0) {
        ksvc_guard_free(&guard);
        return status;
    }

    ksvc_block_signals();
    ksvc_log_init("k_client_portal");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "k_client_portal: cannot initialise libcurl\n");
        ksvc_guard_free(&guard);
        return EXIT_RUNTIME;
    }
    status = EXIT_START;
    char err[512];
    struct ksvc_server *server = NULL;
    struct kcp_portal portal = {
        .listen_host = o.front.host,
        .guard = &guard,
        .tls = o.front.cert_file != NULL,
        .proxy = {.base_url = base_url, .ca_file = o.ca, .timeout_ms = o.timeout_ms},
        .sessions = kcp_sessions_new((size_t)o.max_sessions),
    };
    if (portal.sessions == NULL) {
        fprintf(stderr, "k_client_portal: out of memory\n");
        goto out;
    }
    if (kcp_load_assets(&portal, dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "k_client_portal: page files: %s (give --static-dir)\n", err);
        goto out;
    }
    struct ksvc_server_cfg cfg = {
        .service = "k_client_portal",
        .host = o.front.host,
        .port = o.front.port,
        .tls_cert_file = o.front.cert_file,
        .tls_key_file = o.front.key_file,
        .limits = o.front.limits,
        .cpu_scheduling = o.front.cpu_scheduling,
        .handler = on_request,
        .may_block = ksvc_always_blocks, /* each call waits on k_proxy */
        .ctx = &portal,
        .extra_headers = page_headers,
    };
    if (ksvc_server_start(&cfg, &server, err, sizeof(err)) != 0) {
        fprintf(stderr, "k_client_portal: %s\n", err);
        goto out;
    }
    ksvc_log("info", "start",
             json_pack("{s:s, s:i, s:s, s:s, s:s?, s:s, s:I}", "host", o.front.host, "port",
                       ksvc_server_port(server), "cpu_scheduling",
                       ksvc_server_cpu_scheduling(server), "proxy_base_url", base_url,
                       "proxy_ca_file", o.ca, "static_dir", dir, "max_sessions",
                       (json_int_t)o.max_sessions));
    status = ksvc_serve_until_stopped("k_client_portal", server, o.front.port_file) == 0
                 ? 0
                 : EXIT_RUNTIME;
out:
    ksvc_server_stop(server);
    kcp_free_assets(&portal);
    kcp_sessions_free(portal.sessions);
    ksvc_guard_free(&guard);
    curl_global_cleanup();
    return status;
}
