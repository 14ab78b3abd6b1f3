/*
 * queue_codec.h - encode/decode the queue's LMDB records (pure: no I/O).
 *
 * Decoded records borrow the bytes they were decoded from (LMDB data is valid
 * until the next update or the transaction's end): copy what must outlive it.
 * Decoders validate everything they read and return VL_E_VERSION for another
 * format version, VL_E_CORRUPT for anything else that does not fit (a
 * version-2 recipient or message record whose CRC32C trailer does not match
 * included: queue_rec_crc_state() tells that case apart).
 */
#ifndef VOLLEY_QUEUE_CODEC_H
#define VOLLEY_QUEUE_CODEC_H

#include "queue_schema.h"
#include "volley/limits.h"
#include "volley/queue.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct queue_shard_rec {
    uint32_t shard;
    uint32_t nshards;
};
#define QUEUE_SHARD_REC_BYTES 12u

struct queue_stats_rec {
    uint64_t next_rcpt;                      /* counter part of the next recipient id */
    uint64_t by_state[VL_RCPT_STATE_COUNT];
    uint64_t purged;
    uint64_t messages;
    uint64_t body_bytes;
    uint64_t ambiguous;                      /* in the slot that was reserved (0 before) */
    uint64_t quarantined;                    /* recipients in quarantine now (version 2) */
};
#define QUEUE_STATS_REC_V1_BYTES (8u + 8u * (5u + VL_RCPT_STATE_COUNT))
#define QUEUE_STATS_REC_BYTES    (QUEUE_STATS_REC_V1_BYTES + 8u)

struct queue_msg_rec {
    uint64_t id;
    uint64_t created_ms;
    uint64_t size;                           /* body octets */
    uint64_t first_rcpt;
    uint32_t flags;
    uint32_t rcpt_count;                     /* recipients of this message in this shard */
    uint32_t rcpt_open;                      /* of which still open */
    const char *return_path;                 /* borrowed, not NUL-terminated */
    uint16_t return_path_len;
    uint32_t body_crc;                       /* CRC32C of the body, if body_crc_set */
    bool body_crc_set;                       /* false: written by version 1 (no checksum) */
};
#define QUEUE_MSG_REC_V1_HEAD_BYTES 48u
#define QUEUE_MSG_REC_HEAD_BYTES    56u      /* version 2: + body_crc, mflags */
#define QUEUE_MSG_BODY_CRC_SET      0x1u     /* mflags: body_crc is valid */

struct queue_rcpt_rec {
    uint64_t msg_id;
    uint64_t next_ms;
    uint32_t attempts;
    uint16_t code;
    uint8_t state;                           /* enum vl_rcpt_state: READY or DEFERRED */
    uint8_t status_len;
    uint16_t text_len;
    uint16_t addr_len;
    uint16_t domain_off;
    uint16_t domain_len;
    const char *status;                      /* borrowed */
    const char *text;
    const char *addr;
};
#define QUEUE_RCPT_REC_HEAD_BYTES 34u
#define QUEUE_REC_CRC_BYTES        4u        /* version-2 rcpt and msg trailer */

/* queue_rec_crc_state(): */
#define QUEUE_CRC_NONE 0                     /* no checksum (version 1, or not decodable) */
#define QUEUE_CRC_OK   1
#define QUEUE_CRC_BAD  2

