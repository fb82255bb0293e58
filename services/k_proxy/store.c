/* k_proxy's users and reference key in SQLite, and its sessions in memory
 * backed by SQLite (see store.h). */
#include "services/k_proxy/store.h"
#include "services/k_proxy/store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "services/common/crypto.h"
#include "services/common/svc_util.h"
#include "util/b64url.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/rand.h"
#include "util/sqlite_db.h"

#define BUSY_TIMEOUT_MS 5000
#define SWEEP_BATCH 256 /* expired sessions removed per transaction */
#define FLUSH_INTERVAL_MS 1000
#define FLUSH_CHUNK 4096       /* request counts written per transaction, at most */
#define WAL_REWIND_FRAMES 1000 /* SQLite's own autocheckpoint size */

#define USER_COLS                                                                                  \
    "username, registered_at, auth_mode, credential_id, cose_key, alg, sign_count, user_id"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SESSION_INSERT] = "INSERT INTO sessions (id, token_hash, username, auth_mode, created_at, "
                          "expires_at, requests, revoked) VALUES (?1,?2,?3,?4,?5,?6,0,0)",
    [ST_SESSION_DELETE] = "DELETE FROM sessions WHERE rowid = ?3 AND id = ?1",
    [ST_SESSION_REQUESTS] = "UPDATE sessions SET requests = ?2 WHERE rowid = ?3 AND id = ?1",
    [ST_SESSIONS_OF_USER_DELETE] = "DELETE FROM sessions WHERE username = ?1 RETURNING token_hash",
    [ST_USER_ADD] = "INSERT INTO users (" USER_COLS ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
    [ST_USER_GET] = "SELECT " USER_COLS " FROM users WHERE username = ?1",
    [ST_USER_DELETE] = "DELETE FROM users WHERE username = ?1",
    [ST_USER_LIST] = "SELECT " USER_COLS " FROM users ORDER BY registered_at, username",
    [ST_USER_SIGN_COUNT] = "UPDATE users SET sign_count = ?2 WHERE username = ?1 AND "
                           "(?2 > sign_count OR (?2 = 0 AND sign_count = 0))",
    [ST_USER_EXISTS] = "SELECT count(*) FROM users WHERE username = ?1",
};

static int db_fail(struct kpx_store *s, char *err, size_t errlen, const char *what)
{
    kcu_set_err(err, errlen, "%s: %s", what, sqlite3_errmsg(s->db));
    atomic_fetch_add(&s->db_failures, 1);
    return KPX_STORE_ERROR;
}

const char *kpx_store_rc_name(int rc)
{
    switch (rc) {
    case KPX_STORE_OK:
        return "ok";
    case KPX_STORE_NOT_FOUND:
        return "not_found";
    case KPX_STORE_EXISTS:
        return "exists";
    case KPX_STORE_CONFLICT:
        return "conflict";
    case KPX_STORE_INVALID:
        return "invalid";
    case KPX_STORE_ERROR:
        return "error";
    case KPX_STORE_NOT_DURABLE:
        return "not_durable";
    }
    return "unknown";
}

