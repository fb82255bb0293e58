/* k_proxy's rate limits and lockouts (limits.h): fixed-size set-associative
 * tables of token buckets and denial counters, keyed by a salted hash. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "services/k_proxy/limits.h"
#include "util/clock.h"
#include "util/rand.h"

#define STRIPES 64
#define SETS_MAX (1u << 20)
#define NS 1000000000.0

struct entry {
    uint64_t key; /* 0: free */
    double tokens;
    int64_t seen_ns;         /* last use: the bucket's refill point and the LRU order */
    int64_t locked_until_ns; /* 0: not locked */
    uint32_t denials;        /* in a row */
    uint32_t locks;          /* lockouts in a row */
};

struct table {
    unsigned sets;
    struct entry *e; /* sets * KPX_LIMIT_WAYS */
    pthread_mutex_t stripe[STRIPES];
};

enum { T_COUNTER_SESSION, T_COUNTER_ADDRESS, T_LOGIN_USER, T_LOGIN_ADDRESS, T_COUNT };

struct kpx_limits {
    struct kpx_limits_cfg cfg;
    EVP_MD *sha256;      /* fetched once: no implicit fetch per call */
    pthread_key_t mdctx; /* each thread's digest context, made once */
    uint8_t salt[16];
    struct table t[T_COUNT];
};

void kpx_limits_cfg_default(struct kpx_limits_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->counter_session = (struct kpx_rate){KPX_COUNTER_SESSION_RATE, KPX_COUNTER_SESSION_BURST};
    cfg->counter_address = (struct kpx_rate){KPX_COUNTER_ADDRESS_RATE, KPX_COUNTER_ADDRESS_BURST};
    cfg->login_user = (struct kpx_rate){KPX_LOGIN_USER_RATE, KPX_LOGIN_USER_BURST};
    cfg->login_address = (struct kpx_rate){KPX_LOGIN_ADDRESS_RATE, KPX_LOGIN_ADDRESS_BURST};
    cfg->lockout_after_user = KPX_LOCKOUT_AFTER_USER;
    cfg->lockout_after_address = KPX_LOCKOUT_AFTER_ADDRESS;
    cfg->lockout_base_ms = KPX_LOCKOUT_BASE_MS;
    cfg->lockout_max_s = KPX_LOCKOUT_MAX_S;
    cfg->sets = KPX_LIMIT_SETS_DEFAULT;
}

const char *kpx_limit_scope_name(enum kpx_limit_scope s)
{
    switch (s) {
    case KPX_LIMIT_SESSION:
        return "session";
    case KPX_LIMIT_ADDRESS:
        return "address";
    case KPX_LIMIT_USER:
        return "user";
    default:
        return "none";
    }
}

int64_t kpx_limits_now_ns(void)
{
    return (int64_t)kcu_now_ns();
}

int kpx_limits_retry_after_s(int64_t wait_ns)
{
    if (wait_ns <= 0)
        return 1;
    int64_t s = (wait_ns + 999999999) / 1000000000;
    return s > 86400 ? 86400 : (int)s;
}

int64_t kpx_limits_lock_ns(unsigned n, unsigned base_ms, unsigned max_s)
{
    int64_t max_ms = (int64_t)max_s * 1000;
    if (n == 0)
        return 0;
    int64_t ms = base_ms;
    for (unsigned i = 1; i < n && ms < max_ms; i++)
        ms *= 2;
    if (ms > max_ms)
        ms = max_ms;
    return ms * 1000000;
}

static bool rate_ok(const struct kpx_rate *r, const char *name, char *err, size_t errlen)
{
    if (!isfinite(r->rate) || !isfinite(r->burst) || r->rate < 0 || r->burst < 0 || r->rate > 1e9 ||
        r->burst > 1e9) {
        snprintf(err, errlen, "%s: a rate and a burst from 0 to 1e9 are needed", name);
        return false;
    }
    return true;
}

