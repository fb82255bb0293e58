/* libFuzzer: k_server's parse and check of k_proxy's signed Authorization
 * header, the bearer-token parser of k_proxy, and base64url decoding. The
 * input is split at the first NUL: header, then body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/common/crypto.h"
#include "services/common/http.h"
#include "services/common/upstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ksvc_replay_cache *cache;
    static uint8_t key[KSVC_UPSTREAM_KEY_LEN];
    if (cache == NULL) {
        cache = ksvc_replay_cache_new(1024);
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
    (void)ksvc_upstream_verify(key, cache, header, "POST", "/counter/next", body, body_len,
                               1800000000, &a);
    char token[64];
    (void)ksvc_parse_bearer(header, token, sizeof(token));
    uint8_t raw[256];
    (void)ksvc_b64url_decode(header, raw, sizeof(raw));
    free(header);
    return 0;
}
