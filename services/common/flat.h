/* Small flat JSON objects of integers and strings, kept without jansson.
 *
 * A counter call is the services' hot path, and there building, dumping and
 * freeing jansson objects for a three-member answer and two log members cost
 * more CPU than the rest of the request's own work (measured: about 2 µs of
 * k_proxy's and 0.6 µs of k_server's user time per request). A flat object
 * holds its members in place, with no allocation, and is written directly
 * when every key and string is printable ASCII with nothing to escape: the
 * text is then byte for byte what jansson's compact dump gives (tested
 * against it, tests/unit/services/common/test_flat.c and
 * tests/fuzz/fuzz_flat.c). Anything else is handed to jansson
 * (ksvc_flat_to_json), so no string is ever escaped here. */
#ifndef KCARD_SERVICES_FLAT_H
#define KCARD_SERVICES_FLAT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define KSVC_FLAT_MAX 4       /* members */
#define KSVC_FLAT_STR_MAX 100 /* bytes of a string member, its NUL included */

struct ksvc_flat_member {
    const char *key; /* not copied: a string literal */
    bool is_str;
    long long num;
    char str[KSVC_FLAT_STR_MAX];
    size_t str_len;
};

/* All zero is the empty object. */
struct ksvc_flat {
    unsigned n;
    struct ksvc_flat_member m[KSVC_FLAT_MAX];
};

/* Sets key (replacing a member of the same key, else appended). -1 when it
 * does not fit (KSVC_FLAT_MAX members already, or a string of
 * KSVC_FLAT_STR_MAX bytes or more, or s NULL): f is then unchanged and the
 * caller keeps the member with jansson. */
int ksvc_flat_int(struct ksvc_flat *f, const char *key, long long v);
int ksvc_flat_str(struct ksvc_flat *f, const char *key, const char *s);
/* Removes key's member, if any. */
void ksvc_flat_del(struct ksvc_flat *f, const char *key);
/* Sets f's members into obj, in order; -1 when jansson refuses one (a
 * string that is not UTF-8) or runs out of memory: the others are set. */
int ksvc_flat_to_json(const struct ksvc_flat *f, json_t *obj);
/* Sets src's members into dst, in order (as ksvc_flat_int/str); -1 when
 * one does not fit (dst then holds those before it). */
int ksvc_flat_merge(struct ksvc_flat *dst, const struct ksvc_flat *src);
/* True when s is printable ASCII without '"' or '\\': its own JSON text
 * between quotes. */
bool ksvc_flat_plain_text(const char *s, size_t len);
/* True when every key and string member is plain text: f's JSON text is
 * then written by ksvc_flat_write. */
bool ksvc_flat_plain(const struct ksvc_flat *f);
/* Writes one member, "key":value, preceded by ',' when comma: for plain key
 * and string only (the caller checks). append returns 0, else -1. */
typedef int (*ksvc_flat_append_fn)(const char *data, size_t len, void *cls);
int ksvc_flat_write_member(ksvc_flat_append_fn append, void *cls, bool comma, const char *key,
                           bool is_str, long long num, const char *str, size_t str_len);
/* Writes a plain f's members, comma-separated, without braces; a leading
 * ',' when comma. 0, or -1 when append fails. */
int ksvc_flat_write(const struct ksvc_flat *f, bool comma, ksvc_flat_append_fn append, void *cls);

#endif
