/* OpenSSL wrappers for the services (see crypto.h). */
#include "services/common/crypto.h"

#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include "util/b64url.h"
#include "util/rand.h"

int ksvc_random_b64url(size_t nbytes, char *out, size_t cap)
{
    uint8_t buf[64];
    if (nbytes > sizeof(buf) || kcu_random(buf, nbytes) != 0)
        return -1;
    int n = kcu_b64url_encode(buf, nbytes, out, cap);
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
