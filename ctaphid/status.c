/* Names for every protocol constant and library error. */
#include "ctaphid/status.h"

#include <stddef.h>

struct code_name {
    int code;
    const char *name;
};

static const char *lookup(const struct code_name *table, size_t n, int code)
{
    for (size_t i = 0; i < n; i++)
        if (table[i].code == code)
            return table[i].name;
    return "UNKNOWN";
}

#define LOOKUP(table, code) lookup(table, sizeof(table) / sizeof(table[0]), (code))

static const struct code_name hid_cmds[] = {
    {KC_HID_PING, "PING"},     {KC_HID_MSG, "MSG"},
    {KC_HID_LOCK, "LOCK"},     {KC_HID_INIT, "INIT"},
    {KC_HID_WINK, "WINK"},     {KC_HID_CBOR, "CBOR"},
    {KC_HID_CANCEL, "CANCEL"}, {KC_HID_KEEPALIVE, "KEEPALIVE"},
    {KC_HID_ERROR, "ERROR"},
};

static const struct code_name hid_errs[] = {
    {KC_HID_ERR_INVALID_CMD, "INVALID_CMD"},
    {KC_HID_ERR_INVALID_PAR, "INVALID_PAR"},
    {KC_HID_ERR_INVALID_LEN, "INVALID_LEN"},
    {KC_HID_ERR_INVALID_SEQ, "INVALID_SEQ"},
    {KC_HID_ERR_MSG_TIMEOUT, "MSG_TIMEOUT"},
    {KC_HID_ERR_CHANNEL_BUSY, "CHANNEL_BUSY"},
    {KC_HID_ERR_LOCK_REQUIRED, "LOCK_REQUIRED"},
    {KC_HID_ERR_INVALID_CHANNEL, "INVALID_CHANNEL"},
    {KC_HID_ERR_OTHER, "OTHER"},
};

static const struct code_name keepalives[] = {
    {KC_KEEPALIVE_PROCESSING, "PROCESSING"},
    {KC_KEEPALIVE_UPNEEDED, "UPNEEDED"},
};

static const struct code_name ctap2_cmds[] = {
    {KC_CTAP2_MAKE_CREDENTIAL, "authenticatorMakeCredential"},
    {KC_CTAP2_GET_ASSERTION, "authenticatorGetAssertion"},
    {KC_CTAP2_GET_INFO, "authenticatorGetInfo"},
    {KC_CTAP2_CLIENT_PIN, "authenticatorClientPIN"},
    {KC_CTAP2_RESET, "authenticatorReset"},
    {KC_CTAP2_GET_NEXT_ASSERTION, "authenticatorGetNextAssertion"},
    {KC_CTAP2_SELECTION, "authenticatorSelection"},
    {KC_CTAP2_CRED_MGMT, "authenticatorCredentialManagement"},
    {KC_CTAP2_LARGE_BLOBS, "authenticatorLargeBlobs"},
    {KC_CTAP2_AUTHENTICATOR_CONFIG, "authenticatorConfig"},
    {KC_CTAP2_CRED_MGMT_PRE, "authenticatorCredentialManagement (2.1-PRE)"},
};

