/* msg_test.c - message validation and normalisation, table-driven. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "volley/error.h"

#define HDRS "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\nFrom: a@b.org\r\n"

static const struct msg_opts OPTS = { 1700000000123ull, "mx.example.net", 0xabcdefull, "s@x.org",
                                      false };

struct ok_case { const char *label; const char *in; const char *want; int is_8bit; };

static const struct ok_case ok_cases[] = {
    { "canonical",   HDRS "\r\nbody\r\n",          HDRS "\r\nbody\r\n", 0 },
    { "bare LF",     HDRS "\nbody\nx\n",           HDRS "\r\nbody\r\nx\r\n", 0 },
    { "bare CR",     HDRS "\rbody\r",              HDRS "\r\nbody\r\n", 0 },
    { "LF CR",       HDRS "\r\nbody\n\rx",         HDRS "\r\nbody\r\n\r\nx\r\n", 0 },
    { "no final EOL", HDRS "\r\nbody",             HDRS "\r\nbody\r\n", 0 },
    { "all headers", HDRS,                         HDRS "\r\n", 0 },
    { "bcc dropped", HDRS "Bcc: x@y.org,\r\n z@y.org\r\nSubject: s\r\n\r\nb\r\n",
                     HDRS "Subject: s\r\n\r\nb\r\n", 0 },
    { "return-path", "return-PATH: <q@r>\r\n" HDRS "\r\nb\r\n", HDRS "\r\nb\r\n", 0 },
    { "folded",      HDRS "Subject: a\r\n\tb\r\n\r\nb\r\n",
                     HDRS "Subject: a\r\n\tb\r\n\r\nb\r\n", 0 },
    { "8bit body",   HDRS "\r\nh\xc3\xa9\r\n",     HDRS "\r\nh\xc3\xa9\r\n", 1 },
    /* Found by tests/fuzz/msg_fuzz.c: 8-bit only in a dropped field is 7-bit. */
    { "8bit bcc",    HDRS "Bcc: j\xc3\xb6rg@y.org\r\n\r\nb\r\n",  HDRS "\r\nb\r\n", 0 },
    { "8bit header", HDRS "Subject: h\xc3\xa9\r\n\r\nb\r\n",
                     HDRS "Subject: h\xc3\xa9\r\n\r\nb\r\n", 1 },
    { "dots kept",   HDRS "\r\n.\r\n..x\r\n",      HDRS "\r\n.\r\n..x\r\n", 0 },
};

static void test_ok_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        const struct ok_case *c = &ok_cases[i];
        struct msg_result r;
        struct msg_problem p[4];
        int rc = msg_normalise(c->in, strlen(c->in), &OPTS, &r, p, 4);
        if (rc != 0)
            fail_msg("%s: rc %d, line %u: %s", c->label, rc, p[0].line, p[0].why);
        if (r.len != strlen(c->want) || memcmp(r.data, c->want, r.len) != 0)
            fail_msg("%s: got '%.*s'", c->label, (int)r.len, (const char *)r.data);
        assert_int_equal(r.is_8bit, c->is_8bit);
        assert_false(r.added_date || r.added_msgid || r.added_from);
        msg_result_fini(&r);
    }
}

struct bad_case { const char *label; const char *in; size_t len; unsigned line; const char *why; };

static const struct bad_case bad_cases[] = {
    { "empty",        "", 0, 0, "empty" },
    { "no headers",   "hello world\r\n\r\nbody\r\n", 0, 1, "no header block" },
    { "bad header",   HDRS "Subject x\r\n\r\nb\r\n", 0, 4, "not a header field" },
    { "dup From",     HDRS "From: c@d.org\r\n\r\nb\r\n", 0, 4, "duplicate From" },
    { "dup Date",     HDRS "date: x\r\n\r\nb\r\n", 0, 4, "duplicate Date" },
    { "NUL",          HDRS "\r\nb\0dy\r\n", sizeof HDRS "\r\nb\0dy\r\n" - 1, 5, "NUL" },
    { "lead contin.", " x\r\n" HDRS "\r\nb\r\n", 0, 1, "continuation" },
};

static void test_bad_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        struct msg_result r;
        struct msg_problem p[4];
        size_t len = c->len ? c->len : strlen(c->in);
        int rc = msg_normalise(c->in, len, &OPTS, &r, p, 4);
        if (rc != VL_E_INVALID)
            fail_msg("%s: accepted (rc %d)", c->label, rc);
        assert_true(r.problems >= 1);
        assert_null(r.data);
        if (p[0].line != c->line || !strstr(p[0].why, c->why))
            fail_msg("%s: line %u '%s'", c->label, p[0].line, p[0].why);
    }
}

