/*
 * blast_session.c - one blast connection: connect, banner, EHLO (HELO on
 * 5xx), STARTTLS, AUTH PLAIN, then messages (MAIL, RCPTs, DATA + body + dot,
 * or BDAT LAST + body; pipelined when the server offers PIPELINING and the
 * run wants it), RSET after a refused transaction, QUIT after msgs_per_conn.
 *
 * Replies are matched to commands through a ring of what was written
 * (expect[]), in order; a reply with nothing awaited is a protocol error.
 * Every phase's time is taken here (blast.h names them). Each started
 * message ends exactly once (blast_stats_msg_ended), by the code of its
 * deciding reply or as an error when the connection fails first; each failed
 * connection is counted once, by kind.
 */
#include "blast_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "volley/error.h"

static void sess_cb(struct rx *rx, const struct rx_event *ev);
static void sess_flush(struct blast_session *s);
static void sess_post_recv(struct blast_session *s);
static void sess_after_ehlo(struct blast_session *s);
static void sess_after_txn(struct blast_session *s);
static void sess_txn_begin(struct blast_session *s);
static void sess_txn_next(struct blast_session *s);

static const struct blast_conf *CF(const struct blast_session *s) { return s->th->conf; }

static int outcome_of(uint16_t code)
{
    return code < 300 ? BLAST_OUT_OK : code < 500 ? BLAST_OUT_TEMPFAIL : BLAST_OUT_PERMFAIL;
}

/* ---- writing ------------------------------------------------------------ */

static void sess_expect(struct blast_session *s, enum blast_cmd c)
{
    vl_assert(s->exp_count < BLAST_EXPECT_MAX);
    if (s->exp_count == 0)
        s->t_wait = blast_now_ns(s->th);
    s->expect[(s->exp_head + s->exp_count++) % BLAST_EXPECT_MAX] = (uint8_t)c;
}

__attribute__((format(printf, 3, 4)))
static void sess_cmd(struct blast_session *s, enum blast_cmd c, const char *fmt, ...)
{
    unsigned w = s->wcur;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->wbuf[w] + s->wlen[w], BLAST_WBUF_BYTES - s->wlen[w], fmt, ap);
    va_end(ap);
    vl_assert(n > 0 && s->wlen[w] + (uint32_t)n < BLAST_WBUF_BYTES);
    s->wlen[w] += (uint32_t)n;
    sess_expect(s, c);
}

/* Content bytes into the accumulating buffer while there is room: header,
 * filler from the template, CRLF, and (DATA) the end marker. */
static void sess_fill_body(struct blast_session *s)
{
    if (!s->body_active)
        return;
    unsigned w = s->wcur;
    const uint64_t total = s->msg_size;
    while (s->body_off < total && s->wlen[w] < BLAST_WBUF_BYTES) {
        uint64_t room = BLAST_WBUF_BYTES - s->wlen[w], n;
        const char *src;
        if (s->body_off < s->hdr_len) {
            src = s->hdr + s->body_off;
            n = s->hdr_len - s->body_off;
        } else if (s->body_off < s->hdr_len + s->body_len) {
            uint64_t o = s->body_off - s->hdr_len;
            src = s->th->tmpl + o % BLAST_TEMPLATE_BYTES;
            n = s->body_len - o;
            if (n > BLAST_TEMPLATE_BYTES - o % BLAST_TEMPLATE_BYTES)
                n = BLAST_TEMPLATE_BYTES - o % BLAST_TEMPLATE_BYTES;
        } else {
            uint64_t o = s->body_off - s->hdr_len - s->body_len;
            src = &"\r\n"[o];
            n = 2 - o;
        }
        if (n > room)
            n = room;
        memcpy(s->wbuf[w] + s->wlen[w], src, n);
        s->wlen[w] += (uint32_t)n;
        s->body_off += n;
    }
    if (s->body_off < total)
        return;
    if (!s->bdat) {
        if (BLAST_WBUF_BYTES - s->wlen[w] < 3)
            return;                /* the end marker goes in the next buffer */
        memcpy(s->wbuf[w] + s->wlen[w], ".\r\n", 3);
        s->wlen[w] += 3;
    }
    s->body_active = false;
    s->body_end_buffered = true;
}