static const struct code_name ctap2_status[] = {
    {KC_CTAP2_OK, "CTAP2_OK"},
    {KC_CTAP1_ERR_INVALID_COMMAND, "CTAP1_ERR_INVALID_COMMAND"},
    {KC_CTAP1_ERR_INVALID_PARAMETER, "CTAP1_ERR_INVALID_PARAMETER"},
    {KC_CTAP1_ERR_INVALID_LENGTH, "CTAP1_ERR_INVALID_LENGTH"},
    {KC_CTAP1_ERR_INVALID_SEQ, "CTAP1_ERR_INVALID_SEQ"},
    {KC_CTAP1_ERR_TIMEOUT, "CTAP1_ERR_TIMEOUT"},
    {KC_CTAP1_ERR_CHANNEL_BUSY, "CTAP1_ERR_CHANNEL_BUSY"},
    {KC_CTAP1_ERR_LOCK_REQUIRED, "CTAP1_ERR_LOCK_REQUIRED"},
    {KC_CTAP1_ERR_INVALID_CHANNEL, "CTAP1_ERR_INVALID_CHANNEL"},
    {KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE, "CTAP2_ERR_CBOR_UNEXPECTED_TYPE"},
    {KC_CTAP2_ERR_INVALID_CBOR, "CTAP2_ERR_INVALID_CBOR"},
    {KC_CTAP2_ERR_MISSING_PARAMETER, "CTAP2_ERR_MISSING_PARAMETER"},
    {KC_CTAP2_ERR_LIMIT_EXCEEDED, "CTAP2_ERR_LIMIT_EXCEEDED"},
    {KC_CTAP2_ERR_FP_DATABASE_FULL, "CTAP2_ERR_FP_DATABASE_FULL"},
    {KC_CTAP2_ERR_LARGE_BLOB_STORAGE_FULL, "CTAP2_ERR_LARGE_BLOB_STORAGE_FULL"},
    {KC_CTAP2_ERR_CREDENTIAL_EXCLUDED, "CTAP2_ERR_CREDENTIAL_EXCLUDED"},
    {KC_CTAP2_ERR_PROCESSING, "CTAP2_ERR_PROCESSING"},
    {KC_CTAP2_ERR_INVALID_CREDENTIAL, "CTAP2_ERR_INVALID_CREDENTIAL"},
    {KC_CTAP2_ERR_USER_ACTION_PENDING, "CTAP2_ERR_USER_ACTION_PENDING"},
    {KC_CTAP2_ERR_OPERATION_PENDING, "CTAP2_ERR_OPERATION_PENDING"},
    {KC_CTAP2_ERR_NO_OPERATIONS, "CTAP2_ERR_NO_OPERATIONS"},
    {KC_CTAP2_ERR_UNSUPPORTED_ALGORITHM, "CTAP2_ERR_UNSUPPORTED_ALGORITHM"},
    {KC_CTAP2_ERR_OPERATION_DENIED, "CTAP2_ERR_OPERATION_DENIED"},
    {KC_CTAP2_ERR_KEY_STORE_FULL, "CTAP2_ERR_KEY_STORE_FULL"},
    {KC_CTAP2_ERR_UNSUPPORTED_OPTION, "CTAP2_ERR_UNSUPPORTED_OPTION"},
    {KC_CTAP2_ERR_INVALID_OPTION, "CTAP2_ERR_INVALID_OPTION"},
    {KC_CTAP2_ERR_KEEPALIVE_CANCEL, "CTAP2_ERR_KEEPALIVE_CANCEL"},
    {KC_CTAP2_ERR_NO_CREDENTIALS, "CTAP2_ERR_NO_CREDENTIALS"},
    {KC_CTAP2_ERR_USER_ACTION_TIMEOUT, "CTAP2_ERR_USER_ACTION_TIMEOUT"},
    {KC_CTAP2_ERR_NOT_ALLOWED, "CTAP2_ERR_NOT_ALLOWED"},
    {KC_CTAP2_ERR_PIN_INVALID, "CTAP2_ERR_PIN_INVALID"},
    {KC_CTAP2_ERR_PIN_BLOCKED, "CTAP2_ERR_PIN_BLOCKED"},
    {KC_CTAP2_ERR_PIN_AUTH_INVALID, "CTAP2_ERR_PIN_AUTH_INVALID"},
    {KC_CTAP2_ERR_PIN_AUTH_BLOCKED, "CTAP2_ERR_PIN_AUTH_BLOCKED"},
    {KC_CTAP2_ERR_PIN_NOT_SET, "CTAP2_ERR_PIN_NOT_SET"},
    {KC_CTAP2_ERR_PUAT_REQUIRED, "CTAP2_ERR_PUAT_REQUIRED"},
    {KC_CTAP2_ERR_PIN_POLICY_VIOLATION, "CTAP2_ERR_PIN_POLICY_VIOLATION"},
    {KC_CTAP2_ERR_REQUEST_TOO_LARGE, "CTAP2_ERR_REQUEST_TOO_LARGE"},
    {KC_CTAP2_ERR_ACTION_TIMEOUT, "CTAP2_ERR_ACTION_TIMEOUT"},
    {KC_CTAP2_ERR_UP_REQUIRED, "CTAP2_ERR_UP_REQUIRED"},
    {KC_CTAP2_ERR_UV_BLOCKED, "CTAP2_ERR_UV_BLOCKED"},
    {KC_CTAP2_ERR_INTEGRITY_FAILURE, "CTAP2_ERR_INTEGRITY_FAILURE"},
    {KC_CTAP2_ERR_INVALID_SUBCOMMAND, "CTAP2_ERR_INVALID_SUBCOMMAND"},
    {KC_CTAP2_ERR_UV_INVALID, "CTAP2_ERR_UV_INVALID"},
    {KC_CTAP2_ERR_UNAUTHORIZED_PERMISSION, "CTAP2_ERR_UNAUTHORIZED_PERMISSION"},
    {KC_CTAP1_ERR_OTHER, "CTAP1_ERR_OTHER"},
    {KC_CTAP2_ERR_SPEC_LAST, "CTAP2_ERR_SPEC_LAST"},
};

