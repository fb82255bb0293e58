/* k_proxy's users, sessions and reference key in SQLite (see store.h). */
#include "services/k_proxy/store.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "services/common/crypto.h"
#include "services/common/svc_util.h"

#define BUSY_TIMEOUT_MS 5000

struct kpx_store {
    sqlite3 *db;
    pthread_mutex_t lock; /* one connection: every call runs under it */
    uint8_t ref_key[KPX_REF_KEY_LEN];
};

/* The session columns every session query returns, in this order. */
#define SESSION_COLS "id, token_hash, username, auth_mode, created_at, expires_at, requests"

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen, const char *fmt,
                                                         ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int db_fail(struct kpx_store *s, char *err, size_t errlen, const char *what)
{
    seterr(err, errlen, "%s: %s", what, sqlite3_errmsg(s->db));
    return KPX_STORE_ERROR;
}

const char *kpx_store_rc_name(int rc)
{
    switch (rc) {
    case KPX_STORE_OK:
        return "ok";
    case KPX_STORE_NOT_FOUND:
        return "not_found";
    case KPX_STORE_EXISTS:
        return "exists";
    case KPX_STORE_CONFLICT:
        return "conflict";
    case KPX_STORE_INVALID:
        return "invalid";
    case KPX_STORE_ERROR:
        return "error";
    }
    return "unknown";
}

