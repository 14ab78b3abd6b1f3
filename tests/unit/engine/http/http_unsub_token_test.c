/* http_unsub_token_test.c - one-click unsubscribe tokens (http_unsub.c): they
 * round-trip, are URL-safe, and any changed character, another secret or a
 * field with LF is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "http_unsub.h"
#include "volley/error.h"

#define SECRET "0123456789abcdef-secret"

static void test_round_trip_and_tamper(void **state)
{
    (void)state;
    struct unsub_claims c = { "Reader+x@dst.test", "src.test", "spring-2026" }, got;
    char tok[UNSUB_TOKEN_BYTES_MAX];
    int n = unsub_token_make(SECRET, strlen(SECRET), &c, tok);
    assert_true(n > 0);
    assert_int_equal(strlen(tok), (size_t)n);
    assert_int_equal(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                 "0123456789-_."), (size_t)n);
    assert_int_equal(unsub_token_check(SECRET, strlen(SECRET), tok, (size_t)n, &got), 0);
    assert_string_equal(got.rcpt, c.rcpt);
    assert_string_equal(got.domain, c.domain);
    assert_string_equal(got.campaign, c.campaign);
    for (int i = 0; i < n; i++) {                      /* every single change is caught */
        if (tok[i] == '.')
            continue;
        char t2[UNSUB_TOKEN_BYTES_MAX];
        memcpy(t2, tok, (size_t)n + 1);
        t2[i] = tok[i] == 'A' ? 'B' : 'A';
        assert_int_equal(unsub_token_check(SECRET, strlen(SECRET), t2, (size_t)n, &got),
                         VL_E_INVALID);
    }
    assert_int_equal(unsub_token_check("another-secret-0123", 19, tok, (size_t)n, &got),
                     VL_E_INVALID);
    assert_int_equal(unsub_token_check(SECRET, strlen(SECRET), tok, (size_t)n - 1, &got),
                     VL_E_INVALID);
    assert_int_equal(unsub_token_check(SECRET, strlen(SECRET), "x", 1, &got), VL_E_INVALID);
    struct unsub_claims bad = { "a@b.test", "src.test", "x\ny" };
    assert_int_equal(unsub_token_make(SECRET, strlen(SECRET), &bad, tok), VL_E_INVALID);
}

static void test_empty_campaign(void **state)
{
    (void)state;
    struct unsub_claims c = { "a@b.test", "src.test", "" }, got;
    char tok[UNSUB_TOKEN_BYTES_MAX];
    int n = unsub_token_make(SECRET, strlen(SECRET), &c, tok);
    assert_true(n > 0);
    assert_int_equal(unsub_token_check(SECRET, strlen(SECRET), tok, (size_t)n, &got), 0);
    assert_string_equal(got.campaign, "");
    assert_string_equal(got.rcpt, "a@b.test");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_tamper),
        cmocka_unit_test(test_empty_campaign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
