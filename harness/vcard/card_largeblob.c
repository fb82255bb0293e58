/* The virtual card's authenticatorLargeBlobs (CTAP 2.1 6.10): one serialized
 * large-blob array, read in fragments of at most maxFragmentLength
 * (maxMsgSize - 64) and written in fragments that are only committed when
 * the whole array has arrived and its trailing LEFT(SHA-256(array), 16)
 * matches. With a PIN set each written fragment carries a pinUvAuthParam
 * from a token holding the lbw permission. The committed array lives in the
 * state file ("large_blobs"). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctaphid/pin_proto.h"
#include "ctaphid/status.h"
#include "harness/vcard/card_int.h"

#define LB_HASH_LEN 16
#define LB_AUTH_PREFIX 32

/* The initial array: an empty CBOR array (0x80) and its truncated hash. */
static const uint8_t initial_array[1 + LB_HASH_LEN] = {0x80, 0x76, 0xbe, 0x8b, 0x52, 0x8d,
                                                       0x00, 0x75, 0xf7, 0xaa, 0xe9, 0x8d,
                                                       0x6f, 0xa5, 0x7a, 0x6d, 0x3c};

const uint8_t *vc_largeblob_array(const struct vc_card *c, size_t *len)
{
    if (c->lb_array == NULL) {
        *len = sizeof(initial_array);
        return initial_array;
    }
    *len = c->lb_len;
    return c->lb_array;
}

static void pending_drop(struct vc_card *c)
{
    if (c->lb_pending != NULL) {
        OPENSSL_cleanse(c->lb_pending, c->lb_expected);
        free(c->lb_pending);
    }
    c->lb_pending = NULL;
    c->lb_expected = 0;
    c->lb_next = 0;
}

void vc_largeblob_clear(struct vc_card *c)
{
    pending_drop(c);
    if (c->lb_array != NULL) {
        OPENSSL_cleanse(c->lb_array, c->lb_len);
        free(c->lb_array);
    }
    c->lb_array = NULL;
    c->lb_len = 0;
}

static size_t max_fragment(const struct vc_card *c)
{
    return c->pers->max_msg_size > 64 ? (size_t)c->pers->max_msg_size - 64 : 0;
}

/* An optional unsigned field: KC_CTAP2_OK with *present telling. */
static uint8_t opt_uint(const cbor_item_t *it, bool *present, uint64_t *out)
{
    *present = it != NULL;
    if (it == NULL)
        return KC_CTAP2_OK;
    if (!cbor_isa_uint(it))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    *out = cbor_get_int(it);
    return KC_CTAP2_OK;
}

static uint8_t lb_get(struct vc_card *c, uint64_t want, uint64_t offset, const cbor_item_t *req,
                      uint8_t *resp, size_t cap, size_t *resp_len)
{
    const uint8_t *arr;
    size_t len, n;
    cbor_item_t *m;
    uint8_t st;

    if (kc_cbor_map_get_int(req, 4) != NULL || kc_cbor_map_get_int(req, 5) != NULL ||
        kc_cbor_map_get_int(req, 6) != NULL)
        return KC_CTAP1_ERR_INVALID_PARAMETER;
    if (want > max_fragment(c))
        return KC_CTAP1_ERR_INVALID_LENGTH;
    arr = vc_largeblob_array(c, &len);
    if (offset > len)
        return KC_CTAP1_ERR_INVALID_PARAMETER;
    n = len - (size_t)offset;
    if (n > want)
        n = (size_t)want;
    if ((m = cbor_new_definite_map(1)) == NULL)
        return KC_CTAP1_ERR_OTHER;
    st = kc_cbor_map_add_int(m, 1, kc_cbor_new_bytes(arr + offset, n)) == KC_OK
             ? vc_reply_item(m, resp, cap, resp_len)
             : KC_CTAP1_ERR_OTHER;
    cbor_decref(&m);
    return st;
}

/* pinUvAuthParam over 32 x 0xff || 0x0c 0x00 || uint32LE(offset) ||
 * SHA-256(fragment), from a token with the lbw permission (6.10.2). */
