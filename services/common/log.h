/* One JSON line per event on stderr: {"ts", "service", "level", "event", ...}.
 * Lines from several threads never interleave. */
#ifndef KCARD_SERVICES_LOG_H
#define KCARD_SERVICES_LOG_H

#include <jansson.h>

/* The service name put on every line; call once at start-up. */
void ksvc_log_init(const char *service);
/* Logs event with the members of fields (stolen; may be NULL). level is
 * "info", "warn" or "error". */
void ksvc_log(const char *level, const char *event, json_t *fields);

#endif
