/* rawctap internals: the shared run context, exit codes, output helpers and
 * the command table. Only the rawctap*.c files include this. */
#ifndef KCARD_PROBE_RAWCTAP_H
#define KCARD_PROBE_RAWCTAP_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "ctaphid/io.h"
#include "ctaphid/trace.h"

#define RAWCTAP_VERSION "0.1.0"

/* Exit codes: each means exactly one thing (documented in --help and rawctap.1). */
enum rc_exit {
    RC_EXIT_OK = 0,
    RC_EXIT_LOCAL = 1,     /* local failure: a file, memory, the crypto library */
    RC_EXIT_USAGE = 2,     /* bad command line */
    RC_EXIT_TRANSPORT = 3, /* no device, permission, timeout, unplug, garbled framing */
    RC_EXIT_CTAP = 4,      /* the card answered with an error status or lacks a feature */
    RC_EXIT_VERIFY = 5,    /* a signature, counter or attestation check failed */
    RC_EXIT_REPLAY = 6,    /* replay: the request diverged from the recorded trace */
};

struct rc_ctx {
    /* global options */
    const char *uri;
    struct kc_timeouts to;
    bool json;
    int verbose;
    bool trace_on;
    const char *trace_file; /* NULL: stderr */
    enum kc_trace_format trace_format;
    int alg; /* KC_COSE_ES256 or KC_COSE_EDDSA */
    bool ctap1_fallback;

    /* run state */
    FILE *trace_fp;
    struct kc_trace trace;
    struct kc_dev *dev;
    uint64_t t_op_us; /* when the current operation started */
    json_t *result;   /* the one JSON object printed with --json */
    bool upneeded_said;
    bool presence_cmd; /* the command under way may ask for presence */
    bool in_ctap1;     /* a CTAP1/U2F exchange is under way (for the diagnosis) */
    bool ka_valid;     /* the last keepalive seen, as the callback got it */
    uint8_t ka_status;
    uint64_t ka_at_us;
    uint64_t ka_wall_us;     /* kc_now_us() when the last keepalive came */
    int (*abort_fn)(void *); /* optional abort poll (cancel command) */
    void *abort_ctx;
};

/* Global options are accepted before and after the command name. */
enum rc_global_opt {
    RC_OPT_DEVICE = 1000,
    RC_OPT_DEVICE_PATH,
    RC_OPT_TIMEOUT,
    RC_OPT_INIT_TIMEOUT,
    RC_OPT_PRESENCE_TIMEOUT,
    RC_OPT_JSON,
    RC_OPT_TRACE,
    RC_OPT_TRACE_FORMAT,
    RC_OPT_ALG,
    RC_OPT_CTAP1_FALLBACK,
    RC_OPT_VERBOSE,
    RC_OPT_HELP,
    RC_OPT_VERSION,
    RC_OPT_PIN = 1900, /* --pin and --pin-file, in every command that takes a PIN */
    RC_OPT_PIN_FILE,
    RC_OPT_CMD_BASE = 2000, /* command-specific options start here */
};

/* The long options --pin PIN and --pin-file F, for a command's option table. */
/* clang-format off */
#define RC_PIN_LONGOPTS \
    {"pin", required_argument, NULL, RC_OPT_PIN}, \
    {"pin-file", required_argument, NULL, RC_OPT_PIN_FILE}
/* clang-format on */

/* A PIN buffer: room for any PIN a card takes (KC_PIN_MAX_LEN bytes) and
 * a line of a PIN file that is too long, so that one is refused. */
#define RC_PIN_MAX 128

/* Where a command's PIN comes from: --pin, --pin-file, else $RAWCTAP_PIN. */
struct rc_pin_src {
    const char *pin, *file;
};
/* Keeps a --pin or --pin-file value in src. True when c was one of them
 * (the command's option handler then returns 0), false for any other c. */
bool rc_pin_src_opt(struct rc_pin_src *src, int c, const char *arg);
/* Reads the PIN src names into buf (the caller zeroes it with
 * OPENSSL_cleanse after use); *have says whether one was given. Returns 0,
 * or the exit code for a PIN file that cannot be used. */
int rc_pin_src_read(const struct rc_pin_src *src, char *buf, size_t cap, bool *have);
/* rc_pin_src_read for a command that cannot work without the PIN: none
 * given is a usage error of cmd saying "<needs>: --pin, --pin-file or
 * $RAWCTAP_PIN". Returns 0 when buf holds the PIN, else the exit code. */
int rc_pin_src_need(const struct rc_pin_src *src, const char *cmd, const char *needs, char *buf,
                    size_t cap);

