/* log_test.c - the delivery log line is valid, escaped, bounded JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static void test_format_fields(void **state)
{
    (void)state;
    struct vl_dlog_event ev = {
        .ts_ms = 1767225600123, .msg_id = 0xabc, .rcpt = "a@example.org",
        .domain = "example.org", .event = "delivered", .mx = "mx1.example.org",
        .ip = "127.0.0.2", .code = 250, .status = "2.0.0", .reply = "2.0.0 Ok",
        .attempt = 1, .tls = NULL,
    };
    char out[VL_DLOG_LINE_BYTES_MAX];
    size_t n = vl_dlog_format(&ev, out, sizeof out);
    assert_int_equal(n, strlen(out));
    assert_string_equal(out,
        "{\"ts\":\"2026-01-01T00:00:00.123Z\",\"id\":\"0000000000000abc\","
        "\"rcpt\":\"a@example.org\",\"domain\":\"example.org\",\"event\":\"delivered\","
        "\"mx\":\"mx1.example.org\",\"ip\":\"127.0.0.2\",\"code\":250,\"status\":\"2.0.0\","
        "\"reply\":\"2.0.0 Ok\",\"attempt\":1}\n");
}

static void test_escaping(void **state)
{
    (void)state;
    struct vl_dlog_event ev = {
        .ts_ms = 0, .rcpt = "x@y.org", .domain = "y.org", .event = "bounced", .code = 550,
        .reply = "bad \"quote\" \\ back\r\nInjected: 1\x01\xff end", .attempt = 2,
    };
    char out[VL_DLOG_LINE_BYTES_MAX];
    vl_dlog_format(&ev, out, sizeof out);
    assert_non_null(strstr(out, "\"reply\":\"bad \\\"quote\\\" \\\\ back\\u000d\\u000aInjected: 1\\u0001? end\""));
    /* exactly one newline, at the end */
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
}

static void test_long_reply_bounded(void **state)
{
    (void)state;
    static char big[20000];
    memset(big, 'x', sizeof big - 1);
    struct vl_dlog_event ev = { .rcpt = "a@b.org", .domain = "b.org", .event = "deferred",
                                .code = 451, .reply = big, .attempt = 3 };
    char out[VL_DLOG_LINE_BYTES_MAX];
    size_t n = vl_dlog_format(&ev, out, sizeof out);
    assert_true(n < sizeof out);
    assert_true(n < 1300);                     /* reply capped at 1 KiB */
    assert_string_equal(out + n - 13, "\"attempt\":3}\n");
}

static void test_buffer_flush(void **state)
{
    (void)state;
    char path[] = "/tmp/vl_log_testXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static struct vl_dlog d;
    vl_dlog_init(&d, fd);
    struct vl_dlog_event ev = { .rcpt = "a@b.org", .domain = "b.org", .event = "delivered",
                                .code = 250, .attempt = 1 };
    for (int i = 0; i < 1000; i++) {
        ev.msg_id = (uint64_t)i;
        vl_dlog_add(&d, &ev);
    }
    assert_int_equal(vl_dlog_flush(&d), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[VL_DLOG_LINE_BYTES_MAX];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        char want[40];
        snprintf(want, sizeof want, "\"id\":\"%016x\"", lines);
        assert_non_null(strstr(line, want));
        lines++;
    }
    fclose(f);
    close(fd);
    unlink(path);
    assert_int_equal(lines, 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_fields),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_long_reply_bounded),
        cmocka_unit_test(test_buffer_flush),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
