/* libFuzzer target for util/'s text decoders: hex (kcu_hex_decode, _alloc,
 * _exact, kcu_hex_field) and base64url (kcu_b64url_decode, strict and
 * lenient, and _alloc). Whatever decodes must encode back to text that
 * decodes to the same bytes; every error must leave a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/b64url.h"
#include "util/hex.h"

#define OUT_MAX 4096

static void check_hex(const char *s, size_t n)
{
    uint8_t out[OUT_MAX], back[OUT_MAX];
    char err[160] = "", *enc;
    size_t len = 0, len2 = 0;
    uint32_t v;

    if (kcu_hex_decode(s, n, out, sizeof(out), &len, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            abort(); /* a refusal always says why */
    } else {
        if (len != n / 2)
            abort();
        if ((enc = kcu_hex_encode_alloc(out, len)) == NULL)
            return;
        /* the same text but for the case of the letters */
        for (size_t i = 0; i < n; i++)
            if ((s[i] | 0x20) != enc[i])
                abort();
        if (kcu_hex_decode(enc, 2 * len, back, sizeof(back), &len2, NULL, 0) != 0 || len2 != len ||
            memcmp(out, back, len) != 0)
            abort();
        free(enc);
    }
    (void)kcu_hex_field(s, n < 9 ? n : 8, 8, &v);
}

static void check_b64(const char *s, size_t n, unsigned flags)
{
    uint8_t out[OUT_MAX], back[OUT_MAX];
    char err[160] = "", *enc;
    size_t len = 0, len2 = 0;

    if (kcu_b64url_decode(s, n, flags, out, sizeof(out), &len, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            abort();
        return;
    }
    if (len > n * 3 / 4 + 1)
        abort();
    if ((enc = kcu_b64url_encode_alloc(out, len)) == NULL)
        return;
    if (strlen(enc) != kcu_b64url_encoded_len(len) ||
        kcu_b64url_decode(enc, strlen(enc), 0, back, sizeof(back), &len2, NULL, 0) != 0 ||
        len2 != len || memcmp(out, back, len) != 0)
        abort();
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;
    uint8_t *out = NULL, fixed[16];
    size_t len = 0;

    if (size > 2 * OUT_MAX)
        return 0;
    if ((s = malloc(size + 1)) == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    check_hex(s, size);
    check_b64(s, size, 0);
    check_b64(s, size, KCU_B64URL_LENIENT);
    /* the NUL-terminated forms stop at the first NUL */
    if (kcu_hex_decode_alloc(s, 64, &out, &len, NULL, 0) == 0) {
        if (len == 0 || len > 64)
            abort();
        free(out);
    }
    out = NULL;
    if (kcu_b64url_decode_alloc(s, 64, KCU_B64URL_LENIENT, &out, &len, NULL, 0) == 0) {
        if (len == 0 || len > 64)
            abort();
        free(out);
    }
    (void)kcu_hex_decode_exact(s, fixed, sizeof(fixed), NULL, 0);
    free(s);
    return 0;
}
