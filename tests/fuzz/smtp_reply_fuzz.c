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
 *    reply; an error is sticky.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct outcome whole, split;
    if (size > FUZZ_INPUT_MAX)
        return 0;
    run(data, size, NULL, &whole);
    struct fuzz_rng rng = { fuzz_hash(data, size) };
    run(data, size, &rng, &split);
    same(&whole, &split);
    return 0;
}
