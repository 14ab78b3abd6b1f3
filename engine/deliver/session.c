/*
 * session.c - one outbound SMTP connection: a socket on the shard's reactor
 * driving the pure client state machine (smtp_client.c).
 *
 * The session never parses SMTP: bytes read go to the client, whose actions
 * (send bytes, stream the body, fates, ready, close) the session carries out
 * in order. Sends are double-buffered: one buffer is in the kernel (borrowed
 * until its completion), the other accumulates; the body is encoded into the
 * accumulating buffer chunk by chunk, so a session holds a bounded amount of
 * memory whatever the message size.
 *
 * Deadlines: one timer per session for what the client awaits now
 * (smtp_client_deadline_ms(), re-armed when the client changes what it
 * awaits, never per byte), one idle timer while pooled. While the body
 * streams (BODY), the deadline covers one data block (RFC 5321 4.5.3.2.5:
 * 3 minutes per send call), so each send completion that moved bytes re-arms
 * it: a slow reader that keeps taking data never times out, one that stops
 * does. The final reply then gets its own (DOT: 10 minutes, 4.5.3.2.6).
 *
 * STARTTLS (the level session_open() got: --tls or the destination's policy;
 * `may` falls back to plaintext when the handshake fails, see
 * session_tls_failed(); the client asks with SMTP_ACT_START_TLS): a
 * struct session_tls is allocated then, and from there every byte goes
 * through it (session_tls_*: handshake over the same recv/send paths, write
 * buffers sealed into one ciphertext buffer, plaintext decrypted into in[]).
 * Plaintext sessions only pay a NULL check. A handshake failure before READY
 * is reported as the host's failure, like a failed connect.
 *
 * Reporting up (session.h): fates, attempt ends, host failures, READY and
 * the close go to the owner's callbacks; host counters and queues are the
 * owner's. A connect the kernel refuses at once (rx_connect() fails) is not
 * reported from session_open(): the session closes, and the failure is
 * reported from its RX_OP_CLOSE event like any other.
 *
 * Invariant: a session is freed only at its reactor RX_OP_CLOSE event, after
 * which no completion refers to it.
 */
#include "session.h"

#include "log.h"
#include "smtp_data.h"
#include "tls.h"
#include "volley/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SESSION_IN_BYTES          16384u   /* received bytes not yet consumed */
#define SESSION_BODY_CHUNK_BYTES  32768u   /* body bytes encoded per send */
#define SESSION_WBUF_BYTES (SMTP_CLIENT_OUT_BYTES + 2u * SESSION_BODY_CHUNK_BYTES + 16u)
_Static_assert(SESSION_IN_BYTES >= VL_SMTP_REPLY_LINE_BYTES_MAX, "a reply line fits");

struct session {
    struct session *pool_next;     /* the owner's (session_pool_link) */
    struct session_env *env;
    struct host *host;             /* the owner's, handed back in callbacks */
    const char *ip;                /* the host's address text, borrowed */
    uint16_t port;                 /* its port (host order), for the connect error */
    int connect_err;               /* rx_connect() refused at once: reported at CLOSE */
    rx_handle_t h;
    bool connected, ever_ready, closing, close_started, idle, want_ready;
    bool recv_posted, send_posted;
    bool body_active;              /* encoding the body into the write buffers */
    bool prefix_sent;              /* the attempt's prefix (headers) is encoded */
    bool body_end_buffered;        /* the end marker is in wbuf[wcur] */
    bool body_end_inflight;        /* ... or in the buffer being sent */
    enum smtp_fail close_fail;
    struct smtp_fate close_fate;
    char close_text[VL_DIAG_TEXT_BYTES_MAX + 1];
    struct attempt *attempt;       /* the one running, or NULL */
    uint32_t attempts_done;
    rx_timer_t deadline, idle_timer;
    enum smtp_state deadline_state;
    size_t body_off;
    struct smtp_data_enc enc;
    struct smtp_client client;
    struct smtp_actions acts;
    struct smtp_msg msg;
    struct smtp_msg_rcpt mrcpt[VL_SMTP_RCPTS_PER_TXN_MAX];
    uint32_t in_len;
    uint32_t wlen[2];
    unsigned wcur;                 /* index of the accumulating buffer */
    char in[SESSION_IN_BYTES];
    char wbuf[2][SESSION_WBUF_BYTES];
    /* STARTTLS (session_tls_*): NULL while plaintext, so that path costs nothing */
    struct session_tls *tls;
    const char *tls_proto;         /* "TLSv1.3"... once established (static string) */
    const char *sni;               /* MX name of the first attempt, borrowed */
    const struct smtp_client_conf *conf;   /* env's or its egress's, for its level */
    enum vl_tls_level level;       /* this session's STARTTLS policy */
    int egress;                    /* env->egress index bound to, or -1 */
};

