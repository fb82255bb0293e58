/* util/b64url.c: RFC 4648 vectors, every length round-tripping, the URL
 * alphabet, strict decoding (no padding, no standard alphabet) and the
 * lenient one rawctap takes from people (padding and '+' '/'), the cap, and
 * the error texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/b64url.h"

static int dec(const char *s, unsigned flags, uint8_t *out, size_t cap, size_t *n, char *err,
               size_t errlen)
{
    return kcu_b64url_decode(s, strlen(s), flags, out, cap, n, err, errlen);
}

static void test_known_answers(void **state)
{
    /* RFC 4648 vectors, translated to the URL alphabet without padding */
    static const struct {
        const char *in, *out;
    } v[] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
             {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t len = strlen(v[i].in), n = 99;
        char out[16];
        uint8_t back[16];
        char *enc = kcu_b64url_encode_alloc((const uint8_t *)v[i].in, len);
        assert_non_null(enc);
        assert_string_equal(enc, v[i].out);
        free(enc);
        assert_int_equal(kcu_b64url_encoded_len(len), strlen(v[i].out));
        assert_int_equal(kcu_b64url_encode((const uint8_t *)v[i].in, len, out, sizeof(out)),
                         (int)strlen(v[i].out));
        assert_string_equal(out, v[i].out);
        assert_int_equal(dec(v[i].out, 0, back, sizeof(back), &n, NULL, 0), 0);
        assert_int_equal(n, len);
        assert_memory_equal(back, v[i].in, len);
    }
}

static void test_round_trip_every_length(void **state)
{
    uint8_t in[64], back[64];
    char out[96];
    (void)state;
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 37 + 5);
    for (size_t n = 0; n <= sizeof(in); n++) {
        size_t m = 0;
        assert_true(kcu_b64url_encode(in, n, out, sizeof(out)) >= 0);
        assert_int_equal(dec(out, 0, back, sizeof(back), &m, NULL, 0), 0);
        assert_int_equal(m, n);
        assert_memory_equal(in, back, n);
    }
}

static void test_alphabet_and_cap(void **state)
{
    const uint8_t ff[3] = {0xfb, 0xff, 0xbf};
    uint8_t in[10], back[16];
    char out[32];
    size_t n = 0;
    char err[128];
    (void)state;
    for (int i = 0; i < 10; i++)
        in[i] = (uint8_t)i;
    assert_int_equal(kcu_b64url_encode(ff, 3, out, sizeof(out)), 4);
    assert_string_equal(out, "-_-_");
    assert_int_equal(kcu_b64url_encode(in, 10, out, sizeof(out)), 14);
    assert_string_equal(out, "AAECAwQFBgcICQ");
    /* the NUL needs room too */
    assert_int_equal(kcu_b64url_encode(in, 10, out, 14), -1);
    assert_int_equal(kcu_b64url_encode(in, 10, out, 15), 14);
    /* decoding exactly to the cap, and one byte past it */
    assert_int_equal(dec("AAECAwQFBgcICQ", 0, back, 10, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 10);
    assert_int_equal(dec("AAECAwQFBgcICQ", 0, back, 9, &n, err, sizeof(err)), -1);
    assert_string_equal(err, "10 bytes of base64url, more than the 9 allowed");
}

static void test_strict_rejects(void **state)
{
    uint8_t back[16];
    size_t n = 77;
    char err[128];
    (void)state;
    assert_int_equal(dec("+//+", 0, back, sizeof(back), &n, err, sizeof(err)), -1);
    assert_string_equal(err, "not a base64url character: '+' at offset 0");
    assert_int_equal(dec("AAECAw==", 0, back, sizeof(back), &n, err, sizeof(err)), -1);
    assert_string_equal(err, "padding '=' at offset 6 (base64url has none)");
    assert_int_equal(dec("A", 0, back, sizeof(back), &n, err, sizeof(err)), -1);
    assert_string_equal(err, "1 base64url characters: no encoding has that length");
    assert_int_equal(dec("AA*A", 0, back, sizeof(back), &n, err, sizeof(err)), -1);
    assert_string_equal(err, "not a base64url character: '*' at offset 2");
    assert_int_equal(dec("AA A", 0, back, sizeof(back), &n, err, sizeof(err)), -1);
    assert_string_equal(err, "not a base64url character: byte 0x20 at offset 2");
    assert_int_equal(dec("AA\xc3\xa9", 0, back, sizeof(back), &n, NULL, 0), -1);
    assert_int_equal(n, 77); /* untouched on failure */
}

static void test_lenient(void **state)
{
    const uint8_t bytes[] = {0xfb, 0xff, 0xbf};
    uint8_t back[16];
    size_t n = 0;
    char err[128];
    (void)state;
    /* the standard alphabet and padding are taken */
    assert_int_equal(dec("+/+/", KCU_B64URL_LENIENT, back, sizeof(back), &n, NULL, 0), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(back, bytes, 3);
    assert_int_equal(dec("Zg==", KCU_B64URL_LENIENT, back, sizeof(back), &n, NULL, 0), 0);
    assert_int_equal(n, 1);
    assert_int_equal(back[0], 'f');
    assert_int_equal(dec("Zm8=", KCU_B64URL_LENIENT, back, sizeof(back), &n, NULL, 0), 0);
    assert_int_equal(n, 2);
    /* but padding only at the end, at most two, and no 4n+1 length */
    assert_int_equal(dec("Z=g", KCU_B64URL_LENIENT, back, sizeof(back), &n, err, sizeof(err)), -1);
    assert_string_equal(err, "padding '=' at offset 1 (base64url has none)");
    assert_int_equal(dec("Zg===", KCU_B64URL_LENIENT, back, sizeof(back), &n, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "3 padding characters (at most 2)");
    assert_int_equal(dec("Zm9vY=", KCU_B64URL_LENIENT, back, sizeof(back), &n, NULL, 0), -1);
    assert_int_equal(dec("Zm9v!", KCU_B64URL_LENIENT, back, sizeof(back), &n, NULL, 0), -1);
}

static void test_decode_alloc(void **state)
{
    uint8_t *d = NULL;
    size_t n = 0;
    char err[128];
    (void)state;
    assert_int_equal(kcu_b64url_decode_alloc("Zm9vYmFy", 6, 0, &d, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(d, "foobar", 6);
    free(d);
    d = NULL;
    assert_int_equal(kcu_b64url_decode_alloc("", 6, 0, &d, &n, err, sizeof(err)), -1);
    assert_string_equal(err, "empty base64url");
    assert_int_equal(kcu_b64url_decode_alloc("==", 6, KCU_B64URL_LENIENT, &d, &n, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "empty base64url");
    assert_int_equal(kcu_b64url_decode_alloc("Zm9vYmFy", 5, 0, &d, &n, err, sizeof(err)), -1);
    assert_string_equal(err, "6 bytes of base64url, more than the 5 allowed");
    assert_int_equal(kcu_b64url_decode_alloc("Zm9vYmFyZm9vYmFy", 5, 0, &d, &n, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "more than 5 bytes of base64url");
    assert_int_equal(kcu_b64url_decode_alloc("Z", 5, 0, &d, &n, NULL, 0), -1);
    assert_null(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),    cmocka_unit_test(test_round_trip_every_length),
        cmocka_unit_test(test_alphabet_and_cap), cmocka_unit_test(test_strict_rejects),
        cmocka_unit_test(test_lenient),          cmocka_unit_test(test_decode_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
