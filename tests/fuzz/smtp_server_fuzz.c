/*
 * smtp_server_fuzz.c - the SMTP server state machine (engine/smtp/smtp_server.h).
 *
 * Input: byte 0 picks the configuration (each bit one option), byte 1 the
 * policy (0: every proposed reply is given; else some events get another code
 * chosen from it; its top bit also turns on CHUNKING and AUTH and lets the
 * policy answer 334/235), the rest is what a client sends. The session is run twice:
 * all bytes in one piece, and in chunk splits derived from the input. Every
 * event is answered as smtp_server_drive.h does (STARTTLS "succeeds" at once).
 * Invariants:
 *  - step never consumes more than given, and makes progress: a bounded number
 *    of events per chunk; BODY events are non-empty;
 *  - between a DATA answered 3xx and the end of data there are only BODY
 *    events and then one DOT, never a COMMAND (no smuggling), and BODY/DOT
 *    only there or with CHUNKING (BDAT chunks); a STARTTLS command consumes
 *    all the input in hand;
 *  - every formatted answer is 6..1024 bytes of CRLF lines that the client's
 *    reply parser (smtp_reply.h) reads as exactly one reply with the answered
 *    code; with the proposed reply and ENHANCEDSTATUSCODES on, a 2xx/4xx/5xx
 *    reply other than the greeting and EHLO/HELO carries x.y.z of its class;
 *  - a DOT answered as proposed with 250 has msg_bytes equal to the BODY bytes
 *    handed out; a message marked bad is proposed a 550;
 *  - unless a STARTTLS was seen (it swallows whatever input is in hand, by
 *    design), both runs give the same answers, dot facts and body bytes (but
 *    for a message over size_max, whose BODY events stop at a chunk-dependent
 *    point, by design).
 */
#include <string.h>

#include "fuzz.h"
#include "smtp_reply.h"
#include "smtp_server.h"
#include "volley/error.h"

#define OUT_MAX  (256u << 10)
#define BODY_MAX (128u << 10)

struct session {
    struct smtp_server_conf conf;
    struct smtp_server srv;
    uint8_t policy;
    unsigned events;
    bool closed, starttls;
    bool in_data;                /* DATA answered 3xx, the dot not seen yet */
    char out[OUT_MAX];           /* every answer, in order */
    size_t out_len;
    char body[BODY_MAX];         /* BODY bytes of every message, then 8 bytes per dot */
    size_t body_len, msg_body, msg_start;
};

static void body_put(struct session *s, const void *p, size_t n)
{
    if (s->body_len + n > BODY_MAX)
        n = BODY_MAX - s->body_len;   /* both runs truncate alike */
    memcpy(s->body + s->body_len, p, n);
    s->body_len += n;
}

static uint16_t policy_code(struct session *s)
{
    static const uint16_t codes[] = { 250, 354, 421, 451, 550, 221, 220, 503, 252, 554 };
    static const uint16_t codes_ext[] = { 250, 334, 235, 535, 421, 452, 503, 220 };
    unsigned i = s->events++;
    if (s->policy == 0 || (i * 37u + s->policy) % 5u != 0)
        return 0;
    if (s->policy & 0x80u)
        return codes_ext[(i + s->policy) % (sizeof codes_ext / sizeof codes_ext[0])];
    return codes[(i + s->policy) % (sizeof codes / sizeof codes[0])];
}

static void check_answer(const struct session *s, const char *out, size_t n, uint16_t code,
                         bool proposed, enum smtp_server_cmd cmd)
{
    FUZZ_CHECK(n >= 6 && n <= 1024);
    struct smtp_reply_parser p;
    smtp_reply_parser_init(&p, NULL);
    size_t used = 0;
    FUZZ_CHECK(smtp_reply_feed(&p, out, n, &used) == 1 && used == n);
    const struct smtp_reply *r = smtp_reply_get(&p);
    /* A 4xx greeting is sent as 421 (the session cannot go on). */
    FUZZ_CHECK(r->code == code || (cmd == SMTP_SCMD_BANNER && code / 100 == 4));
    bool exempt = cmd == SMTP_SCMD_BANNER || cmd == SMTP_SCMD_EHLO || cmd == SMTP_SCMD_HELO;
    if (proposed && s->conf.enhancedstatuscodes && code / 100 != 3 && !exempt)
        FUZZ_CHECK(out[4] == out[0] && out[5] == '.');
    if (proposed && code / 100 == 3)
        FUZZ_CHECK(!(out[4] >= '2' && out[4] <= '5' && out[5] == '.'));
}

