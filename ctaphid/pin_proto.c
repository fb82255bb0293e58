/* PIN/UV auth protocols 1 and 2 (CTAP 2.1, 6.5.6 and 6.5.7), shared by the
 * host library and the virtual card. All crypto through OpenSSL EVP. */
#include "ctaphid/pin_proto.h"

#include <stdbool.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "ctaphid/status.h"
#include "util/rand.h"

#define AES_BLOCK 16
#define P256_COORD 32
#define P1_SHARED_LEN 32
#define P2_SHARED_LEN 64
#define P1_AUTH_LEN 16
#define P2_AUTH_LEN 32

static int valid_protocol(int protocol)
{
    return protocol == 1 || protocol == 2;
}

int kc_pinp_keypair_new(EVP_PKEY **out)
{
    if (out == NULL)
        return KC_ERR_INVALID_ARG;
    *out = EVP_EC_gen("P-256");
    return *out != NULL ? KC_OK : KC_ERR_CRYPTO;
}

/* ECDH: Z is the x-coordinate of the shared point, 32 bytes. */
static int ecdh_z(EVP_PKEY *mine, EVP_PKEY *peer, uint8_t z[P256_COORD])
{
    EVP_PKEY_CTX *ctx = NULL;
    size_t zlen = P256_COORD;
    int r = KC_ERR_CRYPTO;

    if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, mine, NULL)) == NULL)
        goto out;
    if (EVP_PKEY_derive_init(ctx) <= 0 || EVP_PKEY_derive_set_peer_ex(ctx, peer, 1) <= 0)
        goto out;
    if (EVP_PKEY_derive(ctx, NULL, &zlen) <= 0 || zlen != P256_COORD)
        goto out;
    if (EVP_PKEY_derive(ctx, z, &zlen) <= 0 || zlen != P256_COORD)
        goto out;
    r = KC_OK;
out:
    EVP_PKEY_CTX_free(ctx);
    return r;
}

static int hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const char *info, uint8_t *out,
                       size_t out_len)
{
    uint8_t salt[32] = {0};
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[5];
    int r = KC_ERR_CRYPTO;

    if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL)
        goto out;
    if ((kctx = EVP_KDF_CTX_new(kdf)) == NULL)
        goto out;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof(salt));
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
    params[4] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, out, out_len, params) <= 0)
        goto out;
    r = KC_OK;
out:
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return r;
}

int kc_pinp_shared_secret(int protocol, EVP_PKEY *mine, EVP_PKEY *peer, uint8_t *shared,
                          size_t *shared_len)
{
    uint8_t z[P256_COORD];
    int r;

    if (!valid_protocol(protocol) || mine == NULL || peer == NULL || shared == NULL ||
        shared_len == NULL)
        return KC_ERR_INVALID_ARG;
    if ((r = ecdh_z(mine, peer, z)) != KC_OK)
        goto out;
    if (protocol == 1) {
        unsigned int mdlen = 0;
        if (EVP_Digest(z, sizeof(z), shared, &mdlen, EVP_sha256(), NULL) != 1 ||
            mdlen != P1_SHARED_LEN) {
            r = KC_ERR_CRYPTO;
            goto out;
        }
        *shared_len = P1_SHARED_LEN;
    } else {
        if ((r = hkdf_sha256(z, sizeof(z), "CTAP2 HMAC key", shared, 32)) != KC_OK ||
            (r = hkdf_sha256(z, sizeof(z), "CTAP2 AES key", shared + 32, 32)) != KC_OK) {
            OPENSSL_cleanse(shared, P2_SHARED_LEN);
            goto out;
        }
        *shared_len = P2_SHARED_LEN;
    }
    r = KC_OK;
out:
    OPENSSL_cleanse(z, sizeof(z));
    return r;
}

/* AES-256-CBC without padding, in one direction. */
static int aes_cbc(bool enc, const uint8_t *key, const uint8_t *iv, const uint8_t *in, size_t len,
                   uint8_t *out)
{
    EVP_CIPHER_CTX *ctx;
    int n1 = 0, n2 = 0;
    int r = KC_ERR_CRYPTO;

    if (len > INT32_MAX)
        return KC_ERR_INVALID_ARG;
    if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
        return KC_ERR_NOMEM;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv, enc ? 1 : 0) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx, 0) != 1)
        goto out;
    if (EVP_CipherUpdate(ctx, out, &n1, in, (int)len) != 1)
        goto out;
    if (EVP_CipherFinal_ex(ctx, out + n1, &n2) != 1 || (size_t)n1 + (size_t)n2 != len)
        goto out;
    r = KC_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    return r;
}

