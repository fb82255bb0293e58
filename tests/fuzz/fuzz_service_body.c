/* libFuzzer: what the services do with a request before any handler logic:
 * the framing rules on its headers (ksvc_framing_fault), the JSON-object
 * parse of its body with its 400/415 answers, and k_proxy's username check
 * on the "username" member.
 *
 * Input: the first byte picks the HTTP version (odd: HTTP/1.1), then
 * "name:value" header lines up to a line "\n\n"-ended block, then the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/common/http.h"
#include "services/k_proxy/store.h"

#define MAX_HEADERS 32

static void fuzz_framing(const uint8_t *data, size_t size, size_t *body_at)
{
    *body_at = size;
    if (size == 0)
        return;
    const char *version = (data[0] & 1) ? "HTTP/1.1" : "HTTP/1.0";
    size_t head_len = size - 1;
    const uint8_t *end = NULL;
    for (size_t i = 1; i + 1 < size; i++)
        if (data[i] == '\n' && data[i + 1] == '\n') {
            end = data + i;
            break;
        }
    if (end != NULL) {
        head_len = (size_t)(end - (data + 1));
        *body_at = (size_t)(end - data) + 2;
    }
    char *head = malloc(head_len + 1);
    if (head == NULL)
        return;
    memcpy(head, data + 1, head_len);
    head[head_len] = '\0';
    const char *pairs[MAX_HEADERS][2];
    size_t n = 0;
    for (char *line = head, *next; line != NULL && n < MAX_HEADERS; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        pairs[n][0] = line;
        pairs[n][1] = colon + 1;
        n++;
    }
    const char *why = ksvc_framing_fault(version, (const char *const(*)[2])pairs, n);
    if (why != NULL && strlen(why) == 0)
        abort(); /* a refusal always says why */
    free(head);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t body_at = 0;
    fuzz_framing(data, size, &body_at);
    const uint8_t *body = data + body_at;
    size_t body_len = size - body_at;

    struct ksvc_response resp = {0};
    const char *type = body_len > 0 && body[0] == 'x' ? "text/plain" : NULL;
    json_t *obj = ksvc_json_object_parse((const char *)body, body_len, type, &resp);
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
