/* k_proxy's session store: logins/s and lookups/s with a fresh store and
 * with 100k sessions, and their ratios (issue 9's target: logins/s with
 * 100k sessions >= 0.8x a fresh proxy). Rounds alternate between the two
 * stores and the medians are printed, so that a busy machine weighs on both
 * alike. Prints figures; fails only when the store does.
 * usage: bench_kpx_store [DIR]   (file stores in DIR; default $TMPDIR or /tmp) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench/bench_util.h"
#include "services/common/crypto.h"
#include "services/k_proxy/store.h"
#include "util/b64url.h"

#define PRELOAD 100000
#define ROUNDS 7
#define LOGINS 2000    /* per round */
#define LOOKUPS 200000 /* per round */
#define THREADS 4

typedef char token_t[KPX_TOKEN_BUF];

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench_kpx_store: %s: %s\n", what, err);
    exit(1);
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

/* A deterministic token for session i of the preload. */
static void token_of(int i, token_t out)
{
    uint8_t seed[32];
    char in[32];

    snprintf(in, sizeof(in), "bench-session-%d", i);
    if (ksvc_sha256(in, strlen(in), seed) != 0 ||
        kcu_b64url_encode(seed, sizeof(seed), out, KPX_TOKEN_BUF) != KPX_TOKEN_LEN)
        die("token", "sha256 or base64url failed");
}

/* n live sessions written straight into the database of a new store at
 * path, in one transaction (what 100k logins leave behind, made fast). */
static void preload(const char *path, int n, token_t *tokens)
{
    char err[256];
    struct kpx_store *s = kpx_store_open(path, err, sizeof(err));
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t now = now_s();

    if (s == NULL)
        die("open", err);
    kpx_store_close(s);
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO sessions (id, token_hash, username, auth_mode, "
                           "created_at, expires_at) VALUES (printf('%032x', ?1), ?2, "
                           "'user' || ?1, 'card_probe', ?3, ?3 + 3600)",
                           -1, &st, NULL) != SQLITE_OK)
        die("preload", sqlite3_errmsg(db));
    for (int i = 0; i < n; i++) {
        uint8_t hash[KSVC_SHA256_LEN];
        token_of(i, tokens[i]);
        if (ksvc_sha256(tokens[i], KPX_TOKEN_LEN, hash) != 0 ||
            sqlite3_bind_int(st, 1, i) != SQLITE_OK ||
            sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_TRANSIENT) != SQLITE_OK ||
            sqlite3_bind_int64(st, 3, now) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
            die("preload", sqlite3_errmsg(db));
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        die("preload", sqlite3_errmsg(db));
    sqlite3_close(db);
}

static struct kpx_store *open_started(const char *path)
{
    char err[256];
    struct kpx_store *s = kpx_store_open(path, err, sizeof(err));

    if (s == NULL)
        die("open", err);
    if (kpx_store_start(s, 1000, err, sizeof(err)) != KPX_STORE_OK) /* as k_proxy runs it */
        die("start", err);
    return s;
}

/* n logins (session creates, as /session/login makes them); per second */
static double logins(struct kpx_store *s, int n, token_t *tokens)
{
    char err[256];
    token_t tok;
    double t0 = wall_seconds();

    for (int i = 0; i < n; i++)
        if (kpx_store_session_create(s, "alice", "card_probe", 3600, now_s(),
                                     tokens != NULL ? tokens[i] : tok, NULL, err,
                                     sizeof(err)) != KPX_STORE_OK)
            die("login", err);
    return n / (wall_seconds() - t0);
}

struct toucher {
    struct kpx_store *s;
    token_t *tokens;
    int ntokens, n;
    unsigned seed;
};

static void *touch_loop(void *arg)
{
    struct toucher *t = arg;
    struct kpx_session x;
    int64_t now = now_s();

    for (int i = 0; i < t->n; i++) {
        int k = (int)(rand_r(&t->seed) % (unsigned)t->ntokens);
        if (kpx_store_session_touch(t->s, t->tokens[k], now, &x, NULL, 0) != KPX_STORE_OK)
            die("touch", "a live session was not found");
    }
    return NULL;
}