/* Quarantine (queue_quar.c): what was moved there and why. */
enum queue_quar_what {
    QUEUE_QUAR_RCPT = 1,                     /* a recipient record (key: 'r' + rcpt id) */
    QUEUE_QUAR_MSG  = 2,                     /* a message record + body (key: 'm' + msg id) */
};
enum queue_quar_reason {                     /* values are part of the format */
    QUEUE_QUAR_RECORD       = 1,             /* the recipient record does not decode */
    QUEUE_QUAR_RECORD_CRC   = 2,             /* ... its checksum does not match */
    QUEUE_QUAR_VERSION      = 3,             /* ... of an unknown version */
    QUEUE_QUAR_MSG_MISSING  = 4,             /* its message record is missing */
    QUEUE_QUAR_MSG_CORRUPT  = 5,             /* its message record does not decode */
    QUEUE_QUAR_BODY_MISSING = 6,             /* its message's body is missing */
    QUEUE_QUAR_BODY_SIZE    = 7,             /* ... not of the recorded size */
    QUEUE_QUAR_BODY_CRC     = 8,             /* ... fails its checksum */
    QUEUE_QUAR_REASON_COUNT
};
struct queue_quar_rec {
    uint8_t what;                            /* enum queue_quar_what */
    uint8_t reason;                          /* enum queue_quar_reason */
    uint8_t body_found;                      /* MSG: 1 if a body was there (kept) */
    uint32_t raw_len;                        /* the record as found (0: it was missing) */
    uint32_t body_len;                       /* MSG: the body as found */
    uint64_t time_ms;                        /* when it was quarantined */
    uint64_t msg_id;                         /* its message (0: unknown) */
    const uint8_t *raw;                      /* borrowed; raw_len bytes */
    const uint8_t *body;                     /* borrowed; body_len bytes after raw */
};
#define QUEUE_QUAR_REC_HEAD_BYTES 32u
#define QUEUE_QUAR_KEY_BYTES       9u        /* what tag ('r'/'m') + the original key */

/* A multi-shard enqueue in progress (queue_write.c, queue_recover.c). */
enum queue_pend_state {
    QUEUE_PEND_PREPARED  = 1,                /* this shard's part written, not visible */
    QUEUE_PEND_COMMITTED = 2,                /* coordinator: every part written; publish */
};
struct queue_pend_rec {
    uint8_t state;                           /* enum queue_pend_state */
    uint8_t shards[VL_SHARDS_MAX / 8];       /* bitmap: the shards holding a part */
};
#define QUEUE_PEND_REC_BYTES (4u + VL_SHARDS_MAX / 8u)

/* Big-endian u64 keys: memcmp order is numeric order. */
void queue_key_u64(uint8_t out[8], uint64_t v);
uint64_t queue_key_u64_get(const void *p);

size_t queue_shard_rec_encode(uint8_t *out, const struct queue_shard_rec *r);
int queue_shard_rec_decode(const void *p, size_t len, struct queue_shard_rec *r);

size_t queue_stats_rec_encode(uint8_t *out, const struct queue_stats_rec *r);
int queue_stats_rec_decode(const void *p, size_t len, struct queue_stats_rec *r);

size_t queue_pend_rec_encode(uint8_t *out, const struct queue_pend_rec *r);
int queue_pend_rec_decode(const void *p, size_t len, struct queue_pend_rec *r);

/** Bytes queue_msg_rec_encode() writes for @p r. */
size_t queue_msg_rec_size(const struct queue_msg_rec *r);
size_t queue_msg_rec_encode(uint8_t *out, const struct queue_msg_rec *r);
int queue_msg_rec_decode(const void *p, size_t len, struct queue_msg_rec *r);

size_t queue_rcpt_rec_size(const struct queue_rcpt_rec *r);
size_t queue_rcpt_rec_encode(uint8_t *out, const struct queue_rcpt_rec *r);
int queue_rcpt_rec_decode(const void *p, size_t len, struct queue_rcpt_rec *r);

/** QUEUE_CRC_OK / _BAD for a version-2 recipient or message record, by its
 *  trailer; QUEUE_CRC_NONE for anything else (nothing to check). */
int queue_rec_crc_state(const void *p, size_t len);

/** Bytes of quarantine record @p r (head + raw + body). */
size_t queue_quar_rec_size(const struct queue_quar_rec *r);
/** Write the head of @p r (QUEUE_QUAR_REC_HEAD_BYTES); raw and body follow it,
 *  copied by the caller (into LMDB's MDB_RESERVE space: no extra copy). */
size_t queue_quar_rec_encode_head(uint8_t *out, const struct queue_quar_rec *r);
int queue_quar_rec_decode(const void *p, size_t len, struct queue_quar_rec *r);
/** "record_corrupt", "body_checksum", ...; "?" if unknown. */
const char *queue_quar_reason_name(unsigned reason);

/** Copy reply @p text into @p out (capacity >= VL_DIAG_TEXT_BYTES_MAX), replacing
 *  CR, LF and other controls by spaces and capping at VL_DIAG_TEXT_BYTES_MAX.
 *  @return bytes written. */
size_t queue_text_clean(char *out, const char *text, size_t len);

#endif
