/* rawctap large-blob: authenticatorLargeBlobs (CTAP 2.1 6.10). get reads
 * the serialized array in fragments of maxFragmentLength and checks its
 * integrity hash; set writes a CBOR array (its hash appended) in fragments,
 * each authorised by a pinUvAuthToken with the lbw permission when a PIN is
 * given. With --key-hex or --cred-id the command works on one credential's
 * blob (AES-256-GCM under its largeBlobKey) inside the array. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctaphid/cbor_util.h"
#include "ctaphid/ctap2.h"
#include "ctaphid/largeblob.h"
#include "ctaphid/pin.h"
#include "triage/rawctap.h"
#include "util/b64url.h"
#include "util/hex.h"
#include "util/rand.h"

#define RC_LB_FILE_MAX (1u << 20)

struct rc_lb_opts {
    const char *file;
    struct rc_pin_src pin;
    const char *key_hex;
    const char *cred_id;
    const char *rp_id;
};

static int rc_lb_opt(struct rc_ctx *ctx, void *st, int c, const char *arg)
{
    struct rc_lb_opts *o = st;

    (void)ctx;
    if (rc_pin_src_opt(&o->pin, c, arg))
        return 0;
    switch (c) {
    case 'f':
        o->file = arg;
        return 0;
    case 'k':
        o->key_hex = arg;
        return 0;
    case 'c':
        o->cred_id = arg;
        return 0;
    case 'r':
        o->rp_id = arg;
        return 0;
    default:
        return rc_usage_error("large-blob", "unexpected option");
    }
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf;
    size_t n;

    if (fp == NULL)
        return -1;
    if ((buf = malloc(RC_LB_FILE_MAX + 1)) == NULL) {
        fclose(fp);
        return -1;
    }
    n = fread(buf, 1, RC_LB_FILE_MAX + 1, fp);
    if (ferror(fp) || n > RC_LB_FILE_MAX) {
        fclose(fp);
        free(buf);
        errno = n > RC_LB_FILE_MAX ? EFBIG : EIO;
        return -1;
    }
    fclose(fp);
    *out = buf;
    *len = n;
    return 0;
}

/* The credential's largeBlobKey: a getAssertion with {"largeBlobKey": true}
 * and the credential in allowList (the card asks for presence). */
static int key_from_card(struct rc_ctx *ctx, const struct kc_info *info, const char *pin,
                         const struct rc_lb_opts *o, uint8_t key[KC_LARGEBLOB_KEY_LEN])
{
    /* {"largeBlobKey": true} */
    static const uint8_t ext[] = {0xa1, 0x6c, 'l', 'a', 'r', 'g', 'e', 'B',
                                  'l',  'o',  'b', 'K', 'e', 'y', 0xf5};
    struct kc_assert_request req;
    struct kc_assertion a;
    struct kc_cred_id allow;
    uint8_t *id = NULL;
    size_t id_len = 0;
    int e;

    if (kcu_b64url_decode_alloc(o->cred_id, RC_DECODE_MAX, KCU_B64URL_LENIENT, &id, &id_len, NULL,
                                0) != 0 ||
        id_len == 0)
        return rc_usage_error("large-blob", "--cred-id is not base64url: '%s'", o->cred_id);
    kc_assert_request_init(&req);
    memset(&a, 0, sizeof(a));
    req.rp_id = o->rp_id;
    allow.ptr = id;
    allow.len = id_len;
    req.allow = &allow;
    req.n_allow = 1;
    req.extensions_cbor = ext;
    req.extensions_len = sizeof(ext);
    req.pin = pin;
    req.info = info;
    if (kcu_random(req.client_data_hash, sizeof(req.client_data_hash)) != 0) {
        free(id);
        rc_err(ctx, "large-blob: no randomness for the clientDataHash");
        return RC_EXIT_LOCAL;
    }
    ctx->presence_cmd = true;
    ctx->t_op_us = kc_now_us();
    e = kc_ctap2_get_assertion(ctx->dev, &req, &a);
    ctx->presence_cmd = false;
    free(id);
    if (e != KC_OK)
        return rc_fail(ctx, "large-blob: getAssertion for the largeBlobKey", e);
    if (a.large_blob_key == NULL || a.large_blob_key_len != KC_LARGEBLOB_KEY_LEN) {
        kc_assertion_free(&a);
        rc_err(ctx, "large-blob: the card returned no 32-byte largeBlobKey for this credential "
                    "(made without the largeBlobKey extension, or not resident?)");
        rc_json_error(ctx, "NO_LARGE_BLOB_KEY", RC_EXIT_CTAP);
        return RC_EXIT_CTAP;
    }
    memcpy(key, a.large_blob_key, KC_LARGEBLOB_KEY_LEN);
    kc_assertion_free(&a);
    return RC_EXIT_OK;
}

