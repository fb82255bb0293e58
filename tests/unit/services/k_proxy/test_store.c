/* k_proxy's store: users, sessions (hashed tokens, expiry, revocation,
 * request counts), the reference key, durability and refusal of files it
 * did not make. */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "services/common/upstream.h"
#include "services/k_proxy/store.h"
#include "services/k_proxy/store_int.h" /* the connection, to make its writes fail */

#define NOW 1700000000

struct tmpdir {
    char dir[128];
    char db[256];
};

static void tmpdir_make(struct tmpdir *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/kpx_store_XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->db, sizeof(t->db), "%s/state/k_proxy.db", t->dir);
}

static void tmpdir_remove(struct tmpdir *t)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    assert_int_equal(system(cmd), 0);
}

/* The stored request count of session id, read behind the store's back
 * on a connection of its own; -1 when there is no such row. */
static int64_t row_requests(const char *path, const char *id)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT requests FROM sessions WHERE id = ?1", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* What a new process finds for token: a store opened afresh on path. */
static int lookup_after_reopen(const char *path, const char *token, int64_t now)
{
    char err[256];
    struct kpx_store *again = kpx_store_open(path, err, sizeof(err));
    assert_non_null(again);
    int rc = kpx_store_session_lookup(again, token, now, NULL, err, sizeof(err));
    kpx_store_close(again);
    return rc;
}

static struct kpx_store *mem_store(void)
{
    char err[256] = "";
    struct kpx_store *s = kpx_store_open(":memory:", err, sizeof(err));

    if (s == NULL)
        print_error("open: %s\n", err);
    assert_non_null(s);
    return s;
}

static void fill_user(struct kpx_user *u, const char *name, int64_t at)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->username, sizeof(u->username), "%s", name);
    u->registered_at = at;
    snprintf(u->auth_mode, sizeof(u->auth_mode), "fido2_assertion");
    u->cred.cred_id_len = 70;
    for (size_t i = 0; i < u->cred.cred_id_len; i++)
        u->cred.cred_id[i] = (uint8_t)(i + 1);
    u->cred.cose_key_len = 77;
    for (size_t i = 0; i < u->cred.cose_key_len; i++)
        u->cred.cose_key[i] = (uint8_t)(0xa0 ^ i);
    u->cred.alg = -7;
    u->cred.sign_count = 4;
    u->cred.user_id_len = KPX_USER_ID_LEN;
    memset(u->cred.user_id, 0x5a, KPX_USER_ID_LEN);
}

static void test_username_valid(void **state)
{
    char long_name[80];

    (void)state;
    assert_true(kpx_username_valid("alice"));
    assert_true(kpx_username_valid("A.b_c-9"));
    assert_true(kpx_username_valid("x"));
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    assert_true(kpx_username_valid(long_name));
    long_name[64] = 'a';
    long_name[65] = '\0';
    assert_false(kpx_username_valid(long_name));
    assert_false(kpx_username_valid(""));
    assert_false(kpx_username_valid(NULL));
    assert_false(kpx_username_valid("al ice"));
    assert_false(kpx_username_valid("alice/.."));
    assert_false(kpx_username_valid("al\xc3\xa9"));
    assert_false(kpx_username_valid("a'b"));
}

