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
 * (smtp_client_deadline_ms(), re-armed only when the client changes what it
 * awaits, never per byte), one idle timer while pooled.
 *
 * STARTTLS (level from --tls; the client asks with SMTP_ACT_START_TLS): a
 * struct session_tls is allocated then, and from there every byte goes
 * through it (session_tls_*: handshake over the same recv/send paths, write
 * buffers sealed into one ciphertext buffer, plaintext decrypted into in[]).
 * Plaintext sessions only pay a NULL check. A handshake failure before READY
 * marks the host failing, like a failed connect.
 *
 * Invariant: a session is freed only at its reactor RX_OP_CLOSE event, after
 * which no completion refers to it.
 */
#include "shard.h"

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

struct session {
    struct session *next_idle;
    struct shard *sh;
    struct host *host;
    rx_handle_t h;
    bool connected, ever_ready, closing, close_started, idle, want_ready;
    bool recv_posted, send_posted;
    bool body_active;              /* encoding the body into the write buffers */
    bool body_end_buffered;        /* the end marker is in wbuf[wcur] */
    bool body_end_inflight;        /* ... or in the buffer being sent */
    enum smtp_fail close_fail;
    struct smtp_fate close_fate;
    char close_text[VL_DIAG_TEXT_BYTES_MAX + 1];
    struct txn *txn;
    uint32_t txns_done;
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
    const char *sni;               /* MX name of the first transaction, borrowed */
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
static void session_run_actions(struct shard *sh, struct session *s);
static void session_consume(struct shard *sh, struct session *s);
static void session_connect_done(struct shard *sh, struct session *s, int res);
static void session_tls_start(struct shard *sh, struct session *s);
static void session_tls_flush(struct shard *sh, struct session *s);
static void session_tls_post_recv(struct shard *sh, struct session *s);
static void session_tls_recv_done(struct shard *sh, struct session *s, int res);
static void session_tls_free(struct session *s);
static void session_tls_note_plain(struct shard *sh, struct session *s);

struct session *session_next_idle(struct session *s) { return s->next_idle; }

static void session_close(struct shard *sh, struct session *s)
{
    if (s->close_started)
        return;
    s->close_started = true;
    if (s->deadline) {
        rx_timer_cancel(sh->rx, s->deadline);
        s->deadline = 0;
    }
    if (s->idle_timer) {
        rx_timer_cancel(sh->rx, s->idle_timer);
        s->idle_timer = 0;
    }
    int rc = rx_close(sh->rx, s->h);
    vl_assert(rc == 0);
}

int session_open(struct shard *sh, struct host *h)
{
    if (sh->sessions >= VL_SESSIONS_PER_SHARD_MAX)
        return -EAGAIN;
    struct session *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    int fd = socket(h->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int err = -errno;
        free(s);
        return err;
    }
    /* Replies gate every step of a transaction: never let Nagle hold a write. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->sh = sh;
    s->host = h;
    s->sni = h->pending ? h->pending->mx_name : NULL;
    int rc = rx_open(sh->rx, fd, session_cb, s, &s->h);
    if (rc < 0) {
        close(fd);
        free(s);
        return rc;
    }
    h->active++;
    h->opening++;
    sh->sessions++;
    atomic_fetch_add_explicit(&sh->ctr->conns, 1, memory_order_relaxed);
    rc = rx_connect(sh->rx, s->h, &h->addr.sa, h->addr_len, (int)sh->cfg->connect_ms_timeout);
    if (rc < 0)
        session_connect_done(sh, s, rc);   /* fails the host; CLOSE frees s */
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
    const struct vl_queue_msg *m = s->txn->msg;
    unsigned w = s->wcur;
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
static void session_flush(struct shard *sh, struct session *s)
{
    if (s->send_posted || s->close_started)
        return;
    session_fill_body(s);
    if (s->tls) {
        session_tls_flush(sh, s);
        return;
    }
    unsigned w = s->wcur;
    if (s->wlen[w] == 0) {
        if (s->closing)
            session_close(sh, s);
        return;
    }
    int rc = rx_send(sh->rx, s->h, s->wbuf[w], s->wlen[w], 0);
    if (rc < 0) {
        smtp_client_on_close(&s->client, &s->acts);
        session_run_actions(sh, s);
        return;
    }
    s->send_posted = true;
    s->body_end_inflight = s->body_end_buffered;
    s->body_end_buffered = false;
    s->wcur = 1u - w;
    s->wlen[s->wcur] = 0;
}

static void session_post_recv(struct shard *sh, struct session *s)
{
    if (s->recv_posted || s->close_started || !s->connected)
        return;
    if (s->tls) {
        session_tls_post_recv(sh, s);
        return;
    }
    if (s->in_len == sizeof s->in) {
        /* A reply longer than the buffer with no complete line: the client
         * caps lines well below this, so this is a broken peer. */
        smtp_client_on_close(&s->client, &s->acts);
        session_run_actions(sh, s);
        return;
    }
    if (rx_recv(sh->rx, s->h, s->in + s->in_len, sizeof s->in - s->in_len, 0) == 0)
        s->recv_posted = true;
}

static void session_arm_deadline(struct shard *sh, struct session *s)
{
    enum smtp_state st = smtp_client_state(&s->client);
    if (s->deadline && st == s->deadline_state)
        return;                    /* the same wait: never re-armed per byte */
    if (s->deadline) {
        rx_timer_cancel(sh->rx, s->deadline);
        s->deadline = 0;
    }
    uint32_t ms = smtp_client_deadline_ms(&s->client);
    if (ms == 0 || s->close_started)
        return;
    if (rx_timer_add(sh->rx, ms, session_timer_cb, s, &s->deadline) == 0)
        s->deadline_state = st;
}

static void session_build_msg(struct session *s, const struct txn *t)
{
    const struct vl_queue_msg *m = t->msg;
    s->msg = (struct smtp_msg){
        .from = m->return_path, .from_len = m->return_path_len,
        .size = m->body_len, .is_8bit = (m->flags & VL_QUEUE_MSG_8BIT) != 0,
        .rcpts = s->mrcpt, .rcpt_count = t->rcpt_count,
    };
    for (uint32_t i = 0; i < t->rcpt_count; i++)
        s->mrcpt[i] = (struct smtp_msg_rcpt){ .addr = t->rcpts[i]->addr,
                                              .addr_len = t->rcpts[i]->addr_len };
}

/* Start transaction @p t on the idle session @p s: fills s->acts only. */
static void session_begin_fill(struct shard *sh, struct session *s, struct txn *t)
{
    vl_assert(s->idle && !s->txn);
    s->idle = false;
    if (s->idle_timer) {
        rx_timer_cancel(sh->rx, s->idle_timer);
        s->idle_timer = 0;
    }
    s->txn = t;
    t->host = s->host;
    t->tls = s->tls_proto;
    session_build_msg(s, t);
    s->acts.count = 0;
    if (smtp_client_txn_begin(&s->client, &s->msg, &s->acts) != 0)
        vl_panic("txn_begin refused %u recipients", t->rcpt_count);
}

void session_begin(struct shard *sh, struct session *s, struct txn *t)
{
    session_begin_fill(sh, s, t);
    session_run_actions(sh, s);
}

/* Unlink @p s from its host's idle list. */
static void session_unidle(struct session *s)
{
    struct session **pp = &s->host->idle;
    while (*pp && *pp != s)
        pp = &(*pp)->next_idle;
    if (*pp)
        *pp = s->next_idle;
    s->next_idle = NULL;
}

void session_quit_idle(struct shard *sh, struct session *s)
{
    session_unidle(s);
    s->idle = false;
    if (s->idle_timer) {
        rx_timer_cancel(sh->rx, s->idle_timer);
        s->idle_timer = 0;
    }
    s->acts.count = 0;
    smtp_client_quit(&s->client, &s->acts);
    session_run_actions(sh, s);
}

/* The client is READY: next transaction for this host, idle, or QUIT.
 * Fills s->acts (begin or quit) or pools the session; never runs actions. */
static void session_ready(struct shard *sh, struct session *s)
{
    struct host *h = s->host;
    if (!s->ever_ready) {
        s->ever_ready = true;
        session_tls_note_plain(sh, s);
        vl_assert(h->opening > 0);
        h->opening--;
        h->healthy++;
        h->fail_code = 0;          /* got through: no failure pending (route.c) */
    }
    h->fail_count = 0;
    h->fail_until_ms = 0;
    if (!sh->stopping && s->txns_done < sh->cfg->msgs_per_conn_max && h->pending) {
        struct txn *t = h->pending;
        h->pending = t->next;
        if (!h->pending)
            h->pending_tail = &h->pending;
        h->pending_count--;
        t->next = NULL;
        s->idle = true;            /* session_begin_fill() expects an idle session */
        session_begin_fill(sh, s, t);
        return;
    }
    if (sh->stopping || s->txns_done >= sh->cfg->msgs_per_conn_max || sh->draining) {
        s->acts.count = 0;
        smtp_client_quit(&s->client, &s->acts);
        return;
    }
    s->idle = true;
    s->next_idle = h->idle;
    h->idle = s;
    rx_timer_add(sh->rx, sh->cfg->idle_ms_max, session_timer_cb, s, &s->idle_timer);
}

static void session_on_close_action(struct shard *sh, struct session *s,
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
    /* A host that fails before it ever took a transaction, or says 421, is
     * marked failing: its queued transactions move to the next MX. */
    bool refused_421 = a->fate.code == 421;
    if (a->fail != SMTP_FAIL_NONE && (!s->ever_ready || refused_421))
        route_host_failed(sh, s->host, &s->close_fate);
}

static void session_run_actions(struct shard *sh, struct session *s)
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
                smtp_data_enc_init(&s->enc);
                break;
            case SMTP_ACT_START_TLS:
                session_tls_start(sh, s);
                break;
            case SMTP_ACT_FATE:
                shard_outcome(sh, s->txn, a->rcpt, &a->fate, s->txn->mx_name, s->host->ip);
                break;
            case SMTP_ACT_TXN_DONE:
                shard_txn_free(sh, s->txn);
                s->txn = NULL;
                s->txns_done++;
                atomic_fetch_add_explicit(&sh->ctr->txns, 1, memory_order_relaxed);
                break;
            case SMTP_ACT_READY:
                s->want_ready = true;
                break;
            case SMTP_ACT_CLOSE:
                session_on_close_action(sh, s, a);
                break;
            default:
                vl_panic("bad smtp action %d", (int)a->kind);
            }
        }
        s->acts.count = 0;
        if (!s->want_ready || s->closing)
            break;
        s->want_ready = false;
        session_ready(sh, s);      /* may queue the next transaction's actions */
        if (s->acts.count == 0)
            break;
    }
    session_flush(sh, s);
    session_arm_deadline(sh, s);
}

