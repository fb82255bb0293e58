/* How k_proxy proves to k_server that a request comes from it, without the
 * shared token ever crossing the wire, and how k_server refuses a request
 * it has served before: an HMAC over the request under a key derived from
 * the token, with a timestamp, the signing k_proxy instance's id and a
 * strictly increasing sequence number of that instance. k_server keeps, per
 * instance, a high-water mark with a window for requests that overtake each
 * other on the way (services/API.md, "k_server"). */
#ifndef KCARD_SERVICES_UPSTREAM_H
#define KCARD_SERVICES_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define KSVC_UPSTREAM_KEY_LEN 32
#define KSVC_UPSTREAM_SKEW_S 30
#define KSVC_UPSTREAM_REF_MAX 64
#define KSVC_UPSTREAM_HEADER_MAX 256
#define KSVC_UPSTREAM_INSTANCE_LEN 16
/* k_server's 200 to a counter call carries "<counter> <ref>" in this header
 * as well as its JSON body: k_proxy reads it without parsing JSON. */
#define KSVC_COUNTER_HEADER "Kcard-Counter"
/* Sequence numbers at most this far below an instance's highest accepted
 * one are still accepted, once each: k_proxy sends concurrently, so requests
 * overtake each other between signing and k_server's check. */
#define KSVC_REPLAY_WINDOW 1024
/* An instance is forgotten once everything it ever had accepted is older
 * than the skew window by this margin (so refused as stale anyway). */
#define KSVC_REPLAY_MARGIN_S 30
#define KSVC_REPLAY_MAX_INSTANCES 65536

enum ksvc_upstream_verdict {
    KSVC_UPSTREAM_OK = 0,
    KSVC_UPSTREAM_UNSIGNED,     /* no KC-HMAC-SHA256 Authorization header */
    KSVC_UPSTREAM_MALFORMED,    /* the header does not parse */
    KSVC_UPSTREAM_BAD_SIG,      /* the signature does not match */
    KSVC_UPSTREAM_STALE,        /* ts outside the allowed skew */
    KSVC_UPSTREAM_REPLAYED,     /* (instance, seq) served before, or below the window */
    KSVC_UPSTREAM_STATE_FAILED, /* a new instance could not be recorded durably */
    KSVC_UPSTREAM_TOO_MANY,     /* KSVC_REPLAY_MAX_INSTANCES live instances */
};
/* "ok", "unsigned_request", "malformed_signature", "bad_signature",
 * "stale_request", "replayed_request", "state_failed", "too_many_instances". */
const char *ksvc_upstream_verdict_code(enum ksvc_upstream_verdict v);

struct ksvc_upstream_auth {
    long long ts;
    uint8_t instance[KSVC_UPSTREAM_INSTANCE_LEN];
    uint64_t seq; /* >= 1 */
    char ref[KSVC_UPSTREAM_REF_MAX];
    uint8_t sig[32];
};

/* K = HKDF-SHA256(token, "kcard upstream v1", "k_proxy->k_server"), derived
 * once at start; nothing per request. */
int ksvc_upstream_key(const char *token, uint8_t key[KSVC_UPSTREAM_KEY_LEN]);

/* The Authorization header value for one request; 0 or -1. ref is the
 * opaque session reference ([A-Za-z0-9_-], at most 63 characters); seq >= 1
 * and below 10^19, never used twice by the same instance. */
int ksvc_upstream_sign(const uint8_t key[KSVC_UPSTREAM_KEY_LEN],
                       const uint8_t instance[KSVC_UPSTREAM_INSTANCE_LEN], uint64_t seq,
                       const char *method, const char *path, const char *ref, const void *body,
                       size_t body_len, time_t now, char *header, size_t cap);

/* Strict parse of "KC-HMAC-SHA256 ts=.., inst=.., seq=.., ref=.., sig=..". */
enum ksvc_upstream_verdict ksvc_upstream_parse(const char *header, struct ksvc_upstream_auth *a);

