/* The virtual card's flash: one CBOR map in a file (--state FILE), written
 * atomically after every change (temporary file in the same folder, fsync,
 * rename, fsync of the folder) with mode 0600, and loaded strictly: a file
 * that is unreadable or not exactly what we write is an error, never
 * silently replaced. The map travels inside {"state": bytes, "mac": bytes},
 * an HMAC-SHA256 under a key derived from the card's master key, so a
 * damaged byte anywhere (the master key included) is caught rather than
 * turning into a different card. Files of the earlier formats (a bare map,
 * or "sha256" in place of "mac") still load and gain the MAC on the next
 * write. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "ctaphid/status.h"
#include "harness/vcard/card_int.h"
#include "util/err.h"

#define STATE_VERSION 1
#define STATE_MAX (8u << 20)

static bool put_rk(cbor_item_t *arr, const struct vc_rk *rk)
{
    cbor_item_t *m = cbor_new_definite_map(9);
    bool ok;

    if (m == NULL)
        return false;
    /* credBlob: written when the credential has one; older files lack it */
    ok = rk->cred_blob_len == 0 ||
         kc_cbor_map_add_str(m, "cred_blob", kc_cbor_new_bytes(rk->cred_blob, rk->cred_blob_len)) ==
             KC_OK;
    ok = ok && kc_cbor_map_add_str(m, "id", kc_cbor_new_bytes(rk->id, VC_CRED_ID_LEN)) == KC_OK &&
         kc_cbor_map_add_str(m, "rp_id_hash", kc_cbor_new_bytes(rk->rp_id_hash, 32)) == KC_OK &&
         kc_cbor_map_add_str(m, "rp_id", kc_cbor_new_text(rk->rp_id)) == KC_OK &&
         kc_cbor_map_add_str(m, "user_id", kc_cbor_new_bytes(rk->user_id, rk->user_id_len)) ==
             KC_OK &&
         kc_cbor_map_add_str(m, "user_name", kc_cbor_new_text(rk->user_name)) == KC_OK &&
         kc_cbor_map_add_str(m, "display_name", kc_cbor_new_text(rk->display_name)) == KC_OK &&
         kc_cbor_map_add_str(m, "cred_protect", kc_cbor_new_int(rk->cred_protect)) == KC_OK &&
         kc_cbor_map_add_str(m, "seq", kc_cbor_new_int((int64_t)rk->seq)) == KC_OK;
    ok = ok && cbor_array_push(arr, m);
    cbor_decref(&m);
    return ok;
}

static bool put_counter(cbor_item_t *arr, const struct vc_counter *k)
{
    cbor_item_t *pair = cbor_new_definite_array(2);
    bool ok;

    if (pair == NULL)
        return false;
    ok = kc_cbor_array_push(pair, kc_cbor_new_bytes(k->key, sizeof(k->key))) == KC_OK &&
         kc_cbor_array_push(pair, kc_cbor_new_int(k->count)) == KC_OK && cbor_array_push(arr, pair);
    cbor_decref(&pair);
    return ok;
}

