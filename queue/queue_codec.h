/*
 * queue_codec.h - encode/decode the queue's LMDB records (pure: no I/O).
 *
 * Decoded records borrow the bytes they were decoded from (LMDB data is valid
 * until the next update or the transaction's end): copy what must outlive it.
 * Decoders validate everything they read and return VL_E_VERSION for another
 * format version, VL_E_CORRUPT for anything else that does not fit.
 */
#ifndef VOLLEY_QUEUE_CODEC_H
#define VOLLEY_QUEUE_CODEC_H

#include "queue_schema.h"
#include "volley/limits.h"
#include "volley/queue.h"

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
};
#define QUEUE_STATS_REC_BYTES (8u + 8u * (5u + VL_RCPT_STATE_COUNT))

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
};
#define QUEUE_MSG_REC_HEAD_BYTES 48u

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

/** Copy reply @p text into @p out (capacity >= VL_DIAG_TEXT_BYTES_MAX), replacing
 *  CR, LF and other controls by spaces and capping at VL_DIAG_TEXT_BYTES_MAX.
 *  @return bytes written. */
size_t queue_text_clean(char *out, const char *text, size_t len);

#endif
