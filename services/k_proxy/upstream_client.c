/* Signed requests from k_proxy to k_server (see upstream_client.h).
 *
 * Each request carries this process's instance id and the next number of
 * its sequence (services/API.md). The id is random and made at every start,
 * not kept in the state database: a sequence then never has to continue
 * across a restart, so nothing is written per request or per block here, and
 * a copied or restored state file can never make two processes (or one
 * process twice) sign the same (id, seq). k_server bounds what this costs it
 * by forgetting instances idle for longer than the skew window plus a margin
 * (their requests are stale by then). After k_server restarts it refuses
 * every request of the instances it knew (it cannot know which numbers they
 * had used), so on a replayed_request refusal this client moves to a new
 * instance id and sends the request once more, newly signed. */
#include "services/k_proxy/upstream_client.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "services/common/crypto.h"

#define POOL_MAX 32
#define REPLY_MAX (64 * 1024)
#define COUNTER_PATH "/counter/next"

struct kpx_upstream {
    char url[1024];
    char *ca_file;
    uint8_t key[KSVC_UPSTREAM_KEY_LEN];
    long timeout_ms;
    pthread_mutex_t lock;
    CURL *idle[POOL_MAX]; /* handles keep their connection cache between requests */
    size_t nidle;
    /* under lock: the signing identity, and how often it was renewed */
    uint8_t instance[KSVC_UPSTREAM_INSTANCE_LEN];
    uint64_t seq; /* the last number used */
    unsigned long renewals;
};

