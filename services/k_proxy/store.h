/* k_proxy's durable state in SQLite: the user registry, the sessions and
 * the key of the opaque session references (services/API.md).
 *
 * Bearer tokens are never stored: a session row keeps SHA-256(token), looked
 * up by that hash and compared again in constant time. Expired and revoked
 * sessions are never returned.
 *
 * One connection (WAL journal, busy_timeout 5 s for other processes)
 * guarded by a mutex: every call is thread-safe and atomic with respect to
 * the others (e.g. 8 threads touching one session count exactly).
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
#define KPX_SESSION_ID_LEN 32 /* hex of 16 random bytes */
#define KPX_REF_KEY_LEN 32

enum kpx_store_rc {
    KPX_STORE_OK = 0,
    KPX_STORE_NOT_FOUND = 1, /* no such user / no live session for that token */
    KPX_STORE_EXISTS = 2,    /* user_add: the username is already registered */
    KPX_STORE_CONFLICT = 3,  /* update_sign_count: the counter did not increase */
    KPX_STORE_INVALID = -1,  /* bad argument (username, token format, ttl, ...) */
    KPX_STORE_ERROR = -2,    /* SQLite failed */
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
};

struct kpx_store;

/* 1 to 64 characters of [A-Za-z0-9._-]. */
bool kpx_username_valid(const char *username);

/* Opens the database at path, creating it (mode 0600) and its folder (0700)
 * when missing; ":memory:" for tests. Creates the schema and the 32-byte
 * random ref_key once. A file from a newer schema, a SQLite file with
 * foreign tables or a corrupt file is refused (NULL, err says why) and
 * left byte-identical. */
struct kpx_store *kpx_store_open(const char *path, char *err, size_t errlen);
void kpx_store_close(struct kpx_store *s);

/* The HMAC key R of the opaque session references (API.md). */
int kpx_store_ref_key(struct kpx_store *s, uint8_t out[KPX_REF_KEY_LEN]);

/* ---- users -------------------------------------------------------------- */

/* Adds u (username checked, auth_mode non-empty). EXISTS when registered. */
int kpx_store_user_add(struct kpx_store *s, const struct kpx_user *u, char *err, size_t errlen);
/* OK with *out filled, or NOT_FOUND. */
int kpx_store_user_get(struct kpx_store *s, const char *username, struct kpx_user *out, char *err,
                       size_t errlen);
/* Removes the user and revokes all its sessions in one transaction;
 * *sessions_revoked (may be NULL) receives how many live ones ended. */
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

/* A new session valid for ttl_s seconds from now: token_out receives the
 * bearer token (43 chars + NUL; only its hash is stored), *out (may be
 * NULL) the session. */
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
/* Ends the live session of a token: OK with *out (may be NULL) as it was,
 * or NOT_FOUND (unknown, expired or already revoked). */
int kpx_store_session_revoke(struct kpx_store *s, const char *token, int64_t now,
                             struct kpx_session *out, char *err, size_t errlen);
/* Deletes expired (expires_at <= now) and revoked sessions; *removed (may
 * be NULL) receives how many. */
int kpx_store_sessions_purge_expired(struct kpx_store *s, int64_t now, int64_t *removed, char *err,
                                     size_t errlen);
/* Live sessions at now (for /metrics). */
int kpx_store_sessions_active(struct kpx_store *s, int64_t now, int64_t *count, char *err,
                              size_t errlen);

#endif
