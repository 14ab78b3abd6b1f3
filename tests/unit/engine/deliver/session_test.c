/*
 * session_test.c - one outbound session (engine/deliver/session.c) against a
 * scripted loopback peer, through its owner interface (struct session_owner):
 * every report reaches the owner from a reactor event, never from inside the
 * owner's own call. Covers a connect the kernel refuses at once (reported
 * from the CLOSE event), a refused connect, a full attempt (fate, attempt
 * done, READY again, QUIT), pooling with QUIT by the owner, and the idle
 * timeout leaving the pool by itself.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "clock.h"
#include "session.h"

#define LOOP_MS_MAX 5000        /* no test waits longer for an event */
#define CALLS_MAX   32

enum call_kind { CALL_FATE, CALL_DONE, CALL_HOST_FAILED, CALL_READY, CALL_UNPOOLED,
                 CALL_CLOSED };

struct call {
    enum call_kind kind;
    bool first, by_close, ever_ready, failed;
    uint32_t rcpt, attempts_done;
    struct smtp_fate fate;
    char text[200];
    struct host *host;
    struct session *s;
};

/* The test's owner: records every report, answers READY from a script. */
struct owner {
    struct call calls[CALLS_MAX];
    unsigned n;
    bool in_owner_call;            /* the test is inside session_open/begin/quit */
    bool reported_inline;          /* a report arrived while in_owner_call */
    enum session_next next[4];     /* answers to READY, in order */
    unsigned next_n;
    struct attempt *give;          /* with SESSION_NEXT_BEGIN */
    struct session *pooled;
};

static struct call *owner_add(struct owner *o, enum call_kind kind)
{
    assert_true(o->n < CALLS_MAX);
    if (o->in_owner_call)
        o->reported_inline = true;
    struct call *c = &o->calls[o->n++];
    memset(c, 0, sizeof *c);
    c->kind = kind;
    return c;
}

static void on_fate(void *ctx, struct attempt *a, uint32_t i, const struct smtp_fate *f)
{
    (void)a;
    struct call *c = owner_add(ctx, CALL_FATE);
    c->rcpt = i;
    c->fate = *f;
}

static void on_done(void *ctx, struct attempt *a, bool by_close)
{
    (void)a;
    owner_add(ctx, CALL_DONE)->by_close = by_close;
}

static void on_host_failed(void *ctx, struct host *h, const struct smtp_fate *why)
{
    struct call *c = owner_add(ctx, CALL_HOST_FAILED);
    c->host = h;
    c->fate = *why;
    snprintf(c->text, sizeof c->text, "%.*s", (int)why->text_len, why->text ? why->text : "");
}

static enum session_next on_ready(void *ctx, struct session *s, struct host *h, bool first,
                                  uint32_t attempts_done, struct attempt **next)
{
    struct owner *o = ctx;
    struct call *c = owner_add(o, CALL_READY);
    c->host = h;
    c->s = s;
    c->first = first;
    c->attempts_done = attempts_done;
    assert_true(o->next_n < sizeof o->next / sizeof o->next[0]);
    enum session_next what = o->next[o->next_n++];
    if (what == SESSION_NEXT_BEGIN)
        *next = o->give;
    if (what == SESSION_NEXT_IDLE)
        o->pooled = s;
    return what;
}

static void on_unpooled(void *ctx, struct session *s, struct host *h)
{
    struct owner *o = ctx;
    struct call *c = owner_add(o, CALL_UNPOOLED);
    c->s = s;
    c->host = h;
    o->pooled = NULL;
}

static void on_closed(void *ctx, struct host *h, bool ever_ready, bool failed, int egress)
{
    struct call *c = owner_add(ctx, CALL_CLOSED);
    c->host = h;
    c->ever_ready = ever_ready;
    c->failed = failed;
    assert_int_equal(egress, -1);              /* opened without an egress address */
}

struct fixture {
    struct rx *rx;
    struct smtp_client_conf cc;
    struct session_env env;
    struct owner owner;
    struct host *host;             /* opaque to the session: any distinct pointer */
    int host_tag;
};

static void fixture_init(struct fixture *fx, uint64_t idle_ms)
{
    memset(fx, 0, sizeof *fx);
    struct rx_conf conf = { .handles_max = 8, .timers_max = 16 };
    int rc = rx_create(&fx->rx, &conf);
    if (rc == -ENOSYS || rc == -EPERM)
        fail_msg("io_uring is blocked here (%s): volley cannot run", strerror(-rc));
    assert_int_equal(rc, 0);
    fx->cc = (struct smtp_client_conf){ .helo_name = "client.test", .helo_name_len = 11 };
    fx->host = (struct host *)&fx->host_tag;
    fx->env = (struct session_env){
        .rx = fx->rx, .client_conf = &fx->cc, .connect_ms_timeout = 2000,
        .idle_ms_max = idle_ms,
        .owner = { .ctx = &fx->owner, .fate = on_fate, .attempt_done = on_done,
                   .host_failed = on_host_failed, .ready = on_ready,
                   .unpooled = on_unpooled, .closed = on_closed },
    };
}

