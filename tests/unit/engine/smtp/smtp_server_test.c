/*
 * smtp_server_test.c - the server state machine, driven with bytes: command
 * tables (each run whole and in 1-3 byte chunks, with enhanced codes on and
 * off), EHLO capabilities, body rules split at every byte (SMTP smuggling),
 * line and size limits, and policy answers (421 everywhere, refusals).
 * Golden transcripts and random sessions: smtp_server_transcript_test.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "smtp_server_drive.h"

struct cmd_case { const char *label; enum conf_kind conf; const char *in; const char *codes; };

static const struct cmd_case cmd_cases[] = {
    { "quit", CONF_STD, "QUIT\r\n", "220 221" },
    { "lower-case verbs", CONF_STD, "ehlo x\r\nmail from:<a@b.org>\r\nrcpt to:<c@d.org>\r\n"
      "data\r\n.\r\nquit\r\n", "220 250 250 250 354 250 221" },
    { "mixed-case verbs", CONF_STD, "Ehlo x\r\nMaIl FrOm:<a@b.org>\r\n", "220 250 250" },
    { "helo", CONF_STD, "HELO client\r\n" MF, "220 250 250" },
    { "ehlo without name", CONF_STD, "EHLO\r\nHELO \r\n", "220 501 501" },
    { "mail before ehlo", CONF_STD, MF, "220 503" },
    { "rcpt before mail", CONF_STD, EH RT, "220 250 503" },
    { "data before mail", CONF_STD, EH "DATA\r\n", "220 250 503" },
    { "data without rcpt", CONF_STD, EH MF "DATA\r\n", "220 250 250 503" },
    { "nested mail", CONF_STD, EH MF MF, "220 250 250 503" },
    { "mail forms", CONF_STD, EH "MAIL FROM: <a@b.org>\r\nRSET\r\nMAIL FROM:rich@localhost\r\n"
      "RSET\r\nMAIL FROM:<>\r\nRSET\r\nMAIL FROM:<@relay.org:a@b.org>\r\n",
      "220 250 250 250 250 250 250 250 250" },
    { "mail bad syntax", CONF_STD, EH "MAIL FROM:\r\nMAIL TO:<a@b.org>\r\nMAIL FROM:<a@b.org\r\n"
      "MAIL FROM:<a b@c.org>\r\nMAIL FROM:<a@b.org>x\r\nMAIL\r\nMAIL FROM:<a@@b>\r\n"
      "MAIL FROM:<@relay.org:>\r\nMAIL FROM:<@relay.org>\r\n",
      "220 250 501 501 501 501 501 501 501 501 501" },
    { "mail size", CONF_SIZE100, EH "MAIL FROM:<a@b.org> SIZE=100\r\nRSET\r\n"
      "MAIL FROM:<a@b.org> SIZE=101\r\nMAIL FROM:<a@b.org> SIZE=x\r\n"
      "MAIL FROM:<a@b.org> SIZE=99999999999999999999999\r\nMAIL FROM:<a@b.org> SIZE\r\n",
      "220 250 250 250 552 501 501 501" },
    { "mail size no limit", CONF_STD, EH "MAIL FROM:<a@b.org> SIZE=99999999999\r\n",
      "220 250 250" },
    { "mail body 8bitmime", CONF_STD, EH "MAIL FROM:<a@b.org> BODY=8BITMIME\r\nRSET\r\n"
      "MAIL FROM:<a@b.org> body=7bit\r\nRSET\r\nMAIL FROM:<a@b.org> BODY=BINARYMIME\r\n",
      "220 250 250 250 250 250 501" },
    { "mail body not offered", CONF_MIN, EH "MAIL FROM:<a@b.org> BODY=8BITMIME\r\n",
      "220 250 555" },
    { "mail unknown param", CONF_STD, EH "MAIL FROM:<a@b.org> FOO=bar\r\n"
      "MAIL FROM:<a@b.org> AUTH=<>\r\nMAIL FROM:<a@b.org> =x\r\n", "220 250 555 555 501" },
    { "mail dsn on", CONF_ALL, EH "MAIL FROM:<a@b.org> RET=HDRS ENVID=QQ+2B1\r\nRSET\r\n"
      "MAIL FROM:<a@b.org> RET=ALL\r\nMAIL FROM:<a@b.org> ENVID=a+zz\r\n",
      "220 250 250 250 501 501" },
    { "mail dsn off", CONF_STD, EH "MAIL FROM:<a@b.org> RET=FULL\r\n", "220 250 555" },
    { "mail smtputf8", CONF_ALL, EH "MAIL FROM:<j\xc3\xb6rg@b.org> SMTPUTF8\r\nRSET\r\n"
      "MAIL FROM:<j\xc3\xb6rg@b.org>\r\n", "220 250 250 250 553" },
    { "mail smtputf8 not offered", CONF_STD, EH "MAIL FROM:<a@b.org> SMTPUTF8\r\n",
      "220 250 555" },
    { "rcpt forms", CONF_STD, EH MF "RCPT TO:<b@c.org>\r\nRCPT TO: <b@c.org>\r\nRCPT TO:rich\r\n"
      "RCPT TO:<Postmaster>\r\nRCPT TO:<postmaster@c.org>\r\nRCPT TO:b@c.org\r\n",
      "220 250 250 250 250 250 250 250 250" },
    { "rcpt bad syntax", CONF_STD, EH MF "RCPT TO:<rich>\r\nRCPT TO:<>\r\nRCPT TO:\r\n"
      "RCPT FROM:<b@c.org>\r\nRCPT TO:<b@c..org>\r\nRCPT TO:<b@c.org\r\n",
      "220 250 250 501 501 501 501 501 501" },
    { "rcpt limit", CONF_RCPT2, EH MF RT RT RT "DATA\r\n.\r\n",
      "220 250 250 250 250 452 354 250" },
    { "rcpt dsn", CONF_ALL, EH MF "RCPT TO:<b@c.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@c.org\r\n"
      "RCPT TO:<b@c.org> NOTIFY=NEVER,DELAY\r\nRCPT TO:<b@c.org> ORCPT=b@c.org\r\n",
      "220 250 250 250 501 501" },
    { "rcpt dsn off", CONF_STD, EH MF "RCPT TO:<b@c.org> NOTIFY=NEVER\r\n", "220 250 250 555" },
    { "rcpt utf8 needs SMTPUTF8", CONF_ALL, EH MF "RCPT TO:<j\xc3\xb6rg@b.org>\r\n"
      "RSET\r\nMAIL FROM:<a@b.org> SMTPUTF8\r\nRCPT TO:<j\xc3\xb6rg@b.org>\r\n"
      "RCPT TO:j\xc3\xb6rg\r\n", "220 250 250 553 250 250 250 250" },
    { "data args", CONF_STD, EH MF RT "DATA x\r\nDATA\r\n.\r\n", "220 250 250 250 501 354 250" },
    { "rset", CONF_STD, EH MF RT "RSET\r\nDATA\r\nRSET x\r\nRSET\r\n",
      "220 250 250 250 250 503 501 250" },
    { "rset before ehlo", CONF_STD, "RSET\r\n" MF, "220 250 503" },
    { "ehlo resets", CONF_STD, EH MF EH RT MF, "220 250 250 250 503 250" },
    { "noop vrfy help", CONF_STD, "NOOP\r\nNOOP hello\r\nVRFY rich\r\nVRFY\r\nHELP\r\nHELP DSN\r\n",
      "220 250 250 252 501 214 214" },
    { "bdat unknown", CONF_STD, EH "BDAT 10 LAST\r\nEXPN list\r\nFOO\r\nMAILFROM:<a@b.org>\r\n",
      "220 250 502 500 500 500" },
    { "empty line", CONF_STD, "\r\n" EH, "220 500 250" },
    { "bare LF command", CONF_STD, "EHLO x\nMAIL FROM:<a@b.org>\r\n", "220 500 503" },
    { "bare CR command", CONF_STD, "EHLO x\rMAIL FROM:<a@b.org>\r\n", "220 500" },
    { "NUL in command", CONF_STD, "EHLO x\0y\r\nEHLO x\r\n", "220 500 250" },
    { "starttls off", CONF_STD, "STARTTLS\r\n", "220 454" },
    { "starttls on", CONF_ALL, EH "STARTTLS\r\n", "220 250 220" },
    { "starttls args", CONF_ALL, "STARTTLS now\r\n", "220 501" },
    { "dot then mail", CONF_STD, EH MF RT "DATA\r\nx\r\n.\r\n" MF RT "DATA\r\n.\r\nQUIT\r\n",
      "220 250 250 250 354 250 250 250 354 250 221" },
    { "after quit ignored", CONF_STD, "QUIT\r\nNOOP\r\n", "220 221" },
    { "pipelined group", CONF_STD, EH MF RT RT "DATA\r\nline1\r\n..dot\r\n.\r\nQUIT\r\n",
      "220 250 250 250 250 354 250 221" },
    { "articles' spaced forms", CONF_STD, "HELO localhost\r\nMAIL FROM: rich@localhost\r\n"
      "RCPT TO: haley\r\nRCPT TO: <b@c.org>\r\n", "220 250 250 250 250" },
    { "original bare forms", CONF_STD, "HELO localhost\r\nMAIL FROM:rich@localhost\r\n"
      "RCPT TO:rich\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n", "220 250 250 250 354 250 221" },
};

static void test_commands(void **state)
{
    (void)state;
    static struct drive d;
    for (size_t i = 0; i < sizeof cmd_cases / sizeof cmd_cases[0]; i++) {
        const struct cmd_case *c = &cmd_cases[i];
        struct smtp_server_conf conf;
        conf_make(c->conf, &conf);
        size_t len = strlen(c->in);
        if (strcmp(c->label, "NUL in command") == 0)
            len = 18;                                    /* strlen stops at the NUL */
        char got[1024];
        for (size_t chunk = 0; chunk <= 3; chunk++) {    /* whole, then 1, 2, 3 bytes */
            for (int esc = 0; esc <= 1; esc++) {
                conf.enhancedstatuscodes = esc ? (c->conf != CONF_MIN) : false;
                drive_run(&d, &conf, c->in, len, chunk);
                drive_codes(&d, got, sizeof got);
                if (strcmp(got, c->codes) != 0)
                    fail_msg("%s (chunk %zu): got '%s', want '%s'", c->label, chunk, got,
                             c->codes);
                drive_check_esc(&d, conf.enhancedstatuscodes);
            }
        }
    }
}