static int get_key(struct rc_ctx *ctx, const struct kc_info *info, const char *pin,
                   const struct rc_lb_opts *o, uint8_t key[KC_LARGEBLOB_KEY_LEN])
{
    uint8_t *k = NULL;
    size_t klen = 0;

    if (o->cred_id != NULL)
        return key_from_card(ctx, info, pin, o, key);
    if (kcu_hex_decode_alloc(o->key_hex, RC_DECODE_MAX, &k, &klen, NULL, 0) != 0 ||
        klen != KC_LARGEBLOB_KEY_LEN) {
        free(k);
        return rc_usage_error("large-blob", "--key-hex wants 32 bytes in hex");
    }
    memcpy(key, k, KC_LARGEBLOB_KEY_LEN);
    OPENSSL_cleanse(k, klen);
    free(k);
    return RC_EXIT_OK;
}

static size_t count_entries(const uint8_t *arr, size_t len)
{
    cbor_item_t *it = NULL;
    size_t n = 0;

    if (kc_cbor_load(arr, len, &it) == KC_OK) {
        n = cbor_isa_array(it) ? cbor_array_size(it) : 0;
        cbor_decref(&it);
    }
    return n;
}

static int lb_read(struct rc_ctx *ctx, const struct kc_info *info, uint8_t **arr, size_t *len)
{
    int e;

    ctx->t_op_us = kc_now_us();
    if ((e = kc_largeblob_get_array(ctx->dev, info, arr, len)) == KC_OK)
        return RC_EXIT_OK;
    if (e == KC_ERR_VERIFY) {
        rc_err(ctx, "large-blob get: the array's integrity hash does not match "
                    "(LEFT(SHA-256(array), 16) differs from its last 16 bytes): the stored "
                    "array is damaged; 'rawctap large-blob set' with a good array replaces it");
        rc_json_error(ctx, "LARGE_BLOB_HASH_MISMATCH", RC_EXIT_VERIFY);
        return RC_EXIT_VERIFY;
    }
    if (e == KC_ERR_CBOR) {
        rc_err(ctx, "large-blob get: the card's array is not a CBOR array with its hash");
        rc_json_error(ctx, "LARGE_BLOB_MALFORMED", RC_EXIT_VERIFY);
        return RC_EXIT_VERIFY;
    }
    return rc_fail(ctx, "large-blob get", e);
}

static int lb_write(struct rc_ctx *ctx, const struct kc_info *info, const char *pin,
                    const uint8_t *arr, size_t len)
{
    struct kc_pin_token tok;
    int e;

    memset(&tok, 0, sizeof(tok));
    ctx->t_op_us = kc_now_us();
    if (pin != NULL &&
        (e = kc_pin_token_for(ctx->dev, info, pin, KC_PERM_LBW, NULL, &tok)) != KC_OK)
        return rc_fail(ctx, "large-blob set: pinUvAuthToken (lbw)", e);
    e = kc_largeblob_set_array(ctx->dev, info, pin != NULL ? &tok : NULL, arr, len);
    kc_pin_token_clear(&tok);
    if (e == KC_ERR_TOO_LARGE) {
        rc_err(ctx,
               "large-blob set: %zu bytes with the hash exceed the card's "
               "maxSerializedLargeBlobArray (%llu)",
               len + KC_LARGEBLOB_HASH_LEN,
               (unsigned long long)info->max_serialized_large_blob_array);
        rc_json_error(ctx, "LARGE_BLOB_TOO_LARGE", RC_EXIT_CTAP);
        return RC_EXIT_CTAP;
    }
    if (e == KC_CTAP2_ERR_PUAT_REQUIRED && pin == NULL)
        rc_err(ctx, "large-blob set: the card has a PIN: give --pin (a token with the lbw "
                    "permission authorises each fragment)");
    if (e != KC_OK)
        return rc_fail(ctx, "large-blob set", e);
    rc_out_int(ctx, "written", (long long)(len + KC_LARGEBLOB_HASH_LEN));
    rc_out_int(ctx, "fragments",
               (long long)((len + KC_LARGEBLOB_HASH_LEN + kc_largeblob_max_fragment(info) - 1) /
                           kc_largeblob_max_fragment(info)));
    return RC_EXIT_OK;
}

