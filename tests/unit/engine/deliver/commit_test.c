/*
 * commit_test.c - the committer (engine/deliver/commit.c), issue 9 items 2
 * and 4:
 *   item 4: one DSN per message and kind names every recipient of it that
 *   failed in the commit (250 of one message; two leases of one message);
 *   1100 failed messages make 1100 DSNs (no per-commit cap); no DSN for the
 *   null reverse-path; delay notices are a DSN of their own.
 *   item 2: a commit that fails keeps its outcomes and their lease (the queue
 *   leases none of them again), is retried after the backoff and not before,
 *   drops its DSNs after COMMIT_POISON_TRIES refusals as invalid, and goes
 *   through once the fault is gone; with --commit-giveup 0 it gives up at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "commit.h"
#include "volley/error.h"

#define MSGS_MAX 1100u

static const char body[] = "Subject: hello\r\nFrom: a@b.test\r\n\r\nbody\r\n";

struct dsn_fixture {
    struct vl_config cfg;
    struct committer com;
    struct vl_queue_msg msgs[MSGS_MAX];
    struct vl_queue_rcpt rcpts[LEDGER_OUTCOMES_MAX];
    char addrs[LEDGER_OUTCOMES_MAX][32];
    struct ledger_outcome out[LEDGER_OUTCOMES_MAX];
};

static struct dsn_fixture *dsn_fixture_new(void)
{
    static struct dsn_fixture fx;
    memset(&fx, 0, sizeof fx);
    vl_config_defaults(&fx.cfg);
    fx.com.cfg = &fx.cfg;
    assert_int_equal(commit_dsns_alloc(&fx.com.slot.dsn), 0);
    for (unsigned i = 0; i < MSGS_MAX; i++)
        fx.msgs[i] = (struct vl_queue_msg){ .id = 1000 + i, .created_ms = vl_clock_wall_ms(),
                                            .return_path = "a@b.test", .return_path_len = 8,
                                            .body = (const uint8_t *)body,
                                            .body_len = sizeof body - 1 };
    return &fx;
}

/* Outcome @p i: recipient r<i>@x.test of @p msg in state @p st. */
static void outcome_set(struct dsn_fixture *fx, uint32_t i, const struct vl_queue_msg *msg,
                        enum vl_rcpt_state st)
{
    snprintf(fx->addrs[i], sizeof fx->addrs[i], "r%u@x.test", i);
    fx->rcpts[i] = (struct vl_queue_rcpt){ .id = 1 + i, .msg = msg, .addr = fx->addrs[i],
                                           .addr_len = strlen(fx->addrs[i]),
                                           .domain = "x.test", .domain_len = 6 };
    struct ledger_outcome *e = &fx->out[i];
    memset(e, 0, sizeof *e);
    e->msg = msg;
    e->rcpt = &fx->rcpts[i];
    e->mx = "mx.x.test";
    e->o.state = st;
    e->o.code = st == VL_RCPT_DELIVERED ? 250 : 550;
    strcpy(e->status, st == VL_RCPT_DELIVERED ? "2.0.0" : "5.1.1");
    strcpy(e->text, "no");
}

/* How many times "Final-Recipient: rfc822; ADDR\r\n" is in DSN @p k. */
static unsigned named(const struct commit_dsns *b, size_t k, const char *addr)
{
    char want[64];
    snprintf(want, sizeof want, "Final-Recipient: rfc822; %s\r\n", addr);
    unsigned n = 0;
    const char *s = b->m[k].body, *end = s + b->m[k].body_len;
    size_t wl = strlen(want);
    for (; s && (s = memmem(s, (size_t)(end - s), want, wl)) != NULL; s += wl)
        n++;
    return n;
}

static unsigned named_total(const struct commit_dsns *b, size_t k)
{
    unsigned n = 0;
    const char *s = b->m[k].body, *end = s + b->m[k].body_len;
    for (; (s = memmem(s, (size_t)(end - s), "Final-Recipient:", 16)) != NULL; s += 16)
        n++;
    return n;
}

static void dsn_fixture_fini(struct dsn_fixture *fx)
{
    commit_dsns_free(fx->com.slot.dsn);
    fx->com.slot.dsn = NULL;
}

