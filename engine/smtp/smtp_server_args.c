/*
 * smtp_server_args.c - the arguments of MAIL and RCPT for the server machine
 * (smtp_server.c): the reverse/forward path and the ESMTP parameters (SIZE,
 * BODY, SMTPUTF8, RET, ENVID, NOTIFY, ORCPT). Pure: no I/O, no allocation.
 *
 * Invariants:
 *  - Parsing only reads the command line it is given; a path and its
 *    parameters are slices of that line, never copies.
 *  - A parameter is accepted only if the conf offers its extension; the first
 *    bad one proposes the reply (552 SIZE, 555 unknown, 501 syntax) and the
 *    command is not applied. The only state touched is SS_F_PEND_UTF8.
 */
#include "smtp_server.h"
#include "smtp_server_int.h"

#include "volley/error.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Case-insensitive equality of @p a (@p n bytes) with the upper-case @p lit. */
bool ss_ieq(const char *a, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = a[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c != lit[i])
            return false;
    }
    return true;
}

/* Parse "<path>" or a bare path at @p p (leading spaces allowed: "FROM: <a@b>"). */
int ss_path_parse(const char *p, size_t n, struct ss_path *out)
{
    size_t i = 0;
    while (i < n && p[i] == ' ')
        i++;
    if (i < n && p[i] == '<') {
        size_t start = ++i;
        bool quoted = false;
        for (; i < n; i++) {
            if (quoted && p[i] == '\\' && i + 1 < n)
                i++;
            else if (p[i] == '"')
                quoted = !quoted;
            else if (!quoted && p[i] == '>')
                break;
        }
        if (i >= n)
            return VL_E_INVALID;         /* no closing '>' */
        out->path = p + start;
        out->path_len = i - start;
        out->bracketed = true;
        i++;
    } else {
        size_t start = i;
        while (i < n && p[i] != ' ')
            i++;
        out->path = p + start;
        out->path_len = i - start;
        out->bracketed = false;
    }
    if (i < n && p[i] != ' ')
        return VL_E_INVALID;             /* junk glued to the path */
    if (out->path_len > 0 && out->path[0] == '@') {   /* source route: ignored (3.3) */
        const char *colon = memchr(out->path, ':', out->path_len);
        if (!colon || colon + 1 == out->path + out->path_len)
            return VL_E_INVALID;         /* "<@a:>" is not a null path */
        out->path_len -= (size_t)(colon + 1 - out->path);
        out->path = colon + 1;
    }
    out->params = p + i;
    out->params_len = n - i;
    return 0;
}

static bool ss_is_uhex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* RFC 3461 4: xtext is "!".."~" except "+" and "=", or "+" two uppercase hex digits. */
static bool ss_xtext_ok(const char *v, size_t n)
{
    if (n == 0 || n > 100)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '+') {
            if (i + 2 >= n || !ss_is_uhex(v[i + 1]) || !ss_is_uhex(v[i + 2]))
                return false;
            i += 2;
        } else if (c < 0x21 || c > 0x7e || c == '=') {
            return false;
        }
    }
    return true;
}

/* SIZE=n: 1 to 20 digits, no overflow. */
static bool ss_size_parse(const char *v, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *out = x;
    return true;
}

/* NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1). */
static bool ss_notify_ok(const char *v, size_t n)
{
    if (ss_ieq(v, n, "NEVER"))
        return true;
    size_t i = 0;
    while (i <= n) {
        const char *comma = memchr(v + i, ',', n - i);
        size_t e = comma ? (size_t)(comma - v) : n;
        if (!ss_ieq(v + i, e - i, "SUCCESS") && !ss_ieq(v + i, e - i, "FAILURE")
            && !ss_ieq(v + i, e - i, "DELAY"))
            return false;
        i = e + 1;
    }
    return true;
}

enum ss_param_rc { SP_OK, SP_SYNTAX, SP_UNKNOWN, SP_TOOBIG };

/* Check one MAIL (@p mail) or RCPT parameter KEY[=VALUE] against the conf. */
static enum ss_param_rc ss_param(struct smtp_server *s, bool mail, const char *k, size_t kn,
                                 const char *v, size_t vn, bool has_v)
{
    const struct smtp_server_conf *c = s->conf;
    for (size_t i = 0; i < vn; i++)
        if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] == 0x7f)
            return SP_SYNTAX;
    if (mail && ss_ieq(k, kn, "SIZE")) {
        uint64_t sz;
        if (!has_v || !ss_size_parse(v, vn, &sz))
            return SP_SYNTAX;
        return (c->size_max && sz > c->size_max) ? SP_TOOBIG : SP_OK;
    }
    if (mail && ss_ieq(k, kn, "BODY") && c->eightbitmime) {
        if (has_v && (ss_ieq(v, vn, "7BIT") || ss_ieq(v, vn, "8BITMIME")))
            return SP_OK;
        return SP_SYNTAX;
    }
    if (mail && ss_ieq(k, kn, "SMTPUTF8") && c->smtputf8) {
        if (has_v)
            return SP_SYNTAX;
        s->flags |= SS_F_PEND_UTF8;
        return SP_OK;
    }
    if (mail && ss_ieq(k, kn, "RET") && c->dsn)
        return has_v && (ss_ieq(v, vn, "FULL") || ss_ieq(v, vn, "HDRS")) ? SP_OK : SP_SYNTAX;
    if (mail && ss_ieq(k, kn, "ENVID") && c->dsn)
        return has_v && ss_xtext_ok(v, vn) ? SP_OK : SP_SYNTAX;
    if (!mail && ss_ieq(k, kn, "NOTIFY") && c->dsn)
        return has_v && ss_notify_ok(v, vn) ? SP_OK : SP_SYNTAX;
    if (!mail && ss_ieq(k, kn, "ORCPT") && c->dsn) {
        const char *semi = has_v ? memchr(v, ';', vn) : NULL;
        if (!semi || semi == v || !ss_xtext_ok(semi + 1, vn - (size_t)(semi + 1 - v)))
            return SP_SYNTAX;
        return SP_OK;
    }
    return SP_UNKNOWN;
}

/* Walk " KEY[=VALUE]..." and propose the reply of the first bad one; true if all ok. */
bool ss_params(struct smtp_server *s, bool mail, const char *p, size_t n,
                      struct smtp_server_event *ev)
{
    size_t i = 0;
    for (unsigned count = 0; i < n; count++) {
        while (i < n && p[i] == ' ')
            i++;
        if (i >= n)
            break;
        size_t start = i;
        while (i < n && p[i] != ' ')
            i++;
        const char *k = p + start;
        const char *eq = memchr(k, '=', i - start);
        size_t kn = eq ? (size_t)(eq - k) : i - start;
        const char *v = eq ? eq + 1 : k + kn;
        size_t vn = eq ? (size_t)(p + i - v) : 0;
        enum ss_param_rc rc = kn == 0 ? SP_SYNTAX : ss_param(s, mail, k, kn, v, vn, eq != NULL);
        if (rc == SP_OK)
            continue;
        if (rc == SP_TOOBIG)
            ss_reply(s, ev, 552, "5.3.4", "Message size exceeds fixed maximum message size");
        else if (rc == SP_UNKNOWN)
            ss_reply(s, ev, 555, "5.5.4", "Unsupported parameter");
        else
            ss_reply(s, ev, 501, "5.5.4", "Bad parameter syntax");
        return false;
    }
    return true;
}
