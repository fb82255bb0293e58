/* How k_proxy proves to k_server that a request comes from it, without the
 * shared token ever crossing the wire: an HMAC over the request under a key
 * derived from the token, with a timestamp and a single-use nonce
 * (services/API.md, "k_server"). */
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
#define KSVC_REPLAY_CAPACITY 65536

enum ksvc_upstream_verdict {
    KSVC_UPSTREAM_OK = 0,
    KSVC_UPSTREAM_UNSIGNED,   /* no KC-HMAC-SHA256 Authorization header */
    KSVC_UPSTREAM_MALFORMED,  /* the header does not parse */
    KSVC_UPSTREAM_BAD_SIG,    /* the signature does not match */
    KSVC_UPSTREAM_STALE,      /* ts outside the allowed skew */
    KSVC_UPSTREAM_REPLAYED,   /* the nonce was seen within the window */
    KSVC_UPSTREAM_CACHE_FULL, /* too many nonces within the window */
};
/* "ok", "unsigned_request", "malformed_signature", "bad_signature",
 * "stale_request", "replayed_request", "replay_cache_full". */
const char *ksvc_upstream_verdict_code(enum ksvc_upstream_verdict v);

struct ksvc_upstream_auth {
    long long ts;
    char nonce[33];
    char ref[KSVC_UPSTREAM_REF_MAX];
    uint8_t sig[32];
};

/* K = HKDF-SHA256(token, "kcard upstream v1", "k_proxy->k_server"). */
int ksvc_upstream_key(const char *token, uint8_t key[KSVC_UPSTREAM_KEY_LEN]);

/* The Authorization header value for one request; 0 or -1. ref is the
 * opaque session reference ([A-Za-z0-9_-], at most 63 characters). */
int ksvc_upstream_sign(const uint8_t key[KSVC_UPSTREAM_KEY_LEN], const char *method,
                       const char *path, const char *ref, const void *body, size_t body_len,
                       time_t now, char *header, size_t cap);

/* Strict parse of "KC-HMAC-SHA256 ts=.., nonce=.., ref=.., sig=..". */
enum ksvc_upstream_verdict ksvc_upstream_parse(const char *header, struct ksvc_upstream_auth *a);

/* Single-use nonces within the skew window; thread-safe. */
struct ksvc_replay_cache;
struct ksvc_replay_cache *ksvc_replay_cache_new(size_t capacity);
void ksvc_replay_cache_free(struct ksvc_replay_cache *c);

/* Checks header against the request; on OK the nonce is spent and *a holds
 * the parsed fields (the session reference for logging). */
enum ksvc_upstream_verdict ksvc_upstream_verify(const uint8_t key[KSVC_UPSTREAM_KEY_LEN],
                                                struct ksvc_replay_cache *cache, const char *header,
                                                const char *method, const char *path,
                                                const void *body, size_t body_len, time_t now,
                                                struct ksvc_upstream_auth *a);

/* The opaque reference of a session for k_server: base64url of
 * HMAC-SHA256(ref_key, session_id), cut to 22 characters. */
int ksvc_session_ref(const uint8_t ref_key[32], const char *session_id, char out[23]);

#endif
