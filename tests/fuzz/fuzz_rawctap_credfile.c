/* rawctap reads credential files back from disk: fuzz their parser and the
 * base64url/hex decoders it uses. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "triage/rawctap.h"
#include "util/b64url.h"
#include "util/hex.h"

void rc_err(struct rc_ctx *ctx, const char *fmt, ...)
{
    (void)ctx;
    (void)fmt;
}

void rc_verbose(struct rc_ctx *ctx, int level, const char *fmt, ...)
{
    (void)ctx;
    (void)level;
    (void)fmt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rc_ctx ctx;
    struct rc_cred_file cf;
    memset(&ctx, 0, sizeof(ctx));
    if (rc_cred_file_parse(&ctx, "fuzz", (const char *)data, size, &cf) == 0) {
        if (cf.rp_id == NULL || cf.cred_id == NULL || cf.cose == NULL || cf.cred_id_len == 0)
            abort();
        rc_cred_file_free(&cf);
    }
    /* the decoders on their own, as NUL-terminated strings */
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    uint8_t *out = NULL;
    size_t n = 0;
    if (kcu_b64url_decode_alloc(s, RC_DECODE_MAX, KCU_B64URL_LENIENT, &out, &n, NULL, 0) == 0) {
        char *back = kcu_b64url_encode_alloc(out, n);
        uint8_t *again = NULL;
        size_t m = 0;
        /* whatever decoded must survive a round trip */
        if (back == NULL ||
            kcu_b64url_decode_alloc(back, RC_DECODE_MAX, KCU_B64URL_LENIENT, &again, &m, NULL, 0) !=
                0 ||
            m != n || memcmp(again, out, n) != 0)
            abort();
        free(again);
        free(back);
        free(out);
    }
    out = NULL;
    if (kcu_hex_decode_alloc(s, RC_DECODE_MAX, &out, &n, NULL, 0) == 0)
        free(out);
    free(s);
    return 0;
}
