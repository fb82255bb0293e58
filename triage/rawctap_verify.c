/* rawctap verification: attestation statements after make-credential, and
 * assertions against a saved credential (signature, rpIdHash, UP, and a
 * signCount that must increase), with the file's counter updated only when
 * everything checked out. */
#include <stdlib.h>
#include <string.h>

#include "ctaphid/ctap2.h"
#include "ctaphid/replay.h"
#include "ctaphid/verify.h"
#include "triage/rawctap.h"

/* A replayed answer was signed over the clientDataHash of the recorded
 * request, not over the one this run sent: verify against that one. */
static const uint8_t *rc_replayed_cdh(struct rc_ctx *ctx, const uint8_t cdh[32],
                                      uint8_t recorded[32])
{
    struct kc_transport *t = ctx->dev != NULL ? kc_dev_transport(ctx->dev) : NULL;

    if (t == NULL || kc_replay_recorded_cdh(t, recorded) != 1)
        return cdh;
    rc_verbose(ctx, 1, "replay: verifying against the recorded clientDataHash");
    return recorded;
}

int rc_verify_attestation(struct rc_ctx *ctx, const char *rp_id, const uint8_t cdh[32],
                          const struct kc_attestation *att)
{
    struct kc_verify_result vr;
    uint8_t recorded[32];
    cdh = rc_replayed_cdh(ctx, cdh, recorded);
    kc_verify_result_init(&vr);
    int e = kc_verify_attestation(att->fmt, att->auth_data, att->auth_data_len, att->att_stmt,
                                  att->att_stmt_len, cdh, rp_id, &vr);
    int r = RC_EXIT_OK;
    if (e == KC_OK) {
        char text[KC_VERIFY_SUBJECT_MAX + 64];
        snprintf(text, sizeof(text), "ok (%s, %s%s%s)", att->fmt, kc_att_type_name(vr.att_type),
                 vr.cert_subject[0] ? ", " : "", vr.cert_subject);
        rc_out_str(ctx, "attestation", text);
        rc_out_str(ctx, "attestation_type", kc_att_type_name(vr.att_type));
        if (vr.cert_subject[0] && ctx->verbose)
            rc_verbose(ctx, 1, "attestation certificate: %s (trust in it is your policy)",
                       vr.cert_subject);
    } else {
        rc_out_str(ctx, "attestation", "FAILED");
        rc_err(ctx, "make-credential: attestation (%s) did not verify: %s", att->fmt,
               vr.reason[0] ? vr.reason : kc_err_name(e));
        rc_json_failed(ctx, "VERIFY_ATTESTATION");
        r = RC_EXIT_VERIFY;
    }
    kc_verify_result_free(&vr);
    return r;
}

static int rc_update_count(struct rc_ctx *ctx, const char *path, uint32_t count)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    if (j == NULL) {
        rc_err(ctx, "cannot re-read %s: %s", path, jerr.text);
        return RC_EXIT_LOCAL;
    }
    int r = RC_EXIT_LOCAL;
    if (json_object_set_new(j, "sign_count", json_integer(count)) == 0 &&
        (r = rc_json_write_file(ctx, path, j, "cannot update")) == RC_EXIT_OK)
        rc_verbose(ctx, 1, "sign_count %u saved to %s", count, path);
    json_decref(j);
    return r;
}

int rc_verify_assertion(struct rc_ctx *ctx, const char *rp_id, const uint8_t cdh[32],
                        const struct kc_assertion *a, const struct rc_cred_file *cf, bool up,
                        const char *path)
{
    struct kc_cose_key key;
    struct kc_verify_result vr;
    uint32_t newc = 0;
    uint8_t recorded[32];
    cdh = rc_replayed_cdh(ctx, cdh, recorded);
    memset(&key, 0, sizeof(key));
    kc_verify_result_init(&vr);
    int e = kc_cose_decode(cf->cose, cf->cose_len, &key, NULL);
    if (e != KC_OK) {
        rc_err(ctx, "the saved public key is not a valid COSE key (%s)", kc_err_name(e));
        kc_verify_result_free(&vr);
        return RC_EXIT_USAGE;
    }
    if (key.alg != cf->alg) {
        rc_err(ctx, "the saved alg %d does not match the saved key (%s)", cf->alg,
               kc_cose_alg_name(key.alg));
        kc_verify_result_free(&vr);
        kc_cose_key_free(&key);
        return RC_EXIT_USAGE;
    }
    e = kc_verify_assertion(&key, a->auth_data, a->auth_data_len, a->signature, a->signature_len,
                            cdh, rp_id, up, false, cf->sign_count, &newc, &vr);
    int r = RC_EXIT_OK;
    if (e == KC_OK) {
        char text[96];
        snprintf(text, sizeof(text), "ok (%s, signCount %u -> %u)", kc_cose_alg_name(key.alg),
                 cf->sign_count, newc);
        rc_out_str(ctx, "verified", text);
        rc_out_int(ctx, "previous_sign_count", cf->sign_count);
        if (path)
            r = rc_update_count(ctx, path, newc);
    } else {
        rc_out_str(ctx, "verified", "FAILED");
        rc_out_int(ctx, "previous_sign_count", cf->sign_count);
        rc_err(ctx, "get-assertion: verification failed: %s (saved signCount %u, card says %u)",
               vr.reason[0] ? vr.reason : kc_err_name(e), cf->sign_count, a->ad.sign_count);
        rc_json_failed(ctx, "VERIFY_ASSERTION");
        r = RC_EXIT_VERIFY;
    }
    kc_verify_result_free(&vr);
    kc_cose_key_free(&key);
    return r;
}
