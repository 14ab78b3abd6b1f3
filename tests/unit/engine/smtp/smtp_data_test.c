/* smtp_data_test.c - DATA encoder and measurer: table-driven, every split
 * point, and seeded random bodies against a byte-at-a-time reference. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"

struct data_case {
    const char *label;
    const char *in;
    const char *want;           /* encoded, end marker included */
    uint64_t size;              /* SIZE= value */
    bool is_8bit;
};

static const struct data_case cases[] = {
    { "empty", "", ".\r\n", 0, false },
    { "one line", "Hi!\r\n", "Hi!\r\n.\r\n", 5, false },
    { "no final CRLF", "Hi!", "Hi!\r\n.\r\n", 5, false },
    { "dot first line", ".hidden\r\n", "..hidden\r\n.\r\n", 9, false },
    { "lone dot line", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n", 9, false },
    { "dot only", ".", "..\r\n.\r\n", 3, false },
    { "dot dot", "..\r\n", "...\r\n.\r\n", 4, false },
    { "dot mid line", "a.b\r\n", "a.b\r\n.\r\n", 5, false },
    { "bare LF", "a\nb\n", "a\r\nb\r\n.\r\n", 6, false },
    { "bare CR", "a\rb\r", "a\r\nb\r\n.\r\n", 6, false },
    { "CR CR LF", "a\r\r\n", "a\r\n\r\n.\r\n", 5, false },
    { "LF CR", "a\n\rb", "a\r\n\r\nb\r\n.\r\n", 8, false },
    { "bare LF dot", "a\n.b", "a\r\n..b\r\n.\r\n", 7, false },
    { "bare CR dot", "a\r.b", "a\r\n..b\r\n.\r\n", 7, false },
    { "smuggle LF.LF", "a\n.\nMAIL FROM:<x@y>\n", "a\r\n..\r\nMAIL FROM:<x@y>\r\n.\r\n", 23,
      false },
    { "smuggle CR.CR", "a\r.\rb", "a\r\n..\r\nb\r\n.\r\n", 9, false },
    { "empty lines", "\r\n\r\n", "\r\n\r\n.\r\n", 4, false },
    { "only LF", "\n", "\r\n.\r\n", 2, false },
    { "only CR", "\r", "\r\n.\r\n", 2, false },
    { "8bit", "caf\xc3\xa9\r\n", "caf\xc3\xa9\r\n.\r\n", 7, true },
    { "8bit last byte", "abc\xff", "abc\xff\r\n.\r\n", 6, true },
    { "7bit controls", "a\tb\x01\r\n", "a\tb\x01\r\n.\r\n", 6, false },
    { "multipart", "--bounds1\r\n.\r\n--bounds1--\r\n",
      "--bounds1\r\n..\r\n--bounds1--\r\n.\r\n", 27, false },
};

/* Encode @p in split at the offsets in @p cuts (ascending, ncuts of them). */
static size_t encode_split(const char *in, size_t len, const size_t *cuts, size_t ncuts,
                           char *out, size_t out_cap)
{
    struct smtp_data_enc e;
    smtp_data_enc_init(&e);
    size_t o = 0, prev = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        assert_true(o + 2 * (end - prev) <= out_cap);
        o += smtp_data_enc_chunk(&e, in + prev, end - prev, out + o, 2 * (end - prev));
        prev = end;
    }
    assert_true(o + SMTP_DATA_END_OUT_MAX <= out_cap);
    o += smtp_data_enc_end(&e, out + o, SMTP_DATA_END_OUT_MAX);
    assert_int_equal(e.bytes_out, o);
    assert_true(o <= 2 * len + 5);
    return o;
}

static void measure_split(const char *in, size_t len, const size_t *cuts, size_t ncuts,
                          struct smtp_data_info *m)
{
    smtp_data_measure_init(m);
    size_t prev = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        smtp_data_measure_chunk(m, in + prev, end - prev);
        prev = end;
    }
    smtp_data_measure_end(m);
}