/* A failure before the session took any transaction (connect, TLS): the
 * host's failure (451 @p status, @p text), then close. */
static void session_fail_early(struct shard *sh, struct session *s, const char *status,
                               const char *text)
{
    struct smtp_fate f = { .kind = SMTP_FATE_DEFERRED, .code = 451, .local = true,
                           .text = text, .text_len = (uint16_t)strlen(text) };
    snprintf(f.status, sizeof f.status, "%s", status);
    s->closing = true;
    s->close_fail = SMTP_FAIL_CONN;
    route_host_failed(sh, s->host, &f);
    session_close(sh, s);
}

static void session_connect_done(struct shard *sh, struct session *s, int res)
{
    if (res < 0) {
        /* Never reached the banner: the host is failing (RFC 5321 5.1: try
         * the next address). No transaction is bound to a connecting session. */
        char text[160];
        snprintf(text, sizeof text, "connect to %s: %s", s->host->ip, vl_strerror(res));
        session_fail_early(sh, s, "4.4.1", text);
        return;
    }
    s->connected = true;
    if (smtp_client_init(&s->client, &sh->client_conf) != 0)
        vl_panic("bad EHLO name: config validation missed it");
    session_post_recv(sh, s);
    session_arm_deadline(sh, s);
}

static void session_recv_done(struct shard *sh, struct session *s, int res)
{
    s->recv_posted = false;
    if (s->close_started)
        return;
    if (s->tls) {
        session_tls_recv_done(sh, s, res);
        return;
    }
    if (res <= 0) {
        s->acts.count = 0;
        smtp_client_on_close(&s->client, &s->acts);
        session_run_actions(sh, s);
        if (!s->close_started)
            session_close(sh, s);
        return;
    }
    s->in_len += (uint32_t)res;
    session_consume(sh, s);
    if (!s->closing)
        session_post_recv(sh, s);
}

