/* chain-regress: k_proxy's answers parsed into structs (jansson), every
 * field checked for its type; a failure names the field. */
#include <string.h>

#include "regression/chain_regress.h"
#include "util/err.h"

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* the body as a JSON object; *root owned by the caller */
static int load_object(const char *body, size_t len, json_t **root, char *why, size_t whylen)
{
    json_error_t e;

    *root = NULL;
    if (body == NULL || len == 0)
        return kcu_set_err_rc(why, whylen, KCR_PARSE_BAD_JSON, "the answer has no body");
    *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
    if (*root == NULL)
        return kcu_set_err_rc(why, whylen, KCR_PARSE_BAD_JSON, "the answer is not JSON: %s",
                              e.text);
    if (!json_is_object(*root)) {
        int rc = kcu_set_err_rc(why, whylen, KCR_PARSE_BAD_JSON,
                                "the answer is %s, not a JSON object", type_name(*root));
        json_decref(*root);
        *root = NULL;
        return rc;
    }
    return KCR_PARSE_OK;
}

/* a string field into dst (dstlen including the NUL); required or not */
static int get_string(const json_t *obj, const char *key, bool required, char *dst, size_t dstlen,
                      char *why, size_t whylen)
{
    const json_t *v = json_object_get(obj, key);
    size_t n;

    dst[0] = '\0';
    if (v == NULL) {
        if (!required)
            return KCR_PARSE_OK;
        return kcu_set_err_rc(why, whylen, KCR_PARSE_MISSING, "field \"%s\" is missing", key);
    }
    if (!json_is_string(v))
        return kcu_set_err_rc(why, whylen, KCR_PARSE_BAD_TYPE, "field \"%s\" is %s, not a string",
                              key, type_name(v));
    n = json_string_length(v);
    if (n >= dstlen)
        return kcu_set_err_rc(why, whylen, KCR_PARSE_BAD_VALUE,
                              "field \"%s\" is longer than %zu bytes", key, dstlen - 1);
    if (memchr(json_string_value(v), '\0', n) != NULL)
        return kcu_set_err_rc(why, whylen, KCR_PARSE_BAD_VALUE, "field \"%s\" holds a NUL byte",
                              key);
    memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
    return KCR_PARSE_OK;
}

static int get_int(const json_t *obj, const char *key, bool required, bool *present, long long *out,
                   char *why, size_t whylen)
{
    const json_t *v = json_object_get(obj, key);

    if (present != NULL)
        *present = false;
    if (v == NULL) {
        if (!required)
            return KCR_PARSE_OK;
        return kcu_set_err_rc(why, whylen, KCR_PARSE_MISSING, "field \"%s\" is missing", key);
    }
    if (!json_is_integer(v))
        return kcu_set_err_rc(why, whylen, KCR_PARSE_BAD_TYPE, "field \"%s\" is %s, not an integer",
                              key, type_name(v));
    *out = (long long)json_integer_value(v);
    if (present != NULL)
        *present = true;
    return KCR_PARSE_OK;
}

static int get_bool(const json_t *obj, const char *key, bool *out, char *why, size_t whylen)
{
    const json_t *v = json_object_get(obj, key);

    if (v == NULL)
        return kcu_set_err_rc(why, whylen, KCR_PARSE_MISSING, "field \"%s\" is missing", key);
    if (!json_is_boolean(v))
        return kcu_set_err_rc(why, whylen, KCR_PARSE_BAD_TYPE, "field \"%s\" is %s, not a boolean",
                              key, type_name(v));
    *out = json_is_true(v);
    return KCR_PARSE_OK;
}

bool kcr_valid_token(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > KCR_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
        if (!ok)
            return false;
    }
    return true;
}

