/* util/sqlite_db.c: a missing file made (and its folders), an empty file
 * refused without init and made new with it, an SQLite file without tables,
 * a foreign schema, a newer user_version, a truncated and a corrupt file
 * refused untouched, the migration from an older version, the locked hint,
 * and the SQL run before and after the checks. In a temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "util/sqlite_db.h"

static char dir[128];

static int made_dirs;

static int make_dirs(const char *path, char *err, size_t errlen)
{
    char parent[256];
    char *slash;

    (void)err;
    (void)errlen;
    made_dirs++;
    snprintf(parent, sizeof(parent), "%s", path);
    if ((slash = strrchr(parent, '/')) != NULL) {
        *slash = '\0';
        mkdir(parent, 0700);
    }
    return 0;
}

static int migrated_from;

static int migrate(sqlite3 *db, int from, void *arg, char *err, size_t errlen)
{
    migrated_from = from;
    (void)arg;
    return kcu_db_exec(db,
                       "CREATE TABLE IF NOT EXISTS t (x INTEGER); "
                       "CREATE TABLE IF NOT EXISTS u (y INTEGER); PRAGMA user_version = 2;",
                       err, errlen);
}

static struct kcu_db_spec spec(bool init)
{
    struct kcu_db_spec s = {
        .owner = "test",
        .schema_version = 2,
        .init = init,
        .quick_check = true,
        .busy_timeout_ms = 50,
        .empty_refusal = "an empty file, not a test database (give --init)",
        .bare_refusal = "not a test database: an SQLite file without tables (give --init)",
        .locked_hint = " (another test uses it)",
        .make_dirs = make_dirs,
        .migrate = migrate,
    };
    return s;
}

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static void sql_file(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

static void expect_refused(const char *path, bool init, const char *want)
{
    struct kcu_db_spec s = spec(init);
    char err[512] = "";
    int version = -1;
    long before = file_size(path);

    assert_null(kcu_db_open(path, &s, &version, err, sizeof(err)));
    if (strstr(err, want) == NULL)
        print_error("err: %s\n", err);
    assert_non_null(strstr(err, want));
    assert_int_equal(file_size(path), before); /* refused untouched */
}

