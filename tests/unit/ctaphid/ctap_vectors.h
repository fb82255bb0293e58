/* Shared by the COSE, verify and U2F unit tests: load
 * fixtures/ctap/vectors.json (tests run from the repo root) and decode its
 * hex fields. Header-only so each test stays one program. */
#ifndef KCARD_TESTS_CTAP_VECTORS_H
#define KCARD_TESTS_CTAP_VECTORS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util/hex.h"

#define CTAP_VECTORS_PATH "fixtures/ctap/vectors.json"

static inline json_t *ctap_vectors_load(void)
{
    json_error_t err;
    json_t *root = json_load_file(CTAP_VECTORS_PATH, 0, &err);

    if (root == NULL)
        fprintf(stderr, "cannot load %s: %s (line %d)\n", CTAP_VECTORS_PATH, err.text, err.line);
    return root;
}

/* malloc'd bytes of a hex string member (at least 1 byte allocated); NULL if
 * the member is missing or not hex. */
static inline uint8_t *vec_hex(const json_t *obj, const char *key, size_t *len)
{
    const char *s = json_string_value(json_object_get(obj, key));
    size_t n;
    uint8_t *out;

    *len = 0;
    if (s == NULL)
        return NULL;
    n = strlen(s);
    if ((out = malloc(n / 2 + 1)) == NULL)
        return NULL;
    if (kcu_hex_decode(s, n, out, n / 2 + 1, len, NULL, 0) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static inline const char *vec_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

static inline long long vec_int(const json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

#endif
