/* The monotonic clock and deadlines (see clock.h). */
#include "util/clock.h"

uint64_t kcu_now_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t kcu_now_us(void)
{
    return kcu_now_ns() / 1000u;
}

uint64_t kcu_now_ms(void)
{
    return kcu_now_ns() / 1000000u;
}

void kcu_deadline(clockid_t clock, uint64_t ms, struct timespec *out)
{
    if (clock_gettime(clock, out) != 0) {
        out->tv_sec = 0;
        out->tv_nsec = 0;
    }
    out->tv_sec += (time_t)(ms / 1000u);
    out->tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (out->tv_nsec >= 1000000000L) {
        out->tv_sec++;
        out->tv_nsec -= 1000000000L;
    }
}
