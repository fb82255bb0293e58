/* The durable state of k_server (see counter.h). */
#include "services/k_server/counter.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "services/common/svc_util.h"
#include "services/common/upstream.h"
#include "util/clock.h"
#include "util/sqlite_db.h"

/* 1: the counter; 2: and the replay-protection instances. */
#define SCHEMA_VERSION 2
/* the reserving thread starts the next block when fewer are left */
#define LOW_WATER (KSRV_RESERVE_BLOCK / 2)

struct ksrv_counter {
    sqlite3 *db;
    sqlite3_stmt *reserve, *inst_add, *inst_del, *inst_all;
    pthread_mutex_t db_lock; /* one statement at a time on the connection */

    pthread_mutex_t lock;   /* what follows */
    pthread_cond_t wanted;  /* the reserving thread has work */
    pthread_cond_t granted; /* a reservation was stored, or failed */
    int64_t last;           /* the last value handed out */
    int64_t reserved;       /* durable upper bound: no value above it was handed out */
    unsigned long failures; /* reservations that failed, ever */
    bool failing;           /* the last one failed */
    char failure[256];
    bool instance_failing; /* the last k_proxy instance could not be recorded */
    char instance_failure[256];
    bool stop;
    bool thread_started;
    bool made_schema; /* this open created the tables */
    pthread_t thread;
};

/* kcu_db_spec.migrate: the counter rows (schema 1) and the replay-protection
 * instances (2), from a new file or from schema 1. */
static int migrate(sqlite3 *db, int from, void *arg, char *err, size_t errlen)
{
    (void)from;
    (void)arg;
    return kcu_db_exec(
        db,
        "BEGIN IMMEDIATE;"
        "CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT OR IGNORE INTO counter VALUES ('protected', 0);"
        "INSERT OR IGNORE INTO counter VALUES ('reserved', 0);"
        "CREATE TABLE IF NOT EXISTS replay_instances (id BLOB PRIMARY KEY, gen INTEGER NOT NULL);"
        "PRAGMA user_version = 2;"
        "COMMIT;",
        err, errlen);
}

/* Stores value in the counter row name (durably: synchronous=FULL). */
static int store(struct ksrv_counter *c, const char *name, int64_t value)
{
    pthread_mutex_lock(&c->db_lock);
    int ok = sqlite3_bind_int64(c->reserve, 1, value) == SQLITE_OK &&
             sqlite3_bind_text(c->reserve, 2, name, -1, SQLITE_STATIC) == SQLITE_OK &&
             sqlite3_step(c->reserve) == SQLITE_DONE && sqlite3_changes(c->db) == 1;
    sqlite3_reset(c->reserve);
    sqlite3_clear_bindings(c->reserve);
    pthread_mutex_unlock(&c->db_lock);
    return ok ? 0 : -1;
}

static int64_t next_block(int64_t from)
{
    return from > INT64_MAX - KSRV_RESERVE_BLOCK ? INT64_MAX : from + KSRV_RESERVE_BLOCK;
}

/* The reserving thread: keeps at least LOW_WATER values reserved ahead of
 * the last one handed out, storing each new bound without c->lock held, so
 * requests go on from memory during the fsync. */
