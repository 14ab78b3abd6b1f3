/*
 * http_req.c - parse and validate an InjectV1 request (see http_req.h).
 * Invariant: after hreq_parse() returns 0 every address is valid, every
 * template parsed, every attachment decoded and encoded, and every
 * substitution value a string, number, boolean or null: rendering can fail
 * only per recipient (a missing field, a line break put in a header, size).
 */
#include "http_req.h"

#include "volley/addr.h"
#include "volley/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int req_err(struct hreq_err *e, const char *field, long rcpt, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int req_err(struct hreq_err *e, const char *field, long rcpt, const char *fmt, ...)
{
    snprintf(e->field, sizeof e->field, "%s", field);
    e->rcpt = rcpt;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->why, sizeof e->why, fmt, ap);
    va_end(ap);
    return VL_E_INVALID;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* Every key of @p obj is in @p allowed (NULL-terminated). */
static int check_keys(const json_t *obj, const char *const *allowed, const char *path, long rcpt,
                      struct hreq_err *e)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(k, allowed[i]);
        if (!ok) {
            char f[160];
            snprintf(f, sizeof f, "%s%s%s", path, *path ? "." : "", k);
            return req_err(e, f, rcpt, "unknown field");
        }
    }
    return 0;
}

static int want_string(const json_t *v, const char *field, long rcpt, struct hreq_err *e)
{
    return json_is_string(v) ? 0 : req_err(e, field, rcpt, "expected a string, got %s",
                                       type_name(v));
}

static int check_addr(const json_t *v, const char *field, long rcpt, bool null_ok, bool *utf8,
                      struct hreq_err *e)
{
    if (want_string(v, field, rcpt, e) < 0)
        return VL_E_INVALID;
    size_t n = json_string_length(v);
    if (null_ok && n == 0)
        return 0;
    struct vl_addr a;
    const char *why = NULL;
    if (vl_addr_parse(json_string_value(v), n, &a, &why) < 0)
        return req_err(e, field, rcpt, "invalid address '%.100s': %s", json_string_value(v),
                   why ? why : "not an RFC 5321 mailbox");
    *utf8 |= a.utf8;
    return 0;
}

static int parse_subs(const json_t *obj, const char *path, long rcpt, struct hreq_err *e)
{
    if (!json_is_object(obj))
        return req_err(e, path, rcpt, "expected an object, got %s", type_name(obj));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        char f[160];
        snprintf(f, sizeof f, "%s.%s", path, k);
        if (json_is_object(v) || json_is_array(v))
            return req_err(e, f, rcpt, "a substitution value must be a string, number, boolean "
                       "or null, got %s", type_name(v));
        if (json_is_string(v) && json_string_length(v) > HREQ_SUBST_BYTES_MAX)
            return req_err(e, f, rcpt, "substitution value over %u bytes", HREQ_SUBST_BYTES_MAX);
    }
    return 0;
}

static int parse_tmpl(struct hreq *r, const json_t *v, const char *field, bool header,
                      struct tmpl *t, struct hreq_err *e)
{
    if (want_string(v, field, -1, e) < 0)
        return VL_E_INVALID;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (header && (memchr(s, '\r', n) || memchr(s, '\n', n)))
        return req_err(e, field, -1, "a header value must not contain CR or LF");
    const char *why = "invalid";
    size_t off = 0;
    int rc = tmpl_parse(t, s, n, &r->names, &why, &off);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        req_err(e, field, -1, "template error at byte %zu: %s", off, why);
        return rc;
    }
    return 0;
}

/* {email, name} or a bare email string (reply_to). */
static int parse_mailbox(struct hreq *r, const json_t *v, const char *field, bool string_ok,
                         struct mime_str *email, struct mime_str *name, struct hreq_err *e)
{
    char f[160];
    const json_t *ev = v, *nv = NULL;
    if (!(string_ok && json_is_string(v))) {
        if (!json_is_object(v))
            return req_err(e, field, -1, "expected %s, got %s",
                       string_ok ? "an address or {email, name}" : "an object {email, name}",
                       type_name(v));
        static const char *const keys[] = { "email", "name", NULL };
        if (check_keys(v, keys, field, -1, e) < 0)
            return VL_E_INVALID;
        ev = json_object_get(v, "email");
        nv = json_object_get(v, "name");
        snprintf(f, sizeof f, "%s.email", field);
        if (!ev)
            return req_err(e, f, -1, "missing");
    } else {
        snprintf(f, sizeof f, "%s", field);
    }
    if (check_addr(ev, f, -1, false, &r->smtputf8, e) < 0)
        return VL_E_INVALID;
    email->p = json_string_value(ev);
    email->len = json_string_length(ev);
    if (nv && !json_is_null(nv)) {
        snprintf(f, sizeof f, "%s.name", field);
        if (want_string(nv, f, -1, e) < 0)
            return VL_E_INVALID;
        name->p = json_string_value(nv);
        name->len = json_string_length(nv);
        if (memchr(name->p, '\r', name->len) || memchr(name->p, '\n', name->len))
            return req_err(e, f, -1, "must not contain CR or LF");
    }
    return 0;
}

