/* k_server's state shared by its main and its HTTP routes: the counter, the
 * replay windows of the k_proxy instances, the upstream key and the thread
 * that expires idle instances. */
#ifndef KCARD_K_SERVER_SERVER_H
#define KCARD_K_SERVER_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "services/common/http.h"
#include "services/common/upstream.h"

struct ksrv_counter;

struct k_server {
    struct ksrv_counter *counter;
    struct ksvc_replay_table *replay;
    uint8_t key[KSVC_UPSTREAM_KEY_LEN];
    char state_db[4096];
    struct ksvc_server *http;
    /* the maintenance thread: expires idle k_proxy instances */
    pthread_t maintenance;
    bool maintenance_started, stopping;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
};

/* The HTTP routes (services/API.md, k_server); ctx is the struct k_server. */
void ksrv_handle_request(void *ctx, const struct ksvc_request *req, struct ksvc_response *resp);
bool ksrv_health(void *ctx, json_t *out);
void ksrv_metrics_refresh(void *ctx, struct ksvc_metrics *m);

#endif
