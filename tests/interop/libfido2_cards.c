/* Interop across card personalities: Debian's libfido2 reads the card's
 * getInfo over UDP and does what that card allows, asserting exact outcomes.
 *
 * Usage: libfido2_cards [--local-port P] [--timeout-ms MS] [--pin PIN]
 *                       [--expect-ctap2 yes|no] [--expect-max-msg N]
 *                       HOST PORT SCENARIO...
 *   info      getInfo as libfido2 parses it (or, on a U2F-only card, that
 *             libfido2 sees no CTAP2), checked against the --expect options
 *   register  makeCredential (CTAP2, with the PIN when the card has one set,
 *             or CTAP1 on a U2F-only card) with its attestation verified,
 *             then 5 verified assertions with a strictly rising signCount.
 *             When the card must refuse it without the PIN (clientPin set and
 *             no makeCredUvNotRqd, or alwaysUv), that refusal is asserted too;
 *             a PIN that is blocked (retries 0) or must be changed
 *             (forcePINChange) is refused with PIN_BLOCKED / PIN_POLICY_VIOLATION.
 *   wrong-channel  the card replies on a channel it never allocated: libfido2
 *             drops the replies, takes it for U2F-only, and fails FIDO_ERR_RX
 *   large:N   a makeCredential of about N bytes (a long excludeList): FIDO_OK
 *             when N fits the card's maxMsgSize, else the refusal
 *             FIDO_ERR_REQUEST_TOO_LARGE (0x39)
 *   no-reply  nothing comes back (the card replies to another port): opening
 *             fails with FIDO_ERR_RX within --timeout-ms
 * With --local-port the socket is unconnected and bound to P (sendto/recvfrom).
 * Prints "ok - ..." lines and "N passed, M failed"; exit 1 if any failed. */
#include "tests/interop/fido_udp_io.h"
#include "tests/interop/fido_ops.h"

#include <stdbool.h>

#define ASSERTIONS 5

static const char *g_pin;
static int g_expect_ctap2 = -1; /* -1: not checked */
static long g_expect_max_msg = -1;

/* What getInfo said, as libfido2 parsed it. */
struct card_info {
    bool fido2;
    uint64_t max_msg;
    uint64_t max_cred_in_list;
    int client_pin;    /* -1 absent, 0 false, 1 true */
    int always_uv;     /* likewise */
    int mc_uv_not_rqd; /* likewise */
    bool force_pin_change;
    char versions[128];
    char protocols[32];
};

static int take_option(const char *opt, const char *val)
{
    if (strcmp(opt, "--pin") == 0)
        g_pin = val;
    else if (strcmp(opt, "--expect-max-msg") == 0)
        g_expect_max_msg = parse_num("--expect-max-msg", val, 0, 65535);
    else if (strcmp(opt, "--expect-ctap2") == 0 && strcmp(val, "yes") == 0)
        g_expect_ctap2 = 1;
    else if (strcmp(opt, "--expect-ctap2") == 0 && strcmp(val, "no") == 0)
        g_expect_ctap2 = 0;
    else
        return -1;
    return 0;
}

static int option_value(const fido_cbor_info_t *ci, const char *name)
{
    char **names = fido_cbor_info_options_name_ptr(ci);
    const bool *values = fido_cbor_info_options_value_ptr(ci);

    for (size_t i = 0; i < fido_cbor_info_options_len(ci); i++)
        if (strcmp(names[i], name) == 0)
            return values[i] ? 1 : 0;
    return -1;
}

static void join(char *dst, size_t cap, const char *item)
{
    size_t used = strlen(dst);

    snprintf(dst + used, cap - used, "%s%s", used ? "," : "", item);
}

