/* http_mime_test.c - the HTTP API's message builder (http_mime.c): base64
 * both ways, RFC 2047 encoded words that never split UTF-8, the part layout
 * and transfer encodings chosen, and boundaries never inside a part. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "http_mime.h"
#include "volley/error.h"

static char *str(const struct hbuf *b)
{
    char *s = calloc(1, b->len + 1);
    assert_non_null(s);
    if (b->len)
        memcpy(s, b->p, b->len);
    return s;
}

static void test_b64_decode(void **state)
{
    (void)state;
    static const struct { const char *in; int rc; const char *want; } c[] = {
        { "aGVsbG8=", 0, "hello" }, { "aGVs\r\nbG8", 0, "hello" }, { "", 0, "" },
        { "YQ==", 0, "a" }, { "Y", VL_E_INVALID, NULL }, { "a!b=", VL_E_INVALID, NULL },
        { "YQ==YQ==", VL_E_INVALID, NULL }, { "YR==", VL_E_INVALID, NULL },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        uint8_t *o = NULL;
        size_t n = 0;
        int rc = mime_b64_decode(c[i].in, strlen(c[i].in), &o, &n);
        assert_int_equal(rc, c[i].rc);
        if (rc == 0) {
            assert_int_equal(n, strlen(c[i].want));
            assert_memory_equal(o, c[i].want, n);
            free(o);
        }
    }
}

static void test_attachment_round_trip(void **state)
{
    (void)state;
    uint8_t data[1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    struct hbuf b = { 0 };
    assert_int_equal(mime_attachment_part(data, sizeof data, "application/x-t", "f.bin", &b), 0);
    char *s = str(&b);
    char *body = strstr(s, "\r\n\r\n");
    assert_non_null(body);
    assert_non_null(strstr(s, "filename=\"f.bin\""));
    for (char *l = body + 4; *l;) {                 /* 76-column lines */
        char *e = strstr(l, "\r\n");
        size_t n = e ? (size_t)(e - l) : strlen(l);
        assert_true(n <= 76);
        l = e ? e + 2 : l + n;
    }
    uint8_t *o = NULL;
    size_t n = 0;
    assert_int_equal(mime_b64_decode(body + 4, strlen(body + 4), &o, &n), 0);
    assert_int_equal(n, sizeof data);
    assert_memory_equal(o, data, n);
    free(o);
    free(s);
    hbuf_fini(&b);
    b = (struct hbuf){ 0 };                          /* non-ASCII name: RFC 2231 */
    assert_int_equal(mime_attachment_part(data, 3, "a/b", "r\xc3\xa9sum\xc3\xa9 1.pdf", &b), 0);
    s = str(&b);
    assert_non_null(strstr(s, "filename*=UTF-8''r%C3%A9sum%C3%A9%201.pdf\r\n"));
    free(s);
    hbuf_fini(&b);
}

static void test_encoded_words(void **state)
{
    (void)state;
    struct hbuf b = { 0 };
    /* 40 x "é" (80 octets): must split into words on character boundaries */
    char v[81];
    for (int i = 0; i < 40; i++)
        memcpy(v + 2 * i, "\xc3\xa9", 2);
    assert_int_equal(mime_header_unstructured(&b, "Subject", v, 80), 0);
    char *s = str(&b);
    assert_true(strncmp(s, "Subject: =?UTF-8?B?", 19) == 0);
    size_t words = 0;
    for (char *p = s; (p = strstr(p, "=?UTF-8?B?")); p += 10) {
        char *end = strstr(p + 10, "?=");
        assert_non_null(end);
        assert_true(end + 2 - p <= 75);                /* RFC 2047 2 */
        uint8_t *o = NULL;
        size_t n = 0;
        assert_int_equal(mime_b64_decode(p + 10, (size_t)(end - p - 10), &o, &n), 0);
        assert_true(n % 2 == 0);                       /* whole 2-octet characters */
        free(o);
        words++;
    }
    assert_int_equal(words, 2);
    assert_non_null(strstr(s, "?=\r\n =?UTF-8?B?"));   /* folded */
    free(s);
    hbuf_fini(&b);
    b = (struct hbuf){ 0 };
    assert_int_equal(mime_header_unstructured(&b, "X-A", "plain", 5), 0);
    s = str(&b);
    assert_string_equal(s, "X-A: plain\r\n");
    free(s);
    hbuf_fini(&b);
}

static void test_build_layout(void **state)
{
    (void)state;
    struct hbuf att = { 0 };
    assert_int_equal(mime_attachment_part((const uint8_t *)"xyz", 3, "a/b", "n", &att), 0);
    struct mime_msg m = {
        .from_email = { "f@a.test", 8 }, .from_name = { "A, B", 4 },
        .to_email = { "t@b.test", 8 }, .subject = { "s", 1 },
        .text = { "line\nwith =_ inside\n", 20 }, .html = { "<p>caf\xc3\xa9</p>", 13 },
        .atts = &att, .att_count = 1, .now_ms = 1700000000000ull, .hostname = "h.test",
        .unique = 0xabcull,
    };
    struct hbuf b = { 0 };
    assert_int_equal(mime_build(&m, &b), 0);
    char *s = str(&b);
    assert_non_null(strstr(s, "From: \"A, B\" <f@a.test>\r\n"));
    assert_non_null(strstr(s, "To: t@b.test\r\n"));
    assert_non_null(strstr(s, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
    assert_non_null(strstr(s, "Message-ID: <0000000000000abc."));
    assert_non_null(strstr(s, "MIME-Version: 1.0\r\n"));
    assert_non_null(strstr(s, "Content-Type: multipart/mixed; boundary=\"=_vlm0000000000000abc\""));
    assert_non_null(strstr(s, "Content-Type: multipart/alternative;"));
    /* "=_" in a 7bit-able text forces quoted-printable: no boundary look-alike */
    char *plain = strstr(s, "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    assert_non_null(plain);
    assert_non_null(strstr(plain, "with =3D_ inside"));
    assert_non_null(strstr(s, "Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>caf=C3=A9</p>"));
    assert_non_null(strstr(s, "\r\n--=_vlm0000000000000abc--\r\n"));
    for (size_t i = 0; i < b.len; i++)      /* no bare LF */
        assert_true(s[i] != '\n' || (i > 0 && s[i - 1] == '\r'));
    for (size_t i = 0; i < b.len; i++)
        assert_true((unsigned char)s[i] < 128);
    free(s);
    hbuf_fini(&b);
    hbuf_fini(&att);
    /* a cap too small for the message: VL_E_TOOBIG, never more than the cap */
    struct hbuf small = { .max = 100 };
    m.att_count = 0;
    assert_int_equal(mime_build(&m, &small), VL_E_TOOBIG);
    assert_true(small.len <= 100);
    hbuf_fini(&small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_decode),
        cmocka_unit_test(test_attachment_round_trip),
        cmocka_unit_test(test_encoded_words),
        cmocka_unit_test(test_build_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