static void session_send_done(struct shard *sh, struct session *s, int res)
{
    s->send_posted = false;
    if (s->close_started)
        return;
    if (res < 0) {
        s->acts.count = 0;
        smtp_client_on_close(&s->client, &s->acts);
        session_run_actions(sh, s);
        if (!s->close_started)
            session_close(sh, s);
        return;
    }
    if (s->body_end_inflight) {
        s->body_end_inflight = false;
        s->acts.count = 0;
        smtp_client_body_sent(&s->client, &s->acts);
        session_run_actions(sh, s);
        return;
    }
    session_flush(sh, s);
}

static void session_closed(struct shard *sh, struct session *s)
{
    struct host *h = s->host;
    if (s->idle)
        session_unidle(s);
    if (s->txn) {
        /* Closed with a transaction bound (reactor error paths): the client
         * defers every recipient still without a fate. */
        s->acts.count = 0;
        smtp_client_on_close(&s->client, &s->acts);
        for (uint32_t i = 0; i < s->acts.count; i++) {
            const struct smtp_action *a = &s->acts.a[i];
            if (a->kind == SMTP_ACT_FATE)
                shard_outcome(sh, s->txn, a->rcpt, &a->fate, s->txn->mx_name, h->ip);
            else if (a->kind == SMTP_ACT_TXN_DONE)
                shard_txn_free(sh, s->txn);
        }
        s->txn = NULL;
    }
    vl_assert(h->active > 0);
    h->active--;
    if (s->ever_ready) {
        vl_assert(h->healthy > 0);
        h->healthy--;
        if (s->close_fail == SMTP_FAIL_NONE)
            h->fail_code = 0;      /* ended normally: the pool may grow again */
    } else {
        vl_assert(h->opening > 0);
        h->opening--;
    }
    vl_assert(sh->sessions > 0);
    sh->sessions--;
    session_tls_free(s);
    free(s);
    route_host_pump(sh, h);
}

