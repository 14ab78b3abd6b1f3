/*
 * utf8.h - UTF-8 checks shared by the text sanitisers (delivery log, DSN).
 * Pure, inline.
 */
#ifndef VOLLEY_UTF8_H
#define VOLLEY_UTF8_H

#include <stddef.h>

/** Length of the well-formed UTF-8 sequence starting at @p s (at most @p n
 *  bytes available, n >= 1): 1-4, or 0 if it is not well formed (RFC 3629 4,
 *  Unicode table 3-7): no overlong form (C0, C1, E0 80..9F, F0 80..8F), no
 *  surrogate (ED A0..BF), nothing above U+10FFFF (F4 90.., F5..FF), no lone
 *  or missing continuation byte. */
static inline size_t vl_utf8_seq_len(const unsigned char *s, size_t n)
{
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf;    /* the range of the second byte */
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        need = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        need = 3;
        if (s[0] == 0xe0)
            lo = 0xa0;                     /* below: overlong */
        else if (s[0] == 0xed)
            hi = 0x9f;                     /* above: UTF-16 surrogates */
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        need = 4;
        if (s[0] == 0xf0)
            lo = 0x90;                     /* below: overlong */
        else if (s[0] == 0xf4)
            hi = 0x8f;                     /* above: beyond U+10FFFF */
    } else {
        return 0;
    }
    if (need > n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return need;
}

/** A C1 control (U+0080..U+009F) starts at @p s (a well-formed sequence). */
static inline int vl_utf8_is_c1(const unsigned char *s)
{
    return s[0] == 0xc2 && s[1] <= 0x9f;
}

#endif
