/* chain-regress: the unique/gap-free analysis of counter values and the
 * latency figures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "regression/chain_regress.h"

static void test_gap_free_run(void **state)
{
    const long long v[] = {23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
                           33, 34, 35, 36, 37, 38, 39, 40, 41, 42};
    struct kcr_counter_analysis a;

    (void)state;
    assert_true(kcr_analyze_counters(v, 20, 20, &a));
    assert_true(a.ok);
    assert_true(a.unique);
    assert_true(a.gap_free);
    assert_true(a.complete);
    assert_true(a.in_order);
    assert_int_equal(a.count, 20);
    assert_int_equal(a.min, 23);
    assert_int_equal(a.max, 42);
    assert_int_equal(a.duplicates, 0);
    assert_int_equal(a.gaps, 0);
    assert_int_equal(a.n_missing, 0);
}

static void test_out_of_order_is_fine(void **state)
{
    const long long v[] = {7, 3, 5, 4, 6};
    struct kcr_counter_analysis a;

    (void)state;
    assert_true(kcr_analyze_counters(v, 5, 5, &a));
    assert_true(a.ok);
    assert_false(a.in_order);
    assert_int_equal(a.min, 3);
    assert_int_equal(a.max, 7);
}

static void test_duplicates(void **state)
{
    const long long v[] = {1, 2, 2, 3, 5, 5, 5};
    struct kcr_counter_analysis a;

    (void)state;
    assert_true(kcr_analyze_counters(v, 7, 7, &a));
    assert_false(a.ok);
    assert_false(a.unique);
    assert_int_equal(a.duplicates, 3); /* one extra 2, two extra 5s */
    assert_int_equal(a.n_dup_values, 2);
    assert_int_equal(a.dup_values[0], 2);
    assert_int_equal(a.dup_values[1], 5);
    assert_int_equal(a.gaps, 1); /* 4 */
    assert_int_equal(a.n_missing, 1);
    assert_int_equal(a.missing[0].from, 4);
    assert_int_equal(a.missing[0].to, 4);
}

static void test_gaps(void **state)
{
    const long long v[] = {10, 14, 11, 20};
    struct kcr_counter_analysis a;

    (void)state;
    assert_true(kcr_analyze_counters(v, 4, 4, &a));
    assert_false(a.ok);
    assert_true(a.unique);
    assert_false(a.gap_free);
    assert_true(a.complete);
    assert_int_equal(a.gaps, 2 + 5); /* 12..13, 15..19 */
    assert_int_equal(a.n_missing, 2);
    assert_int_equal(a.missing[0].from, 12);
    assert_int_equal(a.missing[0].to, 13);
    assert_int_equal(a.missing[1].from, 15);
    assert_int_equal(a.missing[1].to, 19);
}

static void test_missing_list_is_bounded(void **state)
{
    long long v[40];
    struct kcr_counter_analysis a;

    (void)state;
    for (int i = 0; i < 40; i++)
        v[i] = i * 2; /* every odd value missing */
    assert_true(kcr_analyze_counters(v, 40, 40, &a));
    assert_int_equal(a.gaps, 39);
    assert_int_equal(a.n_missing, KCR_LIST_MAX);
    assert_int_equal(a.missing[KCR_LIST_MAX - 1].from, 2 * KCR_LIST_MAX - 1);
}

static void test_short_count_is_incomplete(void **state)
{
    const long long v[] = {1, 2, 3};
    struct kcr_counter_analysis a;

    (void)state;
    assert_true(kcr_analyze_counters(v, 3, 5, &a));
    assert_true(a.unique);
    assert_true(a.gap_free);
    assert_false(a.complete);
    assert_false(a.ok);
}

static void test_empty(void **state)
{
    struct kcr_counter_analysis a;

    (void)state;
    assert_true(kcr_analyze_counters(NULL, 0, 20, &a));
    assert_false(a.ok);
    assert_false(a.complete);
    assert_int_equal(a.count, 0);
    assert_int_equal(a.gaps, 0);
}

