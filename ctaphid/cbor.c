/* Checked helpers over libcbor (see ctaphid/cbor_util.h). */
#include "ctaphid/cbor_util.h"

#include <stdlib.h>
#include <string.h>

#include "ctaphid/status.h"

#define KC_CBOR_SCAN_MAX ((uint64_t)1 << 32)
#define KC_CBOR_MAX_DEPTH 24 /* CTAP structures nest 4 or 5 deep */

/* Pre-scan state: what the item just decoded adds to the items still owed. */
struct scan {
    uint64_t add;
    bool bad;
};

static void scan_collection(void *ctx, uint64_t n, uint64_t per)
{
    struct scan *s = ctx;
    /* capped: anything beyond the buffer fails the check below anyway */
    s->add = n > KC_CBOR_SCAN_MAX ? KC_CBOR_SCAN_MAX : n * per;
}

static void scan_array(void *ctx, uint64_t n)
{
    scan_collection(ctx, n, 1);
}

static void scan_map(void *ctx, uint64_t n)
{
    scan_collection(ctx, n, 2);
}

static void scan_tag(void *ctx, uint64_t tag)
{
    (void)tag;
    ((struct scan *)ctx)->add = 1;
}

static void scan_indefinite(void *ctx)
{
    ((struct scan *)ctx)->bad = true;
}

/* Walk one item with libcbor's streaming decoder without building it, and
 * refuse anything that owes more items than bytes remain. cbor_load would
 * otherwise allocate what a 5-byte header claims (an array of 2^32 items)
 * before noticing the data is missing, and it recurses once per nesting
 * level, so nesting is bounded too. Indefinite lengths are refused: CTAP2
 * canonical CBOR has none. */
static int scan_item(const uint8_t *buf, size_t len, size_t *used)
{
    struct cbor_callbacks cb = cbor_empty_callbacks;
    uint64_t owed[KC_CBOR_MAX_DEPTH + 1]; /* items still owed at each open level */
    int depth = 0;
    size_t off = 0;

    cb.array_start = scan_array;
    cb.map_start = scan_map;
    cb.tag = scan_tag;
    cb.indef_array_start = scan_indefinite;
    cb.indef_map_start = scan_indefinite;
    cb.byte_string_start = scan_indefinite;
    cb.string_start = scan_indefinite;
    cb.indef_break = scan_indefinite;
    owed[0] = 1;
    while (depth >= 0) {
        struct scan s = {0, false};
        struct cbor_decoder_result r;
        if (owed[depth] == 0) {
            depth--;
            continue;
        }
        if (off >= len)
            return KC_ERR_CBOR;
        r = cbor_stream_decode(buf + off, len - off, &cb, &s);
        if (r.status != CBOR_DECODER_FINISHED || r.read == 0 || r.read > len - off || s.bad)
            return KC_ERR_CBOR;
        off += r.read;
        owed[depth]--;
        if (s.add > 0) {
            /* every owed item needs at least a byte */
            if (depth == KC_CBOR_MAX_DEPTH || s.add > len - off)
                return KC_ERR_CBOR;
            owed[++depth] = s.add;
        }
    }
    *used = off;
    return KC_OK;
}

int kc_cbor_size_check(const uint8_t *buf, size_t len, size_t *item_len)
{
    size_t used = 0;

    if (item_len != NULL)
        *item_len = 0;
    if (buf == NULL || len == 0 || scan_item(buf, len, &used) != KC_OK)
        return KC_ERR_CBOR;
    if (item_len != NULL)
        *item_len = used;
    return KC_OK;
}

int kc_cbor_load_prefix(const uint8_t *buf, size_t len, cbor_item_t **out, size_t *consumed)
{
    struct cbor_load_result res;
    cbor_item_t *item;
    size_t scanned = 0;

    if (buf == NULL || len == 0 || out == NULL)
        return KC_ERR_CBOR;
    *out = NULL;
    if (scan_item(buf, len, &scanned) != KC_OK)
        return KC_ERR_CBOR;
    item = cbor_load(buf, scanned, &res);
    if (item == NULL)
        return res.error.code == CBOR_ERR_MEMERROR ? KC_ERR_NOMEM : KC_ERR_CBOR;
    if (res.error.code != CBOR_ERR_NONE || res.read != scanned) {
        cbor_decref(&item);
        return KC_ERR_CBOR;
    }
    *out = item;
    if (consumed != NULL)
        *consumed = res.read;
    return KC_OK;
}

