/* queue_many_test.c - vl_queue_enqueue_many() (issue 12): a batch of
 * messages on real LMDB files: single-shard messages share one write per
 * shard, multi-shard ones go one by one, a bad one fails alone; every queued
 * message leases back with its body, and every invariant holds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "volley/error.h"
#include "volley/queue.h"

#define T0 1700000000000ull
#define N 40

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void test_enqueue_many(void **state)
{
    (void)state;
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/vlq-many-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char qdir[80];
    snprintf(qdir, sizeof qdir, "%s/q", dir);
    struct vl_queue *q = NULL;
    assert_int_equal(vl_queue_open(qdir, 4, VL_QUEUE_CREATE, &q), 0);

    static char addr[N][2][64], body[N][64];
    static const char *rc_ptr[N][2];
    struct vl_queue_new_msg m[N];
    for (int i = 0; i < N; i++) {
        snprintf(addr[i][0], sizeof addr[i][0], "u%d@d%d.test", i, i % 7);
        snprintf(addr[i][1], sizeof addr[i][1], "v%d@e%d.test", i, i % 5);
        snprintf(body[i], sizeof body[i], "Subject: %d\r\n\r\nbody %d\r\n", i, i);
        rc_ptr[i][0] = addr[i][0];
        rc_ptr[i][1] = addr[i][1];
        m[i] = (struct vl_queue_new_msg){ .return_path = "s@src.test", .return_path_len = 10,
            .body = body[i], .body_len = strlen(body[i]), .rcpts = rc_ptr[i],
            .rcpt_count = i % 4 == 3 ? 2 : 1 };          /* every 4th: two domains */
    }
    rc_ptr[5][0] = "not an address";                     /* fails alone */
    uint64_t ids[N];
    int rcs[N];
    assert_int_equal(vl_queue_enqueue_many(q, m, N, T0, ids, rcs), VL_E_INVALID);
    size_t rcpts = 0;
    for (int i = 0; i < N; i++) {
        if (i == 5) {
            assert_int_equal(rcs[i], VL_E_INVALID);
            assert_int_equal(ids[i], 0);
            continue;
        }
        assert_int_equal(rcs[i], 0);
        assert_true(ids[i] != 0);
        for (int k = 0; k < i; k++)
            assert_true(ids[k] != ids[i]);
        rcpts += m[i].rcpt_count;
    }
    struct vl_queue_stats st;
    assert_int_equal(vl_queue_stats(q, -1, &st), 0);
    assert_int_equal(st.by_state[VL_RCPT_READY], rcpts);
    size_t leased = 0;
    for (unsigned s = 0; s < 4; s++) {
        struct vl_queue_batch *b = NULL;
        int n = vl_queue_lease(vl_queue_shard(q, s), T0 + 1, 1000, &b);
        assert_true(n >= 0);
        for (int k = 0; k < n; k++) {
            const struct vl_queue_rcpt *r = &b->rcpts[k];
            int i = -1;
            for (int j = 0; j < N; j++)
                if (ids[j] == r->msg->id)
                    i = j;
            assert_true(i >= 0);
            assert_int_equal(r->msg->body_len, strlen(body[i]));
            assert_memory_equal(r->msg->body, body[i], r->msg->body_len);
            assert_true(!strcmp(r->addr, addr[i][0]) || !strcmp(r->addr, addr[i][1]));
        }
        leased += (size_t)n;
        vl_queue_batch_release(vl_queue_shard(q, s), b);
    }
    assert_int_equal(leased, rcpts);
    struct vl_queue_check chk;
    assert_int_equal(vl_queue_check(q, &chk), 0);
    assert_int_equal(chk.problems, 0);
    vl_queue_close(q);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_enqueue_many) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
