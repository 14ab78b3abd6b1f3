/*
 * timer_test.c - the timer heap (engine/io/timer.c), driven with fake time:
 * order, ties, cancel, stale ids, capacity, and a seeded random workload
 * checked against a sorted reference.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "timer.h"
#include "volley/error.h"

static void test_order_and_ties(void **state)
{
    (void)state;
    static const struct { uint64_t deadline_ms; uint64_t cookie; } add[] = {
        { 30, 1 }, { 10, 2 }, { 20, 3 }, { 10, 4 }, { 0, 5 }, { 20, 6 },
    };
    static const uint64_t expect[] = { 5, 2, 4, 3, 6, 1 };   /* ties: first added first */
    struct timer_heap t;
    assert_int_equal(timer_heap_init(&t, 8), 0);
    for (size_t i = 0; i < sizeof add / sizeof add[0]; i++) {
        uint64_t id;
        assert_int_equal(timer_add(&t, add[i].deadline_ms, add[i].cookie, &id), 0);
        assert_int_not_equal(id, TIMER_ID_NONE);
    }
    assert_int_equal(timer_next_ms(&t), 0);
    uint64_t cookie, id;
    size_t k = 0;
    for (uint64_t now = 0; now <= 40; now += 5)
        while (timer_pop_due(&t, now, &cookie, &id)) {
            assert_true(k < sizeof expect / sizeof expect[0]);
            assert_int_equal(cookie, expect[k++]);
        }
    assert_int_equal(k, sizeof expect / sizeof expect[0]);
    assert_int_equal(timer_next_ms(&t), UINT64_MAX);
    timer_heap_fini(&t);
}

static void test_not_due_stays(void **state)
{
    (void)state;
    struct timer_heap t;
    uint64_t id, cookie, got;
    assert_int_equal(timer_heap_init(&t, 2), 0);
    assert_int_equal(timer_add(&t, 100, 7, &id), 0);
    assert_false(timer_pop_due(&t, 99, &cookie, &got));
    assert_int_equal(timer_count(&t), 1);
    assert_true(timer_pop_due(&t, 100, &cookie, &got));
    assert_int_equal(cookie, 7);
    assert_int_equal(got, id);
    timer_heap_fini(&t);
}

static void test_cancel_and_stale(void **state)
{
    (void)state;
    struct timer_heap t;
    uint64_t a, b, c, cookie, id;
    assert_int_equal(timer_heap_init(&t, 3), 0);
    assert_int_equal(timer_add(&t, 10, 1, &a), 0);
    assert_int_equal(timer_add(&t, 20, 2, &b), 0);
    assert_int_equal(timer_add(&t, 30, 3, &c), 0);
    assert_int_equal(timer_add(&t, 40, 4, &id), -ENOSPC);
    assert_int_equal(timer_cancel(&t, b), 0);
    assert_int_equal(timer_cancel(&t, b), VL_E_NOTFOUND);      /* twice */
    /* The freed slot is reused with a new generation: the old id stays dead. */
    uint64_t d;
    assert_int_equal(timer_add(&t, 5, 9, &d), 0);
    assert_int_equal(d >> 32, b >> 32);
    assert_int_not_equal(d, b);
    assert_int_equal(timer_cancel(&t, b), VL_E_NOTFOUND);
    assert_true(timer_pop_due(&t, 100, &cookie, &id));
    assert_int_equal(cookie, 9);
    assert_int_equal(timer_cancel(&t, d), VL_E_NOTFOUND);      /* already fired */
    assert_true(timer_pop_due(&t, 100, &cookie, &id));
    assert_int_equal(cookie, 1);
    assert_true(timer_pop_due(&t, 100, &cookie, &id));
    assert_int_equal(cookie, 3);
    assert_false(timer_pop_due(&t, 100, &cookie, &id));
    assert_int_equal(timer_cancel(&t, (uint64_t)99 << 32 | 1), VL_E_NOTFOUND);  /* bad slot */
    timer_heap_fini(&t);
}

static void test_bad_cap(void **state)
{
    (void)state;
    struct timer_heap t;
    assert_int_equal(timer_heap_init(&t, 0), -EINVAL);
}

/* Random adds and cancels; pops must come out sorted by (deadline, order). */
static void test_random_against_reference(void **state)
{
    (void)state;
    enum { N = 2000 };
    const char *env = getenv("VOLLEY_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : 12345u;
    printf("timer_test: seed %u (VOLLEY_SEED replays)\n", seed);
    srand(seed);
    struct timer_heap t;
    static uint64_t ids[N], deadline[N];
    static bool live[N];
    assert_int_equal(timer_heap_init(&t, N), 0);
    for (uint64_t i = 0; i < N; i++) {
        deadline[i] = (uint64_t)(rand() % 500);
        assert_int_equal(timer_add(&t, deadline[i], i, &ids[i]), 0);
        live[i] = true;
    }
    for (int k = 0; k < N / 3; k++) {
        int i = rand() % N;
        assert_int_equal(timer_cancel(&t, ids[i]), live[i] ? 0 : VL_E_NOTFOUND);
        live[i] = false;
    }
    uint64_t prev_deadline = 0, prev_cookie = 0, cookie, id;
    bool first = true;
    uint32_t popped = 0, expect = 0;
    for (int i = 0; i < N; i++)
        expect += live[i];
    while (timer_pop_due(&t, UINT64_MAX - 1, &cookie, &id)) {
        assert_true(cookie < N && live[cookie]);
        assert_int_equal(id, ids[cookie]);
        assert_true(first || deadline[cookie] > prev_deadline ||
                    (deadline[cookie] == prev_deadline && cookie > prev_cookie));
        prev_deadline = deadline[cookie];
        prev_cookie = cookie;
        first = false;
        live[cookie] = false;
        popped++;
    }
    assert_int_equal(popped, expect);
    timer_heap_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_ties),
        cmocka_unit_test(test_not_due_stays),
        cmocka_unit_test(test_cancel_and_stale),
        cmocka_unit_test(test_bad_cap),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
