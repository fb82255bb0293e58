/* The durable counter of k_server (see counter.h). */
#include "services/k_server/counter.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "services/common/svc_util.h"

#define SCHEMA_VERSION 1
/* Values are reserved on disk this many at a time, so a request costs an
 * fsync only once per block. A crash (not a clean stop) skips the rest of the
 * block: a gap, never a value handed out twice. */
#define RESERVE_BLOCK 64

struct ksrv_counter {
    sqlite3 *db;
    sqlite3_stmt *reserve;
    int64_t last;     /* the last value handed out */
    int64_t reserved; /* durable upper bound: no value above it was handed out */
    pthread_mutex_t lock;
};

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
}

static int check_schema(struct ksrv_counter *c, bool fresh, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int version = -1;
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version < 0) {
        snprintf(err, errlen, "not a k_server database (%s)", sqlite3_errmsg(c->db));
        return -1;
    }
    if (version == 0 && !fresh) {
        /* an existing file with tables we did not make: refuse rather than guess */
        sqlite3_stmt *q = NULL;
        int tables = -1;
        if (sqlite3_prepare_v2(c->db, "SELECT count(*) FROM sqlite_master", -1, &q, NULL) ==
                SQLITE_OK &&
            sqlite3_step(q) == SQLITE_ROW)
            tables = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
        if (tables != 0) {
            snprintf(err, errlen, "not a k_server database: it has tables but no kcard schema");
            return -1;
        }
    }
    if (version > SCHEMA_VERSION) {
        snprintf(err, errlen, "database schema %d is newer than this k_server (%d)", version,
                 SCHEMA_VERSION);
        return -1;
    }
    if (version == SCHEMA_VERSION)
        return 0;
    return exec(
        c->db,
        "BEGIN IMMEDIATE;"
        "CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT OR IGNORE INTO counter VALUES ('protected', 0);"
        "INSERT OR IGNORE INTO counter VALUES ('reserved', 0);"
        "PRAGMA user_version = 1;"
        "COMMIT;",
        err, errlen);
}

struct ksrv_counter *ksrv_counter_open(const char *path, char *err, size_t errlen)
{
    struct ksrv_counter *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    bool memory = strcmp(path, ":memory:") == 0;
    bool fresh = memory || access(path, F_OK) != 0;
    if (!memory && fresh) {
        if (ksvc_make_parent_dirs(path, err, errlen) != 0)
            goto fail;
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
            goto fail;
        }
        close(fd);
    }
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 c->db ? sqlite3_errmsg(c->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(c->db, 5000);
    char why[256];
    /* exclusive: a second k_server on the same file would hand out the same values */
    if (exec(c->db,
             "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; "
             "PRAGMA synchronous=FULL;",
             why, sizeof(why)) != 0 ||
        check_schema(c, fresh, why, sizeof(why)) != 0 ||
        exec(c->db, "BEGIN IMMEDIATE; COMMIT;", why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s%s", path, why,
                 strstr(why, "locked") ? " (another k_server uses it)" : "");
        goto fail;
    }
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
    if (sqlite3_prepare_v2(c->db, "UPDATE counter SET value = ?1 WHERE name = ?2", -1, &c->reserve,
                           NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(c->db));
        goto fail;
    }
    return c;
fail:
    ksrv_counter_close(c);
    return NULL;
}

/* Stores value in row name (durably: synchronous=FULL). */
static int store(struct ksrv_counter *c, const char *name, int64_t value)
{
    int ok = sqlite3_bind_int64(c->reserve, 1, value) == SQLITE_OK &&
             sqlite3_bind_text(c->reserve, 2, name, -1, SQLITE_STATIC) == SQLITE_OK &&
             sqlite3_step(c->reserve) == SQLITE_DONE && sqlite3_changes(c->db) == 1;
    sqlite3_reset(c->reserve);
    sqlite3_clear_bindings(c->reserve);
    return ok ? 0 : -1;
}

void ksrv_counter_close(struct ksrv_counter *c)
{
    if (c == NULL)
        return;
    if (c->reserve != NULL) {
        /* a clean stop gives back the unused part of the block: no gap */
        pthread_mutex_lock(&c->lock);
        if (exec(c->db, "BEGIN IMMEDIATE", NULL, 0) == 0) {
            int ok = store(c, "protected", c->last) == 0 && store(c, "reserved", c->last) == 0;
            exec(c->db, ok ? "COMMIT" : "ROLLBACK", NULL, 0);
        }
        pthread_mutex_unlock(&c->lock);
    }
    sqlite3_finalize(c->reserve);
    sqlite3_close(c->db);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int ksrv_counter_next(struct ksrv_counter *c, int64_t *value, char *err, size_t errlen)
{
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    if (c->last == INT64_MAX) {
        snprintf(err, errlen, "the counter is exhausted");
        rc = -1;
    } else if (c->last + 1 > c->reserved) {
        int64_t upto = c->last > INT64_MAX - RESERVE_BLOCK ? INT64_MAX : c->last + RESERVE_BLOCK;
        if (store(c, "reserved", upto) != 0) {
            snprintf(err, errlen, "cannot reserve counter values: %s", sqlite3_errmsg(c->db));
            rc = -1;
        } else {
            c->reserved = upto;
        }
    }
    if (rc == 0)
        *value = ++c->last;
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
