/* Flat JSON objects (services/common/flat.c): members set, replaced,
 * removed and merged as a jansson object's are, what does not fit refused,
 * and the text written for plain members byte for byte jansson's compact
 * dump of the same object. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "services/common/flat.h"

struct text {
    char buf[1024];
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

/* f as an object's text, written here: "{" members "}" */
static void write_object(const struct ksvc_flat *f, struct text *t)
{
    t->len = 0;
    assert_int_equal(text_append("{", 1, t), 0);
    assert_int_equal(ksvc_flat_write(f, false, text_append, t), 0);
    assert_int_equal(text_append("}", 1, t), 0);
}

/* jansson's compact dump of f's members; the caller frees it */
static char *jansson_text(const struct ksvc_flat *f)
{
    json_t *o = json_object();
    assert_non_null(o);
    assert_int_equal(ksvc_flat_to_json(f, o), 0);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    assert_non_null(s);
    return s;
}

static void assert_same_as_jansson(const struct ksvc_flat *f)
{
    struct text t;
    write_object(f, &t);
    char *want = jansson_text(f);
    assert_string_equal(t.buf, want);
    free(want);
}

static void test_counter_answer_text(void **state)
{
    (void)state;
    struct ksvc_flat f = {0};
    assert_int_equal(ksvc_flat_int(&f, "counter", 42), 0);
    assert_int_equal(ksvc_flat_str(&f, "username", "alice"), 0);
    assert_int_equal(ksvc_flat_int(&f, "expires_in", 3599), 0);
    assert_true(ksvc_flat_plain(&f));
    struct text t;
    write_object(&f, &t);
    assert_string_equal(t.buf, "{\"counter\":42,\"username\":\"alice\",\"expires_in\":3599}");
    assert_same_as_jansson(&f);
}

static void test_integers_at_the_limits(void **state)
{
    (void)state;
    struct ksvc_flat f = {0};
    assert_int_equal(ksvc_flat_int(&f, "min", INT64_MIN), 0);
    assert_int_equal(ksvc_flat_int(&f, "max", INT64_MAX), 0);
    assert_int_equal(ksvc_flat_int(&f, "zero", 0), 0);
    assert_int_equal(ksvc_flat_int(&f, "minus_one", -1), 0);
    struct text t;
    write_object(&f, &t);
    assert_string_equal(t.buf, "{\"min\":-9223372036854775808,\"max\":9223372036854775807,"
                               "\"zero\":0,\"minus_one\":-1}");
    assert_same_as_jansson(&f);
}

static void test_replace_and_delete(void **state)
{
    (void)state;
    struct ksvc_flat f = {0};
    assert_int_equal(ksvc_flat_str(&f, "a", "one"), 0);
    assert_int_equal(ksvc_flat_int(&f, "b", 2), 0);
    /* the same key again replaces it in place, as json_object_set does */
    assert_int_equal(ksvc_flat_int(&f, "a", 1), 0);
    assert_int_equal(f.n, 2);
    struct text t;
    write_object(&f, &t);
    assert_string_equal(t.buf, "{\"a\":1,\"b\":2}");
    ksvc_flat_del(&f, "a");
    ksvc_flat_del(&f, "missing");
    write_object(&f, &t);
    assert_string_equal(t.buf, "{\"b\":2}");
    ksvc_flat_del(&f, "b");
    assert_int_equal(f.n, 0);
    write_object(&f, &t);
    assert_string_equal(t.buf, "{}");
}

