/* CBOR helpers of the virtual card: building responses without leaking on
 * allocation failure, and reading request fields with their types checked. */
#include <stdlib.h>
#include <string.h>

#include "ctaphid/status.h"
#include "ctaphid/cbor_util.h"
#include "harness/vcard/card_int.h"

bool vc_map_put(cbor_item_t *map, cbor_item_t *k, cbor_item_t *v)
{
    bool ok = k != NULL && v != NULL && cbor_map_add(map, (struct cbor_pair){.key = k, .value = v});

    if (k != NULL)
        cbor_decref(&k);
    if (v != NULL)
        cbor_decref(&v);
    return ok;
}

bool vc_array_push(cbor_item_t *arr, cbor_item_t *v)
{
    bool ok = v != NULL && cbor_array_push(arr, v);

    if (v != NULL)
        cbor_decref(&v);
    return ok;
}

cbor_item_t *vc_cbor_int(int64_t v)
{
    return kc_cbor_new_int(v);
}

cbor_item_t *vc_cbor_bytes(const uint8_t *p, size_t len)
{
    static const uint8_t empty;

    return cbor_build_bytestring(len ? p : &empty, len);
}

cbor_item_t *vc_cbor_text(const char *s)
{
    return cbor_build_string(s);
}

int vc_cbor_to_buf(const cbor_item_t *item, uint8_t **buf, size_t *len)
{
    size_t cap = 0;

    *buf = NULL;
    *len = cbor_serialize_alloc(item, buf, &cap);
    if (*len == 0 || *buf == NULL) {
        free(*buf);
        *buf = NULL;
        return -1;
    }
    return 0;
}

struct sane_ctx {
    size_t left; /* bytes after the current head */
    bool bad;
};

static void sane_array(void *ctx, size_t n)
{
    struct sane_ctx *s = ctx;

    if (n > s->left) /* every element takes at least one byte */
        s->bad = true;
}

static void sane_map(void *ctx, size_t n)
{
    struct sane_ctx *s = ctx;

    if (n > s->left / 2)
        s->bad = true;
}

/* libcbor allocates a definite array or map for its declared size before
 * reading it; a few bytes can claim 2^60 entries. Walk the heads first and
 * refuse sizes the input cannot hold. */
static bool cbor_sizes_sane(const uint8_t *p, size_t len)
{
    struct cbor_callbacks cb = cbor_empty_callbacks;
    struct sane_ctx s = {0, false};
    struct cbor_decoder_result r;
    size_t off = 0;

    cb.array_start = sane_array;
    cb.map_start = sane_map;
    while (off < len && !s.bad) {
        s.left = len - off; /* an upper bound is all the check needs */
        r = cbor_stream_decode(p + off, len - off, &cb, &s);
        if (r.status != CBOR_DECODER_FINISHED || r.read == 0)
            return false;
        off += r.read;
    }
    return !s.bad;
}

cbor_item_t *vc_cbor_load(const uint8_t *p, size_t len)
{
    struct cbor_load_result res;
    cbor_item_t *item;

    if (len == 0 || len > VC_CBOR_MAX || !cbor_sizes_sane(p, len))
        return NULL;
    item = cbor_load(p, len, &res);
    if (item == NULL || res.error.code != CBOR_ERR_NONE || res.read != len) {
        if (item != NULL)
            cbor_decref(&item); /* trailing bytes after the item count as corrupt */
        return NULL;
    }
    return item;
}

uint8_t vc_parse_request(const uint8_t *p, size_t len, cbor_item_t **out)
{
    cbor_item_t *item;

    *out = NULL;
    if (len == 0)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (len > KC_HID_MAX_MSG)
        return KC_CTAP1_ERR_INVALID_LENGTH;
    if ((item = vc_cbor_load(p, len)) == NULL)
        return KC_CTAP2_ERR_INVALID_CBOR;
    if (!cbor_isa_map(item)) {
        cbor_decref(&item);
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    }
    *out = item;
    return KC_CTAP2_OK;
}

uint8_t vc_check_uint_keys(const cbor_item_t *map)
{
    struct cbor_pair *pairs = cbor_map_handle(map);
    size_t n = cbor_map_size(map);

    for (size_t i = 0; i < n; i++)
        if (!cbor_isa_uint(pairs[i].key))
            return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    return KC_CTAP2_OK;
}

cbor_item_t *vc_map_get_uint(const cbor_item_t *map, uint64_t key)
{
    struct cbor_pair *pairs;
    size_t n;

    if (map == NULL || !cbor_isa_map(map))
        return NULL;
    pairs = cbor_map_handle(map);
    n = cbor_map_size(map);
    for (size_t i = 0; i < n; i++)
        if (cbor_isa_uint(pairs[i].key) && cbor_get_int(pairs[i].key) == key)
            return pairs[i].value;
    return NULL;
}

bool vc_item_is_text(const cbor_item_t *it)
{
    return it != NULL && cbor_isa_string(it) && cbor_string_is_definite(it);
}

bool vc_item_is_bytes(const cbor_item_t *it)
{
    return it != NULL && cbor_isa_bytestring(it) && cbor_bytestring_is_definite(it);
}

bool vc_item_text_eq(const cbor_item_t *it, const char *s)
{
    size_t n = strlen(s);

    return vc_item_is_text(it) && cbor_string_length(it) == n &&
           (n == 0 || memcmp(cbor_string_handle(it), s, n) == 0);
}

cbor_item_t *vc_map_get_text(const cbor_item_t *map, const char *key)
{
    struct cbor_pair *pairs;
    size_t n;

    if (map == NULL || !cbor_isa_map(map))
        return NULL;
    pairs = cbor_map_handle(map);
    n = cbor_map_size(map);
    for (size_t i = 0; i < n; i++)
        if (vc_item_text_eq(pairs[i].key, key))
            return pairs[i].value;
    return NULL;
}

bool vc_item_int(const cbor_item_t *it, int64_t *v)
{
    uint64_t u;

    if (it == NULL)
        return false;
    if (cbor_isa_uint(it)) {
        u = cbor_get_int(it);
        *v = u > INT64_MAX ? INT64_MAX : (int64_t)u;
        return true;
    }
    if (cbor_isa_negint(it)) {
        u = cbor_get_int(it);
        *v = u > INT64_MAX ? INT64_MIN : -(int64_t)u - 1;
        return true;
    }
    return false;
}

void vc_item_text_copy(const cbor_item_t *it, char *dst, size_t cap)
{
    size_t n = cbor_string_length(it);

    if (cap == 0)
        return;
    if (n > cap - 1)
        n = cap - 1;
    if (n)
        memcpy(dst, cbor_string_handle(it), n);
    dst[n] = '\0';
}
