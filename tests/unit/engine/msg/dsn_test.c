/* dsn_test.c - RFC 3464 DSNs, checked here and by Python's email parser. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dsn.h"
#include "volley/error.h"

static const char orig[] =
    "From: \"Rich Blum\" <rich@localhost>\r\n"
    "To: user1@company.tld, user2@company.tld\r\n"
    "Subject: tema\r\n"
    "Message-ID: <abc@example.org>\r\n"
    "\r\n"
    "Hi!\r\nSECRET BODY\r\n";

static int run_checker(const char *dsn, size_t len, const char *args)
{
    const char *src = getenv("VOLLEY_SRC");
    if (!src)
        fail_msg("VOLLEY_SRC is not set (run the tests through ctest)");
    if (system("python3 -c 'import email' 2>/dev/null") != 0)
        fail_msg("python3 with its email package is missing (scripts/setup.sh installs it)");
    char path[] = "/tmp/vl_dsn_testXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, dsn, len), (ssize_t)len);
    close(fd);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 %s/tests/tools/dsn_check.py %s %s", src, path, args);
    int st = system(cmd);
    unlink(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_failed_one_of_three(void **state)
{
    (void)state;
    struct dsn_rcpt r[] = {
        { .addr = "user2@company.tld", .action = DSN_ACTION_FAILED, .status = "5.1.1",
          .remote_mta = "mx1.company.tld", .code = 550,
          .diag = "5.1.1 user2@company.tld unknown\r\nX-Injected: yes\x01",
          .last_attempt_ms = 1767225600000 },
    };
    struct dsn_input in = {
        .reporting_mta = "volley.example.net", .postmaster = "postmaster@volley.example.net",
        .return_path = "rich@localhost", .arrival_ms = 1767225000000,
        .now_ms = 1767225600000, .orig = orig, .orig_len = sizeof orig - 1,
        .rcpts = r, .rcpt_count = 1, .unique = 42,
    };
    size_t cap = dsn_size_max(&in);
    char *out = malloc(cap);
    long n = dsn_build(&in, out, cap);
    assert_true(n > 0);
    assert_null(memmem(out, (size_t)n, "SECRET BODY", 11));      /* headers only */
    assert_null(memmem(out, (size_t)n, "\r\nX-Injected", 12));   /* CRLF stripped from diag */
    assert_non_null(memmem(out, (size_t)n, "Diagnostic-Code: smtp; 550 5.1.1 user2@company.tld unknown X-Injected: yes\r\n", 75));
    int rc = run_checker(out, (size_t)n,
        "--to rich@localhost --rcpt user2@company.tld:failed:5.1.1:mx1.company.tld "
        "--no-rcpt user1@company.tld --orig-header Subject:tema");
    free(out);
    assert_int_equal(rc, 0);
}

static void test_many_rcpts_and_long_diag(void **state)
{
    (void)state;
    static char longdiag[5000];
    memset(longdiag, 'z', sizeof longdiag - 1);
    struct dsn_rcpt r[50];
    char addrs[50][32];
    char args[4096] = "--to a@b.example";
    for (int i = 0; i < 50; i++) {
        snprintf(addrs[i], sizeof addrs[i], "r%d@dest.example", i);
        r[i] = (struct dsn_rcpt){ .addr = addrs[i], .action = DSN_ACTION_FAILED,
                                  .status = "5.3.4", .code = i % 2 ? 552 : 0,
                                  .diag = longdiag };
        char one[80];
        snprintf(one, sizeof one, " --rcpt %s:failed:5.3.4", addrs[i]);
        strcat(args, one);
    }
    struct dsn_input in = { .reporting_mta = "h.example", .postmaster = "postmaster@h.example",
                            .return_path = "a@b.example", .arrival_ms = 1, .now_ms = 2,
                            .orig = orig, .orig_len = sizeof orig - 1, .rcpts = r,
                            .rcpt_count = 50, .unique = 7 };
    size_t cap = dsn_size_max(&in);
    char *out = malloc(cap);
    long n = dsn_build(&in, out, cap);
    assert_true(n > 0);
    /* every line <= 998 octets and CRLF-terminated */
    size_t line = 0;
    for (long i = 0; i < n; i++) {
        if (out[i] == '\n') {
            assert_true(i > 0 && out[i - 1] == '\r');
            line = 0;
        } else {
            assert_true(++line <= 999);
        }
    }
    /* a buffer one byte short fails cleanly */
    assert_int_equal(dsn_build(&in, out, (size_t)n - 1), VL_E_TOOBIG);
    int rc = run_checker(out, (size_t)n, args);
    free(out);
    assert_int_equal(rc, 0);
}

static void test_refuses_null_path(void **state)
{
    (void)state;
    struct dsn_rcpt r = { .addr = "x@y.example", .action = DSN_ACTION_FAILED, .status = "5.0.0" };
    struct dsn_input in = { .reporting_mta = "h", .postmaster = "p@h", .return_path = "",
                            .orig = orig, .orig_len = sizeof orig - 1, .rcpts = &r,
                            .rcpt_count = 1 };
    char out[8192];
    assert_int_equal(dsn_build(&in, out, sizeof out), VL_E_INVALID);
    in.return_path = "a@b.example";
    in.rcpt_count = 0;
    assert_int_equal(dsn_build(&in, out, sizeof out), VL_E_INVALID);
}

static void test_sanitize(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(dsn_sanitize("a\r\nb\x00", out, sizeof out), 3);
    assert_string_equal(out, "a b");
    dsn_sanitize("x\x1b[31m\xff\xfe ok \xc3\xa9", out, sizeof out);
    assert_string_equal(out, "x[31m ok \xc3\xa9");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_one_of_three),
        cmocka_unit_test(test_many_rcpts_and_long_diag),
        cmocka_unit_test(test_refuses_null_path),
        cmocka_unit_test(test_sanitize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
