/* log_test.c - the delivery log line is valid, escaped, bounded JSON; a
 * key=value diagnostic is one line whatever its %s arguments hold. */
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

/* vl_dlog_add_line (issue 16): a line vl_dlog_format made, written as is with
 * its newline, in order with vl_dlog_add's; an over-long line is cut. */
static void test_dlog_add_line(void **state)
{
    (void)state;
    char path[] = "/tmp/vl_log_testXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static struct vl_dlog d;
    vl_dlog_init(&d, fd);
    struct vl_dlog_event ev = { .rcpt = "a@b.org", .domain = "b.org", .event = "bounced",
                                .code = 550, .attempt = 2, .msg_id = 7 };
    char line[VL_DLOG_LINE_BYTES_MAX];
    size_t n = vl_dlog_format(&ev, line, sizeof line);
    assert_true(n > 2 && line[n - 1] == '\n');
    vl_dlog_add_line(&d, line, n - 1);
    vl_dlog_add(&d, &ev);
    static char big[VL_DLOG_LINE_BYTES_MAX * 2];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < 200; i++)          /* past the buffer: flushes in between */
        vl_dlog_add_line(&d, big, sizeof big);
    assert_int_equal(vl_dlog_flush(&d), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char got[VL_DLOG_LINE_BYTES_MAX * 4];
    assert_non_null(fgets(got, sizeof got, f));
    assert_memory_equal(got, line, n);
    assert_non_null(fgets(got, sizeof got, f));
    assert_memory_equal(got, line, n);             /* the same bytes as vl_dlog_add's */
    int cut = 0;
    while (fgets(got, sizeof got, f)) {
        assert_int_equal(strlen(got), VL_DLOG_LINE_BYTES_MAX);   /* cut + '\n' */
        cut++;
    }
    assert_int_equal(cut, 200);
    fclose(f);
    close(fd);
    unlink(path);
}

/* Run vl_log() with stderr on a pipe; the bytes it wrote, NUL-terminated. */
static size_t capture_vl_log(char *out, size_t cap, const char *fmt, const char *a,
                             const char *b)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(p[1], STDERR_FILENO) >= 0);
    enum vl_log_level old = vl_log_level_min;
    vl_log_level_min = VL_LOG_TRACE;
    vl_log(VL_LOG_WARN, fmt, a, b);            /* one write of < 1 KiB: fits the pipe */
    vl_log_level_min = old;
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    close(p[1]);
    ssize_t n = read(p[0], out, cap - 1);
    close(p[0]);
    assert_true(n > 0);
    out[n] = '\0';
    return (size_t)n;
}

/* Issue 9 item 10: remote reply text went unescaped into a key="value" log. */
static void test_item10_log_kv_escaped(void **state)
{
    (void)state;
    char out[2048];
    capture_vl_log(out, sizeof out, "evt=host_failing ip=%s text=\"%s\"", "192.0.2.1",
                   "550 bad \"quote\" back\\slash\r\nvolley: level=error evt=forged x=\"1\"\x01"
                   "\x7f\xff \xc3\xa9 \xc2\x85");
    assert_string_equal(out,
        "volley: level=warn evt=host_failing ip=192.0.2.1 text=\"550 bad \\\"quote\\\" "
        "back\\\\slash\\r\\nvolley: level=error evt=forged x=\\\"1\\\"\\x01\\x7f\\xff "
        "\xc3\xa9 \\xc2\\x85\"\n");
    /* unquoted values: no line break and no control byte either */
    capture_vl_log(out, sizeof out, "evt=route_invalid domain=%s to=%s", "a.org\nevt=x",
                   "h\tp");
    assert_string_equal(out, "volley: level=warn evt=route_invalid domain=a.org\\nevt=x "
                             "to=h\\tp\n");
}

static void test_item10_log_kv_conversions(void **state)
{
    (void)state;
    char out[1024];
    size_t n = vl_log_format(out, sizeof out, VL_LOG_INFO,
                             "evt=t a=%u b=%llu c=%d d=%zu e=%x p=%% s=\"%.*s\" t=\"%.3s\"",
                             7u, 1ull << 40, -3, (size_t)9, 255u, 4, "ab\"cdef", "x\"yz");
    out[n] = '\0';
    assert_string_equal(out, "volley: level=info evt=t a=7 b=1099511627776 c=-3 d=9 e=ff p=% "
                             "s=\"ab\\\"c\" t=\"x\\\"y\"\n");
    /* a %s outside quotes is copied as is, quotes included (engine.c's hint) */
    n = vl_log_format(out, sizeof out, VL_LOG_ERROR, "evt=x err=\"%s\"%s", "e",
                      " hint=\"io_uring is blocked\"");
    out[n] = '\0';
    assert_string_equal(out, "volley: level=error evt=x err=\"e\" hint=\"io_uring is blocked\"\n");
}

static void test_item10_log_kv_bounded(void **state)
{
    (void)state;
    static char big[5000];
    memset(big, '"', sizeof big - 1);          /* every byte doubles when escaped */
    char out[256];
    size_t n = vl_log_format(out, sizeof out, VL_LOG_WARN, "evt=x text=\"%s\" tail=1", big);
    assert_int_equal(n, sizeof out);
    assert_int_equal(out[n - 1], '\n');
    assert_null(memchr(out, '\n', n - 1));
}

/* utf8.h is strict now (item 10, addr.c): surrogates, overlongs and code
 * points past U+10FFFF are not passed into the JSON log either. */
static void test_item10_dlog_utf8_strict(void **state)
{
    (void)state;
    struct vl_dlog_event ev = { .rcpt = "a@b.org", .domain = "b.org", .event = "bounced",
                                .code = 550, .attempt = 1,
                                .reply = "s\xed\xa0\x80 o\xe0\x80\xaf b\xf4\x90\x80\x80"
                                         " ok\xc3\xa9" };
    char out[VL_DLOG_LINE_BYTES_MAX];
    vl_dlog_format(&ev, out, sizeof out);
    assert_non_null(strstr(out, "\"reply\":\"s??? o??? b???? ok\xc3\xa9\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_fields),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_long_reply_bounded),
        cmocka_unit_test(test_buffer_flush),
        cmocka_unit_test(test_dlog_add_line),
        cmocka_unit_test(test_item10_log_kv_escaped),
        cmocka_unit_test(test_item10_log_kv_conversions),
        cmocka_unit_test(test_item10_log_kv_bounded),
        cmocka_unit_test(test_item10_dlog_utf8_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
