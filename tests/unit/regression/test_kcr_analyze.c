/* chain-regress: the unique/gap-free analysis of counter values and the
 * latency figures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
