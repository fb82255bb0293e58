/* k_server's replay protection: one instance's window (in order, overtaken
 * within the window once, duplicates, below the window, far ahead), the
 * table of instances (registration recorded before the first request is
 * served, also under concurrency; failures; the bound and expiry with the
 * records compacted) and a restart, clean or by crash, with the records in
 * k_server's real database: nothing served before is served again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "services/common/upstream.h"
#include "services/k_server/counter.h"

#define NOW 1800000000

static void id_of(unsigned n, uint8_t id[16])
{
    memset(id, 0xa5, 16);
    memcpy(id, &n, sizeof(n));
}

static void test_window_in_order(void **state)
{
    (void)state;
    struct ksvc_replay_window w = {0};
    for (uint64_t s = 1; s <= 5000; s++)
        assert_int_equal(ksvc_replay_window_spend(&w, s), KSVC_UPSTREAM_OK);
    for (uint64_t s = 5000 - KSVC_REPLAY_WINDOW + 1; s <= 5000; s++)
        assert_int_equal(ksvc_replay_window_spend(&w, s), KSVC_UPSTREAM_REPLAYED);
    assert_int_equal(ksvc_replay_window_spend(&w, 0), KSVC_UPSTREAM_MALFORMED);
}

static void test_window_reordered(void **state)
{
    (void)state;
    struct ksvc_replay_window w = {0};
    /* 1..100 arrive with the odd ones late: each accepted once */
    for (uint64_t s = 2; s <= 100; s += 2)
        assert_int_equal(ksvc_replay_window_spend(&w, s), KSVC_UPSTREAM_OK);
    for (uint64_t s = 1; s <= 100; s += 2)
        assert_int_equal(ksvc_replay_window_spend(&w, s), KSVC_UPSTREAM_OK);
    for (uint64_t s = 1; s <= 100; s++)
        assert_int_equal(ksvc_replay_window_spend(&w, s), KSVC_UPSTREAM_REPLAYED);
    /* a late one at the window's far edge is still taken; one more is not */
    struct ksvc_replay_window v = {0};
    assert_int_equal(ksvc_replay_window_spend(&v, 2000), KSVC_UPSTREAM_OK);
    assert_int_equal(ksvc_replay_window_spend(&v, 2000 - KSVC_REPLAY_WINDOW + 1), KSVC_UPSTREAM_OK);
    assert_int_equal(ksvc_replay_window_spend(&v, 2000 - KSVC_REPLAY_WINDOW + 1),
                     KSVC_UPSTREAM_REPLAYED);
    /* below the window: refused although never seen (cannot tell) */
    assert_int_equal(ksvc_replay_window_spend(&v, 2000 - KSVC_REPLAY_WINDOW),
                     KSVC_UPSTREAM_REPLAYED);
    assert_int_equal(ksvc_replay_window_spend(&v, 1), KSVC_UPSTREAM_REPLAYED);
}

static void test_window_far_ahead_and_laps(void **state)
{
    (void)state;
    struct ksvc_replay_window w = {0};
    assert_int_equal(ksvc_replay_window_spend(&w, 5), KSVC_UPSTREAM_OK);
    /* far ahead: accepted, and the old lap's bits do not haunt the new one */
    assert_int_equal(ksvc_replay_window_spend(&w, 5 + 10 * KSVC_REPLAY_WINDOW), KSVC_UPSTREAM_OK);
    assert_int_equal(ksvc_replay_window_spend(&w, 5 + 9 * KSVC_REPLAY_WINDOW + 7),
                     KSVC_UPSTREAM_OK);
    /* a jump of less than a lap clears exactly what it passes */
    struct ksvc_replay_window v = {0};
    for (uint64_t s = 1; s <= 10; s++)
        assert_int_equal(ksvc_replay_window_spend(&v, s), KSVC_UPSTREAM_OK);
    uint64_t top = 10 + KSVC_REPLAY_WINDOW - 1; /* same slots as 11..; 1..10 still inside */
    assert_int_equal(ksvc_replay_window_spend(&v, top), KSVC_UPSTREAM_OK);
    assert_int_equal(ksvc_replay_window_spend(&v, 10), KSVC_UPSTREAM_REPLAYED);
    assert_int_equal(ksvc_replay_window_spend(&v, 11), KSVC_UPSTREAM_OK);
    assert_int_equal(ksvc_replay_window_spend(&v, top + 5), KSVC_UPSTREAM_OK);
    /* the window is now (top + 5 - WINDOW, top + 5] = (14, top + 5]: 1..14 fell
     * below it (refused), 15 was never seen (taken), top+1..top+4 are new */
    assert_int_equal(ksvc_replay_window_spend(&v, 14), KSVC_UPSTREAM_REPLAYED);
    assert_int_equal(ksvc_replay_window_spend(&v, 15), KSVC_UPSTREAM_OK);
    assert_int_equal(ksvc_replay_window_spend(&v, 15), KSVC_UPSTREAM_REPLAYED);
    for (uint64_t s = top + 1; s < top + 5; s++)
        assert_int_equal(ksvc_replay_window_spend(&v, s), KSVC_UPSTREAM_OK);
    /* the largest sequence number the parser allows */
    struct ksvc_replay_window x = {0};
    assert_int_equal(ksvc_replay_window_spend(&x, UINT64_C(9999999999999999999)), KSVC_UPSTREAM_OK);
    assert_int_equal(ksvc_replay_window_spend(&x, UINT64_C(9999999999999999998)), KSVC_UPSTREAM_OK);
    assert_int_equal(ksvc_replay_window_spend(&x, UINT64_C(9999999999999999999)),
                     KSVC_UPSTREAM_REPLAYED);
}

