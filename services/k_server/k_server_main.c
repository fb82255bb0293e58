/* k_server: the protected counter of the session chain. It answers only
 * requests signed by an authorised k_proxy (services/API.md) and never sees
 * a client's bearer token or username: a session reaches it as an opaque
 * reference. */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
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

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_START 3

struct k_server {
    struct ksrv_counter *counter;
    struct ksvc_replay_table *replay;
    uint8_t key[KSVC_UPSTREAM_KEY_LEN];
    char state_db[4096];
    struct ksvc_server *http;
    /* the server's metrics, set once ksvc_server_start has returned: a
     * request can arrive before that (a k_proxy under load reconnects at
     * once after a restart), when ks->http is not yet set */
    _Atomic(struct ksvc_metrics *) metrics;
    /* the maintenance thread: expires idle k_proxy instances */
    pthread_t maintenance;
    bool maintenance_started, stopping;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
};

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
        "  -h, --help              this text\n"
        "  --version               the version\n"
        "\n"
        "Endpoints: POST /counter/next (signed), GET /healthz, GET /metrics.\n"
        "Logs one JSON line per event on stderr.\n"
        "\n"
        "Exit status: 0 stopped by SIGINT/SIGTERM, 1 runtime failure, 2 usage,\n"
        "3 could not start (state database, TLS material, address in use).\n");
}

/* The metrics, waiting (at most a second) for the start to finish. */
static struct ksvc_metrics *server_metrics(struct k_server *ks)
{
    struct ksvc_metrics *m;
    for (int i = 0; (m = atomic_load(&ks->metrics)) == NULL && i < 1000; i++)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    return m;
}

static void on_request(void *ctx, const struct ksvc_request *req, struct ksvc_response *resp)
{
    struct k_server *ks = ctx;
    if (strcmp(req->path, "/counter/next") != 0) {
        ksvc_reply_error(resp, 404, "not_found", "no such endpoint: %.64s", req->path);
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        ksvc_reply_method_not_allowed(resp, "POST");
        return;
    }
    const char *authz = ksvc_request_header(req, "Authorization");
    struct ksvc_upstream_auth a;
    enum ksvc_upstream_verdict v =
        ksvc_upstream_verify(ks->key, ks->replay, authz, req->method, req->path, req->body,
                             req->body_len, time(NULL), &a);
    bool server_side = v == KSVC_UPSTREAM_STATE_FAILED || v == KSVC_UPSTREAM_TOO_MANY;
    if (v != KSVC_UPSTREAM_OK) {
        char labels[64];
        snprintf(labels, sizeof(labels), "reason=\"%s\"", ksvc_upstream_verdict_code(v));
        struct ksvc_metrics *m = server_metrics(ks);
        if (m != NULL)
            ksvc_metric_add(m, "kcard_k_server_upstream_refused_total",
                            "Requests refused because they were not signed by an authorised "
                            "k_proxy.",
                            labels, 1);
        const char *why = "";
        if (v == KSVC_UPSTREAM_UNSIGNED && ksvc_request_header(req, "X-Proxy-Token") != NULL)
            why = "; the static X-Proxy-Token header is no longer accepted, k_proxy signs "
                  "each request";
        else if (v == KSVC_UPSTREAM_UNSIGNED)
            why = "; expected Authorization: KC-HMAC-SHA256";
        else if (v == KSVC_UPSTREAM_STALE)
            why = "; check both clocks";
        else if (v == KSVC_UPSTREAM_REPLAYED)
            why = "; this k_proxy instance's sequence number was served before, is below its "
                  "window, or the instance signed before k_server restarted (k_proxy then "
                  "continues under a new instance id)";
        else if (v == KSVC_UPSTREAM_STATE_FAILED)
            why = "; cannot record the k_proxy instance in the state database";
        else if (v == KSVC_UPSTREAM_TOO_MANY)
            why = "; too many k_proxy instances signed within the skew window";
        if (!server_side)
            snprintf(resp->www_authenticate, sizeof(resp->www_authenticate), "KC-HMAC-SHA256");
        if (v == KSVC_UPSTREAM_REPLAYED)
            ksvc_log_field(resp, "seq", json_integer((json_int_t)a.seq));
        ksvc_reply_error(resp, server_side ? 503 : 401, ksvc_upstream_verdict_code(v),
                         "request refused: %s%s", ksvc_upstream_verdict_code(v), why);
        return;
    }
    int64_t value = 0;
    char err[256];
    if (ksrv_counter_next(ks->counter, &value, err, sizeof(err)) != 0) {
        ksvc_reply_error(resp, 500, "state_failed", "%s", err);
        return;
    }
    ksvc_log_field(resp, "ref", json_string(a.ref));
    ksvc_log_field(resp, "counter", json_integer(value));
    ksvc_reply(resp, 200, json_pack("{s:I, s:s}", "counter", (json_int_t)value, "ref", a.ref));
}

