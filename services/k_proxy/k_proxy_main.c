/* k_proxy: the card-gated session proxy of the chain. It logs a user in once
 * through the card, then lets the session call the protected counter on
 * k_server without touching the card again (services/API.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "services/common/http.h"
#include "services/common/log.h"
#include "services/common/svc_util.h"
#include "services/common/upstream.h"
#include "services/k_proxy/card_auth.h"
#include "services/k_proxy/card_worker.h"
#include "services/k_proxy/limits.h"
#include "services/k_proxy/proxy.h"
#include "services/k_proxy/reach.h"
#include "services/k_proxy/store.h"
#include "services/k_proxy/upstream_client.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_START 3

static void usage(FILE *f)
{
    fprintf(f,
            "usage: k_proxy --proxy-token TOKEN [options]\n"
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
            "  --counter-limit-session RATE[:BURST]\n"
            "                           /resource/counter calls a second per session, and\n"
            "                           the burst above it (default 50000:5000; 0: no\n"
            "                           limit; BURST defaults to RATE); more get 429\n"
            "  --counter-limit-address RATE[:BURST]\n"
            "                           the same per client address (default 100000:10000)\n"
            "  --login-limit-user RATE[:BURST]\n"
            "                           logins and enrolments a second per username\n"
            "                           (default 5:30)\n"
            "  --login-limit-address RATE[:BURST]\n"
            "                           the same per client address (default 50:200)\n"
            "  --lockout-after N        card denials in a row that lock a username out of\n"
            "                           logins and enrolments (default 5; 0: never)\n"
            "  --lockout-address-after N  the same for a client address (default 20)\n"
            "  --lockout-base-ms MS     the first lockout (default 1000); each further\n"
            "                           denial doubles it\n"
            "  --lockout-max-s S        the longest lockout (default 900)\n"
            "  --max-card-waiters N     logins and enrolments waiting for the card or using\n"
            "                           it (default 8); more get 503 card_busy at once\n"
            "  --state-db FILE          users and sessions, SQLite (default\n"
            "                           $XDG_STATE_HOME/kcard/k_proxy.db)\n"
            "  --init                   make a new database in an existing empty file (an\n"
            "                           absent file is always created; an empty one is\n"
            "                           otherwise refused)\n"
            "  --allowed-host NAME      also accept requests whose Host names NAME (repeatable;\n"
            "                           always accepted: localhost, this machine's name and\n"
            "                           any address of its interfaces; others get 421)\n"
            "  --allowed-origin ORIGIN  accept requests carrying Origin: ORIGIN, as\n"
            "                           scheme://host[:port] (repeatable; default none: a\n"
            "                           request with an Origin gets 403)\n"
            "  --port-file FILE         write the port listened on to FILE once "
            "ready\n" KSVC_LIMIT_USAGE KSVC_SCHED_USAGE "  -h, --help               this text\n"
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
    struct ksvc_listen_opts front;
    const char *token_arg, *token_file, *state, *ca_file, *rp_id;
    int card_timeout_ms, upstream_timeout_ms;
    struct kpx_limits_cfg lim;
    int max_card_waiters;
    bool init;
    const char *allowed_hosts[KSVC_GUARD_NAMES_MAX], *allowed_origins[KSVC_GUARD_NAMES_MAX];
    size_t nallowed_hosts, nallowed_origins;
};

/* The limit options (limits.h, card_worker.h). */
enum {
    OPT_COUNTER_SESSION = 0x4c01,
    OPT_COUNTER_ADDRESS,
    OPT_LOGIN_USER,
    OPT_LOGIN_ADDRESS,
    OPT_LOCKOUT_AFTER,
    OPT_LOCKOUT_ADDRESS_AFTER,
    OPT_LOCKOUT_BASE,
    OPT_LOCKOUT_MAX,
    OPT_MAX_CARD_WAITERS,
};

