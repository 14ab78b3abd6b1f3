/*
 * sink.c - `volley sink` runtime: reactor threads that accept SMTP, drive
 * engine/smtp_server.c's state machine, apply fault rules, count and save.
 *
 * Threads (sink_run.c starts them): the caller of sink_run() binds every
 * listener once per thread
 * (SO_REUSEPORT: the kernel spreads connections over the threads, so nothing
 * is shared on the hot path but the fault rules' occurrence counters, which
 * are atomics), then only waits for signals and prints stats. Each reactor
 * thread owns its ring, connection pool and counters; the stats printer reads
 * the counters with relaxed atomic loads.
 *
 * A connection: read -> step the server until it needs input -> answer each
 * command (the rules may change the code, delay the answer or drop the
 * connection) -> write all pending replies in one send (pipelined commands
 * get their replies in one batch) -> read again.
 * STARTTLS (--tls-cert): after the 220 is sent, a struct tls_stream carries
 * every byte: ciphertext is read into it and decrypted into in[], replies in
 * out[] are sealed into it (tls_stream.c); the server forgets the EHLO state.
 *
 * Invariants: a connection's buffers belong to the kernel from rx_recv/rx_send
 * until the event; a connection returns to the pool only at RX_OP_CLOSE; at
 * most one of reading, sending, delayed is true at a time. A saved message
 * appears under its final name only when its end of data got a 2xx.
 * Diagnostics: startup errors on stderr; stats on stdout.
 */
#include "sink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "rx.h"
#include "sink_int.h"
#include "tls_stream.h"
#include "volley/error.h"

#define SINK_IN_BYTES        16384u
#define SINK_OUT_BYTES        4096u
#define SINK_ANSWER_ROOM      1024u   /* smtp_server_answer() wants this much room */
#define SINK_PUMP_STEPS_MAX   4096u   /* server steps per turn, then yield */
#define SINK_SEND_TIMEOUT_MS 60000
#define SINK_ENV_BYTES  (VL_SMTP_RCPTS_PER_TXN_MAX * (VL_SMTP_PATH_BYTES_MAX + 20u))
#define SINK_PATH_BYTES       4096u
_Static_assert(SINK_OUT_BYTES >= 2 * SINK_ANSWER_ROOM, "room for a reply and a batch");

/* What an answer needs from its event, copied (a delayed answer outlives it). */
struct sink_pending {
    enum smtp_server_ev_type type;
    enum smtp_server_cmd cmd;
    uint64_t msg_bytes;
    struct smtp_server_reply reply;
    char path[VL_SMTP_PATH_BYTES_MAX + 1];     /* MAIL/RCPT path, brackets stripped */
};

struct sink_conn {
    struct sink_thread *t;
    rx_handle_t h;
    uint64_t id;
    struct smtp_server srv;
    bool closing, close_after_send, reading, sending, delayed, in_body;
    bool tls_start;                             /* STARTTLS 220 being sent: handshake next */
    struct tls_stream *tls;                       /* after STARTTLS; NULL = plaintext */
    bool tls_broken;                            /* --tls-break: the next bytes get an alert */
    bool model_refused;                         /* --model: the banner defers, then close */
    bool model_open;                            /* --model: counted open for model_slot */
    int model_slot;
    rx_timer_t delay_timer;
    uint32_t in_len, in_off, out_len;
    uint32_t cmds_this_read, txns;
    struct sink_pending pending;
    int save_fd;                                /* -1: not saving this message */
    char mail_from[VL_SMTP_PATH_BYTES_MAX + 1];
    char env[SINK_ENV_BYTES];                   /* "X-Volley-Rcpt-To: <...>\r\n" lines */
    uint32_t env_len;
    char in[SINK_IN_BYTES];
    char out[SINK_OUT_BYTES];
};

static void conn_pump(struct sink_conn *c);
static void conn_close(struct sink_conn *c);
static void conn_delay_done(struct rx *rx, const struct rx_event *ev);

/* ---- fault rules ---------------------------------------------------------- */

