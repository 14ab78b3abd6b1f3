/*
 * rx_test.c - the io_uring reactor (engine/io/rx.c) over real loopback sockets:
 * connect/accept/echo, recv timeout, refused connect, stale CQE after slot
 * reuse, close with a pending recv, cancel, timer order, a large send that
 * completes short, cross-thread wake, many concurrent connections.
 * Fails when io_uring is blocked here (seccomp, io_uring_disabled): volley needs it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rx.h"

#define LOOP_MS_MAX 5000        /* no test waits longer for an event */
#define EVENTS_MAX  64

struct log {
    struct rx_event ev[EVENTS_MAX];
    unsigned n;
};

static void log_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct log *l = ev->user;
    if (l->n < EVENTS_MAX)
        l->ev[l->n++] = *ev;
}

/* Run the loop until @p l holds @p n events (bounded in time). */
static void run_until(struct rx *rx, const unsigned *counter, unsigned n)
{
    uint64_t end = vl_clock_mono_ms() + LOOP_MS_MAX;
    while (*counter < n && vl_clock_mono_ms() < end)
        assert_true(rx_run_once(rx, 50) >= 0);
    assert_true(*counter >= n);
}

static struct rx *rx_new(uint32_t handles)
{
    struct rx *rx = NULL;
    struct rx_conf conf = { .handles_max = handles, .timers_max = 64 };
    int rc = rx_create(&rx, &conf);
    if (rc == -ENOSYS || rc == -EPERM)
        fail_msg("io_uring is blocked here (%s): volley cannot run", strerror(-rc));
    assert_int_equal(rc, 0);
    return rx;
}

static int listener_new(struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    *sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)sa, sizeof *sa), 0);
    socklen_t len = sizeof *sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &len), 0);
    assert_int_equal(listen(fd, 1024), 0);
    return fd;
}

static int tcp_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    return fd;
}

/* A connected pair: client handle (events to @p lc) and server handle (@p ls). */
static void pair_new(struct rx *rx, struct log *lc, struct log *ls, rx_handle_t *hc,
                     rx_handle_t *hs)
{
    struct sockaddr_in sa;
    struct log la = { .n = 0 };
    rx_handle_t hl;
    assert_int_equal(rx_open(rx, listener_new(&sa), log_cb, &la, &hl), 0);
    assert_int_equal(rx_accept_multishot(rx, hl), 0);
    assert_int_equal(rx_open(rx, tcp_socket(), log_cb, lc, hc), 0);
    assert_int_equal(rx_connect(rx, *hc, (struct sockaddr *)&sa, sizeof sa, 1000), 0);
    unsigned c0 = lc->n;
    run_until(rx, &lc->n, c0 + 1);
    run_until(rx, &la.n, 1);
    assert_int_equal(lc->ev[c0].op, RX_OP_CONNECT);
    assert_int_equal(lc->ev[c0].res, 0);
    assert_int_equal(la.ev[0].op, RX_OP_ACCEPT);
    assert_true(la.ev[0].res >= 0);
    assert_true(la.ev[0].more);
    assert_int_equal(rx_open(rx, la.ev[0].res, log_cb, ls, hs), 0);
    lc->n = c0;
    unsigned l0 = la.n;
    assert_int_equal(rx_close(rx, hl), 0);
    run_until(rx, &la.n, l0 + 1);
    assert_int_equal(la.ev[la.n - 1].op, RX_OP_CLOSE);     /* the only event after close */
}