static void test_long_lines_counted(void **state)
{
    (void)state;
    /* 30 lines of 999 octets: each is named, only the first 20 stored. */
    size_t n = strlen(HDRS "\r\n") + 30 * 1001;
    char *in = malloc(n + 1);
    strcpy(in, HDRS "\r\n");
    char *p = in + strlen(in);
    for (int i = 0; i < 30; i++, p += 1001) {
        memset(p, 'a', 999);
        memcpy(p + 999, "\r\n", 2);
    }
    struct msg_result r;
    struct msg_problem probs[20];
    assert_int_equal(msg_normalise(in, n, &OPTS, &r, probs, 20), VL_E_INVALID);
    assert_int_equal(r.problems, 30);
    assert_int_equal(probs[0].line, 5);
    assert_int_equal(probs[19].line, 24);
    /* 998 octets is fine. */
    memset(in + strlen(HDRS "\r\n"), 'b', 998);
    memcpy(in + strlen(HDRS "\r\n") + 998, "\r\n", 2);
    assert_int_equal(msg_normalise(in, strlen(HDRS "\r\n") + 1000, &OPTS, &r, probs, 20), 0);
    msg_result_fini(&r);
    free(in);
}

static void test_added_fields(void **state)
{
    (void)state;
    const char *in = "Subject: hi\nBcc: x@y.org\n\nbody\n";
    struct msg_result r;
    struct msg_problem p[2];
    assert_int_equal(msg_normalise(in, strlen(in), &OPTS, &r, p, 2), 0);
    assert_true(r.added_date && r.added_msgid && r.added_from);
    const char *want = "Subject: hi\r\n"
                       "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
                       "Message-ID: <18bcfe5687b.0000000000abcdef@mx.example.net>\r\n"
                       "From: <s@x.org>\r\n\r\nbody\r\n";
    if (r.len != strlen(want) || memcmp(r.data, want, r.len) != 0)
        fail_msg("got '%.*s'", (int)r.len, (const char *)r.data);
    msg_result_fini(&r);
}

/* Issue 9 item 10: a bare CR before CRLF ("\r\r\n") was two line ends, so it
 * made an empty line and ended the header block: the next header fields went
 * into the body unchecked. CR...CR LF is now one line end, anywhere. */
static void test_item10_bare_cr_header(void **state)
{
    (void)state;
    static const struct ok_case cases[] = {
        { "CR CRLF in headers", HDRS "Subject: a\r\r\nX-Evil: 1\r\n\r\nbody\r\n",
                                HDRS "Subject: a\r\nX-Evil: 1\r\n\r\nbody\r\n", 0 },
        { "CRs CRLF",           HDRS "Subject: a\r\r\r\nX: 1\r\n\r\nb\r\n",
                                HDRS "Subject: a\r\nX: 1\r\n\r\nb\r\n", 0 },
        { "CR LF (bare LF)",    HDRS "Subject: a\r\r\nX: 1\n\nb\n",
                                HDRS "Subject: a\r\nX: 1\r\n\r\nb\r\n", 0 },
        { "CR CRLF in body",    HDRS "\r\nb\r\r\nc\r\r\n",  HDRS "\r\nb\r\nc\r\n", 0 },
        { "bare CR still ends", HDRS "Subject: a\rX: 1\r\r\n\r\nb",
                                HDRS "Subject: a\r\nX: 1\r\n\r\nb\r\n", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct ok_case *c = &cases[i];
        struct msg_result r;
        struct msg_problem p[4];
        int rc = msg_normalise(c->in, strlen(c->in), &OPTS, &r, p, 4);
        if (rc != 0)
            fail_msg("%s: rc %d, line %u: %s", c->label, rc, p[0].line, p[0].why);
        if (r.len != strlen(c->want) || memcmp(r.data, c->want, r.len) != 0)
            fail_msg("%s: got '%.*s'", c->label, (int)r.len, (const char *)r.data);
        msg_result_fini(&r);
    }
    /* a bad field after "\r\r\n" is still a header line, checked as one (line 5) */
    const char *in = HDRS "Subject: a\r\r\nnot a field\r\n\r\nb\r\n";
    struct msg_result r;
    struct msg_problem p[4];
    assert_int_equal(msg_normalise(in, strlen(in), &OPTS, &r, p, 4), VL_E_INVALID);
    assert_int_equal(r.problems, 1);
    assert_int_equal(p[0].line, 5);
    assert_non_null(strstr(p[0].why, "not a header field"));
    /* a missing From: is added to the real header block, not after "Subject: a" */
    in = "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\nSubject: a\r\r\n"
         "To: t@x.org\r\n\r\nb\r\n";
    assert_int_equal(msg_normalise(in, strlen(in), &OPTS, &r, p, 4), 0);
    assert_true(r.added_from);
    const char *want = "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\nSubject: a\r\n"
                       "To: t@x.org\r\nFrom: <s@x.org>\r\n\r\nb\r\n";
    if (r.len != strlen(want) || memcmp(r.data, want, r.len) != 0)
        fail_msg("added From: got '%.*s'", (int)r.len, (const char *)r.data);
    msg_result_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_table),
        cmocka_unit_test(test_bad_table),
        cmocka_unit_test(test_long_lines_counted),
        cmocka_unit_test(test_added_fields),
        cmocka_unit_test(test_item10_bare_cr_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