/* What a TLS session adds: allocated at STARTTLS's 220. */
#define SESSION_TLS_OUT_BYTES (TLS_SEAL_OUT_MAX(SESSION_WBUF_BYTES) + 4096u)
#define SESSION_TLS_READS_MAX 64u    /* plaintext reads per received chunk */
struct session_tls {
    struct tls_conn *conn;
    bool shut;                     /* our close_notify is queued */
    bool end_sealed;               /* the body's end marker is in the ciphertext */
    char in[SESSION_IN_BYTES];     /* ciphertext received */
    char out[SESSION_TLS_OUT_BYTES];   /* ciphertext being sent */
};

static void session_cb(struct rx *rx, const struct rx_event *ev);
static void session_timer_cb(struct rx *rx, const struct rx_event *ev);
static void session_run_actions(struct session *s);
static void session_consume(struct session *s);
static void session_connect_done(struct session *s, int res);
static void session_tls_start(struct session *s);
static void session_tls_flush(struct session *s);
static void session_tls_post_recv(struct session *s);
static void session_tls_recv_done(struct session *s, int res);
static void session_tls_free(struct session *s);
static void session_tls_note_plain(struct session *s);

struct session *session_pool_next(const struct session *s) { return s->pool_next; }
void session_pool_link(struct session *s, struct session *next) { s->pool_next = next; }
const char *session_tls(const struct session *s) { return s->tls_proto; }

void session_env_fini(struct session_env *env)
{
    tls_ctx_destroy(env->tls_ctx);     /* after every session's SSL is freed */
    env->tls_ctx = NULL;
    tls_ctx_destroy(env->tls_ctx_verify);
    env->tls_ctx_verify = NULL;
}

static void session_close(struct session *s)
{
    if (s->close_started)
        return;
    s->close_started = true;
    if (s->deadline) {
        rx_timer_cancel(s->env->rx, s->deadline);
        s->deadline = 0;
    }
    if (s->idle_timer) {
        rx_timer_cancel(s->env->rx, s->idle_timer);
        s->idle_timer = 0;
    }
    int rc = rx_close(s->env->rx, s->h);
    vl_assert(rc == 0);
}

int session_egress(const struct session *s) { return s->egress; }

void session_conf_levels(struct smtp_client_conf out[VL_TLS_LEVEL_COUNT],
                         const struct smtp_client_conf *base)
{
    for (unsigned l = 0; l < VL_TLS_LEVEL_COUNT; l++) {
        out[l] = *base;
        out[l].starttls = l != VL_TLS_NONE;
        out[l].tls_required = l == VL_TLS_ENCRYPT || l == VL_TLS_VERIFY;
    }
}