static void test_echo(void **state)
{
    (void)state;
    struct rx *rx = rx_new(16);
    struct log lc = { .n = 0 }, ls = { .n = 0 };
    rx_handle_t hc, hs;
    pair_new(rx, &lc, &ls, &hc, &hs);
    char out[] = "EHLO there\r\n", in_s[64], in_c[64];
    assert_int_equal(rx_recv(rx, hs, in_s, sizeof in_s, 1000), 0);
    assert_int_equal(rx_recv(rx, hs, in_s, sizeof in_s, 1000), -EBUSY);  /* one per kind */
    assert_int_equal(rx_send(rx, hc, out, strlen(out), 1000), 0);
    run_until(rx, &ls.n, 1);
    assert_int_equal(ls.ev[0].op, RX_OP_RECV);
    assert_int_equal(ls.ev[0].res, (int)strlen(out));
    assert_memory_equal(in_s, out, strlen(out));
    assert_int_equal(rx_send(rx, hs, in_s, (size_t)ls.ev[0].res, 1000), 0);
    assert_int_equal(rx_recv(rx, hc, in_c, sizeof in_c, 1000), 0);
    run_until(rx, &lc.n, 2);                    /* client: send done, recv done */
    for (unsigned i = 0; i < 2; i++) {
        assert_true(lc.ev[i].op == RX_OP_SEND || lc.ev[i].op == RX_OP_RECV);
        assert_int_equal(lc.ev[i].res, (int)strlen(out));
    }
    assert_memory_equal(in_c, out, strlen(out));
    /* End of stream: the client closes, the server's recv reports 0. */
    assert_int_equal(rx_close(rx, hc), 0);
    assert_int_equal(rx_close(rx, hc), -EALREADY);
    assert_int_equal(rx_recv(rx, hs, in_s, sizeof in_s, 1000), 0);
    run_until(rx, &ls.n, 3);
    assert_int_equal(ls.ev[2].op, RX_OP_RECV);
    assert_int_equal(ls.ev[2].res, 0);
    assert_int_equal(rx_close(rx, hs), 0);
    run_until(rx, &ls.n, 4);
    assert_int_equal(rx_stats(rx).handles_open, 0);
    rx_destroy(rx);
}

static void test_recv_timeout(void **state)
{
    (void)state;
    struct rx *rx = rx_new(16);
    struct log lc = { .n = 0 }, ls = { .n = 0 };
    rx_handle_t hc, hs;
    pair_new(rx, &lc, &ls, &hc, &hs);
    char buf[16];
    uint64_t t0 = vl_clock_mono_ms();
    assert_int_equal(rx_recv(rx, hs, buf, sizeof buf, 100), 0);
    run_until(rx, &ls.n, 1);
    assert_int_equal(ls.ev[0].op, RX_OP_RECV);
    assert_int_equal(ls.ev[0].res, -ETIMEDOUT);
    assert_true(vl_clock_mono_ms() - t0 >= 90);
    assert_int_equal(rx_stats(rx).timeouts, 1);
    /* A cancelled recv (with a deadline) says cancelled, not timed out. */
    assert_int_equal(rx_recv(rx, hs, buf, sizeof buf, 2000), 0);
    assert_int_equal(rx_cancel(rx, hs, RX_OP_RECV), 0);
    assert_int_equal(rx_cancel(rx, hs, RX_OP_SEND), -ENOENT);
    run_until(rx, &ls.n, 2);
    assert_int_equal(ls.ev[1].res, -ECANCELED);
    assert_int_equal(rx_stats(rx).timeouts, 1);
    rx_close(rx, hc);
    rx_close(rx, hs);
    run_until(rx, &ls.n, 3);
    run_until(rx, &lc.n, 1);
    rx_destroy(rx);
}

static void test_connect_refused(void **state)
{
    (void)state;
    struct rx *rx = rx_new(4);
    /* A port bound but not listening refuses connections. */
    int fd = tcp_socket();
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    struct log l = { .n = 0 };
    rx_handle_t h;
    assert_int_equal(rx_open(rx, tcp_socket(), log_cb, &l, &h), 0);
    assert_int_equal(rx_connect(rx, h, (struct sockaddr *)&sa, sizeof sa, 1000), 0);
    run_until(rx, &l.n, 1);
    assert_int_equal(l.ev[0].op, RX_OP_CONNECT);
    assert_int_equal(l.ev[0].res, -ECONNREFUSED);
    assert_int_equal(rx_close(rx, h), 0);
    run_until(rx, &l.n, 2);
    close(fd);
    rx_destroy(rx);
}