static cbor_item_t *state_item(const struct vc_card *c)
{
    cbor_item_t *m = cbor_new_definite_map(16);
    cbor_item_t *rks = cbor_new_definite_array(c->n_rk);
    cbor_item_t *ctrs = cbor_new_definite_array(c->n_ctr);
    unsigned char *der = NULL;
    int der_len = c->att_key != NULL ? i2d_PrivateKey(c->att_key, &der) : -1;
    bool ok = m != NULL && rks != NULL && ctrs != NULL && der_len > 0;

    for (size_t i = 0; ok && i < c->n_rk; i++)
        ok = put_rk(rks, &c->rks[i]);
    for (size_t i = 0; ok && i < c->n_ctr; i++)
        ok = put_counter(ctrs, &c->ctrs[i]);
    ok =
        ok && kc_cbor_map_add_str(m, "version", kc_cbor_new_int(STATE_VERSION)) == KC_OK &&
        kc_cbor_map_add_str(m, "master_key", kc_cbor_new_bytes(c->master_key, 32)) == KC_OK &&
        kc_cbor_map_add_str(m, "att_key", kc_cbor_new_bytes(der, (size_t)der_len)) == KC_OK &&
        kc_cbor_map_add_str(m, "att_cert", kc_cbor_new_bytes(c->att_cert, c->att_cert_len)) ==
            KC_OK &&
        kc_cbor_map_add_str(m, "pin_set", cbor_build_bool(c->pin_set)) == KC_OK &&
        kc_cbor_map_add_str(m, "pin_hash", kc_cbor_new_bytes(c->pin_hash, 16)) == KC_OK &&
        kc_cbor_map_add_str(m, "pin_retries", kc_cbor_new_int(c->pin_retries)) == KC_OK &&
        kc_cbor_map_add_str(m, "force_pin_change", cbor_build_bool(c->force_pin_change)) == KC_OK &&
        kc_cbor_map_add_str(m, "next_seq", kc_cbor_new_int((int64_t)c->next_seq)) == KC_OK &&
        kc_cbor_map_add_str(m, "rks", cbor_incref(rks)) == KC_OK &&
        kc_cbor_map_add_str(m, "counters", cbor_incref(ctrs)) == KC_OK;
    /* written once the array differs from the initial one */
    if (ok && c->lb_array != NULL)
        ok = kc_cbor_map_add_str(m, "large_blobs", kc_cbor_new_bytes(c->lb_array, c->lb_len)) ==
             KC_OK;
    /* authenticatorConfig's settings (card_config.c) */
    ok = ok && kc_cbor_map_add_str(m, "config", vc_config_state_item(c)) == KC_OK;
    if (der != NULL) {
        OPENSSL_cleanse(der, (size_t)der_len);
        OPENSSL_free(der);
    }
    if (rks != NULL)
        cbor_decref(&rks);
    if (ctrs != NULL)
        cbor_decref(&ctrs);
    if (!ok && m != NULL)
        cbor_decref(&m);
    return ok ? m : NULL;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    int fd, rc = -1;

    if (copy == NULL)
        return -1;
    if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    free(copy);
    return rc;
}

/* The key of the state file's MAC: HMAC-SHA256(master key, label), so
 * the MAC follows the card and proves the master key unchanged. */
static int state_mac(const uint8_t master_key[32], const uint8_t *inner, size_t inner_len,
                     uint8_t mac[32])
{
    static const uint8_t label[] = "kcard vcard state file MAC v1";
    uint8_t key[32];
    int rc = vc_hmac_sha256(master_key, 32, label, sizeof(label) - 1, NULL, 0, key) == 0 &&
                     vc_hmac_sha256(key, sizeof(key), inner, inner_len, NULL, 0, mac) == 0
                 ? 0
                 : -1;

    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

/* The state map's bytes wrapped with their MAC: {"mac", "state"}. */
static int seal(const struct vc_card *c, const uint8_t *inner, size_t inner_len, uint8_t **out,
                size_t *out_len)
{
    uint8_t mac[32];
    cbor_item_t *w = cbor_new_definite_map(2);
    int rc = -1;

    if (w != NULL && state_mac(c->master_key, inner, inner_len, mac) == 0 &&
        kc_cbor_map_add_str(w, "mac", kc_cbor_new_bytes(mac, sizeof(mac))) == KC_OK &&
        kc_cbor_map_add_str(w, "state", kc_cbor_new_bytes(inner, inner_len)) == KC_OK &&
        kc_cbor_serialize(w, out, out_len) == KC_OK)
        rc = 0;
    if (w != NULL) {
        cbor_item_t *copy = kc_cbor_map_get_str(w, "state");

        /* the bytes item holds a copy of the card's secrets */
        if (copy != NULL && kc_cbor_is_bytes(copy))
            OPENSSL_cleanse(cbor_bytestring_handle(copy), cbor_bytestring_length(copy));
        cbor_decref(&w);
    }
    return rc;
}

int vc_state_save(struct vc_card *c)
{
    cbor_item_t *m = state_item(c);
    uint8_t *inner = NULL, *buf = NULL;
    size_t inner_len = 0, len = 0;
    char *tmp = NULL;
    int fd = -1, rc = -1;

    if (m == NULL || kc_cbor_serialize(m, &inner, &inner_len) != KC_OK ||
        seal(c, inner, inner_len, &buf, &len) != 0)
        goto out;
    if (asprintf(&tmp, "%s.tmpXXXXXX", c->state_path) < 0) {
        tmp = NULL;
        goto out;
    }
    if ((fd = mkstemp(tmp)) < 0) /* mkstemp creates the file with mode 0600 */
        goto out;
    if (fchmod(fd, 0600) != 0 || write_all(fd, buf, len) != 0 || fsync(fd) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, c->state_path) != 0)
        goto out;
    free(tmp);
    tmp = NULL;
    rc = fsync_dir_of(c->state_path);
out:
    if (fd >= 0)
        close(fd);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    if (buf != NULL) {
        OPENSSL_cleanse(buf, len);
        free(buf);
    }
    if (inner != NULL) {
        OPENSSL_cleanse(inner, inner_len);
        free(inner);
    }
    if (m != NULL)
        cbor_decref(&m);
    return rc;
}