bool kpx_username_valid(const char *username)
{
    size_t n;

    if (username == NULL)
        return false;
    n = strnlen(username, KPX_USERNAME_MAX + 1);
    if (n == 0 || n > KPX_USERNAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = username[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool auth_mode_valid(const char *mode)
{
    size_t n;

    if (mode == NULL)
        return false;
    n = strnlen(mode, KPX_AUTH_MODE_MAX);
    return n > 0 && n < KPX_AUTH_MODE_MAX;
}

/* A bearer token as this store issues them: 43 base64url characters. */
static bool token_well_formed(const char *token)
{
    if (token == NULL || strnlen(token, KPX_TOKEN_BUF) != KPX_TOKEN_LEN)
        return false;
    for (size_t i = 0; i < KPX_TOKEN_LEN; i++) {
        char c = token[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int token_hash(const char *token, uint8_t out[KSVC_SHA256_LEN])
{
    return ksvc_sha256(token, KPX_TOKEN_LEN, out) == 0 ? KPX_STORE_OK : KPX_STORE_ERROR;
}

static bool session_id_valid(const char *id, size_t len)
{
    if (len != KPX_SESSION_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

/* ---- opening ------------------------------------------------------------ */

/* kcu_db_spec.migrate: the tables and a new reference key in a new file
 * (from is 0: version 1 is the only schema so far). */
static int create_schema(sqlite3 *db, int from, void *arg, char *err, size_t errlen)
{
    uint8_t key[KPX_REF_KEY_LEN];
    sqlite3_stmt *st = NULL;
    int ok;

    (void)from;
    (void)arg;

    if (kcu_db_exec(db,
                    "BEGIN IMMEDIATE;"
                    "CREATE TABLE users ("
                    " username TEXT PRIMARY KEY NOT NULL,"
                    " registered_at INTEGER NOT NULL,"
                    " auth_mode TEXT NOT NULL,"
                    " credential_id BLOB,"
                    " cose_key BLOB,"
                    " alg INTEGER NOT NULL DEFAULT 0,"
                    " sign_count INTEGER NOT NULL DEFAULT 0,"
                    " user_id BLOB);"
                    "CREATE TABLE sessions ("
                    " id TEXT PRIMARY KEY NOT NULL,"
                    " token_hash BLOB NOT NULL UNIQUE,"
                    " username TEXT NOT NULL,"
                    " auth_mode TEXT NOT NULL,"
                    " created_at INTEGER NOT NULL,"
                    " expires_at INTEGER NOT NULL,"
                    " requests INTEGER NOT NULL DEFAULT 0,"
                    " revoked INTEGER NOT NULL DEFAULT 0);"
                    "CREATE INDEX sessions_by_username ON sessions(username);"
                    "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL);",
                    err, errlen) != 0)
        return -1;
    ok = kcu_random(key, sizeof(key)) == 0 &&
         sqlite3_prepare_v2(db, "INSERT INTO meta (key, value) VALUES ('ref_key', ?1)", -1, &st,
                            NULL) == SQLITE_OK &&
         sqlite3_bind_blob(st, 1, key, sizeof(key), SQLITE_TRANSIENT) == SQLITE_OK &&
         sqlite3_step(st) == SQLITE_DONE;
    OPENSSL_cleanse(key, sizeof(key));
    if (!ok)
        kcu_set_err(err, errlen, "cannot create the reference key: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (!ok || kcu_db_exec(db, "PRAGMA user_version = 1; COMMIT;", err, errlen) != 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static int load_ref_key(struct kpx_store *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'ref_key'", -1, &st,
                                NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_BLOB &&
             sqlite3_column_bytes(st, 0) == KPX_REF_KEY_LEN;

    if (ok)
        memcpy(s->ref_key, sqlite3_column_blob(st, 0), KPX_REF_KEY_LEN);
    else
        kcu_set_err(err, errlen, "the reference key is missing or not %d bytes", KPX_REF_KEY_LEN);
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

/* ---- prepared statements ------------------------------------------------ */

/* Makes a used statement ready for its next use. */
static void stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs BEGIN/COMMIT/ROLLBACK (db_lock held); 0 or -1. */
static int tx(struct kpx_store *s, enum stmt_id id)
{
    int rc = sqlite3_step(s->st[id]) == SQLITE_DONE ? 0 : -1;

    sqlite3_reset(s->st[id]);
    return rc;
}

static int prepare_all(struct kpx_store *s, char *err, size_t errlen)
{
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                               NULL) != SQLITE_OK) {
            kcu_set_err(err, errlen, "cannot prepare a statement: %s", sqlite3_errmsg(s->db));
            return -1;
        }
    }
    return 0;
}

/* Loads every session row (read-only; a malformed row refuses the file),
 * then deletes the rows of sessions revoked by an older k_proxy. */
static int load_sessions(struct kpx_store *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int64_t row = 0, revoked = 0;
    int rc = -1, step;

    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, token_hash, username, auth_mode, created_at, expires_at, "
                           "requests, revoked, rowid FROM sessions",
                           -1, &st, NULL) != SQLITE_OK) {
        kcu_set_err(err, errlen, "cannot read the sessions: %s", sqlite3_errmsg(s->db));
        return -1;
    }
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        size_t id_len = (size_t)sqlite3_column_bytes(st, 0);
        const char *user = (const char *)sqlite3_column_text(st, 2);
        const char *mode = (const char *)sqlite3_column_text(st, 3);
        struct mem_session *x;

        row++;
        if (sqlite3_column_type(st, 7) != SQLITE_INTEGER) {
            kcu_set_err(err, errlen, "session row %lld is malformed (revoked)", (long long)row);
            goto out;
        }
        if (sqlite3_column_int64(st, 7) != 0) {
            revoked++;
            continue;
        }
        if (id == NULL || !session_id_valid(id, id_len) ||
            sqlite3_column_type(st, 1) != SQLITE_BLOB ||
            sqlite3_column_bytes(st, 1) != KSVC_SHA256_LEN || !kpx_username_valid(user) ||
            strlen(user) != (size_t)sqlite3_column_bytes(st, 2) || !auth_mode_valid(mode) ||
            strlen(mode) != (size_t)sqlite3_column_bytes(st, 3) ||
            sqlite3_column_type(st, 4) != SQLITE_INTEGER ||
            sqlite3_column_type(st, 5) != SQLITE_INTEGER ||
            sqlite3_column_type(st, 6) != SQLITE_INTEGER || sqlite3_column_int64(st, 6) < 0) {
            kcu_set_err(err, errlen,
                        "session row %lld is malformed (id, token hash, username, auth mode, times "
                        "or request count)",
                        (long long)row);
            goto out;
        }
        x = memtab_new(s, id, sqlite3_column_blob(st, 1), user, mode, sqlite3_column_int64(st, 4),
                       sqlite3_column_int64(st, 5), sqlite3_column_int64(st, 6));
        if (x != NULL)
            x->rowid = sqlite3_column_int64(st, 8);
        if (x == NULL || memtab_make_room(s) != 0) {
            free(x);
            kcu_set_err(err, errlen, "out of memory loading %lld sessions", (long long)row);
            goto out;
        }
        {
            struct stripe *sp = memtab_stripe_of(s, x->hash);
            pthread_rwlock_rdlock(&sp->lock);
            bool dup = memtab_find(sp, x->hash) != NULL;
            pthread_rwlock_unlock(&sp->lock);
            if (dup) { /* the UNIQUE constraint forbids it; a file edited behind our back */
                free(x);
                kcu_set_err(err, errlen, "session row %lld repeats a token hash", (long long)row);
                goto out;
            }
        }
        memtab_insert(s, x);
    }
    if (step != SQLITE_DONE) {
        kcu_set_err(err, errlen, "cannot read the sessions: %s", sqlite3_errmsg(s->db));
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    if (rc == 0 && revoked > 0 &&
        kcu_db_exec(s->db, "DELETE FROM sessions WHERE revoked != 0", err, errlen) != 0)
        rc = -1;
    return rc;
}

/* ---- opening, the background thread, closing ---------------------------- */

static int init_locks(struct kpx_store *s)
{
    pthread_rwlockattr_t ra;
    pthread_condattr_t ca;

    pthread_mutex_init(&s->db_lock, NULL);
    pthread_mutex_init(&s->ref_lock, NULL);
    pthread_mutex_init(&s->heap_lock, NULL);
    pthread_mutex_init(&s->flush_lock, NULL);
    pthread_mutex_init(&s->run_lock, NULL);
    pthread_mutex_init(&s->pending_lock, NULL);
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&s->run_cond, &ca) != 0)
        return -1;
    pthread_condattr_destroy(&ca);
    if (pthread_rwlockattr_init(&ra) != 0)
        return -1;
    /* logins must not starve behind a stream of lookups on their stripe */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    for (int i = 0; i < STRIPES; i++) {
        struct stripe *st = &s->stripes[i];
        if (pthread_rwlock_init(&st->lock, &ra) != 0 ||
            (st->buckets = calloc(STRIPE_BUCKETS0, sizeof(*st->buckets))) == NULL) {
            pthread_rwlockattr_destroy(&ra);
            return -1;
        }
        st->nbuckets = STRIPE_BUCKETS0;
    }
    pthread_rwlockattr_destroy(&ra);
    return 0;
}

struct kpx_store *kpx_store_open(const char *path, char *err, size_t errlen)
{
    return kpx_store_open_init(path, false, NULL, err, errlen);
}

struct kpx_store *kpx_store_open_init(const char *path, bool init, bool *created, char *err,
                                      size_t errlen)
{
    /* Read-only checks first (a corrupt file, a newer schema or someone
     * else's database is refused untouched), then WAL with
     * synchronous=NORMAL: every commit (a login, a logout) survives a crash
     * of k_proxy; only a power loss can drop the last moments. A login
     * writes into three indexes keyed by random values: with 100k sessions
     * they span tens of MiB, so the page cache is 32 MiB instead of SQLite's
     * 2 MiB, or most logins would read their index pages anew. */
    struct kcu_db_spec spec = {
        .owner = "k_proxy",
        .schema_version = KPX_STORE_SCHEMA_VERSION,
        .quick_check = true,
        .busy_timeout_ms = BUSY_TIMEOUT_MS,
        .empty_refusal = "not a k_proxy database: the file is empty (remove it, or start with "
                         "--init, to make a new one)",
        .after_check_sql =
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-32768;",
        .make_dirs = ksvc_make_parent_dirs,
        .migrate = create_schema,
    };
    struct kpx_store *s;
    char why[512];
    bool memory;
    int version = 0;

    if (created != NULL)
        *created = false;
    if (path == NULL || path[0] == '\0') {
        kcu_set_err(err, errlen, "no state database path given");
        return NULL;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        kcu_set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (init_locks(s) != 0) {
        kcu_set_err(err, errlen, "out of memory");
        goto fail;
    }
    memory = strcmp(path, ":memory:") == 0;
    if (!memory && (s->path = strdup(path)) == NULL) {
        kcu_set_err(err, errlen, "out of memory");
        goto fail;
    }
    spec.init = init;
    if ((s->db = kcu_db_open(path, &spec, &version, err, errlen)) == NULL)
        goto fail;
    if (load_ref_key(s, why, sizeof(why)) != 0 || memtab_ref_setup(s, why, sizeof(why)) != 0 ||
        load_sessions(s, why, sizeof(why)) != 0 || prepare_all(s, why, sizeof(why)) != 0) {
        kcu_set_err(err, errlen, "%s: %s", path, why);
        goto fail;
    }
    if (created != NULL)
        *created = version == 0 && !memory;
    return s;
fail:
    kpx_store_close(s);
    return NULL;
}

/* Copies the log into the database without waiting for anyone. Under
 * steady writes that is not enough: the log is rewound only by a writer
 * that starts when every frame is copied, and with a login every few
 * milliseconds there is always a newer frame, so it would grow without end
 * (and every read search a longer index). So when it holds more than
 * WAL_REWIND_FRAMES, a second checkpoint waits for the writers (at most the
 * busy timeout; the first one left little to copy) and empties it. */
static void checkpoint(sqlite3 *db)
{
    int frames = 0, copied = 0;
    if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied) ==
            SQLITE_OK &&
        frames > WAL_REWIND_FRAMES)
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

static void *background(void *arg)
{
    pthread_setname_np(pthread_self(), "store-flush"); /* top -H, ps -L */
    struct kpx_store *s = arg;

    pthread_mutex_lock(&s->run_lock);
    while (!s->stopping) {
        struct timespec until;
        kcu_deadline(CLOCK_MONOTONIC, (uint64_t)s->interval_ms, &until);
        while (!s->stopping &&
               pthread_cond_timedwait(&s->run_cond, &s->run_lock, &until) != ETIMEDOUT)
            ;
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->run_lock);
        kpx_store_retry_revocations(s, NULL, NULL, 0);
        kpx_store_flush(s, NULL, 0);
        kpx_store_sessions_sweep(s, (int64_t)time(NULL), 0, NULL, NULL, 0);
        if (s->checkpoint != NULL)
            checkpoint(s->checkpoint);
        pthread_mutex_lock(&s->run_lock);
    }
    pthread_mutex_unlock(&s->run_lock);
    return NULL;
}

/* A connection reads nothing before its first statement: until then it does
 * not know the database is in WAL mode, and a checkpoint through it does
 * nothing at all (the log would grow without end). True once it does. */
static bool wal_opened(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    bool wal = sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
               sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL &&
               strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    return wal;
}

int kpx_store_start(struct kpx_store *s, int interval_ms, char *err, size_t errlen)
{
    int rc;

    if (s == NULL)
        return KPX_STORE_INVALID;
    pthread_mutex_lock(&s->run_lock);
    if (s->running) {
        pthread_mutex_unlock(&s->run_lock);
        kcu_set_err(err, errlen, "the store's background thread runs already");
        return KPX_STORE_INVALID;
    }
    s->interval_ms = interval_ms > 0 ? interval_ms : FLUSH_INTERVAL_MS;
    s->stopping = false;
    /* Checkpoints move from the commits (where they copy and sync pages
     * under db_lock, more of them the bigger the table) to the thread. */
    if (s->path != NULL && s->checkpoint == NULL) {
        if (sqlite3_open_v2(s->path, &s->checkpoint, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
            wal_opened(s->checkpoint)) {
            sqlite3_busy_timeout(s->checkpoint, BUSY_TIMEOUT_MS);
            pthread_mutex_lock(&s->db_lock);
            sqlite3_wal_autocheckpoint(s->db, 0);
            pthread_mutex_unlock(&s->db_lock);
        } else {
            sqlite3_close(s->checkpoint); /* commits keep checkpointing */
            s->checkpoint = NULL;
        }
    }
    rc = pthread_create(&s->thread, NULL, background, s);
    s->running = rc == 0;
    if (rc != 0 && s->checkpoint != NULL) {
        pthread_mutex_lock(&s->db_lock);
        sqlite3_wal_autocheckpoint(s->db, 1000 /* SQLite's default */);
        pthread_mutex_unlock(&s->db_lock);
        sqlite3_close(s->checkpoint);
        s->checkpoint = NULL;
    }
    pthread_mutex_unlock(&s->run_lock);
    if (rc != 0) {
        kcu_set_err(err, errlen, "cannot start the store's background thread: %s", strerror(rc));
        return KPX_STORE_ERROR;
    }
    return KPX_STORE_OK;
}

static void stop_background(struct kpx_store *s)
{
    bool running;

    pthread_mutex_lock(&s->run_lock);
    running = s->running;
    s->stopping = true;
    pthread_cond_broadcast(&s->run_cond);
    pthread_mutex_unlock(&s->run_lock);
    if (running)
        pthread_join(s->thread, NULL);
    s->running = false;
    sqlite3_close(s->checkpoint); /* the main connection's close checkpoints */
    s->checkpoint = NULL;
}

int kpx_store_flush(struct kpx_store *s, char *err, size_t errlen)
{
    struct mem_session *dirty, *retired, *x, *next;
    size_t n = 0;
    int rc = KPX_STORE_OK;

    if (s == NULL)
        return KPX_STORE_INVALID;
    pthread_mutex_lock(&s->flush_lock);
    /* Retired first: a session in this retired batch was pushed dirty only
     * before it was unlinked, so into this dirty batch or an earlier one,
     * never a later one; freeing the batch below is then safe. */
    retired = atomic_exchange(&s->retired, NULL);
    dirty = atomic_exchange(&s->dirty, NULL);

    /* Clear each flag before reading its count: a touch after the clear
     * queues the session again, one before it is in the count read. */
    for (x = dirty; x != NULL; x = next) {
        next = x->dirty_next;
        atomic_store(&x->dirty, 0);
        if (atomic_load(&x->dead))
            continue;
        if (n == s->scratch_cap) {
            size_t cap = s->scratch_cap > 0 ? s->scratch_cap * 2 : 256;
            struct flush_item *p = realloc(s->scratch, cap * sizeof(*p));
            if (p == NULL) {
                memtab_mark_dirty(s, x); /* the next flush */
                continue;
            }
            s->scratch = p;
            s->scratch_cap = cap;
        }
        s->scratch[n].x = x;
        s->scratch[n].requests = atomic_load(&x->requests);
        n++;
    }
    /* One transaction, or one per FLUSH_CHUNK sessions when more changed:
     * db_lock is let go between them, so a login waits for one at most. */
    for (size_t from = 0; from < n; from += FLUSH_CHUNK) {
        size_t to = n - from > FLUSH_CHUNK ? from + FLUSH_CHUNK : n;
        sqlite3_stmt *st = s->st[ST_SESSION_REQUESTS];
        bool ok;
        pthread_mutex_lock(&s->db_lock);
        ok = tx(s, ST_BEGIN) == 0;
        for (size_t i = from; ok && i < to; i++) {
            ok = sqlite3_bind_text(st, 1, s->scratch[i].x->id, -1, SQLITE_STATIC) == SQLITE_OK &&
                 sqlite3_bind_int64(st, 2, s->scratch[i].requests) == SQLITE_OK &&
                 sqlite3_bind_int64(st, 3, s->scratch[i].x->rowid) == SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_DONE;
            stmt_done(st);
        }
        if (ok)
            ok = tx(s, ST_COMMIT) == 0;
        if (!ok) {
            rc = db_fail(s, err, errlen, "request count write-back");
            tx(s, ST_ROLLBACK);
        }
        pthread_mutex_unlock(&s->db_lock);
        if (ok) {
            atomic_fetch_add(&s->flushes, 1);
            atomic_fetch_add(&s->counts_written, (int64_t)(to - from));
        } else {
            atomic_fetch_add(&s->flush_failures, 1);
            for (size_t i = from; i < to; i++) /* kept for the next flush */
                if (!atomic_load(&s->scratch[i].x->dead))
                    memtab_mark_dirty(s, s->scratch[i].x);
        }
    }
    /* Retired before the lists were taken: no later dirty entry names them. */
    memtab_free_list(retired);
    pthread_mutex_unlock(&s->flush_lock);
    return rc;
}

void kpx_store_close(struct kpx_store *s)
{
    if (s == NULL)
        return;
    stop_background(s);
    if (s->st[ST_COUNT - 1] != NULL)
        kpx_store_flush(s, NULL, 0);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    for (int i = 0; i < STRIPES; i++) {
        struct stripe *st = &s->stripes[i];
        for (size_t b = 0; b < st->nbuckets; b++)
            memtab_free_list(st->buckets[b]);
        free(st->buckets);
        pthread_rwlock_destroy(&st->lock);
    }
    memtab_free_list(atomic_load(&s->retired));
    free(s->heap);
    free(s->scratch);
    OPENSSL_cleanse(s->ref_key, sizeof(s->ref_key));
    EVP_MAC_CTX_free(s->ref_ctx);
    EVP_MAC_free(s->ref_mac);
    free(s->path);
    pthread_mutex_destroy(&s->db_lock);
    pthread_mutex_destroy(&s->ref_lock);
    pthread_mutex_destroy(&s->heap_lock);
    pthread_mutex_destroy(&s->flush_lock);
    pthread_mutex_destroy(&s->run_lock);
    pthread_mutex_destroy(&s->pending_lock);
    if (s->pending != NULL)
        OPENSSL_cleanse(s->pending, s->pending_cap * sizeof(*s->pending));
    free(s->pending);
    pthread_cond_destroy(&s->run_cond);
    free(s);
}

int kpx_store_ref_key(struct kpx_store *s, uint8_t out[KPX_REF_KEY_LEN])
{
    if (s == NULL || out == NULL)
        return KPX_STORE_INVALID;
    memcpy(out, s->ref_key, KPX_REF_KEY_LEN);
    return KPX_STORE_OK;
}

/* ---- rows --------------------------------------------------------------- */

static int copy_text(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);

    if (t == NULL || n < 0 || (size_t)n >= cap)
        return -1;
    memcpy(out, t, (size_t)n);
    out[n] = '\0';
    return 0;
}

/* A BLOB (or NULL: empty) of at most cap bytes. */
static int copy_blob(sqlite3_stmt *st, int col, uint8_t *out, size_t cap, size_t *len)
{
    int type = sqlite3_column_type(st, col);
    int n;

    *len = 0;
    if (type == SQLITE_NULL)
        return 0;
    if (type != SQLITE_BLOB)
        return -1;
    n = sqlite3_column_bytes(st, col);
    if (n < 0 || (size_t)n > cap)
        return -1;
    if (n > 0)
        memcpy(out, sqlite3_column_blob(st, col), (size_t)n);
    *len = (size_t)n;
    return 0;
}

static int read_user(sqlite3_stmt *st, struct kpx_user *u)
{
    int64_t count;

    memset(u, 0, sizeof(*u));
    if (copy_text(st, 0, u->username, sizeof(u->username)) != 0 ||
        copy_text(st, 2, u->auth_mode, sizeof(u->auth_mode)) != 0 ||
        copy_blob(st, 3, u->cred.cred_id, sizeof(u->cred.cred_id), &u->cred.cred_id_len) != 0 ||
        copy_blob(st, 4, u->cred.cose_key, sizeof(u->cred.cose_key), &u->cred.cose_key_len) != 0 ||
        copy_blob(st, 7, u->cred.user_id, sizeof(u->cred.user_id), &u->cred.user_id_len) != 0)
        return -1;
    u->registered_at = sqlite3_column_int64(st, 1);
    u->cred.alg = sqlite3_column_int(st, 5);
    count = sqlite3_column_int64(st, 6);
    if (count < 0 || count > UINT32_MAX)
        return -1;
    u->cred.sign_count = (uint32_t)count;
    return 0;
}

/* ---- users -------------------------------------------------------------- */

static int bind_blob_or_null(sqlite3_stmt *st, int idx, const uint8_t *p, size_t len)
{
    if (len == 0)
        return sqlite3_bind_null(st, idx);
    return sqlite3_bind_blob(st, idx, p, (int)len, SQLITE_TRANSIENT);
}

int kpx_store_user_add(struct kpx_store *s, const struct kpx_user *u, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc;

    if (s == NULL || u == NULL)
        return KPX_STORE_INVALID;
    if (!kpx_username_valid(u->username)) {
        kcu_set_err(err, errlen, "username must be 1 to 64 characters of [A-Za-z0-9._-]");
        return KPX_STORE_INVALID;
    }
    if (!auth_mode_valid(u->auth_mode) || u->cred.cred_id_len > sizeof(u->cred.cred_id) ||
        u->cred.cose_key_len > sizeof(u->cred.cose_key) ||
        u->cred.user_id_len > sizeof(u->cred.user_id)) {
        kcu_set_err(err, errlen, "user record out of bounds (auth mode or credential lengths)");
        return KPX_STORE_INVALID;
    }
    pthread_mutex_lock(&s->db_lock);
    st = s->st[ST_USER_ADD];
    if (sqlite3_bind_text(st, 1, u->username, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, u->registered_at) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, u->auth_mode, -1, SQLITE_STATIC) != SQLITE_OK ||
        bind_blob_or_null(st, 4, u->cred.cred_id, u->cred.cred_id_len) != SQLITE_OK ||
        bind_blob_or_null(st, 5, u->cred.cose_key, u->cred.cose_key_len) != SQLITE_OK ||
        sqlite3_bind_int(st, 6, u->cred.alg) != SQLITE_OK ||
        sqlite3_bind_int64(st, 7, u->cred.sign_count) != SQLITE_OK ||
        bind_blob_or_null(st, 8, u->cred.user_id, u->cred.user_id_len) != SQLITE_OK) {
        rc = db_fail(s, err, errlen, "user add");
        goto out;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = KPX_STORE_OK;
    } else if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
        kcu_set_err(err, errlen, "user %s is already registered", u->username);
        rc = KPX_STORE_EXISTS;
    } else {
        rc = db_fail(s, err, errlen, "user add");
    }
out:
    stmt_done(st);
    pthread_mutex_unlock(&s->db_lock);
    return rc;
}

