/*
 * ledger_test.c - leases, delivery attempts and outcomes (engine/deliver/ledger.c):
 * an attempt's outcomes are held until it is done, then committable together;
 * taking the committable ones keeps the held ones; a committed outcome closes
 * its lease slot and the in-flight count; an abandoned attempt leaves no
 * outcome; a deferral is scheduled by the retry schedule or expires at max age;
 * with --dsn-interval, a failure owing a DSN waits after its attempt until
 * ledger_dsn_release() (issue 10 item 4).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "ledger.h"
#include "retry.h"

struct fixture {
    struct vl_config cfg;
    struct deliver_counters ctr;
    struct ledger l;
    struct vl_queue_msg msg;
    struct vl_queue_rcpt rcpts[8];
};

static struct fixture *fixture_new(void)
{
    static struct fixture fx;
    memset(&fx, 0, sizeof fx);
    vl_config_defaults(&fx.cfg);
    fx.cfg.dsn_interval_ms = 0;     /* a failure commits with its attempt (see the dsn test) */
    assert_int_equal(ledger_init(&fx.l, &fx.cfg, &fx.ctr), 0);
    fx.msg = (struct vl_queue_msg){ .id = 1, .created_ms = vl_clock_wall_ms(),
                                    .return_path = "a@b.test", .return_path_len = 8 };
    for (unsigned i = 0; i < 8; i++)
        fx.rcpts[i] = (struct vl_queue_rcpt){ .id = 100 + i, .msg = &fx.msg, .addr = "r@x.test",
                                              .addr_len = 8, .domain = "x.test",
                                              .domain_len = 6 };
    return &fx;
}

static struct attempt *attempt_of(struct fixture *fx, struct lease *ls, unsigned first,
                                  unsigned n)
{
    struct attempt *a = ledger_attempt_alloc(&fx->l, ls, &fx->msg);
    assert_non_null(a);
    for (unsigned i = 0; i < n; i++)
        a->rcpts[a->rcpt_count++] = &fx->rcpts[first + i];
    return a;
}

static struct smtp_fate fate(enum smtp_fate_kind kind, uint16_t code, const char *status)
{
    struct smtp_fate f = { .kind = kind, .code = code, .text = "text", .text_len = 4 };
    strcpy(f.status, status);
    return f;
}

static void test_held_until_done_then_committed(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct lease *ls = ledger_lease_add(&fx->l, NULL, 3);
    assert_non_null(ls);
    assert_int_equal(fx->l.inflight, 3);
    assert_int_equal(atomic_load(&fx->ctr.inflight), 3);
    struct attempt *a = attempt_of(fx, ls, 0, 2);
    struct attempt *b = attempt_of(fx, ls, 2, 1);
    struct smtp_fate ok = fate(SMTP_FATE_DELIVERED, 250, "2.0.0");
    struct smtp_fate no = fate(SMTP_FATE_BOUNCED, 550, "5.1.1");
    ledger_outcome(&fx->l, a, 0, &ok, "192.0.2.1");
    ledger_outcome(&fx->l, b, 0, &ok, NULL);
    ledger_outcome(&fx->l, a, 1, &no, "192.0.2.1");
    assert_false(ledger_has_ready(&fx->l));           /* both attempts still running */
    ledger_attempt_done(&fx->l, a);
    assert_true(ledger_has_ready(&fx->l));
    struct ledger_outcome *out = NULL;
    assert_int_equal(ledger_take_ready(&fx->l, &out), 2);   /* a's two; b's stays held */
    assert_int_equal(out[0].o.rcpt_id, 100);
    assert_int_equal(out[0].o.state, VL_RCPT_DELIVERED);
    assert_string_equal(out[0].ip, "192.0.2.1");
    assert_int_equal(out[1].o.rcpt_id, 101);
    assert_int_equal(out[1].o.state, VL_RCPT_BOUNCED);
    assert_string_equal(out[1].status, "5.1.1");
    assert_null(out[0].attempt);
    assert_int_equal(fx->l.outcome_count, 1);
    assert_int_equal(fx->l.outcomes_held, 1);
    ledger_committed(&fx->l, out, 2);
    assert_int_equal(ls->open, 1);
    assert_int_equal(fx->l.inflight, 1);
    ledger_attempt_done(&fx->l, b);
    assert_int_equal(ledger_take_ready(&fx->l, &out), 1);
    assert_int_equal(out[0].o.rcpt_id, 102);
    ledger_committed(&fx->l, out, 1);
    assert_int_equal(ls->open, 0);
    assert_int_equal(atomic_load(&fx->ctr.inflight), 0);
    assert_int_equal(fx->l.attempts_live, 0);
    ledger_leases_release(&fx->l, NULL);
    assert_null(fx->l.leases);
    ledger_fini(&fx->l, NULL);
}

static void test_abandon_leaves_no_outcome(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct lease *ls = ledger_lease_add(&fx->l, NULL, 4);
    struct attempt *a = attempt_of(fx, ls, 0, 3);
    ledger_attempt_abandon(&fx->l, a);
    assert_int_equal(ls->open, 1);
    assert_int_equal(fx->l.inflight, 1);
    assert_int_equal(atomic_load(&fx->ctr.inflight), 1);
    assert_int_equal(fx->l.outcome_count, 0);
    assert_int_equal(fx->l.attempts_live, 0);
    ledger_fini(&fx->l, NULL);
}

