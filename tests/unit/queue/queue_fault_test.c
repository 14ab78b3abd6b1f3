/*
 * queue_fault_test.c - issue 9 item 1 ("leaked write transaction ->
 * deadlock"): every write path of the queue with an LMDB failure injected at
 * each of its writes in turn (queue_fault_arm: the n-th put/del/drop/commit
 * fails), then proof that the shard still writes and every invariant holds.
 *
 * Each run happens in a child process (its own LMDB environments; nothing of
 * the parent's is used after fork) that the parent waits for at most
 * CHILD_TIMEOUT_MS: a leaked write transaction keeps LMDB's writer lock and
 * the next write blocks forever, which shows up here as a killed child and a
 * failed test, not as a hung test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "queue_env.h"
#include "volley/error.h"
#include "volley/queue.h"

#define T0 1700000000000ull
#define NSHARDS 2u
#define CHILD_TIMEOUT_MS 20000u
#define FAULT_RUNS_MAX 200u            /* writes of the longest path, with margin */
#define CHILD_FIRED 0                  /* exit codes of a child */
#define CHILD_FAILED 1
#define CHILD_NOT_FIRED 3

static char g_root[64];
static unsigned g_run;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static const char BODY[] = "From: a@x.org\r\nSubject: f\r\n\r\nhello\r\n";

/* ---- in the child: report and exit, never cmocka ---------------------- */

static void child_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void child_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    _exit(CHILD_FAILED);
}

static int enq_to(struct vl_queue *q, const char *const *rcpts, size_t n, uint64_t *id)
{
    struct vl_queue_new_msg m = { "sender@x.org", 12, BODY, sizeof BODY - 1, 0, rcpts, NULL, n };
    return vl_queue_enqueue(q, &m, T0, id);
}

/* A domain of shard @p k (domain names d0.org, d1.org, ... tried in turn). */
static void domain_of_shard(struct vl_queue *q, unsigned k, char *out, size_t cap)
{
    for (unsigned i = 0; i < 1000; i++) {
        snprintf(out, cap, "d%u.org", i);
        if (vl_queue_shard_of(q, out, strlen(out)) == k)
            return;
    }
    child_fail("no domain for shard %u", k);
}

static uint64_t open_rcpts(struct vl_queue *q)
{
    struct vl_queue_stats st;
    if (vl_queue_stats(q, -1, &st) != 0)
        child_fail("stats failed");
    return st.by_state[VL_RCPT_READY] + st.by_state[VL_RCPT_DEFERRED];
}

/* The shards still write (a leaked transaction would block here), nothing is
 * half-done (check), and the probes are all there. */
static void child_probe(struct vl_queue *q, const char *what)
{
    uint64_t before = open_rcpts(q);
    for (unsigned k = 0; k < NSHARDS; k++) {
        char dom[32], addr[64];
        domain_of_shard(q, k, dom, sizeof dom);
        snprintf(addr, sizeof addr, "probe@%s", dom);
        const char *r[] = { addr };
        int rc = enq_to(q, r, 1, NULL);
        if (rc != 0)
            child_fail("%s: probe enqueue into shard %u: %s", what, k, vl_strerror(rc));
    }
    if (open_rcpts(q) != before + NSHARDS)
        child_fail("%s: probes not all counted", what);
    struct vl_queue_check chk;
    int rc = vl_queue_check(q, &chk);
    if (rc != 0 || chk.problems != 0)
        child_fail("%s: check: %s, %llu problems: %s", what, vl_strerror(rc),
                   (unsigned long long)chk.problems, chk.first);
}

/* ---- the write paths --------------------------------------------------- */

struct path_ctx {
    struct vl_queue *q;
    uint64_t msg1, msg2;               /* msg1: 3 rcpts in shard 0; msg2: shards 0 + 1 */
    char dom0[32], dom1[32];
};

static int path_complete(struct path_ctx *c, bool async, bool accounted);

