/* chain-regress: HTTP through one libcurl multi handle driven by epoll
 * (curl_multi_socket_action). Every transfer of a run goes through it, so
 * connections are kept and reused between steps and across the burst; at
 * most `parallelism` transfers are in flight.
 *
 * Why this shape: the driver must cost little CPU per request so that the
 * chain, not the driver, is what a run measures. So each parallel slot keeps
 * one easy handle (options, headers and reply buffer set up once, reused for
 * every transfer), only the sockets that are ready are handed to curl (with
 * their readiness, so curl does not poll them again), and a socket's epoll
 * registration is kept while its connection idles between two transfers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "regression/chain_regress.h"
#include "util/capbuf.h"
#include "util/clock.h"
#include "util/curl_body.h"

#define MAX_EVENTS 64
#define MAX_WAIT_MS 1000 /* an upper bound on each wait, whatever curl asked */

/* what epoll is told about one socket, and what curl wants of it */
struct sock_state {
    uint32_t registered; /* events epoll has for it; 0 = not in the epoll set */
    uint32_t wanted;     /* events curl asked for; 0 = curl does not watch it */
};

/* one parallel slot: an easy handle reused for transfer after transfer */
struct slot {
    CURL *easy;
    struct curl_slist *headers;
    CURLU *url;  /* the parsed URL: curl need not parse it per transfer */
    char *token; /* the bearer token in headers (a copy); NULL: none */
    char *path;  /* copies of what is set on easy; NULL: none */
    char *body;
    long timeout_ms;
    bool configured;         /* path, body and timeout above are set on easy */
    struct kcu_capbuf reply; /* kept between transfers */
    bool busy;
    struct kcr_xfer own; /* the transfer itself, when repeating a template */
    struct kcr_xfer *x;
    size_t index;
    double t0;
};

struct kcr_http {
    CURLM *multi;
    bool no_proxy_env; /* no proxy variable is set: tell curl so, once */
    char *base_url;
    char *cacert; /* NULL: curl's default trust */
    int epfd;
    struct sock_state *socks; /* indexed by fd */
    size_t n_socks;
    double deadline; /* when curl wants its timeout call; < 0: none */
    bool failed;     /* epoll refused a change: the run cannot go on */
    struct slot *slots;
    unsigned n_slots;
};

bool kcr_http_global_init(void)
{
    if (!kcr_alloc_enabled())
        return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    return curl_global_init_mem(CURL_GLOBAL_DEFAULT, kcr_alloc_malloc, kcr_alloc_free,
                                kcr_alloc_realloc, kcr_alloc_strdup, kcr_alloc_calloc) == CURLE_OK;
}

void kcr_http_global_cleanup(void)
{
    curl_global_cleanup();
    kcr_alloc_release();
}

static struct sock_state *sock_get(struct kcr_http *h, curl_socket_t fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= h->n_socks) {
        size_t n = (size_t)fd + 64;
        struct sock_state *grown = realloc(h->socks, n * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        memset(grown + h->n_socks, 0, (n - h->n_socks) * sizeof(*grown));
        h->socks = grown;
        h->n_socks = n;
    }
    return &h->socks[fd];
}

/* makes epoll watch fd for exactly `events` (0: not at all) */
static bool epoll_set(struct kcr_http *h, curl_socket_t fd, struct sock_state *st, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    int rc;

    if (st->registered == events)
        return true;
    if (events == 0) {
        rc = epoll_ctl(h->epfd, EPOLL_CTL_DEL, fd, NULL);
        if (rc != 0 && (errno == ENOENT || errno == EBADF))
            rc = 0; /* already gone with its socket */
    } else if (st->registered == 0) {
        rc = epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev);
        if (rc != 0 && errno == EEXIST)
            rc = epoll_ctl(h->epfd, EPOLL_CTL_MOD, fd, &ev);
    } else {
        rc = epoll_ctl(h->epfd, EPOLL_CTL_MOD, fd, &ev);
        if (rc != 0 && errno == ENOENT)
            rc = epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
    if (rc != 0)
        return false;
    st->registered = events;
    return true;
}

