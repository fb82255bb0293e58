/* WebAuthn authenticator data (WebAuthn L2, 6.1): the byte string every
 * makeCredential and getAssertion response carries. Parsed in place: the
 * pointers in struct kc_authdata point into the caller's buffer. */
#ifndef KCARD_CTAPHID_AUTHDATA_H
#define KCARD_CTAPHID_AUTHDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* flags byte */
#define KC_AD_UP 0x01 /* user present */
#define KC_AD_UV 0x04 /* user verified */
#define KC_AD_BE 0x08 /* backup eligible */
#define KC_AD_BS 0x10 /* backed up */
#define KC_AD_AT 0x40 /* attested credential data present */
#define KC_AD_ED 0x80 /* extensions present */

#define KC_AD_RPID_HASH_LEN 32
#define KC_AD_MIN_LEN 37 /* rpIdHash(32) flags(1) signCount(4) */
#define KC_AAGUID_LEN 16
#define KC_CRED_ID_MAX 1023

struct kc_authdata {
    uint8_t rp_id_hash[KC_AD_RPID_HASH_LEN];
    uint8_t flags;
    uint32_t sign_count;
    /* attested credential data, when flags & KC_AD_AT */
    bool has_attested;
    uint8_t aaguid[KC_AAGUID_LEN];
    const uint8_t *cred_id;  /* points into the parsed buffer */
    size_t cred_id_len;      /* 1..KC_CRED_ID_MAX */
    const uint8_t *cose_key; /* the credentialPublicKey COSE_Key map, raw CBOR */
    size_t cose_key_len;
    /* extensions map, raw CBOR, when flags & KC_AD_ED */
    const uint8_t *extensions;
    size_t extensions_len;
};

/* Parse authData. The AT and ED flags must match what is present, every
 * length is checked before it is trusted, the COSE key and the extensions
 * must each be one well-formed CBOR map, and no bytes may trail.
 * Returns KC_OK, KC_ERR_INVALID_ARG or KC_ERR_CBOR. */
int kc_authdata_parse(const uint8_t *buf, size_t len, struct kc_authdata *out);

#endif
