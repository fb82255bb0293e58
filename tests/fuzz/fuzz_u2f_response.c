/* libFuzzer: CTAP1/U2F response parsing and verification. First byte picks
 * the parser (even: REGISTER, odd: AUTHENTICATE); the rest is a response as
 * it arrives over CTAPHID_MSG, status word included. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/status.h"
#include "ctaphid/u2f.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t chal[KC_U2F_CHAL_LEN] = {7}, app[KC_U2F_APP_LEN] = {9};
    struct kc_u2f_register reg;
    struct kc_u2f_auth auth;
    size_t body = 0;
    uint16_t sw = 0;

    if (size < 1)
        return 0;
    if (kc_u2f_split_sw(data + 1, size - 1, &sw, &body) != KC_OK)
        return 0;
    if ((data[0] & 1) == 0) {
        memset(&reg, 0, sizeof(reg));
        reg.sw = sw;
        if (kc_u2f_register_parse(data + 1, body, &reg) == KC_OK) {
            if (reg.key_handle_len == 0 || reg.key_handle_len > KC_U2F_KH_MAX ||
                reg.cert_len > KC_U2F_CERT_MAX || reg.sig_len > KC_U2F_SIG_MAX)
                abort();
            (void)kc_u2f_register_verify(&reg, chal, app);
        }
    } else {
        memset(&auth, 0, sizeof(auth));
        auth.sw = sw;
        if (kc_u2f_authenticate_parse(data + 1, body, &auth) == KC_OK) {
            uint8_t pub[KC_U2F_PUBKEY_LEN] = {0x04};
            if (auth.sig_len > KC_U2F_SIG_MAX)
                abort();
            memcpy(pub + 1, data + 1, body < 64 ? body : 64);
            (void)kc_u2f_authenticate_verify(&auth, chal, app, pub);
        }
    }
    return 0;
}
