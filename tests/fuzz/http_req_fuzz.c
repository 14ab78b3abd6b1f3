/*
 * http_req_fuzz.c - the HTTP API's request parser, templates and MIME
 * builder (engine/http/http_req.h, http_tmpl.h, http_mime.h).
 *
 * Input: a POST /api/inject/v1 body. Invariants: a refused request names a
 * reason; an accepted one has 1.. recipients whose addresses are valid
 * mailboxes; every builder message, rendered with each merge field set to a
 * value holding non-ASCII, markup and a line break in the body, is 7-bit
 * clean (encoded words, quoted-printable, base64; UTF-8 only when an address
 * needs SMTPUTF8) with CRLF line ends only, and stays within its buffer's cap.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "http_mime.h"
#include "http_req.h"
#include "http_tmpl.h"
#include "volley/addr.h"
#include "volley/error.h"

#define FUZZ_MSG_CAP (1u << 20)

/* @p utf8_addrs: an address of the request needs SMTPUTF8, so its UTF-8
 * appears as is in the address headers (RFC 6532 3.2: an internationalised
 * address cannot be an encoded word); the message then goes out with
 * SMTPUTF8 (the queue flag) and only 8-bit octets are allowed. */
static void check_clean(const struct hbuf *b, bool utf8_addrs)
{
    for (size_t i = 0; i < b->len; i++) {
        unsigned char c = (unsigned char)b->p[i];
        FUZZ_CHECK(c < 128 || utf8_addrs);
        if (c == '\n')
            FUZZ_CHECK(i > 0 && b->p[i - 1] == '\r');
        if (c == '\r')
            FUZZ_CHECK(i + 1 < b->len && b->p[i + 1] == '\n');
    }
}

static int render(const struct tmpl *t, const struct tmpl_val *v, enum tmpl_esc esc,
                  struct hbuf *out)
{
    int miss = -1;
    out->len = 0;
    out->max = FUZZ_MSG_CAP;
    int rc = tmpl_render(t, v, esc, out, &miss);
    FUZZ_CHECK(rc == 0 || rc == VL_E_TOOBIG || (rc == VL_E_NOTFOUND && miss >= 0));
    FUZZ_CHECK(out->len <= FUZZ_MSG_CAP);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hreq *r = calloc(1, sizeof *r);
    struct hreq_err e;
    if (!r)
        return 0;
    int rc = hreq_parse((const char *)data, size, r, &e);
    if (rc < 0) {
        FUZZ_CHECK(rc == VL_E_INVALID || rc == VL_E_TOOBIG || rc == -ENOMEM);
        FUZZ_CHECK(rc == -ENOMEM || e.why[0] != '\0');
        hreq_fini(r);
        free(r);
        return 0;
    }
    FUZZ_CHECK(r->nrcpt >= 1 && r->nrcpt <= HREQ_RCPTS_MAX);
    struct vl_addr a;
    for (size_t i = 0; i < r->nrcpt; i++)
        FUZZ_CHECK(vl_addr_parse(r->rcpt[i].email, r->rcpt[i].email_len, &a, NULL) == 0);
    static struct tmpl_val vals[TMPL_NAMES_MAX];
    static const char V[] = "Gr\xc3\xbc\xc3\x9f <b>&\"'\n=_ x";
    for (size_t k = 0; k < TMPL_NAMES_MAX; k++)
        vals[k] = (struct tmpl_val){ V, sizeof V - 1, true };
    if (!r->raw) {
        struct hbuf subj = { 0 }, text = { 0 }, html = { 0 }, hv[HREQ_HEADERS_MAX], msg = { 0 };
        struct mime_hdr hdrs[HREQ_HEADERS_MAX];
        memset(hv, 0, sizeof hv);
        bool ok = true;
        size_t nh = 0;
        if (r->has_subject)
            ok &= render(&r->subject, vals, TMPL_RAW, &subj) == 0;
        if (r->has_text)
            ok &= render(&r->text, vals, TMPL_RAW, &text) == 0;
        if (r->has_html)
            ok &= render(&r->html, vals, TMPL_HTML, &html) == 0;
        for (size_t k = 0; k < r->nhdr; k++) {
            ok &= render(&r->hdr[k].val, vals, TMPL_RAW, &hv[k]) == 0;
            /* a value with a line break is refused per recipient; so here */
            ok &= !hv[k].len || !memchr(hv[k].p, '\n', hv[k].len);
            hdrs[nh++] = (struct mime_hdr){ r->hdr[k].name, { hv[k].p ? hv[k].p : "",
                                                                hv[k].len } };
        }
        ok &= !subj.len || !memchr(subj.p, '\n', subj.len);
        if (ok) {
            struct mime_msg m = {
                .from_email = r->from_email, .from_name = r->from_name,
                .to_email = { r->rcpt[0].email, r->rcpt[0].email_len },
                .to_name = { r->rcpt[0].name, r->rcpt[0].name_len },
                .reply_to_email = r->reply_email, .reply_to_name = r->reply_name,
                .subject = r->has_subject ? (struct mime_str){ subj.p ? subj.p : "", subj.len }
                                          : (struct mime_str){ NULL, 0 },
                .hdrs = hdrs, .hdr_count = nh,
                .text = r->has_text ? (struct mime_str){ text.p ? text.p : "", text.len }
                                    : (struct mime_str){ NULL, 0 },
                .html = r->has_html ? (struct mime_str){ html.p ? html.p : "", html.len }
                                    : (struct mime_str){ NULL, 0 },
                .atts = r->att, .att_count = r->natt, .now_ms = 1700000000000ull,
                .hostname = "fuzz.example", .unique = 42,
            };
            msg.max = 4 * FUZZ_MSG_CAP;
            rc = mime_build(&m, &msg);
            FUZZ_CHECK(rc == 0 || rc == VL_E_TOOBIG);
            FUZZ_CHECK(msg.len <= msg.max);
            if (rc == 0)
                check_clean(&msg, r->smtputf8);
        }
        hbuf_fini(&subj);
        hbuf_fini(&text);
        hbuf_fini(&html);
        hbuf_fini(&msg);
        for (size_t k = 0; k < HREQ_HEADERS_MAX; k++)
            hbuf_fini(&hv[k]);
    } else {
        struct hbuf out = { 0 };
        render(&r->raw_t, vals, TMPL_RAW, &out);
        hbuf_fini(&out);
    }
    hreq_fini(r);
    free(r);
    return 0;
}
