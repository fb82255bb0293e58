/* rawctap output: messages for people on stderr, results on stdout as
 * "key: value" lines or collected into the one JSON object. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/trace.h"
#include "probe/rawctap.h"

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
    char *hex = rc_hex_encode(buf, len);
    rc_out_str(ctx, key, hex ? hex : "");
    free(hex);
}
