/* chain-regress: HTTP through one libcurl multi handle. Every transfer of
 * a run goes through it, so connections are kept and reused between steps
 * and across the burst; at most `parallelism` transfers are in flight. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "regression/chain_regress.h"

struct kcr_http {
    CURLM *multi;
    char *base_url;
    char *cacert; /* NULL: curl's default trust */
};

/* one transfer in flight */
struct slot {
    CURL *easy;
    struct curl_slist *headers;
    struct kcr_xfer *x;
    size_t index;
    double t0;
    bool too_large;
};

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

bool kcr_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void kcr_http_global_cleanup(void)
{
    curl_global_cleanup();
}

struct kcr_http *kcr_http_new(const char *base_url, const char *cacert, unsigned max_conns)
{
    struct kcr_http *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->multi = curl_multi_init();
    h->base_url = strdup(base_url);
    if (cacert != NULL && cacert[0] != '\0')
        h->cacert = strdup(cacert);
    if (h->multi == NULL || h->base_url == NULL ||
        (cacert != NULL && cacert[0] != '\0' && h->cacert == NULL)) {
        kcr_http_free(h);
        return NULL;
    }
    if (max_conns == 0)
        max_conns = 1;
    /* keep every connection the burst opened, for the next transfers */
    if (curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)max_conns) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)max_conns) != CURLM_OK) {
        kcr_http_free(h);
        return NULL;
    }
    return h;
}

void kcr_http_free(struct kcr_http *h)
{
    if (h == NULL)
        return;
    if (h->multi != NULL)
        curl_multi_cleanup(h->multi);
    free(h->base_url);
    free(h->cacert);
    free(h);
}

void kcr_xfer_release(struct kcr_xfer *x)
{
    if (x == NULL)
        return;
    free(x->resp);
    x->resp = NULL;
    x->resp_len = 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct slot *s = ud;
    struct kcr_xfer *x = s->x;
    size_t n = size * nmemb;
    char *grown;

    if (nmemb != 0 && n / nmemb != size)
        return 0;
    if (n > KCR_MAX_BODY || x->resp_len > KCR_MAX_BODY - n) {
        s->too_large = true;
        return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
    }
    if ((grown = realloc(x->resp, x->resp_len + n + 1)) == NULL)
        return 0;
    x->resp = grown;
    memcpy(x->resp + x->resp_len, data, n);
    x->resp_len += n;
    x->resp[x->resp_len] = '\0';
    return n;
}

static void slot_clear(struct kcr_http *h, struct slot *s)
{
    if (s->easy != NULL) {
        curl_multi_remove_handle(h->multi, s->easy);
        curl_easy_cleanup(s->easy);
    }
    /* the Authorization line holds the bearer token */
    for (struct curl_slist *l = s->headers; l != NULL; l = l->next)
        OPENSSL_cleanse(l->data, strlen(l->data));
    curl_slist_free_all(s->headers);
    memset(s, 0, sizeof(*s));
}

static bool add_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);

    if (l == NULL)
        return false;
    *list = l;
    return true;
}

static bool slot_start(struct kcr_http *h, struct slot *s, struct kcr_xfer *x, size_t index)
{
    char url[2048], auth[KCR_TOKEN_MAX + 32];
    CURL *e;
    int n;
    bool good = true;

    memset(s, 0, sizeof(*s));
    s->x = x;
    s->index = index;
    x->status = 0;
    x->curl_code = 0;
    x->curl_error[0] = '\0';
    x->resp = NULL;
    x->resp_len = 0;
    x->ms = 0;
    x->new_connections = 0;
    n = snprintf(url, sizeof(url), "%s%s", h->base_url, x->path);
    if (n < 0 || (size_t)n >= sizeof(url))
        return false;
    if ((e = s->easy = curl_easy_init()) == NULL)
        return false;
    good = add_header(&s->headers, "Content-Type: application/json") &&
           add_header(&s->headers, "Accept: application/json") &&
           add_header(&s->headers, "Expect:");
    if (good && x->token != NULL) {
        n = snprintf(auth, sizeof(auth), "Authorization: Bearer %s", x->token);
        good = n > 0 && (size_t)n < sizeof(auth) && add_header(&s->headers, auth);
        OPENSSL_cleanse(auth, sizeof(auth));
    }
    good =
        good && curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_POST, 1L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, x->body != NULL ? x->body : "") == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, x->timeout_ms) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, x->timeout_ms) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEDATA, s) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_error) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_PRIVATE, s) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_USERAGENT, "chain-regress/" KCR_VERSION) == CURLE_OK;
    if (good && h->cacert != NULL)
        good = curl_easy_setopt(e, CURLOPT_CAINFO, h->cacert) == CURLE_OK;
    s->t0 = now_ms();
    if (good)
        good = curl_multi_add_handle(h->multi, e) == CURLM_OK;
    if (!good)
        slot_clear(h, s); /* removing a handle that was never added is harmless */
    return good;
}

