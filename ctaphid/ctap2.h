/* CTAP2 authenticator commands over CTAPHID_CBOR (CTAP 2.1, section 6):
 * typed requests in, typed and fully checked responses out.
 *
 * Return convention (ctaphid/status.h): 0 OK, a positive value is the card's
 * CTAP2 status byte (KC_CTAP2_ERR_*), a negative value is a KC_ERR_*.
 *
 * Every decoder also exists in a pure form over the CBOR body of a response
 * (the bytes AFTER the status byte), so it can be tested and fuzzed without a
 * device. Decoders check every field's CBOR type, length and bounds, skip
 * unknown keys and return KC_ERR_CBOR for anything malformed. */
#ifndef KCARD_CTAPHID_CTAP2_H
#define KCARD_CTAPHID_CTAP2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctaphid/authdata.h"
#include "ctaphid/io.h"
#include "ctaphid/status.h"

#define KC_CDH_LEN 32          /* clientDataHash */
#define KC_INFO_LIST_MAX 24    /* entries kept per getInfo list */
#define KC_INFO_NAME_MAX 64    /* bytes per kept string, NUL included */
#define KC_MAX_ALGS 8          /* pubKeyCredParams in one request */
#define KC_FMT_MAX 33          /* attestation format name, NUL included */
#define KC_PIN_TOKEN_MAX 32    /* pinUvAuthToken bytes */
#define KC_CTAP2_RESP_MAX 7609 /* largest CTAPHID message */

/* ---- authenticatorGetInfo (0x04) ---------------------------------------- */

/* getInfo map keys (CTAP 2.1, 6.4) */
enum kc_info_key {
    KC_INFO_VERSIONS = 0x01,
    KC_INFO_EXTENSIONS = 0x02,
    KC_INFO_AAGUID = 0x03,
    KC_INFO_OPTIONS = 0x04,
    KC_INFO_MAX_MSG_SIZE = 0x05,
    KC_INFO_PIN_PROTOCOLS = 0x06,
    KC_INFO_MAX_CRED_COUNT_IN_LIST = 0x07,
    KC_INFO_MAX_CRED_ID_LEN = 0x08,
    KC_INFO_TRANSPORTS = 0x09,
    KC_INFO_ALGORITHMS = 0x0a,
    KC_INFO_MAX_LARGE_BLOB = 0x0b,
    KC_INFO_FORCE_PIN_CHANGE = 0x0c,
    KC_INFO_MIN_PIN_LENGTH = 0x0d,
    KC_INFO_FIRMWARE_VERSION = 0x0e,
    KC_INFO_MAX_CRED_BLOB_LEN = 0x0f,
    KC_INFO_MAX_RPIDS_MIN_PIN = 0x10,
    KC_INFO_PREFERRED_UV_ATTEMPTS = 0x11,
    KC_INFO_UV_MODALITY = 0x12,
    KC_INFO_REMAINING_DISC_CREDS = 0x14,
};

struct kc_info_option {
    char name[KC_INFO_NAME_MAX];
    bool value;
};

struct kc_info_alg {
    char type[KC_INFO_NAME_MAX]; /* "public-key" */
    int64_t alg;                 /* COSE alg, e.g. KC_COSE_ES256 */
};

/* Fixed-size; needs no free. Numbers are 0 when absent: test present. */
struct kc_info {
    uint32_t present; /* bit k set when getInfo key k (1..31) was present */
    char versions[KC_INFO_LIST_MAX][KC_INFO_NAME_MAX];
    size_t n_versions;
    char extensions[KC_INFO_LIST_MAX][KC_INFO_NAME_MAX];
    size_t n_extensions;
    uint8_t aaguid[KC_AAGUID_LEN];
    struct kc_info_option options[KC_INFO_LIST_MAX];
    size_t n_options;
    uint64_t max_msg_size;
    uint64_t pin_protocols[KC_INFO_LIST_MAX]; /* in the card's order of preference */
    size_t n_pin_protocols;
    uint64_t max_cred_count_in_list;
    uint64_t max_cred_id_len;
    char transports[KC_INFO_LIST_MAX][KC_INFO_NAME_MAX];
    size_t n_transports;
    struct kc_info_alg algorithms[KC_INFO_LIST_MAX];
    size_t n_algorithms;
    uint64_t max_serialized_large_blob_array;
    bool force_pin_change;
    uint64_t min_pin_length;
    uint64_t firmware_version;
    uint64_t max_cred_blob_len;
    uint64_t max_rpids_for_set_min_pin_length;
    uint64_t preferred_platform_uv_attempts;
    uint64_t uv_modality;
    uint64_t remaining_discoverable_credentials;
    /* set when a list held more than KC_INFO_LIST_MAX entries or a string
     * longer than KC_INFO_NAME_MAX - 1: the extra entries were dropped */
    bool truncated;
};