static void sess_tls_flush(struct blast_session *s)
{
    unsigned w = s->wcur;
    if (s->wlen[w] > 0 && tls_conn_established(s->tls)) {
        if (tls_conn_write(s->tls, s->wbuf[w], s->wlen[w]) < 0) {
            blast_session_fail(s, BLAST_ERR_TLS);
            return;
        }
        s->wlen[w] = 0;
        s->tls_end_sealed |= s->body_end_buffered;
        s->body_end_buffered = false;
    }
    size_t n = tls_conn_take(s->tls, s->tls_out, BLAST_TLS_OUT_BYTES);
    if (n == 0)
        return;
    int rc = rx_send(s->th->rx, s->h, s->tls_out, n, 0);   /* deadline: the thread's sweep */
    if (rc < 0) {
        blast_session_fail(s, BLAST_ERR_OTHER);
        return;
    }
    s->send_posted = true;
    s->t_send = blast_now_ns(s->th);
    s->body_end_inflight = s->tls_end_sealed && tls_conn_pending(s->tls) == 0;
    if (s->body_end_inflight)
        s->tls_end_sealed = false;
}

static void sess_flush(struct blast_session *s)
{
    if (s->send_posted || s->state == BLAST_S_CLOSING || s->state == BLAST_S_FREE)
        return;
    sess_fill_body(s);
    if (s->tls) {
        sess_tls_flush(s);
        return;
    }
    unsigned w = s->wcur;
    if (s->wlen[w] == 0)
        return;
    int rc = rx_send(s->th->rx, s->h, s->wbuf[w], s->wlen[w], 0);   /* deadline: the sweep */
    if (rc < 0) {
        blast_session_fail(s, BLAST_ERR_OTHER);
        return;
    }
    s->send_posted = true;
    s->t_send = blast_now_ns(s->th);
    s->body_end_inflight = s->body_end_buffered;
    s->body_end_buffered = false;
    s->wcur = 1u - w;
    s->wlen[s->wcur] = 0;
}

/* ---- session life --------------------------------------------------------- */

static void sess_close(struct blast_session *s)
{
    if (s->state == BLAST_S_CLOSING || s->state == BLAST_S_FREE)
        return;
    s->state = BLAST_S_CLOSING;
    if (rx_close(s->th->rx, s->h) < 0)   /* never opened: free at once */
        s->th->owner.closed(s->th, s);
}

/* A server may close an idle connection (421, or just close: RFC 5321 3.8,
 * 4.5.3.2) just as we reuse it for a message: our MAIL crosses its 421 and
 * is answered by a reset. Nothing of the message reached the server then:
 * it may go again on a new connection (once: a new one is not reused). */
static bool sess_may_redial(const struct blast_session *s)
{
    return s->has_msg && s->state == BLAST_S_TXN && s->msgs_on_conn > 0 &&
           s->txn_replies == 0 && !atomic_load_explicit(s->th->stop, memory_order_relaxed);
}

static void sess_redial(struct blast_session *s)
{
    vl_assert(sess_may_redial(s));
    s->redial = true;
    s->th->res.conns_redialed++;
    sess_close(s);                 /* thread_session_closed starts the new one */
}

void blast_session_fail(struct blast_session *s, enum blast_err kind)
{
    if (s->state == BLAST_S_CLOSING || s->state == BLAST_S_FREE)
        return;
    if (kind == BLAST_ERR_RESET && sess_may_redial(s)) {
        sess_redial(s);
        return;
    }
    if (!s->failed) {
        s->failed = true;
        s->th->res.conn_errors[kind]++;
    }
    if (s->has_msg) {
        s->has_msg = false;
        blast_stats_msg_ended(s->th, s, BLAST_OUT_ERROR, blast_now_ns(s->th));
    }
    sess_close(s);
}

void blast_session_abort(struct blast_session *s)
{
    if (s->has_msg) {
        s->has_msg = false;
        blast_stats_msg_ended(s->th, s, BLAST_OUT_ERROR, blast_now_ns(s->th));
    }
    sess_close(s);
}

static void sess_quit(struct blast_session *s)
{
    vl_assert(!s->has_msg);
    s->state = BLAST_S_QUIT;
    sess_cmd(s, BLAST_CMD_QUIT, "QUIT\r\n");
    sess_flush(s);
}

void blast_session_quit_idle(struct blast_session *s)
{
    if (s->state == BLAST_S_READY)
        sess_quit(s);
}