int kc_cbor_load(const uint8_t *buf, size_t len, cbor_item_t **out)
{
    size_t used = 0;
    int r = kc_cbor_load_prefix(buf, len, out, &used);

    if (r != KC_OK)
        return r;
    if (used != len) {
        cbor_decref(out);
        return KC_ERR_CBOR;
    }
    return KC_OK;
}

int kc_cbor_int_map_each(const uint8_t *buf, size_t len, kc_cbor_int_entry_fn entry, void *ctx)
{
    cbor_item_t *map = NULL;
    struct cbor_pair *p;
    int r;

    if ((r = kc_cbor_load(buf, len, &map)) != KC_OK)
        return r;
    if (kc_cbor_map_check(map, false) != KC_OK) {
        r = KC_ERR_CBOR;
        goto out;
    }
    p = cbor_map_handle(map);
    for (size_t i = 0; i < cbor_map_size(map); i++) {
        int64_t key;
        if ((r = kc_cbor_int(p[i].key, &key)) != KC_OK ||
            (r = entry(key, p[i].value, ctx)) != KC_OK)
            goto out;
    }
    r = KC_OK;
out:
    cbor_decref(&map);
    return r;
}

int kc_cbor_serialize(const cbor_item_t *item, uint8_t **buf, size_t *len)
{
    unsigned char *p = NULL;
    size_t cap = 0, n;

    if (item == NULL || buf == NULL || len == NULL)
        return KC_ERR_INVALID_ARG;
    n = cbor_serialize_alloc(item, &p, &cap);
    if (n == 0 || p == NULL) {
        free(p);
        return KC_ERR_NOMEM;
    }
    *buf = p;
    *len = n;
    return KC_OK;
}

int kc_cbor_uint(const cbor_item_t *item, uint64_t *out)
{
    if (item == NULL || !cbor_isa_uint(item))
        return KC_ERR_CBOR;
    *out = cbor_get_int(item);
    return KC_OK;
}

int kc_cbor_int(const cbor_item_t *item, int64_t *out)
{
    uint64_t v;

    if (item == NULL || !cbor_is_int(item))
        return KC_ERR_CBOR;
    v = cbor_get_int(item);
    if (v > (uint64_t)INT64_MAX)
        return KC_ERR_CBOR;
    /* a negative int n encodes -1 - n */
    *out = cbor_isa_uint(item) ? (int64_t)v : -1 - (int64_t)v;
    return KC_OK;
}

/* libcbor 0.8's cbor_is_bool asserts (aborts) when given a float, because it
 * reads the item as a simple value without checking the width: check first. */
bool kc_cbor_is_bool(const cbor_item_t *item)
{
    return item != NULL && cbor_isa_float_ctrl(item) &&
           cbor_float_get_width(item) == CBOR_FLOAT_0 && cbor_is_bool(item);
}

int kc_cbor_bool(const cbor_item_t *item, bool *out)
{
    if (!kc_cbor_is_bool(item))
        return KC_ERR_CBOR;
    *out = cbor_get_bool(item);
    return KC_OK;
}

/* The length of a definite byte string of min..max bytes. */
static int bytes_len(const cbor_item_t *item, size_t min, size_t max, size_t *n)
{
    if (!kc_cbor_is_bytes(item))
        return KC_ERR_CBOR;
    *n = cbor_bytestring_length(item);
    if (*n < min || *n > max)
        return KC_ERR_CBOR;
    return KC_OK;
}

int kc_cbor_bytes(const cbor_item_t *item, size_t min, size_t max, uint8_t *out, size_t *len)
{
    size_t n;

    if (bytes_len(item, min, max, &n) != KC_OK)
        return KC_ERR_CBOR;
    if (n > 0)
        memcpy(out, cbor_bytestring_handle(item), n);
    if (len != NULL)
        *len = n;
    return KC_OK;
}