static int run_get(struct rc_ctx *ctx, const struct kc_info *info, const char *pin,
                   const struct rc_lb_opts *o)
{
    uint8_t *arr = NULL, *blob = NULL, key[KC_LARGEBLOB_KEY_LEN];
    size_t len = 0, blen = 0;
    char why[160] = "";
    int r, e;

    if ((r = lb_read(ctx, info, &arr, &len)) != RC_EXIT_OK)
        return r;
    rc_out_int(ctx, "size", (long long)(len + KC_LARGEBLOB_HASH_LEN));
    rc_out_int(ctx, "entries", (long long)count_entries(arr, len));
    rc_out_bool(ctx, "hash_ok", true);
    if (o->key_hex == NULL && o->cred_id == NULL) {
        rc_out_hex(ctx, "array", arr, len);
        if (o->file != NULL && rc_write_atomic(o->file, (const char *)arr, len) != 0) {
            rc_err(ctx, "large-blob get: cannot write %s: %s", o->file, strerror(errno));
            free(arr);
            return RC_EXIT_LOCAL;
        }
        free(arr);
        return RC_EXIT_OK;
    }
    if ((r = get_key(ctx, info, pin, o, key)) != RC_EXIT_OK) {
        free(arr);
        return r;
    }
    e = kc_largeblob_open(arr, len, key, &blob, &blen, why, sizeof(why));
    OPENSSL_cleanse(key, sizeof(key));
    free(arr);
    if (e == 1) {
        rc_err(ctx, "large-blob get: no entry of the array opens with this credential's key");
        rc_json_error(ctx, "NO_BLOB_FOR_KEY", RC_EXIT_CTAP);
        return RC_EXIT_CTAP;
    }
    if (e != KC_OK) {
        rc_err(ctx,
               "large-blob get: the credential's entry opens with its key but cannot be read: %s",
               why[0] != '\0' ? why : kc_strerror(e));
        rc_json_error(ctx, kc_err_name(e), RC_EXIT_VERIFY);
        return RC_EXIT_VERIFY;
    }
    rc_out_int(ctx, "blob_size", (long long)blen);
    rc_out_hex(ctx, "blob", blob, blen);
    r = RC_EXIT_OK;
    if (o->file != NULL && rc_write_atomic(o->file, (const char *)blob, blen) != 0) {
        rc_err(ctx, "large-blob get: cannot write %s: %s", o->file, strerror(errno));
        r = RC_EXIT_LOCAL;
    }
    OPENSSL_cleanse(blob, blen);
    free(blob);
    return r;
}

static int run_set(struct rc_ctx *ctx, const struct kc_info *info, const char *pin,
                   const struct rc_lb_opts *o, const uint8_t *data, size_t dlen)
{
    uint8_t *arr = NULL, *entry = NULL, *fresh = NULL, key[KC_LARGEBLOB_KEY_LEN];
    size_t len = 0, elen = 0, flen = 0;
    int r, e;

    if (o->key_hex == NULL && o->cred_id == NULL) {
        cbor_item_t *it = NULL;
        bool is_array = kc_cbor_load(data, dlen, &it) == KC_OK && cbor_isa_array(it);

        if (it != NULL)
            cbor_decref(&it);
        if (!is_array) {
            rc_err(ctx,
                   "large-blob set: %s is not one CBOR array (the large-blob array "
                   "without its hash)",
                   o->file);
            rc_json_error(ctx, "NOT_A_CBOR_ARRAY", RC_EXIT_USAGE);
            return RC_EXIT_USAGE;
        }
        return lb_write(ctx, info, pin, data, dlen);
    }
    if ((r = get_key(ctx, info, pin, o, key)) != RC_EXIT_OK)
        return r;
    if ((r = lb_read(ctx, info, &arr, &len)) != RC_EXIT_OK)
        goto out;
    if ((e = kc_largeblob_seal(key, data, dlen, &entry, &elen)) != KC_OK ||
        (e = kc_largeblob_replace(arr, len, key, entry, elen, &fresh, &flen)) != KC_OK) {
        rc_err(ctx, "large-blob set: cannot build the new array: %s", kc_strerror(e));
        r = RC_EXIT_LOCAL;
        goto out;
    }
    rc_out_int(ctx, "blob_size", (long long)dlen);
    r = lb_write(ctx, info, pin, fresh, flen);
out:
    OPENSSL_cleanse(key, sizeof(key));
    free(arr);
    free(entry);
    free(fresh);
    return r;
}