static void *reserver(void *arg)
{
    pthread_setname_np(pthread_self(), "counter-reserve"); /* top -H, ps -L */
    struct ksrv_counter *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        bool low = c->reserved - c->last < LOW_WATER && c->reserved < INT64_MAX;
        if (!low || c->failing) {
            /* after a failure, try again when a request asks (or each second) */
            struct timespec until;
            kcu_deadline(CLOCK_REALTIME, 1000, &until);
            bool was_failing = c->failing;
            pthread_cond_timedwait(&c->wanted, &c->lock, &until);
            if (was_failing)
                c->failing = false; /* retry once now */
            continue;
        }
        int64_t upto = next_block(c->reserved);
        pthread_mutex_unlock(&c->lock);
        int rc = store(c, "reserved", upto);
        char why[200];
        if (rc != 0) {
            pthread_mutex_lock(&c->db_lock);
            snprintf(why, sizeof(why), "%s", sqlite3_errmsg(c->db));
            pthread_mutex_unlock(&c->db_lock);
        }
        pthread_mutex_lock(&c->lock);
        if (rc == 0) {
            c->reserved = upto;
            c->failing = false;
        } else {
            c->failing = true;
            c->failures++;
            snprintf(c->failure, sizeof(c->failure), "cannot reserve counter values: %s", why);
        }
        pthread_cond_broadcast(&c->granted);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

static int prepare(struct ksrv_counter *c, const char *sql, sqlite3_stmt **st, char *err,
                   size_t errlen)
{
    if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) == SQLITE_OK)
        return 0;
    snprintf(err, errlen, "%s", sqlite3_errmsg(c->db));
    return -1;
}

struct ksrv_counter *ksrv_counter_open(const char *path, bool init, bool *created, char *err,
                                       size_t errlen)
{
    struct ksrv_counter *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->db_lock, NULL);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wanted, NULL);
    pthread_cond_init(&c->granted, NULL);
    /* exclusive: a second k_server on the same file would hand out the same
     * values. A rollback journal, not WAL: a commit is in the database file
     * itself once it returns, so no side file holds a reservation (a lost
     * -wal file after a crash repeated values); at one commit per block the
     * extra fsyncs cost nothing a request waits for. An empty file is
     * refused without init, so a lost or emptied database never starts the
     * counter again at 1; after the checks the write lock is taken at once. */
    struct kcu_db_spec spec = {
        .owner = "k_server",
        .schema_version = SCHEMA_VERSION,
        .init = init,
        .busy_timeout_ms = 5000,
        .empty_refusal = "an empty file, not a k_server database (give --init to make a new "
                         "counter in it; the counter would start again at 1)",
        .bare_refusal = "not a k_server database: an SQLite file without tables (give --init to "
                        "make a new counter in it)",
        .locked_hint = " (another k_server uses it)",
        .setup_sql = "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=DELETE; "
                     "PRAGMA synchronous=FULL;",
        .after_check_sql = "BEGIN IMMEDIATE; COMMIT;",
        .make_dirs = ksvc_make_parent_dirs,
        .migrate = migrate,
    };
    bool memory = strcmp(path, ":memory:") == 0;
    int version = 0;
    if (created != NULL)
        *created = false;
    if ((c->db = kcu_db_open(path, &spec, &version, err, errlen)) == NULL)
        goto fail;
    c->made_schema = version == 0;
    char why[256];
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, "SELECT max(value) FROM counter", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(c->db));
        sqlite3_finalize(st);
        goto fail;
    }
    /* after a clean stop both rows are equal; after a crash the reservation wins */
    c->last = c->reserved = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (c->last < 0) {
        snprintf(err, errlen, "%s: the stored counter is negative", path);
        goto fail;
    }
    if (prepare(c, "UPDATE counter SET value = ?1 WHERE name = ?2", &c->reserve, why,
                sizeof(why)) != 0 ||
        prepare(c, "INSERT OR REPLACE INTO replay_instances (id, gen) VALUES (?1, ?2)",
                &c->inst_add, why, sizeof(why)) != 0 ||
        prepare(c, "DELETE FROM replay_instances WHERE id = ?1 AND gen = ?2", &c->inst_del, why,
                sizeof(why)) != 0 ||
        prepare(c, "SELECT id, gen FROM replay_instances", &c->inst_all, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        goto fail;
    }
    /* the first block now, so that the first request does not wait for it
     * and a file that cannot be written is refused at start */
    int64_t upto = next_block(c->reserved);
    if (store(c, "reserved", upto) != 0) {
        snprintf(err, errlen, "%s: cannot reserve counter values: %s", path, sqlite3_errmsg(c->db));
        goto fail;
    }
    c->reserved = upto;
    if (pthread_create(&c->thread, NULL, reserver, c) != 0) {
        snprintf(err, errlen, "cannot start the reserving thread");
        goto fail;
    }
    c->thread_started = true;
    if (created != NULL)
        *created = c->made_schema && !memory;
    return c;
fail:
    ksrv_counter_close(c);
    return NULL;
}

