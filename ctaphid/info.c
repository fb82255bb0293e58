/* authenticatorGetInfo (0x04): decode into struct kc_info. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/ctap2.h"
#include "ctaphid/ctap2_int.h"

/* The elements of a definite array; KC_ERR_CBOR for anything else. */
static int array_items(const cbor_item_t *item, cbor_item_t ***v, size_t *len)
{
    if (!cbor_isa_array(item) || !cbor_array_is_definite(item))
        return KC_ERR_CBOR;
    *v = cbor_array_handle(item);
    *len = cbor_array_size(item);
    return KC_OK;
}

/* A list of strings; entries beyond the bounds are dropped and flagged. */
static int decode_str_list(const cbor_item_t *item, char (*out)[KC_INFO_NAME_MAX], size_t *n,
                           bool *truncated)
{
    cbor_item_t **v;
    size_t len;

    if (array_items(item, &v, &len) != KC_OK)
        return KC_ERR_CBOR;
    *n = 0;
    for (size_t i = 0; i < len; i++) {
        if (!kc_cbor_is_text(v[i]))
            return KC_ERR_CBOR;
        if (*n == KC_INFO_LIST_MAX || kc_cbor_text(v[i], out[*n], KC_INFO_NAME_MAX) != KC_OK) {
            *truncated = true;
            continue;
        }
        (*n)++;
    }
    return KC_OK;
}

static int decode_options(const cbor_item_t *item, struct kc_info *info)
{
    struct cbor_pair *p;
    size_t len;

    if (kc_cbor_map_check(item, true) != KC_OK)
        return KC_ERR_CBOR;
    p = cbor_map_handle(item);
    len = cbor_map_size(item);
    for (size_t i = 0; i < len; i++) {
        struct kc_info_option *o = &info->options[info->n_options];
        if (!kc_cbor_is_bool(p[i].value))
            return KC_ERR_CBOR;
        if (info->n_options == KC_INFO_LIST_MAX ||
            kc_cbor_text(p[i].key, o->name, sizeof(o->name)) != KC_OK) {
            info->truncated = true;
            continue;
        }
        o->value = cbor_get_bool(p[i].value);
        info->n_options++;
    }
    return KC_OK;
}

static int decode_uint_list(const cbor_item_t *item, uint64_t *out, size_t *n, bool *truncated)
{
    cbor_item_t **v;
    size_t len;

    if (array_items(item, &v, &len) != KC_OK)
        return KC_ERR_CBOR;
    *n = 0;
    for (size_t i = 0; i < len; i++) {
        uint64_t x;
        if (kc_cbor_uint(v[i], &x) != KC_OK)
            return KC_ERR_CBOR;
        if (*n == KC_INFO_LIST_MAX) {
            *truncated = true;
            continue;
        }
        out[(*n)++] = x;
    }
    return KC_OK;
}

/* algorithms: [{"type": "public-key", "alg": -7}, ...]; entries of unknown
 * shape are skipped as the spec asks, wrong types are errors */
static int decode_algorithms(const cbor_item_t *item, struct kc_info *info)
{
    cbor_item_t **v;
    size_t len;

    if (array_items(item, &v, &len) != KC_OK)
        return KC_ERR_CBOR;
    for (size_t i = 0; i < len; i++) {
        struct kc_info_alg *a = &info->algorithms[info->n_algorithms];
        const cbor_item_t *type, *alg;
        int64_t x;
        if (kc_cbor_map_check(v[i], true) != KC_OK)
            return KC_ERR_CBOR;
        type = kc_cbor_map_get_str(v[i], "type");
        alg = kc_cbor_map_get_str(v[i], "alg");
        if (type == NULL || alg == NULL)
            continue;
        if (!cbor_isa_string(type) || kc_cbor_int(alg, &x) != KC_OK)
            return KC_ERR_CBOR;
        if (info->n_algorithms == KC_INFO_LIST_MAX ||
            kc_cbor_text(type, a->type, sizeof(a->type)) != KC_OK) {
            info->truncated = true;
            continue;
        }
        a->alg = x;
        info->n_algorithms++;
    }
    return KC_OK;
}

