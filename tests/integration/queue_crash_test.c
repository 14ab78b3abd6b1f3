/* queue_crash_test.c - SIGKILL a child that enqueues in a loop, at random
 * moments, 24 times. After each kill: the queue opens cleanly, and every
 * enqueue that had returned success (reported through a pipe only after
 * vl_queue_enqueue() returned 0) is present with all its recipients and an
 * intact body. test_item5_sigkill_all_or_none (issue 9 item 5) does the same
 * with messages that always span several shards and checks that every
 * message in the queue, acknowledged or not, is there (and leasable) in all
 * its shards or in none. VOLLEY_SEED replays a run. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "volley/error.h"
#include "volley/queue.h"

#define KILLS 24
#define ACKS_MAX 200000
#define RCPTS_MAX 5

struct ack { uint64_t seq, id; };

static char g_dir[64];
static unsigned g_seed, g_seed0;   /* g_seed0: as given, for replay */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

/* Message seq's body and recipients are a pure function of seq. */
static size_t body_make(uint64_t seq, char *out, size_t cap)
{
    int n = snprintf(out, cap, "Subject: crash %llu\r\nFrom: s@x.org\r\n\r\n",
                     (unsigned long long)seq);
    size_t len = (size_t)n, lines = 1 + seq % 40;
    for (size_t i = 0; i < lines && len + 80 < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "line %zu of message %llu\r\n", i,
                                (unsigned long long)seq);
    return len;
}

static size_t rcpts_make(uint64_t seq, char addrs[RCPTS_MAX][64])
{
    size_t n = 1 + seq % RCPTS_MAX;
    for (size_t j = 0; j < n; j++)
        snprintf(addrs[j], 64, "r%llu.%zu@d%llu.org", (unsigned long long)seq, j,
                 (unsigned long long)((seq + j) % 13));
    return n;
}

static void child_run(int fd, uint64_t seq0)
{
    struct vl_queue *q;
    if (vl_queue_open(g_dir, 3, VL_QUEUE_CREATE, &q) != 0)
        _exit(3);
    static char body[4096];
    char addrs[RCPTS_MAX][64];
    const char *r[RCPTS_MAX];
    for (uint64_t seq = seq0;; seq++) {
        size_t n = rcpts_make(seq, addrs);
        for (size_t j = 0; j < n; j++)
            r[j] = addrs[j];
        struct vl_queue_new_msg m = { "s@x.org", 7, body, body_make(seq, body, sizeof body),
                                      0, r, NULL, n };
        struct ack a = { seq, 0 };
        if (vl_queue_enqueue(q, &m, 1000 + seq, &a.id) != 0)
            _exit(4);
        if (write(fd, &a, sizeof a) != (ssize_t)sizeof a)   /* only after success */
            _exit(5);
    }
}

/* Check every acknowledged message: recipients via show, bodies via lease. */
static void verify(const struct ack *acks, size_t nacks)
{
    struct vl_queue *q;
    int rc = vl_queue_open(g_dir, 3, 0, &q);
    if (rc == VL_E_NOTFOUND && nacks == 0)
        return;     /* killed before the queue's meta file existed: nothing was promised */
    if (rc != 0)
        fail_msg("VOLLEY_SEED=%u: reopen after SIGKILL: %s", g_seed0, vl_strerror(rc));
    static char body[4096];
    char addrs[RCPTS_MAX][64];
    for (size_t i = 0; i < nacks; i++) {
        struct vl_queue_msg_info mi;
        struct vl_queue_rcpt_info ri[RCPTS_MAX];
        size_t nr, n = rcpts_make(acks[i].seq, addrs);
        rc = vl_queue_show(q, acks[i].id, &mi, ri, RCPTS_MAX, &nr);
        if (rc != 0 || nr != n || mi.rcpts_total != n)
            fail_msg("VOLLEY_SEED=%u: acked message %llu lost or partial (rc %d, %zu of %zu)",
                     g_seed0,
                     (unsigned long long)acks[i].seq, rc, nr, n);
        for (size_t j = 0; j < n; j++) {
            int found = 0;
            for (size_t k = 0; k < nr; k++)
                found |= strcmp(ri[k].addr, addrs[j]) == 0;
            if (!found)
                fail_msg("VOLLEY_SEED=%u: message %llu lost %s", g_seed0,
                         (unsigned long long)acks[i].seq, addrs[j]);
        }
    }
    struct vl_queue_check chk;
    rc = vl_queue_check(q, &chk);
    if (rc != 0 || chk.problems != 0)
        fail_msg("VOLLEY_SEED=%u: invariants broken after SIGKILL (rc %d): %s", g_seed0, rc,
                 chk.first);
    /* Every body that can be leased is intact (its seq is in its Subject). */
    for (unsigned k = 0; k < 3; k++) {
        struct vl_queue_shard *s = vl_queue_shard(q, k);
        struct vl_queue_batch *b;
        int n = vl_queue_lease(s, UINT64_MAX, VL_QUEUE_LEASE_MAX, &b);
        assert_true(n >= 0);
        for (size_t m = 0; b && m < b->msg_count; m++) {
            unsigned long long seq;
            assert_int_equal(sscanf((const char *)b->msgs[m].body, "Subject: crash %llu", &seq), 1);
            size_t len = body_make(seq, body, sizeof body);
            assert_int_equal(b->msgs[m].body_len, len);
            assert_memory_equal(b->msgs[m].body, body, len);
        }
        vl_queue_batch_release(s, b);
    }
    vl_queue_close(q);
}

