/* CBOR helpers of the virtual card that libctaphid's (ctaphid/cbor_util.h)
 * do not cover: a CTAP2 request's top-level map with its CTAP status, and
 * the truncating copy authenticators use for names. */
#include <string.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/status.h"
#include "harness/vcard/card_int.h"

/* Every key of a top-level request map is an unsigned int (CTAP2, 6). */
static uint8_t check_uint_keys(const cbor_item_t *map)
{
    struct cbor_pair *pairs = cbor_map_handle(map);
    size_t n = cbor_map_size(map);

    for (size_t i = 0; i < n; i++)
        if (!cbor_isa_uint(pairs[i].key))
            return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    return KC_CTAP2_OK;
}

uint8_t vc_parse_request(const uint8_t *p, size_t len, cbor_item_t **out)
{
    cbor_item_t *item = NULL;
    uint8_t st;

    *out = NULL;
    if (len == 0)
        return KC_CTAP2_ERR_MISSING_PARAMETER;
    if (len > KC_HID_MAX_MSG)
        return KC_CTAP1_ERR_INVALID_LENGTH;
    /* kc_cbor_load checks declared sizes before libcbor allocates for them
     * and refuses trailing bytes, indefinite lengths and deep nesting */
    if (kc_cbor_load(p, len, &item) != KC_OK)
        return KC_CTAP2_ERR_INVALID_CBOR;
    if (!cbor_isa_map(item)) {
        cbor_decref(&item);
        return KC_CTAP2_ERR_CBOR_UNEXPECTED_TYPE;
    }
    if ((st = check_uint_keys(item)) != KC_CTAP2_OK) {
        cbor_decref(&item);
        return st;
    }
    *out = item;
    return KC_CTAP2_OK;
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
