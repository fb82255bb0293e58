/* k_proxy's background reachability checks of k_server and the card (see
 * reach.h). */
#include "services/k_proxy/reach.h"
#include "services/common/svc_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>

#include "ctaphid/discover.h"
#include "ctaphid/status.h"
#include "ctaphid/transport.h"
#include "util/capbuf.h"
#include "util/clock.h"
#include "util/curl_body.h"

#define REACH_DEFAULT_MS 1000
#define PROBE_BODY_MAX 2048

struct reach_state {
    bool server_ok, card_ok, card_checked;
    char server_detail[384], card_detail[384];
};

struct kpx_reach {
    char url[1100];
    char *ca_file;
    char device[256];
    int timeout_ms, interval_ms;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock; /* what follows */
    pthread_cond_t wake;
    bool stop;
    struct reach_state now;
};

/* k_server's /healthz: 200 is reachable and healthy; 503 is reachable but
 * unable to serve the counter (its reason is passed on). */
static bool probe_server(const struct kpx_reach *r, char *detail, size_t cap)
{
    CURL *e = curl_easy_init();
    if (e == NULL) {
        snprintf(detail, cap, "cannot make a libcurl handle");
        return false;
    }
    struct kcu_capbuf b;
    kcu_capbuf_init(&b, PROBE_BODY_MAX);
    char errbuf[CURL_ERROR_SIZE] = "";
    bool set = curl_easy_setopt(e, CURLOPT_URL, r->url) == CURLE_OK &&
               curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
               curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
               curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms) == CURLE_OK &&
               kcu_curl_body_collect(e, &b) == CURLE_OK &&
               curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
               (r->ca_file == NULL || curl_easy_setopt(e, CURLOPT_CAINFO, r->ca_file) == CURLE_OK);
    CURLcode rc = set ? curl_easy_perform(e) : CURLE_FAILED_INIT;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    if (rc != CURLE_OK && b.over) {
        snprintf(detail, cap,
                 "k_server at %.160s is unhealthy: its /healthz answer is over %d bytes", r->url,
                 PROBE_BODY_MAX);
        kcu_capbuf_free(&b);
        return false;
    }
    if (rc != CURLE_OK) {
        snprintf(detail, cap, "k_server unreachable at %.160s: %.180s", r->url,
                 errbuf[0] ? errbuf : curl_easy_strerror(rc));
        kcu_capbuf_free(&b);
        return false;
    }
    if (status == 200) {
        snprintf(detail, cap, "k_server answers at %.200s", r->url);
        kcu_capbuf_free(&b);
        return true;
    }
    json_t *j = b.data != NULL ? json_loadb(b.data, b.len, 0, NULL) : NULL;
    kcu_capbuf_free(&b);
    const char *why = json_string_value(json_object_get(j, "reason"));
    snprintf(detail, cap, "k_server at %.120s is unhealthy (HTTP %ld)%s%.200s", r->url, status,
             why ? ": " : "", why ? why : "");
    json_decref(j);
    return false;
}

bool kpx_reach_device_present(const char *uri, bool *checked, char *detail, size_t cap)
{
    *checked = true;
    if (uri == NULL || uri[0] == '\0' || strcmp(uri, "auto") == 0) {
        char found[KC_URI_MAX], err[256];
        if (kc_discover_auto(found, sizeof(found), err, sizeof(err)) == KC_OK) {
            snprintf(detail, cap, "auto: %.200s is present", found);
            return true;
        }
        snprintf(detail, cap, "card absent: %.300s", err);
        return false;
    }
    const char *path = NULL;
    if (strncmp(uri, "hidraw:", 7) == 0)
        path = uri + 7;
    else if (uri[0] == '/')
        path = uri;
    if (path != NULL) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISCHR(st.st_mode)) {
            snprintf(detail, cap, "%.200s is present", path);
            return true;
        }
        snprintf(detail, cap, "card absent: %.200s: %s", path,
                 stat(path, &st) == 0 ? "not a device node" : strerror(errno));
        return false;
    }
    *checked = false; /* udp, hidapi: only a request to the card would tell */
    snprintf(detail, cap, "%.200s: not checked (its presence is known only by asking the card)",
             uri);
    return true;
}

static void check_once(struct kpx_reach *r)
{
    struct reach_state s;
    s.server_ok = probe_server(r, s.server_detail, sizeof(s.server_detail));
    s.card_ok =
        kpx_reach_device_present(r->device, &s.card_checked, s.card_detail, sizeof(s.card_detail));
    pthread_mutex_lock(&r->lock);
    r->now = s;
    pthread_mutex_unlock(&r->lock);
}

static void *reach_main(void *arg)
{
    pthread_setname_np(pthread_self(), "reach-check"); /* top -H, ps -L */
    struct kpx_reach *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        struct timespec until;
        kcu_deadline(CLOCK_REALTIME, r->interval_ms, &until);
        pthread_cond_timedwait(&r->wake, &r->lock, &until);
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->lock);
        check_once(r);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

struct kpx_reach *kpx_reach_start(const struct kpx_reach_cfg *cfg, char *err, size_t errlen)
{
    struct kpx_reach *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t bl = strlen(cfg->server_base_url);
    while (bl > 0 && cfg->server_base_url[bl - 1] == '/')
        bl--;
    if (bl + sizeof("/healthz") > sizeof(r->url) ||
        snprintf(r->device, sizeof(r->device), "%s", cfg->device_uri ? cfg->device_uri : "auto") >=
            (int)sizeof(r->device)) {
        snprintf(err, errlen, "the k_server URL or the device URI is too long");
        free(r);
        return NULL;
    }
    memcpy(r->url, cfg->server_base_url, bl);
    memcpy(r->url + bl, "/healthz", sizeof("/healthz"));
    r->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
    r->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : REACH_DEFAULT_MS;
    r->interval_ms = cfg->interval_ms > 0 ? cfg->interval_ms : REACH_DEFAULT_MS;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    if (cfg->ca_file != NULL && r->ca_file == NULL) {
        snprintf(err, errlen, "out of memory");
        kpx_reach_stop(r);
        return NULL;
    }
    check_once(r);
    if (pthread_create(&r->thread, NULL, reach_main, r) != 0) {
        snprintf(err, errlen, "cannot start the reachability thread");
        kpx_reach_stop(r);
        return NULL;
    }
    r->started = true;
    return r;
}

void kpx_reach_stop(struct kpx_reach *r)
{
    if (r == NULL)
        return;
    if (r->started) {
        pthread_mutex_lock(&r->lock);
        r->stop = true;
        pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->thread, NULL);
    }
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r->ca_file);
    free(r);
}

bool kpx_reach_report(struct kpx_reach *r, json_t *out)
{
    if (r == NULL)
        return true;
    pthread_mutex_lock(&r->lock);
    struct reach_state s = r->now;
    pthread_mutex_unlock(&r->lock);
    json_object_set_new(out, "k_server",
                        json_pack("{s:b, s:s}", "ok", s.server_ok, "detail", s.server_detail));
    json_object_set_new(out, "card",
                        json_pack("{s:b, s:b, s:s}", "ok", s.card_ok, "checked", s.card_checked,
                                  "detail", s.card_detail));
    if (s.server_ok && s.card_ok)
        return true;
    char reason[800];
    snprintf(reason, sizeof(reason), "%s%s%s", s.server_ok ? "" : s.server_detail,
             !s.server_ok && !s.card_ok ? "; " : "", s.card_ok ? "" : s.card_detail);
    json_object_set_new(out, "reason", json_string(reason));
    return false;
}
