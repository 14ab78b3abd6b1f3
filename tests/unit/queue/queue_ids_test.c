/* queue_ids_test.c - vl_queue_enqueue_ids(): many messages, each under the id
 * the caller took, handed to the shards' group commits together (one commit
 * per shard for a single caller's batch); each message succeeds or fails
 * alone; messages spanning shards go one by one; what is queued leases back
 * whole (the HTTP API's batches, formerly vl_queue_enqueue_many). Also the group commit's
 * per-request wake-ups under concurrent writers (a lost wake-up hangs: the
 * test's timeout fails it). Real LMDB files in a mkdtemp dir. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volley/error.h"
#include "volley/queue.h"

#define QUEUE_FX_SHARDS 4u
#define NSHARDS QUEUE_FX_SHARDS
#include "queue_fx.h"

static const char BODY[] = "From: a@x.org\r\nSubject: t\r\n\r\nhello\r\n";


/* 40 single-recipient messages over the shards, one with recipients in
 * several shards, one with a bad address and one with id 0: each gets its
 * own answer; the good ones are queued under their ids, the single-shard
 * ones in one commit per shard. */
static void test_batch_each_alone(void **state)
{
    struct fx *f = *state;
    enum { N = 43 };
    static const char *const doms[] = { "one.test", "two.test", "three.test", "four.test",
                                        "five.test", "six.test", "seven.test" };
    char addr[N][64];
    const char *r1[N];
    static const char *const multi[] = { "a@one.test", "b@two.test", "c@three.test",
                                         "d@four.test", "e@five.test" };
    static const char *const bad[] = { "not an address" };
    struct vl_queue_new_msg m[N];
    uint64_t ids[N];
    int rcs[N];
    bool used[NSHARDS] = { false };
    for (int i = 0; i < N; i++) {
        snprintf(addr[i], sizeof addr[i], "u%d@%s", i, doms[i % 7]);
        r1[i] = addr[i];
        m[i] = (struct vl_queue_new_msg){ "s@x.org", 7, BODY, sizeof BODY - 1, 0, &r1[i], NULL, 1 };
        ids[i] = vl_queue_msg_id_new(f->q, T0);
        used[vl_queue_shard_of(f->q, doms[i % 7], strlen(doms[i % 7]))] |= i < 40;
    }
    m[40].rcpts = multi;
    m[40].rcpt_count = 5;
    m[41].rcpts = bad;
    ids[42] = 0;
    struct vl_queue_stats s0 = fx_stats(f->q);
    assert_int_equal(vl_queue_enqueue_ids(f->q, m, NULL, N, T0, ids, rcs), VL_E_INVALID);
    for (int i = 0; i < 41; i++)
        assert_int_equal(rcs[i], 0);
    assert_int_equal(rcs[41], VL_E_INVALID);
    assert_int_equal(rcs[42], VL_E_INVALID);
    struct vl_queue_stats s1 = fx_stats(f->q);
    assert_int_equal(s1.by_state[VL_RCPT_READY], 40 + 5);
    unsigned shards_used = 0;
    for (unsigned k = 0; k < NSHARDS; k++)
        shards_used += used[k];
    /* the 40 single-shard messages: one group per shard they use (one caller,
     * nothing else writing); the multi-shard one takes its own commits */
    uint64_t single_commits = s1.commits - s0.commits;
    assert_true(single_commits >= shards_used);
    assert_true(single_commits <= shards_used + 2 * NSHARDS + 1);
    for (int i = 0; i < 41; i++) {
        struct vl_queue_msg_info info;
        size_t n = 0;
        assert_int_equal(vl_queue_show(f->q, ids[i], &info, NULL, 0, &n), 0);
        assert_int_equal(info.rcpts_total, i == 40 ? 5 : 1);
    }
    /* the same ids again: every one taken, nothing more queued */
    assert_int_equal(vl_queue_enqueue_ids(f->q, m, NULL, 41, T0, ids, rcs), -EEXIST);
    for (int i = 0; i < 41; i++)
        assert_int_equal(rcs[i], -EEXIST);
    assert_int_equal(fx_stats(f->q).by_state[VL_RCPT_READY], 45);
    assert_int_equal(vl_queue_enqueue_ids(f->q, m, NULL, 0, T0, ids, rcs), 0);
}

