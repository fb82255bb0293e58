/* Clocks shared by the benchmarks (header only: the Makefile builds every
 * bench/bench_*.c as its own program). */
#ifndef KCARD_BENCH_UTIL_H
#define KCARD_BENCH_UTIL_H

#include <time.h>

#include "util/clock.h"

/* CPU time of the whole process, in seconds. */
static inline double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Monotonic wall-clock time, in seconds. */
static inline double wall_seconds(void)
{
    return (double)kcu_now_ns() / 1e9;
}

#endif
