/* The monotonic clock (CLOCK_MONOTONIC) every deadline, timeout and
 * duration of kcard is read from, and absolute deadlines for
 * pthread_cond_timedwait. */
#ifndef KCARD_UTIL_CLOCK_H
#define KCARD_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* The monotonic clock in nanoseconds, microseconds, milliseconds; 0 when it
 * cannot be read (it always can on Linux). */
uint64_t kcu_now_ns(void);
uint64_t kcu_now_us(void);
uint64_t kcu_now_ms(void);

/* *out = now on clock (CLOCK_MONOTONIC or CLOCK_REALTIME, whichever the
 * condition variable waits on) plus ms milliseconds, normalised. */
void kcu_deadline(clockid_t clock, uint64_t ms, struct timespec *out);

#endif