static void test_item4_250_failed_rcpts_one_dsn(void **state)
{
    (void)state;
    struct dsn_fixture *fx = dsn_fixture_new();
    for (uint32_t i = 0; i < 300; i++)      /* every 6th delivered: 250 bounced */
        outcome_set(fx, i, &fx->msgs[0], i % 6 == 5 ? VL_RCPT_DELIVERED : VL_RCPT_BOUNCED);
    assert_int_equal(commit_dsns_build(&fx->com, fx->out, 300), 0);
    struct commit_dsns *b = fx->com.slot.dsn;
    assert_int_equal(b->count, 1);
    assert_int_equal(b->msg_id[0], fx->msgs[0].id);
    assert_int_equal(named_total(b, 0), 250);
    for (uint32_t i = 0; i < 300; i++)
        assert_int_equal(named(b, 0, fx->addrs[i]), i % 6 == 5 ? 0u : 1u);
    dsn_fixture_fini(fx);
}

static void test_item4_1100_msgs_1100_dsns(void **state)
{
    (void)state;
    struct dsn_fixture *fx = dsn_fixture_new();
    for (uint32_t i = 0; i < MSGS_MAX; i++)
        outcome_set(fx, i, &fx->msgs[i], i % 2 ? VL_RCPT_EXPIRED : VL_RCPT_BOUNCED);
    assert_int_equal(commit_dsns_build(&fx->com, fx->out, MSGS_MAX), 0);
    struct commit_dsns *b = fx->com.slot.dsn;
    assert_int_equal(b->count, MSGS_MAX);
    for (size_t k = 0; k < b->count; k++) {
        uint32_t i = (uint32_t)(b->msg_id[k] - 1000);
        assert_true(i < MSGS_MAX);
        assert_int_equal(named_total(b, k), 1);
        assert_int_equal(named(b, k, fx->addrs[i]), 1);
        assert_string_equal(b->rcpt[k], "a@b.test");
        assert_int_equal(b->m[k].return_path_len, 0);    /* DSNs go out with <> */
    }
    dsn_fixture_fini(fx);
}

static void test_item4_two_leases_one_msg_one_dsn(void **state)
{
    (void)state;
    struct dsn_fixture *fx = dsn_fixture_new();
    struct vl_queue_msg copy = fx->msgs[0];     /* the same message in another batch */
    for (uint32_t i = 0; i < 120; i++)
        outcome_set(fx, i, i % 2 ? &copy : &fx->msgs[0], VL_RCPT_BOUNCED);
    outcome_set(fx, 120, &fx->msgs[1], VL_RCPT_BOUNCED);
    assert_int_equal(commit_dsns_build(&fx->com, fx->out, 121), 0);
    struct commit_dsns *b = fx->com.slot.dsn;
    assert_int_equal(b->count, 2);
    size_t k0 = b->msg_id[0] == fx->msgs[0].id ? 0 : 1;
    assert_int_equal(named_total(b, k0), 120);
    assert_int_equal(named_total(b, 1 - k0), 1);
    assert_int_equal(named(b, 1 - k0, fx->addrs[120]), 1);
    dsn_fixture_fini(fx);
}

static void test_item4_null_path_none_delayed_apart(void **state)
{
    (void)state;
    struct dsn_fixture *fx = dsn_fixture_new();
    fx->msgs[1].return_path = "";
    fx->msgs[1].return_path_len = 0;
    outcome_set(fx, 0, &fx->msgs[0], VL_RCPT_BOUNCED);
    outcome_set(fx, 1, &fx->msgs[0], VL_RCPT_DEFERRED);
    fx->out[1].warn = true;
    outcome_set(fx, 2, &fx->msgs[1], VL_RCPT_BOUNCED);     /* null path: no DSN */
    assert_int_equal(commit_dsns_build(&fx->com, fx->out, 3), 0);
    struct commit_dsns *b = fx->com.slot.dsn;
    assert_int_equal(b->count, 2);
    assert_false(b->delayed[0]);
    assert_true(b->delayed[1]);
    assert_int_equal(named(b, 0, fx->addrs[0]), 1);
    assert_int_equal(named(b, 1, fx->addrs[1]), 1);
    assert_int_equal(named_total(b, 0) + named_total(b, 1), 2);
    dsn_fixture_fini(fx);
}

/* ---- item 2: a failing commit against a real queue --------------------- */

