/* Prometheus registry of the services (see metrics.h). */
#include "services/common/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 80
#define LABELS_MAX_LEN 160
#define ROUTE_MAX_LEN 64
/* (method, status) pairs per route; more are folded into one "other" entry */
#define ROUTE_CODES 32

static const double hist_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,  0.5,    1,     2.5,  5,     10,   30};
#define HIST_BUCKETS (sizeof(hist_bounds) / sizeof(hist_bounds[0]))

static const char *const known_methods[] = {"GET",    "HEAD",  "POST",    "PUT",
                                            "DELETE", "PATCH", "OPTIONS", "other"};
#define N_METHODS (sizeof(known_methods) / sizeof(known_methods[0]))

struct metric {
    char name[NAME_MAX_LEN];
    char labels[LABELS_MAX_LEN];
    const char *help;
    int gauge;
    double value;
};

struct route_code {
    unsigned char method; /* index in known_methods */
    int status;           /* 0: the "other" overflow entry */
    unsigned long long count;
};

struct route {
    char name[ROUTE_MAX_LEN];
    unsigned long long buckets[HIST_BUCKETS]; /* per bucket; made cumulative at render */
    unsigned long long count;
    double sum;
    struct route_code codes[ROUTE_CODES];
    size_t ncodes;
};

struct ksvc_metrics {
    pthread_mutex_t lock;
    char prefix[32];
    struct metric m[KSVC_METRICS_MAX];
    size_t n;
    unsigned long long dropped;
    struct route routes[KSVC_METRICS_ROUTES + 1]; /* the last one is "other" */
    size_t nroutes;
};

struct ksvc_metrics *ksvc_metrics_new(const char *prefix)
{
    struct ksvc_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    snprintf(m->prefix, sizeof(m->prefix), "%s", prefix);
    snprintf(m->routes[KSVC_METRICS_ROUTES].name, ROUTE_MAX_LEN, "other");
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

static void update(struct ksvc_metrics *m, const char *name, const char *help, const char *labels,
                   int gauge, int add, double v)
{
    pthread_mutex_lock(&m->lock);
    struct metric *e = find_or_add(m, name, help, labels ? labels : "", gauge);
    if (e != NULL)
        e->value = add ? e->value + v : v;
    pthread_mutex_unlock(&m->lock);
}

void ksvc_metric_add(struct ksvc_metrics *m, const char *name, const char *help, const char *labels,
                     double v)
{
    update(m, name, help, labels, 0, 1, v);
}

void ksvc_metric_set(struct ksvc_metrics *m, const char *name, const char *help, const char *labels,
                     double v)
{
    update(m, name, help, labels, 1, 0, v);
}

void ksvc_metric_set_total(struct ksvc_metrics *m, const char *name, const char *help,
                           const char *labels, double v)
{
    update(m, name, help, labels, 0, 0, v);
}

static unsigned char method_index(const char *method)
{
    for (unsigned char i = 0; (size_t)i + 1 < N_METHODS; i++)
        if (strcmp(known_methods[i], method) == 0)
            return i;
    return (unsigned char)(N_METHODS - 1);
}

/* The route's entry; "other" once the named ones are used up. Locked. */
static struct route *route_entry(struct ksvc_metrics *m, const char *route)
{
    for (size_t i = 0; i < m->nroutes; i++)
        if (strcmp(m->routes[i].name, route) == 0)
            return &m->routes[i];
    if (strcmp(route, "other") == 0 || m->nroutes == KSVC_METRICS_ROUTES ||
        strlen(route) >= ROUTE_MAX_LEN)
        return &m->routes[KSVC_METRICS_ROUTES];
    struct route *r = &m->routes[m->nroutes++];
    snprintf(r->name, sizeof(r->name), "%s", route);
    return r;
}

void ksvc_metrics_request(struct ksvc_metrics *m, const char *route, const char *method, int status,
                          double seconds)
{
    unsigned char mi = method_index(method);
    pthread_mutex_lock(&m->lock);
    struct route *r = route_entry(m, route);
    struct route_code *c = NULL;
    for (size_t i = 0; i < r->ncodes && c == NULL; i++)
        if (r->codes[i].method == mi && r->codes[i].status == status)
            c = &r->codes[i];
    if (c == NULL && r->ncodes + 1 < ROUTE_CODES) {
        c = &r->codes[r->ncodes++];
        c->method = mi;
        c->status = status;
    } else if (c == NULL) { /* the last entry gathers whatever does not fit */
        c = &r->codes[ROUTE_CODES - 1];
        c->method = (unsigned char)(N_METHODS - 1);
        c->status = 0;
    }
    c->count++;
    for (size_t b = 0; b < HIST_BUCKETS; b++)
        if (seconds <= hist_bounds[b]) {
            r->buckets[b]++;
            break;
        }
    r->count++;
    r->sum += seconds;
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

static void render_requests(struct ksvc_metrics *m, struct text *t)
{
    size_t used[KSVC_METRICS_ROUTES + 1], n = 0;
    for (size_t i = 0; i < m->nroutes; i++)
        used[n++] = i;
    if (m->routes[KSVC_METRICS_ROUTES].count > 0)
        used[n++] = KSVC_METRICS_ROUTES;
    if (n == 0)
        return;
    text_add(t,
             "# HELP %s_http_requests_total HTTP requests answered, by route, method and status.\n"
             "# TYPE %s_http_requests_total counter\n",
             m->prefix, m->prefix);
    for (size_t k = 0; k < n; k++) {
        const struct route *r = &m->routes[used[k]];
        for (size_t i = 0; i < r->ncodes; i++)
            text_add(t, "%s_http_requests_total{route=\"%s\",method=\"%s\",code=\"%d\"} %llu\n",
                     m->prefix, r->name, known_methods[r->codes[i].method], r->codes[i].status,
                     r->codes[i].count);
        const struct route_code *o = &r->codes[ROUTE_CODES - 1]; /* the overflow entry */
        if (o->count > 0)
            text_add(t,
                     "%s_http_requests_total{route=\"%s\",method=\"other\",code=\"other\"} "
                     "%llu\n",
                     m->prefix, r->name, o->count);
    }
    text_add(t,
             "# HELP %s_http_request_duration_seconds Time from request to response.\n"
             "# TYPE %s_http_request_duration_seconds histogram\n",
             m->prefix, m->prefix);
    for (size_t k = 0; k < n; k++) {
        const struct route *r = &m->routes[used[k]];
        unsigned long long cum = 0;
        for (size_t b = 0; b < HIST_BUCKETS; b++) {
            cum += r->buckets[b];
            text_add(t, "%s_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                     m->prefix, r->name, hist_bounds[b], cum);
        }
        text_add(t,
                 "%s_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                 "%s_http_request_duration_seconds_sum{route=\"%s\"} %.9g\n"
                 "%s_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                 m->prefix, r->name, r->count, m->prefix, r->name, r->sum, m->prefix, r->name,
                 r->count);
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
    render_requests(m, &t);
    text_add(&t,
             "# HELP %s_metrics_dropped_total Metric updates dropped because the table was full.\n"
             "# TYPE %s_metrics_dropped_total counter\n%s_metrics_dropped_total %llu\n",
             m->prefix, m->prefix, m->prefix, m->dropped);
    pthread_mutex_unlock(&m->lock);
    return t.s;
}
