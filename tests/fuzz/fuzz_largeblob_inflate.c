/* libFuzzer: the inflate path of one credential's large blob, the bytes
 * an entry decrypts to. The first three input bytes are origSize (24-bit
 * little-endian, small unless the top bits are set, so both sides of
 * KC_LARGEBLOB_ORIG_MAX are reached), the
 * rest the DEFLATE stream; what inflates is deflated again and must read
 * back the same. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/largeblob.h"
#include "ctaphid/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out = NULL, *z = NULL, *back = NULL;
    size_t zlen = 0;
    uint64_t orig;
    char why[160];

    if (size < 3)
        return 0;
    orig = (uint64_t)data[0] | (uint64_t)data[1] << 8 | (uint64_t)(data[2] & 0x3f) << 16;
    /* most inputs: a small origSize, so the inflater is not only refusing;
     * the rest up to 4 MiB, across the cap */
    if (data[2] < 0xc0)
        orig &= 0x3fff;
    if (kc_largeblob_inflate(data + 3, size - 3, orig, &out, why, sizeof(why)) != KC_OK) {
        if (out != NULL || why[0] == '\0')
            abort(); /* an error leaves nothing allocated and says why */
        return 0;
    }
    if (kc_largeblob_deflate(out, (size_t)orig, &z, &zlen) != KC_OK ||
        kc_largeblob_inflate(z, zlen, orig, &back, NULL, 0) != KC_OK ||
        (orig > 0 && memcmp(out, back, (size_t)orig) != 0))
        abort();
    free(out);
    free(z);
    free(back);
    return 0;
}