static bool ctype_ok(const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || !slash[1])
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 32 || (unsigned char)*s > 126)
            return false;
    return true;
}

static int parse_attachment(struct hreq *r, const json_t *a, size_t i, struct hreq_err *e)
{
    char path[64], f[96];
    snprintf(path, sizeof path, "content.attachments[%zu]", i);
    if (!json_is_object(a))
        return req_err(e, path, -1, "expected an object, got %s", type_name(a));
    static const char *const keys[] = { "data", "content_type", "file_name", "base64", NULL };
    if (check_keys(a, keys, path, -1, e) < 0)
        return VL_E_INVALID;
    const json_t *data = json_object_get(a, "data"), *ct = json_object_get(a, "content_type");
    const json_t *fn = json_object_get(a, "file_name"), *b64 = json_object_get(a, "base64");
    snprintf(f, sizeof f, "%s.data", path);
    if (!data)
        return req_err(e, f, -1, "missing");
    if (want_string(data, f, -1, e) < 0)
        return VL_E_INVALID;
    snprintf(f, sizeof f, "%s.base64", path);
    if (b64 && !json_is_boolean(b64))
        return req_err(e, f, -1, "expected a boolean, got %s", type_name(b64));
    const char *ctype = "application/octet-stream", *fname = NULL;
    if (ct) {
        snprintf(f, sizeof f, "%s.content_type", path);
        if (want_string(ct, f, -1, e) < 0)
            return VL_E_INVALID;
        ctype = json_string_value(ct);
        if (!ctype_ok(ctype))
            return req_err(e, f, -1, "expected type/subtype[; params] in printable ASCII");
    }
    if (fn && !json_is_null(fn)) {
        snprintf(f, sizeof f, "%s.file_name", path);
        if (want_string(fn, f, -1, e) < 0)
            return VL_E_INVALID;
        fname = json_string_value(fn);
        if (strpbrk(fname, "\r\n") || strlen(fname) > 255)
            return req_err(e, f, -1, "must be at most 255 bytes without CR or LF");
    }
    const uint8_t *raw = (const uint8_t *)json_string_value(data);
    size_t raw_len = json_string_length(data);
    uint8_t *dec = NULL;
    if (!b64 || json_is_true(b64)) {
        int rc = mime_b64_decode(json_string_value(data), json_string_length(data), &dec,
                                 &raw_len);
        if (rc == -ENOMEM)
            return rc;
        if (rc < 0) {
            snprintf(f, sizeof f, "%s.data", path);
            return req_err(e, f, -1, "invalid base64");
        }
        raw = dec;
    }
    int rc = mime_attachment_part(raw, raw_len, ctype, fname, &r->att[i]);
    free(dec);
    if (rc == VL_E_TOOBIG) {
        snprintf(f, sizeof f, "%s.file_name", path);
        return req_err(e, f, -1, "too long once encoded");
    }
    return rc;
}

static const char *const FORBIDDEN_HDRS[] = { "Content-Type", "Content-Transfer-Encoding",
                                              "MIME-Version", "Bcc", "Return-Path", NULL };

static int parse_headers(struct hreq *r, const json_t *h, struct hreq_err *e)
{
    if (!json_is_object(h))
        return req_err(e, "content.headers", -1, "expected an object, got %s", type_name(h));
    if (json_object_size(h) > HREQ_HEADERS_MAX)
        return req_err(e, "content.headers", -1, "more than %u headers", HREQ_HEADERS_MAX);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)h, k, v) {
        char f[160];
        snprintf(f, sizeof f, "content.headers.%s", k);
        if (!mime_field_name_ok(k) || strlen(k) > 76)
            return req_err(e, f, -1, "not a valid header field name");
        for (size_t i = 0; FORBIDDEN_HDRS[i]; i++)
            if (!strcasecmp(k, FORBIDDEN_HDRS[i]))
                return req_err(e, f, -1, "set by the builder; not allowed in headers");
        struct hreq_hdr *hd = &r->hdr[r->nhdr];
        hd->name = k;
        int rc = parse_tmpl(r, v, f, true, &hd->val, e);
        if (rc < 0)
            return rc;
        r->nhdr++;
    }
    return 0;
}

