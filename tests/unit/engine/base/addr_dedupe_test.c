/* addr_dedupe_test.c - repeated recipients of one message are dropped: domain
 * case-insensitively, local part as written (or folded), first one kept. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr_dedupe.h"

static void test_dedupe_domain_case(void **state)
{
    (void)state;
    char *v[] = { "dup@alpha.test", "x@beta.test", "dup@ALPHA.test", "dup@alpha.TEST",
                  "DUP@alpha.test", "x@beta.test" };
    long kept = vl_addr_dedupe(v, 6, false);
    assert_int_equal(kept, 3);
    assert_string_equal(v[0], "dup@alpha.test");    /* first of each, in order */
    assert_string_equal(v[1], "x@beta.test");
    assert_string_equal(v[2], "DUP@alpha.test");    /* local part as written */
}

static void test_dedupe_fold_local(void **state)
{
    (void)state;
    char *v[] = { "Dup@alpha.test", "dup@ALPHA.test", "DUP@alpha.test", "other@alpha.test" };
    assert_int_equal(vl_addr_dedupe(v, 4, true), 2);
    assert_string_equal(v[0], "Dup@alpha.test");
    assert_string_equal(v[1], "other@alpha.test");
}

static void test_dedupe_quoted_at(void **state)
{
    (void)state;
    /* The domain follows the last '@'; "a@b"@x and a@b@x-like look-alikes differ. */
    char *v[] = { "\"a@b\"@x.test", "\"a@B\"@x.test", "\"a@b\"@X.test" };
    assert_int_equal(vl_addr_dedupe(v, 3, false), 2);
    assert_string_equal(v[0], "\"a@b\"@x.test");
    assert_string_equal(v[1], "\"a@B\"@x.test");
}

static void test_dedupe_small(void **state)
{
    (void)state;
    char *one[] = { "a@b.test" };
    assert_int_equal(vl_addr_dedupe(NULL, 0, false), 0);
    assert_int_equal(vl_addr_dedupe(one, 1, false), 1);
}

/* 100,000 addresses, each present three times in a shuffled order: exactly
 * the 100,000 first occurrences stay, in order, and every pointer survives. */
static void test_dedupe_many(void **state)
{
    (void)state;
    enum { N = 100000, R = 3 };
    char **v = calloc(N * R, sizeof *v);
    char *buf = calloc(N * R, 32);
    assert_non_null(v);
    assert_non_null(buf);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < N * R; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        snprintf(buf + i * 32, 32, "u%zu@D%zu.TEST", i % N, (i % N) % 97);
        if (i % R == 1)
            buf[i * 32 + strlen(buf + i * 32) - 1] = 't';   /* case of the domain differs */
        v[i] = buf + i * 32;
    }
    for (size_t i = N * R - 1; i > 0; i--) {                /* Fisher-Yates */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t j = (size_t)(x % (i + 1));
        char *t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    char **orig = malloc(N * R * sizeof *orig);
    assert_non_null(orig);
    memcpy(orig, v, N * R * sizeof *orig);
    assert_int_equal(vl_addr_dedupe(v, N * R, false), N);
    unsigned char *seen = calloc(N, 1);
    assert_non_null(seen);
    size_t k = 0;
    for (size_t i = 0; i < N * R; i++) {               /* first occurrences, in order */
        size_t u = strtoul(orig[i] + 1, NULL, 10);
        if (!seen[u]) {
            seen[u] = 1;
            assert_ptr_equal(v[k], orig[i]);
            k++;
        }
    }
    assert_int_equal(k, N);
    unsigned char *moved = calloc(N * R, 1);              /* a permutation of the input */
    assert_non_null(moved);
    for (size_t i = 0; i < N * R; i++) {
        size_t at = (size_t)(v[i] - buf) / 32;
        assert_int_equal(moved[at], 0);
        moved[at] = 1;
    }
    free(moved);
    free(seen);
    free(orig);
    free(buf);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedupe_domain_case),
        cmocka_unit_test(test_dedupe_fold_local),
        cmocka_unit_test(test_dedupe_quoted_at),
        cmocka_unit_test(test_dedupe_small),
        cmocka_unit_test(test_dedupe_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
