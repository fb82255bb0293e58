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
 * Requests travel in lanes: a lane is a curl multi handle with its own
 * connections, request slots and queue, driven by one thread that waits in
 * epoll on the sockets curl asks for and calls curl_multi_socket_action, so a
 * pass touches only the transfers that have something to do. Each of the HTTP
 * server's polling threads gets a lane on its own event loop
 * (kpx_upstream_attach): a counter call started by a handler there goes on
 * the wire, and is answered, on the thread that read the request, with no
 * hand-over between threads. Callers on other threads use the client's own
 * lane, which has a thread of its own fed through a short mutex-protected
 * queue and an eventfd. A request is signed when it is put on the wire, and
 * a lane has at most its share of max_connections on the wire (the rest wait
 * in it, in order), so requests overtake each other by far less than
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
#include "services/common/http.h"
#include "util/capbuf.h"
#include "util/curl_body.h"
#include "util/err.h"
#include "util/num.h"
#include "util/rand.h"

#define SLOTS_PREALLOCATED 64 /* per lane */
#define SLOTS_MAX 8192        /* per lane: requests started and not yet completed, at most */
#define LANES_MAX 64
#define REPLY_MAX 4096 /* k_server's answers are under 200 bytes */
#define POLL_MAX_MS 1000
#define EVENTS_MAX 64
#define WAKE_TAG UINT64_MAX /* the eventfd's epoll data; sockets carry their fd */
#define COUNTER_PATH "/counter/next"
#define AUTHZ_PREFIX "Authorization: "

/* A counter call carries nothing but its signature: a POST with no body
 * (k_server reads none), so curl adds no Content-Length or Content-Type, and
 * the Accept header it would add is dropped, since every header byte costs
 * libcurl's formatter. The signature covers the empty body (request_body). */
static char no_accept_header[] = "Accept:";
static const char request_body[] = "";

struct lane;

struct slot {
    struct slot *next;     /* in the free list, a queue, or NULL */
    struct slot *all_next; /* every slot of the lane, for freeing */
    struct lane *lane;
    CURL *easy;
    CURLU *url;      /* the counter URL, parsed once (CURLOPT_CURLU) */
    bool configured; /* options set (on the lane's thread) */
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
    struct curl_slist headers[2];
    char authz[sizeof(AUTHZ_PREFIX) + KSVC_UPSTREAM_HEADER_MAX + 1];
    /* the answer, in room for REPLY_MAX bytes reserved with the slot */
    struct kcu_capbuf reply;
    char curl_err[CURL_ERROR_SIZE];
    char msg[512];
};

/* A multi handle, its connections and requests, and the thread driving it:
 * an HTTP polling thread's loop (loop != NULL) or the lane's own thread. */
struct lane {
    struct kpx_upstream *u;
    struct ksvc_loop *loop;
    unsigned max_connections;
    CURLM *multi;
    CURLSH *share; /* TLS sessions and DNS, shared by the lane's handles */

    /* the free list; under lock on the own lane (any thread takes from it) */
    struct slot *free;
    struct slot *all;
    size_t nslots;

    /* the own lane only: its thread, and requests handed over to it */
    int epfd;
    int wakefd;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    struct slot *sub_head, *sub_tail;
    bool stopping;
    bool woken; /* a wakeup is pending: no need for another */

    /* the driving thread's own */
    struct slot *wait_head, *wait_tail; /* waiting for a connection */
    unsigned on_wire;
    int64_t timer_at; /* when curl wants CURL_SOCKET_TIMEOUT; -1: never */
};

struct kpx_upstream {
    char url[1024];
    char *ca_file;
    uint8_t key[KSVC_UPSTREAM_KEY_LEN];
    long timeout_ms;
    unsigned max_connections, lane_connections;
    struct lane *own;              /* for callers off the polling threads */
    struct lane *loops[LANES_MAX]; /* by polling thread index */
    atomic_ulong renewals;