/* ---- EHLO -------------------------------------------------------------------------- */

static void test_ehlo_caps(void **state)
{
    (void)state;
    static struct drive d;
    struct smtp_server_conf conf;
    conf_make(CONF_ALL, &conf);
    const char *in = "EHLO client\r\nSTARTTLS\r\nEHLO client\r\nSTARTTLS\r\n";
    char got[256];
    drive_run(&d, &conf, in, strlen(in), 0);     /* one buffer: all after STARTTLS dropped */
    drive_codes(&d, got, sizeof got);
    assert_string_equal(got, "220 250 220");
    assert_int_equal(d.starttls, 1);
    drive_run(&d, &conf, in, 13, 0);
    const char *want =
        "220 sink.test ESMTP\r\n"
        "250-sink.test\r\n250-SIZE 14680064\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
        "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-DSN\r\n250 STARTTLS\r\n";
    assert_int_equal(d.out_len, strlen(want));
    assert_memory_equal(d.out, want, d.out_len);

    /* After TLS: no STARTTLS offered, a second STARTTLS is refused, MAIL needs EHLO again. */
    const char *tls = "EHLO c\r\nSTARTTLS\r\nMAIL FROM:<a@b.org>\r\nEHLO c\r\nSTARTTLS\r\n";
    drive_run(&d, &conf, tls, strlen(tls), 1);   /* byte by byte: nothing is discarded */
    drive_codes(&d, got, sizeof got);
    assert_string_equal(got, "220 250 220 503 250 503");
    assert_int_equal(d.starttls, 1);
    const char *second = strstr(d.out, "250-sink.test\r\n250-SIZE 14680064");
    assert_non_null(second);
    second = strstr(second + 1, "250-sink.test");
    assert_non_null(second);
    assert_null(strstr(second, "STARTTLS\r\n"));

    /* A hostname past the reply text cap is cut, never overflows. */
    static char longname[400];
    memset(longname, 'h', sizeof longname - 1);
    conf_make(CONF_ALL, &conf);
    conf.hostname = longname;
    drive_run(&d, &conf, "EHLO c\r\n", 8, 0);
    assert_int_equal(d.n, 2);
    const char *ehlo = memchr(d.out, '\n', d.out_len) + 1;
    assert_int_equal(strcspn(ehlo, "\r"), 4 + SMTP_SERVER_TEXT_BYTES_MAX - 1);

    /* Minimal conf: bare SIZE, and HELO is a single line. */
    conf_make(CONF_MIN, &conf);
    drive_run(&d, &conf, "EHLO c\r\nHELO c\r\n", 16, 0);
    const char *min = "220 sink.test ESMTP\r\n250-sink.test\r\n250 SIZE\r\n250 sink.test\r\n";
    assert_int_equal(d.out_len, strlen(min));
    assert_memory_equal(d.out, min, d.out_len);
}

