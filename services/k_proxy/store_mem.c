/* k_proxy's sessions in memory (see store_int.h): the striped hash table
 * from token hash to session, the expiry heap, the dirty and retired
 * lists a flush writes back and frees, and the session reference (an HMAC
 * under the store's reference key). store.c keeps them and SQLite in step. */
#include "services/k_proxy/store_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util/b64url.h"
#include "util/err.h"

static uint64_t hash_word(const uint8_t hash[KSVC_SHA256_LEN])
{
    uint64_t w;

    memcpy(&w, hash, sizeof(w)); /* SHA-256 output: uniform, and no caller picks it */
    return w;
}

struct stripe *memtab_stripe_of(struct kpx_store *s, const uint8_t hash[KSVC_SHA256_LEN])
{
    return &s->stripes[hash_word(hash) % STRIPES];
}

static size_t bucket_index(const struct stripe *st, const uint8_t hash[KSVC_SHA256_LEN])
{
    return (size_t)(hash_word(hash) / STRIPES) & (st->nbuckets - 1);
}

/* The session of hash in its stripe (locked by the caller), or NULL. */
struct mem_session *memtab_find(const struct stripe *st, const uint8_t hash[KSVC_SHA256_LEN])
{
    for (struct mem_session *x = st->buckets[bucket_index(st, hash)]; x != NULL; x = x->next)
        if (CRYPTO_memcmp(x->hash, hash, KSVC_SHA256_LEN) == 0)
            return x;
    return NULL;
}

/* Doubles the buckets of a full stripe; on allocation failure the chains
 * just grow longer. */
static void stripe_grow(struct stripe *st)
{
    size_t n = st->nbuckets * 2;
    struct mem_session **b = calloc(n, sizeof(*b));

    if (b == NULL)
        return;
    for (size_t i = 0; i < st->nbuckets; i++) {
        struct mem_session *x = st->buckets[i], *next;
        for (; x != NULL; x = next) {
            next = x->next;
            size_t j = (size_t)(hash_word(x->hash) / STRIPES) & (n - 1);
            x->next = b[j];
            b[j] = x;
        }
    }
    free(st->buckets);
    st->buckets = b;
    st->nbuckets = n;
}

static void stripe_link(struct kpx_store *s, struct mem_session *x)
{
    struct stripe *st = memtab_stripe_of(s, x->hash);

    pthread_rwlock_wrlock(&st->lock);
    if (st->count >= st->nbuckets)
        stripe_grow(st);
    size_t i = bucket_index(st, x->hash);
    x->next = st->buckets[i];
    st->buckets[i] = x;
    st->count++;
    pthread_rwlock_unlock(&st->lock);
}

/* Unlinks x from its stripe and marks it dead; false when it was not there. */
bool memtab_unlink(struct kpx_store *s, struct mem_session *x)
{
    struct stripe *st = memtab_stripe_of(s, x->hash);
    bool found = false;

    pthread_rwlock_wrlock(&st->lock);
    for (struct mem_session **pp = &st->buckets[bucket_index(st, x->hash)]; *pp != NULL;
         pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            x->next = NULL;
            st->count--;
            found = true;
            break;
        }
    }
    atomic_store(&x->dead, 1);
    pthread_rwlock_unlock(&st->lock);
    return found;
}

static void heap_set(struct kpx_store *s, size_t i, struct mem_session *x)
{
    s->heap[i] = x;
    x->heap_pos = i;
}

static void heap_up(struct kpx_store *s, size_t i)
{
    struct mem_session *x = s->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (s->heap[parent]->expires_at <= x->expires_at)
            break;
        heap_set(s, i, s->heap[parent]);
        i = parent;
    }
    heap_set(s, i, x);
}

static void heap_down(struct kpx_store *s, size_t i)
{
    struct mem_session *x = s->heap[i];

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->heap_len)
            break;
        if (c + 1 < s->heap_len && s->heap[c + 1]->expires_at < s->heap[c]->expires_at)
            c++;
        if (s->heap[c]->expires_at >= x->expires_at)
            break;
        heap_set(s, i, s->heap[c]);
        i = c;
    }
    heap_set(s, i, x);
}

/* Room for one more entry (heap_lock held). */
static int heap_reserve(struct kpx_store *s)
{
    size_t cap;
    struct mem_session **h;

    if (s->heap_len < s->heap_cap)
        return 0;
    cap = s->heap_cap > 0 ? s->heap_cap * 2 : 1024;
    if ((h = realloc(s->heap, cap * sizeof(*h))) == NULL)
        return -1;
    s->heap = h;
    s->heap_cap = cap;
    return 0;
}

/* After heap_reserve (heap_lock held). */
static void heap_push(struct kpx_store *s, struct mem_session *x)
{
    heap_set(s, s->heap_len++, x);
    heap_up(s, s->heap_len - 1);
}

void memtab_heap_remove(struct kpx_store *s, struct mem_session *x)
{
    size_t i = x->heap_pos;

    if (i >= s->heap_len || s->heap[i] != x)
        return;
    s->heap_len--;
    if (i == s->heap_len)
        return;
    struct mem_session *last = s->heap[s->heap_len];
    heap_set(s, i, last);
    heap_up(s, i);
    heap_down(s, last->heap_pos);
}

/* Entries expired at now (heap_lock held): a walk of the heap's top that
 * stops at live entries, so it costs what is waiting to be swept. */
