/* Interop probes that can fail: Debian's libfido2 drives kcard's virtual card
 * over UDP and each check asserts an exact outcome.
 *
 * Usage: libfido2_probes [--local-port P] [--timeout-ms MS] HOST PORT SCENARIO...
 *   negative           unknown CTAPHID command -> ERROR INVALID_CMD (0x01),
 *                      a channel never allocated -> ERROR INVALID_CHANNEL
 *                      (0x0B), unknown credential -> NO_CREDENTIALS (0x2E),
 *                      excludeList hit -> CREDENTIAL_EXCLUDED (0x19)
 *   counter:N          N verified assertions with a strictly rising signCount;
 *                      with --rollback-ctl PATH (the card's control socket)
 *                      the card's counter-rollback fault is switched on after
 *                      N/2 of them, so the check must report the rollback
 *   keepalive:none     makeCredential + getAssertion complete, no KEEPALIVE seen
 *   keepalive:upneeded ... and KEEPALIVE UPNEEDED was seen while waiting
 *   u2f[:slow]         CTAP1 register + authenticate (libfido2 forced to U2F),
 *                      both verified; with :slow, KEEPALIVE PROCESSING was seen
 * libfido2 has no API for raw CTAPHID commands: the two CTAPHID probes are
 * injected by the I/O hooks (fido_udp_io.h), which also read the card's
 * ERROR code off the wire; libfido2 itself surfaces FIDO_ERR_RX for both.
 * Prints "ok - ..." lines and "N passed, M failed"; exit 1 if any failed. */
#include "tests/interop/fido_udp_io.h"
#include "tests/interop/fido_ops.h"

#include <stdbool.h>
#include <sys/un.h>

#define UNKNOWN_HID_CMD 0x2a
#define NEVER_ALLOCATED_CID 0x7a5e11edu

static const char *g_rollback_ctl;

static int take_option(const char *opt, const char *val)
{
    if (strcmp(opt, "--rollback-ctl") != 0)
        return -1;
    g_rollback_ctl = val;
    return 0;
}

/* One command line to the card's control socket; 0 when it answered ok. */
static int ctl_command(const char *path, const char *line)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char reply[256] = "";
    struct pollfd p;
    int fd, ok = -1;
    ssize_t n;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    p.fd = fd;
    p.events = POLLIN;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        write(fd, line, strlen(line)) == (ssize_t)strlen(line) && poll(&p, 1, 2000) == 1 &&
        (n = read(fd, reply, sizeof(reply) - 1)) > 0 && strstr(reply, "\"ok\":true") != NULL)
        ok = 0;
    close(fd);
    return ok;
}

static void probe_hid_error(fido_dev_t *dev, const char *what, int want_error)
{
    fido_cbor_info_t *ci = fido_cbor_info_new();
    char name[160], detail[160];
    int r;

    io_reset_observations();
    r = ci == NULL ? FIDO_ERR_INTERNAL : fido_dev_get_cbor_info(dev, ci);
    g_io.rewrite_cmd = 0;
    g_io.fake_cid = 0;
    snprintf(name, sizeof(name), "libfido2 %s: card answers CTAPHID ERROR 0x%02x", what,
             want_error);
    snprintf(detail, sizeof(detail), "saw ERROR %d on channel 0x%08x", g_io.last_error,
             g_io.last_error_cid);
    result(name, g_io.last_error == want_error, detail);
    snprintf(name, sizeof(name), "libfido2 %s: library surfaces FIDO_ERR_RX", what);
    result(name, r == FIDO_ERR_RX, op_err(r));
    fido_cbor_info_free(&ci);
}

