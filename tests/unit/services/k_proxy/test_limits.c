/* k_proxy's rate limits and lockouts (services/k_proxy/limits.h): token
 * buckets, Retry-After rounding, lockout doubling and its cap, eviction
 * within a fixed bound, and exact counting across threads. Time is driven
 * by the tests (no sleeping). Also the card thread's bounded queue
 * (card_worker.h): the bound on requests waiting for the card. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "services/k_proxy/card_worker.h"
#include "services/k_proxy/limits.h"

#define SEC 1000000000LL
#define MS 1000000LL
#define T0 (1000 * SEC)

/* Every rate off unless a test sets it. */
static void cfg_none(struct kpx_limits_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->sets = 64;
}

static void test_retry_after_rounding(void **state)
{
    (void)state;
    assert_int_equal(kpx_limits_retry_after_s(0), 1);
    assert_int_equal(kpx_limits_retry_after_s(-5), 1);
    assert_int_equal(kpx_limits_retry_after_s(1), 1);
    assert_int_equal(kpx_limits_retry_after_s(SEC), 1);
    assert_int_equal(kpx_limits_retry_after_s(SEC + 1), 2);
    assert_int_equal(kpx_limits_retry_after_s(2 * SEC + 500 * MS), 3);
    assert_int_equal(kpx_limits_retry_after_s(900 * SEC), 900);
}

static void test_lock_doubling_and_cap(void **state)
{
    (void)state;
    assert_true(kpx_limits_lock_ns(0, 1000, 900) == 0);
    assert_true(kpx_limits_lock_ns(1, 1000, 900) == 1 * SEC);
    assert_true(kpx_limits_lock_ns(2, 1000, 900) == 2 * SEC);
    assert_true(kpx_limits_lock_ns(3, 1000, 900) == 4 * SEC);
    assert_true(kpx_limits_lock_ns(10, 1000, 900) == 512 * SEC);
    assert_true(kpx_limits_lock_ns(11, 1000, 900) == 900 * SEC);
    assert_true(kpx_limits_lock_ns(64, 1000, 900) == 900 * SEC);
    assert_true(kpx_limits_lock_ns(4000000000u, 1000, 900) == 900 * SEC);
    assert_true(kpx_limits_lock_ns(3, 250, 1) == 1 * SEC);
}

static void test_bucket_burst_then_rate(void **state)
{
    (void)state;
    struct kpx_limits_cfg c;
    cfg_none(&c);
    c.counter_session = (struct kpx_rate){10, 5};
    char err[128];
    struct kpx_limits *l = kpx_limits_new(&c, err, sizeof(err));
    assert_non_null(l);
    struct kpx_limit_verdict v;
    for (int i = 0; i < 5; i++) {
        kpx_limits_counter(l, "tokA", "10.0.0.1", T0, &v);
        assert_int_equal(v.scope, KPX_LIMIT_NONE);
    }
    kpx_limits_counter(l, "tokA", "10.0.0.1", T0, &v);
    assert_int_equal(v.scope, KPX_LIMIT_SESSION);
    assert_false(v.locked);
    assert_int_equal(v.retry_after_s, 1); /* 100 ms, rounded up */
    /* another session is not touched by A's flood */
    kpx_limits_counter(l, "tokB", "10.0.0.1", T0, &v);
    assert_int_equal(v.scope, KPX_LIMIT_NONE);
    /* 100 ms later exactly one more */
    kpx_limits_counter(l, "tokA", "10.0.0.1", T0 + 100 * MS, &v);
    assert_int_equal(v.scope, KPX_LIMIT_NONE);
    kpx_limits_counter(l, "tokA", "10.0.0.1", T0 + 100 * MS, &v);
    assert_int_equal(v.scope, KPX_LIMIT_SESSION);
    /* the burst is a ceiling: an hour idle gives 5, not 36000 */
    int ok = 0;
    for (int i = 0; i < 50; i++) {
        kpx_limits_counter(l, "tokA", "10.0.0.1", T0 + 3600 * SEC, &v);
        ok += v.scope == KPX_LIMIT_NONE;
    }
    assert_int_equal(ok, 5);
    kpx_limits_free(l);
}

