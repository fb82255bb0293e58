/* Opening a program's SQLite state file: created (mode 0600) when missing,
 * a 0-byte file refused unless asked to make it new, someone else's
 * database, a corrupt one or a newer schema refused untouched, and the
 * program's schema applied when the file has an older user_version. */
#ifndef KCARD_UTIL_SQLITE_DB_H
#define KCARD_UTIL_SQLITE_DB_H

#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>

struct kcu_db_spec {
    const char *owner;  /* the program, in "not a <owner> database" */
    int schema_version; /* the user_version this program writes */
    bool init;          /* an empty file (0 bytes, or SQLite without tables) may be made new */
    bool quick_check;   /* run PRAGMA quick_check on a file that existed */
    int busy_timeout_ms;
    /* the whole refusal of a 0-byte file without init (after "<path>: ") */
    const char *empty_refusal;
    /* the refusal of an SQLite file without tables and without init; NULL:
     * such a file is made new */
    const char *bare_refusal;
    /* appended to an error that names a lock ("database is locked"), e.g.
     * " (another k_server uses it)"; may be NULL */
    const char *locked_hint;
    /* SQL run right after opening, before any check (locking mode), and SQL
     * run after the checks passed, before the schema (journal mode); NULL
     * for none */
    const char *setup_sql, *after_check_sql;
    /* makes the missing folders above a new file: 0, or -1 with err */
    int (*make_dirs)(const char *path, char *err, size_t errlen);
    /* brings a file of user_version from (0: a new one) up to
     * schema_version: 0, or -1 with err; called only when from is lower */
    int (*migrate)(sqlite3 *db, int from, void *arg, char *err, size_t errlen);
    void *migrate_arg;
};

/* Opens path (":memory:" too) read-write and serialised (FULLMUTEX) as the
 * spec says. Returns the connection and *version, the user_version found
 * (0: the schema was made by this open), or NULL with err: "cannot read
 * <path>: ...", "cannot create <path>: ...", "cannot open <path>: ..." or
 * "<path>: <why>" (a refusal, a failed check or migration). */
sqlite3 *kcu_db_open(const char *path, const struct kcu_db_spec *spec, int *version, char *err,
                     size_t errlen);

/* sqlite3_exec of sql: 0, or -1 with SQLite's message in err (when given). */
int kcu_db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen);

/* The first column of the first row of sql as an int: 0, or -1. */
int kcu_db_int(sqlite3 *db, const char *sql, int *value);

#endif
