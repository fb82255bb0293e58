/* Signed k_proxy -> k_server requests (see upstream.h). */
#include "services/common/upstream.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "services/common/crypto.h"

#define SCHEME "KC-HMAC-SHA256 "

const char *ksvc_upstream_verdict_code(enum ksvc_upstream_verdict v)
{
    switch (v) {
    case KSVC_UPSTREAM_OK:
        return "ok";
    case KSVC_UPSTREAM_UNSIGNED:
        return "unsigned_request";
    case KSVC_UPSTREAM_MALFORMED:
        return "malformed_signature";
    case KSVC_UPSTREAM_BAD_SIG:
        return "bad_signature";
    case KSVC_UPSTREAM_STALE:
        return "stale_request";
    case KSVC_UPSTREAM_REPLAYED:
        return "replayed_request";
    case KSVC_UPSTREAM_CACHE_FULL:
        return "replay_cache_full";
    }
    return "unknown";
}

int ksvc_upstream_key(const char *token, uint8_t key[KSVC_UPSTREAM_KEY_LEN])
{
    if (token == NULL || token[0] == '\0')
        return -1;
    return ksvc_hkdf_sha256((const uint8_t *)token, strlen(token), "kcard upstream v1",
                            "k_proxy->k_server", key, KSVC_UPSTREAM_KEY_LEN);
}

