/*
 * events_amqp.c - the RabbitMQ sink (see events_amqp.h).
 * Invariant: delivery tags on the channel count from 1 after confirm.select;
 * a batch's messages have tags [first, first + count); with per_message > 1 a
 * message holds a run of the batch's events in order, so the whole batch is
 * still taken only when every one of its messages is confirmed.
 */
#include "events_amqp.h"

#include "clock.h"
#include "volley/error.h"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

struct amqp_sink {
    char *url_buf;                 /* amqp_parse_url's storage */
    struct amqp_connection_info ci;
    char *queue;
    char *ca_file;                 /* amqps: the CAs to check the broker with (NULL: system) */
    uint64_t timeout_ms;
    amqp_connection_state_t conn;  /* NULL = not connected */
    uint64_t next_tag;
    bool *confirmed;               /* [EVENTS_BATCH_MAX] */
    unsigned char *out;            /* a batch's frames (amqp_sink_frames) */
    size_t out_cap;
    unsigned per_message;          /* events per AMQP message (1: one each) */
    struct amqp_msg *msgs;         /* [EVENTS_BATCH_MAX]: a batch's messages */
    char *group;                   /* per_message > 1: the JSON arrays' bytes */
    size_t group_cap;
};

/* One AMQP message of a batch: one event, or a JSON array of per_message. */
struct amqp_msg {
    const char *body;
    size_t len;
    const char *id;                /* message_id: the (first) event's id */
    const char *type;              /* the event's name, or "batch" */
};

int events_amqp_url_check(const char *url, char *err, size_t err_cap)
{
    char *u = strdup(url);
    struct amqp_connection_info ci;
    if (!u)
        return -ENOMEM;
    int rc = amqp_parse_url(u, &ci);
    free(u);
    if (rc != AMQP_STATUS_OK) {
        snprintf(err, err_cap, "'%s': expected amqp[s]://USER:PASS@HOST:PORT/VHOST (%s)", url,
                 amqp_error_string2(rc));
        return VL_E_INVALID;
    }
    return 0;
}

static void amqp_sink_disconnect(struct amqp_sink *a)
{
    if (!a->conn)
        return;
    /* Best effort, bounded by the socket timeout; the broker copes with a cut. */
    amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(a->conn);
    a->conn = NULL;
}

static int amqp_sink_rpc_ok(amqp_rpc_reply_t r, const char *what, char *err, size_t cap)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        snprintf(err, cap, "%s: %s", what, amqp_error_string2(r.library_error));
    else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *c = r.reply.decoded;
        snprintf(err, cap, "%s: channel closed: %u %.*s", what, c->reply_code,
                 (int)c->reply_text.len, (const char *)c->reply_text.bytes);
    } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_t *c = r.reply.decoded;
        snprintf(err, cap, "%s: connection closed: %u %.*s", what, c->reply_code,
                 (int)c->reply_text.len, (const char *)c->reply_text.bytes);
    } else {
        snprintf(err, cap, "%s: broker error (method 0x%08x)", what, r.reply.id);
    }
    return VL_E_PROTO;
}