/* getInfo through libfido2; -1 when a CTAP2 card would not answer it. */
static int read_info(fido_dev_t *dev, struct card_info *ci_out)
{
    fido_cbor_info_t *ci;
    char num[8];
    int r;

    memset(ci_out, 0, sizeof(*ci_out));
    ci_out->fido2 = fido_dev_is_fido2(dev);
    if (!ci_out->fido2)
        return 0;
    if ((ci = fido_cbor_info_new()) == NULL)
        return -1;
    if ((r = fido_dev_get_cbor_info(dev, ci)) != FIDO_OK) {
        result("libfido2 getInfo", 0, op_err(r));
        fido_cbor_info_free(&ci);
        return -1;
    }
    for (size_t i = 0; i < fido_cbor_info_versions_len(ci); i++)
        join(ci_out->versions, sizeof(ci_out->versions), fido_cbor_info_versions_ptr(ci)[i]);
    for (size_t i = 0; i < fido_cbor_info_protocols_len(ci); i++) {
        snprintf(num, sizeof(num), "%u", fido_cbor_info_protocols_ptr(ci)[i]);
        join(ci_out->protocols, sizeof(ci_out->protocols), num);
    }
    ci_out->max_msg = fido_cbor_info_maxmsgsiz(ci);
    ci_out->max_cred_in_list = fido_cbor_info_maxcredcntlst(ci);
    ci_out->client_pin = option_value(ci, "clientPin");
    ci_out->always_uv = option_value(ci, "alwaysUv");
    ci_out->mc_uv_not_rqd = option_value(ci, "makeCredUvNotRqd");
    ci_out->force_pin_change = fido_cbor_info_new_pin_required(ci);
    fido_cbor_info_free(&ci);
    return 0;
}

static void scenario_info(fido_dev_t *dev)
{
    struct card_info ci;
    char detail[400];

    if (read_info(dev, &ci) != 0)
        return;
    snprintf(detail, sizeof(detail),
             "fido2=%d versions=[%s] maxMsgSize=%llu pinProtocols=[%s] clientPin=%d "
             "alwaysUv=%d makeCredUvNotRqd=%d",
             ci.fido2, ci.versions, (unsigned long long)ci.max_msg, ci.protocols, ci.client_pin,
             ci.always_uv, ci.mc_uv_not_rqd);
    printf("# getInfo: %s\n", detail);
    if (g_expect_ctap2 >= 0)
        result(g_expect_ctap2 ? "libfido2 sees a CTAP2 card (fido_dev_is_fido2)"
                              : "libfido2 sees no CTAP2 on this card (fido_dev_is_fido2 false)",
               ci.fido2 == (g_expect_ctap2 == 1), detail);
    if (!ci.fido2) {
        fido_cbor_info_t *info = fido_cbor_info_new();
        int r;
        io_reset_observations();
        r = info == NULL ? FIDO_ERR_INTERNAL : fido_dev_get_cbor_info(dev, info);
        /* libfido2 sends CTAPHID_CBOR anyway; the card has no such command */
        result("libfido2 getInfo on a card without CTAP2: card answers ERROR INVALID_CMD, "
               "libfido2 FIDO_ERR_RX",
               r == FIDO_ERR_RX && g_io.last_error == 0x01, op_err(r));
        fido_cbor_info_free(&info);
    }
    if (g_expect_max_msg >= 0 && ci.fido2)
        result("libfido2 reads the expected maxMsgSize", (long)ci.max_msg == g_expect_max_msg,
               detail);
}

/* The card refuses makeCredential without the PIN (CTAP 2.0 6.1 / 2.1 6.1.2). */
static void refused_without_pin(fido_dev_t *dev, const struct card_info *ci)
{
    struct op_args a = {.user_tag = 0x31};
    fido_cred_t *cred = NULL;
    int r = op_make_cred(dev, &a, &cred);

    result(ci->always_uv == 1
               ? "libfido2 makeCredential without the PIN on an alwaysUv card: "
                 "FIDO_ERR_PIN_REQUIRED (0x36, PUAT_REQUIRED)"
               : "libfido2 makeCredential without the PIN on a card with a PIN and no "
                 "makeCredUvNotRqd: FIDO_ERR_PIN_REQUIRED (0x36)",
           r == FIDO_ERR_PIN_REQUIRED, op_err(r));
    fido_cred_free(&cred);
}

