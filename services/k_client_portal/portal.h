/* k_client_portal: the browser page of the session chain and the same-origin
 * JSON API it calls. Every API call is forwarded to k_proxy; the k_proxy
 * bearer token stays in this process, keyed by a random HttpOnly cookie. */
#ifndef KCARD_SERVICES_K_CLIENT_PORTAL_H
#define KCARD_SERVICES_K_CLIENT_PORTAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "services/common/guard.h"
#include "services/common/http.h"

#define KCP_COOKIE_NAME "kcp_session"
#define KCP_SID_LEN 43      /* 32 random bytes, base64url without padding */
#define KCP_TOKEN_MAX 128   /* k_proxy's token is 43 characters */
#define KCP_USERNAME_MAX 64 /* services/API.md */
#define KCP_SESSIONS_DEFAULT 1024

/* ---- cookie.c ---------------------------------------------------------- */

/* The value of cookie name in a Cookie request header ("a=1; b=2") into out.
 * Returns false when the header is NULL, the cookie is absent, malformed or
 * its value does not fit (cap includes the NUL). The first match wins. */
bool kcp_cookie_get(const char *header, const char *name, char *out, size_t cap);
/* True when s is a well-formed portal session id (KCP_SID_LEN base64url). */
bool kcp_sid_well_formed(const char *s);

/* ---- validate.c -------------------------------------------------------- */

/* 1 to 64 characters of [A-Za-z0-9._-] (services/API.md). */
bool kcp_username_valid(const char *s);
/* {"username": "..."} out of a request body into out (KCP_USERNAME_MAX + 1
 * bytes). Returns 0, or an HTTP status (400 bad_json / bad_username) with
 * code and message set. */
int kcp_parse_username_body(const char *body, size_t len, char out[KCP_USERNAME_MAX + 1],
                            const char **code, char *message, size_t msgcap);
/* Whether a Host header names this portal: a loopback name or the listen
 * address, with an optional port. Refusing other names keeps DNS-rebinding
 * pages from driving the card. The running portal uses its guard instead
 * (kcp_portal.guard: also this machine's interface addresses, --allowed-host);
 * this is the check without one. */
bool kcp_host_allowed(const char *host, const char *listen_host);
/* The file name of a static asset for a request path ("/" -> "index.html"),
 * and its Content-Type; NULL when the path is not a served asset. */
const char *kcp_static_asset(const char *path, const char **content_type);

/* ---- sessions.c -------------------------------------------------------- */

/* In-memory table: portal session id -> k_proxy bearer token and username,
 * bounded to max entries, each expiring when its k_proxy session does. */
struct kcp_sessions;

struct kcp_session_view {
    char token[KCP_TOKEN_MAX + 1];
    char username[KCP_USERNAME_MAX + 1];
    time_t expires_at;
};

struct kcp_sessions *kcp_sessions_new(size_t max);
void kcp_sessions_free(struct kcp_sessions *t); /* zeroes every token */
/* Stores a new entry under a fresh random id (sid_out: KCP_SID_LEN + 1
 * bytes). Expired entries go first; when the table is still full the entry
 * expiring soonest is dropped. Returns 0 or -1 (bad arguments, no randomness). */
int kcp_sessions_put(struct kcp_sessions *t, const char *token, const char *username,
                     time_t expires_at, time_t now, char *sid_out);
/* Copies the live entry of sid into out; false when unknown or expired. */
bool kcp_sessions_get(struct kcp_sessions *t, const char *sid, time_t now,
                      struct kcp_session_view *out);
/* Forgets sid (its token zeroed); false when it was not there. */
bool kcp_sessions_remove(struct kcp_sessions *t, const char *sid);
/* Live entries at now (expired ones are dropped on the way). */
size_t kcp_sessions_count(struct kcp_sessions *t, time_t now);

/* ---- proxy_client.c ---------------------------------------------------- */

struct kcp_proxy_cfg {
    const char *base_url; /* https://127.0.0.1:9771 */
    const char *ca_file;  /* NULL: the system store */
    long timeout_ms;      /* one whole request, card touch included */
};

struct kcp_proxy_result {
    long status;  /* HTTP status; 0 when no answer came */
    json_t *body; /* the answer as JSON (owned) or NULL */
    bool timed_out;
    char error[256]; /* transport failure, when status is 0 */
};

/* One request to k_proxy: method, path, optional bearer token and JSON body
 * (not stolen). The answer is read up to 64 KiB. Returns 0 when an HTTP
 * answer came (any status), -1 otherwise (res->error says why). */
int kcp_proxy_call(const struct kcp_proxy_cfg *cfg, const char *method, const char *path,
                   const char *bearer, const json_t *body, struct kcp_proxy_result *res);
void kcp_proxy_result_clear(struct kcp_proxy_result *res);

/* ---- routes.c ---------------------------------------------------------- */

struct kcp_asset {
    char *data;
    size_t len;
};

struct kcp_portal {
    const char *listen_host;  /* --host, for kcp_host_allowed */
    struct ksvc_guard *guard; /* the Host check; NULL: kcp_host_allowed */
    bool tls;                 /* the page is served over HTTPS: cookies are Secure */
    struct kcp_proxy_cfg proxy;
    struct kcp_sessions *sessions;
    struct kcp_asset index_html, app_js, style_css;
};

/* The request headers the portal looks at; each NULL when absent. */
struct kcp_headers {
    const char *cookie, *origin, *host, *content_type;
};

/* The portal's answer to a k_proxy error (status, body): the same status
 * and {error, message[, upstream_called]}; anything that is not a 4xx/5xx
 * error object becomes 502 bad_proxy_answer. A new reference. */
json_t *kcp_proxy_error_reply(long status, const json_t *body, int *out_status);

/* Handles one request (req->conn is not used). */
void kcp_handle(struct kcp_portal *p, const struct ksvc_request *req, const struct kcp_headers *h,
                struct ksvc_response *out);
/* Loads index.html, app.js and style.css from dir; 0 or -1 with err. */
int kcp_load_assets(struct kcp_portal *p, const char *dir, char *err, size_t errlen);
void kcp_free_assets(struct kcp_portal *p);

#endif