static double rng_next(uint64_t *s)             /* xorshift64*, uniform in [0, 1) */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static const char *fault_text(uint16_t code, enum sink_stage st)
{
    switch (code) {
    case 421: return "4.3.2 Service not available, closing channel (fault)";
    case 450: return "4.2.1 Mailbox busy, try again later (fault)";
    case 451: return "4.3.0 Local error in processing (fault)";
    case 452: return st == SINK_STAGE_RCPT ? "4.5.3 Too many recipients (fault)"
                                           : "4.3.1 Insufficient system storage (fault)";
    case 550: return st == SINK_STAGE_RCPT ? "5.1.1 User unknown (fault)"
                                           : "5.7.1 Rejected by policy (fault)";
    case 552: return "5.3.4 Message too big (fault)";
    case 553: return "5.1.3 Bad address syntax (fault)";
    case 554: return "5.0.0 Transaction failed (fault)";
    default:  return code < 400 ? "2.0.0 Ok (fault)" : code < 500 ? "4.0.0 Temporary failure (fault)"
                                                                 : "5.0.0 Permanent failure (fault)";
    }
}

static void fault_reply(const struct sink_conf *cf, const struct sink_rule *r, enum sink_stage st,
                        struct smtp_server_reply *reply)
{
    const char *text = r->text[0] ? r->text : fault_text(r->code, st);
    bool plain = st == SINK_STAGE_BANNER || st == SINK_STAGE_EHLO || !cf->smtp.enhancedstatuscodes;
    if (plain && !r->text[0])
        text = strchr(text, ' ') + 1;           /* no x.y.z on greeting/EHLO (RFC 2034) */
    reply->code = r->code;
    snprintf(reply->text, sizeof reply->text, "%s", text);
}

/* Apply the rules of stage @p st: first firing rule of each action wins. */
static void sink_policy(struct sink_thread *t, enum sink_stage st, const char *path,
                        struct smtp_server_reply *reply, uint32_t *delay_ms, bool *disconnect)
{
    const struct sink_conf *cf = t->sh->conf;
    bool replied = false, delayed = false;
    for (uint32_t i = 0; i < cf->rule_count; i++) {
        const struct sink_rule *r = &cf->rules[i];
        if (r->stage != st || !sink_rule_matches(r, path, path ? strlen(path) : 0))
            continue;
        uint64_t seen = __atomic_add_fetch(&t->sh->rule_seen[i], 1, __ATOMIC_RELAXED);
        double roll = r->when == SINK_WHEN_PROB ? rng_next(&t->rng) : 0.0;
        if (!sink_rule_fires(r, seen, roll))
            continue;
        if (r->action == SINK_ACT_DISCONNECT && !*disconnect) {
            *disconnect = true;
            STAT_ADD(t, faults_disconnect, 1);
        } else if (r->action == SINK_ACT_DELAY && !delayed) {
            delayed = true;
            *delay_ms = r->delay_ms;
            STAT_ADD(t, faults_delay, 1);
        } else if (r->action == SINK_ACT_REPLY && !replied) {
            replied = true;
            fault_reply(cf, r, st, reply);
            STAT_ADD(t, faults_reply, 1);
        }
    }
}

static int stage_of(enum smtp_server_cmd cmd)
{
    switch (cmd) {
    case SMTP_SCMD_BANNER: return SINK_STAGE_BANNER;
    case SMTP_SCMD_EHLO:
    case SMTP_SCMD_HELO:   return SINK_STAGE_EHLO;
    case SMTP_SCMD_MAIL:   return SINK_STAGE_MAIL;
    case SMTP_SCMD_RCPT:   return SINK_STAGE_RCPT;
    case SMTP_SCMD_DATA:   return SINK_STAGE_DATA;
    case SMTP_SCMD_DOT:    return SINK_STAGE_DOT;
    default:               return -1;
    }
}

/* ---- saving --------------------------------------------------------------- */

static void save_tmp_path(const struct sink_conn *c, char *buf, bool final)
{
    snprintf(buf, SINK_PATH_BYTES, final ? "%s/%u-%llu-%u.eml" : "%s/.tmp-%u-%llu-%u",
             c->t->sh->conf->save_dir, c->t->idx, (unsigned long long)c->id, c->txns + 1);
}

