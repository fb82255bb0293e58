/* The portal's libcurl client of k_proxy: one easy handle per request (the
 * requests are rare and may wait for a card touch), TLS verified against
 * --proxy-ca-file, the answer read up to a cap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "services/k_client_portal/portal.h"
#include "util/capbuf.h"
#include "util/curl_body.h"

#define ANSWER_MAX (64 * 1024)

void kcp_proxy_result_clear(struct kcp_proxy_result *res)
{
    if (res == NULL)
        return;
    json_decref(res->body);
    memset(res, 0, sizeof(*res));
}

int kcp_proxy_call(const struct kcp_proxy_cfg *cfg, const char *method, const char *path,
                   const char *bearer, const json_t *body, struct kcp_proxy_result *res)
{
    memset(res, 0, sizeof(*res));
    char url[1024];
    if (snprintf(url, sizeof(url), "%s%s", cfg->base_url, path) >= (int)sizeof(url)) {
        snprintf(res->error, sizeof(res->error), "the k_proxy URL is too long");
        return -1;
    }
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    char auth[KCP_TOKEN_MAX + 32] = "";
    struct curl_slist *headers = NULL, *h;
    CURL *curl = curl_easy_init();
    struct kcu_capbuf a;
    int rc = -1;
    kcu_capbuf_init(&a, ANSWER_MAX);
    if (curl == NULL || (body != NULL && payload == NULL)) {
        snprintf(res->error, sizeof(res->error), "out of memory");
        goto out;
    }
    h = curl_slist_append(headers, "Accept: application/json");
    if (h != NULL)
        headers = h;
    /* every POST says JSON, bodiless ones too: libcurl would otherwise label
     * them form data, which k_proxy refuses (415) */
    if ((payload != NULL || strcmp(method, "POST") == 0) &&
        (h = curl_slist_append(headers, "Content-Type: application/json")))
        headers = h;
    if (bearer != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
        if ((h = curl_slist_append(headers, auth)) != NULL)
            headers = h;
    }
    if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
        kcu_curl_body_collect(curl, &a) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, cfg->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        (cfg->ca_file != NULL &&
         curl_easy_setopt(curl, CURLOPT_CAINFO, cfg->ca_file) != CURLE_OK)) {
        snprintf(res->error, sizeof(res->error), "cannot configure the k_proxy request");
        goto out;
    }
    if (strcmp(method, "POST") == 0 &&
        (curl_easy_setopt(curl, CURLOPT_POST, 1L) != CURLE_OK ||
         curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload ? payload : "") != CURLE_OK)) {
        snprintf(res->error, sizeof(res->error), "cannot configure the k_proxy request");
        goto out;
    }
    CURLcode cc = curl_easy_perform(curl);
    if (cc != CURLE_OK) {
        res->timed_out = cc == CURLE_OPERATION_TIMEDOUT;
        snprintf(res->error, sizeof(res->error), "%s %s: %s", method, path,
                 a.over ? "the answer is over 64 KiB" : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->status);
    if (a.len > 0) {
        json_error_t jerr;
        res->body = json_loadb(a.data, a.len, 0, &jerr);
    }
    rc = 0;
out:
    kcu_capbuf_free(&a); /* wiped: answers carry bearer tokens */
    OPENSSL_cleanse(auth, sizeof(auth));
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    free(payload);
    return rc;
}
