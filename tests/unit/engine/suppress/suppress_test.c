/* suppress_test.c - the suppression list (suppress.c) on real LMDB files:
 * add/replace/remove, case folding, global before per-domain scope, invalid
 * input refused, batch add, iteration order, and one shared handle per
 * directory in a process. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suppress.h"
#include "volley/error.h"

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static int count_cb(const struct sup_entry *e, void *arg)
{
    char *out = arg;
    strcat(out, e->scope);
    strcat(out, "|");
    strcat(out, e->addr);
    strcat(out, ";");
    return 0;
}

static void test_list(void **state)
{
    (void)state;
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/vl-sup-XXXXXX");
    assert_non_null(mkdtemp(dir));
    struct sup *s = NULL, *s2 = NULL;
    assert_int_equal(sup_open(dir, false, &s), VL_E_NOTFOUND);
    assert_int_equal(sup_open(dir, true, &s), 0);
    assert_int_equal(sup_open(dir, false, &s2), 0);
    assert_ptr_equal(s, s2);                            /* one handle per process */
    sup_close(s2);

    assert_int_equal(sup_add(s, "", "Gone@Example.TEST", SUP_HARD_BOUNCE, 1000), 0);
    assert_int_equal(sup_add(s, "News.Test", "u@x.test", SUP_UNSUBSCRIBE, 2000), 0);
    assert_int_equal(sup_add(s, "", "not an address", SUP_MANUAL, 1), VL_E_INVALID);
    assert_int_equal(sup_add(s, "bad domain!", "a@b.test", SUP_MANUAL, 1), VL_E_INVALID);
    assert_int_equal(sup_add(s, "", "a@b.test", SUP_NONE, 1), VL_E_INVALID);
    const char *many[] = { "m1@y.test", "junk", "m2@y.test" };
    assert_int_equal(sup_add_many(s, "", many, 3, SUP_COMPLAINT, 3000), 2);

    const char *q[] = { "gone@example.test", "u@x.test", "u@x.test", "m2@Y.test", "ok@x.test" };
    const char *doms[] = { NULL, "news.test", "other.test", "news.test", "news.test" };
    enum sup_reason want[] = { SUP_HARD_BOUNCE, SUP_UNSUBSCRIBE, SUP_NONE, SUP_COMPLAINT,
                               SUP_NONE };
    for (size_t i = 0; i < 5; i++) {
        struct sup_entry e;
        assert_int_equal(sup_lookup_many(s, doms[i], &q[i], NULL, 1, &e), 0);
        assert_int_equal(e.reason, want[i]);
    }
    struct sup_entry e;
    assert_int_equal(sup_lookup_many(s, "news.test", &q[1], NULL, 1, &e), 0);
    assert_string_equal(e.scope, "news.test");
    assert_int_equal(e.time_ms, 2000);
    /* replace keeps one entry; global wins over a scoped one */
    assert_int_equal(sup_add(s, "", "u@x.test", SUP_MANUAL, 4000), 0);
    assert_int_equal(sup_lookup_many(s, "news.test", &q[1], NULL, 1, &e), 0);
    assert_int_equal(e.reason, SUP_MANUAL);
    assert_string_equal(e.scope, "");
    char all[1024] = "";
    assert_int_equal(sup_foreach(s, count_cb, all), 0);
    assert_string_equal(all, "|gone@example.test;|m1@y.test;|m2@y.test;|u@x.test;"
                             "news.test|u@x.test;");
    assert_int_equal(sup_rm(s, "", "GONE@example.test"), 0);
    assert_int_equal(sup_rm(s, "", "gone@example.test"), VL_E_NOTFOUND);
    assert_int_equal(sup_reason_parse("unsubscribe"), SUP_UNSUBSCRIBE);
    assert_int_equal(sup_reason_parse("nope"), SUP_NONE);
    assert_string_equal(sup_reason_name(SUP_COMPLAINT), "complaint");
    sup_close(s);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_list) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
