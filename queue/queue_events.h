/*
 * queue_events.h - the delivery events outbox inside a write transaction
 * (used by queue_write.c's completion, so an outcome and its event share one
 * commit). Not public; the API is in volley/queue.h.
 */
#ifndef VOLLEY_QUEUE_EVENTS_H
#define VOLLEY_QUEUE_EVENTS_H

#include "queue_env.h"

/** Append the events @p json[i] (@p len[i] bytes; NULL = none) for i < @p n,
 *  in order, in @p txn. @return 0, VL_E_INVALID or an LMDB error mapped. */
int queue_events_append(struct vl_queue_shard *s, MDB_txn *txn, const char *const *json,
                        const size_t *len, size_t n);

#endif
