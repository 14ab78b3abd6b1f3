/* smtp_reply_test.c - streaming reply parser: table-driven, every split point. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volley/error.h"
#include "volley/limits.h"
#include "smtp_reply.h"

#define REPLIES_MAX 4

struct exp_reply { unsigned code; const char *status; const char *text; unsigned lines; };

struct reply_case {
    const char *label;
    const char *in;
    unsigned n;                          /* complete replies expected */
    struct exp_reply r[REPLIES_MAX];
    int err;                             /* 0, or VL_E_PROTO after the n replies */
};

static const struct reply_case cases[] = {
    { "single", "250 2.1.0 Ok\r\n", 1, { { 250, "2.1.0", "Ok", 1 } }, 0 },
    { "no text", "250\r\n", 1, { { 250, "", "", 1 } }, 0 },
    { "status only", "250 2.0.0\r\n", 1, { { 250, "2.0.0", "", 1 } }, 0 },
    { "no status", "220 mx.example.org ESMTP Postfix\r\n", 1,
      { { 220, "", "mx.example.org ESMTP Postfix", 1 } }, 0 },
    { "multiline", "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n", 1,
      { { 250, "", "mx.example", 3 } }, 0 },
    { "multiline empty text", "250-\r\n250 ok\r\n", 1, { { 250, "", "", 2 } }, 0 },
    { "class mismatch ignored", "250 5.1.1 odd\r\n", 1, { { 250, "", "5.1.1 odd", 1 } }, 0 },
    { "3-digit parts", "550 5.123.123 x\r\n", 1, { { 550, "5.123.123", "x", 1 } }, 0 },
    { "4-digit part", "550 5.1234.1 x\r\n", 1, { { 550, "", "5.1234.1 x", 1 } }, 0 },
    { "status class 3", "354 3.0.0 go\r\n", 1, { { 354, "", "3.0.0 go", 1 } }, 0 },
    { "status not first", "550 user 5.1.1\r\n", 1, { { 550, "", "user 5.1.1", 1 } }, 0 },
    { "status glued", "550 5.1.1user\r\n", 1, { { 550, "", "5.1.1user", 1 } }, 0 },
    { "452 enhanced", "452 4.5.3 Too many recipients\r\n", 1,
      { { 452, "4.5.3", "Too many recipients", 1 } }, 0 },
    { "sanitised", "550 a\tb\x01" "c\x7f\xc3\xa9\r\n", 1, { { 550, "", "a?b?c???", 1 } }, 0 },
    { "pipelined", "250 2.1.0 a\r\n250 2.1.5 b\r\n354 c\r\n", 3,
      { { 250, "2.1.0", "a", 1 }, { 250, "2.1.5", "b", 1 }, { 354, "", "c", 1 } }, 0 },
    { "multi then single", "250-a\r\n250 b\r\n221 bye\r\n", 2,
      { { 250, "", "a", 2 }, { 221, "", "bye", 1 } }, 0 },
    { "code changes", "250-a\r\n251 b\r\n", 0, { { 0 } }, VL_E_PROTO },
    { "bare LF", "250 a\n", 0, { { 0 } }, VL_E_PROTO },
    { "bare LF 2nd line", "250-a\r\n250 b\n", 0, { { 0 } }, VL_E_PROTO },
    { "bare CR", "250 a\rb\r\n", 0, { { 0 } }, VL_E_PROTO },
    { "CR CR LF", "250 a\r\r\n", 0, { { 0 } }, VL_E_PROTO },
    { "4 digits", "2500 x\r\n", 0, { { 0 } }, VL_E_PROTO },
    { "2 digits", "25 x\r\n", 0, { { 0 } }, VL_E_PROTO },
    { "2 digits bare", "25\r\n", 0, { { 0 } }, VL_E_PROTO },
    { "class 1", "150 x\r\n", 0, { { 0 } }, VL_E_PROTO },
    { "class 6", "650 x\r\n", 0, { { 0 } }, VL_E_PROTO },
    { "letters", "abc def\r\n", 0, { { 0 } }, VL_E_PROTO },
    { "digit letter", "25a x\r\n", 0, { { 0 } }, VL_E_PROTO },
    { "empty line", "\r\n", 0, { { 0 } }, VL_E_PROTO },
    { "no separator", "250x\r\n", 0, { { 0 } }, VL_E_PROTO },
    { "leading space", " 250 x\r\n", 0, { { 0 } }, VL_E_PROTO },
    { "HTTP", "HTTP/1.1 400 Bad Request\r\n", 0, { { 0 } }, VL_E_PROTO },
    { "good then bad", "250 ok\r\n999 bad\r\n", 1, { { 250, "", "ok", 1 } }, VL_E_PROTO },
    { "good then bare LF", "250 ok\r\n\n", 1, { { 250, "", "ok", 1 } }, VL_E_PROTO },
};

