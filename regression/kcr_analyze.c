/* chain-regress: are the counter values unique and gap-free, and how long
 * did the requests take. */
#include <stdlib.h>
#include <string.h>

#include "regression/chain_regress.h"

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

bool kcr_analyze_counters(const long long *values, size_t n, size_t expected,
                          struct kcr_counter_analysis *a)
{
    long long *v;

    memset(a, 0, sizeof(*a));
    a->expected = expected;
    a->count = n;
    a->in_order = true;
    if (n == 0) {
        a->unique = true;
        a->gap_free = true;
        a->complete = expected == 0;
        a->ok = false; /* nothing was counted */
        return true;
    }
    if (n > SIZE_MAX / sizeof(*v) || (v = malloc(n * sizeof(*v))) == NULL)
        return false;
    memcpy(v, values, n * sizeof(*v));
    for (size_t i = 1; i < n; i++)
        if (values[i] < values[i - 1])
            a->in_order = false;
    qsort(v, n, sizeof(*v), cmp_ll);
    a->min = v[0];
    a->max = v[n - 1];
    for (size_t i = 1; i < n; i++) {
        /* unsigned: the distance between two int64 values always fits */
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
    a->unique = a->duplicates == 0;
    a->gap_free = a->gaps == 0;
    a->complete = n == expected;
    a->ok = a->unique && a->gap_free && a->complete;
    return true;
}

bool kcr_latency_stats(const double *ms, size_t n, struct kcr_latency *out)
{
    double *v, sum = 0;
    size_t rank;

    memset(out, 0, sizeof(*out));
    out->n = n;
    if (n == 0)
        return true;
    if (n > SIZE_MAX / sizeof(*v) || (v = malloc(n * sizeof(*v))) == NULL)
        return false;
    memcpy(v, ms, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_double);
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    out->min = v[0];
    out->max = v[n - 1];
    out->mean = sum / (double)n;
    out->median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
    rank = n - n / 20; /* ceil(0.95 n) = n - floor(n / 20), at least 1 */
    out->p95 = v[rank - 1];
    free(v);
    return true;
}