static void scenario_negative(fido_dev_t *dev)
{
    struct op_args a = {.user_tag = 7};
    fido_cred_t *cred = NULL, *again = NULL;
    fido_assert_t *as = NULL;
    unsigned char unknown[64];
    fido_cbor_info_t *ci;
    int r;

    g_io.rewrite_cmd = UNKNOWN_HID_CMD;
    probe_hid_error(dev, "unknown CTAPHID command 0x2a", 0x01);
    g_io.fake_cid = NEVER_ALLOCATED_CID;
    probe_hid_error(dev, "channel never allocated", 0x0b);
    ci = fido_cbor_info_new();
    r = ci == NULL ? FIDO_ERR_INTERNAL : fido_dev_get_cbor_info(dev, ci);
    result("libfido2 getInfo works again after both CTAPHID errors", r == FIDO_OK, op_err(r));
    fido_cbor_info_free(&ci);

    if (RAND_bytes(unknown, sizeof(unknown)) != 1)
        return;
    a.id = unknown;
    a.id_len = sizeof(unknown);
    r = op_get_assert(dev, &a, &as);
    result("libfido2 getAssertion, allowList of an unknown id: FIDO_ERR_NO_CREDENTIALS (0x2e)",
           r == FIDO_ERR_NO_CREDENTIALS, op_err(r));
    fido_assert_free(&as);

    a.id = NULL;
    r = op_make_cred(dev, &a, &cred);
    result("libfido2 makeCredential for the excludeList probe", r == FIDO_OK, op_err(r));
    if (r != FIDO_OK) {
        fido_cred_free(&cred);
        return;
    }
    a.id = fido_cred_id_ptr(cred);
    a.id_len = fido_cred_id_len(cred);
    r = op_make_cred(dev, &a, &again);
    result("libfido2 makeCredential, excludeList holds it: FIDO_ERR_CREDENTIAL_EXCLUDED (0x19)",
           r == FIDO_ERR_CREDENTIAL_EXCLUDED, op_err(r));
    fido_cred_free(&again);
    /* the control: the same id under another rp excludes nothing */
    a.rp = "other.example";
    r = op_make_cred(dev, &a, &again);
    result("libfido2 makeCredential, excludeList id of another rp: FIDO_OK", r == FIDO_OK,
           op_err(r));
    fido_cred_free(&again);
    fido_cred_free(&cred);
}

static void scenario_counter(fido_dev_t *dev, int n)
{
    struct op_args a = {.user_tag = 9};
    fido_cred_t *cred = NULL;
    uint32_t prev = 0;
    int r, verified = 0, rising = 1;
    char name[128], why[160] = "";

    r = op_make_cred(dev, &a, &cred);
    result("libfido2 makeCredential for the counter run", r == FIDO_OK, op_err(r));
    if (r != FIDO_OK) {
        fido_cred_free(&cred);
        return;
    }
    a.id = fido_cred_id_ptr(cred);
    a.id_len = fido_cred_id_len(cred);
    for (int i = 0; i < n; i++) {
        fido_assert_t *as = NULL;
        uint32_t count;
        if (g_rollback_ctl != NULL && i == n / 2)
            result("the card's counter-rollback fault switched on mid-run",
                   ctl_command(g_rollback_ctl, "fault counter-rollback\n") == 0,
                   "control socket refused");
        r = op_get_assert(dev, &a, &as);
        if (r == FIDO_OK && fido_assert_count(as) == 1 && op_assert_verify(as, 0, cred) == FIDO_OK)
            verified++;
        count = r == FIDO_OK ? fido_assert_sigcount(as, 0) : 0;
        printf("# assertion %d: %s, signCount %u\n", i + 1, op_err(r), count);
        if (rising && i > 0 && count <= prev) {
            rising = 0;
            snprintf(why, sizeof(why), "assertion %d: signCount %u after %u (%s)", i + 1, count,
                     prev, count < prev ? "rollback" : "did not rise");
        }
        prev = count;
        fido_assert_free(&as);
    }
    snprintf(name, sizeof(name), "libfido2 verifies %d assertions in a row (fido_assert_verify)",
             n);
    result(name, verified == n, "some did not verify");
    snprintf(name, sizeof(name), "libfido2 signCount rises strictly over %d assertions", n);
    result(name, rising, why);
    fido_cred_free(&cred);
}

