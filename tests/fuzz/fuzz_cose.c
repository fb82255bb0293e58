/* libFuzzer: COSE_Key decoding. A key that decodes must encode again and
 * decode to the same EVP key. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/cose.h"
#include "ctaphid/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kc_cose_key key, again;
    char why[160];
    size_t consumed = 0;
    uint8_t *enc = NULL;
    size_t enc_len = 0;

    size_t scanned = 0;

    /* the allocation-free size check and libcbor agree on where an item ends */
    if (kc_cbor_size_check(data, size, &scanned) == KC_OK) {
        struct cbor_load_result res;
        cbor_item_t *item = cbor_load(data, size, &res);
        if (item != NULL) {
            if (res.error.code == CBOR_ERR_NONE && res.read != scanned)
                abort();
            cbor_decref(&item);
        }
    }
    if (kc_cose_decode_reason(data, size, &key, &consumed, why, sizeof(why)) != KC_OK)
        return 0;
    if (consumed == 0 || consumed > size || key.pkey == NULL)
        abort();
    if (kc_cose_encode(key.pkey, key.alg, &enc, &enc_len) != KC_OK)
        abort();
    if (kc_cose_decode(enc, enc_len, &again, NULL) != KC_OK)
        abort();
    if (again.alg != key.alg || again.kty != key.kty || EVP_PKEY_eq(again.pkey, key.pkey) != 1)
        abort();
    kc_cose_key_free(&again);
    kc_cose_key_free(&key);
    free(enc);
    return 0;
}