int session_open(struct session_env *env, struct host *h, const struct sockaddr *addr,
                 socklen_t addr_len, const char *ip, const char *sni,
                 enum vl_tls_level level, int egress)
{
    vl_assert((unsigned)level < VL_TLS_LEVEL_COUNT);
    if (!env->levels_ready) {
        session_conf_levels(env->conf, env->client_conf);
        env->levels_ready = true;
    }
    struct session *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int err = -errno;
        free(s);
        return err;
    }
    /* Replies gate every step of a transaction: never let Nagle hold a write. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    vl_assert(egress < (int)env->egress_count);
    if (egress >= 0) {             /* egress address: bind before connect */
        const struct session_egress *e = &env->egress[egress];
        if (e->addr.sa.sa_family != addr->sa_family ||
            bind(fd, &e->addr.sa, e->addr_len) != 0) {
            int err = e->addr.sa.sa_family != addr->sa_family ? -EAFNOSUPPORT : -errno;
            close(fd);
            free(s);
            return err;
        }
    }
    s->egress = egress;
    s->env = env;
    s->host = h;
    s->ip = ip;
    if (addr->sa_family == AF_INET)
        s->port = ntohs(((const struct sockaddr_in *)(const void *)addr)->sin_port);
    else if (addr->sa_family == AF_INET6)
        s->port = ntohs(((const struct sockaddr_in6 *)(const void *)addr)->sin6_port);
    s->sni = sni;
    s->level = level;
    s->conf = egress >= 0 ? &env->egress[egress].conf[level] : &env->conf[level];
    int rc = rx_open(s->env->rx, fd, session_cb, s, &s->h);
    if (rc < 0) {
        close(fd);
        free(s);
        return rc;
    }
    rc = rx_connect(env->rx, s->h, addr, addr_len, (int)env->connect_ms_timeout);
    if (rc < 0) {
        /* Refused at once: reported from the CLOSE event (session_closed), never
         * from inside the owner's call. */
        s->connect_err = rc;
        s->closing = true;
        s->close_fail = SMTP_FAIL_CONN;
        session_close(s);
    }
    return 0;
}

/* Append client command bytes to the accumulating buffer. */
static void session_queue_bytes(struct session *s, const char *p, size_t n)
{
    unsigned w = s->wcur;
    vl_assert(s->wlen[w] + n <= SESSION_WBUF_BYTES);
    memcpy(s->wbuf[w] + s->wlen[w], p, n);
    s->wlen[w] += (uint32_t)n;
}

/* Encode body bytes into the accumulating buffer while there is room. */
static void session_fill_body(struct session *s)
{
    if (!s->body_active)
        return;
    const struct vl_queue_msg *m = s->attempt->msg;
    unsigned w = s->wcur;
    if (!s->prefix_sent && s->attempt->prefix_len) {   /* per-recipient header lines first */
        size_t n = s->attempt->prefix_len, room = SESSION_WBUF_BYTES - s->wlen[w];
        if (room < SMTP_DATA_CHUNK_OUT_MAX(n) + SMTP_DATA_END_OUT_MAX)
            return;
        s->wlen[w] += (uint32_t)smtp_data_enc_chunk(&s->enc, s->attempt->prefix, n,
                                                    s->wbuf[w] + s->wlen[w], room);
    }
    s->prefix_sent = true;
    while (s->body_off < m->body_len) {
        size_t n = m->body_len - s->body_off;
        if (n > SESSION_BODY_CHUNK_BYTES)
            n = SESSION_BODY_CHUNK_BYTES;
        size_t room = SESSION_WBUF_BYTES - s->wlen[w];
        if (room < SMTP_DATA_CHUNK_OUT_MAX(n) + SMTP_DATA_END_OUT_MAX)
            return;
        s->wlen[w] += (uint32_t)smtp_data_enc_chunk(&s->enc, (const char *)m->body + s->body_off,
                                                    n, s->wbuf[w] + s->wlen[w], room);
        s->body_off += n;
        if (s->wlen[w] >= 2u * SESSION_BODY_CHUNK_BYTES)
            return;                /* enough for one send */
    }
    if (SESSION_WBUF_BYTES - s->wlen[w] < SMTP_DATA_END_OUT_MAX)
        return;
    s->wlen[w] += (uint32_t)smtp_data_enc_end(&s->enc, s->wbuf[w] + s->wlen[w],
                                              SESSION_WBUF_BYTES - s->wlen[w]);
    s->body_active = false;
    s->body_end_buffered = true;
}

