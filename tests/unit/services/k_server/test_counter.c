/* k_server's durable counter: first value, uniqueness under threads, no gap
 * across a clean restart, a gap but no repeat after a crash (also one taken
 * while the next block is being reserved ahead), the reservation kept ahead
 * by the background thread, one process per file, foreign, corrupt and
 * empty files refused untouched, --init, and the schema 1 upgrade. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>

#include "services/k_server/counter.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/kcard-counter.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/sub/k_server.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int64_t next(struct ksrv_counter *c)
{
    int64_t v = -1;
    char err[256];
    assert_int_equal(ksrv_counter_next(c, &v, err, sizeof(err)), 0);
    return v;
}

static void test_first_and_restart(void **state)
{
    (void)state;
    char err[256];
    bool created = false;
    struct ksrv_counter *c = ksrv_counter_open(path, false, &created, err, sizeof(err));
    assert_non_null(c);
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(next(c), 1);
    assert_int_equal(next(c), 2);
    assert_int_equal(next(c), 3);
    ksrv_counter_close(c);
    c = ksrv_counter_open(path, false, &created, err, sizeof(err));
    assert_non_null(c);
    assert_false(created);
    int64_t cur = -1;
    assert_int_equal(ksrv_counter_current(c, &cur), 0);
    assert_int_equal(cur, 3);
    assert_int_equal(next(c), 4); /* a clean stop leaves no gap */
    ksrv_counter_close(c);
}

struct worker {
    struct ksrv_counter *c;
    int64_t got[500];
};

static void *work(void *arg)
{
    struct worker *w = arg;
    char err[256];
    for (int i = 0; i < 500; i++)
        if (ksrv_counter_next(w->c, &w->got[i], err, sizeof(err)) != 0)
            w->got[i] = -1;
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_threads_unique_gap_free(void **state)
{
    (void)state;
    char err[256];
    struct ksrv_counter *c = ksrv_counter_open(":memory:", false, NULL, err, sizeof(err));
    assert_non_null(c);
    static struct worker w[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        w[i].c = c;
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    static int64_t all[4000];
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        memcpy(all + 500 * i, w[i].got, sizeof(w[i].got));
    }
    qsort(all, 4000, sizeof(all[0]), cmp64);
    for (int i = 0; i < 4000; i++)
        assert_int_equal(all[i], i + 1);
    ksrv_counter_close(c);
}

static int copy(const char *from, const char *to)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s' 2>/dev/null", from, to);
    return system(cmd);
}

static void test_crash_skips_never_repeats(void **state)
{
    (void)state;
    char err[256], crashed[160], from[200], to[200];
    struct ksrv_counter *c = ksrv_counter_open(path, false, NULL, err, sizeof(err));
    assert_non_null(c);
    for (int i = 1; i <= 10; i++)
        assert_int_equal(next(c), i);
    /* a crash now: what is on disk is what a new process would find */
    snprintf(crashed, sizeof(crashed), "%s/crashed.db", dir);
    assert_int_equal(copy(path, crashed), 0);
    snprintf(from, sizeof(from), "%s-journal", path);
    snprintf(to, sizeof(to), "%s-journal", crashed);
    copy(from, to); /* a hot journal, if there was one */
    ksrv_counter_close(c);
    struct ksrv_counter *after = ksrv_counter_open(crashed, false, NULL, err, sizeof(err));
    assert_non_null(after);
    int64_t v = next(after);
    assert_true(v > 10); /* never a value handed out before the crash */
    assert_true(v <= 10 + 2 * KSRV_RESERVE_BLOCK + 1);
    ksrv_counter_close(after);
}

static void test_one_process_per_file(void **state)
{
    (void)state;
    char err[256];
    struct ksrv_counter *c = ksrv_counter_open(path, false, NULL, err, sizeof(err));
    assert_non_null(c);
    next(c);
    struct ksrv_counter *second = ksrv_counter_open(path, false, NULL, err, sizeof(err));
    assert_null(second);
    assert_non_null(strstr(err, "another k_server"));
    ksrv_counter_close(c);
}

