/* k_proxy's client of k_server: signed POST /counter/next over libcurl's
 * multi interface. Each HTTP polling thread drives a lane of its own on its
 * event loop (kpx_upstream_attach), so a request started there completes on
 * that thread; requests from any other thread go to the client's own lane
 * and thread. Connections (and TLS sessions) are pooled per lane and request
 * slots with their reply buffers are preallocated, so a request costs no
 * heap allocation. */
#ifndef KCARD_K_PROXY_UPSTREAM_CLIENT_H
#define KCARD_K_PROXY_UPSTREAM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "services/common/http.h"
#include "services/common/upstream.h"

#define KPX_UPSTREAM_CONNECTIONS_DEFAULT 192
#define KPX_UPSTREAM_CALLER_MAX 160 /* bytes of caller data a request carries */

struct kpx_upstream_cfg {
    const char *base_url; /* http(s)://host:port, no trailing path */
    const char *ca_file;  /* NULL: the system trust store */
    const uint8_t *key;   /* KSVC_UPSTREAM_KEY_LEN bytes, copied */
    int timeout_ms;       /* whole request, waiting for a connection included; <= 0: 5000 */
    /* connections to k_server at most (and requests on the wire at once);
     * 0: KPX_UPSTREAM_CONNECTIONS_DEFAULT. Below k_server's per-address limit. */
    unsigned max_connections;
    /* polling threads that will attach a lane: they and the own lane share
     * max_connections evenly */
    unsigned loop_lanes;
};

enum kpx_upstream_status {
    KPX_UPSTREAM_OK = 0,
    KPX_UPSTREAM_UNREACHABLE, /* connect/TLS/transfer failure, or the client stopping */
    KPX_UPSTREAM_TIMEOUT,
    KPX_UPSTREAM_REFUSED,   /* k_server answered 401/403: signature not accepted */
    KPX_UPSTREAM_BAD_REPLY, /* another status, or a body that does not parse */
};

/* What a request came to, given to its callback. */
struct kpx_upstream_result {
    enum kpx_upstream_status status;
    int64_t value;   /* the counter value when OK */
    const char *msg; /* what failed; "" when OK */
    void *caller;    /* the caller's bytes copied at start (KPX_UPSTREAM_CALLER_MAX) */
};

/* Runs on the thread driving the request's lane, once per started request; it must not
 * block. r and everything it points to are valid during the call only. */
typedef void (*kpx_upstream_done_fn)(void *arg, const struct kpx_upstream_result *r);

struct kpx_upstream;

/* Starts the own lane's thread. */
struct kpx_upstream *kpx_upstream_new(const struct kpx_upstream_cfg *cfg, char *err, size_t errlen);
/* Stops the own lane's thread: requests still queued or in flight there are
 * completed with UNREACHABLE before it returns; then frees everything. Every
 * loop lane must have been detached before. */
void kpx_upstream_free(struct kpx_upstream *u);

/* A lane on a polling thread's loop, made and ended on that thread (the
 * HTTP server's loop_start and loop_stop hooks); detaching completes what is
 * still in it with UNREACHABLE. 0 or -1. */
int kpx_upstream_attach(struct kpx_upstream *u, struct ksvc_loop *loop);
void kpx_upstream_detach(struct kpx_upstream *u, struct ksvc_loop *loop);

/* Asks k_server for the next counter value of the session reference ref,
 * from any thread, without waiting. loop is the caller's polling-thread loop
 * (req->loop), or NULL: on a loop with a lane, the request goes on the wire
 * now and done(arg, result) is called on this same thread; otherwise it is
 * handed to the own lane and done is called on its thread. done is called
 * when it is answered, failed or timed out (possibly before this
 * returns). caller_len bytes at caller are copied into the request and handed
 * back as result->caller. Returns 0, or -1 (done is not called) when the
 * client is stopping, caller_len is over KPX_UPSTREAM_CALLER_MAX, or every
 * request slot is in use.
 *
 * Requests are signed with this process's instance id and the next number of
 * its sequence when they are put on the wire; one k_server refuses as
 * replayed is sent once more under a new instance id (see upstream_client.c). */
int kpx_upstream_counter_start(struct kpx_upstream *u, struct ksvc_loop *loop, const char *ref,
                               const void *caller, size_t caller_len, kpx_upstream_done_fn done,
                               void *arg);

/* The same, waiting for the answer (for callers that may block); msg names
 * what failed. */
enum kpx_upstream_status kpx_upstream_counter_next(struct kpx_upstream *u, const char *ref,
                                                   int64_t *value, char *msg, size_t msglen);
/* How often the instance id was renewed after such a refusal. */
unsigned long kpx_upstream_renewals(struct kpx_upstream *u);

/* Parses k_server's KSVC_COUNTER_HEADER value "N ref" (N >= 1 in decimal,
 * one space, the ref of the request); 0 or -1 with msg set. */
int kpx_upstream_parse_counter_header(const char *header, const char *ref, int64_t *value,
                                      char *msg, size_t msglen);
/* Parses k_server's answer {"counter": N >= 1, "ref": ref}; 0 or -1 with msg set. */
int kpx_upstream_parse_counter(const char *body, size_t len, const char *ref, int64_t *value,
                               char *msg, size_t msglen);

#endif
