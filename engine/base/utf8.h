/*
 * utf8.h - UTF-8 checks shared by the text sanitisers (delivery log, DSN).
 * Pure, inline.
 */
#ifndef VOLLEY_UTF8_H
#define VOLLEY_UTF8_H

#include <stddef.h>

/** Length of the well-formed UTF-8 sequence starting at @p s (at most @p n
 *  bytes available, n >= 1): 1-4, or 0 if it is not well formed (overlong
 *  two-byte leads C0/C1 and leads above F4 are refused). */
static inline size_t vl_utf8_seq_len(const unsigned char *s, size_t n)
{
    size_t need;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        need = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        need = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        need = 4;
    else
        return 0;
    if (need > n)
        return 0;
    for (size_t i = 1; i < need; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return need;
}

#endif