/* Start a send of the accumulated bytes if none is in flight. */
static void session_flush(struct session *s)
{
    if (s->send_posted || s->close_started)
        return;
    session_fill_body(s);
    if (s->tls) {
        session_tls_flush(s);
        return;
    }
    unsigned w = s->wcur;
    if (s->wlen[w] == 0) {
        if (s->closing)
            session_close(s);
        return;
    }
    int rc = rx_send(s->env->rx, s->h, s->wbuf[w], s->wlen[w], 0);
    if (rc < 0) {
        smtp_client_on_close(&s->client, &s->acts);
        session_run_actions(s);
        return;
    }
    s->send_posted = true;
    s->body_end_inflight = s->body_end_buffered;
    s->body_end_buffered = false;
    s->wcur = 1u - w;
    s->wlen[s->wcur] = 0;
}

static void session_post_recv(struct session *s)
{
    if (s->recv_posted || s->close_started || !s->connected)
        return;
    if (s->tls) {
        session_tls_post_recv(s);
        return;
    }
    if (s->in_len == sizeof s->in) {
        /* A reply longer than the buffer with no complete line: the client
         * caps lines well below this, so this is a broken peer. */
        smtp_client_on_close(&s->client, &s->acts);
        session_run_actions(s);
        return;
    }
    if (rx_recv(s->env->rx, s->h, s->in + s->in_len, sizeof s->in - s->in_len, 0) == 0)
        s->recv_posted = true;
}

/* Arm the deadline for what the client awaits, unless it is armed for that
 * already; @p progress: the awaited send made progress (BODY: a new block). */
static void session_arm_deadline_for(struct session *s, bool progress)
{
    enum smtp_state st = smtp_client_state(&s->client);
    if (s->deadline && st == s->deadline_state && !(progress && st == SMTP_STATE_BODY))
        return;                    /* the same wait: never re-armed per byte */
    if (s->deadline) {
        rx_timer_cancel(s->env->rx, s->deadline);
        s->deadline = 0;
    }
    uint32_t ms = smtp_client_deadline_ms(&s->client);
    if (ms == 0 || s->close_started)
        return;
    if (rx_timer_add(s->env->rx, ms, session_timer_cb, s, &s->deadline) == 0)
        s->deadline_state = st;
}

static void session_arm_deadline(struct session *s)
{
    session_arm_deadline_for(s, false);
}

static void session_build_msg(struct session *s, const struct attempt *t)
{
    const struct vl_queue_msg *m = t->msg;
    s->msg = (struct smtp_msg){
        .from = m->return_path, .from_len = m->return_path_len,
        .size = m->body_len + t->prefix_len, .is_8bit = (m->flags & VL_QUEUE_MSG_8BIT) != 0,
        .rcpts = s->mrcpt, .rcpt_count = t->rcpt_count,
    };
    for (uint32_t i = 0; i < t->rcpt_count; i++)
        s->mrcpt[i] = (struct smtp_msg_rcpt){ .addr = t->rcpts[i]->addr,
                                              .addr_len = t->rcpts[i]->addr_len };
}

/* Start attempt @p t (one SMTP transaction) on the idle session @p s: fills
 * s->acts only. */
static void session_begin_fill(struct session *s, struct attempt *t)
{
    vl_assert(s->idle && !s->attempt);
    s->idle = false;
    if (s->idle_timer) {
        rx_timer_cancel(s->env->rx, s->idle_timer);
        s->idle_timer = 0;
    }
    s->attempt = t;
    session_build_msg(s, t);
    s->acts.count = 0;
    if (smtp_client_txn_begin(&s->client, &s->msg, &s->acts) != 0)
        vl_panic("txn_begin refused %u recipients", t->rcpt_count);
}

void session_begin(struct session *s, struct attempt *t)
{
    session_begin_fill(s, t);
    session_run_actions(s);
}

void session_quit_idle(struct session *s)
{
    vl_assert(s->idle);
    s->idle = false;
    if (s->idle_timer) {
        rx_timer_cancel(s->env->rx, s->idle_timer);
        s->idle_timer = 0;
    }
    s->acts.count = 0;
    smtp_client_quit(&s->client, &s->acts);
    session_run_actions(s);
}

/* The client is READY: the owner says what next (an attempt, the pool, or
 * QUIT). Fills s->acts (begin or quit) or waits idle; never runs actions. */
