/* k_proxy's view of what it depends on, for an honest /healthz: can it
 * reach k_server (its /healthz answers 200 within a short timeout), and is
 * its card there (the device node or the announced card exists; the card
 * itself is never opened, so the check never holds it). A background thread
 * checks once a second; /healthz reads the last result from memory, so
 * polling /healthz costs neither k_server nor the card anything. */
#ifndef KCARD_K_PROXY_REACH_H
#define KCARD_K_PROXY_REACH_H

#include <stdbool.h>

#include <jansson.h>

struct kpx_reach_cfg {
    const char *server_base_url; /* k_server; "/healthz" is appended */
    const char *ca_file;         /* NULL: the system store (https) */
    const char *device_uri;      /* "auto", "hidraw:PATH", a bare path, "udp:...", ... */
    int timeout_ms;              /* one k_server probe; 0: 1000 */
    int interval_ms;             /* between checks; 0: 1000 */
};

struct kpx_reach;

/* Runs the first check at once (bounded by timeout_ms), then starts the
 * thread. NULL with err on failure (out of memory, no thread). */
struct kpx_reach *kpx_reach_start(const struct kpx_reach_cfg *cfg, char *err, size_t errlen);
void kpx_reach_stop(struct kpx_reach *r);

/* Adds "k_server" and "card" members ({"ok": bool, "detail": text}) to out
 * and, when something is unreachable, "reason" naming it; returns false
 * then. A NULL r adds nothing and returns true. */
bool kpx_reach_report(struct kpx_reach *r, json_t *out);

/* The pure piece: what the device check says about uri ("auto" resolved
 * through discovery). checked is false when the transport has no presence
 * that can be seen without talking to the card (udp, hidapi). */
bool kpx_reach_device_present(const char *uri, bool *checked, char *detail, size_t cap);

#endif