static uint8_t lb_check_auth(struct vc_card *c, const cbor_item_t *req, uint64_t offset,
                             const uint8_t *frag, size_t frag_len)
{
    const cbor_item_t *param = kc_cbor_map_get_int(req, 5);
    const cbor_item_t *proto = kc_cbor_map_get_int(req, 6);
    uint8_t msg[LB_AUTH_PREFIX + 2 + 4 + 32];
    int p;
    uint8_t st;

    if (param == NULL)
        return KC_CTAP2_ERR_PUAT_REQUIRED;
    if (proto == NULL)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (!kc_cbor_is_bytes(param))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    if ((st = vc_pin_proto_check(c, proto, &p)) != KC_CTAP2_OK)
        return st;
    memset(msg, 0xff, LB_AUTH_PREFIX);
    msg[LB_AUTH_PREFIX] = 0x0c;
    msg[LB_AUTH_PREFIX + 1] = 0x00;
    for (int i = 0; i < 4; i++)
        msg[LB_AUTH_PREFIX + 2 + i] = (uint8_t)(offset >> (8 * i));
    if (vc_sha256(frag, frag_len, msg + LB_AUTH_PREFIX + 6) != 0)
        return KC_CTAP1_ERR_OTHER;
    if (!c->token_in_use ||
        kc_pinp_verify(p, c->token, sizeof(c->token), msg, sizeof(msg),
                       cbor_bytestring_handle(param), cbor_bytestring_length(param)) != 0)
        return KC_CTAP2_ERR_PIN_AUTH_INVALID;
    if ((c->token_perms & KC_PERM_LBW) == 0)
        return KC_CTAP2_ERR_PIN_AUTH_INVALID;
    return KC_CTAP2_OK;
}

static uint8_t lb_commit(struct vc_card *c)
{
    uint8_t h[32];
    size_t body = c->lb_expected - LB_HASH_LEN;

    if (vc_sha256(c->lb_pending, body, h) != 0)
        return KC_CTAP1_ERR_OTHER;
    if (CRYPTO_memcmp(h, c->lb_pending + body, LB_HASH_LEN) != 0) {
        pending_drop(c);
        return KC_CTAP2_ERR_INTEGRITY_FAILURE;
    }
    if (c->lb_array != NULL) {
        OPENSSL_cleanse(c->lb_array, c->lb_len);
        free(c->lb_array);
    }
    c->lb_array = c->lb_pending;
    c->lb_len = c->lb_expected;
    c->lb_pending = NULL;
    c->lb_expected = 0;
    c->lb_next = 0;
    return vc_persist(c) == 0 ? KC_CTAP2_OK : KC_CTAP1_ERR_OTHER;
}

static uint8_t lb_set(struct vc_card *c, const cbor_item_t *set, uint64_t offset,
                      const cbor_item_t *req)
{
    const uint8_t *frag;
    size_t frag_len;
    uint64_t length = 0;
    bool has_length;
    uint8_t st;

    if (!kc_cbor_is_bytes(set))
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    if ((st = opt_uint(kc_cbor_map_get_int(req, 4), &has_length, &length)) != KC_CTAP2_OK)
        return st;
    frag = cbor_bytestring_handle(set);
    frag_len = cbor_bytestring_length(set);
    if (frag_len > max_fragment(c))
        return KC_CTAP1_ERR_INVALID_LENGTH;
    if (offset == 0) {
        if (!has_length)
            return KC_CTAP1_ERR_INVALID_PARAMETER;
        if (length > (uint64_t)c->pers->max_large_blob)
            return KC_CTAP2_ERR_LARGE_BLOB_STORAGE_FULL;
        if (length < LB_HASH_LEN + 1)
            return KC_CTAP1_ERR_INVALID_PARAMETER;
    } else if (has_length) {
        return KC_CTAP1_ERR_INVALID_PARAMETER;
    }
    if (offset != (offset == 0 ? 0 : (uint64_t)c->lb_next) ||
        (offset != 0 && c->lb_pending == NULL))
        return KC_CTAP1_ERR_INVALID_SEQ;
    /* protected by a PIN or alwaysUv: every fragment is authorised */
    if (c->pin_set || c->pers->opt_always_uv == VC_OPT_TRUE) {
        if ((st = lb_check_auth(c, req, offset, frag, frag_len)) != KC_CTAP2_OK)
            return st;
    }
    if (offset == 0) {
        pending_drop(c);
        if ((c->lb_pending = malloc((size_t)length)) == NULL)
            return KC_CTAP1_ERR_OTHER;
        c->lb_expected = (size_t)length;
        c->lb_next = 0;
    }
    if (offset + frag_len > c->lb_expected)
        return KC_CTAP1_ERR_INVALID_PARAMETER;
    memcpy(c->lb_pending + offset, frag, frag_len);
    c->lb_next += frag_len;
    if (c->lb_next == c->lb_expected)
        return lb_commit(c);
    return KC_CTAP2_OK;
}

