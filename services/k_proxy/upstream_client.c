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
 * instance id and sends the request once more, newly signed.
 *
 * One loop thread owns the curl multi handle, the signing identity and every
 * request on the wire. It waits in epoll on the sockets curl asks for and
 * drives curl with curl_multi_socket_action, so a pass touches only the
 * transfers that have something to do (curl_multi_perform would poll every
 * transfer's socket on every pass). Other threads hand requests over through
 * a short mutex-protected queue and an eventfd. A request is signed when it is
 * put on the wire, and at most max_connections are on the wire at once (the
 * rest wait here, in order), so requests overtake each other by far less than
 * k_server's replay window. Request slots (easy handle, header nodes, reply
 * buffer) are made once and reused: no heap allocation per request. */
#include "services/k_proxy/upstream_client.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "services/common/crypto.h"

#define SLOTS_PREALLOCATED 256
#define SLOTS_MAX 8192 /* requests started and not yet completed, at most */
#define REPLY_MAX 4096 /* k_server's answers are under 200 bytes */
#define POLL_MAX_MS 1000
#define EVENTS_MAX 64
#define WAKE_TAG UINT64_MAX /* the eventfd's epoll data; sockets carry their fd */
#define COUNTER_PATH "/counter/next"
#define AUTHZ_PREFIX "Authorization: "

static char content_type_header[] = "Content-Type: application/json";
/* drops the Accept header curl adds by default: nothing to negotiate */
static char no_accept_header[] = "Accept:";
static const char request_body[] = "{}";

struct slot {
    struct slot *next;     /* in the free list, a queue, or NULL */
    struct slot *all_next; /* every slot, for freeing */
    struct kpx_upstream *u;
    CURL *easy;
    bool configured; /* options set (on the loop thread) */
    bool on_wire;    /* added to the multi handle */
    bool retried;
    /* the request */
    kpx_upstream_done_fn done;
    void *arg;
    alignas(max_align_t) unsigned char caller[KPX_UPSTREAM_CALLER_MAX];
    char ref[KSVC_UPSTREAM_REF_MAX];
    int64_t deadline_ms; /* CLOCK_MONOTONIC */
    uint8_t instance[KSVC_UPSTREAM_INSTANCE_LEN];
    uint64_t seq;
    /* headers as list nodes of the slot's own: curl_slist_append would
     * allocate per request */
    struct curl_slist headers[3];
    char authz[sizeof(AUTHZ_PREFIX) + KSVC_UPSTREAM_HEADER_MAX + 1];
    /* the answer */
    size_t len;
    bool overflow;
    char curl_err[CURL_ERROR_SIZE];
    char msg[512];
    char reply[REPLY_MAX + 1];
};

struct kpx_upstream {
    char url[1024];
    char *ca_file;
    uint8_t key[KSVC_UPSTREAM_KEY_LEN];
    long timeout_ms;
    unsigned max_connections;
    CURLM *multi;
    CURLSH *share; /* TLS sessions and DNS, shared by the slots' handles */
    int epfd;      /* the loop's: curl's sockets and wakefd */
    int wakefd;    /* eventfd: requests were handed over, or stop */
    pthread_t thread;
    bool thread_started;
    atomic_ulong renewals;

    pthread_mutex_t lock; /* guards what follows, up to the loop's own */
    struct slot *free;
    struct slot *all;
    size_t nslots;
    struct slot *sub_head, *sub_tail; /* handed over, not yet taken by the loop */
    bool stopping;
    bool woken; /* a wakeup is pending: no need for another */

    /* the loop thread's own */
    struct slot *wait_head, *wait_tail; /* waiting for a connection */
    unsigned on_wire;
    int64_t timer_at; /* when curl wants CURL_SOCKET_TIMEOUT; -1: never */
    uint8_t instance[KSVC_UPSTREAM_INSTANCE_LEN];
    uint64_t seq; /* the last number used */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    struct slot *s = arg;
    size_t len = size * n;
    if (len > REPLY_MAX - s->len) {
        s->overflow = true;
        return 0; /* aborts the transfer */
    }
    memcpy(s->reply + s->len, data, len);
    s->len += len;
    s->reply[s->len] = '\0';
    return len;
}