int rc_cmd_large_blob(struct rc_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {
        {"file", required_argument, NULL, 'f'},    RC_PIN_LONGOPTS,
        {"key-hex", required_argument, NULL, 'k'}, {"cred-id", required_argument, NULL, 'c'},
        {"rp-id", required_argument, NULL, 'r'},   {NULL, 0, NULL, 0}};
    struct rc_lb_opts o;
    struct kc_info info;
    char pin[RC_PIN_MAX];
    uint8_t *data = NULL;
    size_t dlen = 0;
    int first = 0, r;
    bool is_get, is_set, have_pin = false;

    memset(&o, 0, sizeof(o));
    memset(pin, 0, sizeof(pin));
    if ((r = rc_parse_cmd(ctx, argc, argv, "", lo, rc_lb_opt, &o, &first)) != 0)
        return r;
    if (first >= argc)
        return rc_usage_error(argv[0], "which one: get or set?");
    if (first + 1 < argc)
        return rc_usage_error(argv[0], "unexpected argument '%s'", argv[first + 1]);
    is_get = strcmp(argv[first], "get") == 0;
    is_set = strcmp(argv[first], "set") == 0;
    if (!is_get && !is_set)
        return rc_usage_error(argv[0], "unknown subcommand '%s' (get, set)", argv[first]);
    if (o.key_hex != NULL && o.cred_id != NULL)
        return rc_usage_error(argv[0], "--key-hex and --cred-id exclude each other");
    if (o.cred_id != NULL && o.rp_id == NULL)
        return rc_usage_error(argv[0], "--cred-id needs --rp-id (the credential's relying party)");
    if (o.rp_id != NULL && o.cred_id == NULL)
        return rc_usage_error(argv[0], "--rp-id goes with --cred-id");
    if (is_set && o.file == NULL)
        return rc_usage_error(argv[0], "set needs --file F (a CBOR array, or with --key-hex / "
                                       "--cred-id the blob's bytes)");
    if (ctx->json)
        json_object_set_new(ctx->result, "subcommand", json_string(argv[first]));
    if (is_set && read_file(o.file, &data, &dlen) != 0) {
        rc_err(ctx, "large-blob set: cannot read %s: %s", o.file, strerror(errno));
        rc_json_error(ctx, "FILE_UNREADABLE", RC_EXIT_LOCAL);
        return RC_EXIT_LOCAL;
    }
    if ((r = rc_pin_src_read(&o.pin, pin, sizeof(pin), &have_pin)) != 0)
        goto out;
    if ((r = rc_open_ctap2_info(ctx, "large-blob", &info)) != 0)
        goto out;
    if (kc_info_option(&info, "largeBlobs") != 1) {
        rc_err(ctx, "large-blob: the card does not offer authenticatorLargeBlobs (getInfo has "
                    "no largeBlobs option)");
        rc_json_error(ctx, "LARGE_BLOBS_NOT_OFFERED", RC_EXIT_CTAP);
        r = RC_EXIT_CTAP;
        goto out;
    }
    rc_out_int(ctx, "max_serialized_large_blob_array",
               (long long)info.max_serialized_large_blob_array);
    rc_out_int(ctx, "max_fragment_length", (long long)kc_largeblob_max_fragment(&info));
    r = is_get ? run_get(ctx, &info, have_pin ? pin : NULL, &o)
               : run_set(ctx, &info, have_pin ? pin : NULL, &o, data, dlen);
    rc_out_real(ctx, "seconds", rc_secs_since(ctx->t_op_us));
out:
    OPENSSL_cleanse(pin, sizeof(pin));
    if (data != NULL) {
        OPENSSL_cleanse(data, dlen);
        free(data);
    }
    return r;
}
