/* k_proxy's card gate: the one card behind the proxy, used by many HTTP
 * threads, one operation at a time. Three operations:
 *   - probe login (auth mode probe): card presence (kc_probe_card: bounded
 *     INIT + getInfo) and approval (CTAP 2.1 authenticatorSelection, or on a
 *     card without it but with CTAP1 a U2F register-style presence test);
 *   - register (fido2-direct): makeCredential ES256, attestation verified;
 *   - assertion login (fido2-direct): getAssertion with the stored
 *     credential, verified against the stored COSE key, signCount rule.
 * Every operation first runs the presence probe (so an unavailable card is
 * reported with the probe's fail code and fix), then opens the device again
 * by its URI for the command: a card unplugged and re-plugged between logins
 * (even under a new node or address, with "auto") is found again.
 *
 * Thread-safe: a mutex inside serialises the operations. A caller that
 * cannot get the card within busy_wait_ms gets KPX_CARD_BUSY. Prints
 * nothing: outcomes, messages and timings are returned in the result. */
#ifndef KCARD_K_PROXY_CARD_AUTH_H
#define KCARD_K_PROXY_CARD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/authdata.h"
#include "ctaphid/io.h"
#include "ctaphid/transport.h"

#define KPX_CARD_TIMEOUT_DEFAULT_MS 30000
#define KPX_CARD_COMMAND_DEFAULT_MS 5000
#define KPX_CRED_ID_MAX KC_CRED_ID_MAX /* 1023 */
#define KPX_COSE_KEY_MAX 1024
#define KPX_USER_ID_LEN 32
#define KPX_RP_ID_MAX 253

enum kpx_card_outcome {
    KPX_CARD_OK = 0,
    KPX_CARD_DENIED,      /* operation denied, presence refused, the user did not
                             answer in time, keepalive cancel */
    KPX_CARD_UNAVAILABLE, /* no device, permission, INIT timeout, unplugged, card
                             lacks what the mode needs; message has fail code + fix */
    KPX_CARD_TIMEOUT,     /* transport stuck: no answer and no presence prompt */
    KPX_CARD_INVALID,     /* a verification failed (attestation, assertion,
                             signCount, malformed response) */
    KPX_CARD_BUSY,        /* another request held the card past busy_wait_ms */
};
/* The API.md error code: "ok", "card_denied", "card_unavailable",
 * "card_timeout", "assertion_invalid", "card_busy". */
const char *kpx_card_outcome_name(enum kpx_card_outcome o);

struct kpx_card_cfg {
    const char *device_uri; /* "auto" (NULL/"" too) or a URI like udp:127.0.0.1:8111 */
    const char *rp_id;      /* NULL: "localhost" */
    int timeout_ms;         /* waiting for the user after UPNEEDED; 0: 30000 */
    int command_ms;         /* card answer or presence prompt; 0: min(5000, timeout_ms) */
    int busy_wait_ms;       /* waiting for another request's card use; 0: timeout_ms */
};

/* A credential as enrolled: what the store keeps for a fido2-direct user. */
struct kpx_cred {
    uint8_t cred_id[KPX_CRED_ID_MAX];
    size_t cred_id_len;
    uint8_t cose_key[KPX_COSE_KEY_MAX]; /* the COSE_Key map, raw CBOR from authData */
    size_t cose_key_len;
    int alg; /* COSE alg, -7 (ES256) for credentials made here */
    uint32_t sign_count;
    uint8_t user_id[KPX_USER_ID_LEN]; /* the random user handle */
    size_t user_id_len;
};