static void test_stale_cqe_after_reuse(void **state)
{
    (void)state;
    struct rx *rx = rx_new(1);                  /* one slot: reuse is certain */
    struct log l1 = { .n = 0 }, l2 = { .n = 0 };
    rx_handle_t h1, h2;
    assert_int_equal(rx_open(rx, tcp_socket(), log_cb, &l1, &h1), 0);
    assert_int_equal(rx_open(rx, tcp_socket(), log_cb, &l2, &h2), -EAGAIN);
    assert_int_equal(rx_close(rx, h1), 0);
    run_until(rx, &l1.n, 1);
    assert_int_equal(l1.ev[0].op, RX_OP_CLOSE);
    assert_int_equal(rx_fd(rx, h1), -EBADF);
    assert_int_equal(rx_open(rx, tcp_socket(), log_cb, &l2, &h2), 0);
    assert_int_equal(h1 >> 32, h2 >> 32);       /* same slot ... */
    assert_int_not_equal(h1, h2);               /* ... new generation */
    assert_int_equal(rx_recv(rx, h1, &l1, 1, 0), -EBADF);
    /* A late completion for the slot's previous user: counted, dropped. */
    uint64_t before = rx_stats(rx).cqes_stale;
    assert_int_equal(rx_nop_raw(rx, rx_tag(RX_OP_RECV, (uint32_t)(h1 >> 32), (uint32_t)h1)), 0);
    assert_int_equal(rx_nop_raw(rx, rx_tag(RX_OP_RECV, (uint32_t)(h2 >> 32), (uint32_t)h2)),
                     -EINVAL);
    uint64_t end = vl_clock_mono_ms() + LOOP_MS_MAX;
    while (rx_stats(rx).cqes_stale == before && vl_clock_mono_ms() < end)
        rx_run_once(rx, 50);
    assert_int_equal(rx_stats(rx).cqes_stale, before + 1);
    assert_int_equal(l2.n, 0);
    assert_int_equal(l1.n, 1);
    rx_close(rx, h2);
    run_until(rx, &l2.n, 1);
    rx_destroy(rx);
}

static void test_close_with_pending_recv(void **state)
{
    (void)state;
    struct rx *rx = rx_new(8);
    struct log lc = { .n = 0 }, ls = { .n = 0 };
    rx_handle_t hc, hs;
    pair_new(rx, &lc, &ls, &hc, &hs);
    char *buf = malloc(64);                     /* ASan: freed only after the close event */
    assert_non_null(buf);
    assert_int_equal(rx_recv(rx, hs, buf, 64, 0), 0);
    assert_int_equal(rx_poll(rx, hc, 0x001 /* POLLIN */), 0);
    rx_run_once(rx, 0);                         /* submitted: the kernel holds them */
    assert_int_equal(rx_close(rx, hs), 0);
    assert_int_equal(rx_close(rx, hc), 0);
    assert_int_equal(rx_send(rx, hs, "x", 1, 0), -EBADF);
    run_until(rx, &ls.n, 1);
    run_until(rx, &lc.n, 1);
    assert_int_equal(ls.n, 1);                  /* no RECV event after rx_close */
    assert_int_equal(ls.ev[0].op, RX_OP_CLOSE);
    assert_int_equal(lc.ev[0].op, RX_OP_CLOSE);
    assert_int_equal(rx_stats(rx).handles_open, 0);
    free(buf);
    rx_destroy(rx);
}

static struct log timer_log;

static void timer_log_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    assert_int_equal(ev->op, RX_OP_TIMER);
    if (timer_log.n < EVENTS_MAX)
        timer_log.ev[timer_log.n++] = (struct rx_event){ .h = ev->h, .res = (int)(intptr_t)ev->user };
}