static void session_ready(struct session *s)
{
    const struct session_owner *o = &s->env->owner;
    bool first = !s->ever_ready;
    if (first) {
        s->ever_ready = true;
        session_tls_note_plain(s);
    }
    struct attempt *next = NULL;
    switch (o->ready(o->ctx, s, s->host, first, s->attempts_done, &next)) {
    case SESSION_NEXT_BEGIN:
        vl_assert(next != NULL);
        s->idle = true;            /* session_begin_fill() expects an idle session */
        session_begin_fill(s, next);
        return;
    case SESSION_NEXT_QUIT:
        s->acts.count = 0;
        smtp_client_quit(&s->client, &s->acts);
        return;
    case SESSION_NEXT_IDLE:        /* pooled by the owner */
        s->idle = true;
        rx_timer_add(s->env->rx, s->env->idle_ms_max, session_timer_cb, s, &s->idle_timer);
        return;
    }
    vl_panic("bad session_next");
}

static void session_on_close_action(struct session *s,
                                    const struct smtp_action *a)
{
    s->closing = true;
    s->close_fail = a->fail;
    s->close_fate = a->fate;
    if (a->fate.text) {
        size_t n = a->fate.text_len < VL_DIAG_TEXT_BYTES_MAX ? a->fate.text_len
                                                             : VL_DIAG_TEXT_BYTES_MAX;
        memcpy(s->close_text, a->fate.text, n);
        s->close_text[n] = '\0';
        s->close_fate.text = s->close_text;
        s->close_fate.text_len = (uint16_t)n;
    }
    /* A host that fails before it ever took an attempt, or says 421, is
     * failing: the owner moves its queued attempts to the next MX. */
    bool refused_421 = a->fate.code == 421;
    if (a->fail != SMTP_FAIL_NONE && (!s->ever_ready || refused_421))
        s->env->owner.host_failed(s->env->owner.ctx, s->host, &s->close_fate);
}

static void session_run_actions(struct session *s)
{
    for (;;) {
        for (uint32_t i = 0; i < s->acts.count; i++) {
            const struct smtp_action *a = &s->acts.a[i];
            switch (a->kind) {
            case SMTP_ACT_SEND:
                session_queue_bytes(s, smtp_client_out(&s->client) + a->off, a->len);
                break;
            case SMTP_ACT_SEND_BODY:
                s->body_active = true;
                s->body_off = 0;
                s->prefix_sent = false;
                smtp_data_enc_init(&s->enc);
                break;
            case SMTP_ACT_START_TLS:
                session_tls_start(s);
                break;
            case SMTP_ACT_FATE:
                s->env->owner.fate(s->env->owner.ctx, s->attempt, a->rcpt, &a->fate);
                break;
            case SMTP_ACT_TXN_DONE: {
                struct attempt *done = s->attempt;
                s->attempt = NULL;
                s->attempts_done++;
                s->env->owner.attempt_done(s->env->owner.ctx, done, false);
                break;
            }
            case SMTP_ACT_READY:
                s->want_ready = true;
                break;
            case SMTP_ACT_CLOSE:
                session_on_close_action(s, a);
                break;
            default:
                vl_panic("bad smtp action %d", (int)a->kind);
            }
        }
        s->acts.count = 0;
        if (!s->want_ready || s->closing)
            break;
        s->want_ready = false;
        session_ready(s);          /* may queue the next attempt's actions */
        if (s->acts.count == 0)
            break;
    }
    session_flush(s);
    session_arm_deadline(s);
}

/* A failure before the session took any attempt (connect, TLS): the host's
 * failure (451 @p status, @p text) to the owner, then close. */
static void session_fail_early(struct session *s, const char *status,
                               const char *text)
{
    struct smtp_fate f = { .kind = SMTP_FATE_DEFERRED, .code = 451, .local = true,
                           .text = text, .text_len = (uint16_t)strlen(text) };
    snprintf(f.status, sizeof f.status, "%s", status);
    s->closing = true;
    s->close_fail = SMTP_FAIL_CONN;
    s->env->owner.host_failed(s->env->owner.ctx, s->host, &f);
    session_close(s);
}