static void test_new_file_and_reopen(void **state)
{
    struct kcu_db_spec s = spec(false);
    char path[256], err[256];
    int version = -1, v = 0;
    sqlite3 *db;

    (void)state;
    path_of(path, sizeof(path), "sub/new.db");
    made_dirs = 0;
    migrated_from = -1;
    db = kcu_db_open(path, &s, &version, err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(version, 0); /* made by this open */
    assert_int_equal(made_dirs, 1);
    assert_int_equal(migrated_from, 0);
    assert_int_equal(kcu_db_int(db, "PRAGMA user_version", &v), 0);
    assert_int_equal(v, 2);
    sqlite3_close(db);
    {
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    migrated_from = -1;
    db = kcu_db_open(path, &s, &version, err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(version, 2);
    assert_int_equal(migrated_from, -1); /* up to date: no migration */
    assert_int_equal(kcu_db_int(db, "SELECT nope FROM nowhere", &v), -1);
    assert_int_equal(kcu_db_exec(db, "SELEKT 1", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "syntax error"));
    sqlite3_close(db);
}

static void test_memory(void **state)
{
    struct kcu_db_spec s = spec(false);
    char err[256];
    int version = -1;
    sqlite3 *db;

    (void)state;
    made_dirs = 0;
    db = kcu_db_open(":memory:", &s, &version, err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(version, 0);
    assert_int_equal(made_dirs, 0);
    sqlite3_close(db);
}

static void test_empty_file(void **state)
{
    struct kcu_db_spec s = spec(true);
    char path[256], err[256];
    int version = -1;
    sqlite3 *db;
    FILE *f;

    (void)state;
    path_of(path, sizeof(path), "empty.db");
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    expect_refused(path, false, "an empty file, not a test database (give --init)");
    {
        char full[512];
        struct kcu_db_spec s0 = spec(false);
        assert_null(kcu_db_open(path, &s0, &version, full, sizeof(full)));
        assert_true(strncmp(full, path, strlen(path)) == 0); /* "<path>: ..." */
    }
    db = kcu_db_open(path, &s, &version, err, sizeof(err)); /* init: made new */
    assert_non_null(db);
    assert_int_equal(version, 0);
    sqlite3_close(db);
    assert_true(file_size(path) > 0);
}

static void test_bare_foreign_newer(void **state)
{
    char path[256], err[256];
    int version = -1;
    sqlite3 *db;
    struct kcu_db_spec s = spec(true);

    (void)state;
    path_of(path, sizeof(path), "bare.db");
    sql_file(path, "PRAGMA page_size=4096; VACUUM");
    expect_refused(path, false, "not a test database: an SQLite file without tables");
    db = kcu_db_open(path, &s, &version, err, sizeof(err));
    assert_non_null(db);
    sqlite3_close(db);
    /* without bare_refusal such a file is made new without init */
    path_of(path, sizeof(path), "bare2.db");
    sql_file(path, "PRAGMA page_size=4096; VACUUM");
    s = spec(false);
    s.bare_refusal = NULL;
    db = kcu_db_open(path, &s, &version, err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(version, 0);
    sqlite3_close(db);

    path_of(path, sizeof(path), "foreign.db");
    sql_file(path, "CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('x');");
    expect_refused(path, false, "not a test database: it has tables but no kcard schema");
    expect_refused(path, true, "it has tables but no kcard schema"); /* init does not help */

    path_of(path, sizeof(path), "newer.db");
    sql_file(path, "CREATE TABLE x (a); PRAGMA user_version = 99;");
    expect_refused(path, false, "database schema 99 is newer than this test (2)");
}

static void test_truncated_and_corrupt(void **state)
{
    char path[256], err[256];
    int version;
    sqlite3 *db;
    struct kcu_db_spec s = spec(false);
    FILE *f;

    (void)state;
    /* text, not SQLite */
    path_of(path, sizeof(path), "text.db");
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not SQLite at all, just some text of some length\n", f);
    fclose(f);
    expect_refused(path, false, "not a test database (");

    /* a real database cut after its first page */
    path_of(path, sizeof(path), "cut.db");
    db = kcu_db_open(path, &s, &version, err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(kcu_db_exec(db, "INSERT INTO t VALUES (1);", err, sizeof(err)), 0);
    sqlite3_close(db);
    assert_true(file_size(path) > 4096);
    assert_int_equal(truncate(path, 4096), 0);
    /* its header names more pages than there are: not even user_version reads */
    expect_refused(path, false, "database disk image is malformed");

    /* a page overwritten */
    path_of(path, sizeof(path), "junk.db");
    db = kcu_db_open(path, &s, &version, err, sizeof(err));
    assert_non_null(db);
    sqlite3_close(db);
    {
        char junk[512];
        f = fopen(path, "r+b");
        assert_non_null(f);
        memset(junk, 0xee, sizeof(junk));
        assert_int_equal(fseek(f, 4096, SEEK_SET), 0);
        assert_int_equal(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
        fclose(f);
    }
    expect_refused(path, false, "corrupt");

    /* a folder is not a file */
    expect_refused(dir, false, "not a regular file");
}

static void test_migrate_and_locked(void **state)
{
    char path[256], err[256];
    int version = -1;
    sqlite3 *db, *holder = NULL;
    struct kcu_db_spec s = spec(false);

    (void)state;
    path_of(path, sizeof(path), "old.db");
    sql_file(path, "CREATE TABLE t (x INTEGER); PRAGMA user_version = 1;");
    migrated_from = -1;
    db = kcu_db_open(path, &s, &version, err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(version, 1);
    assert_int_equal(migrated_from, 1);
    sqlite3_close(db);

    /* setup SQL runs first; a lock held elsewhere is named with the hint */
    assert_int_equal(sqlite3_open(path, &holder), SQLITE_OK);
    assert_int_equal(sqlite3_exec(holder, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    s.setup_sql = "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=DELETE;";
    s.after_check_sql = "BEGIN IMMEDIATE; COMMIT;";
    assert_null(kcu_db_open(path, &s, &version, err, sizeof(err)));
    assert_non_null(strstr(err, "locked"));
    assert_non_null(strstr(err, " (another test uses it)"));
    sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(holder);
    /* and a failing after-check step is reported with the path */
    s.setup_sql = NULL;
    s.after_check_sql = "SELEKT";
    assert_null(kcu_db_open(path, &s, &version, err, sizeof(err)));
    assert_true(strncmp(err, path, strlen(path)) == 0);
    assert_non_null(strstr(err, "syntax error"));
    assert_null(strstr(err, "another test"));
}

static void test_cannot_create(void **state)
{
    char path[256], err[256];
    int version;
    struct kcu_db_spec s = spec(false);

    (void)state;
    s.make_dirs = NULL;
    path_of(path, sizeof(path), "no/such/folder/x.db");
    assert_null(kcu_db_open(path, &s, &version, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot create "));
    assert_non_null(strstr(err, "No such file or directory"));
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/kcu_sqlite_XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[256];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_file_and_reopen),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_bare_foreign_newer),
        cmocka_unit_test(test_truncated_and_corrupt),
        cmocka_unit_test(test_migrate_and_locked),
        cmocka_unit_test(test_cannot_create),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
