/* rawctap: raw CTAP commands against one card, for hardware triage.
 * Global options, the command table, device opening and the diagnosis of
 * failures live here; each group of commands has its own rawctap_*.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/discover.h"
#include "ctaphid/status.h"
#include "ctaphid/transport.h"
#include "ctaphid/udp.h"
#include "triage/rawctap.h"
#include "util/num.h"

int rc_cmd_cred(struct rc_ctx *ctx, int argc, char **argv);       /* rawctap_cred.c */
int rc_cmd_large_blob(struct rc_ctx *ctx, int argc, char **argv); /* rawctap_largeblob.c */

static const struct rc_cmd rc_cmds[] = {
    {"list", rc_cmd_list, "",
     "List FIDO devices (hidraw nodes with usage page 0xF1D0 and\n"
     "announced virtual cards)."},
    {"init", rc_cmd_init, "", "Run CTAPHID_INIT and print the channel, versions and capabilities."},
    {"ping", rc_cmd_ping, "[--size N]",
     "Send CTAPHID_PING with N random bytes (default 64, at most 7609) and check the echo.\n"
     "  --size N        payload size in bytes"},
    {"wink", rc_cmd_wink, "", "Ask the card to wink (CTAPHID_WINK)."},
    {"info", rc_cmd_info, "", "authenticatorGetInfo: versions, AAGUID, options, PIN/UV protocols."},
    {"make-credential", rc_cmd_make_credential,
     "--rp-id ID [--user NAME] [--rk] [--uv] [--pin PIN | --pin-file F] [--cred-file F]",
     "authenticatorMakeCredential; prints the credential id (base64url) and public key\n"
     "and verifies the attestation statement.\n"
     "  --rp-id ID      relying party id (required)\n"
     "  --user NAME     user name (default \"rawctap\")\n"
     "  --rk            ask for a discoverable (resident) credential\n"
     "  --uv            ask for user verification\n"
     "  --pin PIN       PIN for a pinUvAuthToken (also --pin-file F or $RAWCTAP_PIN)\n"
     "  --cred-file F   save rp_id, cred_id, alg, public key and sign_count as JSON\n"
     "  --pem           print the public key as PEM (default COSE hex)\n"
     "extensions (each output shown as ext_*; large_blob_key in hex):\n"
     "  --hmac-secret        make the credential with hmac-secret\n"
     "  --cred-protect N     credProtect level 1, 2 or 3\n"
     "  --cred-blob B64      credBlob to store with the credential (base64url)\n"
     "  --large-blob-key     ask for the credential's largeBlobKey (needs --rk)\n"
     "  --min-pin-length     ask for the minimum PIN length (rp ids the card allows)"},
    {"get-assertion", rc_cmd_get_assertion,
     "--rp-id ID [--cred-id B64 ... | --cred-file F] [--no-up] [--uv] [--pin PIN]",
     "authenticatorGetAssertion; verifies the signature with the key saved by\n"
     "make-credential --cred-file and checks that signCount increased (the file is\n"
     "updated atomically).\n"
     "  --rp-id ID      relying party id (default: the one in --cred-file)\n"
     "  --cred-id B64   allow-list entry (base64url), repeatable\n"
     "  --cred-file F   credential file written by make-credential\n"
     "  --no-up         do not ask for user presence (up=false)\n"
     "  --uv            ask for user verification\n"
     "  --pin PIN       PIN for a pinUvAuthToken (also --pin-file F or $RAWCTAP_PIN)\n"
     "extensions:\n"
     "  --hmac-secret S1[,S2]  hmac-secret with one or two 32-byte salts (hex); prints\n"
     "                         hmac_output1 [hmac_output2], decrypted (exit 4\n"
     "                         NO_HMAC_SECRET_OUTPUT when the card gives none)\n"
     "  --hmac-protocol N      PIN/UV auth protocol for hmac-secret (default: the card's\n"
     "                         preferred)\n"
     "  --cred-blob            ask for the credential's credBlob (getCredBlob)\n"
     "  --large-blob-key       ask for the credential's largeBlobKey"},
    {"selection", rc_cmd_selection, "", "authenticatorSelection: the card asks for presence."},
    {"reset", rc_cmd_reset, "",
     "authenticatorReset: erases every credential and the PIN (only allowed shortly\n"
     "after power-up; needs presence)."},
    {"pin", rc_cmd_pin,
     "status | set | change | retries | uv-retries [--pin PIN] [--new-pin PIN]\n"
     "       [--protocol N [--force-protocol]]",
     "ClientPIN. status: PIN set?, retries, the card's protocols and the one used. set: set\n"
     "the first PIN (--new-pin or $RAWCTAP_NEW_PIN). change: --pin old, --new-pin new.\n"
     "retries: PIN attempts left (getPINRetries) and whether the PIN is blocked until a\n"
     "power cycle (soft block: 3 wrong PINs in a row) or for good (hard block: 0 left,\n"
     "only reset, which erases every credential, recovers); exit 4 when blocked.\n"
     "uv-retries: built-in UV attempts left (getUVRetries); exit 4 when none are left.\n"
     "  --pin PIN         current PIN (also --pin-file F or $RAWCTAP_PIN)\n"
     "  --new-pin PIN     new PIN (also --new-pin-file F or $RAWCTAP_NEW_PIN)\n"
     "  --protocol N      PIN/UV auth protocol 1 or 2 (default: 2 when the card offers\n"
     "                    it, else 1); one the card does not offer in getInfo is refused\n"
     "                    (exit 4, PIN_PROTOCOL_NOT_OFFERED)\n"
     "  --force-protocol  send --protocol N even so (the card's answer is named)"},
    {"config", rc_cmd_config,
     "toggle-always-uv | set-min-pin-length N [--rp-id ID]... [--force-change] |\n"
     "       enable-enterprise-attestation [--pin PIN | --pin-file F]",
     "authenticatorConfig (CTAP 2.1): toggle alwaysUv, raise the minimum PIN length, or\n"
     "enable enterprise attestation; then prints what getInfo says (always_uv,\n"
     "min_pin_length, force_pin_change, enterprise_attestation). Exit 4: the card does not\n"
     "offer it (CONFIG_NOT_OFFERED) or refused (its status named, with the fix).\n"
     "  --pin PIN         the card's PIN, for a token with the acfg permission (also\n"
     "                    --pin-file F or $RAWCTAP_PIN); needed once a PIN is set\n"
     "  --rp-id ID        set-min-pin-length: a relying party allowed to read the\n"
     "                    minimum (minPinLength extension); repeatable\n"
     "  --force-change    set-min-pin-length: the PIN must be changed before next use"},
    {"cred", rc_cmd_cred,
     "metadata | rps | list --rp-id ID | delete --cred-id B64 |\n"
     "       update-user --cred-id B64 --user-id B64 [--name N] [--display-name D]\n"
     "       [--pin PIN | --pin-file F]",
     "authenticatorCredentialManagement (0x0A; 0x41 on 2.1-PRE cards): the resident\n"
     "credentials. metadata: existing and remaining counts; rps: the relying parties;\n"
     "list: one rp's credentials (id, user, alg, credProtect, public key); delete: one\n"
     "credential; update-user: its user name and display name. Needs the PIN (a\n"
     "pinUvAuthToken with the cm permission, protocol 2 when offered, else 1). Exit 4\n"
     "with the card's status named (CTAP2_ERR_NO_CREDENTIALS, ...), or\n"
     "CRED_MGMT_NOT_OFFERED when getInfo has neither credMgmt nor credentialMgmtPreview.\n"
     "  --pin PIN          the card's PIN (also --pin-file F or $RAWCTAP_PIN)\n"
     "  --rp-id ID         list: the relying party (its SHA-256 is sent)\n"
     "  --cred-id B64      delete, update-user: the credential id (base64url)\n"
     "  --user-id B64      update-user: the credential's user id (base64url; must match)\n"
     "  --name N           update-user: new user name (left out: removed)\n"
     "  --display-name D   update-user: new display name (left out: removed)"},
    {"large-blob", rc_cmd_large_blob,
     "get|set [--file F] [--key-hex K | --cred-id B64 --rp-id ID] [--pin PIN | --pin-file F]",
     "authenticatorLargeBlobs (CTAP 2.1): the serialized large-blob array, read and written\n"
     "in fragments of maxFragmentLength (maxMsgSize - 64); get checks its integrity hash\n"
     "(exit 5, LARGE_BLOB_HASH_MISMATCH, when it is wrong). set writes the CBOR array in F\n"
     "with its hash appended, each fragment authorised by a token with the lbw permission\n"
     "when a PIN is given. With --key-hex or --cred-id, one credential's blob: get prints\n"
     "it, set replaces it (AES-256-GCM under the largeBlobKey). Exit 4: the card lacks\n"
     "largeBlobs (LARGE_BLOBS_NOT_OFFERED) or refused (its status named).\n"
     "  --file F          set: the array (or blob) to write; get: where to save it\n"
     "  --key-hex K       the credential's largeBlobKey (32 bytes, hex)\n"
     "  --cred-id B64     fetch the key with getAssertion {largeBlobKey: true} (presence)\n"
     "  --rp-id ID        with --cred-id: the credential's relying party\n"
     "  --pin PIN         the card's PIN (also --pin-file F or $RAWCTAP_PIN); needed by set\n"
     "                    once a PIN is set"},
    {"u2f-register", rc_cmd_u2f_register, "[--app-id ID] [--key-file F]",
     "CTAP1/U2F register over CTAPHID_MSG; verifies the fido-u2f attestation.\n"
     "  --app-id ID     application id (hashed with SHA-256; default \"localhost\")\n"
     "  --key-file F    save the key handle and public key as JSON"},
    {"u2f-authenticate", rc_cmd_u2f_authenticate,
     "[--app-id ID] (--key-file F | --key-handle B64) [--check-only]",
     "CTAP1/U2F authenticate; verifies the signature with the key saved by u2f-register.\n"
     "  --app-id ID       application id (default: the one in --key-file)\n"
     "  --key-file F      file written by u2f-register\n"
     "  --key-handle B64  key handle (base64url), without verification\n"
     "  --check-only      only ask whether the key handle is the card's"},
    {"cancel", rc_cmd_cancel, "[--after-ms N]",
     "Start a makeCredential that needs presence and cancel it after N ms (default 500);\n"
     "reports the card's answer (CTAP2_ERR_KEEPALIVE_CANCEL expected) and how long it took.\n"
     "Exit 0: the card answered KEEPALIVE_CANCEL; 4: it answered CTAP2_OK (the cancel came\n"
     "too late: CANCEL_TOO_LATE) or another status; 3: it did not answer the CANCEL.\n"
     "  --after-ms N    delay before CTAPHID_CANCEL (0: right after the request)\n"
     "  --rp-id ID      relying party id (default \"rawctap.cancel\")"},
    {"doctor", rc_cmd_doctor,
     "[--no-presence-test] [--slow-ms N] [--cred-file F]\n"
     "       [--pin PIN | --pin-file F] [--pin-last-try]",
     "Triage: walk the decision tree (discover, open, INIT, channel, getInfo, PIN,\n"
     "presence, verify, CTAP1, enumeration) and name the first failing step with a\n"
     "stable code, its evidence and the one fix (docs/runbook/TRIAGE.md). Exit 0: every\n"
     "step passed (warnings allowed, e.g. PIN_REQUIRED: the card wants its PIN to go\n"
     "further); 3: a transport-level diagnosis; 4: a card-level diagnosis (PIN_BLOCKED,\n"
     "PIN_INVALID, ...); 5: what the card signed does not verify.\n"
     "  --pin PIN           the card's PIN (or --pin-file F, or $RAWCTAP_PIN): doctor\n"
     "                      reads the retries first, then gets a pinUvAuthToken\n"
     "                      (protocol 2 when offered) for its makeCredential and\n"
     "                      getAssertion; never printed, zeroed after use\n"
     "  --pin-file F        the PIN from the first line of F\n"
     "  --pin-last-try      send the PIN even with 1 attempt left (a wrong PIN then\n"
     "                      blocks the PIN for good)\n"
     "  --no-presence-test  skip the makeCredential on rp id \"doctor.kcard.invalid\"\n"
     "                      (which may ask you to touch the card)\n"
     "  --slow-ms N         CTAP1 VERSION+REGISTER+check slower than N ms is slow\n"
     "                      (default 1500)\n"
     "  --cred-file F       also check a credential saved by make-credential: its\n"
     "                      signature and that signCount increased (file not updated)"},
    {"trace", rc_cmd_trace, "import CAPTURE.pcap|.pcapng [-o OUT.jsonl] [--device BUS.DEV]",
     "Turn a Linux usbmon capture (pcap or pcapng, link type 189 or 220) of a card's\n"
     "interrupt transfers into a JSON-lines trace for --device replay:OUT and\n"
     "vcard --script OUT; prints what it found. Exit 2: not a usbmon capture, no or\n"
     "several CTAPHID devices; 3: a damaged or truncated packet (named).\n"
     "  -o, --output OUT    write the trace to OUT (default stdout; the summary then\n"
     "                      goes to stderr)\n"
     "  --device BUS.DEV    the card's USB bus and device number (default: the one\n"
     "                      device that sent CTAPHID_INIT on the broadcast channel)"},
};

