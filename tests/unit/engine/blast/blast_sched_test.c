/*
 * blast_sched_test.c - the open-loop schedule (engine/blast/blast_sched.c):
 * exact intended times and counts for a constant rate, threads interleaving
 * evenly, ramp steps, a count limit, and fractional rates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include "blast_sched.h"

static uint64_t drain(struct blast_sched *s, uint64_t *times, uint64_t cap, uint32_t *steps)
{
    uint64_t n = 0, t;
    while ((t = blast_sched_peek(s)) != UINT64_MAX) {
        assert_true(n < cap);
        if (steps)
            steps[n] = blast_sched_step(s);
        times[n++] = t;
        blast_sched_next(s);
    }
    return n;
}

static void test_constant_rate_exact(void **state)
{
    (void)state;
    static uint64_t t[4000];
    struct blast_sched s;
    blast_sched_init(&s, 1000, 1000, 1, 3000000000ull, 1.0, 0.0, 0);
    assert_int_equal(drain(&s, t, 4000, NULL), 3000);
    for (uint64_t i = 0; i < 3000; i++)
        assert_int_equal(t[i], i * 1000000ull);
    assert_int_equal(blast_sched_peek(&s), UINT64_MAX);   /* stays over */
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_threads_interleave(void **state)
{
    (void)state;
    static uint64_t all[3000];
    uint64_t n = 0;
    for (uint32_t k = 0; k < 3; k++) {
        struct blast_sched s;
        blast_sched_init(&s, 1500, 1500, 1, 2000000000ull, 1.0 / 3, k / 3.0, 0);
        n += drain(&s, all + n, 3000 - n, NULL);
    }
    assert_int_equal(n, 3000);
    qsort(all, n, sizeof all[0], cmp);
    /* together: one message every 1/1500 s, within rounding */
    for (uint64_t i = 0; i < n; i++) {
        double want = i * 1e9 / 1500.0;
        assert_true(all[i] + 1 >= (uint64_t)want && all[i] <= (uint64_t)want + 1);
    }
}

static void test_ramp_steps(void **state)
{
    (void)state;
    static uint64_t t[1000];
    static uint32_t step[1000];
    struct blast_sched s;
    blast_sched_init(&s, 100, 300, 3, 3000000000ull, 1.0, 0.0, 0);
    assert_true(blast_sched_step_rate(&s, 1, 1.0) == 200.0);
    assert_int_equal(drain(&s, t, 1000, step), 600);
    uint64_t per[3] = { 0 };
    for (int i = 0; i < 600; i++) {
        per[step[i]]++;
        assert_true(t[i] >= step[i] * 1000000000ull && t[i] < (step[i] + 1) * 1000000000ull);
        if (i)
            assert_true(t[i] > t[i - 1]);
    }
    assert_int_equal(per[0], 100);
    assert_int_equal(per[1], 200);
    assert_int_equal(per[2], 300);
    assert_int_equal(t[100], 1000000000ull);   /* step 2 starts on its boundary */
    assert_int_equal(t[101], 1005000000ull);
}

static void test_limit_and_fraction(void **state)
{
    (void)state;
    static uint64_t t[100];
    struct blast_sched s;
    blast_sched_init(&s, 50, 50, 1, 0, 1.0, 0.0, 10);   /* no duration: the count ends it */
    assert_int_equal(drain(&s, t, 100, NULL), 10);
    assert_int_equal(t[9], 180000000ull);
    blast_sched_init(&s, 3, 3, 1, 1000000000ull, 1.0, 0.0, 0);
    assert_int_equal(drain(&s, t, 100, NULL), 3);
    assert_int_equal(t[1], 333333333ull);
    assert_int_equal(t[2], 666666667ull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant_rate_exact),
        cmocka_unit_test(test_threads_interleave),
        cmocka_unit_test(test_ramp_steps),
        cmocka_unit_test(test_limit_and_fraction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