/* CURLMOPT_SOCKETFUNCTION: what curl wants to know about a socket */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct kcr_http *h = userp;
    struct sock_state *st = sock_get(h, fd);
    uint32_t events = 0;

    (void)easy;
    (void)socketp;
    if (st == NULL) {
        h->failed = true;
        return -1;
    }
    if (what == CURL_POLL_REMOVE) {
        /* kept in the epoll set: the connection idles until the next
         * transfer takes it; an event on it meanwhile removes it then */
        st->wanted = 0;
        return 0;
    }
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= EPOLLOUT;
    st->wanted = events;
    if (!epoll_set(h, fd, st, events)) {
        h->failed = true;
        return -1;
    }
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when curl wants CURL_SOCKET_TIMEOUT */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct kcr_http *h = userp;

    (void)multi;
    h->deadline = timeout_ms < 0 ? -1.0 : (double)kcu_now_us() / 1e3 + (double)timeout_ms;
    return 0;
}

/* CURLOPT_CLOSESOCKETFUNCTION: a closed socket leaves the epoll set by
 * itself; forget it so that a new socket of the same number starts afresh */
static int on_close(void *clientp, curl_socket_t fd)
{
    struct kcr_http *h = clientp;

    if (fd >= 0 && (size_t)fd < h->n_socks)
        memset(&h->socks[fd], 0, sizeof(h->socks[fd]));
    return close(fd);
}

static void slot_free(struct kcr_http *h, struct slot *s)
{
    if (s->easy != NULL) {
        if (s->busy)
            curl_multi_remove_handle(h->multi, s->easy);
        curl_easy_cleanup(s->easy);
    }
    /* the Authorization line holds the bearer token */
    for (struct curl_slist *l = s->headers; l != NULL; l = l->next)
        OPENSSL_cleanse(l->data, strlen(l->data));
    curl_slist_free_all(s->headers);
    curl_url_cleanup(s->url);
    free(s->path);
    free(s->body);
    if (s->token != NULL) {
        OPENSSL_cleanse(s->token, strlen(s->token));
        free(s->token);
    }
    kcu_capbuf_free(&s->reply);
    memset(s, 0, sizeof(*s));
}

/* libcurl reads these (some only in one case) for every transfer */
static bool proxy_env_unset(void)
{
    static const char *const names[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                        "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (getenv(names[i]) != NULL)
            return false;
    return true;
}

/* the options every transfer of the slot shares, set once */
static bool slot_init(struct kcr_http *h, struct slot *s)
{
    CURL *e;

    memset(s, 0, sizeof(*s));
    kcu_capbuf_init(&s->reply, KCR_MAX_BODY);
    if ((e = s->easy = curl_easy_init()) == NULL)
        return false;
    return curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
           /* the chain's answers are small: a 4 KiB receive buffer (curl's
            * default is 16) is less memory to touch per handle */
           curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4096L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_POST, 1L) == CURLE_OK &&
           kcu_curl_body_collect(e, &s->reply) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_PRIVATE, s) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, h) == CURLE_OK &&
           (h->cacert == NULL || curl_easy_setopt(e, CURLOPT_CAINFO, h->cacert) == CURLE_OK) &&
           /* the same as curl finds with no proxy variable set, without
            * looking them up again per transfer; any set: curl decides */
           (!h->no_proxy_env || (curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK &&
                                 curl_easy_setopt(e, CURLOPT_NOPROXY, "") == CURLE_OK));
}

void kcr_http_free(struct kcr_http *h)
{
    if (h == NULL)
        return;
    for (unsigned k = 0; k < h->n_slots; k++)
        slot_free(h, &h->slots[k]);
    free(h->slots);
    /* closes the cached connections, through on_close: h is still whole */
    if (h->multi != NULL)
        curl_multi_cleanup(h->multi);
    if (h->epfd >= 0)
        close(h->epfd);
    free(h->socks);
    free(h->base_url);
    free(h->cacert);
    free(h);
}

