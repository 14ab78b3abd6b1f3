/*
 * http_req.h - an InjectV1 request (KumoMTA-compatible JSON body of POST
 * /api/inject/v1), parsed and fully validated before anything is queued.
 *
 * Fields: envelope_sender (mailbox, or "" for the null path); content: a raw
 * RFC 5322 string (a template as a whole) or a builder {subject, from {email,
 * name}, reply_to (email string or {email, name}), headers {name: value},
 * text_body, html_body, attachments [{data, content_type, file_name,
 * base64}]}; recipients [{email, name, substitutions}]; substitutions;
 * campaign (issue 15: 1-64 of [A-Za-z0-9._:-], becomes the builder's
 * X-Volley-Campaign header, which delivery strips; with raw content, put the
 * header in the message instead).
 * Unknown fields, wrong types, bad addresses, bad templates, bad base64,
 * non-scalar substitution values: a parse error naming the field (as a JSON
 * path, e.g. "recipients[3].email") and, where there is one, the recipient
 * index. Templates are parsed here, once per request.
 */
#ifndef VOLLEY_HTTP_REQ_H
#define VOLLEY_HTTP_REQ_H

#include "http_buf.h"
#include "http_mime.h"
#include "http_tmpl.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define HREQ_RCPTS_MAX     100000u   /* policy: recipients per request */
#define HREQ_HEADERS_MAX       64u   /* policy: builder headers */
#define HREQ_ATTACH_MAX        32u   /* policy: attachments */
#define HREQ_SUBST_BYTES_MAX 65536u  /* policy: one substitution value */

struct hreq_rcpt {
    const char *email;        /* validated mailbox (borrowed from the JSON tree) */
    size_t email_len;
    const char *name;         /* NULL: none */
    size_t name_len;
    json_t *subs;             /* object or NULL */
};

struct hreq_hdr {
    const char *name;
    struct tmpl val;
};

struct hreq {
    json_t *root;
    const char *env_from;
    size_t env_from_len;
    bool raw;                 /* content is a raw message (raw_t) */
    bool per_rcpt;            /* bodies differ per recipient (fields, or a To: per rcpt) */
    bool smtputf8;            /* an address needs SMTPUTF8 */
    struct tmpl_names names;
    struct tmpl raw_t;
    struct tmpl subject, text, html;
    bool has_subject, has_text, has_html;
    struct mime_str from_email, from_name, reply_email, reply_name;
    size_t nhdr;
    struct hreq_hdr hdr[HREQ_HEADERS_MAX];
    size_t natt;
    struct hbuf att[HREQ_ATTACH_MAX];   /* prebuilt MIME parts */
    size_t nrcpt;
    struct hreq_rcpt *rcpt;
    json_t *subs;             /* top-level object or NULL */
    int var_email, var_name;  /* predefined fields' name indices, -1 if unused */
};

struct hreq_err {
    char field[160];          /* JSON path of the bad field ("" = the body) */
    long rcpt;                /* recipient index, -1 if none */
    char why[256];
};

/** Parse and validate @p len bytes of JSON at @p body into @p r (zeroed by
 *  the call; hreq_fini() frees it, also after a failure).
 *  @return 0, VL_E_INVALID or VL_E_TOOBIG with @p e filled, -ENOMEM. */
int hreq_parse(const char *body, size_t len, struct hreq *r, struct hreq_err *e);

void hreq_fini(struct hreq *r);

#endif