/* ---- body rules ---------------------------------------------------------------------- */

struct body_case {
    const char *label;
    const char *data;        /* everything after "DATA\r\n", ending with the real end */
    size_t len;              /* 0: strlen */
    const char *content;     /* unstuffed content of the (only) message */
    bool bad;
    unsigned dots;           /* messages ended */
};

#define BC(label, data, content, bad) { label, data, 0, content, bad, 1 }

static const struct body_case body_cases[] = {
    BC("empty message", ".\r\n", "", false),
    BC("one line", "hello\r\n.\r\n", "hello\r\n", false),
    BC("unstuff", "..a\r\n...\r\n..\r\n.\r\n", ".a\r\n..\r\n.\r\n", false),
    BC("dot-space line", ". \r\n.\r\n", " \r\n", false),
    BC("stuffed dot line", "a\r\n..\r\n.\r\n", "a\r\n.\r\n", false),
    BC("dot mid-line", "a.b\r\n a\r\n.x\r\n.\r\n", "a.b\r\n a\r\n" "x\r\n", false),
    BC("blank lines", "\r\n\r\n.\r\n", "\r\n\r\n", false),
    BC("smuggle LF.CRLF", "a\n.\r\nMAIL FROM:<x@y>\r\n\r\n.\r\n",
       "a\n.\r\nMAIL FROM:<x@y>\r\n\r\n", true),
    BC("smuggle LF.LF", "a\n.\nMAIL FROM:<x@y>\r\n.\r\n", "a\n.\nMAIL FROM:<x@y>\r\n", true),
    BC("smuggle CRLF.LF", "a\r\n.\nMAIL FROM:<x@y>\r\n.\r\n", NULL, true),
    BC("smuggle CR.CR", "a\r.\rMAIL FROM:<x@y>\r\n.\r\n", NULL, true),
    BC("smuggle CR.CRLF", "a\r.\r\nMAIL FROM:<x@y>\r\n.\r\n", NULL, true),
    BC("smuggle .CR at start", ".\rMAIL FROM:<x@y>\r\n.\r\n", NULL, true),
    BC("bare LF line ends", "a\nb\n.\n\r\n.\r\n", NULL, true),
    BC("bare CR", "a\rb\r\n.\r\n", NULL, true),
    BC("NUL", "a\0b\r\n.\r\n", NULL, true),
    BC("CR CR LF", "a\r\r\n.\r\n", NULL, true),
};