static void session_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct session *s = ev->user;
    struct shard *sh = s->sh;
    switch (ev->op) {
    case RX_OP_CONNECT: session_connect_done(sh, s, ev->res); break;
    case RX_OP_RECV:    session_recv_done(sh, s, ev->res);    break;
    case RX_OP_SEND:    session_send_done(sh, s, ev->res);    break;
    case RX_OP_CLOSE:   session_closed(sh, s);                break;
    default: vl_panic("session: unexpected op %d", (int)ev->op);
    }
}

static void session_timer_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct session *s = ev->user;
    struct shard *sh = s->sh;
    if (ev->h == s->idle_timer) {
        s->idle_timer = 0;
        if (s->idle && !s->close_started)
            session_quit_idle(sh, s);
        return;
    }
    if (ev->h != s->deadline)
        return;                    /* a timer we cancelled too late */
    s->deadline = 0;
    if (s->close_started)
        return;
    s->acts.count = 0;
    smtp_client_on_timeout(&s->client, &s->acts);
    session_run_actions(sh, s);
    if (!s->close_started)
        session_close(sh, s);
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
static void session_tls_note_plain(struct shard *sh, struct session *s)
{
    if (s->tls || !sh->client_conf.starttls ||
        !smtp_ehlo_has(smtp_client_caps(&s->client), SMTP_EXT_STARTTLS))
        return;
    vl_log_at(VL_LOG_INFO, "evt=starttls_refused shard=%u ip=%s action=plaintext", sh->idx,
              s->host->ip);
}

/* The connection is gone or its TLS is broken: the client defers and closes. */
static void session_tls_lost(struct shard *sh, struct session *s)
{
    s->acts.count = 0;
    smtp_client_on_close(&s->client, &s->acts);
    session_run_actions(sh, s);
    if (!s->close_started)
        session_close(sh, s);
}

/* The handshake failed before the session was ever ready: like a failed
 * connect, the host is marked failing (its transactions move on or defer). */
static void session_tls_failed(struct shard *sh, struct session *s, const char *why)
{
    char text[240];
    snprintf(text, sizeof text, "TLS handshake with %s failed: %s", s->host->ip, why);
    vl_log_at(VL_LOG_INFO, "evt=tls_fail shard=%u ip=%s err=\"%s\"", sh->idx, s->host->ip, why);
    if (s->ever_ready) {           /* not reached today: STARTTLS comes before READY */
        session_tls_lost(sh, s);
        return;
    }
    session_fail_early(sh, s, "4.7.0", text);
}