bool kpx_username_valid(const char *username)
{
    size_t n;

    if (username == NULL)
        return false;
    n = strnlen(username, KPX_USERNAME_MAX + 1);
    if (n == 0 || n > KPX_USERNAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = username[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool auth_mode_valid(const char *mode)
{
    size_t n;

    if (mode == NULL)
        return false;
    n = strnlen(mode, KPX_AUTH_MODE_MAX);
    return n > 0 && n < KPX_AUTH_MODE_MAX;
}

/* A bearer token as this store issues them: 43 base64url characters. */
static bool token_well_formed(const char *token)
{
    if (token == NULL || strnlen(token, KPX_TOKEN_BUF) != KPX_TOKEN_LEN)
        return false;
    for (size_t i = 0; i < KPX_TOKEN_LEN; i++) {
        char c = token[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int token_hash(const char *token, uint8_t out[KSVC_SHA256_LEN])
{
    return ksvc_sha256(token, KPX_TOKEN_LEN, out) == 0 ? KPX_STORE_OK : KPX_STORE_ERROR;
}

/* ---- opening ------------------------------------------------------------ */

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    seterr(err, errlen, "%s", msg != NULL ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
}

static int int_query(sqlite3 *db, const char *sql, int *value)
{
    sqlite3_stmt *st = NULL;
    int ok =
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW;

    if (ok)
        *value = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

/* Read-only checks before anything may write: a corrupt file, a newer
 * schema or someone else's database is refused untouched. */
static int check_existing(sqlite3 *db, bool fresh, int *version, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int tables = -1;
    bool ok;

    if (int_query(db, "PRAGMA user_version", version) != 0) {
        seterr(err, errlen, "not a k_proxy database (%s)", sqlite3_errmsg(db));
        return -1;
    }
    if (fresh)
        return 0;
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        seterr(err, errlen, "corrupt database (%s)", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    ok = sqlite3_column_text(st, 0) != NULL &&
         strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
    sqlite3_finalize(st);
    if (!ok) {
        seterr(err, errlen, "corrupt database: integrity check failed");
        return -1;
    }
    if (*version > KPX_STORE_SCHEMA_VERSION) {
        seterr(err, errlen, "database schema %d is newer than this k_proxy (%d)", *version,
               KPX_STORE_SCHEMA_VERSION);
        return -1;
    }
    if (*version == 0) {
        if (int_query(db, "SELECT count(*) FROM sqlite_master", &tables) != 0 || tables != 0) {
            seterr(err, errlen, "not a k_proxy database: it has tables but no kcard schema");
            return -1;
        }
    }
    return 0;
}

static int create_schema(sqlite3 *db, char *err, size_t errlen)
{
    uint8_t key[KPX_REF_KEY_LEN];
    sqlite3_stmt *st = NULL;
    int ok;

    if (exec(db,
             "BEGIN IMMEDIATE;"
             "CREATE TABLE users ("
             " username TEXT PRIMARY KEY NOT NULL,"
             " registered_at INTEGER NOT NULL,"
             " auth_mode TEXT NOT NULL,"
             " credential_id BLOB,"
             " cose_key BLOB,"
             " alg INTEGER NOT NULL DEFAULT 0,"
             " sign_count INTEGER NOT NULL DEFAULT 0,"
             " user_id BLOB);"
             "CREATE TABLE sessions ("
             " id TEXT PRIMARY KEY NOT NULL,"
             " token_hash BLOB NOT NULL UNIQUE,"
             " username TEXT NOT NULL,"
             " auth_mode TEXT NOT NULL,"
             " created_at INTEGER NOT NULL,"
             " expires_at INTEGER NOT NULL,"
             " requests INTEGER NOT NULL DEFAULT 0,"
             " revoked INTEGER NOT NULL DEFAULT 0);"
             "CREATE INDEX sessions_by_username ON sessions(username);"
             "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL);",
             err, errlen) != 0)
        return -1;
    ok = ksvc_random(key, sizeof(key)) == 0 &&
         sqlite3_prepare_v2(db, "INSERT INTO meta (key, value) VALUES ('ref_key', ?1)", -1, &st,
                            NULL) == SQLITE_OK &&
         sqlite3_bind_blob(st, 1, key, sizeof(key), SQLITE_TRANSIENT) == SQLITE_OK &&
         sqlite3_step(st) == SQLITE_DONE;
    OPENSSL_cleanse(key, sizeof(key));
    if (!ok)
        seterr(err, errlen, "cannot create the reference key: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (!ok || exec(db, "PRAGMA user_version = 1; COMMIT;", err, errlen) != 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static int load_ref_key(struct kpx_store *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'ref_key'", -1, &st,
                                NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_BLOB &&
             sqlite3_column_bytes(st, 0) == KPX_REF_KEY_LEN;

    if (ok)
        memcpy(s->ref_key, sqlite3_column_blob(st, 0), KPX_REF_KEY_LEN);
    else
        seterr(err, errlen, "the reference key is missing or not %d bytes", KPX_REF_KEY_LEN);
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

struct kpx_store *kpx_store_open(const char *path, char *err, size_t errlen)
{
    struct kpx_store *s;
    char why[512];
    bool memory, fresh;
    int version = 0;

    if (path == NULL || path[0] == '\0') {
        seterr(err, errlen, "no state database path given");
        return NULL;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    memory = strcmp(path, ":memory:") == 0;
    fresh = memory || access(path, F_OK) != 0;
    if (!memory && fresh) {
        int fd;
        if (ksvc_make_parent_dirs(path, err, errlen) != 0)
            goto fail;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            seterr(err, errlen, "cannot create %s: %s", path, strerror(errno));
            goto fail;
        }
        close(fd);
    }
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        seterr(err, errlen, "cannot open %s: %s", path,
               s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    /* WAL with synchronous=NORMAL: every commit survives a crash of k_proxy;
     * only a power loss can drop the last moments (a login to repeat, a
     * request count). FULL would cost an fsync per counter request. */
    if (check_existing(s->db, fresh, &version, why, sizeof(why)) != 0 ||
        exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", why, sizeof(why)) != 0 ||
        (version == 0 && create_schema(s->db, why, sizeof(why)) != 0) ||
        load_ref_key(s, why, sizeof(why)) != 0) {
        seterr(err, errlen, "%s: %s", path, why);
        goto fail;
    }
    return s;
fail:
    kpx_store_close(s);
    return NULL;
}

void kpx_store_close(struct kpx_store *s)
{
    if (s == NULL)
        return;
    sqlite3_close(s->db);
    OPENSSL_cleanse(s->ref_key, sizeof(s->ref_key));
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int kpx_store_ref_key(struct kpx_store *s, uint8_t out[KPX_REF_KEY_LEN])
{
    if (s == NULL || out == NULL)
        return KPX_STORE_INVALID;
    memcpy(out, s->ref_key, KPX_REF_KEY_LEN);
    return KPX_STORE_OK;
}

/* ---- rows --------------------------------------------------------------- */

static int copy_text(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);

    if (t == NULL || n < 0 || (size_t)n >= cap)
        return -1;
    memcpy(out, t, (size_t)n);
    out[n] = '\0';
    return 0;
}

/* A BLOB (or NULL: empty) of at most cap bytes. */
static int copy_blob(sqlite3_stmt *st, int col, uint8_t *out, size_t cap, size_t *len)
{
    int type = sqlite3_column_type(st, col);
    int n;

    *len = 0;
    if (type == SQLITE_NULL)
        return 0;
    if (type != SQLITE_BLOB)
        return -1;
    n = sqlite3_column_bytes(st, col);
    if (n < 0 || (size_t)n > cap)
        return -1;
    if (n > 0)
        memcpy(out, sqlite3_column_blob(st, col), (size_t)n);
    *len = (size_t)n;
    return 0;
}

#define USER_COLS                                                                                  \
    "username, registered_at, auth_mode, credential_id, cose_key, alg, sign_count, user_id"

static int read_user(sqlite3_stmt *st, struct kpx_user *u)
{
    int64_t count;

    memset(u, 0, sizeof(*u));
    if (copy_text(st, 0, u->username, sizeof(u->username)) != 0 ||
        copy_text(st, 2, u->auth_mode, sizeof(u->auth_mode)) != 0 ||
        copy_blob(st, 3, u->cred.cred_id, sizeof(u->cred.cred_id), &u->cred.cred_id_len) != 0 ||
        copy_blob(st, 4, u->cred.cose_key, sizeof(u->cred.cose_key), &u->cred.cose_key_len) != 0 ||
        copy_blob(st, 7, u->cred.user_id, sizeof(u->cred.user_id), &u->cred.user_id_len) != 0)
        return -1;
    u->registered_at = sqlite3_column_int64(st, 1);
    u->cred.alg = sqlite3_column_int(st, 5);
    count = sqlite3_column_int64(st, 6);
    if (count < 0 || count > UINT32_MAX)
        return -1;
    u->cred.sign_count = (uint32_t)count;
    return 0;
}

/* Row of SESSION_COLS; the stored hash must equal want (constant time). */
static int read_session(sqlite3_stmt *st, const uint8_t want[KSVC_SHA256_LEN],
                        struct kpx_session *out)
{
    struct kpx_session tmp;

    memset(&tmp, 0, sizeof(tmp));
    if (sqlite3_column_type(st, 1) != SQLITE_BLOB ||
        sqlite3_column_bytes(st, 1) != KSVC_SHA256_LEN ||
        CRYPTO_memcmp(sqlite3_column_blob(st, 1), want, KSVC_SHA256_LEN) != 0)
        return KPX_STORE_NOT_FOUND;
    if (copy_text(st, 0, tmp.id, sizeof(tmp.id)) != 0 ||
        copy_text(st, 2, tmp.username, sizeof(tmp.username)) != 0 ||
        copy_text(st, 3, tmp.auth_mode, sizeof(tmp.auth_mode)) != 0)
        return KPX_STORE_ERROR;
    tmp.created_at = sqlite3_column_int64(st, 4);
    tmp.expires_at = sqlite3_column_int64(st, 5);
    tmp.requests = sqlite3_column_int64(st, 6);
    if (out != NULL)
        *out = tmp;
    return KPX_STORE_OK;
}

/* ---- users -------------------------------------------------------------- */

static int bind_blob_or_null(sqlite3_stmt *st, int idx, const uint8_t *p, size_t len)
{
    if (len == 0)
        return sqlite3_bind_null(st, idx);
    return sqlite3_bind_blob(st, idx, p, (int)len, SQLITE_TRANSIENT);
}

int kpx_store_user_add(struct kpx_store *s, const struct kpx_user *u, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (s == NULL || u == NULL)
        return KPX_STORE_INVALID;
    if (!kpx_username_valid(u->username)) {
        seterr(err, errlen, "username must be 1 to 64 characters of [A-Za-z0-9._-]");
        return KPX_STORE_INVALID;
    }
    if (!auth_mode_valid(u->auth_mode) || u->cred.cred_id_len > sizeof(u->cred.cred_id) ||
        u->cred.cose_key_len > sizeof(u->cred.cose_key) ||
        u->cred.user_id_len > sizeof(u->cred.user_id)) {
        seterr(err, errlen, "user record out of bounds (auth mode or credential lengths)");
        return KPX_STORE_INVALID;
    }
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO users (" USER_COLS ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8)", -1,
                           &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, u->username, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, u->registered_at) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, u->auth_mode, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        bind_blob_or_null(st, 4, u->cred.cred_id, u->cred.cred_id_len) != SQLITE_OK ||
        bind_blob_or_null(st, 5, u->cred.cose_key, u->cred.cose_key_len) != SQLITE_OK ||
        sqlite3_bind_int(st, 6, u->cred.alg) != SQLITE_OK ||
        sqlite3_bind_int64(st, 7, u->cred.sign_count) != SQLITE_OK ||
        bind_blob_or_null(st, 8, u->cred.user_id, u->cred.user_id_len) != SQLITE_OK) {
        rc = db_fail(s, err, errlen, "user add");
        goto out;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = KPX_STORE_OK;
    } else if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
        seterr(err, errlen, "user %s is already registered", u->username);
        rc = KPX_STORE_EXISTS;
    } else {
        rc = db_fail(s, err, errlen, "user add");
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int kpx_store_user_get(struct kpx_store *s, const char *username, struct kpx_user *out, char *err,
                       size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (s == NULL || out == NULL || !kpx_username_valid(username)) {
        seterr(err, errlen, "invalid username");
        return KPX_STORE_INVALID;
    }
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db, "SELECT " USER_COLS " FROM users WHERE username = ?1", -1, &st,
                           NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, username, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        rc = db_fail(s, err, errlen, "user get");
        goto out;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = read_user(st, out) == 0 ? KPX_STORE_OK : KPX_STORE_ERROR;
        if (rc != KPX_STORE_OK)
            seterr(err, errlen, "the stored record of user %s is malformed", username);
    } else if (rc == SQLITE_DONE) {
        seterr(err, errlen, "user %s is not registered", username);
        rc = KPX_STORE_NOT_FOUND;
    } else {
        rc = db_fail(s, err, errlen, "user get");
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Runs a one-parameter (text) statement to completion; *changes gets
 * sqlite3_changes. */
static int run_text(struct kpx_store *s, const char *sql, const char *arg, int64_t *changes)
{
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK &&
             sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_DONE;

    sqlite3_finalize(st);
    if (ok && changes != NULL)
        *changes = sqlite3_changes(s->db);
    return ok ? 0 : -1;
}

int kpx_store_user_delete(struct kpx_store *s, const char *username, int64_t *sessions_revoked,
                          char *err, size_t errlen)
{
    int64_t users = 0, sessions = 0;
    int rc;

    if (sessions_revoked != NULL)
        *sessions_revoked = 0;
    if (s == NULL || !kpx_username_valid(username)) {
        seterr(err, errlen, "invalid username");
        return KPX_STORE_INVALID;
    }
    pthread_mutex_lock(&s->lock);
    if (exec(s->db, "BEGIN IMMEDIATE", err, errlen) != 0) {
        rc = KPX_STORE_ERROR;
        goto out;
    }
    if (run_text(s, "DELETE FROM users WHERE username = ?1", username, &users) != 0 ||
        (users > 0 && run_text(s,
                               "UPDATE sessions SET revoked = 1 WHERE username = ?1 AND "
                               "revoked = 0",
                               username, &sessions) != 0)) {
        rc = db_fail(s, err, errlen, "user delete");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    if (exec(s->db, "COMMIT", err, errlen) != 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        rc = KPX_STORE_ERROR;
        goto out;
    }
    if (users == 0) {
        seterr(err, errlen, "user %s is not registered", username);
        rc = KPX_STORE_NOT_FOUND;
    } else {
        rc = KPX_STORE_OK;
        if (sessions_revoked != NULL)
            *sessions_revoked = sessions;
    }
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int kpx_store_user_list(struct kpx_store *s, kpx_user_fn fn, void *ctx, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    struct kpx_user *u;
    int rc;

    if (s == NULL || fn == NULL)
        return KPX_STORE_INVALID;
    if ((u = malloc(sizeof(*u))) == NULL) {
        seterr(err, errlen, "out of memory");
        return KPX_STORE_ERROR;
    }
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db,
                           "SELECT " USER_COLS " FROM users ORDER BY registered_at, username", -1,
                           &st, NULL) != SQLITE_OK) {
        rc = db_fail(s, err, errlen, "user list");
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (read_user(st, u) != 0) {
            seterr(err, errlen, "a stored user record is malformed");
            rc = KPX_STORE_ERROR;
            goto out;
        }
        if ((rc = fn(ctx, u)) != 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? KPX_STORE_OK : db_fail(s, err, errlen, "user list");
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    free(u);
    return rc;
}

int kpx_store_user_update_sign_count(struct kpx_store *s, const char *username, uint32_t sign_count,
                                     char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int64_t exists = 0;
    int rc;

    if (s == NULL || !kpx_username_valid(username)) {
        seterr(err, errlen, "invalid username");
        return KPX_STORE_INVALID;
    }
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE users SET sign_count = ?2 WHERE username = ?1 AND "
                           "(?2 > sign_count OR (?2 = 0 AND sign_count = 0))",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, username, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, sign_count) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(s, err, errlen, "sign count update");
        goto out;
    }
    if (sqlite3_changes(s->db) == 1) {
        rc = KPX_STORE_OK;
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM users WHERE username = ?1", -1, &st,
                           NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, username, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(s, err, errlen, "sign count update");
        goto out;
    }
    exists = sqlite3_column_int64(st, 0);
    if (exists == 0) {
        seterr(err, errlen, "user %s is not registered", username);
        rc = KPX_STORE_NOT_FOUND;
    } else {
        seterr(err, errlen, "signCount %u did not increase: possible cloned credential",
               sign_count);
        rc = KPX_STORE_CONFLICT;
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- sessions ----------------------------------------------------------- */

int kpx_store_session_create(struct kpx_store *s, const char *username, const char *auth_mode,
                             int64_t ttl_s, int64_t now, char token_out[KPX_TOKEN_BUF],
                             struct kpx_session *out, char *err, size_t errlen)
{
    uint8_t raw[32], hash[KSVC_SHA256_LEN], idraw[KPX_SESSION_ID_LEN / 2];
    char token[KPX_TOKEN_BUF], id[KPX_SESSION_ID_LEN + 1];
    sqlite3_stmt *st = NULL;
    int rc;

    if (token_out != NULL)
        token_out[0] = '\0';
    if (s == NULL || token_out == NULL || !kpx_username_valid(username) ||
        !auth_mode_valid(auth_mode) || ttl_s <= 0 || now < 0 || now > INT64_MAX - ttl_s) {
        seterr(err, errlen, "invalid session parameters (username, auth mode or ttl)");
        return KPX_STORE_INVALID;
    }
    if (ksvc_random(raw, sizeof(raw)) != 0 || ksvc_random(idraw, sizeof(idraw)) != 0 ||
        ksvc_b64url_encode(raw, sizeof(raw), token, sizeof(token)) != KPX_TOKEN_LEN ||
        token_hash(token, hash) != KPX_STORE_OK) {
        OPENSSL_cleanse(raw, sizeof(raw));
        OPENSSL_cleanse(token, sizeof(token));
        seterr(err, errlen, "cannot make a session token (random or hash failed)");
        return KPX_STORE_ERROR;
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    ksvc_hex(idraw, sizeof(idraw), id);

    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO sessions (id, token_hash, username, auth_mode, created_at, "
                           "expires_at, requests, revoked) VALUES (?1,?2,?3,?4,?5,?6,0,0)",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, username, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, auth_mode, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, now) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, now + ttl_s) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(s, err, errlen, "session create");
    } else {
        rc = KPX_STORE_OK;
        memcpy(token_out, token, KPX_TOKEN_BUF);
        if (out != NULL) {
            memset(out, 0, sizeof(*out));
            memcpy(out->id, id, sizeof(out->id));
            snprintf(out->username, sizeof(out->username), "%s", username);
            snprintf(out->auth_mode, sizeof(out->auth_mode), "%s", auth_mode);
            out->created_at = now;
            out->expires_at = now + ttl_s;
            out->requests = 0;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    OPENSSL_cleanse(token, sizeof(token));
    return rc;
}

/* Runs sql (params: ?1 token hash, ?2 now) returning SESSION_COLS for the
 * live session of token. */
static int session_query(struct kpx_store *s, const char *sql, const char *what, const char *token,
                         int64_t now, struct kpx_session *out, char *err, size_t errlen)
{
    uint8_t hash[KSVC_SHA256_LEN];
    sqlite3_stmt *st = NULL;
    int rc, step;

    if (s == NULL)
        return KPX_STORE_INVALID;
    if (!token_well_formed(token)) {
        seterr(err, errlen, "not a session token");
        return KPX_STORE_NOT_FOUND;
    }
    if (token_hash(token, hash) != KPX_STORE_OK) {
        seterr(err, errlen, "cannot hash the token");
        return KPX_STORE_ERROR;
    }
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_blob(st, 1, hash, sizeof(hash), SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, now) != SQLITE_OK) {
        rc = db_fail(s, err, errlen, what);
        goto out;
    }
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        rc = read_session(st, hash, out);
        /* RETURNING statements finish (and commit) when stepped to the end */
        while ((step = sqlite3_step(st)) == SQLITE_ROW)
            ;
    } else {
        rc = KPX_STORE_NOT_FOUND;
    }
    if (step != SQLITE_DONE)
        rc = db_fail(s, err, errlen, what);
    else if (rc == KPX_STORE_NOT_FOUND)
        seterr(err, errlen, "no live session for that token (unknown, expired or revoked)");
    else if (rc == KPX_STORE_ERROR)
        seterr(err, errlen, "a stored session record is malformed");
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    OPENSSL_cleanse(hash, sizeof(hash));
    return rc;
}

int kpx_store_session_lookup(struct kpx_store *s, const char *token, int64_t now,
                             struct kpx_session *out, char *err, size_t errlen)
{
    return session_query(s,
                         "SELECT " SESSION_COLS " FROM sessions WHERE token_hash = ?1 AND "
                         "revoked = 0 AND expires_at > ?2",
                         "session lookup", token, now, out, err, errlen);
}

int kpx_store_session_touch(struct kpx_store *s, const char *token, int64_t now,
                            struct kpx_session *out, char *err, size_t errlen)
{
    return session_query(s,
                         "UPDATE sessions SET requests = requests + 1 WHERE token_hash = ?1 AND "
                         "revoked = 0 AND expires_at > ?2 RETURNING " SESSION_COLS,
                         "session touch", token, now, out, err, errlen);
}

int kpx_store_session_revoke(struct kpx_store *s, const char *token, int64_t now,
                             struct kpx_session *out, char *err, size_t errlen)
{
    return session_query(s,
                         "UPDATE sessions SET revoked = 1 WHERE token_hash = ?1 AND "
                         "revoked = 0 AND expires_at > ?2 RETURNING " SESSION_COLS,
                         "session revoke", token, now, out, err, errlen);
}

static int count_query(struct kpx_store *s, const char *sql, int64_t now, bool changes,
                       int64_t *result, const char *what, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = KPX_STORE_OK, step;

    if (result != NULL)
        *result = 0;
    if (s == NULL)
        return KPX_STORE_INVALID;
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(st, 1, now) != SQLITE_OK) {
        rc = db_fail(s, err, errlen, what);
        goto out;
    }
    step = sqlite3_step(st);
    if (changes && step == SQLITE_DONE) {
        if (result != NULL)
            *result = sqlite3_changes(s->db);
    } else if (!changes && step == SQLITE_ROW) {
        if (result != NULL)
            *result = sqlite3_column_int64(st, 0);
    } else {
        rc = db_fail(s, err, errlen, what);
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int kpx_store_sessions_purge_expired(struct kpx_store *s, int64_t now, int64_t *removed, char *err,
                                     size_t errlen)
{
    return count_query(s, "DELETE FROM sessions WHERE expires_at <= ?1 OR revoked != 0", now, true,
                       removed, "session purge", err, errlen);
}

int kpx_store_sessions_active(struct kpx_store *s, int64_t now, int64_t *count, char *err,
                              size_t errlen)
{
    return count_query(s, "SELECT count(*) FROM sessions WHERE revoked = 0 AND expires_at > ?1",
                       now, false, count, "session count", err, errlen);
}