enum path_id {
    PATH_CREATE, PATH_ENQ_ONE, PATH_ENQ_TWO, PATH_COMPLETE, PATH_COMPLETE_ASYNC,
    PATH_RETRY_MSG, PATH_RETRY_DOMAIN, PATH_PURGE_MSG, PATH_PURGE_ALL, PATH_COUNT
};
static const char *const path_name[PATH_COUNT] = {
    "create", "enqueue-1-shard", "enqueue-2-shards", "complete", "complete-async",
    "retry-msg", "retry-domain", "purge-msg", "purge-all",
};

/* State path @p p starts from (before the fault is armed). */
static void path_prepare(struct path_ctx *c, enum path_id p)
{
    char a[3][64], b[2][64];
    domain_of_shard(c->q, 0, c->dom0, sizeof c->dom0);
    domain_of_shard(c->q, 1, c->dom1, sizeof c->dom1);
    for (int i = 0; i < 3; i++)
        snprintf(a[i], sizeof a[i], "a%d@%s", i, c->dom0);
    snprintf(b[0], sizeof b[0], "b0@%s", c->dom0);
    snprintf(b[1], sizeof b[1], "b1@%s", c->dom1);
    const char *ra[] = { a[0], a[1], a[2] }, *rb[] = { b[0], b[1] };
    if (enq_to(c->q, ra, 3, &c->msg1) != 0 || enq_to(c->q, rb, 2, &c->msg2) != 0)
        child_fail("prepare: enqueue failed");
    if ((p == PATH_RETRY_MSG || p == PATH_RETRY_DOMAIN) && path_complete(c, false, true) < 0)
        child_fail("prepare: complete failed");     /* a deferred recipient to retry */
}

/* Complete the recipients of shard 0 (deliver, defer, bounce, ...) with a DSN. */
static int path_complete(struct path_ctx *c, bool async, bool accounted)
{
    struct vl_queue_shard *s = vl_queue_shard(c->q, 0);
    struct vl_queue_batch *b;
    int n = vl_queue_lease(s, T0, 100, &b);
    if (n != 4)
        child_fail("complete: leased %d, want 4", n);
    struct vl_queue_outcome o[4];
    static const enum vl_rcpt_state fate[4] = { VL_RCPT_DELIVERED, VL_RCPT_DEFERRED,
                                                VL_RCPT_BOUNCED, VL_RCPT_EXPIRED };
    for (int i = 0; i < 4; i++)
        o[i] = (struct vl_queue_outcome){ b->rcpts[i].id, fate[i], T0 + 60000, 451, "4.0.0",
                                          "later", 5, false };
    const char *dr[] = { "sender@x.org" };
    struct vl_queue_new_msg dsn = { "", 0, "Subject: dsn\r\n\r\nx\r\n", 19, 0, dr, NULL, 1 };
    int rc = async ? vl_queue_complete_async(s, o, 4, &dsn, 1, T0)
                   : vl_queue_complete(s, o, 4, &dsn, 1, T0);
    vl_queue_batch_release(s, b);
    if (accounted && rc >= 0 && open_rcpts(c->q) != 1 + 1 + 1 + 0)  /* b1, deferred, dsn */
        child_fail("complete: open recipients %llu, want 3",
                   (unsigned long long)open_rcpts(c->q));
    return rc < 0 ? rc : 0;
}

/* Run path @p p (state prepared). @return the operation's result. For the
 * enqueues, all or nothing: the open count moves by all recipients or none. */