static void session_tls_start(struct shard *sh, struct session *s)
{
    vl_assert(!s->tls);            /* s->in holds only the 220: the client checked */
    int rc = 0;
    if (!sh->tls_ctx)
        rc = tls_ctx_client_create(&sh->tls_ctx);   /* one per shard, never per connection */
    if (rc == 0) {
        s->tls = malloc(sizeof *s->tls);
        rc = s->tls ? 0 : -ENOMEM;
    }
    if (rc == 0) {
        s->tls->shut = s->tls->end_sealed = false;
        rc = tls_conn_create(&s->tls->conn, sh->tls_ctx, false, s->sni);
        if (rc < 0) {
            free(s->tls);
            s->tls = NULL;
        }
    }
    if (rc == 0 && tls_conn_handshake(s->tls->conn) < 0)   /* ClientHello, sent by the flush */
        rc = VL_E_TLS;
    if (rc < 0)
        session_tls_failed(sh, s, vl_strerror(rc));
}

static void session_tls_flush(struct shard *sh, struct session *s)
{
    struct session_tls *st = s->tls;
    unsigned w = s->wcur;
    if (s->wlen[w] > 0) {
        /* Before the handshake only a final QUIT can be queued: drop it. */
        if (tls_conn_established(st->conn) &&
            tls_conn_write(st->conn, s->wbuf[w], s->wlen[w]) < 0) {
            session_tls_lost(sh, s);
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
            session_close(sh, s);
        return;
    }
    if (rx_send(sh->rx, s->h, st->out, n, 0) < 0) {
        session_tls_lost(sh, s);
        return;
    }
    s->send_posted = true;
    s->body_end_inflight = st->end_sealed && tls_conn_pending(st->conn) == 0;
    if (s->body_end_inflight)
        st->end_sealed = false;
}

static void session_tls_post_recv(struct shard *sh, struct session *s)
{
    if (rx_recv(sh->rx, s->h, s->tls->in, sizeof s->tls->in, 0) == 0)
        s->recv_posted = true;
}

/* Plaintext in s->in to the client, reply by reply; keeps an incomplete tail. */
static void session_consume(struct shard *sh, struct session *s)
{
    size_t off = 0;
    while (off < s->in_len && !s->closing) {
        size_t used = 0;
        s->acts.count = 0;
        int rc = smtp_client_on_bytes(&s->client, s->in + off, s->in_len - off, &used,
                                      &s->acts);
        off += used;
        session_run_actions(sh, s);
        if (rc <= 0)
            break;
    }
    memmove(s->in, s->in + off, s->in_len - off);
    s->in_len -= (uint32_t)off;
}

static void session_tls_recv_done(struct shard *sh, struct session *s, int res)
{
    struct session_tls *st = s->tls;
    if (res <= 0 || tls_conn_feed(st->conn, st->in, (size_t)res) < 0) {
        session_tls_lost(sh, s);
        return;
    }
    if (!tls_conn_established(st->conn)) {
        int rc = tls_conn_handshake(st->conn);
        if (rc < 0) {
            session_tls_failed(sh, s, tls_conn_error(st->conn));
            return;
        }
        if (rc == 0) {             /* the next flight: send ours, read theirs */
            session_flush(sh, s);
            session_post_recv(sh, s);
            return;
        }
        s->tls_proto = tls_conn_protocol(st->conn);
        s->acts.count = 0;
        smtp_client_tls_done(&s->client, &s->acts);   /* forget capabilities, EHLO again */
        session_run_actions(sh, s);
    }
    for (unsigned k = 0; k < SESSION_TLS_READS_MAX && !s->closing && !s->close_started; k++) {
        if (s->in_len == sizeof s->in) {   /* no complete line in 16 KiB: broken peer */
            session_tls_lost(sh, s);
            return;
        }
        int n = tls_conn_read(st->conn, s->in + s->in_len, sizeof s->in - s->in_len);
        if (n == 0)
            break;
        if (n < 0) {
            vl_log_at(VL_LOG_INFO, "evt=tls_read_fail shard=%u ip=%s err=\"%s\"", sh->idx,
                   s->host->ip, tls_conn_error(st->conn));
            session_tls_lost(sh, s);
            return;
        }
        s->in_len += (uint32_t)n;
        session_consume(sh, s);
    }
    if (!s->closing)
        session_post_recv(sh, s);
}