/* RATE[:BURST], numbers from 0 to 1e9; BURST defaults to RATE (at least 1). */
static int parse_rate_option(const char *name, const char *arg, struct kpx_rate *out)
{
    char *end = NULL;
    double rate = strtod(arg, &end), burst = rate < 1 ? 1 : rate;
    bool ok = end != arg && rate >= 0 && rate <= 1e9;
    if (ok && *end == ':') {
        const char *b = end + 1;
        burst = strtod(b, &end);
        ok = end != b && burst >= 1 && burst <= 1e9;
    }
    if (!ok || *end != '\0') {
        fprintf(stderr,
                "k_proxy: %s %s: want RATE[:BURST], a rate a second from 0 (no limit) to 1e9 "
                "and a burst from 1 to 1e9\n",
                name, arg);
        return -1;
    }
    out->rate = rate;
    out->burst = burst;
    return 0;
}

static const struct option long_options[] = {
    KSVC_LISTEN_OPTIONS,
    {"session-ttl", required_argument, NULL, 'L'},
    {"server-base-url", required_argument, NULL, 'u'},
    {"server-ca-file", required_argument, NULL, 'C'},
    {"proxy-token", required_argument, NULL, 't'},
    {"proxy-token-file", required_argument, NULL, 'T'},
    {"auth-mode", required_argument, NULL, 'm'},
    {"device", required_argument, NULL, 'd'},
    {"rp-id", required_argument, NULL, 'r'},
    {"card-timeout-ms", required_argument, NULL, 'W'},
    {"upstream-timeout-ms", required_argument, NULL, 'U'},
    {"counter-limit-session", required_argument, NULL, OPT_COUNTER_SESSION},
    {"counter-limit-address", required_argument, NULL, OPT_COUNTER_ADDRESS},
    {"login-limit-user", required_argument, NULL, OPT_LOGIN_USER},
    {"login-limit-address", required_argument, NULL, OPT_LOGIN_ADDRESS},
    {"lockout-after", required_argument, NULL, OPT_LOCKOUT_AFTER},
    {"lockout-address-after", required_argument, NULL, OPT_LOCKOUT_ADDRESS_AFTER},
    {"lockout-base-ms", required_argument, NULL, OPT_LOCKOUT_BASE},
    {"lockout-max-s", required_argument, NULL, OPT_LOCKOUT_MAX},
    {"max-card-waiters", required_argument, NULL, OPT_MAX_CARD_WAITERS},
    {"state-db", required_argument, NULL, 's'},
    {"init", no_argument, NULL, 'I'},
    {"allowed-host", required_argument, NULL, 'A'},
    {"allowed-origin", required_argument, NULL, 'O'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static int parse_options(int argc, char **argv, struct kpx_proxy *p, struct options *o)
{
    int c;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
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
        case OPT_COUNTER_SESSION:
        case OPT_COUNTER_ADDRESS:
        case OPT_LOGIN_USER:
        case OPT_LOGIN_ADDRESS: {
            struct kpx_rate *r = c == OPT_COUNTER_SESSION   ? &o->lim.counter_session
                                 : c == OPT_COUNTER_ADDRESS ? &o->lim.counter_address
                                 : c == OPT_LOGIN_USER      ? &o->lim.login_user
                                                            : &o->lim.login_address;
            const char *name = c == OPT_COUNTER_SESSION   ? "--counter-limit-session"
                               : c == OPT_COUNTER_ADDRESS ? "--counter-limit-address"
                               : c == OPT_LOGIN_USER      ? "--login-limit-user"
                                                          : "--login-limit-address";
            if (parse_rate_option(name, optarg, r) != 0)
                return -1;
            break;
        }
        case OPT_LOCKOUT_AFTER:
        case OPT_LOCKOUT_ADDRESS_AFTER: {
            int n = 0;
            if (ksvc_parse_int_option("k_proxy",
                                      c == OPT_LOCKOUT_AFTER ? "--lockout-after"
                                                             : "--lockout-address-after",
                                      optarg, 0, 1000000, &n) != 0)
                return -1;
            if (c == OPT_LOCKOUT_AFTER)
                o->lim.lockout_after_user = (unsigned)n;
            else
                o->lim.lockout_after_address = (unsigned)n;
            break;
        }
        case OPT_LOCKOUT_BASE:
        case OPT_LOCKOUT_MAX: {
            int n = 0;
            if (ksvc_parse_int_option(
                    "k_proxy", c == OPT_LOCKOUT_BASE ? "--lockout-base-ms" : "--lockout-max-s",
                    optarg, 1, c == OPT_LOCKOUT_BASE ? 3600000 : 86400, &n) != 0)
                return -1;
            if (c == OPT_LOCKOUT_BASE)
                o->lim.lockout_base_ms = (unsigned)n;
            else
                o->lim.lockout_max_s = (unsigned)n;
            break;
        }
        case OPT_MAX_CARD_WAITERS:
            if (ksvc_parse_int_option("k_proxy", "--max-card-waiters", optarg, 1,
                                      KPX_MAX_CARD_WAITERS_LIMIT, &o->max_card_waiters) != 0)
                return -1;
            break;
        case 'I':
            o->init = true;
            break;
        case 'A':
        case 'O': {
            const char **list = c == 'A' ? o->allowed_hosts : o->allowed_origins;
            size_t *n = c == 'A' ? &o->nallowed_hosts : &o->nallowed_origins;
            if (*n == KSVC_GUARD_NAMES_MAX) {
                fprintf(stderr, "k_proxy: --allowed-%s: at most %d\n", c == 'A' ? "host" : "origin",
                        KSVC_GUARD_NAMES_MAX);
                return -1;
            }
            list[(*n)++] = optarg;
            break;
        }
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("k_proxy (kcard) 0.1\n");
            exit(0);
        default: {
            int r = ksvc_listen_option("k_proxy", c, optarg, &o->front);
            if (r == 0)
                usage(stderr);
            if (r <= 0)
                return -1;
            break;
        }
        }
    }
    if (optind != argc) {
        fprintf(stderr, "k_proxy: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (ksvc_listen_check("k_proxy", &o->front) != 0)
        return -1;
    char err[256];
    ksvc_guard_init(&p->guard, o->front.host, true);
    for (size_t i = 0; i < o->nallowed_hosts; i++)
        if (ksvc_guard_add_host(&p->guard, o->allowed_hosts[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "k_proxy: %s\n", err);
            return -1;
        }
    for (size_t i = 0; i < o->nallowed_origins; i++)
        if (ksvc_guard_add_origin(&p->guard, o->allowed_origins[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "k_proxy: %s\n", err);
            return -1;
        }
    if (strncmp(p->server_base_url, "https://", 8) != 0 && o->ca_file != NULL) {
        fprintf(stderr, "k_proxy: --server-ca-file needs an https:// --server-base-url\n");
        return -1;
    }
    return 0;
}

static int lane_start(void *ctx, struct ksvc_loop *loop, unsigned index)
{
    (void)index;
    struct kpx_proxy *p = ctx;
    return kpx_upstream_attach(p->upstream, loop);
}

static void lane_stop(void *ctx, struct ksvc_loop *loop, unsigned index)
{
    (void)index;
    struct kpx_proxy *p = ctx;
    kpx_upstream_detach(p->upstream, loop);
}

int main(int argc, char **argv)
{
    struct kpx_proxy p = {.mode = KPX_AUTH_PROBE, .session_ttl_s = 300};
    snprintf(p.server_base_url, sizeof(p.server_base_url), "http://127.0.0.1:8780");
    snprintf(p.device, sizeof(p.device), "%s",
             getenv("KCARD_DEVICE") ? getenv("KCARD_DEVICE") : "auto");
    struct options o = {.front = {.host = "127.0.0.1", .port = 8770},
                        .rp_id = "localhost",
                        .card_timeout_ms = 30000,
                        .upstream_timeout_ms = 5000,
                        .max_card_waiters = KPX_MAX_CARD_WAITERS_DEFAULT};
    kpx_limits_cfg_default(&o.lim);
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
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    struct kpx_upstream_cfg ucfg = {.base_url = p.server_base_url,
                                    .ca_file = o.ca_file,
                                    .key = key,
                                    .timeout_ms = o.upstream_timeout_ms,
                                    .loop_lanes = cores < 1 ? 1 : (unsigned)cores};
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
    p.card_timeout_ms = o.card_timeout_ms;
    p.limits = kpx_limits_new(&o.lim, err, sizeof(err));
    if (p.limits == NULL) {
        fprintf(stderr, "k_proxy: limits: %s\n", err);
        goto out;
    }
    /* logins and enrolments use the card on this thread, never on an HTTP one */
    p.card_worker = kpx_card_worker_new((unsigned)o.max_card_waiters, err, sizeof(err));
    if (p.card_worker == NULL) {
        fprintf(stderr, "k_proxy: %s\n", err);
        goto out;
    }
    /* /healthz says whether k_server and the card are there: checked once a
     * second in the background, never per /healthz call */
    struct kpx_reach_cfg rcfg = {
        .server_base_url = p.server_base_url,
        .ca_file = o.ca_file,
        .device_uri = p.device,
        .timeout_ms = o.upstream_timeout_ms < 1000 ? o.upstream_timeout_ms : 1000,
    };
    p.reach = kpx_reach_start(&rcfg, err, sizeof(err));
    if (p.reach == NULL) {
        fprintf(stderr, "k_proxy: %s\n", err);
        goto out;
    }
    struct ksvc_server_cfg cfg = {
        .service = "k_proxy",
        .host = o.front.host,
        .port = o.front.port,
        .tls_cert_file = o.front.cert_file,
        .tls_key_file = o.front.key_file,
        .limits = o.front.limits,
        .cpu_scheduling = o.front.cpu_scheduling,
        .handler = kpx_handle_request,
        .may_block = kpx_may_block, /* SQLite writes; the card and the counter call are parked */
        .ctx = &p,
        /* each polling thread sends its counter calls to k_server itself */
        .loop_start = lane_start,
        .loop_stop = lane_stop,
    };
    if (ksvc_server_start(&cfg, &p.http, err, sizeof(err)) != 0) {
        fprintf(stderr, "k_proxy: %s\n", err);
        goto out;
    }
    ksvc_log("info", "start",
             json_pack("{s:s, s:i, s:b, s:s, s:s, s:s, s:s, s:i, s:s}", "host", o.front.host,
                       "port", ksvc_server_port(p.http), "tls", ksvc_server_tls(p.http),
                       "cpu_scheduling", ksvc_server_cpu_scheduling(p.http), "auth_mode",
                       kpx_auth_mode_answer(p.mode), "device", p.device, "server_base_url",
                       p.server_base_url, "session_ttl", p.session_ttl_s, "state_db", p.state_db));
    status = ksvc_serve_until_stopped("k_proxy", p.http, o.front.port_file) == 0 ? 0 : EXIT_RUNTIME;
out:
    kpx_card_worker_stop(p.card_worker); /* answers what waits for the card first */
    ksvc_server_stop(p.http);
    kpx_card_worker_free(p.card_worker);
    kpx_limits_free(p.limits);
    kpx_card_free(p.card);
    kpx_upstream_free(p.upstream);
    kpx_store_close(p.store);
    ksvc_guard_free(&p.guard);
    kpx_reach_stop(p.reach);
    OPENSSL_cleanse(p.ref_key, sizeof(p.ref_key));
    curl_global_cleanup();
    return status;
}