/* The AES key of a shared secret: all of it (p1) or its second half (p2). */
static const uint8_t *aes_key(int protocol, const uint8_t *shared, size_t shared_len)
{
    if (protocol == 1 && shared_len == P1_SHARED_LEN)
        return shared;
    if (protocol == 2 && shared_len == P2_SHARED_LEN)
        return shared + 32;
    return NULL;
}

int kc_pinp2_encrypt_iv(const uint8_t *shared, size_t shared_len, const uint8_t iv[16],
                        const uint8_t *pt, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    const uint8_t *key = aes_key(2, shared, shared_len);
    int r;

    if (key == NULL || iv == NULL || (pt == NULL && len) || out == NULL || out_len == NULL ||
        len % AES_BLOCK != 0 || len > SIZE_MAX - AES_BLOCK || cap < len + AES_BLOCK)
        return KC_ERR_INVALID_ARG;
    memmove(out, iv, AES_BLOCK);
    if ((r = aes_cbc(true, key, out, pt, len, out + AES_BLOCK)) != KC_OK)
        return r;
    *out_len = len + AES_BLOCK;
    return KC_OK;
}

int kc_pinp_encrypt(int protocol, const uint8_t *shared, size_t shared_len, const uint8_t *pt,
                    size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    static const uint8_t zero_iv[AES_BLOCK] = {0};
    const uint8_t *key = aes_key(protocol, shared, shared_len);
    uint8_t iv[AES_BLOCK];
    int r;

    if (key == NULL || (pt == NULL && len) || out == NULL || out_len == NULL ||
        len % AES_BLOCK != 0)
        return KC_ERR_INVALID_ARG;
    if (protocol == 2) {
        if (kcu_random(iv, sizeof(iv)) != 0)
            return KC_ERR_CRYPTO;
        return kc_pinp2_encrypt_iv(shared, shared_len, iv, pt, len, out, cap, out_len);
    }
    if (cap < len)
        return KC_ERR_INVALID_ARG;
    if ((r = aes_cbc(true, key, zero_iv, pt, len, out)) != KC_OK)
        return r;
    *out_len = len;
    return KC_OK;
}

int kc_pinp_decrypt(int protocol, const uint8_t *shared, size_t shared_len, const uint8_t *ct,
                    size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    static const uint8_t zero_iv[AES_BLOCK] = {0};
    const uint8_t *key = aes_key(protocol, shared, shared_len);
    const uint8_t *iv = zero_iv;
    int r;

    if (key == NULL || (ct == NULL && len) || out == NULL || out_len == NULL ||
        len % AES_BLOCK != 0)
        return KC_ERR_INVALID_ARG;
    if (protocol == 2) {
        if (len < AES_BLOCK)
            return KC_ERR_INVALID_ARG;
        iv = ct;
        ct += AES_BLOCK;
        len -= AES_BLOCK;
    }
    if (cap < len)
        return KC_ERR_INVALID_ARG;
    if ((r = aes_cbc(false, key, iv, ct, len, out)) != KC_OK) {
        OPENSSL_cleanse(out, len);
        return r;
    }
    *out_len = len;
    return KC_OK;
}

int kc_pinp_authenticate(int protocol, const uint8_t *key, size_t key_len, const uint8_t *msg,
                         size_t len, uint8_t *out, size_t *out_len)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;

    if (!valid_protocol(protocol) || key == NULL || key_len == 0 || (msg == NULL && len) ||
        out == NULL || out_len == NULL)
        return KC_ERR_INVALID_ARG;
    /* protocol 2 with its 64-byte shared secret uses the HMAC half */
    if (protocol == 2 && key_len == P2_SHARED_LEN)
        key_len = 32;
    if (key_len > INT32_MAX)
        return KC_ERR_INVALID_ARG;
    if (HMAC(EVP_sha256(), key, (int)key_len, msg, len, mac, &mac_len) == NULL || mac_len != 32) {
        OPENSSL_cleanse(mac, sizeof(mac));
        return KC_ERR_CRYPTO;
    }
    *out_len = protocol == 1 ? P1_AUTH_LEN : P2_AUTH_LEN;
    memcpy(out, mac, *out_len);
    OPENSSL_cleanse(mac, sizeof(mac));
    return KC_OK;
}

int kc_pinp_verify(int protocol, const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                   const uint8_t *sig, size_t sig_len)
{
    uint8_t expect[KC_PINP_AUTH_MAX];
    size_t expect_len = 0;
    int r;

    if (sig == NULL)
        return KC_ERR_INVALID_ARG;
    if ((r = kc_pinp_authenticate(protocol, key, key_len, msg, len, expect, &expect_len)) != KC_OK)
        return r;
    r = (sig_len == expect_len && CRYPTO_memcmp(expect, sig, expect_len) == 0) ? KC_OK
                                                                               : KC_ERR_VERIFY;
    OPENSSL_cleanse(expect, sizeof(expect));
    return r;
}
