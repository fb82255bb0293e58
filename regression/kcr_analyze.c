/* chain-regress: are the counter values unique and gap-free, and how long
 * did the requests take.
 *
 * Both run in linear time, so that judging a long burst costs the driver
 * little CPU per request: the counter values of a run fill a narrow range
 * (a presence bitmap over min..max), and the latency figures are order
 * statistics (selection, not a full sort). A range too wide for a bitmap
 * falls back to sorting. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "regression/chain_regress.h"

/* a bitmap is used when the range is at most this many bits per value */
#define BITMAP_BITS_PER_VALUE 64

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;

    return (x > y) - (x < y);
}

static void note_dup(struct kcr_counter_analysis *a, long long v)
{
    if (a->n_dup_values < KCR_LIST_MAX &&
        (a->n_dup_values == 0 || a->dup_values[a->n_dup_values - 1] != v))
        a->dup_values[a->n_dup_values++] = v;
}

static void note_gap(struct kcr_counter_analysis *a, long long from, long long to)
{
    /* unsigned: the distance between two int64 values always fits */
    a->gaps += (uint64_t)to - (uint64_t)from + 1;
    if (a->n_missing < KCR_LIST_MAX) {
        a->missing[a->n_missing].from = from;
        a->missing[a->n_missing].to = to;
        a->n_missing++;
    }
}

/* any range: sort a copy, then walk it */
static bool analyze_sorted(const long long *values, size_t n, struct kcr_counter_analysis *a)
{
    long long *v;

    if (n > SIZE_MAX / sizeof(*v) || (v = malloc(n * sizeof(*v))) == NULL)
        return false;
    memcpy(v, values, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_ll);
    for (size_t i = 1; i < n; i++) {
        uint64_t step = (uint64_t)v[i] - (uint64_t)v[i - 1];
        if (step == 0) {
            a->duplicates++;
            note_dup(a, v[i]);
        } else if (step > 1) {
            note_gap(a, v[i - 1] + 1, v[i] - 1);
        }
    }
    free(v);
    return true;
}

/* a narrow range (span values from a->min): one bit per value seen, one
 * per value seen twice; the same figures as analyze_sorted */
static bool analyze_bitmap(const long long *values, size_t n, uint64_t span,
                           struct kcr_counter_analysis *a)
{
    size_t words = (size_t)(span / 64 + 1);
    uint64_t *seen = calloc(words, sizeof(*seen)), *twice = calloc(words, sizeof(*twice));
    uint64_t run_from = 0;
    bool in_gap = false;

    if (seen == NULL || twice == NULL) {
        free(seen);
        free(twice);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t off = (uint64_t)values[i] - (uint64_t)a->min, bit = (uint64_t)1 << (off % 64);
        if (seen[off / 64] & bit) {
            a->duplicates++;
            twice[off / 64] |= bit;
        } else {
            seen[off / 64] |= bit;
        }
    }
    /* ascending: the first duplicated values and missing ranges, as listed */
    for (uint64_t off = 0; off < span; off++) {
        uint64_t w = seen[off / 64], d = twice[off / 64];
        if (off % 64 == 0 && w == UINT64_MAX && d == 0 && !in_gap && off + 64 <= span) {
            off += 63; /* a whole word of values seen once */
            continue;
        }
        if (off % 64 == 0 && w == 0 && in_gap && off + 64 <= span) {
            off += 63; /* a whole word of the gap */
            continue;
        }
        bool here = (w >> (off % 64)) & 1;
        if (here && ((d >> (off % 64)) & 1))
            note_dup(a, (long long)((uint64_t)a->min + off));
        if (!here && !in_gap) {
            in_gap = true;
            run_from = off;
        } else if (here && in_gap) {
            in_gap = false;
            note_gap(a, (long long)((uint64_t)a->min + run_from),
                     (long long)((uint64_t)a->min + off - 1));
        }
    }
    free(seen);
    free(twice);
    return true;
}

bool kcr_analyze_counters(const long long *values, size_t n, size_t expected,
                          struct kcr_counter_analysis *a)
{
    uint64_t span;

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
    a->min = a->max = values[0];
    for (size_t i = 1; i < n; i++) {
        if (values[i] < values[i - 1])
            a->in_order = false;
        if (values[i] < a->min)
            a->min = values[i];
        if (values[i] > a->max)
            a->max = values[i];
    }
    /* max - min + 1 values in the range; UINT64_MAX: it would wrap */
    span = (uint64_t)a->max - (uint64_t)a->min;
    span = span == UINT64_MAX ? UINT64_MAX : span + 1;
    if (span / BITMAP_BITS_PER_VALUE <= (uint64_t)n) {
        if (!analyze_bitmap(values, n, span, a))
            return false;
    } else if (!analyze_sorted(values, n, a)) {
        return false;
    }
    a->unique = a->duplicates == 0;
    a->gap_free = a->gaps == 0;
    a->complete = n == expected;
    a->ok = a->unique && a->gap_free && a->complete;
    return true;
}

static double median_of_three(double a, double b, double c)
{
    if (a < b)
        return b < c ? b : (a < c ? c : a);
    return a < c ? a : (b < c ? c : b);
}

/* the k-th smallest (0-based) of v[0..n-1] by quickselect; v is left
 * partitioned around it: nothing before it is larger, nothing after smaller */
static double select_kth(double *v, size_t n, size_t k)
{
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;

    while (lo < hi) {
        double pivot = median_of_three(v[lo], v[lo + (hi - lo) / 2], v[hi]);
        ptrdiff_t i = lo, j = hi;

        /* Hoare: then v[lo..j] <= pivot, v[i..hi] >= pivot, between = pivot */
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                double t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        }
        if (kk <= j)
            hi = j;
        else if (kk >= i)
            lo = i;
        else
            break;
    }
    return v[kk];
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
    out->min = out->max = v[0];
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        if (v[i] < out->min)
            out->min = v[i];
        if (v[i] > out->max)
            out->max = v[i];
    }
    out->mean = sum / (double)n;
    if (n % 2 == 1) {
        out->median = select_kth(v, n, n / 2);
    } else {
        /* the lower middle, then the smallest of what lies above it */
        double lower = select_kth(v, n, n / 2 - 1), upper = v[n / 2];
        for (size_t i = n / 2 + 1; i < n; i++)
            if (v[i] < upper)
                upper = v[i];
        out->median = (lower + upper) / 2.0;
    }
    rank = n - n / 20; /* ceil(0.95 n) = n - floor(n / 20), at least 1 */
    out->p95 = select_kth(v, n, rank - 1);
    free(v);
    return true;
}