static void body_check(const struct drive *d, const struct body_case *c, const char *how,
                       size_t k)
{
    if (d->dots != c->dots || d->mail_events != 1)
        fail_msg("%s (%s %zu): %u messages, %u MAIL events", c->label, how, k, d->dots,
                 d->mail_events);
    const struct drive_dot *t = &d->dot[0];
    if (t->bad != c->bad)
        fail_msg("%s (%s %zu): bad=%d", c->label, how, k, (int)t->bad);
    assert_int_equal(t->rcpts, 1);
    assert_int_equal(t->code, c->bad ? 550 : 250);
    assert_int_equal(d->code[d->n - 1], 221);          /* QUIT after it, not swallowed */
    if (c->content) {
        if (t->body_len != strlen(c->content) || strcmp(d->dot_body[0], c->content) != 0)
            fail_msg("%s (%s %zu): content '%s'", c->label, how, k, d->dot_body[0]);
        assert_int_equal(t->bytes, strlen(c->content));
    }
}

static void test_body(void **state)
{
    (void)state;
    static struct drive d;
    static char in[4096];
    struct smtp_server_conf conf;
    conf_make(CONF_STD, &conf);
    const char *head = EH MF RT "DATA\r\n";
    for (size_t i = 0; i < sizeof body_cases / sizeof body_cases[0]; i++) {
        const struct body_case *c = &body_cases[i];
        size_t dl = c->len ? c->len : strlen(c->data);
        if (strcmp(c->label, "NUL") == 0)
            dl = 8;                                      /* strlen stops at the NUL */
        size_t hl = strlen(head);
        memcpy(in, head, hl);
        memcpy(in + hl, c->data, dl);
        memcpy(in + hl + dl, "QUIT\r\n", 6);
        size_t len = hl + dl + 6;
        for (size_t chunk = 0; chunk <= 2; chunk++) {
            drive_run(&d, &conf, in, len, chunk);
            body_check(&d, c, "chunk", chunk);
        }
        for (size_t k = 0; k <= len; k++) {            /* every split point */
            drive_run_split(&d, &conf, in, len, k);
            body_check(&d, c, "split", k);
        }
    }
}