    pthread_mutex_t id_lock; /* the signing identity, shared by every lane */
    uint8_t instance[KSVC_UPSTREAM_INSTANCE_LEN];
    uint64_t seq; /* the last number used */
};

static void lane_lock(struct lane *l)
{
    if (l->loop == NULL)
        pthread_mutex_lock(&l->lock);
}

static void lane_unlock(struct lane *l)
{
    if (l->loop == NULL)
        pthread_mutex_unlock(&l->lock);
}

static struct slot *slot_new(struct lane *l)
{
    struct slot *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    kcu_capbuf_init(&s->reply, REPLY_MAX);
    if (kcu_capbuf_reserve(&s->reply, REPLY_MAX) != 0 || (s->easy = curl_easy_init()) == NULL ||
        (s->url = curl_url()) == NULL ||
        curl_url_set(s->url, CURLUPART_URL, l->u->url, 0) != CURLUE_OK) {
        curl_url_cleanup(s->url);
        curl_easy_cleanup(s->easy);
        kcu_capbuf_free(&s->reply);
        free(s);
        return NULL;
    }
    s->lane = l;
    s->headers[0].data = s->authz;
    s->headers[0].next = &s->headers[1];
    s->headers[1].data = no_accept_header;
    s->headers[1].next = NULL;
    s->all_next = l->all;
    l->all = s;
    l->nslots++;
    return s;
}

/* CURLOPT_CLOSESOCKETFUNCTION: a connection closes. Its descriptor may be
 * idle in the loop's epoll set (on_socket): it leaves the set first, so that
 * a descriptor reusing the number is watched afresh. */
static int on_close_socket(void *arg, curl_socket_t fd)
{
    struct lane *l = arg;
    if (l->loop != NULL && ksvc_loop_is_current(l->loop))
        ksvc_loop_watch(l->loop, fd, 0, NULL, NULL);
    return close(fd);
}

/* The handle's options, set once on the lane's thread (the share handle is
 * used without locks, so only that thread may touch it). */
static int slot_configure(struct slot *s)
{
    struct lane *l = s->lane;
    struct kpx_upstream *u = l->u;
    CURL *h = s->easy;
    /* a parsed URL: curl copies it per request instead of parsing the text */
    bool ok = curl_easy_setopt(h, CURLOPT_CURLU, s->url) == CURLE_OK &&
              /* a POST without a body: no Content-Length, no Content-Type (curl
               * would add both for POSTFIELDS, and one more header to suppress) */
              curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "POST") == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_HTTPHEADER, s->headers) == CURLE_OK &&
              kcu_curl_body_collect(h, &s->reply) == CURLE_OK &&
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
              curl_easy_setopt(h, CURLOPT_SHARE, l->share) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, l) == CURLE_OK &&
              (u->ca_file == NULL || curl_easy_setopt(h, CURLOPT_CAINFO, u->ca_file) == CURLE_OK);
    s->configured = ok;
    return ok ? 0 : -1;
}

/* Hands the result to the caller and puts the slot back in the free list. */
static void finish(struct slot *s, enum kpx_upstream_status st, int64_t value)
{
    struct lane *l = s->lane;
    struct kpx_upstream_result r = {.status = st,
                                    .value = value,
                                    .msg = st == KPX_UPSTREAM_OK ? "" : s->msg,
                                    .caller = s->caller};
    s->done(s->arg, &r);
    s->done = NULL;
    s->arg = NULL;
    lane_lock(l);
    s->next = l->free;
    l->free = s;
    lane_unlock(l);
}

static void fail(struct slot *s, enum kpx_upstream_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct slot *s, enum kpx_upstream_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kcu_vset_err(s->msg, sizeof(s->msg), fmt, ap);
    va_end(ap);
    finish(s, st, 0);
}

/* Signs the request with the next number of the sequence and puts it on the
 * wire; completes it at once when that fails. */
