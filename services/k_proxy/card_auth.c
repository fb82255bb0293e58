/* k_proxy's card gate (see card_auth.h): presence probe, approval,
 * enrolment and assertion login on the one card, one request at a time. */
#include "services/k_proxy/card_auth.h"
#include "services/common/svc_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "ctaphid/cose.h"
#include "ctaphid/ctap2.h"
#include "ctaphid/probe.h"
#include "ctaphid/status.h"
#include "ctaphid/trace.h"
#include "ctaphid/u2f.h"
#include "ctaphid/verify.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/rand.h"

#define PROBE_TIMEOUT_MAX_MS KC_PROBE_TIMEOUT_DEFAULT_MS
#define TIMEOUT_LIMIT_MS 600000
#define U2F_POLL_MS 200
#define CHALLENGE_LEN 32

struct kpx_card {
    char uri[KC_URI_MAX];
    char rp_id[KPX_RP_ID_MAX + 1];
    int timeout_ms, command_ms, busy_wait_ms;
    pthread_mutex_t lock; /* held for the whole of one card operation */
    pthread_mutex_t hook_lock;
    kpx_card_open_fn open_fn;
    void *open_ctx;
};

/* Keepalives seen during one command. */
struct ka_track {
    unsigned processing, upneeded;
    uint64_t first_up_us; /* kc_now_us() of the first UPNEEDED, 0 before */
};

static const char *const FIX_STUCK =
    "the transport is stuck: power-cycle the card and attach it to this VM again, then retry";
static const char *const FIX_UNAVAILABLE =
    "check that the card is attached and answers (`fido2-probe --json`), then retry";

static double ms_between(uint64_t from_us, uint64_t to_us)
{
    return to_us > from_us ? (double)(to_us - from_us) / 1000.0 : 0.0;
}

const char *kpx_card_outcome_name(enum kpx_card_outcome o)
{
    switch (o) {
    case KPX_CARD_OK:
        return "ok";
    case KPX_CARD_DENIED:
        return "card_denied";
    case KPX_CARD_UNAVAILABLE:
        return "card_unavailable";
    case KPX_CARD_TIMEOUT:
        return "card_timeout";
    case KPX_CARD_INVALID:
        return "assertion_invalid";
    case KPX_CARD_BUSY:
        return "card_busy";
    }
    return "unknown";
}

bool kpx_sign_count_ok(uint32_t stored, uint32_t fresh)
{
    if (stored == 0 && fresh == 0)
        return true; /* the card keeps no counter */
    return fresh > stored;
}

enum kpx_card_outcome kpx_card_outcome_of(int rc, enum kc_phase phase, bool saw_upneeded)
{
    if (rc == KC_OK)
        return KPX_CARD_OK;
    if (rc > 0) {
        switch (rc) {
        case KC_CTAP2_ERR_OPERATION_DENIED:
        case KC_CTAP2_ERR_USER_ACTION_TIMEOUT:
        case KC_CTAP2_ERR_ACTION_TIMEOUT:
        case KC_CTAP2_ERR_KEEPALIVE_CANCEL:
        case KC_CTAP2_ERR_UP_REQUIRED:
            return KPX_CARD_DENIED;
        case KC_CTAP2_ERR_INVALID_CREDENTIAL:
        case KC_CTAP2_ERR_NO_CREDENTIALS:
            return KPX_CARD_INVALID;
        case KC_CTAP1_ERR_TIMEOUT:
            return KPX_CARD_TIMEOUT;
        default:
            return KPX_CARD_UNAVAILABLE; /* the card refuses what the mode needs */
        }
    }
    switch (rc) {
    case KC_ERR_TIMEOUT:
        /* after UPNEEDED the card was waiting for a person who did not come */
        if (phase == KC_PHASE_PRESENCE || saw_upneeded)
            return KPX_CARD_DENIED;
        if (phase == KC_PHASE_INIT)
            return KPX_CARD_UNAVAILABLE;
        return KPX_CARD_TIMEOUT;
    case KC_ERR_ABORTED:
        return KPX_CARD_DENIED;
    case KC_ERR_CBOR:
    case KC_ERR_VERIFY:
        return KPX_CARD_INVALID;
    default:
        /* no device, permission, unplugged, I/O, framing, HID errors,
         * unsupported, PIN needed, internal failures */
        return KPX_CARD_UNAVAILABLE;
    }
}

/* ---- configuration ------------------------------------------------------ */

