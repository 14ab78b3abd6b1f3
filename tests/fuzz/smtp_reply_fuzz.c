/*
 * smtp_reply_fuzz.c - the streaming SMTP reply parser (engine/smtp/smtp_reply.h).
 *
 * Input: bytes as a server would send them. They are parsed twice, once in one
 * piece and once in chunk splits derived from the input, each time with an
 * EHLO capability sink. Invariants:
 *  - the same replies (code, lines, bytes, status, text), the same error and
 *    the same capabilities come out for any chunking;
 *  - every reply: code 200..599, 1..VL_SMTP_REPLY_LINES_MAX lines, bytes
 *    equal to what the feeds consumed for it, text sanitised and
 *    NUL-terminated at text_len, status "" or a valid x.y.z of the code's class;
 *  - a feed never consumes more than it was given and stops right after a
 *    reply; an error is sticky;
 *  - the replies and the error are those of a line-by-line reference model
 *    written from the contract in smtp_reply.h (model() below).
 */
#include <string.h>

#include "fuzz.h"
#include "smtp_reply.h"
#include "volley/error.h"

#define REPLIES_MAX 512u

struct outcome {
    struct smtp_reply r[REPLIES_MAX];
    unsigned n;
    int err;
    struct smtp_ehlo ehlo;
};

static void check_reply(const struct smtp_reply *r, size_t bytes)
{
    FUZZ_CHECK(r->code >= 200 && r->code <= 599);
    FUZZ_CHECK(r->lines >= 1 && r->lines <= VL_SMTP_REPLY_LINES_MAX);
    FUZZ_CHECK(r->bytes == bytes);
    FUZZ_CHECK(r->bytes >= 5u * r->lines && r->bytes <= VL_SMTP_REPLY_BYTES_MAX);
    FUZZ_CHECK(r->text_len <= VL_DIAG_TEXT_BYTES_MAX && r->text[r->text_len] == '\0');
    for (size_t i = 0; i < r->text_len; i++)
        FUZZ_CHECK((unsigned char)r->text[i] >= 0x20 && (unsigned char)r->text[i] < 0x7f);
    size_t sl = strnlen(r->status, sizeof r->status);
    FUZZ_CHECK(sl < sizeof r->status);
    if (sl) {
        char again[VL_SMTP_STATUS_BYTES_MAX];
        FUZZ_CHECK(smtp_reply_status_parse(r->status, sl, again) == 1);
        FUZZ_CHECK(r->status[0] == (char)('0' + r->code / 100));
    }
}

/* Parse @p data in pieces of @p rng's choosing (NULL: one piece). */
static void run(const uint8_t *data, size_t size, struct fuzz_rng *rng, struct outcome *o)
{
    struct smtp_reply_parser p;
    memset(o, 0, sizeof *o);
    smtp_ehlo_init(&o->ehlo);
    smtp_reply_parser_init(&p, &o->ehlo);
    const char *in = (const char *)data;
    size_t off = 0, reply_bytes = 0;
    while (off < size && o->err == 0) {
        size_t chunk = rng ? fuzz_chunk(rng, size - off) : size - off;
        size_t c_off = 0;
        for (unsigned guard = 0; c_off < chunk; guard++) {
            FUZZ_CHECK(guard <= chunk);
            size_t used = 0;
            int rc = smtp_reply_feed(&p, in + off + c_off, chunk - c_off, &used);
            FUZZ_CHECK(used <= chunk - c_off);
            c_off += used;
            reply_bytes += used;
            if (rc < 0) {
                FUZZ_CHECK(rc == VL_E_PROTO);
                o->err = rc;
                size_t again = 1;
                FUZZ_CHECK(smtp_reply_feed(&p, "250 ok\r\n", 8, &again) == rc && again == 0);
                break;
            }
            if (rc == 1) {
                check_reply(smtp_reply_get(&p), reply_bytes);
                reply_bytes = 0;
                FUZZ_CHECK(o->n < REPLIES_MAX);
                o->r[o->n++] = *smtp_reply_get(&p);
                continue;
            }
            FUZZ_CHECK(rc == 0 && c_off == chunk);
        }
        off += chunk;
    }
}

static void same(const struct outcome *a, const struct outcome *b)
{
    FUZZ_CHECK(a->err == b->err);
    FUZZ_CHECK(a->n == b->n);
    for (unsigned i = 0; i < a->n; i++) {
        const struct smtp_reply *x = &a->r[i], *y = &b->r[i];
        FUZZ_CHECK(x->code == y->code && x->lines == y->lines && x->bytes == y->bytes);
        FUZZ_CHECK(strcmp(x->status, y->status) == 0);
        FUZZ_CHECK(x->text_len == y->text_len && memcmp(x->text, y->text, x->text_len) == 0);
    }
    FUZZ_CHECK(memcmp(&a->ehlo, &b->ehlo, sizeof a->ehlo) == 0);
}