static int amqp_sink_connect(struct amqp_sink *a, char *err, size_t cap)
{
    a->conn = amqp_new_connection();
    amqp_socket_t *sock = !a->conn ? NULL : a->ci.ssl ? amqp_ssl_socket_new(a->conn)
                                                      : amqp_tcp_socket_new(a->conn);
    if (sock && a->ci.ssl) {       /* amqps: the broker's certificate and name are checked */
        amqp_ssl_socket_set_verify_peer(sock, 1);
        amqp_ssl_socket_set_verify_hostname(sock, 1);
        int crc = a->ca_file ? amqp_ssl_socket_set_cacert(sock, a->ca_file) : AMQP_STATUS_OK;
        if (crc != AMQP_STATUS_OK) {
            snprintf(err, cap, "CA file '%s': %s", a->ca_file, amqp_error_string2(crc));
            amqp_destroy_connection(a->conn);
            a->conn = NULL;
            return VL_E_INVALID;
        }
    }
    if (!sock) {
        snprintf(err, cap, "out of memory");
        if (a->conn)
            amqp_destroy_connection(a->conn);
        a->conn = NULL;
        return -ENOMEM;
    }
    struct timeval tv = { (time_t)(a->timeout_ms / 1000), (long)(a->timeout_ms % 1000) * 1000 };
    int rc = amqp_socket_open_noblock(sock, a->ci.host, a->ci.port, &tv);
    if (rc != AMQP_STATUS_OK) {
        snprintf(err, cap, "connect %s:%d: %s", a->ci.host, a->ci.port, amqp_error_string2(rc));
        amqp_destroy_connection(a->conn);
        a->conn = NULL;
        return VL_E_PROTO;
    }
    amqp_set_rpc_timeout(a->conn, &tv);
    rc = amqp_sink_rpc_ok(amqp_login(a->conn, a->ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                                     a->ci.user, a->ci.password), "login", err, cap);
    if (rc == 0) {
        amqp_channel_open(a->conn, 1);
        rc = amqp_sink_rpc_ok(amqp_get_rpc_reply(a->conn), "channel.open", err, cap);
    }
    if (rc == 0) {
        amqp_confirm_select(a->conn, 1);
        rc = amqp_sink_rpc_ok(amqp_get_rpc_reply(a->conn), "confirm.select", err, cap);
    }
    if (rc == 0) {
        amqp_queue_declare(a->conn, 1, amqp_cstring_bytes(a->queue), 0, 1, 0, 0,
                           amqp_empty_table);
        rc = amqp_sink_rpc_ok(amqp_get_rpc_reply(a->conn), "queue.declare", err, cap);
    }
    if (rc < 0) {
        amqp_destroy_connection(a->conn);
        a->conn = NULL;
        return rc;
    }
    a->next_tag = 1;
    return 0;
}

/* Wait until tags [first, first + n) are all acked. @return 0 or < 0. */
static int amqp_sink_confirms(struct amqp_sink *a, uint64_t first, size_t n, char *err,
                              size_t cap)
{
    memset(a->confirmed, 0, n * sizeof *a->confirmed);
    size_t left = n, done = 0;
    bool returned = false;
    uint64_t deadline = vl_clock_mono_ms() + a->timeout_ms;
    while (left > 0) {
        uint64_t now = vl_clock_mono_ms();
        if (now >= deadline) {
            snprintf(err, cap, "publisher confirms: %zu of %zu missing after %llums", left, n,
                     (unsigned long long)a->timeout_ms);
            return VL_E_TIMEOUT;
        }
        struct timeval tv = { (time_t)((deadline - now) / 1000),
                              (long)((deadline - now) % 1000) * 1000 };
        amqp_frame_t f;
        amqp_maybe_release_buffers(a->conn);
        int rc = amqp_simple_wait_frame_noblock(a->conn, &f, &tv);
        if (rc == AMQP_STATUS_TIMEOUT)
            continue;
        if (rc != AMQP_STATUS_OK) {
            snprintf(err, cap, "waiting for confirms: %s", amqp_error_string2(rc));
            return VL_E_PROTO;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;              /* a returned message's header or body */
        switch (f.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *ack = f.payload.method.decoded;
            uint64_t lo = ack->multiple ? first + done : ack->delivery_tag;
            for (uint64_t t = lo; t <= ack->delivery_tag; t++)
                if (t >= first && t < first + n && !a->confirmed[t - first]) {
                    a->confirmed[t - first] = true;
                    left--;
                }
            while (done < n && a->confirmed[done])    /* all below first + done are in */
                done++;
            break;
        }
        case AMQP_BASIC_NACK_METHOD:
            snprintf(err, cap, "broker nacked a message (publisher confirm)");
            return VL_E_PROTO;
        case AMQP_BASIC_RETURN_METHOD:
            returned = true;       /* unroutable: its ack follows; fail the batch then */
            break;
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
            snprintf(err, cap, "broker closed the %s",
                     f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ? "channel" : "connection");
            return VL_E_PROTO;
        default:
            break;
        }
    }
    if (returned) {
        snprintf(err, cap, "a message was returned unroutable (queue '%s' gone?)", a->queue);
        return VL_E_PROTO;
    }
    return 0;
}

