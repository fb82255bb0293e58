/* rawctap doctor: the triage decision tree of docs/runbook/TRIAGE.md.
 *
 * The command (rawctap_doctor.c) gathers evidence step by step into a
 * struct rc_doc_evidence; the decision (rawctap_doctor_tree.c) is a pure
 * function of that evidence, so every branch is unit-testable without a
 * card. After each step the runner asks the tree whether a failure is
 * already named and stops there: the FIRST failing step is reported. */
#ifndef KCARD_PROBE_RAWCTAP_DOCTOR_H
#define KCARD_PROBE_RAWCTAP_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ctaphid/io.h"
#include "ctaphid/transport.h"

/* A presence wait with no KEEPALIVE for longer than this is a finding. */
#define RC_DOC_KEEPALIVE_GAP_MS 500
#define RC_DOC_SLOW_MS_DEFAULT 1500
#define RC_DOC_MAX_STEPS 16
#define RC_DOC_MAX_EVIDENCE 8
#define RC_DOC_MAX_WARNINGS 4
#define RC_DOC_LINE 320
/* With this many PIN retries left or fewer, doctor does not spend one
 * (a wrong PIN would block the PIN for good) unless --pin-last-try. */
#define RC_DOC_PIN_SPARE_RETRIES 1

enum rc_doc_dev {
    RC_DOC_DEV_AUTO = 0, /* "auto": discovery chooses the card */
    RC_DOC_DEV_HIDRAW,   /* an explicit hidraw node */
    RC_DOC_DEV_OTHER,    /* udp:, hidapi:, replay: (no enumeration checks) */
};

enum rc_doc_result {
    RC_DOC_PASS = 0,
    RC_DOC_WARN,
    RC_DOC_FAIL,
    RC_DOC_SKIP,
};
const char *rc_doc_result_name(enum rc_doc_result r); /* "pass", "warn", "fail", "skip" */

struct rc_doc_step {
    const char *name; /* static: "discover", "open", "init", ... */
    enum rc_doc_result result;
    long ms;
    char detail[RC_DOC_LINE];
};

/* Outcome counts of a group of CTAPHID PINGs. */
struct rc_doc_pings {
    int sent;
    int ok;
    int timeout;  /* no reply within the bound */
    int framing;  /* KC_ERR_PROTOCOL: bad sequence / unexpected continuation */
    int mismatch; /* a reply whose echo was not ours (stale or duplicated) */
    int other;    /* any other error */
};

/* Everything the tree looks at. Zero-initialise, then fill what ran. */
struct rc_doc_evidence {
    enum rc_doc_dev dev;
    char device[KC_URI_MAX]; /* as given */
    char target[KC_URI_MAX]; /* the card actually opened ("" before) */
    int timeout_ms, init_timeout_ms, presence_timeout_ms, slow_ms;

    /* discover (auto and hidraw only) */
    bool discover_ran;
    size_t n_hidraw, n_fido, n_announced;
    char sysfs_root[256];
    char announce_dir[256];
    char nodes[RC_DOC_LINE];      /* "hidraw0 FIDO 1050:0407, hidraw1 vendor 1050:0407" */
    char fido_nodes[RC_DOC_LINE]; /* FIDO node paths, for the fix */
    bool named_exists;            /* explicit hidraw: the path exists */
    int named_fido;               /* explicit hidraw: 1 FIDO, 0 not, -1 unknown */

    /* open */
    bool open_ran;
    int open_err; /* KC_OK or KC_ERR_* */
    char open_msg[512];
    char node_path[256];
    bool have_stat; /* the node's owner, group and mode were read */
    char owner[64], group[64];
    unsigned mode; /* permission bits */
    unsigned uid;  /* who runs doctor */
    bool in_group; /* that user is in the node's group */

    /* init */
    bool init_ran;
    int init_attempts;
    int init_ok_attempt; /* 1-based; 0 when none answered */
    int init_err;
    uint8_t caps;
    bool caps_known;

    /* channel: small (one-report) and large (multi-report) PINGs */
    bool chan_ran;
    struct rc_doc_pings small, large;
    bool busy;       /* CTAPHID_ERROR CHANNEL_BUSY */
    uint8_t hid_err; /* another CTAPHID_ERROR code, 0 none */
    uint64_t other_cid, stale;

    /* getInfo */
    bool info_ran;
    int info_err;
    size_t n_pin_protocols;
    int client_pin; /* -1 absent, 0 false, 1 true */
    char versions[128];
    /* what decides whether makeCredential/getAssertion need a PIN or UV */
    int always_uv;          /* getInfo option alwaysUv: -1 absent, 0 false, 1 true */
    int uv;                 /* built-in UV: -1 absent, 0 not configured, 1 configured */
    int mc_uv_not_rqd;      /* makeCredUvNotRqd: -1 absent, 0, 1 */
    bool force_pin_change;  /* getInfo forcePINChange (0x0c) */
    char pin_protocols[64]; /* "2, 1" or "none" */
    /* resident-credential capacity, reported only (never a finding):
     * getInfo's remainingDiscoverableCredentials (0x14) when the card gives
     * it, and with a PIN the card accepted, credential management's
     * metadata (existing and remaining) */
    bool rk_remaining_known;
    uint64_t rk_remaining;
    bool cm_ran;
    int cm_err; /* KC_OK, a CTAP2 status or KC_ERR_* */
    uint64_t cm_existing, cm_remaining;

