/*
 * smtp_server_drive.h - test driver for the server state machine (included by
 * smtp_server_test.c and smtp_server_transcript_test.c after cmocka.h).
 *
 * Feeds input in chunks, answers every event with the proposed reply (or a
 * policy's), and records the reply codes, the formatted reply lines, the body
 * bytes and the end-of-data facts.
 */
#ifndef VOLLEY_TEST_SMTP_SERVER_DRIVE_H
#define VOLLEY_TEST_SMTP_SERVER_DRIVE_H

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_server.h"

#define DRIVE_CODES_MAX   512u
#define DRIVE_BODY_MAX    (256u << 10)
#define DRIVE_OUT_MAX     (64u << 10)
#define DRIVE_DOTS_MAX    16u

/* A policy may replace the proposed code of an event (0: keep it). */
typedef uint16_t (*drive_policy_fn)(const struct smtp_server_event *ev, void *arg);

struct drive_dot { uint64_t bytes; uint32_t rcpts; bool bad; uint16_t code; size_t body_len; };

struct drive {
    struct smtp_server_conf conf;
    struct smtp_server srv;
    drive_policy_fn policy;
    void *policy_arg;
    uint16_t code[DRIVE_CODES_MAX];
    enum smtp_server_cmd cmd[DRIVE_CODES_MAX];
    unsigned n;                      /* replies given */
    unsigned mail_events;
    char body[DRIVE_BODY_MAX];       /* BODY bytes of the current message */
    size_t body_len;
    struct drive_dot dot[DRIVE_DOTS_MAX];
    char dot_body[DRIVE_DOTS_MAX][512];   /* the first 511 bytes of each message */
    unsigned dots;
    char out[DRIVE_OUT_MAX];         /* every formatted reply, in order */
    size_t out_len;
    bool closed;
    unsigned starttls;
};

static inline void drive_conf_default(struct smtp_server_conf *c)
{
    memset(c, 0, sizeof *c);
    c->hostname = "sink.test";
    c->pipelining = true;
    c->eightbitmime = true;
    c->enhancedstatuscodes = true;
}

static inline void drive_init(struct drive *d, const struct smtp_server_conf *conf)
{
    memset(d, 0, sizeof *d);
    d->conf = *conf;
    smtp_server_init(&d->srv, &d->conf);
}

static inline void drive_answer(struct drive *d, const struct smtp_server_event *ev)
{
    struct smtp_server_reply r = ev->reply;
    if (d->policy) {
        uint16_t c = d->policy(ev, d->policy_arg);
        if (c)
            r.code = c;
    }
    assert_true(d->n < DRIVE_CODES_MAX);
    d->code[d->n] = r.code;
    d->cmd[d->n] = ev->cmd;
    d->n++;
    char out[1024];
    enum smtp_server_after after;
    size_t n = smtp_server_answer(&d->srv, &r, out, sizeof out, &after);
    assert_true(n >= 6 && n <= sizeof out);
    assert_true(d->out_len + n <= DRIVE_OUT_MAX);
    memcpy(d->out + d->out_len, out, n);
    d->out_len += n;
    if (after == SMTP_SERVER_AFTER_CLOSE)
        d->closed = true;
    if (after == SMTP_SERVER_AFTER_STARTTLS) {
        d->starttls++;
        smtp_server_tls_started(&d->srv);    /* the handshake "succeeds" at once */
    }
}

static inline void drive_dot(struct drive *d, const struct smtp_server_event *ev)
{
    assert_true(d->dots < DRIVE_DOTS_MAX);
    struct drive_dot *t = &d->dot[d->dots];
    t->bytes = ev->msg_bytes;
    t->rcpts = ev->msg_rcpts;
    t->bad = ev->msg_bad;
    t->code = ev->reply.code;
    t->body_len = d->body_len;
    size_t k = d->body_len < 511 ? d->body_len : 511;
    memcpy(d->dot_body[d->dots], d->body, k);
    d->dot_body[d->dots][k] = '\0';
    d->dots++;
    if (!ev->msg_bad && ev->reply.code == 250)
        assert_int_equal(ev->msg_bytes, d->body_len);   /* size counts what was handed out */
}

