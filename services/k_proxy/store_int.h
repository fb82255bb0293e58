/* Internal to k_proxy's store (store.c, store_mem.c): the store's layout
 * and its sessions in memory. Not for callers: they see store.h. */
#ifndef KCARD_K_PROXY_STORE_INT_H
#define KCARD_K_PROXY_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "services/common/crypto.h"
#include "services/k_proxy/store.h"

#define STRIPES 64         /* independent locks of the session table */
#define STRIPE_BUCKETS0 16 /* buckets of a stripe at first; doubled when full */

/* One session in memory. Immutable after login but for the counters and
 * the links; freed only by a flush (kpx_store_flush), after it is unlinked
 * and retired, so that the dirty list never points at freed memory. */
struct mem_session {
    struct mem_session *next;       /* hash chain; the retired list once unlinked */
    struct mem_session *dirty_next; /* the dirty list */
    int64_t rowid;                  /* of its row: write-backs skip the id index */
    _Atomic int64_t requests;
    atomic_int dirty; /* on the dirty list, its count not written back */
    atomic_int dead;  /* unlinked: nothing more to write back */
    /* logged out, its row not deleted yet (a full disk): refused from now
     * on, kept linked so that the logout can be sent again */
    atomic_int revoked;
    size_t heap_pos; /* in the expiry heap (heap_lock) */
    int64_t created_at, expires_at;
    uint8_t hash[KSVC_SHA256_LEN];
    char id[KPX_SESSION_ID_LEN + 1];
    char ref[KPX_REF_LEN + 1];
    const char *auth_mode; /* into names, after the username */
    char names[];          /* username NUL auth_mode NUL */
};

struct stripe {
    pthread_rwlock_t lock;
    struct mem_session **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
};

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SESSION_INSERT,
    ST_SESSION_DELETE,
    ST_SESSION_REQUESTS,
    ST_SESSIONS_OF_USER_DELETE,
    ST_USER_ADD,
    ST_USER_GET,
    ST_USER_DELETE,
    ST_USER_LIST,
    ST_USER_SIGN_COUNT,
    ST_USER_EXISTS,
    ST_COUNT,
};

/* A logout whose row delete failed: what the retry needs, copied (the
 * session itself may be swept and freed meanwhile). */
struct pending_revoke {
    int64_t rowid, expires_at;
    char id[KPX_SESSION_ID_LEN + 1];
    uint8_t hash[KSVC_SHA256_LEN]; /* to find it in the table */
};

struct flush_item {
    struct mem_session *x;
    int64_t requests;
};

struct kpx_store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    /* The connection, and every change of the user or session set (so a
     * row and its memory twin change together). Never taken by a lookup
     * or a touch. Order: db_lock, then a stripe, then heap_lock. */
    pthread_mutex_t db_lock;
    uint8_t ref_key[KPX_REF_KEY_LEN];
    /* HMAC(ref_key) set up once: a session reference costs one MAC, not a
     * key schedule and an algorithm fetch (100k of them at a start) */
    pthread_mutex_t ref_lock;
    EVP_MAC *ref_mac;
    EVP_MAC_CTX *ref_ctx;

    struct stripe stripes[STRIPES];

    pthread_mutex_t heap_lock; /* the expiry min-heap on expires_at */
    struct mem_session **heap;
    size_t heap_len, heap_cap;

    /* Lock-free stacks, pushed one by one and taken whole by a flush (so
     * no ABA): sessions whose count changed, and sessions unlinked and
     * waiting to be freed. */
    struct mem_session *_Atomic dirty;
    struct mem_session *_Atomic retired;

    pthread_mutex_t flush_lock; /* one flush at a time; owns the scratch */
    struct flush_item *scratch;
    size_t scratch_cap;

    pthread_mutex_t run_lock; /* the background thread */
    pthread_cond_t run_cond;
    pthread_t thread;
    bool running, stopping;
    int interval_ms;
    char *path;          /* NULL for ":memory:" */
    sqlite3 *checkpoint; /* the thread's own connection: WAL checkpoints
                            without db_lock, off the login path */

    /* Logouts not yet durable, retried by the background thread. Its own
     * lock, never held across SQLite: /healthz reads it without waiting. */
    pthread_mutex_t pending_lock;
    struct pending_revoke *pending;
    size_t npending, pending_cap;
    char pending_error[160]; /* the last failed delete's SQLite message */

    _Atomic int64_t swept, flushes, flush_failures, counts_written, db_failures;
};

/* The session table (store_mem.c). The locks each needs are the caller's:
 * a stripe's for the hash chains, heap_lock for the heap. */
struct stripe *memtab_stripe_of(struct kpx_store *s, const uint8_t hash[KSVC_SHA256_LEN]);
struct mem_session *memtab_find(const struct stripe *st, const uint8_t hash[KSVC_SHA256_LEN]);
bool memtab_unlink(struct kpx_store *s, struct mem_session *x);
void memtab_heap_remove(struct kpx_store *s, struct mem_session *x);
int64_t memtab_count_expired(const struct kpx_store *s, int64_t now);
void memtab_retire(struct kpx_store *s, struct mem_session *x);
void memtab_mark_dirty(struct kpx_store *s, struct mem_session *x);
void memtab_free_list(struct mem_session *x);
void memtab_free(struct mem_session *x);
int memtab_ref_setup(struct kpx_store *s, char *err, size_t errlen);
struct mem_session *memtab_new(struct kpx_store *s, const char *id, const uint8_t *hash,
                               const char *username, const char *auth_mode, int64_t created_at,
                               int64_t expires_at, int64_t requests);
void memtab_session_out(const struct mem_session *x, int64_t requests, struct kpx_session *out);
void memtab_insert(struct kpx_store *s, struct mem_session *x);
void memtab_remove(struct kpx_store *s, struct mem_session *x);
int memtab_make_room(struct kpx_store *s);

#endif
