/* Small checked helpers over libcbor used by the CTAP2 encoders and
 * decoders. Every getter checks the CBOR type and the bounds it is given and
 * returns KC_OK or KC_ERR_CBOR; nothing here trusts a length it has not
 * checked. */
#ifndef KCARD_CTAPHID_CBOR_UTIL_H
#define KCARD_CTAPHID_CBOR_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

/* Parse exactly one CBOR item filling the whole buffer (no trailing bytes).
 * *out is a new reference; KC_ERR_CBOR when malformed. */
/* Walk one CBOR item at the front of buf without building it (libcbor's streaming
 * decoder) and check that
 * every declared length and element count fits in the bytes that remain
 * (nesting at most 24 deep, no
 * indefinite lengths: CTAP2 canonical CBOR has none). libcbor 0.8's cbor_load preallocates a
 * container of whatever size the header claims, so a few hostile bytes can
 * ask for gigabytes; call this before cbor_load on untrusted input.
 * KC_OK with *item_len (may be NULL) set, or KC_ERR_CBOR. */
int kc_cbor_size_check(const uint8_t *buf, size_t len, size_t *item_len);
int kc_cbor_load(const uint8_t *buf, size_t len, cbor_item_t **out);
/* Parse one item from the front of buf; *consumed gets its length. */
int kc_cbor_load_prefix(const uint8_t *buf, size_t len, cbor_item_t **out, size_t *consumed);
/* The shape every CTAP2 response body has: exactly one definite map with
 * unique integer keys filling buf. Calls entry(key, value, ctx) for each pair
 * in order and stops at the first result other than KC_OK, which it returns;
 * KC_ERR_CBOR (or kc_cbor_load's error) when buf is not such a map. The map
 * is released before returning: entry must copy what it keeps. */
typedef int (*kc_cbor_int_entry_fn)(int64_t key, const cbor_item_t *value, void *ctx);
int kc_cbor_int_map_each(const uint8_t *buf, size_t len, kc_cbor_int_entry_fn entry, void *ctx);
/* Serialize into a malloc'd buffer. */
int kc_cbor_serialize(const cbor_item_t *item, uint8_t **buf, size_t *len);

/* Integer value of a map key (unsigned or negative int that fits int64). */
int kc_cbor_int(const cbor_item_t *item, int64_t *out);
int kc_cbor_uint(const cbor_item_t *item, uint64_t *out);
/* true/false only; safe on floats (where libcbor's cbor_is_bool aborts) */
bool kc_cbor_is_bool(const cbor_item_t *item);
int kc_cbor_bool(const cbor_item_t *item, bool *out);
/* Definite byte string of min..max bytes; copied into out (cap >= max). */
int kc_cbor_bytes(const cbor_item_t *item, size_t min, size_t max, uint8_t *out, size_t *len);
/* Same, malloc'd (a zero-length string gives a 1-byte allocation). */
int kc_cbor_bytes_dup(const cbor_item_t *item, size_t min, size_t max, uint8_t **out, size_t *len);
/* Definite text string of at most cap - 1 bytes without NUL, NUL-terminated. */
int kc_cbor_text(const cbor_item_t *item, char *out, size_t cap);
int kc_cbor_text_dup(const cbor_item_t *item, size_t max, char **out);
/* Compare a text string item with a C string. */
bool kc_cbor_text_eq(const cbor_item_t *item, const char *s);
/* A definite byte string / text string (the only kinds canonical CBOR has);
 * false for NULL. */
bool kc_cbor_is_bytes(const cbor_item_t *item);
bool kc_cbor_is_text(const cbor_item_t *item);

/* Map lookup: the value for integer key k or text key s, NULL if absent.
 * Duplicate keys make kc_cbor_map_check fail. */
cbor_item_t *kc_cbor_map_get_int(const cbor_item_t *map, int64_t k);
cbor_item_t *kc_cbor_map_get_str(const cbor_item_t *map, const char *s);
/* A definite map whose keys are all ints (or all text when text_keys) and
 * unique. KC_OK or KC_ERR_CBOR. */
int kc_cbor_map_check(const cbor_item_t *map, bool text_keys);

/* Building: each adds one pair to a definite map (owns nothing passed in
 * but the value item, which it releases in every case). */
int kc_cbor_map_add(cbor_item_t *map, cbor_item_t *key, cbor_item_t *value);
int kc_cbor_map_add_int(cbor_item_t *map, int64_t key, cbor_item_t *value);
int kc_cbor_map_add_str(cbor_item_t *map, const char *key, cbor_item_t *value);
/* Append value to a definite array, releasing value in every case (NULL
 * value: allocation failed upstream). KC_OK or KC_ERR_NOMEM. */
int kc_cbor_array_push(cbor_item_t *array, cbor_item_t *value);
/* New items; NULL on allocation failure. */
cbor_item_t *kc_cbor_new_int(int64_t v);
cbor_item_t *kc_cbor_new_bytes(const uint8_t *p, size_t len);
cbor_item_t *kc_cbor_new_text(const char *s);
cbor_item_t *kc_cbor_new_bool(bool v);
/* Sort a map's pairs in CTAP2 canonical order (shorter encoded key first,
 * then bytewise), in place. KC_OK, or KC_ERR_NOMEM. */
int kc_cbor_map_canonical(cbor_item_t *map);

#endif
