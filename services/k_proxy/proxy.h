/* k_proxy's state shared by its HTTP routes: configuration, the session and
 * user store, the card gate and the client of k_server. */
#ifndef KCARD_K_PROXY_PROXY_H
#define KCARD_K_PROXY_PROXY_H

#include <stdbool.h>
#include <stdint.h>

#include "services/common/guard.h"
#include "services/common/http.h"

struct kpx_store;
struct kpx_card;
struct kpx_upstream;
struct kpx_reach;
struct kpx_limits;
struct kpx_card_worker;

enum kpx_auth_mode {
    KPX_AUTH_PROBE,        /* card presence + approval (the prototype's default) */
    KPX_AUTH_FIDO2_DIRECT, /* a getAssertion verified against the enrolled credential */
};

struct kpx_proxy {
    enum kpx_auth_mode mode;
    int session_ttl_s;
    char state_db[4096];
    char device[256];
    char server_base_url[1024];
    struct kpx_store *store;
    struct kpx_card *card;
    struct kpx_upstream *upstream;
    uint8_t ref_key[32]; /* HMAC key of the opaque session references for k_server */
    struct ksvc_server *http;
    struct ksvc_guard guard;   /* Host, Origin, Content-Type (services/common/guard.h) */
    struct kpx_reach *reach;   /* k_server and card reachability, checked in the background */
    struct kpx_limits *limits; /* rate limits and lockouts (limits.h); NULL: none */
    struct kpx_card_worker *card_worker; /* the card thread (card_worker.h); NULL: inline */
    int card_timeout_ms;                 /* a job queued longer gets card_busy */
};

/* The answer's name of a mode: "card_probe" or "fido2_assertion". */
const char *kpx_auth_mode_answer(enum kpx_auth_mode m);

/* The HTTP routes (services/API.md, k_proxy). */
void kpx_handle_request(void *ctx, const struct ksvc_request *req, struct ksvc_response *resp);
/* The server's may_block: false for the requests answered from memory. */
bool kpx_may_block(void *ctx, const struct ksvc_request *req);
bool kpx_health(void *ctx, json_t *out);
void kpx_metrics_refresh(void *ctx, struct ksvc_metrics *m);

#endif
