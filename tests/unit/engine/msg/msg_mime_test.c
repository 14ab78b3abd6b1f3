/* msg_mime_test.c - quoted-printable encoder and the re-encoding of MIME parts
 * with body lines over 998 octets (msg_mime.c), plus msg_normalise's
 * long_lines_encode switch. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "msg_mime.h"
#include "volley/error.h"

static char *qp(const char *in, size_t n, size_t *len)
{
    uint8_t *out = NULL;
    size_t cap = 0;
    *len = 0;
    assert_int_equal(msg_qp_encode((const uint8_t *)in, n, &out, len, &cap), 0);
    char *s = malloc(*len + 1);
    assert_non_null(s);
    if (*len)
        memcpy(s, out, *len);
    s[*len] = 0;
    free(out);
    return s;
}

static void test_qp_cases(void **state)
{
    (void)state;
    static const struct { const char *in, *want; } cases[] = {
        { "plain text", "plain text" },
        { "a=b", "a=3Db" },
        { "caf\xc3\xa9", "caf=C3=A9" },
        { "trailing \r\nnext\t", "trailing=20\r\nnext=09" },
        { "in the middle\r\n", "in the middle\r\n" },
        { "ctl\x01\x7f", "ctl=01=7F" },
        { "lone\rCR and \nLF", "lone=0DCR and =0ALF" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *s = qp(cases[i].in, strlen(cases[i].in), &len);
        assert_string_equal(s, cases[i].want);
        free(s);
    }
}

/* Decode quoted-printable (test side, RFC 2045 6.7): =XX, soft breaks "=\r\n". */
static size_t qp_decode(const char *s, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' && i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
            i += 2;
        } else if (s[i] == '=') {
            unsigned v;
            assert_true(i + 2 < n);
            assert_int_equal(sscanf(s + i + 1, "%2X", &v), 1);
            out[o++] = (uint8_t)v;
            i += 2;
        } else {
            out[o++] = (uint8_t)s[i];
        }
    }
    return o;
}

/* Random bytes (with CRLFs, blanks before them, '=', 8-bit): the output has
 * lines of at most 76 octets, printable ASCII only, and decodes back. */
static void test_qp_roundtrip_random(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    static const char alphabet[] = "ab =\t.\xff\xc3\x80\x01";
    for (int round = 0; round < 500; round++) {
        char in[3000];
        size_t n = 0, want = (size_t)(round * 7 % 2990);
        while (n < want) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (x % 53 == 0 && n + 2 <= want) {
                in[n++] = '\r';
                in[n++] = '\n';
            } else {
                in[n++] = alphabet[x % (sizeof alphabet - 1)];
            }
        }
        size_t len;
        char *s = qp(in, n, &len);
        size_t col = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '\r') {
                assert_true(i + 1 < len && s[i + 1] == '\n');
                assert_true(col == 0 || (s[i - 1] != ' ' && s[i - 1] != '\t'));
                col = 0;
                i++;
                continue;
            }
            assert_true((c >= 32 && c < 127) || c == '\t');
            assert_true(++col <= 76);
        }
        uint8_t *dec = malloc(len + 1);
        assert_non_null(dec);
        size_t dn = qp_decode(s, len, dec);
        assert_int_equal(dn, n);
        assert_memory_equal(dec, in, n);
        free(dec);
        free(s);
    }
}

static char *longline(size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('a' + i % 26);
    s[n] = 0;
    return s;
}

static int encode(const char *in, char **out, unsigned *parts, const char **why)
{
    uint8_t *o = NULL;
    size_t len = 0;
    int rc = msg_mime_encode_long((const uint8_t *)in, strlen(in), &o, &len, parts, why);
    if (rc == 0) {
        *out = malloc(len + 1);
        assert_non_null(*out);
        memcpy(*out, o, len);
        (*out)[len] = 0;
        free(o);
    }
    return rc;
}

static void test_mime_single_part(void **state)
{
    (void)state;
    char *l = longline(1500), *in, *out;
    assert_true(asprintf(&in, "Subject: x\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n", l)
                > 0);
    unsigned parts = 0;
    const char *why;
    assert_int_equal(encode(in, &out, &parts, &why), 0);
    assert_int_equal(parts, 1);
    const char *hdr = "Subject: x\r\nMIME-Version: 1.0\r\n"
                      "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
    assert_memory_equal(out, hdr, strlen(hdr));            /* the old CTE is gone */
    assert_null(strstr(out, "8bit"));
    assert_non_null(strstr(out, "=\r\n"));
    free(out);
    free(in);
    free(l);
}

