/* error_test.c - vl_strerror names every VL_E_* code and -errno values. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "volley/error.h"

static void test_every_code_named(void **state)
{
    (void)state;
    for (int e = VL_E_BASE - 1; e > VL_E_LAST; e--) {
        const char *s = vl_strerror(e);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
    }
    assert_string_equal(vl_strerror(VL_E_LAST), "unknown error");
}

static void test_errno_passthrough(void **state)
{
    (void)state;
    assert_string_equal(vl_strerror(-ECONNREFUSED), strerror(ECONNREFUSED));
    assert_string_equal(vl_strerror(0), "success");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_named),
        cmocka_unit_test(test_errno_passthrough),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
