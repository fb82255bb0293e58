/* Signed k_proxy -> k_server requests and k_server's per-instance replay
 * windows (see upstream.h). */
#include "services/common/upstream.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "services/common/crypto.h"
#include "util/b64url.h"
#include "util/hex.h"
#include "util/num.h"

#define SCHEME "KC-HMAC-SHA256 "
/* The canonical string's first line: KC1 signed a random nonce, KC2 the
 * instance and its sequence number. */
#define VERSION_LINE "KC2"
#define SEQ_DIGITS_MAX 19 /* below 10^19 < 2^64 */
#define BUCKETS 4096

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
    case KSVC_UPSTREAM_STATE_FAILED:
        return "state_failed";
    case KSVC_UPSTREAM_TOO_MANY:
        return "too_many_instances";
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

/* A text built on the stack, piece by piece: on both ends of every counter
 * call, where printf's parsing of a format showed in the profile. */
struct text {
    char *buf;
    size_t len, cap; /* cap includes the terminating NUL */
    bool full;       /* a piece did not fit: the text is refused */
};

static void text_put(struct text *t, const char *s, size_t n)
{
    if (t->full || n >= t->cap - t->len) {
        t->full = true;
        return;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void text_str(struct text *t, const char *s)
{
    text_put(t, s, strlen(s));
}

static void text_u64(struct text *t, uint64_t v)
{
    char digits[KCU_U64_DEC_MAX];
    text_put(t, digits, kcu_format_u64(v, digits));
}

static void text_ll(struct text *t, long long v)
{
    if (v < 0) {
        text_put(t, "-", 1);
        text_u64(t, (uint64_t)0 - (uint64_t)v);
    } else {
        text_u64(t, (uint64_t)v);
    }
}

/* hex(SHA-256) of the empty body, which every counter call has: made once */
static pthread_once_t empty_digest_once = PTHREAD_ONCE_INIT;
static char empty_digest_hex[65];

static void empty_digest_make(void)
{
    uint8_t digest[32];
    if (ksvc_sha256("", 0, digest) == 0)
        kcu_hex_encode(digest, sizeof(digest), empty_digest_hex);
}

/* hex(SHA-256(body)) into out */
static int body_digest_hex(const void *body, size_t body_len, char out[65])
{
    if (body_len == 0) {
        pthread_once(&empty_digest_once, empty_digest_make);
        if (empty_digest_hex[0] != '\0') {
            memcpy(out, empty_digest_hex, sizeof(empty_digest_hex));
            return 0;
        }
    }
    uint8_t digest[32];
    if (ksvc_sha256(body_len ? body : "", body_len, digest) != 0)
        return -1;
    kcu_hex_encode(digest, sizeof(digest), out);
    return 0;
}

/* HMAC over "KC2\n" METHOD "\n" PATH "\n" ts "\n" hex(instance) "\n" seq "\n"
 * ref "\n" hex(SHA-256(body)), built on the stack: no heap per request. */
static int signature(const uint8_t key[KSVC_UPSTREAM_KEY_LEN], const char *method, const char *path,
                     long long ts, const uint8_t instance[KSVC_UPSTREAM_INSTANCE_LEN], uint64_t seq,
                     const char *ref, const void *body, size_t body_len, uint8_t sig[32])
{
    char digest_hex[65], instance_hex[2 * KSVC_UPSTREAM_INSTANCE_LEN + 1], msg[1024];
    if (body_digest_hex(body, body_len, digest_hex) != 0)
        return -1;
    kcu_hex_encode(instance, KSVC_UPSTREAM_INSTANCE_LEN, instance_hex);
    struct text t = {.buf = msg, .cap = sizeof(msg)};
    text_str(&t, VERSION_LINE "\n");
    text_str(&t, method);
    text_put(&t, "\n", 1);
    text_str(&t, path);
    text_put(&t, "\n", 1);
    text_ll(&t, ts);
    text_put(&t, "\n", 1);
    text_str(&t, instance_hex);
    text_put(&t, "\n", 1);
    text_u64(&t, seq);
    text_put(&t, "\n", 1);
    text_str(&t, ref);
    text_put(&t, "\n", 1);
    text_str(&t, digest_hex);
    if (t.full)
        return -1; /* only an absurd path gets here: it is refused */
    return ksvc_hmac_sha256(key, KSVC_UPSTREAM_KEY_LEN, msg, t.len, sig);
}

static bool seq_valid(uint64_t seq)
{
    return seq >= 1 && seq <= UINT64_C(9999999999999999999);
}

int ksvc_upstream_sign(const uint8_t key[KSVC_UPSTREAM_KEY_LEN],
                       const uint8_t instance[KSVC_UPSTREAM_INSTANCE_LEN], uint64_t seq,
                       const char *method, const char *path, const char *ref, const void *body,
                       size_t body_len, time_t now, char *header, size_t cap)
{
    uint8_t sig[32];
    char sig_hex[65], instance_hex[2 * KSVC_UPSTREAM_INSTANCE_LEN + 1];
    if (!ref_valid(ref) || !seq_valid(seq) || now < 0 ||
        signature(key, method, path, (long long)now, instance, seq, ref, body, body_len, sig) != 0)
        return -1;
    kcu_hex_encode(sig, sizeof(sig), sig_hex);
    kcu_hex_encode(instance, KSVC_UPSTREAM_INSTANCE_LEN, instance_hex);
    if (cap == 0)
        return -1;
    struct text t = {.buf = header, .cap = cap};
    text_str(&t, SCHEME "ts=");
    text_ll(&t, (long long)now);
    text_str(&t, ", inst=");
    text_str(&t, instance_hex);
    text_str(&t, ", seq=");
    text_u64(&t, seq);
    text_str(&t, ", ref=");
    text_str(&t, ref);
    text_str(&t, ", sig=");
    text_str(&t, sig_hex);
    return t.full ? -1 : 0;
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

static bool all_digits(const char *s)
{
    return s[0] != '\0' && strspn(s, "0123456789") == strlen(s);
}

enum ksvc_upstream_verdict ksvc_upstream_parse(const char *header, struct ksvc_upstream_auth *a)
{
    memset(a, 0, sizeof(*a));
    if (header == NULL || strncmp(header, SCHEME, strlen(SCHEME)) != 0)
        return KSVC_UPSTREAM_UNSIGNED;
    if (strlen(header) > KSVC_UPSTREAM_HEADER_MAX)
        return KSVC_UPSTREAM_MALFORMED;
    const char *p = header + strlen(SCHEME);
    char ts[24], inst[2 * KSVC_UPSTREAM_INSTANCE_LEN + 1], seq[SEQ_DIGITS_MAX + 1], sig[65];
    if (!take_param(&p, "ts", ts, sizeof(ts)) || !take_param(&p, "inst", inst, sizeof(inst)) ||
        !take_param(&p, "seq", seq, sizeof(seq)) ||
        !take_param(&p, "ref", a->ref, sizeof(a->ref)) ||
        !take_param(&p, "sig", sig, sizeof(sig)) || *p != '\0')
        return KSVC_UPSTREAM_MALFORMED;
    if (!all_digits(ts) || strlen(ts) > 18)
        return KSVC_UPSTREAM_MALFORMED;
    a->ts = strtoll(ts, NULL, 10);
    /* one spelling per number: no sign, no leading zero, at most 19 digits */
    if (!all_digits(seq) || seq[0] == '0')
        return KSVC_UPSTREAM_MALFORMED;
    a->seq = strtoull(seq, NULL, 10);
    if (kcu_hex_decode_exact(inst, a->instance, sizeof(a->instance), NULL, 0) != 0 ||
        !ref_valid(a->ref) || kcu_hex_decode_exact(sig, a->sig, sizeof(a->sig), NULL, 0) != 0 ||
        !seq_valid(a->seq))
        return KSVC_UPSTREAM_MALFORMED;
    return KSVC_UPSTREAM_OK;
}

enum ksvc_upstream_verdict ksvc_upstream_authenticate(const uint8_t key[KSVC_UPSTREAM_KEY_LEN],
                                                      const char *header, const char *method,
                                                      const char *path, const void *body,
                                                      size_t body_len, time_t now,
                                                      struct ksvc_upstream_auth *a)
{
    enum ksvc_upstream_verdict v = ksvc_upstream_parse(header, a);
    if (v != KSVC_UPSTREAM_OK)
        return v;
    uint8_t want[32];
    if (signature(key, method, path, a->ts, a->instance, a->seq, a->ref, body, body_len, want) != 0)
        return KSVC_UPSTREAM_BAD_SIG;
    bool match = ksvc_ct_equal(want, a->sig, sizeof(want));
    OPENSSL_cleanse(want, sizeof(want));
    if (!match)
        return KSVC_UPSTREAM_BAD_SIG;
    if (a->ts > (long long)now + KSVC_UPSTREAM_SKEW_S ||
        a->ts < (long long)now - KSVC_UPSTREAM_SKEW_S)
        return KSVC_UPSTREAM_STALE;
    return KSVC_UPSTREAM_OK;
}

/* ---- one instance's window ---- */

#define WINDOW_WORDS (KSVC_REPLAY_WINDOW / 64)

static void bit_clear(struct ksvc_replay_window *w, uint64_t seq)
{
    uint64_t i = seq % KSVC_REPLAY_WINDOW;
    w->bits[i / 64] &= ~(UINT64_C(1) << (i % 64));
}

static bool bit_test_and_set(struct ksvc_replay_window *w, uint64_t seq)
{
    uint64_t i = seq % KSVC_REPLAY_WINDOW, mask = UINT64_C(1) << (i % 64);
    bool was = (w->bits[i / 64] & mask) != 0;
    w->bits[i / 64] |= mask;
    return was;
}

enum ksvc_upstream_verdict ksvc_replay_window_spend(struct ksvc_replay_window *w, uint64_t seq)
{
    if (seq == 0)
        return KSVC_UPSTREAM_MALFORMED;
    if (seq > w->high) {
        /* the bitmap covers (high - WINDOW, high]: clear what the new mark
         * brings into it, which still holds numbers of the old lap */
        if (seq - w->high >= KSVC_REPLAY_WINDOW)
            memset(w->bits, 0, sizeof(w->bits));
        else
            for (uint64_t s = w->high + 1; s < seq; s++)
                bit_clear(w, s);
        bit_clear(w, seq);
        bit_test_and_set(w, seq);
        w->high = seq;
        return KSVC_UPSTREAM_OK;
    }
    if (w->high - seq >= KSVC_REPLAY_WINDOW)
        return KSVC_UPSTREAM_REPLAYED; /* below the window: cannot tell, so refuse */
    return bit_test_and_set(w, seq) ? KSVC_UPSTREAM_REPLAYED : KSVC_UPSTREAM_OK;
}

/* ---- the table of instances ---- */

enum instance_state {
    INSTANCE_PENDING, /* being recorded durably; its requests wait */
    INSTANCE_LIVE,
    INSTANCE_CLOSED, /* from the previous run: refuse everything */
};

struct instance {
    struct instance *next; /* bucket chain */
    uint8_t id[KSVC_UPSTREAM_INSTANCE_LEN];
    enum instance_state state;
    int64_t gen;
    long long max_ts;       /* LIVE: the newest timestamp accepted */
    long long closed_until; /* CLOSED: refused until then (k_server's clock) */
    struct ksvc_replay_window window;
};

struct ksvc_replay_table {
    pthread_mutex_t lock;
    pthread_cond_t recorded; /* a PENDING instance became LIVE or went away */
    struct instance *bucket[BUCKETS];
    size_t count;
    int64_t next_gen;
    struct ksvc_replay_persist persist;
    bool persistent;
};

struct ksvc_replay_table *ksvc_replay_table_new(const struct ksvc_replay_persist *persist)
{
    struct ksvc_replay_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->recorded, NULL);
    t->next_gen = 1;
    if (persist != NULL) {
        t->persist = *persist;
        t->persistent = true;
    }
    return t;
}

void ksvc_replay_table_free(struct ksvc_replay_table *t)
{
    if (t == NULL)
        return;
    for (size_t b = 0; b < BUCKETS; b++)
        for (struct instance *i = t->bucket[b], *next; i != NULL; i = next) {
            next = i->next;
            free(i);
        }
    pthread_cond_destroy(&t->recorded);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* Instance ids are random (and only a holder of the key can make k_server
 * see one): their bytes are the hash. */
static size_t bucket_of(const uint8_t id[KSVC_UPSTREAM_INSTANCE_LEN])
{
    uint32_t h;
    memcpy(&h, id, sizeof(h));
    return h % BUCKETS;
}

static struct instance *find(struct ksvc_replay_table *t,
                             const uint8_t id[KSVC_UPSTREAM_INSTANCE_LEN])
{
    for (struct instance *i = t->bucket[bucket_of(id)]; i != NULL; i = i->next)
        if (memcmp(i->id, id, KSVC_UPSTREAM_INSTANCE_LEN) == 0)
            return i;
    return NULL;
}

static struct instance *insert(struct ksvc_replay_table *t,
                               const uint8_t id[KSVC_UPSTREAM_INSTANCE_LEN])
{
    struct instance *i = calloc(1, sizeof(*i));
    if (i == NULL)
        return NULL;
    memcpy(i->id, id, KSVC_UPSTREAM_INSTANCE_LEN);
    size_t b = bucket_of(id);
    i->next = t->bucket[b];
    t->bucket[b] = i;
    t->count++;
    return i;
}

static void unlink_instance(struct ksvc_replay_table *t, struct instance *gone)
{
    for (struct instance **p = &t->bucket[bucket_of(gone->id)]; *p != NULL; p = &(*p)->next)
        if (*p == gone) {
            *p = gone->next;
            t->count--;
            return;
        }
}

int ksvc_replay_table_close(struct ksvc_replay_table *t,
                            const uint8_t id[KSVC_UPSTREAM_INSTANCE_LEN], int64_t gen, time_t now)
{
    int rc = 0;
    pthread_mutex_lock(&t->lock);
    struct instance *i = find(t, id);
    if (i == NULL)
        i = insert(t, id);
    if (i == NULL)
        rc = -1;
    else {
        i->state = INSTANCE_CLOSED;
        i->gen = gen;
        i->closed_until = (long long)now + 2 * KSVC_UPSTREAM_SKEW_S + KSVC_REPLAY_MARGIN_S;
        if (gen >= t->next_gen)
            t->next_gen = gen + 1;
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

/* Expired instances are unlinked under the lock into *gone (a list through
 * next); the caller frees them after telling persist, outside the lock. */
static size_t collect_expired(struct ksvc_replay_table *t, time_t now, struct instance **gone)
{
    size_t n = 0;
    for (size_t b = 0; b < BUCKETS; b++)
        for (struct instance **p = &t->bucket[b]; *p != NULL;) {
            struct instance *i = *p;
            bool expired =
                (i->state == INSTANCE_LIVE &&
                 i->max_ts < (long long)now - KSVC_UPSTREAM_SKEW_S - KSVC_REPLAY_MARGIN_S) ||
                (i->state == INSTANCE_CLOSED && (long long)now > i->closed_until);
            if (!expired) {
                p = &i->next;
                continue;
            }
            *p = i->next;
            t->count--;
            i->next = *gone;
            *gone = i;
            n++;
        }
    return n;
}

static void forget_and_free(struct ksvc_replay_table *t, struct instance *gone, size_t n)
{
    uint8_t(*ids)[KSVC_UPSTREAM_INSTANCE_LEN] = NULL;
    int64_t *gens = NULL;
    if (t->persistent && n > 0) {
        ids = calloc(n, sizeof(*ids));
        gens = calloc(n, sizeof(*gens));
    }
    size_t k = 0;
    for (struct instance *i = gone, *next; i != NULL; i = next) {
        next = i->next;
        if (ids != NULL && gens != NULL && k < n) {
            memcpy(ids[k], i->id, sizeof(ids[k]));
            gens[k++] = i->gen;
        }
        free(i);
    }
    /* out of memory: the records stay, which only keeps refusing instances
     * that no longer send anything */
    if (k > 0)
        t->persist.forget(t->persist.arg, (const uint8_t(*)[KSVC_UPSTREAM_INSTANCE_LEN])ids, gens,
                          k);
    free(ids);
    free(gens);
}

size_t ksvc_replay_table_expire(struct ksvc_replay_table *t, time_t now)
{
    struct instance *gone = NULL;
    pthread_mutex_lock(&t->lock);
    size_t n = collect_expired(t, now, &gone);
    pthread_mutex_unlock(&t->lock);
    forget_and_free(t, gone, n);
    return n;
}

size_t ksvc_replay_table_count(struct ksvc_replay_table *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->count;
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* Makes a new instance LIVE: recorded durably first, without the lock, so
 * that requests of other instances go on meanwhile. Called and returns with
 * the lock held; i may be gone (freed) when this fails. */
static enum ksvc_upstream_verdict admit_new(struct ksvc_replay_table *t, struct instance *i)
{
    i->state = INSTANCE_PENDING;
    i->gen = t->next_gen++;
    if (t->persistent) {
        uint8_t id[KSVC_UPSTREAM_INSTANCE_LEN];
        memcpy(id, i->id, sizeof(id));
        int64_t gen = i->gen;
        pthread_mutex_unlock(&t->lock);
        int rc = t->persist.record(t->persist.arg, id, gen);
        pthread_mutex_lock(&t->lock);
        pthread_cond_broadcast(&t->recorded);
        if (rc != 0) {
            unlink_instance(t, i); /* nobody else touches a PENDING entry */
            free(i);
            return KSVC_UPSTREAM_STATE_FAILED;
        }
    }
    i->state = INSTANCE_LIVE;
    return KSVC_UPSTREAM_OK;
}

enum ksvc_upstream_verdict ksvc_replay_table_spend(struct ksvc_replay_table *t,
                                                   const uint8_t id[KSVC_UPSTREAM_INSTANCE_LEN],
                                                   uint64_t seq, long long ts, time_t now)
{
    enum ksvc_upstream_verdict v = KSVC_UPSTREAM_OK;
    struct instance *gone = NULL;
    size_t ngone = 0;
    pthread_mutex_lock(&t->lock);
    struct instance *i;
    while ((i = find(t, id)) != NULL && i->state == INSTANCE_PENDING)
        pthread_cond_wait(&t->recorded, &t->lock);
    if (i == NULL) {
        if (t->count >= KSVC_REPLAY_MAX_INSTANCES)
            ngone = collect_expired(t, now, &gone);
        if (t->count >= KSVC_REPLAY_MAX_INSTANCES)
            v = KSVC_UPSTREAM_TOO_MANY;
        else if ((i = insert(t, id)) == NULL)
            v = KSVC_UPSTREAM_STATE_FAILED;
        else
            v = admit_new(t, i);
        /* admit_new dropped the lock: i is LIVE, or was freed on failure */
    }
    if (v == KSVC_UPSTREAM_OK) {
        if (i->state == INSTANCE_CLOSED)
            v = KSVC_UPSTREAM_REPLAYED;
        else if ((v = ksvc_replay_window_spend(&i->window, seq)) == KSVC_UPSTREAM_OK &&
                 ts > i->max_ts)
            i->max_ts = ts;
    }
    pthread_mutex_unlock(&t->lock);
    forget_and_free(t, gone, ngone);
    return v;
}

enum ksvc_upstream_verdict ksvc_upstream_verify(const uint8_t key[KSVC_UPSTREAM_KEY_LEN],
                                                struct ksvc_replay_table *table, const char *header,
                                                const char *method, const char *path,
                                                const void *body, size_t body_len, time_t now,
                                                struct ksvc_upstream_auth *a)
{
    enum ksvc_upstream_verdict v =
        ksvc_upstream_authenticate(key, header, method, path, body, body_len, now, a);
    if (v != KSVC_UPSTREAM_OK)
        return v;
    return ksvc_replay_table_spend(table, a->instance, a->seq, a->ts, now);
}

int ksvc_session_ref(const uint8_t ref_key[32], const char *session_id, char out[23])
{
    uint8_t mac[32];
    char b64[48];
    if (ksvc_hmac_sha256(ref_key, 32, session_id, strlen(session_id), mac) != 0 ||
        kcu_b64url_encode(mac, sizeof(mac), b64, sizeof(b64)) < 22)
        return -1;
    memcpy(out, b64, 22);
    out[22] = '\0';
    return 0;
}