struct kcr_http *kcr_http_new(const char *base_url, const char *cacert, unsigned max_conns)
{
    struct kcr_http *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    if (max_conns == 0)
        max_conns = 1;
    h->epfd = epoll_create1(EPOLL_CLOEXEC);
    h->deadline = -1.0;
    h->no_proxy_env = proxy_env_unset();
    h->multi = curl_multi_init();
    h->base_url = strdup(base_url);
    if (cacert != NULL && cacert[0] != '\0')
        h->cacert = strdup(cacert);
    h->slots = calloc(max_conns, sizeof(*h->slots));
    if (h->epfd < 0 || h->multi == NULL || h->base_url == NULL || h->slots == NULL ||
        (cacert != NULL && cacert[0] != '\0' && h->cacert == NULL)) {
        kcr_http_free(h);
        return NULL;
    }
    /* keep every connection the burst opened, for the next transfers */
    if (curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)max_conns) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)max_conns) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK) {
        kcr_http_free(h);
        return NULL;
    }
    for (unsigned k = 0; k < max_conns; k++) {
        h->n_slots = k + 1;
        if (!slot_init(h, &h->slots[k])) {
            kcr_http_free(h);
            return NULL;
        }
    }
    return h;
}

void kcr_xfer_release(struct kcr_xfer *x)
{
    if (x == NULL)
        return;
    if (!x->resp_lent)
        free(x->resp);
    x->resp = NULL;
    x->resp_len = 0;
    x->resp_lent = false;
}

/* the headers for token (NULL: none), rebuilt only when the token changes */
static bool slot_headers(struct slot *s, const char *token)
{
    char auth[KCR_TOKEN_MAX + 32];
    struct curl_slist *list = NULL;
    /* the User-Agent among them: as an option curl would format it anew
     * for every transfer */
    const char *lines[] = {"Content-Type: application/json", "Accept: application/json",
                           "Expect:", "User-Agent: chain-regress/" KCR_VERSION};
    char *copy = NULL;
    bool good = true;
    int n;

    if (s->headers != NULL &&
        (token == NULL ? s->token == NULL : s->token != NULL && strcmp(s->token, token) == 0))
        return true;
    for (size_t i = 0; good && i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct curl_slist *l = curl_slist_append(list, lines[i]);
        if (l == NULL)
            good = false;
        else
            list = l;
    }
    if (good && token != NULL) {
        struct curl_slist *l = NULL;
        n = snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        if (n > 0 && (size_t)n < sizeof(auth))
            l = curl_slist_append(list, auth);
        OPENSSL_cleanse(auth, sizeof(auth));
        copy = strdup(token);
        good = l != NULL && copy != NULL;
        if (l != NULL)
            list = l;
    }
    if (good && curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, list) != CURLE_OK)
        good = false;
    if (!good) {
        for (struct curl_slist *l = list; l != NULL; l = l->next)
            OPENSSL_cleanse(l->data, strlen(l->data));
        curl_slist_free_all(list);
        if (copy != NULL) {
            OPENSSL_cleanse(copy, strlen(copy));
            free(copy);
        }
        return false;
    }
    for (struct curl_slist *l = s->headers; l != NULL; l = l->next)
        OPENSSL_cleanse(l->data, strlen(l->data));
    curl_slist_free_all(s->headers);
    if (s->token != NULL) {
        OPENSSL_cleanse(s->token, strlen(s->token));
        free(s->token);
    }
    s->headers = list;
    s->token = copy;
    return true;
}

