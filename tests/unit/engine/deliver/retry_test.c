/* retry_test.c - the per-recipient retry schedule (retry_delay_ms):
 * doubling from --retry-base, capped at --retry-max, +-10% jitter that is a
 * pure function of (recipient id, attempt) and spreads recipients apart. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "volley/config.h"
#include "retry.h"

static void cfg_init(struct vl_config *c, uint64_t base_ms, uint64_t max_ms)
{
    vl_config_defaults(c);
    c->retry_ms_base = base_ms;
    c->retry_ms_max = max_ms;
}

static void test_doubles_then_caps(void **state)
{
    (void)state;
    static struct vl_config c;
    cfg_init(&c, 5ull * 60 * 1000, 60ull * 60 * 1000);       /* the defaults: 5 min, 1 h */
    static const struct { uint32_t attempts; uint64_t nominal_ms; } rows[] = {
        { 1, 5ull * 60 * 1000 },  { 2, 10ull * 60 * 1000 }, { 3, 20ull * 60 * 1000 },
        { 4, 40ull * 60 * 1000 }, { 5, 60ull * 60 * 1000 }, { 6, 60ull * 60 * 1000 },
        { 60, 60ull * 60 * 1000 }, { 4000000000u, 60ull * 60 * 1000 },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        for (uint64_t id = 1; id < 200; id++) {
            uint64_t d = retry_delay_ms(&c, rows[i].attempts, id * 7919);
            uint64_t lo = rows[i].nominal_ms - rows[i].nominal_ms / 10;
            uint64_t hi = rows[i].nominal_ms + rows[i].nominal_ms / 10;
            if (d < lo || d > hi)
                fail_msg("attempts %u id %llu: %llu ms not in [%llu, %llu]", rows[i].attempts,
                         (unsigned long long)id, (unsigned long long)d,
                         (unsigned long long)lo, (unsigned long long)hi);
        }
    }
}

static void test_jitter_reproducible_and_spread(void **state)
{
    (void)state;
    static struct vl_config c;
    cfg_init(&c, 1000, 1000);
    uint64_t min = UINT64_MAX, max = 0, same = 0;
    for (uint64_t id = 1; id <= 1000; id++) {
        uint64_t d = retry_delay_ms(&c, 1, id);
        assert_int_equal(d, retry_delay_ms(&c, 1, id));     /* a pure function */
        same += d == 1000;
        if (d < min) min = d;
        if (d > max) max = d;
    }
    /* 1000 recipients deferred together come back spread over ~+-100 ms */
    assert_true(min >= 900 && max <= 1100);
    assert_true(max - min >= 150);
    assert_true(same < 50);
}

static void test_tiny_base_no_jitter(void **state)
{
    (void)state;
    static struct vl_config c;
    cfg_init(&c, 5, 5);                     /* 10% of 5 ms rounds to 0: exact */
    for (uint64_t id = 1; id < 50; id++)
        assert_int_equal(retry_delay_ms(&c, 3, id), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubles_then_caps),
        cmocka_unit_test(test_jitter_reproducible_and_spread),
        cmocka_unit_test(test_tiny_base_no_jitter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