static void test_timers_in_order(void **state)
{
    (void)state;
    struct rx *rx = rx_new(4);
    static const struct { uint64_t delay_ms; int label; } add[] = {
        { 60, 4 }, { 20, 1 }, { 40, 3 }, { 20, 2 }, { 30, 99 },
    };
    rx_timer_t ids[5];
    timer_log.n = 0;
    for (int i = 0; i < 5; i++)
        assert_int_equal(rx_timer_add(rx, add[i].delay_ms, timer_log_cb,
                                      (void *)(intptr_t)add[i].label, &ids[i]), 0);
    assert_int_equal(rx_timer_cancel(rx, ids[4]), 0);      /* label 99 never fires */
    uint64_t t0 = vl_clock_mono_ms();
    run_until(rx, &timer_log.n, 4);
    assert_true(vl_clock_mono_ms() - t0 >= 55);
    for (int i = 0; i < 4; i++)
        assert_int_equal(timer_log.ev[i].res, i + 1);
    assert_int_equal(rx_timer_cancel(rx, ids[0]), VL_E_NOTFOUND);   /* fired */
    rx_run_once(rx, 20);
    assert_int_equal(timer_log.n, 4);
    rx_destroy(rx);
}

/* 1 MiB through a small socket buffer: sends complete short and are continued. */
static void test_large_send(void **state)
{
    (void)state;
    enum { BIG = 1 << 20 };
    struct rx *rx = rx_new(8);
    struct log lc = { .n = 0 }, ls = { .n = 0 };
    rx_handle_t hc, hs;
    pair_new(rx, &lc, &ls, &hc, &hs);
    int small = 4096;
    setsockopt(rx_fd(rx, hc), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    unsigned char *out = malloc(BIG), *in = malloc(BIG);
    assert_non_null(out);
    assert_non_null(in);
    for (size_t i = 0; i < BIG; i++)
        out[i] = (unsigned char)(i * 7 + i / 4093);
    assert_int_equal(rx_send(rx, hc, out, BIG, 4 * LOOP_MS_MAX), 0);
    size_t got = 0;
    bool recv_pending = false;
    uint64_t end = vl_clock_mono_ms() + 4 * LOOP_MS_MAX;
    while ((got < BIG || lc.n == 0) && vl_clock_mono_ms() < end) {
        if (got < BIG && !recv_pending) {
            size_t want = BIG - got > 65536 ? 65536 : BIG - got;
            assert_int_equal(rx_recv(rx, hs, in + got, want, LOOP_MS_MAX), 0);
            recv_pending = true;
        }
        assert_true(rx_run_once(rx, 50) >= 0);
        if (ls.n) {
            assert_true(ls.ev[0].res > 0);
            got += (size_t)ls.ev[0].res;
            ls.n = 0;
            recv_pending = false;
        }
    }
    assert_int_equal(got, BIG);
    assert_int_equal(lc.n, 1);
    assert_int_equal(lc.ev[0].op, RX_OP_SEND);
    assert_int_equal(lc.ev[0].res, BIG);
    assert_memory_equal(in, out, BIG);
    assert_true(rx_stats(rx).sends_resubmitted > 0);
    rx_close(rx, hc);
    rx_close(rx, hs);
    run_until(rx, &lc.n, 2);
    run_until(rx, &ls.n, 1);
    free(out);
    free(in);
    rx_destroy(rx);
}

static unsigned wakes;
static void wake_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    assert_int_equal(ev->op, RX_OP_WAKE);
    wakes++;
}

static void *wake_thread(void *arg)
{
    usleep(20000);
    return (void *)(intptr_t)rx_wake(arg);
}

static void test_wake_from_thread(void **state)
{
    (void)state;
    struct rx *rx = NULL;
    struct rx_conf conf = { .handles_max = 2, .timers_max = 2, .wake_cb = wake_cb };
    int rc = rx_create(&rx, &conf);
    assert_int_equal(rc, 0);
    pthread_t t;
    wakes = 0;
    assert_int_equal(pthread_create(&t, NULL, wake_thread, rx), 0);
    run_until(rx, &wakes, 1);
    void *ret;
    pthread_join(t, &ret);
    assert_int_equal((intptr_t)ret, 0);
    rx_destroy(rx);
}

