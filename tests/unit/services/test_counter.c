/* k_server's durable counter: first value, uniqueness under threads, no gap
 * across a clean restart, a gap but no repeat after a crash, one process per
 * file, foreign and corrupt files refused untouched. */
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
    struct ksrv_counter *c = ksrv_counter_open(path, err, sizeof(err));
    assert_non_null(c);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(next(c), 1);
    assert_int_equal(next(c), 2);
    assert_int_equal(next(c), 3);
    ksrv_counter_close(c);
    c = ksrv_counter_open(path, err, sizeof(err));
    assert_non_null(c);
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
    struct ksrv_counter *c = ksrv_counter_open(":memory:", err, sizeof(err));
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
    struct ksrv_counter *c = ksrv_counter_open(path, err, sizeof(err));
    assert_non_null(c);
    for (int i = 1; i <= 10; i++)
        assert_int_equal(next(c), i);
    /* a crash now: what is on disk is what a new process would find */
    snprintf(crashed, sizeof(crashed), "%s/crashed.db", dir);
    assert_int_equal(copy(path, crashed), 0);
    snprintf(from, sizeof(from), "%s-wal", path);
    snprintf(to, sizeof(to), "%s-wal", crashed);
    copy(from, to);
    ksrv_counter_close(c);
    struct ksrv_counter *after = ksrv_counter_open(crashed, err, sizeof(err));
    assert_non_null(after);
    int64_t v = next(after);
    assert_true(v > 10); /* never a value handed out before the crash */
    assert_true(v <= 10 + 64 + 1);
    ksrv_counter_close(after);
}

static void test_one_process_per_file(void **state)
{
    (void)state;
    char err[256];
    struct ksrv_counter *c = ksrv_counter_open(path, err, sizeof(err));
    assert_non_null(c);
    next(c);
    struct ksrv_counter *second = ksrv_counter_open(path, err, sizeof(err));
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
    assert_null(ksrv_counter_open(foreign, err, sizeof(err)));
    assert_non_null(strstr(err, "not a k_server database"));

    snprintf(corrupt, sizeof(corrupt), "%s/corrupt.db", dir);
    FILE *f = fopen(corrupt, "w");
    assert_non_null(f);
    fputs("this is not SQLite at all, just some text of some length\n", f);
    fclose(f);
    assert_null(ksrv_counter_open(corrupt, err, sizeof(err)));
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
    assert_null(ksrv_counter_open(newer, err, sizeof(err)));
    assert_non_null(strstr(err, "newer"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_unique_gap_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_skips_never_repeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_process_per_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_and_corrupt_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