uint8_t vc_large_blobs(struct vc_card *c, const uint8_t *p, size_t len, uint8_t *resp, size_t cap,
                       size_t *resp_len)
{
    cbor_item_t *req = NULL, *get, *set;
    uint64_t want = 0, offset = 0;
    bool has_get, has_offset;
    uint8_t st;

    if (c->pers->max_large_blob <= 0)
        return KC_CTAP1_ERR_INVALID_COMMAND;
    if ((st = vc_parse_request(p, len, &req)) != KC_CTAP2_OK)
        return st;
    get = kc_cbor_map_get_int(req, 1);
    set = kc_cbor_map_get_int(req, 2);
    if ((st = opt_uint(get, &has_get, &want)) != KC_CTAP2_OK ||
        (st = opt_uint(kc_cbor_map_get_int(req, 3), &has_offset, &offset)) != KC_CTAP2_OK)
        goto out;
    if (!has_offset || (get == NULL) == (set == NULL)) {
        st = KC_CTAP1_ERR_INVALID_PARAMETER;
        goto out;
    }
    if (offset > UINT32_MAX) {
        st = KC_CTAP1_ERR_INVALID_PARAMETER;
        goto out;
    }
    st = get != NULL ? lb_get(c, want, offset, req, resp, cap, resp_len)
                     : lb_set(c, set, offset, req);
out:
    cbor_decref(&req);
    return st;
}

/* ---- the CTAP 2.1 extensions beside large blobs (12.2, 12.3, 12.4) ---- */

int vc_large_blob_key(const struct vc_card *c, const uint8_t id[VC_CRED_ID_LEN], uint8_t out[32])
{
    static const uint8_t label[] = "kcard vcard largeBlobKey v1";
    uint8_t k[32];
    int rc;

    /* derived, not stored: the key follows the credential and dies with the
     * master key at authenticatorReset */
    rc = vc_hmac_sha256(c->master_key, sizeof(c->master_key), label, sizeof(label) - 1, NULL, 0,
                        k) == 0 &&
                 vc_hmac_sha256(k, sizeof(k), id, VC_CRED_ID_LEN, NULL, 0, out) == 0
             ? 0
             : -1;
    OPENSSL_cleanse(k, sizeof(k));
    return rc;
}

static bool offers_lbk(const struct vc_card *c)
{
    return c->pers->max_large_blob > 0;
}

static bool offers_cred_blob(const struct vc_card *c)
{
    return c->pers->max_cred_blob_len > 0;
}

uint8_t vc_ext_mc_parse(struct vc_card *c, const cbor_item_t *ext, bool rk, const char *rp_id,
                        struct vc_ext_mc *out)
{
    const cbor_item_t *v;

    memset(out, 0, sizeof(*out));
    out->cred_blob = -1;
    out->min_pin = -1;
    if (ext == NULL)
        return KC_CTAP2_OK;
    if (offers_cred_blob(c) && (v = kc_cbor_map_get_str(ext, "credBlob")) != NULL) {
        size_t n;

        if (!kc_cbor_is_bytes(v))
            return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
        n = cbor_bytestring_length(v);
        /* kept with a resident credential only: vcard's ids have no room */
        out->cred_blob = 0;
        if (rk && n <= (size_t)c->pers->max_cred_blob_len && n <= sizeof(out->blob)) {
            memcpy(out->blob, cbor_bytestring_handle(v), n);
            out->blob_len = n;
            out->cred_blob = 1;
        }
    }
    if (offers_lbk(c) && (v = kc_cbor_map_get_str(ext, "largeBlobKey")) != NULL) {
        if (!kc_cbor_is_bool(v))
            return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
        /* 12.3: only true is valid, and only for a discoverable credential */
        if (!cbor_get_bool(v) || !rk)
            return KC_CTAP2_ERR_INVALID_OPTION;
        out->large_blob_key = true;
    }
    if (c->pers->authnr_cfg && (v = kc_cbor_map_get_str(ext, "minPinLength")) != NULL) {
        if (!kc_cbor_is_bool(v))
            return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
        /* 12.4: the length only for rp ids setMinPINLength allowed */
        if (cbor_get_bool(v) && vc_min_pin_rp_allowed(c, rp_id))
            out->min_pin = (int64_t)vc_min_pin_len(c);
    }
    return KC_CTAP2_OK;
}

uint8_t vc_ext_ga_parse(const struct vc_card *c, const cbor_item_t *ext, struct vc_ext_ga *out)
{
    const cbor_item_t *v;

    memset(out, 0, sizeof(*out));
    if (ext == NULL)
        return KC_CTAP2_OK;
    if (offers_cred_blob(c) && (v = kc_cbor_map_get_str(ext, "getCredBlob")) != NULL) {
        if (!kc_cbor_is_bool(v))
            return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
        out->cred_blob = cbor_get_bool(v);
    }
    if (offers_lbk(c) && (v = kc_cbor_map_get_str(ext, "largeBlobKey")) != NULL) {
        if (!kc_cbor_is_bool(v))
            return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
        if (!cbor_get_bool(v))
            return KC_CTAP2_ERR_INVALID_OPTION;
        out->large_blob_key = true;
    }
    return KC_CTAP2_OK;
}
