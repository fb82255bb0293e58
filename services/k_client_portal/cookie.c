/* Cookie header parsing (RFC 6265 section 5.4 shape: "a=1; b=2"). */
#include <string.h>

#include "services/k_client_portal/portal.h"

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* A cookie-octet of RFC 6265: printable ASCII except DQUOTE, comma,
 * semicolon and backslash. */
static bool is_cookie_octet(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2B) || (c >= 0x2D && c <= 0x3A) ||
           (c >= 0x3C && c <= 0x5B) || (c >= 0x5D && c <= 0x7E);
}

bool kcp_cookie_get(const char *header, const char *name, char *out, size_t cap)
{
    if (header == NULL || name == NULL || out == NULL || cap == 0)
        return false;
    size_t name_len = strlen(name);
    if (name_len == 0)
        return false;
    const char *p = header;
    while (*p != '\0') {
        while (is_space(*p) || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t pair_len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', pair_len);
        if (eq != NULL && (size_t)(eq - p) == name_len && memcmp(p, name, name_len) == 0) {
            const char *v = eq + 1;
            size_t vlen = pair_len - name_len - 1;
            while (vlen > 0 && is_space(v[vlen - 1]))
                vlen--;
            if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
                v++;
                vlen -= 2;
            }
            if (vlen + 1 > cap)
                return false;
            for (size_t i = 0; i < vlen; i++)
                if (!is_cookie_octet((unsigned char)v[i]))
                    return false;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return true;
        }
        p += pair_len;
    }
    return false;
}

bool kcp_sid_well_formed(const char *s)
{
    if (s == NULL || strlen(s) != KCP_SID_LEN)
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
           KCP_SID_LEN;
}