int kc_cbor_bytes_dup(const cbor_item_t *item, size_t min, size_t max, uint8_t **out, size_t *len)
{
    size_t n;
    uint8_t *p;

    if (bytes_len(item, min, max, &n) != KC_OK)
        return KC_ERR_CBOR;
    if ((p = malloc(n > 0 ? n : 1)) == NULL)
        return KC_ERR_NOMEM;
    if (n > 0)
        memcpy(p, cbor_bytestring_handle(item), n);
    *out = p;
    *len = n;
    return KC_OK;
}

int kc_cbor_text(const cbor_item_t *item, char *out, size_t cap)
{
    size_t n;

    if (!kc_cbor_is_text(item) || cap == 0)
        return KC_ERR_CBOR;
    n = cbor_string_length(item);
    if (n >= cap)
        return KC_ERR_CBOR;
    if (n > 0)
        memcpy(out, cbor_string_handle(item), n);
    out[n] = '\0';
    /* a text we hand out as a C string must not hide a NUL */
    if (strlen(out) != n)
        return KC_ERR_CBOR;
    return KC_OK;
}

int kc_cbor_text_dup(const cbor_item_t *item, size_t max, char **out)
{
    char *p;
    size_t n;
    int r;

    if (!kc_cbor_is_text(item))
        return KC_ERR_CBOR;
    n = cbor_string_length(item);
    if (n > max)
        return KC_ERR_CBOR;
    if ((p = malloc(n + 1)) == NULL)
        return KC_ERR_NOMEM;
    if ((r = kc_cbor_text(item, p, n + 1)) != KC_OK) {
        free(p);
        return r;
    }
    *out = p;
    return KC_OK;
}

bool kc_cbor_is_bytes(const cbor_item_t *item)
{
    return item != NULL && cbor_isa_bytestring(item) && cbor_bytestring_is_definite(item);
}

bool kc_cbor_is_text(const cbor_item_t *item)
{
    return item != NULL && cbor_isa_string(item) && cbor_string_is_definite(item);
}

bool kc_cbor_text_eq(const cbor_item_t *item, const char *s)
{
    size_t n = strlen(s);

    /* an empty string may have no buffer: memcmp must not see NULL */
    return kc_cbor_is_text(item) && cbor_string_length(item) == n &&
           (n == 0 || memcmp(cbor_string_handle(item), s, n) == 0);
}

/* The value whose key is the int *ik (when ik is not NULL) or the text sk. */
static cbor_item_t *map_get(const cbor_item_t *map, const int64_t *ik, const char *sk)
{
    struct cbor_pair *pairs;
    size_t n;
    int64_t v;

    if (map == NULL || !cbor_isa_map(map))
        return NULL;
    pairs = cbor_map_handle(map);
    n = cbor_map_size(map);
    for (size_t i = 0; i < n; i++)
        if (ik != NULL ? kc_cbor_int(pairs[i].key, &v) == KC_OK && v == *ik
                       : kc_cbor_text_eq(pairs[i].key, sk))
            return pairs[i].value;
    return NULL;
}

cbor_item_t *kc_cbor_map_get_int(const cbor_item_t *map, int64_t k)
{
    return map_get(map, &k, NULL);
}

cbor_item_t *kc_cbor_map_get_str(const cbor_item_t *map, const char *s)
{
    return map_get(map, NULL, s);
}

static bool key_equal(const cbor_item_t *a, const cbor_item_t *b)
{
    if (cbor_typeof(a) != cbor_typeof(b))
        return false;
    if (cbor_is_int(a))
        return cbor_get_int(a) == cbor_get_int(b);
    if (cbor_isa_string(a))
        return cbor_string_is_definite(a) && cbor_string_is_definite(b) &&
               cbor_string_length(a) == cbor_string_length(b) &&
               memcmp(cbor_string_handle(a), cbor_string_handle(b), cbor_string_length(a)) == 0;
    return false;
}

int kc_cbor_map_check(const cbor_item_t *map, bool text_keys)
{
    struct cbor_pair *pairs;
    size_t n;

    if (map == NULL || !cbor_isa_map(map) || !cbor_map_is_definite(map))
        return KC_ERR_CBOR;
    pairs = cbor_map_handle(map);
    n = cbor_map_size(map);
    for (size_t i = 0; i < n; i++) {
        const cbor_item_t *k = pairs[i].key;
        if (k == NULL || pairs[i].value == NULL)
            return KC_ERR_CBOR;
        if (text_keys ? !kc_cbor_is_text(k) : !cbor_is_int(k))
            return KC_ERR_CBOR;
        for (size_t j = 0; j < i; j++)
            if (key_equal(pairs[j].key, k))
                return KC_ERR_CBOR;
    }
    return KC_OK;
}