static void test_slow_rate_retry_after(void **state)
{
    (void)state;
    struct kpx_limits_cfg c;
    cfg_none(&c);
    c.counter_session = (struct kpx_rate){0.25, 1}; /* one per 4 s */
    char err[128];
    struct kpx_limits *l = kpx_limits_new(&c, err, sizeof(err));
    assert_non_null(l);
    struct kpx_limit_verdict v;
    kpx_limits_counter(l, "t", "a", T0, &v);
    assert_int_equal(v.scope, KPX_LIMIT_NONE);
    kpx_limits_counter(l, "t", "a", T0 + 500 * MS, &v);
    assert_int_equal(v.scope, KPX_LIMIT_SESSION);
    assert_int_equal(v.retry_after_s, 4); /* 3.5 s left, rounded up */
    kpx_limits_counter(l, "t", "a", T0 + 4 * SEC, &v);
    assert_int_equal(v.scope, KPX_LIMIT_NONE);
    kpx_limits_free(l);
}

static void test_address_refusal_refunds_session(void **state)
{
    (void)state;
    struct kpx_limits_cfg c;
    cfg_none(&c);
    c.counter_session = (struct kpx_rate){1, 3};
    c.counter_address = (struct kpx_rate){1, 2};
    char err[128];
    struct kpx_limits *l = kpx_limits_new(&c, err, sizeof(err));
    assert_non_null(l);
    struct kpx_limit_verdict v;
    kpx_limits_counter(l, "s1", "addr", T0, &v);
    assert_int_equal(v.scope, KPX_LIMIT_NONE);
    kpx_limits_counter(l, "s1", "addr", T0, &v);
    assert_int_equal(v.scope, KPX_LIMIT_NONE);
    kpx_limits_counter(l, "s1", "addr", T0, &v);
    assert_int_equal(v.scope, KPX_LIMIT_ADDRESS);
    /* the session's third token was given back: usable from elsewhere */
    kpx_limits_counter(l, "s1", "other", T0, &v);
    assert_int_equal(v.scope, KPX_LIMIT_NONE);
    kpx_limits_counter(l, "s1", "other", T0, &v);
    assert_int_equal(v.scope, KPX_LIMIT_SESSION);
    kpx_limits_free(l);
}

static void test_unlimited_keeps_no_state(void **state)
{
    (void)state;
    struct kpx_limits_cfg c;
    cfg_none(&c);
    char err[128];
    struct kpx_limits *l = kpx_limits_new(&c, err, sizeof(err));
    assert_non_null(l);
    struct kpx_limit_verdict v;
    for (int i = 0; i < 100000; i++) {
        kpx_limits_counter(l, "t", "a", T0, &v);
        assert_int_equal(v.scope, KPX_LIMIT_NONE);
    }
    assert_int_equal(kpx_limits_entries(l, KPX_LIMIT_SESSION, true), 0);
    kpx_limits_free(l);
}