int kpx_store_user_get(struct kpx_store *s, const char *username, struct kpx_user *out, char *err,
                       size_t errlen)
{
    sqlite3_stmt *st;
    int rc;

    if (s == NULL || out == NULL || !kpx_username_valid(username)) {
        kcu_set_err(err, errlen, "invalid username");
        return KPX_STORE_INVALID;
    }
    pthread_mutex_lock(&s->db_lock);
    st = s->st[ST_USER_GET];
    if (sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = db_fail(s, err, errlen, "user get");
        goto out;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = read_user(st, out) == 0 ? KPX_STORE_OK : KPX_STORE_ERROR;
        if (rc != KPX_STORE_OK)
            kcu_set_err(err, errlen, "the stored record of user %s is malformed", username);
    } else if (rc == SQLITE_DONE) {
        kcu_set_err(err, errlen, "user %s is not registered", username);
        rc = KPX_STORE_NOT_FOUND;
    } else {
        rc = db_fail(s, err, errlen, "user get");
    }
out:
    stmt_done(st);
    pthread_mutex_unlock(&s->db_lock);
    return rc;
}

/* Removes from memory the session of a token hash (db_lock held); true
 * when there was one. */
static void pending_drop(struct kpx_store *s, const char *id);

static bool remove_by_hash(struct kpx_store *s, const uint8_t hash[KSVC_SHA256_LEN])
{
    struct stripe *sp = memtab_stripe_of(s, hash);
    struct mem_session *x;

    pthread_rwlock_rdlock(&sp->lock);
    x = memtab_find(sp, hash);
    pthread_rwlock_unlock(&sp->lock);
    if (x == NULL) /* only db_lock holders unlink: x stays valid */
        return false;
    if (atomic_load(&x->revoked)) /* its row is gone with the user's: nothing to retry */
        pending_drop(s, x->id);
    memtab_remove(s, x);
    return true;
}