static const char rc_global_help[] =
    "Usage: rawctap [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Raw CTAP2/CTAP1 commands over CTAPHID for triage of FIDO security cards.\n"
    "\n"
    "Options (accepted before or after COMMAND):\n"
    "  --device URI            hidraw:/dev/hidrawN, /dev/hidrawN, hidapi:PATH, hidapi:VID:PID,\n"
    "                          udp:HOST:PORT[?local=PORT], replay:FILE or auto\n"
    "                          (?local=7112 for simulators that reply to a fixed port)\n"
    "                          (default $KCARD_DEVICE, else auto)\n"
    "  --device-path PATH      a hidraw node, same as --device PATH\n"
    "  --timeout-ms N          command phase: request sent until reply or presence prompt\n"
    "                          (default 5000)\n"
    "  --init-timeout-ms N     CTAPHID_INIT handshake (default 3000)\n"
    "  --presence-timeout-ms N waiting for the person after the prompt (default 30000)\n"
    "  --json                  results as one JSON object on stdout; a failure has\n"
    "                          ok false, error, error_name and exit (usage errors too)\n"
    "  --trace[=FILE]          every report in and out (default stderr)\n"
    "  --trace-format hex|json trace lines as hex (default) or JSON\n"
    "  --alg es256|eddsa       credential algorithm (default es256)\n"
    "  --ctap1-fallback        if CTAP2 is not offered or fails, try CTAP1/U2F (timed)\n"
    "  -v, --verbose           explain decisions; repeat for more\n"
    "  -h, --help              this help, or COMMAND --help\n"
    "  --version               print the version\n"
    "\n"
    "Commands:\n";

