/*
 * shaper.h - the runtime side of the shaping policies (volley/shaping.h):
 * per-policy token buckets for messages and new connections, connection
 * counts per egress address, AIMD on deferrals, suspensions, and the egress
 * address choice (pools, weights, warm-up caps).
 *
 * One struct vl_shaper is built before the shards start and shared by all of
 * them: a policy's limits count for every domain it matches in every shard
 * (all domains whose MX ends in google.com share one budget, as Gmail counts).
 * Each policy has its own mutex, taken once per transaction start, connection
 * open/close and deferral; nothing else is shared. Policies live in slots
 * that keep their index for the engine's life (a reload re-finds them by
 * name, vl_shaper_update); the table in force and each slot's configuration
 * are pointers swapped atomically, the old ones kept by the caller until no
 * shard can be reading them.
 *
 * Diagnostics: every rate change and suspension is logged (evt=shaping_rate,
 * evt=shaping_suspend) and written to the delivery log as one JSON line
 * {"ts":...,"event":"rate","policy":...,"old":...,"new":...,"why":...}.
 */
#ifndef VOLLEY_POLICY_SHAPER_H
#define VOLLEY_POLICY_SHAPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volley/shaping.h"

#define VL_SHAPER_WAIT_CLOSE UINT64_MAX   /* no time helps: wait for a connection to close */

struct vl_shaper;

/** Build the runtime state for @p s (NULL or no policies: a shaper that
 *  limits nothing). @p dlog_fd: the delivery log (O_APPEND) or -1.
 *  @return 0 or -ENOMEM. */
int vl_shaper_create(struct vl_shaper **out, const struct vl_shaping *s, int dlog_fd);
void vl_shaper_destroy(struct vl_shaper *sh);

/** Live reload (main thread; shards keep calling everything else): switch to
 *  table @p s (NULL: no policies). A policy keeps its slot - the index the
 *  functions here take - and its state across reloads by its name: tokens,
 *  suspension, connection counts, and its AIMD rate (a rate cut below the old
 *  limit stays, within the new bounds; at the limit it takes the new limit).
 *  A new name gets a new slot; a removed one matches nothing from now on and
 *  keeps counting its open connections until they close. The egress
 *  addresses of @p s must be those of the table in force (same order; pools,
 *  weights and warm-up plans may differ). @p out gets what changed ("" if
 *  nothing). *@p old: the replaced table handle: free it with
 *  vl_shaper_tab_free() once no thread can be inside a call that began
 *  before this one returned (the caller's epoch), and the old vl_shaping
 *  with it. @return 0, -ENOMEM, or -ENOSPC (more than
 *  VL_SHAPING_POLICIES_MAX names since start: restart). */
struct vl_shaper_tab;
int vl_shaper_update(struct vl_shaper *sh, const struct vl_shaping *s,
                     struct vl_shaper_tab **old, char *out, size_t cap);
void vl_shaper_tab_free(struct vl_shaper_tab *t);

/** The policy index for recipient @p domain with MX @p mx, or -1. */
int vl_shaper_policy(const struct vl_shaper *sh, const char *domain, const char *mx);
/** Policy @p p's configuration (p >= 0). */
const struct vl_shaping_policy *vl_shaper_conf(const struct vl_shaper *sh, int p);
/** The shaping table (egress addresses), or NULL. */
const struct vl_shaping *vl_shaper_table(const struct vl_shaper *sh);

/** May a transaction of policy @p p start now from egress address @p e
 *  (-1: none)? Takes a message token (and counts a warm-up message).
 *  @return 0 yes, else the ms to wait before asking again. */
uint64_t vl_shaper_msg_take(struct vl_shaper *sh, int p, int e, uint64_t now_ms);

/** vl_shaper_msg_take() for the domain (or other flow) hashed to @p flow
 *  (0: none): the domains waiting on one policy share its rate fairly - a
 *  domain that took SHAPER_FAIR_QUANTUM tokens more than another one that
 *  asked within half a second is told to wait one token's time, so that the
 *  other gets it (deficit round robin over the waiting domains, across
 *  shards; a domain that starts or returns is put level with the slowest). */
uint64_t vl_shaper_msg_take_flow(struct vl_shaper *sh, int p, int e, uint64_t flow,
                                 uint64_t now_ms);
/** Flow @p flow of policy @p p waits (attempts were queued where a session
 *  will ask for it): it counts as asking now, without taking a token. */
void vl_shaper_flow_touch(struct vl_shaper *sh, int p, uint64_t flow, uint64_t now_ms);

/** The egress address for a new connection of policy @p p (its pool, else the
 *  default pool; weighted, skipping addresses at their warm-up cap or their
 *  connection cap). @return an index into the table's addrs, or -1 (no egress
 *  configured: the kernel picks the source). */
int vl_shaper_egress_pick(struct vl_shaper *sh, int p, uint64_t now_ms);

/** May a new connection of policy @p p open from @p e now (connections per
 *  source address, new connections per minute)? On 0 it is counted open.
 *  @return 0, ms to wait, or VL_SHAPER_WAIT_CLOSE. */
uint64_t vl_shaper_conn_acquire(struct vl_shaper *sh, int p, int e, uint64_t now_ms);
/** A connection counted by vl_shaper_conn_acquire() closed. */
void vl_shaper_conn_release(struct vl_shaper *sh, int p, int e);
/** After a rate cut: is a connection from @p e above the cut share (close it)? */
bool vl_shaper_conn_surplus(struct vl_shaper *sh, int p, int e);

/** The receiver deferred a transaction or connection of policy @p p: 421,
 *  4.7.x or a configured pattern cuts the rate (once per hold-down); a
 *  suspend pattern stops the policy for its time. @return true if it counted
 *  as push-back. */
bool vl_shaper_feedback(struct vl_shaper *sh, int p, uint16_t code, const char *status,
                        const char *text, size_t text_len, uint64_t now_ms);

/** Warm-up counts of one egress address, to keep them across restarts (the
 *  engine stores them in DATA/shaping: deliver/warmup_store.c). Days are UTC
 *  day numbers (days since 1970-01-01). */
struct vl_warmup_count {
    char ip[64];
    uint64_t first_day;            /* its first warm-up message; 0 = none yet */
    uint64_t day;                  /* the day of sent */
    uint64_t sent;                 /* warm-up messages sent that day */
};
/** Egress address @p e's counts into @p out. @return true if they changed
 *  since the last call (false also when @p e is out of range). */
bool vl_shaper_warmup_get(struct vl_shaper *sh, unsigned e, struct vl_warmup_count *out);
/** Restore the counts of the egress address with @p in's IP (none: ignored). */
void vl_shaper_warmup_set(struct vl_shaper *sh, const struct vl_warmup_count *in);
/** Today's UTC day number, by the shaper's clock. */
uint64_t vl_shaper_today(const struct vl_shaper *sh);

/** Policy @p p's current rate (msgs/s; 0 = unlimited), for tests and stats. */
double vl_shaper_rate(struct vl_shaper *sh, int p);

#endif
