/* Validation of what the browser sends before anything reaches k_proxy. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "services/k_client_portal/portal.h"

bool kcp_username_valid(const char *s)
{
    if (s == NULL)
        return false;
    size_t n = strlen(s);
    if (n == 0 || n > KCP_USERNAME_MAX)
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

int kcp_parse_username_body(const char *body, size_t len, char out[KCP_USERNAME_MAX + 1],
                            const char **code, char *message, size_t msgcap)
{
    out[0] = '\0';
    json_error_t jerr;
    json_t *obj = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL || !json_is_object(obj)) {
        *code = "bad_json";
        if (obj == NULL)
            snprintf(message, msgcap, "the body is not valid JSON: %s", jerr.text);
        else
            snprintf(message, msgcap, "the body must be a JSON object");
        json_decref(obj);
        return 400;
    }
    json_t *u = json_object_get(obj, "username");
    const char *s = json_is_string(u) ? json_string_value(u) : NULL;
    /* json_string_length catches an embedded NUL that strlen would hide */
    if (s == NULL || strlen(s) != json_string_length(u) || !kcp_username_valid(s)) {
        *code = "bad_username";
        snprintf(message, msgcap, "username must be 1 to 64 characters of A-Z a-z 0-9 . _ -");
        json_decref(obj);
        return 400;
    }
    memcpy(out, s, strlen(s) + 1);
    json_decref(obj);
    return 0;
}

const char *kcp_static_asset(const char *path, const char **content_type)
{
    static const struct {
        const char *path, *file, *type;
    } assets[] = {
        {"/", "index.html", "text/html; charset=utf-8"},
        {"/index.html", "index.html", "text/html; charset=utf-8"},
        {"/app.js", "app.js", "text/javascript; charset=utf-8"},
        {"/style.css", "style.css", "text/css; charset=utf-8"},
    };
    if (path == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++)
        if (strcmp(path, assets[i].path) == 0) {
            if (content_type != NULL)
                *content_type = assets[i].type;
            return assets[i].file;
        }
    return NULL;
}

bool kcp_host_allowed(const char *host, const char *listen_host)
{
    if (host == NULL || host[0] == '\0')
        return false;
    /* the name without its port: [v6]:port, v6 literal in brackets, name:port */
    char name[256];
    size_t n;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (close == NULL)
            return false;
        n = (size_t)(close - host - 1);
        if (n >= sizeof(name))
            return false;
        memcpy(name, host + 1, n);
        host = close + 1;
    } else {
        n = strcspn(host, ":");
        if (n >= sizeof(name))
            return false;
        memcpy(name, host, n);
        host += n;
    }
    name[n] = '\0';
    if (*host == ':') {
        size_t digits = strspn(host + 1, "0123456789");
        if (digits == 0 || digits > 5 || host[1 + digits] != '\0')
            return false;
    } else if (*host != '\0') {
        return false;
    }
    if (strcasecmp(name, "localhost") == 0 || strcmp(name, "127.0.0.1") == 0 ||
        strcmp(name, "::1") == 0)
        return true;
    return listen_host != NULL && strcasecmp(name, listen_host) == 0;
}
