/* Request guard of the services: which requests may reach a handler at all.
 * It refuses what a browser on another site can send (issue 10, "only
 * same-site, JSON, expected-host requests change state"):
 *  - a Host that does not name this machine (421 misdirected_request): what
 *    a DNS-rebinding page sends, its own name resolving to 127.0.0.1;
 *  - an Origin that is not listed (403 origin_not_allowed): the services are
 *    called server to server and by curl, which send no Origin;
 *  - a POST that is not application/json (415 unsupported_media_type): the
 *    only bodies a cross-site form can send without a CORS preflight are
 *    form data and text/plain.
 * A POST with an empty body may omit the Content-Type (the runbook's
 * `curl -X POST -H "Authorization: Bearer ..."`): with nothing to parse, a
 * route acts only on a bearer token, and no browser sends an Authorization
 * header cross-site without a CORS preflight, which these services never
 * grant; every route that asks the card reads a JSON body, so a bodiless
 * request never reaches the card (400).
 *
 * Hosts: the port is not compared (a forward, like qvm-connect-tcp 9771 ->
 * 8771, changes it); the name must be an IP literal of this machine (any
 * loopback address, any address of a local interface, re-read at most once a
 * second when an unknown literal comes), "localhost", this machine's host
 * name, the listen address, or a name given to ksvc_guard_add_host. */
#ifndef KCARD_SERVICES_GUARD_H
#define KCARD_SERVICES_GUARD_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "services/common/http.h"

#define KSVC_GUARD_NAMES_MAX 32
#define KSVC_GUARD_NAME_LEN 256
#define KSVC_GUARD_LOCAL_MAX 64

struct ksvc_guard {
    char hosts[KSVC_GUARD_NAMES_MAX][KSVC_GUARD_NAME_LEN]; /* lowercase, no port */
    size_t nhosts;
    char origins[KSVC_GUARD_NAMES_MAX][KSVC_GUARD_NAME_LEN]; /* lowercase */
    size_t norigins;
    bool check_type; /* POSTs must be JSON (k_proxy); false: Host and Origin only */
    /* addresses of the local interfaces, IPv4 as v4-mapped IPv6 */
    pthread_mutex_t lock;
    struct in6_addr local[KSVC_GUARD_LOCAL_MAX];
    size_t nlocal;
    long long local_read_ms; /* monotonic; 0: never read */
    bool local_fixed;        /* tests: never read the interfaces */
};

/* The refusal of a request, or status 0 when it may pass. */
struct ksvc_guard_verdict {
    int status;       /* 0, 403, 415 or 421 */
    const char *code; /* "origin_not_allowed", "unsupported_media_type", "misdirected_request" */
    char message[256];
};

/* listen_host (--host) is accepted as a Host name besides the defaults;
 * check_type: refuse non-JSON POSTs. */
void ksvc_guard_init(struct ksvc_guard *g, const char *listen_host, bool check_type);
void ksvc_guard_free(struct ksvc_guard *g);
/* A DNS name or IP literal accepted in Host (any port); -1 with err when it is
 * malformed or the list is full. */
int ksvc_guard_add_host(struct ksvc_guard *g, const char *name, char *err, size_t errlen);
/* An origin "scheme://host[:port]" accepted in Origin; -1 with err when it is
 * malformed or the list is full. */
int ksvc_guard_add_origin(struct ksvc_guard *g, const char *origin, char *err, size_t errlen);
/* Tests: use exactly these local interface addresses (text, NULL-terminated). */
void ksvc_guard_set_local(struct ksvc_guard *g, const char *const *addrs);

/* The pure pieces. */
/* "application/json", any case, optionally followed by parameters. */
bool ksvc_guard_json_type(const char *content_type);
/* The name of a Host header without its port (lowercase, brackets removed);
 * false when the header is malformed. */
bool ksvc_guard_host_name(const char *host, char *name, size_t cap);
bool ksvc_guard_host_ok(struct ksvc_guard *g, const char *host);
bool ksvc_guard_origin_ok(const struct ksvc_guard *g, const char *origin);

/* The decision for one request from its method and headers (each NULL when
 * absent) and its body length. */
void ksvc_guard_decide(struct ksvc_guard *g, const char *method, const char *host,
                       const char *origin, const char *content_type, const char *authorization,
                       size_t body_len, struct ksvc_guard_verdict *v);
/* The same for a request being handled: false when refused, with resp set
 * (status, error body, log field "guard"). */
bool ksvc_guard_check(struct ksvc_guard *g, const struct ksvc_request *req,
                      struct ksvc_response *resp);

#endif