static bool on_health(void *ctx, json_t *out)
{
    struct k_server *ks = ctx;
    int64_t value = 0;
    char why[256] = "";
    bool ok = ksrv_counter_current(ks->counter, &value) == 0 &&
              ksrv_counter_healthy(ks->counter, why, sizeof(why));
    json_object_set_new(out, "counter", json_integer(value));
    json_object_set_new(out, "state_db", json_string(ks->state_db));
    json_object_set_new(out, "replay_instances",
                        json_integer((json_int_t)ksvc_replay_table_count(ks->replay)));
    if (!ok)
        json_object_set_new(out, "reason", json_string(why));
    return ok;
}

static void on_metrics(void *ctx, struct ksvc_metrics *m)
{
    struct k_server *ks = ctx;
    int64_t value = 0;
    if (ksrv_counter_current(ks->counter, &value) == 0)
        ksvc_metric_set(m, "kcard_k_server_counter_value", "The last counter value handed out.", "",
                        (double)value);
    ksvc_metric_set(m, "kcard_k_server_counter_reserved",
                    "The durable bound of counter values: a crash resumes above it.", "",
                    (double)ksrv_counter_reserved(ks->counter));
    ksvc_metric_set(m, "kcard_k_server_replay_instances",
                    "k_proxy instances whose replay windows k_server keeps.", "",
                    (double)ksvc_replay_table_count(ks->replay));
}

