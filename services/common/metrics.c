/* Prometheus registry of the services (see metrics.h). */
#include "services/common/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 80
#define LABELS_MAX_LEN 160
#define HIST_ROUTES 24

static const double hist_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,  0.5,    1,     2.5,  5,     10,   30};
#define HIST_BUCKETS (sizeof(hist_bounds) / sizeof(hist_bounds[0]))

struct metric {
    char name[NAME_MAX_LEN];
    char labels[LABELS_MAX_LEN];
    const char *help;
    int gauge;
    double value;
};

struct histogram {
    char route[64];
    unsigned long long buckets[HIST_BUCKETS]; /* cumulative at render time */
    unsigned long long count;
    double sum;
};

struct ksvc_metrics {
    pthread_mutex_t lock;
    char prefix[32];
    struct metric m[KSVC_METRICS_MAX];
    size_t n;
    unsigned long long dropped;
    struct histogram hist[HIST_ROUTES];
    size_t nhist;
};

struct ksvc_metrics *ksvc_metrics_new(const char *prefix)
{
    struct ksvc_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    snprintf(m->prefix, sizeof(m->prefix), "%s", prefix);
    return m;
}

void ksvc_metrics_free(struct ksvc_metrics *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* The entry for name{labels}, created when missing; NULL when the table is full. */
static struct metric *find_or_add(struct ksvc_metrics *m, const char *name, const char *help,
                                  const char *labels, int gauge)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->m[i].name, name) == 0 && strcmp(m->m[i].labels, labels) == 0)
            return &m->m[i];
    if (m->n == KSVC_METRICS_MAX || strlen(name) >= NAME_MAX_LEN ||
        strlen(labels) >= LABELS_MAX_LEN) {
        m->dropped++;
        return NULL;
    }
    struct metric *e = &m->m[m->n++];
    snprintf(e->name, sizeof(e->name), "%s", name);
    snprintf(e->labels, sizeof(e->labels), "%s", labels);
    e->help = help;
    e->gauge = gauge;
    return e;
}

void ksvc_metric_add(struct ksvc_metrics *m, const char *name, const char *help, const char *labels,
                     double v)
{
    pthread_mutex_lock(&m->lock);
    struct metric *e = find_or_add(m, name, help, labels ? labels : "", 0);
    if (e != NULL)
        e->value += v;
    pthread_mutex_unlock(&m->lock);
}

void ksvc_metric_set(struct ksvc_metrics *m, const char *name, const char *help, const char *labels,
                     double v)
{
    pthread_mutex_lock(&m->lock);
    struct metric *e = find_or_add(m, name, help, labels ? labels : "", 1);
    if (e != NULL)
        e->value = v;
    pthread_mutex_unlock(&m->lock);
}

void ksvc_metrics_request(struct ksvc_metrics *m, const char *route, const char *method, int status,
                          double seconds)
{
    char name[NAME_MAX_LEN], labels[LABELS_MAX_LEN];
    snprintf(name, sizeof(name), "%s_http_requests_total", m->prefix);
    snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\",code=\"%d\"", route, method,
             status);
    ksvc_metric_add(m, name, "HTTP requests answered, by route, method and status.", labels, 1);

    pthread_mutex_lock(&m->lock);
    struct histogram *h = NULL;
    for (size_t i = 0; i < m->nhist; i++)
        if (strcmp(m->hist[i].route, route) == 0)
            h = &m->hist[i];
    if (h == NULL && m->nhist < HIST_ROUTES) {
        h = &m->hist[m->nhist++];
        snprintf(h->route, sizeof(h->route), "%s", route);
    }
    if (h != NULL) {
        for (size_t b = 0; b < HIST_BUCKETS; b++)
            if (seconds <= hist_bounds[b]) {
                h->buckets[b]++;
                break;
            }
        h->count++;
        h->sum += seconds;
    }
    pthread_mutex_unlock(&m->lock);
}

/* A growing text buffer; on allocation failure it stays NULL and is skipped. */
struct text {
    char *s;
    size_t len, cap;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
    if (t->s == NULL && t->cap != 0)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (t->s != NULL && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
        char *s = realloc(t->s, cap);
        if (s == NULL) {
            free(t->s);
            t->s = NULL;
            t->cap = 1;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
}

char *ksvc_metrics_render(struct ksvc_metrics *m)
{
    struct text t = {0};
    text_add(&t, "%s", "");
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n; i++) {
        int first = 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->m[j].name, m->m[i].name) == 0)
                first = 0;
        if (!first)
            continue; /* printed with the first entry of its name */
        const struct metric *e = &m->m[i];
        text_add(&t, "# HELP %s %s\n# TYPE %s %s\n", e->name, e->help ? e->help : e->name, e->name,
                 e->gauge ? "gauge" : "counter");
        for (size_t j = i; j < m->n; j++) {
            const struct metric *f = &m->m[j];
            if (strcmp(f->name, e->name) != 0)
                continue;
            if (f->labels[0] != '\0')
                text_add(&t, "%s{%s} %.17g\n", f->name, f->labels, f->value);
            else
                text_add(&t, "%s %.17g\n", f->name, f->value);
        }
    }
    if (m->nhist > 0)
        text_add(&t,
                 "# HELP %s_http_request_duration_seconds Time from request to response.\n"
                 "# TYPE %s_http_request_duration_seconds histogram\n",
                 m->prefix, m->prefix);
    for (size_t i = 0; i < m->nhist; i++) {
        const struct histogram *h = &m->hist[i];
        unsigned long long cum = 0;
        for (size_t b = 0; b < HIST_BUCKETS; b++) {
            cum += h->buckets[b];
            text_add(&t, "%s_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                     m->prefix, h->route, hist_bounds[b], cum);
        }
        text_add(&t,
                 "%s_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                 "%s_http_request_duration_seconds_sum{route=\"%s\"} %.9g\n"
                 "%s_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                 m->prefix, h->route, h->count, m->prefix, h->route, h->sum, m->prefix, h->route,
                 h->count);
    }
    text_add(&t,
             "# HELP %s_metrics_dropped_total Metric updates dropped because the table was full.\n"
             "# TYPE %s_metrics_dropped_total counter\n%s_metrics_dropped_total %llu\n",
             m->prefix, m->prefix, m->prefix, m->dropped);
    pthread_mutex_unlock(&m->lock);
    return t.s;
}
