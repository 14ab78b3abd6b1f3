/*
 * blast_hist.h - a high-dynamic-range latency histogram of our own: log-linear
 * buckets, fixed memory chosen at init, mergeable (the same layout adds
 * bucket by bucket), so each blast thread records alone and the totals are a
 * merge. Pure: no clock, no I/O; values are whatever unit the caller uses
 * (blast: nanoseconds).
 *
 * Layout, for S = sub_bits (2..16) and H = 2^(S-1):
 *   values 0 .. 2^S - 1            one bucket each (exact);
 *   values [2^(S+k-1), 2^(S+k))   for k >= 1: H buckets of width 2^k.
 * So a bucket is never wider than 2^-(S-1) of its lower bound: any value
 * reported for a bucket (its upper bound) is within that relative error of
 * every value counted in it. Values >= 2^max_bits count in the last bucket
 * (and in `clamped`); min, max, count and sum stay exact.
 *
 * Threads: one writer; merge after the writers stopped.
 */
#ifndef VOLLEY_BLAST_HIST_H
#define VOLLEY_BLAST_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLAST_HIST_SUB_BITS_MIN  2u
#define BLAST_HIST_SUB_BITS_MAX 16u
#define BLAST_HIST_MAX_BITS_MAX 63u

struct blast_hist {
    uint32_t sub_bits, max_bits;
    uint32_t buckets;          /* counts[] entries */
    uint64_t count, clamped;   /* values recorded; of which >= 2^max_bits */
    uint64_t min, max;         /* exact; min = UINT64_MAX while empty */
    double sum;                /* exact enough for a mean */
    uint64_t *counts;
};

/** Buckets a histogram of this layout holds (its memory is that x 8 bytes).
 *  @return 0 for a bad layout (sub_bits outside 2..16, max_bits < sub_bits or > 63). */
uint32_t blast_hist_buckets(uint32_t sub_bits, uint32_t max_bits);

/** Allocate. @return 0, -EINVAL (bad layout), -ENOMEM. */
int blast_hist_init(struct blast_hist *h, uint32_t sub_bits, uint32_t max_bits);
void blast_hist_fini(struct blast_hist *h);
/** Forget every value (layout kept). */
void blast_hist_reset(struct blast_hist *h);

/** Index of the bucket holding @p v (values >= 2^max_bits: the last one). */
uint32_t blast_hist_index(const struct blast_hist *h, uint64_t v);
/** Smallest and largest value bucket @p i holds. */
uint64_t blast_hist_lower(const struct blast_hist *h, uint32_t i);
uint64_t blast_hist_upper(const struct blast_hist *h, uint32_t i);

/** Count @p v once. */
void blast_hist_record(struct blast_hist *h, uint64_t v);
/** Count @p v @p n times. */
void blast_hist_record_n(struct blast_hist *h, uint64_t v, uint64_t n);

/** Add @p src into @p dst. @return 0, or -EINVAL when the layouts differ. */
int blast_hist_merge(struct blast_hist *dst, const struct blast_hist *src);

/** The value at quantile @p q (0..1): the upper bound of the bucket holding
 *  the ceil(q * count)-th smallest value (at least the first), clipped to
 *  [min, max]; q >= 1 gives max exactly. 0 when empty. */
uint64_t blast_hist_quantile(const struct blast_hist *h, double q);

static inline double blast_hist_mean(const struct blast_hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}

#endif
