/* A small Prometheus registry: named counters and gauges with an optional
 * label set, and the HTTP request counts and histogram every service
 * exports. Thread-safe. Both tables are fixed-size so no label can grow them
 * forever, and they are separate: HTTP requests (which a client chooses) can
 * never take the places of the service's own metrics. */
#ifndef KCARD_SERVICES_METRICS_H
#define KCARD_SERVICES_METRICS_H

#include <stddef.h>

#define KSVC_METRICS_MAX 256
/* Distinct HTTP routes counted by name; later ones are counted as "other". */
#define KSVC_METRICS_ROUTES 24

struct ksvc_metrics;

/* help texts are per metric name; the first registration wins. */
struct ksvc_metrics *ksvc_metrics_new(const char *prefix);
void ksvc_metrics_free(struct ksvc_metrics *m);

/* Adds v to the counter name{labels}; labels is "" or `a="x",b="y"`. Names
 * past the table size are dropped and counted in <prefix>_metrics_dropped_total. */
void ksvc_metric_add(struct ksvc_metrics *m, const char *name, const char *help, const char *labels,
                     double v);
void ksvc_metric_set(struct ksvc_metrics *m, const char *name, const char *help, const char *labels,
                     double v);
/* Sets the counter name{labels} to v: a count kept elsewhere (an atomic). */
void ksvc_metric_set_total(struct ksvc_metrics *m, const char *name, const char *help,
                           const char *labels, double v);
/* One HTTP request: route (a known path or "other"), method, status and
 * seconds. A method other than GET HEAD POST PUT DELETE PATCH OPTIONS is
 * counted as "other"; a route past KSVC_METRICS_ROUTES as "other". */
void ksvc_metrics_request(struct ksvc_metrics *m, const char *route, const char *method, int status,
                          double seconds);

/* Prometheus text format 0.0.4; the caller frees the result. */
char *ksvc_metrics_render(struct ksvc_metrics *m);

#endif
