/* Opening a program's SQLite state file (see sqlite_db.h). */
#include "util/sqlite_db.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"

int kcu_db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    kcu_set_err(err, errlen, "%s", msg != NULL ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
}

int kcu_db_int(sqlite3 *db, const char *sql, int *value)
{
    sqlite3_stmt *st = NULL;
    int ok =
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW;

    if (ok)
        *value = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

/* Before SQLite sees the path: a missing file is created (fresh), an
 * existing one must be a regular file, and a 0-byte one is taken only with
 * init. The errors are complete messages. */
static int check_file(const char *path, const struct kcu_db_spec *spec, bool *fresh, char *err,
                      size_t errlen)
{
    struct stat st;
    int fd;

    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            return kcu_set_err_rc(err, errlen, -1, "%s: not a regular file", path);
        if (st.st_size == 0 && !spec->init)
            return kcu_set_err_rc(err, errlen, -1, "%s: %s", path, spec->empty_refusal);
        *fresh = false;
        return 0;
    }
    if (errno != ENOENT)
        return kcu_set_err_rc(err, errlen, -1, "cannot read %s: %s", path, strerror(errno));
    *fresh = true;
    if (spec->make_dirs != NULL && spec->make_dirs(path, err, errlen) != 0)
        return -1;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return kcu_set_err_rc(err, errlen, -1, "cannot create %s: %s", path, strerror(errno));
    close(fd);
    return 0;
}

/* PRAGMA quick_check says "ok": 0, else -1 with why. */
static int integrity(sqlite3 *db, char *why, size_t cap)
{
    sqlite3_stmt *st = NULL;
    const unsigned char *verdict;
    bool ok;

    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        kcu_set_err(why, cap, "corrupt database (%s)", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    verdict = sqlite3_column_text(st, 0);
    ok = verdict != NULL && strcmp((const char *)verdict, "ok") == 0;
    sqlite3_finalize(st);
    return ok ? 0 : kcu_set_err_rc(why, cap, -1, "corrupt database: integrity check failed");
}

/* Read-only checks of what the file holds, before anything may write: a
 * corrupt file, a newer schema or someone else's database is refused. */
static int check_content(sqlite3 *db, const struct kcu_db_spec *spec, bool fresh, int *version,
                         char *why, size_t cap)
{
    int tables = -1;

    if (kcu_db_int(db, "PRAGMA user_version", version) != 0)
        return kcu_set_err_rc(why, cap, -1, "not a %s database (%s)", spec->owner,
                              sqlite3_errmsg(db));
    if (fresh)
        return 0;
    if (spec->quick_check && integrity(db, why, cap) != 0)
        return -1;
    if (*version > spec->schema_version)
        return kcu_set_err_rc(why, cap, -1, "database schema %d is newer than this %s (%d)",
                              *version, spec->owner, spec->schema_version);
    if (*version != 0)
        return 0;
    /* user_version 0 in a file that existed: only an empty database is
     * taken, so that a lost or replaced file never starts over silently */
    if (kcu_db_int(db, "SELECT count(*) FROM sqlite_master", &tables) != 0 || tables != 0)
        return kcu_set_err_rc(why, cap, -1, "not a %s database: it has tables but no kcard schema",
                              spec->owner);
    if (spec->bare_refusal != NULL && !spec->init)
        return kcu_set_err_rc(why, cap, -1, "%s", spec->bare_refusal);
    return 0;
}

sqlite3 *kcu_db_open(const char *path, const struct kcu_db_spec *spec, int *version, char *err,
                     size_t errlen)
{
    bool fresh = strcmp(path, ":memory:") == 0;
    sqlite3 *db = NULL;
    char why[512] = "";

    *version = 0;
    if (!fresh && check_file(path, spec, &fresh, err, errlen) != 0)
        return NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        kcu_set_err(err, errlen, "cannot open %s: %s", path,
                    db != NULL ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, spec->busy_timeout_ms);
    if ((spec->setup_sql != NULL && kcu_db_exec(db, spec->setup_sql, why, sizeof(why)) != 0) ||
        check_content(db, spec, fresh, version, why, sizeof(why)) != 0 ||
        (spec->after_check_sql != NULL &&
         kcu_db_exec(db, spec->after_check_sql, why, sizeof(why)) != 0) ||
        (*version < spec->schema_version && spec->migrate != NULL &&
         spec->migrate(db, *version, spec->migrate_arg, why, sizeof(why)) != 0)) {
        kcu_set_err(err, errlen, "%s: %s%s", path, why,
                    spec->locked_hint != NULL && strstr(why, "locked") != NULL ? spec->locked_hint
                                                                               : "");
        sqlite3_close(db);
        return NULL;
    }
    return db;
}