static int path_run(struct path_ctx *c, enum path_id p)
{
    char x[2][64];
    uint64_t before = open_rcpts(c->q);
    int rc;
    switch (p) {
    case PATH_ENQ_ONE:
    case PATH_ENQ_TWO: {
        snprintf(x[0], sizeof x[0], "x0@%s", c->dom0);
        snprintf(x[1], sizeof x[1], "x1@%s", c->dom1);
        const char *r[] = { x[0], x[1] };
        size_t n = p == PATH_ENQ_ONE ? 1 : 2;
        rc = enq_to(c->q, r, n, NULL);
        if (open_rcpts(c->q) != before + (rc == 0 ? n : 0))
            child_fail("%s: rc %d but open %llu -> %llu", path_name[p], rc,
                       (unsigned long long)before, (unsigned long long)open_rcpts(c->q));
        return rc;
    }
    case PATH_COMPLETE:       return path_complete(c, false, true);
    case PATH_COMPLETE_ASYNC: return path_complete(c, true, true);
    case PATH_RETRY_MSG:
        rc = vl_queue_retry(c->q, c->msg1, NULL, T0 + 1);
        return rc < 0 ? rc : 0;
    case PATH_RETRY_DOMAIN:
        rc = vl_queue_retry(c->q, 0, c->dom0, T0 + 1);
        return rc < 0 ? rc : 0;
    case PATH_PURGE_MSG:
        rc = vl_queue_purge(c->q, c->msg2);
        return rc < 0 ? rc : 0;
    case PATH_PURGE_ALL:
        rc = vl_queue_purge(c->q, 0);
        return rc < 0 ? rc : 0;
    case PATH_CREATE:
    case PATH_COUNT:
        break;
    }
    child_fail("bad path %d", (int)p);
}

/* The child: path @p p with the @p nth write failing with @p mdb_rc (0: count
 * only). Prints the number of writes seen with @p nth 0. */
static void child_main(const char *dir, enum path_id p, unsigned nth, int mdb_rc)
{
    struct path_ctx c = { 0 };
    unsigned writes = 0;
    bool fired;
    int rc;
    if (p == PATH_CREATE) {
        queue_fault_arm(nth, mdb_rc);
        rc = vl_queue_open(dir, NSHARDS, VL_QUEUE_CREATE, &c.q);
        fired = queue_fault_disarm(&writes);
        if (rc < 0 && !fired)
            child_fail("create: %s without a fault", vl_strerror(rc));
        if (rc < 0 && (rc = vl_queue_open(dir, NSHARDS, VL_QUEUE_CREATE, &c.q)) < 0)
            child_fail("create: reopen after the fault: %s", vl_strerror(rc));
    } else {
        if ((rc = vl_queue_open(dir, NSHARDS, VL_QUEUE_CREATE, &c.q)) < 0)
            child_fail("open: %s", vl_strerror(rc));
        path_prepare(&c, p);
        queue_fault_arm(nth, mdb_rc);
        rc = path_run(&c, p);
        fired = queue_fault_disarm(&writes);
        if (rc < 0 && !fired)
            child_fail("%s: %s without a fault", path_name[p], vl_strerror(rc));
        /* MDB_MAP_FULL is not an error: the map grows and the group reruns. */
        if (rc < 0 && mdb_rc == MDB_MAP_FULL)
            child_fail("%s: %s after one MDB_MAP_FULL", path_name[p], vl_strerror(rc));
    }
    child_probe(c.q, path_name[p]);
    /* Reopened as an engine (recovery runs): every open recipient is leasable,
     * none is left hidden by a half-done multi-shard enqueue (item 5). */
    vl_queue_close(c.q);
    if ((rc = vl_queue_open(dir, NSHARDS, VL_QUEUE_ENGINE, &c.q)) < 0)
        child_fail("%s: reopen: %s", path_name[p], vl_strerror(rc));
    size_t leasable = 0;
    for (unsigned k = 0; k < NSHARDS; k++) {
        struct vl_queue_batch *b;
        int n = vl_queue_lease(vl_queue_shard(c.q, k), UINT64_MAX, 1000, &b);
        if (n < 0)
            child_fail("%s: lease: %s", path_name[p], vl_strerror(n));
        leasable += (size_t)n;
        vl_queue_batch_release(vl_queue_shard(c.q, k), b);
    }
    if (leasable != open_rcpts(c.q))
        child_fail("%s: %zu leasable of %llu open after recovery", path_name[p], leasable,
                   (unsigned long long)open_rcpts(c.q));
    child_probe(c.q, path_name[p]);
    vl_queue_close(c.q);
    if (nth == 0) {
        printf("%u\n", writes);
        fflush(stdout);                  /* _exit() flushes nothing */
    }
    _exit(fired ? CHILD_FIRED : CHILD_NOT_FIRED);
}

