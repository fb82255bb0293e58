/* k_server: the protected counter of the session chain. It answers only
 * requests signed by an authorised k_proxy (services/API.md) and never sees
 * a client's bearer token or username: a session reaches it as an opaque
 * reference. */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "services/common/http.h"
#include "services/common/log.h"
#include "services/common/svc_util.h"
#include "services/common/upstream.h"
#include "services/k_server/counter.h"
#include "services/k_server/server.h"
#include "util/clock.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_START 3

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: k_server --proxy-token TOKEN [options]\n"
        "\n"
        "The protected counter of the kcard session chain. Only requests signed by a\n"
        "k_proxy holding the same proxy token are served (services/API.md).\n"
        "\n"
        "  --host ADDR             address to listen on (default 127.0.0.1)\n"
        "  --port N                port (default 8780; 0 picks a free one)\n"
        "  --proxy-token TOKEN     the secret shared with k_proxy; the signing key is\n"
        "                          derived from it and it never crosses the wire\n"
        "  --proxy-token-file F    read the token from F (first line) instead\n"
        "                          (also: environment KCARD_PROXY_TOKEN)\n"
        "  --tls-certfile FILE     serve HTTPS with this PEM certificate chain\n"
        "  --tls-keyfile FILE      and this PEM private key\n"
        "  --state-db FILE         the counter's SQLite database (default\n"
        "                          $XDG_STATE_HOME/kcard/k_server.db); also keeps\n"
        "                          which k_proxy instances signed requests, so that\n"
        "                          none is served twice across a restart\n"
        "  --init                  make a new counter in an existing empty file (an\n"
        "                          absent file is always created; an empty one is\n"
        "                          otherwise refused: the counter would start at 1)\n"
        "  --port-file FILE        write the port listened on to FILE once ready\n" KSVC_LIMIT_USAGE
            KSVC_SCHED_USAGE "  -h, --help              this text\n"
        "  --version               the version\n"
        "\n"
        "Endpoints: POST /counter/next (signed), GET /healthz, GET /metrics.\n"
        "Logs one JSON line per event on stderr.\n"
        "\n"
        "Exit status: 0 stopped by SIGINT/SIGTERM, 1 runtime failure, 2 usage,\n"
        "3 could not start (state database, TLS material, address in use).\n");
}

/* The maintenance thread: expires idle k_proxy instances once a second. */
static void *maintain(void *arg)
{
    pthread_setname_np(pthread_self(), "maintenance"); /* top -H, ps -L */
    struct k_server *ks = arg;
    pthread_mutex_lock(&ks->stop_lock);
    while (!ks->stopping) {
        struct timespec until;
        kcu_deadline(CLOCK_REALTIME, 1000, &until);
        pthread_cond_timedwait(&ks->stop_cond, &ks->stop_lock, &until);
        if (ks->stopping)
            break;
        pthread_mutex_unlock(&ks->stop_lock);
        size_t n = ksvc_replay_table_expire(ks->replay, time(NULL));
        if (n > 0)
            ksvc_log("info", "replay_instances_expired",
                     json_pack("{s:I}", "instances", (json_int_t)n));
        pthread_mutex_lock(&ks->stop_lock);
    }
    pthread_mutex_unlock(&ks->stop_lock);
    return NULL;
}

struct options {
    struct ksvc_listen_opts front;
    const char *token_arg, *token_file, *state;
    bool init;
};

