/* Small flat JSON objects (see flat.h). */
#include "services/common/flat.h"

#include <stdint.h>
#include <string.h>

#include "util/num.h"

static struct ksvc_flat_member *slot_for(struct ksvc_flat *f, const char *key)
{
    for (unsigned i = 0; i < f->n; i++)
        if (strcmp(f->m[i].key, key) == 0)
            return &f->m[i];
    return f->n < KSVC_FLAT_MAX ? &f->m[f->n] : NULL;
}

static void taken(struct ksvc_flat *f, const struct ksvc_flat_member *m)
{
    if (m == &f->m[f->n])
        f->n++;
}

int ksvc_flat_int(struct ksvc_flat *f, const char *key, long long v)
{
    struct ksvc_flat_member *m = slot_for(f, key);
    if (m == NULL)
        return -1;
    m->key = key;
    m->is_str = false;
    m->num = v;
    m->str[0] = '\0';
    m->str_len = 0;
    taken(f, m);
    return 0;
}

int ksvc_flat_str(struct ksvc_flat *f, const char *key, const char *s)
{
    if (s == NULL)
        return -1; /* as json_string(NULL): no member */
    size_t len = strlen(s);
    struct ksvc_flat_member *m = len < KSVC_FLAT_STR_MAX ? slot_for(f, key) : NULL;
    if (m == NULL)
        return -1;
    m->key = key;
    m->is_str = true;
    m->num = 0;
    memcpy(m->str, s, len + 1);
    m->str_len = len;
    taken(f, m);
    return 0;
}

void ksvc_flat_del(struct ksvc_flat *f, const char *key)
{
    for (unsigned i = 0; i < f->n; i++) {
        if (strcmp(f->m[i].key, key) != 0)
            continue;
        memmove(&f->m[i], &f->m[i + 1], (f->n - i - 1) * sizeof(f->m[0]));
        f->n--;
        return;
    }
}

int ksvc_flat_merge(struct ksvc_flat *dst, const struct ksvc_flat *src)
{
    for (unsigned i = 0; i < src->n; i++) {
        const struct ksvc_flat_member *m = &src->m[i];
        if ((m->is_str ? ksvc_flat_str(dst, m->key, m->str) : ksvc_flat_int(dst, m->key, m->num)) !=
            0)
            return -1;
    }
    return 0;
}

int ksvc_flat_to_json(const struct ksvc_flat *f, json_t *obj)
{
    int rc = 0;
    for (unsigned i = 0; i < f->n; i++) {
        const struct ksvc_flat_member *m = &f->m[i];
        json_t *v = m->is_str ? json_stringn(m->str, m->str_len) : json_integer(m->num);
        if (v == NULL || json_object_set_new(obj, m->key, v) != 0)
            rc = -1;
    }
    return rc;
}

/* Printable ASCII with nothing to escape: its own JSON text between quotes
 * (jansson escapes only '"', '\\' and bytes below 0x20; 0x7f and above are
 * left to it too, as it checks them for UTF-8). */
bool ksvc_flat_plain_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] >= 0x7f || s[i] == '"' || s[i] == '\\')
            return false;
    return true;
}

bool ksvc_flat_plain(const struct ksvc_flat *f)
{
    for (unsigned i = 0; i < f->n; i++) {
        const struct ksvc_flat_member *m = &f->m[i];
        if (!ksvc_flat_plain_text(m->key, strlen(m->key)) ||
            (m->is_str && !ksvc_flat_plain_text(m->str, m->str_len)))
            return false;
    }
    return true;
}

int ksvc_flat_write_member(ksvc_flat_append_fn append, void *cls, bool comma, const char *key,
                           bool is_str, long long num, const char *str, size_t str_len)
{
    char digits[KCU_U64_DEC_MAX + 1];
    size_t nd = 0;
    if (!is_str) {
        /* as jansson's "%lld": a minus sign, then the magnitude */
        uint64_t mag = num < 0 ? (uint64_t)0 - (uint64_t)num : (uint64_t)num;
        if (num < 0)
            digits[nd++] = '-';
        nd += kcu_format_u64(mag, digits + nd);
    }
    if ((comma && append(",", 1, cls) != 0) || append("\"", 1, cls) != 0 ||
        append(key, strlen(key), cls) != 0 || append("\":", 2, cls) != 0)
        return -1;
    if (!is_str)
        return append(digits, nd, cls);
    return append("\"", 1, cls) != 0 || append(str, str_len, cls) != 0 || append("\"", 1, cls) != 0
               ? -1
               : 0;
}

int ksvc_flat_write(const struct ksvc_flat *f, bool comma, ksvc_flat_append_fn append, void *cls)
{
    for (unsigned i = 0; i < f->n; i++) {
        const struct ksvc_flat_member *m = &f->m[i];
        if (ksvc_flat_write_member(append, cls, comma || i > 0, m->key, m->is_str, m->num, m->str,
                                   m->str_len) != 0)
            return -1;
    }
    return 0;
}