struct hash_list {
    uint8_t (*h)[KSVC_SHA256_LEN];
    size_t n, cap;
};

static int hash_list_add(struct hash_list *l, const void *hash)
{
    if (l->n == l->cap) {
        size_t cap = l->cap > 0 ? l->cap * 2 : 16;
        void *p = realloc(l->h, cap * sizeof(*l->h));
        if (p == NULL)
            return -1;
        l->h = p;
        l->cap = cap;
    }
    memcpy(l->h[l->n++], hash, KSVC_SHA256_LEN);
    return 0;
}

int kpx_store_user_delete(struct kpx_store *s, const char *username, int64_t *sessions_revoked,
                          char *err, size_t errlen)
{
    struct hash_list ended = {0};
    sqlite3_stmt *st;
    int64_t users = 0, revoked = 0;
    int rc = KPX_STORE_ERROR, step;
    bool ok;

    if (sessions_revoked != NULL)
        *sessions_revoked = 0;
    if (s == NULL || !kpx_username_valid(username)) {
        kcu_set_err(err, errlen, "invalid username");
        return KPX_STORE_INVALID;
    }
    pthread_mutex_lock(&s->db_lock);
    if (tx(s, ST_BEGIN) != 0) {
        rc = db_fail(s, err, errlen, "user delete");
        goto out;
    }
    st = s->st[ST_USER_DELETE];
    ok = sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC) == SQLITE_OK &&
         sqlite3_step(st) == SQLITE_DONE;
    stmt_done(st);
    if (ok)
        users = sqlite3_changes(s->db);
    if (ok && users > 0) {
        /* the username index finds the user's rows; their hashes find the
         * sessions in memory: nothing here grows with the table */
        st = s->st[ST_SESSIONS_OF_USER_DELETE];
        ok = sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC) == SQLITE_OK;
        while (ok && (step = sqlite3_step(st)) == SQLITE_ROW) {
            if (sqlite3_column_type(st, 0) == SQLITE_BLOB &&
                sqlite3_column_bytes(st, 0) == KSVC_SHA256_LEN &&
                hash_list_add(&ended, sqlite3_column_blob(st, 0)) != 0)
                ok = false;
        }
        if (ok && step != SQLITE_DONE)
            ok = false;
        stmt_done(st);
    }
    if (!ok || tx(s, ST_COMMIT) != 0) {
        rc = db_fail(s, err, errlen, "user delete");
        tx(s, ST_ROLLBACK);
        goto out;
    }
    for (size_t i = 0; i < ended.n; i++)
        if (remove_by_hash(s, ended.h[i]))
            revoked++;
    if (users == 0) {
        kcu_set_err(err, errlen, "user %s is not registered", username);
        rc = KPX_STORE_NOT_FOUND;
    } else {
        rc = KPX_STORE_OK;
        if (sessions_revoked != NULL)
            *sessions_revoked = revoked;
    }