static void test_sigkill_loop(void **state)
{
    (void)state;
    static struct ack acks[ACKS_MAX];
    size_t nacks = 0;
    uint64_t seq0 = 1;
    for (int round = 0; round < KILLS; round++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            child_run(p[1], seq0);
        }
        close(p[1]);
        struct timespec ts = { 0, (long)(5 + rand_r(&g_seed) % 120) * 1000000L };
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);                      /* only our own child, by pid */
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!WIFSIGNALED(st))
            fail_msg("VOLLEY_SEED=%u: child exited %d before the kill", g_seed0,
                     WEXITSTATUS(st));
        struct ack a;
        uint64_t last = seq0 - 1;
        while (read(p[0], &a, sizeof a) == (ssize_t)sizeof a && nacks < ACKS_MAX) {
            acks[nacks++] = a;
            last = a.seq;
        }
        close(p[0]);
        seq0 = last + 2;                         /* skip the one in flight at the kill */
        verify(acks, nacks);
    }
    print_message("VOLLEY_SEED=%u: %d kills, %zu acknowledged enqueues checked\n", g_seed0,
                  KILLS, nacks);
    assert_true(nacks > 0);
}

/* ---- item 5: a multi-shard enqueue is all or nothing across crashes ---- */

#define ATOMIC_KILLS 30
#define ATOMIC_SHARDS 3
#define ATOMIC_RCPTS_MAX 6
#define ATOMIC_LIST_MAX 1000

static char g_dir2[96];

/* Message seq has 2..ATOMIC_RCPTS_MAX recipients over 13 domains: always
 * several shards (at least two domains). */
static size_t atomic_rcpts(uint64_t seq, char addrs[ATOMIC_RCPTS_MAX][64])
{
    size_t n = 2 + seq % (ATOMIC_RCPTS_MAX - 1);
    for (size_t j = 0; j < n; j++)
        snprintf(addrs[j], 64, "a%llu.%zu@d%llu.org", (unsigned long long)seq, j,
                 (unsigned long long)((seq + 5 * j) % 13));
    return n;
}

static void atomic_child(int fd, uint64_t seq0)
{
    struct vl_queue *q;
    if (vl_queue_open(g_dir2, ATOMIC_SHARDS, VL_QUEUE_CREATE, &q) != 0)
        _exit(3);
    static const char body[] = "Subject: atomic\r\n\r\nbody\r\n";
    char addrs[ATOMIC_RCPTS_MAX][64];
    const char *r[ATOMIC_RCPTS_MAX];
    for (uint64_t seq = seq0;; seq++) {
        size_t n = atomic_rcpts(seq, addrs);
        for (size_t j = 0; j < n; j++)
            r[j] = addrs[j];
        struct vl_queue_new_msg m = { "s@x.org", 7, body, sizeof body - 1, 0, r, NULL, n };
        struct ack a = { seq, 0 };
        if (vl_queue_enqueue(q, &m, 1000 + seq, &a.id) != 0)
            _exit(4);
        if (write(fd, &a, sizeof a) != (ssize_t)sizeof a)
            _exit(5);
    }
}

/* Every message is whole (show: all its recipients) and leasable in all its
 * shards; every acknowledged one is there. @return messages seen. */