static struct slot *slot_new(struct kpx_upstream *u)
{
    struct slot *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    if ((s->easy = curl_easy_init()) == NULL) {
        free(s);
        return NULL;
    }
    s->u = u;
    s->headers[0].data = s->authz;
    s->headers[0].next = &s->headers[1];
    s->headers[1].data = content_type_header;
    s->headers[1].next = &s->headers[2];
    s->headers[2].data = no_accept_header;
    s->headers[2].next = NULL;
    s->all_next = u->all;
    u->all = s;
    u->nslots++;
    return s;
}

/* The handle's options, set once on the loop thread (the share handle is
 * used without locks, so only that thread may touch it). */
static int slot_configure(struct slot *s)
{
    struct kpx_upstream *u = s->u;
    CURL *h = s->easy;
    bool ok = curl_easy_setopt(h, CURLOPT_URL, u->url) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_POSTFIELDS, request_body) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(request_body)) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_HTTPHEADER, s->headers) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_WRITEDATA, s) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_PRIVATE, s) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->curl_err) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
              /* a direct hop: no proxy, so no proxy variables read per request */
              curl_easy_setopt(h, CURLOPT_PROXY, "") == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_NOPROXY, "*") == CURLE_OK &&
              /* the answers are small: a small receive buffer is cheaper to allocate */
              curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long)REPLY_MAX) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_SHARE, u->share) == CURLE_OK &&
              (u->ca_file == NULL || curl_easy_setopt(h, CURLOPT_CAINFO, u->ca_file) == CURLE_OK);
    s->configured = ok;
    return ok ? 0 : -1;
}

/* Hands the result to the caller and puts the slot back in the free list. */
static void finish(struct slot *s, enum kpx_upstream_status st, int64_t value)
{
    struct kpx_upstream *u = s->u;
    struct kpx_upstream_result r = {.status = st,
                                    .value = value,
                                    .msg = st == KPX_UPSTREAM_OK ? "" : s->msg,
                                    .caller = s->caller};
    s->done(s->arg, &r);
    s->done = NULL;
    s->arg = NULL;
    pthread_mutex_lock(&u->lock);
    s->next = u->free;
    u->free = s;
    pthread_mutex_unlock(&u->lock);
}

static void fail(struct slot *s, enum kpx_upstream_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct slot *s, enum kpx_upstream_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
    va_end(ap);
    finish(s, st, 0);
}

/* Signs the request with the next number of the sequence and puts it on the
 * wire; completes it at once when that fails. */
static void send_request(struct kpx_upstream *u, struct slot *s, int64_t now)
{
    if (!s->configured && slot_configure(s) != 0) {
        fail(s, KPX_UPSTREAM_UNREACHABLE, "cannot set up a request to k_server");
        return;
    }
    memcpy(s->instance, u->instance, sizeof(s->instance));
    s->seq = ++u->seq;
    memcpy(s->authz, AUTHZ_PREFIX, strlen(AUTHZ_PREFIX));
    char *value = s->authz + strlen(AUTHZ_PREFIX);
    size_t cap = sizeof(s->authz) - strlen(AUTHZ_PREFIX);
    if (ksvc_upstream_sign(u->key, s->instance, s->seq, "POST", COUNTER_PATH, s->ref, request_body,
                           strlen(request_body), time(NULL), value, cap) != 0) {
        fail(s, KPX_UPSTREAM_BAD_REPLY, "cannot sign the request to k_server");
        return;
    }
    long left = (long)(s->deadline_ms - now);
    if (left < 1)
        left = 1;
    s->len = 0;
    s->overflow = false;
    s->reply[0] = '\0';
    s->curl_err[0] = '\0';
    if (curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, left) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS, left) != CURLE_OK ||
        curl_multi_add_handle(u->multi, s->easy) != CURLM_OK) {
        fail(s, KPX_UPSTREAM_UNREACHABLE, "cannot start a request to k_server");
        return;
    }
    s->on_wire = true;
    u->on_wire++;
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

/* k_server refused a request of s's instance as replayed: continue under a
 * new instance, unless an earlier refusal already did. */
static int renew_identity(struct kpx_upstream *u, const struct slot *s)
{
    if (memcmp(u->instance, s->instance, sizeof(u->instance)) != 0)
        return 0;
    uint8_t fresh[KSVC_UPSTREAM_INSTANCE_LEN];
    if (ksvc_random(fresh, sizeof(fresh)) != 0)
        return -1;
    memcpy(u->instance, fresh, sizeof(fresh));
    u->seq = 0;
    atomic_fetch_add(&u->renewals, 1);
    return 0;
}