static void session_connect_done(struct session *s, int res)
{
    if (res < 0) {
        /* Never reached the banner: the host is failing (RFC 5321 5.1: try
         * the next address). No attempt is bound to a connecting session. */
        char text[160];
        if (strchr(s->ip, ':'))    /* IPv6: [addr]:port */
            snprintf(text, sizeof text, "connect to [%s]:%u: %s", s->ip, s->port,
                     vl_strerror(res));
        else
            snprintf(text, sizeof text, "connect to %s:%u: %s", s->ip, s->port,
                     vl_strerror(res));
        session_fail_early(s, "4.4.1", text);
        return;
    }
    s->connected = true;
    if (smtp_client_init(&s->client, s->conf) != 0)
        vl_panic("bad EHLO name: config validation missed it");
    session_post_recv(s);
    session_arm_deadline(s);
}

static void session_recv_done(struct session *s, int res)
{
    s->recv_posted = false;
    if (s->close_started)
        return;
    if (s->tls) {
        session_tls_recv_done(s, res);
        return;
    }
    if (res <= 0) {
        s->acts.count = 0;
        smtp_client_on_close(&s->client, &s->acts);
        session_run_actions(s);
        if (!s->close_started)
            session_close(s);
        return;
    }
    s->in_len += (uint32_t)res;
    session_consume(s);
    if (!s->closing)
        session_post_recv(s);
}

static void session_send_done(struct session *s, int res)
{
    s->send_posted = false;
    if (s->close_started)
        return;
    if (res < 0) {
        s->acts.count = 0;
        smtp_client_on_close(&s->client, &s->acts);
        session_run_actions(s);
        if (!s->close_started)
            session_close(s);
        return;
    }
    if (s->body_end_inflight) {
        s->body_end_inflight = false;
        s->acts.count = 0;
        smtp_client_body_sent(&s->client, &s->acts);
        session_run_actions(s);    /* arms the final reply's deadline (DOT) */
        return;
    }
    if (res > 0)
        session_arm_deadline_for(s, true);   /* BODY: the peer took a block */
    session_flush(s);
}

static void session_closed(struct session *s)
{
    const struct session_owner *o = &s->env->owner;
    if (s->connect_err) {          /* refused at once in session_open(): report now */
        int err = s->connect_err;
        s->connect_err = 0;
        session_connect_done(s, err);
    }
    if (s->idle) {
        s->idle = false;
        o->unpooled(o->ctx, s, s->host);
    }
    if (s->attempt) {
        /* Closed with an attempt bound (reactor error paths): the client
         * defers every recipient still without a fate. */
        struct attempt *t = s->attempt;
        s->attempt = NULL;
        s->acts.count = 0;
        smtp_client_on_close(&s->client, &s->acts);
        for (uint32_t i = 0; i < s->acts.count; i++) {
            const struct smtp_action *a = &s->acts.a[i];
            if (a->kind == SMTP_ACT_FATE)
                o->fate(o->ctx, t, a->rcpt, &a->fate);
            else if (a->kind == SMTP_ACT_TXN_DONE)
                o->attempt_done(o->ctx, t, true);
        }
    }
    struct host *h = s->host;
    bool ever_ready = s->ever_ready, failed = s->close_fail != SMTP_FAIL_NONE;
    int egress = s->egress;
    session_tls_free(s);
    free(s);
    o->closed(o->ctx, h, ever_ready, failed, egress);
}

static void session_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct session *s = ev->user;
    switch (ev->op) {
    case RX_OP_CONNECT: session_connect_done(s, ev->res); break;
    case RX_OP_RECV:    session_recv_done(s, ev->res);    break;
    case RX_OP_SEND:    session_send_done(s, ev->res);    break;
    case RX_OP_CLOSE:   session_closed(s);                break;
    default: vl_panic("session: unexpected op %d", (int)ev->op);
    }
}

static void session_timer_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct session *s = ev->user;
    if (ev->h == s->idle_timer) {
        s->idle_timer = 0;
        if (s->idle && !s->close_started) {
            s->env->owner.unpooled(s->env->owner.ctx, s, s->host);
            session_quit_idle(s);
        }
        return;
    }
    if (ev->h != s->deadline)
        return;                    /* a timer we cancelled too late */
    s->deadline = 0;
    if (s->close_started)
        return;
    s->acts.count = 0;
    smtp_client_on_timeout(&s->client, &s->acts);
    session_run_actions(s);
    if (!s->close_started)
        session_close(s);
}