/* "campaign" and "tenant" (issue 15): the builder's X-Volley-Campaign or
 * X-Volley-Tenant header (@p hdr; stripped at delivery,
 * engine/deliver/campaign.h), field @p f. NULL @p v: none. */
static int parse_id_field(struct hreq *r, const json_t *v, const char *f, const char *hdr,
                          struct hreq_err *e)
{
    if (!v)
        return 0;
    if (want_string(v, f, -1, e) < 0)
        return VL_E_INVALID;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > 64 || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789._:-") != n)
        return req_err(e, f, -1, "expected 1 to 64 of A-Z a-z 0-9 . _ : -");
    if (r->raw)
        return req_err(e, f, -1, !strcmp(f, "campaign")
                       ? "with raw content, put an X-Volley-Campaign header in the message"
                       : "with raw content, put an X-Volley-Tenant header in the message");
    for (size_t i = 0; i < r->nhdr; i++)
        if (!strcasecmp(r->hdr[i].name, hdr))
            return req_err(e, f, -1, "also given in content.headers");
    if (r->nhdr == HREQ_HEADERS_MAX)
        return req_err(e, f, -1, "no room: content.headers is full");
    struct hreq_hdr *hd = &r->hdr[r->nhdr];
    hd->name = hdr;
    int rc = parse_tmpl(r, v, f, true, &hd->val, e);
    if (rc == 0)
        r->nhdr++;
    return rc;
}

static int parse_builder(struct hreq *r, const json_t *c, struct hreq_err *e)
{
    static const char *const keys[] = { "subject", "from", "reply_to", "headers", "text_body",
                                        "html_body", "attachments", NULL };
    if (check_keys(c, keys, "content", -1, e) < 0)
        return VL_E_INVALID;
    const json_t *v;
    int rc = 0;
    if ((v = json_object_get(c, "subject")) && (rc = parse_tmpl(r, v, "content.subject", true,
                                                                &r->subject, e)) == 0)
        r->has_subject = true;
    if (rc == 0 && (v = json_object_get(c, "from")))
        rc = parse_mailbox(r, v, "content.from", false, &r->from_email, &r->from_name, e);
    if (rc == 0 && (v = json_object_get(c, "reply_to")))
        rc = parse_mailbox(r, v, "content.reply_to", true, &r->reply_email, &r->reply_name, e);
    if (rc == 0 && (v = json_object_get(c, "headers")))
        rc = parse_headers(r, v, e);
    if (rc == 0 && (v = json_object_get(c, "text_body")) &&
        (rc = parse_tmpl(r, v, "content.text_body", false, &r->text, e)) == 0)
        r->has_text = true;
    if (rc == 0 && (v = json_object_get(c, "html_body")) &&
        (rc = parse_tmpl(r, v, "content.html_body", false, &r->html, e)) == 0)
        r->has_html = true;
    if (rc == 0 && (v = json_object_get(c, "attachments"))) {
        if (!json_is_array(v))
            return req_err(e, "content.attachments", -1, "expected an array, got %s",
                       type_name(v));
        if (json_array_size(v) > HREQ_ATTACH_MAX)
            return req_err(e, "content.attachments", -1, "more than %u attachments",
                       HREQ_ATTACH_MAX);
        for (size_t i = 0; rc == 0 && i < json_array_size(v); i++) {
            rc = parse_attachment(r, json_array_get(v, i), i, e);
            r->natt = i + 1;
        }
    }
    return rc;
}

static int parse_rcpt(struct hreq *r, const json_t *o, size_t i, struct hreq_err *e)
{
    char path[64], f[96];
    long ri = (long)i;
    snprintf(path, sizeof path, "recipients[%zu]", i);
    if (!json_is_object(o))
        return req_err(e, path, ri, "expected an object, got %s", type_name(o));
    static const char *const keys[] = { "email", "name", "substitutions", NULL };
    if (check_keys(o, keys, path, ri, e) < 0)
        return VL_E_INVALID;
    const json_t *em = json_object_get(o, "email"), *nm = json_object_get(o, "name");
    json_t *subs = json_object_get(o, "substitutions");
    snprintf(f, sizeof f, "%s.email", path);
    if (!em)
        return req_err(e, f, ri, "missing");
    if (check_addr(em, f, ri, false, &r->smtputf8, e) < 0)
        return VL_E_INVALID;
    struct hreq_rcpt *rc = &r->rcpt[i];
    rc->email = json_string_value(em);
    rc->email_len = json_string_length(em);
    if (nm && !json_is_null(nm)) {
        snprintf(f, sizeof f, "%s.name", path);
        if (want_string(nm, f, ri, e) < 0)
            return VL_E_INVALID;
        rc->name = json_string_value(nm);
        rc->name_len = json_string_length(nm);
        if (memchr(rc->name, '\r', rc->name_len) || memchr(rc->name, '\n', rc->name_len))
            return req_err(e, f, ri, "must not contain CR or LF");
    }
    if (subs && !json_is_null(subs)) {
        snprintf(f, sizeof f, "%s.substitutions", path);
        if (parse_subs(subs, f, ri, e) < 0)
            return VL_E_INVALID;
        rc->subs = subs;
    }
    return 0;
}