static void send_request(struct lane *l, struct slot *s, int64_t now)
{
    struct kpx_upstream *u = l->u;
    if (!s->configured && slot_configure(s) != 0) {
        fail(s, KPX_UPSTREAM_UNREACHABLE, "cannot set up a request to k_server");
        return;
    }
    pthread_mutex_lock(&u->id_lock);
    memcpy(s->instance, u->instance, sizeof(s->instance));
    s->seq = ++u->seq;
    pthread_mutex_unlock(&u->id_lock);
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
    kcu_capbuf_reset(&s->reply);
    s->curl_err[0] = '\0';
    if (curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, left) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS, left) != CURLE_OK ||
        curl_multi_add_handle(l->multi, s->easy) != CURLM_OK) {
        fail(s, KPX_UPSTREAM_UNREACHABLE, "cannot start a request to k_server");
        return;
    }
    s->on_wire = true;
    l->on_wire++;
}

int kpx_upstream_parse_counter_header(const char *header, const char *ref, int64_t *value,
                                      char *msg, size_t msglen)
{
    char digits[KCU_U64_DEC_MAX];
    size_t n = strspn(header, "0123456789");
    uint64_t v = 0;
    if (n == 0 || n >= sizeof(digits) || header[n] != ' ') {
        snprintf(msg, msglen, "k_server's %s header is not \"<counter> <ref>\"",
                 KSVC_COUNTER_HEADER);
        return -1;
    }
    memcpy(digits, header, n);
    digits[n] = '\0';
    if (kcu_parse_u64(digits, 1, INT64_MAX, &v) != 0) {
        snprintf(msg, msglen, "k_server's %s header has no positive counter", KSVC_COUNTER_HEADER);
        return -1;
    }
    if (strcmp(header + n + 1, ref) != 0) {
        snprintf(msg, msglen, "k_server's answer is for another session reference");
        return -1;
    }
    *value = (int64_t)v;
    return 0;
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
    int rc = 0;
    pthread_mutex_lock(&u->id_lock);
    if (memcmp(u->instance, s->instance, sizeof(u->instance)) == 0) {
        uint8_t fresh[KSVC_UPSTREAM_INSTANCE_LEN];
        if (kcu_random(fresh, sizeof(fresh)) != 0) {
            rc = -1;
        } else {
            memcpy(u->instance, fresh, sizeof(fresh));
            u->seq = 0;
            atomic_fetch_add(&u->renewals, 1);
        }
    }
    pthread_mutex_unlock(&u->id_lock);
    return rc;
}

unsigned long kpx_upstream_renewals(struct kpx_upstream *u)
{
    return atomic_load(&u->renewals);
}

