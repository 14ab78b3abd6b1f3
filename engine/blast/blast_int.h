/*
 * blast_int.h - blast's private structures: a thread (reactor, sessions,
 * schedule, statistics) and a session (one SMTP connection). One thread owns
 * everything here; nothing is shared but the live counters, which the
 * control thread reads with relaxed atomics.
 */
#ifndef VOLLEY_BLAST_INT_H
#define VOLLEY_BLAST_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "blast.h"
#include "blast_sched.h"
#include "rx.h"
#include "smtp_ehlo.h"
#include "smtp_reply.h"
#include "tls.h"

#define BLAST_WBUF_BYTES    32768u   /* one of two send buffers per session */
#define BLAST_IN_BYTES       8192u   /* received plaintext (replies) per read */
#define BLAST_TLS_OUT_BYTES (TLS_SEAL_OUT_MAX(BLAST_WBUF_BYTES))
#define BLAST_EXPECT_MAX    (VL_SMTP_RCPTS_PER_TXN_MAX + 4u)   /* replies awaited at once */
#define TLS_STREAM_IN_BYTES_BLAST 16384u   /* ciphertext per read */
#define BLAST_TEMPLATE_BYTES (78u * 840u)   /* body filler: 840 lines of 76 + CRLF */
_Static_assert(BLAST_CMD_BYTES_MAX + 1024u <= BLAST_WBUF_BYTES, "a message's commands fit");

/* What a reply answers (the order they were written). */
enum blast_cmd {
    BLAST_CMD_BANNER, BLAST_CMD_EHLO, BLAST_CMD_HELO, BLAST_CMD_STARTTLS, BLAST_CMD_AUTH,
    BLAST_CMD_MAIL, BLAST_CMD_RCPT, BLAST_CMD_DATA, BLAST_CMD_DOT, BLAST_CMD_BDAT,
    BLAST_CMD_RSET, BLAST_CMD_QUIT,
};

enum blast_sess_state {
    BLAST_S_FREE,        /* slot unused */
    BLAST_S_CONNECT,     /* connect in flight */
    BLAST_S_SETUP,       /* banner .. AUTH */
    BLAST_S_TLS,         /* handshake */
    BLAST_S_READY,       /* idle, may take a message */
    BLAST_S_TXN,         /* a message is under way */
    BLAST_S_QUIT,        /* QUIT written */
    BLAST_S_CLOSING,     /* rx_close() called, waiting for RX_OP_CLOSE */
};

struct blast_thread;

struct blast_session {
    struct blast_thread *th;
    uint32_t idx;
    enum blast_sess_state state;
    rx_handle_t h;
    bool send_posted, recv_posted;
    bool tls_tried, authed, helo_tried, in_idle;
    bool failed;                     /* an error was counted: no second one */
    bool redial;                     /* closing to take its message to a new connection */
    uint32_t msgs_on_conn;
    /* replies awaited, a ring */
    uint8_t expect[BLAST_EXPECT_MAX];
    uint32_t exp_head, exp_count;
    struct smtp_reply_parser parser;
    struct smtp_ehlo caps;
    bool ehlo_done;
    /* send side: two buffers, one accumulating while the other is in flight */
    char *wbuf[2];
    uint32_t wlen[2], wcur;
    bool body_end_buffered, body_end_inflight;
    /* TLS (NULL while plaintext) */
    struct tls_conn *tls;
    char *tls_in, *tls_out;
    bool tls_end_sealed;
    /* receive side */
    char in[BLAST_IN_BYTES];
    /* the message under way */
    bool has_msg;
    bool txn_counted;                /* its first MAIL is in the stats (a redial's is not) */
    uint32_t txn_replies;            /* replies to this transaction so far */
    uint64_t msg_seq;                /* this thread's message number */
    uint64_t t_intended;             /* ns since run start (closed loop: MAIL time) */
    uint32_t msg_step;
    uint64_t msg_size;               /* content bytes */
    uint64_t hdr_len, body_len;      /* content = header + filler body + CRLF */
    uint64_t body_off;               /* bytes of content (after BDAT line) queued */
    bool body_active, bdat;
    uint32_t rcpt_sent, rcpt_replied, rcpt_ok;
    uint16_t refusal_code;           /* the first 4xx/5xx of the transaction */
    bool mail_refused, data_refused, lone_dot;
    char hdr[1024];
    uint64_t t_connect, t_connected, t_cmd, t_tls, t_mail, t_data, t_354, t_body_done;
    uint64_t t_wait;                 /* since when a reply is awaited (timeouts) */
    uint64_t t_send;                 /* when the send in flight was posted */
};