static void test_lockout_doubles_and_success_resets(void **state)
{
    (void)state;
    struct kpx_limits_cfg c;
    cfg_none(&c);
    c.lockout_after_user = 3;
    c.lockout_base_ms = 1000;
    c.lockout_max_s = 5;
    char err[128];
    struct kpx_limits *l = kpx_limits_new(&c, err, sizeof(err));
    assert_non_null(l);
    struct kpx_limit_verdict v;
    int64_t t = T0;
    assert_int_equal(kpx_limits_login_result(l, "alice", "a", KPX_LIMIT_DENIAL, t), 0);
    assert_int_equal(kpx_limits_login_result(l, "alice", "a", KPX_LIMIT_DENIAL, t), 0);
    kpx_limits_login(l, "alice", "a", t, &v);
    assert_int_equal(v.scope, KPX_LIMIT_NONE);
    /* card unavailable says nothing about the person */
    assert_int_equal(kpx_limits_login_result(l, "alice", "a", KPX_LIMIT_NEUTRAL, t), 0);
    assert_int_equal(kpx_limits_login_result(l, "alice", "a", KPX_LIMIT_DENIAL, t), 1);
    kpx_limits_login(l, "alice", "a", t, &v);
    assert_int_equal(v.scope, KPX_LIMIT_USER);
    assert_true(v.locked);
    assert_int_equal(v.retry_after_s, 1);
    /* bob is not locked */
    kpx_limits_login(l, "bob", "a", t, &v);
    assert_int_equal(v.scope, KPX_LIMIT_NONE);
    /* each further denial doubles: 2 s, 4 s, then the 5 s cap */
    int want[] = {2, 4, 5, 5};
    for (int i = 0; i < 4; i++) {
        t += 10 * SEC;
        kpx_limits_login(l, "alice", "a", t, &v);
        assert_int_equal(v.scope, KPX_LIMIT_NONE);
        assert_int_equal(kpx_limits_login_result(l, "alice", "a", KPX_LIMIT_DENIAL, t), 1);
        kpx_limits_login(l, "alice", "a", t + 1, &v);
        assert_true(v.locked);
        assert_int_equal(v.retry_after_s, want[i]);
    }
    /* a success ends it: the next lock needs 3 denials again, and is 1 s */
    t += 10 * SEC;
    kpx_limits_login_result(l, "alice", "a", KPX_LIMIT_SUCCESS, t);
    kpx_limits_login_result(l, "alice", "a", KPX_LIMIT_DENIAL, t);
    kpx_limits_login_result(l, "alice", "a", KPX_LIMIT_DENIAL, t);
    kpx_limits_login(l, "alice", "a", t, &v);
    assert_int_equal(v.scope, KPX_LIMIT_NONE);
    kpx_limits_login_result(l, "alice", "a", KPX_LIMIT_DENIAL, t);
    kpx_limits_login(l, "alice", "a", t, &v);
    assert_true(v.locked);
    assert_int_equal(v.retry_after_s, 1);
    kpx_limits_free(l);
}

static void test_address_lockout(void **state)
{
    (void)state;
    struct kpx_limits_cfg c;
    cfg_none(&c);
    c.lockout_after_address = 4;
    char err[128];
    struct kpx_limits *l = kpx_limits_new(&c, err, sizeof(err));
    assert_non_null(l);
    char user[16];
    for (int i = 0; i < 4; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        assert_int_equal(kpx_limits_login_result(l, user, "1.2.3.4", KPX_LIMIT_DENIAL, T0),
                         i == 3 ? 1 : 0);
    }
    struct kpx_limit_verdict v;
    kpx_limits_login(l, "fresh", "1.2.3.4", T0, &v);
    assert_int_equal(v.scope, KPX_LIMIT_ADDRESS);
    assert_true(v.locked);
    kpx_limits_login(l, "fresh", "5.6.7.8", T0, &v);
    assert_int_equal(v.scope, KPX_LIMIT_NONE);
    kpx_limits_free(l);
}

static void test_login_rates(void **state)
{
    (void)state;
    struct kpx_limits_cfg c;
    kpx_limits_cfg_default(&c);
    c.sets = 16;
    char err[128];
    struct kpx_limits *l = kpx_limits_new(&c, err, sizeof(err));
    assert_non_null(l);
    struct kpx_limit_verdict v;
    int ok = 0;
    for (int i = 0; i < 100; i++) {
        kpx_limits_login(l, "carol", "a", T0, &v);
        ok += v.scope == KPX_LIMIT_NONE;
    }
    assert_int_equal(ok, (int)KPX_LOGIN_USER_BURST);
    assert_int_equal(v.scope, KPX_LIMIT_USER);
    assert_false(v.locked);
    kpx_limits_free(l);
}

