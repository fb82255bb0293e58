/* chain-regress: the block cache libcurl and jansson allocate through
 * (kcr_alloc.c): malloc/free/realloc/calloc/strdup semantics, reuse of
 * freed blocks, zeroing, overflow, big blocks and other threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "regression/chain_regress.h"

static int setup(void **state)
{
    (void)state;
    kcr_alloc_bind_thread(); /* this thread keeps the cache */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kcr_alloc_release();
    return 0;
}

static void test_sizes_are_usable_and_aligned(void **state)
{
    static const size_t sizes[] = {0,   1,    15,   16,   17,   127,   128,   129,   255,
                                   256, 1000, 1500, 4096, 4097, 32767, 32768, 32769, 100000};
    void *p[sizeof(sizes) / sizeof(sizes[0])];

    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        p[i] = kcr_alloc_malloc(sizes[i]);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 16, 0);
        memset(p[i], (int)(0x40 + i), sizes[i]); /* every byte asked for is writable */
    }
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (size_t k = 0; k < sizes[i]; k++)
            assert_int_equal(((unsigned char *)p[i])[k], 0x40 + i); /* no overlap */
        kcr_alloc_free(p[i]);
    }
    kcr_alloc_free(NULL);
}

static void test_freed_block_is_reused(void **state)
{
    void *a, *b, *big1, *big2;

    (void)state;
    a = kcr_alloc_malloc(1200);
    assert_non_null(a);
    kcr_alloc_free(a);
    b = kcr_alloc_malloc(1100); /* the same class: the same block again */
    assert_ptr_equal(a, b);
    kcr_alloc_free(b);
    big1 = kcr_alloc_malloc(70000);
    assert_non_null(big1);
    kcr_alloc_free(big1); /* not cached: straight back to malloc */
    big2 = kcr_alloc_malloc(70000);
    assert_non_null(big2);
    kcr_alloc_free(big2);
}

static void test_calloc_zeroes_a_reused_block(void **state)
{
    unsigned char *p, *q;

    (void)state;
    p = kcr_alloc_malloc(300);
    assert_non_null(p);
    memset(p, 0xAA, 300);
    kcr_alloc_free(p);
    q = kcr_alloc_calloc(10, 30);
    assert_non_null(q);
    for (size_t i = 0; i < 300; i++)
        assert_int_equal(q[i], 0);
    kcr_alloc_free(q);
    assert_null(kcr_alloc_calloc(SIZE_MAX / 2, 3)); /* count * size wraps */
    q = kcr_alloc_calloc(0, 8);
    assert_non_null(q);
    kcr_alloc_free(q);
}

static void test_realloc_keeps_the_content(void **state)
{
    unsigned char *p, *q;

    (void)state;
    p = kcr_alloc_realloc(NULL, 10); /* NULL: a plain malloc */
    assert_non_null(p);
    for (int i = 0; i < 10; i++)
        p[i] = (unsigned char)i;
    q = kcr_alloc_realloc(p, 12); /* still fits its class */
    assert_ptr_equal(p, q);
    for (size_t n = 32; n <= 131072; n *= 2) {
        q = kcr_alloc_realloc(p, n);
        assert_non_null(q);
        for (int i = 0; i < 10; i++)
            assert_int_equal(q[i], i);
        memset(q + 10, 0x55, n - 10);
        p = q;
    }
    q = kcr_alloc_realloc(p, 4); /* smaller: the same block */
    assert_ptr_equal(p, q);
    assert_int_equal(q[3], 3);
    kcr_alloc_free(q);
}

static void test_strdup(void **state)
{
    char *s;

    (void)state;
    s = kcr_alloc_strdup("Authorization: Bearer abc");
    assert_non_null(s);
    assert_string_equal(s, "Authorization: Bearer abc");
    kcr_alloc_free(s);
    s = kcr_alloc_strdup("");
    assert_non_null(s);
    assert_string_equal(s, "");
    kcr_alloc_free(s);
}

/* each thread fills its blocks with its own byte and checks it before freeing */
static void *churn(void *arg)
{
    unsigned char mark = (unsigned char)(uintptr_t)arg;
    unsigned char *held[16] = {0};
    size_t sizes[16] = {0};

    for (unsigned round = 0; round < 20000; round++) {
        unsigned k = round % 16;
        if (held[k] != NULL) {
            for (size_t i = 0; i < sizes[k]; i++)
                if (held[k][i] != mark)
                    return (void *)1;
            kcr_alloc_free(held[k]);
        }
        sizes[k] = 1 + (round * 37u + mark) % 2000;
        if ((held[k] = kcr_alloc_malloc(sizes[k])) == NULL)
            return (void *)1;
        memset(held[k], mark, sizes[k]);
    }
    for (unsigned k = 0; k < 16; k++)
        kcr_alloc_free(held[k]);
    return NULL;
}

static void *alloc_elsewhere(void *arg)
{
    (void)arg;
    return kcr_alloc_strdup("from another thread");
}

static void *free_elsewhere(void *arg)
{
    kcr_alloc_free(arg);
    return NULL;
}

static void test_other_threads(void **state)
{
    pthread_t t1, t2;
    void *r1 = (void *)1, *r2 = (void *)1, *p;

    (void)state;
    /* two threads at once beside the caching one, which churns too */
    assert_int_equal(pthread_create(&t1, NULL, churn, (void *)(uintptr_t)0x11), 0);
    assert_int_equal(pthread_create(&t2, NULL, churn, (void *)(uintptr_t)0x22), 0);
    assert_null(churn((void *)(uintptr_t)0x33));
    assert_int_equal(pthread_join(t1, &r1), 0);
    assert_int_equal(pthread_join(t2, &r2), 0);
    assert_null(r1);
    assert_null(r2);
    /* a block made on another thread, freed here (into the cache) */
    assert_int_equal(pthread_create(&t1, NULL, alloc_elsewhere, NULL), 0);
    assert_int_equal(pthread_join(t1, &p), 0);
    assert_non_null(p);
    assert_string_equal(p, "from another thread");
    kcr_alloc_free(p);
    /* a block made here, freed on another thread (back to free()) */
    p = kcr_alloc_malloc(500);
    assert_non_null(p);
    assert_int_equal(pthread_create(&t1, NULL, free_elsewhere, p), 0);
    assert_int_equal(pthread_join(t1, NULL), 0);
}

static void test_release_then_use_again(void **state)
{
    void *p;

    (void)state;
    p = kcr_alloc_malloc(64);
    assert_non_null(p);
    kcr_alloc_free(p);
    kcr_alloc_release();
    p = kcr_alloc_malloc(64);
    assert_non_null(p);
    kcr_alloc_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sizes_are_usable_and_aligned, teardown),
        cmocka_unit_test_teardown(test_freed_block_is_reused, teardown),
        cmocka_unit_test_teardown(test_calloc_zeroes_a_reused_block, teardown),
        cmocka_unit_test_teardown(test_realloc_keeps_the_content, teardown),
        cmocka_unit_test_teardown(test_strdup, teardown),
        cmocka_unit_test_teardown(test_other_threads, teardown),
        cmocka_unit_test_teardown(test_release_then_use_again, teardown),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