static void test_deferral_scheduled_or_expired(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct lease *ls = ledger_lease_add(&fx->l, NULL, 2);
    struct attempt *a = attempt_of(fx, ls, 0, 1);
    struct smtp_fate later = fate(SMTP_FATE_DEFERRED, 451, "4.3.0");
    uint64_t before = vl_clock_wall_ms();
    ledger_outcome(&fx->l, a, 0, &later, NULL);
    uint64_t after = vl_clock_wall_ms();
    const struct ledger_outcome *e = &fx->l.outcomes[0];
    assert_int_equal(e->o.state, VL_RCPT_DEFERRED);
    uint64_t d = retry_delay_ms(&fx->cfg, 1, fx->rcpts[0].id);
    assert_true(e->o.next_ms >= before + d && e->o.next_ms <= after + d);
    /* A message older than max age: the deferral expires instead. */
    fx->msg.created_ms = before - fx->cfg.age_ms_max;
    struct attempt *b = attempt_of(fx, ls, 1, 1);
    ledger_outcome(&fx->l, b, 0, &later, NULL);
    assert_int_equal(fx->l.outcomes[1].o.state, VL_RCPT_EXPIRED);
    ledger_attempt_done(&fx->l, a);
    ledger_attempt_done(&fx->l, b);
    ledger_fini(&fx->l, NULL);
}

/* Issue 10 item 4: failures of one message in two attempts wait past their
 * attempts' end, and are released together (one commit, so one DSN); a
 * delivery is not held; a null return path is not held (no DSN). */
static void test_failures_wait_for_dsn_interval(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    fx->cfg.dsn_interval_ms = 60000;
    struct lease *ls = ledger_lease_add(&fx->l, NULL, 3);
    struct attempt *a = attempt_of(fx, ls, 0, 2);
    struct attempt *b = attempt_of(fx, ls, 2, 1);
    struct smtp_fate ok = fate(SMTP_FATE_DELIVERED, 250, "2.0.0");
    struct smtp_fate no = fate(SMTP_FATE_BOUNCED, 550, "5.1.1");
    ledger_outcome(&fx->l, a, 0, &ok, NULL);
    ledger_outcome(&fx->l, a, 1, &no, NULL);
    ledger_attempt_done(&fx->l, a);
    struct ledger_outcome *out = NULL;
    assert_int_equal(ledger_take_ready(&fx->l, &out), 1);      /* the delivery only */
    assert_int_equal(out[0].o.state, VL_RCPT_DELIVERED);
    ledger_committed(&fx->l, out, 1);
    assert_int_equal(fx->l.dsn_waiting, 1);
    assert_int_equal(atomic_load(&fx->ctr.dsn_waiting), 1);
    ledger_outcome(&fx->l, b, 0, &no, NULL);
    ledger_attempt_done(&fx->l, b);
    assert_false(ledger_has_ready(&fx->l));
    assert_int_equal(ledger_dsn_release(&fx->l, false), 0);     /* interval not over */
    assert_int_equal(fx->l.dsn_waiting, 2);
    assert_int_equal(ledger_dsn_release(&fx->l, true), 2);      /* e.g. stopping */
    assert_int_equal(ledger_take_ready(&fx->l, &out), 2);       /* together: one commit */
    assert_int_equal(out[0].o.state, VL_RCPT_BOUNCED);
    assert_int_equal(out[1].o.state, VL_RCPT_BOUNCED);
    assert_int_equal(atomic_load(&fx->ctr.dsn_waiting), 0);
    ledger_committed(&fx->l, out, 2);
    assert_int_equal(fx->l.inflight, 0);
    /* The interval over: released without force. */
    fx->cfg.dsn_interval_ms = 1;
    ls = ledger_lease_add(&fx->l, NULL, 1);
    struct attempt *c = attempt_of(fx, ls, 3, 1);
    ledger_outcome(&fx->l, c, 0, &no, NULL);
    ledger_attempt_done(&fx->l, c);
    assert_false(ledger_has_ready(&fx->l));
    for (int i = 0; i < 200 && !ledger_dsn_release(&fx->l, false); i++)
        usleep(1000);
    assert_true(ledger_has_ready(&fx->l));
    assert_int_equal(ledger_take_ready(&fx->l, &out), 1);
    ledger_committed(&fx->l, out, 1);
    /* A null return path owes no DSN: not held. */
    fx->msg.return_path = "";
    fx->msg.return_path_len = 0;
    ls = ledger_lease_add(&fx->l, NULL, 1);
    struct attempt *d = attempt_of(fx, ls, 4, 1);
    ledger_outcome(&fx->l, d, 0, &no, NULL);
    ledger_attempt_done(&fx->l, d);
    assert_true(ledger_has_ready(&fx->l));
    assert_int_equal(ledger_take_ready(&fx->l, &out), 1);
    ledger_committed(&fx->l, out, 1);
    ledger_fini(&fx->l, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_held_until_done_then_committed),
        cmocka_unit_test(test_abandon_leaves_no_outcome),
        cmocka_unit_test(test_deferral_scheduled_or_expired),
        cmocka_unit_test(test_failures_wait_for_dsn_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
