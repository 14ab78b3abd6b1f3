/* dlog_inject_test.c - the "injected" events of a message (dlog_inject.h):
 * one per recipient, the delivery log's JSON without its newline, each with
 * its own rcpt and domain and the prototype's fields; lengths (not NUL) bound
 * the recipients. Parsed back with jansson. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "dlog_inject.h"

static void test_build(void **state)
{
    (void)state;
    const char *rcpts[] = { "a@one.test-and-more", "b@Two.Test" };
    size_t lens[] = { 10, 10 };                       /* "a@one.test", "b@Two.Test" */
    struct vl_dlog_event proto = { .ts_ms = 1700000000123, .msg_id = 0xabc, .from = "s@x.org",
                                   .source = "smtp", .client = "127.0.0.1", .campaign = "c1" };
    struct vl_dlog_injected ev;
    assert_int_equal(vl_dlog_injected_build(&ev, &proto, rcpts, lens, 2), 0);
    assert_int_equal(ev.n, 2);
    static const char *const want_rcpt[] = { "a@one.test", "b@Two.Test" };
    static const char *const want_dom[] = { "one.test", "Two.Test" };
    for (size_t i = 0; i < 2; i++) {
        assert_true(ev.lens[i] > 2 && ev.json[i][0] == '{' && ev.json[i][ev.lens[i] - 1] == '}');
        json_error_t err;
        json_t *o = json_loadb(ev.json[i], ev.lens[i], 0, &err);
        assert_non_null(o);
        assert_string_equal(json_string_value(json_object_get(o, "event")), "injected");
        assert_string_equal(json_string_value(json_object_get(o, "rcpt")), want_rcpt[i]);
        assert_string_equal(json_string_value(json_object_get(o, "domain")), want_dom[i]);
        assert_string_equal(json_string_value(json_object_get(o, "id")), "0000000000000abc");
        assert_string_equal(json_string_value(json_object_get(o, "from")), "s@x.org");
        assert_string_equal(json_string_value(json_object_get(o, "source")), "smtp");
        assert_string_equal(json_string_value(json_object_get(o, "client")), "127.0.0.1");
        assert_string_equal(json_string_value(json_object_get(o, "campaign")), "c1");
        assert_string_equal(json_string_value(json_object_get(o, "ts")),
                            "2023-11-14T22:13:20.123Z");
        assert_int_equal(json_integer_value(json_object_get(o, "attempt")), 0);
        json_decref(o);
    }
    vl_dlog_injected_fini(&ev);
    assert_null(ev.buf);
    /* NUL-terminated recipients, no campaign, no client: those fields left out */
    proto.campaign = "";
    proto.client = NULL;
    const char *one[] = { "z@z.test" };
    assert_int_equal(vl_dlog_injected_build(&ev, &proto, one, NULL, 1), 0);
    assert_null(memmem(ev.json[0], ev.lens[0], "campaign", 8));
    assert_null(memmem(ev.json[0], ev.lens[0], "client", 6));
    assert_non_null(memmem(ev.json[0], ev.lens[0], "\"rcpt\":\"z@z.test\"", 17));
    vl_dlog_injected_fini(&ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_build) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