struct got {
    unsigned n;
    struct smtp_reply r[REPLIES_MAX];
    int err;
};

/* Feed one chunk, replies one by one. */
static void feed_chunk(struct smtp_reply_parser *p, const char *s, size_t len, struct got *g)
{
    size_t off = 0;
    for (unsigned guard = 0; guard < 1000 && g->err == 0; guard++) {
        size_t used = 99999;
        int rc = smtp_reply_feed(p, s + off, len - off, &used);
        assert_true(used <= len - off);
        off += used;
        if (rc < 0) {
            g->err = rc;
            return;
        }
        if (rc == 1) {
            assert_true(g->n < REPLIES_MAX);
            g->r[g->n++] = *smtp_reply_get(p);
        } else {
            assert_int_equal(off, len);      /* 0 means all was consumed */
        }
        if (off == len)
            return;
    }
    fail_msg("feed loop did not end");
}

static void check_got(const struct reply_case *c, const struct got *g, size_t split)
{
    if (g->n != c->n || g->err != c->err)
        fail_msg("%s (split %zu): %u replies err %d, want %u err %d", c->label, split, g->n,
                 g->err, c->n, c->err);
    for (unsigned i = 0; i < c->n; i++) {
        const struct smtp_reply *r = &g->r[i];
        const struct exp_reply *e = &c->r[i];
        if (r->code != e->code || strcmp(r->status, e->status) != 0 ||
            strcmp(r->text, e->text) != 0 || r->lines != e->lines)
            fail_msg("%s (split %zu) reply %u: %u [%s] [%s] %u lines", c->label, split, i,
                     r->code, r->status, r->text, r->lines);
        assert_int_equal(r->text_len, strlen(e->text));
    }
}

static void test_table_every_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct reply_case *c = &cases[i];
        size_t len = strlen(c->in);
        for (size_t k = 0; k <= len; k++) {
            struct smtp_reply_parser p;
            struct got g = { 0 };
            smtp_reply_parser_init(&p, NULL);
            feed_chunk(&p, c->in, k, &g);
            if (g.err == 0)
                feed_chunk(&p, c->in + k, len - k, &g);
            check_got(c, &g, k);
        }
    }
}

static void test_table_bytewise(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct reply_case *c = &cases[i];
        struct smtp_reply_parser p;
        struct got g = { 0 };
        smtp_reply_parser_init(&p, NULL);
        for (size_t k = 0; c->in[k] && g.err == 0; k++)
            feed_chunk(&p, c->in + k, 1, &g);
        check_got(c, &g, 1);
    }
}

static void test_error_sticky_and_reinit(void **state)
{
    (void)state;
    struct smtp_reply_parser p;
    size_t used;
    smtp_reply_parser_init(&p, NULL);
    assert_int_equal(smtp_reply_feed(&p, "xyz\r\n", 5, &used), VL_E_PROTO);
    assert_int_equal(smtp_reply_feed(&p, "250 ok\r\n", 8, &used), VL_E_PROTO);
    assert_int_equal(used, 0);
    smtp_reply_parser_init(&p, NULL);
    assert_int_equal(smtp_reply_feed(&p, "250 ok\r\n", 8, &used), 1);
    assert_int_equal(used, 8);
    assert_int_equal(smtp_reply_get(&p)->code, 250);
}

/* A line of exactly the cap (CRLF included) passes; one more byte fails. */
static void test_line_cap(void **state)
{
    (void)state;
    static char buf[VL_SMTP_REPLY_LINE_BYTES_MAX + 8];
    for (size_t extra = 0; extra <= 1; extra++) {
        size_t len = VL_SMTP_REPLY_LINE_BYTES_MAX + extra;
        memset(buf, 'x', len);
        memcpy(buf, "550 ", 4);
        memcpy(buf + len - 2, "\r\n", 2);
        struct smtp_reply_parser p;
        struct got g = { 0 };
        smtp_reply_parser_init(&p, NULL);
        feed_chunk(&p, buf, len, &g);
        if (extra == 0) {
            assert_int_equal(g.err, 0);
            assert_int_equal(g.n, 1);
            assert_int_equal(g.r[0].text_len, VL_DIAG_TEXT_BYTES_MAX);   /* truncated */
            assert_int_equal(strlen(g.r[0].text), VL_DIAG_TEXT_BYTES_MAX);
            assert_int_equal(g.r[0].bytes, len);
        } else {
            assert_int_equal(g.err, VL_E_PROTO);
        }
    }
}

static size_t build_lines(char *buf, size_t cap, unsigned lines, size_t text_len)
{
    size_t o = 0;
    for (unsigned i = 0; i < lines; i++) {
        assert_true(o + text_len + 6 <= cap);
        memcpy(buf + o, i + 1 < lines ? "250-" : "250 ", 4);
        memset(buf + o + 4, 'a', text_len);
        memcpy(buf + o + 4 + text_len, "\r\n", 2);
        o += 6 + text_len;
    }
    return o;
}

