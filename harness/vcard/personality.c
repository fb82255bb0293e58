/* The table of card personalities (personality.h) and its look-ups. Every
 * entry is kcard's own data; the source note beside it names the public
 * facts it was written from. Only what vcard implements is advertised:
 * credMgmt and credentialMgmtPreview only where cred_mgmt says
 * (card_credman.c); largeBlobs and largeBlobKey only where max_large_blob
 * says, credBlob where max_cred_blob_len says, minPinLength (extension)
 * beside authnr_cfg (card_largeblob.c); bioEnroll is left out everywhere; authnrCfg and
 * setMinPINLength only where authnr_cfg says (authenticatorConfig, card_config.c). */
#include <stdio.h>
#include <string.h>

#include "ctaphid/status.h"
#include "harness/vcard/personality.h"

#define ES256 KC_COSE_ES256
#define EDDSA KC_COSE_EDDSA

static const struct vc_personality table[] = {
    {
        /* Source: kcard's vcard before personalities (CTAP 2.1 6.4 getInfo
         * of a 2.1 card with both PIN protocols and makeCredUvNotRqd). */
        .name = VC_PERSONALITY_DEFAULT,
        .family = "kcard's own CTAP 2.1 card (the default: FIDO_2_1, PIN protocols 2 and 1)",
        .source = "kcard vcard 0.1 (CTAP 2.1 6.4)",
        .versions = {"U2F_V2", "FIDO_2_0", "FIDO_2_1"},
        .extensions = {"credProtect", "hmac-secret"},
        .aaguid = "kcard-vcard-0001",
        .opt_client_pin = true,
        .opt_pin_uv_auth_token = VC_OPT_TRUE,
        .opt_make_cred_uv_not_rqd = VC_OPT_TRUE,
        .max_msg_size = 1200,
        .pin_protocols = {2, 1},
        .max_cred_in_list = 16,
        .cred_id_len_key = true,
        .transports_usb = true,
        .algorithms = {ES256, EDDSA},
        .min_pin_length = 4,
        .firmware_version = 0x00010000,
        .ctap2 = true,
        .ctap1 = true,
        .wink = true,
        .device_version = {1, 0, 0},
        .uv_policy = VC_UV_POLICY_UV_NOT_RQD,
    },
    {
        /* Source: libfido2 issue #185 (an ExcelSecu FIDO2 key's getInfo:
         * options rk, up, plat=false, clientPin; maxMsgSize 4096; pinProtocols
         * [1]); CTAP 2.0 5.1 step 6 (PIN set: makeCredential needs pinAuth,
         * else CTAP2_ERR_PIN_REQUIRED); Chromium make_credential_task.cc
         * falls back to U2F for that reason. */
        .name = "ctap2.0-pin",
        .family = "CTAP 2.0 key with a PIN (first-generation FIDO2: demands the PIN once set)",
        .source = "libfido2 #185 ExcelSecu getInfo; CTAP 2.0 5.1 step 6",
        .versions = {"U2F_V2", "FIDO_2_0"},
        .extensions = {"hmac-secret"},
        .aaguid = "kcard-c20pin-001",
        .opt_plat = true,
        .opt_client_pin = true,
        .max_msg_size = 4096,
        .pin_protocols = {1},
        .ctap2 = true,
        .ctap1 = true,
        .wink = true,
        .device_version = {2, 0, 1},
        .uv_policy = VC_UV_POLICY_CTAP20,
    },
    {
        /* Source: CTAP 2.0 6.4 (clientPin and pinProtocols are optional: a
         * card without them has no PIN at all); the runbook's card that
         * makes libfido2 say "No compatible PIN/UV protocols supported!". */
        .name = "ctap2.0-nopin",
        .family = "CTAP 2.0 key without PIN support (no clientPin, no pinProtocols)",
        .source = "CTAP 2.0 6.4; phase5 runbook",
        .versions = {"U2F_V2", "FIDO_2_0"},
        .aaguid = "kcard-c20nop-001",
        .opt_plat = true,
        .max_msg_size = 1200,
        .ctap2 = true,
        .ctap1 = true,
        .wink = true,
        .device_version = {2, 0, 0},
        .uv_policy = VC_UV_POLICY_CTAP20,
    },
    {
        /* Source: libfido2 PR #380 (fido2-token -I of a YubiKey 5 with
         * 2.1-PRE firmware: U2F_V2, FIDO_2_0, FIDO_2_1_PRE; credProtect,
         * hmac-secret; es256, eddsa; rk, up, noplat, clientPin; maxmsgsiz
         * 1200; maxcredcntlst 8; pin protocols 1) and libfido2 #686 (caps
         * wink, cbor, msg; device version 5.x); credentialMgmtPreview and its
         * command 0x41 as those cards offer them (CTAP 2.1 6.13). */
        .name = "ctap2.1-pre",
        .family = "CTAP 2.1-PRE key (YubiKey 5 fw 5.2 style: PIN protocol 1, no makeCredUvNotRqd)",
        .source = "libfido2 PR #380 and issue #686 getInfo dumps",
        .versions = {"U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE"},
        .extensions = {"credProtect", "hmac-secret"},
        .aaguid = "kcard-c21pre-001",
        .opt_plat = true,
        .opt_client_pin = true,
        .max_msg_size = 1200,
        .pin_protocols = {1},
        .max_cred_in_list = 8,
        .cred_id_len_key = true,
        .transports_usb = true,
        .algorithms = {ES256, EDDSA},
        .cred_mgmt = VC_CRED_MGMT_PREVIEW,
        .ctap2 = true,
        .ctap1 = true,
        .wink = true,
        .device_version = {5, 2, 0},
        .uv_policy = VC_UV_POLICY_UV_RQD,
    },
    {
        /* Source: OpenSK process_get_info (google/OpenSK 893faa5, built
         * with_ctap1: U2F_V2, FIDO_2_0, FIDO_2_1; pinUvAuthToken,
         * makeCredUvNotRqd; protocols [2, 1]; forcePINChange, minPINLength,
         * firmwareVersion published); maxMsgSize 2048, inside the 1024..7609
         * its customization allows. */
        .name = "ctap2.1-full",
        .family = "CTAP 2.1 key publishing the full 2.1 getInfo (OpenSK style, maxMsgSize 2048)",
        .source = "OpenSK process_get_info (google/OpenSK 893faa5)",
        .versions = {"U2F_V2", "FIDO_2_0", "FIDO_2_1"},
        .extensions = {"credBlob", "credProtect", "hmac-secret", "largeBlobKey", "minPinLength"},
        .aaguid = "kcard-c21ful-001",
        .opt_client_pin = true,
        .opt_pin_uv_auth_token = VC_OPT_TRUE,
        .opt_make_cred_uv_not_rqd = VC_OPT_TRUE,
        .max_msg_size = 2048,
        .pin_protocols = {2, 1},
        .max_cred_in_list = 8,
        .cred_id_len_key = true,
        .transports_usb = true,
        .algorithms = {ES256, EDDSA},
        .force_pin_change_key = true,
        .min_pin_length = 4,
        .firmware_version = 0x00020001,
        .cred_mgmt = VC_CRED_MGMT_2_1,
        .max_large_blob = 4096,  /* CTAP 2.1 6.10: at least 1024 */
        .max_cred_blob_len = 32, /* CTAP 2.1 12.2: at least 32 */
        .authnr_cfg = true,
        .ctap2 = true,
        .ctap1 = true,
        .wink = true,
        .device_version = {2, 1, 0},
        .uv_policy = VC_UV_POLICY_UV_NOT_RQD,
    },
    {
        /* Source: FIDO U2F HID protocol 1.2 and CTAP 2.1 11.2.9.1.3 (a
         * U2F-only device reports no CBOR capability; CTAPHID_CBOR is an
         * unknown command to it). */
        .name = "u2f-only",
        .family = "CTAP1/U2F-only key (FIDO U2F 1.2: no CBOR capability)",
        .source = "FIDO U2F HID 1.2; CTAP 2.1 11.2.9.1.3",
        .versions = {"U2F_V2"},
        .aaguid = "kcard-u2fonl-001",
        .max_msg_size = 1200,
        .ctap2 = false,
        .ctap1 = true,
        .wink = true,
        .device_version = {1, 2, 0},
        .uv_policy = VC_UV_POLICY_UV_NOT_RQD,
    },
    {
        /* Source: OpenSK without with_ctap1 (versions FIDO_2_0, FIDO_2_1;
         * INIT capabilities with NMSG; default max_msg_size 7609, the CTAPHID
         * maximum) and trussed usbd-ctaphid (capabilities computed from the
         * apps registered: no MSG app gives NMSG, WINK only when an app
         * registers it). */
        .name = "fido2-no-u2f-7609",
        .family = "FIDO2-only 2.1 key without U2F or wink, maxMsgSize 7609 (OpenSK/trussed style)",
        .source = "OpenSK customization max_msg_size 7609; trussed usbd-ctaphid",
        .versions = {"FIDO_2_0", "FIDO_2_1"},
        .extensions = {"credProtect", "hmac-secret"},
        .aaguid = "kcard-7609nm-001",
        .opt_client_pin = true,
        .opt_pin_uv_auth_token = VC_OPT_TRUE,
        .opt_make_cred_uv_not_rqd = VC_OPT_TRUE,
        .max_msg_size = 7609,
        .pin_protocols = {2, 1},
        .max_cred_in_list = 16,
        .cred_id_len_key = true,
        .transports_usb = true,
        .algorithms = {ES256, EDDSA},
        .force_pin_change_key = true,
        .min_pin_length = 4,
        .firmware_version = 0x00010002,
        .cred_mgmt = VC_CRED_MGMT_2_1,
        .authnr_cfg = true,
        .ctap2 = true,
        .ctap1 = false,
        .wink = false,
        .device_version = {1, 0, 0},
        .uv_policy = VC_UV_POLICY_UV_NOT_RQD,
    },
    {
        /* Source: CTAP 2.1 7.2 toggleAlwaysUv and 6.1.2 step 5 / 6.2.2
         * (alwaysUv: makeCredUvNotRqd no longer applies, every operation with
         * up needs UV; CTAP1 is disabled); OpenSK getInfo with alwaysUv on
         * (no U2F_V2, makeCredUvNotRqd false). */
        .name = "always-uv",
        .family = "CTAP 2.1 key with alwaysUv on (UV for every makeCredential and up getAssertion)",
        .source = "CTAP 2.1 6.1.2, 6.2.2, 7.2; OpenSK process_get_info",
        .versions = {"FIDO_2_0", "FIDO_2_1"},
        .extensions = {"credProtect", "hmac-secret"},
        .aaguid = "kcard-alwuv0-001",
        .opt_client_pin = true,
        .opt_always_uv = VC_OPT_TRUE,
        .opt_pin_uv_auth_token = VC_OPT_TRUE,
        .opt_make_cred_uv_not_rqd = VC_OPT_FALSE,
        .max_msg_size = 1200,
        .pin_protocols = {2, 1},
        .max_cred_in_list = 16,
        .cred_id_len_key = true,
        .transports_usb = true,
        .algorithms = {ES256, EDDSA},
        .force_pin_change_key = true,
        .min_pin_length = 4,
        .firmware_version = 0x00010000,
        .cred_mgmt = VC_CRED_MGMT_2_1,
        .authnr_cfg = true,
        .ctap2 = true,
        .ctap1 = false,
        .wink = true,
        .device_version = {1, 0, 0},
        .uv_policy = VC_UV_POLICY_ALWAYS_UV,
    },
    {
        /* Source: CTAP 2.1 6.1.2 (a card protected by built-in UV and
         * without makeCredUvNotRqd answers CTAP2_ERR_PUAT_REQUIRED to a
         * makeCredential with neither uv nor pinUvAuthParam); WebKit bug
         * 213934 (2.0/2.1-PRE keys publishing clientPin and uv true, the
         * fingerprint keys). userVerificationMgmtPreview is left out: vcard
         * has no enrollment. */
        .name = "needs-uv-mc",
        .family = "fingerprint-style 2.1-PRE key (uv true, no makeCredUvNotRqd): UV on every "
                  "makeCredential",
        .source = "CTAP 2.1 6.1.2; WebKit bug 213934",
        .versions = {"U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE"},
        .extensions = {"credProtect", "hmac-secret"},
        .aaguid = "kcard-uvmc00-001",
        .opt_plat = true,
        .opt_uv = VC_OPT_TRUE,
        .opt_client_pin = true,
        .max_msg_size = 1200,
        .pin_protocols = {1},
        .max_cred_in_list = 8,
        .cred_id_len_key = true,
        .transports_usb = true,
        .algorithms = {ES256},
        .ctap2 = true,
        .ctap1 = true,
        .wink = true,
        .device_version = {1, 2, 0},
        .uv_policy = VC_UV_POLICY_UV_RQD,
    },
    {
        /* Source: CTAP 2.1 6.5.2.1 and 6.5.5.5 (pinRetries 0: the PIN is
         * blocked, CTAP2_ERR_PIN_BLOCKED, only authenticatorReset recovers). */
        .name = "pin-blocked",
        .family = "CTAP 2.1 key whose PIN is blocked (retries 0; only reset recovers)",
        .source = "CTAP 2.1 6.5.2.1, 6.5.5.5",
        .versions = {"U2F_V2", "FIDO_2_0", "FIDO_2_1"},
        .extensions = {"credProtect", "hmac-secret"},
        .aaguid = "kcard-pinblk-001",
        .opt_client_pin = true,
        .opt_pin_uv_auth_token = VC_OPT_TRUE,
        .opt_make_cred_uv_not_rqd = VC_OPT_TRUE,
        .max_msg_size = 1200,
        .pin_protocols = {2, 1},
        .max_cred_in_list = 16,
        .cred_id_len_key = true,
        .transports_usb = true,
        .algorithms = {ES256, EDDSA},
        .force_pin_change_key = true,
        .min_pin_length = 4,
        .firmware_version = 0x00010000,
        .ctap2 = true,
        .ctap1 = true,
        .wink = true,
        .device_version = {1, 0, 0},
        .uv_policy = VC_UV_POLICY_UV_NOT_RQD,
        .pin_start = VC_PIN_START_BLOCKED,
    },
    {
        /* Source: CTAP 2.1 6.4 forcePINChange (0x0C) and 6.5.5.7 (a token is
         * refused with CTAP2_ERR_PIN_POLICY_VIOLATION until changePIN). */
        .name = "force-pin-change",
        .family = "CTAP 2.1 key that requires a PIN change (forcePINChange true)",
        .source = "CTAP 2.1 6.4, 6.5.5.6, 6.5.5.7",
        .versions = {"U2F_V2", "FIDO_2_0", "FIDO_2_1"},
        .extensions = {"credProtect", "hmac-secret"},
        .aaguid = "kcard-pinchg-001",
        .opt_client_pin = true,
        .opt_pin_uv_auth_token = VC_OPT_TRUE,
        .opt_make_cred_uv_not_rqd = VC_OPT_TRUE,
        .max_msg_size = 1200,
        .pin_protocols = {2, 1},
        .max_cred_in_list = 16,
        .cred_id_len_key = true,
        .transports_usb = true,
        .algorithms = {ES256, EDDSA},
        .force_pin_change_key = true,
        .min_pin_length = 4,
        .firmware_version = 0x00010000,
        .ctap2 = true,
        .ctap1 = true,
        .wink = true,
        .device_version = {1, 0, 0},
        .uv_policy = VC_UV_POLICY_UV_NOT_RQD,
        .pin_start = VC_PIN_START_FORCE_CHANGE,
    },
    {
        /* Source: no public report of a real family was found; modelled on
         * vcard's wrong-cid fault made permanent (CTAP 2.1 11.2.4: replies
         * carry the channel of the request; a host ignores other ones). */
        .name = "wrong-channel",
        .family = "2.1 card whose replies come on a channel it never allocated (firmware quirk)",
        .source = "kcard wrong-cid fault; CTAP 2.1 11.2.4",
        .versions = {"U2F_V2", "FIDO_2_0", "FIDO_2_1"},
        .extensions = {"credProtect", "hmac-secret"},
        .aaguid = "kcard-wrongc-001",
        .opt_client_pin = true,
        .opt_pin_uv_auth_token = VC_OPT_TRUE,
        .opt_make_cred_uv_not_rqd = VC_OPT_TRUE,
        .max_msg_size = 1200,
        .pin_protocols = {2, 1},
        .max_cred_in_list = 16,
        .cred_id_len_key = true,
        .transports_usb = true,
        .algorithms = {ES256, EDDSA},
        .min_pin_length = 4,
        .firmware_version = 0x00010000,
        .ctap2 = true,
        .ctap1 = true,
        .wink = true,
        .device_version = {1, 0, 0},
        .wrong_channel = true,
        .uv_policy = VC_UV_POLICY_UV_NOT_RQD,
    },
};

#define TABLE_LEN (sizeof(table) / sizeof(table[0]))

const struct vc_personality *vc_personality_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < TABLE_LEN; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

const struct vc_personality *vc_personality_default(void)
{
    return &table[0];
}

size_t vc_personality_count(void)
{
    return TABLE_LEN;
}

const struct vc_personality *vc_personality_at(size_t i)
{
    return i < TABLE_LEN ? &table[i] : NULL;
}

void vc_personality_unknown(const char *name, char *err, size_t errlen)
{
    size_t used;
    int n;

    if (err == NULL || errlen == 0)
        return;
    n = snprintf(err, errlen, "unknown personality '%.40s' (known:", name != NULL ? name : "");
    used = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; i < TABLE_LEN && used < errlen; i++) {
        n = snprintf(err + used, errlen - used, "%s %s", i ? "," : "", table[i].name);
        used += n > 0 ? (size_t)n : 0;
    }
    if (used < errlen)
        snprintf(err + used, errlen - used, ")");
}