/* The smuggling case of the brief, in full: one MAIL event, one bad message. */
static void test_smuggling(void **state)
{
    (void)state;
    static struct drive d;
    struct smtp_server_conf conf;
    conf_make(CONF_STD, &conf);
    const char *in = EH MF RT "DATA\r\nSubject: x\r\n\r\nhello\n.\r\nMAIL FROM:<x@y>\r\n"
                     "RCPT TO:<victim@example.org>\r\nDATA\r\nforged\r\n.\r\nQUIT\r\n";
    size_t len = strlen(in);
    for (size_t k = 0; k <= len; k++) {
        drive_run_split(&d, &conf, in, len, k);
        char got[256];
        drive_codes(&d, got, sizeof got);
        if (strcmp(got, "220 250 250 250 354 550 221") != 0)
            fail_msg("split %zu: codes '%s'", k, got);
        assert_int_equal(d.mail_events, 1);
        assert_int_equal(d.dots, 1);
        assert_true(d.dot[0].bad);
    }
}

/* Lines of 998 octets pass; 999 make the message bad, at every chunking. */
static void test_body_line_length(void **state)
{
    (void)state;
    static struct drive d;
    static char in[8192];
    struct smtp_server_conf conf;
    conf_make(CONF_STD, &conf);
    const char *head = EH MF RT "DATA\r\n";
    size_t hl = strlen(head);
    for (size_t line = 996; line <= 1001; line++) {
        for (size_t chunk = 0; chunk <= 7; chunk += 7) {
            size_t n = hl;
            memcpy(in, head, hl);
            memset(in + n, 'x', line);
            n += line;
            memcpy(in + n, "\r\n.\r\nQUIT\r\n", 11);
            n += 11;
            drive_run(&d, &conf, in, n, chunk);
            assert_int_equal(d.dots, 1);
            assert_int_equal(d.dot[0].bad, line > 998);
            assert_int_equal(d.dot[0].bytes, line + 2);
        }
    }
}

/* SIZE during DATA: 552 5.3.4 at the dot, and no BODY bytes past the limit. */
static void test_size_limit(void **state)
{
    (void)state;
    static struct drive d;
    static char in[1024];
    struct smtp_server_conf conf;
    conf_make(CONF_SIZE100, &conf);
    const char *head = EH MF RT "DATA\r\n";
    size_t hl = strlen(head);
    for (size_t body = 98; body <= 150; body += 52) {   /* 98 + CRLF = 100: fits */
        size_t n = hl;
        memcpy(in, head, hl);
        memset(in + n, 'y', body);
        n += body;
        memcpy(in + n, "\r\n.\r\n" MF, 5 + strlen(MF));
        n += 5 + strlen(MF);
        for (size_t chunk = 0; chunk <= 10; chunk += 5) {
            drive_run(&d, &conf, in, n, chunk);
            assert_int_equal(d.dots, 1);
            assert_int_equal(d.dot[0].bytes, body + 2);
            assert_int_equal(d.dot[0].code, body + 2 > 100 ? 552 : 250);
            assert_true(d.dot[0].body_len <= 100);
            assert_int_equal(d.code[d.n - 1], 250);      /* MAIL right after the dot */
            assert_non_null(strstr(d.out, body + 2 > 100 ? "552 5.3.4" : "250 2.0.0"));
        }
    }
}

