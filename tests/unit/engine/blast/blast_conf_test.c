/*
 * blast_conf_test.c - blast's value grammars (engine/blast/blast_conf.c):
 * sizes and distributions, a file of sizes, the ramp; and merging results
 * whose time series have different intervals (engine/blast/blast_stats.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blast.h"
#include "volley/error.h"

static void test_size_specs(void **state)
{
    (void)state;
    struct blast_size s;
    char err[256];
    assert_int_equal(blast_size_parse("10k", &s, err, sizeof err), 0);
    assert_int_equal(s.kind, BLAST_SIZE_FIXED);
    assert_int_equal(s.lo, 10240);
    assert_int_equal(blast_size_parse("2M", &s, err, sizeof err), 0);
    assert_int_equal(s.lo, 2u << 20);
    assert_int_equal(blast_size_parse("uniform:1k-20000", &s, err, sizeof err), 0);
    assert_int_equal(s.kind, BLAST_SIZE_UNIFORM);
    assert_int_equal(s.lo, 1024);
    assert_int_equal(s.hi, 20000);
    assert_int_equal(blast_size_parse("lognormal:5k:1.5", &s, err, sizeof err), 0);
    assert_int_equal(s.kind, BLAST_SIZE_LOGNORMAL);
    assert_true(s.median == 5120.0 && s.sigma == 1.5);
    static const char *const bad[] = { "0", "abc", "-5", "65M", "uniform:9-3", "uniform:5",
                                       "lognormal:5k:0", "lognormal:5k", "lognormal:x:1",
                                       "10kb", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(blast_size_parse(bad[i], &s, err, sizeof err), VL_E_INVALID);
        assert_non_null(strstr(err, "--size"));
    }
}

static void test_size_file(void **state)
{
    (void)state;
    char path[] = "/tmp/blast_conf_test.XXXXXX", spec[64], err[256];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# sizes\n1000\n2k\r\n\n300\n", f);
    fclose(f);
    struct blast_size s;
    snprintf(spec, sizeof spec, "file:%s", path);
    assert_int_equal(blast_size_parse(spec, &s, err, sizeof err), 0);
    assert_int_equal(s.kind, BLAST_SIZE_LIST);
    assert_int_equal(s.list_count, 3);
    assert_int_equal(s.list[1], 2048);
    blast_size_fini(&s);
    f = fopen(path, "w");
    fputs("1000\nlots\n", f);
    fclose(f);
    assert_int_equal(blast_size_parse(spec, &s, err, sizeof err), VL_E_INVALID);
    assert_non_null(strstr(err, "line 2"));
    unlink(path);
    assert_int_equal(blast_size_parse(spec, &s, err, sizeof err), VL_E_INVALID);
    assert_non_null(strstr(err, path));
}

static void test_ramp(void **state)
{
    (void)state;
    double a, b;
    uint32_t n;
    assert_int_equal(blast_ramp_parse("100:2000:10", &a, &b, &n), 0);
    assert_true(a == 100 && b == 2000 && n == 10);
    assert_int_equal(blast_ramp_parse("500:100:2", &a, &b, &n), 0);   /* down is fine */
    static const char *const bad[] = { "1:2", "1:2:1", "0:5:3", "1:2:x", "1:2:101", "a:b:c" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(blast_ramp_parse(bad[i], &a, &b, &n), VL_E_INVALID);
}

/* One result at a 1 s interval, one at 4 s: the merge is at 4 s, nothing lost. */
static void test_merge_series_intervals(void **state)
{
    (void)state;
    static struct blast_result a, b;
    assert_int_equal(blast_result_init(&a, 0), 0);
    assert_int_equal(blast_result_init(&b, 0), 0);
    a.series_count = 10;
    for (uint32_t i = 0; i < 10; i++)
        a.series[i].ok = i + 1;                 /* 55 in all */
    b.series_interval_ms = 4000;
    b.series_count = 2;
    b.series[0].ok = 100;
    b.series[1].ok = 7;
    a.ok = 55;
    b.ok = 107;
    a.replies[250] = 3;
    b.replies[250] = 4;
    assert_int_equal(blast_result_merge(&a, &b), 0);
    assert_int_equal(a.series_interval_ms, 4000);
    assert_int_equal(a.series_count, 3);
    assert_int_equal(a.series[0].ok, 1 + 2 + 3 + 4 + 100);
    assert_int_equal(a.series[1].ok, 5 + 6 + 7 + 8 + 7);
    assert_int_equal(a.series[2].ok, 9 + 10);
    assert_int_equal(a.ok, 162);
    assert_int_equal(a.replies[250], 7);
    blast_result_fini(&a);
    blast_result_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_specs),
        cmocka_unit_test(test_size_file),
        cmocka_unit_test(test_ramp),
        cmocka_unit_test(test_merge_series_intervals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