/* Parse, signature (constant-time compare) and skew: OK, UNSIGNED,
 * MALFORMED, BAD_SIG or STALE. Spends nothing. */
enum ksvc_upstream_verdict ksvc_upstream_authenticate(const uint8_t key[KSVC_UPSTREAM_KEY_LEN],
                                                      const char *header, const char *method,
                                                      const char *path, const void *body,
                                                      size_t body_len, time_t now,
                                                      struct ksvc_upstream_auth *a);

/* One instance's anti-replay window: the highest sequence number accepted
 * and a bitmap of the KSVC_REPLAY_WINDOW numbers ending at it (bit seq %
 * KSVC_REPLAY_WINDOW). All zero is the empty window. */
struct ksvc_replay_window {
    uint64_t high;
    uint64_t bits[KSVC_REPLAY_WINDOW / 64];
};
/* OK (seq is now spent), REPLAYED (spent before, or at or below
 * high - KSVC_REPLAY_WINDOW) or MALFORMED (seq 0). */
enum ksvc_upstream_verdict ksvc_replay_window_spend(struct ksvc_replay_window *w, uint64_t seq);

/* How the table makes its state survive a restart (k_server: its SQLite
 * database). record makes "instance id has been used" durable before the
 * first request of the instance is accepted, tagged with gen; it is called
 * without the table's lock, once per instance (not per request). forget
 * drops such records of expired instances (best effort: a record left
 * behind only refuses that instance for a while after the next start). */
struct ksvc_replay_persist {
    int (*record)(void *arg, const uint8_t id[KSVC_UPSTREAM_INSTANCE_LEN], int64_t gen);
    void (*forget)(void *arg, const uint8_t (*ids)[KSVC_UPSTREAM_INSTANCE_LEN], const int64_t *gens,
                   size_t n);
    void *arg;
};

/* Per-instance windows; thread-safe. persist NULL: memory only. */
struct ksvc_replay_table;
struct ksvc_replay_table *ksvc_replay_table_new(const struct ksvc_replay_persist *persist);
void ksvc_replay_table_free(struct ksvc_replay_table *t);

/* An instance recorded by the previous run of the service (gen as it was
 * recorded): what it had accepted is unknown, so every request of it is
 * refused as replayed until nothing it could have signed is within the skew
 * window any more (now + 2 * skew + margin). k_proxy then continues under a
 * new instance id. 0 or -1 (out of memory). */
int ksvc_replay_table_close(struct ksvc_replay_table *t,
                            const uint8_t id[KSVC_UPSTREAM_INSTANCE_LEN], int64_t gen, time_t now);

/* Spends (instance, seq) of a request authenticated with timestamp ts. A new
 * instance is recorded first (persist->record; concurrent requests of the
 * same instance wait for it, others do not). */
enum ksvc_upstream_verdict ksvc_replay_table_spend(struct ksvc_replay_table *t,
                                                   const uint8_t id[KSVC_UPSTREAM_INSTANCE_LEN],
                                                   uint64_t seq, long long ts, time_t now);

/* Drops instances whose every accepted request is older than skew + margin
 * (and closed ones past their time), telling persist->forget; returns how
 * many. Called from a maintenance thread, about once a second. */
size_t ksvc_replay_table_expire(struct ksvc_replay_table *t, time_t now);
size_t ksvc_replay_table_count(struct ksvc_replay_table *t);

/* authenticate, then spend: the whole check of a request; on OK *a holds the
 * parsed fields (the session reference for logging). */
enum ksvc_upstream_verdict ksvc_upstream_verify(const uint8_t key[KSVC_UPSTREAM_KEY_LEN],
                                                struct ksvc_replay_table *table, const char *header,
                                                const char *method, const char *path,
                                                const void *body, size_t body_len, time_t now,
                                                struct ksvc_upstream_auth *a);

/* The opaque reference of a session for k_server: base64url of
 * HMAC-SHA256(ref_key, session_id), cut to 22 characters. */
int ksvc_session_ref(const uint8_t ref_key[32], const char *session_id, char out[23]);

#endif
