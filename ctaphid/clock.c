/* The monotonic clock (CLOCK_MONOTONIC) in microseconds. */
#include "ctaphid/clock.h"

#include <time.h>

uint64_t kc_now_us(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