out:
    pthread_mutex_unlock(&s->db_lock);
    if (ended.h != NULL)
        OPENSSL_cleanse(ended.h, ended.cap * sizeof(*ended.h));
    free(ended.h);
    return rc;
}

int kpx_store_user_list(struct kpx_store *s, kpx_user_fn fn, void *ctx, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    struct kpx_user *u;
    int rc;

    if (s == NULL || fn == NULL)
        return KPX_STORE_INVALID;
    if ((u = malloc(sizeof(*u))) == NULL) {
        kcu_set_err(err, errlen, "out of memory");
        return KPX_STORE_ERROR;
    }
    pthread_mutex_lock(&s->db_lock);
    st = s->st[ST_USER_LIST];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (read_user(st, u) != 0) {
            kcu_set_err(err, errlen, "a stored user record is malformed");
            rc = KPX_STORE_ERROR;
            goto out;
        }
        if ((rc = fn(ctx, u)) != 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? KPX_STORE_OK : db_fail(s, err, errlen, "user list");
out:
    stmt_done(st);
    pthread_mutex_unlock(&s->db_lock);
    free(u);
    return rc;
}

int kpx_store_user_update_sign_count(struct kpx_store *s, const char *username, uint32_t sign_count,
                                     char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int64_t exists = 0;
    int rc;
    bool ok;

    if (s == NULL || !kpx_username_valid(username)) {
        kcu_set_err(err, errlen, "invalid username");
        return KPX_STORE_INVALID;
    }
    pthread_mutex_lock(&s->db_lock);
    st = s->st[ST_USER_SIGN_COUNT];
    ok = sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC) == SQLITE_OK &&
         sqlite3_bind_int64(st, 2, sign_count) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE;
    stmt_done(st);
    if (!ok) {
        rc = db_fail(s, err, errlen, "sign count update");
        goto out;
    }
    if (sqlite3_changes(s->db) == 1) {
        rc = KPX_STORE_OK;
        goto out;
    }
    st = s->st[ST_USER_EXISTS];
    ok = sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC) == SQLITE_OK &&
         sqlite3_step(st) == SQLITE_ROW;
    if (ok)
        exists = sqlite3_column_int64(st, 0);
    stmt_done(st);
    if (!ok) {
        rc = db_fail(s, err, errlen, "sign count update");
    } else if (exists == 0) {
        kcu_set_err(err, errlen, "user %s is not registered", username);
        rc = KPX_STORE_NOT_FOUND;
    } else {
        kcu_set_err(err, errlen, "signCount %u did not increase: possible cloned credential",
                    sign_count);
        rc = KPX_STORE_CONFLICT;
    }
