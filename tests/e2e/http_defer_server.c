/* A small ksvc HTTP server for tests/e2e/test_http_limits.sh: it exercises
 * the deferral API (ksvc_defer / ksvc_complete) and the worker pool with a
 * real libmicrohttpd server on loopback. Built by the test script itself.
 *
 *   http_defer_server PORT_FILE
 *
 * Routes (any method):
 *   /sync          200 {"mode":"sync"} at once, on the polling thread
 *   /defer-later   parked; a completer thread answers 200 after 200 ms with
 *                  the request body echoed (read from that thread)
 *   /defer-now     parked and completed inside the handler, before it returns
 *   /defer-twice   a second ksvc_defer of one request must give NULL
 *   /block         may block: sleeps 300 ms on a worker, answers synchronously
 *   /block-defer   may block: parked from the worker, completed 100 ms later
 *   /defer-raw     parked, completed with a text/plain body from a buffer that
 *                  is overwritten as soon as ksvc_complete returns
 * Every answer carries "early" in its log line (set before ksvc_defer) and
 * "late" (set at completion). Stops on SIGTERM. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "services/common/http.h"
#include "services/common/log.h"
#include "services/common/svc_util.h"

struct later {
    struct ksvc_pending *p;
    const struct ksvc_request *req;
    int delay_ms;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void *complete_later(void *arg)
{
    struct later *l = arg;
    sleep_ms(l->delay_ms);
    struct ksvc_response resp = {0};
    ksvc_log_field(&resp, "late", json_true());
    /* the request stays readable from this thread until it is completed */
    ksvc_reply(&resp, 200,
               json_pack("{s:s, s:s%, s:s}", "mode", "deferred", "echo", l->req->body,
                         l->req->body_len, "path", l->req->path));
    struct ksvc_pending *p = l->p;
    free(l);
    ksvc_complete(p, &resp);
    return NULL;
}

static int defer_to_thread(const struct ksvc_request *req, int delay_ms)
{
    struct later *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return -1;
    l->req = req;
    l->delay_ms = delay_ms;
    l->p = ksvc_defer(req);
    if (l->p == NULL) {
        free(l);
        return -1;
    }
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, complete_later, l);
    pthread_attr_destroy(&attr);
    if (rc != 0) { /* parked already: answer through the same handle */
        struct ksvc_response resp = {0};
        ksvc_reply_error(&resp, 503, "no_thread", "cannot start a thread");
        ksvc_complete(l->p, &resp);
        free(l);
    }
    return 0;
}

static void on_request(void *ctx, const struct ksvc_request *req, struct ksvc_response *resp)
{
    (void)ctx;
    ksvc_log_field(resp, "early", json_true());
    const char *path = req->path;
    if (strcmp(path, "/metrics") == 0) {
        ksvc_route_monitor(req, resp, NULL, NULL, NULL);
    } else if (strcmp(path, "/sync") == 0) {
        ksvc_log_field(resp, "late", json_true());
        ksvc_reply(resp, 200, json_pack("{s:s}", "mode", "sync"));
    } else if (strcmp(path, "/defer-later") == 0) {
        if (defer_to_thread(req, 200) != 0)
            ksvc_reply_error(resp, 500, "defer_failed", "ksvc_defer gave NULL");
    } else if (strcmp(path, "/defer-now") == 0) {
        struct ksvc_pending *p = ksvc_defer(req);
        if (p == NULL) {
            ksvc_reply_error(resp, 500, "defer_failed", "ksvc_defer gave NULL");
            return;
        }
        struct ksvc_response now = {0};
        ksvc_log_field(&now, "late", json_true());
        ksvc_reply(&now, 200, json_pack("{s:s}", "mode", "completed_before_return"));
        ksvc_complete(p, &now);
    } else if (strcmp(path, "/defer-twice") == 0) {
        struct ksvc_pending *p = ksvc_defer(req);
        struct ksvc_pending *q = ksvc_defer(req);
        if (p == NULL) {
            ksvc_reply_error(resp, 500, "defer_failed", "ksvc_defer gave NULL");
            return;
        }
        struct ksvc_response now = {0};
        ksvc_log_field(&now, "late", json_true());
        ksvc_reply(&now, 200, json_pack("{s:b}", "second_defer_null", q == NULL));
        ksvc_complete(p, &now);
    } else if (strcmp(path, "/defer-raw") == 0) {
        struct ksvc_pending *p = ksvc_defer(req);
        if (p == NULL) {
            ksvc_reply_error(resp, 500, "defer_failed", "ksvc_defer gave NULL");
            return;
        }
        char text[] = "raw text answer\n";
        struct ksvc_response now = {.status = 200, .content_type = "text/plain", .raw = text};
        now.raw_len = strlen(text);
        ksvc_log_field(&now, "late", json_true());
        ksvc_complete(p, &now);
        memset(text, 'X', sizeof(text) - 1); /* borrowed only until ksvc_complete returns */
    } else if (strcmp(path, "/block") == 0) {
        sleep_ms(300);
        ksvc_log_field(resp, "late", json_true());
        ksvc_reply(resp, 200, json_pack("{s:s}", "mode", "worker"));
    } else if (strcmp(path, "/block-defer") == 0) {
        if (defer_to_thread(req, 100) != 0)
            ksvc_reply_error(resp, 500, "defer_failed", "ksvc_defer gave NULL");
    } else {
        ksvc_reply_error(resp, 404, "not_found", "no such endpoint: %.64s", path);
    }
}

static bool may_block(void *ctx, const struct ksvc_request *req)
{
    (void)ctx;
    return strncmp(req->path, "/block", 6) == 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: http_defer_server PORT_FILE\n");
        return 2;
    }
    ksvc_block_signals();
    ksvc_log_init("http_defer_test");
    static const char *const routes[] = {"/sync",        "/defer-later", "/defer-now",
                                         "/defer-twice", "/block",       "/block-defer",
                                         "/defer-raw",   "/metrics",     NULL};
    struct ksvc_server_cfg cfg = {
        .service = "http_defer_test",
        .host = "127.0.0.1",
        .port = 0,
        .workers = 4,
        .routes = routes,
        .handler = on_request,
        .may_block = may_block,
    };
    struct ksvc_server *s = NULL;
    char err[256];
    if (ksvc_server_start(&cfg, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "http_defer_server: %s\n", err);
        return 3;
    }
    int rc = ksvc_serve_until_stopped("http_defer_server", s, argv[1]) == 0 ? 0 : 1;
    ksvc_server_stop(s);
    return rc;
}