static void assertions(fido_dev_t *dev, struct op_args *a, const fido_cred_t *cred, bool want_uv)
{
    uint32_t prev = 0;
    int verified = 0, uv = 0, rising = 1, r = FIDO_OK;
    char why[160] = "";

    a->id = fido_cred_id_ptr(cred);
    a->id_len = fido_cred_id_len(cred);
    for (int i = 0; i < ASSERTIONS; i++) {
        fido_assert_t *as = NULL;
        uint32_t count = 0;
        r = op_get_assert(dev, a, &as);
        if (r == FIDO_OK && fido_assert_count(as) == 1) {
            verified += op_assert_verify(as, 0, cred) == FIDO_OK;
            uv += (fido_assert_flags(as, 0) & 0x04) != 0;
            count = fido_assert_sigcount(as, 0);
        } else {
            snprintf(why, sizeof(why), "assertion %d: %s", i + 1, op_err(r));
        }
        if (rising && i > 0 && count <= prev) {
            rising = 0;
            snprintf(why, sizeof(why), "assertion %d: signCount %u after %u", i + 1, count, prev);
        }
        prev = count;
        fido_assert_free(&as);
    }
    result("libfido2 verifies 5 assertions in a row", verified == ASSERTIONS, why);
    result("libfido2 signCount rises strictly over 5 assertions", rising, why);
    if (want_uv)
        result("libfido2 assertions made with the PIN carry the UV flag", uv == ASSERTIONS,
               "UV flag missing");
}

/* A PIN that cannot be used (blocked, or a change is required) is refused
 * with its own error; true when that is the case. */
static bool pin_unusable(fido_dev_t *dev, const struct card_info *ci)
{
    struct op_args a = {.user_tag = 0x32, .pin = g_pin};
    fido_cred_t *cred = NULL;
    int retries = -1, r, want;
    const char *name;

    r = fido_dev_get_retry_count(dev, &retries);
    if (r == FIDO_OK && retries == 0) {
        want = FIDO_ERR_PIN_BLOCKED;
        name = "libfido2 PIN retries 0: makeCredential with the PIN gets FIDO_ERR_PIN_BLOCKED "
               "(0x32)";
    } else if (ci->force_pin_change) {
        want = FIDO_ERR_PIN_POLICY_VIOLATION;
        name = "libfido2 forcePINChange: makeCredential with the PIN gets "
               "FIDO_ERR_PIN_POLICY_VIOLATION (0x37)";
    } else {
        return false;
    }
    r = op_make_cred(dev, &a, &cred);
    result(name, r == want, op_err(r));
    fido_cred_free(&cred);
    return true;
}

static void scenario_register(fido_dev_t *dev)
{
    struct card_info ci;
    struct op_args a = {.user_tag = 0x21};
    fido_cred_t *cred = NULL;
    bool pin_set, use_pin, needs_pin;
    char name[160];
    int r;

    if (read_info(dev, &ci) != 0)
        return;
    pin_set = ci.fido2 && ci.client_pin == 1;
    needs_pin = pin_set && (ci.mc_uv_not_rqd != 1 || ci.always_uv == 1);
    if (pin_set && g_pin == NULL) {
        result("libfido2 register: the card has a PIN set; give --pin", 0, "no --pin");
        return;
    }
    use_pin = pin_set && !pin_unusable(dev, &ci);
    if (needs_pin)
        refused_without_pin(dev, &ci);
    if (needs_pin && !use_pin)
        return; /* nothing more this card allows */
    a.pin = use_pin ? g_pin : NULL;
    r = op_make_cred(dev, &a, &cred);
    snprintf(name, sizeof(name), "libfido2 makeCredential (%s%s)", ci.fido2 ? "CTAP2" : "CTAP1",
             use_pin   ? ", PIN token"
             : pin_set ? ", PIN set, makeCredUvNotRqd"
                       : "");
    result(name, r == FIDO_OK, op_err(r));
    if (r == FIDO_OK) {
        const char *fmt = fido_cred_fmt(cred) ? fido_cred_fmt(cred) : "?";
        int v = op_cred_verify(cred);
        snprintf(name, sizeof(name), "libfido2 verifies the attestation (%s)", fmt);
        result(name, v == FIDO_OK && (ci.fido2 || strcmp(fmt, "fido-u2f") == 0), op_err(v));
        if (use_pin)
            result("libfido2 makeCredential with the PIN carries the UV flag",
                   (fido_cred_flags(cred) & 0x04) != 0, "UV flag missing");
        assertions(dev, &a, cred, use_pin);
    }
    fido_cred_free(&cred);
}

