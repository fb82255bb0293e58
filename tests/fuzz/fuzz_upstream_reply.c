/* libFuzzer: k_proxy's parse of k_server's counter answer. */
#include <stddef.h>
#include <stdint.h>

#include "services/k_proxy/upstream_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t value = 0;
    char msg[256];
    (void)kpx_upstream_parse_counter((const char *)data, size, "AbCdEfGhIjKlMnOpQrStUv", &value,
                                     msg, sizeof(msg));
    return 0;
}
