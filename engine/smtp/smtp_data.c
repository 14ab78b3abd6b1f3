/*
 * smtp_data.c - DATA body encoder and measurer. Pure; the hot path.
 * Invariants: the output never holds a bare CR or LF, never a line starting
 * with a single '.', and ends CRLF "." CRLF; at most 2 output bytes per input
 * byte. Scanning is memchr-driven: clean CRLF lines are copied in one run.
 * Diagnostics: none.
 */
#include "smtp_data.h"

#include <string.h>

#include "volley/error.h"

enum { DATA_BOL = 0, DATA_MID = 1, DATA_AFTER_CR = 2 };

void smtp_data_enc_init(struct smtp_data_enc *e)
{
    e->state = DATA_BOL;
    e->bytes_out = 0;
}

size_t smtp_data_enc_chunk(struct smtp_data_enc *e, const char *in, size_t len,
                           char *out, size_t out_cap)
{
    vl_assert(out_cap >= SMTP_DATA_CHUNK_OUT_MAX(len));
    const char *p = in, *end = in + len, *run;
    char *o = out;
    if (e->state == DATA_AFTER_CR && p < end && *p == '\n')
        p++;                            /* the CRLF was written with its CR */
    bool bol = e->state != DATA_MID;
    run = p;
    while (p < end) {
        if (bol && *p == '.') {
            memcpy(o, run, (size_t)(p - run));
            o += p - run;
            *o++ = '.';                 /* the original '.' follows in the run */
            run = p;
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *lim = nl ? nl : end;
        const char *cr = memchr(p, '\r', (size_t)(lim - p));
        if (cr == NULL) {
            if (nl == NULL) {
                p = end;
                bol = false;
                break;
            }
            memcpy(o, run, (size_t)(nl - run));     /* bare LF */
            o += nl - run;
            *o++ = '\r';
            *o++ = '\n';
            p = run = nl + 1;
        } else if (cr + 1 == nl) {
            p = nl + 1;                             /* CRLF: stays in the run */
        } else {
            memcpy(o, run, (size_t)(cr - run));     /* bare CR, or CR at the end */
            o += cr - run;
            *o++ = '\r';
            *o++ = '\n';
            p = run = cr + 1;
            if (p == end) {
                e->state = DATA_AFTER_CR;
                e->bytes_out += (uint64_t)(o - out);
                return (size_t)(o - out);
            }
        }
        bol = true;
    }
    memcpy(o, run, (size_t)(p - run));
    o += p - run;
    if (len > 0)
        e->state = bol ? DATA_BOL : DATA_MID;
    vl_assert_debug((size_t)(o - out) <= SMTP_DATA_CHUNK_OUT_MAX(len));
    e->bytes_out += (uint64_t)(o - out);
    return (size_t)(o - out);
}

size_t smtp_data_enc_end(struct smtp_data_enc *e, char *out, size_t out_cap)
{
    vl_assert(out_cap >= SMTP_DATA_END_OUT_MAX);
    size_t n = 0;
    if (e->state == DATA_MID) {
        out[n++] = '\r';
        out[n++] = '\n';
    }
    out[n++] = '.';
    out[n++] = '\r';
    out[n++] = '\n';
    e->bytes_out += n;
    e->state = DATA_BOL;
    return n;
}

void smtp_data_measure_init(struct smtp_data_info *m)
{
    m->size = 0;
    m->is_8bit = false;
    m->state = DATA_BOL;
}

static bool data_has_8bit(const char *s, size_t n)
{
    const uint64_t hi = 0x8080808080808080ull;
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t w[4];
        memcpy(w, s + i, sizeof w);
        acc |= w[0] | w[1] | w[2] | w[3];
        if (acc & hi)
            return true;
    }
    for (; i < n; i++)
        acc |= (unsigned char)s[i];
    return (acc & hi) != 0 || (acc & 0x80) != 0;
}

void smtp_data_measure_chunk(struct smtp_data_info *m, const char *in, size_t len)
{
    if (len == 0)
        return;
    if (!m->is_8bit)
        m->is_8bit = data_has_8bit(in, len);
    const char *p = in, *end = in + len;
    uint64_t extra = 0;                 /* bare CR/LF each gain one octet */
    if (m->state == DATA_AFTER_CR) {
        if (*p == '\n')
            p++;                        /* the CR already counted the pair */
        else
            extra++;
    }
    for (const char *cr; p < end && (cr = memchr(p, '\r', (size_t)(end - p))) != NULL;) {
        if (cr + 1 == end)
            break;                      /* decided by the next chunk */
        if (cr[1] != '\n')
            extra++;
        p = cr + 1;
    }
    p = in + (m->state == DATA_AFTER_CR && *in == '\n');
    for (const char *lf; p < end && (lf = memchr(p, '\n', (size_t)(end - p))) != NULL;
         p = lf + 1)
        if (lf == in ? m->state != DATA_AFTER_CR : lf[-1] != '\r')
            extra++;
    m->size += len + extra;
    char last = end[-1];
    m->state = last == '\r' ? DATA_AFTER_CR : last == '\n' ? DATA_BOL : DATA_MID;
}

void smtp_data_measure_end(struct smtp_data_info *m)
{
    if (m->state == DATA_AFTER_CR)
        m->size += 1;                   /* final bare CR becomes CRLF */
    else if (m->state == DATA_MID)
        m->size += 2;                   /* the CRLF the encoder adds */
    m->state = DATA_BOL;
}

void smtp_data_measure(const char *body, size_t len, struct smtp_data_info *out)
{
    smtp_data_measure_init(out);
    smtp_data_measure_chunk(out, body, len);
    smtp_data_measure_end(out);
}
