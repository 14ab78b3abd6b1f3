/* queue_lease_skip_test.c - vl_queue_lease_skip() on real LMDB files: the
 * recipients of a domain the caller skips stay ready in the queue (not leased,
 * nothing written), the others are leased in order; without the skip the
 * skipped ones are leased next; a skip of everything leases nothing. */
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

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

struct skip { const char *domain; unsigned calls; };

static bool skip_domain(void *ctx, const char *domain, size_t len)
{
    struct skip *s = ctx;
    s->calls++;
    return !s->domain || (strlen(s->domain) == len && !memcmp(s->domain, domain, len));
}

static void test_skip(void **state)
{
    (void)state;
    char dir[64] = "/tmp/vlq-skip-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char qdir[80];
    snprintf(qdir, sizeof qdir, "%s/q", dir);
    struct vl_queue *q;
    assert_int_equal(vl_queue_open(qdir, 1, VL_QUEUE_CREATE, &q), 0);
    static const char body[] = "From: a@x.org\r\nSubject: t\r\n\r\nhello\r\n";
    const char *rcpts[] = { "a1@slow.test", "b1@fast.test", "a2@SLOW.test", "b2@fast.test",
                            "b3@fast.test" };
    struct vl_queue_new_msg m = { "s@x.org", 7, body, sizeof body - 1, 0, rcpts, NULL, 5 };
    uint64_t id;
    assert_int_equal(vl_queue_enqueue(q, &m, T0, &id), 0);
    struct vl_queue_shard *s = vl_queue_shard(q, 0);
    struct vl_queue_batch *b = NULL;
    /* skip slow.test (lowercased by the queue before the call) */
    struct skip sk = { "slow.test", 0 };
    assert_int_equal(vl_queue_lease_skip(s, T0 + 1, 16, skip_domain, &sk, &b), 3);
    assert_int_equal(sk.calls, 5);
    for (size_t i = 0; i < b->count; i++)
        assert_memory_equal(b->rcpts[i].domain, "fast.test", 9);
    /* the skipped ones are still ready: a plain lease gets exactly them */
    struct vl_queue_batch *b2 = NULL;
    assert_int_equal(vl_queue_lease(s, T0 + 1, 16, &b2), 2);
    for (size_t i = 0; i < b2->count; i++)
        assert_memory_equal(b2->rcpts[i].domain, "slow.test", 9);
    vl_queue_batch_release(s, b);
    vl_queue_batch_release(s, b2);
    /* skipping everything leases nothing; the queue still holds all five */
    struct skip all = { NULL, 0 };
    struct vl_queue_batch *b3 = NULL;
    assert_int_equal(vl_queue_lease_skip(s, T0 + 1, 16, skip_domain, &all, &b3), 0);
    assert_null(b3);
    assert_int_equal(all.calls, 5);
    assert_int_equal(vl_queue_lease(s, T0 + 1, 16, &b3), 5);
    vl_queue_batch_release(s, b3);
    struct vl_queue_check chk;
    assert_int_equal(vl_queue_check(q, &chk), 0);
    assert_int_equal(chk.problems, 0);
    vl_queue_close(q);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_skip) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
