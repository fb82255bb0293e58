/* The monotonic clock every deadline and timestamp in libctaphid is read
 * from: the bottom layer, so transports, framing and the trace share it
 * without depending on each other. */
#ifndef KCARD_CTAPHID_CLOCK_H
#define KCARD_CTAPHID_CLOCK_H

#include <stdint.h>

/* Monotonic clock in microseconds (CLOCK_MONOTONIC); 0 if it cannot be read. */
uint64_t kc_now_us(void);

#endif