/* A taken id in the middle of a batch fails that message only. */
static void test_taken_id_alone(void **state)
{
    struct fx *f = *state;
    static const char *const r[] = { "a@one.test" };
    struct vl_queue_new_msg m[3];
    uint64_t ids[3];
    int rcs[3];
    for (int i = 0; i < 3; i++) {
        m[i] = (struct vl_queue_new_msg){ "s@x.org", 7, BODY, sizeof BODY - 1, 0, r, NULL, 1 };
        ids[i] = vl_queue_msg_id_new(f->q, T0);
    }
    assert_int_equal(vl_queue_enqueue_id(f->q, &m[1], T0, ids[1]), 0);
    assert_int_equal(vl_queue_enqueue_ids(f->q, m, NULL, 3, T0, ids, rcs), -EEXIST);
    assert_int_equal(rcs[0], 0);
    assert_int_equal(rcs[1], -EEXIST);
    assert_int_equal(rcs[2], 0);
    assert_int_equal(fx_stats(f->q).by_state[VL_RCPT_READY], 3);
}

/* Over 4 shards, a mix of single- and two-domain messages and a bad one
 * (the HTTP API's batches; was queue_many_test): each queued message leases
 * back with its own body and recipients, the bad one queues nothing. */
static void test_batch_leases_back(void **state)
{
    struct fx *f = *state;
    enum { N = 40, BAD = 5 };
    static char addr[N][2][64], body[N][64];
    static const char *rc_ptr[N][2];
    struct vl_queue_new_msg m[N];
    uint64_t ids[N];
    int rcs[N];
    for (int i = 0; i < N; i++) {
        snprintf(addr[i][0], sizeof addr[i][0], "u%d@d%d.test", i, i % 7);
        snprintf(addr[i][1], sizeof addr[i][1], "v%d@e%d.test", i, i % 5);
        snprintf(body[i], sizeof body[i], "Subject: %d\r\n\r\nbody %d\r\n", i, i);
        rc_ptr[i][0] = addr[i][0];
        rc_ptr[i][1] = addr[i][1];
        m[i] = (struct vl_queue_new_msg){ .return_path = "s@src.test", .return_path_len = 10,
            .body = body[i], .body_len = strlen(body[i]), .rcpts = rc_ptr[i],
            .rcpt_count = i % 4 == 3 ? 2 : 1 };          /* every 4th: two domains */
        ids[i] = vl_queue_msg_id_new(f->q, T0);
    }
    rc_ptr[BAD][0] = "not an address";
    assert_int_equal(vl_queue_enqueue_ids(f->q, m, NULL, N, T0, ids, rcs), VL_E_INVALID);
    size_t rcpts = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(rcs[i], i == BAD ? VL_E_INVALID : 0);
        rcpts += i == BAD ? 0 : m[i].rcpt_count;
    }
    struct vl_queue_msg_info info;
    size_t nr = 0;
    assert_int_equal(vl_queue_show(f->q, ids[BAD], &info, NULL, 0, &nr), VL_E_NOTFOUND);
    assert_int_equal(fx_stats(f->q).by_state[VL_RCPT_READY], rcpts);
    size_t leased = 0;
    for (unsigned s = 0; s < NSHARDS; s++) {
        struct vl_queue_batch *b = NULL;
        int n = vl_queue_lease(vl_queue_shard(f->q, s), T0 + 1, 1000, &b);
        assert_true(n >= 0);
        for (int k = 0; k < n; k++) {
            const struct vl_queue_rcpt *r = &b->rcpts[k];
            int i = -1;
            for (int j = 0; j < N; j++)
                if (ids[j] == r->msg->id)
                    i = j;
            assert_true(i >= 0 && i != BAD);
            assert_int_equal(r->msg->body_len, strlen(body[i]));
            assert_memory_equal(r->msg->body, body[i], r->msg->body_len);
            assert_true(!strcmp(r->addr, addr[i][0]) || !strcmp(r->addr, addr[i][1]));
        }
        leased += (size_t)n;
        vl_queue_batch_release(vl_queue_shard(f->q, s), b);
    }
    assert_int_equal(leased, rcpts);
}

struct evseen { char rcpt[16][64]; unsigned n; };

/* Record the "rcpt" of each event (the events here are {"rcpt":"..."}). */
static void ev_collect(void *arg, uint64_t seq, const char *json, size_t len)
{
    struct evseen *e = arg;
    (void)seq;
    assert_true(len > 10 && e->n < 16);
    snprintf(e->rcpt[e->n++], sizeof e->rcpt[0], "%.*s", (int)(len - 10), json + 9);
}

/* Events given with the messages land in the outbox of each recipient's
 * shard (a multi-shard message's too), only for queued messages; a bad
 * event refuses its message alone. */