/* ---- in the parent ----------------------------------------------------- */

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000u, (long)(ms % 1000u) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Run child_main in a fresh directory; @return its exit code, or -1 if it
 * did not finish within CHILD_TIMEOUT_MS (killed). @p out: its stdout. */
static int child_run(enum path_id p, unsigned nth, int mdb_rc, char *out, size_t cap)
{
    char dir[128];
    int fds[2];
    snprintf(dir, sizeof dir, "%s/run%u", g_root, g_run++);
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 1);
        child_main(dir, p, nth, mdb_rc);
    }
    close(fds[1]);
    int st = 0;
    unsigned waited = 0;
    pid_t w;
    while ((w = waitpid(pid, &st, WNOHANG)) == 0 && waited < CHILD_TIMEOUT_MS) {
        sleep_ms(10);
        waited += 10;
    }
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    ssize_t n = out ? read(fds[0], out, cap - 1) : 0;
    if (out)
        out[n > 0 ? n : 0] = 0;
    close(fds[0]);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (w == 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Fail each write of path @p p in turn with @p mdb_rc. */
static void sweep(enum path_id p, int mdb_rc)
{
    unsigned fired = 0, n;
    for (n = 1; n <= FAULT_RUNS_MAX; n++) {
        int rc = child_run(p, n, mdb_rc, NULL, 0);
        if (rc == -1)
            fail_msg("%s, write %u fails with %d: hung (> %u ms): a write transaction "
                     "was left open", path_name[p], n, mdb_rc, CHILD_TIMEOUT_MS);
        if (rc == CHILD_NOT_FIRED)
            break;
        if (rc != CHILD_FIRED)
            fail_msg("%s, write %u fails with %d: child exit %d", path_name[p], n, mdb_rc,
                     rc);
        fired++;
    }
    assert_true(n <= FAULT_RUNS_MAX);
    assert_true(fired >= 2);
    print_message("%-17s fault %-3d at each of %u writes: ok\n", path_name[p], mdb_rc, fired);
}

static int group_setup(void **state)
{
    (void)state;
    /* tmpfs: ~500 runs of fsyncing commits test transactions, not disks. */
    snprintf(g_root, sizeof g_root, "/dev/shm/vlq-fault-XXXXXX");
    return mkdtemp(g_root) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    nftw(g_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* The reported case: the stats record's put, the last write before the
 * commit, fails with MDB_MAP_FULL (the map must grow right then). Old code
 * dropped the transaction: mdb_env_set_mapsize failed with EINVAL and the
 * next write on the shard blocked forever. */
static void test_item1_stats_put_map_full(void **state)
{
    (void)state;
    char out[32];
    /* A one-recipient enqueue writes msg, body, rcpt, sched, dom, then the
     * stats record, then commits (before them, its group may drop decisions
     * of earlier multi-shard enqueues): the stats put is the last but one. */
    assert_int_equal(child_run(PATH_ENQ_ONE, 0, 0, out, sizeof out), CHILD_NOT_FIRED);
    unsigned writes = (unsigned)strtoul(out, NULL, 10);
    assert_true(writes >= 7);
    int rc = child_run(PATH_ENQ_ONE, writes - 1, MDB_MAP_FULL, NULL, 0);
    if (rc == -1)
        fail_msg("stats put MDB_MAP_FULL: the next write hung (leaked write transaction)");
    assert_int_equal(rc, CHILD_FIRED);
}

/* Every write path, each of its writes failing in turn: with MDB_MAP_FULL
 * (must succeed after growth) and with EIO (may fail, never half-done). */
static void test_item1_every_write_fault(void **state)
{
    (void)state;
    for (int p = 0; p < PATH_COUNT; p++) {
        sweep((enum path_id)p, MDB_MAP_FULL);
        sweep((enum path_id)p, EIO);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_item1_stats_put_map_full),
        cmocka_unit_test(test_item1_every_write_fault),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
