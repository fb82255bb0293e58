/* Scripted in-memory transport for unit tests: a queue of reports (or
 * errors) the "device" returns, each readable from a wall-clock time on, a
 * log of what the host wrote, and an optional responder run on every write. */
#include "ctaphid/transport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctaphid/clock.h"
#include "ctaphid/status.h"
#include "ctaphid/trace.h"
#include "ctaphid/transport_int.h"
#include "ctaphid/transport_mem_int.h"

struct mem_item {
    struct mem_item *next;
    uint64_t ready_us; /* readable from this monotonic time on */
    int err;           /* KC_ERR_* to return instead of a report, 0 for a report */
    size_t len;
    uint8_t data[];
};

struct mem_queue {
    struct mem_item *head, *tail;
    size_t count;
};

struct kc_mem_transport {
    struct mem_queue in;      /* device -> host */
    struct mem_queue written; /* host -> device */
    kc_mem_responder responder;
    void *responder_ctx;
};

static void queue_append(struct mem_queue *q, struct mem_item *it)
{
    it->next = NULL;
    if (q->tail != NULL)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->count++;
}

static struct mem_item *queue_pop(struct mem_queue *q)
{
    struct mem_item *it = q->head;

    if (it == NULL)
        return NULL;
    q->head = it->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->count--;
    return it;
}

static void queue_free(struct mem_queue *q)
{
    struct mem_item *it;

    while ((it = queue_pop(q)) != NULL)
        free(it);
}

static struct mem_item *item_new(const uint8_t *data, size_t len)
{
    struct mem_item *it = calloc(1, sizeof(*it) + len);

    if (it == NULL)
        return NULL;
    if (len > 0)
        memcpy(it->data, data, len);
    it->len = len;
    return it;
}

static void sleep_us(uint64_t us)
{
    struct timespec ts = {.tv_sec = (time_t)(us / 1000000u),
                          .tv_nsec = (long)(us % 1000000u) * 1000};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static struct kc_mem_transport *mem_of(const struct kc_transport *t)
{
    if (t == NULL || t->kind == NULL || strcmp(t->kind, "mem") != 0)
        return NULL;
    return t->priv;
}

static int mem_write(struct kc_transport *t, const uint8_t *report, size_t len)
{
    struct kc_mem_transport *m = mem_of(t);
    struct mem_item *it;

    if (m == NULL || report == NULL)
        return KC_ERR_INVALID_ARG;
    if ((it = item_new(report, len)) == NULL)
        return KC_ERR_NOMEM;
    queue_append(&m->written, it);
    if (m->responder != NULL)
        m->responder(t, report, len, m->responder_ctx);
    return KC_OK;
}

/* Waits like a device would: until the next queued report is due or the
 * deadline passes. An empty queue with no deadline returns 0 at once rather
 * than hanging a test. */
static int mem_read(struct kc_transport *t, uint8_t *buf, size_t cap, int timeout_ms)
{
    struct kc_mem_transport *m = mem_of(t);
    struct mem_item *it;
    uint64_t now, limit;
    int n;

    if (m == NULL || buf == NULL)
        return KC_ERR_INVALID_ARG;
    now = kc_now_us();
    limit = timeout_ms < 0 ? UINT64_MAX : now + (uint64_t)timeout_ms * 1000u;
    it = m->in.head;
    if (it == NULL) {
        if (timeout_ms > 0)
            sleep_us((uint64_t)timeout_ms * 1000u);
        return 0;
    }
    if (it->ready_us > now) {
        if (it->ready_us > limit) {
            sleep_us(limit - now);
            return 0;
        }
        sleep_us(it->ready_us - now);
    }
    it = queue_pop(&m->in);
    if (it->err != 0) {
        n = it->err;
        t->last_errno = it->err == KC_ERR_UNPLUGGED ? ENODEV : EIO;
        snprintf(t->last_error, sizeof(t->last_error), "mem: scripted read error %d", it->err);
    } else {
        n = (int)(it->len < cap ? it->len : cap);
        memcpy(buf, it->data, (size_t)n);
    }
    free(it);
    return n;
}

static void mem_close(struct kc_transport *t)
{
    struct kc_mem_transport *m = mem_of(t);

    if (m != NULL) {
        queue_free(&m->in);
        queue_free(&m->written);
        free(m);
    }
    free(t);
}

static const struct kc_transport_ops mem_ops = {
    .write = mem_write,
    .read = mem_read,
    .close = mem_close,
};

struct kc_transport *kc_mem_transport_new(void)
{
    struct kc_transport *t = kc_transport_alloc(&mem_ops, "mem", sizeof(struct kc_mem_transport));

    if (t == NULL)
        return NULL;
    snprintf(t->uri, sizeof(t->uri), "%s", "mem:");
    t->in_report_len = KC_HID_REPORT_LEN;
    t->out_report_len = KC_HID_REPORT_LEN;
    return t;
}

int kc_mem_push(struct kc_transport *t, const uint8_t *report, size_t len, int delay_ms)
{
    struct kc_mem_transport *m = mem_of(t);
    struct mem_item *it;

    if (m == NULL || (report == NULL && len > 0) || delay_ms < 0)
        return KC_ERR_INVALID_ARG;
    if ((it = item_new(report, len)) == NULL)
        return KC_ERR_NOMEM;
    it->ready_us = kc_now_us() + (uint64_t)delay_ms * 1000u;
    queue_append(&m->in, it);
    return KC_OK;
}

int kc_mem_push_error(struct kc_transport *t, int err)
{
    struct kc_mem_transport *m = mem_of(t);
    struct mem_item *it;

    if (m == NULL || err >= 0)
        return KC_ERR_INVALID_ARG;
    if ((it = item_new(NULL, 0)) == NULL)
        return KC_ERR_NOMEM;
    it->err = err;
    queue_append(&m->in, it);
    return KC_OK;
}

size_t kc_mem_pop_written(struct kc_transport *t, uint8_t *buf, size_t cap)
{
    struct kc_mem_transport *m = mem_of(t);
    struct mem_item *it;
    size_t n;

    if (m == NULL || (it = queue_pop(&m->written)) == NULL)
        return 0;
    n = it->len < cap ? it->len : cap;
    if (n > 0 && buf != NULL)
        memcpy(buf, it->data, n);
    else
        n = 0;
    free(it);
    return n;
}

size_t kc_mem_written_count(const struct kc_transport *t)
{
    const struct kc_mem_transport *m = mem_of(t);

    return m != NULL ? m->written.count : 0;
}

void kc_mem_set_responder(struct kc_transport *t, kc_mem_responder fn, void *ctx)
{
    struct kc_mem_transport *m = mem_of(t);

    if (m == NULL)
        return;
    m->responder = fn;
    m->responder_ctx = ctx;
}
