/* util/capbuf.c and util/curl_body.c: the capped buffer exactly at its cap
 * and one byte past it (refused whole, left as it was), growth, reuse,
 * reserve; the libcurl collector fed directly and through a transfer of a
 * local file (file://: no socket). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <curl/curl.h>

#include "util/capbuf.h"
#include "util/curl_body.h"

static void test_at_cap_and_past(void **state)
{
    struct kcu_capbuf b;
    (void)state;
    kcu_capbuf_init(&b, 10);
    assert_null(b.data);
    assert_int_equal(kcu_capbuf_append(&b, "hello", 5), 0);
    assert_int_equal(kcu_capbuf_append(&b, "world", 5), 0); /* exactly at the cap */
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    assert_false(b.over);
    assert_int_equal(kcu_capbuf_append(&b, "!", 1), -1); /* one past */
    assert_true(b.over);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    assert_int_equal(kcu_capbuf_append(&b, "", 0), 0); /* nothing always fits */
    kcu_capbuf_reset(&b);
    assert_false(b.over);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    /* a single append past the cap is refused whole */
    assert_int_equal(kcu_capbuf_append(&b, "0123456789a", 11), -1);
    assert_true(b.over);
    assert_int_equal(b.len, 0);
    kcu_capbuf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    kcu_capbuf_free(&b); /* twice is fine */
}

static void test_growth_and_reserve(void **state)
{
    struct kcu_capbuf b;
    uint8_t chunk[100];
    (void)state;
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (uint8_t)i;
    kcu_capbuf_init(&b, 100000);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(kcu_capbuf_append(&b, chunk, sizeof(chunk)), 0);
    assert_int_equal(b.len, 100000);
    assert_int_equal(b.alloc, 100001); /* grown to the cap and no further */
    for (int i = 0; i < 1000; i++)
        assert_memory_equal(b.data + i * 100, chunk, 100);
    assert_int_equal(kcu_capbuf_append(&b, chunk, 1), -1);
    kcu_capbuf_free(&b);

    kcu_capbuf_init(&b, 4096);
    assert_int_equal(kcu_capbuf_reserve(&b, 4096), 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    assert_true(b.alloc >= 4097);
    {
        char *before = b.data;
        for (int i = 0; i < 40; i++)
            assert_int_equal(kcu_capbuf_append(&b, chunk, 100), 0);
        assert_ptr_equal(b.data, before); /* nothing allocated after the reserve */
    }
    assert_int_equal(kcu_capbuf_reserve(&b, 1 << 20), 0); /* capped: no more than max */
    assert_true(b.alloc <= 4097);
    kcu_capbuf_free(&b);
}

static void test_curl_write(void **state)
{
    struct kcu_capbuf b;
    char data[8] = "abcdefgh";
    (void)state;
    kcu_capbuf_init(&b, 8);
    assert_int_equal(kcu_curl_body_write(data, 1, 4, &b), 4);
    assert_int_equal(kcu_curl_body_write(data + 4, 2, 2, &b), 4);
    assert_string_equal(b.data, "abcdefgh");
    assert_int_equal(kcu_curl_body_write(data, 1, 1, &b), 0); /* ends the transfer */
    assert_true(b.over);
    kcu_capbuf_reset(&b);
    assert_int_equal(kcu_curl_body_write(data, SIZE_MAX / 2, 4, &b), 0); /* size*nmemb overflows */
    assert_true(b.over);
    kcu_capbuf_free(&b);
}

/* A transfer of a local file of len bytes into a buffer of cap bytes. */
static CURLcode fetch_file(size_t len, size_t cap, struct kcu_capbuf *b)
{
    char path[] = "/tmp/kcu_curl_XXXXXX", url[64];
    int fd = mkstemp(path);
    CURL *e = curl_easy_init();
    CURLcode rc;
    char *buf = malloc(len + 1);

    assert_true(fd >= 0);
    assert_non_null(e);
    assert_non_null(buf);
    memset(buf, 'x', len);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
    free(buf);
    snprintf(url, sizeof(url), "file://%s", path);
    kcu_capbuf_init(b, cap);
    assert_int_equal(curl_easy_setopt(e, CURLOPT_URL, url), CURLE_OK);
    assert_int_equal(kcu_curl_body_collect(e, b), CURLE_OK);
    rc = curl_easy_perform(e);
    curl_easy_cleanup(e);
    unlink(path);
    return rc;
}

static void test_curl_transfer(void **state)
{
    struct kcu_capbuf b;
    (void)state;
    assert_int_equal(fetch_file(5000, 5000, &b), CURLE_OK); /* exactly at the cap */
    assert_int_equal(b.len, 5000);
    assert_false(b.over);
    assert_int_equal(b.data[4999], 'x');
    assert_int_equal(b.data[5000], '\0');
    kcu_capbuf_free(&b);
    assert_int_equal(fetch_file(5001, 5000, &b), CURLE_WRITE_ERROR); /* one past */
    assert_true(b.over);
    assert_true(b.len <= 5000);
    kcu_capbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_at_cap_and_past),
        cmocka_unit_test(test_growth_and_reserve),
        cmocka_unit_test(test_curl_write),
        cmocka_unit_test(test_curl_transfer),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
