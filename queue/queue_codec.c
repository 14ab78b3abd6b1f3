/*
 * queue_codec.c - the queue's record formats (see queue_schema.h), pure.
 * Integers are little-endian in records and big-endian in keys.
 * Invariant: decode(encode(r)) == r for every valid r; a decoder never reads
 * past len and refuses any record whose lengths do not add up exactly.
 */
#include "queue_codec.h"

#include "volley/error.h"
#include "volley/limits.h"

#include <string.h>

void queue_key_u64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

uint64_t queue_key_u64_get(const void *p)
{
    const uint8_t *b = p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

static uint8_t *put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> 8 * i);
    return p + bytes;
}
static uint8_t *put16(uint8_t *p, uint16_t v) { return put_le(p, v, 2); }
static uint8_t *put32(uint8_t *p, uint32_t v) { return put_le(p, v, 4); }
static uint8_t *put64(uint8_t *p, uint64_t v) { return put_le(p, v, 8); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int codec_head(const uint8_t *b, size_t len, size_t min, enum queue_kind kind)
{
    if (len < 2)
        return VL_E_CORRUPT;
    if (b[0] != QUEUE_FORMAT_VERSION)
        return VL_E_VERSION;
    if (b[1] != kind || len < min)
        return VL_E_CORRUPT;
    return 0;
}

static bool codec_printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

size_t queue_shard_rec_encode(uint8_t *out, const struct queue_shard_rec *r)
{
    uint8_t *p = out;
    *p++ = QUEUE_FORMAT_VERSION;
    *p++ = QUEUE_KIND_SHARD;
    p = put16(p, 0);
    p = put32(p, r->shard);
    p = put32(p, r->nshards);
    vl_assert((size_t)(p - out) == QUEUE_SHARD_REC_BYTES);
    return QUEUE_SHARD_REC_BYTES;
}

int queue_shard_rec_decode(const void *v, size_t len, struct queue_shard_rec *r)
{
    const uint8_t *b = v;
    int rc = codec_head(b, len, QUEUE_SHARD_REC_BYTES, QUEUE_KIND_SHARD);
    if (rc < 0)
        return rc;
    if (len != QUEUE_SHARD_REC_BYTES)
        return VL_E_CORRUPT;
    r->shard = get32(b + 4);
    r->nshards = get32(b + 8);
    if (r->nshards == 0 || r->nshards > VL_SHARDS_MAX || r->shard >= r->nshards)
        return VL_E_CORRUPT;
    return 0;
}

size_t queue_stats_rec_encode(uint8_t *out, const struct queue_stats_rec *r)
{
    uint8_t *p = out;
    *p++ = QUEUE_FORMAT_VERSION;
    *p++ = QUEUE_KIND_STATS;
    memset(p, 0, 6);
    p += 6;
    p = put64(p, r->next_rcpt);
    for (unsigned i = 0; i < VL_RCPT_STATE_COUNT; i++)
        p = put64(p, r->by_state[i]);
    p = put64(p, r->purged);
    p = put64(p, r->messages);
    p = put64(p, r->body_bytes);
    p = put64(p, r->ambiguous);   /* formerly reserved, written 0: old records read 0 */
    vl_assert((size_t)(p - out) == QUEUE_STATS_REC_BYTES);
    return QUEUE_STATS_REC_BYTES;
}

int queue_stats_rec_decode(const void *v, size_t len, struct queue_stats_rec *r)
{
    const uint8_t *b = v;
    int rc = codec_head(b, len, QUEUE_STATS_REC_BYTES, QUEUE_KIND_STATS);
    if (rc < 0)
        return rc;
    if (len != QUEUE_STATS_REC_BYTES)
        return VL_E_CORRUPT;
    const uint8_t *p = b + 8;
    r->next_rcpt = get64(p), p += 8;
    for (unsigned i = 0; i < VL_RCPT_STATE_COUNT; i++)
        r->by_state[i] = get64(p), p += 8;
    r->purged = get64(p), p += 8;
    r->messages = get64(p), p += 8;
    r->body_bytes = get64(p), p += 8;
    r->ambiguous = get64(p);
    if (r->next_rcpt >= (1ull << QUEUE_RCPT_ID_SHARD_SHIFT))
        return VL_E_CORRUPT;
    return 0;
}

size_t queue_pend_rec_encode(uint8_t *out, const struct queue_pend_rec *r)
{
    uint8_t *p = out;
    vl_assert(r->state == QUEUE_PEND_PREPARED || r->state == QUEUE_PEND_COMMITTED);
    *p++ = QUEUE_FORMAT_VERSION;
    *p++ = QUEUE_KIND_PEND;
    *p++ = r->state;
    *p++ = 0;
    memcpy(p, r->shards, sizeof r->shards);
    p += sizeof r->shards;
    vl_assert((size_t)(p - out) == QUEUE_PEND_REC_BYTES);
    return QUEUE_PEND_REC_BYTES;
}

int queue_pend_rec_decode(const void *v, size_t len, struct queue_pend_rec *r)
{
    const uint8_t *b = v;
    int rc = codec_head(b, len, QUEUE_PEND_REC_BYTES, QUEUE_KIND_PEND);
    if (rc < 0)
        return rc;
    if (len != QUEUE_PEND_REC_BYTES)
        return VL_E_CORRUPT;
    r->state = b[2];
    memcpy(r->shards, b + 4, sizeof r->shards);
    if (r->state != QUEUE_PEND_PREPARED && r->state != QUEUE_PEND_COMMITTED)
        return VL_E_CORRUPT;
    unsigned n = 0;
    for (size_t i = 0; i < sizeof r->shards; i++)
        n += (unsigned)__builtin_popcount(r->shards[i]);
    return n >= 2 ? 0 : VL_E_CORRUPT;        /* a single-shard enqueue is never pending */
}

size_t queue_msg_rec_size(const struct queue_msg_rec *r)
{
    return QUEUE_MSG_REC_HEAD_BYTES + r->return_path_len;
}

size_t queue_msg_rec_encode(uint8_t *out, const struct queue_msg_rec *r)
{
    vl_assert(r->return_path_len <= VL_SMTP_PATH_BYTES_MAX);
    vl_assert(r->rcpt_open <= r->rcpt_count);
    uint8_t *p = out;
    *p++ = QUEUE_FORMAT_VERSION;
    *p++ = QUEUE_KIND_MSG;
    p = put16(p, r->return_path_len);
    p = put32(p, r->flags);
    p = put64(p, r->id);
    p = put64(p, r->created_ms);
    p = put64(p, r->size);
    p = put64(p, r->first_rcpt);
    p = put32(p, r->rcpt_count);
    p = put32(p, r->rcpt_open);
    if (r->return_path_len)
        memcpy(p, r->return_path, r->return_path_len);
    p += r->return_path_len;
    vl_assert((size_t)(p - out) == queue_msg_rec_size(r));
    return (size_t)(p - out);
}

int queue_msg_rec_decode(const void *v, size_t len, struct queue_msg_rec *r)
{
    const uint8_t *b = v;
    int rc = codec_head(b, len, QUEUE_MSG_REC_HEAD_BYTES, QUEUE_KIND_MSG);
    if (rc < 0)
        return rc;
    r->return_path_len = get16(b + 2);
    r->flags = get32(b + 4);
    r->id = get64(b + 8);
    r->created_ms = get64(b + 16);
    r->size = get64(b + 24);
    r->first_rcpt = get64(b + 32);
    r->rcpt_count = get32(b + 40);
    r->rcpt_open = get32(b + 44);
    r->return_path = (const char *)b + QUEUE_MSG_REC_HEAD_BYTES;
    if (len != QUEUE_MSG_REC_HEAD_BYTES + (size_t)r->return_path_len
        || r->return_path_len > VL_SMTP_PATH_BYTES_MAX
        || r->rcpt_count == 0 || r->rcpt_count > VL_RCPTS_PER_MSG_MAX
        || r->rcpt_open > r->rcpt_count || r->size > VL_MSG_BYTES_MAX
        || !codec_printable(r->return_path, r->return_path_len))
        return VL_E_CORRUPT;
    return 0;
}

size_t queue_rcpt_rec_size(const struct queue_rcpt_rec *r)
{
    return QUEUE_RCPT_REC_HEAD_BYTES + r->status_len + r->text_len + r->addr_len;
}

size_t queue_rcpt_rec_encode(uint8_t *out, const struct queue_rcpt_rec *r)
{
    vl_assert(r->state == VL_RCPT_READY || r->state == VL_RCPT_DEFERRED);
    vl_assert((size_t)r->domain_off + r->domain_len <= r->addr_len);
    uint8_t *p = out;
    *p++ = QUEUE_FORMAT_VERSION;
    *p++ = QUEUE_KIND_RCPT;
    *p++ = r->state;
    *p++ = r->status_len;
    p = put32(p, r->attempts);
    p = put64(p, r->msg_id);
    p = put64(p, r->next_ms);
    p = put16(p, r->code);
    p = put16(p, r->text_len);
    p = put16(p, r->addr_len);
    p = put16(p, r->domain_off);
    p = put16(p, r->domain_len);
    if (r->status_len)
        memcpy(p, r->status, r->status_len);
    p += r->status_len;
    if (r->text_len)
        memcpy(p, r->text, r->text_len);
    p += r->text_len;
    memcpy(p, r->addr, r->addr_len);
    p += r->addr_len;
    vl_assert((size_t)(p - out) == queue_rcpt_rec_size(r));
    return (size_t)(p - out);
}

int queue_rcpt_rec_decode(const void *v, size_t len, struct queue_rcpt_rec *r)
{
    const uint8_t *b = v;
    int rc = codec_head(b, len, QUEUE_RCPT_REC_HEAD_BYTES, QUEUE_KIND_RCPT);
    if (rc < 0)
        return rc;
    r->state = b[2];
    r->status_len = b[3];
    r->attempts = get32(b + 4);
    r->msg_id = get64(b + 8);
    r->next_ms = get64(b + 16);
    r->code = get16(b + 24);
    r->text_len = get16(b + 26);
    r->addr_len = get16(b + 28);
    r->domain_off = get16(b + 30);
    r->domain_len = get16(b + 32);
    const char *s = (const char *)b + QUEUE_RCPT_REC_HEAD_BYTES;
    r->status = s;
    r->text = s + r->status_len;
    r->addr = r->text + r->text_len;
    if (len != queue_rcpt_rec_size(r)
        || (r->state != VL_RCPT_READY && r->state != VL_RCPT_DEFERRED)
        || r->status_len >= VL_SMTP_STATUS_BYTES_MAX || r->text_len > VL_DIAG_TEXT_BYTES_MAX
        || r->addr_len == 0 || r->addr_len > VL_SMTP_PATH_BYTES_MAX - 2u
        || r->domain_len == 0 || (size_t)r->domain_off + r->domain_len != r->addr_len
        || r->domain_off < 2 || r->addr[r->domain_off - 1] != '@' || r->code > 999
        || !codec_printable(r->status, r->status_len) || !codec_printable(r->text, r->text_len)
        || !codec_printable(r->addr, r->addr_len))
        return VL_E_CORRUPT;
    return 0;
}

size_t queue_text_clean(char *out, const char *text, size_t len)
{
    if (len > VL_DIAG_TEXT_BYTES_MAX)
        len = VL_DIAG_TEXT_BYTES_MAX;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        out[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    return len;
}