/* ---- a reference model, written from the contract in smtp_reply.h ---- */

static bool model_status(const char *s, size_t n)
{
    /* [245] "." 1*3DIGIT "." 1*3DIGIT */
    if (n < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    size_t i = 2, d = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, d++;
    if (d < 1 || d > 3 || i >= n || s[i] != '.')
        return false;
    i++;
    d = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, d++;
    return d >= 1 && d <= 3 && i == n;
}

/* The first line's status and text, from its first SMTP_REPLY_KEEP_BYTES bytes. */
static void model_first(struct smtp_reply *r, const char *l, size_t n)
{
    if (n > SMTP_REPLY_KEEP_BYTES)
        n = SMTP_REPLY_KEEP_BYTES;
    const char *t = n > 4 ? l + 4 : l;
    size_t tn = n > 4 ? n - 4 : 0, tok = 0;
    while (tok < tn && t[tok] != ' ')
        tok++;
    r->status[0] = '\0';
    if (model_status(t, tok) && t[0] == (char)('0' + r->code / 100)) {
        memcpy(r->status, t, tok);
        r->status[tok] = '\0';
        while (tok < tn && t[tok] == ' ')
            tok++;
        t += tok;
        tn -= tok;
    }
    if (tn > VL_DIAG_TEXT_BYTES_MAX)
        tn = VL_DIAG_TEXT_BYTES_MAX;
    for (size_t i = 0; i < tn; i++) {
        unsigned char c = (unsigned char)t[i];
        r->text[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    r->text[tn] = '\0';
    r->text_len = (uint16_t)tn;
}

/* Replies are lines "DDD" [("-" / " ") text] CRLF, no other CR or LF, at most
 * VL_SMTP_REPLY_LINE_BYTES_MAX with CRLF, one code per reply, the last line
 * with " " or nothing after the code; caps on lines and bytes per reply. An
 * error (also in an incomplete last line) ends the stream. */
static void model(const uint8_t *data, size_t size, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    const char *in = (const char *)data;
    struct smtp_reply cur = { 0 };
    size_t off = 0;
    while (off < size) {
        const char *lf = memchr(in + off, '\n', size - off);
        size_t seg = lf ? (size_t)(lf - (in + off)) + 1 : size - off;   /* LF included */
        const char *l = in + off;
        size_t body = lf ? seg - 1 : seg;                                /* without LF */
        const char *cr = memchr(l, '\r', body);
        bool err = cr && cr != l + body - 1;                             /* CR not last */
        err |= body + 1 > VL_SMTP_REPLY_LINE_BYTES_MAX;
        err |= cur.bytes + seg > VL_SMTP_REPLY_BYTES_MAX;
        if (!err && lf) {
            size_t n = body - 1;                                         /* without CRLF */
            err |= !cr;                                                  /* bare LF */
            err |= n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9'
                   || l[2] < '0' || l[2] > '9' || (n > 3 && l[3] != ' ' && l[3] != '-');
            if (!err) {
                uint16_t code = (uint16_t)((l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0'));
                err |= cur.lines > 0 && code != cur.code;
                err |= cur.lines + 1u > VL_SMTP_REPLY_LINES_MAX;
                if (!err) {
                    cur.code = code;
                    if (++cur.lines == 1)
                        model_first(&cur, l, n);
                    cur.bytes += (uint32_t)seg;
                    if (n == 3 || l[3] == ' ') {
                        FUZZ_CHECK(o->n < REPLIES_MAX);
                        o->r[o->n++] = cur;
                        memset(&cur, 0, sizeof cur);
                    }
                }
            }
        }
        if (err) {
            o->err = VL_E_PROTO;
            return;
        }
        cur.bytes += lf ? 0 : (uint32_t)seg;
        off += seg;
    }
}

static void same_replies(const struct outcome *a, const struct outcome *b)
{
    FUZZ_CHECK(a->err == b->err);
    FUZZ_CHECK(a->n == b->n);
    for (unsigned i = 0; i < a->n; i++) {
        const struct smtp_reply *x = &a->r[i], *y = &b->r[i];
        FUZZ_CHECK(x->code == y->code && x->lines == y->lines && x->bytes == y->bytes);
        FUZZ_CHECK(strcmp(x->status, y->status) == 0);
        FUZZ_CHECK(x->text_len == y->text_len && memcmp(x->text, y->text, x->text_len) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct outcome whole, split;
    if (size > FUZZ_INPUT_MAX)
        return 0;
    run(data, size, NULL, &whole);
    struct fuzz_rng rng = { fuzz_hash(data, size) };
    run(data, size, &rng, &split);
    same(&whole, &split);
    static struct outcome ref;
    model(data, size, &ref);
    same_replies(&whole, &ref);
    return 0;
}