/* LOOKUPS touches (the counter path) of random tokens by nthreads; per second */
static double lookups(struct kpx_store *s, token_t *tokens, int ntokens, int nthreads)
{
    struct toucher t[THREADS];
    pthread_t th[THREADS];
    double t0 = wall_seconds();

    for (int i = 0; i < nthreads; i++) {
        t[i] = (struct toucher){s, tokens, ntokens, LOOKUPS / nthreads, (unsigned)i + 1};
        if (pthread_create(&th[i], NULL, touch_loop, &t[i]) != 0)
            die("threads", "pthread_create failed");
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    return LOOKUPS / (wall_seconds() - t0);
}

/* microseconds per sessions_active (what /healthz and /metrics read) */
static double active_us(struct kpx_store *s)
{
    int64_t n = 0;
    double t0 = wall_seconds();

    for (int i = 0; i < 1000; i++)
        kpx_store_sessions_active(s, now_s(), &n, NULL, 0);
    return (wall_seconds() - t0) * 1000.0;
}

static void remove_db(const char *path)
{
    char p[400];

    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[256], fresh_path[300], big_path[300], cmd[320];
    token_t *tokens = calloc(PRELOAD, sizeof(token_t)),
            *fresh_tokens = calloc(LOGINS, sizeof(token_t));
    double login0[ROUNDS], login1[ROUNDS], look0[ROUNDS], look1[ROUNDS], lookt0[ROUNDS],
        lookt1[ROUNDS], act0 = 0, act1 = 0;

    if (tokens == NULL || fresh_tokens == NULL)
        die("memory", "calloc failed");
    snprintf(dir, sizeof(dir), "%s/bench_kpx_store.XXXXXX", base);
    if (mkdtemp(dir) == NULL)
        die(dir, "mkdtemp failed");
    snprintf(fresh_path, sizeof(fresh_path), "%s/fresh.db", dir);
    snprintf(big_path, sizeof(big_path), "%s/big.db", dir);

    double t0 = wall_seconds();
    preload(big_path, PRELOAD, tokens);
    double preload_s = wall_seconds() - t0;
    t0 = wall_seconds();
    struct kpx_store *big = open_started(big_path);
    double load_s = wall_seconds() - t0;

    /* logins first, alternating stores; then lookups (whose request counts
     * the background thread writes back) */
    for (int r = 0; r < ROUNDS; r++) {
        remove_db(fresh_path);
        struct kpx_store *fresh = open_started(fresh_path);
        login0[r] = logins(fresh, LOGINS, fresh_tokens);
        login1[r] = logins(big, LOGINS, NULL);
        kpx_store_close(fresh);
    }
    struct kpx_store *fresh = open_started(fresh_path);
    for (int r = 0; r < ROUNDS; r++) {
        look0[r] = lookups(fresh, fresh_tokens, LOGINS, 1);
        look1[r] = lookups(big, tokens, PRELOAD, 1);
        lookt0[r] = lookups(fresh, fresh_tokens, LOGINS, THREADS);
        lookt1[r] = lookups(big, tokens, PRELOAD, THREADS);
    }
    act0 = active_us(fresh);
    act1 = active_us(big);
    kpx_store_close(fresh);
    kpx_store_close(big);

    double l0 = median(login0, ROUNDS), l1 = median(login1, ROUNDS);
    double k0 = median(look0, ROUNDS), k1 = median(look1, ROUNDS);
    double kt0 = median(lookt0, ROUNDS), kt1 = median(lookt1, ROUNDS);
    printf("kpx_store, file stores in %s; medians of %d rounds\n", base, ROUNDS);
    printf("  logins/s            fresh %9.0f   100k sessions %9.0f   ratio %.2f (target >= "
           "0.8)\n",
           l0, l1, l1 / l0);
    printf("  lookups/s, 1 thread fresh %9.0f   100k sessions %9.0f   ratio %.2f\n", k0, k1,
           k1 / k0);
    printf("  lookups/s, %d threads fresh %7.0f   100k sessions %9.0f   ratio %.2f\n", THREADS, kt0,
           kt1, kt1 / kt0);
    printf("  live-session count (/healthz): fresh %.2f us, 100k sessions %.2f us\n", act0, act1);
    printf("  100k sessions written in %.2f s, loaded at open in %.3f s\n", preload_s, load_s);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    free(tokens);
    free(fresh_tokens);
    return system(cmd) == 0 ? 0 : 1;
}
