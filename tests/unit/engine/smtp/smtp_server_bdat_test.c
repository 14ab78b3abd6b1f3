/*
 * smtp_server_bdat_test.c - CHUNKING (RFC 3030) in the server machine: BDAT
 * chunks framed by length (no dot-stuffing, no end-of-data scan), LAST ends
 * the message like the final dot, chunks without a transaction are read and
 * refused, syntax, size limit, not offered. Each case runs whole, in 1-3 byte
 * chunks, and split at every byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "smtp_server_drive.h"

struct bdat_case {
    const char *label;
    bool chunking;
    uint64_t size_max;
    const char *in;
    size_t len;                 /* 0: strlen(in) */
    const char *codes;
    int dots;                   /* messages ended (DOT events) */
    const char *body;           /* of the last message, if dots > 0 */
};

static const struct bdat_case cases[] = {
    { "two chunks", true, 0, EH MF RT "BDAT 5\r\nhelloBDAT 8 LAST\r\n world\r\nQUIT\r\n", 0,
      "220 250 250 250 250 250 221", 1, "hello world\r\n" },
    { "taken verbatim", true, 0, EH MF RT "BDAT 13 LAST\r\na\r\n.\r\n..b\n.\r\nNOOP\r\n", 0,
      "220 250 250 250 250 250", 1, "a\r\n.\r\n..b\n.\r\n" },
    { "empty last", true, 0, EH MF RT "BDAT 0 LAST\r\n", 0, "220 250 250 250 250", 1, "" },
    { "last keyword case", true, 0, EH MF RT "BDAT 2 last\r\nxyNOOP\r\n", 0,
      "220 250 250 250 250 250", 1, "xy" },
    { "no transaction", true, 0, EH MF "BDAT 3\r\nxyzBDAT 2 LAST\r\nabNOOP\r\n", 0,
      "220 250 250 503 503 250", 0, NULL },
    { "before mail", true, 0, EH "BDAT 4 LAST\r\nRSETNOOP\r\n", 0, "220 250 503 250", 0, NULL },
    { "syntax", true, 0, EH MF RT "BDAT\r\nBDAT x\r\nBDAT 5 FOO\r\nBDAT -1\r\nBDAT 5LAST\r\n"
      "BDAT 1 LAST\r\nz", 0, "220 250 250 250 501 501 501 501 501 250", 1, "z" },
    { "data after a chunk", true, 0, EH MF RT "BDAT 1\r\naDATA\r\nBDAT 1 LAST\r\nb", 0,
      "220 250 250 250 250 503 250", 1, "ab" },
    { "rset after a chunk", true, 0, EH MF RT "BDAT 1\r\naRSET\r\nBDAT 1 LAST\r\nb"
      MF RT "BDAT 1 LAST\r\nc", 0, "220 250 250 250 250 250 503 250 250 250", 1, "c" },
    { "too big", true, 10, EH MF RT "BDAT 6\r\n123456BDAT 6 LAST\r\n7890ab" MF RT
      "BDAT 2 LAST\r\nok", 0, "220 250 250 250 250 552 250 250 250", 2, "ok" },
    { "too big in one chunk", true, 10, EH MF RT "BDAT 11\r\n12345678901BDAT 1 LAST\r\nx", 0,
      "220 250 250 250 552 503", 0, NULL },
    { "not offered", false, 0, EH MF RT "BDAT 3\r\nQUIT\r\n", 0, "220 250 250 250 502 221", 0,
      NULL },
    { "then data", true, 0, EH MF RT "BDAT 2 LAST\r\nab" MF RT "DATA\r\ncd\r\n.\r\n", 0,
      "220 250 250 250 250 250 250 354 250", 2, "cd\r\n" },
    { "binary octets", true, 0, EH MF RT "BDAT 4 LAST\r\n\0\r\xff\n", 87,
      "220 250 250 250 250", 1, NULL },
};

static void check_case(const struct drive *d, const struct bdat_case *c, const char *how,
                       size_t k)
{
    char got[256];
    drive_codes(d, got, sizeof got);
    if (strcmp(got, c->codes) != 0)
        fail_msg("%s (%s %zu): got '%s', want '%s'", c->label, how, k, got, c->codes);
    if ((int)d->dots != c->dots)
        fail_msg("%s (%s %zu): %u messages, want %d", c->label, how, k, d->dots, c->dots);
    if (c->dots && c->body) {
        const struct drive_dot *t = &d->dot[d->dots - 1];
        size_t bl = strlen(c->body);
        if (t->body_len != bl || memcmp(d->dot_body[d->dots - 1], c->body, bl) != 0)
            fail_msg("%s (%s %zu): body '%s', want '%s'", c->label, how, k,
                     d->dot_body[d->dots - 1], c->body);
        assert_int_equal(t->bytes, bl);
        assert_false(t->bad);
    }
}

static void test_bdat(void **state)
{
    (void)state;
    static struct drive d;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct bdat_case *c = &cases[i];
        struct smtp_server_conf conf;
        conf_make(CONF_STD, &conf);
        conf.chunking = c->chunking;
        conf.size_max = c->size_max;
        size_t len = c->len ? c->len : strlen(c->in);
        for (size_t chunk = 0; chunk <= 3; chunk++) {
            drive_run(&d, &conf, c->in, len, chunk);
            check_case(&d, c, "chunk", chunk);
            drive_check_esc(&d, true);
        }
        for (size_t k = 0; k <= len; k++) {
            drive_run_split(&d, &conf, c->in, len, k);
            check_case(&d, c, "split", k);
        }
    }
}

static void test_binary_body(void **state)
{
    (void)state;
    static struct drive d;
    const struct bdat_case *c = &cases[sizeof cases / sizeof cases[0] - 1];
    struct smtp_server_conf conf;
    conf_make(CONF_STD, &conf);
    conf.chunking = true;
    drive_run(&d, &conf, c->in, c->len, 0);
    assert_int_equal(d.dots, 1);
    assert_int_equal(d.dot[0].body_len, 4);
    assert_memory_equal(d.dot_body[0], "\0\r\xff\n", 4);
}

static void test_ehlo(void **state)
{
    (void)state;
    static struct drive d;
    struct smtp_server_conf conf;
    conf_make(CONF_STD, &conf);
    conf.chunking = true;
    drive_run(&d, &conf, EH, strlen(EH), 0);
    assert_non_null(strstr(d.out, "250-CHUNKING\r\n") ? strstr(d.out, "250-CHUNKING\r\n")
                                                      : strstr(d.out, "250 CHUNKING\r\n"));
    conf.chunking = false;
    drive_run(&d, &conf, EH, strlen(EH), 0);
    assert_null(strstr(d.out, "CHUNKING"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bdat),
        cmocka_unit_test(test_binary_body),
        cmocka_unit_test(test_ehlo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