static void test_eviction_bound_keeps_locks(void **state)
{
    (void)state;
    struct kpx_limits_cfg c;
    cfg_none(&c);
    c.sets = 4; /* 32 entries */
    c.login_user = (struct kpx_rate){10, 10};
    c.lockout_after_user = 1;
    c.lockout_base_ms = 86400 * 1000;
    c.lockout_max_s = 86400;
    char err[128];
    struct kpx_limits *l = kpx_limits_new(&c, err, sizeof(err));
    assert_non_null(l);
    assert_int_equal(kpx_limits_login_result(l, "victim", "a", KPX_LIMIT_DENIAL, T0), 1);
    struct kpx_limit_verdict v;
    char user[32];
    /* a hostile client makes up 20,000 usernames, one attempt each a
     * second apart: the table never grows, and the lock is kept */
    for (int i = 0; i < 20000; i++) {
        snprintf(user, sizeof(user), "rnd%d", i);
        kpx_limits_login(l, user, "", T0 + (int64_t)i * SEC, &v);
        assert_int_equal(v.scope, KPX_LIMIT_NONE);
        assert_true(kpx_limits_entries(l, KPX_LIMIT_USER, false) <= 4 * KPX_LIMIT_WAYS);
    }
    kpx_limits_login(l, "victim", "", T0 + 20000 * SEC, &v);
    assert_true(v.locked);
    assert_int_equal(kpx_limits_entries(l, KPX_LIMIT_USER, false), 4 * KPX_LIMIT_WAYS);
    kpx_limits_free(l);
}

static void test_bad_cfg(void **state)
{
    (void)state;
    struct kpx_limits_cfg c;
    cfg_none(&c);
    char err[128] = "";
    c.counter_session.rate = -1;
    assert_null(kpx_limits_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "counter per session"));
    cfg_none(&c);
    c.login_address.burst = 1e12;
    assert_null(kpx_limits_new(&c, err, sizeof(err)));
    cfg_none(&c);
    c.sets = 1u << 30;
    assert_null(kpx_limits_new(&c, err, sizeof(err)));
    assert_string_equal(kpx_limit_scope_name(KPX_LIMIT_SESSION), "session");
    assert_string_equal(kpx_limit_scope_name(KPX_LIMIT_USER), "user");
}

struct race {
    struct kpx_limits *l;
    int allowed;
};

static void *hammer(void *arg)
{
    struct race *r = arg;
    struct kpx_limit_verdict v;
    for (int i = 0; i < 20000; i++) {
        kpx_limits_counter(r->l, "shared", "addr", T0, &v);
        r->allowed += v.scope == KPX_LIMIT_NONE;
    }
    return NULL;
}

static void test_threads_count_exactly(void **state)
{
    (void)state;
    struct kpx_limits_cfg c;
    cfg_none(&c);
    c.counter_session = (struct kpx_rate){1, 1000};
    char err[128];
    struct kpx_limits *l = kpx_limits_new(&c, err, sizeof(err));
    assert_non_null(l);
    struct race r[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct race){l, 0};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &r[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += r[i].allowed;
    }
    assert_int_equal(total, 1000);
    kpx_limits_free(l);
}

/* ---- the card thread's queue ---- */

struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    int ran, cancelled, entered;
};

struct gated_job {
    struct kpx_card_job base;
    struct gate *g;
};

static void gated_run(struct kpx_card_job *job, bool cancelled)
{
    struct gated_job *j = (struct gated_job *)job;
    pthread_mutex_lock(&j->g->lock);
    if (cancelled)
        j->g->cancelled++;
    else {
        j->g->entered++;
        while (!j->g->open)
            pthread_cond_wait(&j->g->cond, &j->g->lock);
        j->g->ran++;
    }
    pthread_mutex_unlock(&j->g->lock);
}