/* Live counters (the control thread reads them). */
struct blast_live_atomic {
    _Atomic uint64_t started, ok, tempfail, permfail, errors, conns_open, backlog;
};

/* How a session reports up to its thread (blast_run.c sets them): through
 * these pointers, never by name, so a session never calls its owner directly. */
struct blast_owner {
    bool (*take)(struct blast_thread *th, struct blast_session *s);   /* a message for s? */
    bool (*more)(const struct blast_thread *th);                      /* any left to start? */
    void (*idle)(struct blast_thread *th, struct blast_session *s);   /* s waits for one */
    void (*closed)(struct blast_thread *th, struct blast_session *s); /* s's slot is free */
};

struct blast_thread {
    const struct blast_conf *conf;
    struct blast_owner owner;
    uint32_t k;                      /* thread index */
    pthread_t tid;
    bool joined;
    struct rx *rx;
    struct tls_ctx *tls_ctx;
    struct blast_result res;
    struct blast_live_atomic live;
    atomic_int *stop;                /* 1 = finish started work, 2 = close now */
    int rc;
    char err[256];
    /* sessions */
    uint32_t sessions_cap;           /* this thread's share */
    uint32_t sessions_open;
    struct blast_session *sess;      /* sessions_cap slots */
    uint32_t *idle;                  /* READY sessions (stack) */
    uint32_t idle_count;
    uint64_t conn_seq;
    /* messages */
    bool open_loop;
    uint64_t quota;                  /* messages this thread may start; UINT64_MAX = none */
    uint64_t started;
    uint64_t deadline_ns;            /* no new message after this (0 = none) */
    struct blast_sched due_cur, start_cur;
    uint64_t due;                    /* open loop: messages due by now */
    uint64_t t0_ns;                  /* CLOCK_MONOTONIC at the run's start (shared) */
    uint64_t rng;
    uint64_t rcpt_seq;
    char date[64];                   /* Date: header text, refreshed each second */
    uint64_t date_s;
    const char *tmpl;                /* body filler (shared, read-only) */
    char auth_b64[1024];             /* AUTH PLAIN's initial response */
    uint32_t *free_slots;            /* stack of FREE session slots */
    uint32_t free_count;
    bool aborted;
    uint64_t sweep_ns;               /* next deadline sweep */
};

/* blast_session.c: one connection */
int blast_session_start(struct blast_thread *th, struct blast_session *s);   /* has_msg set */
void blast_session_fail(struct blast_session *s, enum blast_err kind);
void blast_session_abort(struct blast_session *s);      /* stop level 2: close now */
void blast_session_quit_idle(struct blast_session *s);  /* READY: QUIT */
void blast_session_ready(struct blast_session *s);      /* READY: next message, or idle */
/** Fail (as a timeout) a session whose reply or send is older than the timeout. */
bool blast_session_overdue(struct blast_session *s, uint64_t now);

/* blast_stats.c: counting (the thread's own result) */
void blast_stats_msg_taken(struct blast_thread *th, struct blast_session *s);
void blast_stats_msg_started(struct blast_thread *th, struct blast_session *s);
void blast_stats_rate_fit(struct blast_result *res);
void blast_stats_reply(struct blast_thread *th, const struct smtp_reply *r);
void blast_stats_msg_ended(struct blast_thread *th, struct blast_session *s, int outcome,
                           uint64_t t_end);

/* blast_msg.c: message content */
void blast_msg_date_refresh(struct blast_thread *th);
void blast_msg_build(struct blast_thread *th, struct blast_session *s);
void blast_msg_rcpt(struct blast_thread *th, char *addr, size_t cap);
/** The body filler, BLAST_TEMPLATE_BYTES of 76-octet lines + CRLF; free() it. */
char *blast_msg_template_create(void);
/** AUTH PLAIN's initial response for USER, PASS. @return 0, or -EINVAL if too long. */
int blast_msg_auth_plain(const char *user, const char *pass, char *out, size_t cap);

static inline uint64_t blast_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/** Nanoseconds since the run's start. */
static inline uint64_t blast_now_ns(const struct blast_thread *th)
{
    return blast_mono_ns() - th->t0_ns;
}

/* outcomes of a message */
enum { BLAST_OUT_OK, BLAST_OUT_TEMPFAIL, BLAST_OUT_PERMFAIL, BLAST_OUT_ERROR };

#endif