static enum blast_err err_kind(int res)
{
    switch (res) {
    case -ECONNREFUSED: case -ENETUNREACH: case -EHOSTUNREACH: case -EADDRNOTAVAIL:
        return BLAST_ERR_REFUSED;
    case -ETIMEDOUT:
        return BLAST_ERR_TIMEOUT;
    case 0: case -ECONNRESET: case -EPIPE: case -ECONNABORTED:
        return BLAST_ERR_RESET;
    default:
        return BLAST_ERR_OTHER;
    }
}

int blast_session_start(struct blast_thread *th, struct blast_session *s)
{
    const struct blast_conf *cf = th->conf;
    uint64_t seq = th->conn_seq++ * cf->threads + th->k;   /* spreads threads over targets */
    const union vl_sockaddr *to = &cf->target[seq % cf->target_count];
    socklen_t to_len = cf->target_len[seq % cf->target_count];
    s->state = BLAST_S_CONNECT;
    s->h = RX_HANDLE_NONE;
    s->send_posted = s->recv_posted = s->tls_tried = s->failed = false;
    s->authed = s->ehlo_done = s->helo_tried = false;
    s->msgs_on_conn = 0;
    s->exp_head = s->exp_count = 0;
    s->wlen[0] = s->wlen[1] = 0;
    s->wcur = 0;
    s->body_end_buffered = s->body_end_inflight = s->tls_end_sealed = false;
    s->body_active = false;
    th->res.conns++;
    int fd = socket(to->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (uint32_t i = 0; i < cf->bind_count; i++) {   /* the next one of the target's family */
        uint32_t b = (uint32_t)((seq + i) % cf->bind_count);
        if (cf->bind[b].sa.sa_family != to->sa.sa_family)
            continue;
        /* the port is picked at connect, per destination: no ephemeral-port exhaustion */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, &cf->bind[b].sa, cf->bind_len[b]) < 0) {
            close(fd);
            goto fail;
        }
        break;
    }
    if (rx_open(th->rx, fd, sess_cb, s, &s->h) < 0) {
        close(fd);
        goto fail;
    }
    s->t_connect = blast_now_ns(th);
    if (rx_connect(th->rx, s->h, &to->sa, to_len, (int)cf->timeout_ms) < 0) {
        blast_session_fail(s, BLAST_ERR_OTHER);
        return 0;
    }
    return 0;
fail:
    blast_session_fail(s, BLAST_ERR_OTHER);
    return 0;
}

static void sess_connect_done(struct blast_session *s, int res)
{
    if (res < 0) {
        blast_session_fail(s, err_kind(res));
        return;
    }
    struct blast_thread *th = s->th;
    s->t_connected = blast_now_ns(th);
    blast_hist_record(&th->res.phase[BLAST_PH_CONNECT], s->t_connected - s->t_connect);
    s->state = BLAST_S_SETUP;
    smtp_reply_parser_init(&s->parser, NULL);
    sess_expect(s, BLAST_CMD_BANNER);
    sess_post_recv(s);
}

/* ---- setup: banner, EHLO, STARTTLS, AUTH ---------------------------------- */

static void sess_ehlo(struct blast_session *s, bool helo)
{
    smtp_ehlo_init(&s->caps);
    s->parser.ehlo = helo ? NULL : &s->caps;
    s->t_cmd = blast_now_ns(s->th);
    if (helo)
        sess_cmd(s, BLAST_CMD_HELO, "HELO %s\r\n", CF(s)->helo);
    else
        sess_cmd(s, BLAST_CMD_EHLO, "EHLO %s\r\n", CF(s)->helo);
    sess_flush(s);
}

/* A refusal before any transaction (banner, EHLO, AUTH): the waiting message
 * ends with that reply's code, then QUIT. */
static void sess_refused(struct blast_session *s, uint16_t code)
{
    if (s->has_msg) {
        s->has_msg = false;
        blast_stats_msg_ended(s->th, s, outcome_of(code), blast_now_ns(s->th));
    }
    if (code == 421) {             /* closing: no QUIT */
        sess_close(s);
        return;
    }
    sess_quit(s);
}

void blast_session_ready(struct blast_session *s)
{
    struct blast_thread *th = s->th;
    if (s->state != BLAST_S_READY && s->state != BLAST_S_TXN)
        th->res.conns_ready++;
    s->state = BLAST_S_READY;
    if (s->has_msg || th->owner.take(th, s)) {
        sess_txn_begin(s);
        return;
    }
    if (th->owner.more(th))
        th->owner.idle(th, s);
    else
        sess_quit(s);
}

