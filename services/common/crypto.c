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
 * provider store on each call, and each thread keeps its contexts. */
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;
static EVP_MAC *hmac_mac;
static pthread_key_t cache_key;
static bool cache_key_ok;

/* A thread's contexts: a digest context, and an HMAC context keyed with the
 * last key it was given. */
struct thread_crypto {
    EVP_MD_CTX *md;
    EVP_MAC_CTX *mac;
    size_t key_len;
    uint8_t key[64];
};

static void thread_crypto_free(void *arg)
{
    struct thread_crypto *c = arg;
    EVP_MD_CTX_free(c->md);
    EVP_MAC_CTX_free(c->mac);
    OPENSSL_clear_free(c, sizeof(*c));
}

static void fetch_algorithms(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    cache_key_ok = pthread_key_create(&cache_key, thread_crypto_free) == 0;
}

/* This thread's contexts, made on first use; NULL when they cannot be had
 * (the callers then take the one-shot paths). */
static struct thread_crypto *thread_crypto(void)
{
    pthread_once(&fetch_once, fetch_algorithms);
    if (!cache_key_ok || sha256_md == NULL || hmac_mac == NULL)
        return NULL;
    struct thread_crypto *c = pthread_getspecific(cache_key);
    if (c != NULL)
        return c;
    c = OPENSSL_zalloc(sizeof(*c));
    if (c == NULL)
        return NULL;
    c->key_len = SIZE_MAX; /* no key yet */
    if ((c->md = EVP_MD_CTX_new()) == NULL || (c->mac = EVP_MAC_CTX_new(hmac_mac)) == NULL ||
        pthread_setspecific(cache_key, c) != 0) {
        thread_crypto_free(c);
        return NULL;
    }
    return c;
}

int ksvc_sha256(const void *data, size_t len, uint8_t out[KSVC_SHA256_LEN])
{
    unsigned int n = 0;
    struct thread_crypto *c = thread_crypto();
    if (c != NULL && EVP_DigestInit_ex2(c->md, sha256_md, NULL) == 1 &&
        EVP_DigestUpdate(c->md, data, len) == 1 && EVP_DigestFinal_ex(c->md, out, &n) == 1)
        return n == KSVC_SHA256_LEN ? 0 : -1;
    n = 0;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == KSVC_SHA256_LEN ? 0 : -1;
}

/* This thread's HMAC context keyed with key, re-keyed when needed; NULL
 * when it cannot be had (the caller then takes the one-shot path). */
static EVP_MAC_CTX *hmac_ctx_for(const uint8_t *key, size_t key_len)
{
    struct thread_crypto *c = thread_crypto();
    if (c == NULL || key_len > sizeof(c->key))
        return NULL;
    if (c->key_len == key_len && CRYPTO_memcmp(c->key, key, key_len) == 0)
        return EVP_MAC_init(c->mac, NULL, 0, NULL) == 1 ? c->mac : NULL; /* same key again */
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    c->key_len = SIZE_MAX;
    if (EVP_MAC_init(c->mac, key, key_len, params) != 1)
        return NULL;
    memcpy(c->key, key, key_len);
    c->key_len = key_len;
    return c->mac;
}

int ksvc_hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t len,
                     uint8_t out[KSVC_SHA256_LEN])
{
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
