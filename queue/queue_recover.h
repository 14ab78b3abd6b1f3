/*
 * queue_recover.h - resolve the multi-shard enqueues a crash interrupted.
 * Not public.
 */
#ifndef VOLLEY_QUEUE_RECOVER_H
#define VOLLEY_QUEUE_RECOVER_H

#include "queue_env.h"

#define QUEUE_RECOVER_PENDS_MAX (1u << 20)   /* pend records resolved per pass */

/** If no enqueue of any process is in flight (DATA/enqueue.lock taken
 *  exclusively without waiting), resolve every pend record of every shard:
 *  an enqueue whose coordinator recorded COMMITTED is published in every
 *  shard; any other is removed from every shard holding a part (none of it
 *  was ever visible). Otherwise does nothing (the next open retries).
 *  Thread: any, once the shards are open. @return messages resolved (>= 0)
 *  or an error. */
int queue_recover(struct vl_queue *q);

#endif