static void answer(struct session *s, const struct smtp_server_event *ev)
{
    struct smtp_server_reply r = ev->reply;
    FUZZ_CHECK(r.code >= 200 && r.code <= 599);
    FUZZ_CHECK(memchr(r.text, '\0', sizeof r.text) != NULL);
    uint16_t c = policy_code(s);
    bool proposed = c == 0 || c == r.code;
    if (c)
        r.code = c;
    if (ev->cmd == SMTP_SCMD_STARTTLS)
        s->starttls = true;
    char out[1024];
    enum smtp_server_after after;
    size_t n = smtp_server_answer(&s->srv, &r, out, sizeof out, &after);
    check_answer(s, out, n, r.code, proposed, ev->cmd);
    if (s->out_len + n <= OUT_MAX) {
        memcpy(s->out + s->out_len, out, n);
        s->out_len += n;
    }
    if (ev->cmd == SMTP_SCMD_DATA && r.code / 100 == 3 && after == SMTP_SERVER_AFTER_CONTINUE)
        s->in_data = true;
    /* Where the machine starts counting a message afresh (msg_bytes = 0), so does
     * the harness: at DATA's 3xx, and when an accepted BDAT chunk is refused after
     * all (the transaction ends, RFC 3030). */
    if ((ev->cmd == SMTP_SCMD_DATA && r.code / 100 == 3)
        || (ev->cmd == SMTP_SCMD_BDAT && ev->reply.code / 100 == 2 && r.code >= 300)) {
        s->body_len = s->msg_start;
        s->msg_body = 0;
    }
    if (ev->cmd == SMTP_SCMD_DOT)
        s->in_data = false;
    /* A new transaction, or the old one reset (RFC 5321 4.1.4: EHLO and HELO
     * reset it like RSET): forget what the machine forgot. */
    if ((ev->cmd == SMTP_SCMD_MAIL || ev->cmd == SMTP_SCMD_EHLO || ev->cmd == SMTP_SCMD_HELO
         || ev->cmd == SMTP_SCMD_RSET) && r.code / 100 == 2) {
        s->body_len = s->msg_start;             /* a new transaction: forget a refused one */
        s->msg_body = 0;
    }
    if (after == SMTP_SERVER_AFTER_CLOSE)
        s->closed = true;
    if (after == SMTP_SERVER_AFTER_STARTTLS) {
        smtp_server_tls_started(&s->srv);   /* RFC 3207 4.2: the transaction is gone */
        s->body_len = s->msg_start;
        s->msg_body = 0;
    }
}

static void feed(struct session *s, const char *in, size_t len)
{
    size_t off = 0;
    for (unsigned guard = 0; !s->closed; guard++) {
        FUZZ_CHECK(guard <= 2 * len + 8);
        struct smtp_server_event ev;
        size_t used = 0;
        smtp_server_step(&s->srv, in + off, len - off, &used, &ev);
        FUZZ_CHECK(used <= len - off);
        if (ev.type == SMTP_SEV_COMMAND && ev.cmd == SMTP_SCMD_STARTTLS)
            FUZZ_CHECK(used == len - off);          /* nothing after STARTTLS is read */
        off += used;
        switch (ev.type) {
        case SMTP_SEV_NEED_INPUT:
            FUZZ_CHECK(off == len);
            return;
        case SMTP_SEV_BODY:
            FUZZ_CHECK(s->in_data || s->conf.chunking);
            FUZZ_CHECK(ev.body_len > 0 && used > 0 && ev.body_len <= used);
            body_put(s, ev.body, ev.body_len);
            s->msg_body += ev.body_len;
            break;
        case SMTP_SEV_DOT:
            FUZZ_CHECK(s->in_data || s->conf.chunking);
            if (ev.msg_bad)
                FUZZ_CHECK(ev.reply.code == 550);
            if (!ev.msg_bad && ev.reply.code == 250)
                FUZZ_CHECK(ev.msg_bytes == s->msg_body);
            FUZZ_CHECK(ev.msg_bytes >= s->msg_body);
            /* Past size_max BODY events stop at a chunk-dependent point: keep only
             * the facts of a message over it. */
            if (s->conf.size_max && ev.msg_bytes > s->conf.size_max)
                s->body_len = s->msg_start;
            body_put(s, &ev.msg_bytes, sizeof ev.msg_bytes);
            body_put(s, &ev.msg_bad, 1);
            s->msg_body = 0;
            s->msg_start = s->body_len;
            answer(s, &ev);
            break;
        case SMTP_SEV_COMMAND:
            FUZZ_CHECK(!s->in_data);                /* no command read inside DATA */
            if (ev.cmd == SMTP_SCMD_BDAT && ev.reply.code == 552) {
                s->body_len = s->msg_start;         /* over size_max: as at a dot */
                s->msg_body = 0;
            }
            answer(s, &ev);
            break;
        default:
            FUZZ_CHECK(!"bad event type");
        }
    }
}

static void run(struct session *s, const uint8_t *data, size_t size, struct fuzz_rng *rng)
{
    uint8_t cb = data[0];
    memset(&s->conf, 0, sizeof s->conf);
    s->conf.hostname = "sink.test";
    s->conf.pipelining = cb & 1u;
    s->conf.eightbitmime = cb & 2u;
    s->conf.enhancedstatuscodes = cb & 4u;
    s->conf.smtputf8 = cb & 8u;
    s->conf.dsn = cb & 16u;
    s->conf.starttls = cb & 32u;
    s->conf.size_max = (cb & 64u) ? 100 : 0;
    s->conf.rcpts_max = (cb & 128u) ? 2 : 0;
    s->policy = data[1];
    s->conf.chunking = s->conf.auth = data[1] & 0x80u;
    s->events = 0;
    s->closed = s->starttls = s->in_data = false;
    s->out_len = s->body_len = s->msg_body = s->msg_start = 0;
    smtp_server_init(&s->srv, &s->conf);
    feed(s, "", 0);                          /* the banner */
    const char *in = (const char *)data + 2;
    size_t len = size - 2;
    for (size_t off = 0; off < len && !s->closed;) {
        size_t chunk = rng ? fuzz_chunk(rng, len - off) : len - off;
        feed(s, in + off, chunk);
        off += chunk;
    }
    /* A message left unfinished may be over size_max: its BODY events are not compared. */
    if (s->conf.size_max)
        s->body_len = s->msg_start;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct session whole, split;
    if (size < 2 || size > FUZZ_INPUT_MAX)
        return 0;
    run(&whole, data, size, NULL);
    struct fuzz_rng rng = { fuzz_hash(data, size) };
    run(&split, data, size, &rng);
    if (whole.starttls || split.starttls)
        return 0;
    FUZZ_CHECK(whole.out_len == split.out_len && memcmp(whole.out, split.out, whole.out_len) == 0);
    FUZZ_CHECK(whole.body_len == split.body_len
               && memcmp(whole.body, split.body, whole.body_len) == 0);
    return 0;
}
