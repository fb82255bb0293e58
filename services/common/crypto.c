/* OpenSSL wrappers for the services (see crypto.h). */
#include "services/common/crypto.h"

#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

int ksvc_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    if (len > (size_t)1 << 28)
        return -1;
    size_t padded = 4 * ((len + 2) / 3);
    size_t unpadded = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
    if (cap < unpadded + 1)
        return -1;
    /* EVP_EncodeBlock writes the padding and a NUL: give it room of its own */
    char *tmp = OPENSSL_malloc(padded + 1);
    if (tmp == NULL)
        return -1;
    int n = EVP_EncodeBlock((unsigned char *)tmp, in, (int)len);
    if (n != (int)padded) {
        OPENSSL_clear_free(tmp, padded + 1);
        return -1;
    }
    for (size_t i = 0; i < unpadded; i++)
        out[i] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : tmp[i];
    out[unpadded] = '\0';
    OPENSSL_clear_free(tmp, padded + 1);
    return (int)unpadded;
}

int ksvc_b64url_decode(const char *in, uint8_t *out, size_t cap)
{
    size_t len = strlen(in);
    if (len % 4 == 1 || len > (size_t)1 << 20)
        return -1;
    size_t padded = (len + 3) / 4 * 4;
    char *tmp = OPENSSL_malloc(padded + 1);
    unsigned char *raw = OPENSSL_malloc(padded / 4 * 3 + 1);
    int ret = -1;
    if (tmp == NULL || raw == NULL)
        goto out;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (c == '+' || c == '/' || c == '=')
            goto out; /* standard alphabet or padding: not base64url */
        tmp[i] = c;
    }
    for (size_t i = len; i < padded; i++)
        tmp[i] = '=';
    tmp[padded] = '\0';
    int n = padded ? EVP_DecodeBlock(raw, (unsigned char *)tmp, (int)padded) : 0;
    if (n < 0)
        goto out;
    n -= (int)(padded - len); /* EVP_DecodeBlock counts the padding as zero bytes */
    if (n < 0 || (size_t)n > cap)
        goto out;
    memcpy(out, raw, (size_t)n);
    ret = n;
out:
    OPENSSL_clear_free(tmp, padded + 1);
    OPENSSL_clear_free(raw, padded / 4 * 3 + 1);
    return ret;
}

void ksvc_hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool ksvc_unhex(const char *in, uint8_t *out, size_t len)
{
    if (strlen(in) != 2 * len)
        return false;
    for (size_t i = 0; i < len; i++) {
        int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

int ksvc_random(uint8_t *out, size_t len)
{
    return RAND_bytes(out, (int)len) == 1 ? 0 : -1;
}

int ksvc_random_b64url(size_t nbytes, char *out, size_t cap)
{
    uint8_t buf[64];
    if (nbytes > sizeof(buf) || ksvc_random(buf, nbytes) != 0)
        return -1;
    int n = ksvc_b64url_encode(buf, nbytes, out, cap);
    OPENSSL_cleanse(buf, sizeof(buf));
    return n < 0 ? -1 : 0;
}

/* SHA-256 and HMAC are on every signed request of both services: the
 * algorithms are fetched once per process rather than looked up in the
 * provider store on each call. */
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;
static EVP_MAC *hmac_mac;
static pthread_key_t hmac_key;
static bool hmac_key_ok;

/* The per-thread HMAC context, keyed with the last key it was given. */
struct hmac_cache {
    EVP_MAC_CTX *ctx;
    size_t key_len;
    uint8_t key[64];
};

static void hmac_cache_free(void *arg)
{
    struct hmac_cache *c = arg;
    EVP_MAC_CTX_free(c->ctx);
    OPENSSL_clear_free(c, sizeof(*c));
}

static void fetch_algorithms(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    hmac_key_ok = pthread_key_create(&hmac_key, hmac_cache_free) == 0;
}

int ksvc_sha256(const void *data, size_t len, uint8_t out[KSVC_SHA256_LEN])
{
    unsigned int n = 0;
    pthread_once(&fetch_once, fetch_algorithms);
    const EVP_MD *md = sha256_md != NULL ? sha256_md : EVP_sha256();
    return EVP_Digest(data, len, out, &n, md, NULL) == 1 && n == KSVC_SHA256_LEN ? 0 : -1;
}

/* This thread's context keyed with key, made or re-keyed when needed; NULL
 * when it cannot be had (the caller then takes the one-shot path). */
static EVP_MAC_CTX *hmac_ctx_for(const uint8_t *key, size_t key_len)
{
    if (!hmac_key_ok || hmac_mac == NULL || key_len > sizeof(((struct hmac_cache *)0)->key))
        return NULL;
    struct hmac_cache *c = pthread_getspecific(hmac_key);
    if (c == NULL) {
        c = OPENSSL_zalloc(sizeof(*c));
        if (c == NULL || (c->ctx = EVP_MAC_CTX_new(hmac_mac)) == NULL ||
            pthread_setspecific(hmac_key, c) != 0) {
            if (c != NULL)
                hmac_cache_free(c);
            return NULL;
        }
        c->key_len = SIZE_MAX; /* no key yet */
    }
    if (c->key_len == key_len && CRYPTO_memcmp(c->key, key, key_len) == 0)
        return EVP_MAC_init(c->ctx, NULL, 0, NULL) == 1 ? c->ctx : NULL; /* same key again */
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    c->key_len = SIZE_MAX;
    if (EVP_MAC_init(c->ctx, key, key_len, params) != 1)
        return NULL;
    memcpy(c->key, key, key_len);
    c->key_len = key_len;
    return c->ctx;
}

int ksvc_hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t len,
                     uint8_t out[KSVC_SHA256_LEN])
{
    pthread_once(&fetch_once, fetch_algorithms);
    EVP_MAC_CTX *ctx = hmac_ctx_for(key, key_len);
    if (ctx != NULL) {
        size_t n = 0;
        if (EVP_MAC_update(ctx, msg, len) == 1 &&
            EVP_MAC_final(ctx, out, &n, KSVC_SHA256_LEN) == 1 && n == KSVC_SHA256_LEN)
            return 0;
    }
    unsigned int n = 0;
    if (HMAC(EVP_sha256(), key, (int)key_len, msg, len, out, &n) == NULL)
        return -1;
    return n == KSVC_SHA256_LEN ? 0 : -1;
}

int ksvc_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const char *salt, const char *info,
                     uint8_t *out, size_t out_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    int ok =
        ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) == 1 &&
        EVP_PKEY_CTX_set1_hkdf_salt(ctx, (const unsigned char *)salt, (int)strlen(salt)) == 1 &&
        EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, (int)ikm_len) == 1 &&
        EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)info, (int)strlen(info)) == 1 &&
        EVP_PKEY_derive(ctx, out, &out_len) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok ? 0 : -1;
}

bool ksvc_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}
