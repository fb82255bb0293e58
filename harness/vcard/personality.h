/* Card personalities of the virtual card: what a family of real cards
 * publishes (getInfo fields, CTAPHID INIT capabilities and version bytes)
 * and how it behaves (when it demands the PIN, a PIN that starts blocked,
 * a PIN that must be changed, replies on a channel never allocated). Each
 * entry is kcard's own data written from public facts; its source note
 * says which. Static read-only tables: no locking needed. */
#ifndef KCARD_VCARD_PERSONALITY_H
#define KCARD_VCARD_PERSONALITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VC_PERSONALITY_DEFAULT "kcard-2.1"
#define VC_PERS_MAX_STRINGS 8 /* versions, extensions: NULL-terminated */
#define VC_PERS_MAX_ALGS 4    /* algorithms: 0-terminated */
#define VC_PERS_MAX_PROTOS 3  /* pinUvAuthProtocols: 0-terminated */

/* A boolean getInfo option: left out, or present with a value. */
enum vc_opt {
    VC_OPT_ABSENT = 0,
    VC_OPT_FALSE,
    VC_OPT_TRUE,
};

/* authenticatorCredentialManagement a personality offers. */
enum vc_cred_mgmt {
    VC_CRED_MGMT_NONE = 0,
    VC_CRED_MGMT_PREVIEW, /* 2.1-PRE: command 0x41, option credentialMgmtPreview */
    VC_CRED_MGMT_2_1,     /* CTAP 2.1: command 0x0A, option credMgmt */
};

/* What a makeCredential / getAssertion without pinUvAuthParam gets. */
enum vc_uv_policy {
    /* CTAP 2.1 with makeCredUvNotRqd: once protected, only a resident
     * makeCredential needs UV (CTAP2_ERR_PUAT_REQUIRED). */
    VC_UV_POLICY_UV_NOT_RQD = 0,
    /* CTAP 2.0 (5.1 step 6): PIN set -> every makeCredential needs pinAuth
     * (CTAP2_ERR_PIN_REQUIRED, 0x36); getAssertion with options.uv and no
     * pinAuth too. */
    VC_UV_POLICY_CTAP20,
    /* CTAP 2.1 / 2.1-PRE without makeCredUvNotRqd (6.1.2): protected (PIN
     * set or built-in UV) -> every makeCredential needs UV. */
    VC_UV_POLICY_UV_RQD,
    /* alwaysUv (6.1.2 step 5, 6.2.2): every makeCredential, and every
     * getAssertion with up, needs UV, PIN set or not. */
    VC_UV_POLICY_ALWAYS_UV,
};

/* PIN state a personality brings with it when it starts (or replugs). */
enum vc_pin_start {
    VC_PIN_START_ASIS = 0,     /* whatever the state file / --pin say */
    VC_PIN_START_BLOCKED,      /* PIN set, retries 0 */
    VC_PIN_START_FORCE_CHANGE, /* PIN set, forcePINChange true */
};

struct vc_personality {
    const char *name;
    const char *family; /* one line: the family it models */
    const char *source; /* where the facts come from */

    /* authenticatorGetInfo, in key order */
    const char *versions[VC_PERS_MAX_STRINGS]; /* U2F_V2 dropped when CTAP1 is off */
    const char *extensions[VC_PERS_MAX_STRINGS];
    char aaguid[17];     /* 16 bytes, used unless the configuration gives one */
    bool opt_plat;       /* "plat": false advertised */
    enum vc_opt opt_uv;  /* TRUE: built-in UV (--uv forces it) */
    bool opt_client_pin; /* "clientPin" present (its value says if a PIN is set) */
    enum vc_opt opt_always_uv;
    enum vc_opt opt_pin_uv_auth_token;
    enum vc_opt opt_make_cred_uv_not_rqd;
    int max_msg_size;                      /* also enforced: REQUEST_TOO_LARGE */
    int pin_protocols[VC_PERS_MAX_PROTOS]; /* empty: key 0x06 left out */
    int max_cred_in_list;                  /* 0: key 0x07 left out */
    bool cred_id_len_key;                  /* key 0x08: vcard's id length, 64 */
    bool transports_usb;                   /* key 0x09 ["usb"] */
    int algorithms[VC_PERS_MAX_ALGS];      /* COSE ids; empty: key 0x0A left out */
    bool force_pin_change_key;             /* key 0x0C published */
    int min_pin_length;                    /* 0: key 0x0D left out */
    uint32_t firmware_version;             /* 0: key 0x0E left out */
    /* authenticatorConfig (0x0D): options authnrCfg, setMinPINLength,
     * alwaysUv and ep, keys 0x0C/0x0D from the card's state, key 0x10 */
    bool authnr_cfg;
    enum vc_cred_mgmt cred_mgmt; /* credential management offered */
    /* authenticatorLargeBlobs: option largeBlobs and key 0x0B
     * maxSerializedLargeBlobArray; 0: not offered (INVALID_COMMAND) */
    int max_large_blob;
    /* credBlob extension: getInfo 0x0F maxCredBlobLength; 0: not offered */
    int max_cred_blob_len;

    /* CTAPHID */
    bool ctap2;                /* CBOR capability; CTAPHID_CBOR answered */
    bool ctap1;                /* CTAPHID_MSG answered (else NMSG) */
    bool wink;                 /* WINK capability */
    uint8_t device_version[3]; /* INIT major, minor, build */
    bool wrong_channel;        /* every reply on a channel never allocated */

    /* behaviour */
    enum vc_uv_policy uv_policy;
    enum vc_pin_start pin_start;
};

/* NULL when name is no personality. */
const struct vc_personality *vc_personality_find(const char *name);
const struct vc_personality *vc_personality_default(void);
size_t vc_personality_count(void);
/* The i-th in the list (NULL past the end). */
const struct vc_personality *vc_personality_at(size_t i);
/* "unknown personality 'X' (known: a, b, ...)" into err. */
void vc_personality_unknown(const char *name, char *err, size_t errlen);

#endif