static bool same_text(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* *dst becomes a copy of src (NULL stays NULL) */
static bool keep_copy(char **dst, const char *src)
{
    char *copy = NULL;

    if (src != NULL && (copy = strdup(src)) == NULL)
        return false;
    free(*dst);
    *dst = copy;
    return true;
}

/* sets on the easy handle what differs from the slot's last transfer */
static bool slot_configure(struct kcr_http *h, struct slot *s, const struct kcr_xfer *x)
{
    CURL *e = s->easy;

    if (!s->configured || !same_text(s->path, x->path)) {
        char url[2048];
        int n = snprintf(url, sizeof(url), "%s%s", h->base_url, x->path);
        if (n < 0 || (size_t)n >= sizeof(url))
            return false;
        if (s->url == NULL && (s->url = curl_url()) == NULL)
            return false;
        /* a URL curl cannot parse goes in as text: the transfer then fails
         * with curl's own error, as it always did */
        if (curl_url_set(s->url, CURLUPART_URL, url, 0) == CURLUE_OK) {
            if (curl_easy_setopt(e, CURLOPT_CURLU, s->url) != CURLE_OK)
                return false;
        } else if (curl_easy_setopt(e, CURLOPT_CURLU, NULL) != CURLE_OK ||
                   curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK) {
            return false;
        }
        if (!keep_copy(&s->path, x->path))
            return false;
    }
    if (!s->configured || !same_text(s->body, x->body)) {
        if (curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, x->body != NULL ? x->body : "") != CURLE_OK)
            return false;
        if (!keep_copy(&s->body, x->body))
            return false;
    }
    if (!s->configured || s->timeout_ms != x->timeout_ms) {
        if (curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, x->timeout_ms) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, x->timeout_ms) != CURLE_OK)
            return false;
        s->timeout_ms = x->timeout_ms;
    }
    return slot_headers(s, x->token) &&
           curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_error) == CURLE_OK;
}

static bool slot_start(struct kcr_http *h, struct slot *s, struct kcr_xfer *x, size_t index)
{
    s->x = x;
    s->index = index;
    kcu_capbuf_reset(&s->reply);
    x->status = 0;
    x->curl_code = 0;
    x->curl_error[0] = '\0';
    x->resp = NULL;
    x->resp_len = 0;
    x->resp_lent = false;
    x->ms = 0;
    x->new_connections = 0;
    if (!slot_configure(h, s, x)) {
        s->configured = false; /* set everything afresh next time */
        return false;
    }
    s->configured = true;
    s->t0 = (double)kcu_now_us() / 1e3;
    if (curl_multi_add_handle(h->multi, s->easy) != CURLM_OK)
        return false;
    s->busy = true;
    return true;
}

/* fills in the transfer's outcome; lend: the reply stays in the slot */
static bool slot_done(struct kcr_http *h, struct slot *s, CURLcode code, bool lend)
{
    struct kcr_xfer *x = s->x;
    long status = 0, conns = 0;
    bool good = true;

    x->ms = (double)kcu_now_us() / 1e3 - s->t0;
    x->curl_code = (int)code;
    if (s->reply.over) {
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
    /* the error buffer is the caller's: curl must not write it any more */
    if (curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, NULL) != CURLE_OK)
        good = false;
    if (curl_multi_remove_handle(h->multi, s->easy) != CURLM_OK)
        good = false;
    s->busy = false;
    if (x->curl_code != 0 || s->reply.data == NULL) {
        /* an answer cut short is no answer; an empty one has no buffer */
        if (x->curl_code != 0)
            x->status = 0;
        return good;
    }
    if (lend) {
        x->resp = s->reply.data;
        x->resp_lent = true;
    } else if ((x->resp = malloc(s->reply.len + 1)) != NULL) {
        memcpy(x->resp, s->reply.data, s->reply.len + 1);
    } else {
        return false;
    }
    x->resp_len = s->reply.len;
    return good;
}

/* hands curl what epoll saw on one socket */
static bool socket_event(struct kcr_http *h, curl_socket_t fd, uint32_t events, int *running)
{
    struct sock_state *st = fd >= 0 && (size_t)fd < h->n_socks ? &h->socks[fd] : NULL;
    int mask = 0;

    if (st != NULL && st->wanted == 0) {
        /* an idle connection curl does not watch: stop watching it too */
        if (!epoll_set(h, fd, st, 0))
            return false;
        return true;
    }
    if (events & EPOLLIN)
        mask |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        mask |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        mask |= CURL_CSELECT_ERR;
    return curl_multi_socket_action(h->multi, fd, mask, running) == CURLM_OK;
}