int kc_cbor_map_add(cbor_item_t *map, cbor_item_t *key, cbor_item_t *value)
{
    bool ok;

    if (map == NULL || key == NULL || value == NULL) {
        if (key != NULL)
            cbor_decref(&key);
        if (value != NULL)
            cbor_decref(&value);
        return KC_ERR_NOMEM;
    }
    ok = cbor_map_add(map, (struct cbor_pair){.key = key, .value = value});
    cbor_decref(&key);
    cbor_decref(&value);
    return ok ? KC_OK : KC_ERR_NOMEM;
}

int kc_cbor_array_push(cbor_item_t *array, cbor_item_t *value)
{
    bool ok;

    if (value == NULL)
        return KC_ERR_NOMEM;
    ok = array != NULL && cbor_array_push(array, value);
    cbor_decref(&value);
    return ok ? KC_OK : KC_ERR_NOMEM;
}

int kc_cbor_map_add_int(cbor_item_t *map, int64_t key, cbor_item_t *value)
{
    return kc_cbor_map_add(map, kc_cbor_new_int(key), value);
}

int kc_cbor_map_add_str(cbor_item_t *map, const char *key, cbor_item_t *value)
{
    return kc_cbor_map_add(map, kc_cbor_new_text(key), value);
}

/* An integer of the smallest width: CTAP requires canonical CBOR (RFC 8949
 * 4.2.1), and strict parsers (python-fido2, many cards) reject anything else. */
cbor_item_t *kc_cbor_new_int(int64_t v)
{
    uint64_t u = v >= 0 ? (uint64_t)v : (uint64_t)(-1 - v);
    cbor_item_t *item;

    if (u <= UINT8_MAX)
        item = cbor_build_uint8((uint8_t)u);
    else if (u <= UINT16_MAX)
        item = cbor_build_uint16((uint16_t)u);
    else if (u <= UINT32_MAX)
        item = cbor_build_uint32((uint32_t)u);
    else
        item = cbor_build_uint64(u);
    if (item != NULL && v < 0)
        cbor_mark_negint(item);
    return item;
}

cbor_item_t *kc_cbor_new_bytes(const uint8_t *p, size_t len)
{
    static const uint8_t empty[1] = {0};
    return cbor_build_bytestring(p != NULL ? p : empty, p != NULL ? len : 0);
}

cbor_item_t *kc_cbor_new_text(const char *s)
{
    return s != NULL ? cbor_build_string(s) : NULL;
}

cbor_item_t *kc_cbor_new_bool(bool v)
{
    return cbor_build_bool(v);
}

/* Canonical order (CTAP2, 8): keys compared by their encoded bytes, shorter
 * encodings first. */
struct sort_entry {
    struct cbor_pair pair;
    unsigned char *enc;
    size_t len;
};

static int cmp_entry(const void *a, const void *b)
{
    const struct sort_entry *x = a, *y = b;

    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->enc, y->enc, x->len);
}

int kc_cbor_map_canonical(cbor_item_t *map)
{
    struct cbor_pair *pairs;
    struct sort_entry *e;
    size_t n;
    int r = KC_ERR_NOMEM;

    if (map == NULL || !cbor_isa_map(map))
        return KC_ERR_INVALID_ARG;
    n = cbor_map_size(map);
    if (n < 2)
        return KC_OK;
    pairs = cbor_map_handle(map);
    if ((e = calloc(n, sizeof(*e))) == NULL)
        return KC_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t cap = 0;
        e[i].pair = pairs[i];
        e[i].len = cbor_serialize_alloc(pairs[i].key, &e[i].enc, &cap);
        if (e[i].len == 0)
            goto out;
    }
    qsort(e, n, sizeof(*e), cmp_entry);
    for (size_t i = 0; i < n; i++)
        pairs[i] = e[i].pair;
    r = KC_OK;
out:
    for (size_t i = 0; i < n; i++)
        free(e[i].enc);
    free(e);
    return r;
}