/* The state map out of a sealed file (a new reference in *inner), or of a
 * first-format file (the map itself); NULL, or the reason it is refused. */
static const char *unseal(cbor_item_t *item, cbor_item_t **inner)
{
    cbor_item_t *state = kc_cbor_map_get_str(item, "state");
    cbor_item_t *mac = kc_cbor_map_get_str(item, "mac");
    cbor_item_t *digest = kc_cbor_map_get_str(item, "sha256");
    cbor_item_t *seal_item = mac != NULL ? mac : digest;
    uint8_t want[32], master_key[32];
    bool ok;

    *inner = NULL;
    if (state == NULL && seal_item == NULL) {
        *inner = cbor_incref(item); /* first format: nothing to check */
        return NULL;
    }
    if (state == NULL || seal_item == NULL || (mac != NULL && digest != NULL) ||
        !kc_cbor_is_bytes(state) || !kc_cbor_is_bytes(seal_item) ||
        cbor_bytestring_length(seal_item) != sizeof(want) || cbor_map_size(item) != 2)
        return "the sealed form is malformed (want exactly mac and state, as bytes)";
    if (digest != NULL) { /* the second format: a plain digest */
        if (vc_sha256(cbor_bytestring_handle(state), cbor_bytestring_length(state), want) != 0)
            return "cannot compute its digest";
        if (CRYPTO_memcmp(want, cbor_bytestring_handle(digest), sizeof(want)) != 0)
            return "its SHA-256 does not match (the file was altered or damaged)";
    }
    if (kc_cbor_load(cbor_bytestring_handle(state), cbor_bytestring_length(state), inner) != KC_OK)
        return "the sealed state is not valid CBOR";
    if (digest != NULL)
        return NULL;
    ok = cbor_isa_map(*inner) &&
         kc_cbor_bytes(kc_cbor_map_get_str(*inner, "master_key"), 32, 32, master_key, NULL) ==
             KC_OK &&
         state_mac(master_key, cbor_bytestring_handle(state), cbor_bytestring_length(state),
                   want) == 0;
    OPENSSL_cleanse(master_key, sizeof(master_key));
    if (!ok)
        return "the sealed state has no 32-byte master_key to check its MAC with";
    if (CRYPTO_memcmp(want, cbor_bytestring_handle(mac), sizeof(want)) != 0)
        return "its MAC does not match (the file was altered or damaged)";
    return NULL;
}

/* Reads a byte string field of min..max bytes into dst. */
static bool get_bytes(const cbor_item_t *m, const char *key, uint8_t *dst, size_t min, size_t max,
                      size_t *got)
{
    return kc_cbor_bytes(kc_cbor_map_get_str(m, key), min, max, dst, got) == KC_OK;
}

static bool get_uint(const cbor_item_t *m, const char *key, uint64_t max, uint64_t *out)
{
    cbor_item_t *v = kc_cbor_map_get_str(m, key);

    if (v == NULL || !cbor_isa_uint(v) || cbor_get_int(v) > max)
        return false;
    *out = cbor_get_int(v);
    return true;
}

/* A text field without NUL that fits cap with its terminator. */
static bool get_text(const cbor_item_t *m, const char *key, char *dst, size_t cap)
{
    return kc_cbor_text(kc_cbor_map_get_str(m, key), dst, cap) == KC_OK;
}

