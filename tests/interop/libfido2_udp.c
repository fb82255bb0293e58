/* Interop: Debian's libfido2 (an independent FIDO2 client library) drives
 * kcard's virtual card over UDP through its custom I/O hooks, registers ES256
 * and EdDSA credentials, verifies the attestation, then gets and verifies
 * assertions. Usage: libfido2_udp [--local-port P] [--timeout-ms MS] HOST PORT.
 * Prints "ok - ..." lines and "N passed, M failed"; exit 1 if any check
 * failed. The probes that can fail are in libfido2_probes.c and
 * libfido2_cards.c. */
#include "tests/interop/fido_udp_io.h"
#include "tests/interop/fido_ops.h"

static void register_and_assert(fido_dev_t *dev, int type, const char *label)
{
    struct op_args a = {.type = type, .user_tag = type == COSE_ES256 ? 0x01 : 0x02};
    fido_cred_t *cred = NULL;
    fido_assert_t *as = NULL;
    char name[128];
    int r, v;

    r = op_make_cred(dev, &a, &cred);
    snprintf(name, sizeof(name), "libfido2 makeCredential %s", label);
    result(name, r == FIDO_OK, op_err(r));
    if (r != FIDO_OK) {
        fido_cred_free(&cred);
        return;
    }
    v = op_cred_verify(cred);
    snprintf(name, sizeof(name), "libfido2 verifies %s attestation (%s)", label,
             fido_cred_fmt(cred) ? fido_cred_fmt(cred) : "?");
    result(name, v == FIDO_OK, op_err(v));

    a.id = fido_cred_id_ptr(cred);
    a.id_len = fido_cred_id_len(cred);
    r = op_get_assert(dev, &a, &as);
    snprintf(name, sizeof(name), "libfido2 getAssertion %s", label);
    result(name, r == FIDO_OK && fido_assert_count(as) == 1, op_err(r));
    if (r == FIDO_OK) {
        v = op_assert_verify(as, 0, cred);
        snprintf(name, sizeof(name), "libfido2 verifies %s assertion signature", label);
        result(name, v == FIDO_OK, op_err(v));
    }
    fido_assert_free(&as);
    fido_cred_free(&cred);
}

int main(int argc, char **argv)
{
    fido_cbor_info_t *ci;
    fido_dev_t *dev;
    int r, has_fido2 = 0;

    if (udp_io_args(argc, argv, "HOST PORT", NULL) != argc) {
        fprintf(stderr, "%s: no argument after PORT is taken\n", argv[0]);
        return 2;
    }
    fido_init(0);
    dev = udp_dev_open(&r);
    result("libfido2 opens the card (CTAPHID INIT)", dev != NULL, op_err(r));
    if (dev == NULL)
        return finish_counts();
    if ((ci = fido_cbor_info_new()) == NULL)
        r = FIDO_ERR_INTERNAL;
    else
        r = fido_dev_get_cbor_info(dev, ci);
    for (size_t i = 0; r == FIDO_OK && i < fido_cbor_info_versions_len(ci); i++)
        if (strcmp(fido_cbor_info_versions_ptr(ci)[i], "FIDO_2_0") == 0)
            has_fido2 = 1;
    result("libfido2 getInfo lists FIDO_2_0", r == FIDO_OK && has_fido2, op_err(r));
    result("libfido2 sees a FIDO2 device", fido_dev_is_fido2(dev), "not FIDO2");
    fido_cbor_info_free(&ci);

    register_and_assert(dev, COSE_ES256, "ES256");
    register_and_assert(dev, COSE_EDDSA, "EdDSA");

    udp_dev_close(&dev);
    return finish_counts();
}
