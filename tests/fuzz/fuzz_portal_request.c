/* libFuzzer: what k_client_portal takes from the socket. The input is a
 * method byte and then NUL-separated fields: path, Cookie header, Origin,
 * Host, Content-Type, body. It runs the Cookie parser, the username body
 * parser, the session table lookup with the cookie's value, and the whole
 * router (k_proxy is a URL curl refuses at once, so nothing leaves); the
 * body is also read as a k_proxy error answer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "services/k_client_portal/portal.h"

/* The next NUL-terminated field of buf (length len) from *pos, or "". */
static const char *field(char *buf, size_t len, size_t *pos)
{
    if (*pos >= len)
        return "";
    const char *f = buf + *pos;
    *pos += strlen(f) + 1;
    return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct kcp_portal portal;
    static char sid[KCP_SID_LEN + 1];
    if (portal.sessions == NULL) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        portal.proxy = (struct kcp_proxy_cfg){.base_url = "nowhere://k_proxy", .timeout_ms = 100};
        portal.sessions = kcp_sessions_new(16);
        portal.listen_host = "127.0.0.1";
        static char page[] = "<html></html>";
        portal.index_html = portal.app_js = portal.style_css =
            (struct kcp_asset){page, sizeof(page) - 1};
        kcp_sessions_put(portal.sessions, "fuzz-token", "fuzz", (time_t)1 << 40, 0, sid);
    }
    if (size == 0)
        return 0;
    static const char *methods[] = {"GET", "POST", "HEAD", "PUT"};
    const char *method = methods[data[0] & 3];
    size_t len = size - 1;
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 1, len);
    buf[len] = '\0';
    size_t pos = 0;
    const char *path = field(buf, len, &pos);
    struct kcp_headers h = {0};
    h.cookie = field(buf, len, &pos);
    h.origin = field(buf, len, &pos);
    h.host = field(buf, len, &pos);
    h.content_type = field(buf, len, &pos);
    const char *body = pos < len ? buf + pos : "";
    size_t body_len = pos < len ? len - pos : 0;

    char value[KCP_SID_LEN + 1], tiny[4];
    if (kcp_cookie_get(h.cookie, KCP_COOKIE_NAME, value, sizeof(value))) {
        struct kcp_session_view v;
        if (kcp_sessions_get(portal.sessions, value, 1000, &v) && strcmp(value, sid) != 0)
            abort(); /* only the stored id may find the stored session */
    }
    kcp_cookie_get(h.cookie, "a", tiny, sizeof(tiny));

    char user[KCP_USERNAME_MAX + 1], msg[256];
    const char *code = NULL;
    if (kcp_parse_username_body(body, body_len, user, &code, msg, sizeof(msg)) == 0 &&
        !kcp_username_valid(user))
        abort();
    kcp_static_asset(path, NULL);

    /* the body read as a k_proxy error answer, as the portal passes it on */
    json_error_t jerr;
    json_t *answer = json_loadb(body, body_len, 0, &jerr);
    int status = 0;
    json_t *passed = kcp_proxy_error_reply(300 + (long)(data[0] >> 2) * 5, answer, &status);
    if (passed == NULL || !json_is_string(json_object_get(passed, "error")) || status < 400)
        abort();
    json_decref(passed);
    json_decref(answer);

    /* the router, with the empty fields standing for absent headers */
    struct kcp_headers hh = {
        .cookie = h.cookie[0] ? h.cookie : NULL,
        .origin = h.origin[0] ? h.origin : NULL,
        .host = h.host[0] ? h.host : NULL,
        .content_type = h.content_type[0] ? h.content_type : NULL,
    };
    struct ksvc_request req = {.method = method, .path = path, .body = body, .body_len = body_len};
    struct ksvc_response rep = {0};
    kcp_handle(&portal, &req, &hh, &rep);
    if (rep.status < 200 || rep.status > 599)
        abort();
    json_decref(rep.body);
    json_decref(rep.log);
    free(buf);
    return 0;
}