/* ---- batched publish -------------------------------------------------------
 * librabbitmq's amqp_basic_publish() makes three send() calls per message
 * (method, header, body frames): the sender's main cost. The frames of a
 * whole batch are encoded here into one buffer (AMQP 0-9-1, section 4.2.3
 * general frame format: type, channel, size, payload, frame-end; basic.publish
 * and the content header as in the spec's basic class) and written with as few
 * send() calls as the socket takes; everything else on the connection (login,
 * channel, confirm.select, reading the confirms) stays librabbitmq's, which
 * buffers nothing on the way out. */

static unsigned char *amqp_put_u16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return p + 2;
}

static unsigned char *amqp_put_u32(unsigned char *p, uint32_t v)
{
    p = amqp_put_u16(p, v >> 16);
    return amqp_put_u16(p, v & 0xffffu);
}

static unsigned char *amqp_put_sstr(unsigned char *p, const char *s, size_t n)
{
    *p++ = (unsigned char)n;       /* shortstr: n <= 255, checked by the callers */
    memcpy(p, s, n);
    return p + n;
}

/* A frame of @p type on channel 1 whose payload starts at p + 7; @p end is
 * where the payload ends: fills in the size and the frame-end. */
static unsigned char *amqp_frame_close(unsigned char *f, unsigned type, unsigned char *end)
{
    f[0] = (unsigned char)type;
    amqp_put_u16(f + 1, 1);
    amqp_put_u32(f + 3, (uint32_t)(end - (f + 7)));
    *end = AMQP_FRAME_END;
    return end + 1;
}

static int amqp_sink_frames(struct amqp_sink *a, const struct amqp_msg *m, size_t count,
                            size_t *len, char *err, size_t cap)
{
    size_t qlen = strlen(a->queue);
    int fm = amqp_get_frame_max(a->conn);
    size_t chunk = fm > 4096 ? (size_t)fm - 8 : 4096 - 8;     /* body bytes per body frame */
    size_t need = 0;
    for (size_t i = 0; i < count; i++)
        need += 8 + 12 + qlen + 8 + 22 + 16 + strlen(m[i].id) + strlen(m[i].type)
                + m[i].len + 8 * (m[i].len / chunk + 1);
    if (need > a->out_cap) {
        unsigned char *o = realloc(a->out, need);
        if (!o) {
            snprintf(err, cap, "out of memory");
            return -ENOMEM;
        }
        a->out = o;
        a->out_cap = need;
    }
    static const char ct[] = "application/json";
    unsigned char *p = a->out;
    for (size_t i = 0; i < count; i++) {
        const struct amqp_msg *it = &m[i];
        unsigned char *f = p, *q = p + 7;          /* basic.publish */
        q = amqp_put_u16(q, AMQP_BASIC_CLASS);
        q = amqp_put_u16(q, 40);                   /* publish */
        q = amqp_put_u16(q, 0);                    /* reserved-1 */
        q = amqp_put_sstr(q, "", 0);               /* the default exchange */
        q = amqp_put_sstr(q, a->queue, qlen);      /* routing key: the queue */
        *q++ = 1;                                  /* mandatory, not immediate */
        p = amqp_frame_close(f, AMQP_FRAME_METHOD, q);
        f = p, q = p + 7;                          /* content header */
        q = amqp_put_u16(q, AMQP_BASIC_CLASS);
        q = amqp_put_u16(q, 0);                    /* weight */
        q = amqp_put_u32(q, 0);                    /* body size, 64 bits */
        q = amqp_put_u32(q, (uint32_t)it->len);
        q = amqp_put_u16(q, AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG
                            | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG);
        q = amqp_put_sstr(q, ct, sizeof ct - 1);   /* properties, in flag order */
        *q++ = 2;                                  /* delivery-mode: persistent */
        q = amqp_put_sstr(q, it->id, strlen(it->id));
        q = amqp_put_sstr(q, it->type, strlen(it->type));
        p = amqp_frame_close(f, AMQP_FRAME_HEADER, q);
        for (size_t off = 0; off < it->len; off += chunk) {   /* body */
            size_t n = it->len - off < chunk ? it->len - off : chunk;
            memcpy(p + 7, it->body + off, n);
            p = amqp_frame_close(p, AMQP_FRAME_BODY, p + 7 + n);
        }
    }
    vl_assert((size_t)(p - a->out) <= need);
    *len = (size_t)(p - a->out);
    return 0;
}

