/* k_proxy's session store at 100k sessions: loaded at open, every token
 * found with its count, expiry swept in batches earliest first, a user's
 * sessions revoked through the username index, and all of it durable
 * across close and reopen. Checks correctness only: nothing here is timed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "services/common/crypto.h"
#include "services/k_proxy/store.h"
#include "util/b64url.h"

#define NOW 1700000000
#define N 100000
#define EARLY (N / 2)  /* sessions 0 .. EARLY-1 expire at NOW + 100 */
#define USERS 1000     /* session i belongs to user<i % USERS> */
#define TOUCH_EVERY 10 /* sessions touched once more */
#define REVOKED_USER 7 /* its sessions end with the user */

typedef char token_t[KPX_TOKEN_BUF];

struct fixture {
    char dir[128], db[256];
    token_t *tokens;
};

static void token_of(int i, token_t out)
{
    uint8_t seed[32];
    char in[32];

    snprintf(in, sizeof(in), "scale-session-%d", i);
    assert_int_equal(ksvc_sha256(in, strlen(in), seed), 0);
    assert_int_equal(kcu_b64url_encode(seed, sizeof(seed), out, KPX_TOKEN_BUF), KPX_TOKEN_LEN);
}

static int64_t expiry_of(int i)
{
    return i < EARLY ? NOW + 100 : NOW + 10000;
}

