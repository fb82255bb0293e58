/* rawctap output: messages for people on stderr, results on stdout as
 * "key: value" lines or collected into the one JSON object, which on
 * failure always carries ok, error, error_name and exit. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/trace.h"
#include "triage/rawctap.h"
#include "util/hex.h"

double rc_secs_since(uint64_t t0_us)
{
    return (double)(kc_now_us() - t0_us) / 1e6;
}

void rc_info(struct rc_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    (void)ctx;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void rc_verbose(struct rc_ctx *ctx, int level, const char *fmt, ...)
{
    va_list ap;
    if (ctx->verbose < level)
        return;
    fputs("rawctap: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void rc_err(struct rc_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "rawctap: %s\n", msg);
    if (ctx->json && ctx->result && json_object_get(ctx->result, "error") == NULL)
        json_object_set_new(ctx->result, "error", json_string(msg));
}

void rc_out_json(struct rc_ctx *ctx, const char *key, json_t *val, const char *text_val)
{
    if (ctx->json) {
        if (val)
            json_object_set_new(ctx->result, key, val);
        return;
    }
    json_decref(val);
    if (text_val)
        printf("%s: %s\n", key, text_val);
}

void rc_out_str(struct rc_ctx *ctx, const char *key, const char *val)
{
    if (ctx->json)
        json_object_set_new(ctx->result, key, val ? json_string(val) : json_null());
    else
        printf("%s: %s\n", key, val ? val : "(none)");
}

void rc_out_int(struct rc_ctx *ctx, const char *key, long long val)
{
    if (ctx->json)
        json_object_set_new(ctx->result, key, json_integer(val));
    else
        printf("%s: %lld\n", key, val);
}

void rc_out_bool(struct rc_ctx *ctx, const char *key, bool val)
{
    if (ctx->json)
        json_object_set_new(ctx->result, key, json_boolean(val));
    else
        printf("%s: %s\n", key, val ? "yes" : "no");
}

void rc_out_real(struct rc_ctx *ctx, const char *key, double val)
{
    if (ctx->json)
        json_object_set_new(ctx->result, key, json_real(val));
    else
        printf("%s: %.3f\n", key, val);
}

void rc_json_failed(struct rc_ctx *ctx, const char *error_name)
{
    if (!ctx->json)
        return;
    json_object_set_new(ctx->result, "ok", json_false());
    json_object_set_new(ctx->result, "error_name", json_string(error_name));
}

void rc_out_pubkey(struct rc_ctx *ctx, const char *cose_hex, const char *pem, bool want_pem)
{
    if (ctx->json) {
        rc_out_str(ctx, "public_key_cose", cose_hex);
        rc_out_str(ctx, "public_key_pem", pem);
    } else if (want_pem) {
        printf("public_key_pem:\n%s", pem ? pem : "");
    } else {
        rc_out_str(ctx, "public_key_cose", cose_hex);
    }
}

void rc_out_hex(struct rc_ctx *ctx, const char *key, const uint8_t *buf, size_t len)
{
    char *hex = kcu_hex_encode_alloc(buf, len);
    rc_out_str(ctx, key, hex ? hex : "");
    free(hex);
}

const char *rc_exit_error_name(int code)
{
    switch (code) {
    case RC_EXIT_OK:
        return NULL;
    case RC_EXIT_LOCAL:
        return "LOCAL_FAILURE";
    case RC_EXIT_USAGE:
        return "USAGE";
    case RC_EXIT_TRANSPORT:
        return "TRANSPORT_ERROR";
    case RC_EXIT_CTAP:
        return "CARD_ERROR";
    case RC_EXIT_VERIFY:
        return "VERIFY_FAILED";
    case RC_EXIT_REPLAY:
        return "REPLAY_DIVERGED";
    default:
        return "FAILED";
    }
}

static const char *rc_exit_sentence(int code)
{
    switch (code) {
    case RC_EXIT_LOCAL:
        return "a local failure (a file, memory or the crypto library)";
    case RC_EXIT_USAGE:
        return "a usage error";
    case RC_EXIT_TRANSPORT:
        return "a transport failure";
    case RC_EXIT_CTAP:
        return "the card answered with an error";
    case RC_EXIT_VERIFY:
        return "verification failed";
    case RC_EXIT_REPLAY:
        return "the replay diverged from the recorded trace";
    default:
        return "failed";
    }
}

void rc_json_finish(json_t *result, int rv)
{
    if (result == NULL)
        return;
    json_object_set_new(result, "ok", json_boolean(rv == RC_EXIT_OK));
    json_object_set_new(result, "exit", json_integer(rv));
    if (rv == RC_EXIT_OK)
        return;
    if (!json_is_string(json_object_get(result, "error"))) {
        const char *note = rv == RC_EXIT_USAGE ? rc_usage_last() : NULL;
        char msg[160];
        if (note == NULL) {
            snprintf(msg, sizeof(msg), "%s (exit %d)", rc_exit_sentence(rv), rv);
            note = msg;
        }
        json_object_set_new(result, "error", json_string(note));
    }
    if (!json_is_string(json_object_get(result, "error_name")))
        json_object_set_new(result, "error_name", json_string(rc_exit_error_name(rv)));
}

void rc_json_print(const json_t *result)
{
    char *s = json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
    if (s) {
        puts(s);
        free(s);
    }
    fflush(stdout);
}

bool rc_argv_has_json(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--json") == 0)
            return true;
    }
    return false;
}

int rc_usage_json(int argc, char **argv, const char *cmd, int rv)
{
    if (rv == RC_EXIT_OK || !rc_argv_has_json(argc, argv))
        return rv;
    json_t *o = json_object();
    if (o == NULL)
        return rv;
    json_object_set_new(o, "command", cmd ? json_string(cmd) : json_null());
    rc_json_finish(o, rv);
    rc_json_print(o);
    json_decref(o);
    return rv;
}
