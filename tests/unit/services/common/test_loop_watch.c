/* The polling loop's descriptor watches on a real server's loop thread:
 * an idle descriptor (ksvc_loop_idle, k_proxy's kept-alive upstream
 * connections between requests) calls nobody when it reports an event and
 * leaves the epoll set then; watched again it reports what is pending; and
 * a descriptor closed after ksvc_loop_watch(fd, 0) and reused by a new
 * socket is watched afresh, never mistaken for the old one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "services/common/http.h"
#include "services/common/http_int.h"

/* What the loop thread saw; read by the test once `done` is set. */
struct scenario {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int step;
    int a[2], c[2];
    int idle_calls;          /* calls for the first socket while it was idle */
    int calls_after_rewatch; /* ... after it was watched again */
    bool left_set_when_idle; /* in_set was 0 after its idle event */
    bool reused_number;      /* the second socket got the first one's number */
    int reused_calls;        /* calls for the second socket */
    char got[4];
};

static struct scenario sc = {.lock = PTHREAD_MUTEX_INITIALIZER,
                             .cond = PTHREAD_COND_INITIALIZER,
                             .a = {-1, -1},
                             .c = {-1, -1}};

static void on_first(void *arg, int fd, uint32_t events)
{
    (void)arg;
    (void)events;
    char b;
    if (read(fd, &b, 1) == 1)
        sc.got[0] = b;
    if (sc.step == 0)
        sc.idle_calls++;
    else
        sc.calls_after_rewatch++;
}

static void on_second(void *arg, int fd, uint32_t events)
{
    (void)arg;
    (void)events;
    char b;
    if (read(fd, &b, 1) == 1)
        sc.got[1] = b;
    sc.reused_calls++;
}

static void step(void *arg)
{
    struct ksvc_loop *loop = arg;
    if (sc.step == 0) {
        /* the idle socket's event came and went: nobody called, out of the set */
        sc.left_set_when_idle = loop->watches[sc.a[0]].in_set == 0;
        sc.step = 1;
        ksvc_loop_watch(loop, sc.a[0], EPOLLIN, on_first, NULL); /* the byte is still pending */
        ksvc_loop_timer(loop, ksvc_now_ms() + 100, step, loop);
        return;
    }
    if (sc.step == 1) {
        /* idle again, then closed the way k_proxy's close callback does it */
        int old = sc.a[0];
        ksvc_loop_idle(loop, old);
        ksvc_loop_watch(loop, old, 0, NULL, NULL);
        close(sc.a[0]);
        sc.a[0] = -1;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sc.c) == 0) {
            /* the new socket takes the old number, as the kernel's lowest-free rule does */
            if (sc.c[0] != old && dup2(sc.c[0], old) == old) {
                close(sc.c[0]);
                sc.c[0] = old;
            }
            sc.reused_number = sc.c[0] == old;
            ksvc_loop_watch(loop, sc.c[0], EPOLLIN, on_second, NULL);
            if (write(sc.c[1], "y", 1) != 1) {
            }
        }
        sc.step = 2;
        ksvc_loop_timer(loop, ksvc_now_ms() + 100, step, loop);
        return;
    }
    if (sc.c[0] >= 0)
        ksvc_loop_watch(loop, sc.c[0], 0, NULL, NULL);
    pthread_mutex_lock(&sc.lock);
    sc.done = true;
    pthread_cond_signal(&sc.cond);
    pthread_mutex_unlock(&sc.lock);
}

static int loop_start(void *ctx, struct ksvc_loop *loop, unsigned index)
{
    (void)ctx;
    (void)index;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sc.a) != 0)
        return -1;
    /* watched, then idle with a byte arriving: the kept-alive connection
     * whose peer speaks while no request is in flight */
    if (ksvc_loop_watch(loop, sc.a[0], EPOLLIN, on_first, NULL) != 0)
        return -1;
    ksvc_loop_idle(loop, sc.a[0]);
    if (write(sc.a[1], "x", 1) != 1)
        return -1;
    ksvc_loop_timer(loop, ksvc_now_ms() + 100, step, loop);
    return 0;
}

static void handler(void *ctx, const struct ksvc_request *req, struct ksvc_response *resp)
{
    (void)ctx;
    (void)req;
    ksvc_reply_error(resp, 404, "not_found", "nothing here");
}

static void test_idle_watches_and_reused_descriptors(void **state)
{
    (void)state;
    struct ksvc_server_cfg cfg = {.service = "test_loop",
                                  .host = "127.0.0.1",
                                  .port = 0,
                                  .threads = 1,
                                  .workers = 1,
                                  .handler = handler,
                                  .loop_start = loop_start};
    struct ksvc_server *s = NULL;
    char err[256] = "";
    assert_int_equal(ksvc_server_start(&cfg, &s, err, sizeof(err)), 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&sc.lock);
    while (!sc.done)
        if (pthread_cond_timedwait(&sc.cond, &sc.lock, &until) != 0)
            break;
    bool done = sc.done;
    pthread_mutex_unlock(&sc.lock);
    ksvc_server_stop(s);
    assert_true(done);
    assert_int_equal(sc.idle_calls, 0);
    assert_true(sc.left_set_when_idle);
    assert_int_equal(sc.calls_after_rewatch, 1);
    assert_int_equal(sc.got[0], 'x');
    assert_true(sc.reused_number);
    assert_int_equal(sc.reused_calls, 1);
    assert_int_equal(sc.got[1], 'y');
    for (int i = 0; i < 2; i++) {
        if (sc.a[i] >= 0)
            close(sc.a[i]);
        if (sc.c[i] >= 0)
            close(sc.c[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_watches_and_reused_descriptors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