/* A fake persistence: counts, can fail, can be slow. */
struct fake_store {
    pthread_mutex_t lock;
    int records, forgets, fail_next;
    useconds_t delay;
    uint8_t last_forgotten[16];
};

static int fake_record(void *arg, const uint8_t id[16], int64_t gen)
{
    struct fake_store *f = arg;
    (void)id;
    assert_true(gen >= 1);
    if (f->delay)
        usleep(f->delay);
    pthread_mutex_lock(&f->lock);
    int rc = 0;
    if (f->fail_next > 0) {
        f->fail_next--;
        rc = -1;
    } else
        f->records++;
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static void fake_forget(void *arg, const uint8_t (*ids)[16], const int64_t *gens, size_t n)
{
    struct fake_store *f = arg;
    (void)gens;
    pthread_mutex_lock(&f->lock);
    f->forgets += (int)n;
    if (n > 0)
        memcpy(f->last_forgotten, ids[n - 1], 16);
    pthread_mutex_unlock(&f->lock);
}

static void test_table_instances_and_failure(void **state)
{
    (void)state;
    struct fake_store f = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct ksvc_replay_persist p = {.record = fake_record, .forget = fake_forget, .arg = &f};
    struct ksvc_replay_table *t = ksvc_replay_table_new(&p);
    uint8_t a[16], b[16];
    id_of(1, a);
    id_of(2, b);
    /* instances are independent: the same numbers in each */
    for (uint64_t s = 1; s <= 3; s++) {
        assert_int_equal(ksvc_replay_table_spend(t, a, s, NOW, NOW), KSVC_UPSTREAM_OK);
        assert_int_equal(ksvc_replay_table_spend(t, b, s, NOW, NOW), KSVC_UPSTREAM_OK);
    }
    assert_int_equal(ksvc_replay_table_spend(t, a, 2, NOW, NOW), KSVC_UPSTREAM_REPLAYED);
    assert_int_equal(f.records, 2); /* once per instance, not per request */
    assert_int_equal(ksvc_replay_table_count(t), 2);
    /* a record that cannot be made durable: refused, not admitted, tried again */
    uint8_t c[16];
    id_of(3, c);
    f.fail_next = 1;
    assert_int_equal(ksvc_replay_table_spend(t, c, 1, NOW, NOW), KSVC_UPSTREAM_STATE_FAILED);
    assert_int_equal(ksvc_replay_table_count(t), 2);
    assert_int_equal(ksvc_replay_table_spend(t, c, 1, NOW, NOW), KSVC_UPSTREAM_OK);
    assert_int_equal(f.records, 3);
    ksvc_replay_table_free(t);
}

static void test_table_expiry_and_bound(void **state)
{
    (void)state;
    struct fake_store f = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct ksvc_replay_persist p = {.record = fake_record, .forget = fake_forget, .arg = &f};
    struct ksvc_replay_table *t = ksvc_replay_table_new(&p);
    uint8_t old[16], young[16];
    id_of(10, old);
    id_of(11, young);
    assert_int_equal(ksvc_replay_table_spend(t, old, 1, NOW - 20, NOW), KSVC_UPSTREAM_OK);
    assert_int_equal(ksvc_replay_table_spend(t, young, 1, NOW, NOW), KSVC_UPSTREAM_OK);
    /* kept while anything it had accepted could still pass the skew check */
    long long edge = NOW - 20 + KSVC_UPSTREAM_SKEW_S + KSVC_REPLAY_MARGIN_S;
    assert_int_equal(ksvc_replay_table_expire(t, (time_t)edge), 0);
    assert_int_equal(ksvc_replay_table_expire(t, (time_t)edge + 1), 1);
    assert_int_equal(f.forgets, 1);
    assert_memory_equal(f.last_forgotten, old, 16);
    assert_int_equal(ksvc_replay_table_count(t), 1);
    /* the forgotten instance comes back as new (its old requests are stale) */
    assert_int_equal(ksvc_replay_table_spend(t, old, 2, edge + 1, edge + 1), KSVC_UPSTREAM_OK);
    assert_int_equal(f.records, 3);
    ksvc_replay_table_free(t);

    /* the bound: a full table of live instances refuses a new one, until they expire */
    struct ksvc_replay_table *m = ksvc_replay_table_new(NULL);
    for (unsigned i = 0; i < KSVC_REPLAY_MAX_INSTANCES; i++) {
        uint8_t id[16];
        id_of(1000 + i, id);
        assert_int_equal(ksvc_replay_table_spend(m, id, 1, NOW, NOW), KSVC_UPSTREAM_OK);
    }
    uint8_t extra[16];
    id_of(999, extra);
    assert_int_equal(ksvc_replay_table_spend(m, extra, 1, NOW, NOW), KSVC_UPSTREAM_TOO_MANY);
    long long later = NOW + KSVC_UPSTREAM_SKEW_S + KSVC_REPLAY_MARGIN_S + 1;
    assert_int_equal(ksvc_replay_table_spend(m, extra, 1, later, (time_t)later), KSVC_UPSTREAM_OK);
    assert_int_equal(ksvc_replay_table_count(m), 1);
    ksvc_replay_table_free(m);
}

struct spender {
    struct ksvc_replay_table *t;
    const uint8_t *id;
    uint64_t first;
    int ok, replayed;
};

static void *spend_many(void *arg)
{
    struct spender *s = arg;
    /* every thread sends 1..400 of the same new instance: each number passes once */
    for (uint64_t k = 0; k < 400; k++) {
        uint64_t seq = 1 + (s->first + k) % 400;
        enum ksvc_upstream_verdict v = ksvc_replay_table_spend(s->t, s->id, seq, NOW, NOW);
        s->ok += v == KSVC_UPSTREAM_OK;
        s->replayed += v == KSVC_UPSTREAM_REPLAYED;
    }
    return NULL;
}

static void test_table_concurrent_registration(void **state)
{
    (void)state;
    struct fake_store f = {.lock = PTHREAD_MUTEX_INITIALIZER, .delay = 20000};
    struct ksvc_replay_persist p = {.record = fake_record, .forget = fake_forget, .arg = &f};
    struct ksvc_replay_table *t = ksvc_replay_table_new(&p);
    uint8_t id[16];
    id_of(77, id);
    struct spender s[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        s[i] = (struct spender){.t = t, .id = id, .first = (uint64_t)i * 50};
        assert_int_equal(pthread_create(&th[i], NULL, spend_many, &s[i]), 0);
    }
    int ok = 0, replayed = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ok += s[i].ok;
        replayed += s[i].replayed;
    }
    assert_int_equal(ok, 400);
    assert_int_equal(replayed, 7 * 400);
    assert_int_equal(f.records, 1); /* the others waited for the one record */
    ksvc_replay_table_free(t);
}

