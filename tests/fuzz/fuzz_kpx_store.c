/* k_proxy's store reads its rows back from a file: fuzz (a) whole database
 * files handed to kpx_store_open (corrupt, foreign, newer, empty: refused,
 * never a crash) and (b) rows of any SQLite type and size written behind
 * the store's back: session rows are loaded into memory at open (a
 * malformed one refuses the file), user rows read through get/list; then
 * the loaded sessions go through touch, flush, sweep, revoke and user
 * delete. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "services/common/crypto.h"
#include "services/k_proxy/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed token whose hash the fuzzed session rows may carry. */
static const char TOKEN[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

static char dir[64], path[128];

static void remove_db(void)
{
    char p[160];

    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

static void cleanup(void)
{
    remove_db();
    rmdir(dir);
}

static int count_user(void *ctx, const struct kpx_user *u)
{
    (void)u;
    (*(int *)ctx)++;
    return 0;
}

static void exercise(void)
{
    char err[256], token[KPX_TOKEN_BUF];
    struct kpx_store *s = kpx_store_open(path, err, sizeof(err));
    struct kpx_session sess;
    struct kpx_user *u;
    uint8_t key[KPX_REF_KEY_LEN];
    int n = 0;

    if (s == NULL)
        return;
    u = malloc(sizeof(*u));
    if (u != NULL) {
        kpx_store_user_list(s, count_user, &n, err, sizeof(err));
        kpx_store_user_get(s, "alice", u, err, sizeof(err));
        free(u);
    }
    kpx_store_session_lookup(s, TOKEN, 1000, &sess, err, sizeof(err));
    kpx_store_session_touch(s, TOKEN, 1000, &sess, err, sizeof(err));
    kpx_store_ref_key(s, key);
    kpx_store_session_create(s, "alice", "card_probe", 60, 1000, token, &sess, err, sizeof(err));
    kpx_store_flush(s, err, sizeof(err));
    {
        int64_t n;
        kpx_store_sessions_active(s, 1000, &n, err, sizeof(err));
        kpx_store_sessions_sweep(s, 1030, 1, &n, err, sizeof(err));
    }
    kpx_store_session_revoke(s, TOKEN, 1000, &sess, err, sizeof(err));
    kpx_store_user_delete(s, "alice", NULL, err, sizeof(err));
    kpx_store_close(s);
}

/* Reads one field: type byte, length byte, bytes. Binds it as column idx. */
static void bind_field(sqlite3_stmt *st, int idx, const uint8_t **p, size_t *left)
{
    uint8_t type, len;
    int64_t v = 0;

    if (*left < 2) {
        sqlite3_bind_null(st, idx);
        return;
    }
    type = (*p)[0];
    len = (*p)[1];
    *p += 2;
    *left -= 2;
    if (len > *left)
        len = (uint8_t)*left;
    switch (type % 6) {
    case 0:
        sqlite3_bind_null(st, idx);
        break;
    case 1:
        memcpy(&v, *p, len < sizeof(v) ? len : sizeof(v));
        sqlite3_bind_int64(st, idx, v);
        break;
    case 2:
        sqlite3_bind_text(st, idx, (const char *)*p, len, SQLITE_TRANSIENT);
        break;
    case 3:
        sqlite3_bind_blob(st, idx, *p, len, SQLITE_TRANSIENT);
        break;
    case 4:
        sqlite3_bind_double(st, idx, (double)len * 1.5 - 100);
        break;
    default: /* a large blob, past every buffer */
        sqlite3_bind_zeroblob(st, idx, 2000 + len);
        break;
    }
    *p += len;
    *left -= len;
}

static void fuzz_rows(const uint8_t *data, size_t size)
{
    char err[256];
    struct kpx_store *s;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    uint8_t hash[KSVC_SHA256_LEN];

    remove_db();
    s = kpx_store_open(path, err, sizeof(err));
    if (s == NULL)
        abort(); /* a fresh file must always open */
    kpx_store_close(s);
    if (sqlite3_open(path, &db) != SQLITE_OK)
        abort();
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO users (username, registered_at, auth_mode, credential_id, "
                           "cose_key, alg, sign_count, user_id) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                           -1, &st, NULL) == SQLITE_OK) {
        for (int i = 1; i <= 8; i++)
            bind_field(st, i, &data, &size);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    ksvc_sha256(TOKEN, strlen(TOKEN), hash);
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO sessions (id, token_hash, username, auth_mode, created_at, "
                           "expires_at, requests, revoked) VALUES (?1,?2,?3,?4,?5,?6,?7,0)",
                           -1, &st, NULL) == SQLITE_OK) {
        uint8_t shape = size > 0 ? data[0] : 0;
        if (shape & 0x80) { /* a well-formed row but for its numbers */
            sqlite3_bind_text(st, 1, "00112233445566778899aabbccddeeff", -1, SQLITE_STATIC);
            sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 3, "alice", -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, "card_probe", -1, SQLITE_STATIC);
            data++;
            size--;
            for (int i = 5; i <= 7; i++)
                bind_field(st, i, &data, &size);
        } else {
            bind_field(st, 1, &data, &size);
            if (size > 0 && data[0] % 4 == 0) {
                data++;
                size--;
                bind_field(st, 2, &data, &size);
            } else {
                sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_TRANSIENT);
            }
            for (int i = 3; i <= 7; i++)
                bind_field(st, i, &data, &size);
        }
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    exercise();
}

static void fuzz_file(const uint8_t *data, size_t size)
{
    FILE *f;

    remove_db();
    f = fopen(path, "wb");
    if (f == NULL)
        abort();
    if (size > 0 && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    exercise();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dir[0] == '\0') {
        /* tmpfs when there is one: the store syncs every commit */
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof(dir), "%s/fuzz_kpx_store.%ld", base, (long)getpid());
        mkdir(dir, 0700);
        snprintf(path, sizeof(path), "%s/k_proxy.db", dir);
        atexit(cleanup);
    }
    if (size == 0)
        return 0;
    if (data[0] & 1)
        fuzz_rows(data + 1, size - 1);
    else
        fuzz_file(data + 1, size - 1);
    return 0;
}
