/* k_proxy's state: the user registry and the reference key in SQLite, and
 * the sessions in memory, backed by SQLite (services/API.md).
 *
 * Bearer tokens are never stored: a session keeps SHA-256(token), found by
 * that hash in a striped hash table and compared again in constant time.
 * Expired and revoked sessions are never returned.
 *
 * Sessions: every session of the database is loaded at open. Login, logout
 * and revocation (user delete) are written through to SQLite before the call
 * returns, so a kill -9 never loses a session or a logout. Per-session
 * request counts live in memory (an atomic per session: lookups and touches
 * take only a read lock of one stripe and never wait on SQLite) and are
 * written back in one transaction by kpx_store_flush, which the background
 * thread (kpx_store_start) runs about once a second and close runs once
 * more: a kill -9 loses at most the last interval's counts. Expiry is a
 * min-heap on expires_at swept in small batches by the same thread.
 *
 * One SQLite connection (WAL, synchronous=NORMAL, busy_timeout 5 s for other
 * processes; statements prepared once) behind a mutex that every change of
 * the user or session set holds: every call is thread-safe and atomic with
 * respect to the others (e.g. 8 threads touching one session count exactly).
 *
 * Return codes: KPX_STORE_OK (0), a positive "expected" answer
 * (NOT_FOUND, EXISTS, CONFLICT) or a negative error (INVALID: bad
 * argument; ERROR: the database failed) with a sentence in err (err may be
 * NULL). */
#ifndef KCARD_K_PROXY_STORE_H
#define KCARD_K_PROXY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "services/k_proxy/card_auth.h"

#define KPX_STORE_SCHEMA_VERSION 1
#define KPX_USERNAME_MAX 64
#define KPX_AUTH_MODE_MAX 32  /* bytes, NUL included */
#define KPX_TOKEN_LEN 43      /* base64url of 32 random bytes, no padding */
#define KPX_TOKEN_BUF 44      /* KPX_TOKEN_LEN + NUL */
#define KPX_SESSION_ID_LEN 32 /* hex of 16 bytes: login ms (6), random (10) */
#define KPX_REF_KEY_LEN 32
#define KPX_REF_LEN 22 /* the opaque session reference sent to k_server */

enum kpx_store_rc {
    KPX_STORE_OK = 0,
    KPX_STORE_NOT_FOUND = 1, /* no such user / no live session for that token */
    KPX_STORE_EXISTS = 2,    /* user_add: the username is already registered */
    KPX_STORE_CONFLICT = 3,  /* update_sign_count: the counter did not increase */
    KPX_STORE_INVALID = -1,  /* bad argument (username, token format, ttl, ...) */
    KPX_STORE_ERROR = -2,    /* SQLite failed */
    /* session_revoke: SQLite failed, and the session is refused from memory
     * anyway; the delete is retried (kpx_store_retry_revocations) */
    KPX_STORE_NOT_DURABLE = -3,
};
const char *kpx_store_rc_name(int rc); /* "ok", "not_found", "exists", ... */

struct kpx_user {
    char username[KPX_USERNAME_MAX + 1];
    int64_t registered_at;             /* unix seconds */
    char auth_mode[KPX_AUTH_MODE_MAX]; /* "card_probe" or "fido2_assertion" */
    struct kpx_cred cred;              /* fido2-direct users; all lengths 0 for probe users */
};

struct kpx_session {
    char id[KPX_SESSION_ID_LEN + 1]; /* random, never derived from the token */
    char username[KPX_USERNAME_MAX + 1];
    char auth_mode[KPX_AUTH_MODE_MAX];
    int64_t created_at, expires_at; /* unix seconds */
    int64_t requests;
    char ref[KPX_REF_LEN + 1]; /* base64url(HMAC(ref_key, id))[0..22), made at login */
};

/* What /healthz and /metrics show, read from memory. */
struct kpx_store_stats {
    int64_t sessions_active;     /* live at now */
    int64_t sessions_swept;      /* expired sessions removed since open */
    int64_t flushes;             /* request-count write-backs that committed */
    int64_t flush_failures;      /* ... that failed (counts kept for the next one) */
    int64_t counts_written;      /* session rows updated by them */
    int64_t db_failures;         /* SQLite statements or transactions that failed */
    int64_t revocations_pending; /* logouts refused in memory, their rows not deleted yet */
    char revocation_error[160];  /* why the last of those deletes failed, "" if none pending */
};

struct kpx_store;

/* 1 to 64 characters of [A-Za-z0-9._-]. */
bool kpx_username_valid(const char *username);

/* Opens the database at path, creating it (mode 0600) and its folder (0700)
 * when missing; ":memory:" for tests. Creates the schema and the 32-byte
 * random ref_key once, and loads every session into memory. An empty file,
 * a file from a newer schema, a SQLite file with foreign tables, a corrupt
 * file or a malformed session row is refused (NULL, err says why) and left
 * byte-identical. No thread is started: see kpx_store_start. */
struct kpx_store *kpx_store_open(const char *path, char *err, size_t errlen);
/* The same, and with init an existing empty file is made a new database
 * (what k_proxy --init asks for); *created (may be NULL) tells whether a
 * new database was made (an absent file, or init). */