/* The command line into o: 0, 1 when --help or --version answered (exit
 * 0), -1 on a usage error (said on stderr). */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option opts[] = {
        KSVC_LISTEN_OPTIONS,
        {"proxy-token", required_argument, NULL, 't'},
        {"proxy-token-file", required_argument, NULL, 'T'},
        {"state-db", required_argument, NULL, 's'},
        {"init", no_argument, NULL, 'I'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            o->token_arg = optarg;
            break;
        case 'T':
            o->token_file = optarg;
            break;
        case 's':
            o->state = optarg;
            break;
        case 'I':
            o->init = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case 'V':
            printf("k_server (kcard) 0.1\n");
            return 1;
        default: {
            int r = ksvc_listen_option("k_server", c, optarg, &o->front);
            if (r == 0)
                usage(stderr);
            if (r <= 0)
                return -1;
            break;
        }
        }
    }
    if (optind != argc) {
        fprintf(stderr, "k_server: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* The upstream key from the token (then wiped) and the state path into ks,
 * once the TLS files are known to go together; 0, or an exit status (said
 * on stderr). */
static int configure(struct k_server *ks, const struct options *o)
{
    char token[1024] = "";
    if (ksvc_load_token("k_server", o->token_arg, o->token_file, token, sizeof(token)) != 0)
        return EXIT_USAGE;
    if (ksvc_listen_check("k_server", &o->front) != 0) {
        OPENSSL_cleanse(token, sizeof(token));
        return EXIT_USAGE;
    }
    int rc = ksvc_upstream_key(token, ks->key);
    OPENSSL_cleanse(token, sizeof(token));
    if (rc != 0) {
        fprintf(stderr, "k_server: cannot derive the upstream key\n");
        return EXIT_RUNTIME;
    }
    if (o->state != NULL)
        snprintf(ks->state_db, sizeof(ks->state_db), "%s", o->state);
    else if (ksvc_default_state_path("k_server.db", ks->state_db, sizeof(ks->state_db)) != 0) {
        fprintf(stderr, "k_server: no --state-db and neither XDG_STATE_HOME nor HOME is set\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* Opens the counter and the replay windows and starts the maintenance
 * thread; 0 or -1 (said on stderr). *loaded: instances closed at start. */
static int open_state(struct k_server *ks, bool init, size_t *loaded)
{
    char err[512];
    bool created = false;
    ks->counter = ksrv_counter_open(ks->state_db, init, &created, err, sizeof(err));
    if (ks->counter == NULL) {
        fprintf(stderr, "k_server: state database: %s\n", err);
        return -1;
    }
    ks->replay = ksrv_replay_open(ks->counter, time(NULL), loaded, err, sizeof(err));
    if (ks->replay == NULL) {
        fprintf(stderr, "k_server: state database %s: %s\n", ks->state_db, err);
        return -1;
    }
    if (pthread_create(&ks->maintenance, NULL, maintain, ks) != 0) {
        fprintf(stderr, "k_server: cannot start a thread\n");
        return -1;
    }
    ks->maintenance_started = true;
    if (created)
        ksvc_log("info", "state_created", json_pack("{s:s}", "state_db", ks->state_db));
    return 0;
}

/* Stops the maintenance thread and closes the state. */
static void close_state(struct k_server *ks)
{
    if (ks->maintenance_started) {
        pthread_mutex_lock(&ks->stop_lock);
        ks->stopping = true;
        pthread_cond_signal(&ks->stop_cond);
        pthread_mutex_unlock(&ks->stop_lock);
        pthread_join(ks->maintenance, NULL);
    }
    ksvc_replay_table_free(ks->replay);
    ksrv_counter_close(ks->counter);
}

/* Starts the HTTP(S) server on the routes (routes.c) and serves until
 * SIGINT/SIGTERM; 0 or an exit status. */
static int serve(struct k_server *ks, const struct options *o, size_t loaded)
{
    char err[512];
    struct ksvc_server_cfg cfg = {
        .service = "k_server",
        .host = o->front.host,
        .port = o->front.port,
        .tls_cert_file = o->front.cert_file,
        .tls_key_file = o->front.key_file,
        .limits = o->front.limits,
        .cpu_scheduling = o->front.cpu_scheduling,
        .handler = ksrv_handle_request,
        .ctx = ks,
    };
    if (ksvc_server_start(&cfg, &ks->http, err, sizeof(err)) != 0) {
        fprintf(stderr, "k_server: %s\n", err);
        return EXIT_START;
    }
    int64_t value = 0;
    ksrv_counter_current(ks->counter, &value);
    ksvc_log("info", "start",
             json_pack("{s:s, s:i, s:b, s:s, s:s, s:I, s:I}", "host", o->front.host, "port",
                       ksvc_server_port(ks->http), "tls", ksvc_server_tls(ks->http),
                       "cpu_scheduling", ksvc_server_cpu_scheduling(ks->http), "state_db",
                       ks->state_db, "replay_instances_closed", (json_int_t)loaded, "counter",
                       (json_int_t)value));
    return ksvc_serve_until_stopped("k_server", ks->http, o->front.port_file) == 0 ? 0
                                                                                   : EXIT_RUNTIME;
}

int main(int argc, char **argv)
{
    struct options o = {.front = {.host = "127.0.0.1", .port = 8780}};
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : EXIT_USAGE;

    ksvc_block_signals();
    ksvc_log_init("k_server");
    struct k_server ks = {0};
    pthread_mutex_init(&ks.stop_lock, NULL);
    pthread_cond_init(&ks.stop_cond, NULL);
    int status = configure(&ks, &o);
    size_t loaded = 0;
    if (status == 0)
        status = open_state(&ks, o.init, &loaded) == 0 ? serve(&ks, &o, loaded) : EXIT_START;
    ksvc_server_stop(ks.http);
    close_state(&ks);
    pthread_cond_destroy(&ks.stop_cond);
    pthread_mutex_destroy(&ks.stop_lock);
    OPENSSL_cleanse(ks.key, sizeof(ks.key));
    return status;
}
