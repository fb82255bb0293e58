/* Virtual-card benchmarks (figures, not a gate):
 *  1. core CPU per makeCredential and getAssertion (vc_card_cbor called
 *     directly, no sockets);
 *  2. with a device URI of a running vcard (presence yes): makeCredential and
 *     getAssertion per second over UDP with one and with two clients.
 * Target: at least 5,000 getAssertion per second on one core.
 * Usage: bench_vcard [URI] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "ctaphid/ctap2.h"
#include "ctaphid/discover.h"
#include "ctaphid/io.h"
#include "ctaphid/status.h"
#include "harness/vcard/card.h"

static enum vc_up_result approve(void *ctx)
{
    (void)ctx;
    return VC_UP_APPROVED;
}

static const uint8_t user_id[] = {1, 2, 3, 4};

static void cred_request(struct kc_cred_request *req, int alg)
{
    kc_cred_request_init(req);
    memset(req->client_data_hash, 0x11, KC_CDH_LEN);
    req->rp_id = "bench.example";
    req->user_id = user_id;
    req->user_id_len = sizeof(user_id);
    req->user_name = "bench";
    req->algs[0] = alg;
    req->n_algs = 1;
}

static void assert_request(struct kc_assert_request *req, const struct kc_cred_id *id,
                           uint8_t cdh_fill)
{
    kc_assert_request_init(req);
    memset(req->client_data_hash, cdh_fill, KC_CDH_LEN);
    req->rp_id = "bench.example";
    req->allow = id;
    req->n_allow = 1;
}

/* Build "command byte || CBOR" for the core. */
static uint8_t *with_cmd(uint8_t cmd, uint8_t *cbor, size_t len, size_t *out_len)
{
    uint8_t *m = malloc(len + 1);
    if (m == NULL)
        exit(1);
    m[0] = cmd;
    memcpy(m + 1, cbor, len);
    free(cbor);
    *out_len = len + 1;
    return m;
}

/* CPU microseconds per command: msg sent n times to the core, each answer
 * (left in resp) checked for CTAP2_OK. */
static double core_us_per_cmd(struct vc_card *card, const uint8_t *msg, size_t mlen, uint8_t *resp,
                              size_t cap, size_t *rlen, int n, const char *what)
{
    double c0 = cpu_seconds();
    for (int i = 0; i < n; i++) {
        if (vc_card_cbor(card, msg, mlen, resp, cap, rlen, approve, NULL) != 0 || resp[0] != 0) {
            fprintf(stderr, "core %s failed: 0x%02x\n", what, resp[0]);
            exit(1);
        }
    }
    return (cpu_seconds() - c0) / n * 1e6;
}

static void bench_core(int alg, const char *alg_name)
{
    char err[256] = "";
    struct vc_config cfg = {
        .attestation = VC_ATT_PACKED_BATCH, .ctap1 = true, .reset_window_ms = 10000};
    struct vc_card *card = vc_card_new(&cfg, err, sizeof(err));
    if (card == NULL) {
        fprintf(stderr, "vc_card_new: %s\n", err);
        exit(1);
    }
    struct kc_cred_request creq;
    cred_request(&creq, alg);
    uint8_t *cbor = NULL;
    size_t len = 0, mlen = 0;
    if (kc_make_credential_encode(&creq, NULL, 0, 0, &cbor, &len) != KC_OK)
        exit(1);
    uint8_t *mc = with_cmd(KC_CTAP2_MAKE_CREDENTIAL, cbor, len, &mlen);
    static uint8_t resp[KC_HID_MAX_MSG];
    size_t rlen = 0;
    double mc_us =
        core_us_per_cmd(card, mc, mlen, resp, sizeof(resp), &rlen, 300, "makeCredential");
    struct kc_attestation att = {0};
    if (kc_attestation_decode(resp + 1, rlen - 1, &att) != KC_OK)
        exit(1);
    struct kc_cred_id id = {att.ad.cred_id, att.ad.cred_id_len};
    struct kc_assert_request areq;
    assert_request(&areq, &id, 0x22);
    if (kc_get_assertion_encode(&areq, NULL, 0, 0, &cbor, &len) != KC_OK)
        exit(1);
    uint8_t *ga = with_cmd(KC_CTAP2_GET_ASSERTION, cbor, len, &mlen);
    double ga_us = core_us_per_cmd(card, ga, mlen, resp, sizeof(resp), &rlen, 3000, "getAssertion");
    printf("vcard core %s: makeCredential %.1f us cpu (%.0f/s), getAssertion %.1f us cpu "
           "(%.0f/s on one core; target >= 5000/s)\n",
           alg_name, mc_us, 1e6 / mc_us, ga_us, 1e6 / ga_us);
    kc_attestation_free(&att);
    free(mc);
    free(ga);
    vc_card_free(card);
}