static bool rp_id_ok(const char *rp)
{
    size_t n = strnlen(rp, KPX_RP_ID_MAX + 1);

    if (n == 0 || n > KPX_RP_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = rp[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool uri_ok(const char *uri)
{
    size_t n = strnlen(uri, KC_URI_MAX);

    if (n == 0 || n >= KC_URI_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)uri[i] <= ' ' || uri[i] == 0x7f)
            return false;
    return true;
}

struct kpx_card *kpx_card_new(const struct kpx_card_cfg *cfg, char *err, size_t errlen)
{
    struct kpx_card *c;
    const char *uri, *rp;

    if (cfg == NULL) {
        kcu_set_err(err, errlen, "no card configuration given");
        return NULL;
    }
    uri = cfg->device_uri != NULL && cfg->device_uri[0] != '\0' ? cfg->device_uri : "auto";
    rp = cfg->rp_id != NULL ? cfg->rp_id : "localhost";
    if (!uri_ok(uri)) {
        kcu_set_err(err, errlen, "device URI must be 1 to %d printable characters without spaces",
                    KC_URI_MAX - 1);
        return NULL;
    }
    if (!rp_id_ok(rp)) {
        kcu_set_err(err, errlen, "rp id must be a host name of 1 to %d characters [A-Za-z0-9.-]",
                    KPX_RP_ID_MAX);
        return NULL;
    }
    if (cfg->timeout_ms < 0 || cfg->timeout_ms > TIMEOUT_LIMIT_MS || cfg->command_ms < 0 ||
        cfg->command_ms > TIMEOUT_LIMIT_MS || cfg->busy_wait_ms < 0 ||
        cfg->busy_wait_ms > TIMEOUT_LIMIT_MS) {
        kcu_set_err(err, errlen, "card timeouts must be 0 (default) to %d ms", TIMEOUT_LIMIT_MS);
        return NULL;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        kcu_set_err(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(c->uri, sizeof(c->uri), "%s", uri);
    snprintf(c->rp_id, sizeof(c->rp_id), "%s", rp);
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : KPX_CARD_TIMEOUT_DEFAULT_MS;
    c->command_ms = cfg->command_ms > 0                           ? cfg->command_ms
                    : c->timeout_ms < KPX_CARD_COMMAND_DEFAULT_MS ? c->timeout_ms
                                                                  : KPX_CARD_COMMAND_DEFAULT_MS;
    c->busy_wait_ms = cfg->busy_wait_ms > 0 ? cfg->busy_wait_ms : c->timeout_ms;
    if (pthread_mutex_init(&c->lock, NULL) != 0 || pthread_mutex_init(&c->hook_lock, NULL) != 0) {
        kcu_set_err(err, errlen, "cannot create the card lock");
        free(c);
        return NULL;
    }
    return c;
}

void kpx_card_free(struct kpx_card *card)
{
    if (card == NULL)
        return;
    pthread_mutex_destroy(&card->lock);
    pthread_mutex_destroy(&card->hook_lock);
    free(card);
}

void kpx_card_set_opener(struct kpx_card *card, kpx_card_open_fn fn, void *ctx)
{
    if (card == NULL)
        return;
    pthread_mutex_lock(&card->hook_lock);
    card->open_fn = fn;
    card->open_ctx = ctx;
    pthread_mutex_unlock(&card->hook_lock);
}

/* ---- one operation: lock, result, timings ------------------------------- */

struct op {
    struct kpx_card *card;
    struct kpx_card_result *res;
    uint64_t start_us;
    bool locked;
    kpx_card_open_fn open_fn;
    void *open_ctx;
    const struct ka_track *ka; /* keepalives of the running command */
};

static enum kpx_card_outcome decide(struct op *op, enum kpx_card_outcome o, const char *step,
                                    int err)
{
    op->res->outcome = o;
    op->res->err = err;
    snprintf(op->res->step, sizeof(op->res->step), "%s", step);
    return o;
}

static void result_reset(struct kpx_card_result *res)
{
    memset(res, 0, sizeof(*res));
    res->outcome = KPX_CARD_UNAVAILABLE; /* fail closed: only a decided step says OK */
    res->err = KC_ERR_INVALID_ARG;
    res->fail_code = "";
    res->lock_wait_ms = res->probe_ms = res->op_ms = res->user_wait_ms = res->total_ms = -1;
}

/* Takes the card within busy_wait_ms; false (result: BUSY) otherwise. */
static bool op_begin(struct op *op, struct kpx_card *card, struct kpx_card_result *res)
{
    struct timespec deadline;
    int rc;

    op->card = card;
    op->res = res;
    op->locked = false;
    op->ka = NULL;
    op->start_us = kc_now_us();
    kcu_deadline(CLOCK_MONOTONIC, card->busy_wait_ms, &deadline);
    rc = pthread_mutex_clocklock(&card->lock, CLOCK_MONOTONIC, &deadline);
    res->lock_wait_ms = ms_between(op->start_us, kc_now_us());
    if (rc != 0) {
        kcu_set_err(res->message, sizeof(res->message),
                    rc == ETIMEDOUT ? "card busy: another request used the card for more than %d ms"
                                    : "card busy: cannot take the card lock (%d ms)",
                    card->busy_wait_ms);
        kcu_set_err(res->fix, sizeof(res->fix),
                    "retry when the other login or registration has ended");
        decide(op, KPX_CARD_BUSY, "lock", KC_ERR_TIMEOUT);
        res->total_ms = res->lock_wait_ms;
        return false;
    }
    op->locked = true;
    pthread_mutex_lock(&card->hook_lock);
    op->open_fn = card->open_fn;
    op->open_ctx = card->open_ctx;
    pthread_mutex_unlock(&card->hook_lock);
    return true;
}

static enum kpx_card_outcome op_end(struct op *op)
{
    op->res->total_ms = ms_between(op->start_us, kc_now_us());
    if (op->locked)
        pthread_mutex_unlock(&op->card->lock);
    op->locked = false;
    return op->res->outcome;
}

static int probe_timeout(const struct kpx_card *card)
{
    return card->command_ms < PROBE_TIMEOUT_MAX_MS ? card->command_ms : PROBE_TIMEOUT_MAX_MS;
}

static void versions_str(const struct kc_info *info, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < info->n_versions && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i > 0 ? ", " : "", info->versions[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* The presence probe every operation starts with. KC_OK when present;
 * pr receives what the card said (versions, INIT capabilities). */
static int probe_step(struct op *op, struct kc_probe_result *pr)
{
    struct kpx_card_result *res = op->res;
    int rc;

    if (op->open_fn != NULL) {
        struct kc_transport *t = NULL;
        char why[256] = "";
        rc = op->open_fn(op->open_ctx, op->card->uri, &t, why, sizeof(why));
        if (rc != KC_OK || t == NULL) {
            memset(pr, 0, sizeof(*pr));
            pr->fail = KC_PROBE_NO_DEVICE;
            pr->err = rc != KC_OK ? rc : KC_ERR_NO_DEVICE;
            kcu_set_err(pr->error, sizeof(pr->error), "cannot open %.300s: %.200s", op->card->uri,
                        why);
            rc = pr->err;
        } else {
            rc = kc_probe_transport(t, probe_timeout(op->card), pr);
        }
    } else {
        rc = kc_probe_card(op->card->uri, probe_timeout(op->card), pr);
    }
    res->probe_ms = pr->total_ms;
    res->fail_code = kc_probe_fail_code(pr->fail);
    snprintf(res->uri, sizeof(res->uri), "%s", pr->uri[0] != '\0' ? pr->uri : op->card->uri);
    res->card_present = pr->present;
    res->ctap2 = pr->ctap2;
    if (pr->info_ok) {
        res->has_aaguid = true;
        memcpy(res->aaguid, pr->info.aaguid, sizeof(res->aaguid));
        versions_str(&pr->info, res->versions, sizeof(res->versions));
    } else if (pr->init_ok && !pr->ctap2) {
        snprintf(res->versions, sizeof(res->versions), "U2F_V2");
    }
    if (rc == KC_OK)
        return KC_OK;
    kcu_set_err(res->message, sizeof(res->message), "card unavailable (%s): %.600s", res->fail_code,
                pr->error);
    snprintf(res->fix, sizeof(res->fix), "%s", pr->fix[0] != '\0' ? pr->fix : FIX_UNAVAILABLE);
    /* a card that answered INIT but hangs in getInfo is stuck, not absent */
    decide(op, pr->fail == KC_PROBE_GETINFO_TIMEOUT ? KPX_CARD_TIMEOUT : KPX_CARD_UNAVAILABLE,
           "probe", rc);
    return rc;
}

static void on_keepalive(void *ctx, uint8_t status, uint64_t elapsed_us)
{
    struct ka_track *ka = ctx;

    (void)elapsed_us;
    if (status == KC_KEEPALIVE_PROCESSING) {
        ka->processing++;
    } else if (status == KC_KEEPALIVE_UPNEEDED) {
        ka->upneeded++;
        if (ka->first_up_us == 0)
            ka->first_up_us = kc_now_us();
    }
}

/* Opens the card again for the command (the probe closed it): by URI, so
 * "auto" re-resolves a card that re-enumerated. */
static int open_step(struct op *op, struct ka_track *ka, struct kc_dev **d,
                     struct kc_init_info *init)
{
    struct kpx_card_result *res = op->res;
    struct kc_transport *t = NULL;
    struct kc_timeouts to;
    char why[512] = "";
    int rc;

    *d = NULL;
    op->ka = ka;
    if (op->open_fn != NULL)
        rc = op->open_fn(op->open_ctx, op->card->uri, &t, why, sizeof(why));
    else
        rc = kc_transport_open(op->card->uri, &t, why, sizeof(why));
    if (rc == KC_OK && t == NULL)
        rc = KC_ERR_NO_DEVICE;
    if (rc != KC_OK) {
        kcu_set_err(res->message, sizeof(res->message),
                    "card unavailable: it answered the probe but cannot be opened again: %.500s",
                    why);
        snprintf(res->fix, sizeof(res->fix), "%s", FIX_UNAVAILABLE);
        decide(op, KPX_CARD_UNAVAILABLE, "open", rc);
        return rc;
    }
    kc_timeouts_default(&to);
    to.init_ms = probe_timeout(op->card);
    to.command_ms = op->card->command_ms;
    to.presence_ms = op->card->timeout_ms;
    if ((rc = kc_dev_wrap(d, t, &to)) != KC_OK) {
        kc_transport_close(t);
        kcu_set_err(res->message, sizeof(res->message),
                    "card unavailable: %.300s cannot carry CTAPHID", res->uri);
        decide(op, KPX_CARD_UNAVAILABLE, "open", rc);
        return rc;
    }
    kc_dev_set_keepalive_cb(*d, on_keepalive, ka);
    if ((rc = kc_dev_init(*d, init)) != KC_OK) {
        kcu_set_err(res->message, sizeof(res->message),
                    "card unavailable: CTAPHID INIT failed on the second open: %s (%.300s)",
                    kc_err_name(rc), kc_transport_last_error(kc_dev_transport(*d)));
        snprintf(res->fix, sizeof(res->fix), "%s",
                 rc == KC_ERR_TIMEOUT ? FIX_STUCK : FIX_UNAVAILABLE);
        decide(op, KPX_CARD_UNAVAILABLE, "open", rc);
        kc_dev_close(*d);
        *d = NULL;
        return rc;
    }
    return KC_OK;
}

/* Closes the command: keepalive counts and user wait into the result. */
static void close_step(struct op *op, struct kc_dev *d, const struct ka_track *ka,
                       uint64_t op_start_us)
{
    struct kpx_card_result *res = op->res;
    uint64_t now = kc_now_us();

    res->op_ms = ms_between(op_start_us, now);
    res->keepalives_processing = ka->processing;
    res->keepalives_upneeded = ka->upneeded;
    res->saw_upneeded = ka->upneeded > 0;
    if (ka->first_up_us != 0)
        res->user_wait_ms = ms_between(ka->first_up_us, now);
    if (d != NULL) {
        res->reenumerated = kc_dev_reenumerated(d);
        if (res->reenumerated)
            snprintf(res->uri, sizeof(res->uri), "%s", kc_transport_uri(kc_dev_transport(d)));
        kc_dev_close(d);
    }
}

/* A failed command: outcome, message and fix from rc and the device state. */
static enum kpx_card_outcome command_failed(struct op *op, struct kc_dev *d, const char *step,
                                            const char *what, int rc)
{
    struct kpx_card_result *res = op->res;
    enum kc_phase phase = d != NULL ? kc_dev_last_phase(d) : KC_PHASE_NONE;
    bool up = d != NULL && kc_dev_saw_upneeded(d);
    enum kpx_card_outcome o = kpx_card_outcome_of(rc, phase, up);

    switch (o) {
    case KPX_CARD_DENIED:
        if (rc == KC_ERR_TIMEOUT)
            kcu_set_err(res->message, sizeof(res->message),
                        "%s: nobody touched the card within %d ms of its presence prompt", what,
                        op->card->timeout_ms);
        else
            kcu_set_err(res->message, sizeof(res->message), "%s: the card refused: %s", what,
                        kc_err_name(rc));
        snprintf(res->fix, sizeof(res->fix), "touch the card to approve when it asks, within %d ms",
                 op->card->timeout_ms);
        break;
    case KPX_CARD_TIMEOUT:
        kcu_set_err(res->message, sizeof(res->message),
                    "%s: no answer and no presence prompt within %d ms (%s phase, %u keepalives "
                    "PROCESSING): the card hangs before asking for the user",
                    what, op->card->command_ms, kc_phase_name(phase),
                    op->ka != NULL ? op->ka->processing : 0u);
        snprintf(res->fix, sizeof(res->fix), "%s", FIX_STUCK);
        break;
    case KPX_CARD_INVALID:
        kcu_set_err(res->message, sizeof(res->message), "%s: %s", what,
                    rc == KC_CTAP2_ERR_NO_CREDENTIALS || rc == KC_CTAP2_ERR_INVALID_CREDENTIAL
                        ? "this card does not hold the enrolled credential"
                        : "the card's answer is malformed");
        break;
    default:
        kcu_set_err(res->message, sizeof(res->message), "%s failed: %s (%s)", what, kc_err_name(rc),
                    rc > 0 ? "card status"
                    : d != NULL && kc_transport_last_error(kc_dev_transport(d))[0] != '\0'
                        ? kc_transport_last_error(kc_dev_transport(d))
                        : kc_strerror(rc));
        if (rc == KC_CTAP2_ERR_PUAT_REQUIRED || rc == KC_CTAP2_ERR_PIN_NOT_SET)
            snprintf(res->fix, sizeof(res->fix),
                     "the card requires a PIN for this; k_proxy logs in without one: use a card "
                     "without a PIN set");
        else
            snprintf(res->fix, sizeof(res->fix), "%s", FIX_UNAVAILABLE);
        break;
    }
    return decide(op, o, step, rc);
}

/* ---- probe login -------------------------------------------------------- */

/* CTAP1 presence: a U2F registration with a throw-away challenge needs a
 * touch (the card answers CONDITIONS_NOT_SATISFIED until then). */
static enum kpx_card_outcome u2f_presence(struct op *op, struct kc_dev *d)
{
    struct kpx_card_result *res = op->res;
    uint8_t chal[KC_U2F_CHAL_LEN], app[KC_U2F_APP_LEN];
    struct kc_u2f_register *reg = calloc(1, sizeof(*reg));
    int rc;

    res->used_u2f = true;
    if (reg == NULL || kcu_random(chal, sizeof(chal)) != 0 ||
        kc_sha256((const uint8_t *)op->card->rp_id, strlen(op->card->rp_id), app) != KC_OK) {
        free(reg);
        kcu_set_err(res->message, sizeof(res->message),
                    "u2f presence: out of memory or randomness");
        return decide(op, KPX_CARD_UNAVAILABLE, "u2f-presence", KC_ERR_CRYPTO);
    }
    rc = kc_u2f_register_wait(d, chal, app, reg, op->card->timeout_ms, U2F_POLL_MS);
    if (rc == KC_OK && kc_u2f_register_verify(reg, chal, app) != KC_OK) {
        kcu_set_err(res->message, sizeof(res->message),
                    "u2f presence: the registration signature did not verify: %.300s", reg->reason);
        free(reg);
        return decide(op, KPX_CARD_INVALID, "u2f-presence", KC_ERR_VERIFY);
    }
    if (rc == KC_ERR_TIMEOUT && reg->sw == KC_U2F_SW_CONDITIONS_NOT_SATISFIED) {
        kcu_set_err(res->message, sizeof(res->message),
                    "u2f presence: nobody touched the card within %d ms", op->card->timeout_ms);
        snprintf(res->fix, sizeof(res->fix), "touch the card to approve when it blinks");
        free(reg);
        return decide(op, KPX_CARD_DENIED, "u2f-presence", rc);
    }
    if (rc == KC_ERR_U2F) {
        kcu_set_err(res->message, sizeof(res->message),
                    "u2f presence: the card answered %s (0x%04x)", kc_u2f_sw_name(reg->sw),
                    reg->sw);
        free(reg);
        return decide(op, KPX_CARD_UNAVAILABLE, "u2f-presence", rc);
    }
    free(reg);
    if (rc != KC_OK)
        return command_failed(op, d, "u2f-presence", "u2f presence", rc);
    kcu_set_err(res->message, sizeof(res->message), "approved on the card (CTAP1/U2F presence)");
    return decide(op, KPX_CARD_OK, "u2f-presence", KC_OK);
}

/* Neither CTAP 2.1 authenticatorSelection nor CTAP1: nothing asks the user. */
static void no_approval(struct op *op, const struct kc_probe_result *pr)
{
    kcu_set_err(op->res->message, sizeof(op->res->message),
                "card unavailable: it offers neither CTAP 2.1 authenticatorSelection nor CTAP1/U2F "
                "(versions: %s), so approval cannot be asked",
                pr->info_ok ? op->res->versions : "unknown");
    snprintf(op->res->fix, sizeof(op->res->fix), "use a FIDO2 (CTAP 2.1) or U2F card");
    decide(op, KPX_CARD_UNAVAILABLE, "selection", KC_ERR_UNSUPPORTED);
}

enum kpx_card_outcome kpx_card_probe_login(struct kpx_card *card, const char *username,
                                           struct kpx_card_result *res)
{
    struct kc_probe_result *pr;
    struct kc_init_info init;
    struct ka_track ka = {0};
    struct kc_dev *d = NULL;
    struct op op;
    uint64_t t0;
    bool has_u2f;
    int rc;

    if (res == NULL)
        return KPX_CARD_UNAVAILABLE;
    result_reset(res);
    if (card == NULL || username == NULL) {
        kcu_set_err(res->message, sizeof(res->message), "no card or no username given");
        res->outcome = KPX_CARD_UNAVAILABLE;
        res->err = KC_ERR_INVALID_ARG;
        snprintf(res->step, sizeof(res->step), "config");
        return res->outcome;
    }
    if (!op_begin(&op, card, res))
        return res->outcome;
    if ((pr = calloc(1, sizeof(*pr))) == NULL) {
        kcu_set_err(res->message, sizeof(res->message), "out of memory");
        decide(&op, KPX_CARD_UNAVAILABLE, "probe", KC_ERR_NOMEM);
        return op_end(&op);
    }
    if (probe_step(&op, pr) != KC_OK || open_step(&op, &ka, &d, &init) != KC_OK)
        goto out;
    t0 = kc_now_us();
    has_u2f = !(init.capabilities & KC_HID_CAP_NMSG);
    if (pr->ctap2) {
        rc = kc_ctap2_selection(d);
        if (rc == KC_OK) {
            kcu_set_err(res->message, sizeof(res->message), "user %.64s approved on the card",
                        username);
            decide(&op, KPX_CARD_OK, "selection", KC_OK);
        } else if (rc == KC_CTAP1_ERR_INVALID_COMMAND && has_u2f) {
            u2f_presence(&op, d); /* a CTAP 2.0 card: presence through its CTAP1 side */
        } else if (rc == KC_CTAP1_ERR_INVALID_COMMAND) {
            no_approval(&op, pr);
        } else {
            command_failed(&op, d, "selection", "authenticatorSelection", rc);
        }
    } else if (has_u2f) {
        u2f_presence(&op, d);
    } else {
        no_approval(&op, pr);
    }
    close_step(&op, d, &ka, t0);
    d = NULL;
    if (res->outcome == KPX_CARD_OK && res->used_u2f)
        res->user_wait_ms = res->op_ms;
out:
    kc_dev_close(d);
    free(pr);
    return op_end(&op);
}

/* ---- fido2-direct ------------------------------------------------------- */

static int random_cdh(uint8_t cdh[KC_CDH_LEN])
{
    uint8_t challenge[CHALLENGE_LEN];
    int rc;

    if (kcu_random(challenge, sizeof(challenge)) != 0)
        return KC_ERR_CRYPTO;
    rc = kc_sha256(challenge, sizeof(challenge), cdh);
    OPENSSL_cleanse(challenge, sizeof(challenge));
    return rc;
}

/* Probe, CTAP2 check and open: KC_OK with *d ready, else the result is set. */
static int direct_prepare(struct op *op, const char *what, struct ka_track *ka, struct kc_dev **d)
{
    struct kc_probe_result *pr = calloc(1, sizeof(*pr));
    struct kc_init_info init;
    int rc;

    *d = NULL;
    if (pr == NULL) {
        kcu_set_err(op->res->message, sizeof(op->res->message), "out of memory");
        decide(op, KPX_CARD_UNAVAILABLE, "probe", KC_ERR_NOMEM);
        return KC_ERR_NOMEM;
    }
    if ((rc = probe_step(op, pr)) == KC_OK && !pr->ctap2) {
        kcu_set_err(op->res->message, sizeof(op->res->message),
                    "card unavailable: it speaks only CTAP1/U2F; fido2-direct %s needs CTAP2",
                    what);
        snprintf(op->res->fix, sizeof(op->res->fix),
                 "use a FIDO2 card, or run k_proxy with --auth-mode probe");
        decide(op, KPX_CARD_UNAVAILABLE, "probe", KC_ERR_UNSUPPORTED);
        rc = KC_ERR_UNSUPPORTED;
    }
    free(pr);
    if (rc == KC_OK)
        rc = open_step(op, ka, d, &init);
    return rc;
}

static enum kpx_card_outcome check_attestation(struct op *op, const struct kc_attestation *att,
                                               const uint8_t cdh[KC_CDH_LEN],
                                               const uint8_t *user_id, struct kpx_cred *cred)
{
    struct kpx_card_result *res = op->res;
    struct kc_verify_result vr;
    int rc;

    kc_verify_result_init(&vr);
    rc = kc_verify_attestation(att->fmt, att->auth_data, att->auth_data_len, att->att_stmt,
                               att->att_stmt_len, cdh, op->card->rp_id, &vr);
    if (rc != KC_OK) {
        kcu_set_err(res->message, sizeof(res->message), "attestation (%s) did not verify: %s",
                    att->fmt, vr.reason);
        kc_verify_result_free(&vr);
        return decide(op, KPX_CARD_INVALID, "verify", rc);
    }
    if (!att->ad.has_attested || att->ad.cred_id_len == 0 ||
        att->ad.cred_id_len > sizeof(cred->cred_id) || att->ad.cose_key_len == 0 ||
        att->ad.cose_key_len > sizeof(cred->cose_key) || !(att->ad.flags & KC_AD_UP) ||
        vr.cred_key.alg != KC_COSE_ES256) {
        kcu_set_err(
            res->message, sizeof(res->message),
            "the new credential is unusable: %s (alg %d, key %zu bytes, id %zu bytes, flags "
            "0x%02x)",
            !(att->ad.flags & KC_AD_UP) ? "UP flag not set" : "ES256 key and id expected",
            vr.cred_key.alg, att->ad.cose_key_len, att->ad.cred_id_len, att->ad.flags);
        kc_verify_result_free(&vr);
        return decide(op, KPX_CARD_INVALID, "verify", KC_ERR_VERIFY);
    }
    memset(cred, 0, sizeof(*cred));
    memcpy(cred->cred_id, att->ad.cred_id, att->ad.cred_id_len);
    cred->cred_id_len = att->ad.cred_id_len;
    memcpy(cred->cose_key, att->ad.cose_key, att->ad.cose_key_len);
    cred->cose_key_len = att->ad.cose_key_len;
    cred->alg = vr.cred_key.alg;
    cred->sign_count = att->ad.sign_count;
    memcpy(cred->user_id, user_id, KPX_USER_ID_LEN);
    cred->user_id_len = KPX_USER_ID_LEN;
    res->sign_count = att->ad.sign_count;
    kcu_set_err(res->message, sizeof(res->message), "credential enrolled (%s attestation, %s)",
                kc_att_type_name(vr.att_type), kc_cose_alg_name(cred->alg));
    kc_verify_result_free(&vr);
    return decide(op, KPX_CARD_OK, "verify", KC_OK);
}

enum kpx_card_outcome kpx_card_register(struct kpx_card *card, const char *username,
                                        struct kpx_cred *cred_out, struct kpx_card_result *res)
{
    uint8_t user_id[KPX_USER_ID_LEN], cdh[KC_CDH_LEN];
    struct kc_cred_request req;
    struct kc_attestation att;
    struct ka_track ka = {0};
    struct kc_dev *d = NULL;
    struct kpx_cred *cred;
    struct op op;
    uint64_t t0;
    int rc;

    if (res == NULL)
        return KPX_CARD_UNAVAILABLE;
    result_reset(res);
    if (card == NULL || username == NULL || username[0] == '\0' || cred_out == NULL) {
        kcu_set_err(res->message, sizeof(res->message),
                    "no card, username or credential output given");
        res->outcome = KPX_CARD_UNAVAILABLE;
        res->err = KC_ERR_INVALID_ARG;
        snprintf(res->step, sizeof(res->step), "config");
        return res->outcome;
    }
    memset(cred_out, 0, sizeof(*cred_out));
    if (!op_begin(&op, card, res))
        return res->outcome;
    if (direct_prepare(&op, "enrolment", &ka, &d) != KC_OK)
        return op_end(&op);
    if (kcu_random(user_id, sizeof(user_id)) != 0 || random_cdh(cdh) != KC_OK) {
        kcu_set_err(res->message, sizeof(res->message),
                    "no randomness for the enrolment challenge");
        decide(&op, KPX_CARD_UNAVAILABLE, "make-credential", KC_ERR_CRYPTO);
        kc_dev_close(d);
        return op_end(&op);
    }
    kc_cred_request_init(&req);
    memcpy(req.client_data_hash, cdh, sizeof(cdh));
    req.rp_id = card->rp_id;
    req.rp_name = card->rp_id;
    req.user_id = user_id;
    req.user_id_len = sizeof(user_id);
    req.user_name = username;
    req.user_display_name = username;
    req.algs[0] = KC_COSE_ES256;
    req.n_algs = 1;
    memset(&att, 0, sizeof(att));
    t0 = kc_now_us();
    rc = kc_ctap2_make_credential(d, &req, &att);
    if (rc != KC_OK) {
        command_failed(&op, d, "make-credential", "makeCredential", rc);
    } else if ((cred = calloc(1, sizeof(*cred))) == NULL) {
        kcu_set_err(res->message, sizeof(res->message), "out of memory");
        decide(&op, KPX_CARD_UNAVAILABLE, "verify", KC_ERR_NOMEM);
    } else {
        if (check_attestation(&op, &att, cdh, user_id, cred) == KPX_CARD_OK)
            *cred_out = *cred;
        free(cred);
    }
    kc_attestation_free(&att);
    close_step(&op, d, &ka, t0);
    OPENSSL_cleanse(user_id, sizeof(user_id));
    return op_end(&op);
}

static enum kpx_card_outcome check_assertion(struct op *op, const struct kc_assertion *a,
                                             const struct kc_cose_key *key,
                                             const uint8_t cdh[KC_CDH_LEN],
                                             const struct kpx_cred *cred)
{
    struct kpx_card_result *res = op->res;
    struct kc_verify_result vr;
    uint32_t fresh = 0;
    int rc;

    if (a->cred_id != NULL && (a->cred_id_len != cred->cred_id_len ||
                               CRYPTO_memcmp(a->cred_id, cred->cred_id, cred->cred_id_len) != 0)) {
        kcu_set_err(res->message, sizeof(res->message),
                    "the card answered with another credential than the one enrolled");
        return decide(op, KPX_CARD_INVALID, "verify", KC_ERR_VERIFY);
    }
    if (a->has_user && a->user_id != NULL && cred->user_id_len > 0 &&
        (a->user_id_len != cred->user_id_len ||
         CRYPTO_memcmp(a->user_id, cred->user_id, cred->user_id_len) != 0)) {
        kcu_set_err(res->message, sizeof(res->message),
                    "the card answered with another user handle than the one enrolled");
        return decide(op, KPX_CARD_INVALID, "verify", KC_ERR_VERIFY);
    }
    kc_verify_result_init(&vr);
    /* prev 0: the counter rule is applied below, with its own message */
    rc = kc_verify_assertion(key, a->auth_data, a->auth_data_len, a->signature, a->signature_len,
                             cdh, op->card->rp_id, true, false, 0, &fresh, &vr);
    if (rc != KC_OK) {
        kcu_set_err(res->message, sizeof(res->message), "assertion did not verify: %s", vr.reason);
        kc_verify_result_free(&vr);
        return decide(op, KPX_CARD_INVALID, "verify", rc);
    }
    kc_verify_result_free(&vr);
    res->prev_sign_count = cred->sign_count;
    res->sign_count = fresh;
    if (!kpx_sign_count_ok(cred->sign_count, fresh)) {
        kcu_set_err(res->message, sizeof(res->message),
                    "signCount did not increase: possible cloned credential (stored %u, card %u)",
                    cred->sign_count, fresh);
        snprintf(res->fix, sizeof(res->fix),
                 "treat the credential as compromised: unregister the user and enrol again");
        return decide(op, KPX_CARD_INVALID, "sign-count", KC_ERR_VERIFY);
    }
    kcu_set_err(res->message, sizeof(res->message), "assertion verified (signCount %u)", fresh);
    return decide(op, KPX_CARD_OK, "verify", KC_OK);
}

enum kpx_card_outcome kpx_card_assert_login(struct kpx_card *card, const char *username,
                                            const struct kpx_cred *cred,
                                            struct kpx_card_result *res)
{
    uint8_t cdh[KC_CDH_LEN];
    struct kc_assert_request req;
    struct kc_assertion a;
    struct kc_cose_key key = {0};
    struct kc_cred_id allow;
    struct ka_track ka = {0};
    struct kc_dev *d = NULL;
    char why[256] = "";
    struct op op;
    uint64_t t0;
    int rc;

    if (res == NULL)
        return KPX_CARD_UNAVAILABLE;
    result_reset(res);
    if (card == NULL || username == NULL || cred == NULL) {
        kcu_set_err(res->message, sizeof(res->message), "no card, username or credential given");
        res->outcome = KPX_CARD_UNAVAILABLE;
        res->err = KC_ERR_INVALID_ARG;
        snprintf(res->step, sizeof(res->step), "config");
        return res->outcome;
    }
    /* the stored key must be usable before the user is asked to touch */
    if (cred->cred_id_len == 0 || cred->cred_id_len > sizeof(cred->cred_id) ||
        cred->cose_key_len == 0 || cred->cose_key_len > sizeof(cred->cose_key) ||
        kc_cose_decode_reason(cred->cose_key, cred->cose_key_len, &key, NULL, why, sizeof(why)) !=
            KC_OK ||
        (cred->alg != 0 && key.alg != cred->alg)) {
        kcu_set_err(res->message, sizeof(res->message),
                    "the enrolled credential of %.64s is unusable: %s", username,
                    why[0] != '\0' ? why : "bad credential id or key length, or alg mismatch");
        snprintf(res->fix, sizeof(res->fix), "unregister the user and enrol again");
        res->outcome = KPX_CARD_INVALID;
        res->err = KC_ERR_INVALID_ARG;
        snprintf(res->step, sizeof(res->step), "config");
        kc_cose_key_free(&key);
        return res->outcome;
    }
    if (!op_begin(&op, card, res)) {
        kc_cose_key_free(&key);
        return res->outcome;
    }
    if (direct_prepare(&op, "login", &ka, &d) != KC_OK) {
        kc_cose_key_free(&key);
        return op_end(&op);
    }
    if (random_cdh(cdh) != KC_OK) {
        kcu_set_err(res->message, sizeof(res->message), "no randomness for the login challenge");
        decide(&op, KPX_CARD_UNAVAILABLE, "get-assertion", KC_ERR_CRYPTO);
        kc_dev_close(d);
        kc_cose_key_free(&key);
        return op_end(&op);
    }
    kc_assert_request_init(&req);
    memcpy(req.client_data_hash, cdh, sizeof(cdh));
    req.rp_id = card->rp_id;
    allow.ptr = cred->cred_id;
    allow.len = cred->cred_id_len;
    req.allow = &allow;
    req.n_allow = 1;
    req.up = true;
    memset(&a, 0, sizeof(a));
    t0 = kc_now_us();
    rc = kc_ctap2_get_assertion(d, &req, &a);
    if (rc != KC_OK)
        command_failed(&op, d, "get-assertion", "getAssertion", rc);
    else
        check_assertion(&op, &a, &key, cdh, cred);
    kc_assertion_free(&a);
    close_step(&op, d, &ka, t0);
    kc_cose_key_free(&key);
    return op_end(&op);
}