static void scenario_keepalive(fido_dev_t *dev, bool want_upneeded)
{
    struct op_args a = {.user_tag = 11};
    fido_cred_t *cred = NULL;
    fido_assert_t *as = NULL;
    char detail[96];
    double t0 = now_ms();
    int r;

    io_reset_observations();
    r = op_make_cred(dev, &a, &cred);
    result("libfido2 makeCredential completes", r == FIDO_OK, op_err(r));
    if (r == FIDO_OK) {
        a.id = fido_cred_id_ptr(cred);
        a.id_len = fido_cred_id_len(cred);
        r = op_get_assert(dev, &a, &as);
        if (r == FIDO_OK)
            r = op_assert_verify(as, 0, cred);
        result("libfido2 getAssertion completes and verifies", r == FIDO_OK, op_err(r));
    }
    snprintf(detail, sizeof(detail), "PROCESSING %u, UPNEEDED %u, in %.0f ms", g_io.keepalive[1],
             g_io.keepalive[2], now_ms() - t0);
    printf("# keepalives seen by the hooks: %s\n", detail);
    if (want_upneeded)
        result("KEEPALIVE UPNEEDED seen while the card waited for presence", g_io.keepalive[2] >= 3,
               detail);
    else
        result("no KEEPALIVE at all on the wire", g_io.keepalive[1] + g_io.keepalive[2] == 0,
               detail);
    fido_assert_free(&as);
    fido_cred_free(&cred);
}

static void scenario_u2f(fido_dev_t *dev, bool slow)
{
    struct op_args a = {.user_tag = 13};
    fido_cred_t *cred = NULL;
    fido_assert_t *as = NULL;
    char detail[96];
    double t0 = now_ms();
    int r;

    fido_dev_force_u2f(dev);
    io_reset_observations();
    r = op_make_cred(dev, &a, &cred);
    result("libfido2 (forced U2F) CTAP1 register", r == FIDO_OK, op_err(r));
    if (r == FIDO_OK) {
        r = op_cred_verify(cred);
        result("libfido2 verifies the CTAP1 registration (fido-u2f attestation)",
               r == FIDO_OK && fido_cred_fmt(cred) && strcmp(fido_cred_fmt(cred), "fido-u2f") == 0,
               op_err(r));
        a.id = fido_cred_id_ptr(cred);
        a.id_len = fido_cred_id_len(cred);
        r = op_get_assert(dev, &a, &as);
        if (r == FIDO_OK)
            r = op_assert_verify(as, 0, cred);
        result("libfido2 (forced U2F) CTAP1 authenticate verified", r == FIDO_OK, op_err(r));
    }
    snprintf(detail, sizeof(detail), "PROCESSING %u in %.0f ms", g_io.keepalive[1], now_ms() - t0);
    printf("# CTAP1 keepalives: %s\n", detail);
    if (slow)
        result("KEEPALIVE PROCESSING seen while the slow CTAP1 reply was held back",
               g_io.keepalive[1] >= 3, detail);
    fido_assert_free(&as);
    fido_cred_free(&cred);
}

static int run_scenario(fido_dev_t *dev, const char *s)
{
    if (strcmp(s, "negative") == 0)
        scenario_negative(dev);
    else if (strncmp(s, "counter:", 8) == 0)
        scenario_counter(dev, parse_num("counter:N", s + 8, 2, 100));
    else if (strcmp(s, "keepalive:none") == 0)
        scenario_keepalive(dev, false);
    else if (strcmp(s, "keepalive:upneeded") == 0)
        scenario_keepalive(dev, true);
    else if (strcmp(s, "u2f") == 0 || strcmp(s, "u2f:slow") == 0)
        scenario_u2f(dev, s[3] == ':');
    else
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    int first = udp_io_args(argc, argv, "[--rollback-ctl PATH] HOST PORT SCENARIO...", take_option);
    fido_dev_t *dev;
    int r;

    if (first >= argc) {
        fprintf(stderr, "%s: name at least one scenario\n", argv[0]);
        return 2;
    }
    fido_init(0);
    for (int i = first; i < argc; i++) {
        if ((dev = udp_dev_open(&r)) == NULL) {
            result("libfido2 opens the card (CTAPHID INIT)", 0, op_err(r));
            break;
        }
        if (run_scenario(dev, argv[i]) != 0) {
            fprintf(stderr, "%s: unknown scenario '%s'\n", argv[0], argv[i]);
            udp_dev_close(&dev);
            return 2;
        }
        udp_dev_close(&dev);
    }
    return finish_counts();
}
