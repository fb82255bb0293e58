/* Shared by the libfido2 interop programs (header-only, see fido_udp_io.h):
 * makeCredential and getAssertion requests built and checked with libfido2's
 * own API, so the card is judged by an independent implementation. */
#ifndef KCARD_INTEROP_FIDO_OPS_H
#define KCARD_INTEROP_FIDO_OPS_H

#include <fido.h>
#include <fido/eddsa.h>
#include <fido/es256.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

/* Options of one request; zero means "libfido2's default". */
struct op_args {
    int type;                /* COSE_ES256 (default) or COSE_EDDSA */
    const char *rp;          /* default "example.org" */
    unsigned char user_tag;  /* fills the 16-byte user id */
    const char *pin;         /* PIN for a pinUvAuthParam, or NULL */
    const unsigned char *id; /* one excludeList (makeCredential) or allowList id */
    size_t id_len;
    size_t n_filler, filler_len; /* extra unknown ids, to grow the message */
};

static inline const char *op_rp(const struct op_args *a)
{
    return a->rp ? a->rp : "example.org";
}

static inline int op_type(const struct op_args *a)
{
    return a->type ? a->type : COSE_ES256;
}

/* Adds n unknown credential ids of len bytes through add(). */
static inline int op_fillers(void *obj, int (*add)(void *, const unsigned char *, size_t), size_t n,
                             size_t len)
{
    unsigned char id[1024];
    int r = FIDO_OK;

    if (len > sizeof(id))
        return FIDO_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < n && r == FIDO_OK; i++) {
        if (RAND_bytes(id, (int)len) != 1)
            return FIDO_ERR_INTERNAL;
        r = add(obj, id, len);
    }
    return r;
}

static inline int cred_exclude_cb(void *obj, const unsigned char *id, size_t len)
{
    return fido_cred_exclude(obj, id, len);
}

static inline int assert_allow_cb(void *obj, const unsigned char *id, size_t len)
{
    return fido_assert_allow_cred(obj, id, len);
}

/* makeCredential; *cred is set (to be freed) even when the card refused. */
static inline int op_make_cred(fido_dev_t *dev, const struct op_args *a, fido_cred_t **cred)
{
    unsigned char cdh[32], user_id[16];
    int r;

    memset(user_id, a->user_tag ? a->user_tag : 1, sizeof(user_id));
    if ((*cred = fido_cred_new()) == NULL)
        return FIDO_ERR_INTERNAL;
    if (RAND_bytes(cdh, sizeof(cdh)) != 1)
        return FIDO_ERR_INTERNAL;
    r = fido_cred_set_type(*cred, op_type(a));
    if (r == FIDO_OK)
        r = fido_cred_set_clientdata_hash(*cred, cdh, sizeof(cdh));
    if (r == FIDO_OK)
        r = fido_cred_set_rp(*cred, op_rp(a), "Example");
    if (r == FIDO_OK)
        r = fido_cred_set_user(*cred, user_id, sizeof(user_id), "alice", "Alice", NULL);
    if (r == FIDO_OK && a->id != NULL)
        r = fido_cred_exclude(*cred, a->id, a->id_len);
    if (r == FIDO_OK && a->n_filler > 0)
        r = op_fillers(*cred, cred_exclude_cb, a->n_filler, a->filler_len);
    if (r == FIDO_OK)
        r = fido_dev_make_cred(dev, *cred, a->pin);
    return r;
}

/* Checks the attestation: full (x5c) or self. */
static inline int op_cred_verify(const fido_cred_t *cred)
{
    return fido_cred_x5c_ptr(cred) != NULL ? fido_cred_verify(cred) : fido_cred_verify_self(cred);
}

/* getAssertion for the credential id in a->id (the allowList); *as is set. */
static inline int op_get_assert(fido_dev_t *dev, const struct op_args *a, fido_assert_t **as)
{
    unsigned char cdh[32];
    int r;

    if ((*as = fido_assert_new()) == NULL)
        return FIDO_ERR_INTERNAL;
    if (RAND_bytes(cdh, sizeof(cdh)) != 1)
        return FIDO_ERR_INTERNAL;
    r = fido_assert_set_rp(*as, op_rp(a));
    if (r == FIDO_OK)
        r = fido_assert_set_clientdata_hash(*as, cdh, sizeof(cdh));
    if (r == FIDO_OK && a->id != NULL)
        r = fido_assert_allow_cred(*as, a->id, a->id_len);
    if (r == FIDO_OK && a->n_filler > 0)
        r = op_fillers(*as, assert_allow_cb, a->n_filler, a->filler_len);
    if (r == FIDO_OK)
        r = fido_dev_get_assert(dev, *as, a->pin);
    return r;
}

/* Verifies assertion idx with the public key of cred. */
static inline int op_assert_verify(const fido_assert_t *as, size_t idx, const fido_cred_t *cred)
{
    int type = fido_cred_type(cred), r = FIDO_ERR_INTERNAL;

    if (type == COSE_ES256) {
        es256_pk_t *k = es256_pk_new();
        if (k != NULL &&
            es256_pk_from_ptr(k, fido_cred_pubkey_ptr(cred), fido_cred_pubkey_len(cred)) == FIDO_OK)
            r = fido_assert_verify(as, idx, type, k);
        es256_pk_free(&k);
    } else if (type == COSE_EDDSA) {
        eddsa_pk_t *k = eddsa_pk_new();
        if (k != NULL &&
            eddsa_pk_from_ptr(k, fido_cred_pubkey_ptr(cred), fido_cred_pubkey_len(cred)) == FIDO_OK)
            r = fido_assert_verify(as, idx, type, k);
        eddsa_pk_free(&k);
    }
    return r;
}

/* "FIDO_ERR_X (n)": libfido2's own name and number for r. */
static inline const char *op_err(int r)
{
    static char buf[96];

    snprintf(buf, sizeof(buf), "%s (%d)", fido_strerr(r), r);
    return buf;
}

#endif
