/*
 * queue_events.h - the delivery events outbox inside a write transaction
 * (used by queue_write.c's completion, so an outcome and its event share one
 * commit). Not public; the API is in volley/queue.h.
 */
#ifndef VOLLEY_QUEUE_EVENTS_H
#define VOLLEY_QUEUE_EVENTS_H

#include "queue_env.h"

/** Append the events of the @p n outcomes @p o that carry one, in order, in
 *  @p txn. @return 0, VL_E_INVALID or an LMDB error mapped. */
int queue_events_append_outcomes(struct vl_queue_shard *s, MDB_txn *txn,
                                 const struct vl_queue_outcome *o, size_t n);

#endif
