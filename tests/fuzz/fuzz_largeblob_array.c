/* libFuzzer: what a card returns for authenticatorLargeBlobs: the get
 * response map, the serialized array's hash and CBOR check, and one
 * credential's entry searched, opened and replaced under a fixed key (the
 * first input byte picks whether the rest is read as a response or as an
 * array). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/largeblob.h"
#include "ctaphid/largeblob_int.h"
#include "ctaphid/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[KC_LARGEBLOB_KEY_LEN] = {0x2a};
    uint8_t frag[2048], *blob = NULL, *out = NULL;
    size_t n = 0, blen = 0, olen = 0;
    char why[160];

    if (size < 1)
        return 0;
    if (data[0] & 1) {
        (void)kc_largeblob_decode_get(data + 1, size - 1, frag, sizeof(frag), &n);
        return 0;
    }
    data++;
    size--;
    (void)kc_largeblob_check(data, size);
    if (kc_largeblob_open(data, size, key, &blob, &blen, why, sizeof(why)) == KC_OK)
        free(blob);
    if (kc_largeblob_replace(data, size, key, NULL, 0, &out, &olen) == KC_OK)
        free(out);
    return 0;
}
