/*
 * dsn.c - build RFC 3464 delivery status notifications (see dsn.h).
 * Invariants: output lines end in CRLF and are at most 998 octets; remote text
 * is sanitised; the header block of the original is copied, never its body.
 */
#include "dsn.h"
#include "utf8.h"

#include "volley/error.h"
#include "volley/limits.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DSN_FOLD_BYTES 900u          /* fold long field values well under 998 */
#define DSN_FIXED_BYTES_MAX 4096u    /* headers, part headers, per-message fields */
#define DSN_RCPT_BYTES_MAX (2u * VL_DIAG_TEXT_BYTES_MAX + 2048u)

struct dsn_out { char *p; size_t len, cap; bool overflow; };

static void dsn_put(struct dsn_out *o, const char *s, size_t n)
{
    if (o->overflow || o->len + n > o->cap) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void dsn_puts(struct dsn_out *o, const char *s) { dsn_put(o, s, strlen(s)); }

static void dsn_printf(struct dsn_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dsn_printf(struct dsn_out *o, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line) {
        o->overflow = true;
        return;
    }
    dsn_put(o, line, (size_t)n);
}

/* "Name: value" with the value folded every DSN_FOLD_BYTES (value has no CR/LF). */
static void dsn_field_folded(struct dsn_out *o, const char *name, const char *value)
{
    size_t n = strlen(value);
    dsn_put(o, name, strlen(name));
    dsn_put(o, ": ", 2);
    for (size_t off = 0; off < n; off += DSN_FOLD_BYTES) {
        size_t k = n - off < DSN_FOLD_BYTES ? n - off : DSN_FOLD_BYTES;
        if (off)
            dsn_put(o, "\r\n ", 3);
        dsn_put(o, value + off, k);
    }
    dsn_put(o, "\r\n", 2);
}

void dsn_date(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

size_t dsn_sanitize(const char *text, char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text), len = 0;
    size_t max = cap - 1 < VL_DIAG_TEXT_BYTES_MAX ? cap - 1 : VL_DIAG_TEXT_BYTES_MAX;
    for (size_t i = 0; i < n && len < max;) {
        unsigned char c = s[i];
        if (c == '\r' || c == '\n' || c == '\t') {
            if (len > 0 && out[len - 1] != ' ')
                out[len++] = ' ';
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            i++;
        } else {
            size_t k = vl_utf8_seq_len(s + i, n - i);
            if (k == 0 || len + k > max) {
                i += k ? k : 1;
                continue;
            }
            memcpy(out + len, s + i, k);
            len += k;
            i += k;
        }
    }
    while (len > 0 && out[len - 1] == ' ')
        len--;
    out[len] = '\0';
    return len;
}

/* Length of the original's header block, without the blank line. */
static size_t dsn_orig_headers_len(const char *orig, size_t len)
{
    if (len >= 2 && orig[0] == '\r' && orig[1] == '\n')
        return 0;
    const char *end = memmem(orig, len, "\r\n\r\n", 4);
    return end ? (size_t)(end - orig) + 2 : len;
}

size_t dsn_size_max(const struct dsn_input *in)
{
    return DSN_FIXED_BYTES_MAX + (size_t)in->rcpt_count * DSN_RCPT_BYTES_MAX
           + dsn_orig_headers_len(in->orig, in->orig_len) + 16;
}

static const char *dsn_action_name(enum dsn_action a)
{
    switch (a) {
    case DSN_ACTION_FAILED:    return "failed";
    case DSN_ACTION_DELAYED:   return "delayed";
    case DSN_ACTION_DELIVERED: return "delivered";
    case DSN_ACTION_RELAYED:   return "relayed";
    }
    vl_panic("bad dsn action %d", (int)a);
}

static void dsn_diag_value(const struct dsn_rcpt *r, char *out, size_t cap)
{
    char clean[VL_DIAG_TEXT_BYTES_MAX + 1];
    dsn_sanitize(r->diag ? r->diag : "", clean, sizeof clean);
    if (r->code > 0)
        snprintf(out, cap, "smtp; %d %s", r->code, clean);
    else
        snprintf(out, cap, "X-volley; %s", clean[0] ? clean : "local decision");
}

static void dsn_human_part(struct dsn_out *o, const struct dsn_input *in, bool delayed)
{
    dsn_printf(o, "Content-Type: text/plain; charset=utf-8\r\n"
                  "Content-Description: Notification\r\n\r\n"
                  "This is the mail system at host %s.\r\n\r\n", in->reporting_mta);
    if (delayed)
        dsn_puts(o, "Your message has not been delivered yet to the recipients below;\r\n"
                   "delivery will be retried. You do not need to resend it.\r\n\r\n");
    else
        dsn_puts(o, "Your message could not be delivered to the recipients below.\r\n"
                   "This is a permanent error; it will not be retried.\r\n\r\n");
    for (unsigned i = 0; i < in->rcpt_count; i++) {
        const struct dsn_rcpt *r = &in->rcpts[i];
        char diag[VL_DIAG_TEXT_BYTES_MAX + 64], line[VL_DIAG_TEXT_BYTES_MAX + 400];
        dsn_diag_value(r, diag, sizeof diag);
        snprintf(line, sizeof line, "<%s>: %s (%s)", r->addr, r->status, diag);
        dsn_field_folded(o, "Recipient", line);
    }
}

static void dsn_status_part(struct dsn_out *o, const struct dsn_input *in)
{
    char date[64];
    dsn_printf(o, "Content-Type: message/delivery-status\r\n"
                  "Content-Description: Delivery report\r\n\r\n"
                  "Reporting-MTA: dns; %s\r\n", in->reporting_mta);
    if (in->envid)
        dsn_printf(o, "Original-Envelope-Id: %s\r\n", in->envid);
    dsn_date(in->arrival_ms, date, sizeof date);
    dsn_printf(o, "Arrival-Date: %s\r\n", date);
    for (unsigned i = 0; i < in->rcpt_count; i++) {
        const struct dsn_rcpt *r = &in->rcpts[i];
        dsn_printf(o, "\r\nFinal-Recipient: rfc822; %s\r\n", r->addr);
        if (r->orcpt)
            dsn_printf(o, "Original-Recipient: rfc822; %s\r\n", r->orcpt);
        dsn_printf(o, "Action: %s\r\nStatus: %s\r\n", dsn_action_name(r->action), r->status);
        if (r->remote_mta)
            dsn_printf(o, "Remote-MTA: dns; %s\r\n", r->remote_mta);
        char diag[VL_DIAG_TEXT_BYTES_MAX + 64];
        dsn_diag_value(r, diag, sizeof diag);
        dsn_field_folded(o, "Diagnostic-Code", diag);
        if (r->last_attempt_ms) {
            dsn_date(r->last_attempt_ms, date, sizeof date);
            dsn_printf(o, "Last-Attempt-Date: %s\r\n", date);
        }
        if (r->retry_until_ms) {
            dsn_date(r->retry_until_ms, date, sizeof date);
            dsn_printf(o, "Will-Retry-Until: %s\r\n", date);
        }
        if (r->category)
            dsn_printf(o, "X-Bounce-Category: %s\r\n", r->category);
    }
}

long dsn_build(const struct dsn_input *in, char *out, size_t cap)
{
    if (in->rcpt_count == 0 || !in->return_path || !in->return_path[0])
        return VL_E_INVALID;
    struct dsn_out o = { out, 0, cap, false };
    bool delayed = in->rcpts[0].action == DSN_ACTION_DELAYED;
    char date[64], boundary[64];
    dsn_date(in->now_ms, date, sizeof date);
    snprintf(boundary, sizeof boundary, "=_volley_%016llx_%lld",
             (unsigned long long)in->unique, (long long)in->now_ms);
    dsn_printf(&o, "From: Mail Delivery System <%s>\r\n", in->postmaster);
    dsn_printf(&o, "To: <%s>\r\n", in->return_path);
    dsn_printf(&o, "Subject: %s\r\n", delayed ? "Delayed Mail (still being retried)"
                                             : "Undelivered Mail Returned to Sender");
    dsn_printf(&o, "Date: %s\r\n", date);
    dsn_printf(&o, "Message-ID: <dsn.%016llx.%lld@%s>\r\n", (unsigned long long)in->unique,
               (long long)in->now_ms, in->reporting_mta);
    dsn_printf(&o, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                   " boundary=\"%s\"\r\n\r\n"
                   "This is a MIME-encapsulated message.\r\n\r\n--%s\r\n", boundary, boundary);
    dsn_human_part(&o, in, delayed);
    dsn_printf(&o, "\r\n--%s\r\n", boundary);
    dsn_status_part(&o, in);
    dsn_printf(&o, "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n"
                   "Content-Description: Message headers\r\n\r\n", boundary);
    dsn_put(&o, in->orig, dsn_orig_headers_len(in->orig, in->orig_len));
    dsn_printf(&o, "\r\n--%s--\r\n", boundary);
    if (o.overflow)
        return VL_E_TOOBIG;
    return (long)o.len;
}

/* An octet > 127 anywhere: the DSN needs BODY=8BITMIME (original headers and
 * diagnostic text may be UTF-8). */
static bool dsn_is_8bit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] > 127)
            return true;
    return false;
}