static int var_index(const struct tmpl_names *n, const char *name)
{
    for (size_t i = 0; i < n->n; i++)
        if (!strcmp(n->name[i], name))
            return (int)i;
    return -1;
}

int hreq_parse(const char *body, size_t len, struct hreq *r, struct hreq_err *e)
{
    memset(r, 0, sizeof *r);
    memset(e, 0, sizeof *e);
    e->rcpt = -1;
    json_error_t je;
    r->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!r->root)
        return req_err(e, "", -1, "bad JSON at line %d column %d: %s", je.line, je.column, je.text);
    if (!json_is_object(r->root))
        return req_err(e, "", -1, "expected a JSON object, got %s", type_name(r->root));
    static const char *const keys[] = { "envelope_sender", "content", "recipients",
                                        "substitutions", "campaign", "tenant", NULL };
    if (check_keys(r->root, keys, "", -1, e) < 0)
        return VL_E_INVALID;
    const json_t *from = json_object_get(r->root, "envelope_sender");
    const json_t *content = json_object_get(r->root, "content");
    const json_t *rcpts = json_object_get(r->root, "recipients");
    json_t *subs = json_object_get(r->root, "substitutions");
    if (!from)
        return req_err(e, "envelope_sender", -1, "missing");
    if (check_addr(from, "envelope_sender", -1, true, &r->smtputf8, e) < 0)
        return VL_E_INVALID;
    r->env_from = json_string_value(from);
    r->env_from_len = json_string_length(from);
    if (!content)
        return req_err(e, "content", -1, "missing");
    int rc;
    if (json_is_string(content)) {
        r->raw = true;
        if ((rc = parse_tmpl(r, content, "content", false, &r->raw_t, e)) < 0)
            return rc;
    } else if (json_is_object(content)) {
        if ((rc = parse_builder(r, content, e)) < 0)
            return rc;
    } else {
        return req_err(e, "content", -1, "expected a string (raw message) or an object (builder), "
                   "got %s", type_name(content));
    }
    if ((rc = parse_id_field(r, json_object_get(r->root, "campaign"), "campaign",
                             "X-Volley-Campaign", e)) < 0 ||
        (rc = parse_id_field(r, json_object_get(r->root, "tenant"), "tenant",
                             "X-Volley-Tenant", e)) < 0)
        return rc;
    if (subs && !json_is_null(subs)) {
        if (parse_subs(subs, "substitutions", -1, e) < 0)
            return VL_E_INVALID;
        r->subs = subs;
    }
    if (!rcpts)
        return req_err(e, "recipients", -1, "missing");
    if (!json_is_array(rcpts))
        return req_err(e, "recipients", -1, "expected an array, got %s", type_name(rcpts));
    size_t n = json_array_size(rcpts);
    if (n == 0)
        return req_err(e, "recipients", -1, "at least one recipient is needed");
    if (n > HREQ_RCPTS_MAX) {
        req_err(e, "recipients", -1, "more than %u recipients in one request", HREQ_RCPTS_MAX);
        return VL_E_TOOBIG;
    }
    r->rcpt = calloc(n, sizeof *r->rcpt);
    if (!r->rcpt)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++, r->nrcpt = i)
        if ((rc = parse_rcpt(r, json_array_get(rcpts, i), i, e)) < 0)
            return rc;
    r->nrcpt = n;
    r->var_email = var_index(&r->names, "email");
    r->var_name = var_index(&r->names, "name");
    bool to_fixed = false;
    for (size_t i = 0; i < r->nhdr; i++)
        to_fixed |= !strcasecmp(r->hdr[i].name, "To");
    r->per_rcpt = r->names.n > 0 || (!r->raw && !to_fixed);
    return 0;
}

void hreq_fini(struct hreq *r)
{
    tmpl_fini(&r->raw_t);
    tmpl_fini(&r->subject);
    tmpl_fini(&r->text);
    tmpl_fini(&r->html);
    for (size_t i = 0; i < HREQ_HEADERS_MAX; i++)
        tmpl_fini(&r->hdr[i].val);
    for (size_t i = 0; i < HREQ_ATTACH_MAX; i++)
        hbuf_fini(&r->att[i]);
    free(r->rcpt);
    if (r->root)
        json_decref(r->root);
    memset(r, 0, sizeof *r);
}