static const char rc_exit_help[] =
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  local failure (a file could not be written, out of memory, crypto library)\n"
    "  2  usage error (bad command line or device URI, unreadable credential or PIN file)\n"
    "  3  transport: no device, permission denied, timeout (with phase and last packet),\n"
    "     unplugged, or framing the card got wrong\n"
    "  4  the card answered with a CTAP/CTAPHID/U2F error (its name printed) or lacks\n"
    "     what the command needs\n"
    "  5  verification failed: attestation, signature, rpIdHash, flags or signCount\n"
    "  6  replay: the request differs from the recorded trace, or comes after its end\n"
    "\n"
    "Keepalives are printed to stderr as they arrive. PINs are never printed.\n";

const struct rc_cmd *rc_cmd_find(const char *name)
{
    for (size_t i = 0; i < sizeof(rc_cmds) / sizeof(rc_cmds[0]); i++)
        if (strcmp(rc_cmds[i].name, name) == 0)
            return &rc_cmds[i];
    return NULL;
}

/* The first sentence of a command's help, its line breaks folded, for the
 * one-line listing in rawctap --help (the help proper may run on). */
static void rc_first_sentence(const char *help, char *out, size_t cap)
{
    size_t n = 0;

    for (const char *p = help; *p != '\0' && n + 1 < cap; p++) {
        if (p[0] == ' ' && p[1] == ' ' && p[2] == '-') /* the option list begins */
            break;
        out[n++] = *p == '\n' ? ' ' : *p;
        if (*p == '.' && (p[1] == '\0' || p[1] == ' ' || p[1] == '\n'))
            break;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

static void rc_print_global_help(FILE *fp)
{
    fputs(rc_global_help, fp);
    for (size_t i = 0; i < sizeof(rc_cmds) / sizeof(rc_cmds[0]); i++) {
        char sentence[256];
        rc_first_sentence(rc_cmds[i].help, sentence, sizeof(sentence));
        if (rc_cmds[i].synopsis[0]) {
            fprintf(fp, "  %-17s %s\n", rc_cmds[i].name, rc_cmds[i].synopsis);
            fprintf(fp, "  %-17s %s\n", "", sentence);
        } else {
            fprintf(fp, "  %-17s %s\n", rc_cmds[i].name, sentence);
        }
    }
    fputs(rc_exit_help, fp);
}

void rc_cmd_help(const struct rc_cmd *cmd)
{
    printf("Usage: rawctap [OPTIONS] %s %s\n\n%s\n", cmd->name, cmd->synopsis, cmd->help);
    printf("\nGlobal options: see rawctap --help.\n");
    fputs(rc_exit_help, stdout);
}

int rc_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    char msg[512];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "rawctap%s%s: %s\n", cmd ? " " : "", cmd ? cmd : "", msg);
    rc_usage_note("%s%s%s", cmd ? cmd : "", cmd ? ": " : "", msg); /* for --json */
    const struct rc_cmd *c = cmd ? rc_cmd_find(cmd) : NULL;
    if (c)
        fprintf(stderr, "usage: rawctap [OPTIONS] %s %s\n", c->name, c->synopsis);
    else
        fprintf(stderr, "usage: rawctap [OPTIONS] COMMAND [ARGS]; see rawctap --help\n");
    return RC_EXIT_USAGE;
}