int kc_ctap2_get_info(struct kc_dev *d, struct kc_info *info);
int kc_info_decode(const uint8_t *cbor, size_t len, struct kc_info *info);

bool kc_info_has(const struct kc_info *info, enum kc_info_key key);
/* -1 option absent, 0 false, 1 true */
int kc_info_option(const struct kc_info *info, const char *name);
bool kc_info_has_version(const struct kc_info *info, const char *version);
bool kc_info_has_extension(const struct kc_info *info, const char *ext);
bool kc_info_supports_pin_protocol(const struct kc_info *info, int protocol);
/* "2, 1" or "none": the PIN/UV protocols the card advertised, for messages */
void kc_info_pin_protocols_str(const struct kc_info *info, char *buf, size_t len);

/* ---- PIN/UV protocol choice (the runbook rule) -------------------------- */

/* What a command did about PIN/UV auth; filled in every result below. */
struct kc_pin_outcome {
    int protocol;     /* protocol used for pinUvAuthParam, 0 when none */
    bool used_pin;    /* a pinUvAuthParam was sent */
    bool no_protocol; /* the card advertises no PIN/UV protocol (and no
                         clientPin option) and no PIN was given: the command
                         proceeded without one. Tools say so in -v output:
                         "card advertises no PIN/UV auth protocol; proceeding
                         without PIN". Only known when info was available. */
};

/* Choose the protocol for a command. have_pin false: always KC_OK, with
 * *protocol 0 and out->no_protocol set when info advertises nothing.
 * have_pin true: protocol 2, else 1, as the card advertises; none fits ->
 * KC_ERR_NO_PIN_PROTOCOL (name the card's list with
 * kc_info_pin_protocols_str). A card that lists no protocols but has the
 * clientPin option is taken to speak protocol 1 (CTAP 2.0 cards). */
int kc_pin_choose_protocol(const struct kc_info *info, bool have_pin, int *protocol,
                           struct kc_pin_outcome *out);

/* A pinUvAuthToken obtained from the card (see ctaphid/pin.h). */
struct kc_pin_token {
    int protocol;
    uint8_t token[KC_PIN_TOKEN_MAX];
    size_t len;
};

/* ---- authenticatorMakeCredential (0x01) -------------------------------- */

/* A credential id in a request list (borrowed, not copied). */
struct kc_cred_id {
    const uint8_t *ptr;
    size_t len;
};

struct kc_cred_request {
    uint8_t client_data_hash[KC_CDH_LEN];
    const char *rp_id;   /* required */
    const char *rp_name; /* optional */
    const uint8_t *user_id;
    size_t user_id_len;            /* 1..64, required */
    const char *user_name;         /* optional */
    const char *user_display_name; /* optional */
    int algs[KC_MAX_ALGS];         /* pubKeyCredParams, preferred first */
    size_t n_algs;                 /* 0: {ES256} */
    const struct kc_cred_id *exclude;
    size_t n_exclude;
    bool rk, uv;
    /* extensions: a pre-encoded CBOR map passed through unchanged, plus the
     * helpers below merged into it (a helper key already in the map wins) */
    const uint8_t *extensions_cbor;
    size_t extensions_len;
    int cred_protect; /* 0: not sent; 1..3: "credProtect" */
    bool hmac_secret; /* "hmac-secret": true */
    /* PIN/UV auth: token wins over pin; with a pin the library gets a token
     * (permission mc, rp_id) and computes pinUvAuthParam itself */
    const struct kc_pin_token *token;
    const char *pin;
    const struct kc_info *info; /* optional; fetched when a PIN needs it */
};
void kc_cred_request_init(struct kc_cred_request *req);

