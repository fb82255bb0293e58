/* k_proxy's client of k_server: signed POST /counter/next over libcurl,
 * with a pool of handles so connections (and TLS sessions) are reused. */
#ifndef KCARD_K_PROXY_UPSTREAM_CLIENT_H
#define KCARD_K_PROXY_UPSTREAM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "services/common/upstream.h"

struct kpx_upstream_cfg {
    const char *base_url; /* http(s)://host:port, no trailing path */
    const char *ca_file;  /* NULL: the system trust store */
    const uint8_t *key;   /* KSVC_UPSTREAM_KEY_LEN bytes, copied */
    int timeout_ms;       /* whole request; <= 0: 5000 */
};

enum kpx_upstream_status {
    KPX_UPSTREAM_OK = 0,
    KPX_UPSTREAM_UNREACHABLE, /* connect/TLS/transfer failure */
    KPX_UPSTREAM_TIMEOUT,
    KPX_UPSTREAM_REFUSED,   /* k_server answered 401/403: signature not accepted */
    KPX_UPSTREAM_BAD_REPLY, /* another status, or a body that does not parse */
};

struct kpx_upstream;

struct kpx_upstream *kpx_upstream_new(const struct kpx_upstream_cfg *cfg, char *err, size_t errlen);
void kpx_upstream_free(struct kpx_upstream *u);

/* Next counter value for the session reference ref; msg names what failed.
 * Requests are signed with this process's instance id and sequence; a
 * request k_server refuses as replayed is sent once more under a new
 * instance id (see upstream_client.c). */
enum kpx_upstream_status kpx_upstream_counter_next(struct kpx_upstream *u, const char *ref,
                                                   int64_t *value, char *msg, size_t msglen);
/* How often the instance id was renewed after such a refusal. */
unsigned long kpx_upstream_renewals(struct kpx_upstream *u);

/* Parses k_server's answer {"counter": N >= 1, "ref": ref}; 0 or -1 with msg set. */
int kpx_upstream_parse_counter(const char *body, size_t len, const char *ref, int64_t *value,
                               char *msg, size_t msglen);

#endif
