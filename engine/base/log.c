/*
 * log.c - diagnostics and the JSON delivery log (see log.h).
 * Invariant: a delivery-log line is valid JSON whatever bytes the peer sent:
 * controls are escaped as \u00XX, invalid UTF-8 is replaced byte-wise by '?'.
 */
#include "log.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
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

void vl_log(enum vl_log_level level, const char *fmt, ...)
{
    static const char *const names[] = { "trace", "info", "warn", "error" };
    if (level < vl_log_level_min)
        return;
    char line[1024];
    int n = snprintf(line, sizeof line, "volley: level=%s ", names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

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
    log_field_str(&o, "status", ev->status, 16);
    log_field_str(&o, "reply", ev->reply, 1024);
    snprintf(tmp, sizeof tmp, ",\"attempt\":%u", ev->attempt);
    log_puts(&o, tmp);
    log_field_str(&o, "tls", ev->tls, 32);
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
    d->len = 0;
    return rc;
}

void vl_dlog_add(struct vl_dlog *d, const struct vl_dlog_event *ev)
{
    if (d->fd < 0)
        return;
    if (d->len + VL_DLOG_LINE_BYTES_MAX > sizeof d->buf)
        vl_dlog_flush(d);
    d->len += vl_dlog_format(ev, d->buf + d->len, VL_DLOG_LINE_BYTES_MAX);
}