int dsn_for_message(const struct vl_queue_msg *m, const char *reporting_mta,
                    const struct dsn_rcpt *rcpts, unsigned rcpt_count, int64_t now_ms,
                    uint64_t unique, char **body, const char **rcpt_slot,
                    struct vl_queue_new_msg *out)
{
    char postmaster[VL_SMTP_DOMAIN_BYTES_MAX + sizeof "postmaster@"];
    snprintf(postmaster, sizeof postmaster, "postmaster@%s", reporting_mta);
    struct dsn_input in = {
        .reporting_mta = reporting_mta, .postmaster = postmaster,
        .return_path = m->return_path, .arrival_ms = (int64_t)m->created_ms,
        .now_ms = now_ms, .orig = (const char *)m->body, .orig_len = m->body_len,
        .rcpts = rcpts, .rcpt_count = rcpt_count, .unique = unique,
    };
    size_t cap = dsn_size_max(&in);
    *body = malloc(cap);
    long len = *body ? dsn_build(&in, *body, cap) : -ENOMEM;
    if (len < 0) {
        free(*body);
        *body = NULL;
        return (int)len;
    }
    *rcpt_slot = m->return_path;
    *out = (struct vl_queue_new_msg){
        .return_path = "", .return_path_len = 0, .body = *body, .body_len = (size_t)len,
        .flags = dsn_is_8bit(*body, (size_t)len) ? VL_QUEUE_MSG_8BIT : 0,
        .rcpts = rcpt_slot, .rcpt_count = 1,
    };
    return 0;
}
