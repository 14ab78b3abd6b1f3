/* queue_codec_test.c - record round trips and the decoder's validation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "queue_codec.h"
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
    buf[0] = 2;
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
