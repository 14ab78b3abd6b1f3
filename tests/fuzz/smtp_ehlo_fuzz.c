/*
 * smtp_ehlo_fuzz.c - the EHLO capability parser (engine/smtp/smtp_ehlo.h).
 *
 * Input: capability lines separated by LF (as the text after "250-"). Each
 * line goes to smtp_ehlo_line(). Invariants:
 *  - keywords are case-insensitive: the input with a-z upper-cased, and with
 *    A-Z lower-cased, gives the same capabilities;
 *  - AUTH mechanisms only with SMTP_EXT_AUTH, and no more mechanism bits than
 *    mechanisms counted; a SIZE limit only with SMTP_EXT_SIZE;
 *  - when the lines fit in a reply (no CR, short enough), the reply parser
 *    streaming "250-host" CRLF "250-line" CRLF ... "250 last" CRLF hands the
 *    EHLO parser exactly the same capabilities.
 */
#include <string.h>

#include "fuzz.h"
#include "smtp_ehlo.h"
#include "smtp_reply.h"

#define LINE_FIT 900u   /* below the reply parser's kept text (VL_DIAG_TEXT_BYTES_MAX) */

static void parse_lines(const char *in, size_t size, struct smtp_ehlo *e)
{
    smtp_ehlo_init(e);
    size_t off = 0;
    while (off <= size) {
        const char *nl = memchr(in + off, '\n', size - off);
        size_t n = nl ? (size_t)(nl - (in + off)) : size - off;
        smtp_ehlo_line(e, in + off, n);
        off += n + 1;
    }
}

static void check_caps(const struct smtp_ehlo *e)
{
    if (e->auth)
        FUZZ_CHECK(e->ext & SMTP_EXT_AUTH);
    FUZZ_CHECK((uint32_t)__builtin_popcount(e->auth) <= e->auth_count);
    if (e->size_max)
        FUZZ_CHECK(e->ext & SMTP_EXT_SIZE);
}

static bool same(const struct smtp_ehlo *a, const struct smtp_ehlo *b)
{
    return a->ext == b->ext && a->auth == b->auth && a->auth_count == b->auth_count
           && a->size_max == b->size_max;
}

/* Stream the lines as one EHLO reply through the reply parser. @return false if
 * they do not fit in one (then nothing is checked). */
static bool via_reply(const char *in, size_t size, struct smtp_ehlo *e)
{
    static char buf[2 * FUZZ_INPUT_MAX];
    size_t n = 0, lines = 0;
    if (memchr(in, '\r', size))
        return false;
    memcpy(buf, "250-host\r\n", 10);
    n = 10;
    size_t off = 0;
    while (off <= size) {
        const char *nl = memchr(in + off, '\n', size - off);
        size_t ll = nl ? (size_t)(nl - (in + off)) : size - off;
        if (ll > LINE_FIT || ++lines + 1 > VL_SMTP_REPLY_LINES_MAX)
            return false;
        memcpy(buf + n, nl ? "250-" : "250 ", 4);
        memcpy(buf + n + 4, in + off, ll);
        memcpy(buf + n + 4 + ll, "\r\n", 2);
        n += ll + 6;
        off += ll + 1;
    }
    if (n > VL_SMTP_REPLY_BYTES_MAX)
        return false;
    struct smtp_reply_parser p;
    smtp_ehlo_init(e);
    smtp_reply_parser_init(&p, e);
    size_t used = 0;
    int rc = smtp_reply_feed(&p, buf, n, &used);
    FUZZ_CHECK(rc == 1 && used == n);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char upper[FUZZ_INPUT_MAX], lower[FUZZ_INPUT_MAX];
    if (size > FUZZ_INPUT_MAX)
        return 0;
    const char *in = (const char *)data;
    for (size_t i = 0; i < size; i++) {
        char c = in[i];
        upper[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
        lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    struct smtp_ehlo e, u, l, r;
    parse_lines(in, size, &e);
    parse_lines(upper, size, &u);
    parse_lines(lower, size, &l);
    check_caps(&e);
    FUZZ_CHECK(same(&e, &u));
    FUZZ_CHECK(same(&e, &l));
    if (via_reply(in, size, &r))
        FUZZ_CHECK(same(&e, &r));
    return 0;
}