unsigned long kpx_upstream_renewals(struct kpx_upstream *u)
{
    return atomic_load(&u->renewals);
}

/* A transfer ended with cc: answer the caller, or send it once more. */
static void transfer_done(struct kpx_upstream *u, struct slot *s, CURLcode cc)
{
    long code = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_multi_remove_handle(u->multi, s->easy);
    s->on_wire = false;
    u->on_wire--;
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        fail(s, KPX_UPSTREAM_TIMEOUT, "k_server at %s did not answer within %ld ms", u->url,
             u->timeout_ms);
    } else if (s->overflow) {
        fail(s, KPX_UPSTREAM_BAD_REPLY, "k_server's answer is over %d bytes", REPLY_MAX);
    } else if (cc != CURLE_OK) {
        fail(s, KPX_UPSTREAM_UNREACHABLE, "k_server at %s: %s", u->url,
             s->curl_err[0] ? s->curl_err : curl_easy_strerror(cc));
    } else if (code == 401 || code == 403) {
        char why[64];
        error_code(s->reply, s->len, why, sizeof(why));
        if (strcmp(why, "replayed_request") == 0) {
            /* A replayed_request for a number this process never sent before:
             * k_server restarted (and closed the instance), or the request was
             * overtaken by more than the window. A refused request was not
             * served, so sending it again, newly signed under a new instance,
             * hands out no value twice. */
            if (!s->retried && renew_identity(u, s) == 0) {
                int64_t now = now_ms();
                s->retried = true;
                s->deadline_ms = now + u->timeout_ms;
                send_request(u, s, now);
                return;
            }
            fail(s, KPX_UPSTREAM_REFUSED,
                 "k_server refused k_proxy's request as replayed (sequence number %" PRIu64 ")",
                 s->seq);
        } else {
            fail(s, KPX_UPSTREAM_REFUSED,
                 "k_server refused k_proxy's signature (%s): are both started with the "
                 "same --proxy-token, and are their clocks within %d s?",
                 why[0] ? why : "no reason given", KSVC_UPSTREAM_SKEW_S);
        }
    } else if (code != 200) {
        char why[64];
        error_code(s->reply, s->len, why, sizeof(why));
        fail(s, KPX_UPSTREAM_BAD_REPLY, "k_server answered HTTP %ld (%s)", code,
             why[0] ? why : "no code");
    } else {
        int64_t value = 0;
        if (kpx_upstream_parse_counter(s->reply, s->len, s->ref, &value, s->msg, sizeof(s->msg)) !=
            0)
            finish(s, KPX_UPSTREAM_BAD_REPLY, 0);
        else
            finish(s, KPX_UPSTREAM_OK, value);
    }
}

/* Requests waiting for a connection: those past their deadline time out,
 * the others go on the wire while there is room. */
static void launch_waiting(struct kpx_upstream *u)
{
    int64_t now = now_ms();
    while (u->wait_head != NULL) {
        struct slot *s = u->wait_head;
        if (s->deadline_ms > now && u->on_wire >= u->max_connections)
            break;
        u->wait_head = s->next;
        if (u->wait_head == NULL)
            u->wait_tail = NULL;
        s->next = NULL;
        if (s->deadline_ms <= now)
            fail(s, KPX_UPSTREAM_TIMEOUT,
                 "k_server at %s did not answer within %ld ms (no connection was free)", u->url,
                 u->timeout_ms);
        else
            send_request(u, s, now);
    }
}