void ksrv_counter_close(struct ksrv_counter *c)
{
    if (c == NULL)
        return;
    if (c->thread_started) {
        pthread_mutex_lock(&c->lock);
        c->stop = true;
        pthread_cond_broadcast(&c->wanted);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->thread, NULL);
    }
    if (c->reserve != NULL) {
        /* a clean stop gives back the unused part of the reservation: no gap */
        pthread_mutex_lock(&c->lock);
        if (kcu_db_exec(c->db, "BEGIN IMMEDIATE", NULL, 0) == 0) {
            int ok = store(c, "protected", c->last) == 0 && store(c, "reserved", c->last) == 0;
            kcu_db_exec(c->db, ok ? "COMMIT" : "ROLLBACK", NULL, 0);
        }
        pthread_mutex_unlock(&c->lock);
    }
    sqlite3_finalize(c->reserve);
    sqlite3_finalize(c->inst_add);
    sqlite3_finalize(c->inst_del);
    sqlite3_finalize(c->inst_all);
    sqlite3_close(c->db);
    pthread_cond_destroy(&c->granted);
    pthread_cond_destroy(&c->wanted);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->db_lock);
    free(c);
}

int ksrv_counter_next(struct ksrv_counter *c, int64_t *value, char *err, size_t errlen)
{
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    unsigned long failures = c->failures;
    for (;;) {
        if (c->last == INT64_MAX) {
            snprintf(err, errlen, "the counter is exhausted");
            rc = -1;
            break;
        }
        if (c->last < c->reserved) {
            *value = ++c->last;
            if (c->reserved - c->last < LOW_WATER)
                pthread_cond_signal(&c->wanted);
            break;
        }
        /* the whole reservation is handed out: wait for the next block */
        if (c->failures != failures || c->stop) {
            snprintf(err, errlen, "%s", c->stop ? "k_server is stopping" : c->failure);
            rc = -1;
            break;
        }
        pthread_cond_signal(&c->wanted);
        pthread_cond_wait(&c->granted, &c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int ksrv_counter_current(struct ksrv_counter *c, int64_t *value)
{
    pthread_mutex_lock(&c->lock);
    *value = c->last;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

int64_t ksrv_counter_reserved(struct ksrv_counter *c)
{
    pthread_mutex_lock(&c->lock);
    int64_t r = c->reserved;
    pthread_mutex_unlock(&c->lock);
    return r;
}

bool ksrv_counter_healthy(struct ksrv_counter *c, char *why, size_t cap)
{
    pthread_mutex_lock(&c->lock);
    bool ok = !c->failing && !c->instance_failing;
    if (c->failing)
        snprintf(why, cap, "%s", c->failure);
    else if (c->instance_failing)
        snprintf(why, cap, "%s", c->instance_failure);
    pthread_mutex_unlock(&c->lock);
    return ok;
}

int ksrv_instance_record(struct ksrv_counter *c, const uint8_t id[16], int64_t gen)
{
    pthread_mutex_lock(&c->db_lock);
    int ok = sqlite3_bind_blob(c->inst_add, 1, id, 16, SQLITE_STATIC) == SQLITE_OK &&
             sqlite3_bind_int64(c->inst_add, 2, gen) == SQLITE_OK &&
             sqlite3_step(c->inst_add) == SQLITE_DONE;
    char why[200] = "";
    if (!ok)
        snprintf(why, sizeof(why), "%s", sqlite3_errmsg(c->db));
    sqlite3_reset(c->inst_add);
    sqlite3_clear_bindings(c->inst_add);
    pthread_mutex_unlock(&c->db_lock);
    /* every counter call of a new k_proxy instance fails until this
     * succeeds (a full disk, say): /healthz must say so */
    pthread_mutex_lock(&c->lock);
    c->instance_failing = !ok;
    if (!ok)
        snprintf(c->instance_failure, sizeof(c->instance_failure),
                 "cannot record a k_proxy instance in the state database: %s", why);
    pthread_mutex_unlock(&c->lock);
    return ok ? 0 : -1;
}

void ksrv_instance_forget(struct ksrv_counter *c, const uint8_t (*ids)[16], const int64_t *gens,
                          size_t n)
{
    pthread_mutex_lock(&c->db_lock);
    if (kcu_db_exec(c->db, "BEGIN IMMEDIATE", NULL, 0) == 0) {
        int ok = 1;
        for (size_t k = 0; k < n && ok; k++) {
            ok = sqlite3_bind_blob(c->inst_del, 1, ids[k], 16, SQLITE_STATIC) == SQLITE_OK &&
                 sqlite3_bind_int64(c->inst_del, 2, gens[k]) == SQLITE_OK &&
                 sqlite3_step(c->inst_del) == SQLITE_DONE;
            sqlite3_reset(c->inst_del);
            sqlite3_clear_bindings(c->inst_del);
        }
        kcu_db_exec(c->db, ok ? "COMMIT" : "ROLLBACK", NULL, 0);
    }
    pthread_mutex_unlock(&c->db_lock);
}

int ksrv_instance_each(struct ksrv_counter *c,
                       int (*each)(void *arg, const uint8_t id[16], int64_t gen), void *arg,
                       char *err, size_t errlen)
{
    int rc = 0, step;
    pthread_mutex_lock(&c->db_lock);
    while ((step = sqlite3_step(c->inst_all)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(c->inst_all, 0) != 16) {
            snprintf(err, errlen, "a replay_instances row has an id that is not 16 bytes");
            rc = -1;
            break;
        }
        const uint8_t *id = sqlite3_column_blob(c->inst_all, 0);
        if (each(arg, id, sqlite3_column_int64(c->inst_all, 1)) != 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
    }
    if (rc == 0 && step != SQLITE_DONE) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(c->db));
        rc = -1;
    }
    sqlite3_reset(c->inst_all);
    pthread_mutex_unlock(&c->db_lock);
    return rc;
}

/* The replay table's persistence is this database. */
static int persist_record(void *arg, const uint8_t id[KSVC_UPSTREAM_INSTANCE_LEN], int64_t gen)
{
    return ksrv_instance_record(arg, id, gen);
}

static void persist_forget(void *arg, const uint8_t (*ids)[KSVC_UPSTREAM_INSTANCE_LEN],
                           const int64_t *gens, size_t n)
{
    ksrv_instance_forget(arg, ids, gens, n);
}

struct load_ctx {
    struct ksvc_replay_table *table;
    time_t now;
    size_t n;
};

/* An instance the previous run recorded: closed (see upstream.h). */
static int load_instance(void *arg, const uint8_t id[16], int64_t gen)
{
    struct load_ctx *l = arg;
    l->n++;
    return ksvc_replay_table_close(l->table, id, gen, l->now);
}

struct ksvc_replay_table *ksrv_replay_open(struct ksrv_counter *c, time_t now, size_t *loaded,
                                           char *err, size_t errlen)
{
    struct ksvc_replay_persist persist = {
        .record = persist_record, .forget = persist_forget, .arg = c};
    struct load_ctx l = {.table = ksvc_replay_table_new(&persist), .now = now};
    if (l.table == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (ksrv_instance_each(c, load_instance, &l, err, errlen) != 0) {
        ksvc_replay_table_free(l.table);
        return NULL;
    }
    if (loaded != NULL)
        *loaded = l.n;
    return l.table;
}