static void sess_tls_start(struct blast_session *s)
{
    struct blast_thread *th = s->th;
    int rc = 0;
    if (!th->tls_ctx)
        rc = tls_ctx_client_create(&th->tls_ctx);   /* one per thread */
    if (rc == 0 && !s->tls_in) {
        s->tls_in = malloc(TLS_STREAM_IN_BYTES_BLAST);
        s->tls_out = malloc(BLAST_TLS_OUT_BYTES);
        rc = s->tls_in && s->tls_out ? 0 : -ENOMEM;
    }
    if (rc == 0)
        rc = tls_conn_create(&s->tls, th->tls_ctx, false, NULL);
    if (rc == 0 && tls_conn_handshake(s->tls) < 0)   /* ClientHello */
        rc = VL_E_TLS;
    if (rc < 0) {
        blast_session_fail(s, BLAST_ERR_TLS);
        return;
    }
    s->state = BLAST_S_TLS;
    sess_flush(s);
}

static void sess_after_ehlo(struct blast_session *s)
{
    const struct blast_conf *cf = CF(s);
    if (cf->tls != BLAST_TLS_NONE && !s->tls && !s->tls_tried &&
        smtp_ehlo_has(&s->caps, SMTP_EXT_STARTTLS)) {
        s->tls_tried = true;
        s->t_tls = blast_now_ns(s->th);
        sess_cmd(s, BLAST_CMD_STARTTLS, "STARTTLS\r\n");
        sess_flush(s);
        return;
    }
    if (cf->tls == BLAST_TLS_ENCRYPT && !s->tls) {
        blast_session_fail(s, BLAST_ERR_TLS);
        return;
    }
    if (cf->auth_user && !s->authed) {
        s->t_cmd = blast_now_ns(s->th);
        sess_cmd(s, BLAST_CMD_AUTH, "AUTH PLAIN %s\r\n", s->th->auth_b64);
        sess_flush(s);
        return;
    }
    blast_session_ready(s);
}

/* ---- transactions ---------------------------------------------------------- */

static bool sess_pipelining(const struct blast_session *s)
{
    return CF(s)->pipelining && smtp_ehlo_has(&s->caps, SMTP_EXT_PIPELINING);
}

static void sess_txn_begin(struct blast_session *s)
{
    struct blast_thread *th = s->th;
    const struct blast_conf *cf = th->conf;
    vl_assert(s->has_msg);
    s->state = BLAST_S_TXN;
    s->t_mail = blast_now_ns(th);
    s->txn_replies = 0;
    if (!s->txn_counted) {         /* a redialed message keeps its first start */
        s->txn_counted = true;
        if (!th->open_loop)
            s->t_intended = s->t_mail;
        blast_stats_msg_started(th, s);
    }
    s->rcpt_sent = s->rcpt_replied = s->rcpt_ok = 0;
    s->refusal_code = 0;
    s->mail_refused = s->lone_dot = false;
    s->t_body_done = s->t_354 = 0;
    s->bdat = cf->chunking && smtp_ehlo_has(&s->caps, SMTP_EXT_CHUNKING);
    blast_msg_build(th, s);   /* size, header, body length */
    if (smtp_ehlo_has(&s->caps, SMTP_EXT_SIZE))
        sess_cmd(s, BLAST_CMD_MAIL, "MAIL FROM:<%s> SIZE=%llu\r\n", cf->from,
                 (unsigned long long)s->msg_size);
    else
        sess_cmd(s, BLAST_CMD_MAIL, "MAIL FROM:<%s>\r\n", cf->from);
    if (sess_pipelining(s))
        sess_txn_next(s);
    sess_flush(s);
}

/* After MAIL: the RCPTs, then DATA or BDAT; all at once when pipelining,
 * else one per call (the reply to the previous one came). */