static void test_session_create_lookup(void **state)
{
    struct kpx_store *s = mem_store();
    char token[KPX_TOKEN_BUF], token2[KPX_TOKEN_BUF], err[256];
    struct kpx_session a, b;

    (void)state;
    assert_int_equal(
        kpx_store_session_create(s, "alice", "card_probe", 300, NOW, token, &a, err, sizeof(err)),
        KPX_STORE_OK);
    assert_int_equal(strlen(token), KPX_TOKEN_LEN);
    assert_int_equal(
        strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        KPX_TOKEN_LEN);
    assert_int_equal(strlen(a.id), KPX_SESSION_ID_LEN);
    assert_null(strstr(token, a.id));
    assert_int_equal(a.created_at, NOW);
    assert_int_equal(a.expires_at, NOW + 300);
    assert_int_equal(a.requests, 0);

    assert_int_equal(kpx_store_session_lookup(s, token, NOW + 10, &b, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_string_equal(b.id, a.id);
    assert_string_equal(b.username, "alice");
    assert_string_equal(b.auth_mode, "card_probe");
    assert_int_equal(b.created_at, NOW);
    assert_int_equal(b.expires_at, NOW + 300);
    assert_int_equal(b.requests, 0);

    /* a second session gets another token and id */
    assert_int_equal(
        kpx_store_session_create(s, "alice", "card_probe", 300, NOW, token2, &b, err, sizeof(err)),
        KPX_STORE_OK);
    assert_string_not_equal(token, token2);
    assert_string_not_equal(a.id, b.id);

    /* unknown, malformed, truncated and NULL tokens are simply not found */
    char other[KPX_TOKEN_BUF];
    memcpy(other, token, sizeof(other));
    other[5] = other[5] == 'A' ? 'B' : 'A';
    assert_int_equal(kpx_store_session_lookup(s, other, NOW, &b, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    other[KPX_TOKEN_LEN - 1] = '\0';
    assert_int_equal(kpx_store_session_lookup(s, other, NOW, &b, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    assert_int_equal(kpx_store_session_lookup(s, "not a token", NOW, &b, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    assert_int_equal(kpx_store_session_lookup(s, NULL, NOW, &b, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);

    /* bad parameters */
    assert_int_equal(kpx_store_session_create(s, "bad name", "card_probe", 300, NOW, token2, NULL,
                                              err, sizeof(err)),
                     KPX_STORE_INVALID);
    assert_int_equal(token2[0], '\0');
    assert_int_equal(
        kpx_store_session_create(s, "alice", "card_probe", 0, NOW, token2, NULL, err, sizeof(err)),
        KPX_STORE_INVALID);
    assert_int_equal(
        kpx_store_session_create(s, "alice", "", 300, NOW, token2, NULL, err, sizeof(err)),
        KPX_STORE_INVALID);
    kpx_store_close(s);
}

static void test_session_expiry(void **state)
{
    struct kpx_store *s = mem_store();
    char token[KPX_TOKEN_BUF], err[256];
    struct kpx_session x;
    int64_t n = -1;

    (void)state;
    assert_int_equal(
        kpx_store_session_create(s, "bob", "card_probe", 60, NOW, token, NULL, err, sizeof(err)),
        KPX_STORE_OK);
    assert_int_equal(kpx_store_session_lookup(s, token, NOW + 59, &x, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(kpx_store_session_lookup(s, token, NOW + 60, &x, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    assert_int_equal(kpx_store_session_touch(s, token, NOW + 61, &x, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    assert_int_equal(kpx_store_session_revoke(s, token, NOW + 61, &x, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    assert_int_equal(kpx_store_sessions_active(s, NOW, &n, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(kpx_store_sessions_active(s, NOW + 60, &n, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(n, 0);
    kpx_store_close(s);
}

static void test_session_touch_revoke(void **state)
{
    struct kpx_store *s = mem_store();
    char token[KPX_TOKEN_BUF], err[256];
    struct kpx_session x;

    (void)state;
    assert_int_equal(
        kpx_store_session_create(s, "carol", "card_probe", 300, NOW, token, NULL, err, sizeof(err)),
        KPX_STORE_OK);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(kpx_store_session_touch(s, token, NOW + i, &x, err, sizeof(err)),
                         KPX_STORE_OK);
        assert_int_equal(x.requests, i);
        assert_string_equal(x.username, "carol");
    }
    assert_int_equal(kpx_store_session_lookup(s, token, NOW + 5, &x, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(x.requests, 3);

    assert_int_equal(kpx_store_session_revoke(s, token, NOW + 6, &x, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_string_equal(x.username, "carol");
    assert_int_equal(kpx_store_session_lookup(s, token, NOW + 7, &x, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    assert_int_equal(kpx_store_session_touch(s, token, NOW + 7, &x, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    assert_int_equal(kpx_store_session_revoke(s, token, NOW + 7, &x, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    kpx_store_close(s);
}

static void test_sweep_batches(void **state)
{
    struct kpx_store *s = mem_store();
    char tokens[600][KPX_TOKEN_BUF], err[256];
    int64_t removed = -1, active = -1;
    struct kpx_store_stats st;

    (void)state;
    /* session i expires at NOW + 10 + i: the sweep takes the earliest first */
    for (int i = 0; i < 600; i++)
        assert_int_equal(kpx_store_session_create(s, "a", "card_probe", 10 + i, NOW, tokens[i],
                                                  NULL, err, sizeof(err)),
                         KPX_STORE_OK);
    /* a revoked session is gone at once: nothing left for the sweep */
    assert_int_equal(kpx_store_session_revoke(s, tokens[599], NOW, NULL, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(kpx_store_sessions_active(s, NOW + 9, &active, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(active, 599);
    assert_int_equal(kpx_store_sessions_active(s, NOW + 10, &active, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(active, 598); /* session 0 expires at NOW + 10 */
    /* at NOW + 10 + 299, sessions 0..299 are expired; sweep 100 of them */
    assert_int_equal(kpx_store_sessions_sweep(s, NOW + 10 + 299, 100, &removed, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(removed, 100);
    assert_int_equal(kpx_store_sessions_active(s, NOW + 10 + 299, &active, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(active, 299); /* 300..598 */
    /* then the rest in batches, and no live one */
    assert_int_equal(kpx_store_sessions_sweep(s, NOW + 10 + 299, 0, &removed, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(removed, 200);
    assert_int_equal(kpx_store_sessions_sweep(s, NOW + 10 + 299, 0, &removed, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(kpx_store_session_lookup(s, tokens[300], NOW, NULL, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(kpx_store_session_lookup(s, tokens[299], NOW, NULL, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND); /* swept: gone even at an earlier time */
    assert_int_equal(kpx_store_session_lookup(s, tokens[0], NOW, NULL, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    /* a batch larger than one transaction's worth */
    assert_int_equal(kpx_store_sessions_sweep(s, NOW + 10000, 0, &removed, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(removed, 299);
    kpx_store_stats(s, NOW, &st);
    assert_int_equal(st.sessions_swept, 599);
    assert_int_equal(st.sessions_active, 0);
    kpx_store_close(s);
}

struct listed {
    char names[8][KPX_USERNAME_MAX + 1];
    int n;
    int stop_after;
};

static int collect(void *ctx, const struct kpx_user *u)
{
    struct listed *l = ctx;

    if (l->n < 8)
        snprintf(l->names[l->n], sizeof(l->names[0]), "%s", u->username);
    l->n++;
    return l->stop_after > 0 && l->n >= l->stop_after ? 42 : 0;
}

static void test_users(void **state)
{
    struct kpx_store *s = mem_store();
    struct kpx_user u, got;
    struct listed l = {0};
    char err[256] = "";

    (void)state;
    fill_user(&u, "zed", NOW);
    assert_int_equal(kpx_store_user_add(s, &u, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(kpx_store_user_add(s, &u, err, sizeof(err)), KPX_STORE_EXISTS);
    assert_non_null(strstr(err, "already registered"));

    assert_int_equal(kpx_store_user_get(s, "zed", &got, err, sizeof(err)), KPX_STORE_OK);
    assert_string_equal(got.username, "zed");
    assert_int_equal(got.registered_at, NOW);
    assert_string_equal(got.auth_mode, "fido2_assertion");
    assert_int_equal(got.cred.cred_id_len, 70);
    assert_memory_equal(got.cred.cred_id, u.cred.cred_id, 70);
    assert_int_equal(got.cred.cose_key_len, 77);
    assert_memory_equal(got.cred.cose_key, u.cred.cose_key, 77);
    assert_int_equal(got.cred.alg, -7);
    assert_int_equal(got.cred.sign_count, 4);
    assert_int_equal(got.cred.user_id_len, KPX_USER_ID_LEN);
    assert_memory_equal(got.cred.user_id, u.cred.user_id, KPX_USER_ID_LEN);

    /* a probe-mode user: no credential */
    memset(&u, 0, sizeof(u));
    snprintf(u.username, sizeof(u.username), "amy");
    snprintf(u.auth_mode, sizeof(u.auth_mode), "card_probe");
    u.registered_at = NOW + 5;
    assert_int_equal(kpx_store_user_add(s, &u, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(kpx_store_user_get(s, "amy", &got, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(got.cred.cred_id_len, 0);
    assert_int_equal(got.cred.cose_key_len, 0);
    assert_string_equal(got.auth_mode, "card_probe");

    assert_int_equal(kpx_store_user_get(s, "nobody", &got, err, sizeof(err)), KPX_STORE_NOT_FOUND);
    assert_int_equal(kpx_store_user_get(s, "bad name", &got, err, sizeof(err)), KPX_STORE_INVALID);
    snprintf(u.username, sizeof(u.username), "no/slash");
    assert_int_equal(kpx_store_user_add(s, &u, err, sizeof(err)), KPX_STORE_INVALID);

    fill_user(&u, "bea", NOW + 5);
    assert_int_equal(kpx_store_user_add(s, &u, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(kpx_store_user_list(s, collect, &l, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.names[0], "zed"); /* oldest first, then by name */
    assert_string_equal(l.names[1], "amy");
    assert_string_equal(l.names[2], "bea");
    memset(&l, 0, sizeof(l));
    l.stop_after = 2;
    assert_int_equal(kpx_store_user_list(s, collect, &l, err, sizeof(err)), 42);
    assert_int_equal(l.n, 2);
    kpx_store_close(s);
}

static void test_user_delete_revokes_sessions(void **state)
{
    struct tmpdir t;
    struct kpx_store *s;
    char a1[KPX_TOKEN_BUF], a2[KPX_TOKEN_BUF], b1[KPX_TOKEN_BUF], err[256];
    struct kpx_user u;
    struct kpx_session as, bs;
    int64_t revoked = -1;

    (void)state;
    tmpdir_make(&t);
    s = kpx_store_open(t.db, err, sizeof(err));
    assert_non_null(s);
    fill_user(&u, "alice", NOW);
    assert_int_equal(kpx_store_user_add(s, &u, err, sizeof(err)), KPX_STORE_OK);
    fill_user(&u, "bob", NOW);
    assert_int_equal(kpx_store_user_add(s, &u, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(kpx_store_session_create(s, "alice", "fido2_assertion", 300, NOW, a1, &as, err,
                                              sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(kpx_store_session_create(s, "alice", "fido2_assertion", 300, NOW, a2, NULL,
                                              err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(
        kpx_store_session_create(s, "bob", "fido2_assertion", 300, NOW, b1, &bs, err, sizeof(err)),
        KPX_STORE_OK);

    assert_int_equal(kpx_store_user_delete(s, "alice", &revoked, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(revoked, 2);
    assert_int_equal(kpx_store_session_lookup(s, a1, NOW + 1, NULL, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    assert_int_equal(kpx_store_session_touch(s, a2, NOW + 1, NULL, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    assert_int_equal(kpx_store_session_lookup(s, b1, NOW + 1, NULL, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(kpx_store_user_get(s, "alice", &u, err, sizeof(err)), KPX_STORE_NOT_FOUND);
    assert_int_equal(kpx_store_user_delete(s, "alice", &revoked, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    assert_int_equal(revoked, 0);
    /* durable before it returned: the rows are gone, and a store opened on
     * the file now (a restart after kill -9: s never flushed nor closed)
     * knows only bob's session */
    assert_int_equal(row_requests(t.db, as.id), -1);
    assert_int_equal(row_requests(t.db, bs.id), 0);
    assert_int_equal(lookup_after_reopen(t.db, a1, NOW + 1), KPX_STORE_NOT_FOUND);
    assert_int_equal(lookup_after_reopen(t.db, a2, NOW + 1), KPX_STORE_NOT_FOUND);
    assert_int_equal(lookup_after_reopen(t.db, b1, NOW + 1), KPX_STORE_OK);
    kpx_store_close(s);
    tmpdir_remove(&t);
}

/* A logout is in the file before it is answered: a store opened on the
 * file right after (the restart after a kill -9) refuses the token. */
static void test_logout_durable(void **state)
{
    struct tmpdir t;
    struct kpx_store *s, *again;
    char tok[KPX_TOKEN_BUF], keep[KPX_TOKEN_BUF], err[256];
    struct kpx_session x, k;

    (void)state;
    tmpdir_make(&t);
    s = kpx_store_open(t.db, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(
        kpx_store_session_create(s, "alice", "card_probe", 300, NOW, tok, &x, err, sizeof(err)),
        KPX_STORE_OK);
    assert_int_equal(
        kpx_store_session_create(s, "alice", "card_probe", 300, NOW, keep, &k, err, sizeof(err)),
        KPX_STORE_OK);
    /* a login is durable at once too */
    assert_int_equal(row_requests(t.db, x.id), 0);
    assert_int_equal(kpx_store_session_revoke(s, tok, NOW + 1, &x, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(row_requests(t.db, x.id), -1);
    again = kpx_store_open(t.db, err, sizeof(err));
    assert_non_null(again);
    assert_int_equal(kpx_store_session_lookup(again, tok, NOW + 2, NULL, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    assert_int_equal(kpx_store_session_lookup(again, keep, NOW + 2, &x, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_string_equal(x.ref, k.ref); /* the same reference after a restart */
    kpx_store_close(again);
    assert_int_equal(kpx_store_session_revoke(s, tok, NOW + 2, NULL, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    kpx_store_close(s);
    tmpdir_remove(&t);
}

/* Makes every write of the store's connection fail (as a full disk does):
 * SQLite then refuses with "attempt to write a readonly database". */
static void writes_fail(struct kpx_store *s, bool fail)
{
    assert_int_equal(sqlite3_exec(s->db, fail ? "PRAGMA query_only = 1" : "PRAGMA query_only = 0",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
}

/* A logout whose delete fails is refused in memory at once (fails closed),
 * answered NOT_DURABLE, retried, and durable once a retry or a repeated
 * logout writes it; an expired one is dropped by the sweep. */
static void test_logout_not_durable(void **state)
{
    struct tmpdir t;
    struct kpx_store *s;
    char tok[KPX_TOKEN_BUF], keep[KPX_TOKEN_BUF], tok2[KPX_TOKEN_BUF], tok3[KPX_TOKEN_BUF];
    char err[256];
    struct kpx_session x, x2, x3, out;
    struct kpx_store_stats st;
    int64_t left = -1, active = -1, removed = -1;

    (void)state;
    tmpdir_make(&t);
    s = kpx_store_open(t.db, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(
        kpx_store_session_create(s, "alice", "card_probe", 300, NOW, tok, &x, err, sizeof(err)),
        KPX_STORE_OK);
    assert_int_equal(
        kpx_store_session_create(s, "bob", "card_probe", 300, NOW, keep, NULL, err, sizeof(err)),
        KPX_STORE_OK);

    writes_fail(s, true);
    memset(&out, 0, sizeof(out));
    assert_int_equal(kpx_store_session_revoke(s, tok, NOW + 1, &out, err, sizeof(err)),
                     KPX_STORE_NOT_DURABLE);
    assert_non_null(strstr(err, "session revoke"));
    assert_non_null(strstr(err, "readonly"));
    assert_string_equal(out.username, "alice");    /* the session it ended */
    assert_int_equal(row_requests(t.db, x.id), 0); /* the row is still there */
    /* refused from memory anyway: lookups, touches; other sessions unaffected */
    assert_int_equal(kpx_store_session_lookup(s, tok, NOW + 1, NULL, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    assert_int_equal(kpx_store_session_touch(s, tok, NOW + 1, NULL, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    assert_int_equal(kpx_store_session_touch(s, keep, NOW + 1, NULL, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(kpx_store_sessions_active(s, NOW + 1, &active, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(active, 1);
    kpx_store_stats(s, NOW + 1, &st);
    assert_int_equal(st.revocations_pending, 1);
    assert_non_null(strstr(st.revocation_error, "readonly"));
    assert_true(st.db_failures >= 1);
    /* sent again while writes still fail: the same answer, one entry */
    assert_int_equal(kpx_store_session_revoke(s, tok, NOW + 1, NULL, err, sizeof(err)),
                     KPX_STORE_NOT_DURABLE);
    assert_int_equal(kpx_store_retry_revocations(s, &left, err, sizeof(err)), KPX_STORE_ERROR);
    assert_int_equal(left, 1);
    assert_int_equal(row_requests(t.db, x.id), 0);

    /* writes work again: the retry deletes the row and drops the session */
    writes_fail(s, false);
    assert_int_equal(kpx_store_retry_revocations(s, &left, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(left, 0);
    assert_int_equal(row_requests(t.db, x.id), -1);
    kpx_store_stats(s, NOW + 1, &st);
    assert_int_equal(st.revocations_pending, 0);
    assert_string_equal(st.revocation_error, "");
    assert_int_equal(kpx_store_session_revoke(s, tok, NOW + 2, NULL, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);

    /* a repeated logout writes it as well */
    assert_int_equal(
        kpx_store_session_create(s, "carol", "card_probe", 300, NOW, tok2, &x2, err, sizeof(err)),
        KPX_STORE_OK);
    writes_fail(s, true);
    assert_int_equal(kpx_store_session_revoke(s, tok2, NOW + 2, NULL, err, sizeof(err)),
                     KPX_STORE_NOT_DURABLE);
    writes_fail(s, false);
    assert_int_equal(kpx_store_session_revoke(s, tok2, NOW + 2, &out, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_string_equal(out.username, "carol");
    assert_int_equal(row_requests(t.db, x2.id), -1);
    kpx_store_stats(s, NOW + 2, &st);
    assert_int_equal(st.revocations_pending, 0);

    /* one that expires before it is written is the sweep's */
    assert_int_equal(
        kpx_store_session_create(s, "dave", "card_probe", 10, NOW, tok3, &x3, err, sizeof(err)),
        KPX_STORE_OK);
    writes_fail(s, true);
    assert_int_equal(kpx_store_session_revoke(s, tok3, NOW + 2, NULL, err, sizeof(err)),
                     KPX_STORE_NOT_DURABLE);
    writes_fail(s, false);
    assert_int_equal(kpx_store_sessions_sweep(s, NOW + 20, 0, &removed, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(removed, 1);
    kpx_store_stats(s, NOW + 20, &st);
    assert_int_equal(st.revocations_pending, 0);
    assert_int_equal(row_requests(t.db, x3.id), -1);
    assert_int_equal(kpx_store_retry_revocations(s, &left, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(left, 0);

    /* unregistering the user of one deletes its row with theirs: nothing
     * left to retry, and the live count stays exact */
    struct kpx_user erin = {.username = "erin", .registered_at = NOW, .auth_mode = "card_probe"};
    char tok4[KPX_TOKEN_BUF];
    int64_t ended = -1;
    assert_int_equal(kpx_store_user_add(s, &erin, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(
        kpx_store_session_create(s, "erin", "card_probe", 300, NOW, tok4, NULL, err, sizeof(err)),
        KPX_STORE_OK);
    writes_fail(s, true);
    assert_int_equal(kpx_store_session_revoke(s, tok4, NOW + 2, NULL, err, sizeof(err)),
                     KPX_STORE_NOT_DURABLE);
    writes_fail(s, false);
    assert_int_equal(kpx_store_user_delete(s, "erin", &ended, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(ended, 1);
    kpx_store_stats(s, NOW + 2, &st);
    assert_int_equal(st.revocations_pending, 0);
    assert_int_equal(st.sessions_active, 1); /* bob's */

    /* what was written holds for a new process */
    assert_int_equal(lookup_after_reopen(t.db, tok, NOW + 3), KPX_STORE_NOT_FOUND);
    assert_int_equal(lookup_after_reopen(t.db, tok2, NOW + 3), KPX_STORE_NOT_FOUND);
    assert_int_equal(lookup_after_reopen(t.db, keep, NOW + 3), KPX_STORE_OK);
    kpx_store_close(s);
    tmpdir_remove(&t);
}

/* Request counts: in memory at once, in the file after a flush; a crash
 * loses only what was not flushed yet; close flushes. */
static void test_counts_flushed(void **state)
{
    struct tmpdir t;
    struct kpx_store *s, *again;
    char tok[KPX_TOKEN_BUF], err[256];
    struct kpx_session x;
    struct kpx_store_stats st;

    (void)state;
    tmpdir_make(&t);
    s = kpx_store_open(t.db, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(
        kpx_store_session_create(s, "carol", "card_probe", 300, NOW, tok, &x, err, sizeof(err)),
        KPX_STORE_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(kpx_store_session_touch(s, tok, NOW, NULL, err, sizeof(err)),
                         KPX_STORE_OK);
    assert_int_equal(kpx_store_session_lookup(s, tok, NOW, &x, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(x.requests, 5);
    assert_int_equal(row_requests(t.db, x.id), 0); /* not written yet */
    assert_int_equal(kpx_store_flush(s, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(row_requests(t.db, x.id), 5);
    kpx_store_stats(s, NOW, &st);
    assert_int_equal(st.flushes, 1);
    assert_int_equal(st.counts_written, 1);
    assert_int_equal(st.flush_failures, 0);
    /* nothing changed: a flush writes nothing */
    assert_int_equal(kpx_store_flush(s, err, sizeof(err)), KPX_STORE_OK);
    kpx_store_stats(s, NOW, &st);
    assert_int_equal(st.counts_written, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(kpx_store_session_touch(s, tok, NOW, NULL, err, sizeof(err)),
                         KPX_STORE_OK);
    /* a restart now (s neither flushed nor closed) sees the last flush */
    again = kpx_store_open(t.db, err, sizeof(err));
    assert_non_null(again);
    assert_int_equal(kpx_store_session_lookup(again, tok, NOW, &x, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(x.requests, 5);
    kpx_store_close(again); /* had nothing to write */
    kpx_store_close(s);     /* writes the 8 */
    again = kpx_store_open(t.db, err, sizeof(err));
    assert_non_null(again);
    assert_int_equal(kpx_store_session_lookup(again, tok, NOW, &x, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(x.requests, 8);
    kpx_store_close(again);
    tmpdir_remove(&t);
}

/* The background thread writes counts back and sweeps expired sessions by
 * itself (waits are bounded; nothing is timed). */
static void test_background_thread(void **state)
{
    struct tmpdir t;
    struct kpx_store *s;
    char tok[KPX_TOKEN_BUF], brief[KPX_TOKEN_BUF], err[256];
    struct kpx_session x, b;
    struct kpx_store_stats st;
    int64_t now = (int64_t)time(NULL);
    int tries;

    (void)state;
    tmpdir_make(&t);
    s = kpx_store_open(t.db, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(kpx_store_start(s, 20, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(kpx_store_start(s, 20, err, sizeof(err)), KPX_STORE_INVALID);
    assert_int_equal(
        kpx_store_session_create(s, "dan", "card_probe", 3600, now, tok, &x, err, sizeof(err)),
        KPX_STORE_OK);
    /* expired already by the real clock: the thread sweeps it */
    assert_int_equal(
        kpx_store_session_create(s, "dan", "card_probe", 1, now - 10, brief, &b, err, sizeof(err)),
        KPX_STORE_OK);
    assert_int_equal(row_requests(t.db, b.id), 0);
    for (int i = 0; i < 7; i++)
        assert_int_equal(kpx_store_session_touch(s, tok, now, NULL, err, sizeof(err)),
                         KPX_STORE_OK);
    for (tries = 0; tries < 1000; tries++) { /* at most 10 s */
        kpx_store_stats(s, now, &st);
        if (row_requests(t.db, x.id) == 7 && row_requests(t.db, b.id) == -1 &&
            st.sessions_swept == 1)
            break;
        usleep(10000);
    }
    assert_int_equal(row_requests(t.db, x.id), 7);
    assert_int_equal(row_requests(t.db, b.id), -1);
    assert_int_equal(st.sessions_swept, 1);
    assert_true(st.flushes >= 1);
    kpx_store_close(s);
    tmpdir_remove(&t);
}

static void test_sign_count_rule(void **state)
{
    struct kpx_store *s = mem_store();
    struct kpx_user u;
    char err[256];

    (void)state;
    fill_user(&u, "dan", NOW);
    u.cred.sign_count = 0;
    assert_int_equal(kpx_store_user_add(s, &u, err, sizeof(err)), KPX_STORE_OK);
    /* a card without a counter: 0 stays allowed while both are 0 */
    assert_int_equal(kpx_store_user_update_sign_count(s, "dan", 0, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(kpx_store_user_update_sign_count(s, "dan", 5, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(kpx_store_user_update_sign_count(s, "dan", 5, err, sizeof(err)),
                     KPX_STORE_CONFLICT);
    assert_non_null(strstr(err, "cloned"));
    assert_int_equal(kpx_store_user_update_sign_count(s, "dan", 3, err, sizeof(err)),
                     KPX_STORE_CONFLICT);
    assert_int_equal(kpx_store_user_update_sign_count(s, "dan", 0, err, sizeof(err)),
                     KPX_STORE_CONFLICT);
    assert_int_equal(kpx_store_user_update_sign_count(s, "dan", 0xfffffff0u, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(kpx_store_user_get(s, "dan", &u, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(u.cred.sign_count, 0xfffffff0u);
    assert_int_equal(kpx_store_user_update_sign_count(s, "eve", 9, err, sizeof(err)),
                     KPX_STORE_NOT_FOUND);
    kpx_store_close(s);
}

static void test_ref_key(void **state)
{
    struct kpx_store *s1 = mem_store(), *s2 = mem_store();
    uint8_t k1[KPX_REF_KEY_LEN], k1b[KPX_REF_KEY_LEN], k2[KPX_REF_KEY_LEN], zero[KPX_REF_KEY_LEN];

    (void)state;
    memset(zero, 0, sizeof(zero));
    assert_int_equal(kpx_store_ref_key(s1, k1), KPX_STORE_OK);
    assert_int_equal(kpx_store_ref_key(s1, k1b), KPX_STORE_OK);
    assert_int_equal(kpx_store_ref_key(s2, k2), KPX_STORE_OK);
    assert_memory_equal(k1, k1b, sizeof(k1));
    assert_memory_not_equal(k1, k2, sizeof(k1));
    assert_memory_not_equal(k1, zero, sizeof(k1));
    kpx_store_close(s1);
    kpx_store_close(s2);
}

/* Whole file (and its WAL) contents, to look for secrets or compare. */
static size_t slurp(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL)
        return 0;
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void test_persistence_and_mode(void **state)
{
    struct tmpdir t;
    struct kpx_store *s;
    struct kpx_user u;
    struct kpx_session x;
    uint8_t k1[KPX_REF_KEY_LEN], k2[KPX_REF_KEY_LEN];
    char token[KPX_TOKEN_BUF], err[256] = "", wal[300], ref[KPX_REF_LEN + 1];
    struct stat st;
    size_t cap = 1 << 20, n;
    uint8_t *buf = malloc(cap);

    (void)state;
    assert_non_null(buf);
    tmpdir_make(&t);
    {
        bool created = false;
        s = kpx_store_open_init(t.db, false, &created, err, sizeof(err));
        if (s == NULL)
            print_error("open: %s\n", err);
        assert_non_null(s);
        assert_true(created); /* the file was absent */
    }
    assert_int_equal(stat(t.db, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    {
        char dir[200];
        snprintf(dir, sizeof(dir), "%s/state", t.dir);
        assert_int_equal(stat(dir, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);
    }
    fill_user(&u, "alice", NOW);
    assert_int_equal(kpx_store_user_add(s, &u, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(kpx_store_session_create(s, "alice", "fido2_assertion", 300, NOW, token, NULL,
                                              err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(kpx_store_session_touch(s, token, NOW + 1, &x, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(strlen(x.ref), KPX_REF_LEN);
    snprintf(ref, sizeof(ref), "%s", x.ref);
    assert_int_equal(kpx_store_ref_key(s, k1), KPX_STORE_OK);
    {
        /* the reference made at login is the one of API.md */
        char want[23];
        assert_int_equal(ksvc_session_ref(k1, x.id, want), 0);
        assert_string_equal(x.ref, want);
    }

    /* the bearer token never reaches the disk in clear */
    snprintf(wal, sizeof(wal), "%s-wal", t.db);
    n = slurp(t.db, buf, cap);
    assert_true(n > 0);
    assert_null(memmem(buf, n, token, KPX_TOKEN_LEN));
    n = slurp(wal, buf, cap);
    assert_null(memmem(buf, n, token, KPX_TOKEN_LEN));
    /* SQLite gives the WAL the database file's mode */
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    kpx_store_close(s);

    assert_int_equal(stat(t.db, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    s = kpx_store_open(t.db, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(kpx_store_ref_key(s, k2), KPX_STORE_OK);
    assert_memory_equal(k1, k2, sizeof(k1));
    assert_int_equal(kpx_store_user_get(s, "alice", &u, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(u.cred.cose_key_len, 77);
    assert_int_equal(kpx_store_session_lookup(s, token, NOW + 2, &x, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(x.requests, 1); /* written back by close */
    assert_string_equal(x.username, "alice");
    assert_string_equal(x.ref, ref);
    kpx_store_close(s);
    free(buf);
    tmpdir_remove(&t);
}

/* Opening path must fail and leave the file byte-identical. */
static void expect_refused(const char *path, const char *why_part)
{
    size_t cap = 1 << 16;
    uint8_t *before = malloc(cap), *after = malloc(cap);
    char err[512] = "";
    size_t n1, n2;
    struct kpx_store *s;

    assert_non_null(before);
    assert_non_null(after);
    n1 = slurp(path, before, cap);
    assert_true(n1 > 0);
    s = kpx_store_open(path, err, sizeof(err));
    if (s != NULL)
        print_error("%s was opened\n", path);
    assert_null(s);
    if (strstr(err, why_part) == NULL)
        print_error("err: %s\n", err);
    assert_non_null(strstr(err, why_part));
    n2 = slurp(path, after, cap);
    assert_int_equal(n1, n2);
    assert_memory_equal(before, after, n1);
    free(before);
    free(after);
}

static void test_refuses_foreign_files(void **state)
{
    struct tmpdir t;
    char path[300];
    sqlite3 *db = NULL;
    FILE *f;

    (void)state;
    tmpdir_make(&t);
    /* garbage */
    snprintf(path, sizeof(path), "%s/garbage.db", t.dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 4096; i++)
        fputc((i * 37 + 11) & 0xff, f);
    fclose(f);
    expect_refused(path, "not a k_proxy database");

    /* a newer schema */
    snprintf(path, sizeof(path), "%s/newer.db", t.dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "CREATE TABLE x (a); PRAGMA user_version = 99;", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    expect_refused(path, "newer");

    /* someone else's database */
    snprintf(path, sizeof(path), "%s/foreign.db", t.dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('x');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    expect_refused(path, "no kcard schema");

    /* a real store with a page overwritten */
    {
        char err[256];
        struct kpx_store *s;
        uint8_t junk[512];
        int fd;

        snprintf(path, sizeof(path), "%s/broken.db", t.dir);
        s = kpx_store_open(path, err, sizeof(err));
        assert_non_null(s);
        kpx_store_close(s);               /* checkpoints the WAL into the file */
        memset(junk, 0xee, sizeof(junk)); /* page 2: the users table root */
        fd = open(path, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, junk, sizeof(junk), 4096), (ssize_t)sizeof(junk));
        close(fd);
        expect_refused(path, "corrupt");
    }

    /* an empty file is not taken as new: refused, left empty */
    {
        char err[256] = "";
        struct stat st;
        snprintf(path, sizeof(path), "%s/empty.db", t.dir);
        f = fopen(path, "wb");
        assert_non_null(f);
        fclose(f);
        assert_null(kpx_store_open(path, err, sizeof(err)));
        assert_non_null(strstr(err, "empty"));
        assert_non_null(strstr(err, "--init"));
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 0);
    }
    /* unless asked to make it a new one (--init); creation is reported */
    {
        char err[256] = "";
        bool created = false;
        struct kpx_store *s = kpx_store_open_init(path, true, &created, err, sizeof(err));
        assert_non_null(s);
        assert_true(created);
        kpx_store_close(s);
        s = kpx_store_open_init(path, true, &created, err, sizeof(err));
        assert_non_null(s); /* --init on a k_proxy database just opens it */
        assert_false(created);
        kpx_store_close(s);
        /* --init does not make a foreign file new */
        snprintf(path, sizeof(path), "%s/foreign.db", t.dir);
        assert_null(kpx_store_open_init(path, true, &created, err, sizeof(err)));
        assert_false(created);
    }

    /* a store whose session rows were edited behind its back */
    {
        static const char *const bad_rows[] = {
            "INSERT INTO sessions VALUES ('0123456789abcdef0123456789abcdef', "
            "randomblob(32), 'bad name', 'card_probe', 1, 2, 0, 0)",
            "INSERT INTO sessions VALUES ('0123456789abcdef0123456789abcdef', "
            "randomblob(31), 'alice', 'card_probe', 1, 2, 0, 0)",
            "INSERT INTO sessions VALUES ('x', randomblob(32), 'alice', 'card_probe', 1, 2, 0, 0)",
            "INSERT INTO sessions VALUES ('0123456789abcdef0123456789abcdef', "
            "randomblob(32), 'alice', 'card_probe', 'soon', 2, 0, 0)",
            "INSERT INTO sessions VALUES ('0123456789abcdef0123456789abcdef', "
            "randomblob(32), 'alice', '', 1, 2, 0, 0)",
            "INSERT INTO sessions VALUES ('0123456789abcdef0123456789abcdef', "
            "randomblob(32), 'alice', 'card_probe', 1, 2, -5, 0)",
        };
        for (size_t i = 0; i < sizeof(bad_rows) / sizeof(bad_rows[0]); i++) {
            char err[256];
            struct kpx_store *s;
            snprintf(path, sizeof(path), "%s/rows%zu.db", t.dir, i);
            s = kpx_store_open(path, err, sizeof(err));
            assert_non_null(s);
            kpx_store_close(s);
            assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
            assert_int_equal(sqlite3_exec(db, bad_rows[i], NULL, NULL, NULL), SQLITE_OK);
            sqlite3_close(db);
            expect_refused(path, "malformed");
        }
    }
    tmpdir_remove(&t);
}

struct toucher {
    struct kpx_store *s;
    const char *token;
    int ok;
};

static void *touch_many(void *arg)
{
    struct toucher *t = arg;
    struct kpx_session x;
    char err[256];

    for (int i = 0; i < 200; i++)
        if (kpx_store_session_touch(t->s, t->token, NOW + 1, &x, err, sizeof(err)) == KPX_STORE_OK)
            t->ok++;
    return NULL;
}

static void concurrent_touches(struct kpx_store *s)
{
    char token[KPX_TOKEN_BUF], err[256];
    struct toucher tt[8];
    pthread_t th[8];
    struct kpx_session x;

    assert_int_equal(
        kpx_store_session_create(s, "alice", "card_probe", 300, NOW, token, NULL, err, sizeof(err)),
        KPX_STORE_OK);
    for (int i = 0; i < 8; i++) {
        tt[i] = (struct toucher){.s = s, .token = token, .ok = 0};
        assert_int_equal(pthread_create(&th[i], NULL, touch_many, &tt[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(tt[i].ok, 200);
    }
    assert_int_equal(kpx_store_session_lookup(s, token, NOW + 2, &x, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(x.requests, 1600);
}

static void test_concurrent_touch_memory(void **state)
{
    struct kpx_store *s = mem_store();

    (void)state;
    concurrent_touches(s);
    kpx_store_close(s);
}

static void test_concurrent_touch_file(void **state)
{
    struct tmpdir t;
    struct kpx_store *s;
    char err[256];

    (void)state;
    tmpdir_make(&t);
    s = kpx_store_open(t.db, err, sizeof(err));
    assert_non_null(s);
    concurrent_touches(s);
    kpx_store_close(s);
    tmpdir_remove(&t);
}

/* Touches, logins, logouts and revocations at once while the background
 * thread writes counts back and frees what was unlinked: every count of a
 * session that stays arrives in the file, nothing freed is touched (the
 * sanitizer builds watch), and the ended sessions stay ended. */
#define MIX_KEEP 16
#define MIX_ROUNDS 3000

struct mixer {
    struct kpx_store *s;
    char (*keep)[KPX_TOKEN_BUF];
    int touches[MIX_KEEP];
    int id;
    int64_t now; /* the real clock's: the background thread sweeps by it */
};

static void *mix_touch(void *arg)
{
    struct mixer *m = arg;
    char err[256];

    for (int i = 0; i < MIX_ROUNDS; i++) {
        int k = (i * 7 + m->id) % MIX_KEEP;
        assert_int_equal(kpx_store_session_touch(m->s, m->keep[k], m->now, NULL, err, sizeof(err)),
                         KPX_STORE_OK);
        m->touches[k]++;
    }
    return NULL;
}

static void *mix_churn(void *arg)
{
    struct mixer *m = arg;
    char tok[KPX_TOKEN_BUF], err[256];
    struct kpx_user u;

    memset(&u, 0, sizeof(u));
    snprintf(u.username, sizeof(u.username), "churn");
    snprintf(u.auth_mode, sizeof(u.auth_mode), "card_probe");
    for (int i = 0; i < MIX_ROUNDS / 10; i++) {
        /* the third kind stays (another user) for the sweep at the end */
        assert_int_equal(kpx_store_session_create(m->s, i % 3 == 2 ? "stay" : "churn", "card_probe",
                                                  300, m->now, tok, NULL, err, sizeof(err)),
                         KPX_STORE_OK);
        assert_int_equal(kpx_store_session_touch(m->s, tok, m->now, NULL, err, sizeof(err)),
                         KPX_STORE_OK);
        if (i % 3 == 0) {
            assert_int_equal(kpx_store_session_revoke(m->s, tok, m->now, NULL, err, sizeof(err)),
                             KPX_STORE_OK);
        } else if (i % 3 == 1) {
            assert_int_equal(kpx_store_user_add(m->s, &u, err, sizeof(err)), KPX_STORE_OK);
            assert_int_equal(kpx_store_user_delete(m->s, "churn", NULL, err, sizeof(err)),
                             KPX_STORE_OK);
        } else {
            /* left for the sweep at the end */
        }
        assert_int_equal(kpx_store_sessions_sweep(m->s, m->now - 1, 0, NULL, err, sizeof(err)),
                         KPX_STORE_OK);
        if (i % 3 != 2)
            assert_int_equal(kpx_store_session_lookup(m->s, tok, m->now, NULL, err, sizeof(err)),
                             KPX_STORE_NOT_FOUND);
    }
    return NULL;
}

static void test_concurrent_mixed(void **state)
{
    struct tmpdir t;
    struct kpx_store *s;
    char keep[MIX_KEEP][KPX_TOKEN_BUF], err[256];
    struct mixer m[4];
    pthread_t th[4];
    int64_t n = -1, now = (int64_t)time(NULL);

    (void)state;
    tmpdir_make(&t);
    s = kpx_store_open(t.db, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(kpx_store_start(s, 2, err, sizeof(err)), KPX_STORE_OK);
    for (int k = 0; k < MIX_KEEP; k++)
        assert_int_equal(kpx_store_session_create(s, "keep", "card_probe", 300, now, keep[k], NULL,
                                                  err, sizeof(err)),
                         KPX_STORE_OK);
    for (int i = 0; i < 4; i++) {
        memset(&m[i], 0, sizeof(m[i]));
        m[i].s = s;
        m[i].keep = keep;
        m[i].id = i;
        m[i].now = now;
        assert_int_equal(pthread_create(&th[i], NULL, i < 3 ? mix_touch : mix_churn, &m[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    /* the churn's third kind is left; sweep it */
    assert_int_equal(kpx_store_sessions_sweep(s, now + 1000, 0, &n, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(n, MIX_KEEP + MIX_ROUNDS / 10 / 3);
    kpx_store_close(s);
    s = kpx_store_open(t.db, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(kpx_store_sessions_active(s, now, &n, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(n, 0); /* all swept: nothing came back */
    kpx_store_close(s);
    tmpdir_remove(&t);
}

static void test_concurrent_counts_durable(void **state)
{
    struct tmpdir t;
    struct kpx_store *s;
    char keep[MIX_KEEP][KPX_TOKEN_BUF], err[256];
    struct mixer m[3];
    pthread_t th[3];
    struct kpx_session x;
    int64_t now = (int64_t)time(NULL);

    (void)state;
    tmpdir_make(&t);
    s = kpx_store_open(t.db, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(kpx_store_start(s, 1, err, sizeof(err)), KPX_STORE_OK);
    for (int k = 0; k < MIX_KEEP; k++)
        assert_int_equal(kpx_store_session_create(s, "keep", "card_probe", 300, now, keep[k], NULL,
                                                  err, sizeof(err)),
                         KPX_STORE_OK);
    for (int i = 0; i < 3; i++) {
        memset(&m[i], 0, sizeof(m[i]));
        m[i].s = s;
        m[i].keep = keep;
        m[i].id = i;
        m[i].now = now;
        assert_int_equal(pthread_create(&th[i], NULL, mix_touch, &m[i]), 0);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    kpx_store_close(s);
    s = kpx_store_open(t.db, err, sizeof(err));
    assert_non_null(s);
    for (int k = 0; k < MIX_KEEP; k++) {
        int want = m[0].touches[k] + m[1].touches[k] + m[2].touches[k];
        assert_int_equal(kpx_store_session_lookup(s, keep[k], now, &x, err, sizeof(err)),
                         KPX_STORE_OK);
        assert_int_equal(x.requests, want);
    }
    kpx_store_close(s);
    tmpdir_remove(&t);
}

static void test_rc_names(void **state)
{
    (void)state;
    assert_string_equal(kpx_store_rc_name(KPX_STORE_OK), "ok");
    assert_string_equal(kpx_store_rc_name(KPX_STORE_NOT_FOUND), "not_found");
    assert_string_equal(kpx_store_rc_name(KPX_STORE_EXISTS), "exists");
    assert_string_equal(kpx_store_rc_name(KPX_STORE_CONFLICT), "conflict");
    assert_string_equal(kpx_store_rc_name(KPX_STORE_INVALID), "invalid");
    assert_string_equal(kpx_store_rc_name(KPX_STORE_ERROR), "error");
    assert_string_equal(kpx_store_rc_name(KPX_STORE_NOT_DURABLE), "not_durable");
    assert_string_equal(kpx_store_rc_name(77), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_username_valid),
        cmocka_unit_test(test_session_create_lookup),
        cmocka_unit_test(test_session_expiry),
        cmocka_unit_test(test_session_touch_revoke),
        cmocka_unit_test(test_sweep_batches),
        cmocka_unit_test(test_users),
        cmocka_unit_test(test_user_delete_revokes_sessions),
        cmocka_unit_test(test_logout_durable),
        cmocka_unit_test(test_logout_not_durable),
        cmocka_unit_test(test_counts_flushed),
        cmocka_unit_test(test_background_thread),
        cmocka_unit_test(test_sign_count_rule),
        cmocka_unit_test(test_ref_key),
        cmocka_unit_test(test_persistence_and_mode),
        cmocka_unit_test(test_refuses_foreign_files),
        cmocka_unit_test(test_concurrent_touch_memory),
        cmocka_unit_test(test_concurrent_touch_file),
        cmocka_unit_test(test_concurrent_mixed),
        cmocka_unit_test(test_concurrent_counts_durable),
        cmocka_unit_test(test_rc_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