/* A transfer ended with cc: answer the caller, or send it once more. */
static void transfer_done(struct lane *l, struct slot *s, CURLcode cc)
{
    struct kpx_upstream *u = l->u;
    long code = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    /* k_server's counter header, read while the transfer's headers are kept */
    char counter_header[128] = "";
    struct curl_header *h = NULL;
    bool have_header =
        cc == CURLE_OK && code == 200 &&
        curl_easy_header(s->easy, KSVC_COUNTER_HEADER, 0, CURLH_HEADER, -1, &h) == CURLHE_OK &&
        h != NULL && h->value != NULL;
    size_t header_len = have_header ? strlen(h->value) : 0;
    if (have_header && header_len < sizeof(counter_header)) /* else "": refused as malformed */
        memcpy(counter_header, h->value, header_len + 1);
    curl_multi_remove_handle(l->multi, s->easy);
    s->on_wire = false;
    l->on_wire--;
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        fail(s, KPX_UPSTREAM_TIMEOUT, "k_server at %s did not answer within %ld ms", u->url,
             u->timeout_ms);
    } else if (s->reply.over) {
        fail(s, KPX_UPSTREAM_BAD_REPLY, "k_server's answer is over %d bytes", REPLY_MAX);
    } else if (cc != CURLE_OK) {
        fail(s, KPX_UPSTREAM_UNREACHABLE, "k_server at %s: %s", u->url,
             s->curl_err[0] ? s->curl_err : curl_easy_strerror(cc));
    } else if (code == 401 || code == 403) {
        char why[64];
        error_code(s->reply.data, s->reply.len, why, sizeof(why));
        if (strcmp(why, "replayed_request") == 0) {
            /* A replayed_request for a number this process never sent before:
             * k_server restarted (and closed the instance), or the request was
             * overtaken by more than the window. A refused request was not
             * served, so sending it again, newly signed under a new instance,
             * hands out no value twice. */
            if (!s->retried && renew_identity(u, s) == 0) {
                int64_t now = ksvc_now_ms();
                s->retried = true;
                s->deadline_ms = now + u->timeout_ms;
                send_request(l, s, now);
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
        error_code(s->reply.data, s->reply.len, why, sizeof(why));
        fail(s, KPX_UPSTREAM_BAD_REPLY, "k_server answered HTTP %ld (%s)", code,
             why[0] ? why : "no code");
    } else {
        int64_t value = 0;
        /* the header when k_server sends it (a JSON parse cost about 7,700
         * instructions more per call), else its JSON body */
        if (have_header ? kpx_upstream_parse_counter_header(counter_header, s->ref, &value, s->msg,
                                                            sizeof(s->msg)) != 0
                        : kpx_upstream_parse_counter(s->reply.data, s->reply.len, s->ref, &value,
                                                     s->msg, sizeof(s->msg)) != 0)
            finish(s, KPX_UPSTREAM_BAD_REPLY, 0);
        else
            finish(s, KPX_UPSTREAM_OK, value);
    }
}

/* Requests waiting for a connection: those past their deadline time out,
 * the others go on the wire while there is room. */
static void launch_waiting(struct lane *l)
{
    int64_t now = ksvc_now_ms();
    while (l->wait_head != NULL) {
        struct slot *s = l->wait_head;
        if (s->deadline_ms > now && l->on_wire >= l->max_connections)
            break;
        l->wait_head = s->next;
        if (l->wait_head == NULL)
            l->wait_tail = NULL;
        s->next = NULL;
        if (s->deadline_ms <= now)
            fail(s, KPX_UPSTREAM_TIMEOUT,
                 "k_server at %s did not answer within %ld ms (no connection was free)", l->u->url,
                 l->u->timeout_ms);
        else
            send_request(l, s, now);
    }
}

static void read_finished(struct lane *l)
{
    CURLMsg *m;
    int left = 0;
    while ((m = curl_multi_info_read(l->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        CURLcode cc = m->data.result;
        if (priv != NULL)
            transfer_done(l, (struct slot *)priv, cc);
    }
}

/* Completes everything left when the lane stops. */
static void fail_all(struct lane *l)
{
    while (l->wait_head != NULL) {
        struct slot *s = l->wait_head;
        l->wait_head = s->next;
        s->next = NULL;
        fail(s, KPX_UPSTREAM_UNREACHABLE, "k_proxy is stopping");
    }
    l->wait_tail = NULL;
    /* the list of slots no longer changes: nothing is started once stopping */
    for (struct slot *s = l->all; s != NULL; s = s->all_next) {
        if (!s->on_wire)
            continue;
        curl_multi_remove_handle(l->multi, s->easy);
        s->on_wire = false;
        l->on_wire--;
        fail(s, KPX_UPSTREAM_UNREACHABLE, "k_proxy is stopping");
    }
}

/* When the lane must next be driven: curl's timer or the oldest waiting
 * request's deadline; -1: no need. */
static int64_t lane_due(const struct lane *l)
{
    int64_t due = l->timer_at;
    if (l->wait_head != NULL && (due < 0 || l->wait_head->deadline_ms < due))
        due = l->wait_head->deadline_ms;
    return due;
}

static void lane_on_loop_timer(void *arg);

/* After the lane was driven: on a polling thread's loop, its timer follows. */
static void lane_settle(struct lane *l)
{
    read_finished(l);
    launch_waiting(l);
    if (l->loop != NULL)
        ksvc_loop_timer(l->loop, lane_due(l), lane_on_loop_timer, l);
}

static void lane_on_timeouts(struct lane *l)
{
    int running = 0;
    if (l->timer_at >= 0 && l->timer_at <= ksvc_now_ms()) {
        l->timer_at = -1;
        curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
}

static void lane_on_loop_timer(void *arg)
{
    struct lane *l = arg;
    lane_on_timeouts(l);
    lane_settle(l);
}

static void lane_socket_action(struct lane *l, int fd, uint32_t events)
{
    int running = 0;
    int flags = ((events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                ((events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                ((events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
    curl_multi_socket_action(l->multi, (curl_socket_t)fd, flags, &running);
}

/* A socket of a lane on a polling thread's loop is ready. */
static void lane_on_loop_io(void *arg, int fd, uint32_t events)
{
    struct lane *l = arg;
    lane_socket_action(l, fd, events);
    lane_on_timeouts(l);
    lane_settle(l);
}

/* CURLMOPT_SOCKETFUNCTION: what curl wants to hear about a socket. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *socket_arg)
{
    (void)easy;
    (void)socket_arg;
    struct lane *l = arg;
    uint32_t events = what == CURL_POLL_REMOVE ? 0u
                                               : ((what & CURL_POLL_IN) ? EPOLLIN : 0u) |
                                                     ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    if (l->loop != NULL) {
        if (events == 0) { /* a kept-alive connection between requests, or one closing */
            ksvc_loop_idle(l->loop, fd);
            return 0;
        }
        return ksvc_loop_watch(l->loop, fd, events, lane_on_loop_io, l) == 0 ? 0 : -1;
    }
    if (events == 0) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)fd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) != 0)
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when curl wants to be called for its timeouts. */
static int on_timer(CURLM *multi, long timeout_ms, void *arg)
{
    (void)multi;
    struct lane *l = arg;
    l->timer_at = timeout_ms < 0 ? -1 : ksvc_now_ms() + timeout_ms;
    if (l->loop != NULL)
        ksvc_loop_timer(l->loop, lane_due(l), lane_on_loop_timer, l);
    return 0;
}

/* How long the own lane's thread may sleep. */
static int sleep_ms(const struct lane *l)
{
    int64_t now = ksvc_now_ms(), until = now + POLL_MAX_MS, due = lane_due(l);
    if (due >= 0 && due < until)
        until = due;
    return until <= now ? 0 : (int)(until - now);
}

/* The own lane's thread. */
static void *own_loop(void *arg)
{
    pthread_setname_np(pthread_self(), "upstream-loop"); /* top -H, ps -L */
    struct lane *l = arg;
    struct epoll_event events[EVENTS_MAX];
    for (;;) {
        pthread_mutex_lock(&l->lock);
        struct slot *head = l->sub_head, *tail = l->sub_tail;
        l->sub_head = l->sub_tail = NULL;
        l->woken = false;
        bool stopping = l->stopping;
        pthread_mutex_unlock(&l->lock);
        if (head != NULL) {
            if (l->wait_tail != NULL)
                l->wait_tail->next = head;
            else
                l->wait_head = head;
            l->wait_tail = tail;
        }
        if (stopping)
            break;
        launch_waiting(l);
        int n = epoll_wait(l->epfd, events, EVENTS_MAX, sleep_ms(l));
        for (int i = 0; i < n; i++) {
            if (events[i].data.u64 == WAKE_TAG) {
                uint64_t count;
                if (read(l->wakefd, &count, sizeof(count)) < 0) { /* drained: nothing to do */
                }
                continue;
            }
            lane_socket_action(l, (int)events[i].data.u64, events[i].events);
        }
        lane_on_timeouts(l);
        read_finished(l);
    }
    fail_all(l);
    return NULL;
}

/* Wakes the own lane's thread (any thread). */
static void wake_own(struct lane *l)
{
    uint64_t one = 1;
    if (write(l->wakefd, &one, sizeof(one)) < 0) { /* the counter is full: it is awake */
    }
}

static void lane_free(struct lane *l)
{
    if (l == NULL)
        return;
    if (l->thread_started) {
        pthread_mutex_lock(&l->lock);
        l->stopping = true;
        pthread_mutex_unlock(&l->lock);
        wake_own(l);
        pthread_join(l->thread, NULL);
    } else if (l->loop != NULL) {
        fail_all(l); /* on the loop's thread, as it ends */
        ksvc_loop_timer(l->loop, -1, NULL, NULL);
    }
    while (l->all != NULL) {
        struct slot *s = l->all;
        l->all = s->all_next;
        if (l->multi != NULL)
            curl_multi_remove_handle(l->multi, s->easy);
        curl_easy_cleanup(s->easy);
        curl_url_cleanup(s->url);
        kcu_capbuf_free(&s->reply);
        free(s);
    }
    /* the handles' connections close here: curl tells on_socket to forget them */
    curl_multi_cleanup(l->multi);
    curl_share_cleanup(l->share);
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wakefd >= 0)
        close(l->wakefd);
    if (l->loop == NULL)
        pthread_mutex_destroy(&l->lock);
    free(l);
}

/* A lane on loop (NULL: with its own thread, started here). */
static struct lane *lane_new(struct kpx_upstream *u, struct ksvc_loop *loop, char *err,
                             size_t errlen)
{
    struct lane *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->u = u;
    l->loop = loop;
    l->max_connections = u->lane_connections;
    l->epfd = l->wakefd = -1;
    l->timer_at = -1;
    if (loop == NULL)
        pthread_mutex_init(&l->lock, NULL);
    l->multi = curl_multi_init();
    l->share = curl_share_init();
    if (l->multi == NULL || l->share == NULL ||
        curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l) != CURLM_OK ||
        curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l) != CURLM_OK ||
        curl_share_setopt(l->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
        curl_share_setopt(l->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)l->max_connections) !=
            CURLM_OK ||
        curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, (long)l->max_connections) != CURLM_OK) {
        snprintf(err, errlen, "libcurl: cannot set up the client of k_server");
        goto fail;
    }
    for (size_t i = 0; i < SLOTS_PREALLOCATED; i++) {
        struct slot *s = slot_new(l);
        if (s == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        s->next = l->free;
        l->free = s;
    }
    if (loop != NULL)
        return l;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event wake = {.events = EPOLLIN, .data.u64 = WAKE_TAG};
    if (l->epfd < 0 || l->wakefd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &wake) != 0) {
        snprintf(err, errlen, "cannot set up the client of k_server's event loop");
        goto fail;
    }
    if (pthread_create(&l->thread, NULL, own_loop, l) != 0) {
        snprintf(err, errlen, "cannot start the thread of the client of k_server");
        goto fail;
    }
    l->thread_started = true;
    return l;
fail:
    lane_free(l);
    return NULL;
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
    /* each request slot keeps it parsed: refuse here what curl cannot parse */
    CURLU *parsed = curl_url();
    CURLUcode uc =
        parsed == NULL ? CURLUE_OUT_OF_MEMORY : curl_url_set(parsed, CURLUPART_URL, u->url, 0);
    curl_url_cleanup(parsed);
    if (uc != CURLUE_OK) {
        snprintf(err, errlen, "--server-base-url %s: %s", cfg->base_url, curl_url_strerror(uc));
        free(u);
        return NULL;
    }
    memcpy(u->key, cfg->key, sizeof(u->key));
    u->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
    u->max_connections =
        cfg->max_connections > 0 ? cfg->max_connections : KPX_UPSTREAM_CONNECTIONS_DEFAULT;
    /* the own lane and one per polling thread share the connections */
    unsigned lanes = (cfg->loop_lanes < LANES_MAX ? cfg->loop_lanes : LANES_MAX) + 1;
    u->lane_connections = u->max_connections / lanes ? u->max_connections / lanes : 1;
    atomic_init(&u->renewals, 0);
    pthread_mutex_init(&u->id_lock, NULL);
    if (cfg->ca_file != NULL && (u->ca_file = strdup(cfg->ca_file)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (kcu_random(u->instance, sizeof(u->instance)) != 0) {
        snprintf(err, errlen, "no random bytes for the instance id");
        goto fail;
    }
    if ((u->own = lane_new(u, NULL, err, errlen)) == NULL)
        goto fail;
    return u;
fail:
    kpx_upstream_free(u);
    return NULL;
}

int kpx_upstream_attach(struct kpx_upstream *u, struct ksvc_loop *loop)
{
    unsigned i = ksvc_loop_index(loop);
    if (i >= LANES_MAX)
        return 0; /* served by the own lane */
    char err[128];
    struct lane *l = lane_new(u, loop, err, sizeof(err));
    if (l == NULL)
        return -1;
    u->loops[i] = l;
    return 0;
}

void kpx_upstream_detach(struct kpx_upstream *u, struct ksvc_loop *loop)
{
    unsigned i = ksvc_loop_index(loop);
    if (i >= LANES_MAX || u->loops[i] == NULL)
        return;
    lane_free(u->loops[i]);
    u->loops[i] = NULL;
}

void kpx_upstream_free(struct kpx_upstream *u)
{
    if (u == NULL)
        return;
    lane_free(u->own);
    OPENSSL_cleanse(u->key, sizeof(u->key));
    pthread_mutex_destroy(&u->id_lock);
    free(u->ca_file);
    free(u);
}

/* A free slot of l, made when there is none (up to SLOTS_MAX); NULL when
 * none can be had or the lane is stopping. */
static struct slot *take_slot(struct lane *l)
{
    lane_lock(l);
    struct slot *s = l->free;
    if (s != NULL)
        l->free = s->next;
    else if (!l->stopping && l->nslots < SLOTS_MAX)
        s = slot_new(l); /* grows once, reused after */
    if (s != NULL && l->stopping) {
        s->next = l->free;
        l->free = s;
        s = NULL;
    }
    lane_unlock(l);
    return s;
}

int kpx_upstream_counter_start(struct kpx_upstream *u, struct ksvc_loop *loop, const char *ref,
                               const void *caller, size_t caller_len, kpx_upstream_done_fn done,
                               void *arg)
{
    if (caller_len > KPX_UPSTREAM_CALLER_MAX || done == NULL)
        return -1;
    struct lane *l = u->own;
    if (loop != NULL && ksvc_loop_index(loop) < LANES_MAX && u->loops[ksvc_loop_index(loop)] &&
        ksvc_loop_is_current(loop))
        l = u->loops[ksvc_loop_index(loop)];
    struct slot *s = take_slot(l);
    if (s == NULL)
        return -1;
    s->next = NULL;
    s->done = done;
    s->arg = arg;
    s->retried = false;
    s->deadline_ms = ksvc_now_ms() + u->timeout_ms;
    /* one that does not fit is not a reference: left empty, it fails signing */
    if (strlen(ref) < sizeof(s->ref))
        memcpy(s->ref, ref, strlen(ref) + 1);
    else
        s->ref[0] = '\0';
    if (caller_len > 0)
        memcpy(s->caller, caller, caller_len);
    if (l->loop != NULL) { /* this thread drives the lane: on the wire now */
        if (l->wait_tail != NULL)
            l->wait_tail->next = s;
        else
            l->wait_head = s;
        l->wait_tail = s;
        launch_waiting(l);
        ksvc_loop_timer(l->loop, lane_due(l), lane_on_loop_timer, l);
        return 0;
    }
    bool wake = false;
    pthread_mutex_lock(&l->lock);
    if (l->sub_tail != NULL)
        l->sub_tail->next = s;
    else
        l->sub_head = s;
    l->sub_tail = s;
    if (!l->woken) {
        l->woken = true;
        wake = true;
    }
    pthread_mutex_unlock(&l->lock);
    if (wake)
        wake_own(l);
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
    if (kpx_upstream_counter_start(u, NULL, ref, NULL, 0, wake_waiter, &w) != 0) {
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
