/*
 * log.c - diagnostics and the JSON delivery log (see log.h).
 * Invariants: a diagnostic is one line whatever its %s arguments hold (they
 * are escaped: controls as \n \r \t \xHH, and inside key="value" also '"' and
 * '\\'), so no peer text can end a value or forge a key or a line. A
 * delivery-log line is valid JSON whatever bytes the peer sent: controls are
 * escaped as \u00XX, invalid UTF-8 is replaced byte-wise by '?'.
 */
#include "log.h"
#include "utf8.h"

#include "volley/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum vl_log_level vl_log_level_min = VL_LOG_WARN;

void vl_log_init_from_env(void)
{
    const char *v = getenv("VOLLEY_LOG");
    if (!v)
        return;
    if (!strcmp(v, "trace")) vl_log_level_min = VL_LOG_TRACE;
    else if (!strcmp(v, "info")) vl_log_level_min = VL_LOG_INFO;
    else if (!strcmp(v, "warn")) vl_log_level_min = VL_LOG_WARN;
    else if (!strcmp(v, "error")) vl_log_level_min = VL_LOG_ERROR;
}

/* ---- key=value diagnostics --------------------------------------------------------- */

struct kv_out { char *p; size_t len, cap; };   /* cap - len >= 1 always: room for '\n' */

static void kv_put(struct kv_out *o, const char *s, size_t n)
{
    if (n > o->cap - 1 - o->len)
        n = o->cap - 1 - o->len;            /* truncate: the line stays one line */
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

/* One %s argument (at most @p max bytes of it). Never a raw control byte, so a
 * value cannot start a new line; inside a quoted value (@p quoted) also '"'
 * and '\' are escaped, so it cannot end the quotes or forge a key. Invalid
 * UTF-8 and C1 controls (U+0080..U+009F) become \xHH per byte. */
static void kv_value(struct kv_out *o, const char *s, size_t max, bool quoted)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strnlen(s, max);
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t k = vl_utf8_seq_len(u + i, n - i);
        char esc[8] = { '\\', 0 };
        size_t en = 2;
        if (c == '\n' || c == '\r' || c == '\t') {
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (quoted && (c == '"' || c == '\\')) {
            esc[1] = (char)c;
        } else if (c < 0x20 || c == 0x7f || k == 0 || (k == 2 && vl_utf8_is_c1(u + i))) {
            k = 1;                          /* C1: both bytes escaped, one at a time */
            esc[1] = 'x';
            esc[2] = hex[c >> 4];
            esc[3] = hex[c & 15];
            en = 4;
        } else {
            kv_put(o, s + i, k);            /* printable ASCII or well-formed UTF-8 */
            i += k;
            continue;
        }
        kv_put(o, esc, en);
        i++;
    }
}

/* The conversion at @p f (after the '%'), one va_arg fetched by its type; %s
 * arguments are escaped by kv_value. @return the length of the spec. */
static size_t kv_conv(struct kv_out *o, const char *f, bool quoted, va_list *ap)
{
    char spec[32] = "%";
    size_t n = strspn(f, "-+ #0123456789.*hljztL");
    if (n + 3 > sizeof spec || f[n] == '\0')
        return n;                           /* not a conversion: dropped (format attr) */
    memcpy(spec + 1, f, n + 1);
    char conv = f[n], buf[128];
    int stars[2] = { 0, 0 }, nstars = 0;
    for (size_t i = 0; i < n; i++)
        if (f[i] == '*' && nstars < 2)
            stars[nstars++] = va_arg(*ap, int);
    const char *len = f + strspn(f, "-+ #0123456789.*");
    bool l1 = len[0] == 'l', ll = l1 && len[1] == 'l', z = len[0] == 'z', j = len[0] == 'j';
    bool t = len[0] == 't', big = len[0] == 'L';
    int m = 0;
#define KV_FMT(v) (nstars == 2 ? snprintf(buf, sizeof buf, spec, stars[0], stars[1], v) \
                   : nstars == 1 ? snprintf(buf, sizeof buf, spec, stars[0], v)         \
                   : snprintf(buf, sizeof buf, spec, v))
    switch (conv) {
    case 's': {
        const char *v = va_arg(*ap, const char *);
        const char *dot = memchr(f, '.', n);
        size_t max = (size_t)-1;
        if (dot)                            /* precision: the input bytes read */
            max = dot[1] == '*' ? (stars[nstars - 1] < 0 ? (size_t)-1 : (size_t)stars[nstars - 1])
                                : strtoul(dot + 1, NULL, 10);
        kv_value(o, v ? v : "(null)", max, quoted);
        return n + 1;
    }
    case 'd': case 'i':
        m = ll ? KV_FMT(va_arg(*ap, long long)) : l1 ? KV_FMT(va_arg(*ap, long))
            : z ? KV_FMT(va_arg(*ap, ssize_t)) : j ? KV_FMT(va_arg(*ap, intmax_t))
            : t ? KV_FMT(va_arg(*ap, ptrdiff_t)) : KV_FMT(va_arg(*ap, int));
        break;
    case 'u': case 'x': case 'X': case 'o':
        m = ll ? KV_FMT(va_arg(*ap, unsigned long long)) : l1 ? KV_FMT(va_arg(*ap, unsigned long))
            : z ? KV_FMT(va_arg(*ap, size_t)) : j ? KV_FMT(va_arg(*ap, uintmax_t))
            : t ? KV_FMT(va_arg(*ap, ptrdiff_t)) : KV_FMT(va_arg(*ap, unsigned));
        break;
    case 'c':
        buf[0] = (char)va_arg(*ap, int);
        kv_value(o, buf, 1, quoted);
        return n + 1;
    case 'p':
        m = KV_FMT(va_arg(*ap, void *));
        break;
    case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': case 'a': case 'A':
        m = big ? KV_FMT(va_arg(*ap, long double)) : KV_FMT(va_arg(*ap, double));
        break;
    case '%':
        kv_put(o, "%", 1);
        return n + 1;
    default:                                /* %n and unknown ones: never written */
        return n + 1;
    }
