/* queue_codec_test.c - record round trips and the decoder's validation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "queue_codec.h"
#include "queue_crc.h"
#include "volley/error.h"
#include "volley/limits.h"

static void test_key_order(void **state)
{
    (void)state;
    static const uint64_t v[] = { 0, 1, 255, 256, 65535, 1ull << 40, UINT64_MAX - 1, UINT64_MAX };
    for (size_t i = 0; i + 1 < sizeof v / sizeof v[0]; i++) {
        uint8_t a[8], b[8];
        queue_key_u64(a, v[i]);
        queue_key_u64(b, v[i + 1]);
        assert_true(memcmp(a, b, 8) < 0);
        assert_true(queue_key_u64_get(a) == v[i]);
    }
}

static void test_msg_roundtrip(void **state)
{
    (void)state;
    struct queue_msg_rec m = { .id = 0x1122334455667788ull, .created_ms = 1700000000123ull,
        .size = 12345, .first_rcpt = (3ull << 48) | 77, .flags = VL_QUEUE_MSG_8BIT,
        .rcpt_count = 100, .rcpt_open = 42, .return_path = "bounce@example.org",
        .return_path_len = 18 }, d;
    uint8_t buf[512];
    size_t n = queue_msg_rec_encode(buf, &m);
    assert_int_equal(n, queue_msg_rec_size(&m));
    assert_int_equal(queue_msg_rec_decode(buf, n, &d), 0);
    assert_true(d.id == m.id && d.created_ms == m.created_ms && d.size == m.size);
    assert_true(d.first_rcpt == m.first_rcpt && d.flags == m.flags);
    assert_int_equal(d.rcpt_count, 100);
    assert_int_equal(d.rcpt_open, 42);
    assert_int_equal(d.return_path_len, 18);
    assert_memory_equal(d.return_path, "bounce@example.org", 18);
    /* Every truncation is refused, and so is a trailing byte. */
    for (size_t len = 0; len < n; len++)
        assert_true(queue_msg_rec_decode(buf, len, &d) < 0);
    assert_int_equal(queue_msg_rec_decode(buf, n + 1, &d), VL_E_CORRUPT);
    buf[0] = 3;                                   /* versions 1 and 2 are known */
    assert_int_equal(queue_msg_rec_decode(buf, n, &d), VL_E_VERSION);
}

static size_t rcpt_sample(uint8_t *buf, struct queue_rcpt_rec *r)
{
    *r = (struct queue_rcpt_rec){ .msg_id = 99, .next_ms = 5000, .attempts = 3, .code = 451,
        .state = VL_RCPT_DEFERRED, .status = "4.7.1", .status_len = 5,
        .text = "greylisted, try later", .text_len = 21, .addr = "User@Example.ORG",
        .addr_len = 16, .domain_off = 5, .domain_len = 11 };
    return queue_rcpt_rec_encode(buf, r);
}

static void test_rcpt_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[2048];
    struct queue_rcpt_rec r, d;
    size_t n = rcpt_sample(buf, &r);
    assert_int_equal(n, queue_rcpt_rec_size(&r));
    assert_int_equal(queue_rcpt_rec_decode(buf, n, &d), 0);
    assert_true(d.msg_id == 99 && d.next_ms == 5000);
    assert_int_equal(d.attempts, 3);
    assert_int_equal(d.code, 451);
    assert_int_equal(d.state, VL_RCPT_DEFERRED);
    assert_memory_equal(d.status, "4.7.1", 5);
    assert_memory_equal(d.text, "greylisted, try later", 21);
    assert_memory_equal(d.addr + d.domain_off, "Example.ORG", 11);
    for (size_t len = 0; len < n; len++)
        assert_true(queue_rcpt_rec_decode(buf, len, &d) < 0);
}

/* Single-byte corruptions the decoder must catch: {offset, value}. */
struct corrupt_case { const char *label; size_t off; uint8_t val; int want; };

