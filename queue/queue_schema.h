/*
 * queue_schema.h - the on-disk layout of one shard environment (DATA/shard-K).
 *
 * Sub-databases (all keys big-endian so memcmp order = numeric order):
 *   meta   "shard" -> shard record (version, shard index, shard count)
 *          "stats" -> stats record (per-state counters, next recipient id)
 *   msg    msg_id(8)              -> message record
 *   body   msg_id(8)              -> message body, raw octets (stored once per shard)
 *   rcpt   rcpt_id(8)             -> recipient record
 *   sched  next_ms(8)  dup rcpt_id(8)  (DUPSORT|DUPFIXED): READY and DEFERRED only
 *   dom    lowercased domain  dup rcpt_id(8) (DUPSORT|DUPFIXED): every open recipient
 *   pend   msg_id(8)              -> pend record: this shard's part of a multi-shard
 *                                    enqueue not yet visible (PREPARED), or, in the
 *                                    coordinator shard, the decision (COMMITTED)
 *
 * Invariants: an open recipient (READY/DEFERRED) has exactly one sched entry
 * (at its record's next_ms) and one dom entry, except the recipients of a
 * message whose pend record here is PREPARED: they have none (not visible to
 * lease) until the message is published; final recipients have no record.
 * A message record's rcpt_open counts its open recipients in this shard; at 0
 * the record and its body are deleted. The recipients of one message in one
 * shard have consecutive ids [first_rcpt, first_rcpt + rcpt_count).
 * Recipient ids are (shard << 48) | counter, unique over the whole queue.
 * Every record starts with a version byte and a kind byte; the codec refuses
 * any other version.
 */
#ifndef VOLLEY_QUEUE_SCHEMA_H
#define VOLLEY_QUEUE_SCHEMA_H

#define QUEUE_FORMAT_VERSION   1u
#define QUEUE_META_FILE        "queue.meta"
#define QUEUE_META_MAGIC       "volley-queue"

#define QUEUE_DB_META   "meta"
#define QUEUE_DB_MSG    "msg"
#define QUEUE_DB_BODY   "body"
#define QUEUE_DB_RCPT   "rcpt"
#define QUEUE_DB_SCHED  "sched"
#define QUEUE_DB_DOM    "dom"
#define QUEUE_DB_PEND   "pend"
#define QUEUE_DBS_MAX   8u

#define QUEUE_KEY_SHARD "shard"
#define QUEUE_KEY_STATS "stats"

enum queue_kind {
    QUEUE_KIND_SHARD = 1,
    QUEUE_KIND_STATS = 2,
    QUEUE_KIND_MSG   = 3,
    QUEUE_KIND_RCPT  = 4,
    QUEUE_KIND_PEND  = 5,
};

#define QUEUE_RCPT_ID_SHARD_SHIFT  48u
#define QUEUE_MAP_BYTES_INITIAL    (64ull << 20)   /* grows x2 on MDB_MAP_FULL */
#define QUEUE_MAP_BYTES_MAX        (1ull << 40)    /* 1 TiB per shard: then VL_E_QUEUE_FULL */
#define QUEUE_DISK_LOW_BYTES       (64ull << 20)   /* EIO with less free: disk full */
#define QUEUE_MAXREADERS           126u

#endif