static const char *load_rks(struct vc_card *c, const cbor_item_t *arr)
{
    cbor_item_t **v;
    uint64_t u;

    if (arr == NULL || !cbor_isa_array(arr) || !cbor_array_is_definite(arr))
        return "\"rks\" is not an array";
    if (cbor_array_size(arr) > VC_MAX_RK)
        return "more resident credentials than the card holds";
    v = cbor_array_handle(arr);
    for (size_t i = 0; i < cbor_array_size(arr); i++) {
        struct vc_rk *rk = &c->rks[i];

        if (!cbor_isa_map(v[i]) ||
            !get_bytes(v[i], "id", rk->id, VC_CRED_ID_LEN, VC_CRED_ID_LEN, NULL) ||
            !get_bytes(v[i], "rp_id_hash", rk->rp_id_hash, 32, 32, NULL) ||
            !get_text(v[i], "rp_id", rk->rp_id, sizeof(rk->rp_id)) ||
            !get_bytes(v[i], "user_id", rk->user_id, 0, VC_USER_ID_MAX, &rk->user_id_len) ||
            !get_text(v[i], "user_name", rk->user_name, sizeof(rk->user_name)) ||
            !get_text(v[i], "display_name", rk->display_name, sizeof(rk->display_name)))
            return "a resident credential entry is malformed";
        if (!get_uint(v[i], "cred_protect", 3, &u))
            return "a resident credential has a bad cred_protect";
        rk->cred_protect = (int)u;
        if (!get_uint(v[i], "seq", UINT64_MAX, &rk->seq))
            return "a resident credential has no seq";
        if (kc_cbor_map_get_str(v[i], "cred_blob") != NULL &&
            !get_bytes(v[i], "cred_blob", rk->cred_blob, 0, VC_CRED_BLOB_MAX, &rk->cred_blob_len))
            return "a resident credential has a bad cred_blob";
        c->n_rk++;
    }
    return NULL;
}

static int counter_cmp(const void *a, const void *b)
{
    return memcmp(((const struct vc_counter *)a)->key, ((const struct vc_counter *)b)->key, 16);
}

static const char *load_counters(struct vc_card *c, const cbor_item_t *arr)
{
    cbor_item_t **v, **pair;
    size_t n;

    if (arr == NULL || !cbor_isa_array(arr) || !cbor_array_is_definite(arr))
        return "\"counters\" is not an array";
    n = cbor_array_size(arr);
    /* no cap: the table grows with the card (the file size bounds it) */
    if (n > 0 && (c->ctrs = calloc(n, sizeof(*c->ctrs))) == NULL)
        return "out of memory";
    c->cap_ctr = n;
    v = cbor_array_handle(arr);
    for (size_t i = 0; i < n; i++) {
        if (!cbor_isa_array(v[i]) || !cbor_array_is_definite(v[i]) || cbor_array_size(v[i]) != 2)
            return "a counter entry is not a pair";
        pair = cbor_array_handle(v[i]);
        if (!kc_cbor_is_bytes(pair[0]) || cbor_bytestring_length(pair[0]) != 16 ||
            !cbor_isa_uint(pair[1]) || cbor_get_int(pair[1]) > UINT32_MAX)
            return "a counter entry is malformed";
        memcpy(c->ctrs[i].key, cbor_bytestring_handle(pair[0]), 16);
        c->ctrs[i].count = (uint32_t)cbor_get_int(pair[1]);
        c->n_ctr++;
    }
    /* files written before the table was sorted keep insertion order */
    if (n > 1)
        qsort(c->ctrs, n, sizeof(*c->ctrs), counter_cmp);
    for (size_t i = 1; i < n; i++)
        if (memcmp(c->ctrs[i - 1].key, c->ctrs[i].key, 16) == 0)
            return "two counters have the same key";
    return NULL;
}

