/*
 * queue_codec_fuzz.c - the queue's record codec (queue/queue_codec.h).
 *
 * Input: a stored record (version byte, kind byte, ...). Every decoder is
 * tried on it (ASan catches a read past the record). Invariants: a decoder
 * returns 0, VL_E_VERSION (exactly when the version byte is not ours) or
 * VL_E_CORRUPT; at most one decoder (the one of the kind byte) accepts; an
 * accepted record re-encodes (without tripping the encoder's assertions) to
 * its size and to the same bytes, except the reserved bytes of the shard and
 * stats records, which the encoder writes as 0 and the decoder does not read;
 * the text fields it returns lie inside the input and are printable.
 */
#include <string.h>

#include "fuzz.h"
#include "queue_codec.h"
#include "volley/error.h"
#include "volley/limits.h"

static uint8_t enc[FUZZ_INPUT_MAX + 64];

static void check_rc(int rc, const uint8_t *d, size_t size)
{
    FUZZ_CHECK(rc == 0 || rc == VL_E_VERSION || rc == VL_E_CORRUPT);
    /* Every kind reads version 1; some also version 2 (QUEUE_REC_V2); none
     * reads version 0 or anything newer. */
    if (rc == VL_E_VERSION)
        FUZZ_CHECK(size >= 2 && d[0] != QUEUE_REC_V1);
    if (size >= 2 && (d[0] == 0 || d[0] > QUEUE_REC_V2))
        FUZZ_CHECK(rc == VL_E_VERSION);
}

/* Same bytes but [from, from+n), which must be zero in the encoding. */
static void same_but(const uint8_t *d, size_t size, size_t from, size_t n)
{
    for (size_t i = 0; i < size; i++) {
        if (i >= from && i < from + n)
            FUZZ_CHECK(enc[i] == 0);
        else
            FUZZ_CHECK(enc[i] == d[i]);
    }
}

static bool inside(const char *p, size_t n, const uint8_t *d, size_t size)
{
    return (const uint8_t *)p >= d && (const uint8_t *)p + n <= d + size;
}

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_INPUT_MAX)
        return 0;
    unsigned accepted = 0;

    struct queue_shard_rec sh;
    int rc = queue_shard_rec_decode(data, size, &sh);
    check_rc(rc, data, size);
    if (rc == 0) {
        accepted++;
        FUZZ_CHECK(data[1] == QUEUE_KIND_SHARD);
        FUZZ_CHECK(queue_shard_rec_encode(enc, &sh) == size);
        same_but(data, size, 2, 2);
    }

    struct queue_stats_rec st;
    rc = queue_stats_rec_decode(data, size, &st);
    check_rc(rc, data, size);
    if (rc == 0) {
        accepted++;
        FUZZ_CHECK(data[1] == QUEUE_KIND_STATS);
        size_t n = queue_stats_rec_encode(enc, &st);
        if (data[0] != QUEUE_REC_V1) {       /* an old version re-encodes as the newest */
            FUZZ_CHECK(n == size);
            same_but(data, size, 2, 6);
        } else {
            struct queue_stats_rec again;
            FUZZ_CHECK(queue_stats_rec_decode(enc, n, &again) == 0);
            FUZZ_CHECK(again.quarantined == 0);
        }
    }

    struct queue_msg_rec m;
    rc = queue_msg_rec_decode(data, size, &m);
    check_rc(rc, data, size);
    if (rc == 0) {
        accepted++;
        FUZZ_CHECK(data[1] == QUEUE_KIND_MSG);
        FUZZ_CHECK(inside(m.return_path, m.return_path_len, data, size));
        FUZZ_CHECK(printable(m.return_path, m.return_path_len));
        size_t n = queue_msg_rec_encode(enc, &m);
        FUZZ_CHECK(queue_msg_rec_size(&m) == n);
        if (data[0] != QUEUE_REC_V1) {       /* an old version re-encodes as the newest */
            FUZZ_CHECK(n == size);
            same_but(data, size, 0, 0);
        } else {
            struct queue_msg_rec again;
            FUZZ_CHECK(queue_msg_rec_decode(enc, n, &again) == 0);
            FUZZ_CHECK(again.id == m.id && again.return_path_len == m.return_path_len);
        }
    }

    struct queue_rcpt_rec r;
    rc = queue_rcpt_rec_decode(data, size, &r);
    check_rc(rc, data, size);
    if (rc == 0) {
        accepted++;
        FUZZ_CHECK(data[1] == QUEUE_KIND_RCPT);
        FUZZ_CHECK(inside(r.status, r.status_len, data, size));
        FUZZ_CHECK(inside(r.text, r.text_len, data, size));
        FUZZ_CHECK(inside(r.addr, r.addr_len, data, size));
        FUZZ_CHECK(r.addr_len > 0 && (size_t)r.domain_off + r.domain_len == r.addr_len);
        FUZZ_CHECK(r.addr[r.domain_off - 1] == '@');
        FUZZ_CHECK(printable(r.status, r.status_len) && printable(r.text, r.text_len)
                   && printable(r.addr, r.addr_len));
        size_t n = queue_rcpt_rec_encode(enc, &r);
        FUZZ_CHECK(queue_rcpt_rec_size(&r) == n);
        if (data[0] != QUEUE_REC_V1) {       /* an old version re-encodes as the newest */
            FUZZ_CHECK(n == size);
            same_but(data, size, 0, 0);
        } else {
            struct queue_rcpt_rec again;
            FUZZ_CHECK(queue_rcpt_rec_decode(enc, n, &again) == 0);
            FUZZ_CHECK(again.addr_len == r.addr_len && again.attempts == r.attempts);
        }
    }
    FUZZ_CHECK(accepted <= 1);

    /* queue_text_clean: capped, controls become spaces. */
    char clean[VL_DIAG_TEXT_BYTES_MAX];
    size_t n = queue_text_clean(clean, (const char *)data, size);
    FUZZ_CHECK(n == (size < VL_DIAG_TEXT_BYTES_MAX ? size : VL_DIAG_TEXT_BYTES_MAX));
    FUZZ_CHECK(printable(clean, n));
    return 0;
}
