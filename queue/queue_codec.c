/*
 * queue_codec.c - the queue's record formats (see queue_schema.h), pure.
 * Integers are little-endian in records and big-endian in keys.
 * Invariant: decode(encode(r)) == r for every valid r; a decoder never reads
 * past len and refuses any record whose lengths do not add up exactly.
 * Versions: encoders write the newest version of each kind (queue_schema.h);
 * decoders read every older one too. A version-2 recipient or message record
 * ends with the CRC32C of the bytes before it, checked before anything else.
 */
#include "queue_codec.h"

#include "queue_crc.h"
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

/* Version and kind of a record of @p kind, versions 1 ..@p ver_max. */
static int codec_head(const uint8_t *b, size_t len, size_t min, enum queue_kind kind,
                      unsigned ver_max)
{
    if (len < 2)
        return VL_E_CORRUPT;
    if (b[0] < QUEUE_REC_V1 || b[0] > ver_max)
        return VL_E_VERSION;
    if (b[1] != kind || len < min)
        return VL_E_CORRUPT;
    return 0;
}

int queue_rec_crc_state(const void *v, size_t len)
{
    const uint8_t *b = v;
    if (len < 2 + QUEUE_REC_CRC_BYTES || b[0] != QUEUE_REC_V2
        || (b[1] != QUEUE_KIND_RCPT && b[1] != QUEUE_KIND_MSG))
        return QUEUE_CRC_NONE;
    uint32_t want = (uint32_t)b[len - 4] | (uint32_t)b[len - 3] << 8
                    | (uint32_t)b[len - 2] << 16 | (uint32_t)b[len - 1] << 24;
    return queue_crc32c(0, b, len - QUEUE_REC_CRC_BYTES) == want ? QUEUE_CRC_OK : QUEUE_CRC_BAD;
}

/* Append the CRC32C trailer of [out, p). */
static uint8_t *codec_crc_put(uint8_t *out, uint8_t *p)
{
    uint32_t c = queue_crc32c(0, out, (size_t)(p - out));
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(c >> 8 * i);
    return p + QUEUE_REC_CRC_BYTES;
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
    *p++ = QUEUE_REC_V1;
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
    int rc = codec_head(b, len, QUEUE_SHARD_REC_BYTES, QUEUE_KIND_SHARD, QUEUE_REC_V1);
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
    *p++ = QUEUE_REC_V2;
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
    p = put64(p, r->quarantined); /* version 2 */
    vl_assert((size_t)(p - out) == QUEUE_STATS_REC_BYTES);
    return QUEUE_STATS_REC_BYTES;
}

int queue_stats_rec_decode(const void *v, size_t len, struct queue_stats_rec *r)
{
    const uint8_t *b = v;
    int rc = codec_head(b, len, QUEUE_STATS_REC_V1_BYTES, QUEUE_KIND_STATS, QUEUE_REC_V2);
    if (rc < 0)
        return rc;
    if (len != (b[0] == QUEUE_REC_V1 ? QUEUE_STATS_REC_V1_BYTES : QUEUE_STATS_REC_BYTES))
        return VL_E_CORRUPT;
    const uint8_t *p = b + 8;
    r->next_rcpt = get64(p), p += 8;
    for (unsigned i = 0; i < VL_RCPT_STATE_COUNT; i++)
        r->by_state[i] = get64(p), p += 8;
    r->purged = get64(p), p += 8;
    r->messages = get64(p), p += 8;
    r->body_bytes = get64(p), p += 8;
    r->ambiguous = get64(p), p += 8;
    r->quarantined = b[0] == QUEUE_REC_V1 ? 0 : get64(p);     /* version 1: none */
    if (r->next_rcpt >= (1ull << QUEUE_RCPT_ID_SHARD_SHIFT))
        return VL_E_CORRUPT;
    return 0;
}

size_t queue_pend_rec_encode(uint8_t *out, const struct queue_pend_rec *r)
{
    uint8_t *p = out;
    vl_assert(r->state == QUEUE_PEND_PREPARED || r->state == QUEUE_PEND_COMMITTED);
    *p++ = QUEUE_REC_V1;
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
    int rc = codec_head(b, len, QUEUE_PEND_REC_BYTES, QUEUE_KIND_PEND, QUEUE_REC_V1);
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
    return QUEUE_MSG_REC_HEAD_BYTES + r->return_path_len + QUEUE_REC_CRC_BYTES;
}

