/* rawctap's extension options on make-credential and get-assertion
 * (rawctap_ext.c): hmac-secret, credProtect, credBlob, largeBlobKey,
 * minPinLength; the inputs they send and the outputs they show. */
#ifndef KCARD_PROBE_RAWCTAP_EXT_H
#define KCARD_PROBE_RAWCTAP_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/ctap2.h"
#include "triage/rawctap.h"

/* getopt codes of the extension options (beside the commands' own letters) */
enum {
    RC_EXT_HMAC = 'H',
    RC_EXT_HMAC_PROTOCOL = 'X',
    RC_EXT_CRED_PROTECT = 'C',
    RC_EXT_CRED_BLOB = 'B',
    RC_EXT_LARGE_BLOB_KEY = 'L',
    RC_EXT_MIN_PIN_LENGTH = 'M',
};

struct rc_ext_opts {
    bool hmac_secret;      /* make-credential --hmac-secret */
    const char *salts;     /* get-assertion --hmac-secret HEX[,HEX] */
    long hmac_protocol;    /* 0: the card's preferred */
    long cred_protect;     /* 0: not sent */
    const char *cred_blob; /* make-credential: base64url; get-assertion: "" asks getCredBlob */
    bool get_cred_blob;
    bool large_blob_key;
    bool min_pin_length;
};

/* The state of one hmac-secret request, for decrypting its output. */
struct rc_hmac {
    int protocol;
    uint8_t shared[64];
    size_t shared_len;
    size_t n_salts;
};

/* Handles an extension option code: 0 done, RC_EXIT_USAGE on a bad value,
 * -1 when c is not one. */
int rc_ext_opt(const char *cmd, struct rc_ext_opts *x, int c, const char *arg);
/* makeCredential: the extensions map (malloc'd CBOR, NULL when none) and
 * the helper fields of req. RC_EXIT_OK or an exit code (message printed). */
int rc_ext_mc_request(struct rc_ctx *ctx, const struct rc_ext_opts *x, struct kc_cred_request *req,
                      uint8_t **buf, size_t *len);
void rc_ext_mc_show(struct rc_ctx *ctx, const struct rc_ext_opts *x,
                    const struct kc_attestation *att);
/* getAssertion: the extensions map, with hmac-secret's key agreement done
 * (h keeps the shared secret). */
int rc_ext_ga_request(struct rc_ctx *ctx, const struct kc_info *info, const struct rc_ext_opts *x,
                      struct rc_hmac *h, uint8_t **buf, size_t *len);
int rc_ext_ga_show(struct rc_ctx *ctx, const struct rc_ext_opts *x, const struct rc_hmac *h,
                   const struct kc_assertion *a);

#endif