static void test_events_with_enqueue(void **state)
{
    struct fx *f = *state;
    static const char *const one[] = { "solo@one.test" };
    static const char *const multi[] = { "a@one.test", "b@two.test", "c@three.test",
                                         "d@four.test", "e@five.test" };
    static const char *const none[] = { "quiet@two.test" };
    static const char *const bad[] = { "bad@three.test" };
    char js[6][64];
    const char *ej[4][5];
    size_t el[4][5];
    for (int i = 0; i < 5; i++) {
        snprintf(js[i], sizeof js[i], "{\"rcpt\":\"%s\"}", multi[i]);
        ej[1][i] = js[i];
        el[1][i] = strlen(js[i]);
    }
    snprintf(js[5], sizeof js[5], "{\"rcpt\":\"%s\"}", one[0]);
    ej[0][0] = js[5];
    el[0][0] = strlen(js[5]);
    ej[3][0] = "not json";
    el[3][0] = 8;
    struct vl_queue_new_msg m[4] = {
        { "s@x.org", 7, BODY, sizeof BODY - 1, 0, one, NULL, 1 },
        { "s@x.org", 7, BODY, sizeof BODY - 1, 0, multi, NULL, 5 },
        { "s@x.org", 7, BODY, sizeof BODY - 1, 0, none, NULL, 1 },
        { "s@x.org", 7, BODY, sizeof BODY - 1, 0, bad, NULL, 1 },
    };
    struct vl_queue_rcpt_events ev[4] = { { ej[0], el[0] }, { ej[1], el[1] }, { NULL, NULL },
                                          { ej[3], el[3] } };
    uint64_t ids[4];
    int rcs[4];
    for (int i = 0; i < 4; i++)
        ids[i] = vl_queue_msg_id_new(f->q, T0);
    assert_int_equal(vl_queue_enqueue_ids(f->q, m, ev, 4, T0, ids, rcs), VL_E_INVALID);
    assert_int_equal(rcs[0], 0);
    assert_int_equal(rcs[1], 0);
    assert_int_equal(rcs[2], 0);
    assert_int_equal(rcs[3], VL_E_INVALID);
    assert_int_equal(fx_stats(f->q).by_state[VL_RCPT_READY], 7);
    unsigned total = 0;
    for (unsigned k = 0; k < NSHARDS; k++) {
        struct evseen seen = { .n = 0 };
        int n = vl_queue_events_read(vl_queue_shard(f->q, k), 0, 100, 1u << 20, ev_collect,
                                     &seen);
        assert_int_equal(n, (int)seen.n);
        for (unsigned i = 0; i < seen.n; i++) {       /* each in its recipient's shard */
            const char *d = strchr(seen.rcpt[i], '@');
            assert_non_null(d);
            assert_int_equal(vl_queue_shard_of(f->q, d + 1, strlen(d + 1)), k);
            assert_true(strcmp(seen.rcpt[i], "quiet@two.test") != 0);
            assert_true(strcmp(seen.rcpt[i], "bad@three.test") != 0);
        }
        total += seen.n;
    }
    assert_int_equal(total, 6);                       /* solo + the five of multi */
}

#define THREADS 8
#define ROUNDS 40
#define PER 5

struct worker { struct vl_queue *q; int t; int fails; };

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char addr[PER][64];
    const char *r[PER];
    struct vl_queue_new_msg m[PER];
    uint64_t ids[PER];
    int rcs[PER];
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < PER; i++) {
            snprintf(addr[i], sizeof addr[i], "t%dr%di%d@d%d.test", w->t, round, i,
                     (w->t + round + i) % 9);
            r[i] = addr[i];
            m[i] = (struct vl_queue_new_msg){ "s@x.org", 7, BODY, sizeof BODY - 1, 0, &r[i],
                                              NULL, 1 };
            ids[i] = vl_queue_msg_id_new(w->q, T0);
        }
        if (round % 4 == 3) {            /* the one-message path beside the batches */
            for (int i = 0; i < PER; i++)
                w->fails += vl_queue_enqueue_id(w->q, &m[i], T0, ids[i]) != 0;
        } else {
            w->fails += vl_queue_enqueue_ids(w->q, m, NULL, PER, T0, ids, rcs) != 0;
        }
    }
    return NULL;
}

/* Concurrent writers: every message queued, every waiter woken. */
static void test_concurrent_writers(void **state)
{
    struct fx *f = *state;
    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (struct worker){ f->q, t, 0 };
        assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(w[t].fails, 0);
    }
    struct vl_queue_stats s = fx_stats(f->q);
    assert_int_equal(s.by_state[VL_RCPT_READY], THREADS * ROUNDS * PER);
    assert_int_equal(s.requests, THREADS * ROUNDS * PER);
    assert_true(s.commits <= s.requests);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_each_alone, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_taken_id_alone, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_batch_leases_back, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_events_with_enqueue, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
