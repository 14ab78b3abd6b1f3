/*
 * log.h - diagnostics (key=value lines on stderr) and the JSON delivery log.
 *
 * Delivery log: one JSON object per recipient outcome, an interface (fields are
 * added, never renamed; format in README). Each shard owns a struct vl_dlog
 * buffer and flushes it with one write(2) to an O_APPEND descriptor, so lines
 * of different shards never interleave and no lock is taken.
 */
#ifndef VOLLEY_LOG_H
#define VOLLEY_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vl_log_level { VL_LOG_TRACE, VL_LOG_INFO, VL_LOG_WARN, VL_LOG_ERROR };

/** Minimum level printed (default VL_LOG_WARN; VOLLEY_LOG=trace|info|warn|error). */
extern enum vl_log_level vl_log_level_min;
void vl_log_init_from_env(void);

/** "evt=NAME key=value ..." on stderr, if @p level passes. One line, one write
 *  (at most 1 KiB, truncated). %s arguments are escaped: control bytes as \n \r
 *  \t \xHH, invalid UTF-8 and C1 controls as \xHH, and inside a quoted value
 *  (key="%s") also '"' and '\\' as \" and \\. Other text of @p fmt is copied. */
void vl_log(enum vl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** The line vl_log() writes ("volley: level=L " + @p fmt + '\n'), into @p line
 *  (capacity @p cap >= 64); returns its length (<= cap, no NUL added). Pure. */
size_t vl_log_format(char *line, size_t cap, enum vl_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
size_t vl_log_vformat(char *line, size_t cap, enum vl_log_level level, const char *fmt,
                      va_list ap);
#define vl_log_at(level, ...) \
    do { if ((level) >= vl_log_level_min) vl_log((level), __VA_ARGS__); } while (0)

struct vl_dlog_event {
    int64_t ts_ms;           /* wall clock, ms since the epoch */
    uint64_t msg_id;
    const char *rcpt;
    const char *domain;
    const char *event;       /* delivered | deferred | bounced | expired | ambiguous */
    const char *mx;          /* may be NULL */
    const char *ip;          /* may be NULL */
    int code;                /* 0 = none (local decision without a reply) */
    const char *status;      /* enhanced status x.y.z; may be NULL */
    const char *reply;       /* reply text, may be NULL; escaped and capped */
    uint32_t attempt;
    const char *tls;         /* protocol name or NULL */
    bool local;              /* decided here, not replied by the remote: "local":true
                                (code and status are then ours, not the server's) */
    const char *category;    /* bounce category of a failure ("mailbox_full"...), or NULL */
    const char *campaign;    /* X-Volley-Campaign id; NULL or "": left out (issue 15) */
    const char *tenant;      /* X-Volley-Tenant id; NULL or "": left out (issue 15) */
    /* Injection events (issue 16, event "injected"); NULL: left out. */
    const char *from;        /* the envelope sender ("" for <>) */
    const char *source;      /* "smtp" or "http" */
    const char *client;      /* the client's IP address */
    const char *scope;       /* "unsubscribe": the sending domain it applies to */
};

#define VL_DLOG_BUF_BYTES (64u * 1024u)
#define VL_DLOG_LINE_BYTES_MAX 4096u

struct vl_dlog {
    int fd;                  /* -1 = logging off */
    int err;                 /* first write error (-errno), 0 = none */
    uint64_t lines_lost;     /* lines not written because of write errors */
    size_t len;
    char buf[VL_DLOG_BUF_BYTES];
};

/** Open @p path for appending ("-" = stdout, NULL = off). Returns 0 or -errno. */
int vl_dlog_open(const char *path, int *fd_out);
/** Start a per-shard buffer writing to @p fd (shared, O_APPEND; -1 = off). */
void vl_dlog_init(struct vl_dlog *d, int fd);
/** Append one event line; flushes first when the buffer would overflow. */
void vl_dlog_add(struct vl_dlog *d, const struct vl_dlog_event *ev);
/** Append a line vl_dlog_format() made (@p len bytes, without its '\n'; cut
 *  to VL_DLOG_LINE_BYTES_MAX - 1) and a '\n': the delivery commit formats each
 *  outcome once, for its event and its log line (issue 16). */
void vl_dlog_add_line(struct vl_dlog *d, const char *line, size_t len);
/** Write the buffered lines. Returns 0 or -errno (the lines are dropped then). */
int vl_dlog_flush(struct vl_dlog *d);

/** Format @p ev as one JSON line (with '\n') into @p out; returns its length
 *  (always < cap, truncating the reply text first). Pure. */
size_t vl_dlog_format(const struct vl_dlog_event *ev, char *out, size_t cap);

#endif
