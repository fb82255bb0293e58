/* The services' request guard: Host, Origin and Content-Type checks that keep
 * other sites' pages from driving the card (see guard.h). */
#include "services/common/guard.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/clock.h"

#define LOCAL_REREAD_MS 1000

static void lower(char *s)
{
    for (; *s != '\0'; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Letters, digits, '.', '-', '_': a DNS name (or an IPv4 literal). */
static bool name_chars_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '-' && c != '_')
            return false;
    }
    return true;
}

/* ":digits" (1..5 of them, at most 65535) or "" */
static bool port_ok(const char *p)
{
    if (*p == '\0')
        return true;
    if (*p != ':')
        return false;
    size_t digits = strspn(p + 1, "0123456789");
    if (digits == 0 || digits > 5 || p[1 + digits] != '\0')
        return false;
    return atoi(p + 1) <= 65535;
}

bool ksvc_guard_host_name(const char *host, char *name, size_t cap)
{
    if (host == NULL || host[0] == '\0' || cap == 0)
        return false;
    size_t n;
    const char *rest;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (close == NULL)
            return false;
        n = (size_t)(close - host - 1);
        if (n == 0 || n >= cap || strspn(host + 1, "0123456789abcdefABCDEF:.") != n)
            return false;
        memcpy(name, host + 1, n);
        rest = close + 1;
    } else {
        n = strcspn(host, ":");
        if (n >= cap || !name_chars_ok(host, n))
            return false;
        memcpy(name, host, n);
        rest = host + n;
    }
    name[n] = '\0';
    if (!port_ok(rest))
        return false;
    lower(name);
    return true;
}

/* The name as an address (IPv4 v4-mapped); false when it is not a literal. */
static bool literal(const char *name, struct in6_addr *out)
{
    struct in_addr a4;
    if (inet_pton(AF_INET, name, &a4) == 1) {
        memset(out, 0, sizeof(*out));
        out->s6_addr[10] = 0xff;
        out->s6_addr[11] = 0xff;
        memcpy(&out->s6_addr[12], &a4, 4);
        return true;
    }
    return inet_pton(AF_INET6, name, out) == 1;
}

static bool loopback(const struct in6_addr *a)
{
    if (IN6_IS_ADDR_LOOPBACK(a))
        return true;
    return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
}

static void read_local(struct ksvc_guard *g)
{
    struct ifaddrs *list = NULL;
    g->local_read_ms = (long long)kcu_now_ms();
    if (getifaddrs(&list) != 0)
        return;
    g->nlocal = 0;
    for (struct ifaddrs *i = list; i != NULL && g->nlocal < KSVC_GUARD_LOCAL_MAX; i = i->ifa_next) {
        if (i->ifa_addr == NULL)
            continue;
        struct in6_addr *a = &g->local[g->nlocal];
        if (i->ifa_addr->sa_family == AF_INET) {
            const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)i->ifa_addr;
            memset(a, 0, sizeof(*a));
            a->s6_addr[10] = 0xff;
            a->s6_addr[11] = 0xff;
            memcpy(&a->s6_addr[12], &in4->sin_addr, 4);
            g->nlocal++;
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)i->ifa_addr;
            *a = in6->sin6_addr;
            g->nlocal++;
        }
    }
    freeifaddrs(list);
}

static bool in_local(const struct ksvc_guard *g, const struct in6_addr *a)
{
    for (size_t i = 0; i < g->nlocal; i++)
        if (memcmp(&g->local[i], a, sizeof(*a)) == 0)
            return true;
    return false;
}

/* An address of this machine: loopback, or a local interface's (re-read at
 * most once a second when the address is not known, so a new interface is
 * found without a restart and a flood of unknown literals costs nothing). */
static bool local_address(struct ksvc_guard *g, const struct in6_addr *a)
{
    if (loopback(a))
        return true;
    pthread_mutex_lock(&g->lock);
    bool found = in_local(g, a);
    if (!found && !g->local_fixed &&
        (long long)kcu_now_ms() - g->local_read_ms >= LOCAL_REREAD_MS) {
        read_local(g);
        found = in_local(g, a);
    }
    pthread_mutex_unlock(&g->lock);
    return found;
}

static int add_name(char (*list)[KSVC_GUARD_NAME_LEN], size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(list[i], name) == 0)
            return 0;
    if (*n >= KSVC_GUARD_NAMES_MAX)
        return -1;
    snprintf(list[*n], KSVC_GUARD_NAME_LEN, "%s", name);
    (*n)++;
    return 0;
}

void ksvc_guard_init(struct ksvc_guard *g, const char *listen_host, bool check_type)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->lock, NULL);
    g->check_type = check_type;
    add_name(g->hosts, &g->nhosts, "localhost");
    char name[KSVC_GUARD_NAME_LEN];
    if (listen_host != NULL && strcmp(listen_host, "0.0.0.0") != 0 &&
        ksvc_guard_host_name(listen_host, name, sizeof(name)))
        add_name(g->hosts, &g->nhosts, name);
    /* this machine's own name, as its users type it */
    char self[KSVC_GUARD_NAME_LEN];
    if (gethostname(self, sizeof(self)) == 0) {
        self[sizeof(self) - 1] = '\0';
        if (ksvc_guard_host_name(self, name, sizeof(name)))
            add_name(g->hosts, &g->nhosts, name);
    }
    read_local(g);
}

void ksvc_guard_free(struct ksvc_guard *g)
{
    pthread_mutex_destroy(&g->lock);
}

