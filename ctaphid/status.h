/* Protocol constants of CTAPHID, CTAP2 and CTAP1/U2F, the library's own
 * error codes, and a name for every one of them. Shared by the host library
 * and the virtual card so both sides speak from one table. */
#ifndef KCARD_CTAPHID_STATUS_H
#define KCARD_CTAPHID_STATUS_H

#include <stdint.h>

/* CTAPHID framing (CTAP 2.1, section 11.2) */
#define KC_HID_REPORT_LEN 64
#define KC_HID_INIT_HDR 7                                      /* cid(4) cmd(1) bcnth(1) bcntl(1) */
#define KC_HID_CONT_HDR 5                                      /* cid(4) seq(1) */
#define KC_HID_INIT_DATA (KC_HID_REPORT_LEN - KC_HID_INIT_HDR) /* 57 */
#define KC_HID_CONT_DATA (KC_HID_REPORT_LEN - KC_HID_CONT_HDR) /* 59 */
#define KC_HID_MAX_SEQ 128
#define KC_HID_MAX_MSG (KC_HID_INIT_DATA + KC_HID_MAX_SEQ * KC_HID_CONT_DATA) /* 7609 */
#define KC_HID_BROADCAST_CID 0xffffffffu
#define KC_HID_TYPE_INIT 0x80
#define KC_HID_NONCE_LEN 8
#define KC_HID_INIT_RESP_LEN 17

enum kc_hid_cmd {
    KC_HID_PING = 0x81,
    KC_HID_MSG = 0x83,
    KC_HID_LOCK = 0x84,
    KC_HID_INIT = 0x86,
    KC_HID_WINK = 0x88,
    KC_HID_CBOR = 0x90,
    KC_HID_CANCEL = 0x91,
    KC_HID_KEEPALIVE = 0xbb,
    KC_HID_ERROR = 0xbf,
};

/* CTAPHID_ERROR payload codes */
enum kc_hid_err {
    KC_HID_ERR_INVALID_CMD = 0x01,
    KC_HID_ERR_INVALID_PAR = 0x02,
    KC_HID_ERR_INVALID_LEN = 0x03,
    KC_HID_ERR_INVALID_SEQ = 0x04,
    KC_HID_ERR_MSG_TIMEOUT = 0x05,
    KC_HID_ERR_CHANNEL_BUSY = 0x06,
    KC_HID_ERR_LOCK_REQUIRED = 0x0a,
    KC_HID_ERR_INVALID_CHANNEL = 0x0b,
    KC_HID_ERR_OTHER = 0x7f,
};

/* KEEPALIVE status byte */
enum kc_keepalive_status {
    KC_KEEPALIVE_PROCESSING = 1,
    KC_KEEPALIVE_UPNEEDED = 2,
};

/* INIT response capability flags */
#define KC_HID_CAP_WINK 0x01
#define KC_HID_CAP_CBOR 0x04
#define KC_HID_CAP_NMSG 0x08

/* CTAP2 authenticator commands (first byte of a CTAPHID_CBOR message) */
enum kc_ctap2_cmd {
    KC_CTAP2_MAKE_CREDENTIAL = 0x01,
    KC_CTAP2_GET_ASSERTION = 0x02,
    KC_CTAP2_GET_INFO = 0x04,
    KC_CTAP2_CLIENT_PIN = 0x06,
    KC_CTAP2_RESET = 0x07,
    KC_CTAP2_GET_NEXT_ASSERTION = 0x08,
    KC_CTAP2_CRED_MGMT = 0x0a,
    KC_CTAP2_SELECTION = 0x0b,
    KC_CTAP2_LARGE_BLOBS = 0x0c,
    KC_CTAP2_AUTHENTICATOR_CONFIG = 0x0d,
    KC_CTAP2_CRED_MGMT_PRE = 0x41, /* the 2.1-PRE number of credential management */
};