static void save_abort(struct sink_conn *c)
{
    char path[SINK_PATH_BYTES];
    if (c->save_fd < 0)
        return;
    close(c->save_fd);
    c->save_fd = -1;
    save_tmp_path(c, path, false);
    unlink(path);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* First content bytes (or an empty message): the file starts with the envelope. */
static void save_open(struct sink_conn *c)
{
    char path[SINK_PATH_BYTES], head[VL_SMTP_PATH_BYTES_MAX + 32];
    if (!c->t->sh->conf->save_dir || c->save_fd >= 0)
        return;
    save_tmp_path(c, path, false);
    c->save_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int n = snprintf(head, sizeof head, "X-Volley-Mail-From: <%s>\r\n", c->mail_from);
    if (c->save_fd < 0 || write_all(c->save_fd, head, (size_t)n) < 0 ||
        write_all(c->save_fd, c->env, c->env_len) < 0) {
        STAT_ADD(c->t, save_errors, 1);
        save_abort(c);
    }
}

static void save_body(struct sink_conn *c, const char *p, size_t n)
{
    if (c->save_fd >= 0 && write_all(c->save_fd, p, n) < 0) {
        STAT_ADD(c->t, save_errors, 1);
        save_abort(c);
    }
}

static void save_commit(struct sink_conn *c)
{
    char tmp[SINK_PATH_BYTES], final[SINK_PATH_BYTES];
    save_open(c);                               /* an empty message still gets a file */
    if (c->save_fd < 0)
        return;
    save_tmp_path(c, tmp, false);
    save_tmp_path(c, final, true);
    if (close(c->save_fd) == 0 && rename(tmp, final) == 0) {
        STAT_ADD(c->t, saved, 1);
    } else {
        STAT_ADD(c->t, save_errors, 1);
        unlink(tmp);
    }
    c->save_fd = -1;
}

/* ---- one connection --------------------------------------------------------- */

static void envelope_reset(struct sink_conn *c)
{
    c->mail_from[0] = 0;
    c->env_len = 0;
}

static void path_copy(char *dst, const char *arg, size_t len)
{
    size_t i = 0, n = 0;
    while (i < len && (arg[i] == ' ' || arg[i] == '<'))
        i++;
    while (i < len && arg[i] != '>' && arg[i] != ' ' && n < VL_SMTP_PATH_BYTES_MAX)
        dst[n++] = arg[i++];
    dst[n] = 0;
}

static void conn_flush(struct sink_conn *c)
{
    const char *p = c->out;
    uint32_t n = c->out_len;
    if (c->tls) {                               /* seal the replies: out[] is free again */
        int w = tls_stream_output(c->tls, c->out, c->out_len, c->close_after_send);
        if (w < 0) {
            conn_close(c);
            return;
        }
        c->out_len = 0;
        p = c->tls->out;
        n = (uint32_t)w;
    }
    if (n == 0) {
        if (c->close_after_send)
            conn_close(c);
        return;
    }
    int rc = rx_send(c->t->rx, c->h, p, n, SINK_SEND_TIMEOUT_MS);
    if (rc < 0) {
        conn_close(c);
        return;
    }
    c->sending = true;
}

/* The transaction effects of a final answer (state moved iff 2xx/3xx). */
static void conn_account(struct sink_conn *c, const struct sink_pending *p, uint16_t code)
{
    struct sink_thread *t = c->t;
    bool ok = code >= 200 && code < 400;
    size_t room = sizeof c->env - c->env_len;
    switch (p->cmd) {
    case SMTP_SCMD_MAIL:
        if (ok) {
            envelope_reset(c);
            memcpy(c->mail_from, p->path, sizeof c->mail_from);
        }
        break;
    case SMTP_SCMD_RCPT:
        if (!ok)
            break;
        STAT_ADD(t, rcpts, 1);
        int n = snprintf(c->env + c->env_len, room, "X-Volley-Rcpt-To: <%s>\r\n", p->path);
        if (n > 0 && (size_t)n < room)
            c->env_len += (uint32_t)n;
        break;
    case SMTP_SCMD_DOT:
        if (ok) {
            if (t->sh->model)
                sink_model_delivered(t->sh->model, c->model_slot);
            STAT_ADD(t, transactions, 1);
            STAT_ADD(t, bytes, p->msg_bytes);
            save_commit(c);
            c->txns++;
        } else {
            STAT_ADD(t, messages_rejected, 1);
            save_abort(c);
        }
        envelope_reset(c);
        c->in_body = false;
        break;
    case SMTP_SCMD_RSET:
    case SMTP_SCMD_EHLO:
    case SMTP_SCMD_HELO:
        if (ok)
            envelope_reset(c);
        break;
    default:
        break;
    }
}

/* Answer the pending event. @return true to keep stepping the server. */
static bool conn_answer(struct sink_conn *c)
{
    struct sink_pending *p = &c->pending;
    enum smtp_server_after after;
    vl_assert(c->out_len + SINK_ANSWER_ROOM <= SINK_OUT_BYTES);
    size_t n = smtp_server_answer(&c->srv, &p->reply, c->out + c->out_len,
                                  SINK_OUT_BYTES - c->out_len, &after);
    vl_assert(n <= SINK_OUT_BYTES - c->out_len);
    c->out_len += (uint32_t)n;
    if (p->reply.code < SINK_CODES)
        STAT_ADD(c->t, replies[p->reply.code], 1);
    conn_account(c, p, p->reply.code);
    uint32_t after_txns = c->t->sh->conf->after_txns;
    bool txn_cap = p->cmd == SMTP_SCMD_DOT && after_txns && c->txns >= after_txns;
    if (txn_cap)
        STAT_ADD(c->t, faults_disconnect, 1);
    if (after == SMTP_SERVER_AFTER_STARTTLS && p->reply.code == 220 && c->t->tls_ctx &&
        !c->tls) {
        c->tls_start = true;                    /* the handshake starts once 220 is sent */
        conn_flush(c);
        return false;
    }
    if (after != SMTP_SERVER_AFTER_CONTINUE || p->reply.code == 421 || txn_cap) {
        c->close_after_send = true;             /* STARTTLS without a certificate too */
        conn_flush(c);
        return false;
    }
    return true;
}

/* A COMMAND or DOT event: policy, then answer now or after a delay. */
static bool conn_event(struct sink_conn *c, const struct smtp_server_event *ev)
{
    struct sink_pending *p = &c->pending;
    p->type = ev->type;
    p->cmd = ev->cmd;
    p->msg_bytes = ev->msg_bytes;
    p->reply = ev->reply;
    p->path[0] = 0;
    if (ev->cmd == SMTP_SCMD_MAIL || ev->cmd == SMTP_SCMD_RCPT)
        path_copy(p->path, ev->arg ? ev->arg : "", ev->arg ? ev->arg_len : 0);
    if (ev->type == SMTP_SEV_COMMAND && ev->cmd != SMTP_SCMD_BANNER) {
        c->cmds_this_read++;
        STAT_ADD(c->t, commands, 1);
    }
    struct sink_model *model = c->t->sh->model;
    if (model && (ev->cmd == SMTP_SCMD_EHLO || ev->cmd == SMTP_SCMD_HELO) && ev->arg)
        sink_model_helo(model, c->model_slot, ev->arg, ev->arg_len);
    if (model && ((ev->cmd == SMTP_SCMD_BANNER && c->model_refused) ||
                  (ev->cmd == SMTP_SCMD_MAIL && p->reply.code < 400 &&
                   !sink_model_msg(model, c->model_slot, vl_clock_mono_ms())))) {
        const char *text;
        p->reply.code = sink_model_reply(model, &text);   /* 421 closes after it is sent */
        snprintf(p->reply.text, sizeof p->reply.text, "%s", text);
        return conn_answer(c);
    }
    if (ev->cmd == SMTP_SCMD_STARTTLS && p->reply.code < 400 && !c->t->tls_ctx) {
        p->reply.code = 454;                    /* the TLS seam: no TLS configured */
        snprintf(p->reply.text, sizeof p->reply.text, "%sTLS not available",
                 c->t->sh->conf->smtp.enhancedstatuscodes ? "4.7.0 " : "");
    }
    uint32_t delay_ms = 0;
    bool disconnect = false;
    int st = stage_of(ev->cmd);
    if (st >= 0 && p->reply.code < 400)
        sink_policy(c->t, (enum sink_stage)st, p->path, &p->reply, &delay_ms, &disconnect);
    if (disconnect) {
        c->close_after_send = true;             /* replies already queued still go out */
        conn_flush(c);
        return false;
    }
    if (delay_ms > 0 && rx_timer_add(c->t->rx, delay_ms, conn_delay_done, c,
                                     &c->delay_timer) == 0) {
        c->delayed = true;                      /* conn_delay_done() answers */
        return false;
    }
    return conn_answer(c);
}

static void conn_delay_done(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct sink_conn *c = ev->user;
    vl_assert(c->delayed && !c->closing);       /* conn_close() cancels the timer */
    c->delayed = false;
    if (conn_answer(c))
        conn_pump(c);
}

/* DATA content: count it, save it, maybe drop the connection mid-data. */
static bool conn_body(struct sink_conn *c, const struct smtp_server_event *ev)
{
    if (!c->in_body) {
        c->in_body = true;
        uint32_t delay_ms = 0;
        bool disconnect = false;
        sink_policy(c->t, SINK_STAGE_MID_DATA, NULL, NULL, &delay_ms, &disconnect);
        if (disconnect) {
            conn_close(c);
            return false;
        }
        save_open(c);
    }
    save_body(c, ev->body, ev->body_len);
    return true;
}

/* Pipelining evidence: how many commands the last read carried. */
static void conn_read_account(struct sink_conn *c)
{
    struct sink_thread *t = c->t;
    if (c->cmds_this_read == 0)
        return;
    if (c->cmds_this_read > t->stats.max_cmds_per_read)
        __atomic_store_n(&t->stats.max_cmds_per_read, c->cmds_this_read, __ATOMIC_RELAXED);
    if (c->cmds_this_read >= 2)
        STAT_ADD(t, pipelined_reads, 1);
    c->cmds_this_read = 0;
}

/* TLS: decrypt what is buffered into in[]. @return 1 plaintext added, 0 read
 * ciphertext from the peer, -1 handled here (sending or closed). */
static int conn_tls_input(struct sink_conn *c)
{
    bool done_now;
    int n = tls_stream_input(c->tls, c->in + c->in_len, SINK_IN_BYTES - c->in_len, &done_now);
    if (done_now) {
        smtp_server_tls_started(&c->srv);       /* RFC 3207 4.2: forget the EHLO */
        STAT_ADD(c->t, tls_sessions, 1);
    }
    if (n < 0) {
        conn_close(c);
        return -1;
    }
    c->in_len += (uint32_t)n;
    if (n > 0)
        return 1;
    if (tls_stream_pending(c->tls) > 0) {         /* handshake flight or tickets */
        conn_flush(c);
        return -1;
    }
    return 0;
}

/* The server consumed all input: send what is queued, or read more.
 * @return true if more input is in in[] now (TLS): step the server again. */
static bool conn_need_input(struct sink_conn *c)
{
    struct sink_thread *t = c->t;
    if (c->out_len > 0) {
        conn_flush(c);
        return false;
    }
    conn_read_account(c);
    if (c->in_off > 0) {                        /* keep an unconsumed tail, if any */
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    char *buf = c->in + c->in_len;
    size_t cap = SINK_IN_BYTES - c->in_len;
    if (c->tls && cap > 0) {
        int r = conn_tls_input(c);
        if (r != 0)
            return r > 0;
        buf = c->tls->in;
        cap = sizeof c->tls->in;
    }
    if (cap == 0 || rx_recv(t->rx, c->h, buf, cap, (int)t->sh->conf->idle_timeout_ms) < 0) {
        conn_close(c);
        return false;
    }
    c->reading = true;
    return false;
}

static void conn_resume(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct sink_conn *c = ev->user;
    c->delayed = false;
    conn_pump(c);
}

/* Step the server until it needs input, must answer later, or we must send. */
static void conn_pump(struct sink_conn *c)
{
    for (uint32_t k = 0; k < SINK_PUMP_STEPS_MAX; k++) {
        if (c->closing || c->sending || c->delayed || c->reading)
            return;
        if (c->out_len + SINK_ANSWER_ROOM > SINK_OUT_BYTES) {
            conn_flush(c);
            return;
        }
        struct smtp_server_event ev;
        size_t used = 0;
        smtp_server_step(&c->srv, c->in + c->in_off, c->in_len - c->in_off, &used, &ev);
        vl_assert(used <= c->in_len - c->in_off);
        c->in_off += (uint32_t)used;
        switch (ev.type) {
        case SMTP_SEV_NEED_INPUT:
            if (!conn_need_input(c))
                return;
            break;
        case SMTP_SEV_BODY:
            if (!conn_body(c, &ev))
                return;
            break;
        case SMTP_SEV_COMMAND:
        case SMTP_SEV_DOT:
            if (!conn_event(c, &ev))
                return;
            break;
        default:
            vl_panic("bad server event %d", (int)ev.type);
        }
    }
    /* Step budget spent: yield to other connections, continue next turn. */
    if (rx_timer_add(c->t->rx, 0, conn_resume, c, &c->delay_timer) == 0)
        c->delayed = true;
    else
        conn_close(c);
}

static void conn_close(struct sink_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    conn_read_account(c);
    if (c->delayed)
        rx_timer_cancel(c->t->rx, c->delay_timer);
    save_abort(c);
    if (rx_close(c->t->rx, c->h) < 0)
        vl_panic("sink: close of a live connection failed");
}

/* The 220 to STARTTLS is out: the next bytes are the client's handshake.
 * Anything pipelined after STARTTLS was already discarded by the server. */
static int conn_tls_begin(struct sink_conn *c)
{
    c->tls_start = false;
    c->in_len = c->in_off = 0;
    if (c->t->sh->conf->tls_break) {
        c->tls_broken = true;
        return 0;
    }
    int rc = tls_stream_create(&c->tls, c->t->tls_ctx);
    if (rc < 0)
        conn_close(c);
    return rc;
}

static void conn_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct sink_conn *c = ev->user;
    struct sink_thread *t = c->t;
    switch (ev->op) {
    case RX_OP_RECV:
        c->reading = false;
        if (ev->res == -ETIMEDOUT)
            STAT_ADD(t, timeouts, 1);
        if (ev->res <= 0) {
            conn_close(c);
            return;
        }
        STAT_ADD(t, reads, 1);
        if (c->tls_broken) {
            /* --tls-break: the ClientHello gets a TLS 1.2 record with a fatal
             * internal_error alert (RFC 5246 7.2: level 2, description 80). */
            static const char alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50 };
            memcpy(c->out, alert, sizeof alert);
            c->out_len = sizeof alert;
            c->close_after_send = true;
            c->tls_broken = false;
            STAT_ADD(t, tls_broken, 1);
            conn_flush(c);
            return;
        }
        if (!c->tls)
            c->in_len += (uint32_t)ev->res;
        else if (tls_stream_received(c->tls, (size_t)ev->res) < 0) {
            conn_close(c);
            return;
        }
        conn_pump(c);
        break;
    case RX_OP_SEND:
        c->sending = false;
        if (ev->res < 0) {
            conn_close(c);
            return;
        }
        c->out_len = 0;
        if (c->tls_start && conn_tls_begin(c) < 0)
            return;
        if (c->tls && tls_stream_pending(c->tls) > 0)
            conn_flush(c);                      /* the rest of a large flight */
        else if (c->close_after_send)
            conn_close(c);
        else
            conn_pump(c);
        break;
    case RX_OP_CLOSE:
        STAT_ADD(t, connections_closed, 1);
        if (c->model_open)
            sink_model_conn_close(t->sh->model, c->model_slot);
        c->model_open = false;
        tls_stream_destroy(c->tls);
        c->tls = NULL;
        t->free_conns[t->free_count++] = (uint32_t)(c - t->conns);
        break;
    default:
        vl_panic("sink: unexpected op %d on a connection", (int)ev->op);
    }
}

