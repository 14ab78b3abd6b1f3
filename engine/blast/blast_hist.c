/*
 * blast_hist.c - log-linear histogram (layout in blast_hist.h).
 */
#include "blast_hist.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "volley/error.h"

uint32_t blast_hist_buckets(uint32_t sub_bits, uint32_t max_bits)
{
    if (sub_bits < BLAST_HIST_SUB_BITS_MIN || sub_bits > BLAST_HIST_SUB_BITS_MAX ||
        max_bits < sub_bits || max_bits > BLAST_HIST_MAX_BITS_MAX)
        return 0;
    /* 2^S exact buckets, then H buckets for each k in 1 .. max_bits - S. */
    return (1u << sub_bits) + (max_bits - sub_bits) * (1u << (sub_bits - 1));
}

int blast_hist_init(struct blast_hist *h, uint32_t sub_bits, uint32_t max_bits)
{
    memset(h, 0, sizeof *h);
    uint32_t n = blast_hist_buckets(sub_bits, max_bits);
    if (n == 0)
        return -EINVAL;
    h->counts = calloc(n, sizeof *h->counts);
    if (!h->counts)
        return -ENOMEM;
    h->sub_bits = sub_bits;
    h->max_bits = max_bits;
    h->buckets = n;
    h->min = UINT64_MAX;
    return 0;
}

void blast_hist_fini(struct blast_hist *h)
{
    free(h->counts);
    memset(h, 0, sizeof *h);
}

void blast_hist_reset(struct blast_hist *h)
{
    memset(h->counts, 0, h->buckets * sizeof *h->counts);
    h->count = h->clamped = 0;
    h->max = 0;
    h->min = UINT64_MAX;
    h->sum = 0;
}

uint32_t blast_hist_index(const struct blast_hist *h, uint64_t v)
{
    const uint32_t s = h->sub_bits, half = 1u << (s - 1);
    if (h->max_bits < 64 && v >> h->max_bits)
        return h->buckets - 1;
    if (v < (1ull << s))
        return (uint32_t)v;
    uint32_t msb = 63u - (uint32_t)__builtin_clzll(v);   /* >= s */
    uint32_t k = msb - s + 1u;
    uint32_t idx = (1u << s) + (k - 1u) * half + (uint32_t)(v >> k) - half;
    vl_assert_debug(idx < h->buckets);
    return idx;
}

uint64_t blast_hist_lower(const struct blast_hist *h, uint32_t i)
{
    const uint32_t s = h->sub_bits, half = 1u << (s - 1);
    vl_assert(i < h->buckets);
    if (i < (1u << s))
        return i;
    uint32_t k = (i - (1u << s)) / half + 1u;
    uint64_t j = (i - (1u << s)) % half + half;
    return j << k;
}

uint64_t blast_hist_upper(const struct blast_hist *h, uint32_t i)
{
    const uint32_t s = h->sub_bits, half = 1u << (s - 1);
    vl_assert(i < h->buckets);
    if (i < (1u << s))
        return i;
    uint32_t k = (i - (1u << s)) / half + 1u;
    uint64_t j = (i - (1u << s)) % half + half;
    return ((j + 1u) << k) - 1u;
}

void blast_hist_record_n(struct blast_hist *h, uint64_t v, uint64_t n)
{
    if (n == 0)
        return;
    h->counts[blast_hist_index(h, v)] += n;
    h->count += n;
    if (h->max_bits < 64 && v >> h->max_bits)
        h->clamped += n;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->sum += (double)v * (double)n;
}

void blast_hist_record(struct blast_hist *h, uint64_t v)
{
    blast_hist_record_n(h, v, 1);
}

int blast_hist_merge(struct blast_hist *dst, const struct blast_hist *src)
{
    if (dst->sub_bits != src->sub_bits || dst->max_bits != src->max_bits)
        return -EINVAL;
    for (uint32_t i = 0; i < dst->buckets; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    return 0;
}

uint64_t blast_hist_quantile(const struct blast_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q >= 1.0)
        return h->max;
    if (q < 0)
        q = 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < h->buckets; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = blast_hist_upper(h, i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;   /* not reached: the counts add up to count */
}
