/*
 * queue_store.h - record primitives of one shard inside a caller's write or
 * read transaction: the stats record, recipients with their sched and dom
 * index entries, messages with their bodies. Not public.
 *
 * Each primitive keeps the invariants of queue_schema.h for what it touches
 * (a removed recipient leaves both indexes; its message is released, and
 * deleted with its body at rcpt_open 0) and updates the caller's copy of the
 * stats record, which the group commit writes back in the same transaction.
 * Errors: 0 / -errno / VL_E_* (LMDB codes mapped); on an error the caller's
 * transaction must be aborted (LMDB may have half-applied the write).
 */
#ifndef VOLLEY_QUEUE_STORE_H
#define VOLLEY_QUEUE_STORE_H

#include "queue_codec.h"
#include "queue_env.h"
#include "volley/limits.h"

#define QUEUE_RCPT_BUF_BYTES 2048u
_Static_assert(QUEUE_RCPT_REC_HEAD_BYTES + VL_SMTP_STATUS_BYTES_MAX + VL_DIAG_TEXT_BYTES_MAX
               + VL_SMTP_PATH_BYTES_MAX + QUEUE_REC_CRC_BYTES <= QUEUE_RCPT_BUF_BYTES,
               "a recipient record fits");
#define QUEUE_MSG_BUF_BYTES (QUEUE_MSG_REC_HEAD_BYTES + VL_SMTP_PATH_BYTES_MAX + QUEUE_REC_CRC_BYTES)

/** Lowercase @p n bytes of @p src into @p dst (n <= 255). */
void queue_lower(char *dst, const char *src, size_t n);

/** Read the stats record of @p s into @p st. @return 0, VL_E_CORRUPT, ... */
int queue_stats_get(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st);
/** Write @p st as the stats record of @p s. */
int queue_stats_put(struct vl_queue_shard *s, MDB_txn *txn, const struct queue_stats_rec *st);

/** Add the dup (key, id) to a DUPSORT index. */
int queue_index_put(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, uint64_t id);
/** Delete the dup (key, id) from a DUPSORT index; a missing entry is tolerated. */
int queue_index_del(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, uint64_t id);

/** Read and copy a recipient record @p id into @p buf (>= QUEUE_RCPT_BUF_BYTES)
 *  and decode it (borrowing @p buf). @return 0, VL_E_NOTFOUND, VL_E_CORRUPT, ... */
int queue_rcpt_get(struct vl_queue_shard *s, MDB_txn *txn, uint64_t id, uint8_t *buf,
                   struct queue_rcpt_rec *r);

/** Store @p r for @p id and index it in sched at r->next_ms (dom untouched).
 *  @p put_flags: 0 or MDB_APPEND (VL_E_CORRUPT if the id is not the last). */
int queue_rcpt_put(struct vl_queue_shard *s, MDB_txn *txn, uint64_t id,
                   const struct queue_rcpt_rec *r, unsigned put_flags);
/** queue_rcpt_put() without the sched entry: a recipient of a PREPARED part. */
int queue_rcpt_put_hidden(struct vl_queue_shard *s, MDB_txn *txn, uint64_t id,
                          const struct queue_rcpt_rec *r, unsigned put_flags);

/** Remove open recipient @p id (record, sched, dom) and release its message;
 *  @p st: by_state[old]--. */
int queue_rcpt_remove(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                      uint64_t id, const struct queue_rcpt_rec *r);

/** Message @p msg_id lost one open recipient in this shard: rcpt_open--, and
 *  at 0 the record and its body are deleted (@p st: messages, body_bytes).
 *  A missing message is tolerated (0). */
int queue_msg_release(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                      uint64_t msg_id);

/** Read and copy message record @p id into @p buf (QUEUE_MSG_BUF_BYTES) and
 *  decode it. @return 0, VL_E_NOTFOUND, VL_E_CORRUPT, ... */
int queue_msg_get(struct vl_queue_shard *s, MDB_txn *txn, uint64_t id, uint8_t *buf,
                  struct queue_msg_rec *m);

/** Ids of the open recipients of message @p m in this shard (its id range),
 *  in a new array *ids (caller frees, even on error). */
int queue_msg_rcpts(struct vl_queue_shard *s, MDB_txn *txn, const struct queue_msg_rec *m,
                    uint64_t **ids, size_t *n);

/** The pend record of @p msg_id here. @return 0, VL_E_NOTFOUND, VL_E_CORRUPT... */
int queue_pend_get(struct vl_queue_shard *s, MDB_txn *txn, uint64_t msg_id,
                   struct queue_pend_rec *p);
/** Write (@p p != NULL) or delete (NULL; a missing one is tolerated) it. */
int queue_pend_put(struct vl_queue_shard *s, MDB_txn *txn, uint64_t msg_id,
                   const struct queue_pend_rec *p);
/** Is message @p msg_id's part here PREPARED (its recipients not visible)? */
int queue_pend_hidden(struct vl_queue_shard *s, MDB_txn *txn, uint64_t msg_id);

/** Make the PREPARED part of @p msg_id here visible: index its recipients in
 *  sched and drop its pend record. @return recipients published (>= 0),
 *  0 if the part is gone (purged) or already visible. */
int queue_msg_publish(struct vl_queue_shard *s, MDB_txn *txn, uint64_t msg_id);

/** Remove message @p msg_id from this shard with its open recipients, its
 *  body and its pend record; @p st: purged += removed. @return recipients removed + 1 if the
 *  message was here, 0 if not, < 0 error. */
int queue_msg_purge(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                    uint64_t msg_id);

#endif