static void check_case(const struct data_case *c, const size_t *cuts, size_t ncuts)
{
    char out[256];
    size_t len = strlen(c->in);
    size_t n = encode_split(c->in, len, cuts, ncuts, out, sizeof out);
    if (n != strlen(c->want) || memcmp(out, c->want, n) != 0)
        fail_msg("%s (cut %zu): got [%.*s]", c->label, ncuts ? cuts[0] : 0, (int)n, out);
    struct smtp_data_info m;
    measure_split(c->in, len, cuts, ncuts, &m);
    if (m.size != c->size || m.is_8bit != c->is_8bit)
        fail_msg("%s (cut %zu): size %llu 8bit %d", c->label, ncuts ? cuts[0] : 0,
                 (unsigned long long)m.size, m.is_8bit);
}

static void test_table_every_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].in);
        check_case(&cases[i], NULL, 0);
        for (size_t k = 0; k <= len; k++)
            check_case(&cases[i], &k, 1);
        for (size_t j = 0; j <= len; j++)            /* every pair of cut points */
            for (size_t k = j; k <= len; k++) {
                size_t cuts[2] = { j, k };
                check_case(&cases[i], cuts, 2);
            }
    }
}

static void test_one_shot_measure(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct smtp_data_info m;
        smtp_data_measure(cases[i].in, strlen(cases[i].in), &m);
        assert_int_equal(m.size, cases[i].size);
        assert_int_equal(m.is_8bit, cases[i].is_8bit);
    }
}

/* Reference: the whole body at once, one byte at a time. */
static size_t ref_encode(const char *in, size_t len, char *out, uint64_t *size)
{
    size_t o = 0;
    bool bol = true;
    uint64_t sz = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < len && in[i + 1] == '\n')
                i++;
            out[o++] = '\r';
            out[o++] = '\n';
            sz += 2;
            bol = true;
            continue;
        }
        if (bol && c == '.')
            out[o++] = '.';
        out[o++] = c;
        sz++;
        bol = false;
    }
    if (!bol) {
        out[o++] = '\r';
        out[o++] = '\n';
        sz += 2;
    }
    memcpy(out + o, ".\r\n", 3);
    *size = sz;
    return o + 3;
}

static uint64_t seed_get(void)
{
    const char *s = getenv("VOLLEY_SEED");
    return s ? strtoull(s, NULL, 0) : 0x5eed0001ull;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random bodies over an alphabet rich in '.', CR and LF, random chunking. */
static void test_random_vs_reference(void **state)
{
    (void)state;
    static const char alpha[] = { 'a', '.', '\r', '\n', '\r', '\n', '.', ' ', (char)0xc3 };
    uint64_t seed = seed_get(), s = seed ? seed : 1;   /* xorshift never leaves 0 */
    static char in[600], out[1300], ref[1300];
    for (unsigned iter = 0; iter < 3000; iter++) {
        size_t len = rnd(&s) % sizeof in;
        for (size_t i = 0; i < len; i++)
            in[i] = alpha[rnd(&s) % sizeof alpha];
        size_t cuts[8], ncuts = rnd(&s) % 8;
        for (size_t i = 0; i < ncuts; i++)
            cuts[i] = len ? rnd(&s) % (len + 1) : 0;
        for (size_t i = 1; i < ncuts; i++)          /* insertion sort: ascending cuts */
            for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                size_t t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        uint64_t ref_size;
        size_t rn = ref_encode(in, len, ref, &ref_size);
        size_t n = encode_split(in, len, cuts, ncuts, out, sizeof out);
        struct smtp_data_info m;
        measure_split(in, len, cuts, ncuts, &m);
        if (n != rn || memcmp(out, ref, n) != 0 || m.size != ref_size)
            fail_msg("seed %#llx iteration %u: encoder or size differs from the reference "
                     "(VOLLEY_SEED=%#llx replays)", (unsigned long long)seed, iter,
                     (unsigned long long)seed);
        assert_int_equal(m.is_8bit, memchr(in, (char)0xc3, len) != NULL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_every_split),
        cmocka_unit_test(test_one_shot_measure),
        cmocka_unit_test(test_random_vs_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
