/* Random bytes from OpenSSL's DRBG (RAND_bytes): keys, nonces, challenges,
 * tokens and ids of every part come from here. */
#ifndef KCARD_UTIL_RAND_H
#define KCARD_UTIL_RAND_H

#include <stddef.h>

/* len random bytes into out: 0, or -1 when the generator fails or len is
 * more than RAND_bytes takes (INT_MAX). */
int kcu_random(void *out, size_t len);

#endif
