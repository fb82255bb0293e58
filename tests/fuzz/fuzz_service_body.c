/* libFuzzer: what the services do with a request body before any handler
 * logic: the JSON-object parse with its 400/415 answers, and k_proxy's
 * username check on the "username" member. */
#include <stddef.h>
#include <stdint.h>

#include "services/common/http.h"
#include "services/k_proxy/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ksvc_response resp = {0};
    const char *type = size > 0 && data[0] == 'x' ? "text/plain" : NULL;
    json_t *obj = ksvc_json_object_parse((const char *)data, size, type, &resp);
    if (obj != NULL) {
        json_t *u = json_object_get(obj, "username");
        if (json_is_string(u))
            (void)kpx_username_valid(json_string_value(u));
        json_decref(obj);
    }
    json_decref(resp.body);
    json_decref(resp.log);
    return 0;
}
