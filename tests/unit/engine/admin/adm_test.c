/* adm_test.c - operator holds (adm.c) on real LMDB files: set/lookup/clear,
 * case folding, the bounce/purge cut-off (only mail queued before the
 * action), purge over bounce over suspend, invalid domains refused, and the
 * holds reloaded after a close/open (a restart); MX group and egress holds
 * (suspensions only, label-boundary suffix match, IP normal form). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adm.h"
#include "volley/error.h"

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void test_holds(void **state)
{
    (void)state;
    char dir[] = "/tmp/adm-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(adm_open(dir, false), 0);
    assert_null(adm_get());                          /* nothing there, nothing made */
    assert_int_equal(adm_open(dir, true), 0);
    struct adm *a = adm_get();
    assert_non_null(a);
    assert_false(adm_active(a));
    struct adm_hold h;
    adm_lookup(a, "a.test", 6, "", "", "s@src.test", 0, &h);
    assert_int_equal(h.kind, ADM_NONE);
    assert_int_equal(adm_set(a, ADM_SUSPEND, ADM_DOMAIN, "A.Test", 1000, "window"), 0);
    assert_true(adm_active(a));
    adm_lookup(a, "a.TEST", 6, "", "", "s@src.test", 5000, &h);
    assert_int_equal(h.kind, ADM_SUSPEND);
    assert_string_equal(h.domain, "a.test");
    assert_string_equal(h.note, "window");
    /* bounce covers mail queued before it only; it beats suspend */
    assert_int_equal(adm_set(a, ADM_BOUNCE, ADM_DOMAIN, "a.test", 2000, ""), 0);
    adm_lookup(a, "a.test", 6, "", "", "s@src.test", 1500, &h);
    assert_int_equal(h.kind, ADM_BOUNCE);
    adm_lookup(a, "a.test", 6, "", "", "s@src.test", 2500, &h);
    assert_int_equal(h.kind, ADM_SUSPEND);
    assert_int_equal(adm_set(a, ADM_PURGE, ADM_DOMAIN, "a.test", 2000, ""), 0);
    adm_lookup(a, "a.test", 6, "", "", "s@src.test", 1500, &h);
    assert_int_equal(h.kind, ADM_PURGE);
    adm_lookup(a, "b.test", 6, "", "", "s@src.test", 0, &h);
    assert_int_equal(h.kind, ADM_NONE);
    assert_int_equal(adm_set(a, ADM_SUSPEND, ADM_DOMAIN, "not..valid", 1, ""), VL_E_INVALID);
    assert_int_equal(adm_set(a, ADM_NONE, ADM_DOMAIN, "a.test", 1, ""), VL_E_INVALID);
    assert_int_equal(adm_clear(a, ADM_SUSPEND, ADM_DOMAIN, "b.test"), VL_E_NOTFOUND);
    assert_int_equal(adm_clear(a, ADM_PURGE, ADM_DOMAIN, "a.test"), 0);
    /* a restart: the holds are reloaded from DATA/admin */
    adm_close();
    assert_null(adm_get());
    assert_int_equal(adm_open(dir, false), 0);
    a = adm_get();
    assert_non_null(a);
    struct adm_hold list[4];
    assert_int_equal(adm_list(a, list, 4), 2);
    adm_lookup(a, "a.test", 6, "", "", "s@src.test", 2500, &h);
    assert_int_equal(h.kind, ADM_SUSPEND);
    assert_int_equal(h.time_ms, 1000);
    assert_string_equal(h.note, "window");
    adm_lookup(a, "a.test", 6, "", "", "s@src.test", 1500, &h);
    assert_int_equal(h.kind, ADM_BOUNCE);
    assert_int_equal(adm_clear(a, ADM_SUSPEND, ADM_DOMAIN, "a.test"), 0);
    assert_int_equal(adm_clear(a, ADM_BOUNCE, ADM_DOMAIN, "A.TEST"), 0);
    assert_false(adm_active(a));
    /* campaign and sender scopes */
    assert_int_equal(adm_set(a, ADM_SUSPEND, ADM_CAMPAIGN, "Spring-1", 3000, ""), 0);
    assert_int_equal(adm_set(a, ADM_BOUNCE, ADM_SENDER, "News@Src.TEST", 3000, ""), 0);
    assert_int_equal(adm_set(a, ADM_SUSPEND, ADM_CAMPAIGN, "bad id", 3000, ""), VL_E_INVALID);
    assert_int_equal(adm_set(a, ADM_SUSPEND, ADM_SENDER, "no-at-sign", 3000, ""), VL_E_INVALID);
    adm_lookup(a, "x.test", 6, "Spring-1", "", "other@src.test", 5000, &h);
    assert_int_equal(h.kind, ADM_SUSPEND);
    assert_int_equal(h.scope, ADM_CAMPAIGN);
    assert_string_equal(adm_hold_value(&h), "Spring-1");
    adm_lookup(a, "x.test", 6, "spring-1", "", "other@src.test", 5000, &h);   /* ids: exact */
    assert_int_equal(h.kind, ADM_NONE);
    adm_lookup(a, "x.test", 6, "", "", "news@src.test", 2000, &h);
    assert_int_equal(h.kind, ADM_BOUNCE);
    assert_int_equal(h.scope, ADM_SENDER);
    assert_string_equal(adm_hold_value(&h), "news@src.test");
    adm_lookup(a, "x.test", 6, "", "", "news@src.test", 4000, &h);             /* queued after */
    assert_int_equal(h.kind, ADM_NONE);
    adm_close();
    assert_int_equal(adm_open(dir, false), 0);
    a = adm_get();
    adm_lookup(a, "x.test", 6, "Spring-1", "", "", 5000, &h);
    assert_int_equal(h.scope, ADM_CAMPAIGN);
    assert_int_equal(adm_clear(a, ADM_SUSPEND, ADM_CAMPAIGN, "Spring-1"), 0);
    assert_int_equal(adm_clear(a, ADM_BOUNCE, ADM_SENDER, "news@src.test"), 0);
    assert_int_equal(adm_kind_parse("purge"), ADM_PURGE);
    assert_int_equal(adm_kind_parse("nope"), ADM_NONE);
    adm_close();
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_mx_egress(void **state)
{
    (void)state;
    char dir[] = "/tmp/adm-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(adm_open(dir, true), 0);
    struct adm *a = adm_get();
    struct adm_hold h;
    const char *mx1[] = { "ASPMX.L.Google.com.", "alt1.aspmx.l.google.com" };
    const char *mx2[] = { "mx.notgoogle.com" };
    const char *mx3[] = { "mx.other.test" };
    assert_false(adm_mx_held(a, "gmail", mx1, 2, &h));        /* no holds at all */
    assert_false(adm_egress_held(a, "127.0.0.2"));
    assert_int_equal(adm_set(a, ADM_SUSPEND, ADM_MX, "Google.COM", 100, "outage"), 0);
    assert_int_equal(adm_set(a, ADM_SUSPEND, ADM_MX, "bulkpolicy", 100, ""), 0);
    assert_int_equal(adm_set(a, ADM_BOUNCE, ADM_MX, "google.com", 100, ""), VL_E_INVALID);
    assert_int_equal(adm_set(a, ADM_SUSPEND, ADM_MX, ".google.com", 100, ""), VL_E_INVALID);
    assert_int_equal(adm_set(a, ADM_SUSPEND, ADM_MX, "a b", 100, ""), VL_E_INVALID);
    assert_true(adm_mx_held(a, NULL, mx1, 2, &h));
    assert_int_equal(h.scope, ADM_MX);
    assert_string_equal(adm_hold_value(&h), "google.com");
    assert_string_equal(h.note, "outage");
    assert_false(adm_mx_held(a, NULL, mx2, 1, &h));           /* not at a label boundary */
    assert_false(adm_mx_held(a, "other", mx3, 1, &h));
    assert_true(adm_mx_held(a, "BulkPolicy", mx3, 1, &h));    /* by policy name */
    /* the lease's lookup ignores route holds */
    adm_lookup(a, "google.com", 10, "", "", "s@src.test", 0, &h);
    assert_int_equal(h.kind, ADM_NONE);
    assert_int_equal(adm_set(a, ADM_SUSPEND, ADM_EGRESS, "2001:DB8:0:0::1", 100, ""), 0);
    assert_int_equal(adm_set(a, ADM_SUSPEND, ADM_EGRESS, "127.0.0.2", 100, ""), 0);
    assert_int_equal(adm_set(a, ADM_SUSPEND, ADM_EGRESS, "127.0.0.300", 100, ""),
                     VL_E_INVALID);
    assert_int_equal(adm_set(a, ADM_PURGE, ADM_EGRESS, "127.0.0.3", 100, ""), VL_E_INVALID);
    assert_true(adm_egress_held(a, "127.0.0.2"));
    assert_true(adm_egress_held(a, "2001:db8::1"));
    assert_false(adm_egress_held(a, "127.0.0.3"));
    /* a restart keeps them */
    adm_close();
    assert_int_equal(adm_open(dir, false), 0);
    a = adm_get();
    assert_true(adm_egress_held(a, "2001:db8::1"));
    assert_true(adm_mx_held(a, NULL, mx1, 2, &h));
    assert_int_equal(adm_clear(a, ADM_SUSPEND, ADM_MX, "google.com"), 0);
    assert_false(adm_mx_held(a, NULL, mx1, 2, &h));
    assert_int_equal(adm_clear(a, ADM_SUSPEND, ADM_EGRESS, "2001:db8::1"), 0);
    assert_false(adm_egress_held(a, "2001:db8::1"));
    assert_true(adm_egress_held(a, "127.0.0.2"));
    adm_close();
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_holds),
        cmocka_unit_test(test_mx_egress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