int kcr_parse_login(const char *body, size_t len, struct kcr_login_resp *out, char *why,
                    size_t whylen)
{
    json_t *root;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = load_object(body, len, &root, why, whylen)) != KCR_PARSE_OK)
        return rc;
    rc = get_string(root, "session_token", true, out->session_token, sizeof(out->session_token),
                    why, whylen);
    if (rc == KCR_PARSE_OK && !kcr_valid_token(out->session_token))
        rc = kcu_set_err_rc(
            why, whylen, KCR_PARSE_BAD_VALUE,
            "field \"session_token\" is empty or has characters a bearer token cannot have");
    if (rc == KCR_PARSE_OK)
        rc = get_string(root, "auth_mode", true, out->auth_mode, sizeof(out->auth_mode), why,
                        whylen);
    if (rc == KCR_PARSE_OK)
        rc = get_string(root, "username", false, out->username, sizeof(out->username), why, whylen);
    if (rc == KCR_PARSE_OK)
        rc =
            get_int(root, "expires_in", false, &out->has_expires_in, &out->expires_in, why, whylen);
    json_decref(root);
    if (rc != KCR_PARSE_OK)
        memset(out->session_token, 0, sizeof(out->session_token));
    return rc;
}

int kcr_parse_status(const char *body, size_t len, struct kcr_status_resp *out, char *why,
                     size_t whylen)
{
    json_t *root;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = load_object(body, len, &root, why, whylen)) != KCR_PARSE_OK)
        return rc;
    rc = get_bool(root, "active", &out->active, why, whylen);
    if (rc == KCR_PARSE_OK)
        rc = get_string(root, "username", false, out->username, sizeof(out->username), why, whylen);
    if (rc == KCR_PARSE_OK)
        rc = get_string(root, "auth_mode", false, out->auth_mode, sizeof(out->auth_mode), why,
                        whylen);
    if (rc == KCR_PARSE_OK)
        rc = get_int(root, "requests", false, &out->has_requests, &out->requests, why, whylen);
    if (rc == KCR_PARSE_OK)
        rc =
            get_int(root, "expires_in", false, &out->has_expires_in, &out->expires_in, why, whylen);
    json_decref(root);
    return rc;
}

int kcr_parse_counter(const char *body, size_t len, struct kcr_counter_resp *out, char *why,
                      size_t whylen)
{
    json_t *root;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = load_object(body, len, &root, why, whylen)) != KCR_PARSE_OK)
        return rc;
    rc = get_int(root, "counter", true, NULL, &out->counter, why, whylen);
    if (rc == KCR_PARSE_OK)
        rc = get_string(root, "username", false, out->username, sizeof(out->username), why, whylen);
    json_decref(root);
    return rc;
}

int kcr_parse_logout(const char *body, size_t len, struct kcr_logout_resp *out, char *why,
                     size_t whylen)
{
    json_t *root;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = load_object(body, len, &root, why, whylen)) != KCR_PARSE_OK)
        return rc;
    rc = get_bool(root, "logged_out", &out->logged_out, why, whylen);
    if (rc == KCR_PARSE_OK)
        rc = get_string(root, "username", false, out->username, sizeof(out->username), why, whylen);
    json_decref(root);
    return rc;
}

/* control characters would break the one-line output */
static void printable(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            *s = '?';
}

/* best effort: whatever of "error" and "message" is a string of sane length */
int kcr_parse_error(const char *body, size_t len, struct kcr_error_resp *out)
{
    json_t *root;
    char why[8];
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = load_object(body, len, &root, why, sizeof(why))) != KCR_PARSE_OK)
        return rc;
    if (get_string(root, "error", false, out->error, sizeof(out->error), why, sizeof(why)) !=
        KCR_PARSE_OK)
        out->error[0] = '\0';
    if (get_string(root, "message", false, out->message, sizeof(out->message), why, sizeof(why)) !=
        KCR_PARSE_OK)
        out->message[0] = '\0';
    printable(out->error);
    printable(out->message);
    json_decref(root);
    return KCR_PARSE_OK;
}
