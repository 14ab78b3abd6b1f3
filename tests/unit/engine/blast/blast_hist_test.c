/*
 * blast_hist_test.c - the blast latency histogram (engine/blast/blast_hist.c):
 * exact bucket bounds of the log-linear layout, the relative-error bound of
 * every reported percentile against a sorted reference, merge equals
 * recording everything in one, clamping above max_bits, and bad layouts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blast_hist.h"

static void test_layout_exact_bounds(void **state)
{
    (void)state;
    struct blast_hist h;
    /* S = 3: 8 exact buckets, then 4 per power of two; max_bits 6: k = 1..3. */
    assert_int_equal(blast_hist_init(&h, 3, 6), 0);
    assert_int_equal(h.buckets, 8 + 3 * 4);
    for (uint64_t v = 0; v < 8; v++) {
        assert_int_equal(blast_hist_index(&h, v), v);
        assert_int_equal(blast_hist_lower(&h, (uint32_t)v), v);
        assert_int_equal(blast_hist_upper(&h, (uint32_t)v), v);
    }
    /* k = 1: [8,16) in widths of 2: 8-9, 10-11, 12-13, 14-15 -> 8..11 */
    static const struct { uint64_t v; uint32_t idx; uint64_t lo, hi; } c[] = {
        { 8, 8, 8, 9 },     { 9, 8, 8, 9 },     { 10, 9, 10, 11 },  { 15, 11, 14, 15 },
        { 16, 12, 16, 19 }, { 19, 12, 16, 19 }, { 20, 13, 20, 23 }, { 31, 15, 28, 31 },
        { 32, 16, 32, 39 }, { 63, 19, 56, 63 },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        assert_int_equal(blast_hist_index(&h, c[i].v), c[i].idx);
        assert_int_equal(blast_hist_lower(&h, c[i].idx), c[i].lo);
        assert_int_equal(blast_hist_upper(&h, c[i].idx), c[i].hi);
    }
    /* Buckets tile the range: each starts right after the previous one. */
    for (uint32_t i = 1; i < h.buckets; i++)
        assert_int_equal(blast_hist_lower(&h, i), blast_hist_upper(&h, i - 1) + 1);
    assert_int_equal(blast_hist_upper(&h, h.buckets - 1), 63);
    /* Clamped: 64 and beyond land in the last bucket, min/max stay exact. */
    blast_hist_record(&h, 1000);
    blast_hist_record(&h, 5);
    assert_int_equal(blast_hist_index(&h, 64), h.buckets - 1);
    assert_int_equal(h.clamped, 1);
    assert_int_equal(h.max, 1000);
    assert_int_equal(h.min, 5);
    assert_int_equal(blast_hist_quantile(&h, 1.0), 1000);
    assert_int_equal(blast_hist_quantile(&h, 0.5), 5);
    blast_hist_fini(&h);
}

static void test_bad_layout(void **state)
{
    (void)state;
    struct blast_hist h;
    assert_int_equal(blast_hist_init(&h, 1, 10), -EINVAL);
    assert_int_equal(blast_hist_init(&h, 17, 40), -EINVAL);
    assert_int_equal(blast_hist_init(&h, 8, 7), -EINVAL);
    assert_int_equal(blast_hist_init(&h, 8, 64), -EINVAL);
    assert_int_equal(blast_hist_buckets(8, 37), 256 + 29 * 128);
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Every percentile is the upper bound of the true value's bucket: never below
 * the true value and at most 2^-(S-1) above it (relative). */
static void test_percentile_error_bound(void **state)
{
    (void)state;
    enum { N = 200000 };
    uint64_t *v = malloc(N * sizeof *v);
    assert_non_null(v);
    struct blast_hist h;
    const uint32_t s = 8;
    assert_int_equal(blast_hist_init(&h, s, 40), 0);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < N; i++) {
        /* log-uniform over 1 ns .. ~1 s: every octave gets values */
        uint64_t r = rng_next(&seed);
        v[i] = (uint64_t)exp((double)(r % 1000000) / 1000000.0 * log(1e9)) + (r >> 60);
        blast_hist_record(&h, v[i]);
    }
    qsort(v, N, sizeof *v, cmp_u64);
    const double bound = 1.0 / (double)(1u << (s - 1));
    static const double qs[] = { 0.0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0 };
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        uint64_t rank = (uint64_t)ceil(qs[i] * N);
        uint64_t truth = v[(rank ? rank : 1) - 1];
        uint64_t got = blast_hist_quantile(&h, qs[i]);
        assert_true(got >= truth);
        assert_true((double)(got - truth) <= bound * (double)truth);
    }
    assert_int_equal(blast_hist_quantile(&h, 1.0), v[N - 1]);
    assert_int_equal(h.min, v[0]);
    assert_int_equal(h.count, N);
    blast_hist_fini(&h);
    free(v);
}

static void test_merge_equals_one(void **state)
{
    (void)state;
    struct blast_hist a, b, all, other;
    assert_int_equal(blast_hist_init(&a, 6, 30), 0);
    assert_int_equal(blast_hist_init(&b, 6, 30), 0);
    assert_int_equal(blast_hist_init(&all, 6, 30), 0);
    assert_int_equal(blast_hist_init(&other, 7, 30), 0);
    uint64_t seed = 42;
    for (int i = 0; i < 50000; i++) {
        uint64_t x = rng_next(&seed) % 5000000;
        blast_hist_record(i % 3 ? &a : &b, x);
        blast_hist_record(&all, x);
    }
    blast_hist_record_n(&a, 77, 5);
    blast_hist_record_n(&all, 77, 5);
    assert_int_equal(blast_hist_merge(&a, &b), 0);
    assert_int_equal(a.count, all.count);
    assert_int_equal(a.min, all.min);
    assert_int_equal(a.max, all.max);
    assert_memory_equal(a.counts, all.counts, all.buckets * sizeof *all.counts);
    assert_int_equal(blast_hist_quantile(&a, 0.99), blast_hist_quantile(&all, 0.99));
    assert_int_equal(blast_hist_merge(&a, &other), -EINVAL);
    blast_hist_reset(&a);
    assert_int_equal(a.count, 0);
    assert_int_equal(blast_hist_quantile(&a, 0.5), 0);
    blast_hist_fini(&a);
    blast_hist_fini(&b);
    blast_hist_fini(&all);
    blast_hist_fini(&other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_exact_bounds),
        cmocka_unit_test(test_bad_layout),
        cmocka_unit_test(test_percentile_error_bound),
        cmocka_unit_test(test_merge_equals_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