static const struct corrupt_case rcpt_corrupt[] = {
    { "version",         0, 9,    VL_E_VERSION },
    { "kind",            1, QUEUE_KIND_MSG, VL_E_CORRUPT },
    { "state final",     2, VL_RCPT_DELIVERED, VL_E_CORRUPT },
    { "state zero",      2, 0,    VL_E_CORRUPT },
    { "status len",      3, 6,    VL_E_CORRUPT },
    { "code > 999",     25, 0x10, VL_E_CORRUPT },
    { "text len",       26, 22,   VL_E_CORRUPT },
    { "addr len",       28, 17,   VL_E_CORRUPT },
    { "domain off",     30, 6,    VL_E_CORRUPT },
    { "domain len",     32, 10,   VL_E_CORRUPT },
    { "CR in text",     34 + 5 + 3, '\r', VL_E_CORRUPT },
    { "NUL in addr",    34 + 5 + 21 + 1, 0, VL_E_CORRUPT },
    { "no @ at domain", 34 + 5 + 21 + 4, 'x', VL_E_CORRUPT },
};

static void test_rcpt_corrupt_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rcpt_corrupt / sizeof rcpt_corrupt[0]; i++) {
        const struct corrupt_case *c = &rcpt_corrupt[i];
        uint8_t buf[2048];
        struct queue_rcpt_rec r, d;
        size_t n = rcpt_sample(buf, &r);
        buf[c->off] = c->val;
        int rc = queue_rcpt_rec_decode(buf, n, &d);
        if (rc != c->want)
            fail_msg("%s: decode gave %d, want %d", c->label, rc, c->want);
    }
}

static void test_stats_and_shard(void **state)
{
    (void)state;
    uint8_t buf[QUEUE_STATS_REC_BYTES];
    struct queue_stats_rec s = { .next_rcpt = 12345, .purged = 7, .messages = 9,
                                 .body_bytes = 1u << 30 }, d;
    for (unsigned i = 0; i < VL_RCPT_STATE_COUNT; i++)
        s.by_state[i] = 1000 + i;
    size_t n = queue_stats_rec_encode(buf, &s);
    assert_int_equal(n, QUEUE_STATS_REC_BYTES);
    assert_int_equal(queue_stats_rec_decode(buf, n, &d), 0);
    assert_memory_equal(&s, &d, sizeof s);
    assert_int_equal(queue_stats_rec_decode(buf, n - 1, &d), VL_E_CORRUPT);

    struct queue_shard_rec sr = { 3, 8 }, sd;
    n = queue_shard_rec_encode(buf, &sr);
    assert_int_equal(queue_shard_rec_decode(buf, n, &sd), 0);
    assert_int_equal(sd.shard, 3);
    assert_int_equal(sd.nshards, 8);
    sr.shard = 8;                                   /* index out of range */
    n = queue_shard_rec_encode(buf, &sr);
    assert_int_equal(queue_shard_rec_decode(buf, n, &sd), VL_E_CORRUPT);
}

/* Item 5's pend record: round trip; a bad state, a single shard, a short
 * record and another version are refused. */
static void test_pend_roundtrip(void **state)
{
    (void)state;
    struct queue_pend_rec p = { .state = QUEUE_PEND_PREPARED }, got;
    uint8_t buf[QUEUE_PEND_REC_BYTES];
    p.shards[0] = 0x05;                               /* shards 0 and 2 */
    p.shards[VL_SHARDS_MAX / 8 - 1] = 0x80;           /* and the last */
    assert_int_equal(queue_pend_rec_encode(buf, &p), QUEUE_PEND_REC_BYTES);
    assert_int_equal(queue_pend_rec_decode(buf, sizeof buf, &got), 0);
    assert_int_equal(got.state, QUEUE_PEND_PREPARED);
    assert_memory_equal(got.shards, p.shards, sizeof p.shards);
    p.state = QUEUE_PEND_COMMITTED;
    queue_pend_rec_encode(buf, &p);
    assert_int_equal(queue_pend_rec_decode(buf, sizeof buf, &got), 0);
    assert_int_equal(got.state, QUEUE_PEND_COMMITTED);
    buf[2] = 7;                                       /* unknown state */
    assert_int_equal(queue_pend_rec_decode(buf, sizeof buf, &got), VL_E_CORRUPT);
    buf[2] = QUEUE_PEND_PREPARED;
    assert_int_equal(queue_pend_rec_decode(buf, sizeof buf - 1, &got), VL_E_CORRUPT);
    memset(buf + 4, 0, VL_SHARDS_MAX / 8);
    buf[4] = 0x10;                                    /* one shard: never pending */
    assert_int_equal(queue_pend_rec_decode(buf, sizeof buf, &got), VL_E_CORRUPT);
    buf[0] = 9;
    assert_int_equal(queue_pend_rec_decode(buf, sizeof buf, &got), VL_E_VERSION);
}

