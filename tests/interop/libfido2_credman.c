/* Interop: Debian's libfido2 credential management (fido_credman_*, the API
 * fido2-token -I -c / -L -r / -L -k / -D -i use) against kcard's virtual card
 * over UDP, checked against what rawctap made and saw.
 *
 * usage: libfido2_credman [--local-port P] [--timeout-ms MS] HOST PORT PIN
 *        EXISTING RP_ID DELETE_ID_HEX
 * EXISTING is the number of resident credentials rawctap made, RP_ID one rp
 * among them and DELETE_ID_HEX (hex) one of its credentials, which this
 * program deletes; the calling script then checks with rawctap. Prints
 * "ok - ..." lines and "N passed, M failed"; exit 1 when a check failed. */
#include <fido.h>
#include <fido/credman.h>

#include "fido_udp_io.h"

static int hex_decode(const char *s, unsigned char *out, size_t cap, size_t *len)
{
    size_t n = strlen(s);

    if (n == 0 || n % 2 != 0 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    *len = n / 2;
    return 0;
}

static uint64_t metadata(fido_dev_t *dev, const char *pin, const char *what, uint64_t want)
{
    fido_credman_metadata_t *md = fido_credman_metadata_new();
    int r = md == NULL ? FIDO_ERR_INTERNAL : fido_credman_get_dev_metadata(dev, md, pin);
    uint64_t existing = 0, remaining = 0;
    char detail[128];

    if (r == FIDO_OK) {
        existing = fido_credman_rk_existing(md);
        remaining = fido_credman_rk_remaining(md);
    }
    snprintf(detail, sizeof(detail), "%s; existing %llu remaining %llu, wanted %llu existing",
             fido_strerr(r), (unsigned long long)existing, (unsigned long long)remaining,
             (unsigned long long)want);
    result(what, r == FIDO_OK && existing == want && existing + remaining == 50, detail);
    fido_credman_metadata_free(&md);
    return existing;
}

/* 1 when the rp has a credential with this id, 0 when not, -1 on error. */
static int has_rk(fido_dev_t *dev, const char *pin, const char *rp_id, const unsigned char *id,
                  size_t id_len, size_t *count)
{
    fido_credman_rk_t *rk = fido_credman_rk_new();
    int r = rk == NULL ? FIDO_ERR_INTERNAL : fido_credman_get_dev_rk(dev, rp_id, rk, pin);
    int found = 0;

    *count = 0;
    if (r != FIDO_OK) {
        printf("# fido_credman_get_dev_rk: %s\n", fido_strerr(r));
        fido_credman_rk_free(&rk);
        return -1;
    }
    *count = fido_credman_rk_count(rk);
    for (size_t i = 0; i < *count; i++) {
        const fido_cred_t *c = fido_credman_rk(rk, i);
        const char *name = fido_cred_user_name(c);
        printf("# %s: credential of %s, %zu-byte id\n", rp_id, name ? name : "-",
               fido_cred_id_len(c));
        if (fido_cred_id_len(c) == id_len && memcmp(fido_cred_id_ptr(c), id, id_len) == 0)
            found = 1;
    }
    fido_credman_rk_free(&rk);
    return found;
}

int main(int argc, char **argv)
{
    unsigned char del_id[1024];
    size_t del_len = 0, count = 0;
    fido_credman_rp_t *rp = NULL;
    fido_dev_t *dev;
    const char *pin, *rp_id;
    uint64_t existing;
    int i, r, found;
    char detail[256];

    i = udp_io_args(argc, argv, "HOST PORT PIN EXISTING RP_ID DELETE_ID_HEX", NULL);
    if (argc - i != 4) {
        fprintf(stderr, "%s: PIN EXISTING RP_ID DELETE_ID_HEX follow PORT\n", argv[0]);
        return 2;
    }
    pin = argv[i];
    existing = (uint64_t)parse_num("EXISTING", argv[i + 1], 1, 50);
    rp_id = argv[i + 2];
    if (hex_decode(argv[i + 3], del_id, sizeof(del_id), &del_len) != 0) {
        fprintf(stderr, "%s: DELETE_ID_HEX is not hex: '%s'\n", argv[0], argv[i + 3]);
        return 2;
    }
    fido_init(0);
    dev = udp_dev_open(&r);
    result("libfido2 opens the card (CTAPHID INIT)", dev != NULL, fido_strerr(r));
    if (dev == NULL)
        return finish_counts();
    result("libfido2 sees credential management", fido_dev_supports_credman(dev),
           "fido_dev_supports_credman false");
    metadata(dev, pin, "libfido2 credman metadata: rawctap's count", existing);

    if ((rp = fido_credman_rp_new()) == NULL)
        r = FIDO_ERR_INTERNAL;
    else
        r = fido_credman_get_dev_rp(dev, rp, pin);
    found = 0;
    for (size_t k = 0; r == FIDO_OK && k < fido_credman_rp_count(rp); k++) {
        printf("# rp %s\n", fido_credman_rp_id(rp, k));
        if (strcmp(fido_credman_rp_id(rp, k), rp_id) == 0 &&
            fido_credman_rp_id_hash_len(rp, k) == 32)
            found = 1;
    }
    snprintf(detail, sizeof(detail), "%s; %zu rps, %s %s", fido_strerr(r),
             r == FIDO_OK ? fido_credman_rp_count(rp) : 0, rp_id, found ? "listed" : "missing");
    result("libfido2 credman rps: rawctap's rp listed with its hash", r == FIDO_OK && found,
           detail);
    fido_credman_rp_free(&rp);

    found = has_rk(dev, pin, rp_id, del_id, del_len, &count);
    snprintf(detail, sizeof(detail), "%zu credentials, the one to delete %s", count,
             found == 1 ? "among them" : "missing");
    result("libfido2 credman rks: rawctap's credential listed", found == 1, detail);

    r = fido_credman_del_dev_rk(dev, del_id, del_len, pin);
    result("libfido2 credman delete", r == FIDO_OK, fido_strerr(r));
    r = fido_credman_del_dev_rk(dev, del_id, del_len, pin);
    result("libfido2 credman delete again: FIDO_ERR_NO_CREDENTIALS", r == FIDO_ERR_NO_CREDENTIALS,
           fido_strerr(r));
    metadata(dev, pin, "libfido2 credman metadata after delete", existing - 1);
    found = has_rk(dev, pin, rp_id, del_id, del_len, &count);
    result("libfido2 credman rks: the deleted one is gone", found == 0, "still listed");

    udp_dev_close(&dev);
    return finish_counts();
}