struct com_fixture {
    char dir[64];
    struct vl_config cfg;
    struct deliver_counters ctr;
    struct vl_queue *q;
    struct vl_queue_shard *qs;
    struct vl_queue_batch *batch;
    struct rx *rx;
    struct ledger l;
    struct vl_dlog dlog;
    struct committer com;
    struct lease *ls;
};

static void com_fixture_init(struct com_fixture *fx, uint64_t giveup_ms)
{
    memset(fx, 0, sizeof *fx);
    strcpy(fx->dir, "/tmp/volley-commit-test-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    vl_config_defaults(&fx->cfg);
    fx->cfg.commit_giveup_ms = giveup_ms;
    fx->cfg.dsn_interval_ms = 0;    /* the bounce commits with its attempt */
    assert_int_equal(vl_queue_open(fx->dir, 1, VL_QUEUE_CREATE, &fx->q), 0);
    fx->qs = vl_queue_shard(fx->q, 0);
    const char *rc_addrs[] = { "ok@x.test", "bad@x.test" };
    struct vl_queue_new_msg m = { .return_path = "a@b.test", .return_path_len = 8,
                                  .body = body, .body_len = sizeof body - 1,
                                  .rcpts = rc_addrs, .rcpt_count = 2 };
    uint64_t id = 0;
    assert_int_equal(vl_queue_enqueue(fx->q, &m, vl_clock_wall_ms(), &id), 0);
    assert_int_equal(vl_queue_lease(fx->qs, vl_clock_wall_ms(), 16, &fx->batch), 2);
    struct rx_conf conf = { .handles_max = 8, .timers_max = 16,
                            .wake_cb = commit_wake_cb, .wake_user = &fx->com };
    int rc = rx_create(&fx->rx, &conf);
    if (rc == -ENOSYS || rc == -EPERM)
        fail_msg("io_uring is blocked here (%s): volley cannot run", strerror(-rc));
    assert_int_equal(rc, 0);
    assert_int_equal(ledger_init(&fx->l, &fx->cfg, &fx->ctr), 0);
    vl_dlog_init(&fx->dlog, -1);
    fx->com = (struct committer){ .cfg = &fx->cfg, .qs = fx->qs, .rx = fx->rx, .ledger = &fx->l,
                                  .dlog = &fx->dlog, .ctr = &fx->ctr };
    assert_int_equal(commit_init(&fx->com), 0);
    /* one attempt: ok@ delivered, bad@ bounced (a DSN) */
    fx->ls = ledger_lease_add(&fx->l, fx->batch, 2);
    assert_non_null(fx->ls);
    struct attempt *a = ledger_attempt_alloc(&fx->l, fx->ls, fx->batch->rcpts[0].msg);
    assert_non_null(a);
    for (size_t i = 0; i < 2; i++)
        a->rcpts[a->rcpt_count++] = &fx->batch->rcpts[i];
    for (uint32_t i = 0; i < 2; i++) {
        bool bad = fx->batch->rcpts[i].addr[0] == 'b';
        struct smtp_fate f = { .kind = bad ? SMTP_FATE_BOUNCED : SMTP_FATE_DELIVERED,
                               .code = bad ? 550 : 250 };
        strcpy(f.status, bad ? "5.1.1" : "2.0.0");
        ledger_outcome(&fx->l, a, i, &f, NULL);
    }
    ledger_attempt_done(&fx->l, a);
}

static void com_fixture_fini(struct com_fixture *fx)
{
    commit_fini(&fx->com);
    ledger_fini(&fx->l, fx->qs);
    rx_destroy(fx->rx);
    vl_queue_close(fx->q);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
}

/* Run the reactor until the committer has finished the commit in hand. */
static void com_wait_done(struct com_fixture *fx)
{
    uint64_t end = vl_clock_mono_ms() + 5000;
    while (fx->com.busy && vl_clock_mono_ms() < end)
        rx_run_once(fx->rx, 50);
    assert_false(fx->com.busy);
}

/* Make outcome i of the slot invalid for the queue (or valid again). */
static void com_slot_state(struct com_fixture *fx, uint32_t i, enum vl_rcpt_state st)
{
    fx->com.slot.outs[i].state = st;
    fx->com.slot.outcomes[i].o.state = st;
}

static void test_item2_failed_commit_kept_and_retried(void **state)
{
    (void)state;
    static struct com_fixture fx;
    com_fixture_init(&fx, 60000);
    /* ledger outcome 0 invalid: the queue refuses the commit (VL_E_INVALID) */
    fx.l.outcomes[0].o.state = (enum vl_rcpt_state)VL_RCPT_STATE_COUNT;
    commit_start(&fx.com);
    assert_true(fx.com.busy);
    com_wait_done(&fx);
    assert_true(fx.com.failing);
    assert_false(fx.com.gave_up);
    assert_int_equal(fx.com.err_last, VL_E_INVALID);
    assert_int_equal(commit_pending(&fx.com), 2);       /* kept, not dropped */
    assert_int_equal(fx.l.inflight, 2);
    assert_int_equal(fx.ls->open, 2);                   /* lease held */
    assert_int_equal(atomic_load(&fx.ctr.commit_errors), 1);
    assert_int_equal(atomic_load(&fx.ctr.delivered), 0);
    assert_int_equal(fx.com.slot.dsn->count, 1);        /* its DSN kept for the retry */
    struct vl_queue_batch *again = NULL;                /* never leased again meanwhile */
    assert_int_equal(vl_queue_lease(fx.qs, vl_clock_wall_ms(), 16, &again), 0);
    vl_queue_batch_release(fx.qs, again);
    int64_t w = commit_retry_wait_ms(&fx.com);
    assert_true(w > 0 && w <= COMMIT_RETRY_MS_MIN);
    commit_start(&fx.com);                              /* not due: nothing happens */
    assert_false(fx.com.busy);
    usleep((useconds_t)(w + 5) * 1000);
    commit_start(&fx.com);                              /* due: the same slot again */
    assert_true(fx.com.busy);
    com_wait_done(&fx);
    assert_true(fx.com.failing);
    assert_int_equal(fx.com.fail_count, 2);
    assert_true(fx.com.slot.dsns_dropped);              /* poison: DSNs dropped, logged */
    assert_int_equal(fx.com.slot.dsn->count, 0);
    w = commit_retry_wait_ms(&fx.com);
    assert_true(w > COMMIT_RETRY_MS_MIN && w <= 2 * COMMIT_RETRY_MS_MIN);   /* doubled */
    uint32_t bad = fx.com.slot.outcomes[0].o.state == (enum vl_rcpt_state)VL_RCPT_STATE_COUNT ? 0 : 1;
    com_slot_state(&fx, bad, VL_RCPT_DELIVERED);        /* the fault clears */
    usleep((useconds_t)(w + 5) * 1000);
    commit_start(&fx.com);
    com_wait_done(&fx);
    assert_false(fx.com.failing);
    assert_int_equal(commit_pending(&fx.com), 0);
    assert_int_equal(fx.l.inflight, 0);
    assert_null(fx.l.leases);                           /* released once committed */
    assert_int_equal(atomic_load(&fx.ctr.delivered) + atomic_load(&fx.ctr.bounced), 2);
    assert_int_equal(atomic_load(&fx.ctr.dsns), 0);
    fx.batch = NULL;
    com_fixture_fini(&fx);
}

static void test_item2_giveup(void **state)
{
    (void)state;
    static struct com_fixture fx;
    com_fixture_init(&fx, 0);                           /* --commit-giveup 0 */
    fx.l.outcomes[1].o.state = (enum vl_rcpt_state)VL_RCPT_STATE_COUNT;
    commit_start(&fx.com);
    com_wait_done(&fx);
    assert_true(fx.com.gave_up);
    assert_int_equal(commit_retry_wait_ms(&fx.com), -1);
    assert_int_equal(commit_pending(&fx.com), 2);
    commit_start(&fx.com);                              /* gave up: never again */
    assert_false(fx.com.busy);
    com_fixture_fini(&fx);                              /* leases go back to the queue */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_item4_250_failed_rcpts_one_dsn),
        cmocka_unit_test(test_item4_1100_msgs_1100_dsns),
        cmocka_unit_test(test_item4_two_leases_one_msg_one_dsn),
        cmocka_unit_test(test_item4_null_path_none_delayed_apart),
        cmocka_unit_test(test_item2_failed_commit_kept_and_retried),
        cmocka_unit_test(test_item2_giveup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