/* authenticatorClientPIN subcommands */
enum kc_pin_subcmd {
    KC_PIN_GET_RETRIES = 0x01,
    KC_PIN_GET_KEY_AGREEMENT = 0x02,
    KC_PIN_SET_PIN = 0x03,
    KC_PIN_CHANGE_PIN = 0x04,
    KC_PIN_GET_PIN_TOKEN = 0x05,
    KC_PIN_GET_TOKEN_UV_PERMISSIONS = 0x06,
    KC_PIN_GET_UV_RETRIES = 0x07,
    KC_PIN_GET_TOKEN_PIN_PERMISSIONS = 0x09,
};

/* pinUvAuthToken permissions */
#define KC_PERM_MC 0x01
#define KC_PERM_GA 0x02
#define KC_PERM_CM 0x04
#define KC_PERM_BE 0x08
#define KC_PERM_LBW 0x10
#define KC_PERM_ACFG 0x20

/* CTAP2 status codes (CTAP 2.1, section 8.2.1) */
enum kc_ctap2_status {
    KC_CTAP2_OK = 0x00,
    KC_CTAP1_ERR_INVALID_COMMAND = 0x01,
    KC_CTAP1_ERR_INVALID_PARAMETER = 0x02,
    KC_CTAP1_ERR_INVALID_LENGTH = 0x03,
    KC_CTAP1_ERR_INVALID_SEQ = 0x04,
    KC_CTAP1_ERR_TIMEOUT = 0x05,
    KC_CTAP1_ERR_CHANNEL_BUSY = 0x06,
    KC_CTAP1_ERR_LOCK_REQUIRED = 0x0a,
    KC_CTAP1_ERR_INVALID_CHANNEL = 0x0b,
    KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE = 0x11,
    KC_CTAP2_ERR_INVALID_CBOR = 0x12,
    KC_CTAP2_ERR_MISSING_PARAMETER = 0x14,
    KC_CTAP2_ERR_LIMIT_EXCEEDED = 0x15,
    KC_CTAP2_ERR_FP_DATABASE_FULL = 0x17,
    KC_CTAP2_ERR_LARGE_BLOB_STORAGE_FULL = 0x18,
    KC_CTAP2_ERR_CREDENTIAL_EXCLUDED = 0x19,
    KC_CTAP2_ERR_PROCESSING = 0x21,
    KC_CTAP2_ERR_INVALID_CREDENTIAL = 0x22,
    KC_CTAP2_ERR_USER_ACTION_PENDING = 0x23,
    KC_CTAP2_ERR_OPERATION_PENDING = 0x24,
    KC_CTAP2_ERR_NO_OPERATIONS = 0x25,
    KC_CTAP2_ERR_UNSUPPORTED_ALGORITHM = 0x26,
    KC_CTAP2_ERR_OPERATION_DENIED = 0x27,
    KC_CTAP2_ERR_KEY_STORE_FULL = 0x28,
    KC_CTAP2_ERR_UNSUPPORTED_OPTION = 0x2b,
    KC_CTAP2_ERR_INVALID_OPTION = 0x2c,
    KC_CTAP2_ERR_KEEPALIVE_CANCEL = 0x2d,
    KC_CTAP2_ERR_NO_CREDENTIALS = 0x2e,
    KC_CTAP2_ERR_USER_ACTION_TIMEOUT = 0x2f,
    KC_CTAP2_ERR_NOT_ALLOWED = 0x30,
    KC_CTAP2_ERR_PIN_INVALID = 0x31,
    KC_CTAP2_ERR_PIN_BLOCKED = 0x32,
    KC_CTAP2_ERR_PIN_AUTH_INVALID = 0x33,
    KC_CTAP2_ERR_PIN_AUTH_BLOCKED = 0x34,
    KC_CTAP2_ERR_PIN_NOT_SET = 0x35,
    KC_CTAP2_ERR_PUAT_REQUIRED = 0x36,
    KC_CTAP2_ERR_PIN_POLICY_VIOLATION = 0x37,
    KC_CTAP2_ERR_REQUEST_TOO_LARGE = 0x39,
    KC_CTAP2_ERR_ACTION_TIMEOUT = 0x3a,
    KC_CTAP2_ERR_UP_REQUIRED = 0x3b,
    KC_CTAP2_ERR_UV_BLOCKED = 0x3c,
    KC_CTAP2_ERR_INTEGRITY_FAILURE = 0x3d,
    KC_CTAP2_ERR_INVALID_SUBCOMMAND = 0x3e,
    KC_CTAP2_ERR_UV_INVALID = 0x3f,
    KC_CTAP2_ERR_UNAUTHORIZED_PERMISSION = 0x40,
    KC_CTAP1_ERR_OTHER = 0x7f,
    KC_CTAP2_ERR_SPEC_LAST = 0xdf,
};