static void sess_txn_next(struct blast_session *s)
{
    struct blast_thread *th = s->th;
    const uint32_t n = th->conf->rcpts_per_msg;
    const bool pipe = sess_pipelining(s);
    while (s->rcpt_sent < n) {
        char addr[VL_SMTP_PATH_BYTES_MAX + 1];
        blast_msg_rcpt(th, addr, sizeof addr);
        sess_cmd(s, BLAST_CMD_RCPT, "RCPT TO:<%s>\r\n", addr);
        s->rcpt_sent++;
        if (!pipe)
            return;
    }
    s->t_data = blast_now_ns(th);
    if (s->bdat) {
        sess_cmd(s, BLAST_CMD_BDAT, "BDAT %llu LAST\r\n", (unsigned long long)s->msg_size);
        s->body_active = true;
        s->body_off = 0;
    } else {
        sess_cmd(s, BLAST_CMD_DATA, "DATA\r\n");
    }
}

/* The message got its deciding reply (or a refusal that ends it). */
static void sess_msg_done(struct blast_session *s, uint16_t code, bool rset)
{
    uint64_t now = blast_now_ns(s->th);
    s->has_msg = false;
    s->msgs_on_conn++;
    blast_stats_msg_ended(s->th, s, outcome_of(code), now);
    if (rset) {
        sess_cmd(s, BLAST_CMD_RSET, "RSET\r\n");
        sess_flush(s);
        return;
    }
    sess_after_txn(s);
}

static void sess_after_txn(struct blast_session *s)
{
    if (s->msgs_on_conn >= CF(s)->msgs_per_conn || atomic_load_explicit(s->th->stop,
                                                                          memory_order_relaxed)) {
        s->state = BLAST_S_READY;
        sess_quit(s);
        return;
    }
    blast_session_ready(s);
}

static void sess_rcpt_reply(struct blast_session *s, uint16_t code, uint64_t now)
{
    struct blast_thread *th = s->th;
    s->rcpt_replied++;
    if (code < 300) {
        s->rcpt_ok++;
        th->res.rcpts_ok++;
    } else {
        th->res.rcpts_refused++;
        if (!s->refusal_code)
            s->refusal_code = code;
    }
    if (s->rcpt_replied == th->conf->rcpts_per_msg && !s->mail_refused)
        blast_hist_record(&th->res.phase[BLAST_PH_MAIL_RCPT], now - s->t_mail);
    if (sess_pipelining(s))
        return;
    if (s->rcpt_sent < th->conf->rcpts_per_msg || s->rcpt_ok > 0) {
        sess_txn_next(s);
        sess_flush(s);
        return;
    }
    sess_msg_done(s, s->refusal_code, true);   /* no recipient: no DATA */
}

static void sess_data_reply(struct blast_session *s, uint16_t code, uint64_t now)
{
    struct blast_thread *th = s->th;
    blast_hist_record(&th->res.phase[BLAST_PH_DATA], now - s->t_data);
    if (code != 354) {
        bool refused = s->mail_refused || s->rcpt_ok == 0;
        sess_msg_done(s, refused && s->refusal_code ? s->refusal_code : code, true);
        return;
    }
    s->t_354 = now;
    if (s->mail_refused || s->rcpt_ok == 0) {
        s->lone_dot = true;        /* RFC 2920 3.1: nothing accepted, end the DATA at once */
        unsigned w = s->wcur;
        memcpy(s->wbuf[w] + s->wlen[w], ".\r\n", 3);
        s->wlen[w] += 3;
    } else {
        s->body_active = true;
        s->body_off = 0;
    }
    sess_expect(s, BLAST_CMD_DOT);
    sess_flush(s);
}

static void sess_final_reply(struct blast_session *s, uint16_t code, uint64_t now)
{
    struct blast_thread *th = s->th;
    if (s->lone_dot || s->mail_refused || s->rcpt_ok == 0) {
        sess_msg_done(s, s->refusal_code ? s->refusal_code : code, true);
        return;
    }
    if (s->t_body_done)
        blast_hist_record(&th->res.phase[BLAST_PH_FINAL], now - s->t_body_done);
    th->res.bytes += s->msg_size;
    sess_msg_done(s, code, code >= 300);
}

/* ---- replies ------------------------------------------------------------- */

/* An idle session (nothing awaited, no message) may be told 421 and closed. */
static bool code_is_idle_close(const struct blast_session *s, uint16_t code)
{
    return code == 421 && s->state == BLAST_S_READY && !s->has_msg;
}