static void conn_start(struct sink_thread *t, int fd)
{
    if (t->free_count == 0) {
        close(fd);                              /* pool full: back-pressure */
        STAT_ADD(t, connections_refused, 1);
        return;
    }
    struct sink_conn *c = &t->conns[t->free_conns[t->free_count - 1]];
    if (rx_open(t->rx, fd, conn_cb, c, &c->h) < 0) {
        close(fd);
        STAT_ADD(t, connections_refused, 1);
        return;
    }
    t->free_count--;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    rx_handle_t h = c->h;
    memset(c, 0, offsetof(struct sink_conn, env));
    c->t = t;
    c->h = h;
    c->id = ++t->conn_seq;
    c->save_fd = -1;
    smtp_server_init(&c->srv, &t->sh->conf->smtp);
    c->model_slot = -1;
    if (t->sh->model) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0) {
            c->model_open = sink_model_conn_open(t->sh->model, (struct sockaddr *)&peer,
                                                 vl_clock_mono_ms(), &c->model_slot);
            c->model_refused = !c->model_open;
        }
    }
    STAT_ADD(t, connections, 1);
    conn_pump(c);                               /* the banner */
}

/* ---- threads -------------------------------------------------------------- */

static void listener_cb(struct rx *rx, const struct rx_event *ev)
{
    struct sink_thread *t = ev->user;
    if (ev->op == RX_OP_CLOSE)
        return;
    vl_assert(ev->op == RX_OP_ACCEPT);
    if (ev->res >= 0)
        conn_start(t, ev->res);
    if (!ev->more && rx_accept_multishot(rx, ev->h) < 0)   /* e.g. after -EMFILE */
        fprintf(stderr, "volley sink: thread %u stopped accepting\n", t->idx);
}

