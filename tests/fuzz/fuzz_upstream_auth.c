/* libFuzzer: k_server's parse and check of k_proxy's signed Authorization
 * header (instance id and sequence number through the replay table), the
 * bearer-token parser of k_proxy, and base64url decoding. The input is split
 * at the first NUL: header, then body. The header is also checked once more
 * with its signature recomputed, so that inputs get past the HMAC and drive
 * the replay windows with the parsed sequence numbers. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/common/crypto.h"
#include "services/common/http.h"
#include "services/common/upstream.h"
#include "util/b64url.h"

#define NOW 1800000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ksvc_replay_table *table;
    static uint8_t key[KSVC_UPSTREAM_KEY_LEN];
    static unsigned long runs;
    if (table == NULL) {
        table = ksvc_replay_table_new(NULL);
        ksvc_upstream_key("fuzz-token", key);
    }
    char *header = malloc(size + 1);
    if (header == NULL)
        return 0;
    memcpy(header, data, size);
    header[size] = '\0';
    size_t hlen = strlen(header);
    const char *body = hlen < size ? header + hlen + 1 : "";
    size_t body_len = hlen < size ? size - hlen - 1 : 0;

    struct ksvc_upstream_auth a;
    (void)ksvc_upstream_verify(key, table, header, "POST", "/counter/next", body, body_len, NOW,
                               &a);
    /* the same fields, validly signed: the window sees fuzzed numbers */
    if (ksvc_upstream_parse(header, &a) == KSVC_UPSTREAM_OK) {
        char signed_header[KSVC_UPSTREAM_HEADER_MAX + 64];
        long long ts = a.ts % (2 * KSVC_UPSTREAM_SKEW_S + 1) + NOW - KSVC_UPSTREAM_SKEW_S;
        if (ksvc_upstream_sign(key, a.instance, a.seq, "POST", "/counter/next", a.ref, body,
                               body_len, (time_t)ts, signed_header, sizeof(signed_header)) == 0) {
            struct ksvc_upstream_auth b;
            enum ksvc_upstream_verdict v = ksvc_upstream_verify(
                key, table, signed_header, "POST", "/counter/next", body, body_len, NOW, &b);
            if (v != KSVC_UPSTREAM_OK && v != KSVC_UPSTREAM_REPLAYED && v != KSVC_UPSTREAM_TOO_MANY)
                abort(); /* our own signature must verify */
            if (v == KSVC_UPSTREAM_OK &&
                ksvc_upstream_verify(key, table, signed_header, "POST", "/counter/next", body,
                                     body_len, NOW, &b) != KSVC_UPSTREAM_REPLAYED)
                abort(); /* and never twice */
        }
    }
    /* keep the table bounded over a long run */
    if (++runs % 4096 == 0)
        (void)ksvc_replay_table_expire(table, NOW + 10 * KSVC_UPSTREAM_SKEW_S);
    char token[64];
    (void)ksvc_parse_bearer(header, token, sizeof(token));
    uint8_t raw[256];
    size_t raw_len;
    (void)kcu_b64url_decode(header, strlen(header), 0, raw, sizeof(raw), &raw_len, NULL, 0);
    free(header);
    return 0;
}