/* Write a->out[0, n) to the socket (non-blocking: poll between writes, bounded
 * by the sink's timeout). */
static int amqp_sink_write(struct amqp_sink *a, size_t n, char *err, size_t cap)
{
    int fd = amqp_get_sockfd(a->conn);
    uint64_t deadline = vl_clock_mono_ms() + a->timeout_ms;
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(fd, a->out + off, n - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        uint64_t now = vl_clock_mono_ms();
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && now < deadline) {
            struct pollfd pf = { fd, POLLOUT, 0 };
            (void)poll(&pf, 1, (int)(deadline - now));
            continue;
        }
        snprintf(err, cap, "publish: %s", w < 0 && errno != EAGAIN ? strerror(errno)
                                                                   : "timed out writing");
        return VL_E_PROTO;
    }
    return 0;
}

/* amqps: one amqp_basic_publish() per event (librabbitmq offers no way to
 * write raw bytes through its TLS socket). */
static int amqp_sink_publish_each(struct amqp_sink *a, const struct amqp_msg *m, size_t count,
                                  char *err, size_t cap)
{
    for (size_t i = 0; i < count; i++) {
        const struct amqp_msg *it = &m[i];
        amqp_basic_properties_t p = {
            ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG
                      | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG,
            .content_type = amqp_cstring_bytes("application/json"),
            .delivery_mode = 2,    /* persistent */
            .message_id = amqp_cstring_bytes(it->id),
            .type = amqp_cstring_bytes(it->type),
        };
        amqp_bytes_t body = { it->len, (void *)it->body };
        int prc = amqp_basic_publish(a->conn, 1, amqp_empty_bytes, amqp_cstring_bytes(a->queue),
                                     1, 0, &p, body);
        if (prc != AMQP_STATUS_OK) {
            snprintf(err, cap, "publish: %s", amqp_error_string2(prc));
            return VL_E_PROTO;
        }
    }
    return 0;
}

/* The batch as AMQP messages: one per event, or JSON arrays of up to
 * per_message consecutive events (in the batch's order, so per recipient too).
 * @return the message count, or -ENOMEM. */
static long amqp_sink_group(struct amqp_sink *a, const struct events_batch *b)
{
    if (a->per_message <= 1) {
        for (size_t i = 0; i < b->count; i++)
            a->msgs[i] = (struct amqp_msg){ b->items[i].json, b->items[i].len, b->items[i].id,
                                            b->items[i].type };
        return (long)b->count;
    }
    size_t need = 2 * (b->count / a->per_message + 1);
    for (size_t i = 0; i < b->count; i++)
        need += b->items[i].len + 1;
    if (need > a->group_cap) {
        char *g = realloc(a->group, need);
        if (!g)
            return -ENOMEM;
        a->group = g;
        a->group_cap = need;
    }
    char *p = a->group;
    size_t n = 0;
    for (size_t i = 0; i < b->count; i += a->per_message) {
        size_t end = i + a->per_message < b->count ? i + a->per_message : b->count;
        char *start = p;
        *p++ = '[';
        for (size_t j = i; j < end; j++) {
            if (j > i)
                *p++ = ',';
            memcpy(p, b->items[j].json, b->items[j].len);
            p += b->items[j].len;
        }
        *p++ = ']';
        a->msgs[n++] = (struct amqp_msg){ start, (size_t)(p - start), b->items[i].id, "batch" };
    }
    vl_assert((size_t)(p - a->group) <= need);
    return (long)n;
}

