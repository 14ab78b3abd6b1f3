/*
 * addr_dedupe.h - drop repeated recipients of one message (pure).
 *
 * Two addresses are the same when their domains (after the last '@') are
 * equal ignoring ASCII case and their local parts are equal as written
 * (RFC 5321 2.4: a local part may be case-sensitive), or ignoring ASCII case
 * when @p fold_local is set.
 */
#ifndef VOLLEY_ADDR_DEDUPE_H
#define VOLLEY_ADDR_DEDUPE_H

#include <stdbool.h>
#include <stddef.h>

/** Keep the first of each address in @p v[0..n): on return v[0..kept) holds
 *  them in their original order and v[kept..n) the dropped repeats (in no
 *  particular order; the pointers are moved, never freed). One pass with a
 *  hash table of 2..4 x n slots (4 bytes each), freed before returning.
 *  @p n must be below 2^31.
 *  @return kept (>= 1 when n >= 1), or -ENOMEM with @p v untouched. */
long vl_addr_dedupe(char **v, size_t n, bool fold_local);

#endif
