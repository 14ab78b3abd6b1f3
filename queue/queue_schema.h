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
 *   evt    seq(8)                 -> one delivery event (issue 16): a JSON object, as
 *                                    the delivery log's line (no newline); the outbox
 *                                    the event senders read and acknowledge. meta
 *                                    "evseq" holds the next seq (8, big-endian; never
 *                                    reused), "evack.NAME" the last seq sink NAME
 *                                    acknowledged; events every sink acknowledged are
 *                                    deleted
 *   quar   'r' rcpt_id(8)         -> quarantine record: a recipient taken out of the
 *          'm' msg_id(8)             queue because it or its message could not be
 *                                    read (raw bytes as found, reason, time); a
 *                                    message's entry keeps its record and body
 *
 * Invariants: an open recipient (READY/DEFERRED) has exactly one sched entry
 * (at its record's next_ms) and one dom entry, except the recipients of a
 * message whose pend record here is PREPARED: they have none (not visible to
 * lease) until the message is published; final recipients have no record.
 * A message record's rcpt_open counts its open recipients in this shard; at 0
 * the record and its body are deleted. The recipients of one message in one
 * shard have consecutive ids [first_rcpt, first_rcpt + rcpt_count).
 * Recipient ids are (shard << 48) | counter, unique over the whole queue.
 * A quarantined recipient has no record, sched or dom entry any more (its
 * message counts it as gone); the stats record's quarantined counts the 'r'
 * entries of quar.
 * Every record starts with a version byte and a kind byte. Version 2
 * (QUEUE_REC_V2) recipient and message records end with a CRC32C of their
 * bytes, and a version-2 message record holds its body's CRC32C; version 1
 * records (no checksums) still decode, and are rewritten as version 2 when
 * next changed. The stats record's version 2 adds quarantined. The codec
 * refuses any version above the newest of each kind. DATA/queue.meta keeps
 * QUEUE_FORMAT_VERSION: a version-1 queue opens as it is.
 */
#ifndef VOLLEY_QUEUE_SCHEMA_H
#define VOLLEY_QUEUE_SCHEMA_H

#define QUEUE_FORMAT_VERSION   1u      /* DATA/queue.meta */
#define QUEUE_REC_V1           1u      /* record versions (first byte of each record) */
#define QUEUE_REC_V2           2u
#define QUEUE_META_FILE        "queue.meta"
#define QUEUE_META_MAGIC       "volley-queue"

#define QUEUE_DB_META   "meta"
#define QUEUE_DB_MSG    "msg"
#define QUEUE_DB_BODY   "body"
#define QUEUE_DB_RCPT   "rcpt"
#define QUEUE_DB_SCHED  "sched"
#define QUEUE_DB_DOM    "dom"
#define QUEUE_DB_PEND   "pend"
#define QUEUE_DB_QUAR   "quar"
#define QUEUE_DB_EVT    "evt"
#define QUEUE_DBS_MAX   9u
#define QUEUE_KEY_EVSEQ "evseq"
#define QUEUE_KEY_EVACK "evack."

#define QUEUE_KEY_SHARD "shard"
#define QUEUE_KEY_STATS "stats"

enum queue_kind {
    QUEUE_KIND_SHARD = 1,
    QUEUE_KIND_STATS = 2,
    QUEUE_KIND_MSG   = 3,
    QUEUE_KIND_RCPT  = 4,
    QUEUE_KIND_PEND  = 5,
    QUEUE_KIND_QUAR  = 6,
};

#define QUEUE_RCPT_ID_SHARD_SHIFT  48u
#define QUEUE_MAP_BYTES_INITIAL    (64ull << 20)   /* grows x2 on MDB_MAP_FULL */
#define QUEUE_MAP_BYTES_MAX        (1ull << 40)    /* 1 TiB per shard: then VL_E_QUEUE_FULL */
#define QUEUE_DISK_LOW_BYTES       (64ull << 20)   /* EIO with less free: disk full */
#define QUEUE_MAXREADERS           126u

#endif
