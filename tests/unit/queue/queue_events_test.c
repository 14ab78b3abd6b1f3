/* queue_events_test.c - the delivery events outbox (issue 16) on real LMDB
 * files: seqs in order and never reused, reads after a cursor, acks per sink
 * that only move forward, deletion up to the given seq; and an outcome and its
 * event committed together: with an LMDB write failing at each point in turn,
 * either both are there or neither. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue_env.h"
#include "volley/error.h"
#include "volley/queue.h"

#define T0 1700000000000ull
#define FAULT_RUNS_MAX 100u

static char g_dir[64];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/volley-qev-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    struct vl_queue *q;
    assert_int_equal(vl_queue_open(g_dir, 1, VL_QUEUE_CREATE | VL_QUEUE_ENGINE, &q), 0);
    *state = q;
    return 0;
}

static int teardown(void **state)
{
    vl_queue_close(*state);
    nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

struct got { unsigned n; uint64_t seq[16]; char json[16][64]; };

static void got_one(void *arg, uint64_t seq, const char *json, size_t len)
{
    struct got *g = arg;
    assert_true(g->n < 16 && len < 64);
    g->seq[g->n] = seq;
    memcpy(g->json[g->n], json, len);
    g->json[g->n][len] = '\0';
    g->n++;
}

static void add(struct vl_queue_shard *s, const char *j)
{
    size_t len = strlen(j);
    assert_int_equal(vl_queue_events_add(s, &j, &len, 1), 0);
}

static void test_add_read_ack(void **state)
{
    struct vl_queue_shard *s = vl_queue_shard(*state, 0);
    const char *ev[] = { "{\"n\":1}", "{\"n\":2}", "{\"n\":3}" };
    size_t len[] = { 7, 7, 7 };
    assert_int_equal(vl_queue_events_add(s, ev, len, 3), 0);
    struct got g = { 0 };
    assert_int_equal(vl_queue_events_read(s, 0, 10, 1 << 20, got_one, &g), 3);
    assert_int_equal(g.seq[0], 1);
    assert_int_equal(g.seq[2], 3);
    assert_string_equal(g.json[1], "{\"n\":2}");
    g.n = 0;                                        /* max and after_seq */
    assert_int_equal(vl_queue_events_read(s, 1, 1, 1 << 20, got_one, &g), 1);
    assert_int_equal(g.seq[0], 2);
    g.n = 0;                                        /* bytes_max: at least one */
    assert_int_equal(vl_queue_events_read(s, 0, 10, 1, got_one, &g), 1);

    uint64_t acked, stored, next;
    assert_int_equal(vl_queue_events_state(s, "a", &acked, &stored, &next), 0);
    assert_int_equal(acked, 0);
    assert_int_equal(stored, 3);
    assert_int_equal(next, 4);
    /* sink a has 3, sink b has 1: only seq 1 goes */
    assert_int_equal(vl_queue_events_ack(s, "a", 3, 1), 0);
    assert_int_equal(vl_queue_events_state(s, "a", &acked, &stored, NULL), 0);
    assert_int_equal(acked, 3);
    assert_int_equal(stored, 2);
    assert_int_equal(vl_queue_events_ack(s, "a", 2, 0), 0);       /* never backwards */
    assert_int_equal(vl_queue_events_state(s, "a", &acked, NULL, NULL), 0);
    assert_int_equal(acked, 3);
    assert_int_equal(vl_queue_events_ack(s, "b", 3, 3), 0);
    assert_int_equal(vl_queue_events_state(s, "b", &acked, &stored, NULL), 0);
    assert_int_equal(acked, 3);
    assert_int_equal(stored, 0);
    /* an emptied outbox does not give a seq again */
    add(s, "{\"n\":4}");
    g.n = 0;
    assert_int_equal(vl_queue_events_read(s, 0, 10, 1 << 20, got_one, &g), 1);
    assert_int_equal(g.seq[0], 4);
    /* bad input */
    const char *bad[] = { "", "x", "[1]" };
    for (size_t i = 0; i < 3; i++) {
        size_t l = strlen(bad[i]);
        assert_int_equal(vl_queue_events_add(s, &bad[i], &l, 1), VL_E_INVALID);
    }
    assert_int_equal(vl_queue_events_ack(s, "", 1, 1), VL_E_INVALID);
    assert_int_equal(vl_queue_events_ack(s, "a", 1, 2), VL_E_INVALID);   /* delete > acked */
    assert_int_equal(vl_queue_events_ack(s, "a-name-far-too-long-for-a-sink-name-x", 9, 0),
                     VL_E_INVALID);
}