/* Over-long command lines: 500 5.5.2, skipped without buffering, at any chunking. */
static void test_long_lines(void **state)
{
    (void)state;
    static struct drive d;
    static char in[4096];
    struct smtp_server_conf conf;
    conf_make(CONF_STD, &conf);
    for (size_t line = 508; line <= 2000; line += (line < 514 ? 1 : 743)) {
        memcpy(in, "NOOP ", 5);
        memset(in + 5, 'z', line - 5);
        memcpy(in + line, "\r\n" EH, 2 + strlen(EH));
        size_t n = line + 2 + strlen(EH);
        for (size_t chunk = 0; chunk <= 64; chunk += 13) {
            drive_run(&d, &conf, in, n, chunk);
            char got[64];
            drive_codes(&d, got, sizeof got);
            const char *want = line + 2 <= 512 ? "220 250 250" : "220 500 250";
            if (strcmp(got, want) != 0)
                fail_msg("line %zu chunk %zu: '%s'", line, chunk, got);
        }
    }
}

/* ---- policy answers ------------------------------------------------------------------ */

struct policy_arg { enum smtp_server_cmd cmd; uint16_t code; };

static uint16_t policy_one(const struct smtp_server_event *ev, void *arg)
{
    const struct policy_arg *p = arg;
    return ev->cmd == p->cmd ? p->code : 0;
}

/* A 421 answer to any command closes, and nothing after it is read. */
static void test_policy_421(void **state)
{
    (void)state;
    static struct drive d;
    struct smtp_server_conf conf;
    conf_make(CONF_ALL, &conf);
    const char *all = EH "HELO x\r\nNOOP\r\nVRFY a\r\nHELP\r\nAUTH PLAIN\r\n" MF RT
                      "DATA\r\nbody\r\n.\r\n"
                      "RSET\r\nBDAT 1\r\nFOO\r\nQUIT\r\n";
    for (enum smtp_server_cmd c = SMTP_SCMD_BANNER; c < SMTP_SCMD_COUNT; c++) {
        const char *in = c == SMTP_SCMD_STARTTLS ? EH "STARTTLS\r\n" : all;
        struct policy_arg pa = { c, 421 };
        drive_init(&d, &conf);
        d.policy = policy_one;
        d.policy_arg = &pa;
        drive_feed(&d, "", 0);
        drive_feed(&d, in, strlen(in));
        assert_true(d.closed);
        assert_int_equal(d.code[d.n - 1], 421);
        assert_int_equal(d.cmd[d.n - 1], c);
        unsigned before = d.n;
        drive_feed(&d, "NOOP\r\n", 6);
        assert_int_equal(d.n, before);
    }
}

