/*
 * addr.c - RFC 5321 4.1.2 Mailbox grammar and 4.5.3.1 size limits.
 * Pure: no I/O, no allocation. Invariant: an accepted address contains no
 * octet below 0x21 except SP inside a Quoted-string, and no DEL.
 */
#include "volley/addr.h"

#include "volley/error.h"
#include "volley/limits.h"

#include <string.h>

static bool addr_is_atext(unsigned char c)
{
    if (c >= 0x80)
        return true;                       /* RFC 6531 UTF8-non-ascii; flagged utf8 */
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool addr_is_letdig(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int addr_fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return VL_E_INVALID;
}

/* Dot-string = Atom *("." Atom) */
static int addr_dot_string(const unsigned char *s, size_t n, bool *utf8, const char **why)
{
    if (n == 0)
        return addr_fail(why, "empty local part");
    if (s[0] == '.' || s[n - 1] == '.')
        return addr_fail(why, "local part starts or ends with '.'");
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (s[i + 1] == '.')
                return addr_fail(why, "local part has '..'");
            continue;
        }
        if (!addr_is_atext(s[i]))
            return addr_fail(why, s[i] < 0x20 || s[i] == 0x7f
                             ? "control character in local part"
                             : "character not allowed in an unquoted local part");
        if (s[i] >= 0x80)
            *utf8 = true;
    }
    return 0;
}

/* Quoted-string = DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE */
static int addr_quoted_string(const unsigned char *s, size_t n, bool *utf8, const char **why)
{
    if (n < 2 || s[0] != '"' || s[n - 1] != '"')
        return addr_fail(why, "unterminated quoted local part");
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = s[i];
        if (c == '\\') {
            if (i + 2 >= n)
                return addr_fail(why, "dangling '\\' in quoted local part");
            c = s[++i];
            if (c < 0x20 || c == 0x7f)
                return addr_fail(why, "control character in local part");
            if (c >= 0x80)
                *utf8 = true;               /* an escaped octet is still 8-bit */
            continue;
        }
        if (c < 0x20 || c == 0x7f)
            return addr_fail(why, "control character in local part");
        if (c == '"')
            return addr_fail(why, "unescaped '\"' in quoted local part");
        if (c >= 0x80)
            *utf8 = true;
    }
    return 0;
}

static int addr_literal(const unsigned char *s, size_t n, const char **why)
{
    /* "[" (IPv4 | "IPv6:" ...) "]": checked for shape, not parsed as an IP. */
    if (n < 3 || s[0] != '[' || s[n - 1] != ']')
        return addr_fail(why, "malformed address literal");
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = s[i];
        if (c < 0x21 || c > 0x7e || c == '[' || c == ']' || c == '\\')
            return addr_fail(why, "character not allowed in an address literal");
    }
    return 0;
}

int vl_domain_check(const char *str, size_t n, const char **why)
{
    const unsigned char *s = (const unsigned char *)str;
    if (n == 0)
        return addr_fail(why, "empty domain");
    if (n > VL_SMTP_DOMAIN_BYTES_MAX)
        return addr_fail(why, "domain longer than 255 octets");
    if (s[0] == '[')
        return addr_literal(s, n, why);
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '.') {
            if (label == 0)
                return addr_fail(why, "empty label in domain");
            if (s[i - 1] == '-')
                return addr_fail(why, "domain label ends with '-'");
            label = 0;
            continue;
        }
        if (c >= 0x80)
            return addr_fail(why, "non-ASCII domain (use its A-label, xn--...)");
        if (c < 0x20 || c == 0x7f)
            return addr_fail(why, "control character in domain");
        if (!addr_is_letdig(c) && c != '-')
            return addr_fail(why, "character not allowed in a domain");
        if (c == '-' && label == 0)
            return addr_fail(why, "domain label starts with '-'");
        if (++label > 63)
            return addr_fail(why, "domain label longer than 63 octets");
    }
    if (label == 0)
        return addr_fail(why, "domain ends with '.'");
    if (s[n - 1] == '-')
        return addr_fail(why, "domain label ends with '-'");
    return 0;
}

int vl_addr_parse(const char *str, size_t n, struct vl_addr *out, const char **why)
{
    const unsigned char *s = (const unsigned char *)str;
    if (n == 0)
        return addr_fail(why, "empty address");
    if (n > VL_SMTP_PATH_BYTES_MAX - 2u)
        return addr_fail(why, "address longer than 254 octets");
    /* The domain follows the last '@' outside quotes: the local part may quote '@'. */
    size_t at = n;
    bool in_quotes = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0 || s[i] == '\r' || s[i] == '\n')
            return addr_fail(why, "CR, LF or NUL in address");
        if (in_quotes && s[i] == '\\' && i + 1 < n) {
            i++;
            continue;
        }
        if (s[i] == '"')
            in_quotes = !in_quotes;
        else if (s[i] == '@' && !in_quotes)
            at = i;
    }
    if (at == n)
        return addr_fail(why, "missing '@domain'");
    if (at > VL_SMTP_LOCAL_PART_BYTES_MAX)
        return addr_fail(why, "local part longer than 64 octets");
    struct vl_addr a = { 0 };
    a.local_len = (uint16_t)at;
    a.domain_off = (uint16_t)(at + 1);
    a.domain_len = (uint16_t)(n - at - 1);
    a.quoted = at > 0 && s[0] == '"';
    int rc = a.quoted ? addr_quoted_string(s, at, &a.utf8, why)
                      : addr_dot_string(s, at, &a.utf8, why);
    if (rc < 0)
        return rc;
    rc = vl_domain_check(str + a.domain_off, a.domain_len, why);
    if (rc < 0)
        return rc;
    a.literal = s[a.domain_off] == '[';
    if (out)
        *out = a;
    return 0;
}

uint64_t vl_domain_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        h = (h ^ c) * 1099511628211ull;
    }
    return h;
}