/* N session rows written straight into a new store's file. */
static void preload(struct fixture *f)
{
    char err[256];
    struct kpx_store *s = kpx_store_open(f->db, err, sizeof(err));
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    assert_non_null(s);
    kpx_store_close(s);
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO sessions (id, token_hash, username, "
                                        "auth_mode, created_at, expires_at, requests) VALUES "
                                        "(printf('%032x', ?1), ?2, 'user' || (?1 % 1000), "
                                        "'card_probe', ?3, ?4, ?1 % 7)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (int i = 0; i < N; i++) {
        uint8_t hash[KSVC_SHA256_LEN];
        token_of(i, f->tokens[i]);
        assert_int_equal(ksvc_sha256(f->tokens[i], KPX_TOKEN_LEN, hash), 0);
        assert_int_equal(sqlite3_bind_int(st, 1, i), SQLITE_OK);
        assert_int_equal(sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_TRANSIENT), SQLITE_OK);
        assert_int_equal(sqlite3_bind_int64(st, 3, NOW), SQLITE_OK);
        assert_int_equal(sqlite3_bind_int64(st, 4, expiry_of(i)), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static int64_t row_count(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sessions", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static bool revoked(int i)
{
    return i % USERS == REVOKED_USER;
}

/* What a lookup of session i must answer after the sweep and revocation. */
static void expect_after(struct kpx_store *s, const struct fixture *f, int i)
{
    struct kpx_session x;
    char err[256], user[16];
    int rc = kpx_store_session_lookup(s, f->tokens[i], NOW, &x, err, sizeof(err));

    if (i < EARLY || revoked(i)) {
        if (rc != KPX_STORE_NOT_FOUND)
            print_error("session %d: %d\n", i, rc);
        assert_int_equal(rc, KPX_STORE_NOT_FOUND);
        return;
    }
    if (rc != KPX_STORE_OK)
        print_error("session %d: %s\n", i, err);
    assert_int_equal(rc, KPX_STORE_OK);
    snprintf(user, sizeof(user), "user%d", i % USERS);
    assert_string_equal(x.username, user);
    assert_int_equal(x.expires_at, expiry_of(i));
    assert_int_equal(x.requests, i % 7 + (i % TOUCH_EVERY == 0 ? 1 : 0));
}

static void test_100k_sessions(void **state)
{
    struct fixture f;
    struct kpx_store *s;
    struct kpx_session x;
    struct kpx_user u;
    char err[256], unknown[KPX_TOKEN_BUF];
    token_t extra[100];
    int64_t n = -1, removed = 0, ended = -1;
    int calls = 0;

    (void)state;
    /* tmpfs when there is one: 100k rows are written twice */
    snprintf(f.dir, sizeof(f.dir), "%s/kpx_scale_XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    assert_non_null(mkdtemp(f.dir));
    snprintf(f.db, sizeof(f.db), "%s/k_proxy.db", f.dir);
    f.tokens = calloc(N, sizeof(token_t));
    assert_non_null(f.tokens);
    preload(&f);

    /* loaded at open: every token found, with its count and reference */
    s = kpx_store_open(f.db, err, sizeof(err));
    if (s == NULL)
        print_error("open: %s\n", err);
    assert_non_null(s);
    assert_int_equal(kpx_store_sessions_active(s, NOW, &n, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(n, N);
    assert_int_equal(kpx_store_sessions_active(s, NOW + 100, &n, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(n, N - EARLY);
    for (int i = 0; i < N; i++) {
        int rc = i % TOUCH_EVERY == 0
                     ? kpx_store_session_touch(s, f.tokens[i], NOW, &x, err, sizeof(err))
                     : kpx_store_session_lookup(s, f.tokens[i], NOW, &x, err, sizeof(err));
        if (rc != KPX_STORE_OK)
            print_error("session %d: %s\n", i, err);
        assert_int_equal(rc, KPX_STORE_OK);
        assert_int_equal(x.requests, i % 7 + (i % TOUCH_EVERY == 0 ? 1 : 0));
        assert_int_equal(strlen(x.ref), KPX_REF_LEN);
    }
    memcpy(unknown, f.tokens[0], sizeof(unknown));
    unknown[0] = unknown[0] == 'A' ? 'B' : 'A';
    assert_int_equal(kpx_store_session_lookup(s, unknown, NOW, &x, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    /* the early half expires: swept in batches, never a live one */
    for (;;) {
        int64_t got = 0;
        assert_int_equal(kpx_store_sessions_sweep(s, NOW + 100, 1000, &got, err, sizeof(err)),
                         KPX_STORE_OK);
        assert_true(got <= 1000);
        removed += got;
        calls++;
        if (got == 0)
            break;
    }
    assert_int_equal(removed, EARLY);
    assert_int_equal(calls, EARLY / 1000 + 1);
    /* a user's sessions end with the user: the live ones are counted */
    memset(&u, 0, sizeof(u));
    snprintf(u.username, sizeof(u.username), "user%d", REVOKED_USER);
    snprintf(u.auth_mode, sizeof(u.auth_mode), "card_probe");
    assert_int_equal(kpx_store_user_add(s, &u, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(kpx_store_user_delete(s, u.username, &ended, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(ended, (N - EARLY) / USERS);
    /* logins go on, and are durable at once */
    for (int i = 0; i < 100; i++)
        assert_int_equal(kpx_store_session_create(s, "late", "card_probe", 300, NOW, extra[i], NULL,
                                                  err, sizeof(err)),
                         KPX_STORE_OK);
    for (int i = 0; i < N; i += 97)
        expect_after(s, &f, i);
    assert_int_equal(kpx_store_sessions_active(s, NOW, &n, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(n, N - EARLY - (N - EARLY) / USERS + 100);
    kpx_store_close(s);

    /* and all of it after a reopen: rows, counts written back at close */
    assert_int_equal(row_count(f.db), N - EARLY - (N - EARLY) / USERS + 100);
    s = kpx_store_open(f.db, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(kpx_store_sessions_active(s, NOW, &n, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(n, N - EARLY - (N - EARLY) / USERS + 100);
    for (int i = 0; i < N; i++)
        expect_after(s, &f, i);
    for (int i = 0; i < 100; i++)
        assert_int_equal(kpx_store_session_lookup(s, extra[i], NOW, NULL, err, sizeof(err)),
                         KPX_STORE_OK);
    kpx_store_close(s);

    {
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f.dir);
        assert_int_equal(system(cmd), 0);
    }
    free(f.tokens);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_100k_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