size_t queue_msg_rec_encode(uint8_t *out, const struct queue_msg_rec *r)
{
    vl_assert(r->return_path_len <= VL_SMTP_PATH_BYTES_MAX);
    vl_assert(r->rcpt_open <= r->rcpt_count);
    uint8_t *p = out;
    *p++ = QUEUE_REC_V2;
    *p++ = QUEUE_KIND_MSG;
    p = put16(p, r->return_path_len);
    p = put32(p, r->flags);
    p = put64(p, r->id);
    p = put64(p, r->created_ms);
    p = put64(p, r->size);
    p = put64(p, r->first_rcpt);
    p = put32(p, r->rcpt_count);
    p = put32(p, r->rcpt_open);
    p = put32(p, r->body_crc);
    p = put32(p, r->body_crc_set ? QUEUE_MSG_BODY_CRC_SET : 0u);
    if (r->return_path_len)
        memcpy(p, r->return_path, r->return_path_len);
    p += r->return_path_len;
    p = codec_crc_put(out, p);
    vl_assert((size_t)(p - out) == queue_msg_rec_size(r));
    return (size_t)(p - out);
}

/* A version-2 record's trailer must match; @return its length without it. */
static int codec_crc_strip(const uint8_t *b, size_t *len)
{
    if (b[0] != QUEUE_REC_V2)
        return 0;
    if (queue_rec_crc_state(b, *len) != QUEUE_CRC_OK)
        return VL_E_CORRUPT;
    *len -= QUEUE_REC_CRC_BYTES;
    return 0;
}

int queue_msg_rec_decode(const void *v, size_t len, struct queue_msg_rec *r)
{
    const uint8_t *b = v;
    int rc = codec_head(b, len, QUEUE_MSG_REC_V1_HEAD_BYTES, QUEUE_KIND_MSG, QUEUE_REC_V2);
    if (rc < 0 || (rc = codec_crc_strip(b, &len)) < 0)
        return rc;
    size_t head = b[0] == QUEUE_REC_V1 ? QUEUE_MSG_REC_V1_HEAD_BYTES : QUEUE_MSG_REC_HEAD_BYTES;
    if (len < head)
        return VL_E_CORRUPT;
    r->return_path_len = get16(b + 2);
    r->flags = get32(b + 4);
    r->id = get64(b + 8);
    r->created_ms = get64(b + 16);
    r->size = get64(b + 24);
    r->first_rcpt = get64(b + 32);
    r->rcpt_count = get32(b + 40);
    r->rcpt_open = get32(b + 44);
    uint32_t mflags = head == QUEUE_MSG_REC_HEAD_BYTES ? get32(b + 52) : 0;
    r->body_crc = head == QUEUE_MSG_REC_HEAD_BYTES ? get32(b + 48) : 0;
    r->body_crc_set = (mflags & QUEUE_MSG_BODY_CRC_SET) != 0;
    r->return_path = (const char *)b + head;
    if (len != head + (size_t)r->return_path_len
        || r->return_path_len > VL_SMTP_PATH_BYTES_MAX
        || r->rcpt_count == 0 || r->rcpt_count > VL_RCPTS_PER_MSG_MAX
        || r->rcpt_open > r->rcpt_count || r->size > VL_MSG_BYTES_MAX
        || (mflags & ~QUEUE_MSG_BODY_CRC_SET) != 0
        || !codec_printable(r->return_path, r->return_path_len))
        return VL_E_CORRUPT;
    return 0;
}

size_t queue_rcpt_rec_size(const struct queue_rcpt_rec *r)
{
    return QUEUE_RCPT_REC_HEAD_BYTES + r->status_len + r->text_len + r->addr_len
           + QUEUE_REC_CRC_BYTES;
}