#undef KV_FMT
    if (m > 0)
        kv_put(o, buf, (size_t)m < sizeof buf ? (size_t)m : sizeof buf - 1);
    return n + 1;
}

size_t vl_log_vformat(char *line, size_t cap, enum vl_log_level level, const char *fmt,
                      va_list ap)
{
    static const char *const names[] = { "trace", "info", "warn", "error" };
    vl_assert(cap >= 64 && (unsigned)level < sizeof names / sizeof names[0]);
    struct kv_out o = { line, 0, cap };      /* kv_put keeps one byte for the '\n' */
    kv_put(&o, "volley: level=", 14);
    kv_put(&o, names[level], strlen(names[level]));
    kv_put(&o, " ", 1);
    va_list aq;
    va_copy(aq, ap);
    bool quoted = false;                     /* between the quotes of key="value" */
    for (const char *f = fmt; *f;) {
        size_t lit = strcspn(f, "%\"");
        kv_put(&o, f, lit);
        f += lit;
        if (*f == '"') {
            quoted = !quoted;
            kv_put(&o, "\"", 1);
            f++;
        } else if (*f == '%') {
            f++;
            f += kv_conv(&o, f, quoted, &aq);
        }
    }
    va_end(aq);
    line[o.len++] = '\n';
    vl_assert(o.len <= cap);
    return o.len;
}

size_t vl_log_format(char *line, size_t cap, enum vl_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = vl_log_vformat(line, cap, level, fmt, ap);
    va_end(ap);
    return n;
}