#define RC_GLOBAL_LONGOPTS                                                                         \
    {"device", required_argument, NULL, RC_OPT_DEVICE},                                            \
        {"device-path", required_argument, NULL, RC_OPT_DEVICE_PATH},                              \
        {"timeout-ms", required_argument, NULL, RC_OPT_TIMEOUT},                                   \
        {"init-timeout-ms", required_argument, NULL, RC_OPT_INIT_TIMEOUT},                         \
        {"presence-timeout-ms", required_argument, NULL, RC_OPT_PRESENCE_TIMEOUT},                 \
        {"json", no_argument, NULL, RC_OPT_JSON},                                                  \
        {"trace", optional_argument, NULL, RC_OPT_TRACE},                                          \
        {"trace-format", required_argument, NULL, RC_OPT_TRACE_FORMAT},                            \
        {"alg", required_argument, NULL, RC_OPT_ALG},                                              \
        {"ctap1-fallback", no_argument, NULL, RC_OPT_CTAP1_FALLBACK},                              \
        {"verbose", no_argument, NULL, RC_OPT_VERBOSE}, {"help", no_argument, NULL, RC_OPT_HELP},  \
    {                                                                                              \
        "version", no_argument, NULL, RC_OPT_VERSION                                               \
    }

/* Short options shared by every parser: -v (verbose), -h (help). */
#define RC_GLOBAL_SHORTOPTS "vh"

/* Handles a global option code inside any parser. Returns 0 when handled,
 * RC_EXIT_USAGE on a bad value, -1 when c is not a global option. Sets
 * *want_help for -h/--help. --version prints and exits. */
int rc_global_opt(struct rc_ctx *ctx, int c, const char *arg, bool *want_help);

struct rc_cmd {
    const char *name;
    int (*run)(struct rc_ctx *ctx, int argc, char **argv);
    const char *synopsis; /* after the command name */
    const char *help;     /* one paragraph, options one a line */
};

/* Command entry points (argv[0] is the command name). */
int rc_cmd_list(struct rc_ctx *ctx, int argc, char **argv);
int rc_cmd_init(struct rc_ctx *ctx, int argc, char **argv);
int rc_cmd_ping(struct rc_ctx *ctx, int argc, char **argv);
int rc_cmd_wink(struct rc_ctx *ctx, int argc, char **argv);
int rc_cmd_cancel(struct rc_ctx *ctx, int argc, char **argv);
int rc_cmd_info(struct rc_ctx *ctx, int argc, char **argv);
int rc_cmd_make_credential(struct rc_ctx *ctx, int argc, char **argv);
int rc_cmd_get_assertion(struct rc_ctx *ctx, int argc, char **argv);
int rc_cmd_selection(struct rc_ctx *ctx, int argc, char **argv);
int rc_cmd_reset(struct rc_ctx *ctx, int argc, char **argv);
int rc_cmd_pin(struct rc_ctx *ctx, int argc, char **argv);
int rc_cmd_config(struct rc_ctx *ctx, int argc, char **argv); /* rawctap_config.c */
int rc_cmd_u2f_register(struct rc_ctx *ctx, int argc, char **argv);
int rc_cmd_u2f_authenticate(struct rc_ctx *ctx, int argc, char **argv);
int rc_cmd_doctor(struct rc_ctx *ctx, int argc, char **argv); /* rawctap_doctor.c */
/* rawctap_trace.c */
int rc_cmd_trace(struct rc_ctx *ctx, int argc, char **argv);
/* After a command on a replay that diverged: prints where and how
 * (rawctap_trace.c). */
void rc_replay_note(struct rc_ctx *ctx);

const struct rc_cmd *rc_cmd_find(const char *name);
/* Prints the help of one command to stdout. */
void rc_cmd_help(const struct rc_cmd *cmd);
/* Prints "rawctap CMD: msg" and the synopsis to stderr; returns RC_EXIT_USAGE. */
int rc_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse one command's options: merges the global options with the command's
 * own (longopts ends with a zero entry). Calls on_opt for command options;
 * returns 0 and sets *first_arg to the index of the first operand, or an
 * exit code (RC_EXIT_USAGE; RC_EXIT_OK after printing --help). */
typedef int (*rc_opt_fn)(struct rc_ctx *ctx, void *st, int c, const char *arg);
int rc_parse_cmd(struct rc_ctx *ctx, int argc, char **argv, const char *shortopts,
                 const struct option *longopts, rc_opt_fn on_opt, void *st, int *first_arg);