static int decode_entry(int64_t key, const cbor_item_t *v, struct kc_info *info)
{
    switch (key) {
    case KC_INFO_VERSIONS:
        return decode_str_list(v, info->versions, &info->n_versions, &info->truncated);
    case KC_INFO_EXTENSIONS:
        return decode_str_list(v, info->extensions, &info->n_extensions, &info->truncated);
    case KC_INFO_AAGUID:
        return kc_cbor_bytes(v, KC_AAGUID_LEN, KC_AAGUID_LEN, info->aaguid, NULL);
    case KC_INFO_OPTIONS:
        return decode_options(v, info);
    case KC_INFO_MAX_MSG_SIZE:
        return kc_cbor_uint(v, &info->max_msg_size);
    case KC_INFO_PIN_PROTOCOLS:
        return decode_uint_list(v, info->pin_protocols, &info->n_pin_protocols, &info->truncated);
    case KC_INFO_MAX_CRED_COUNT_IN_LIST:
        return kc_cbor_uint(v, &info->max_cred_count_in_list);
    case KC_INFO_MAX_CRED_ID_LEN:
        return kc_cbor_uint(v, &info->max_cred_id_len);
    case KC_INFO_TRANSPORTS:
        return decode_str_list(v, info->transports, &info->n_transports, &info->truncated);
    case KC_INFO_ALGORITHMS:
        return decode_algorithms(v, info);
    case KC_INFO_MAX_LARGE_BLOB:
        return kc_cbor_uint(v, &info->max_serialized_large_blob_array);
    case KC_INFO_FORCE_PIN_CHANGE:
        return kc_cbor_bool(v, &info->force_pin_change);
    case KC_INFO_MIN_PIN_LENGTH:
        return kc_cbor_uint(v, &info->min_pin_length);
    case KC_INFO_FIRMWARE_VERSION:
        return kc_cbor_uint(v, &info->firmware_version);
    case KC_INFO_MAX_CRED_BLOB_LEN:
        return kc_cbor_uint(v, &info->max_cred_blob_len);
    case KC_INFO_MAX_RPIDS_MIN_PIN:
        return kc_cbor_uint(v, &info->max_rpids_for_set_min_pin_length);
    case KC_INFO_PREFERRED_UV_ATTEMPTS:
        return kc_cbor_uint(v, &info->preferred_platform_uv_attempts);
    case KC_INFO_UV_MODALITY:
        return kc_cbor_uint(v, &info->uv_modality);
    case KC_INFO_REMAINING_DISC_CREDS:
        return kc_cbor_uint(v, &info->remaining_discoverable_credentials);
    default:
        return 1; /* unknown: skipped */
    }
}

/* decode_entry, and the key noted in info->present when it was decoded */
static int decode_present(int64_t key, const cbor_item_t *v, void *ctx)
{
    struct kc_info *info = ctx;
    int r = decode_entry(key, v, info);

    if (r < 0)
        return r;
    if (r == 0 && key > 0 && key < 32)
        info->present |= UINT32_C(1) << key;
    return KC_OK;
}

int kc_info_decode(const uint8_t *cbor, size_t len, struct kc_info *info)
{
    int r;

    if (info == NULL || (cbor == NULL && len > 0))
        return KC_ERR_INVALID_ARG;
    memset(info, 0, sizeof(*info));
    if ((r = kc_cbor_int_map_each(cbor, len, decode_present, info)) != KC_OK)
        goto out;
    /* versions and aaguid are mandatory (CTAP 2.1, 6.4) */
    if (!kc_info_has(info, KC_INFO_VERSIONS) || !kc_info_has(info, KC_INFO_AAGUID)) {
        r = KC_ERR_CBOR;
        goto out;
    }
    r = KC_OK;
out:
    if (r != KC_OK)
        memset(info, 0, sizeof(*info));
    return r;
}

int kc_ctap2_get_info(struct kc_dev *d, struct kc_info *info)
{
    uint8_t *body = NULL;
    size_t body_len = 0;
    int r;

    if (d == NULL || info == NULL)
        return KC_ERR_INVALID_ARG;
    memset(info, 0, sizeof(*info));
    if ((r = kc_ctap2_call(d, KC_CTAP2_GET_INFO, NULL, 0, &body, &body_len)) != KC_OK)
        return r;
    r = body_len > 0 ? kc_info_decode(body, body_len, info) : KC_ERR_CBOR;
    free(body);
    return r;
}

bool kc_info_has(const struct kc_info *info, enum kc_info_key key)
{
    return info != NULL && (int)key > 0 && (int)key < 32 &&
           (info->present & (UINT32_C(1) << (int)key)) != 0;
}

int kc_info_option(const struct kc_info *info, const char *name)
{
    if (info == NULL || name == NULL)
        return -1;
    for (size_t i = 0; i < info->n_options; i++)
        if (strcmp(info->options[i].name, name) == 0)
            return info->options[i].value ? 1 : 0;
    return -1;
}

static bool in_list(const char (*list)[KC_INFO_NAME_MAX], size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

bool kc_info_has_version(const struct kc_info *info, const char *version)
{
    return info != NULL && version != NULL &&
           in_list((const char(*)[KC_INFO_NAME_MAX])info->versions, info->n_versions, version);
}

bool kc_info_has_extension(const struct kc_info *info, const char *ext)
{
    return info != NULL && ext != NULL &&
           in_list((const char(*)[KC_INFO_NAME_MAX])info->extensions, info->n_extensions, ext);
}

bool kc_info_supports_pin_protocol(const struct kc_info *info, int protocol)
{
    if (info == NULL || protocol <= 0)
        return false;
    for (size_t i = 0; i < info->n_pin_protocols; i++)
        if (info->pin_protocols[i] == (uint64_t)protocol)
            return true;
    return false;
}

void kc_info_pin_protocols_str(const struct kc_info *info, char *buf, size_t len)
{
    size_t off = 0;

    if (buf == NULL || len == 0)
        return;
    buf[0] = '\0';
    if (info == NULL || info->n_pin_protocols == 0) {
        snprintf(buf, len, "none");
        return;
    }
    for (size_t i = 0; i < info->n_pin_protocols && off < len; i++) {
        int n = snprintf(buf + off, len - off, "%s%llu", i ? ", " : "",
                         (unsigned long long)info->pin_protocols[i]);
        if (n < 0)
            break;
        off += (size_t)n;
    }
}