static const struct code_name u2f_sws[] = {
    {KC_U2F_SW_NO_ERROR, "SW_NO_ERROR"},
    {KC_U2F_SW_CONDITIONS_NOT_SATISFIED, "SW_CONDITIONS_NOT_SATISFIED"},
    {KC_U2F_SW_WRONG_DATA, "SW_WRONG_DATA"},
    {KC_U2F_SW_WRONG_LENGTH, "SW_WRONG_LENGTH"},
    {KC_U2F_SW_CLA_NOT_SUPPORTED, "SW_CLA_NOT_SUPPORTED"},
    {KC_U2F_SW_INS_NOT_SUPPORTED, "SW_INS_NOT_SUPPORTED"},
};

struct err_text {
    int code;
    const char *name;
    const char *text;
};

static const struct err_text errs[] = {
    {KC_OK, "OK", "success"},
    {KC_ERR_INVALID_ARG, "INVALID_ARG", "invalid argument"},
    {KC_ERR_NOMEM, "NOMEM", "out of memory"},
    {KC_ERR_NO_DEVICE, "NO_DEVICE", "no device at that address"},
    {KC_ERR_PERMISSION, "PERMISSION", "permission denied opening the device"},
    {KC_ERR_IO, "IO", "transport read or write failed"},
    {KC_ERR_TIMEOUT, "TIMEOUT", "timed out waiting for the device"},
    {KC_ERR_UNPLUGGED, "UNPLUGGED", "card re-enumerated or unplugged"},
    {KC_ERR_PROTOCOL, "PROTOCOL", "device broke the CTAPHID framing rules"},
    {KC_ERR_HID, "HID_ERROR", "device answered with CTAPHID_ERROR"},
    {KC_ERR_CBOR, "CBOR", "malformed CBOR in the device's response"},
    {KC_ERR_VERIFY, "VERIFY", "verification failed"},
    {KC_ERR_UNSUPPORTED, "UNSUPPORTED", "not supported by the card or the library"},
    {KC_ERR_ABORTED, "ABORTED", "aborted by the caller; CANCEL sent"},
    {KC_ERR_CRYPTO, "CRYPTO", "cryptographic operation failed"},
    {KC_ERR_NO_PIN_PROTOCOL, "NO_PIN_PROTOCOL", "no PIN/UV protocol supported by both sides"},
    {KC_ERR_U2F, "U2F", "CTAP1 request failed with a status word"},
    {KC_ERR_TOO_LARGE, "TOO_LARGE", "message exceeds the 7609-byte CTAPHID limit"},
    {KC_ERR_REPLAY_DIVERGED, "REPLAY_DIVERGED",
     "the request differs from the recorded one, or comes after the end of the trace"},
};

const char *kc_hid_cmd_name(uint8_t cmd)
{
    return LOOKUP(hid_cmds, cmd);
}

const char *kc_hid_err_name(uint8_t code)
{
    return LOOKUP(hid_errs, code);
}

const char *kc_keepalive_name(uint8_t status)
{
    return LOOKUP(keepalives, status);
}

const char *kc_ctap2_cmd_name(uint8_t cmd)
{
    return LOOKUP(ctap2_cmds, cmd);
}

const char *kc_ctap2_status_name(uint8_t status)
{
    return LOOKUP(ctap2_status, status);
}

const char *kc_u2f_sw_name(uint16_t sw)
{
    return LOOKUP(u2f_sws, sw);
}

static const struct err_text *find_err(int err)
{
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
        if (errs[i].code == err)
            return &errs[i];
    return NULL;
}

const char *kc_err_name(int err)
{
    if (err > 0 && err <= 0xff)
        return kc_ctap2_status_name((uint8_t)err);
    const struct err_text *e = find_err(err);
    return e ? e->name : "UNKNOWN";
}

const char *kc_strerror(int err)
{
    if (err > 0 && err <= 0xff)
        return "the card returned a CTAP2 error status";
    const struct err_text *e = find_err(err);
    return e ? e->text : "unknown error";
}