int64_t memtab_count_expired(const struct kpx_store *s, int64_t now)
{
    size_t stack[2 * 64 + 2], top = 0;
    int64_t n = 0;

    if (s->heap_len > 0 && s->heap[0]->expires_at <= now)
        stack[top++] = 0;
    while (top > 0) {
        size_t i = stack[--top];
        n++;
        for (size_t c = 2 * i + 1; c <= 2 * i + 2 && c < s->heap_len; c++)
            if (s->heap[c]->expires_at <= now && top < sizeof(stack) / sizeof(stack[0]))
                stack[top++] = c;
    }
    return n;
}

/* Queues x to be freed by the next flush (x already unlinked). */
void memtab_retire(struct kpx_store *s, struct mem_session *x)
{
    struct mem_session *head = atomic_load(&s->retired);

    do
        x->next = head;
    while (!atomic_compare_exchange_weak(&s->retired, &head, x));
}

/* Queues x's count for the next flush, once per flush. */
void memtab_mark_dirty(struct kpx_store *s, struct mem_session *x)
{
    struct mem_session *head;

    if (atomic_exchange(&x->dirty, 1) != 0)
        return;
    head = atomic_load(&s->dirty);
    do
        x->dirty_next = head;
    while (!atomic_compare_exchange_weak(&s->dirty, &head, x));
}

void memtab_free(struct mem_session *x)
{
    OPENSSL_cleanse(x->hash, sizeof(x->hash));
    free(x);
}

void memtab_free_list(struct mem_session *x)
{
    struct mem_session *next;

    for (; x != NULL; x = next) {
        next = x->next;
        memtab_free(x);
    }
}

/* The opaque reference of a session id, as ksvc_session_ref makes it:
 * base64url(HMAC-SHA256(ref_key, id))[0..22). */
static int make_ref(struct kpx_store *s, const char *id, char out[KPX_REF_LEN + 1])
{
    uint8_t mac[32];
    char b64[48];
    size_t n = 0;
    int ok;

    pthread_mutex_lock(&s->ref_lock);
    ok = s->ref_ctx != NULL && EVP_MAC_init(s->ref_ctx, NULL, 0, NULL) == 1 &&
         EVP_MAC_update(s->ref_ctx, (const unsigned char *)id, strlen(id)) == 1 &&
         EVP_MAC_final(s->ref_ctx, mac, &n, sizeof(mac)) == 1 && n == sizeof(mac);
    pthread_mutex_unlock(&s->ref_lock);
    ok = ok && kcu_b64url_encode(mac, sizeof(mac), b64, sizeof(b64)) >= KPX_REF_LEN;
    OPENSSL_cleanse(mac, sizeof(mac));
    if (!ok)
        return -1;
    memcpy(out, b64, KPX_REF_LEN);
    out[KPX_REF_LEN] = '\0';
    return 0;
}

int memtab_ref_setup(struct kpx_store *s, char *err, size_t errlen)
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };

    if ((s->ref_mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
        (s->ref_ctx = EVP_MAC_CTX_new(s->ref_mac)) == NULL ||
        EVP_MAC_init(s->ref_ctx, s->ref_key, sizeof(s->ref_key), params) != 1) {
        kcu_set_err(err, errlen, "cannot set up HMAC-SHA256 for the session references");
        return -1;
    }
    return 0;
}

/* A session object for a row or a login; NULL when out of memory. */
struct mem_session *memtab_new(struct kpx_store *s, const char *id, const uint8_t *hash,
                               const char *username, const char *auth_mode, int64_t created_at,
                               int64_t expires_at, int64_t requests)
{
    size_t nu = strlen(username), na = strlen(auth_mode);
    struct mem_session *x = calloc(1, sizeof(*x) + nu + 1 + na + 1);

    if (x == NULL)
        return NULL;
    memcpy(x->names, username, nu + 1);
    memcpy(x->names + nu + 1, auth_mode, na + 1);
    x->auth_mode = x->names + nu + 1;
    memcpy(x->hash, hash, KSVC_SHA256_LEN);
    snprintf(x->id, sizeof(x->id), "%s", id);
    x->created_at = created_at;
    x->expires_at = expires_at;
    atomic_init(&x->requests, requests);
    atomic_init(&x->dirty, 0);
    atomic_init(&x->dead, 0);
    if (make_ref(s, x->id, x->ref) != 0) {
        free(x);
        return NULL;
    }
    return x;
}

void memtab_session_out(const struct mem_session *x, int64_t requests, struct kpx_session *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    memcpy(out->id, x->id, sizeof(out->id));
    snprintf(out->username, sizeof(out->username), "%s", x->names);
    snprintf(out->auth_mode, sizeof(out->auth_mode), "%s", x->auth_mode);
    out->created_at = x->created_at;
    out->expires_at = x->expires_at;
    out->requests = requests;
    memcpy(out->ref, x->ref, sizeof(out->ref));
}

/* Links a new session into the table and the heap (db_lock held, heap
 * room reserved). */
void memtab_insert(struct kpx_store *s, struct mem_session *x)
{
    stripe_link(s, x);
    pthread_mutex_lock(&s->heap_lock);
    heap_push(s, x);
    pthread_mutex_unlock(&s->heap_lock);
}

/* Unlinks x from the table and the heap and retires it (db_lock held). */
void memtab_remove(struct kpx_store *s, struct mem_session *x)
{
    if (!memtab_unlink(s, x))
        return;
    pthread_mutex_lock(&s->heap_lock);
    memtab_heap_remove(s, x);
    pthread_mutex_unlock(&s->heap_lock);
    memtab_retire(s, x);
}

int memtab_make_room(struct kpx_store *s)
{
    pthread_mutex_lock(&s->heap_lock);
    int rc = heap_reserve(s);
    pthread_mutex_unlock(&s->heap_lock);
    return rc;
}
