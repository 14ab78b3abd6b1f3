/*
 * smtp_server_auth_test.c - AUTH (RFC 4954) in the server machine: offered
 * only after TLS, refused out of order (538 before TLS, 503 authenticated or in
 * a transaction, 502 not offered), and after a 334 the next line is a SASL
 * response, never a command (also when it looks like one), "*" cancels.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "smtp_server_drive.h"

/* A toy policy: AUTH -> 334; a response "dXNlcg==" (LOGIN's user) -> 334,
 * "cGFzcw==" -> 235, others: the proposed 535 (or 501 for "*"). */
static uint16_t auth_policy(const struct smtp_server_event *ev, void *arg)
{
    (void)arg;
    if (ev->cmd != SMTP_SCMD_AUTH)
        return 0;
    if (ev->auth_response && ev->arg_len == 8 && !memcmp(ev->arg, "dXNlcg==", 8))
        return 334;
    if (ev->auth_response)
        return ev->arg_len == 8 && !memcmp(ev->arg, "cGFzcw==", 8) ? 235 : 0;
    return ev->reply.code == 535 ? 334 : 0;
}

/* Run @p after_tls after EHLO + STARTTLS (fed apart: STARTTLS eats the rest). */
static void run_tls(struct drive *d, bool auth, const char *after_tls, char *codes, size_t cap)
{
    struct smtp_server_conf conf;
    conf_make(CONF_STD, &conf);
    conf.starttls = true;
    conf.auth = auth;
    drive_init(d, &conf);
    d->policy = auth_policy;
    drive_feed(d, "", 0);
    drive_feed(d, EH "STARTTLS\r\n", strlen(EH "STARTTLS\r\n"));
    drive_feed(d, after_tls, strlen(after_tls));
    drive_codes(d, codes, cap);
}

static void expect(struct drive *d, bool auth, const char *in, const char *want)
{
    char got[256];
    run_tls(d, auth, in, got, sizeof got);
    if (strcmp(got, want) != 0)
        fail_msg("'%s': got '%s', want '%s'", in, got, want);
}

static void test_sequences(void **state)
{
    (void)state;
    static struct drive d;
    expect(&d, false, EH "AUTH PLAIN dGVzdA==\r\n", "220 250 220 250 502");
    expect(&d, true, EH "AUTH LOGIN\r\ndXNlcg==\r\ncGFzcw==\r\nAUTH PLAIN x\r\n" MF,
           "220 250 220 250 334 334 235 503 250");
    expect(&d, true, EH "AUTH LOGIN\r\nMAIL FROM:<a@b.org>\r\nNOOP\r\n",
           "220 250 220 250 334 535 250");                 /* a response, not a MAIL */
    expect(&d, true, EH "AUTH LOGIN\r\n*\r\nNOOP\r\n", "220 250 220 250 334 501 250");
    expect(&d, true, EH MF "AUTH PLAIN x\r\n", "220 250 220 250 250 503");
    expect(&d, true, "AUTH PLAIN x\r\n", "220 250 220 503");  /* no EHLO after TLS */
    expect(&d, true, EH "AUTH\r\n", "220 250 220 250 501");
    expect(&d, true, EH "AUTH PLAIN\r\nbad\r\nAUTH PLAIN\r\ncGFzcw==\r\n",
           "220 250 220 250 334 535 334 235");
}

static void test_authed_flag(void **state)
{
    (void)state;
    static struct drive d;
    char got[256];
    run_tls(&d, true, EH "AUTH PLAIN\r\ncGFzcw==\r\n", got, sizeof got);
    assert_true(smtp_server_authed(&d.srv));
    run_tls(&d, true, EH "AUTH PLAIN\r\nwrong\r\n", got, sizeof got);
    assert_false(smtp_server_authed(&d.srv));
}

static void test_before_tls(void **state)
{
    (void)state;
    static struct drive d;
    struct smtp_server_conf conf;
    conf_make(CONF_STD, &conf);
    conf.starttls = true;
    conf.auth = true;
    drive_run(&d, &conf, EH "AUTH PLAIN dGVzdA==\r\n", strlen(EH "AUTH PLAIN dGVzdA==\r\n"), 0);
    char got[64];
    drive_codes(&d, got, sizeof got);
    assert_string_equal(got, "220 250 538");
    assert_null(strstr(d.out, "AUTH PLAIN LOGIN"));       /* not offered before TLS */
    char codes[64];
    run_tls(&d, true, EH, codes, sizeof codes);
    assert_non_null(strstr(d.out, "250-AUTH PLAIN LOGIN\r\n") ? d.out
                    : strstr(d.out, "250 AUTH PLAIN LOGIN\r\n"));
}

/* Implicit TLS (RFC 8314): tls_started before the greeting keeps the greeting
 * first; STARTTLS is then not offered, AUTH is. */
static void test_implicit_tls(void **state)
{
    (void)state;
    static struct drive d;
    struct smtp_server_conf conf;
    conf_make(CONF_STD, &conf);
    conf.starttls = true;
    conf.auth = true;
    drive_init(&d, &conf);
    smtp_server_tls_started(&d.srv);
    drive_feed(&d, "", 0);
    drive_feed(&d, EH "STARTTLS\r\n", strlen(EH "STARTTLS\r\n"));
    char got[64];
    drive_codes(&d, got, sizeof got);
    assert_string_equal(got, "220 250 503");
    assert_null(strstr(d.out, "250-STARTTLS"));
    assert_non_null(strstr(d.out, "AUTH PLAIN LOGIN"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_authed_flag),
        cmocka_unit_test(test_before_tls),
        cmocka_unit_test(test_implicit_tls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