static void scenario_large(fido_dev_t *dev, int size)
{
    struct card_info ci;
    struct op_args a = {.user_tag = 0x41};
    fido_cred_t *cred = NULL;
    char name[200], detail[200];
    bool fits;
    int r;

    if (read_info(dev, &ci) != 0 || !ci.fido2) {
        result("libfido2 large message: needs a CTAP2 card", 0, "no CTAP2");
        return;
    }
    /* stay within maxCredentialCountInList; each entry is the id plus ~20 bytes */
    a.n_filler = ci.max_cred_in_list ? (size_t)ci.max_cred_in_list : 16;
    a.filler_len = (size_t)size / a.n_filler - 20;
    if (a.filler_len > 1000)
        a.filler_len = 1000;
    if (ci.client_pin == 1)
        a.pin = g_pin; /* a card with a PIN set may demand it (CTAP 2.0) */
    fits = (uint64_t)size + 200 <= ci.max_msg;
    g_io.last_cbor_len = 0;
    r = op_make_cred(dev, &a, &cred);
    snprintf(detail, sizeof(detail), "%s; sent %u bytes, card maxMsgSize %llu", op_err(r),
             g_io.last_cbor_len, (unsigned long long)ci.max_msg);
    printf("# large: %s\n", detail);
    if (fits) {
        snprintf(name, sizeof(name), "libfido2 %d-byte makeCredential accepted (maxMsgSize %llu)",
                 size, (unsigned long long)ci.max_msg);
        result(name, r == FIDO_OK && g_io.last_cbor_len >= (unsigned)size * 9 / 10, detail);
    } else {
        snprintf(name, sizeof(name),
                 "libfido2 %d-byte makeCredential refused: FIDO_ERR_REQUEST_TOO_LARGE (0x39)",
                 size);
        result(name, r == FIDO_ERR_REQUEST_TOO_LARGE, detail);
    }
    fido_cred_free(&cred);
}

static void scenario_no_reply(void)
{
    double t0 = now_ms();
    char detail[200];
    int r;
    fido_dev_t *dev = udp_dev_open(&r);
    double took = now_ms() - t0;

    (void)snprintf(detail, sizeof(detail), "%s after %.0f ms, %u foreign datagrams", op_err(r),
                   took, g_io.foreign);
    printf("# no-reply: %s\n", detail);
    result("libfido2 bound to a port the card does not reply to: open fails with FIDO_ERR_RX",
           dev == NULL && r == FIDO_ERR_RX, detail);
    result("libfido2 gives up within the read timeout (+1 s)", took < g_io.timeout_ms + 1000.0,
           detail);
    udp_dev_close(&dev);
}

/* A card whose replies come on a channel it never allocated: libfido2
 * drops them, so its getInfo at open time goes unanswered and it quietly
 * takes the card for U2F-only; the U2F request then times out too. */
static void scenario_wrong_channel(fido_dev_t *dev)
{
    struct op_args a = {.user_tag = 0x51};
    fido_cred_t *cred = NULL;
    char detail[160];
    int r;

    snprintf(detail, sizeof(detail), "fido2=%d, %u replies on a foreign channel",
             fido_dev_is_fido2(dev), g_io.stray);
    result("libfido2 vs replies on a channel never allocated: sees them as foreign, takes the "
           "card for U2F-only",
           !fido_dev_is_fido2(dev) && g_io.stray > 0, detail);
    r = op_make_cred(dev, &a, &cred);
    result("libfido2 makeCredential (U2F) on that card fails: FIDO_ERR_RX", r == FIDO_ERR_RX,
           op_err(r));
    fido_cred_free(&cred);
}

static int run_scenario(fido_dev_t *dev, const char *s)
{
    if (strcmp(s, "info") == 0)
        scenario_info(dev);
    else if (strcmp(s, "register") == 0)
        scenario_register(dev);
    else if (strcmp(s, "wrong-channel") == 0)
        scenario_wrong_channel(dev);
    else if (strncmp(s, "large:", 6) == 0)
        scenario_large(dev, parse_num("large:N", s + 6, 1000, 60000));
    else
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    int first = udp_io_args(argc, argv,
                            "[--pin PIN] [--expect-ctap2 yes|no] [--expect-max-msg N] "
                            "HOST PORT SCENARIO...",
                            take_option);
    fido_dev_t *dev;
    int r;

    if (first >= argc) {
        fprintf(stderr, "%s: name at least one scenario\n", argv[0]);
        return 2;
    }
    fido_init(0);
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "no-reply") == 0) {
            scenario_no_reply();
            continue;
        }
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