    /* pin: getRetries (a PIN is set) and, with --pin, a pinUvAuthToken.
     * The PIN itself is never part of the evidence. */
    bool pin_given; /* --pin, --pin-file or $RAWCTAP_PIN */
    bool pin_ran;
    bool retries_ran;
    int retries_err; /* KC_OK, a CTAP2 status or KC_ERR_* */
    unsigned retries;
    bool power_cycle_state; /* getRetries: PIN use blocked until power cycle */
    bool pin_spared;        /* PIN given but not tried: too few retries left */
    bool token_ran;
    int token_err; /* getPinToken / getPinUvAuthToken...: KC_OK, status or KC_ERR_* */
    int token_protocol;
    bool retries_after_known; /* getRetries again after a refused PIN */
    unsigned retries_after;
    bool mc_used_pin, ga_used_pin; /* the request carried a pinUvAuthParam */
    bool mc_used_uv;               /* the request asked for the card's built-in uv */
    /* after a request the card did not answer with no KEEPALIVE at all: did
     * a fresh CTAPHID_INIT get an answer? 0 not asked, 1 yes, -1 no */
    int mc_alive_after, ga_alive_after;
    /* explicit udp card announced by a virtual card: the address its announce
     * file names now, when that changed during the run ("" otherwise) */
    char moved_hint[KC_URI_MAX];

    /* presence: makeCredential on the throwaway rp id */
    bool presence_ran, presence_skipped;
    int mc_err;
    enum kc_phase mc_phase;
    int n_processing, n_upneeded;
    long mc_ms;
    long max_gap_ms; /* longest stretch without a packet while waiting */
    int att_err;     /* attestation verification */
    char att_reason[256];

    /* verify: getAssertion (up=false) checked with the new (or saved) key */
    bool verify_ran;
    bool verify_cred_file; /* against --cred-file */
    char cred_file[256];   /* its path, for the fix */
    int ga_err;
    int sig_err; /* signature/rpIdHash/flags, counter not considered */
    char sig_reason[256];
    uint32_t prev_count, new_count;
    long ga_max_gap_ms;

    /* CTAP1/U2F timing */
    bool ctap1_ran;
    int ctap1_err; /* KC_OK, KC_ERR_TIMEOUT, KC_ERR_U2F, ... */
    uint16_t ctap1_sw;
    long ctap1_ms;         /* VERSION, REGISTER's first answer and a check-only */
    bool ctap1_cut_short;  /* stopped once over slow_ms */
    int ctap1_alive_after; /* after a CTAP1 request got nothing: INIT answered 1, not -1 */
    char u2f_version[16];

    /* enumeration: did the card move or vanish (auto mode) */
    bool enum_ran;
    bool enum_changed, enum_vanished;
    char enum_old[KC_URI_MAX], enum_new[KC_URI_MAX];
    bool saw_unplugged; /* a step got KC_ERR_UNPLUGGED (stale descriptor) */

    struct rc_doc_step steps[RC_DOC_MAX_STEPS];
    size_t n_steps;
};

struct rc_doc_finding {
    const char *code; /* stable UPPER_SNAKE (TRIAGE.md) */
    const char *step; /* the step that named it */
    int exit;         /* 0 (pass or warning), 3 transport, 4 card, 5 verification */
    char evidence[RC_DOC_MAX_EVIDENCE][RC_DOC_LINE];
    size_t n_evidence;
    char fix[896];
};

struct rc_doc_verdict {
    bool ok;                       /* exit 0 */
    bool done;                     /* a failure was named: stop gathering */
    bool pin_gate;                 /* ...by the PIN/UV state (step "pin"): the
                                      runner still tests what needs no PIN */
    struct rc_doc_finding primary; /* the failure, the first warning, or OK */
    struct rc_doc_finding warnings[RC_DOC_MAX_WARNINGS];
    size_t n_warnings;
};

/* Exit class of a diagnosis code: 0, 3 or 4 (-1 for an unknown code). */
int rc_doc_code_exit(const char *code);
/* Every code, NULL-terminated (for the docs test). */
const char *const *rc_doc_codes(void);

/* The pure decision: walks the tree over ev in order and fills v. */
void rc_doc_decide(const struct rc_doc_evidence *ev, struct rc_doc_verdict *v);

/* The --json object: {"ok","code","level","step","exit","evidence","fix",
 * "steps":[{name,result,ms,detail}],"warnings":[...],"device","pin_given"}
 * and "pin_retries" when getRetries answered. */
json_t *rc_doc_json(const struct rc_doc_evidence *ev, const struct rc_doc_verdict *v);

/* Appends a step; returns it (NULL when full). */
struct rc_doc_step *rc_doc_step_add(struct rc_doc_evidence *ev, const char *name,
                                    enum rc_doc_result r, long ms, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