static void test_text_clean(void **state)
{
    (void)state;
    char out[VL_DIAG_TEXT_BYTES_MAX];
    size_t n = queue_text_clean(out, "a\r\nb\tc\x7f", 7);
    assert_int_equal(n, 7);
    assert_memory_equal(out, "a  b c ", 7);
    char big[3000];
    memset(big, 'x', sizeof big);
    assert_int_equal(queue_text_clean(out, big, sizeof big), VL_DIAG_TEXT_BYTES_MAX);
}

/* Item 6: CRC32C gives the standard check value, and the fast path (SSE4.2
 * where present) agrees with the tables at every length and alignment. */
static void test_item6_crc32c(void **state)
{
    (void)state;
    assert_int_equal(queue_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(queue_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(queue_crc32c(0, NULL, 0), 0);
    uint8_t buf[300];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += 7)
            assert_int_equal(queue_crc32c(0, buf + off, n), queue_crc32c_sw(0, buf + off, n));
    /* Continuing a CRC over two pieces equals one pass. */
    assert_int_equal(queue_crc32c(queue_crc32c(0, buf, 100), buf + 100, 200),
                     queue_crc32c(0, buf, 300));
}

/* Item 6: every single-byte change of a version-2 recipient or message
 * record is refused (the checksum catches what the fields do not). */
static void test_item6_record_checksum(void **state)
{
    (void)state;
    uint8_t buf[2048];
    struct queue_rcpt_rec r, d;
    size_t n = rcpt_sample(buf, &r);
    assert_int_equal(queue_rec_crc_state(buf, n), QUEUE_CRC_OK);
    for (size_t i = 0; i < n; i++) {
        buf[i] ^= 0x01;
        assert_true(queue_rcpt_rec_decode(buf, n, &d) < 0);
        buf[i] ^= 0x01;
    }
    assert_int_equal(queue_rcpt_rec_decode(buf, n, &d), 0);
    buf[40] ^= 0x04;                              /* inside the text: still printable */
    assert_int_equal(queue_rec_crc_state(buf, n), QUEUE_CRC_BAD);
    assert_int_equal(queue_rcpt_rec_decode(buf, n, &d), VL_E_CORRUPT);
    struct queue_msg_rec m = { .id = 7, .created_ms = 1, .size = 10, .first_rcpt = 5,
        .rcpt_count = 2, .rcpt_open = 2, .return_path = "a@b.org", .return_path_len = 7,
        .body_crc = 0xdeadbeef, .body_crc_set = true }, md;
    n = queue_msg_rec_encode(buf, &m);
    assert_int_equal(queue_msg_rec_decode(buf, n, &md), 0);
    assert_true(md.body_crc_set && md.body_crc == 0xdeadbeef);
    for (size_t i = 0; i < n; i++) {
        buf[i] ^= 0x80;
        assert_true(queue_msg_rec_decode(buf, n, &md) < 0);
        buf[i] ^= 0x80;
    }
}

/* Item 6: records written before checksums (version 1) still decode. */
static void test_item6_v1_records_decode(void **state)
{
    (void)state;
    uint8_t buf[2048];
    struct queue_rcpt_rec r, d;
    size_t n = rcpt_sample(buf, &r);
    buf[0] = 1;                                   /* v1 = v2 without the trailer */
    assert_int_equal(queue_rec_crc_state(buf, n - 4), QUEUE_CRC_NONE);
    assert_int_equal(queue_rcpt_rec_decode(buf, n - 4, &d), 0);
    assert_true(d.msg_id == 99 && d.attempts == 3);
    assert_memory_equal(d.addr, "User@Example.ORG", 16);
    assert_int_equal(queue_rcpt_rec_decode(buf, n, &d), VL_E_CORRUPT);
    /* v1 message: the 48-byte head, then the return path. */
    struct queue_msg_rec m = { .id = 7, .created_ms = 1, .size = 10, .first_rcpt = 5,
        .rcpt_count = 2, .rcpt_open = 1, .return_path = "a@b.org", .return_path_len = 7,
        .body_crc = 1, .body_crc_set = true }, md;
    uint8_t v2[128], v1[128];
    n = queue_msg_rec_encode(v2, &m);
    memcpy(v1, v2, QUEUE_MSG_REC_V1_HEAD_BYTES);
    memcpy(v1 + QUEUE_MSG_REC_V1_HEAD_BYTES, v2 + QUEUE_MSG_REC_HEAD_BYTES, 7);
    v1[0] = 1;
    assert_int_equal(queue_msg_rec_decode(v1, QUEUE_MSG_REC_V1_HEAD_BYTES + 7, &md), 0);
    assert_false(md.body_crc_set);                /* no checksum to verify */
    assert_true(md.id == 7 && md.rcpt_open == 1);
    assert_memory_equal(md.return_path, "a@b.org", 7);
    /* A rewrite (rcpt_open--) keeps "no body checksum known". */
    n = queue_msg_rec_encode(v2, &md);
    assert_int_equal(queue_msg_rec_decode(v2, n, &m), 0);
    assert_false(m.body_crc_set);
    /* v1 stats: 8 bytes shorter, quarantined reads 0. */
    struct queue_stats_rec st = { .next_rcpt = 3, .ambiguous = 4, .quarantined = 5 }, sd;
    n = queue_stats_rec_encode(buf, &st);
    assert_int_equal(n, QUEUE_STATS_REC_BYTES);
    assert_int_equal(queue_stats_rec_decode(buf, n, &sd), 0);
    assert_int_equal(sd.quarantined, 5);
    buf[0] = 1;
    assert_int_equal(queue_stats_rec_decode(buf, QUEUE_STATS_REC_V1_BYTES, &sd), 0);
    assert_int_equal(sd.quarantined, 0);
    assert_int_equal(sd.ambiguous, 4);
    assert_int_equal(queue_stats_rec_decode(buf, n, &sd), VL_E_CORRUPT);
}

static void test_item6_quar_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct queue_quar_rec q = { .what = QUEUE_QUAR_MSG, .reason = QUEUE_QUAR_BODY_CRC,
        .body_found = 1, .raw_len = 5, .body_len = 3, .time_ms = 42, .msg_id = 9 }, d;
    size_t h = queue_quar_rec_encode_head(buf, &q);
    memcpy(buf + h, "RAWRABOD", 8);
    size_t n = queue_quar_rec_size(&q);
    assert_int_equal(n, h + 8);
    assert_int_equal(queue_quar_rec_decode(buf, n, &d), 0);
    assert_true(d.what == QUEUE_QUAR_MSG && d.reason == QUEUE_QUAR_BODY_CRC);
    assert_true(d.time_ms == 42 && d.msg_id == 9 && d.body_found == 1);
    assert_memory_equal(d.raw, "RAWRA", 5);
    assert_memory_equal(d.body, "BOD", 3);
    assert_string_equal(queue_quar_reason_name(d.reason), "body_checksum");
    assert_int_equal(queue_quar_rec_decode(buf, n - 1, &d), VL_E_CORRUPT);
    buf[3] = QUEUE_QUAR_REASON_COUNT;
    assert_int_equal(queue_quar_rec_decode(buf, n, &d), VL_E_CORRUPT);
    assert_string_equal(queue_quar_reason_name(0), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_order),
        cmocka_unit_test(test_msg_roundtrip),
        cmocka_unit_test(test_rcpt_roundtrip),
        cmocka_unit_test(test_rcpt_corrupt_table),
        cmocka_unit_test(test_stats_and_shard),
        cmocka_unit_test(test_pend_roundtrip),
        cmocka_unit_test(test_text_clean),
        cmocka_unit_test(test_item6_crc32c),
        cmocka_unit_test(test_item6_record_checksum),
        cmocka_unit_test(test_item6_v1_records_decode),
        cmocka_unit_test(test_item6_quar_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
