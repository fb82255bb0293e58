/* The portal's session table: a fixed array behind one lock. Ids are
 * compared in constant time; tokens are zeroed when an entry goes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "services/common/crypto.h"
#include "services/k_client_portal/portal.h"

struct entry {
    bool used;
    char sid[KCP_SID_LEN + 1];
    char token[KCP_TOKEN_MAX + 1];
    char username[KCP_USERNAME_MAX + 1];
    time_t expires_at;
};

struct kcp_sessions {
    pthread_mutex_t lock;
    size_t max;
    struct entry *e;
};

struct kcp_sessions *kcp_sessions_new(size_t max)
{
    if (max == 0)
        return NULL;
    struct kcp_sessions *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->e = calloc(max, sizeof(*t->e));
    if (t->e == NULL || pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t->e);
        free(t);
        return NULL;
    }
    t->max = max;
    return t;
}

static void drop(struct entry *e)
{
    OPENSSL_cleanse(e, sizeof(*e));
}

void kcp_sessions_free(struct kcp_sessions *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->max; i++)
        drop(&t->e[i]);
    free(t->e);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static void purge_expired(struct kcp_sessions *t, time_t now)
{
    for (size_t i = 0; i < t->max; i++)
        if (t->e[i].used && t->e[i].expires_at <= now)
            drop(&t->e[i]);
}

/* The entry of sid; a well-formed id is compared against every slot. */
static struct entry *find(struct kcp_sessions *t, const char *sid)
{
    if (!kcp_sid_well_formed(sid))
        return NULL;
    struct entry *hit = NULL;
    for (size_t i = 0; i < t->max; i++)
        if (t->e[i].used && CRYPTO_memcmp(t->e[i].sid, sid, KCP_SID_LEN) == 0)
            hit = &t->e[i];
    return hit;
}

int kcp_sessions_put(struct kcp_sessions *t, const char *token, const char *username,
                     time_t expires_at, time_t now, char *sid_out)
{
    if (t == NULL || token == NULL || username == NULL || sid_out == NULL || strlen(token) == 0 ||
        strlen(token) > KCP_TOKEN_MAX || strlen(username) > KCP_USERNAME_MAX)
        return -1;
    char sid[KCP_SID_LEN + 1];
    if (ksvc_random_b64url(32, sid, sizeof(sid)) != 0 || strlen(sid) != KCP_SID_LEN)
        return -1;
    pthread_mutex_lock(&t->lock);
    purge_expired(t, now);
    struct entry *slot = NULL;
    for (size_t i = 0; i < t->max && slot == NULL; i++)
        if (!t->e[i].used)
            slot = &t->e[i];
    if (slot == NULL) { /* full of live sessions: the one ending soonest goes */
        slot = &t->e[0];
        for (size_t i = 1; i < t->max; i++)
            if (t->e[i].expires_at < slot->expires_at)
                slot = &t->e[i];
        drop(slot);
    }
    slot->used = true;
    memcpy(slot->sid, sid, sizeof(sid));
    snprintf(slot->token, sizeof(slot->token), "%s", token);
    snprintf(slot->username, sizeof(slot->username), "%s", username);
    slot->expires_at = expires_at;
    pthread_mutex_unlock(&t->lock);
    memcpy(sid_out, sid, sizeof(sid));
    OPENSSL_cleanse(sid, sizeof(sid));
    return 0;
}

bool kcp_sessions_get(struct kcp_sessions *t, const char *sid, time_t now,
                      struct kcp_session_view *out)
{
    if (t == NULL || out == NULL)
        return false;
    pthread_mutex_lock(&t->lock);
    struct entry *e = find(t, sid);
    bool ok = false;
    if (e != NULL && e->expires_at <= now) {
        drop(e);
    } else if (e != NULL) {
        memcpy(out->token, e->token, sizeof(out->token));
        memcpy(out->username, e->username, sizeof(out->username));
        out->expires_at = e->expires_at;
        ok = true;
    }
    pthread_mutex_unlock(&t->lock);
    return ok;
}

bool kcp_sessions_remove(struct kcp_sessions *t, const char *sid)
{
    if (t == NULL)
        return false;
    pthread_mutex_lock(&t->lock);
    struct entry *e = find(t, sid);
    if (e != NULL)
        drop(e);
    pthread_mutex_unlock(&t->lock);
    return e != NULL;
}

size_t kcp_sessions_count(struct kcp_sessions *t, time_t now)
{
    if (t == NULL)
        return 0;
    size_t n = 0;
    pthread_mutex_lock(&t->lock);
    purge_expired(t, now);
    for (size_t i = 0; i < t->max; i++)
        n += t->e[i].used;
    pthread_mutex_unlock(&t->lock);
    return n;
}