size_t queue_rcpt_rec_encode(uint8_t *out, const struct queue_rcpt_rec *r)
{
    vl_assert(r->state == VL_RCPT_READY || r->state == VL_RCPT_DEFERRED);
    vl_assert((size_t)r->domain_off + r->domain_len <= r->addr_len);
    uint8_t *p = out;
    *p++ = QUEUE_REC_V2;
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
    p = codec_crc_put(out, p);
    vl_assert((size_t)(p - out) == queue_rcpt_rec_size(r));
    return (size_t)(p - out);
}

int queue_rcpt_rec_decode(const void *v, size_t len, struct queue_rcpt_rec *r)
{
    const uint8_t *b = v;
    int rc = codec_head(b, len, QUEUE_RCPT_REC_HEAD_BYTES, QUEUE_KIND_RCPT, QUEUE_REC_V2);
    if (rc < 0 || (rc = codec_crc_strip(b, &len)) < 0)
        return rc;
    if (len < QUEUE_RCPT_REC_HEAD_BYTES)
        return VL_E_CORRUPT;
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
    if (len != queue_rcpt_rec_size(r) - QUEUE_REC_CRC_BYTES
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

size_t queue_quar_rec_size(const struct queue_quar_rec *r)
{
    return QUEUE_QUAR_REC_HEAD_BYTES + (size_t)r->raw_len + r->body_len;
}

size_t queue_quar_rec_encode_head(uint8_t *out, const struct queue_quar_rec *r)
{
    vl_assert(r->what == QUEUE_QUAR_RCPT || r->what == QUEUE_QUAR_MSG);
    vl_assert(r->reason > 0 && r->reason < QUEUE_QUAR_REASON_COUNT);
    uint8_t *p = out;
    *p++ = QUEUE_REC_V2;
    *p++ = QUEUE_KIND_QUAR;
    *p++ = r->what;
    *p++ = r->reason;
    p = put32(p, r->raw_len);
    p = put64(p, r->time_ms);
    p = put64(p, r->msg_id);
    p = put32(p, r->body_len);
    *p++ = r->body_found;
    *p++ = 0;
    p = put16(p, 0);
    vl_assert((size_t)(p - out) == QUEUE_QUAR_REC_HEAD_BYTES);
    return QUEUE_QUAR_REC_HEAD_BYTES;
}

int queue_quar_rec_decode(const void *v, size_t len, struct queue_quar_rec *r)
{
    const uint8_t *b = v;
    int rc = codec_head(b, len, QUEUE_QUAR_REC_HEAD_BYTES, QUEUE_KIND_QUAR, QUEUE_REC_V2);
    if (rc < 0)
        return rc;
    if (b[0] != QUEUE_REC_V2)
        return VL_E_CORRUPT;                 /* born in version 2 */
    r->what = b[2];
    r->reason = b[3];
    r->raw_len = get32(b + 4);
    r->time_ms = get64(b + 8);
    r->msg_id = get64(b + 16);
    r->body_len = get32(b + 24);
    r->body_found = b[28];
    r->raw = b + QUEUE_QUAR_REC_HEAD_BYTES;
    r->body = r->raw + r->raw_len;
    if ((r->what != QUEUE_QUAR_RCPT && r->what != QUEUE_QUAR_MSG) || r->reason == 0
        || r->reason >= QUEUE_QUAR_REASON_COUNT || r->body_found > 1
        || (r->body_len && !r->body_found) || len != queue_quar_rec_size(r))
        return VL_E_CORRUPT;
    return 0;
}

static const char *const quar_reason_names[QUEUE_QUAR_REASON_COUNT] = {
    [QUEUE_QUAR_RECORD]        = "record_corrupt",
    [QUEUE_QUAR_RECORD_CRC]    = "record_checksum",
    [QUEUE_QUAR_VERSION]       = "record_version",
    [QUEUE_QUAR_MSG_MISSING]   = "message_missing",
    [QUEUE_QUAR_MSG_CORRUPT]   = "message_corrupt",
    [QUEUE_QUAR_BODY_MISSING]  = "body_missing",
    [QUEUE_QUAR_BODY_SIZE]     = "body_size",
    [QUEUE_QUAR_BODY_CRC]      = "body_checksum",
};

const char *queue_quar_reason_name(unsigned reason)
{
    if (reason == 0 || reason >= QUEUE_QUAR_REASON_COUNT)
        return "?";
    return quar_reason_names[reason];
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
