/* queue_lease_skip_test.c - vl_queue_lease_skip() on real LMDB files: the
 * recipients of a domain the caller skips stay ready in the queue (not leased,
 * nothing written), the others are leased in order; without the skip the
 * skipped ones are leased next; a skip of everything leases nothing.
 * test_next_due: vl_queue_lease_next_due() after each lease: the earliest
 * recipient not due yet, UINT64_MAX with nothing later, 0 when the lease
 * stopped at its max (not known).
 * test_unlease: a recipient whose async outcome (deferred) is committed and
 * unleased is leased again when due while its first batch is still held;
 * releasing that first batch leaves the new lease alone. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define QUEUE_FX_SHARDS 1u
#include "queue_fx.h"

static const char BODY[] = "From: a@x.org\r\nSubject: t\r\n\r\nhello\r\n";

struct skip { const char *domain; unsigned calls; };

static bool skip_domain(void *ctx, const char *domain, size_t len)
{
    struct skip *s = ctx;
    s->calls++;
    return !s->domain || (strlen(s->domain) == len && !memcmp(s->domain, domain, len));
}

static void test_skip(void **state)
{
    struct vl_queue *q = ((struct fx *)*state)->q;
    const char *rcpts[] = { "a1@slow.test", "b1@fast.test", "a2@SLOW.test", "b2@fast.test",
                            "b3@fast.test" };
    fx_enq(q, BODY, rcpts, 5, T0);
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
}

static void test_next_due(void **state)
{
    struct vl_queue *q = ((struct fx *)*state)->q;
    struct vl_queue_shard *s = vl_queue_shard(q, 0);
    struct vl_queue_batch *b = NULL;
    assert_int_equal(vl_queue_lease(s, T0, 16, &b), 0);        /* empty queue */
    assert_true(vl_queue_lease_next_due(s) == UINT64_MAX);
    const char *rcpts[] = { "a@one.test", "b@one.test", "c@one.test" };
    fx_enq(q, BODY, rcpts, 3, T0);
    assert_int_equal(vl_queue_lease(s, T0 + 1, 2, &b), 2);     /* stopped at its max */
    assert_int_equal(vl_queue_lease_next_due(s), 0);
    struct vl_queue_outcome o[2] = {
        { .rcpt_id = b->rcpts[0].id, .state = VL_RCPT_DEFERRED, .next_ms = T0 + 5000 },
        { .rcpt_id = b->rcpts[1].id, .state = VL_RCPT_DEFERRED, .next_ms = T0 + 9000 },
    };
    assert_int_equal(vl_queue_complete(s, o, 2, NULL, 0, T0 + 1), 2);
    vl_queue_batch_release(s, b);
    struct vl_queue_batch *b2 = NULL;
    assert_int_equal(vl_queue_lease(s, T0 + 2, 16, &b2), 1);    /* c, ready */
    assert_true(vl_queue_lease_next_due(s) == T0 + 5000);
    assert_int_equal(vl_queue_lease(s, T0 + 2, 16, &b), 0);     /* c leased: skipped */
    assert_true(vl_queue_lease_next_due(s) == T0 + 5000);
    vl_queue_batch_release(s, b2);
    assert_int_equal(vl_queue_lease(s, T0 + 6000, 16, &b), 2);  /* c and a */
    assert_true(vl_queue_lease_next_due(s) == T0 + 9000);
    vl_queue_batch_release(s, b);
    assert_int_equal(vl_queue_lease(s, T0 + 9000, 16, &b), 3);
    assert_true(vl_queue_lease_next_due(s) == UINT64_MAX);
    vl_queue_batch_release(s, b);
}

static void test_unlease(void **state)
{
    struct vl_queue *q = ((struct fx *)*state)->q;
    struct vl_queue_shard *s = vl_queue_shard(q, 0);
    const char *rcpts[] = { "a@one.test", "b@one.test" };
    fx_enq(q, BODY, rcpts, 2, T0);
    struct vl_queue_batch *b1 = NULL, *b2 = NULL, *b3 = NULL;
    assert_int_equal(vl_queue_lease(s, T0 + 1, 16, &b1), 2);
    /* a deferred to T0 + 10 by the committer's call; b (rcpts[1]) stays open */
    struct vl_queue_outcome o = { .rcpt_id = b1->rcpts[0].id, .state = VL_RCPT_DEFERRED,
                                  .next_ms = T0 + 10 };
    assert_int_equal(vl_queue_complete_async(s, &o, 1, NULL, 0, T0 + 1), 1);
    assert_int_equal(vl_queue_lease(s, T0 + 10, 16, &b2), 0);   /* still leased */
    vl_queue_batch_unlease(s, b1, 0);
    vl_queue_batch_unlease(s, b1, 0);                           /* twice: a no-op */
    assert_int_equal(vl_queue_lease(s, T0 + 5, 16, &b2), 0);    /* not due yet */
    assert_int_equal(vl_queue_lease(s, T0 + 10, 16, &b2), 1);   /* due: leased again */
    assert_true(b2->rcpts[0].id == o.rcpt_id);
    assert_int_equal(b2->rcpts[0].attempts, 1);
    vl_queue_batch_release(s, b1);                              /* frees b, not a */
    assert_int_equal(vl_queue_lease(s, T0 + 10, 16, &b3), 1);
    assert_true(b3->rcpts[0].id != o.rcpt_id);
    vl_queue_batch_release(s, b3);
    vl_queue_batch_release(s, b2);
    assert_int_equal(vl_queue_lease(s, T0 + 10, 16, &b3), 2);
    vl_queue_batch_release(s, b3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_skip, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_next_due, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unlease, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