/* ---- STARTTLS ---------------------------------------------------------------
 * After the 220 to STARTTLS (SMTP_ACT_START_TLS) every byte goes through
 * s->tls: received ciphertext is fed to the tls_conn and the plaintext goes
 * into s->in for the client; the write buffers are sealed into tls->out, the
 * one buffer the kernel sends from. The client already refused bytes pipelined
 * after the 220 (its more-input flag) before it asked for the handshake. */

static void session_tls_free(struct session *s)
{
    if (!s->tls)
        return;
    tls_conn_destroy(s->tls->conn);
    free(s->tls);
    s->tls = NULL;
}

/* First READY: STARTTLS was offered and we wanted it, yet we are in plaintext:
 * the server refused it (454 or 5xx) and level `may` went on (PROTOCOL 1.3). */
static void session_tls_note_plain(struct session *s)
{
    if (s->tls || !s->conf->starttls ||
        !smtp_ehlo_has(smtp_client_caps(&s->client), SMTP_EXT_STARTTLS))
        return;
    vl_log_at(VL_LOG_INFO, "evt=starttls_refused shard=%u ip=%s action=plaintext",
              s->env->shard_idx, s->ip);
}

/* The connection is gone or its TLS is broken: the client defers and closes. */
static void session_tls_lost(struct session *s)
{
    s->acts.count = 0;
    smtp_client_on_close(&s->client, &s->acts);
    session_run_actions(s);
    if (!s->close_started)
        session_close(s);
}

/* The handshake failed before the session was ever ready. Level `may`: the
 * owner retries the host without STARTTLS (a broken TLS stack must not defer
 * mail forever; Postfix and Exim do the same); the session just closes.
 * Otherwise, like a failed connect, the host is marked failing (its queued
 * attempts move on or defer): 4.7.5 when the certificate did not verify. */
static void session_tls_failed(struct session *s, const char *why)
{
    char text[240];
    snprintf(text, sizeof text, "TLS handshake with %s failed: %s", s->ip, why);
    bool fallback = s->level == VL_TLS_MAY && s->env->owner.tls_broken;
    vl_log_at(VL_LOG_INFO, "evt=tls_fail shard=%u ip=%s mx=%s level=%s action=%s err=\"%s\"",
              s->env->shard_idx, s->ip, s->sni ? s->sni : "", vl_tls_level_name(s->level),
              fallback ? "plaintext_retry" : "defer", why);
    if (s->ever_ready) {           /* not reached today: STARTTLS comes before READY */
        session_tls_lost(s);
        return;
    }
    if (fallback) {
        s->env->owner.tls_broken(s->env->owner.ctx, s->host, why);
        s->closing = true;
        s->close_fail = SMTP_FAIL_CONN;
        session_close(s);
        return;
    }
    bool cert = s->tls && tls_conn_verify_failed(s->tls->conn);
    session_fail_early(s, cert ? "4.7.5" : "4.7.0", text);
}

static void session_tls_start(struct session *s)
{
    vl_assert(!s->tls);            /* s->in holds only the 220: the client checked */
    int rc = 0;
    char why[300] = "";
    /* One context per shard and kind, never per connection. */
    bool verify = s->level == VL_TLS_VERIFY;
    struct tls_ctx **ctx = verify ? &s->env->tls_ctx_verify : &s->env->tls_ctx;
    if (!*ctx && verify)
        rc = tls_ctx_client_verify_create(ctx, s->env->tls_ca_file, why, sizeof why);
    else if (!*ctx)
        rc = tls_ctx_client_create(ctx);
    if (rc == 0) {
        s->tls = malloc(sizeof *s->tls);
        rc = s->tls ? 0 : -ENOMEM;
    }
    if (rc == 0) {
        s->tls->shut = s->tls->end_sealed = false;
        rc = tls_conn_create(&s->tls->conn, *ctx, false, s->sni);
        if (rc < 0) {
            free(s->tls);
            s->tls = NULL;
        }
    }
    if (rc == 0 && tls_conn_handshake(s->tls->conn) < 0)   /* ClientHello, sent by the flush */
        rc = VL_E_TLS;
    if (rc < 0)
        session_tls_failed(s, why[0] ? why : vl_strerror(rc));
}

