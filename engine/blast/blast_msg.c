/*
 * blast_msg.c - what a blast message is made of: its size (drawn from the
 * configured distribution with the thread's seeded generator), its header
 * (Date, From, Message-ID...), its recipients (pattern or list, in turn) and
 * the shared body filler; and the AUTH PLAIN response.
 */
#include "blast_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "volley/error.h"

static uint64_t rng_next(struct blast_thread *th)
{
    uint64_t x = th->rng;            /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    th->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

static double rng_unit(struct blast_thread *th)   /* (0, 1) */
{
    return ((double)(rng_next(th) >> 11) + 0.5) / 9007199254740992.0;
}

static uint64_t size_draw(struct blast_thread *th)
{
    const struct blast_size *sz = &th->conf->size;
    double v;
    switch (sz->kind) {
    case BLAST_SIZE_FIXED:
        return sz->lo;
    case BLAST_SIZE_UNIFORM:
        return sz->lo + rng_next(th) % (sz->hi - sz->lo + 1);
    case BLAST_SIZE_LOGNORMAL:     /* Box-Muller */
        v = sqrt(-2.0 * log(rng_unit(th))) * cos(2.0 * M_PI * rng_unit(th));
        v = sz->median * exp(sz->sigma * v);
        return v < 1 ? 1 : v > VL_MSG_BYTES_MAX ? VL_MSG_BYTES_MAX : (uint64_t)v;
    case BLAST_SIZE_LIST:
        return sz->list[rng_next(th) % sz->list_count];
    }
    vl_panic("blast: bad size kind %d", (int)sz->kind);
}

void blast_msg_date_refresh(struct blast_thread *th)
{
    time_t now = time(NULL);
    if ((uint64_t)now == th->date_s)
        return;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(th->date, sizeof th->date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    th->date_s = (uint64_t)now;
}

void blast_msg_build(struct blast_thread *th, struct blast_session *s)
{
    const struct blast_conf *cf = th->conf;
    uint64_t want = size_draw(th);
    int n = snprintf(s->hdr, sizeof s->hdr,
                     "Date: %s\r\nFrom: <%s>\r\nTo: undisclosed-recipients:;\r\n"
                     "Subject: volley blast %u-%llu\r\n"
                     "Message-ID: <blast.%llx.%u.%llu@%s>\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
                     th->date, cf->from, th->k, (unsigned long long)s->msg_seq,
                     (unsigned long long)cf->seed, th->k, (unsigned long long)s->msg_seq,
                     cf->helo);
    vl_assert(n > 0 && (size_t)n < sizeof s->hdr);
    s->hdr_len = (uint64_t)n;
    uint64_t body = want > s->hdr_len + 2 ? want - s->hdr_len - 2 : 0;
    if (body && th->tmpl[(body - 1) % BLAST_TEMPLATE_BYTES] == '\r')
        body--;                    /* never end the filler between CR and LF */
    s->body_len = body;
    s->msg_size = s->hdr_len + body + 2;
}

void blast_msg_rcpt(struct blast_thread *th, char *addr, size_t cap)
{
    const struct blast_conf *cf = th->conf;
    uint64_t seq = th->rcpt_seq++ * cf->threads + th->k;
    if (cf->rcpt_list_count) {
        snprintf(addr, cap, "%s", cf->rcpt_list[seq % cf->rcpt_list_count]);
        return;
    }
    const char *p = strstr(cf->to_pattern, "{n}");
    if (!p) {
        snprintf(addr, cap, "%s", cf->to_pattern);
        return;
    }
    snprintf(addr, cap, "%.*s%llu%s", (int)(p - cf->to_pattern), cf->to_pattern,
             (unsigned long long)(seq % cf->rcpt_range), p + 3);
}

char *blast_msg_template_create(void)
{
    char *t = malloc(BLAST_TEMPLATE_BYTES);
    if (!t)
        return NULL;
    static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (uint32_t line = 0; line < BLAST_TEMPLATE_BYTES / 78u; line++) {
        char *p = t + line * 78u;
        int n = snprintf(p, 78, "volley blast filler line %04u ", line);
        for (int i = n; i < 76; i++)
            p[i] = chars[(line * 7u + (unsigned)i) % (sizeof chars - 1)];
        p[76] = '\r';
        p[77] = '\n';
    }
    return t;
}

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? a[v & 63] : '=';
    }
    out[o] = '\0';
}

int blast_msg_auth_plain(const char *user, const char *pass, char *out, size_t cap)
{
    unsigned char raw[600];
    size_t u = strlen(user), p = strlen(pass);
    if (u + p + 2 > sizeof raw || (u + p + 2 + 2) / 3 * 4 + 1 > cap)
        return -EINVAL;
    raw[0] = 0;                    /* RFC 4616: authzid NUL authcid NUL passwd */
    memcpy(raw + 1, user, u);
    raw[1 + u] = 0;
    memcpy(raw + 2 + u, pass, p);
    base64(raw, u + p + 2, out);
    return 0;
}
