/* Interop: Debian's libfido2 (an independent FIDO2 client library) drives
 * kcard's virtual card over UDP through its custom I/O hooks, registers ES256
 * and EdDSA credentials, verifies the attestation, then gets and verifies
 * assertions. Usage: libfido2_udp HOST PORT. Prints "ok - ..." lines and
 * "N passed, M failed"; exit 1 if any check failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fido.h>
#include <fido/eddsa.h>
#include <fido/es256.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REPORT_LEN 64

static const char *g_host;
static int g_port;
static int passed, failed;

struct udp_handle {
    int fd;
};

static void *udp_open(const char *path)
{
    (void)path; /* the address comes from the command line */
    struct udp_handle *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    if (h->fd < 0 || inet_pton(AF_INET, g_host, &sa.sin_addr) != 1 ||
        connect(h->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (h->fd >= 0)
            close(h->fd);
        free(h);
        return NULL;
    }
    return h;
}

static void udp_close(void *handle)
{
    struct udp_handle *h = handle;
    close(h->fd);
    free(h);
}

/* libfido2 reads one report of len bytes, waiting at most ms (-1: forever;
 * we cap it so a silent card cannot hang the test). */
static int udp_read(void *handle, unsigned char *buf, size_t len, int ms)
{
    struct udp_handle *h = handle;
    struct pollfd p = {.fd = h->fd, .events = POLLIN};
    int wait = (ms < 0 || ms > 10000) ? 10000 : ms;
    int r = poll(&p, 1, wait);
    if (r <= 0)
        return -1;
    ssize_t n = recv(h->fd, buf, len, 0);
    return n < 0 ? -1 : (int)n;
}

/* libfido2 writes the report-id byte first; a UDP simulator takes the bare report. */
static int udp_write(void *handle, const unsigned char *buf, size_t len)
{
    struct udp_handle *h = handle;
    if (len != REPORT_LEN + 1)
        return -1;
    ssize_t n = send(h->fd, buf + 1, REPORT_LEN, 0);
    return n == REPORT_LEN ? (int)len : -1;
}

static void result(const char *name, int ok, const char *detail)
{
    if (ok) {
        passed++;
        printf("ok - %s\n", name);
    } else {
        failed++;
        printf("not ok - %s: %s\n", name, detail);
    }
}

static int register_and_assert(fido_dev_t *dev, int type, const char *label)
{
    unsigned char cdh[32], user_id[16];
    char name[128];
    memset(cdh, 0x42, sizeof(cdh));
    memset(user_id, type == COSE_ES256 ? 0x01 : 0x02, sizeof(user_id));

    fido_cred_t *cred = fido_cred_new();
    int r = fido_cred_set_type(cred, type);
    if (r == FIDO_OK)
        r = fido_cred_set_clientdata_hash(cred, cdh, sizeof(cdh));
    if (r == FIDO_OK)
        r = fido_cred_set_rp(cred, "example.org", "Example");
    if (r == FIDO_OK)
        r = fido_cred_set_user(cred, user_id, sizeof(user_id), "alice", "Alice", NULL);
    if (r == FIDO_OK)
        r = fido_dev_make_cred(dev, cred, NULL);
    snprintf(name, sizeof(name), "libfido2 makeCredential %s", label);
    result(name, r == FIDO_OK, fido_strerr(r));
    if (r != FIDO_OK) {
        fido_cred_free(&cred);
        return -1;
    }
    /* fido_cred_verify checks a full attestation (x5c); self attestation needs _self */
    int v = fido_cred_x5c_ptr(cred) != NULL ? fido_cred_verify(cred) : fido_cred_verify_self(cred);
    snprintf(name, sizeof(name), "libfido2 verifies %s attestation (%s)", label,
             fido_cred_fmt(cred) ? fido_cred_fmt(cred) : "?");
    result(name, v == FIDO_OK, fido_strerr(v));

    fido_assert_t *as = fido_assert_new();
    r = fido_assert_set_rp(as, "example.org");
    if (r == FIDO_OK)
        r = fido_assert_set_clientdata_hash(as, cdh, sizeof(cdh));
    if (r == FIDO_OK)
        r = fido_assert_allow_cred(as, fido_cred_id_ptr(cred), fido_cred_id_len(cred));
    if (r == FIDO_OK)
        r = fido_dev_get_assert(dev, as, NULL);
    snprintf(name, sizeof(name), "libfido2 getAssertion %s", label);
    result(name, r == FIDO_OK && fido_assert_count(as) == 1, fido_strerr(r));
    if (r == FIDO_OK) {
        void *pk = NULL;
        if (type == COSE_ES256) {
            es256_pk_t *k = es256_pk_new();
            es256_pk_from_ptr(k, fido_cred_pubkey_ptr(cred), fido_cred_pubkey_len(cred));
            pk = k;
        } else {
            eddsa_pk_t *k = eddsa_pk_new();
            eddsa_pk_from_ptr(k, fido_cred_pubkey_ptr(cred), fido_cred_pubkey_len(cred));
            pk = k;
        }
        v = fido_assert_verify(as, 0, type, pk);
        snprintf(name, sizeof(name), "libfido2 verifies %s assertion signature", label);
        result(name, v == FIDO_OK, fido_strerr(v));
        if (type == COSE_ES256) {
            es256_pk_t *k = pk;
            es256_pk_free(&k);
        } else {
            eddsa_pk_t *k = pk;
            eddsa_pk_free(&k);
        }
    }
    fido_assert_free(&as);
    fido_cred_free(&cred);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
        return 2;
    }
    g_host = argv[1];
    g_port = atoi(argv[2]);
    fido_init(0);
    fido_dev_t *dev = fido_dev_new();
    fido_dev_io_t io = {udp_open, udp_close, udp_read, udp_write};
    int r = fido_dev_set_io_functions(dev, &io);
    if (r == FIDO_OK)
        r = fido_dev_open(dev, "udp");
    result("libfido2 opens the card (CTAPHID INIT)", r == FIDO_OK, fido_strerr(r));
    if (r != FIDO_OK) {
        printf("%d passed, %d failed\n", passed, failed);
        return 1;
    }
    fido_cbor_info_t *ci = fido_cbor_info_new();
    r = fido_dev_get_cbor_info(dev, ci);
    int has_fido2 = 0;
    for (size_t i = 0; r == FIDO_OK && i < fido_cbor_info_versions_len(ci); i++)
        if (strcmp(fido_cbor_info_versions_ptr(ci)[i], "FIDO_2_0") == 0)
            has_fido2 = 1;
    result("libfido2 getInfo lists FIDO_2_0", r == FIDO_OK && has_fido2, fido_strerr(r));
    result("libfido2 sees a FIDO2 device", fido_dev_is_fido2(dev), "not FIDO2");
    fido_cbor_info_free(&ci);

    register_and_assert(dev, COSE_ES256, "ES256");
    register_and_assert(dev, COSE_EDDSA, "EdDSA");

    fido_dev_close(dev);
    fido_dev_free(&dev);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