/* CTAP1/U2F instructions and status words */
enum kc_u2f_ins {
    KC_U2F_REGISTER = 0x01,
    KC_U2F_AUTHENTICATE = 0x02,
    KC_U2F_VERSION = 0x03,
};
#define KC_U2F_AUTH_ENFORCE 0x03
#define KC_U2F_AUTH_CHECK_ONLY 0x07
#define KC_U2F_AUTH_DONT_ENFORCE 0x08

enum kc_u2f_sw {
    KC_U2F_SW_NO_ERROR = 0x9000,
    KC_U2F_SW_CONDITIONS_NOT_SATISFIED = 0x6985,
    KC_U2F_SW_WRONG_DATA = 0x6a80,
    KC_U2F_SW_WRONG_LENGTH = 0x6700,
    KC_U2F_SW_CLA_NOT_SUPPORTED = 0x6e00,
    KC_U2F_SW_INS_NOT_SUPPORTED = 0x6d00,
};

/* COSE algorithm identifiers */
#define KC_COSE_ES256 (-7)
#define KC_COSE_EDDSA (-8)
#define KC_COSE_RS256 (-257)

/* The library's own results. 0 is success; a positive value is a CTAP2
 * status byte returned by the card; a negative value is one of these. */
enum kc_err {
    KC_OK = 0,
    KC_ERR_INVALID_ARG = -1,      /* caller passed something unusable */
    KC_ERR_NOMEM = -2,            /* allocation failed */
    KC_ERR_NO_DEVICE = -3,        /* no such device / nothing at that URI */
    KC_ERR_PERMISSION = -4,       /* device exists, open denied */
    KC_ERR_IO = -5,               /* read/write failed; errno kept */
    KC_ERR_TIMEOUT = -6,          /* a deadline passed; the phase is kept */
    KC_ERR_UNPLUGGED = -7,        /* card re-enumerated or unplugged */
    KC_ERR_PROTOCOL = -8,         /* framing violated by the device */
    KC_ERR_HID = -9,              /* device answered CTAPHID_ERROR */
    KC_ERR_CBOR = -10,            /* response is not the CBOR it must be */
    KC_ERR_VERIFY = -11,          /* a signature or check did not verify */
    KC_ERR_UNSUPPORTED = -12,     /* card or library does not support it */
    KC_ERR_ABORTED = -13,         /* caller aborted; CANCEL was sent */
    KC_ERR_CRYPTO = -14,          /* OpenSSL failed */
    KC_ERR_NO_PIN_PROTOCOL = -15, /* PIN needed; no protocol both sides know */
    KC_ERR_U2F = -16,             /* CTAP1 status word other than 0x9000 */
    KC_ERR_TOO_LARGE = -17,       /* message larger than the framing allows */
    KC_ERR_REPLAY_DIVERGED = -18, /* replay: the host sent what the trace never recorded */
};

/* Names are never NULL; a value outside the tables is "UNKNOWN". */
const char *kc_hid_cmd_name(uint8_t cmd);
const char *kc_hid_err_name(uint8_t code);
const char *kc_keepalive_name(uint8_t status);
const char *kc_ctap2_cmd_name(uint8_t cmd);
const char *kc_ctap2_status_name(uint8_t status);
const char *kc_u2f_sw_name(uint16_t sw);
const char *kc_err_name(int err); /* KC_ERR_* names; positive values: CTAP2 status name */
const char *kc_strerror(int err); /* one human sentence for a KC_ERR_* */

#endif
