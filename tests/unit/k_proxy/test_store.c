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
#include <unistd.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "services/k_proxy/store.h"

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

static void test_purge(void **state)
{
    struct kpx_store *s = mem_store();
    char t1[KPX_TOKEN_BUF], t2[KPX_TOKEN_BUF], t3[KPX_TOKEN_BUF], err[256];
    int64_t removed = -1, active = -1;

    (void)state;
    assert_int_equal(
        kpx_store_session_create(s, "a", "card_probe", 10, NOW, t1, NULL, err, sizeof(err)),
        KPX_STORE_OK);
    assert_int_equal(
        kpx_store_session_create(s, "b", "card_probe", 100, NOW, t2, NULL, err, sizeof(err)),
        KPX_STORE_OK);
    assert_int_equal(
        kpx_store_session_create(s, "c", "card_probe", 100, NOW, t3, NULL, err, sizeof(err)),
        KPX_STORE_OK);
    assert_int_equal(kpx_store_session_revoke(s, t3, NOW, NULL, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(kpx_store_sessions_purge_expired(s, NOW + 20, &removed, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(removed, 2);
    assert_int_equal(kpx_store_sessions_active(s, NOW + 20, &active, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(active, 1);
    assert_int_equal(kpx_store_session_lookup(s, t2, NOW + 20, NULL, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(kpx_store_sessions_purge_expired(s, NOW + 20, &removed, err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(removed, 0);
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
    struct kpx_store *s = mem_store();
    char a1[KPX_TOKEN_BUF], a2[KPX_TOKEN_BUF], b1[KPX_TOKEN_BUF], err[256];
    struct kpx_user u;
    int64_t revoked = -1;

    (void)state;
    fill_user(&u, "alice", NOW);
    assert_int_equal(kpx_store_user_add(s, &u, err, sizeof(err)), KPX_STORE_OK);
    fill_user(&u, "bob", NOW);
    assert_int_equal(kpx_store_user_add(s, &u, err, sizeof(err)), KPX_STORE_OK);
    assert_int_equal(kpx_store_session_create(s, "alice", "fido2_assertion", 300, NOW, a1, NULL,
                                              err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(kpx_store_session_create(s, "alice", "fido2_assertion", 300, NOW, a2, NULL,
                                              err, sizeof(err)),
                     KPX_STORE_OK);
    assert_int_equal(
        kpx_store_session_create(s, "bob", "fido2_assertion", 300, NOW, b1, NULL, err, sizeof(err)),
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
    kpx_store_close(s);
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
    char token[KPX_TOKEN_BUF], err[256] = "", wal[300];
    struct stat st;
    size_t cap = 1 << 20, n;
    uint8_t *buf = malloc(cap);

    (void)state;
    assert_non_null(buf);
    tmpdir_make(&t);
    s = kpx_store_open(t.db, err, sizeof(err));
    if (s == NULL)
        print_error("open: %s\n", err);
    assert_non_null(s);
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
    assert_int_equal(kpx_store_ref_key(s, k1), KPX_STORE_OK);

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
    assert_int_equal(x.requests, 1);
    assert_string_equal(x.username, "alice");
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

static void test_rc_names(void **state)
{
    (void)state;
    assert_string_equal(kpx_store_rc_name(KPX_STORE_OK), "ok");
    assert_string_equal(kpx_store_rc_name(KPX_STORE_NOT_FOUND), "not_found");
    assert_string_equal(kpx_store_rc_name(KPX_STORE_EXISTS), "exists");
    assert_string_equal(kpx_store_rc_name(KPX_STORE_CONFLICT), "conflict");
    assert_string_equal(kpx_store_rc_name(KPX_STORE_INVALID), "invalid");
    assert_string_equal(kpx_store_rc_name(KPX_STORE_ERROR), "error");
    assert_string_equal(kpx_store_rc_name(77), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_username_valid),
        cmocka_unit_test(test_session_create_lookup),
        cmocka_unit_test(test_session_expiry),
        cmocka_unit_test(test_session_touch_revoke),
        cmocka_unit_test(test_purge),
        cmocka_unit_test(test_users),
        cmocka_unit_test(test_user_delete_revokes_sessions),
        cmocka_unit_test(test_sign_count_rule),
        cmocka_unit_test(test_ref_key),
        cmocka_unit_test(test_persistence_and_mode),
        cmocka_unit_test(test_refuses_foreign_files),
        cmocka_unit_test(test_concurrent_touch_memory),
        cmocka_unit_test(test_concurrent_touch_file),
        cmocka_unit_test(test_rc_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
