/* authenticatorData parser (see ctaphid/authdata.h). */
#include "ctaphid/authdata.h"

#include <string.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/status.h"

/* Length of the one CBOR map at the front of buf, or a KC_ERR_*. */
static int map_prefix_len(const uint8_t *buf, size_t len, size_t *used)
{
    cbor_item_t *item = NULL;
    int r;

    if ((r = kc_cbor_load_prefix(buf, len, &item, used)) != KC_OK)
        return r == KC_ERR_NOMEM ? r : KC_ERR_CBOR;
    r = cbor_isa_map(item) ? KC_OK : KC_ERR_CBOR;
    cbor_decref(&item);
    return r;
}

/* The one CBOR map at buf + *off: where it starts, its length, and *off
 * moved past it; KC_ERR_CBOR when no map starts there. */
static int take_map(const uint8_t *buf, size_t len, size_t *off, const uint8_t **map,
                    size_t *map_len)
{
    size_t used = 0;
    int r;

    if (*off >= len)
        return KC_ERR_CBOR;
    if ((r = map_prefix_len(buf + *off, len - *off, &used)) != KC_OK)
        return r;
    *map = buf + *off;
    *map_len = used;
    *off += used;
    return KC_OK;
}

int kc_authdata_parse(const uint8_t *buf, size_t len, struct kc_authdata *out)
{
    size_t off = 0;
    int r;

    if (buf == NULL || out == NULL)
        return KC_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (len < KC_AD_MIN_LEN)
        return KC_ERR_CBOR;
    memcpy(out->rp_id_hash, buf, KC_AD_RPID_HASH_LEN);
    out->flags = buf[32];
    out->sign_count = (uint32_t)buf[33] << 24 | (uint32_t)buf[34] << 16 | (uint32_t)buf[35] << 8 |
                      (uint32_t)buf[36];
    off = KC_AD_MIN_LEN;

    if (out->flags & KC_AD_AT) {
        size_t id_len;
        if (len - off < KC_AAGUID_LEN + 2)
            return KC_ERR_CBOR;
        memcpy(out->aaguid, buf + off, KC_AAGUID_LEN);
        off += KC_AAGUID_LEN;
        id_len = (size_t)buf[off] << 8 | buf[off + 1];
        off += 2;
        if (id_len == 0 || id_len > KC_CRED_ID_MAX || len - off < id_len)
            return KC_ERR_CBOR;
        out->cred_id = buf + off;
        out->cred_id_len = id_len;
        off += id_len;
        if ((r = take_map(buf, len, &off, &out->cose_key, &out->cose_key_len)) != KC_OK)
            return r;
        out->has_attested = true;
    }

    if ((out->flags & KC_AD_ED) &&
        (r = take_map(buf, len, &off, &out->extensions, &out->extensions_len)) != KC_OK)
        return r;

    if (off != len) {
        /* trailing bytes: either a lie in the flags or garbage */
        memset(out, 0, sizeof(*out));
        return KC_ERR_CBOR;
    }
    return KC_OK;
}
