/* libFuzzer: attestation statement + authData verification, and assertion
 * verification over the same authData.
 * Input: fmt selector (1 byte: 0 packed, 1 fido-u2f, 2 none, other "tpm"),
 * authData length (2 bytes, big-endian), authData, attStmt CBOR (the rest). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/status.h"
#include "ctaphid/verify.h"

static const char *const fmts[] = {"packed", "fido-u2f", "none", "tpm"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t cdh[KC_CLIENT_DATA_HASH_LEN] = {1, 2, 3, 4};
    struct kc_verify_result res;
    const char *fmt;
    size_t ad_len;
    uint32_t count = 0;
    int r;

    if (size < 3)
        return 0;
    fmt = fmts[data[0] < 3 ? data[0] : 3];
    ad_len = (size_t)data[1] << 8 | data[2];
    if (ad_len > size - 3)
        return 0;
    r = kc_verify_attestation(fmt, data + 3, ad_len, data + 3 + ad_len, size - 3 - ad_len, cdh,
                              "localhost", &res);
    if (r == KC_OK) {
        if (res.cred_key.pkey == NULL || res.cred_id_len == 0)
            abort();
        /* the attested key then checks an "assertion" over the same bytes */
        (void)kc_verify_assertion(&res.cred_key, data + 3, ad_len, data + 3 + ad_len,
                                  size - 3 - ad_len, cdh, "localhost", true, false, 0, &count,
                                  NULL);
    } else if (res.cred_key.pkey != NULL || res.reason[0] == '\0') {
        abort(); /* failures hand out no key and always say why */
    }
    kc_verify_result_free(&res);
    return 0;
}