static int rc_parse_ms(const char *opt, const char *arg, int *out)
{
    long v;
    if (kcu_parse_long(arg, 1, 3600000, &v) != 0)
        return rc_usage_error(NULL, "%s wants milliseconds between 1 and 3600000, not '%s'", opt,
                              arg ? arg : "");
    *out = (int)v;
    return 0;
}

int rc_global_opt(struct rc_ctx *ctx, int c, const char *arg, bool *want_help)
{
    switch (c) {
    case RC_OPT_DEVICE:
    case RC_OPT_DEVICE_PATH:
        if (arg == NULL || *arg == '\0')
            return rc_usage_error(NULL, "empty device");
        ctx->uri = arg;
        return 0;
    case RC_OPT_TIMEOUT:
        return rc_parse_ms("--timeout-ms", arg, &ctx->to.command_ms);
    case RC_OPT_INIT_TIMEOUT:
        return rc_parse_ms("--init-timeout-ms", arg, &ctx->to.init_ms);
    case RC_OPT_PRESENCE_TIMEOUT:
        return rc_parse_ms("--presence-timeout-ms", arg, &ctx->to.presence_ms);
    case RC_OPT_JSON:
        ctx->json = true;
        return 0;
    case RC_OPT_TRACE:
        ctx->trace_on = true;
        ctx->trace_file = (arg && *arg && strcmp(arg, "-") != 0) ? arg : NULL;
        return 0;
    case RC_OPT_TRACE_FORMAT:
        if (strcmp(arg, "hex") == 0)
            ctx->trace_format = KC_TRACE_HEX;
        else if (strcmp(arg, "json") == 0)
            ctx->trace_format = KC_TRACE_JSON;
        else
            return rc_usage_error(NULL, "--trace-format wants hex or json, not '%s'", arg);
        return 0;
    case RC_OPT_ALG:
        if (strcasecmp(arg, "es256") == 0)
            ctx->alg = KC_COSE_ES256;
        else if (strcasecmp(arg, "eddsa") == 0 || strcasecmp(arg, "ed25519") == 0)
            ctx->alg = KC_COSE_EDDSA;
        else
            return rc_usage_error(NULL, "--alg wants es256 or eddsa, not '%s'", arg);
        return 0;
    case RC_OPT_CTAP1_FALLBACK:
        ctx->ctap1_fallback = true;
        return 0;
    case 'v':
    case RC_OPT_VERBOSE:
        ctx->verbose++;
        return 0;
    case 'h':
    case RC_OPT_HELP:
        *want_help = true;
        return 0;
    case RC_OPT_VERSION:
        printf("rawctap %s\n", RAWCTAP_VERSION);
        exit(RC_EXIT_OK);
    default:
        return -1;
    }
}