/* Feed one chunk: step until the server wants more input (or closed). */
static inline void drive_feed(struct drive *d, const char *in, size_t len)
{
    size_t off = 0;
    for (unsigned guard = 0; !d->closed; guard++) {
        assert_true(guard <= 2 * len + 8);
        struct smtp_server_event ev;
        size_t used = 0;
        smtp_server_step(&d->srv, in + off, len - off, &used, &ev);
        assert_true(used <= len - off);
        off += used;
        switch (ev.type) {
        case SMTP_SEV_NEED_INPUT:
            assert_int_equal(off, len);
            return;
        case SMTP_SEV_BODY:
            assert_true(ev.body_len > 0 && used > 0);
            assert_true(d->body_len + ev.body_len <= DRIVE_BODY_MAX);
            memcpy(d->body + d->body_len, ev.body, ev.body_len);
            d->body_len += ev.body_len;
            break;
        case SMTP_SEV_DOT:
            drive_dot(d, &ev);
            d->body_len = 0;
            drive_answer(d, &ev);
            break;
        case SMTP_SEV_COMMAND:
            if (ev.cmd == SMTP_SCMD_MAIL) {
                d->mail_events++;
                d->body_len = 0;                 /* a new transaction (after RSET too) */
            }
            drive_answer(d, &ev);
            break;
        default:
            fail_msg("bad event type %d", (int)ev.type);
        }
    }
}

/* Run @p in through a fresh server in chunks of @p chunk bytes (0: one piece). */
static inline void drive_run(struct drive *d, const struct smtp_server_conf *conf,
                      const char *in, size_t len, size_t chunk)
{
    drive_init(d, conf);
    drive_feed(d, "", 0);                        /* the banner */
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t off = 0; off < len && !d->closed; off += chunk)
        drive_feed(d, in + off, len - off < chunk ? len - off : chunk);
}

/* Run with the input split in two at @p k. */
static inline void drive_run_split(struct drive *d, const struct smtp_server_conf *conf,
                            const char *in, size_t len, size_t k)
{
    drive_init(d, conf);
    drive_feed(d, "", 0);
    drive_feed(d, in, k);
    if (!d->closed)
        drive_feed(d, in + k, len - k);
}

/* "220 250 503": the codes given, space-separated. */
static inline void drive_codes(const struct drive *d, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < d->n && n + 5 < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? " %u" : "%u", d->code[i]);
}

/* Check RFC 2034 on every formatted reply line: x.y.z on each 2xx/4xx/5xx but
 * the greeting and EHLO/HELO replies (when @p esc), never on a 3xx, never when off. */
static inline void drive_check_esc(const struct drive *d, bool esc)
{
    const char *p = d->out, *end = d->out + d->out_len;
    unsigned reply = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(eol);
        assert_true(eol - p >= 5 && eol[-1] == '\r');
        assert_true(isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1])
                    && isdigit((unsigned char)p[2]));
        assert_true(p[3] == ' ' || p[3] == '-');
        bool is_esc = p[4] >= '2' && p[4] <= '5' && p[5] == '.'
                      && isdigit((unsigned char)p[6]);
        assert_true(reply < d->n);
        enum smtp_server_cmd c = d->cmd[reply];
        bool exempt = c == SMTP_SCMD_BANNER || c == SMTP_SCMD_EHLO || c == SMTP_SCMD_HELO;
        bool want = esc && p[0] != '3' && !exempt;
        if (is_esc != want)
            fail_msg("reply %u (%s): '%.*s' enhanced code %s", reply, smtp_server_cmd_name(c),
                     (int)(eol - p - 1), p, want ? "missing" : "unexpected");
        if (is_esc)
            assert_int_equal(p[4], p[0]);        /* class matches the code */
        if (p[3] == ' ')
            reply++;
        p = eol + 1;
    }
    assert_int_equal(reply, d->n);
}

/* ---- configurations used by the tables --------------------------------------------- */

enum conf_kind { CONF_STD, CONF_MIN, CONF_ALL, CONF_SIZE100, CONF_RCPT2 };

static inline void conf_make(enum conf_kind k, struct smtp_server_conf *c)
{
    drive_conf_default(c);
    switch (k) {
    case CONF_STD: break;
    case CONF_MIN:
        c->pipelining = c->eightbitmime = c->enhancedstatuscodes = false;
        break;
    case CONF_ALL:
        c->smtputf8 = c->dsn = c->starttls = true;
        c->size_max = 14680064;
        break;
    case CONF_SIZE100: c->size_max = 100; break;
    case CONF_RCPT2: c->rcpts_max = 2; break;
    }
}

#define EH "EHLO client.test\r\n"
#define MF "MAIL FROM:<a@example.org>\r\n"
#define RT "RCPT TO:<b@example.org>\r\n"

#endif