struct client_job {
    const char *uri;
    int alg;
    int n_mc, n_ga;
    double mc_secs, ga_secs;
    int failed;
};

static void *client_run(void *arg)
{
    struct client_job *j = arg;
    struct kc_dev *d = NULL;
    char err[256] = "";
    struct kc_timeouts to;
    kc_timeouts_default(&to);
    if (kc_dev_open(&d, j->uri, &to, err, sizeof(err)) != KC_OK) {
        fprintf(stderr, "open %s: %s\n", j->uri, err);
        j->failed = 1;
        return NULL;
    }
    struct kc_cred_request creq;
    cred_request(&creq, j->alg);
    struct kc_attestation att = {0};
    double w0 = wall_seconds();
    for (int i = 0; i < j->n_mc; i++) {
        kc_attestation_free(&att);
        int rc = kc_ctap2_make_credential(d, &creq, &att);
        if (rc != KC_OK) {
            fprintf(stderr, "makeCredential: %s\n", kc_err_name(rc));
            j->failed = 1;
            goto out;
        }
    }
    j->mc_secs = wall_seconds() - w0;
    struct kc_cred_id id = {att.ad.cred_id, att.ad.cred_id_len};
    struct kc_assert_request areq;
    assert_request(&areq, &id, 0x33);
    w0 = wall_seconds();
    for (int i = 0; i < j->n_ga; i++) {
        struct kc_assertion a = {0};
        int rc = kc_ctap2_get_assertion(d, &areq, &a);
        kc_assertion_free(&a);
        if (rc != KC_OK) {
            fprintf(stderr, "getAssertion: %s\n", kc_err_name(rc));
            j->failed = 1;
            goto out;
        }
    }
    j->ga_secs = wall_seconds() - w0;
out:
    kc_attestation_free(&att);
    kc_dev_close(d);
    return NULL;
}

static void bench_udp(const char *uri, int clients)
{
    struct client_job jobs[2];
    pthread_t th[2];
    for (int i = 0; i < clients; i++) {
        jobs[i] = (struct client_job){.uri = uri, .alg = KC_COSE_ES256, .n_mc = 200, .n_ga = 2000};
        pthread_create(&th[i], NULL, client_run, &jobs[i]);
    }
    double mc_rate = 0, ga_rate = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].failed)
            exit(3);
        mc_rate += jobs[i].n_mc / jobs[i].mc_secs;
        ga_rate += jobs[i].n_ga / jobs[i].ga_secs;
    }
    printf("%s, %d client%s: makeCredential %.0f/s, getAssertion %.0f/s (ES256, over UDP)\n", uri,
           clients, clients > 1 ? "s" : "", mc_rate, ga_rate);
}

int main(int argc, char **argv)
{
    bench_core(KC_COSE_ES256, "ES256");
    bench_core(KC_COSE_EDDSA, "EdDSA");
    if (argc > 1) {
        bench_udp(argv[1], 1);
        bench_udp(argv[1], 2);
    }
    return 0;
}