/* State advances only on success: MAIL answered 451 leaves no transaction. */
static void test_policy_refusals(void **state)
{
    (void)state;
    static struct drive d;
    struct smtp_server_conf conf;
    conf_make(CONF_STD, &conf);
    static const struct { enum smtp_server_cmd cmd; uint16_t code; const char *in;
                          const char *codes; } rows[] = {
        { SMTP_SCMD_MAIL, 451, EH MF RT MF, "220 250 451 503 451" },
        { SMTP_SCMD_RCPT, 550, EH MF RT "DATA\r\n", "220 250 250 550 503" },
        { SMTP_SCMD_DATA, 451, EH MF RT "DATA\r\nMAIL FROM:<b@c.org>\r\n",
          "220 250 250 250 451 503" },
        { SMTP_SCMD_EHLO, 550, EH MF, "220 550 503" },
        { SMTP_SCMD_DOT, 451, EH MF RT "DATA\r\n.\r\n" MF, "220 250 250 250 354 451 250" },
        { SMTP_SCMD_BANNER, 554, EH MF "QUIT\r\n", "554 503 503 221" },
        { SMTP_SCMD_QUIT, 500, "QUIT\r\nNOOP\r\n", "220 500 250" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct policy_arg pa = { rows[i].cmd, rows[i].code };
        drive_init(&d, &conf);
        d.policy = policy_one;
        d.policy_arg = &pa;
        drive_feed(&d, "", 0);
        drive_feed(&d, rows[i].in, strlen(rows[i].in));
        char got[256];
        drive_codes(&d, got, sizeof got);
        if (strcmp(got, rows[i].codes) != 0)
            fail_msg("row %zu: got '%s' want '%s'", i, got, rows[i].codes);
    }
}

/* Policy text cannot inject reply lines. */
static void test_policy_text(void **state)
{
    (void)state;
    struct smtp_server_conf conf;
    conf_make(CONF_STD, &conf);
    struct smtp_server s;
    struct smtp_server_event ev;
    size_t used;
    smtp_server_init(&s, &conf);
    smtp_server_step(&s, NULL, 0, &used, &ev);
    assert_int_equal(ev.type, SMTP_SEV_COMMAND);
    assert_int_equal(ev.cmd, SMTP_SCMD_BANNER);
    assert_int_equal(ev.reply.code, 220);
    struct smtp_server_reply r = { 220, "x\r\n250 injected" };
    char out[1024];
    enum smtp_server_after after;
    size_t n = smtp_server_answer(&s, &r, out, sizeof out, &after);
    assert_int_equal(n, strlen("220 x  250 injected\r\n"));
    assert_memory_equal(out, "220 x  250 injected\r\n", n);
    assert_int_equal(after, SMTP_SERVER_AFTER_CONTINUE);
    assert_string_equal(smtp_server_cmd_name(SMTP_SCMD_STARTTLS), "STARTTLS");
    assert_string_equal(smtp_server_cmd_name(SMTP_SCMD_DOT), "DOT");
}

/* Events carry the argument: MAIL/RCPT the path without brackets. */
static void test_event_args(void **state)
{
    (void)state;
    static const struct { const char *line; enum smtp_server_cmd cmd; const char *arg; } rows[] = {
        { "EHLO  client.test  \r\n", SMTP_SCMD_EHLO, " client.test" },
        { "MAIL FROM:<a@b.org> SIZE=10\r\n", SMTP_SCMD_MAIL, "a@b.org" },
        { "RCPT TO:<@r.org:c@d.org>\r\n", SMTP_SCMD_RCPT, "c@d.org" },
        { "RCPT TO:rich\r\n", SMTP_SCMD_RCPT, "rich" },
        { "VRFY someone\r\n", SMTP_SCMD_VRFY, "someone" },
    };
    struct smtp_server_conf conf;
    conf_make(CONF_STD, &conf);
    struct smtp_server s;
    struct smtp_server_event ev;
    char out[1024];
    enum smtp_server_after after;
    size_t used;
    smtp_server_init(&s, &conf);
    smtp_server_step(&s, NULL, 0, &used, &ev);
    smtp_server_answer(&s, &ev.reply, out, sizeof out, &after);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        smtp_server_step(&s, rows[i].line, strlen(rows[i].line), &used, &ev);
        assert_int_equal(used, strlen(rows[i].line));
        assert_int_equal(ev.type, SMTP_SEV_COMMAND);
        assert_int_equal(ev.cmd, rows[i].cmd);
        assert_int_equal(ev.arg_len, strlen(rows[i].arg));
        assert_memory_equal(ev.arg, rows[i].arg, ev.arg_len);
        assert_true(ev.reply.code >= 200 && ev.reply.code < 300);
        smtp_server_answer(&s, &ev.reply, out, sizeof out, &after);
    }
    /* the null reverse-path */
    smtp_server_step(&s, "RSET\r\n", 6, &used, &ev);
    smtp_server_answer(&s, &ev.reply, out, sizeof out, &after);
    smtp_server_step(&s, "MAIL FROM:<>\r\n", 14, &used, &ev);
    assert_int_equal(ev.reply.code, 250);
    assert_int_equal(ev.arg_len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_ehlo_caps),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_smuggling),
        cmocka_unit_test(test_body_line_length),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_policy_421),
        cmocka_unit_test(test_policy_refusals),
        cmocka_unit_test(test_policy_text),
        cmocka_unit_test(test_event_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
