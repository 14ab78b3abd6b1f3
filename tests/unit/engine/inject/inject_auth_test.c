/* inject_auth_test.c - the intake's credentials file (crypt(3) hashes) and the
 * base64 decoder SASL uses. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inject_auth.h"

static void test_b64(void **state)
{
    (void)state;
    uint8_t out[64];
    assert_int_equal(inj_b64_decode("", 0, out, sizeof out), 0);
    assert_int_equal(inj_b64_decode("YQ==", 4, out, sizeof out), 1);
    assert_memory_equal(out, "a", 1);
    assert_int_equal(inj_b64_decode("YWI=", 4, out, sizeof out), 2);
    assert_memory_equal(out, "ab", 2);
    assert_int_equal(inj_b64_decode("AGFsaWNlAHdvbmRlcmxhbmQ=", 24, out, sizeof out), 17);
    assert_memory_equal(out, "\0alice\0wonderland", 17);
    const char *bad[] = { "YQ=", "Y===", "YQ==YQ==", "Y Q=", "YQ=a", "=YQ=", "YQ*=", "####" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (inj_b64_decode(bad[i], strlen(bad[i]), out, sizeof out) != -1)
            fail_msg("accepted '%s'", bad[i]);
    assert_int_equal(inj_b64_decode("YWJj", 4, out, 2), -1);   /* no room */
}

static char *write_file(const char *text)
{
    static char path[] = "/tmp/volley-auth-test-XXXXXX";
    strcpy(path, "/tmp/volley-auth-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_file(void **state)
{
    (void)state;
    /* openssl passwd -6 -salt saltsalt wonderland */
    const char *ok = "# users\n\nalice:$6$saltsalt$pqxtaP8VN9msji06dnBCbUbaSGTOXyo9jZDqZxik1rP"
                     "exoqRIW4UKuiD0ZHZchCSd7S4/HoRU8bcFbnz2ihUr.\n";
    char *p = write_file(ok);
    struct inj_auth *a = NULL;
    char err[300];
    assert_int_equal(inj_auth_load(p, &a, err, sizeof err), 0);
    assert_true(inj_auth_check(a, "alice", 5, "wonderland", 10));
    assert_false(inj_auth_check(a, "alice", 5, "wonderlan", 9));
    assert_false(inj_auth_check(a, "alice", 5, "wonderland\0", 11));
    assert_false(inj_auth_check(a, "alic", 4, "wonderland", 10));
    assert_false(inj_auth_check(a, "bob", 3, "wonderland", 10));
    inj_auth_free(a);
    unlink(p);
    const char *bad[] = { "alice\n", ":$6$x$y\n", "alice:plaintext\n", "# only a comment\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = write_file(bad[i]);
        a = NULL;
        if (inj_auth_load(p, &a, err, sizeof err) != -1)
            fail_msg("accepted '%s'", bad[i]);
        assert_null(a);
        unlink(p);
    }
    assert_int_equal(inj_auth_load("/nonexistent/users", &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/users"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