static void fixture_fini(struct fixture *fx)
{
    rx_destroy(fx->rx);
    session_env_fini(&fx->env);
}

/* Run the reactor until the owner has heard @p kind (bounded in time). */
static void run_until_call(struct fixture *fx, enum call_kind kind)
{
    uint64_t end = vl_clock_mono_ms() + LOOP_MS_MAX;
    for (;;) {
        for (unsigned i = 0; i < fx->owner.n; i++)
            if (fx->owner.calls[i].kind == kind)
                return;
        if (vl_clock_mono_ms() >= end)
            fail_msg("the owner never heard report %d", (int)kind);
        assert_true(rx_run_once(fx->rx, 20) >= 0);
    }
}

static int open_session(struct fixture *fx, const struct sockaddr *sa, socklen_t len)
{
    fx->owner.in_owner_call = true;
    int rc = session_open(&fx->env, fx->host, sa, len, "127.0.0.1", "mx.test", VL_TLS_MAY, -1);
    fx->owner.in_owner_call = false;
    return rc;
}

static struct sockaddr_in loopback_port(int *fd, bool listening)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(*fd >= 0);
    assert_int_equal(bind(*fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(*fd, (struct sockaddr *)&sa, &len), 0);
    if (listening) {
        assert_int_equal(listen(*fd, 4), 0);
        struct timeval tv = { .tv_sec = LOOP_MS_MAX / 1000 };   /* accept() gives up */
        assert_int_equal(setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    }
    return sa;
}

/* The host failure and then the close, both from the reactor. */
static void check_connect_failure(struct fixture *fx)
{
    struct owner *o = &fx->owner;
    assert_int_equal(o->n, 0);                 /* nothing inside session_open() */
    run_until_call(fx, CALL_CLOSED);
    assert_false(o->reported_inline);
    assert_int_equal(o->n, 2);
    assert_int_equal(o->calls[0].kind, CALL_HOST_FAILED);
    assert_ptr_equal(o->calls[0].host, fx->host);
    assert_int_equal(o->calls[0].fate.code, 451);
    assert_string_equal(o->calls[0].fate.status, "4.4.1");
    assert_non_null(strstr(o->calls[0].text, "connect to 127.0.0.1"));
    assert_int_equal(o->calls[1].kind, CALL_CLOSED);
    assert_ptr_equal(o->calls[1].host, fx->host);
    assert_false(o->calls[1].ever_ready);
    assert_true(o->calls[1].failed);
}

static void test_connect_refused_at_once(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 1000);
    /* An address the reactor refuses before any SQE (too long): rx_connect()
     * fails inside session_open(), which must still report from the reactor. */
    union { struct sockaddr sa; char bytes[512]; } big;
    memset(&big, 0, sizeof big);
    big.sa.sa_family = AF_INET;
    assert_int_equal(open_session(&fx, &big.sa, 300), 0);
    check_connect_failure(&fx);
    fixture_fini(&fx);
}

static void test_connect_refused_by_peer(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 1000);
    int fd;
    struct sockaddr_in sa = loopback_port(&fd, false);   /* bound, not listening */
    assert_int_equal(open_session(&fx, (struct sockaddr *)&sa, sizeof sa), 0);
    check_connect_failure(&fx);
    close(fd);
    fixture_fini(&fx);
}

/* The scripted peer: read one CRLF line (or up to the end of DATA), running
 * the reactor meanwhile. */
static void peer_read(struct fixture *fx, int fd, const char *until, char *buf, size_t cap)
{
    size_t n = 0;
    uint64_t end = vl_clock_mono_ms() + LOOP_MS_MAX;
    buf[0] = '\0';
    while (!strstr(buf, until)) {
        if (vl_clock_mono_ms() >= end)
            fail_msg("peer: no \"%s\" from the session (got \"%s\")", until, buf);
        assert_true(rx_run_once(fx->rx, 10) >= 0);
        ssize_t k = recv(fd, buf + n, cap - 1 - n, MSG_DONTWAIT);
        if (k > 0) {
            n += (size_t)k;
            buf[n] = '\0';
        }
        assert_true(n < cap - 1);
    }
}