static void thread_wake(struct rx *rx, const struct rx_event *ev)
{
    (void)ev;
    rx_stop(rx);
}

static int thread_setup(struct sink_thread *t)
{
    const struct sink_conf *cf = t->sh->conf;
    struct rx_conf rc = { .handles_max = cf->conns_max + cf->listen_count,
                          .timers_max = cf->conns_max, .sq_entries = 1024,
                          .wake_cb = thread_wake };
    int err = rx_create(&t->rx, &rc);
    if (err < 0)
        return err;
    t->conns = calloc(cf->conns_max, sizeof *t->conns);
    t->free_conns = calloc(cf->conns_max, sizeof *t->free_conns);
    if (!t->conns || !t->free_conns)
        return -ENOMEM;
    for (uint32_t i = 0; i < cf->conns_max; i++)
        t->free_conns[i] = cf->conns_max - 1 - i;
    t->free_count = cf->conns_max;
    if (cf->tls_cert) {
        char msg[400];
        err = tls_ctx_server_create(&t->tls_ctx, cf->tls_cert, cf->tls_key, msg, sizeof msg);
        if (err < 0) {
            fprintf(stderr, "volley sink: %s\n", msg);
            return err;
        }
    }
    t->rng = cf->seed ^ (0x9E3779B97F4A7C15ULL * (t->idx + 1));
    if (t->rng == 0)
        t->rng = 1;
    for (uint32_t i = 0; i < cf->listen_count; i++) {
        rx_handle_t h;
        err = rx_open(t->rx, t->lfd[i], listener_cb, t, &h);
        if (err < 0)
            return err;
        t->lfd[i] = -1;                         /* the reactor owns it now */
        err = rx_accept_multishot(t->rx, h);
        if (err < 0)
            return err;
    }
    return 0;
}

void *sink_thread_main(void *arg)
{
    struct sink_thread *t = arg;
    __atomic_store_n(&t->rc, thread_setup(t), __ATOMIC_RELAXED);
    pthread_barrier_wait(&t->sh->started);
    if (t->rc == 0)
        __atomic_store_n(&t->rc, rx_run(t->rx), __ATOMIC_RELAXED);
    for (uint32_t i = 0; t->conns && i < t->sh->conf->conns_max; i++)
        if (t->conns[i].t) {
            save_abort(&t->conns[i]);           /* unfinished messages leave no file */
            tls_stream_destroy(t->conns[i].tls);
            t->conns[i].tls = NULL;
        }
    return NULL;
}