static void test_one_value(void **state)
{
    const long long v[] = {99};
    struct kcr_counter_analysis a;

    (void)state;
    assert_true(kcr_analyze_counters(v, 1, 1, &a));
    assert_true(a.ok);
    assert_int_equal(a.min, 99);
    assert_int_equal(a.max, 99);
}

static void test_huge_values(void **state)
{
    const long long run[] = {INT64_MAX, INT64_MAX - 2, INT64_MAX - 1};
    const long long wide[] = {INT64_MIN, INT64_MAX};
    const long long neg[] = {-1, 0, 1};
    struct kcr_counter_analysis a;

    (void)state;
    assert_true(kcr_analyze_counters(run, 3, 3, &a));
    assert_true(a.ok);
    assert_int_equal(a.max, INT64_MAX);
    assert_true(kcr_analyze_counters(wide, 2, 2, &a));
    assert_false(a.ok);
    assert_true(a.gaps == UINT64_MAX - 1); /* every int64 but the two */
    assert_int_equal(a.missing[0].from, INT64_MIN + 1);
    assert_int_equal(a.missing[0].to, INT64_MAX - 1);
    assert_true(kcr_analyze_counters(neg, 3, 3, &a));
    assert_true(a.ok);
}

static void test_input_not_modified(void **state)
{
    long long v[] = {3, 1, 2};
    struct kcr_counter_analysis a;

    (void)state;
    assert_true(kcr_analyze_counters(v, 3, 3, &a));
    assert_int_equal(v[0], 3);
    assert_int_equal(v[1], 1);
    assert_int_equal(v[2], 2);
}

static void test_latency_odd(void **state)
{
    const double ms[] = {5, 1, 3, 2, 4};
    struct kcr_latency l;

    (void)state;
    assert_true(kcr_latency_stats(ms, 5, &l));
    assert_int_equal(l.n, 5);
    assert_true(l.min == 1);
    assert_true(l.max == 5);
    assert_true(l.median == 3);
    assert_true(l.mean == 3);
    assert_true(l.p95 == 5); /* ceil(4.75) = 5th */
}

static void test_latency_even_and_p95(void **state)
{
    double ms[20];
    struct kcr_latency l;

    (void)state;
    for (int i = 0; i < 20; i++)
        ms[i] = 20 - i; /* 20..1 */
    assert_true(kcr_latency_stats(ms, 20, &l));
    assert_true(l.median == 10.5);
    assert_true(l.p95 == 19); /* the 19th smallest of 1..20 */
    assert_true(l.min == 1 && l.max == 20);
}

static void test_latency_one_and_none(void **state)
{
    const double one[] = {7.5};
    struct kcr_latency l;

    (void)state;
    assert_true(kcr_latency_stats(one, 1, &l));
    assert_true(l.min == 7.5 && l.median == 7.5 && l.p95 == 7.5 && l.max == 7.5);
    assert_true(kcr_latency_stats(NULL, 0, &l));
    assert_int_equal(l.n, 0);
    assert_true(l.max == 0);
}

/* ---- the linear-time paths against a plain sort, on pseudo-random runs ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;

    return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* the analysis the way it is defined: sort, then walk */
static void reference_counters(const long long *values, size_t n, struct kcr_counter_analysis *a)
{
    long long *v = malloc(n * sizeof(*v));

    assert_non_null(v);
    memset(a, 0, sizeof(*a));
    memcpy(v, values, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_ll);
    a->min = v[0];
    a->max = v[n - 1];
    for (size_t i = 1; i < n; i++) {
        uint64_t step = (uint64_t)v[i] - (uint64_t)v[i - 1];
        if (step == 0) {
            a->duplicates++;
            if (a->n_dup_values < KCR_LIST_MAX &&
                (a->n_dup_values == 0 || a->dup_values[a->n_dup_values - 1] != v[i]))
                a->dup_values[a->n_dup_values++] = v[i];
        } else if (step > 1) {
            a->gaps += step - 1;
            if (a->n_missing < KCR_LIST_MAX) {
                a->missing[a->n_missing].from = v[i - 1] + 1;
                a->missing[a->n_missing].to = v[i] - 1;
                a->n_missing++;
            }
        }
    }
    free(v);
}