static bool ref_valid(const char *ref)
{
    size_t n = strlen(ref);
    return n > 0 && n < KSVC_UPSTREAM_REF_MAX &&
           strspn(ref, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* HMAC over "KC1\n" METHOD "\n" PATH "\n" ts "\n" nonce "\n" ref "\n" hex(SHA-256(body)). */
static int signature(const uint8_t key[KSVC_UPSTREAM_KEY_LEN], const char *method, const char *path,
                     long long ts, const char *nonce, const char *ref, const void *body,
                     size_t body_len, uint8_t sig[32])
{
    uint8_t digest[32];
    char digest_hex[65];
    if (ksvc_sha256(body_len ? body : "", body_len, digest) != 0)
        return -1;
    ksvc_hex(digest, sizeof(digest), digest_hex);
    char *msg = NULL;
    int n =
        asprintf(&msg, "KC1\n%s\n%s\n%lld\n%s\n%s\n%s", method, path, ts, nonce, ref, digest_hex);
    if (n < 0)
        return -1;
    int rc = ksvc_hmac_sha256(key, KSVC_UPSTREAM_KEY_LEN, msg, (size_t)n, sig);
    free(msg);
    return rc;
}

int ksvc_upstream_sign(const uint8_t key[KSVC_UPSTREAM_KEY_LEN], const char *method,
                       const char *path, const char *ref, const void *body, size_t body_len,
                       time_t now, char *header, size_t cap)
{
    uint8_t nonce_raw[16], sig[32];
    char nonce[33], sig_hex[65];
    if (!ref_valid(ref) || ksvc_random(nonce_raw, sizeof(nonce_raw)) != 0)
        return -1;
    ksvc_hex(nonce_raw, sizeof(nonce_raw), nonce);
    if (signature(key, method, path, (long long)now, nonce, ref, body, body_len, sig) != 0)
        return -1;
    ksvc_hex(sig, sizeof(sig), sig_hex);
    int n = snprintf(header, cap, SCHEME "ts=%lld, nonce=%s, ref=%s, sig=%s", (long long)now, nonce,
                     ref, sig_hex);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* Copies the value of "name=" at *p up to ", " or the end into out. */
static bool take_param(const char **p, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (strncmp(*p, name, nl) != 0 || (*p)[nl] != '=')
        return false;
    const char *v = *p + nl + 1;
    size_t n = strcspn(v, ",");
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, v, n);
    out[n] = '\0';
    v += n;
    if (*v == ',') {
        if (v[1] != ' ')
            return false;
        v += 2;
    }
    *p = v;
    return true;
}

enum ksvc_upstream_verdict ksvc_upstream_parse(const char *header, struct ksvc_upstream_auth *a)
{
    memset(a, 0, sizeof(*a));
    if (header == NULL || strncmp(header, SCHEME, strlen(SCHEME)) != 0)
        return KSVC_UPSTREAM_UNSIGNED;
    if (strlen(header) > KSVC_UPSTREAM_HEADER_MAX)
        return KSVC_UPSTREAM_MALFORMED;
    const char *p = header + strlen(SCHEME);
    char ts[24], sig[65];
    if (!take_param(&p, "ts", ts, sizeof(ts)) ||
        !take_param(&p, "nonce", a->nonce, sizeof(a->nonce)) ||
        !take_param(&p, "ref", a->ref, sizeof(a->ref)) ||
        !take_param(&p, "sig", sig, sizeof(sig)) || *p != '\0')
        return KSVC_UPSTREAM_MALFORMED;
    if (strspn(ts, "0123456789") != strlen(ts) || strlen(ts) > 18)
        return KSVC_UPSTREAM_MALFORMED;
    a->ts = strtoll(ts, NULL, 10);
    uint8_t nonce_raw[16];
    if (!ksvc_unhex(a->nonce, nonce_raw, sizeof(nonce_raw)) || !ref_valid(a->ref) ||
        !ksvc_unhex(sig, a->sig, sizeof(a->sig)))
        return KSVC_UPSTREAM_MALFORMED;
    return KSVC_UPSTREAM_OK;
}

/* Two generations of open-addressing tables: nonces go into the current one,
 * and every 2*skew seconds the current one becomes the previous one and the
 * old previous one is emptied. A nonce is thus remembered for at least the
 * whole window in which its timestamp is accepted, with no deletions. */
struct replay_table {
    uint8_t (*nonce)[16];
    size_t used;
};

struct ksvc_replay_cache {
    pthread_mutex_t lock;
    struct replay_table gen[2]; /* gen[cur] current, gen[!cur] previous */
    int cur;
    size_t cap; /* per generation */
    long long rotated_at;
};

struct ksvc_replay_cache *ksvc_replay_cache_new(size_t capacity)
{
    struct ksvc_replay_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->rotated_at = -1;
    c->cap = capacity ? capacity : KSVC_REPLAY_CAPACITY;
    for (int g = 0; g < 2; g++) {
        c->gen[g].nonce = calloc(c->cap, 16);
        if (c->gen[g].nonce == NULL) {
            ksvc_replay_cache_free(c);
            return NULL;
        }
    }
    return c;
}

void ksvc_replay_cache_free(struct ksvc_replay_cache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c->gen[0].nonce);
    free(c->gen[1].nonce);
    free(c);
}

static const uint8_t empty_slot[16];

/* The slot holding nonce, or the empty slot where it would go; cap when full. */
static size_t table_find(const struct replay_table *t, size_t cap, const uint8_t nonce[16])
{
    uint64_t h;
    memcpy(&h, nonce, sizeof(h)); /* the nonce is random: its bytes are the hash */
    for (size_t i = 0; i < cap; i++) {
        size_t slot = (size_t)((h + i) % cap);
        if (memcmp(t->nonce[slot], nonce, 16) == 0 || memcmp(t->nonce[slot], empty_slot, 16) == 0)
            return slot;
    }
    return cap;
}

static enum ksvc_upstream_verdict spend_nonce(struct ksvc_replay_cache *c, const uint8_t nonce[16],
                                              time_t now)
{
    enum ksvc_upstream_verdict v = KSVC_UPSTREAM_CACHE_FULL;
    if (memcmp(nonce, empty_slot, 16) == 0)
        return KSVC_UPSTREAM_MALFORMED; /* the all-zero nonce marks empty slots */
    pthread_mutex_lock(&c->lock);
    if (c->rotated_at < 0)
        c->rotated_at = (long long)now;
    if ((long long)now - c->rotated_at >= 2 * KSVC_UPSTREAM_SKEW_S) {
        c->cur = !c->cur;
        memset(c->gen[c->cur].nonce, 0, c->cap * 16);
        c->gen[c->cur].used = 0;
        c->rotated_at = (long long)now;
    }
    struct replay_table *cur = &c->gen[c->cur], *prev = &c->gen[!c->cur];
    size_t p = table_find(prev, c->cap, nonce);
    if (p != c->cap && memcmp(prev->nonce[p], nonce, 16) == 0) {
        v = KSVC_UPSTREAM_REPLAYED;
        goto out;
    }
    size_t slot = table_find(cur, c->cap, nonce);
    if (slot != c->cap && memcmp(cur->nonce[slot], nonce, 16) == 0)
        v = KSVC_UPSTREAM_REPLAYED;
    else if (slot != c->cap && cur->used < c->cap - c->cap / 4) { /* keep probe chains short */
        memcpy(cur->nonce[slot], nonce, 16);
        cur->used++;
        v = KSVC_UPSTREAM_OK;
    }
out:
    pthread_mutex_unlock(&c->lock);
    return v;
}

enum ksvc_upstream_verdict ksvc_upstream_verify(const uint8_t key[KSVC_UPSTREAM_KEY_LEN],
                                                struct ksvc_replay_cache *cache, const char *header,
                                                const char *method, const char *path,
                                                const void *body, size_t body_len, time_t now,
                                                struct ksvc_upstream_auth *a)
{
    enum ksvc_upstream_verdict v = ksvc_upstream_parse(header, a);
    if (v != KSVC_UPSTREAM_OK)
        return v;
    uint8_t want[32];
    if (signature(key, method, path, a->ts, a->nonce, a->ref, body, body_len, want) != 0)
        return KSVC_UPSTREAM_BAD_SIG;
    bool match = ksvc_ct_equal(want, a->sig, sizeof(want));
    OPENSSL_cleanse(want, sizeof(want));
    if (!match)
        return KSVC_UPSTREAM_BAD_SIG;
    if (a->ts > (long long)now + KSVC_UPSTREAM_SKEW_S ||
        a->ts < (long long)now - KSVC_UPSTREAM_SKEW_S)
        return KSVC_UPSTREAM_STALE;
    uint8_t nonce_raw[16];
    ksvc_unhex(a->nonce, nonce_raw, sizeof(nonce_raw));
    return spend_nonce(cache, nonce_raw, now);
}

int ksvc_session_ref(const uint8_t ref_key[32], const char *session_id, char out[23])
{
    uint8_t mac[32];
    char b64[48];
    if (ksvc_hmac_sha256(ref_key, 32, session_id, strlen(session_id), mac) != 0 ||
        ksvc_b64url_encode(mac, sizeof(mac), b64, sizeof(b64)) < 22)
        return -1;
    memcpy(out, b64, 22);
    out[22] = '\0';
    return 0;
}