static void test_foreign_and_corrupt_refused(void **state)
{
    (void)state;
    char err[256], foreign[160], corrupt[160];
    snprintf(foreign, sizeof(foreign), "%s/foreign.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(foreign, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_null(ksrv_counter_open(foreign, false, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "not a k_server database"));

    snprintf(corrupt, sizeof(corrupt), "%s/corrupt.db", dir);
    FILE *f = fopen(corrupt, "w");
    assert_non_null(f);
    fputs("this is not SQLite at all, just some text of some length\n", f);
    fclose(f);
    assert_null(ksrv_counter_open(corrupt, false, NULL, err, sizeof(err)));
    f = fopen(corrupt, "r");
    char line[128] = "";
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    assert_string_equal(line, "this is not SQLite at all, just some text of some length\n");

    char newer[160];
    snprintf(newer, sizeof(newer), "%s/newer.db", dir);
    assert_int_equal(sqlite3_open(newer, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_null(ksrv_counter_open(newer, false, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "newer"));
}

/* Copies the database as it is on disk now (what a crash leaves) and returns
 * the first value a new process would hand out from it. */
static int64_t first_after_crash(const char *name)
{
    char err[256], crashed[200];
    snprintf(crashed, sizeof(crashed), "%s/%s", dir, name);
    assert_int_equal(copy(path, crashed), 0);
    struct ksrv_counter *after = ksrv_counter_open(crashed, false, NULL, err, sizeof(err));
    assert_non_null(after);
    int64_t v = next(after);
    ksrv_counter_close(after);
    return v;
}

static void test_reservation_runs_ahead(void **state)
{
    (void)state;
    char err[256];
    struct ksrv_counter *c = ksrv_counter_open(path, false, NULL, err, sizeof(err));
    assert_non_null(c);
    /* reserved at start: the first request does not wait for a commit */
    assert_int_equal(ksrv_counter_reserved(c), KSRV_RESERVE_BLOCK);
    int64_t last = 0;
    for (int round = 0; round < 6; round++) {
        /* hand out past the low-water mark of the current block... */
        for (int i = 0; i < KSRV_RESERVE_BLOCK * 3 / 4; i++) {
            last = next(c);
            /* the durable bound is never below a value handed out */
            assert_true(ksrv_counter_reserved(c) >= last);
        }
        /* ...and the thread has reserved the next one without being waited for */
        int tries = 200;
        while (ksrv_counter_reserved(c) - last < KSRV_RESERVE_BLOCK / 2 && tries-- > 0)
            usleep(10000);
        assert_true(ksrv_counter_reserved(c) - last >= KSRV_RESERVE_BLOCK / 2);
        /* and it is on disk: a crash now resumes above every value handed out */
        int64_t v = first_after_crash("ahead.db");
        assert_true(v > last);
        assert_true(v <= last + 2 * KSRV_RESERVE_BLOCK + 1);
        char crashed[200];
        snprintf(crashed, sizeof(crashed), "%s/ahead.db", dir);
        unlink(crashed);
    }
    char healthy[64];
    assert_true(ksrv_counter_healthy(c, healthy, sizeof(healthy)));
    ksrv_counter_close(c);
    /* a clean stop gives the reservation back */
    c = ksrv_counter_open(path, false, NULL, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(next(c), last + 1);
    ksrv_counter_close(c);
}

struct hammer {
    struct ksrv_counter *c;
    int64_t got[3000];
};

static void *hammer_work(void *arg)
{
    struct hammer *h = arg;
    char err[256];
    for (int i = 0; i < 3000; i++)
        if (ksrv_counter_next(h->c, &h->got[i], err, sizeof(err)) != 0)
            h->got[i] = -1;
    return NULL;
}

static void test_crash_during_ahead_reservation(void **state)
{
    (void)state;
    char err[256];
    struct ksrv_counter *c = ksrv_counter_open(path, false, NULL, err, sizeof(err));
    assert_non_null(c);
    /* 4 threads cross several blocks while crash images are taken: each
     * image resumes above everything handed out before it was taken */
    static struct hammer h[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        h[i].c = c;
        assert_int_equal(pthread_create(&t[i], NULL, hammer_work, &h[i]), 0);
    }
    for (int k = 0; k < 5; k++) {
        int64_t before = 0;
        ksrv_counter_current(c, &before);
        char name[32];
        snprintf(name, sizeof(name), "hammer%d.db", k);
        assert_true(first_after_crash(name) > before);
        usleep(2000);
    }
    static int64_t all[12000];
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        memcpy(all + 3000 * i, h[i].got, sizeof(h[i].got));
    }
    qsort(all, 12000, sizeof(all[0]), cmp64);
    for (int i = 0; i < 12000; i++)
        assert_int_equal(all[i], i + 1);
    ksrv_counter_close(c);
}

static void test_empty_files_and_init(void **state)
{
    (void)state;
    char err[256], empty[160], bare[160];
    struct stat st;
    /* a 0-byte file (a truncated database) is not taken as new */
    snprintf(empty, sizeof(empty), "%s/empty.db", dir);
    FILE *f = fopen(empty, "w");
    assert_non_null(f);
    fclose(f);
    assert_null(ksrv_counter_open(empty, false, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "empty"));
    assert_non_null(strstr(err, "--init"));
    assert_int_equal(stat(empty, &st), 0);
    assert_int_equal(st.st_size, 0);
    /* nor an SQLite file without tables */
    snprintf(bare, sizeof(bare), "%s/bare.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(bare, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA page_size=4096; VACUUM", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_null(ksrv_counter_open(bare, false, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "not a k_server database"));
    /* --init makes a counter in either */
    bool created = true;
    struct ksrv_counter *c = ksrv_counter_open(empty, true, &created, err, sizeof(err));
    assert_non_null(c);
    assert_true(created); /* a new counter, in a file that existed */
    assert_int_equal(next(c), 1);
    ksrv_counter_close(c);
    c = ksrv_counter_open(bare, true, NULL, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(next(c), 1);
    ksrv_counter_close(c);
    /* --init never resets a real database */
    c = ksrv_counter_open(empty, true, &created, err, sizeof(err));
    assert_non_null(c);
    assert_false(created);
    assert_int_equal(next(c), 2);
    ksrv_counter_close(c);
    /* and no side file is left after a clean stop */
    char side[200];
    snprintf(side, sizeof(side), "%s-journal", empty);
    assert_int_not_equal(access(side, F_OK), 0);
    snprintf(side, sizeof(side), "%s-wal", empty);
    assert_int_not_equal(access(side, F_OK), 0);
}

static void test_schema_1_upgraded(void **state)
{
    (void)state;
    char err[256], old[160];
    snprintf(old, sizeof(old), "%s/v1.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(old, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL;"
                     "CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
                     "INSERT INTO counter VALUES ('protected', 500), ('reserved', 564);"
                     "PRAGMA user_version = 1;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    struct ksrv_counter *c = ksrv_counter_open(old, false, NULL, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(next(c), 565); /* after a crash of the old version */
    uint8_t id[16] = {1};
    assert_int_equal(ksrv_instance_record(c, id, 1), 0);
    ksrv_counter_close(c);
}

/* A k_proxy instance that cannot be recorded (a full disk, say) makes every
 * call of that instance fail: health says so until a record succeeds. */
static void test_instance_record_failure_unhealthy(void **state)
{
    (void)state;
    char err[256], why[256] = "";
    struct ksrv_counter *c = ksrv_counter_open(path, false, NULL, err, sizeof(err));
    assert_non_null(c);
    ksrv_counter_close(c);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TRIGGER fail_add BEFORE INSERT ON replay_instances "
                                  "WHEN NEW.gen = 666 BEGIN SELECT RAISE(FAIL, 'disk is full'); "
                                  "END;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    c = ksrv_counter_open(path, false, NULL, err, sizeof(err));
    assert_non_null(c);
    const uint8_t id[16] = {1, 2, 3};
    assert_true(ksrv_counter_healthy(c, why, sizeof(why)));
    assert_int_equal(ksrv_instance_record(c, id, 666), -1);
    assert_false(ksrv_counter_healthy(c, why, sizeof(why)));
    assert_non_null(strstr(why, "k_proxy instance"));
    assert_non_null(strstr(why, "disk is full"));
    assert_int_equal(ksrv_instance_record(c, id, 7), 0);
    assert_true(ksrv_counter_healthy(c, why, sizeof(why)));
    ksrv_counter_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_unique_gap_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_skips_never_repeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_process_per_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_and_corrupt_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reservation_runs_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_during_ahead_reservation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_files_and_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_1_upgraded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instance_record_failure_unhealthy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
