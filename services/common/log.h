/* One JSON line per event on stderr: {"ts", "service", "level", "event", ...}.
 * Lines are formatted by the caller and written by one logger thread from a
 * bounded in-memory ring, so a request never waits for stderr; when the ring
 * is full a line is dropped and counted (ksvc_log_dropped) rather than block.
 * Lines from several threads never interleave. Before ksvc_log_init (and in
 * programs that never call it) lines are written at once, synchronously. */
#ifndef KCARD_SERVICES_LOG_H
#define KCARD_SERVICES_LOG_H

#include <stddef.h>

#include <jansson.h>

/* Bytes of formatted lines the ring holds before it drops. */
#define KSVC_LOG_RING_BYTES (1024 * 1024)
/* A longer line is dropped (and counted) instead of queued. */
#define KSVC_LOG_LINE_MAX (64 * 1024)

/* The service name put on every line, and the logger thread; call once at
 * start-up, after ksvc_block_signals. The thread drains the ring at exit. */
void ksvc_log_init(const char *service);
/* Logs event with the members of fields (stolen; may be NULL). level is
 * "info", "warn" or "error". */
void ksvc_log(const char *level, const char *event, json_t *fields);
/* Queues one already formatted JSON object (no newline) of len bytes. */
void ksvc_log_text(const char *text, size_t len);
/* Waits (at most timeout_ms) until every queued line has been written. */
void ksvc_log_flush(int timeout_ms);
/* Lines dropped because the ring was full or a line too long. */
unsigned long long ksvc_log_dropped(void);
/* The service name given to ksvc_log_init ("kcard" before). */
const char *ksvc_log_service(void);
/* The current UTC time as "YYYY-MM-DDTHH:MM:SS.mmmZ" (out: 32 bytes). */
void ksvc_log_timestamp(char out[32]);

#endif
