/* k_proxy: the card-gated session proxy of the chain. It logs a user in once
 * through the card, then lets the session call the protected counter on
 * k_server without touching the card again (services/API.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "services/common/http.h"
#include "services/common/log.h"
#include "services/common/svc_util.h"
#include "services/common/upstream.h"
#include "services/k_proxy/card_auth.h"
#include "services/k_proxy/proxy.h"
#include "services/k_proxy/store.h"
#include "services/k_proxy/upstream_client.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_START 3

static void usage(FILE *f)
{
    fprintf(f, "usage: k_proxy --proxy-token TOKEN [options]\n"
               "\n"
               "The card-gated session proxy of the kcard session chain: one login through the\n"
               "card, then the session reaches k_server's protected counter without the card.\n"
               "\n"
               "  --host ADDR              address to listen on (default 127.0.0.1)\n"
               "  --port N                 port (default 8770; 0 picks a free one)\n"
               "  --session-ttl SECONDS    session lifetime (default 300)\n"
               "  --server-base-url URL    k_server (default http://127.0.0.1:8780)\n"
               "  --server-ca-file FILE    CA certificate that signed k_server's (HTTPS)\n"
               "  --proxy-token TOKEN      the secret shared with k_server; requests to it are\n"
               "                           signed with a key derived from it\n"
               "  --proxy-token-file F     read the token from F instead (also: environment\n"
               "                           KCARD_PROXY_TOKEN)\n"
               "  --tls-certfile FILE      serve HTTPS with this PEM certificate chain\n"
               "  --tls-keyfile FILE       and this PEM private key\n"
               "  --auth-mode MODE         probe (card presence and approval, default) or\n"
               "                           fido2-direct (getAssertion verified against the\n"
               "                           credential enrolled for the user)\n"
               "  --device URI             the card: auto (default), hidraw:/dev/hidrawN,\n"
               "                           hidapi:VID:PID, udp:HOST:PORT (also KCARD_DEVICE)\n"
               "  --rp-id ID               relying party id for fido2-direct (default localhost)\n"
               "  --card-timeout-ms MS     bound on one card operation incl. the touch\n"
               "                           (default 30000)\n"
               "  --upstream-timeout-ms MS bound on one k_server request (default 5000)\n"
               "  --state-db FILE          users and sessions, SQLite (default\n"
               "                           $XDG_STATE_HOME/kcard/k_proxy.db)\n"
               "  --init                   make a new database in an existing empty file (an\n"
               "                           absent file is always created; an empty one is\n"
               "                           otherwise refused)\n"
               "  --port-file FILE         write the port listened on to FILE once "
               "ready\n" KSVC_LIMIT_USAGE "  -h, --help               this text\n"
               "  --version                the version\n"
               "\n"
               "Endpoints: POST /session/login /session/status /session/logout\n"
               "/resource/counter /enroll/register /enroll/unregister, GET /users /healthz\n"
               "/metrics. Logs one JSON line per event on stderr.\n"
               "\n"
               "Exit status: 0 stopped by SIGINT/SIGTERM, 1 runtime failure, 2 usage,\n"
               "3 could not start (state database, TLS material, address in use).\n");
}

struct options {
    const char *host, *token_arg, *token_file, *cert, *key, *state, *port_file, *ca_file, *rp_id;
    int port, card_timeout_ms, upstream_timeout_ms;
    bool init;
    struct ksvc_limits limits;
};

static int parse_options(int argc, char **argv, struct kpx_proxy *p, struct options *o)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"session-ttl", required_argument, NULL, 'L'},
        {"server-base-url", required_argument, NULL, 'u'},
        {"server-ca-file", required_argument, NULL, 'C'},
        {"proxy-token", required_argument, NULL, 't'},
        {"proxy-token-file", required_argument, NULL, 'T'},
        {"tls-certfile", required_argument, NULL, 'c'},
        {"tls-keyfile", required_argument, NULL, 'k'},
        {"auth-mode", required_argument, NULL, 'm'},
        {"device", required_argument, NULL, 'd'},
        {"rp-id", required_argument, NULL, 'r'},
        {"card-timeout-ms", required_argument, NULL, 'W'},
        {"upstream-timeout-ms", required_argument, NULL, 'U'},
        {"state-db", required_argument, NULL, 's'},
        {"init", no_argument, NULL, 'I'},
        {"port-file", required_argument, NULL, 'P'},
        KSVC_LIMIT_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            o->host = optarg;
            break;
        case 'p':
            if (ksvc_parse_int_option("k_proxy", "--port", optarg, 0, 65535, &o->port) != 0)
                return -1;
            break;
        case 'L':
            if (ksvc_parse_int_option("k_proxy", "--session-ttl", optarg, 1, 7 * 24 * 3600,
                                      &p->session_ttl_s) != 0)
                return -1;
            break;
        case 'u':
            snprintf(p->server_base_url, sizeof(p->server_base_url), "%s", optarg);
            break;
        case 'C':
            o->ca_file = optarg;
            break;
        case 't':
            o->token_arg = optarg;
            break;
        case 'T':
            o->token_file = optarg;
            break;
        case 'c':
            o->cert = optarg;
            break;
        case 'k':
            o->key = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "probe") == 0)
                p->mode = KPX_AUTH_PROBE;
            else if (strcmp(optarg, "fido2-direct") == 0)
                p->mode = KPX_AUTH_FIDO2_DIRECT;
            else {
                fprintf(stderr, "k_proxy: --auth-mode %s: want probe or fido2-direct\n", optarg);
                return -1;
            }
            break;
        case 'd':
            snprintf(p->device, sizeof(p->device), "%s", optarg);
            break;
        case 'r':
            o->rp_id = optarg;
            break;
        case 'W':
            if (ksvc_parse_int_option("k_proxy", "--card-timeout-ms", optarg, 100, 600000,
                                      &o->card_timeout_ms) != 0)
                return -1;
            break;
        case 'U':
            if (ksvc_parse_int_option("k_proxy", "--upstream-timeout-ms", optarg, 100, 600000,
                                      &o->upstream_timeout_ms) != 0)
                return -1;
            break;
        case 's':
            o->state = optarg;
            break;
        case 'I':
            o->init = true;
            break;
        case 'P':
            o->port_file = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("k_proxy (kcard) 0.1\n");
            exit(0);
        case KSVC_OPT_MAX_CONNECTIONS:
        case KSVC_OPT_MAX_PER_ADDRESS:
        case KSVC_OPT_REQUEST_TIMEOUT:
            if (ksvc_limit_option("k_proxy", c, optarg, &o->limits) < 0)
                return -1;
            break;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "k_proxy: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if ((o->cert == NULL) != (o->key == NULL)) {
        fprintf(stderr, "k_proxy: --tls-certfile and --tls-keyfile go together\n");
        return -1;
    }
    if (strncmp(p->server_base_url, "https://", 8) != 0 && o->ca_file != NULL) {
        fprintf(stderr, "k_proxy: --server-ca-file needs an https:// --server-base-url\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct kpx_proxy p = {.mode = KPX_AUTH_PROBE, .session_ttl_s = 300};
    snprintf(p.server_base_url, sizeof(p.server_base_url), "http://127.0.0.1:8780");
    snprintf(p.device, sizeof(p.device), "%s",
             getenv("KCARD_DEVICE") ? getenv("KCARD_DEVICE") : "auto");
    struct options o = {.host = "127.0.0.1",
                        .port = 8770,
                        .rp_id = "localhost",
                        .card_timeout_ms = 30000,
                        .upstream_timeout_ms = 5000};
    if (parse_options(argc, argv, &p, &o) != 0)
        return EXIT_USAGE;
    char token[1024] = "";
    if (ksvc_load_token("k_proxy", o.token_arg, o.token_file, token, sizeof(token)) != 0)
        return EXIT_USAGE;
    if (o.state != NULL)
        snprintf(p.state_db, sizeof(p.state_db), "%s", o.state);
    else if (ksvc_default_state_path("k_proxy.db", p.state_db, sizeof(p.state_db)) != 0) {
        fprintf(stderr, "k_proxy: no --state-db and neither XDG_STATE_HOME nor HOME is set\n");
        return EXIT_USAGE;
    }

    ksvc_block_signals();
    ksvc_log_init("k_proxy");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "k_proxy: libcurl failed to initialise\n");
        return EXIT_RUNTIME;
    }
    int status = EXIT_START;
    char err[512];
    uint8_t key[KSVC_UPSTREAM_KEY_LEN];
    int rc = ksvc_upstream_key(token, key);
    OPENSSL_cleanse(token, sizeof(token));
    if (rc != 0) {
        fprintf(stderr, "k_proxy: cannot derive the upstream key\n");
        goto out;
    }
    bool created = false;
    p.store = kpx_store_open_init(p.state_db, o.init, &created, err, sizeof(err));
    if (p.store == NULL) {
        fprintf(stderr, "k_proxy: state database: %s\n", err);
        goto out;
    }
    if (created)
        ksvc_log("info", "state_created", json_pack("{s:s}", "state_db", p.state_db));
    if (kpx_store_ref_key(p.store, p.ref_key) != 0) {
        fprintf(stderr, "k_proxy: state database %s: cannot read the reference key\n", p.state_db);
        goto out;
    }
    /* request counts written back and expired sessions swept once a second */
    if (kpx_store_start(p.store, 0, err, sizeof(err)) != KPX_STORE_OK) {
        fprintf(stderr, "k_proxy: state database: %s\n", err);
        goto out;
    }
    struct kpx_upstream_cfg ucfg = {.base_url = p.server_base_url,
                                    .ca_file = o.ca_file,
                                    .key = key,
                                    .timeout_ms = o.upstream_timeout_ms};
    p.upstream = kpx_upstream_new(&ucfg, err, sizeof(err));
    OPENSSL_cleanse(key, sizeof(key));
    if (p.upstream == NULL) {
        fprintf(stderr, "k_proxy: %s\n", err);
        status = EXIT_USAGE;
        goto out;
    }
    struct kpx_card_cfg ccfg = {
        .device_uri = p.device, .rp_id = o.rp_id, .timeout_ms = o.card_timeout_ms};
    p.card = kpx_card_new(&ccfg, err, sizeof(err));
    if (p.card == NULL) {
        fprintf(stderr, "k_proxy: card: %s\n", err);
        goto out;
    }
    struct ksvc_server_cfg cfg = {
        .service = "k_proxy",
        .host = o.host,
        .port = o.port,
        .tls_cert_file = o.cert,
        .tls_key_file = o.key,
        .limits = o.limits,
        .handler = kpx_handle_request,
        .may_block = kpx_may_block, /* the card, SQLite writes, blocking upstream calls */
        .health = kpx_health,
        .metrics_refresh = kpx_metrics_refresh,
        .ctx = &p,
    };
    if (ksvc_server_start(&cfg, &p.http, err, sizeof(err)) != 0) {
        fprintf(stderr, "k_proxy: %s\n", err);
        goto out;
    }
    ksvc_log("info", "start",
             json_pack("{s:s, s:i, s:b, s:s, s:s, s:s, s:i, s:s}", "host", o.host, "port",
                       ksvc_server_port(p.http), "tls", ksvc_server_tls(p.http), "auth_mode",
                       kpx_auth_mode_answer(p.mode), "device", p.device, "server_base_url",
                       p.server_base_url, "session_ttl", p.session_ttl_s, "state_db", p.state_db));
    status = ksvc_serve_until_stopped("k_proxy", p.http, o.port_file) == 0 ? 0 : EXIT_RUNTIME;
out:
    ksvc_server_stop(p.http);
    kpx_card_free(p.card);
    kpx_upstream_free(p.upstream);
    kpx_store_close(p.store);
    OPENSSL_cleanse(p.ref_key, sizeof(p.ref_key));
    curl_global_cleanup();
    return status;
}