static void peer_say(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Connect, greet, EHLO: the session is READY (first). */
static int peer_greet(struct fixture *fx, int lfd, struct sockaddr_in *sa)
{
    char buf[4096];
    assert_int_equal(open_session(fx, (struct sockaddr *)sa, sizeof *sa), 0);
    assert_int_equal(fx->owner.n, 0);
    assert_true(rx_run_once(fx->rx, 0) >= 0);          /* submit the connect */
    int fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    peer_say(fd, "220 peer.test ESMTP\r\n");
    peer_read(fx, fd, "\r\n", buf, sizeof buf);
    assert_memory_equal(buf, "EHLO client.test\r\n", 18);
    peer_say(fd, "250-peer.test\r\n250 PIPELINING\r\n");
    run_until_call(fx, CALL_READY);
    return fd;
}

static void test_attempt_then_quit(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 1000);
    struct owner *o = &fx.owner;
    static const char body[] = "Subject: t\r\n\r\nhello\r\n";
    struct vl_queue_msg m = { .id = 1, .return_path = "from@client.test",
                              .return_path_len = 16, .body = (const uint8_t *)body,
                              .body_len = sizeof body - 1 };
    struct vl_queue_rcpt r = { .id = 7, .msg = &m, .addr = "to@peer.test", .addr_len = 12,
                               .domain = "peer.test", .domain_len = 9 };
    struct attempt a = { .msg = &m, .rcpt_count = 1, .rcpts = { &r } };
    o->give = &a;
    o->next[0] = SESSION_NEXT_BEGIN;
    o->next[1] = SESSION_NEXT_QUIT;
    int lfd;
    struct sockaddr_in sa = loopback_port(&lfd, true);
    int fd = peer_greet(&fx, lfd, &sa);
    assert_true(o->calls[0].first);
    assert_int_equal(o->calls[0].attempts_done, 0);
    char buf[4096];
    peer_read(&fx, fd, "DATA\r\n", buf, sizeof buf);    /* pipelined MAIL, RCPT, DATA */
    assert_non_null(strstr(buf, "MAIL FROM:<from@client.test>"));
    assert_non_null(strstr(buf, "RCPT TO:<to@peer.test>"));
    peer_say(fd, "250 ok\r\n250 ok\r\n354 go\r\n");
    peer_read(&fx, fd, "\r\n.\r\n", buf, sizeof buf);
    assert_non_null(strstr(buf, "hello"));
    peer_say(fd, "250 2.0.0 queued\r\n");
    peer_read(&fx, fd, "QUIT\r\n", buf, sizeof buf);
    peer_say(fd, "221 bye\r\n");
    close(fd);
    run_until_call(&fx, CALL_CLOSED);
    assert_false(o->reported_inline);
    static const enum call_kind want[] = { CALL_READY, CALL_FATE, CALL_DONE, CALL_READY,
                                           CALL_CLOSED };
    assert_int_equal(o->n, sizeof want / sizeof want[0]);
    for (unsigned i = 0; i < o->n; i++)
        assert_int_equal(o->calls[i].kind, want[i]);
    assert_int_equal(o->calls[1].fate.kind, SMTP_FATE_DELIVERED);
    assert_int_equal(o->calls[1].rcpt, 0);
    assert_false(o->calls[2].by_close);
    assert_false(o->calls[3].first);
    assert_int_equal(o->calls[3].attempts_done, 1);
    assert_true(o->calls[4].ever_ready);
    assert_false(o->calls[4].failed);
    close(lfd);
    fixture_fini(&fx);
}

static void test_pooled_quit_by_owner(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 60000);
    struct owner *o = &fx.owner;
    o->next[0] = SESSION_NEXT_IDLE;
    int lfd;
    struct sockaddr_in sa = loopback_port(&lfd, true);
    int fd = peer_greet(&fx, lfd, &sa);
    assert_non_null(o->pooled);
    o->in_owner_call = true;
    session_quit_idle(o->pooled);               /* the owner took it out of its pool */
    o->in_owner_call = false;
    char buf[256];
    peer_read(&fx, fd, "QUIT\r\n", buf, sizeof buf);
    peer_say(fd, "221 bye\r\n");
    close(fd);
    run_until_call(&fx, CALL_CLOSED);
    assert_false(o->reported_inline);
    assert_int_equal(o->n, 2);                  /* READY, CLOSED: no UNPOOLED */
    assert_int_equal(o->calls[1].kind, CALL_CLOSED);
    assert_true(o->calls[1].ever_ready);
    assert_false(o->calls[1].failed);
    close(lfd);
    fixture_fini(&fx);
}

static void test_idle_timeout_leaves_pool(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, 50);
    struct owner *o = &fx.owner;
    o->next[0] = SESSION_NEXT_IDLE;
    int lfd;
    struct sockaddr_in sa = loopback_port(&lfd, true);
    int fd = peer_greet(&fx, lfd, &sa);
    struct session *pooled = o->pooled;
    assert_non_null(pooled);
    run_until_call(&fx, CALL_UNPOOLED);         /* the idle timer, by itself */
    assert_ptr_equal(o->calls[1].s, pooled);
    assert_ptr_equal(o->calls[1].host, fx.host);
    char buf[256];
    peer_read(&fx, fd, "QUIT\r\n", buf, sizeof buf);
    peer_say(fd, "221 bye\r\n");
    close(fd);
    run_until_call(&fx, CALL_CLOSED);
    assert_int_equal(o->n, 3);
    assert_false(o->calls[2].failed);
    close(lfd);
    fixture_fini(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_refused_at_once),
        cmocka_unit_test(test_connect_refused_by_peer),
        cmocka_unit_test(test_attempt_then_quit),
        cmocka_unit_test(test_pooled_quit_by_owner),
        cmocka_unit_test(test_idle_timeout_leaves_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