/* The same for a command that takes no operands: one is a usage error. */
int rc_parse_cmd_no_operands(struct rc_ctx *ctx, int argc, char **argv, const char *shortopts,
                             const struct option *longopts, rc_opt_fn on_opt, void *st);

/* Device: open the URI, attach trace and keepalive printing, run INIT.
 * On failure prints the diagnosis and returns the exit code. */
int rc_open(struct rc_ctx *ctx);
void rc_close(struct rc_ctx *ctx);

/* Turn a libctaphid result into an exit code, printing what went wrong
 * (timeouts with their phase and the last packet seen). what names the step. */
int rc_fail(struct rc_ctx *ctx, const char *what, int err);
/* Exit code for a KC_* result without printing. */
int rc_exit_for(int err);
/* Marks the JSON result failed with an error name and exit code. */
void rc_json_error(struct rc_ctx *ctx, const char *name, int code);
/* The keepalive callback: prints each keepalive to stderr as it arrives and
 * remembers the last one for the timeout diagnosis. ctx is the rc_ctx. */
void rc_on_keepalive(void *ctx, uint8_t status, uint64_t elapsed_us);

/* Output. Messages for people go to stderr; results to stdout as text, or
 * collected into ctx->result and printed once as JSON. */
void rc_info(struct rc_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rc_verbose(struct rc_ctx *ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rc_err(struct rc_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A result field: printed "key: value" in text mode, stored in JSON mode. */
void rc_out_str(struct rc_ctx *ctx, const char *key, const char *val);
void rc_out_int(struct rc_ctx *ctx, const char *key, long long val);
void rc_out_bool(struct rc_ctx *ctx, const char *key, bool val);
void rc_out_real(struct rc_ctx *ctx, const char *key, double val);
void rc_out_hex(struct rc_ctx *ctx, const char *key, const uint8_t *buf, size_t len);
/* A new public key: COSE hex and PEM in JSON mode; in text mode the PEM
 * block when want_pem, else the COSE hex. */
void rc_out_pubkey(struct rc_ctx *ctx, const char *cose_hex, const char *pem, bool want_pem);
/* JSON mode: marks the result failed ("ok": false) with error_name. */
void rc_json_failed(struct rc_ctx *ctx, const char *error_name);
/* Store a JSON value (stolen) in JSON mode; in text mode print text_val. */
void rc_out_json(struct rc_ctx *ctx, const char *key, json_t *val, const char *text_val);

double rc_secs_since(uint64_t t0_us);

/* --json failures (rawctap_out.c). Every failed run's object has "ok": false,
 * "error" (a sentence), "error_name" (UPPER_SNAKE) and "exit". */
/* The generic error_name of an exit code, for failures that set none:
 * LOCAL_FAILURE, USAGE, TRANSPORT_ERROR, CARD_ERROR, VERIFY_FAILED,
 * REPLAY_DIVERGED (NULL for 0). */
const char *rc_exit_error_name(int code);
/* Sets "ok" and "exit" from rv and, on failure, "error" and "error_name"
 * where the command set none. */
void rc_json_finish(json_t *result, int rv);
/* Prints the object as one compact line on stdout. */
void rc_json_print(const json_t *result);
/* --json appears among the arguments (before any "--"). */
bool rc_argv_has_json(int argc, char **argv);
/* A usage error caught before the command ran: with --json anywhere in
 * argv, prints the error object too. Returns rv. */
int rc_usage_json(int argc, char **argv, const char *cmd, int rv);
/* The last usage problem (rc_usage_error, an unusable PIN source), NULL if
 * none: the "error" of a usage failure. rawctap_util.c. */
void rc_usage_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *rc_usage_last(void);

/* The most bytes a base64url or hex argument or file field decodes to
 * (kcu_b64url_decode_alloc, lenient: padding and the standard alphabet are
 * taken too; kcu_hex_decode_alloc). */
#define RC_DECODE_MAX 65536

/* Helpers (rawctap_util.c). */
/* PIN from --pin, --pin-file or $RAWCTAP_PIN (in that order). Writes into
 * buf (zero it with OPENSSL_cleanse after use); a pin_arg (from argv) is wiped
 * in place once copied. Returns 1 when a PIN was
 * found, 0 when none, RC_EXIT_USAGE on a bad file. */
int rc_pin_get(const char *pin_arg, const char *pin_file, char *buf, size_t cap);
/* Write a file atomically (temp file in the same folder, fsync, rename). */
int rc_write_atomic(const char *path, const char *data, size_t len);
/* SHA-256 via EVP. */
int rc_sha256(const void *buf, size_t len, uint8_t out[32]);
/* The public key as a PEM SubjectPublicKeyInfo block (malloc'd), NULL on failure. */
struct evp_pkey_st;
char *rc_pubkey_pem(struct evp_pkey_st *pkey);

/* A credential saved by make-credential --cred-file (or u2f-register --key-file). */
struct rc_cred_file {
    char *rp_id;
    uint8_t *cred_id;
    size_t cred_id_len;
    int alg;
    uint8_t *cose; /* public key, COSE_Key CBOR */
    size_t cose_len;
    uint32_t sign_count;
    bool u2f; /* "protocol": "ctap1" */
};
int rc_cred_file_load(struct rc_ctx *ctx, const char *path, struct rc_cred_file *cf);
/* The same from a buffer (name only for messages); used by the fuzzer. */
int rc_cred_file_parse(struct rc_ctx *ctx, const char *name, const char *buf, size_t len,
                       struct rc_cred_file *cf);
void rc_cred_file_free(struct rc_cred_file *cf);
/* Writes j (indented, in key order, with a final newline) to path atomically;
 * when the write fails prints "WHAT PATH". RC_EXIT_OK or RC_EXIT_LOCAL. */
int rc_json_write_file(struct rc_ctx *ctx, const char *path, const json_t *j, const char *what);
int rc_save_cred_file(struct rc_ctx *ctx, const char *path, const char *rp_id,
                      const uint8_t *cred_id, size_t cred_id_len, int alg, const uint8_t *cose,
                      size_t cose_len, const char *pem, uint32_t sign_count, const char *protocol);

/* CTAP2 availability (INIT capabilities) and the message when it is missing. */
bool rc_has_ctap2(struct rc_ctx *ctx);
int rc_no_ctap2(struct rc_ctx *ctx, const char *what);

struct kc_attestation;
struct kc_assertion;
struct kc_cred_id;

struct kc_info;
/* getInfo into *info (timed from ctx->t_op_us); on failure prints the
 * diagnosis and returns the exit code. */
int rc_info_fetch(struct rc_ctx *ctx, struct kc_info *info);
/* What every CTAP2-only command does first: opens the device, refuses a
 * card without CTAP2 (rc_no_ctap2 naming cmd) and fetches getInfo into
 * *info (zeroed first). RC_EXIT_OK or the exit code. */
int rc_open_ctap2_info(struct rc_ctx *ctx, const char *cmd, struct kc_info *info);
/* No PIN/UV auth protocol of the card fits: prints what it advertised (with
 * the hint to drop --pin when the PIN is optional), marks the JSON result and
 * returns RC_EXIT_CTAP. what names the step. */
int rc_no_pin_protocol(struct rc_ctx *ctx, const struct kc_info *info, const char *what,
                       bool pin_optional);

/* A protocol the user asked for (--protocol N): offered when getInfo lists
 * it (or, for protocol 1, when a card with clientPin lists none, as CTAP 2.0
 * cards do). Not offered: refused with exit 4 and PIN_PROTOCOL_NOT_OFFERED
 * naming what the card offers, unless force (then said on stderr). On
 * success *use is card with N as its only protocol. what names the step. */
bool rc_pin_protocol_offered(const struct kc_info *info, int protocol);
int rc_pin_protocol_pick(struct rc_ctx *ctx, const struct kc_info *card, int protocol, bool force,
                         const char *what, struct kc_info *use);
/* "pin_protocols": the card's advertised list (JSON array / text list). */
void rc_out_pin_protocols(struct rc_ctx *ctx, const struct kc_info *card);

/* Verification (rawctap_verify.c): print the outcome, return 0 or RC_EXIT_VERIFY. */
int rc_verify_attestation(struct rc_ctx *ctx, const char *rp_id, const uint8_t cdh[32],
                          const struct kc_attestation *att);
/* Checks the signature with the file's key, UP as requested and that signCount
 * increased; on success writes the new count to path atomically. */
int rc_verify_assertion(struct rc_ctx *ctx, const char *rp_id, const uint8_t cdh[32],
                        const struct kc_assertion *a, const struct rc_cred_file *cf, bool up,
                        const char *path);

/* CTAP1/U2F (rawctap_u2f.c). */
int rc_u2f_version(struct rc_ctx *ctx, char *buf, size_t len);
int rc_u2f_register_run(struct rc_ctx *ctx, const char *app_id, const char *key_file, bool pem);
int rc_u2f_authenticate_run(struct rc_ctx *ctx, const char *app_id, const struct rc_cred_file *cf,
                            const char *key_file, const struct kc_cred_id *allow, size_t n_allow,
                            bool up);

#endif
