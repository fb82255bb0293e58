/* kc-forward's one-direction pump over non-blocking pipes (no sockets): bytes
 * pass unchanged and in order, a full destination holds bytes back without
 * losing them, EOF is seen and reported drained only after the last byte,
 * and a broken destination is an error. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness/chain/forward.h"

struct fixture {
    int src[2]; /* test writes src[1], pump reads src[0] */
    int dst[2]; /* pump writes dst[1], test reads dst[0] */
    struct kcf_half h;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (pipe2(f->src, O_NONBLOCK | O_CLOEXEC) != 0 || pipe2(f->dst, O_NONBLOCK | O_CLOEXEC) != 0)
        return -1;
    f->h.buf = malloc(KCF_HALF_BUF);
    if (f->h.buf == NULL)
        return -1;
    *state = f;
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    close_fd(&f->src[0]);
    close_fd(&f->src[1]);
    close_fd(&f->dst[0]);
    close_fd(&f->dst[1]);
    free(f->h.buf);
    free(f);
    return 0;
}

/* Reads everything available from fd into out (at most cap). */
static size_t drain(int fd, uint8_t *out, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, out + got, cap - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == cap)
            break;
    }
    return got;
}

static void test_bytes_pass_unchanged(void **state)
{
    struct fixture *f = *state;
    const uint8_t msg[] = {0x00, 0xff, 'G', 'E', 'T', '\r', '\n', 0x80, 0x00};
    uint8_t out[64];

    assert_int_equal(write(f->src[1], msg, sizeof(msg)), (ssize_t)sizeof(msg));
    assert_int_equal(kcf_half_pump(&f->h, f->src[0], f->dst[1]), KCF_PUMP_MOVED);
    assert_int_equal(drain(f->dst[0], out, sizeof(out)), sizeof(msg));
    assert_memory_equal(out, msg, sizeof(msg));
    assert_int_equal(f->h.bytes, sizeof(msg));
    assert_false(f->h.eof);
    assert_false(kcf_half_drained(&f->h));
    /* nothing more to read: idle, not EOF */
    assert_int_equal(kcf_half_pump(&f->h, f->src[0], f->dst[1]), KCF_PUMP_IDLE);
    assert_false(f->h.eof);
}

static void test_eof_after_last_byte(void **state)
{
    struct fixture *f = *state;
    uint8_t out[8];

    assert_int_equal(write(f->src[1], "abc", 3), 3);
    close_fd(&f->src[1]);
    assert_int_equal(kcf_half_pump(&f->h, f->src[0], f->dst[1]), KCF_PUMP_MOVED);
    assert_true(f->h.eof);
    assert_true(kcf_half_drained(&f->h));
    assert_int_equal(drain(f->dst[0], out, sizeof(out)), 3);
    assert_memory_equal(out, "abc", 3);
    /* after EOF the source is not read again */
    assert_int_equal(kcf_half_pump(&f->h, f->src[0], f->dst[1]), KCF_PUMP_IDLE);
}

/* A destination that takes nothing holds the bytes in the buffer; they all
 * come out, in order, once it drains. */
static void test_full_destination_loses_nothing(void **state)
{
    struct fixture *f = *state;
    const size_t total = 512 * 1024;
    uint8_t *in = malloc(total), *out = malloc(total);
    size_t written = 0, got = 0;
    int rounds = 0;

    assert_non_null(in);
    assert_non_null(out);
    for (size_t i = 0; i < total; i++)
        in[i] = (uint8_t)(i * 131u + (i >> 9));
    /* more than the pipes plus the buffer can hold: forces partial writes */
    while ((written < total || got < total) && rounds++ < 100000) {
        if (written < total) {
            ssize_t n = write(f->src[1], in + written, total - written);
            if (n > 0)
                written += (size_t)n;
            else
                assert_int_equal(errno, EAGAIN);
        }
        if (written == total && f->src[1] >= 0)
            close_fd(&f->src[1]);
        assert_int_not_equal(kcf_half_pump(&f->h, f->src[0], f->dst[1]), KCF_PUMP_ERROR);
        assert_true(f->h.len <= KCF_HALF_BUF);
        assert_true(f->h.off <= f->h.len);
        /* read only now and then, so the destination is often full */
        if (rounds % 3 == 0)
            got += drain(f->dst[0], out + got, total - got);
    }
    got += drain(f->dst[0], out + got, total - got);
    assert_int_equal(got, total);
    assert_memory_equal(out, in, total);
    assert_int_equal(f->h.bytes, total);
    assert_true(kcf_half_drained(&f->h));
    free(in);
    free(out);
}

static void test_broken_destination_is_error(void **state)
{
    struct fixture *f = *state;
    struct sigaction ign, old;

    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    assert_int_equal(sigaction(SIGPIPE, &ign, &old), 0);
    close_fd(&f->dst[0]);
    assert_int_equal(write(f->src[1], "x", 1), 1);
    assert_int_equal(kcf_half_pump(&f->h, f->src[0], f->dst[1]), KCF_PUMP_ERROR);
    assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
}

static void test_bad_state_is_error(void **state)
{
    struct fixture *f = *state;
    f->h.off = 5;
    f->h.len = 4;
    assert_int_equal(kcf_half_pump(&f->h, f->src[0], f->dst[1]), KCF_PUMP_ERROR);
    f->h.off = 0;
    f->h.len = KCF_HALF_BUF + 1;
    assert_int_equal(kcf_half_pump(&f->h, f->src[0], f->dst[1]), KCF_PUMP_ERROR);
    assert_int_equal(kcf_half_pump(NULL, f->src[0], f->dst[1]), KCF_PUMP_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bytes_pass_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eof_after_last_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_destination_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_destination_is_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_state_is_error, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