static void test_lines_and_bytes_caps(void **state)
{
    (void)state;
    static char buf[VL_SMTP_REPLY_BYTES_MAX * 2];
    struct { unsigned lines; size_t text; int err; } t[] = {
        { VL_SMTP_REPLY_LINES_MAX, 10, 0 },
        { VL_SMTP_REPLY_LINES_MAX + 1, 10, VL_E_PROTO },
        /* 20 lines of 3000 bytes = 60120 <= 65536; 22 lines go over the total cap */
        { 20, 3000, 0 },
        { 22, 3000, VL_E_PROTO },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t len = build_lines(buf, sizeof buf, t[i].lines, t[i].text);
        struct smtp_reply_parser p;
        struct got g = { 0 };
        smtp_reply_parser_init(&p, NULL);
        feed_chunk(&p, buf, len, &g);
        if (g.err != t[i].err)
            fail_msg("case %zu: err %d want %d", i, g.err, t[i].err);
        if (t[i].err == 0)
            assert_int_equal(g.r[0].lines, t[i].lines);
    }
}

/* PROTOCOL.md 3.8: EHLO capabilities reach the EHLO parser as lines stream by. */
static const char ehlo_38[] =
    "250-mail.company2.tld is pleased to meet you\r\n"
    "250-DSN\r\n"
    "250-SIZE\r\n"
    "250-STARTTLS\r\n"
    "250-AUTH LOGIN PLAIN CRAM-MD5 DIGEST-MD5 GSSAPI MSN NTLM\r\n"
    "250-ETRN\r\n"
    "250-TURN\r\n"
    "250-ATRN\r\n"
    "250-NO-SOLICITING\r\n"
    "250-HELP\r\n"
    "250-PIPELINING\r\n"
    "250 EHLO\r\n";

static void test_ehlo_streamed_every_split(void **state)
{
    (void)state;
    size_t len = strlen(ehlo_38);
    for (size_t k = 0; k <= len; k++) {
        struct smtp_ehlo e;
        struct smtp_reply_parser p;
        struct got g = { 0 };
        smtp_ehlo_init(&e);
        smtp_reply_parser_init(&p, &e);
        feed_chunk(&p, ehlo_38, k, &g);
        feed_chunk(&p, ehlo_38 + k, len - k, &g);
        assert_int_equal(g.n, 1);
        assert_int_equal(g.r[0].lines, 12);
        assert_int_equal(e.ext, SMTP_EXT_DSN | SMTP_EXT_SIZE | SMTP_EXT_STARTTLS |
                                SMTP_EXT_AUTH | SMTP_EXT_PIPELINING);
        assert_int_equal(e.size_max, 0);
        assert_int_equal(e.auth_count, 7);
        assert_int_equal(e.auth, SMTP_AUTH_LOGIN | SMTP_AUTH_PLAIN | SMTP_AUTH_CRAM_MD5 |
                                 SMTP_AUTH_OTHER);
    }
}

/* A 5xx reply to EHLO carries no capabilities, whatever its lines say. */
static void test_ehlo_ignored_on_error(void **state)
{
    (void)state;
    const char *in = "550-no\r\n550 PIPELINING\r\n";
    struct smtp_ehlo e;
    struct smtp_reply_parser p;
    struct got g = { 0 };
    smtp_ehlo_init(&e);
    smtp_reply_parser_init(&p, &e);
    feed_chunk(&p, in, strlen(in), &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.r[0].code, 550);
    assert_int_equal(e.ext, 0);
}

struct status_case { const char *in; int ok; };

static void test_status_parse(void **state)
{
    (void)state;
    static const struct status_case t[] = {
        { "2.0.0", 1 }, { "4.4.2", 1 }, { "5.1.10", 1 }, { "5.123.123", 1 },
        { "3.0.0", 0 }, { "1.0.0", 0 }, { "5.1", 0 }, { "5..1", 0 }, { "5.1.", 0 },
        { "5.1.1.1", 0 }, { "5.1234.1", 0 }, { "5.1.1234", 0 }, { "x.1.1", 0 }, { "", 0 },
        { "51.1.1", 0 }, { "5.a.1", 0 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[VL_SMTP_STATUS_BYTES_MAX];
        int ok = smtp_reply_status_parse(t[i].in, strlen(t[i].in), out);
        if (ok != t[i].ok)
            fail_msg("status %s: %d", t[i].in, ok);
        if (ok)
            assert_string_equal(out, t[i].in);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_every_split),
        cmocka_unit_test(test_table_bytewise),
        cmocka_unit_test(test_error_sticky_and_reinit),
        cmocka_unit_test(test_line_cap),
        cmocka_unit_test(test_lines_and_bytes_caps),
        cmocka_unit_test(test_ehlo_streamed_every_split),
        cmocka_unit_test(test_ehlo_ignored_on_error),
        cmocka_unit_test(test_status_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