static void *maintain(void *arg)
{
    struct k_server *ks = arg;
    pthread_mutex_lock(&ks->stop_lock);
    while (!ks->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
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

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"proxy-token", required_argument, NULL, 't'},
        {"proxy-token-file", required_argument, NULL, 'T'},
        {"tls-certfile", required_argument, NULL, 'c'},
        {"tls-keyfile", required_argument, NULL, 'k'},
        {"state-db", required_argument, NULL, 's'},
        {"port-file", required_argument, NULL, 'P'},
        {"init", no_argument, NULL, 'I'},
        KSVC_LIMIT_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *host = "127.0.0.1", *token_arg = NULL, *token_file = NULL, *cert = NULL,
               *key = NULL, *state = NULL, *port_file = NULL;
    int port = 8780, c;
    bool init = false;
    struct ksvc_limits limits = {0};
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            host = optarg;
            break;
        case 'p':
            if (ksvc_parse_int_option("k_server", "--port", optarg, 0, 65535, &port) != 0)
                return EXIT_USAGE;
            break;
        case 't':
            token_arg = optarg;
            break;
        case 'T':
            token_file = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 's':
            state = optarg;
            break;
        case 'P':
            port_file = optarg;
            break;
        case 'I':
            init = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("k_server (kcard) 0.1\n");
            return 0;
        case KSVC_OPT_MAX_CONNECTIONS:
        case KSVC_OPT_MAX_PER_ADDRESS:
        case KSVC_OPT_REQUEST_TIMEOUT:
            if (ksvc_limit_option("k_server", c, optarg, &limits) < 0)
                return EXIT_USAGE;
            break;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "k_server: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    char token[1024] = "";
    if (ksvc_load_token("k_server", token_arg, token_file, token, sizeof(token)) != 0)
        return EXIT_USAGE;
    if ((cert == NULL) != (key == NULL)) {
        fprintf(stderr, "k_server: --tls-certfile and --tls-keyfile go together\n");
        return EXIT_USAGE;
    }

    ksvc_block_signals();
    ksvc_log_init("k_server");
    struct k_server ks = {0};
    pthread_mutex_init(&ks.stop_lock, NULL);
    pthread_cond_init(&ks.stop_cond, NULL);
    char err[512];
    int rc = ksvc_upstream_key(token, ks.key);
    OPENSSL_cleanse(token, sizeof(token));
    if (rc != 0) {
        fprintf(stderr, "k_server: cannot derive the upstream key\n");
        return EXIT_RUNTIME;
    }
    if (state != NULL)
        snprintf(ks.state_db, sizeof(ks.state_db), "%s", state);
    else if (ksvc_default_state_path("k_server.db", ks.state_db, sizeof(ks.state_db)) != 0) {
        fprintf(stderr, "k_server: no --state-db and neither XDG_STATE_HOME nor HOME is set\n");
        return EXIT_USAGE;
    }
    int status = EXIT_START;
    bool created = false;
    ks.counter = ksrv_counter_open(ks.state_db, init, &created, err, sizeof(err));
    if (ks.counter == NULL) {
        fprintf(stderr, "k_server: state database: %s\n", err);
        goto out;
    }
    size_t loaded = 0;
    ks.replay = ksrv_replay_open(ks.counter, time(NULL), &loaded, err, sizeof(err));
    if (ks.replay == NULL) {
        fprintf(stderr, "k_server: state database %s: %s\n", ks.state_db, err);
        goto out;
    }
    if (pthread_create(&ks.maintenance, NULL, maintain, &ks) != 0) {
        fprintf(stderr, "k_server: cannot start a thread\n");
        goto out;
    }
    ks.maintenance_started = true;
    if (created)
        ksvc_log("info", "state_created", json_pack("{s:s}", "state_db", ks.state_db));
    struct ksvc_server_cfg cfg = {
        .service = "k_server",
        .host = host,
        .port = port,
        .tls_cert_file = cert,
        .tls_key_file = key,
        .limits = limits,
        .handler = on_request,
        .health = on_health,
        .metrics_refresh = on_metrics,
        .ctx = &ks,
    };
    if (ksvc_server_start(&cfg, &ks.http, err, sizeof(err)) != 0) {
        fprintf(stderr, "k_server: %s\n", err);
        goto out;
    }
    atomic_store(&ks.metrics, ksvc_server_metrics(ks.http));
    int64_t value = 0;
    ksrv_counter_current(ks.counter, &value);
    ksvc_log("info", "start",
             json_pack("{s:s, s:i, s:b, s:s, s:I, s:I}", "host", host, "port",
                       ksvc_server_port(ks.http), "tls", ksvc_server_tls(ks.http), "state_db",
                       ks.state_db, "replay_instances_closed", (json_int_t)loaded, "counter",
                       (json_int_t)value));
    status = ksvc_serve_until_stopped("k_server", ks.http, port_file) == 0 ? 0 : EXIT_RUNTIME;
out:
    ksvc_server_stop(ks.http);
    if (ks.maintenance_started) {
        pthread_mutex_lock(&ks.stop_lock);
        ks.stopping = true;
        pthread_cond_signal(&ks.stop_cond);
        pthread_mutex_unlock(&ks.stop_lock);
        pthread_join(ks.maintenance, NULL);
    }
    ksvc_replay_table_free(ks.replay);
    ksrv_counter_close(ks.counter);
    pthread_cond_destroy(&ks.stop_cond);
    pthread_mutex_destroy(&ks.stop_lock);
    OPENSSL_cleanse(ks.key, sizeof(ks.key));
    return status;
}
