/* bounce_test.c - the shipped rules classify a table of real-world replies
 * (tests/data/bounce_replies.tsv, >= 200 rows from providers' public bounce
 * documentation) as expected; user rules come first; bad rule files are
 * refused with ORIGIN:LINE; status patterns match by component. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounce.h"
#include "volley/error.h"

#define TABLE_ROWS_MIN 200u

static struct bounce_rules *rules_default(void)
{
    struct bounce_rules *r;
    char err[256] = "";
    assert_int_equal(bounce_rules_create(&r), 0);
    int n = bounce_rules_load_default(r, err, sizeof err);
    if (n < 0)
        fail_msg("shipped rules refused: %s", err);
    assert_true(n > 20);
    return r;
}

/* Split @p line at TABs into at most @p max fields. @return the count. */
static int split_tabs(char *line, char **f, int max)
{
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == '\t') {
            *p = '\0';
            f[n++] = p + 1;
        }
    return n;
}

static void test_real_world_table(void **state)
{
    (void)state;
    const char *src = getenv("VOLLEY_SRC");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/bounce_replies.tsv", src ? src : ".");
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s (VOLLEY_SRC is the source tree)", path);
    struct bounce_rules *r = rules_default();
    char line[4096];
    unsigned rows = 0, wrong = 0, lineno = 0;
    unsigned per_cat[BOUNCE_CAT_COUNT] = { 0 };
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char *fld[5];
        if (split_tabs(line, fld, 5) != 5)
            fail_msg("%s:%u: expected 5 TAB-separated columns", path, lineno);
        int want = bounce_cat_parse(fld[0], strlen(fld[0]));
        if (want <= BOUNCE_NONE)
            fail_msg("%s:%u: unknown category '%s'", path, lineno, fld[0]);
        int code = atoi(fld[1]);
        const char *status = strcmp(fld[2], "-") ? fld[2] : NULL;
        enum bounce_cat got = bounce_classify(r, code, status, fld[3]);
        rows++;
        per_cat[want]++;
        if ((int)got != want) {
            wrong++;
            print_message("line %u: %d %s \"%s\" (%s): got %s, want %s\n", lineno, code,
                          status ? status : "-", fld[3], fld[4], bounce_cat_name(got), fld[0]);
        }
    }
    fclose(f);
    bounce_rules_destroy(r);
    print_message("%u rows, %u misclassified\n", rows, wrong);
    assert_true(rows >= TABLE_ROWS_MIN);
    for (int c = BOUNCE_BAD_MAILBOX; c < BOUNCE_CAT_COUNT; c++)
        if (per_cat[c] == 0)
            fail_msg("no row for category %s", bounce_cat_name((enum bounce_cat)c));
    assert_int_equal(wrong, 0);
}

static void test_user_rules_first(void **state)
{
    (void)state;
    struct bounce_rules *r;
    char err[256];
    assert_int_equal(bounce_rules_create(&r), 0);
    const char *user = "# mine\n\nmailbox_full  5.7.*  acme storage\npolicy 4.2.2 *\n";
    assert_int_equal(bounce_rules_load_text(r, user, strlen(user), "user.conf", err, sizeof err),
                     2);
    assert_true(bounce_rules_load_default(r, err, sizeof err) > 0);
    assert_int_equal(bounce_classify(r, 550, "5.7.1", "ACME storage exhausted"),
                     BOUNCE_MAILBOX_FULL);
    assert_int_equal(bounce_classify(r, 452, "4.2.2", "Mailbox full"), BOUNCE_POLICY);
    /* not the user's: the shipped rules still apply */
    assert_int_equal(bounce_classify(r, 552, "5.2.2", "Mailbox full"), BOUNCE_MAILBOX_FULL);
    assert_int_equal(bounce_classify(r, 550, "5.7.1", "blocked using zen.spamhaus.org"),
                     BOUNCE_POLICY);
    bounce_rules_destroy(r);
}

