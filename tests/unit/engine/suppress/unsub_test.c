/* unsub_test.c - one-click unsubscribe (unsub.c): tokens round-trip, are
 * URL-safe, and any changed character, another secret or a field with LF is
 * refused; --unsub parsing, the domain lookup, X-Campaign and the header
 * lines made at delivery. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unsub.h"
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

static void test_conf_and_headers(void **state)
{
    (void)state;
    char path[] = "/tmp/vl-unsub-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, SECRET "\n", sizeof SECRET), (ssize_t)sizeof SECRET);
    close(fd);
    struct unsub_conf c;
    char buf[600];
    const char *why = NULL;
    const char *specs[] = { "Src.Test=https://u.example/x/", "b.test=http://127.0.0.1:8/" };
    assert_int_equal(unsub_conf_parse(&c, specs, 2, path, buf, sizeof buf, &why), 0);
    assert_string_equal(c.dom[0].domain, "src.test");
    assert_string_equal(c.dom[0].base, "https://u.example/x");
    const char *bad[] = { "src.test=ftp://x" };
    assert_int_equal(unsub_conf_parse(&c, bad, 1, path, buf, sizeof buf, &why), -1);
    assert_non_null(strstr(why, "ftp://x"));
    assert_int_equal(unsub_conf_parse(&c, specs, 2, "/nonexistent/secret", buf, sizeof buf,
                                      &why), -1);
    assert_int_equal(unsub_conf_parse(&c, specs, 2, path, buf, sizeof buf, &why), 0);
    unlink(path);
    assert_null(unsub_conf_for(&c, "", 0));
    assert_null(unsub_conf_for(&c, "a@other.test", 12));
    assert_null(unsub_conf_for(NULL, "a@src.test", 10));
    const struct unsub_dom *d = unsub_conf_for(&c, "a@SRC.test", 10);
    assert_ptr_equal(d, &c.dom[0]);
    const uint8_t msg[] = "From: a@src.test\r\nX-Campaign:  spring 26 \r\n\r\nX-Campaign: no\r\n";
    const char *camp;
    size_t cl = unsub_campaign_of(msg, sizeof msg - 1, &camp);
    assert_int_equal(cl, 9);
    assert_memory_equal(camp, "spring 26", 9);
    const char *none;
    assert_int_equal(unsub_campaign_of((const uint8_t *)"A: b\r\n\r\n", 8, &none), 0);
    assert_string_equal(none, "");
    char out[UNSUB_HEADERS_BYTES_MAX];
    int n = unsub_headers(&c, d, "r@dst.test", camp, cl, out, sizeof out);
    assert_true(n > 0);
    assert_true(strncmp(out, "List-Unsubscribe: <https://u.example/x/u/", 41) == 0);
    assert_non_null(strstr(out, ">\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
    char *tok = out + 41, *end = strchr(tok, '>');
    assert_non_null(end);
    struct unsub_claims got;
    assert_int_equal(unsub_token_check(c.secret, c.secret_len, tok, (size_t)(end - tok), &got),
                     0);
    assert_string_equal(got.rcpt, "r@dst.test");
    assert_string_equal(got.domain, "src.test");
    assert_string_equal(got.campaign, "spring 26");
    char mt[UNSUB_HEADERS_BYTES_MAX + 64];
    snprintf(mt, sizeof mt, ",\r\n <mailto:unsubscribe@src.test?subject=%.*s>\r\n",
             (int)(end - tok), tok);
    assert_non_null(strstr(out, mt));                 /* the mailto form, same token */
    assert_true(unsub_mailto_addr(&c, "Unsubscribe@SRC.test", 20));
    assert_false(unsub_mailto_addr(&c, "unsubscribe@other.test", 22));
    assert_false(unsub_mailto_addr(&c, "news@src.test", 13));
    const uint8_t m2[] = "From: a@b.test\r\nSubject: abc\r\n  def.g\r\nX: y\r\n\r\nSubject: no\r\n";
    char st[64];
    assert_int_equal(unsub_subject_token(m2, sizeof m2 - 1, st, sizeof st), 8);
    assert_string_equal(st, "abcdef.g");
    /* a token whose line would pass 998 octets is not made */
    char big_camp[UNSUB_CAMPAIGN_BYTES_MAX];
    memset(big_camp, 'c', sizeof big_camp - 1);
    char big_rcpt[250];
    memset(big_rcpt, 'r', 60);
    snprintf(big_rcpt + 60, sizeof big_rcpt - 60, "@%0180d.test", 0);
    assert_true(unsub_headers(&c, d, big_rcpt, big_camp, sizeof big_camp - 1, out,
                              sizeof out) > 0);                  /* 717-octet token: fits */
    struct unsub_dom longbase = *d;
    snprintf(longbase.base, sizeof longbase.base, "https://%0300d.example", 0);
    assert_int_equal(unsub_headers(&c, &longbase, big_rcpt, big_camp, sizeof big_camp - 1, out,
                                   sizeof out), VL_E_INVALID);   /* the line would pass 998 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_and_headers),
        cmocka_unit_test(test_round_trip_and_tamper),
        cmocka_unit_test(test_empty_campaign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