void vl_log(enum vl_log_level level, const char *fmt, ...)
{
    if (level < vl_log_level_min)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    size_t len = vl_log_vformat(line, sizeof line, level, fmt, ap);
    va_end(ap);
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

/* ---- the JSON delivery log ---------------------------------------------------------- */

struct log_out { char *p; size_t len, cap; };

static void log_put(struct log_out *o, const char *s, size_t n)
{
    if (o->len + n >= o->cap)
        n = o->cap - o->len - 1;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void log_puts(struct log_out *o, const char *s) { log_put(o, s, strlen(s)); }

/* A JSON string, escaped, at most max_bytes of input. Keeps room (reserve) for the rest. */
static void log_json_str(struct log_out *o, const char *s, size_t max_bytes, size_t reserve)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    if (n > max_bytes)
        n = max_bytes;
    log_put(o, "\"", 1);
    for (size_t i = 0; i < n;) {
        if (o->len + 8 + reserve >= o->cap)
            break;
        unsigned char c = u[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\'; esc[1] = (char)c;
            log_put(o, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            log_put(o, esc, 6);
            i++;
        } else {
            size_t k = vl_utf8_seq_len(u + i, n - i);
            if (k == 0) {
                log_put(o, "?", 1);
                i++;
            } else {
                log_put(o, s + i, k);
                i += k;
            }
        }
    }
    log_put(o, "\"", 1);
}

static void log_field_str(struct log_out *o, const char *key, const char *v, size_t max)
{
    if (!v)
        return;
    log_puts(o, ",\"");
    log_puts(o, key);
    log_puts(o, "\":");
    log_json_str(o, v, max, 64);
}

size_t vl_dlog_format(const struct vl_dlog_event *ev, char *out, size_t cap)
{
    struct log_out o = { out, 0, cap };
    char tmp[64];
    time_t secs = (time_t)(ev->ts_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
    log_puts(&o, "{\"ts\":\"");
    log_puts(&o, tmp);
    snprintf(tmp, sizeof tmp, ".%03dZ\",\"id\":\"%016llx\"", (int)(ev->ts_ms % 1000),
             (unsigned long long)ev->msg_id);
    log_puts(&o, tmp);
    log_field_str(&o, "rcpt", ev->rcpt ? ev->rcpt : "", 512);
    log_field_str(&o, "domain", ev->domain ? ev->domain : "", 512);
    log_field_str(&o, "event", ev->event ? ev->event : "", 32);
    log_field_str(&o, "mx", ev->mx, 512);
    log_field_str(&o, "ip", ev->ip, 64);
    if (ev->code > 0) {
        snprintf(tmp, sizeof tmp, ",\"code\":%d", ev->code);
        log_puts(&o, tmp);
    }
    if (ev->local)
        log_puts(&o, ",\"local\":true");
    log_field_str(&o, "status", ev->status, 16);
    log_field_str(&o, "reply", ev->reply, 1024);
    snprintf(tmp, sizeof tmp, ",\"attempt\":%u", ev->attempt);
    log_puts(&o, tmp);
    log_field_str(&o, "tls", ev->tls, 32);
    log_field_str(&o, "category", ev->category, 32);
    if (ev->campaign && ev->campaign[0])
        log_field_str(&o, "campaign", ev->campaign, 64);
    if (ev->tenant && ev->tenant[0])
        log_field_str(&o, "tenant", ev->tenant, 64);
    log_field_str(&o, "from", ev->from, 512);
    log_field_str(&o, "source", ev->source, 16);
    log_field_str(&o, "client", ev->client, 64);
    log_field_str(&o, "scope", ev->scope, 256);
    /* The closing brace and newline always fit: every field left room for them. */
    if (o.len + 3 > cap)
        o.len = cap - 3;
    out[o.len++] = '}';
    out[o.len++] = '\n';
    out[o.len] = '\0';
    return o.len;
}

int vl_dlog_open(const char *path, int *fd_out)
{
    if (!path) {
        *fd_out = -1;
        return 0;
    }
    if (!strcmp(path, "-")) {
        *fd_out = STDOUT_FILENO;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    *fd_out = fd;
    return 0;
}

void vl_dlog_init(struct vl_dlog *d, int fd)
{
    d->fd = fd;
    d->err = 0;
    d->lines_lost = 0;
    d->len = 0;
}

int vl_dlog_flush(struct vl_dlog *d)
{
    size_t off = 0;
    int rc = 0;
    while (off < d->len) {
        ssize_t w = write(d->fd, d->buf + off, d->len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        off += (size_t)w;
    }
    if (rc < 0) {
        /* The outcomes are committed; only their log lines are gone. Say so
         * once, loudly, and let the run end non-zero (vl_dlog.err). */
        uint64_t lost = 0;
        for (size_t i = off; i < d->len; i++)
            lost += d->buf[i] == '\n';
        if (d->err == 0)
            vl_log(VL_LOG_ERROR, "evt=dlog_write_failed lines_lost=%llu err=\"%s\"",
                   (unsigned long long)lost, vl_strerror(rc));
        if (d->err == 0)
            d->err = rc;
        d->lines_lost += lost;
    }
    d->len = 0;
    return rc;
}

void vl_dlog_add_line(struct vl_dlog *d, const char *line, size_t len)
{
    if (d->fd < 0)
        return;
    if (len > VL_DLOG_LINE_BYTES_MAX - 1)
        len = VL_DLOG_LINE_BYTES_MAX - 1;
    if (d->len + VL_DLOG_LINE_BYTES_MAX > sizeof d->buf)
        vl_dlog_flush(d);
    memcpy(d->buf + d->len, line, len);
    d->buf[d->len + len] = '\n';
    d->len += len + 1;
}

void vl_dlog_add(struct vl_dlog *d, const struct vl_dlog_event *ev)
{
    if (d->fd < 0)
        return;
    if (d->len + VL_DLOG_LINE_BYTES_MAX > sizeof d->buf)
        vl_dlog_flush(d);
    d->len += vl_dlog_format(ev, d->buf + d->len, VL_DLOG_LINE_BYTES_MAX);
}