static void test_status_patterns(void **state)
{
    (void)state;
    struct bounce_rules *r;
    char err[256];
    assert_int_equal(bounce_rules_create(&r), 0);
    const char *t = "dns 5.1.2 *\nauth 5.7 *\nthrottled 4.* *\ncontent *.6.* *\n"
                    "routing * ^exact$\n";
    assert_int_equal(bounce_rules_load_text(r, t, strlen(t), "t", err, sizeof err), 5);
    assert_int_equal(bounce_classify(r, 550, "5.1.2", "x"), BOUNCE_DNS);
    assert_int_equal(bounce_classify(r, 550, "5.1.20", "x"), BOUNCE_OTHER);
    assert_int_equal(bounce_classify(r, 550, "5.7.26", "x"), BOUNCE_AUTH);
    assert_int_equal(bounce_classify(r, 450, "4.1.1", "x"), BOUNCE_THROTTLED);
    assert_int_equal(bounce_classify(r, 554, "5.6.1", "x"), BOUNCE_CONTENT);
    /* no enhanced status: the class of the code, x.0.0 */
    assert_int_equal(bounce_classify(r, 421, NULL, "x"), BOUNCE_THROTTLED);
    assert_int_equal(bounce_classify(r, 550, "", "EXACT"), BOUNCE_ROUTING);
    assert_int_equal(bounce_classify(r, 550, "", "not exact"), BOUNCE_OTHER);
    assert_int_equal(bounce_classify(r, 550, "5.0.0", NULL), BOUNCE_OTHER);
    assert_int_equal(bounce_classify(NULL, 550, "5.1.1", "x"), BOUNCE_OTHER);
    bounce_rules_destroy(r);
}

static void test_bad_rules(void **state)
{
    (void)state;
    static const struct { const char *text, *err; } cases[] = {
        { "nosuch 5.1.1 *\n", "t:1: unknown category 'nosuch'" },
        { "# c\npolicy\n", "t:2: missing STATUS and PATTERN" },
        { "policy 5.1.1\n", "t:1: missing PATTERN ('*' for any text)" },
        { "policy 5.x.1 *\n", "t:1: bad STATUS (expected e.g. 5.1.1, 5.7.*, *) '5.x.1'" },
        { "policy 3.1.1 *\n", "t:1: STATUS class must be 2, 4, 5 or * '3.1.1'" },
        { "policy 5.1.1.1 *\n", "t:1: bad STATUS (expected e.g. 5.1.1, 5.7.*, *) '5.1.1.1'" },
        { "ok * *\n", "t:1: unknown category 'ok'" },
        { "none * *\n", "t:1: unknown category 'none'" },
        { "policy * (unclosed\n", "t:1: bad PATTERN" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bounce_rules *r;
        char err[256] = "";
        assert_int_equal(bounce_rules_create(&r), 0);
        const char *ok = "policy * spam\n";
        assert_int_equal(bounce_rules_load_text(r, ok, strlen(ok), "ok", err, sizeof err), 1);
        int rc = bounce_rules_load_text(r, cases[i].text, strlen(cases[i].text), "t", err,
                                        sizeof err);
        assert_int_equal(rc, VL_E_INVALID);
        if (strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
            fail_msg("case %zu: error '%s', want '%s'", i, err, cases[i].err);
        assert_int_equal(bounce_rules_count(r), 1);      /* nothing of the bad text kept */
        bounce_rules_destroy(r);
    }
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/bounce_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *t = "inactive_mailbox 5.9.9 gone fishing\n";
    assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
    close(fd);
    struct bounce_rules *r;
    char err[256];
    assert_int_equal(bounce_rules_create(&r), 0);
    assert_int_equal(bounce_rules_load_file(r, path, err, sizeof err), 1);
    assert_int_equal(bounce_classify(r, 559, "5.9.9", "He went fishing; GONE FISHING"),
                     BOUNCE_INACTIVE_MAILBOX);
    unlink(path);
    assert_true(bounce_rules_load_file(r, path, err, sizeof err) < 0);
    assert_non_null(strstr(err, path));
    bounce_rules_destroy(r);
}

static void test_names(void **state)
{
    (void)state;
    for (int c = 0; c < BOUNCE_CAT_COUNT; c++) {
        const char *n = bounce_cat_name((enum bounce_cat)c);
        assert_int_equal(bounce_cat_parse(n, strlen(n)), c);
    }
    assert_string_equal(bounce_cat_name(BOUNCE_MAILBOX_FULL), "mailbox_full");
    assert_int_equal(bounce_cat_parse("policyx", 7), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_world_table),
        cmocka_unit_test(test_user_rules_first),
        cmocka_unit_test(test_status_patterns),
        cmocka_unit_test(test_bad_rules),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