static void test_mime_nothing_long_is_a_copy(void **state)
{
    (void)state;
    const char *in = "Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                     "\r\nshort\r\n--b--\r\n";
    char *out;
    unsigned parts = 9;
    const char *why;
    assert_int_equal(encode(in, &out, &parts, &why), 0);
    assert_int_equal(parts, 0);
    assert_string_equal(out, in);
    free(out);
}

static void test_mime_multipart_only_long_leaf(void **state)
{
    (void)state;
    char *l = longline(2000), *in, *out;
    assert_true(asprintf(&in, "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed;"
                         "\r\n boundary=\"o u\"\r\n\r\npre\r\n--o u\r\nContent-Type: multipart/"
                         "alternative; boundary=i\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\n"
                         "short\r\n--i\r\nContent-Type: text/html\r\n\r\n%s\r\n--i--\r\n"
                         "--o u--\r\nepi\r\n", l) > 0);
    unsigned parts = 0;
    const char *why;
    assert_int_equal(encode(in, &out, &parts, &why), 0);
    assert_int_equal(parts, 1);
    /* The short part is untouched; the long one gets the header and its body
     * ends right before the CRLF that belongs to the delimiter. */
    assert_non_null(strstr(out, "--i\r\nContent-Type: text/plain\r\n\r\nshort\r\n--i\r\n"));
    assert_non_null(strstr(out, "Content-Type: text/html\r\nContent-Transfer-Encoding: "
                                "quoted-printable\r\n\r\nabc"));
    assert_non_null(strstr(out, "\r\n--i--\r\n--o u--\r\nepi\r\n"));
    assert_null(strstr(out, "MIME-Version: 1.0\r\nContent-Type: text/html"));  /* top only */
    for (const char *p = out, *e; (e = strstr(p, "\r\n")) != NULL; p = e + 2)
        assert_true(e - p <= 998);
    free(out);
    free(in);
    free(l);
}

static void test_mime_refusals(void **state)
{
    (void)state;
    char *l = longline(1200), *in;
    static const char *const fmts[] = {
        "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n",
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n%s\r\n--b\r\n\r\nx\r\n--b--\r\n",
        ("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822"
         "\r\n\r\n%s\r\n--b--\r\n"),
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX-Long: %s\r\n\r\nx\r\n--b--\r\n",
        "Content-Type: multipart/mixed\r\n\r\n%s\r\n",
    };
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        assert_true(asprintf(&in, fmts[i], l) > 0);
        char *out = NULL;
        unsigned parts = 0;
        const char *why = NULL;
        assert_int_equal(encode(in, &out, &parts, &why), VL_E_INVALID);
        assert_non_null(why);
        assert_non_null(strstr(why, "998"));
        free(in);
    }
    free(l);
}

static void test_normalise_long_lines_switch(void **state)
{
    (void)state;
    char *l = longline(1000), *in;
    assert_true(asprintf(&in, "From: a@b.org\r\nSubject: x\r\n\r\n%s\xc3\xa9\r\n", l) > 0);
    struct msg_opts o = { 1700000000123ull, "mx.example.net", 1, "s@x.org", false };
    struct msg_problem probs[4];
    struct msg_result r;
    assert_int_equal(msg_normalise(in, strlen(in), &o, &r, probs, 4), VL_E_INVALID);
    assert_int_equal(r.problems, 1);
    assert_string_equal(probs[0].why, "line longer than 998 octets");
    o.long_lines_encode = true;
    assert_int_equal(msg_normalise(in, strlen(in), &o, &r, probs, 4), 0);
    assert_int_equal(r.encoded_parts, 1);
    assert_false(r.is_8bit);                  /* the only 8-bit octets are now =C3=A9 */
    assert_non_null(memmem(r.data, r.len, "=C3=A9\r\n", 8));
    msg_result_fini(&r);
    free(in);
    /* A header line over 998 octets is refused either way. */
    assert_true(asprintf(&in, "From: a@b.org\r\nSubject: %s\r\n\r\nbody\r\n", l) > 0);
    assert_int_equal(msg_normalise(in, strlen(in), &o, &r, probs, 4), VL_E_INVALID);
    assert_int_equal(probs[0].line, 2);
    free(in);
    free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qp_cases),
        cmocka_unit_test(test_qp_roundtrip_random),
        cmocka_unit_test(test_mime_single_part),
        cmocka_unit_test(test_mime_nothing_long_is_a_copy),
        cmocka_unit_test(test_mime_multipart_only_long_leaf),
        cmocka_unit_test(test_mime_refusals),
        cmocka_unit_test(test_normalise_long_lines_switch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