static void slot_done(struct slot *s, CURLcode code)
{
    struct kcr_xfer *x = s->x;
    long status = 0, conns = 0;

    x->ms = now_ms() - s->t0;
    x->curl_code = (int)code;
    if (s->too_large) {
        x->curl_code = (int)CURLE_WRITE_ERROR;
        snprintf(x->curl_error, sizeof(x->curl_error), "the answer is longer than %d bytes",
                 KCR_MAX_BODY);
    } else if (code != CURLE_OK && x->curl_error[0] == '\0') {
        snprintf(x->curl_error, sizeof(x->curl_error), "%s", curl_easy_strerror(code));
    }
    if (code == CURLE_OK && curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK)
        x->status = status;
    if (curl_easy_getinfo(s->easy, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK)
        x->new_connections = conns;
    if (x->curl_code != 0) {
        /* an answer cut short is no answer */
        x->status = 0;
        free(x->resp);
        x->resp = NULL;
        x->resp_len = 0;
    }
}

bool kcr_http_run(struct kcr_http *h, struct kcr_xfer *x, size_t n, unsigned parallelism,
                  void (*on_done)(void *ctx, size_t i, struct kcr_xfer *x), void *ctx)
{
    struct slot *slots;
    size_t next = 0, done = 0;
    bool good = true;

    if (parallelism == 0)
        parallelism = 1;
    if (parallelism > n)
        parallelism = n > 0 ? (unsigned)n : 1;
    if ((slots = calloc(parallelism, sizeof(*slots))) == NULL)
        return false;
    while (good && done < n) {
        int running = 0, left = 0;
        CURLMsg *msg;

        for (unsigned k = 0; k < parallelism && next < n; k++) {
            if (slots[k].easy != NULL)
                continue;
            if (!slot_start(h, &slots[k], &x[next], next)) {
                good = false;
                break;
            }
            next++;
        }
        if (!good || curl_multi_perform(h->multi, &running) != CURLM_OK) {
            good = false;
            break;
        }
        while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
            struct slot *s = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s) != CURLE_OK ||
                s == NULL) {
                good = false;
                break;
            }
            slot_done(s, msg->data.result);
            if (on_done != NULL)
                on_done(ctx, s->index, s->x);
            slot_clear(h, s);
            done++;
        }
        if (good && done < n && running > 0 &&
            curl_multi_poll(h->multi, NULL, 0, 1000, NULL) != CURLM_OK)
            good = false;
    }
    for (unsigned k = 0; k < parallelism; k++)
        if (slots[k].easy != NULL)
            slot_clear(h, &slots[k]);
    free(slots);
    return good;
}

const char *kcr_curl_hint(int curl_code)
{
    switch ((CURLcode)curl_code) {
    case CURLE_COULDNT_CONNECT:
        return "could not connect: is k_proxy (or the forward to it) running on that port?";
    case CURLE_COULDNT_RESOLVE_HOST:
        return "the host name does not resolve";
    case CURLE_OPERATION_TIMEDOUT:
        return "no answer within --timeout-ms";
    case CURLE_SSL_CACERT_BADFILE:
        return "the --cacert file (or KCARD_CA) cannot be read as a CA certificate";
    case CURLE_PEER_FAILED_VERIFICATION:
        return "the server's certificate is not trusted by the CA given with --cacert";
    case CURLE_SSL_CONNECT_ERROR:
        return "the TLS handshake failed (is it an https port? plain http needs http://)";
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        return "the connection closed without an answer";
    default:
        return "";
    }
}
