/* libFuzzer: k_proxy's parse of k_server's counter answer, its JSON body
 * and its Kcard-Counter header ("N ref"): a value is only ever taken whole,
 * positive, and for the reference asked for. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/k_proxy/upstream_client.h"

#define REF "AbCdEfGhIjKlMnOpQrStUv"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t value = 0;
    char msg[256];
    if (kpx_upstream_parse_counter((const char *)data, size, REF, &value, msg, sizeof(msg)) == 0 &&
        value < 1)
        abort();
    char *header = malloc(size + 1);
    if (header == NULL)
        return 0;
    memcpy(header, data, size);
    header[size] = '\0';
    value = 0;
    if (kpx_upstream_parse_counter_header(header, REF, &value, msg, sizeof(msg)) == 0) {
        /* accepted: digits, one space, the reference, nothing else */
        const char *space = strchr(header, ' ');
        if (value < 1 || space == NULL || strcmp(space + 1, REF) != 0 ||
            strspn(header, "0123456789") != (size_t)(space - header))
            abort();
    }
    free(header);
    return 0;
}
