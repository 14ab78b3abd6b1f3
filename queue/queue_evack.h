/*
 * queue_evack.h - event sinks' acknowledgements inside a write transaction
 * (queue_evack.c; issue 16). Not public; the API is in volley/queue.h.
 */
#ifndef VOLLEY_QUEUE_EVACK_H
#define VOLLEY_QUEUE_EVACK_H

#include "queue_env.h"

/** "evack." + @p sink into @p kb. @return its length or VL_E_INVALID (empty or
 *  too long a name). */
int queue_evack_key(const char *sink, char *kb, size_t cap);
/** Move sink @p sink's stored position forward to @p acked (never back). */
int queue_evack_put(struct vl_queue_shard *s, MDB_txn *txn, const char *sink, uint64_t acked);
/** Delete the events with seq <= @p upto. */
int queue_evt_delete_upto(struct vl_queue_shard *s, MDB_txn *txn, uint64_t upto);
/** Write the acknowledgements vl_queue_events_ack_lazy() left pending (a
 *  snapshot) in @p txn; *@p gen gets the snapshot's generation (0: none), to
 *  be marked done once @p txn is committed. @return 0 or an error. */
int queue_events_ack_apply(struct vl_queue_shard *s, MDB_txn *txn, uint64_t *gen);

#endif