out:
    pthread_mutex_unlock(&s->db_lock);
    return rc;
}

/* ---- sessions ----------------------------------------------------------- */

/* Time-ordered ids: the first 6 bytes of a session id are the login's
 * milliseconds (big-endian), the other 10 stay random, so that new rows
 * append to the id index instead of landing on random pages of it. */
static void session_id_prefix(uint8_t id[KPX_SESSION_ID_LEN / 2])
{
    struct timespec ts;
    uint64_t ms;

    clock_gettime(CLOCK_REALTIME, &ts);
    ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    for (int i = 5; i >= 0; i--) {
        id[i] = (uint8_t)ms;
        ms >>= 8;
    }
}

int kpx_store_session_create(struct kpx_store *s, const char *username, const char *auth_mode,
                             int64_t ttl_s, int64_t now, char token_out[KPX_TOKEN_BUF],
                             struct kpx_session *out, char *err, size_t errlen)
{
    uint8_t raw[32], hash[KSVC_SHA256_LEN], idraw[KPX_SESSION_ID_LEN / 2];
    char token[KPX_TOKEN_BUF], id[KPX_SESSION_ID_LEN + 1];
    struct mem_session *x;
    sqlite3_stmt *st;
    int rc;
    bool ok;

    if (token_out != NULL)
        token_out[0] = '\0';
    if (s == NULL || token_out == NULL || !kpx_username_valid(username) ||
        !auth_mode_valid(auth_mode) || ttl_s <= 0 || now < 0 || now > INT64_MAX - ttl_s) {
        kcu_set_err(err, errlen, "invalid session parameters (username, auth mode or ttl)");
        return KPX_STORE_INVALID;
    }
    if (kcu_random(raw, sizeof(raw)) != 0 || kcu_random(idraw, sizeof(idraw)) != 0 ||
        kcu_b64url_encode(raw, sizeof(raw), token, sizeof(token)) != KPX_TOKEN_LEN ||
        token_hash(token, hash) != KPX_STORE_OK) {
        OPENSSL_cleanse(raw, sizeof(raw));
        OPENSSL_cleanse(token, sizeof(token));
        kcu_set_err(err, errlen, "cannot make a session token (random or hash failed)");
        return KPX_STORE_ERROR;
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    session_id_prefix(idraw);
    kcu_hex_encode(idraw, sizeof(idraw), id);
    x = memtab_new(s, id, hash, username, auth_mode, now, now + ttl_s, 0);
    OPENSSL_cleanse(hash, sizeof(hash));
    if (x == NULL) {
        OPENSSL_cleanse(token, sizeof(token));
        kcu_set_err(err, errlen, "out of memory (or the session reference failed)");
        return KPX_STORE_ERROR;
    }

    pthread_mutex_lock(&s->db_lock);
    if (memtab_make_room(s) != 0) {
        kcu_set_err(err, errlen, "out of memory");
        rc = KPX_STORE_ERROR;
        goto out;
    }
    st = s->st[ST_SESSION_INSERT];
    ok = sqlite3_bind_text(st, 1, x->id, -1, SQLITE_STATIC) == SQLITE_OK &&
         sqlite3_bind_blob(st, 2, x->hash, KSVC_SHA256_LEN, SQLITE_STATIC) == SQLITE_OK &&
         sqlite3_bind_text(st, 3, username, -1, SQLITE_STATIC) == SQLITE_OK &&
         sqlite3_bind_text(st, 4, auth_mode, -1, SQLITE_STATIC) == SQLITE_OK &&
         sqlite3_bind_int64(st, 5, now) == SQLITE_OK &&
         sqlite3_bind_int64(st, 6, now + ttl_s) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE;
    stmt_done(st);
    if (!ok) {
        rc = db_fail(s, err, errlen, "session create");
        goto out;
    }
    /* durable first, then visible */
    x->rowid = sqlite3_last_insert_rowid(s->db);
    memtab_insert(s, x);
    memtab_session_out(x, 0, out);
    x = NULL;
    memcpy(token_out, token, KPX_TOKEN_BUF);
    rc = KPX_STORE_OK;
out:
    pthread_mutex_unlock(&s->db_lock);
    if (x != NULL)
        memtab_free(x);
    OPENSSL_cleanse(token, sizeof(token));
    return rc;
}

/* Finds the live session of token: out filled, counted when touch. */
static int session_find(struct kpx_store *s, const char *token, int64_t now, bool touch,
                        struct kpx_session *out, char *err, size_t errlen)
{
    uint8_t hash[KSVC_SHA256_LEN];
    struct stripe *sp;
    struct mem_session *x;
    int rc = KPX_STORE_NOT_FOUND;

