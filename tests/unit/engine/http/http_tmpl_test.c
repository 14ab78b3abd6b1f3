/* http_tmpl_test.c - merge-field templates (http_tmpl.c): parse errors with
 * offsets, names interned once per request, rendering raw and HTML-escaped,
 * defaults, a missing field, the output cap. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_tmpl.h"
#include "volley/error.h"

static struct tmpl_names names;

static char *render_str(const char *src, const struct tmpl_val *vals, enum tmpl_esc esc,
                        int *rc_out, int *missing)
{
    struct tmpl t;
    const char *why = NULL;
    size_t off = 0;
    assert_int_equal(tmpl_parse(&t, src, strlen(src), &names, &why, &off), 0);
    struct hbuf b = { 0 };
    *rc_out = tmpl_render(&t, vals, esc, &b, missing);
    tmpl_fini(&t);
    char *s = calloc(1, b.len + 1);
    assert_non_null(s);
    if (b.len)
        memcpy(s, b.p, b.len);
    hbuf_fini(&b);
    return s;
}

static void test_render_cases(void **state)
{
    (void)state;
    memset(&names, 0, sizeof names);
    /* names get indices in order of first appearance: first=0, code=1 */
    struct tmpl_val vals[2] = { { "<Ann & \"Co\">", 12, true }, { NULL, 0, false } };
    static const struct { const char *src; enum tmpl_esc esc; int rc; const char *want; } c[] = {
        { "Hi {{first}}!", TMPL_RAW, 0, "Hi <Ann & \"Co\">!" },
        { "Hi {{ first }}!", TMPL_HTML, 0, "Hi &lt;Ann &amp; &quot;Co&quot;&gt;!" },
        { "{{ code | default: \"none\" }}", TMPL_RAW, 0, "none" },
        { "{{code|default:'<x>'}}", TMPL_HTML, 0, "&lt;x&gt;" },
        { "a <b> & {{first}} {", TMPL_HTML, 0, "a <b> & &lt;Ann &amp; &quot;Co&quot;&gt; {" },
        { "no fields }} at all", TMPL_RAW, 0, "no fields }} at all" },
        { "x {{ code }} y", TMPL_RAW, VL_E_NOTFOUND, "x " },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        int rc = 0, miss = -1;
        char *s = render_str(c[i].src, vals, c[i].esc, &rc, &miss);
        assert_int_equal(rc, c[i].rc);
        if (rc == 0)
            assert_string_equal(s, c[i].want);
        else
            assert_int_equal(miss, 1);
        free(s);
    }
    assert_int_equal(names.n, 2);                 /* "first" and "code", each once */
    assert_string_equal(names.name[0], "first");
    assert_string_equal(names.name[1], "code");
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct { const char *src; size_t off; const char *why_part; } c[] = {
        { "ab {{ }}", 3, "name" },
        { "{{ 9x }}", 0, "name" },
        { "x{{ a | upper }}", 1, "filter" },
        { "{{ a | default \"x\" }}", 0, "':'" },
        { "{{ a | default: x }}", 0, "quoted" },
        { "{{ a | default: \"x }}", 0, "unterminated" },
        { "ok {{ a }} then {{ b", 16, "}}" },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        struct tmpl t;
        struct tmpl_names n = { 0 };
        const char *why = NULL;
        size_t off = 99;
        assert_int_equal(tmpl_parse(&t, c[i].src, strlen(c[i].src), &n, &why, &off),
                         VL_E_INVALID);
        assert_int_equal(off, c[i].off);
        assert_non_null(why);
        assert_non_null(strstr(why, c[i].why_part));
        assert_null(t.seg);
    }
}

static void test_output_bounded(void **state)
{
    (void)state;
    struct tmpl_names n = { 0 };
    struct tmpl t;
    const char *why = NULL;
    size_t off = 0;
    const char *src = "{{ v }}{{ v }}{{ v }}";
    assert_int_equal(tmpl_parse(&t, src, strlen(src), &n, &why, &off), 0);
    char big[400];
    memset(big, '&', sizeof big);
    struct tmpl_val v = { big, sizeof big, true };
    struct hbuf b = { .max = 1000 };
    int miss = -1;
    assert_int_equal(tmpl_render(&t, &v, TMPL_RAW, &b, &miss), VL_E_TOOBIG);
    assert_true(b.len <= 1000);
    b.len = 0;
    assert_int_equal(tmpl_render(&t, &v, TMPL_HTML, &b, &miss), VL_E_TOOBIG);  /* 5x */
    assert_true(b.len <= 1000);
    hbuf_fini(&b);
    tmpl_fini(&t);
}

static void test_too_many_names(void **state)
{
    (void)state;
    struct tmpl_names *n = calloc(1, sizeof *n);
    assert_non_null(n);
    char src[TMPL_NAMES_MAX * 12 + 64];
    size_t len = 0;
    for (unsigned i = 0; i <= TMPL_NAMES_MAX; i++)
        len += (size_t)snprintf(src + len, sizeof src - len, "{{ n%u }}", i);
    struct tmpl t;
    const char *why = NULL;
    size_t off = 0;
    assert_int_equal(tmpl_parse(&t, src, len, n, &why, &off), VL_E_TOOBIG);
    assert_non_null(strstr(why, "256"));
    free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_cases),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_output_bounded),
        cmocka_unit_test(test_too_many_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