static void session_tls_flush(struct session *s)
{
    struct session_tls *st = s->tls;
    unsigned w = s->wcur;
    if (s->wlen[w] > 0) {
        /* Before the handshake only a final QUIT can be queued: drop it. */
        if (tls_conn_established(st->conn) &&
            tls_conn_write(st->conn, s->wbuf[w], s->wlen[w]) < 0) {
            session_tls_lost(s);
            return;
        }
        s->wlen[w] = 0;            /* sealed: the buffer is free again */
        st->end_sealed |= s->body_end_buffered;
        s->body_end_buffered = false;
    }
    if (s->closing && s->close_fail == SMTP_FAIL_NONE && !st->shut &&
        tls_conn_established(st->conn)) {
        st->shut = true;           /* after QUIT: close_notify, so the peer can resume */
        tls_conn_shutdown(st->conn);
    }
    size_t n = tls_conn_take(st->conn, st->out, sizeof st->out);
    if (n == 0) {
        if (s->closing)
            session_close(s);
        return;
    }
    if (rx_send(s->env->rx, s->h, st->out, n, 0) < 0) {
        session_tls_lost(s);
        return;
    }
    s->send_posted = true;
    s->body_end_inflight = st->end_sealed && tls_conn_pending(st->conn) == 0;
    if (s->body_end_inflight)
        st->end_sealed = false;
}

static void session_tls_post_recv(struct session *s)
{
    if (rx_recv(s->env->rx, s->h, s->tls->in, sizeof s->tls->in, 0) == 0)
        s->recv_posted = true;
}

/* Plaintext in s->in to the client, reply by reply; keeps an incomplete tail. */
static void session_consume(struct session *s)
{
    size_t off = 0;
    while (off < s->in_len && !s->closing) {
        size_t used = 0;
        s->acts.count = 0;
        int rc = smtp_client_on_bytes(&s->client, s->in + off, s->in_len - off, &used,
                                      &s->acts);
        off += used;
        session_run_actions(s);
        if (rc <= 0)
            break;
    }
    memmove(s->in, s->in + off, s->in_len - off);
    s->in_len -= (uint32_t)off;
}

static void session_tls_recv_done(struct session *s, int res)
{
    struct session_tls *st = s->tls;
    if (res <= 0 || tls_conn_feed(st->conn, st->in, (size_t)res) < 0) {
        session_tls_lost(s);
        return;
    }
    if (!tls_conn_established(st->conn)) {
        int rc = tls_conn_handshake(st->conn);
        if (rc < 0) {
            session_tls_failed(s, tls_conn_error(st->conn));
            return;
        }
        if (rc == 0) {             /* the next flight: send ours, read theirs */
            session_flush(s);
            session_post_recv(s);
            return;
        }
        s->tls_proto = tls_conn_protocol(st->conn);
        s->acts.count = 0;
        smtp_client_tls_done(&s->client, &s->acts);   /* forget capabilities, EHLO again */
        session_run_actions(s);
    }
    for (unsigned k = 0; k < SESSION_TLS_READS_MAX && !s->closing && !s->close_started; k++) {
        if (s->in_len == sizeof s->in) {   /* no complete line in 16 KiB: broken peer */
            session_tls_lost(s);
            return;
        }
        int n = tls_conn_read(st->conn, s->in + s->in_len, sizeof s->in - s->in_len);
        if (n == 0)
            break;
        if (n < 0) {
            vl_log_at(VL_LOG_INFO, "evt=tls_read_fail shard=%u ip=%s err=\"%s\"",
                      s->env->shard_idx, s->ip, tls_conn_error(st->conn));
            session_tls_lost(s);
            return;
        }
        s->in_len += (uint32_t)n;
        session_consume(s);
    }
    if (!s->closing)
        session_post_recv(s);
}