    if (s == NULL)
        return KPX_STORE_INVALID;
    if (!token_well_formed(token)) {
        kcu_set_err(err, errlen, "not a session token");
        return KPX_STORE_NOT_FOUND;
    }
    if (token_hash(token, hash) != KPX_STORE_OK) {
        kcu_set_err(err, errlen, "cannot hash the token");
        return KPX_STORE_ERROR;
    }
    sp = memtab_stripe_of(s, hash);
    pthread_rwlock_rdlock(&sp->lock);
    x = memtab_find(sp, hash);
    if (x != NULL && x->expires_at > now && !atomic_load(&x->revoked)) {
        int64_t n;
        if (touch) {
            n = atomic_fetch_add(&x->requests, 1) + 1;
            memtab_mark_dirty(s, x);
        } else {
            n = atomic_load(&x->requests);
        }
        memtab_session_out(x, n, out);
        rc = KPX_STORE_OK;
    }
    pthread_rwlock_unlock(&sp->lock);
    OPENSSL_cleanse(hash, sizeof(hash));
    if (rc == KPX_STORE_NOT_FOUND)
        kcu_set_err(err, errlen, "no live session for that token (unknown, expired or revoked)");
    return rc;
}

int kpx_store_session_lookup(struct kpx_store *s, const char *token, int64_t now,
                             struct kpx_session *out, char *err, size_t errlen)
{
    return session_find(s, token, now, false, out, err, errlen);
}

int kpx_store_session_touch(struct kpx_store *s, const char *token, int64_t now,
                            struct kpx_session *out, char *err, size_t errlen)
{
    return session_find(s, token, now, true, out, err, errlen);
}

/* The pending list (pending_lock held): the index of id, or npending. */
static size_t pending_index(const struct kpx_store *s, const char *id)
{
    size_t i = 0;
    while (i < s->npending && strcmp(s->pending[i].id, id) != 0)
        i++;
    return i;
}

/* Records a failed logout delete for the retries; false when out of memory
 * (the session is refused all the same, and its row swept at expiry). */
static bool pending_add(struct kpx_store *s, const struct mem_session *x)
{
    bool ok = true;
    pthread_mutex_lock(&s->pending_lock);
    if (s->npending == s->pending_cap) {
        size_t cap = s->pending_cap > 0 ? s->pending_cap * 2 : 16;
        struct pending_revoke *p = realloc(s->pending, cap * sizeof(*p));
        if (p == NULL) {
            ok = false;
            goto out;
        }
        s->pending = p;
        s->pending_cap = cap;
    }
    struct pending_revoke *r = &s->pending[s->npending++];
    r->rowid = x->rowid;
    r->expires_at = x->expires_at;
    memcpy(r->id, x->id, sizeof(r->id));
    memcpy(r->hash, x->hash, sizeof(r->hash));
    snprintf(s->pending_error, sizeof(s->pending_error), "%s", sqlite3_errmsg(s->db));
out:
    pthread_mutex_unlock(&s->pending_lock);
    return ok;
}

static void pending_drop(struct kpx_store *s, const char *id)
{
    pthread_mutex_lock(&s->pending_lock);
    size_t i = pending_index(s, id);
    if (i < s->npending) {
        s->pending[i] = s->pending[--s->npending];
        OPENSSL_cleanse(&s->pending[s->npending], sizeof(s->pending[0]));
    }
    if (s->npending == 0)
        s->pending_error[0] = '\0';
    pthread_mutex_unlock(&s->pending_lock);
}

/* Deletes a session's row (db_lock held); false when SQLite fails. */
static bool row_delete(struct kpx_store *s, const char *id, int64_t rowid)
{
    sqlite3_stmt *st = s->st[ST_SESSION_DELETE];
    bool ok = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) == SQLITE_OK &&
              sqlite3_bind_int64(st, 3, rowid) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE;
    stmt_done(st);
    return ok;
}

int kpx_store_session_revoke(struct kpx_store *s, const char *token, int64_t now,
                             struct kpx_session *out, char *err, size_t errlen)
{
    uint8_t hash[KSVC_SHA256_LEN];
    struct stripe *sp;
    struct mem_session *x;
    int rc;
    bool again;

    if (s == NULL)
        return KPX_STORE_INVALID;
    if (!token_well_formed(token)) {
        kcu_set_err(err, errlen, "not a session token");
        return KPX_STORE_NOT_FOUND;
    }
    if (token_hash(token, hash) != KPX_STORE_OK) {
        kcu_set_err(err, errlen, "cannot hash the token");
        return KPX_STORE_ERROR;
    }
    sp = memtab_stripe_of(s, hash);
    pthread_mutex_lock(&s->db_lock);
    pthread_rwlock_rdlock(&sp->lock);
    x = memtab_find(sp, hash);
    if (x != NULL && x->expires_at <= now)
        x = NULL;
    if (x != NULL)
        memtab_session_out(x, atomic_load(&x->requests), out);
    pthread_rwlock_unlock(&sp->lock);
    OPENSSL_cleanse(hash, sizeof(hash));
    if (x == NULL) {
        kcu_set_err(err, errlen, "no live session for that token (unknown, expired or revoked)");
        rc = KPX_STORE_NOT_FOUND;
        goto out;
    }
    /* the row goes first: once this returns OK, no restart brings it back */
    again = atomic_load(&x->revoked) != 0; /* a logout sent again after NOT_DURABLE */
    if (!row_delete(s, x->id, x->rowid)) {
        /* fail closed: refused from now on, the delete retried */
        db_fail(s, err, errlen, "session revoke");
        if (!again) {
            atomic_store(&x->revoked, 1);
            pending_add(s, x);
        }
        rc = KPX_STORE_NOT_DURABLE;
        goto out;
    }
    if (again)
        pending_drop(s, x->id);
    memtab_remove(s, x);
    rc = KPX_STORE_OK;
out:
    pthread_mutex_unlock(&s->db_lock);
    return rc;
}