static void check_against_reference(const long long *v, size_t n)
{
    struct kcr_counter_analysis a, ref;

    assert_true(kcr_analyze_counters(v, n, n, &a));
    reference_counters(v, n, &ref);
    assert_true(a.min == ref.min && a.max == ref.max);
    assert_int_equal(a.duplicates, ref.duplicates);
    assert_true(a.gaps == ref.gaps);
    assert_int_equal(a.n_dup_values, ref.n_dup_values);
    for (size_t i = 0; i < ref.n_dup_values; i++)
        assert_true(a.dup_values[i] == ref.dup_values[i]);
    assert_int_equal(a.n_missing, ref.n_missing);
    for (size_t i = 0; i < ref.n_missing; i++) {
        assert_true(a.missing[i].from == ref.missing[i].from);
        assert_true(a.missing[i].to == ref.missing[i].to);
    }
    assert_true(a.unique == (ref.duplicates == 0));
    assert_true(a.gap_free == (ref.gaps == 0));
    assert_true(a.ok == (ref.duplicates == 0 && ref.gaps == 0));
}

static void test_counters_match_sorting(void **state)
{
    static long long v[3000];

    (void)state;
    for (int round = 0; round < 300; round++) {
        size_t n = 1 + rng() % 3000;
        /* narrow ranges (the bitmap) and wide ones (the sort), some
         * nearly in order with a few repeats and holes, as a burst gives */
        uint64_t kind = rng() % 4, width = kind == 0   ? n
                                           : kind == 1 ? n + n / 3 + 1
                                           : kind == 2 ? 64 * n + 200
                                                       : 1000000000ULL;
        long long base = (long long)(rng() % 1000000) - 500000;
        for (size_t i = 0; i < n; i++)
            v[i] = kind == 0 ? base + (long long)i : base + (long long)(rng() % width);
        if (kind == 0 && n > 10) {
            v[rng() % n] = v[rng() % n];  /* a repeat, and the hole it leaves */
            v[rng() % n] += (long long)n; /* a value past the end */
            v[0] = v[0] - 64 * 3;         /* holes spanning whole bitmap words */
        }
        check_against_reference(v, n);
    }
}

static void test_counters_word_edges(void **state)
{
    long long v[300];
    size_t n = 0;

    (void)state;
    /* 0..63 full, 64 missing, 65..127 full, 128..255 missing, 256..299 full */
    for (long long x = 0; x < 300; x++)
        if (x != 64 && (x < 128 || x > 255))
            v[n++] = x;
    v[n++] = 63;
    v[n++] = 256;
    check_against_reference(v, n);
}

static void test_latency_matches_sorting(void **state)
{
    static double ms[2001], sorted[2001];
    struct kcr_latency l;

    (void)state;
    for (int round = 0; round < 300; round++) {
        size_t n = 1 + rng() % 2001, rank = n - n / 20;
        uint64_t spread = 1 + rng() % 50; /* few distinct values: many ties */
        for (size_t i = 0; i < n; i++)
            ms[i] = (double)(rng() % spread) * 0.25;
        memcpy(sorted, ms, n * sizeof(*ms));
        qsort(sorted, n, sizeof(*sorted), cmp_double);
        assert_true(kcr_latency_stats(ms, n, &l));
        assert_true(l.min == sorted[0]);
        assert_true(l.max == sorted[n - 1]);
        assert_true(l.median ==
                    (n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0));
        assert_true(l.p95 == sorted[rank - 1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gap_free_run),
        cmocka_unit_test(test_out_of_order_is_fine),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_gaps),
        cmocka_unit_test(test_missing_list_is_bounded),
        cmocka_unit_test(test_short_count_is_incomplete),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_one_value),
        cmocka_unit_test(test_huge_values),
        cmocka_unit_test(test_input_not_modified),
        cmocka_unit_test(test_latency_odd),
        cmocka_unit_test(test_latency_even_and_p95),
        cmocka_unit_test(test_latency_one_and_none),
        cmocka_unit_test(test_counters_match_sorting),
        cmocka_unit_test(test_counters_word_edges),
        cmocka_unit_test(test_latency_matches_sorting),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