/* Many clients at once: each connects, sends 100 bytes, gets them echoed. */
enum { CONNS = 300, MSG = 100 };
struct peer {
    rx_handle_t h;
    unsigned char buf[MSG];
    size_t got;
    bool is_server, done;
};
static struct peer peers[2 * CONNS];
static unsigned peers_used, clients_done, closed;
static rx_handle_t many_listener;

static void many_cb(struct rx *rx, const struct rx_event *ev)
{
    struct peer *p = ev->user;
    switch (ev->op) {
    case RX_OP_ACCEPT:
        assert_true(ev->res >= 0);
        assert_true(peers_used < 2 * CONNS);
        p = &peers[peers_used++];
        *p = (struct peer){ .is_server = true };
        assert_int_equal(rx_open(rx, ev->res, many_cb, p, &p->h), 0);
        assert_int_equal(rx_recv(rx, p->h, p->buf, MSG, 3000), 0);
        if (!ev->more)
            assert_int_equal(rx_accept_multishot(rx, many_listener), 0);
        break;
    case RX_OP_CONNECT:
        assert_int_equal(ev->res, 0);
        memset(p->buf, (int)(p - peers) & 0xff, MSG);
        assert_int_equal(rx_send(rx, p->h, p->buf, MSG, 3000), 0);
        break;
    case RX_OP_SEND:
        assert_int_equal(ev->res, MSG);
        if (!p->is_server)
            assert_int_equal(rx_recv(rx, p->h, p->buf, MSG, 3000), 0);
        break;
    case RX_OP_RECV:
        assert_true(ev->res > 0);
        p->got += (size_t)ev->res;
        if (p->got < MSG) {
            assert_int_equal(rx_recv(rx, p->h, p->buf + p->got, MSG - p->got, 3000), 0);
        } else if (p->is_server) {
            assert_int_equal(rx_send(rx, p->h, p->buf, MSG, 3000), 0);
        } else {
            for (int i = 0; i < MSG; i++)
                assert_int_equal(p->buf[i], (int)(p - peers) & 0xff);
            p->done = true;
            clients_done++;
            assert_int_equal(rx_close(rx, p->h), 0);
        }
        break;
    case RX_OP_CLOSE:
        closed++;
        break;
    default:
        fail_msg("unexpected op %d", ev->op);
    }
}

static void test_many_connections(void **state)
{
    (void)state;
    struct rx *rx = rx_new(2 * CONNS + 1);
    struct sockaddr_in sa;
    peers_used = CONNS;                         /* peers[0..CONNS) are the clients */
    clients_done = closed = 0;
    assert_int_equal(rx_open(rx, listener_new(&sa), many_cb, NULL, &many_listener), 0);
    assert_int_equal(rx_accept_multishot(rx, many_listener), 0);
    for (int i = 0; i < CONNS; i++) {
        peers[i] = (struct peer){ .is_server = false };
        assert_int_equal(rx_open(rx, tcp_socket(), many_cb, &peers[i], &peers[i].h), 0);
        assert_int_equal(rx_connect(rx, peers[i].h, (struct sockaddr *)&sa, sizeof sa, 3000), 0);
    }
    uint64_t end = vl_clock_mono_ms() + 4 * LOOP_MS_MAX;
    while (clients_done < CONNS && vl_clock_mono_ms() < end)
        assert_true(rx_run_once(rx, 50) >= 0);
    assert_int_equal(clients_done, CONNS);
    assert_int_equal(peers_used, 2 * CONNS);
    rx_destroy(rx);                             /* closes the server side still open */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo),
        cmocka_unit_test(test_recv_timeout),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_stale_cqe_after_reuse),
        cmocka_unit_test(test_close_with_pending_recv),
        cmocka_unit_test(test_timers_in_order),
        cmocka_unit_test(test_large_send),
        cmocka_unit_test(test_wake_from_thread),
        cmocka_unit_test(test_many_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