static void open_gate(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static void wait_ran(struct gate *g, int n)
{
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&g->lock);
        int ran = g->ran;
        pthread_mutex_unlock(&g->lock);
        if (ran >= n)
            return;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    fail_msg("the card thread ran fewer than %d jobs in 5 s", n);
}

static void test_card_queue_bound(void **state)
{
    (void)state;
    char err[128];
    assert_null(kpx_card_worker_new(KPX_MAX_CARD_WAITERS_LIMIT + 1, err, sizeof(err)));
    struct kpx_card_worker *w = kpx_card_worker_new(3, err, sizeof(err));
    assert_non_null(w);
    assert_int_equal(kpx_card_worker_max_waiters(w), 3);
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0, 0};
    struct gated_job jobs[5];
    for (int i = 0; i < 5; i++)
        jobs[i] = (struct gated_job){{gated_run, 0, NULL}, &g};
    for (int i = 0; i < 3; i++)
        assert_int_equal(kpx_card_worker_submit(w, &jobs[i].base), KPX_CARD_QUEUED);
    /* one using the card, two waiting: the fourth is refused at once */
    assert_int_equal(kpx_card_worker_submit(w, &jobs[3].base), KPX_CARD_FULL);
    assert_int_equal(kpx_card_worker_waiters(w), 3);
    open_gate(&g);
    wait_ran(&g, 3);
    for (int i = 0; i < 200 && kpx_card_worker_waiters(w) != 0; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    assert_int_equal(kpx_card_worker_waiters(w), 0);
    assert_int_equal(kpx_card_worker_submit(w, &jobs[3].base), KPX_CARD_QUEUED);
    wait_ran(&g, 4);
    kpx_card_worker_stop(w);
    assert_int_equal(kpx_card_worker_submit(w, &jobs[4].base), KPX_CARD_STOPPING);
    assert_int_equal(g.cancelled, 0);
    kpx_card_worker_free(w);
}

static void *stopper(void *arg)
{
    kpx_card_worker_stop(arg);
    return NULL;
}

static void test_card_queue_stop_cancels_waiting(void **state)
{
    (void)state;
    char err[128];
    struct kpx_card_worker *w = kpx_card_worker_new(0, err, sizeof(err));
    assert_non_null(w);
    assert_int_equal(kpx_card_worker_max_waiters(w), KPX_MAX_CARD_WAITERS_DEFAULT);
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0, 0};
    struct gated_job jobs[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (struct gated_job){{gated_run, 0, NULL}, &g};
        assert_int_equal(kpx_card_worker_submit(w, &jobs[i].base), KPX_CARD_QUEUED);
    }
    for (int i = 0; i < 5000; i++) { /* the first one is using the card */
        pthread_mutex_lock(&g.lock);
        int entered = g.entered;
        pthread_mutex_unlock(&g.lock);
        if (entered > 0)
            break;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stopper, w), 0);
    nanosleep(&(struct timespec){0, 50000000}, NULL);
    open_gate(&g); /* the running one finishes; the two waiting are cancelled */
    pthread_join(th, NULL);
    assert_int_equal(g.ran, 1);
    assert_int_equal(g.cancelled, 2);
    kpx_card_worker_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_rounding),
        cmocka_unit_test(test_lock_doubling_and_cap),
        cmocka_unit_test(test_bucket_burst_then_rate),
        cmocka_unit_test(test_slow_rate_retry_after),
        cmocka_unit_test(test_address_refusal_refunds_session),
        cmocka_unit_test(test_unlimited_keeps_no_state),
        cmocka_unit_test(test_lockout_doubles_and_success_resets),
        cmocka_unit_test(test_address_lockout),
        cmocka_unit_test(test_login_rates),
        cmocka_unit_test(test_eviction_bound_keeps_locks),
        cmocka_unit_test(test_bad_cfg),
        cmocka_unit_test(test_threads_count_exactly),
        cmocka_unit_test(test_card_queue_bound),
        cmocka_unit_test(test_card_queue_stop_cancels_waiting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