int rc_parse_cmd(struct rc_ctx *ctx, int argc, char **argv, const char *shortopts,
                 const struct option *longopts, rc_opt_fn on_opt, void *st, int *first_arg)
{
    static const struct option globals[] = {RC_GLOBAL_LONGOPTS};
    const size_t nglobal = sizeof(globals) / sizeof(globals[0]);
    size_t ncmd = 0;
    while (longopts && longopts[ncmd].name)
        ncmd++;
    struct option *all = calloc(nglobal + ncmd + 1, sizeof(*all));
    if (all == NULL)
        return RC_EXIT_LOCAL;
    memcpy(all, globals, sizeof(globals));
    if (ncmd)
        memcpy(all + nglobal, longopts, ncmd * sizeof(*all));

    char shorts[64];
    snprintf(shorts, sizeof(shorts), ":%s%s", RC_GLOBAL_SHORTOPTS, shortopts ? shortopts : "");

    bool want_help = false;
    int rv = 0;
    int c;
    optind = 0; /* full re-initialisation for glibc */
    opterr = 0;
    while ((c = getopt_long(argc, argv, shorts, all, NULL)) != -1) {
        int g;
        if (c == '?') {
            rv = rc_usage_error(argv[0], "unknown option '%s'", argv[optind - 1]);
            break;
        }
        if (c == ':') {
            rv = rc_usage_error(argv[0], "option '%s' needs a value", argv[optind - 1]);
            break;
        }
        g = rc_global_opt(ctx, c, optarg, &want_help);
        if (g > 0) {
            rv = g;
            break;
        }
        if (g == 0)
            continue;
        if (on_opt == NULL || (rv = on_opt(ctx, st, c, optarg)) != 0)
            break;
    }
    free(all);
    if (rv != 0)
        return rv;
    if (want_help) {
        const struct rc_cmd *cmd = rc_cmd_find(argv[0]);
        if (cmd)
            rc_cmd_help(cmd);
        return -1; /* help printed: caller exits 0 */
    }
    *first_arg = optind;
    return 0;
}

