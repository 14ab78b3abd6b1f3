/*
 * warmup_store.h - egress warm-up counts kept across restarts (issue 14): an
 * LMDB environment DATA/shaping with one record per egress address (key: its
 * IP text; value: the UTC day of its first warm-up message, the day counted,
 * and the messages sent that day). The engine loads it into the shaper before
 * the shards start, saves what changed about once a second and at the end.
 *
 * A crash loses at most the last second's counts: the address may then send
 * that many more than its cap on that day (documented; the cap is a plan, not
 * a hard promise to the receiver). Thread: the engine's calling thread only.
 */
#ifndef VOLLEY_DELIVER_WARMUP_STORE_H
#define VOLLEY_DELIVER_WARMUP_STORE_H

#include "shaper.h"

struct warmup_store;

/** Open (creating) DATA/shaping when @p s has an address with a warm-up plan;
 *  *@p out = NULL when none has (nothing to keep). @return 0 or -errno/VL_E_*. */
int warmup_store_open(const char *data_dir, const struct vl_shaping *s,
                      struct warmup_store **out);
/** Restore every stored address of the shaper's table into @p sh. */
int warmup_store_load(struct warmup_store *ws, struct vl_shaper *sh);
/** Store the addresses whose counts changed. @return 0 or an error (logged). */
int warmup_store_save(struct warmup_store *ws, struct vl_shaper *sh);
void warmup_store_close(struct warmup_store *ws);

#endif
