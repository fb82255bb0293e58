/* vcard: the virtual CTAP2.1 card over UDP. See vcard(1). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/vcard/card.h"
#include "harness/vcard/personality.h"
#include "harness/vcard/script.h"
#include "harness/vcard/server.h"
#include "util/num.h"

#define VCARD_VERSION "0.1.0"

enum exit_code {
    EXIT_OK = 0,
    EXIT_FAILURE_RUN = 1, /* a socket failed while serving */
    EXIT_USAGE = 2,
    EXIT_SETUP = 3, /* cannot bind, open the state file or the control socket */
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vcard [options]\n"
               "A software CTAP2.1/U2F authenticator speaking CTAPHID over UDP\n"
               "(one 64-byte report per datagram, replies to the sender).\n"
               "\n"
               "  --listen ADDR:PORT     UDP address (default 127.0.0.1:8111; port 0: any free)\n"
               "  --state FILE           keep credentials, counters, PIN and keys in FILE\n"
               "                         (default: in memory only)\n"
               "  --presence MODE        yes | no | timeout[:MS] | delay:MS | ask (default yes)\n"
               "  --control PATH         Unix control socket (see vcard-ctl(1))\n"
               "  --announce DIR         keep DIR/vcard-PID.uri naming the current URI\n"
               "  --fault PROFILE        inject a fault (repeatable, or comma separated):\n"
               "                         no-init-reply hang-before-up no-pin-protocols ctap1-only\n"
               "                         slow-ctap1[:MS] no-keepalive drop-every:N\n"
               "                         duplicate-every:N corrupt-seq wrong-cid busy\n"
               "                         bogus-signature counter-rollback unplug replug\n"
               "  --attestation KIND     packed (batch certificate, default) | self | none\n"
               "  --no-ctap1             no U2F over MSG (INIT then reports NMSG)\n"
               "  --uv                   advertise built-in user verification\n"
               "  --personality NAME     play a card family (default kcard-2.1; see\n"
               "                         --list-personalities and vcard(1))\n"
               "  --list-personalities   print each personality and the family it models\n"
               "  --pin PIN              start with this PIN set (a state file with another\n"
               "                         PIN is refused, except by pin-blocked)\n"
               "  --reply-port PORT      send every reply to PORT of the sender's address\n"
               "                         (as simulators reply to host port 7112)\n"
               "  --script TRACE         serve a recorded card: answer each request as the\n"
               "                         JSON-lines TRACE recorded (rawctap --trace-format\n"
               "                         json, rawctap trace import); see vcard(1)\n"
               "  --reset-window-ms MS   allow authenticatorReset only this long after\n"
               "                         power-up (default 10000, as CTAP 2.1 says)\n"
               "  --uhid[=vendor]        also appear as a hidraw node through /dev/uhid\n"
               "                         (=vendor: with a vendor-defined interface beside it)\n"
               "  -v, --verbose          one JSON log line per request on stderr\n"
               "  -h, --help             this text\n"
               "      --version          print the version\n"
               "\n"
               "Exit status: 0 stopped cleanly (SIGINT/SIGTERM), 1 socket error while serving,\n"
               "2 usage error, 3 cannot bind, open the state file, create the control socket\n"
               "or the uhid device, or read the --script trace.\n");
}

/* vcard's long options (getopt_long codes past any short option) */
enum {
    OPT_LISTEN = 256,
    OPT_STATE,
    OPT_PRESENCE,
    OPT_CONTROL,
    OPT_ANNOUNCE,
    OPT_FAULT,
    OPT_ATTESTATION,
    OPT_NO_CTAP1,
    OPT_UV,
    OPT_VERSION,
    OPT_UHID,
    OPT_RESET_WINDOW,
    OPT_PERSONALITY,
    OPT_LIST_PERSONALITIES,
    OPT_PIN,
    OPT_REPLY_PORT,
    OPT_SCRIPT
};
static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"state", required_argument, NULL, OPT_STATE},
    {"presence", required_argument, NULL, OPT_PRESENCE},
    {"control", required_argument, NULL, OPT_CONTROL},
    {"announce", required_argument, NULL, OPT_ANNOUNCE},
    {"fault", required_argument, NULL, OPT_FAULT},
    {"attestation", required_argument, NULL, OPT_ATTESTATION},
    {"no-ctap1", no_argument, NULL, OPT_NO_CTAP1},
    {"uv", no_argument, NULL, OPT_UV},
    {"uhid", optional_argument, NULL, OPT_UHID},
    {"reset-window-ms", required_argument, NULL, OPT_RESET_WINDOW},
    {"personality", required_argument, NULL, OPT_PERSONALITY},
    {"list-personalities", no_argument, NULL, OPT_LIST_PERSONALITIES},
    {"pin", required_argument, NULL, OPT_PIN},
    {"reply-port", required_argument, NULL, OPT_REPLY_PORT},
    {"script", required_argument, NULL, OPT_SCRIPT},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Reads the command line into the card's and the server's settings.
 * Returns -1 to go on and start, or the exit code to leave with (--help,
 * --version, --list-personalities, a usage error). */
static int parse_options(int argc, char **argv, struct vc_config *cfg,
                         struct vc_server_config *scfg, const char **script_path)
{
    char err[256];
    int opt;

    memset(cfg, 0, sizeof(*cfg));
    memset(scfg, 0, sizeof(*scfg));
    cfg->attestation = VC_ATT_PACKED_BATCH;
    cfg->ctap1 = true;
    cfg->reset_window_ms = 10000;
    scfg->listen = "127.0.0.1:8111";
    scfg->presence.mode = VC_PRESENCE_YES;