static void read_finished(struct kpx_upstream *u)
{
    CURLMsg *m;
    int left = 0;
    while ((m = curl_multi_info_read(u->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        CURLcode cc = m->data.result;
        if (priv != NULL)
            transfer_done(u, (struct slot *)priv, cc);
    }
}

/* Completes everything left when the client stops. */
static void fail_all(struct kpx_upstream *u)
{
    while (u->wait_head != NULL) {
        struct slot *s = u->wait_head;
        u->wait_head = s->next;
        s->next = NULL;
        fail(s, KPX_UPSTREAM_UNREACHABLE, "k_proxy is stopping");
    }
    u->wait_tail = NULL;
    /* the list of slots no longer changes: nothing is started once stopping */
    for (struct slot *s = u->all; s != NULL; s = s->all_next) {
        if (!s->on_wire)
            continue;
        curl_multi_remove_handle(u->multi, s->easy);
        s->on_wire = false;
        u->on_wire--;
        fail(s, KPX_UPSTREAM_UNREACHABLE, "k_proxy is stopping");
    }
}

/* CURLMOPT_SOCKETFUNCTION: what curl wants to hear about a socket. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *socket_arg)
{
    (void)easy;
    struct kpx_upstream *u = arg;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(u->epfd, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    struct epoll_event ev = {.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) |
                                       ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u),
                             .data.u64 = (uint64_t)fd};
    if (socket_arg == NULL) { /* new to us */
        if (epoll_ctl(u->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
            epoll_ctl(u->epfd, EPOLL_CTL_MOD, fd, &ev);
        curl_multi_assign(u->multi, fd, u);
    } else if (epoll_ctl(u->epfd, EPOLL_CTL_MOD, fd, &ev) != 0) {
        epoll_ctl(u->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when curl wants to be called for its timeouts. */
static int on_timer(CURLM *multi, long timeout_ms, void *arg)
{
    (void)multi;
    struct kpx_upstream *u = arg;
    u->timer_at = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    return 0;
}

/* How long the loop may sleep: until curl's timer, the oldest waiting
 * request's deadline, or POLL_MAX_MS. */
static int sleep_ms(const struct kpx_upstream *u)
{
    int64_t now = now_ms(), until = now + POLL_MAX_MS;
    if (u->timer_at >= 0 && u->timer_at < until)
        until = u->timer_at;
    if (u->wait_head != NULL && u->wait_head->deadline_ms < until)
        until = u->wait_head->deadline_ms;
    return until <= now ? 0 : (int)(until - now);
}

static void *loop(void *arg)
{
    struct kpx_upstream *u = arg;
    struct epoll_event events[EVENTS_MAX];
    int running = 0;
    for (;;) {
        pthread_mutex_lock(&u->lock);
        struct slot *head = u->sub_head, *tail = u->sub_tail;
        u->sub_head = u->sub_tail = NULL;
        u->woken = false;
        bool stopping = u->stopping;
        pthread_mutex_unlock(&u->lock);
        if (head != NULL) {
            if (u->wait_tail != NULL)
                u->wait_tail->next = head;
            else
                u->wait_head = head;
            u->wait_tail = tail;
        }
        if (stopping)
            break;
        launch_waiting(u);
        int n = epoll_wait(u->epfd, events, EVENTS_MAX, sleep_ms(u));
        for (int i = 0; i < n; i++) {
            if (events[i].data.u64 == WAKE_TAG) {
                uint64_t count;
                if (read(u->wakefd, &count, sizeof(count)) < 0) { /* drained: nothing to do */
                }
                continue;
            }
            int flags = ((events[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                        ((events[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                        ((events[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(u->multi, (curl_socket_t)events[i].data.u64, flags, &running);
        }
        if (u->timer_at >= 0 && u->timer_at <= now_ms()) {
            u->timer_at = -1;
            curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        read_finished(u);
    }
    fail_all(u);
    return NULL;
}

/* Wakes the loop (any thread). */
static void wake_loop(struct kpx_upstream *u)
{
    uint64_t one = 1;
    if (write(u->wakefd, &one, sizeof(one)) < 0) { /* the counter is full: it is awake */
    }
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
    u->epfd = u->wakefd = -1;
    memcpy(u->url, cfg->base_url, blen);
    memcpy(u->url + blen, COUNTER_PATH, strlen(COUNTER_PATH) + 1);
    memcpy(u->key, cfg->key, sizeof(u->key));
    u->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
    u->max_connections =
        cfg->max_connections > 0 ? cfg->max_connections : KPX_UPSTREAM_CONNECTIONS_DEFAULT;
    atomic_init(&u->renewals, 0);
    pthread_mutex_init(&u->lock, NULL);
    if (cfg->ca_file != NULL && (u->ca_file = strdup(cfg->ca_file)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (ksvc_random(u->instance, sizeof(u->instance)) != 0) {
        snprintf(err, errlen, "no random bytes for the instance id");
        goto fail;
    }
    u->multi = curl_multi_init();
    u->share = curl_share_init();
    u->timer_at = -1;
    u->epfd = epoll_create1(EPOLL_CLOEXEC);
    u->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event wake = {.events = EPOLLIN, .data.u64 = WAKE_TAG};
    if (u->multi == NULL || u->share == NULL || u->epfd < 0 || u->wakefd < 0 ||
        epoll_ctl(u->epfd, EPOLL_CTL_ADD, u->wakefd, &wake) != 0 ||
        curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u) != CURLM_OK ||
        curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u) != CURLM_OK ||
        curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
        curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)u->max_connections) !=
            CURLM_OK ||
        curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, (long)u->max_connections) != CURLM_OK) {
        snprintf(err, errlen, "libcurl: cannot set up the client of k_server");
        goto fail;
    }
    for (size_t i = 0; i < SLOTS_PREALLOCATED; i++) {
        struct slot *s = slot_new(u);
        if (s == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        s->next = u->free;
        u->free = s;
    }
    if (pthread_create(&u->thread, NULL, loop, u) != 0) {
        snprintf(err, errlen, "cannot start the thread of the client of k_server");
        goto fail;
    }
    u->thread_started = true;
    return u;
fail:
    kpx_upstream_free(u);
    return NULL;
}

void kpx_upstream_free(struct kpx_upstream *u)
{
    if (u == NULL)
        return;
    if (u->thread_started) {
        pthread_mutex_lock(&u->lock);
        u->stopping = true;
        pthread_mutex_unlock(&u->lock);
        wake_loop(u);
        pthread_join(u->thread, NULL);
    }
    while (u->all != NULL) {
        struct slot *s = u->all;
        u->all = s->all_next;
        curl_easy_cleanup(s->easy);
        free(s);
    }
    curl_multi_cleanup(u->multi);
    curl_share_cleanup(u->share);
    if (u->epfd >= 0)
        close(u->epfd);
    if (u->wakefd >= 0)
        close(u->wakefd);
    OPENSSL_cleanse(u->key, sizeof(u->key));
    pthread_mutex_destroy(&u->lock);
    free(u->ca_file);
    free(u);
}

int kpx_upstream_counter_start(struct kpx_upstream *u, const char *ref, const void *caller,
                               size_t caller_len, kpx_upstream_done_fn done, void *arg)
{
    if (caller_len > KPX_UPSTREAM_CALLER_MAX || done == NULL)
        return -1;
    int64_t deadline = now_ms() + u->timeout_ms;
    bool wake = false;
    pthread_mutex_lock(&u->lock);
    struct slot *s = u->free;
    if (s != NULL)
        u->free = s->next;
    else if (!u->stopping && u->nslots < SLOTS_MAX)
        s = slot_new(u); /* grows once, reused after */
    if (s == NULL || u->stopping) {
        if (s != NULL) {
            s->next = u->free;
            u->free = s;
        }
        pthread_mutex_unlock(&u->lock);
        return -1;
    }
    s->next = NULL;
    s->done = done;
    s->arg = arg;
    s->retried = false;
    s->deadline_ms = deadline;
    /* one that does not fit is not a reference: left empty, it fails signing */
    if (strlen(ref) < sizeof(s->ref))
        memcpy(s->ref, ref, strlen(ref) + 1);
    else
        s->ref[0] = '\0';
    if (caller_len > 0)
        memcpy(s->caller, caller, caller_len);
    if (u->sub_tail != NULL)
        u->sub_tail->next = s;
    else
        u->sub_head = s;
    u->sub_tail = s;
    if (!u->woken) {
        u->woken = true;
        wake = true;
    }
    pthread_mutex_unlock(&u->lock);
    if (wake)
        wake_loop(u);
    return 0;
}

/* ---- waiting for the answer ---- */

struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    enum kpx_upstream_status status;
    int64_t value;
    char msg[512];
};

static void wake_waiter(void *arg, const struct kpx_upstream_result *r)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->lock);
    w->status = r->status;
    w->value = r->value;
    snprintf(w->msg, sizeof(w->msg), "%s", r->msg);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

enum kpx_upstream_status kpx_upstream_counter_next(struct kpx_upstream *u, const char *ref,
                                                   int64_t *value, char *msg, size_t msglen)
{
    struct waiter w = {.done = false};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    enum kpx_upstream_status st = KPX_UPSTREAM_UNREACHABLE;
    if (kpx_upstream_counter_start(u, ref, NULL, 0, wake_waiter, &w) != 0) {
        snprintf(msg, msglen, "k_proxy cannot send more requests to k_server now");
    } else {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        st = w.status;
        *value = w.value;
        snprintf(msg, msglen, "%s", w.msg);
    }
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return st;
}
