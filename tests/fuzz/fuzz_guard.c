/* libFuzzer: the request guard's view of what a client sends (services/
 * common/guard.c). The input is a method byte and NUL-separated fields:
 * Host, Origin, Content-Type, Authorization, then the rest as the body; and
 * the same fields given to --allowed-host and --allowed-origin. The
 * decision must be one of the four statuses and never read past a field. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/common/guard.h"

static const char *field(const char *buf, size_t len, size_t *pos)
{
    if (*pos >= len)
        return NULL;
    const char *f = buf + *pos;
    *pos += strlen(f) + 1;
    return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ksvc_guard g;
    static bool ready;
    if (!ready) {
        static const char *const locals[] = {"10.0.0.2", "fd00::2", NULL};
        ksvc_guard_init(&g, "127.0.0.1", true);
        ksvc_guard_set_local(&g, locals);
        char err[256];
        ksvc_guard_add_host(&g, "proxy.example", err, sizeof(err));
        ksvc_guard_add_origin(&g, "https://portal.example", err, sizeof(err));
        ready = true;
    }
    if (size == 0)
        return 0;
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    size_t len = size - 1, pos = 0;
    const char *methods[] = {"POST", "GET", "HEAD", "PUT"};
    const char *method = methods[data[0] & 3];
    const char *host = field(buf, len, &pos), *origin = field(buf, len, &pos);
    const char *type = field(buf, len, &pos), *auth = field(buf, len, &pos);
    size_t body_len = pos < len ? len - pos : 0;
    struct ksvc_guard_verdict v;
    ksvc_guard_decide(&g, method, host, origin, type, auth, body_len, &v);
    if (v.status != 0 && v.status != 403 && v.status != 415 && v.status != 421)
        abort();
    if (v.status != 0 && (v.code == NULL || strlen(v.message) >= sizeof(v.message)))
        abort();
    char name[KSVC_GUARD_NAME_LEN];
    if (host != NULL && ksvc_guard_host_name(host, name, sizeof(name)) &&
        strlen(name) >= sizeof(name))
        abort();
    (void)ksvc_guard_json_type(type);
    /* a scratch guard for the option parsers, so the shared one stays fixed */
    struct ksvc_guard scratch;
    ksvc_guard_init(&scratch, host, false);
    ksvc_guard_set_local(&scratch, NULL);
    char err[256];
    if (origin != NULL && ksvc_guard_add_origin(&scratch, origin, err, sizeof(err)) == 0 &&
        !ksvc_guard_origin_ok(&scratch, origin))
        abort(); /* an origin just allowed is accepted */
    if (host != NULL && ksvc_guard_add_host(&scratch, host, err, sizeof(err)) == 0 &&
        !ksvc_guard_host_ok(&scratch, host))
        abort(); /* a host just allowed is accepted */
    ksvc_guard_free(&scratch);
    free(buf);
    return 0;
}