    while ((opt = getopt_long(argc, argv, "vh", long_options, NULL)) != -1) {
        switch (opt) {
        case OPT_LISTEN:
            scfg->listen = optarg;
            break;
        case OPT_STATE:
            cfg->state_path = optarg;
            break;
        case OPT_PRESENCE:
            if (vc_presence_parse(optarg, &scfg->presence, err, sizeof(err)) < 0) {
                fprintf(stderr, "vcard: %s\n", err);
                return EXIT_USAGE;
            }
            break;
        case OPT_CONTROL:
            scfg->control_path = optarg;
            break;
        case OPT_ANNOUNCE:
            scfg->announce_dir = optarg;
            break;
        case OPT_FAULT:
            if (vc_fault_parse(optarg, &scfg->faults, err, sizeof(err)) < 0) {
                fprintf(stderr, "vcard: %s\n", err);
                return EXIT_USAGE;
            }
            break;
        case OPT_ATTESTATION:
            if (strcmp(optarg, "packed") == 0) {
                cfg->attestation = VC_ATT_PACKED_BATCH;
            } else if (strcmp(optarg, "self") == 0) {
                cfg->attestation = VC_ATT_SELF;
            } else if (strcmp(optarg, "none") == 0) {
                cfg->attestation = VC_ATT_NONE;
            } else {
                fprintf(stderr, "vcard: bad attestation '%s' (want packed, self or none)\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_NO_CTAP1:
            cfg->ctap1 = false;
            break;
        case OPT_UV:
            cfg->uv = true;
            break;
        case OPT_RESET_WINDOW:
            if (kcu_parse_int(optarg, 1, 86400000L, &cfg->reset_window_ms) != 0) {
                fprintf(stderr, "vcard: bad --reset-window-ms '%s' (want 1..86400000)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_PERSONALITY:
            if ((cfg->personality = vc_personality_find(optarg)) == NULL) {
                vc_personality_unknown(optarg, err, sizeof(err));
                fprintf(stderr, "vcard: %s\n", err);
                return EXIT_USAGE;
            }
            break;
        case OPT_LIST_PERSONALITIES:
            for (size_t i = 0; i < vc_personality_count(); i++)
                printf("%-18s %s\n", vc_personality_at(i)->name, vc_personality_at(i)->family);
            return EXIT_OK;
        case OPT_PIN:
            cfg->pin = optarg;
            break;
        case OPT_REPLY_PORT: {
            int port;

            if (kcu_parse_int(optarg, 1, 65535, &port) != 0) {
                fprintf(stderr, "vcard: bad --reply-port '%s' (want 1..65535)\n", optarg);
                return EXIT_USAGE;
            }
            scfg->reply_port = (uint16_t)port;
            break;
        }
        case OPT_SCRIPT:
            *script_path = optarg;
            break;
        case OPT_UHID:
            scfg->uhid = true;
            if (optarg != NULL && strcmp(optarg, "vendor") == 0) {
                scfg->uhid_vendor = true;
            } else if (optarg != NULL) {
                fprintf(stderr, "vcard: bad --uhid value '%s' (want --uhid or --uhid=vendor)\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'v':
            scfg->verbose = true;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case OPT_VERSION:
            printf("vcard %s\n", VCARD_VERSION);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "vcard: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (cfg->pin != NULL) {
        const struct vc_personality *p =
            cfg->personality != NULL ? cfg->personality : vc_personality_default();

        if (!p->opt_client_pin) {
            /* such a card has no clientPin at all: a PIN could never be set on it */
            fprintf(stderr,
                    "vcard: --pin: personality %s offers no clientPin, so no PIN can be set\n",
                    p->name);
            return EXIT_USAGE;
        }
    }

    return -1;
}

/* Builds the card and its server and serves until SIGINT or SIGTERM. */
static int run(const struct vc_config *cfg, struct vc_server_config *scfg, const char *script_path)
{
    struct vc_card *card;
    struct vc_server *srv;
    struct sigaction sa;
    char err[256];
    int rc;

    if (script_path != NULL && vc_script_load(script_path, &scfg->script, err, sizeof(err)) != 0) {
        fprintf(stderr, "vcard: --script: %s\n", err);
        return EXIT_SETUP;
    }
    card = vc_card_new(cfg, err, sizeof(err));
    if (card == NULL) {
        /* the core may already name itself */
        fprintf(stderr, "%s%s\n", strncmp(err, "vcard: ", 7) == 0 ? "" : "vcard: ", err);
        vc_script_free(scfg->script);
        return EXIT_SETUP;
    }
    /* the worker thread inherits this mask: signals reach the poll loop */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    {
        sigset_t block;
        sigset_t old;

        sigemptyset(&block);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &block, &old);
        srv = vc_server_new(card, scfg, err, sizeof(err));
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (srv == NULL) {
        fprintf(stderr, "vcard: %s\n", err);
        vc_card_free(card);
        vc_script_free(scfg->script);
        return EXIT_SETUP;
    }
    if (scfg->uhid)
        fprintf(stderr, "vcard: uhid device created\n");
    fprintf(stderr, "vcard: listening on %s\n", vc_server_uri(srv));
    fflush(stderr);
    rc = vc_server_run(srv, &stop_flag) == 0 ? EXIT_OK : EXIT_FAILURE_RUN;
    vc_server_free(srv);
    vc_card_free(card);
    vc_script_free(scfg->script);
    return rc;
}

int main(int argc, char **argv)
{
    struct vc_config cfg;
    struct vc_server_config scfg;
    const char *script_path = NULL;
    int rc;

    if ((rc = parse_options(argc, argv, &cfg, &scfg, &script_path)) >= 0)
        return rc;
    return run(&cfg, &scfg, script_path);
}