static void free_mdctx(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

struct kpx_limits *kpx_limits_new(const struct kpx_limits_cfg *cfg, char *err, size_t errlen)
{
    if (!rate_ok(&cfg->counter_session, "counter per session", err, errlen) ||
        !rate_ok(&cfg->counter_address, "counter per address", err, errlen) ||
        !rate_ok(&cfg->login_user, "login per user", err, errlen) ||
        !rate_ok(&cfg->login_address, "login per address", err, errlen))
        return NULL;
    if (cfg->sets > SETS_MAX) {
        snprintf(err, errlen, "at most %u sets per limit table", SETS_MAX);
        return NULL;
    }
    struct kpx_limits *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->cfg = *cfg;
    if (l->cfg.sets == 0)
        l->cfg.sets = KPX_LIMIT_SETS_DEFAULT;
    if (l->cfg.lockout_base_ms == 0)
        l->cfg.lockout_base_ms = KPX_LOCKOUT_BASE_MS;
    if (l->cfg.lockout_max_s == 0)
        l->cfg.lockout_max_s = KPX_LOCKOUT_MAX_S;
    l->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (l->sha256 == NULL || kcu_random(l->salt, sizeof(l->salt)) != 0) {
        snprintf(err, errlen, "OpenSSL: no SHA-256 or no randomness");
        EVP_MD_free(l->sha256);
        free(l);
        return NULL;
    }
    if (pthread_key_create(&l->mdctx, free_mdctx) != 0) {
        snprintf(err, errlen, "cannot make a thread key");
        EVP_MD_free(l->sha256);
        free(l);
        return NULL;
    }
    for (int i = 0; i < T_COUNT; i++) {
        struct table *t = &l->t[i];
        t->sets = l->cfg.sets;
        t->e = calloc((size_t)t->sets * KPX_LIMIT_WAYS, sizeof(*t->e));
        if (t->e == NULL) {
            snprintf(err, errlen, "out of memory for the limit tables");
            for (int j = 0; j < i; j++) {
                free(l->t[j].e);
                for (int k = 0; k < STRIPES; k++)
                    pthread_mutex_destroy(&l->t[j].stripe[k]);
            }
            pthread_key_delete(l->mdctx);
            EVP_MD_free(l->sha256);
            free(l);
            return NULL;
        }
        for (int k = 0; k < STRIPES; k++)
            pthread_mutex_init(&t->stripe[k], NULL);
    }
    return l;
}

void kpx_limits_free(struct kpx_limits *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < T_COUNT; i++) {
        free(l->t[i].e);
        for (int k = 0; k < STRIPES; k++)
            pthread_mutex_destroy(&l->t[i].stripe[k]);
    }
    /* the calling thread's context; other threads' go with them (or with
     * the process: the key's destructor runs only at thread exit) */
    free_mdctx(pthread_getspecific(l->mdctx));
    pthread_setspecific(l->mdctx, NULL);
    pthread_key_delete(l->mdctx);
    EVP_MD_free(l->sha256);
    OPENSSL_cleanse(l->salt, sizeof(l->salt));
    free(l);
}

const struct kpx_limits_cfg *kpx_limits_cfg(const struct kpx_limits *l)
{
    return &l->cfg;
}

/* The salted hash of a key within a table; never 0 (0 marks a free entry).
 * Salted so that a client cannot aim keys at one set. */
static uint64_t key_hash(const struct kpx_limits *l, int table, const char *key)
{
    uint8_t buf[16 + 1 + 256], md[EVP_MAX_MD_SIZE];
    size_t n = strnlen(key, 256);
    memcpy(buf, l->salt, 16);
    buf[16] = (uint8_t)table;
    memcpy(buf + 17, key, n);
    unsigned mdlen = 0;
    uint64_t h = 0;
    EVP_MD_CTX *ctx = pthread_getspecific(l->mdctx);
    if (ctx == NULL && (ctx = EVP_MD_CTX_new()) != NULL &&
        pthread_setspecific(l->mdctx, ctx) != 0) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    if (ctx != NULL && EVP_DigestInit_ex2(ctx, l->sha256, NULL) == 1 &&
        EVP_DigestUpdate(ctx, buf, 17 + n) == 1 && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 &&
        mdlen >= 8)
        memcpy(&h, md, sizeof(h));
    else if (EVP_Digest(buf, 17 + n, md, &mdlen, l->sha256, NULL) == 1 && mdlen >= 8)
        memcpy(&h, md, sizeof(h));
    OPENSSL_cleanse(buf, sizeof(buf));
    return h == 0 ? 1 : h;
}

/* Whether an entry still holds anything: tokens spent, a lock, denials. */
static bool entry_idle(const struct entry *e, const struct kpx_rate *r, int64_t now_ns)
{
    if (e->denials != 0 || e->locks != 0 || e->locked_until_ns > now_ns)
        return false;
    if (r->rate <= 0)
        return true;
    double refill = e->tokens + (double)(now_ns - e->seen_ns) * r->rate / NS;
    return refill >= r->burst;
}

static double burst_of(const struct kpx_rate *r)
{
    return r->burst < 1 ? 1 : r->burst;
}

/* The entry of key in its set (stripe locked by the caller), taking the
 * least recently used one (an idle one first) for a new key; NULL when
 * create is false and the key is not there. */