static void test_outcome_and_event_atomic(void **state)
{
    struct vl_queue *q = *state;
    struct vl_queue_shard *s = vl_queue_shard(q, 0);
    static const char body[] = "From: a@x.org\r\n\r\nhi\r\n";
    const char *rc_[] = { "r@d.org" };
    struct vl_queue_new_msg m = { "a@x.org", 7, body, sizeof body - 1, 0, rc_, NULL, 1 };
    uint64_t id;
    assert_int_equal(vl_queue_enqueue(q, &m, T0, &id), 0);
    struct vl_queue_batch *b;
    assert_int_equal(vl_queue_lease(s, T0, 10, &b), 1);
    const char ev[] = "{\"event\":\"delivered\",\"rcpt\":\"r@d.org\"}";
    struct vl_queue_outcome o = { .rcpt_id = b->rcpts[0].id, .state = VL_RCPT_DELIVERED,
                                  .code = 250, .status = "2.0.0" };
    const char *evs[] = { ev };
    size_t ev_len[] = { sizeof ev - 1 };
    unsigned fired = 0;
    for (unsigned nth = 1;; nth++) {
        assert_true(nth <= FAULT_RUNS_MAX);
        queue_fault_arm(nth, EIO);
        int rc = vl_queue_complete_async_events(s, &o, 1, evs, ev_len, NULL, 0, T0);
        bool f = queue_fault_disarm(NULL);
        struct vl_queue_stats st;
        uint64_t stored;
        assert_int_equal(vl_queue_stats(q, 0, &st), 0);
        assert_int_equal(vl_queue_events_state(s, NULL, NULL, &stored, NULL), 0);
        if (rc < 0) {
            assert_true(f);
            fired++;
            assert_int_equal(st.by_state[VL_RCPT_DELIVERED], 0);   /* neither... */
            assert_int_equal(stored, 0);
            continue;
        }
        assert_int_equal(rc, 1);                                  /* ...or both */
        assert_int_equal(st.by_state[VL_RCPT_DELIVERED], 1);
        assert_int_equal(stored, 1);
        break;
    }
    assert_true(fired >= 3);             /* rcpt delete, event put, evseq put, commit... */
    struct got g = { 0 };
    assert_int_equal(vl_queue_events_read(s, 0, 10, 1 << 20, got_one, &g), 1);
    assert_string_equal(g.json[0], ev);
    vl_queue_batch_release(s, b);
}

/* Lazy acks: nothing written until a write transaction of the shard (here an
 * unrelated event append, standing for a delivery commit) or a flush; a
 * transaction that fails leaves them pending; acks only move forward. */
static void test_ack_lazy(void **state)
{
    struct vl_queue_shard *s = vl_queue_shard(*state, 0);
    const char *ev[] = { "{\"n\":1}", "{\"n\":2}", "{\"n\":3}", "{\"n\":4}" };
    size_t len[] = { 7, 7, 7, 7 };
    assert_int_equal(vl_queue_events_add(s, ev, len, 4), 0);
    uint64_t acked, stored;
    assert_false(vl_queue_events_ack_pending(s));
    assert_int_equal(vl_queue_events_ack_lazy(s, "a", 2, 1), 0);
    assert_int_equal(vl_queue_events_ack_lazy(s, "b", 1, 1), 0);
    assert_true(vl_queue_events_ack_pending(s));
    assert_int_equal(vl_queue_events_state(s, "a", &acked, &stored, NULL), 0);
    assert_int_equal(acked, 0);                     /* not yet written */
    assert_int_equal(stored, 4);
    /* a failing transaction keeps them pending */
    queue_fault_arm(1, EIO);
    assert_true(vl_queue_events_add(s, ev, len, 1) < 0);
    assert_true(queue_fault_disarm(NULL));
    assert_true(vl_queue_events_ack_pending(s));
    assert_int_equal(vl_queue_events_state(s, "a", &acked, &stored, NULL), 0);
    assert_int_equal(acked, 0);
    assert_int_equal(stored, 4);
    /* the next write transaction of the shard takes them: seq 5 appended, 1 deleted */
    assert_int_equal(vl_queue_events_add(s, ev, len, 1), 0);
    assert_false(vl_queue_events_ack_pending(s));
    assert_int_equal(vl_queue_events_state(s, "a", &acked, &stored, NULL), 0);
    assert_int_equal(acked, 2);
    assert_int_equal(stored, 4);
    assert_int_equal(vl_queue_events_state(s, "b", &acked, NULL, NULL), 0);
    assert_int_equal(acked, 1);
    /* never backwards; a flush writes them without another request */
    assert_int_equal(vl_queue_events_ack_lazy(s, "a", 1, 0), 0);
    assert_int_equal(vl_queue_events_ack_lazy(s, "b", 3, 2), 0);
    assert_int_equal(vl_queue_events_ack_flush(s), 0);
    assert_false(vl_queue_events_ack_pending(s));
    assert_int_equal(vl_queue_events_state(s, "a", &acked, &stored, NULL), 0);
    assert_int_equal(acked, 2);
    assert_int_equal(stored, 3);
    assert_int_equal(vl_queue_events_ack_flush(s), 0);          /* nothing pending: no-op */
    /* bad input; a fifth sink does not fit the pending table */
    assert_int_equal(vl_queue_events_ack_lazy(s, "", 1, 1), VL_E_INVALID);
    assert_int_equal(vl_queue_events_ack_lazy(s, "a", 1, 2), VL_E_INVALID);
    assert_int_equal(vl_queue_events_ack_lazy(s, "c", 1, 0), 0);
    assert_int_equal(vl_queue_events_ack_lazy(s, "d", 1, 0), 0);
    assert_int_equal(vl_queue_events_ack_lazy(s, "e", 1, 0), VL_E_INVALID);
    assert_int_equal(vl_queue_events_ack_flush(s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_read_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outcome_and_event_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_lazy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
