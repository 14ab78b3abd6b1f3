/*
 * smtp_cmd.c - SMTP command formatting. Pure.
 * Invariants: output is one line ending CRLF, <= VL_SMTP_CMD_LINE_BYTES_MAX;
 * paths pass vl_addr_parse(), names vl_domain_check(), parameters xtext, so
 * no CR, LF, NUL or other control reaches the output from an argument.
 * Diagnostics: none; callers map the negative codes.
 */
#include "smtp_cmd.h"

#include <stdio.h>
#include <string.h>

#include "volley/addr.h"
#include "volley/error.h"
#include "volley/limits.h"

struct cmd_buf {
    char *p;
    size_t len, cap;
    int err;
};

static void cmd_init(struct cmd_buf *b, char *out, size_t cap)
{
    b->p = out;
    b->len = 0;
    b->cap = cap < VL_SMTP_CMD_LINE_BYTES_MAX ? cap : VL_SMTP_CMD_LINE_BYTES_MAX;
    b->err = 0;
}

static void cmd_put(struct cmd_buf *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (n > b->cap - b->len) {
        b->err = VL_E_TOOBIG;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void cmd_puts(struct cmd_buf *b, const char *s)
{
    cmd_put(b, s, strlen(s));
}

static void cmd_xtext(struct cmd_buf *b, const char *s, size_t n)
{
    if (b->err)
        return;
    int rc = smtp_xtext_encode(b->p + b->len, b->cap - b->len, s, n);
    if (rc < 0)
        b->err = rc;
    else
        b->len += (size_t)rc;
}

static int cmd_finish(struct cmd_buf *b)
{
    cmd_put(b, "\r\n", 2);
    if (b->err)
        return b->err;
    vl_assert(b->len <= VL_SMTP_CMD_LINE_BYTES_MAX);
    vl_assert_debug(memchr(b->p, '\n', b->len - 1) == NULL);
    return (int)b->len;
}

int smtp_xtext_encode(char *out, size_t cap, const char *in, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c == 0x7f)
            return VL_E_INVALID;
        if (c > ' ' && c < 0x7f && c != '+' && c != '=') {
            if (o + 1 > cap)
                return VL_E_TOOBIG;
            out[o++] = (char)c;
        } else {
            if (o + 3 > cap)
                return VL_E_TOOBIG;
            out[o++] = '+';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return (int)o;
}

static int cmd_hello(char *out, size_t cap, const char *verb, const char *name, size_t n)
{
    if (name == NULL || vl_domain_check(name, n, NULL) < 0)
        return VL_E_INVALID;
    struct cmd_buf b;
    cmd_init(&b, out, cap);
    cmd_puts(&b, verb);
    cmd_put(&b, name, n);
    return cmd_finish(&b);
}

int smtp_cmd_ehlo(char *out, size_t cap, const char *name, size_t name_len)
{
    return cmd_hello(out, cap, "EHLO ", name, name_len);
}

int smtp_cmd_helo(char *out, size_t cap, const char *name, size_t name_len)
{
    return cmd_hello(out, cap, "HELO ", name, name_len);
}

int smtp_cmd_mail(char *out, size_t cap, const struct smtp_cmd_mail *m)
{
    if (m->path_len > 0 && vl_addr_parse(m->path, m->path_len, NULL, NULL) < 0)
        return VL_E_INVALID;
    if (m->ret != SMTP_RET_NONE && m->ret != SMTP_RET_FULL && m->ret != SMTP_RET_HDRS)
        return VL_E_INVALID;
    struct cmd_buf b;
    cmd_init(&b, out, cap);
    cmd_puts(&b, "MAIL FROM:<");
    cmd_put(&b, m->path, m->path_len);
    cmd_puts(&b, ">");
    if (m->size_set) {
        char num[32];
        int n = snprintf(num, sizeof num, " SIZE=%llu", (unsigned long long)m->size);
        cmd_put(&b, num, (size_t)n);
    }
    if (m->body_8bitmime)
        cmd_puts(&b, " BODY=8BITMIME");
    if (m->smtputf8)
        cmd_puts(&b, " SMTPUTF8");
    if (m->ret != SMTP_RET_NONE)
        cmd_puts(&b, m->ret == SMTP_RET_FULL ? " RET=FULL" : " RET=HDRS");
    if (m->envid) {
        if (m->envid_len == 0)
            return VL_E_INVALID;
        cmd_puts(&b, " ENVID=");
        cmd_xtext(&b, m->envid, m->envid_len);
    }
    return cmd_finish(&b);
}

static void cmd_notify(struct cmd_buf *b, uint32_t notify)
{
    static const char *const names[] = { "SUCCESS", "FAILURE", "DELAY" };
    cmd_puts(b, " NOTIFY=");
    if (notify & SMTP_NOTIFY_NEVER) {
        cmd_puts(b, "NEVER");
        return;
    }
    bool first = true;
    for (unsigned i = 0; i < 3; i++) {
        if (!(notify & (1u << i)))
            continue;
        if (!first)
            cmd_puts(b, ",");
        cmd_puts(b, names[i]);
        first = false;
    }
}

int smtp_cmd_rcpt(char *out, size_t cap, const struct smtp_cmd_rcpt *r)
{
    const uint32_t all = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY;
    if (r->path_len == 0 || vl_addr_parse(r->path, r->path_len, NULL, NULL) < 0)
        return VL_E_INVALID;
    if ((r->notify & ~(all | SMTP_NOTIFY_NEVER)) != 0 ||
        ((r->notify & SMTP_NOTIFY_NEVER) && (r->notify & all)))
        return VL_E_INVALID;
    struct cmd_buf b;
    cmd_init(&b, out, cap);
    cmd_puts(&b, "RCPT TO:<");
    cmd_put(&b, r->path, r->path_len);
    cmd_puts(&b, ">");
    if (r->notify)
        cmd_notify(&b, r->notify);
    if (r->orcpt && r->orcpt_len > 0) {
        cmd_puts(&b, " ORCPT=rfc822;");
        cmd_xtext(&b, r->orcpt, r->orcpt_len);
    }
    return cmd_finish(&b);
}

int smtp_cmd_simple(char *out, size_t cap, enum smtp_cmd_verb verb)
{
    const char *s;
    switch (verb) {
    case SMTP_CMD_DATA:     s = "DATA"; break;
    case SMTP_CMD_RSET:     s = "RSET"; break;
    case SMTP_CMD_QUIT:     s = "QUIT"; break;
    case SMTP_CMD_NOOP:     s = "NOOP"; break;
    case SMTP_CMD_STARTTLS: s = "STARTTLS"; break;
    default: return VL_E_INVALID;
    }
    struct cmd_buf b;
    cmd_init(&b, out, cap);
    cmd_puts(&b, s);
    return cmd_finish(&b);
}
