/* JSON-lines event log of the services (see log.h). */
#include "services/common/log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_service[32] = "kcard";

void ksvc_log_init(const char *service)
{
    snprintf(log_service, sizeof(log_service), "%s", service);
}

static void iso8601_now(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void ksvc_log(const char *level, const char *event, json_t *fields)
{
    char ts[40];
    iso8601_now(ts, sizeof(ts));
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
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "%s\n", text);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
    free(text);
}