static size_t atomic_verify(const struct ack *acks, size_t nacks)
{
    struct vl_queue *q;
    int rc = vl_queue_open(g_dir2, ATOMIC_SHARDS, VL_QUEUE_ENGINE, &q);   /* recovers */
    if (rc == VL_E_NOTFOUND && nacks == 0)
        return 0;
    if (rc != 0)
        fail_msg("VOLLEY_SEED=%u: reopen after SIGKILL: %s", g_seed0, vl_strerror(rc));
    static struct vl_queue_msg_info mi[ATOMIC_LIST_MAX];
    struct vl_queue_rcpt_info ri[ATOMIC_RCPTS_MAX];
    char addrs[ATOMIC_RCPTS_MAX][64];
    size_t seen = 0, leased = 0;
    uint64_t after = 0;
    for (int page = 0; page < 10000; page++) {
        int n = vl_queue_list(q, after, mi, ATOMIC_LIST_MAX);
        assert_true(n >= 0);
        if (n == 0)
            break;
        for (int i = 0; i < n; i++) {
            struct vl_queue_msg_info one;
            size_t nr;
            unsigned long long seq;
            assert_int_equal(vl_queue_show(q, mi[i].id, &one, ri, ATOMIC_RCPTS_MAX, &nr), 0);
            assert_true(nr >= 1);
            assert_int_equal(sscanf(ri[0].addr, "a%llu.", &seq), 1);
            size_t want = atomic_rcpts(seq, addrs);
            if (nr != want || one.rcpts_total != want || one.rcpts_open != want)
                fail_msg("VOLLEY_SEED=%u: message %llu is partial after a crash: %zu of %zu "
                         "recipients", g_seed0, seq, nr, want);
            seen++;
            leased += want;
        }
        after = mi[n - 1].id;
    }
    for (size_t i = 0; i < nacks; i++) {
        struct vl_queue_msg_info one;
        size_t nr;
        if (vl_queue_show(q, acks[i].id, &one, ri, ATOMIC_RCPTS_MAX, &nr) != 0)
            fail_msg("VOLLEY_SEED=%u: acknowledged message %llu lost", g_seed0,
                     (unsigned long long)acks[i].seq);
    }
    size_t got = 0;                       /* all of it visible to delivery */
    for (unsigned k = 0; k < ATOMIC_SHARDS; k++) {
        struct vl_queue_batch *b;
        int n = vl_queue_lease(vl_queue_shard(q, k), UINT64_MAX, VL_QUEUE_LEASE_MAX, &b);
        assert_true(n >= 0);
        got += (size_t)n;
        vl_queue_batch_release(vl_queue_shard(q, k), b);
    }
    if (got != leased)
        fail_msg("VOLLEY_SEED=%u: %zu recipients leasable, %zu in whole messages", g_seed0,
                 got, leased);
    struct vl_queue_check chk;
    rc = vl_queue_check(q, &chk);
    if (rc != 0 || chk.problems != 0)
        fail_msg("VOLLEY_SEED=%u: invariants broken after SIGKILL (rc %d): %s", g_seed0, rc,
                 chk.first);
    vl_queue_close(q);
    return seen;
}

static void test_item5_sigkill_all_or_none(void **state)
{
    (void)state;
    static struct ack acks[ACKS_MAX];
    size_t nacks = 0, seen = 0;
    uint64_t seq0 = 1;
    snprintf(g_dir2, sizeof g_dir2, "%s/atomic", g_dir);
    for (int round = 0; round < ATOMIC_KILLS; round++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            atomic_child(p[1], seq0);
        }
        close(p[1]);
        struct timespec ts = { 0, (long)(5 + rand_r(&g_seed) % 60) * 1000000L };
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);                      /* only our own child, by pid */
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!WIFSIGNALED(st))
            fail_msg("VOLLEY_SEED=%u: child exited %d before the kill", g_seed0,
                     WEXITSTATUS(st));
        struct ack a;
        uint64_t last = seq0 - 1;
        while (read(p[0], &a, sizeof a) == (ssize_t)sizeof a && nacks < ACKS_MAX) {
            acks[nacks++] = a;
            last = a.seq;
        }
        close(p[0]);
        seq0 = last + 2;
        seen = atomic_verify(acks, nacks);
    }
    print_message("VOLLEY_SEED=%u: %d kills, %zu acknowledged, %zu whole messages\n", g_seed0,
                  ATOMIC_KILLS, nacks, seen);
    assert_true(nacks > 0);
}

int main(void)
{
    const char *env = getenv("VOLLEY_SEED");
    g_seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL) ^ (unsigned)getpid();
    g_seed0 = g_seed;
    printf("queue_crash_test: VOLLEY_SEED=%u\n", g_seed0);
    snprintf(g_dir, sizeof g_dir, "/tmp/vlq-crash-XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_loop),
        cmocka_unit_test(test_item5_sigkill_all_or_none),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