struct reply {
    char buf[REPLY_MAX + 1];
    size_t len;
    int overflow;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t len = size * n;
    if (len > REPLY_MAX - r->len) {
        r->overflow = 1;
        return 0; /* aborts the transfer */
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    r->buf[r->len] = '\0';
    return len;
}

struct kpx_upstream *kpx_upstream_new(const struct kpx_upstream_cfg *cfg, char *err, size_t errlen)
{
    size_t blen = strlen(cfg->base_url);
    while (blen > 0 && cfg->base_url[blen - 1] == '/')
        blen--;
    if (strncmp(cfg->base_url, "http://", 7) != 0 && strncmp(cfg->base_url, "https://", 8) != 0) {
        snprintf(err, errlen, "--server-base-url %s: must start with http:// or https://",
                 cfg->base_url);
        return NULL;
    }
    struct kpx_upstream *u = calloc(1, sizeof(*u));
    if (u == NULL || blen + strlen(COUNTER_PATH) >= sizeof(u->url)) {
        snprintf(err, errlen, u ? "--server-base-url is too long" : "out of memory");
        free(u);
        return NULL;
    }
    memcpy(u->url, cfg->base_url, blen);
    memcpy(u->url + blen, COUNTER_PATH, strlen(COUNTER_PATH) + 1);
    if (cfg->ca_file != NULL && (u->ca_file = strdup(cfg->ca_file)) == NULL) {
        free(u);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(u->key, cfg->key, sizeof(u->key));
    u->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
    pthread_mutex_init(&u->lock, NULL);
    if (ksvc_random(u->instance, sizeof(u->instance)) != 0) {
        snprintf(err, errlen, "no random bytes for the instance id");
        kpx_upstream_free(u);
        return NULL;
    }
    return u;
}

void kpx_upstream_free(struct kpx_upstream *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->nidle; i++)
        curl_easy_cleanup(u->idle[i]);
    OPENSSL_cleanse(u->key, sizeof(u->key));
    pthread_mutex_destroy(&u->lock);
    free(u->ca_file);
    free(u);
}

static CURL *take_handle(struct kpx_upstream *u)
{
    CURL *h = NULL;
    pthread_mutex_lock(&u->lock);
    if (u->nidle > 0)
        h = u->idle[--u->nidle];
    pthread_mutex_unlock(&u->lock);
    return h ? h : curl_easy_init();
}

static void give_back(struct kpx_upstream *u, CURL *h)
{
    pthread_mutex_lock(&u->lock);
    if (u->nidle < POOL_MAX) {
        u->idle[u->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&u->lock);
    if (h != NULL)
        curl_easy_cleanup(h);
}

int kpx_upstream_parse_counter(const char *body, size_t len, const char *ref, int64_t *value,
                               char *msg, size_t msglen)
{
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = -1;
    if (j == NULL) {
        snprintf(msg, msglen, "k_server's answer is not JSON: %s", jerr.text);
        return -1;
    }
    json_t *counter = json_object_get(j, "counter"), *echo = json_object_get(j, "ref");
    if (!json_is_integer(counter) || json_integer_value(counter) < 1)
        snprintf(msg, msglen, "k_server's answer has no positive integer \"counter\"");
    else if (!json_is_string(echo) || strcmp(json_string_value(echo), ref) != 0)
        snprintf(msg, msglen, "k_server's answer is for another session reference");
    else {
        *value = json_integer_value(counter);
        rc = 0;
    }
    json_decref(j);
    return rc;
}

/* The "error" member of an error answer, for the message; "" when absent. */
static void error_code(const char *body, size_t len, char *out, size_t cap)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    json_t *e = json_object_get(j, "error");
    snprintf(out, cap, "%s", json_is_string(e) ? json_string_value(e) : "");
    json_decref(j);
}

/* The identity to sign the next request with: the instance and the next
 * number of its sequence. */
static void next_identity(struct kpx_upstream *u, uint8_t instance[KSVC_UPSTREAM_INSTANCE_LEN],
                          uint64_t *seq)
{
    pthread_mutex_lock(&u->lock);
    memcpy(instance, u->instance, KSVC_UPSTREAM_INSTANCE_LEN);
    *seq = ++u->seq;
    pthread_mutex_unlock(&u->lock);
}

/* k_server refused a request of instance as replayed: continue under a new
 * instance, unless a concurrent request already did. */
static int renew_identity(struct kpx_upstream *u,
                          const uint8_t instance[KSVC_UPSTREAM_INSTANCE_LEN])
{
    uint8_t fresh[KSVC_UPSTREAM_INSTANCE_LEN];
    if (ksvc_random(fresh, sizeof(fresh)) != 0)
        return -1;
    pthread_mutex_lock(&u->lock);
    if (memcmp(u->instance, instance, sizeof(fresh)) == 0) {
        memcpy(u->instance, fresh, sizeof(fresh));
        u->seq = 0;
        u->renewals++;
    }
    pthread_mutex_unlock(&u->lock);
    return 0;
}

unsigned long kpx_upstream_renewals(struct kpx_upstream *u)
{
    pthread_mutex_lock(&u->lock);
    unsigned long n = u->renewals;
    pthread_mutex_unlock(&u->lock);
    return n;
}

/* One signed request; *replayed is set when k_server refused it as replayed. */
static enum kpx_upstream_status attempt(struct kpx_upstream *u, const char *ref, int64_t *value,
                                        uint8_t instance[KSVC_UPSTREAM_INSTANCE_LEN],
                                        bool *replayed, char *msg, size_t msglen)
{
    static const char body[] = "{}";
    char authz[KSVC_UPSTREAM_HEADER_MAX + 32], header[KSVC_UPSTREAM_HEADER_MAX + 64];
    uint64_t seq = 0;
    *replayed = false;
    next_identity(u, instance, &seq);
    if (ksvc_upstream_sign(u->key, instance, seq, "POST", COUNTER_PATH, ref, body, strlen(body),
                           time(NULL), authz, sizeof(authz)) != 0) {
        snprintf(msg, msglen, "cannot sign the request to k_server");
        return KPX_UPSTREAM_BAD_REPLY;
    }
    snprintf(header, sizeof(header), "Authorization: %s", authz);
    CURL *h = take_handle(u);
    struct reply *r = calloc(1, sizeof(*r));
    struct curl_slist *hdrs = curl_slist_append(NULL, header);
    struct curl_slist *all =
        hdrs ? curl_slist_append(hdrs, "Content-Type: application/json") : NULL;
    enum kpx_upstream_status st = KPX_UPSTREAM_UNREACHABLE;
    if (h == NULL || r == NULL || all == NULL) {
        snprintf(msg, msglen, "out of memory");
        curl_slist_free_all(hdrs);
        goto out;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, u->url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, all);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, u->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, u->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    if (u->ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, u->ca_file);
    CURLcode cc = curl_easy_perform(h);
    curl_slist_free_all(all);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        st = KPX_UPSTREAM_TIMEOUT;
        snprintf(msg, msglen, "k_server at %s did not answer within %ld ms", u->url, u->timeout_ms);
    } else if (cc != CURLE_OK && !r->overflow) {
        snprintf(msg, msglen, "k_server at %s: %s", u->url,
                 curl_err[0] ? curl_err : curl_easy_strerror(cc));
    } else if (r->overflow) {
        st = KPX_UPSTREAM_BAD_REPLY;
        snprintf(msg, msglen, "k_server's answer is over %d bytes", REPLY_MAX);
    } else if (code == 401 || code == 403) {
        char why[64];
        error_code(r->buf, r->len, why, sizeof(why));
        st = KPX_UPSTREAM_REFUSED;
        *replayed = strcmp(why, "replayed_request") == 0;
        if (*replayed)
            snprintf(msg, msglen,
                     "k_server refused k_proxy's request as replayed (sequence number %" PRIu64 ")",
                     seq);
        else
            snprintf(msg, msglen,
                     "k_server refused k_proxy's signature (%s): are both started with the "
                     "same --proxy-token, and are their clocks within %d s?",
                     why[0] ? why : "no reason given", KSVC_UPSTREAM_SKEW_S);
    } else if (code != 200) {
        char why[64];
        error_code(r->buf, r->len, why, sizeof(why));
        st = KPX_UPSTREAM_BAD_REPLY;
        snprintf(msg, msglen, "k_server answered HTTP %ld (%s)", code, why[0] ? why : "no code");
    } else if (kpx_upstream_parse_counter(r->buf, r->len, ref, value, msg, msglen) != 0) {
        st = KPX_UPSTREAM_BAD_REPLY;
    } else {
        st = KPX_UPSTREAM_OK;
    }
out:
    free(r);
    if (h != NULL)
        give_back(u, h);
    return st;
}

enum kpx_upstream_status kpx_upstream_counter_next(struct kpx_upstream *u, const char *ref,
                                                   int64_t *value, char *msg, size_t msglen)
{
    uint8_t instance[KSVC_UPSTREAM_INSTANCE_LEN];
    bool replayed = false;
    enum kpx_upstream_status st = attempt(u, ref, value, instance, &replayed, msg, msglen);
    /* A replayed_request for a number this process never sent before: k_server
     * restarted (and closed the instance), or the request was overtaken by
     * more than the window. A refused request was not served, so sending it
     * again, newly signed under a new instance, hands out no value twice. */
    if (st == KPX_UPSTREAM_REFUSED && replayed && renew_identity(u, instance) == 0)
        st = attempt(u, ref, value, instance, &replayed, msg, msglen);
    return st;
}
