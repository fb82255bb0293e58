/* util/err.c, util/rand.c, util/clock.c: the error setter (NULL and 0-size
 * buffers, truncation, the rc it returns), random bytes (filled, differing,
 * refused sizes), and the monotonic clock and deadlines. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/rand.h"

static void vset(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void vset(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    kcu_vset_err(buf, len, fmt, ap);
    va_end(ap);
}

static void test_set_err(void **state)
{
    char buf[8];
    (void)state;
    kcu_set_err(buf, sizeof(buf), "%s %d", "ab", 12);
    assert_string_equal(buf, "ab 12");
    kcu_set_err(buf, sizeof(buf), "%s", "0123456789"); /* truncated, terminated */
    assert_string_equal(buf, "0123456");
    memcpy(buf, "keep", 5);
    kcu_set_err(buf, 0, "x"); /* no room: untouched */
    assert_string_equal(buf, "keep");
    kcu_set_err(NULL, 10, "x"); /* no buffer: nothing */
    vset(buf, sizeof(buf), "v%c", 'a');
    assert_string_equal(buf, "va");
    vset(NULL, 0, "v");
    assert_int_equal(kcu_set_err_rc(buf, sizeof(buf), -7, "rc %d", 1), -7);
    assert_string_equal(buf, "rc 1");
    assert_int_equal(kcu_set_err_rc(NULL, 0, 42, "ignored"), 42);
}

static void test_random(void **state)
{
    uint8_t a[32], b[32], zero[32] = {0};
    (void)state;
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    assert_int_equal(kcu_random(a, sizeof(a)), 0);
    assert_int_equal(kcu_random(b, sizeof(b)), 0);
    /* 2^-256 chance of a false failure */
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_memory_not_equal(a, b, sizeof(a));
    assert_int_equal(kcu_random(a, 0), 0);
    assert_int_equal(kcu_random(NULL, 0), 0);
    assert_int_equal(kcu_random(NULL, 4), -1);
    assert_int_equal(kcu_random(a, (size_t)INT_MAX + 1), -1); /* more than RAND_bytes takes */
}

static void test_clock(void **state)
{
    struct timespec t = {0, 0}, before;
    struct timespec pause = {0, 2000000}; /* 2 ms */
    uint64_t ns0, us0, ms0, ns1;
    (void)state;
    ns0 = kcu_now_ns();
    us0 = kcu_now_us();
    ms0 = kcu_now_ms();
    assert_true(ns0 > 0);
    /* the three are one clock: read in order, each at least the one before */
    assert_true(us0 >= ns0 / 1000);
    assert_true(ms0 >= us0 / 1000);
    nanosleep(&pause, NULL);
    ns1 = kcu_now_ns();
    assert_true(ns1 - ns0 >= 2000000);
    assert_true(kcu_now_ms() - ms0 >= 2);

    /* a deadline is now plus ms, normalised */
    clock_gettime(CLOCK_MONOTONIC, &before);
    kcu_deadline(CLOCK_MONOTONIC, 1999, &t);
    assert_true(t.tv_nsec >= 0 && t.tv_nsec < 1000000000L);
    {
        int64_t d =
            ((int64_t)t.tv_sec - before.tv_sec) * 1000 + (t.tv_nsec - before.tv_nsec) / 1000000;
        assert_true(d >= 1999 && d < 1999 + 1000);
    }
    kcu_deadline(CLOCK_REALTIME, 0, &t);
    assert_true(t.tv_sec >= time(NULL) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_err),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