struct kc_attestation {
    char fmt[KC_FMT_MAX];
    uint8_t *auth_data; /* malloc'd */
    size_t auth_data_len;
    uint8_t *att_stmt; /* the attStmt map, CBOR, malloc'd */
    size_t att_stmt_len;
    bool has_ep_att, ep_att;
    uint8_t *large_blob_key; /* malloc'd, NULL when absent */
    size_t large_blob_key_len;
    struct kc_authdata ad; /* parsed view, points into auth_data */
    struct kc_pin_outcome pin;
};

int kc_ctap2_make_credential(struct kc_dev *d, const struct kc_cred_request *req,
                             struct kc_attestation *att);
/* Pure: the request CBOR (after the command byte) for a given
 * pinUvAuthParam (NULL: none). free() *buf. */
int kc_make_credential_encode(const struct kc_cred_request *req, const uint8_t *pin_uv_auth_param,
                              size_t param_len, int pin_protocol, uint8_t **buf, size_t *len);
int kc_attestation_decode(const uint8_t *cbor, size_t len, struct kc_attestation *att);
void kc_attestation_free(struct kc_attestation *att); /* frees members, keeps struct */

/* ---- authenticatorGetAssertion (0x02) / GetNextAssertion (0x08) -------- */

struct kc_assert_request {
    uint8_t client_data_hash[KC_CDH_LEN];
    const char *rp_id; /* required */
    const struct kc_cred_id *allow;
    size_t n_allow;
    bool up; /* default true (kc_assert_request_init) */
    bool uv;
    const uint8_t *extensions_cbor; /* pre-encoded CBOR map, passed through */
    size_t extensions_len;
    const struct kc_pin_token *token; /* as in kc_cred_request (permission ga) */
    const char *pin;
    const struct kc_info *info;
};
void kc_assert_request_init(struct kc_assert_request *req);

struct kc_assertion {
    uint8_t *cred_id; /* malloc'd; NULL when the card omitted it */
    size_t cred_id_len;
    uint8_t *auth_data; /* malloc'd */
    size_t auth_data_len;
    struct kc_authdata ad; /* parsed view, points into auth_data */
    uint8_t *signature;    /* malloc'd */
    size_t signature_len;
    bool has_user;
    uint8_t *user_id; /* malloc'd */
    size_t user_id_len;
    char *user_name;                /* malloc'd, NULL when absent */
    char *user_display_name;        /* malloc'd, NULL when absent */
    uint64_t number_of_credentials; /* 0 when absent */
    bool user_selected;
    uint8_t *large_blob_key;
    size_t large_blob_key_len;
    struct kc_pin_outcome pin;
};

int kc_ctap2_get_assertion(struct kc_dev *d, const struct kc_assert_request *req,
                           struct kc_assertion *a);
int kc_ctap2_get_next_assertion(struct kc_dev *d, struct kc_assertion *a);
int kc_get_assertion_encode(const struct kc_assert_request *req, const uint8_t *pin_uv_auth_param,
                            size_t param_len, int pin_protocol, uint8_t **buf, size_t *len);
int kc_assertion_decode(const uint8_t *cbor, size_t len, struct kc_assertion *a);
void kc_assertion_free(struct kc_assertion *a); /* frees members, keeps struct */

/* ---- authenticatorSelection (0x0b), authenticatorReset (0x07) ---------- */

int kc_ctap2_selection(struct kc_dev *d);
int kc_ctap2_reset(struct kc_dev *d);

/* ---- raw command -------------------------------------------------------- */

/* Send cmd (KC_CTAP2_*) with an optional CBOR parameter map over
 * CTAPHID_CBOR. Returns the card's status byte (0 OK, > 0 error) or a
 * KC_ERR_*; on status 0 the body after the status byte is copied to out. */
int kc_ctap2_command(struct kc_dev *d, uint8_t cmd, const uint8_t *params, size_t params_len,
                     uint8_t *out, size_t cap, size_t *out_len);

#endif
