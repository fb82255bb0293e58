/* Example: open the card at a URI (argv[1], e.g. "udp:127.0.0.1:8111" or
 * "auto"), print what getInfo says, then make a non-resident ES256
 * credential for rp "example.org" and print its credential id. */
#include <kcard/ctaphid.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_hex(const char *label, const uint8_t *p, size_t len)
{
    printf("%s: ", label);
    for (size_t i = 0; i < len; i++)
        printf("%02x", p[i]);
    printf("\n");
}

/* Every call returns KC_OK, a negative KC_ERR_* or (CTAP2 calls) the card's
 * positive status byte; kc_err_name and kc_strerror name both kinds. */
static int fail(const char *what, int rc)
{
    fprintf(stderr, "info_and_make_credential: %s failed: %s (%s)\n", what, kc_strerror(rc),
            kc_err_name(rc));
    return EXIT_FAILURE;
}

int main(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        bool help = argc == 2;
        fprintf(help ? stdout : stderr,
                "usage: info_and_make_credential URI\n"
                "Runs getInfo and makeCredential (rp example.org, ES256) on the card at URI\n"
                "(auto, hidraw:PATH, udp:HOST:PORT, ...) and prints the AAGUID and the new\n"
                "credential id.\n");
        return help ? EXIT_SUCCESS : 2;
    }
    struct kc_dev *dev = NULL;
    char err[256] = "";
    int rc = kc_dev_open(&dev, argv[1], NULL, err, sizeof(err));
    if (rc != KC_OK) {
        fprintf(stderr, "info_and_make_credential: cannot open %s: %s\n", argv[1],
                err[0] != '\0' ? err : kc_strerror(rc));
        return EXIT_FAILURE;
    }

    static struct kc_info info; /* large and fixed-size: needs no free */
    rc = kc_ctap2_get_info(dev, &info);
    if (rc != KC_OK) {
        kc_dev_close(dev);
        return fail("getInfo", rc);
    }
    for (size_t i = 0; i < info.n_versions; i++)
        printf("version: %s\n", info.versions[i]);
    print_hex("aaguid", info.aaguid, sizeof(info.aaguid));

    /* A real client hashes its clientDataJSON (SHA-256) into this. */
    static const uint8_t user_id[] = {0x01, 0x02, 0x03, 0x04};
    struct kc_cred_request req;
    kc_cred_request_init(&req);
    memset(req.client_data_hash, 0x5a, sizeof(req.client_data_hash));
    req.rp_id = "example.org";
    req.rp_name = "Example";
    req.user_id = user_id;
    req.user_id_len = sizeof(user_id);
    req.user_name = "alice";
    req.info = &info;

    struct kc_attestation att;
    memset(&att, 0, sizeof(att));
    rc = kc_ctap2_make_credential(dev, &req, &att);
    kc_dev_close(dev);
    if (rc != KC_OK) {
        kc_attestation_free(&att);
        return fail("makeCredential", rc);
    }
    printf("fmt: %s\n", att.fmt);
    print_hex("credential id", att.ad.cred_id, att.ad.cred_id_len);
    kc_attestation_free(&att);
    return EXIT_SUCCESS;
}
