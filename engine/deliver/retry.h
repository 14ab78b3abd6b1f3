/*
 * retry.h - the retry schedule of a deferred recipient and the delay notice
 * (pure: no clock, no I/O; the caller passes the time).
 *
 * Attempt n waits retry_base * 2^(n-1), capped at retry_max, with +-10%
 * jitter derived from the recipient id (no thundering herd, reproducible).
 *
 * Delay notices (--delay-warning W, off by default): a deferral is warned
 * about (a separate DSN, Action: delayed) when it is the first attempt at or
 * past created + W. "First" is decided without stored state: the previous
 * attempt was at least one retry delay ago (the delay that scheduled this
 * attempt, a pure function of (id, attempts)), so a warning goes out when
 * now - that delay < created + W <= now. Two successive deferrals cannot
 * both pass; the notice is enqueued in the deferral's commit (never twice).
 * `volley queue retry` (an early attempt) can make it repeat once. Known gap:
 * an attempt that runs late (after downtime) overestimates the previous
 * attempt by its lateness, so a W falling inside that lateness is skipped;
 * the lease does not carry the scheduled time that would make this exact.
 */
#ifndef VOLLEY_DELIVER_RETRY_H
#define VOLLEY_DELIVER_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "volley/config.h"
#include "volley/queue.h"

/** Delay before attempt @p attempts + 1 (attempts >= 1 made so far). */
uint64_t retry_delay_ms(const struct vl_config *cfg, uint32_t attempts, uint64_t rcpt_id);
/** The same schedule from @p base_ms up to @p max_ms (a shaping policy's). */
uint64_t retry_delay_ms_sched(uint64_t base_ms, uint64_t max_ms, uint32_t attempts,
                              uint64_t rcpt_id);

/** Does a deferral of @p r (of @p m) at wall time @p now_ms owe a delay notice? */
bool retry_delay_warn(const struct vl_config *cfg, const struct vl_queue_msg *m,
                      const struct vl_queue_rcpt *r, uint64_t now_ms);

#endif