struct kpx_card_result {
    enum kpx_card_outcome outcome;
    int err;               /* KC_ERR_* or CTAP2 status of the failed step, KC_OK on success */
    char step[24];         /* the step that decided: "lock", "probe", "open", "selection",
                              "u2f-presence", "make-credential", "get-assertion", "verify",
                              "sign-count", "config" */
    char message[768];     /* one sentence: what happened (ok or why not) */
    char fix[512];         /* what to do about it, "" when nothing to say */
    const char *fail_code; /* the probe's kc_probe_fail_code, "ok" when it passed,
                              "" when the probe did not run */
    char uri[KC_URI_MAX];  /* the device used ("auto" resolved) */
    /* milliseconds; -1 when the step did not run */
    double lock_wait_ms; /* waiting for another request's card use */
    double probe_ms;     /* kc_probe_card */
    double op_ms;        /* the command (selection, makeCredential, getAssertion) */
    double user_wait_ms; /* from the first KEEPALIVE UPNEEDED to the answer */
    double total_ms;
    /* keepalives seen during the command */
    unsigned keepalives_processing, keepalives_upneeded;
    bool saw_upneeded;
    /* the card, from the probe */
    bool card_present;
    bool ctap2;                    /* INIT advertised CBOR */
    bool has_aaguid;               /* getInfo answered */
    uint8_t aaguid[KC_AAGUID_LEN]; /* getInfo aaguid */
    char versions[256];            /* "FIDO_2_0, FIDO_2_1, U2F_V2" */
    bool used_u2f;                 /* probe approval went through CTAP1 */
    uint32_t sign_count;           /* register: initial; assert: the new counter */
    uint32_t prev_sign_count;      /* assert: the stored counter */
    bool reenumerated;             /* the card was followed to a new node */
};

struct kpx_card;

/* Checks and copies cfg. NULL with a sentence in err when cfg is unusable
 * (negative timeouts, an empty or over-long rp_id or URI, ...). */
struct kpx_card *kpx_card_new(const struct kpx_card_cfg *cfg, char *err, size_t errlen);
void kpx_card_free(struct kpx_card *card);

/* Probe auth mode: presence + approval. result->outcome KPX_CARD_OK when
 * the user approved. Returns result->outcome. username is only checked for
 * NULL and used in messages. Approval is CTAP 2.1 authenticatorSelection;
 * a card without it (CTAP1-only, or CTAP 2.0 answering INVALID_COMMAND)
 * but with CTAP1 is asked through a U2F registration with a throw-away
 * challenge, polled until touched or timeout_ms (result->used_u2f); a card
 * with neither gives KPX_CARD_UNAVAILABLE saying so. */
enum kpx_card_outcome kpx_card_probe_login(struct kpx_card *card, const char *username,
                                           struct kpx_card_result *result);

/* fido2-direct enrolment: makeCredential (ES256, rp rp_id, a random 32-byte
 * user handle, user name username, clientDataHash = SHA-256 of a random
 * challenge), attestation statement verified (packed x5c/self, fido-u2f or
 * none: which attestation roots to trust is not decided here), UP set, an
 * ES256 key. On KPX_CARD_OK *cred_out is filled (zeroed otherwise). A
 * CTAP1-only card gives KPX_CARD_UNAVAILABLE: fido2-direct needs CTAP2. */
enum kpx_card_outcome kpx_card_register(struct kpx_card *card, const char *username,
                                        struct kpx_cred *cred_out, struct kpx_card_result *result);

/* fido2-direct login: getAssertion with allowList = cred, a random
 * challenge, verified with cred's COSE key (signature, rpIdHash, UP) and
 * the signCount rule against cred->sign_count. On KPX_CARD_OK
 * result->sign_count is the new counter for the caller to store
 * (kpx_store_user_update_sign_count enforces the rule again atomically). */
enum kpx_card_outcome kpx_card_assert_login(struct kpx_card *card, const char *username,
                                            const struct kpx_cred *cred,
                                            struct kpx_card_result *result);

/* ---- pure pieces, exposed for tests ------------------------------------ */

/* The outcome of a libctaphid result: rc (KC_ERR_* or CTAP2 status), the
 * phase the wait failed in, and whether the card asked for the user. */
enum kpx_card_outcome kpx_card_outcome_of(int rc, enum kc_phase phase, bool saw_upneeded);

/* The authenticator signature counter rule: when either counter is
 * non-zero, the new one must be greater. */
bool kpx_sign_count_ok(uint32_t stored, uint32_t fresh);

/* Test hook: supply the transport for every device open (probe and
 * command) instead of kc_transport_open(uri), e.g. a mem transport
 * answered by an in-process virtual card. fn NULL restores the default. */
typedef int (*kpx_card_open_fn)(void *ctx, const char *uri, struct kc_transport **out, char *err,
                                size_t errlen);
void kpx_card_set_opener(struct kpx_card *card, kpx_card_open_fn fn, void *ctx);

#endif