static struct entry *find(struct table *t, uint64_t key, const struct kpx_rate *r, int64_t now_ns,
                          bool create)
{
    struct entry *set = &t->e[(size_t)(key % t->sets) * KPX_LIMIT_WAYS];
    struct entry *free_e = NULL, *idle = NULL, *oldest = NULL;
    for (int w = 0; w < KPX_LIMIT_WAYS; w++) {
        struct entry *e = &set[w];
        if (e->key == key)
            return e;
        if (e->key == 0) {
            if (free_e == NULL)
                free_e = e;
            continue;
        }
        if (entry_idle(e, r, now_ns) && (idle == NULL || e->seen_ns < idle->seen_ns))
            idle = e;
        if (oldest == NULL || e->seen_ns < oldest->seen_ns)
            oldest = e;
    }
    if (!create)
        return NULL;
    struct entry *e = free_e ? free_e : idle ? idle : oldest;
    memset(e, 0, sizeof(*e));
    e->key = key;
    e->tokens = burst_of(r);
    e->seen_ns = now_ns;
    return e;
}

static pthread_mutex_t *stripe_of(struct table *t, uint64_t key)
{
    return &t->stripe[(key % t->sets) % STRIPES];
}

/* Takes one token; false with *wait_ns when the bucket is empty. */
static bool take(struct entry *e, const struct kpx_rate *r, int64_t now_ns, int64_t *wait_ns)
{
    if (r->rate <= 0) {
        e->seen_ns = now_ns;
        return true;
    }
    double burst = burst_of(r);
    if (now_ns > e->seen_ns)
        e->tokens += (double)(now_ns - e->seen_ns) * r->rate / NS;
    if (e->tokens > burst)
        e->tokens = burst;
    e->seen_ns = now_ns > e->seen_ns ? now_ns : e->seen_ns;
    if (e->tokens >= 1) {
        e->tokens -= 1;
        return true;
    }
    *wait_ns = (int64_t)((1 - e->tokens) / r->rate * NS) + 1; /* rounded up */
    return false;
}

/* A bucket step in table ti for key; true when allowed. */
static bool bucket(struct kpx_limits *l, int ti, uint64_t key, const struct kpx_rate *r,
                   int64_t now_ns, int64_t *wait_ns)
{
    struct table *t = &l->t[ti];
    pthread_mutex_t *m = stripe_of(t, key);
    pthread_mutex_lock(m);
    bool ok = take(find(t, key, r, now_ns, true), r, now_ns, wait_ns);
    pthread_mutex_unlock(m);
    return ok;
}

/* Gives back the token taken from key when a later scope refused. */
static void refund(struct kpx_limits *l, int ti, uint64_t key, const struct kpx_rate *r)
{
    if (r->rate <= 0)
        return;
    struct table *t = &l->t[ti];
    pthread_mutex_t *m = stripe_of(t, key);
    pthread_mutex_lock(m);
    struct entry *e = find(t, key, r, 0, false);
    if (e != NULL && e->tokens + 1 <= burst_of(r))
        e->tokens += 1;
    pthread_mutex_unlock(m);
}

static void refuse(struct kpx_limit_verdict *v, enum kpx_limit_scope scope, bool locked,
                   int64_t wait_ns)
{
    v->scope = scope;
    v->locked = locked;
    v->retry_after_s = kpx_limits_retry_after_s(wait_ns);
}

/* Two buckets in turn, the first refunded when the second refuses. */
static void two_buckets(struct kpx_limits *l, int t1, const char *k1, enum kpx_limit_scope s1,
                        const struct kpx_rate *r1, int t2, const char *k2, enum kpx_limit_scope s2,
                        const struct kpx_rate *r2, int64_t now_ns, struct kpx_limit_verdict *v)
{
    int64_t wait = 0;
    bool use1 = k1 != NULL && k1[0] != '\0' && r1->rate > 0;
    bool use2 = k2 != NULL && k2[0] != '\0' && r2->rate > 0;
    uint64_t h1 = use1 ? key_hash(l, t1, k1) : 0;
    if (use1 && !bucket(l, t1, h1, r1, now_ns, &wait)) {
        refuse(v, s1, false, wait);
        return;
    }
    if (use2 && !bucket(l, t2, key_hash(l, t2, k2), r2, now_ns, &wait)) {
        if (use1)
            refund(l, t1, h1, r1);
        refuse(v, s2, false, wait);
    }
}