static int amqp_sink_send(void *ctx, const struct events_batch *b, char *err, size_t cap)
{
    struct amqp_sink *a = ctx;
    int rc = 0;
    if (!a->conn && (rc = amqp_sink_connect(a, err, cap)) < 0)
        return rc;
    long count = amqp_sink_group(a, b);
    if (count < 0) {
        snprintf(err, cap, "out of memory");
        return (int)count;
    }
    uint64_t first = a->next_tag;
    size_t n = 0;
    if (a->ci.ssl)                 /* TLS: the frames go through librabbitmq's SSL socket */
        rc = amqp_sink_publish_each(a, a->msgs, (size_t)count, err, cap);
    else if ((rc = amqp_sink_frames(a, a->msgs, (size_t)count, &n, err, cap)) == 0)
        rc = amqp_sink_write(a, n, err, cap);
    if (rc < 0) {
        amqp_sink_disconnect(a);
        return rc;
    }
    a->next_tag += (uint64_t)count;
    rc = amqp_sink_confirms(a, first, (size_t)count, err, cap);
    if (rc < 0)
        amqp_sink_disconnect(a);   /* a clean slate: the batch goes again on a new channel */
    return rc;
}

static void amqp_sink_destroy(void *ctx)
{
    struct amqp_sink *a = ctx;
    if (!a)
        return;
    amqp_sink_disconnect(a);
    free(a->url_buf);
    free(a->queue);
    free(a->ca_file);
    free(a->confirmed);
    free(a->out);
    free(a->msgs);
    free(a->group);
    free(a);
}

int events_amqp_create(const char *url, const char *queue, const char *ca_file,
                       unsigned per_message, uint64_t timeout_ms, struct events_sink *out,
                       char *err, size_t err_cap)
{
    int rc = events_amqp_url_check(url, err, err_cap);
    if (rc < 0)
        return rc;
    if (!queue[0] || strlen(queue) > 255) {
        snprintf(err, err_cap, "queue name '%s': expected 1 to 255 bytes", queue);
        return VL_E_INVALID;
    }
    if (per_message < 1 || per_message > EVENTS_BATCH_MAX) {
        snprintf(err, err_cap, "events per message %u: expected 1..%u", per_message,
                 EVENTS_BATCH_MAX);
        return VL_E_INVALID;
    }
    struct amqp_sink *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->url_buf = strdup(url);
    a->queue = strdup(queue);
    a->confirmed = calloc(EVENTS_BATCH_MAX, sizeof *a->confirmed);
    a->msgs = calloc(EVENTS_BATCH_MAX, sizeof *a->msgs);
    a->per_message = per_message;
    a->ca_file = ca_file ? strdup(ca_file) : NULL;
    if (!a->url_buf || !a->queue || !a->confirmed || !a->msgs || (ca_file && !a->ca_file)) {
        amqp_sink_destroy(a);
        return -ENOMEM;
    }
    amqp_parse_url(a->url_buf, &a->ci);
    if (!a->ci.vhost || !a->ci.vhost[0])
        a->ci.vhost = (char *)"/";   /* "amqp://host:port/" means the default vhost */
    a->timeout_ms = timeout_ms;
    *out = (struct events_sink){ .name = "amqp", .ctx = a, .send = amqp_sink_send,
                                 .destroy = amqp_sink_destroy, .want_type = true };
    return 0;
}