static void test_what_does_not_fit_is_refused(void **state)
{
    (void)state;
    struct ksvc_flat f = {0};
    static const char *const keys[] = {"k0", "k1", "k2", "k3"};
    for (unsigned i = 0; i < KSVC_FLAT_MAX; i++)
        assert_int_equal(ksvc_flat_int(&f, keys[i], i), 0);
    assert_int_equal(ksvc_flat_int(&f, "k4", 4), -1);
    assert_int_equal(ksvc_flat_str(&f, "k0", NULL), -1); /* as json_string(NULL) */
    assert_int_equal(ksvc_flat_str(&f, "k4", "x"), -1);
    assert_int_equal(f.n, KSVC_FLAT_MAX);
    /* a full object still replaces a member it has */
    assert_int_equal(ksvc_flat_str(&f, "k1", "one"), 0);

    struct ksvc_flat g = {0};
    char longest[KSVC_FLAT_STR_MAX], too_long[KSVC_FLAT_STR_MAX + 1];
    memset(longest, 'x', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    memset(too_long, 'y', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    assert_int_equal(ksvc_flat_str(&g, "s", longest), 0);
    assert_int_equal(ksvc_flat_str(&g, "s", too_long), -1);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.m[0].str_len, KSVC_FLAT_STR_MAX - 1);
    assert_same_as_jansson(&g);
}

static void test_merge(void **state)
{
    (void)state;
    struct ksvc_flat early = {0}, late = {0};
    assert_int_equal(ksvc_flat_str(&early, "ref", "r1"), 0);
    assert_int_equal(ksvc_flat_int(&early, "counter", 1), 0);
    assert_int_equal(ksvc_flat_int(&late, "counter", 2), 0);
    assert_int_equal(ksvc_flat_str(&late, "username", "bob"), 0);
    assert_int_equal(ksvc_flat_merge(&early, &late), 0);
    struct text t;
    write_object(&early, &t);
    assert_string_equal(t.buf, "{\"ref\":\"r1\",\"counter\":2,\"username\":\"bob\"}");

    struct ksvc_flat more = {0};
    assert_int_equal(ksvc_flat_int(&more, "x", 1), 0);
    assert_int_equal(ksvc_flat_int(&more, "y", 2), 0);
    assert_int_equal(ksvc_flat_merge(&early, &more), -1); /* five members */
}

static void test_plain_text(void **state)
{
    (void)state;
    static const char printable[] = "abc XYZ 0-9_./:~!#$%&'()*+,;<=>?@[]^`{|}";
    assert_true(ksvc_flat_plain_text(printable, strlen(printable)));
    assert_true(ksvc_flat_plain_text("", 0));
    assert_false(ksvc_flat_plain_text("a\"b", 3));
    assert_false(ksvc_flat_plain_text("a\\b", 3));
    assert_false(ksvc_flat_plain_text("a\nb", 3));
    assert_false(ksvc_flat_plain_text("\x1f", 1));
    assert_false(ksvc_flat_plain_text("\x7f", 1));
    assert_false(ksvc_flat_plain_text("Jos\xc3\xa9", 5));
    /* a NUL inside the length is not plain either */
    assert_false(ksvc_flat_plain_text("a\0b", 3));

    struct ksvc_flat f = {0};
    assert_int_equal(ksvc_flat_str(&f, "name", "say \"hi\""), 0);
    assert_false(ksvc_flat_plain(&f));
    struct ksvc_flat k = {0};
    assert_int_equal(ksvc_flat_int(&k, "we\"ird", 1), 0);
    assert_false(ksvc_flat_plain(&k));
}

/* What is not plain goes to jansson, which escapes it or refuses it. */
static void test_to_json(void **state)
{
    (void)state;
    struct ksvc_flat f = {0};
    assert_int_equal(ksvc_flat_str(&f, "name", "Jos\xc3\xa9 \"q\" \\"), 0);
    assert_int_equal(ksvc_flat_int(&f, "n", -5), 0);
    json_t *o = json_object();
    assert_int_equal(ksvc_flat_to_json(&f, o), 0);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "Jos\xc3\xa9 \"q\" \\");
    assert_true(json_integer_value(json_object_get(o, "n")) == -5);
    json_decref(o);

    struct ksvc_flat bad = {0};
    assert_int_equal(ksvc_flat_str(&bad, "name", "\xff\xfe"), 0);
    assert_int_equal(ksvc_flat_int(&bad, "n", 1), 0);
    o = json_object();
    assert_int_equal(ksvc_flat_to_json(&bad, o), -1); /* not UTF-8 */
    assert_null(json_object_get(o, "name"));
    assert_true(json_integer_value(json_object_get(o, "n")) == 1);
    json_decref(o);
}

static int fail_append(const char *data, size_t len, void *cls)
{
    (void)data;
    (void)len;
    int *left = cls;
    return (*left)-- > 0 ? 0 : -1;
}

static void test_write_failure_is_reported(void **state)
{
    (void)state;
    struct ksvc_flat f = {0};
    assert_int_equal(ksvc_flat_int(&f, "a", 1), 0);
    assert_int_equal(ksvc_flat_str(&f, "b", "x"), 0);
    for (int n = 0; n < 8; n++) {
        int left = n;
        assert_int_equal(ksvc_flat_write(&f, true, fail_append, &left), -1);
    }
    int plenty = 100;
    assert_int_equal(ksvc_flat_write(&f, true, fail_append, &plenty), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_answer_text),
        cmocka_unit_test(test_integers_at_the_limits),
        cmocka_unit_test(test_replace_and_delete),
        cmocka_unit_test(test_what_does_not_fit_is_refused),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_plain_text),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_write_failure_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
