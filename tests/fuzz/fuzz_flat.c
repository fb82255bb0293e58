/* libFuzzer: flat JSON objects (services/common/flat.c) against jansson.
 * The input is a list of operations, each an opcode byte (set an integer,
 * set a string, delete, merge the object built so far into a second one), a
 * key chosen from a fixed set and, for a value, a length byte and that many
 * bytes. The same operations are applied to a jansson object; whatever the
 * flat object accepts must leave both holding the same members, and the
 * text written for a plain object must be byte for byte jansson's compact
 * dump. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "services/common/flat.h"

static const char *const keys[] = {"counter", "username", "ref", "a", "we\"ird", "k\\ey", "ms", ""};

struct text {
    char buf[4096];
    size_t len;
};

static int text_append(const char *data, size_t len, void *cls)
{
    struct text *t = cls;
    if (t->len + len >= sizeof(t->buf))
        return -1;
    memcpy(t->buf + t->len, data, len);
    t->len += len;
    t->buf[t->len] = '\0';
    return 0;
}

/* flat and mirror hold the same members, and a plain flat's text is jansson's */
static void check(const struct ksvc_flat *flat, json_t *mirror)
{
    json_t *got = json_object();
    if (got == NULL)
        return;
    if (ksvc_flat_to_json(flat, got) == 0) {
        if (!json_equal(got, mirror))
            abort();
        if (ksvc_flat_plain(flat)) {
            struct text t = {.len = 0};
            if (text_append("{", 1, &t) != 0 ||
                ksvc_flat_write(flat, false, text_append, &t) != 0 || text_append("}", 1, &t) != 0)
                abort();
            char *want = json_dumps(got, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (want == NULL || strcmp(want, t.buf) != 0)
                abort();
            free(want);
        }
    }
    json_decref(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ksvc_flat flat = {0}, merged = {0};
    json_t *mirror = json_object(), *merged_mirror = json_object();
    size_t pos = 0;
    while (mirror != NULL && merged_mirror != NULL && pos + 2 <= size) {
        uint8_t op = data[pos] & 3;
        const char *key = keys[data[pos + 1] % (sizeof(keys) / sizeof(keys[0]))];
        pos += 2;
        if (op == 2) {
            ksvc_flat_del(&flat, key);
            json_object_del(mirror, key);
        } else if (op == 3) {
            if (ksvc_flat_merge(&merged, &flat) == 0) {
                json_object_update(merged_mirror, mirror);
                check(&merged, merged_mirror);
            } else {
                /* refused: start again from what it held before */
                memset(&merged, 0, sizeof(merged));
                json_object_clear(merged_mirror);
            }
        } else {
            size_t n = pos < size ? data[pos++] : 0;
            if (n > size - pos)
                n = size - pos;
            char value[256];
            memcpy(value, data + pos, n);
            value[n] = '\0';
            pos += n;
            if (op == 0) {
                long long v = 0;
                memcpy(&v, value, n < sizeof(v) ? n : sizeof(v));
                if (ksvc_flat_int(&flat, key, v) == 0)
                    json_object_set_new(mirror, key, json_integer(v));
            } else if (ksvc_flat_str(&flat, key, value) == 0) {
                json_t *s = json_string(value);
                if (s == NULL) { /* not UTF-8: jansson refuses it, so must the conversion */
                    json_t *o = json_object();
                    if (o != NULL && ksvc_flat_to_json(&flat, o) == 0)
                        abort();
                    json_decref(o);
                    ksvc_flat_del(&flat, key);
                    json_object_del(mirror, key);
                } else {
                    json_object_set_new(mirror, key, s);
                }
            }
        }
        if (json_object_size(mirror) != flat.n)
            abort();
        check(&flat, mirror);
    }
    json_decref(mirror);
    json_decref(merged_mirror);
    return 0;
}