void kpx_limits_counter(struct kpx_limits *l, const char *token, const char *address,
                        int64_t now_ns, struct kpx_limit_verdict *v)
{
    memset(v, 0, sizeof(*v));
    two_buckets(l, T_COUNTER_SESSION, token, KPX_LIMIT_SESSION, &l->cfg.counter_session,
                T_COUNTER_ADDRESS, address, KPX_LIMIT_ADDRESS, &l->cfg.counter_address, now_ns, v);
}

/* The time left of key's lock in table ti, 0 when not locked. */
static int64_t locked_for(struct kpx_limits *l, int ti, const char *key, const struct kpx_rate *r,
                          int64_t now_ns)
{
    if (key == NULL || key[0] == '\0')
        return 0;
    struct table *t = &l->t[ti];
    uint64_t h = key_hash(l, ti, key);
    pthread_mutex_t *m = stripe_of(t, h);
    pthread_mutex_lock(m);
    struct entry *e = find(t, h, r, now_ns, false);
    int64_t left = e != NULL && e->locked_until_ns > now_ns ? e->locked_until_ns - now_ns : 0;
    pthread_mutex_unlock(m);
    return left;
}

void kpx_limits_login(struct kpx_limits *l, const char *username, const char *address,
                      int64_t now_ns, struct kpx_limit_verdict *v)
{
    memset(v, 0, sizeof(*v));
    int64_t left = locked_for(l, T_LOGIN_USER, username, &l->cfg.login_user, now_ns);
    if (left > 0) {
        refuse(v, KPX_LIMIT_USER, true, left);
        return;
    }
    left = locked_for(l, T_LOGIN_ADDRESS, address, &l->cfg.login_address, now_ns);
    if (left > 0) {
        refuse(v, KPX_LIMIT_ADDRESS, true, left);
        return;
    }
    two_buckets(l, T_LOGIN_USER, username, KPX_LIMIT_USER, &l->cfg.login_user, T_LOGIN_ADDRESS,
                address, KPX_LIMIT_ADDRESS, &l->cfg.login_address, now_ns, v);
}

/* One result for key in table ti; true when it started a lockout. */
static bool record(struct kpx_limits *l, int ti, const char *key, const struct kpx_rate *r,
                   unsigned after, enum kpx_limit_result result, int64_t now_ns)
{
    if (key == NULL || key[0] == '\0' || result == KPX_LIMIT_NEUTRAL)
        return false;
    struct table *t = &l->t[ti];
    uint64_t h = key_hash(l, ti, key);
    pthread_mutex_t *m = stripe_of(t, h);
    bool started = false;
    pthread_mutex_lock(m);
    struct entry *e = find(t, h, r, now_ns, result == KPX_LIMIT_DENIAL);
    if (e != NULL && result == KPX_LIMIT_SUCCESS) {
        e->denials = 0;
        e->locks = 0;
        e->locked_until_ns = 0;
    } else if (e != NULL) {
        if (e->denials < UINT32_MAX)
            e->denials++;
        if (after > 0 && e->denials >= after) {
            if (e->locks < 64)
                e->locks++;
            e->locked_until_ns =
                now_ns + kpx_limits_lock_ns(e->locks, l->cfg.lockout_base_ms, l->cfg.lockout_max_s);
            started = true;
        }
        if (now_ns > e->seen_ns)
            e->seen_ns = now_ns;
    }
    pthread_mutex_unlock(m);
    return started;
}

int kpx_limits_login_result(struct kpx_limits *l, const char *username, const char *address,
                            enum kpx_limit_result result, int64_t now_ns)
{
    int n = 0;
    n += record(l, T_LOGIN_USER, username, &l->cfg.login_user, l->cfg.lockout_after_user, result,
                now_ns);
    n += record(l, T_LOGIN_ADDRESS, address, &l->cfg.login_address, l->cfg.lockout_after_address,
                result, now_ns);
    return n;
}

size_t kpx_limits_entries(struct kpx_limits *l, enum kpx_limit_scope scope, bool counter)
{
    int ti = counter ? (scope == KPX_LIMIT_SESSION ? T_COUNTER_SESSION : T_COUNTER_ADDRESS)
                     : (scope == KPX_LIMIT_USER ? T_LOGIN_USER : T_LOGIN_ADDRESS);
    struct table *t = &l->t[ti];
    size_t n = 0;
    for (int k = 0; k < STRIPES; k++)
        pthread_mutex_lock(&t->stripe[k]);
    for (size_t i = 0; i < (size_t)t->sets * KPX_LIMIT_WAYS; i++)
        n += t->e[i].key != 0;
    for (int k = STRIPES - 1; k >= 0; k--)
        pthread_mutex_unlock(&t->stripe[k]);
    return n;
}