static const char *load_item(struct vc_card *c, const cbor_item_t *m)
{
    uint8_t der[4096];
    const unsigned char *dp = der;
    size_t der_len = 0, cert_len = 0;
    uint64_t u;
    cbor_item_t *v;
    const char *why;

    if (!cbor_isa_map(m))
        return "not a CBOR map";
    if (!get_uint(m, "version", UINT64_MAX, &u) || u != STATE_VERSION)
        return "missing or unknown \"version\"";
    if (!get_bytes(m, "master_key", c->master_key, 32, 32, NULL))
        return "\"master_key\" missing or not 32 bytes";
    if (!get_bytes(m, "att_key", der, 0, sizeof(der), &der_len) || der_len == 0)
        return "\"att_key\" missing";
    c->att_key = d2i_AutoPrivateKey(NULL, &dp, (long)der_len);
    OPENSSL_cleanse(der, sizeof(der));
    if (c->att_key == NULL || !EVP_PKEY_is_a(c->att_key, "EC"))
        return "\"att_key\" is not an EC private key";
    v = kc_cbor_map_get_str(m, "att_cert");
    if (!kc_cbor_is_bytes(v) || (cert_len = cbor_bytestring_length(v)) == 0 || cert_len > 8192)
        return "\"att_cert\" missing";
    if ((c->att_cert = malloc(cert_len)) == NULL)
        return "out of memory";
    memcpy(c->att_cert, cbor_bytestring_handle(v), cert_len);
    c->att_cert_len = cert_len;
    v = kc_cbor_map_get_str(m, "pin_set");
    if (!kc_cbor_is_bool(v))
        return "\"pin_set\" missing or not a boolean";
    c->pin_set = cbor_get_bool(v);
    if (!get_bytes(m, "pin_hash", c->pin_hash, 16, 16, NULL))
        return "\"pin_hash\" missing or not 16 bytes";
    if (!get_uint(m, "pin_retries", VC_PIN_RETRIES_MAX, &u))
        return "\"pin_retries\" missing or above 8";
    c->pin_retries = (int)u;
    /* written since personalities (force-pin-change); older files lack it */
    if ((v = kc_cbor_map_get_str(m, "force_pin_change")) != NULL) {
        if (!kc_cbor_is_bool(v))
            return "\"force_pin_change\" is not a boolean";
        c->force_pin_change = cbor_get_bool(v);
    }
    if (!get_uint(m, "next_seq", UINT64_MAX, &c->next_seq))
        return "\"next_seq\" missing";
    if ((why = load_rks(c, kc_cbor_map_get_str(m, "rks"))) != NULL)
        return why;
    /* written since large blobs; absent: the initial array */
    if ((v = kc_cbor_map_get_str(m, "large_blobs")) != NULL &&
        kc_cbor_bytes_dup(v, 17, VC_LARGE_BLOB_STORE_MAX, &c->lb_array, &c->lb_len) != KC_OK)
        return "\"large_blobs\" is not 17 to 65536 bytes";
    if ((why = vc_config_state_load(c, kc_cbor_map_get_str(m, "config"))) != NULL)
        return why;
    return load_counters(c, kc_cbor_map_get_str(m, "counters"));
}

int vc_state_load(struct vc_card *c, char *err, size_t errlen)
{
    cbor_item_t *item = NULL, *inner = NULL;
    uint8_t *buf = NULL;
    struct stat st;
    const char *why;
    ssize_t r;
    size_t n = 0;
    int fd, rc = -1;

    if ((fd = open(c->state_path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT)
            return 0;
        kcu_set_err(err, errlen, "vcard: cannot open state file %s: %s", c->state_path,
                    strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        kcu_set_err(err, errlen, "vcard: state file %s is not a regular file", c->state_path);
        goto out;
    }
    if (st.st_size == 0 || (size_t)st.st_size > STATE_MAX) {
        kcu_set_err(err, errlen, "vcard: state file %s has a bad size (%lld bytes)", c->state_path,
                    (long long)st.st_size);
        goto out;
    }
    if ((buf = malloc((size_t)st.st_size)) == NULL) {
        kcu_set_err(err, errlen, "vcard: out of memory reading %s", c->state_path);
        goto out;
    }
    while (n < (size_t)st.st_size) {
        r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            kcu_set_err(err, errlen, "vcard: cannot read state file %s: %s", c->state_path,
                        r < 0 ? strerror(errno) : "short read");
            goto out;
        }
        n += (size_t)r;
    }
    if (kc_cbor_load(buf, n, &item) != KC_OK) {
        kcu_set_err(err, errlen, "vcard: state file %s is corrupt: not valid CBOR", c->state_path);
        goto out;
    }
    if (!cbor_isa_map(item)) {
        kcu_set_err(err, errlen, "vcard: state file %s is corrupt: not a CBOR map", c->state_path);
        goto out;
    }
    if ((why = unseal(item, &inner)) != NULL || (why = load_item(c, inner)) != NULL) {
        kcu_set_err(err, errlen, "vcard: state file %s is corrupt: %s", c->state_path, why);
        goto out;
    }
    rc = 1;
out:
    if (inner != NULL)
        cbor_decref(&inner);
    if (item != NULL)
        cbor_decref(&item);
    if (buf != NULL) {
        OPENSSL_cleanse(buf, n);
        free(buf);
    }
    close(fd);
    return rc;
}