int ksvc_guard_add_host(struct ksvc_guard *g, const char *name, char *err, size_t errlen)
{
    char n[KSVC_GUARD_NAME_LEN];
    if (!ksvc_guard_host_name(name, n, sizeof(n))) {
        snprintf(err, errlen,
                 "--allowed-host %.80s: want a DNS name or an IP address (a port is ignored)",
                 name);
        return -1;
    }
    if (add_name(g->hosts, &g->nhosts, n) != 0) {
        snprintf(err, errlen, "--allowed-host: at most %d names", KSVC_GUARD_NAMES_MAX);
        return -1;
    }
    return 0;
}

int ksvc_guard_add_origin(struct ksvc_guard *g, const char *origin, char *err, size_t errlen)
{
    const char *rest = NULL;
    if (strncasecmp(origin, "http://", 7) == 0)
        rest = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        rest = origin + 8;
    char n[KSVC_GUARD_NAME_LEN];
    if (rest == NULL || strlen(origin) >= KSVC_GUARD_NAME_LEN ||
        !ksvc_guard_host_name(rest, n, sizeof(n))) {
        snprintf(err, errlen,
                 "--allowed-origin %.80s: want scheme://host[:port] with scheme http or https, "
                 "no path",
                 origin);
        return -1;
    }
    char o[KSVC_GUARD_NAME_LEN];
    snprintf(o, sizeof(o), "%s", origin);
    lower(o);
    if (add_name(g->origins, &g->norigins, o) != 0) {
        snprintf(err, errlen, "--allowed-origin: at most %d origins", KSVC_GUARD_NAMES_MAX);
        return -1;
    }
    return 0;
}

void ksvc_guard_set_local(struct ksvc_guard *g, const char *const *addrs)
{
    pthread_mutex_lock(&g->lock);
    g->local_fixed = true;
    g->nlocal = 0;
    for (; addrs != NULL && *addrs != NULL && g->nlocal < KSVC_GUARD_LOCAL_MAX; addrs++)
        if (literal(*addrs, &g->local[g->nlocal]))
            g->nlocal++;
    pthread_mutex_unlock(&g->lock);
}

bool ksvc_guard_json_type(const char *content_type)
{
    static const char json[] = "application/json";
    if (content_type == NULL)
        return false;
    const char *p = content_type + strspn(content_type, " \t");
    if (strncasecmp(p, json, sizeof(json) - 1) != 0)
        return false;
    p += sizeof(json) - 1;
    p += strspn(p, " \t");
    return *p == '\0' || *p == ';';
}

bool ksvc_guard_host_ok(struct ksvc_guard *g, const char *host)
{
    char name[KSVC_GUARD_NAME_LEN];
    if (!ksvc_guard_host_name(host, name, sizeof(name)))
        return false;
    for (size_t i = 0; i < g->nhosts; i++)
        if (strcmp(g->hosts[i], name) == 0)
            return true;
    struct in6_addr a;
    return literal(name, &a) && local_address(g, &a);
}

bool ksvc_guard_origin_ok(const struct ksvc_guard *g, const char *origin)
{
    if (origin == NULL)
        return true; /* not a browser's cross-origin request */
    for (size_t i = 0; i < g->norigins; i++)
        if (strcasecmp(g->origins[i], origin) == 0)
            return true;
    return false;
}

void ksvc_guard_decide(struct ksvc_guard *g, const char *method, const char *host,
                       const char *origin, const char *content_type, const char *authorization,
                       size_t body_len, struct ksvc_guard_verdict *v)
{
    (void)authorization; /* see guard.h: the bodiless exception needs no bearer */
    v->status = 0;
    v->code = NULL;
    v->message[0] = '\0';
    if (!ksvc_guard_host_ok(g, host)) {
        v->status = 421;
        v->code = "misdirected_request";
        snprintf(v->message, sizeof(v->message),
                 "Host %.80s does not name this service: want one of this machine's "
                 "addresses, localhost or an --allowed-host name",
                 host != NULL ? host : "(none)");
        return;
    }
    if (!ksvc_guard_origin_ok(g, origin)) {
        v->status = 403;
        v->code = "origin_not_allowed";
        snprintf(v->message, sizeof(v->message),
                 "requests from Origin %.80s are not accepted (see --allowed-origin)", origin);
        return;
    }
    if (!g->check_type || method == NULL || strcmp(method, "POST") != 0)
        return;
    if (ksvc_guard_json_type(content_type))
        return;
    if (content_type == NULL && body_len == 0)
        return; /* nothing to parse: the runbook's bearer-only calls */
    v->status = 415;
    v->code = "unsupported_media_type";
    snprintf(v->message, sizeof(v->message),
             "a POST must be sent with Content-Type: application/json, not %.64s",
             content_type != NULL ? content_type : "none");
}

bool ksvc_guard_check(struct ksvc_guard *g, const struct ksvc_request *req,
                      struct ksvc_response *resp)
{
    struct ksvc_guard_verdict v;
    ksvc_guard_decide(g, req->method, ksvc_request_header(req, "Host"),
                      ksvc_request_header(req, "Origin"), ksvc_request_header(req, "Content-Type"),
                      ksvc_request_header(req, "Authorization"), req->body_len, &v);
    if (v.status == 0)
        return true;
    ksvc_reply_error(resp, v.status, v.code, "%s", v.message);
    ksvc_log_field(resp, "guard", json_string(v.code));
    return false;
}
