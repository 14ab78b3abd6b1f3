/*
 * addr_dedupe.c - drop repeated recipients (see addr_dedupe.h). Open
 * addressing, linear probing, keyed by a 64-bit FNV-1a hash of the folded
 * address; equal hashes are confirmed by comparing the addresses.
 */
#include "addr_dedupe.h"

#include "volley/error.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static unsigned char dd_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* Where the domain starts: after the last '@' (a quoted local part may hold
 * '@', a domain never does); strlen(s) if there is none. */
static size_t dd_domain_at(const char *s)
{
    const char *at = strrchr(s, '@');
    return at ? (size_t)(at - s) : strlen(s);
}

static uint64_t dd_hash(const char *s, bool fold_local)
{
    size_t dom = dd_domain_at(s);
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= dom || fold_local)
            c = dd_lower(c);
        h = (h ^ c) * 0x100000001b3ull;
    }
    return h;
}

static bool dd_same(const char *a, const char *b, bool fold_local)
{
    size_t da = dd_domain_at(a), db = dd_domain_at(b);
    if (da != db || strlen(a) != strlen(b))
        return false;
    for (size_t i = 0; a[i]; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (i >= da || fold_local)
            x = dd_lower(x), y = dd_lower(y);
        if (x != y)
            return false;
    }
    return true;
}

long vl_addr_dedupe(char **v, size_t n, bool fold_local)
{
    vl_assert(n < (1u << 31));
    vl_assert(n == 0 || v != NULL);
    if (n < 2)
        return (long)n;
    size_t cap = 4;
    while (cap < 2 * n)
        cap *= 2;
    uint32_t *slot = malloc(cap * sizeof *slot);   /* index + 1 of a kept address; 0 free */
    if (!slot)
        return -ENOMEM;
    memset(slot, 0, cap * sizeof *slot);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = (size_t)dd_hash(v[i], fold_local) & (cap - 1);
        bool dup = false;
        for (size_t probes = 0; probes < cap && slot[j]; probes++) {   /* < half full */
            if (dd_same(v[slot[j] - 1], v[i], fold_local)) {
                dup = true;
                break;
            }
            j = (j + 1) & (cap - 1);
        }
        if (dup)
            continue;
        vl_assert(slot[j] == 0);
        char *t = v[kept];          /* v[kept..i) are repeats: order of the kept stays */
        v[kept] = v[i];
        v[i] = t;
        slot[j] = (uint32_t)++kept;
    }
    free(slot);
    vl_assert(kept >= 1 && kept <= n);
    return (long)kept;
}