/* transfer i: x[i], or the slot's own copy of the template */
static struct kcr_xfer *xfer_for(struct slot *s, struct kcr_xfer *x, const struct kcr_xfer *tmpl,
                                 size_t i)
{
    if (x != NULL)
        return &x[i];
    memset(&s->own, 0, sizeof(s->own));
    s->own.path = tmpl->path;
    s->own.body = tmpl->body;
    s->own.token = tmpl->token;
    s->own.timeout_ms = tmpl->timeout_ms;
    return &s->own;
}

static bool run(struct kcr_http *h, struct kcr_xfer *x, const struct kcr_xfer *tmpl, size_t n,
                unsigned parallelism, void (*on_done)(void *ctx, size_t i, struct kcr_xfer *x),
                void *ctx)
{
    struct epoll_event events[MAX_EVENTS];
    size_t next = 0, done = 0;
    bool good = true;
    int running = 0;

    if (parallelism == 0)
        parallelism = 1;
    if (parallelism > n)
        parallelism = n > 0 ? (unsigned)n : 1;
    if (parallelism > h->n_slots)
        parallelism = h->n_slots;
    h->failed = false;
    for (unsigned k = 0; good && k < parallelism && next < n; k++, next++)
        good = slot_start(h, &h->slots[k], xfer_for(&h->slots[k], x, tmpl, next), next);
    while (good && done < n) {
        CURLMsg *msg;
        int left = 0, nev, wait_ms = MAX_WAIT_MS;

        if (h->deadline >= 0) {
            double until = h->deadline - (double)kcu_now_us() / 1e3;
            wait_ms = until <= 0 ? 0 : until < MAX_WAIT_MS ? (int)until + 1 : MAX_WAIT_MS;
        }
        nev = wait_ms == 0 ? 0 : epoll_wait(h->epfd, events, MAX_EVENTS, wait_ms);
        if (nev < 0 && errno != EINTR) {
            good = false;
            break;
        }
        for (int i = 0; good && i < nev; i++)
            good = socket_event(h, events[i].data.fd, events[i].events, &running);
        if (good && h->deadline >= 0 && (double)kcu_now_us() / 1e3 >= h->deadline) {
            h->deadline = -1.0;
            good = curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running) == CURLM_OK;
        }
        while (good && (msg = curl_multi_info_read(h->multi, &left)) != NULL) {
            struct slot *s = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s) != CURLE_OK ||
                s == NULL || !s->busy) {
                good = false;
                break;
            }
            /* msg points into curl's list: read it before the handle leaves */
            good = slot_done(h, s, msg->data.result, on_done != NULL);
            if (on_done != NULL) {
                on_done(ctx, s->index, s->x);
                kcr_xfer_release(s->x); /* lent: only forgets the slot's buffer */
            }
            done++;
            if (good && next < n) {
                good = slot_start(h, s, xfer_for(s, x, tmpl, next), next);
                next++;
            }
        }
        if (h->failed)
            good = false;
    }
    for (unsigned k = 0; k < parallelism; k++) {
        struct slot *s = &h->slots[k];
        if (s->busy) {
            curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, NULL);
            curl_multi_remove_handle(h->multi, s->easy);
            s->busy = false;
        }
    }
    return good;
}

bool kcr_http_run(struct kcr_http *h, struct kcr_xfer *x, size_t n, unsigned parallelism,
                  void (*on_done)(void *ctx, size_t i, struct kcr_xfer *x), void *ctx)
{
    return run(h, x, NULL, n, parallelism, on_done, ctx);
}

bool kcr_http_repeat(struct kcr_http *h, const struct kcr_xfer *tmpl, size_t n,
                     unsigned parallelism, void (*on_done)(void *ctx, size_t i, struct kcr_xfer *x),
                     void *ctx)
{
    if (on_done == NULL)
        return false; /* the outcomes would be lost */
    return run(h, NULL, tmpl, n, parallelism, on_done, ctx);
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