/* ---- with k_server's database ---- */

static char dir[64], path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/kcard-replay.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/k_server.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

struct started {
    struct ksrv_counter *c;
    struct ksvc_replay_table *t;
    size_t loaded;
};

/* What k_server's main does at start (ksrv_replay_open). */
static void start(struct started *s, const char *file, time_t now)
{
    char err[256];
    s->c = ksrv_counter_open(file, false, NULL, err, sizeof(err));
    assert_non_null(s->c);
    s->loaded = 0;
    s->t = ksrv_replay_open(s->c, now, &s->loaded, err, sizeof(err));
    assert_non_null(s->t);
}

static void stop(struct started *s)
{
    ksvc_replay_table_free(s->t);
    ksrv_counter_close(s->c);
}

static int count_row(void *arg, const uint8_t id[16], int64_t gen)
{
    (void)id;
    (void)gen;
    (*(int *)arg)++;
    return 0;
}

static int rows(struct ksrv_counter *c)
{
    int n = 0;
    char err[128];
    assert_int_equal(ksrv_instance_each(c, count_row, &n, err, sizeof(err)), 0);
    return n;
}

static void test_restart_refuses_what_was_served(void **state)
{
    (void)state;
    uint8_t key[32];
    ksvc_upstream_key("restart-token", key);
    uint8_t inst[16];
    id_of(5, inst);
    char h[20][256];
    struct ksvc_upstream_auth a;
    struct started s;
    start(&s, path, NOW);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(ksvc_upstream_sign(key, inst, (uint64_t)i + 1, "POST", "/counter/next",
                                            "r", "{}", 2, NOW, h[i], sizeof(h[i])),
                         0);
        if (i < 10)
            assert_int_equal(
                ksvc_upstream_verify(key, s.t, h[i], "POST", "/counter/next", "{}", 2, NOW, &a),
                KSVC_UPSTREAM_OK);
    }
    assert_int_equal(rows(s.c), 1);
    /* a crash: the file as it is now is what the next run finds */
    char crashed[160], cmd[400];
    snprintf(crashed, sizeof(crashed), "%s/crashed.db", dir);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, crashed);
    assert_int_equal(system(cmd), 0);
    stop(&s);

    /* after a clean stop and after a crash alike: every captured request of
     * the instance is refused, served (1..10) or not (11..20) */
    const char *files[] = {path, crashed};
    for (int f = 0; f < 2; f++) {
        start(&s, files[f], NOW + 5);
        assert_int_equal(s.loaded, 1);
        for (int i = 0; i < 20; i++)
            assert_int_equal(
                ksvc_upstream_verify(key, s.t, h[i], "POST", "/counter/next", "{}", 2, NOW + 5, &a),
                KSVC_UPSTREAM_REPLAYED);
        /* a new instance (k_proxy after the refusal) is served at once */
        uint8_t fresh[16];
        id_of(6, fresh);
        char nh[256];
        assert_int_equal(ksvc_upstream_sign(key, fresh, 1, "POST", "/counter/next", "r", "{}", 2,
                                            NOW + 5, nh, sizeof(nh)),
                         0);
        assert_int_equal(
            ksvc_upstream_verify(key, s.t, nh, "POST", "/counter/next", "{}", 2, NOW + 5, &a),
            KSVC_UPSTREAM_OK);
        stop(&s);
    }

    /* a second restart still refuses them; once the closed instance is past
     * the skew window, its old requests are stale and the records compacted */
    start(&s, path, NOW + 10);
    assert_int_equal(s.loaded, 2);
    assert_int_equal(
        ksvc_upstream_verify(key, s.t, h[3], "POST", "/counter/next", "{}", 2, NOW + 10, &a),
        KSVC_UPSTREAM_REPLAYED);
    time_t late = NOW + 10 + 2 * KSVC_UPSTREAM_SKEW_S + KSVC_REPLAY_MARGIN_S + 1;
    assert_int_equal(ksvc_replay_table_expire(s.t, late), 2);
    assert_int_equal(ksvc_replay_table_count(s.t), 0);
    assert_int_equal(rows(s.c), 0);
    assert_int_equal(
        ksvc_upstream_verify(key, s.t, h[3], "POST", "/counter/next", "{}", 2, late, &a),
        KSVC_UPSTREAM_STALE);
    /* the old instance may sign again (fresh time): a new window, a new record */
    char again[256];
    assert_int_equal(ksvc_upstream_sign(key, inst, 21, "POST", "/counter/next", "r", "{}", 2, late,
                                        again, sizeof(again)),
                     0);
    assert_int_equal(
        ksvc_upstream_verify(key, s.t, again, "POST", "/counter/next", "{}", 2, late, &a),
        KSVC_UPSTREAM_OK);
    assert_int_equal(rows(s.c), 1);
    stop(&s);
}

static void test_forget_spares_a_newer_record(void **state)
{
    (void)state;
    char err[256];
    struct ksrv_counter *c = ksrv_counter_open(path, false, NULL, err, sizeof(err));
    assert_non_null(c);
    uint8_t id[16];
    id_of(9, id);
    assert_int_equal(ksrv_instance_record(c, id, 1), 0);
    /* the instance expired and came back (gen 2) before gen 1's record went */
    assert_int_equal(ksrv_instance_record(c, id, 2), 0);
    const int64_t gens[1] = {1};
    ksrv_instance_forget(c, (const uint8_t(*)[16])id, gens, 1);
    assert_int_equal(rows(c), 1);
    ksrv_counter_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_in_order),
        cmocka_unit_test(test_window_reordered),
        cmocka_unit_test(test_window_far_ahead_and_laps),
        cmocka_unit_test(test_table_instances_and_failure),
        cmocka_unit_test(test_table_expiry_and_bound),
        cmocka_unit_test(test_table_concurrent_registration),
        cmocka_unit_test_setup_teardown(test_restart_refuses_what_was_served, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_spares_a_newer_record, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
