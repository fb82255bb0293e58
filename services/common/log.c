/* JSON-lines event log of the services (see log.h): a byte ring of whole
 * lines filled under a short lock and emptied by one writer thread. */
#include "services/common/log.h"
#include "services/common/svc_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"

static struct {
    pthread_mutex_t lock;
    pthread_cond_t more;    /* the writer waits for lines */
    pthread_cond_t drained; /* ksvc_log_flush waits for an empty ring */
    char *buf;
    size_t head, used; /* the unwritten bytes start at head */
    bool running, stopping, writing;
    bool asleep; /* the writer waits untimed: a new line must signal it */
    pthread_t thread;
} ring = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .more = PTHREAD_COND_INITIALIZER,
    .drained = PTHREAD_COND_INITIALIZER,
};
/* direct writes (before init, after stop) must not interleave either */
static pthread_mutex_t direct_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_ullong dropped;
static char log_service[32] = "kcard";

const char *ksvc_log_service(void)
{
    return log_service;
}

unsigned long long ksvc_log_dropped(void)
{
    return atomic_load(&dropped);
}

void ksvc_log_timestamp(char out[32])
{
    /* strftime once per second per thread; the milliseconds are appended */
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[24];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        if (strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
            cached[0] = '\0';
        cached_sec = ts.tv_sec;
    }
    unsigned ms = (unsigned)(ts.tv_nsec / 1000000) % 1000;
    size_t n = strnlen(cached, 23);
    memcpy(out, cached, n);
    out[n] = '.';
    out[n + 1] = (char)('0' + ms / 100);
    out[n + 2] = (char)('0' + ms / 10 % 10);
    out[n + 3] = (char)('0' + ms % 10);
    out[n + 4] = 'Z';
    out[n + 5] = '\0';
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* stderr gone: nothing better to do with a log line */
        p += w;
        n -= (size_t)w;
    }
}

/* While lines keep coming the writer polls every DOZE_MS, so a busy
 * service pays no wake-up per line; after IDLE_DOZES empty polls it sleeps
 * until the next line signals it, so a quiet one writes a line at once. */
#define DOZE_MS 2
#define IDLE_DOZES 25

static void doze(void)
{
    struct timespec until;
    kcu_deadline(CLOCK_REALTIME, DOZE_MS, &until);
    pthread_cond_timedwait(&ring.more, &ring.lock, &until);
}

static void *writer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "log-writer"); /* top -H, ps -L */
    (void)arg;
    char *out = malloc(KSVC_LOG_RING_BYTES);
    int empty_polls = IDLE_DOZES;
    pthread_mutex_lock(&ring.lock);
    for (;;) {
        while (ring.used == 0 && !ring.stopping) {
            if (empty_polls >= IDLE_DOZES) {
                ring.asleep = true;
                pthread_cond_wait(&ring.more, &ring.lock);
                ring.asleep = false;
            } else {
                empty_polls++;
                doze();
            }
        }
        if (ring.used == 0)
            break; /* stopping and drained */
        empty_polls = 0;
        /* copy out, then write without the lock: a slow stderr never stalls a request */
        size_t n = ring.used, first = KSVC_LOG_RING_BYTES - ring.head;
        if (first > n)
            first = n;
        if (out != NULL) {
            memcpy(out, ring.buf + ring.head, first);
            memcpy(out + first, ring.buf, n - first);
        }
        ring.head = (ring.head + n) % KSVC_LOG_RING_BYTES;
        ring.used = 0;
        ring.writing = true;
        pthread_mutex_unlock(&ring.lock);
        if (out != NULL)
            write_all(out, n);
        pthread_mutex_lock(&ring.lock);
        ring.writing = false;
        if (ring.used == 0)
            pthread_cond_broadcast(&ring.drained);
    }
    ring.running = false;
    pthread_cond_broadcast(&ring.drained);
    pthread_mutex_unlock(&ring.lock);
    free(out);
    return NULL;
}

static void stop_writer(void)
{
    pthread_mutex_lock(&ring.lock);
    bool running = ring.running;
    ring.stopping = true;
    pthread_cond_signal(&ring.more);
    pthread_mutex_unlock(&ring.lock);
    if (running)
        pthread_join(ring.thread, NULL);
    free(ring.buf);
    ring.buf = NULL;
}

void ksvc_log_init(const char *service)
{
    snprintf(log_service, sizeof(log_service), "%s", service);
    pthread_mutex_lock(&ring.lock);
    bool start = !ring.running && !ring.stopping;
    if (start) {
        ring.buf = malloc(KSVC_LOG_RING_BYTES);
        start = ring.buf != NULL && pthread_create(&ring.thread, NULL, writer_main, NULL) == 0;
        ring.running = start;
    }
    pthread_mutex_unlock(&ring.lock);
    if (start)
        atexit(stop_writer);
}

void ksvc_log_text(const char *text, size_t len)
{
    if (len + 1 > KSVC_LOG_LINE_MAX) {
        atomic_fetch_add(&dropped, 1);
        return;
    }
    pthread_mutex_lock(&ring.lock);
    if (!ring.running || ring.stopping) {
        pthread_mutex_unlock(&ring.lock);
        pthread_mutex_lock(&direct_lock);
        write_all(text, len);
        write_all("\n", 1);
        pthread_mutex_unlock(&direct_lock);
        return;
    }
    if (ring.used + len + 1 > KSVC_LOG_RING_BYTES) {
        pthread_mutex_unlock(&ring.lock);
        atomic_fetch_add(&dropped, 1);
        return;
    }
    size_t tail = (ring.head + ring.used) % KSVC_LOG_RING_BYTES;
    size_t first = KSVC_LOG_RING_BYTES - tail;
    if (first > len)
        first = len;
    memcpy(ring.buf + tail, text, first);
    memcpy(ring.buf, text + first, len - first);
    ring.buf[(tail + len) % KSVC_LOG_RING_BYTES] = '\n';
    ring.used += len + 1;
    /* a dozing writer comes back by itself; only a sleeping one is woken,
     * and anyone when the ring is half full */
    if (ring.asleep || ring.used > KSVC_LOG_RING_BYTES / 2)
        pthread_cond_signal(&ring.more);
    pthread_mutex_unlock(&ring.lock);
}

void ksvc_log_flush(int timeout_ms)
{
    struct timespec until;
    kcu_deadline(CLOCK_REALTIME, timeout_ms, &until);
    pthread_mutex_lock(&ring.lock);
    pthread_cond_signal(&ring.more);
    while (ring.running && (ring.used > 0 || ring.writing))
        if (pthread_cond_timedwait(&ring.drained, &ring.lock, &until) != 0)
            break;
    pthread_mutex_unlock(&ring.lock);
}

void ksvc_log(const char *level, const char *event, json_t *fields)
{
    char ts[32];
    ksvc_log_timestamp(ts);
    json_t *line = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "service", log_service, "level",
                             level, "event", event);
    if (line != NULL && fields != NULL)
        json_object_update_missing(line, fields);
    json_decref(fields);
    char *text =
        line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(line);
    if (text == NULL)
        return;
    ksvc_log_text(text, strlen(text));
    free(text);
}