static void sess_reply(struct blast_session *s, const struct smtp_reply *r, bool more_input)
{
    struct blast_thread *th = s->th;
    const uint64_t now = blast_now_ns(th);
    blast_stats_reply(th, r);
    if (s->exp_count == 0) {
        if (code_is_idle_close(s, r->code)) {   /* e.g. 421 idle timeout: no message lost */
            sess_close(s);
            return;
        }
        blast_session_fail(s, BLAST_ERR_PROTO);
        return;
    }
    if (r->code == 421 && sess_may_redial(s)) {   /* an idle close crossed our MAIL */
        sess_redial(s);
        return;
    }
    enum blast_cmd c = (enum blast_cmd)s->expect[s->exp_head];
    s->exp_head = (s->exp_head + 1u) % BLAST_EXPECT_MAX;
    s->exp_count--;
    s->txn_replies += s->state == BLAST_S_TXN;
    s->t_wait = now;
    const uint16_t code = r->code;
    const bool ok = code < 300;
    switch (c) {
    case BLAST_CMD_BANNER:
        blast_hist_record(&th->res.phase[BLAST_PH_BANNER], now - s->t_connected);
        if (ok)
            sess_ehlo(s, false);
        else
            sess_refused(s, code);
        break;
    case BLAST_CMD_EHLO:
    case BLAST_CMD_HELO:
        s->parser.ehlo = NULL;
        blast_hist_record(&th->res.phase[BLAST_PH_EHLO], now - s->t_cmd);
        if (ok)
            sess_after_ehlo(s);
        else if (c == BLAST_CMD_EHLO && code >= 500 && !s->helo_tried && (s->helo_tried = true))
            sess_ehlo(s, true);
        else
            sess_refused(s, code);
        break;
    case BLAST_CMD_STARTTLS:
        if (code == 220) {
            if (more_input) {      /* bytes after the 220: RFC 3207 4.2 (injection) */
                blast_session_fail(s, BLAST_ERR_PROTO);
                return;
            }
            sess_tls_start(s);
        } else if (CF(s)->tls == BLAST_TLS_ENCRYPT) {
            blast_session_fail(s, BLAST_ERR_TLS);
        } else {
            sess_after_ehlo(s);    /* `may`: go on in plaintext */
        }
        break;
    case BLAST_CMD_AUTH:
        blast_hist_record(&th->res.phase[BLAST_PH_AUTH], now - s->t_cmd);
        if (code == 235) {
            th->res.auth_ok++;
            s->authed = true;
            blast_session_ready(s);
        } else {
            th->res.auth_failed++;
            sess_refused(s, code);
        }
        break;
    case BLAST_CMD_MAIL:
        if (!ok) {
            s->mail_refused = true;
            s->refusal_code = code;
            if (!sess_pipelining(s))
                sess_msg_done(s, code, true);
        } else if (!sess_pipelining(s)) {
            sess_txn_next(s);
            sess_flush(s);
        }
        break;
    case BLAST_CMD_RCPT:
        sess_rcpt_reply(s, code, now);
        break;
    case BLAST_CMD_DATA:
        sess_data_reply(s, code, now);
        break;
    case BLAST_CMD_DOT:
    case BLAST_CMD_BDAT:
        sess_final_reply(s, code, now);
        break;
    case BLAST_CMD_RSET:
        if (s->state == BLAST_S_TXN)
            sess_after_txn(s);
        break;
    case BLAST_CMD_QUIT:
        sess_close(s);
        break;
    default:
        vl_panic("blast: bad expected command %d", (int)c);
    }
}

/* Plaintext replies, one by one. */
static void sess_consume(struct blast_session *s, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len && s->state != BLAST_S_CLOSING && s->state != BLAST_S_FREE) {
        size_t used = 0;
        int rc = smtp_reply_feed(&s->parser, buf + off, len - off, &used);
        off += used;
        if (rc < 0) {
            blast_session_fail(s, BLAST_ERR_PROTO);
            return;
        }
        if (rc == 0)
            break;
        sess_reply(s, smtp_reply_get(&s->parser), off < len);
        if (s->state == BLAST_S_TLS)
            return;                /* the rest is checked before the handshake */
    }
}

/* ---- receiving --------------------------------------------------------------- */

