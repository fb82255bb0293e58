/* Signed requests from k_proxy to k_server (see upstream_client.h). */
#include "services/k_proxy/upstream_client.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

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

enum kpx_upstream_status kpx_upstream_counter_next(struct kpx_upstream *u, const char *ref,
                                                   int64_t *value, char *msg, size_t msglen)
{
    static const char body[] = "{}";
    char authz[KSVC_UPSTREAM_HEADER_MAX + 32], header[KSVC_UPSTREAM_HEADER_MAX + 64];
    if (ksvc_upstream_sign(u->key, "POST", COUNTER_PATH, ref, body, strlen(body), time(NULL), authz,
                           sizeof(authz)) != 0) {
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
        snprintf(msg, msglen,
                 "k_server refused k_proxy's signature (%s): are both started with the same "
                 "--proxy-token, and are their clocks within %d s?",
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