int rc_parse_cmd_no_operands(struct rc_ctx *ctx, int argc, char **argv, const char *shortopts,
                             const struct option *longopts, rc_opt_fn on_opt, void *st)
{
    int first = 0;
    int r = rc_parse_cmd(ctx, argc, argv, shortopts, longopts, on_opt, st, &first);
    if (r != 0)
        return r;
    if (first < argc)
        return rc_usage_error(argv[0], "unexpected argument '%s'", argv[first]);
    return 0;
}

/* ---- device ---- */

static int rc_on_abort(void *arg)
{
    struct rc_ctx *ctx = arg;
    return ctx->abort_fn ? ctx->abort_fn(ctx->abort_ctx) : 0;
}

int rc_open(struct rc_ctx *ctx)
{
    char errbuf[512] = "";
    struct kc_transport *t = NULL;
    int r;

    if (ctx->trace_on && ctx->trace_fp == NULL) {
        ctx->trace_fp = ctx->trace_file ? fopen(ctx->trace_file, "w") : stderr;
        if (ctx->trace_fp == NULL) {
            rc_err(ctx, "cannot write trace file %s: %s", ctx->trace_file, strerror(errno));
            return RC_EXIT_LOCAL;
        }
        kc_trace_init(&ctx->trace, ctx->trace_fp, ctx->trace_format);
    }
    rc_verbose(ctx, 1, "opening %s (init %d ms, command %d ms, presence %d ms)", ctx->uri,
               ctx->to.init_ms, ctx->to.command_ms, ctx->to.presence_ms);
    ctx->t_op_us = kc_now_us();
    r = kc_transport_open(ctx->uri, &t, errbuf, sizeof(errbuf));
    if (r != KC_OK) {
        /* a URI that does not parse is the user's; every other failure to
         * open is the transport's */
        int code = r == KC_ERR_INVALID_ARG ? RC_EXIT_USAGE : RC_EXIT_TRANSPORT;
        rc_err(ctx, "cannot open %s: %s", ctx->uri, errbuf[0] ? errbuf : kc_strerror(r));
        rc_json_error(ctx, kc_err_name(r), code);
        return code;
    }
    if (strcmp(kc_transport_uri(t), ctx->uri) != 0)
        rc_verbose(ctx, 1, "%s resolved to %s", ctx->uri, kc_transport_uri(t));
    if (ctx->json)
        json_object_set_new(ctx->result, "device", json_string(kc_transport_uri(t)));
    r = kc_dev_wrap(&ctx->dev, t, &ctx->to);
    if (r != KC_OK) {
        kc_transport_close(t);
        return rc_fail(ctx, "open", r);
    }
    if (ctx->trace_on) {
        kc_dev_set_trace(ctx->dev, &ctx->trace);
        kc_udp_set_trace(t, &ctx->trace); /* datagrams from other addresses */
    }
    kc_dev_set_keepalive_cb(ctx->dev, rc_on_keepalive, ctx);
    kc_dev_set_abort_cb(ctx->dev, rc_on_abort, ctx);

    struct kc_init_info info;
    ctx->t_op_us = kc_now_us();
    r = kc_dev_init(ctx->dev, &info);
    if (r != KC_OK)
        return rc_fail(ctx, "INIT", r);
    rc_verbose(ctx, 1, "INIT ok in %.3fs: channel %08x, CTAPHID protocol %u, caps 0x%02x",
               rc_secs_since(ctx->t_op_us), info.cid, info.protocol_version, info.capabilities);
    return RC_EXIT_OK;
}

