/* kc_now_us, libctaphid's public name for the monotonic clock of util/clock.c. */
#include "ctaphid/clock.h"

#include "util/clock.h"

uint64_t kc_now_us(void)
{
    return kcu_now_us();
}