struct kpx_store *kpx_store_open_init(const char *path, bool init, bool *created, char *err,
                                      size_t errlen);
/* Stops the background thread, writes the request counts back and closes. */
void kpx_store_close(struct kpx_store *s);

/* Starts the background thread: every interval_ms (<= 0: 1000) it flushes
 * the request counts and sweeps the sessions expired at time(NULL). */
int kpx_store_start(struct kpx_store *s, int interval_ms, char *err, size_t errlen);

/* Writes every request count changed since the last flush in one
 * transaction (one per 4096 sessions when more changed, so that a login
 * never waits long for the write-back). On failure the counts stay pending
 * for the next flush. */
int kpx_store_flush(struct kpx_store *s, char *err, size_t errlen);

/* The HMAC key R of the opaque session references (API.md). */
int kpx_store_ref_key(struct kpx_store *s, uint8_t out[KPX_REF_KEY_LEN]);

/* ---- users -------------------------------------------------------------- */

/* Adds u (username checked, auth_mode non-empty). EXISTS when registered. */
int kpx_store_user_add(struct kpx_store *s, const struct kpx_user *u, char *err, size_t errlen);
/* OK with *out filled, or NOT_FOUND. */
int kpx_store_user_get(struct kpx_store *s, const char *username, struct kpx_user *out, char *err,
                       size_t errlen);
/* Removes the user and all its sessions in one transaction (found through
 * the username index, not a scan), durable before this returns;
 * *sessions_revoked (may be NULL) receives how many ended in memory. */
int kpx_store_user_delete(struct kpx_store *s, const char *username, int64_t *sessions_revoked,
                          char *err, size_t errlen);
/* Calls fn for every user, oldest registration first (then by name); a
 * non-zero return from fn stops the walk and is returned. Called with the
 * store locked: fn must not call into the store. */
typedef int (*kpx_user_fn)(void *ctx, const struct kpx_user *u);
int kpx_store_user_list(struct kpx_store *s, kpx_user_fn fn, void *ctx, char *err, size_t errlen);
/* Stores the counter of the last verified assertion, atomically enforcing
 * the rule (greater, unless both are zero): CONFLICT when it did not
 * increase (another login stored a newer one, or a cloned credential). */
int kpx_store_user_update_sign_count(struct kpx_store *s, const char *username, uint32_t sign_count,
                                     char *err, size_t errlen);

/* ---- sessions ----------------------------------------------------------- */

/* A new session valid for ttl_s seconds from now, written to the database
 * before this returns: token_out receives the bearer token (43 chars + NUL;
 * only its hash is stored), *out (may be NULL) the session and its
 * reference. */
int kpx_store_session_create(struct kpx_store *s, const char *username, const char *auth_mode,
                             int64_t ttl_s, int64_t now, char token_out[KPX_TOKEN_BUF],
                             struct kpx_session *out, char *err, size_t errlen);
/* The live session of a token (not expired at now, not revoked): OK with
 * *out filled, or NOT_FOUND (also for a token that is not 43 base64url
 * characters). */
int kpx_store_session_lookup(struct kpx_store *s, const char *token, int64_t now,
                             struct kpx_session *out, char *err, size_t errlen);
/* Lookup and count one request atomically: out->requests is the new count. */
int kpx_store_session_touch(struct kpx_store *s, const char *token, int64_t now,
                            struct kpx_session *out, char *err, size_t errlen);
/* Ends the live session of a token, its row deleted before this returns:
 * OK with *out (may be NULL) as it was, or NOT_FOUND (unknown, expired or
 * already revoked). When the delete fails (a full disk), the logout fails
 * closed: NOT_DURABLE, the session is refused from now on all the same, and
 * its delete is retried about once a second and by a repeated revoke of the
 * same token (OK once it is written); a restart before that brings the
 * session back. */
int kpx_store_session_revoke(struct kpx_store *s, const char *token, int64_t now,
                             struct kpx_session *out, char *err, size_t errlen);
/* Retries the deletes of NOT_DURABLE logouts (the background thread calls
 * it before each flush); *left (may be NULL) receives how many still wait. */
int kpx_store_retry_revocations(struct kpx_store *s, int64_t *left, char *err, size_t errlen);
/* Removes sessions expired at now (expires_at <= now), earliest first, at
 * most max (<= 0: all) in batches of a few hundred, from memory and from
 * the database; *removed (may be NULL) receives how many. */
int kpx_store_sessions_sweep(struct kpx_store *s, int64_t now, int64_t max, int64_t *removed,
                             char *err, size_t errlen);
/* Live sessions at now (for /healthz and /metrics), from memory: no table
 * scan (the cost grows only with the expired sessions not swept yet). */
int kpx_store_sessions_active(struct kpx_store *s, int64_t now, int64_t *count, char *err,
                              size_t errlen);
/* The figures of struct kpx_store_stats, from memory. */
void kpx_store_stats(struct kpx_store *s, int64_t now, struct kpx_store_stats *out);

#endif