void rc_close(struct rc_ctx *ctx)
{
    if (ctx->dev) {
        const struct kc_dev_stats *st = kc_dev_stats(ctx->dev);
        rc_replay_note(ctx); /* a replay that diverged says where */
        if (st)
            rc_verbose(ctx, 2,
                       "reports out %llu in %llu, skipped other-cid %llu stale %llu, keepalives "
                       "%llu, cancels %llu",
                       (unsigned long long)st->reports_out, (unsigned long long)st->reports_in,
                       (unsigned long long)st->skipped_other_cid,
                       (unsigned long long)st->skipped_stale, (unsigned long long)st->keepalives,
                       (unsigned long long)st->cancels_sent);
        if (st && st->busy_retries > 0)
            rc_verbose(ctx, 1, "the card was busy with another client: sent again %llu time(s)",
                       (unsigned long long)st->busy_retries);
        /* a card that re-enumerated mid-command was followed by identity
         * (device auto): say so, since the node name changed under us */
        if (st && st->reopens > 0)
            fprintf(stderr,
                    "rawctap: the card re-enumerated during the command; followed it to %s\n",
                    kc_transport_uri(kc_dev_transport(ctx->dev)));
        kc_dev_close(ctx->dev);
        ctx->dev = NULL;
    }
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    struct rc_ctx ctx;
    bool want_help = false;
    int c, rv;
    static const struct option longopts[] = {RC_GLOBAL_LONGOPTS, {NULL, 0, NULL, 0}};

    memset(&ctx, 0, sizeof(ctx));
    kc_timeouts_default(&ctx.to);
    ctx.alg = KC_COSE_ES256;
    ctx.trace_format = KC_TRACE_HEX;
    ctx.uri = getenv("KCARD_DEVICE");
    if (ctx.uri == NULL || *ctx.uri == '\0')
        ctx.uri = "auto";

    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:" RC_GLOBAL_SHORTOPTS, longopts, NULL)) != -1) {
        if (c == '?')
            return rc_usage_json(argc, argv, NULL,
                                 rc_usage_error(NULL, "unknown option '%s'", argv[optind - 1]));
        if (c == ':')
            return rc_usage_json(
                argc, argv, NULL,
                rc_usage_error(NULL, "option '%s' needs a value", argv[optind - 1]));
        rv = rc_global_opt(&ctx, c, optarg, &want_help);
        if (rv != 0)
            return rc_usage_json(argc, argv, NULL, rv > 0 ? rv : RC_EXIT_USAGE);
    }
    if (optind >= argc) {
        if (want_help) {
            rc_print_global_help(stdout);
            return RC_EXIT_OK;
        }
        rc_print_global_help(stderr);
        rc_usage_note("no command given");
        return rc_usage_json(argc, argv, NULL, RC_EXIT_USAGE);
    }
    const struct rc_cmd *cmd = rc_cmd_find(argv[optind]);
    if (cmd == NULL)
        return rc_usage_json(argc, argv, NULL,
                             rc_usage_error(NULL, "unknown command '%s'", argv[optind]));
    if (want_help) {
        rc_cmd_help(cmd);
        return RC_EXIT_OK;
    }

    ctx.result = json_object();
    if (ctx.result == NULL)
        return RC_EXIT_LOCAL;
    json_object_set_new(ctx.result, "command", json_string(cmd->name));

    rv = cmd->run(&ctx, argc - optind, argv + optind);
    /* usage errors print the object too when --json was given anywhere,
     * even after the bad option */
    bool print_json = ctx.json || (rv == RC_EXIT_USAGE && rc_argv_has_json(argc, argv));
    if (rv < 0) { /* --help after the command */
        rv = RC_EXIT_OK;
        print_json = false;
    }

    rc_close(&ctx);
    if (ctx.trace_fp && ctx.trace_fp != stderr)
        fclose(ctx.trace_fp);
    if (print_json) {
        rc_json_finish(ctx.result, rv);
        rc_json_print(ctx.result);
    }
    json_decref(ctx.result);
    return rv;
}
