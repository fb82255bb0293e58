/* Random bytes through OpenSSL (see rand.h). */
#include "util/rand.h"

#include <limits.h>

#include <openssl/rand.h>

int kcu_random(void *out, size_t len)
{
    if (len > INT_MAX || (out == NULL && len > 0))
        return -1;
    return RAND_bytes(out, (int)len) == 1 ? 0 : -1;
}