int kpx_store_retry_revocations(struct kpx_store *s, int64_t *left, char *err, size_t errlen)
{
    int rc = KPX_STORE_OK;

    if (left != NULL)
        *left = 0;
    if (s == NULL)
        return KPX_STORE_INVALID;
    pthread_mutex_lock(&s->pending_lock);
    bool none = s->npending == 0; /* the usual case: db_lock not taken */
    pthread_mutex_unlock(&s->pending_lock);
    if (none)
        return KPX_STORE_OK;
    pthread_mutex_lock(&s->db_lock);
    for (;;) {
        struct pending_revoke r;
        pthread_mutex_lock(&s->pending_lock);
        bool any = s->npending > 0;
        if (any)
            r = s->pending[s->npending - 1];
        pthread_mutex_unlock(&s->pending_lock);
        if (!any)
            break;
        if (!row_delete(s, r.id, r.rowid)) {
            rc = db_fail(s, err, errlen, "session revoke (retried)");
            pthread_mutex_lock(&s->pending_lock);
            snprintf(s->pending_error, sizeof(s->pending_error), "%s", sqlite3_errmsg(s->db));
            pthread_mutex_unlock(&s->pending_lock);
            break; /* the disk is still full: the next pass tries again */
        }
        /* durable now: out of memory too, unless a sweep or an unregister
         * (both under db_lock, as this) took it already */
        struct stripe *sp = memtab_stripe_of(s, r.hash);
        pthread_rwlock_rdlock(&sp->lock);
        struct mem_session *x = memtab_find(sp, r.hash);
        pthread_rwlock_unlock(&sp->lock);
        if (x != NULL && atomic_load(&x->revoked) && strcmp(x->id, r.id) == 0)
            memtab_remove(s, x);
        pending_drop(s, r.id);
        OPENSSL_cleanse(&r, sizeof(r));
    }
    pthread_mutex_unlock(&s->db_lock);
    if (left != NULL) {
        pthread_mutex_lock(&s->pending_lock);
        *left = (int64_t)s->npending;
        pthread_mutex_unlock(&s->pending_lock);
    }
    return rc;
}

/* One batch of the sweep; *n receives how many were removed. */
static int sweep_batch(struct kpx_store *s, int64_t now, size_t max, size_t *n, char *err,
                       size_t errlen)
{
    struct mem_session *batch[SWEEP_BATCH];
    sqlite3_stmt *st = s->st[ST_SESSION_DELETE];
    int rc = KPX_STORE_OK;
    bool ok;

    *n = 0;
    if (max > SWEEP_BATCH)
        max = SWEEP_BATCH;
    pthread_mutex_lock(&s->db_lock);
    pthread_mutex_lock(&s->heap_lock);
    while (*n < max && s->heap_len > 0 && s->heap[0]->expires_at <= now) {
        batch[(*n)++] = s->heap[0];
        memtab_heap_remove(s, s->heap[0]);
    }
    pthread_mutex_unlock(&s->heap_lock);
    if (*n == 0) {
        pthread_mutex_unlock(&s->db_lock);
        return KPX_STORE_OK;
    }
    for (size_t i = 0; i < *n; i++) {
        memtab_unlink(s, batch[i]);
        /* expired: refused at any later start, so no logout left to retry */
        if (atomic_load(&batch[i]->revoked))
            pending_drop(s, batch[i]->id);
    }
    /* Gone from memory either way; rows a failed delete leaves are loaded
     * again at the next start, expired, and swept then. */
    ok = tx(s, ST_BEGIN) == 0;
    for (size_t i = 0; ok && i < *n; i++) {
        ok = sqlite3_bind_text(st, 1, batch[i]->id, -1, SQLITE_STATIC) == SQLITE_OK &&
             sqlite3_bind_int64(st, 3, batch[i]->rowid) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_DONE;
        stmt_done(st);
    }
    if (!ok || tx(s, ST_COMMIT) != 0) {
        rc = db_fail(s, err, errlen, "session sweep");
        tx(s, ST_ROLLBACK);
    }
    for (size_t i = 0; i < *n; i++)
        memtab_retire(s, batch[i]);
    pthread_mutex_unlock(&s->db_lock);
    atomic_fetch_add(&s->swept, (int64_t)*n);
    return rc;
}

int kpx_store_sessions_sweep(struct kpx_store *s, int64_t now, int64_t max, int64_t *removed,
                             char *err, size_t errlen)
{
    int64_t total = 0;
    int rc = KPX_STORE_OK;

    if (removed != NULL)
        *removed = 0;
    if (s == NULL)
        return KPX_STORE_INVALID;
    for (;;) {
        size_t want = SWEEP_BATCH, n = 0;
        if (max > 0 && max - total < (int64_t)want)
            want = (size_t)(max - total);
        if (want == 0)
            break;
        /* db_lock is let go between batches: logins wait one batch at most */
        rc = sweep_batch(s, now, want, &n, err, errlen);
        total += (int64_t)n;
        if (rc != KPX_STORE_OK || n < want)
            break;
    }
    if (removed != NULL)
        *removed = total;
    return rc;
}

int kpx_store_sessions_active(struct kpx_store *s, int64_t now, int64_t *count, char *err,
                              size_t errlen)
{
    (void)err;
    (void)errlen;
    if (count != NULL)
        *count = 0;
    if (s == NULL || count == NULL)
        return KPX_STORE_INVALID;
    pthread_mutex_lock(&s->heap_lock);
    *count = (int64_t)s->heap_len - memtab_count_expired(s, now);
    pthread_mutex_unlock(&s->heap_lock);
    pthread_mutex_lock(&s->pending_lock); /* logged out, rows not yet deleted */
    for (size_t i = 0; i < s->npending; i++)
        if (s->pending[i].expires_at > now)
            (*count)--;
    pthread_mutex_unlock(&s->pending_lock);
    return KPX_STORE_OK;
}

void kpx_store_stats(struct kpx_store *s, int64_t now, struct kpx_store_stats *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return;
    kpx_store_sessions_active(s, now, &out->sessions_active, NULL, 0);
    out->sessions_swept = atomic_load(&s->swept);
    out->flushes = atomic_load(&s->flushes);
    out->flush_failures = atomic_load(&s->flush_failures);
    out->counts_written = atomic_load(&s->counts_written);
    out->db_failures = atomic_load(&s->db_failures);
    pthread_mutex_lock(&s->pending_lock);
    out->revocations_pending = (int64_t)s->npending;
    snprintf(out->revocation_error, sizeof(out->revocation_error), "%s", s->pending_error);
    pthread_mutex_unlock(&s->pending_lock);
}