static void sess_post_recv(struct blast_session *s)
{
    if (s->recv_posted || s->state == BLAST_S_CLOSING || s->state == BLAST_S_FREE)
        return;
    char *buf = s->tls ? s->tls_in : s->in;
    size_t cap = s->tls ? TLS_STREAM_IN_BYTES_BLAST : sizeof s->in;
    /* No linked timeout (it would double the CQEs): blast_session_overdue() is the deadline. */
    if (rx_recv(s->th->rx, s->h, buf, cap, 0) < 0) {
        blast_session_fail(s, BLAST_ERR_OTHER);
        return;
    }
    s->recv_posted = true;
}

static void sess_tls_recv(struct blast_session *s, int res)
{
    struct blast_thread *th = s->th;
    if (tls_conn_feed(s->tls, s->tls_in, (size_t)res) < 0) {
        blast_session_fail(s, BLAST_ERR_OTHER);
        return;
    }
    if (!tls_conn_established(s->tls)) {
        int rc = tls_conn_handshake(s->tls);
        if (rc < 0) {
            blast_session_fail(s, BLAST_ERR_TLS);
            return;
        }
        sess_flush(s);             /* our next flight, if any */
        if (rc == 0)
            return;
        blast_hist_record(&th->res.phase[BLAST_PH_TLS], blast_now_ns(th) - s->t_tls);
        th->res.tls_sessions++;
        s->state = BLAST_S_SETUP;
        smtp_reply_parser_init(&s->parser, NULL);
        sess_ehlo(s, false);       /* RFC 3207 4.2: forget everything, EHLO again */
    }
    for (;;) {
        int n = tls_conn_read(s->tls, s->in, sizeof s->in);
        if (n == 0)
            break;
        if (n < 0) {
            blast_session_fail(s, n == -EPIPE ? BLAST_ERR_RESET : BLAST_ERR_TLS);
            return;
        }
        sess_consume(s, s->in, (size_t)n);
        if (s->state == BLAST_S_CLOSING || s->state == BLAST_S_FREE)
            return;
    }
}

static void sess_recv_done(struct blast_session *s, int res)
{
    s->recv_posted = false;
    if (s->state == BLAST_S_CLOSING || s->state == BLAST_S_FREE)
        return;
    if (res <= 0) {
        /* closed after (or instead of) the 221, or while idle: nothing was lost */
        if (s->state == BLAST_S_QUIT || (s->state == BLAST_S_READY && !s->has_msg &&
                                         s->exp_count == 0)) {
            sess_close(s);
            return;
        }
        blast_session_fail(s, err_kind(res));
        return;
    }
    if (s->tls) {
        if (s->state == BLAST_S_TLS || tls_conn_established(s->tls))
            sess_tls_recv(s, res);
    } else {
        sess_consume(s, s->in, (size_t)res);
        if (s->state == BLAST_S_TLS) {
            sess_post_recv(s);
            return;
        }
    }
    sess_post_recv(s);
}

static void sess_send_done(struct blast_session *s, int res)
{
    s->send_posted = false;
    if (s->state == BLAST_S_CLOSING || s->state == BLAST_S_FREE)
        return;
    if (res < 0) {
        blast_session_fail(s, err_kind(res));
        return;
    }
    if (s->body_end_inflight) {
        s->body_end_inflight = false;
        s->t_body_done = blast_now_ns(s->th);
        uint64_t from = s->bdat ? s->t_data : s->t_354;
        blast_hist_record(&s->th->res.phase[BLAST_PH_BODY], s->t_body_done - from);
    }
    sess_flush(s);
}

bool blast_session_overdue(struct blast_session *s, uint64_t now)
{
    if (s->state == BLAST_S_FREE || s->state == BLAST_S_CLOSING || s->state == BLAST_S_CONNECT)
        return false;              /* connect carries its own deadline */
    const uint64_t limit = (uint64_t)CF(s)->timeout_ms * 1000000ull;
    if ((s->exp_count > 0 && now - s->t_wait > limit) ||
        (s->send_posted && now - s->t_send > limit)) {
        blast_session_fail(s, BLAST_ERR_TIMEOUT);
        return true;
    }
    return false;
}

static void sess_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct blast_session *s = ev->user;
    switch (ev->op) {
    case RX_OP_CONNECT: sess_connect_done(s, ev->res);             break;
    case RX_OP_SEND:    sess_send_done(s, ev->res);                break;
    case RX_OP_RECV:    sess_recv_done(s, ev->res);                break;
    case RX_OP_CLOSE:   s->th->owner.closed(s->th, s);     break;
    default: vl_panic("blast: unexpected event op %d", (int)ev->op);
    }
}
