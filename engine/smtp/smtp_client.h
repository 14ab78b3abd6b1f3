/*
 * smtp_client.h - RFC 5321 client state machine. Pure: replies in, actions
 * out; no I/O, no clock, no allocation, never logs.
 *
 * The session (sockets, TLS, timers) drives it:
 *   smtp_client_init()                          at connect; the banner is awaited
 *   smtp_client_on_bytes()                      bytes read (plaintext or decrypted);
 *                                               one reply per call: loop on the rest
 *   smtp_client_on_timeout()                    the deadline passed
 *   smtp_client_on_close()                      peer closed / reset / I/O error
 *   smtp_client_tls_done()                      after SMTP_ACT_START_TLS's handshake
 *   smtp_client_body_sent()                     after SMTP_ACT_SEND_BODY: body and
 *                                               end marker are written
 *   smtp_client_txn_begin() / smtp_client_quit()  after SMTP_ACT_READY
 *   smtp_client_deadline_ms()                   after every call: arm the timer
 * Each call fills a caller-owned struct smtp_actions, to be carried out in
 * order. SEND bytes and fate texts are borrowed from the client and valid
 * until the next smtp_client_* call: copy or write them first.
 *
 * Invariants: send/recv cursors only move forward and recv never passes
 * send; every recipient of a transaction gets exactly one FATE action, and
 * TXN_DONE follows the last one; after CLOSE nothing else is emitted.
 *
 * Notes for the session: READY may come in the same list as TXN_DONE (the
 * next txn_begin needs a second actions array, or a deferred call). A CLOSE's
 * fate is the connection-level reason (e.g. a 554 greeting), not a
 * recipient's: the session's MX policy decides (next MX, or defer). A reply
 * while the body is being streamed is treated as a protocol error (defer).
 * Size: about 8.5 KiB per client (4 KiB window, 2 KiB parser, 100 rcpt slots);
 * struct smtp_actions is about 7 KiB, one per shard is enough.
 */
#ifndef VOLLEY_SMTP_CLIENT_H
#define VOLLEY_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volley/limits.h"
#include "smtp_cmd.h"
#include "smtp_ehlo.h"
#include "smtp_reply.h"
#include "smtp_states.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Commands written per call: the pipelining window. ~100 ordinary RCPTs fit;
 * longer groups go out in several writes as replies free the window. */
#define SMTP_CLIENT_OUT_BYTES 4096u
_Static_assert(SMTP_CLIENT_OUT_BYTES >= 4u * VL_SMTP_CMD_LINE_BYTES_MAX, "room for a group");

/* Connection failure classes (OpenSMTPD): throttling tells "down" from "refuses". */
enum smtp_fail {
    SMTP_FAIL_NONE,      /* normal close (after QUIT) */
    SMTP_FAIL_CONN,      /* dropped, reset or timed out */
    SMTP_FAIL_PROTO,     /* the peer broke the protocol (bad reply, bytes after STARTTLS 220) */
    SMTP_FAIL_RESP,      /* the peer refused us (banner, EHLO/HELO, RSET, 421) */
    SMTP_FAIL_TLS,       /* TLS required but not offered or refused */
};

enum smtp_fate_kind {
    SMTP_FATE_NONE,
    SMTP_FATE_DELIVERED,
    SMTP_FATE_DEFERRED,
    SMTP_FATE_BOUNCED,
};

struct smtp_fate {
    enum smtp_fate_kind kind;
    uint16_t code;                         /* reply code, or the local equivalent */
    bool local;                            /* decided here (SIZE, 8BITMIME, drop...) */
    bool ambiguous;                        /* final dot sent, no readable reply: maybe
                                              delivered (lost, malformed, over-long) */
    char status[VL_SMTP_STATUS_BYTES_MAX];    /* "x.y.z"; "X.0.0" when the peer gave none */
    const char *text;                      /* sanitised, <= VL_DIAG_TEXT_BYTES_MAX; borrowed */
    uint16_t text_len;
};

enum smtp_action_kind {
    SMTP_ACT_SEND,        /* write out[off .. off+len) of smtp_client_out() */
    SMTP_ACT_SEND_BODY,   /* stream the body through smtp_data, end marker included,
                             then call smtp_client_body_sent() */
    SMTP_ACT_START_TLS,   /* handshake, then smtp_client_tls_done() */
    SMTP_ACT_FATE,        /* recipient @c rcpt (index in smtp_msg.rcpts) gets @c fate */
    SMTP_ACT_TXN_DONE,    /* every recipient of the transaction has its fate */
    SMTP_ACT_READY,       /* idle: smtp_client_txn_begin() or smtp_client_quit() */
    SMTP_ACT_CLOSE,       /* close after the SENDs before it; @c fail and @c fate say why */
};

struct smtp_action {
    enum smtp_action_kind kind;
    enum smtp_fail fail;          /* CLOSE */
    uint32_t rcpt;                /* FATE */
    uint32_t off, len;            /* SEND */
    struct smtp_fate fate;        /* FATE; CLOSE: the reply or local reason (kind NONE if normal) */
};

#define SMTP_ACTIONS_MAX (VL_SMTP_RCPTS_PER_TXN_MAX + 8u)

struct smtp_actions {
    uint32_t count;
    struct smtp_action a[SMTP_ACTIONS_MAX];
};

struct smtp_client_conf {
    const char *helo_name;                   /* EHLO/HELO argument: domain or [literal] */
    size_t helo_name_len;
    uint32_t rcpts_per_txn_max;              /* 0 = VL_SMTP_RCPTS_PER_TXN_MAX; may only lower */
    uint32_t timeout_ms[SMTP_STATE_COUNT];   /* 0 = the state's default */
    bool starttls;                           /* use STARTTLS when offered */
    bool tls_required;                       /* no STARTTLS or refused: 4.7.0 deferral */
};

struct smtp_msg_rcpt {
    const char *addr;            /* Mailbox, no brackets */
    size_t addr_len;
    uint32_t notify;             /* SMTP_NOTIFY_* (sent only if DSN is offered) */
    const char *orcpt;           /* raw original recipient or NULL */
    size_t orcpt_len;
};

struct smtp_msg {
    const char *from;            /* reverse-path without brackets; from_len 0 = "<>" */
    size_t from_len;
    uint64_t size;               /* smtp_data_info.size */
    bool is_8bit;                /* smtp_data_info.is_8bit */
    enum smtp_cmd_ret ret;       /* DSN, sent only if offered */
    const char *envid;
    size_t envid_len;
    const struct smtp_msg_rcpt *rcpts;
    uint32_t rcpt_count;
};

struct smtp_cursor {
    enum smtp_state state;       /* MAIL, RCPT, DATA, BODY, DOT */
    uint32_t rcpt;               /* with RCPT: index */
};

struct smtp_rcpt {
    enum smtp_fate_kind fate;
    bool accepted;               /* RCPT got 2xx: waits for the final dot */
    bool skip;                   /* refused locally: never sent */
    uint16_t code;
    char status[VL_SMTP_STATUS_BYTES_MAX];
};

struct smtp_txn {
    const struct smtp_msg *msg;  /* borrowed until TXN_DONE */
    struct smtp_cmd_mail mail;
    struct smtp_cursor send, recv;
    uint32_t rcpt_count, fates_given, accepted;
    bool mail_failed;            /* MAIL refused: later replies only drain */
    bool need_rset;
    bool lone_dot;
    bool dot_sent;
    struct smtp_rcpt rcpt[VL_SMTP_RCPTS_PER_TXN_MAX];
};

struct smtp_client {
    /* Private: read through the functions below. */
    const struct smtp_client_conf *conf;
    enum smtp_state state;       /* connection state; MAIL while a transaction runs */
    bool in_txn;
    bool tls_active;
    bool ambiguous;              /* the last transaction ended with a dot and no readable reply */
    uint32_t rcpts_max;
    uint32_t timeout_ms[SMTP_STATE_COUNT];
    struct smtp_ehlo caps;
    struct smtp_txn txn;
    uint32_t out_len, out_flushed;
    char out[SMTP_CLIENT_OUT_BYTES];
    char diag[96];
    struct smtp_reply_parser parser;
};

/** Start a connection: the banner is awaited. @p conf is borrowed for the
 *  connection's life. @return 0, or VL_E_INVALID for a bad helo_name. */
int smtp_client_init(struct smtp_client *c, const struct smtp_client_conf *conf);

/** Feed received bytes. Parses at most one reply and acts on it; sets
 *  *@p consumed. @return 1 a reply was handled (call again with the rest),
 *  0 all consumed and more are needed, VL_E_PROTO the peer's bytes were
 *  malformed (actions then defer and close). */
int smtp_client_on_bytes(struct smtp_client *c, const char *buf, size_t len, size_t *consumed,
                         struct smtp_actions *acts);

/** Act on a reply parsed elsewhere. @p more_input: bytes follow it in the
 *  receive buffer (matters after STARTTLS). @return 0, or VL_E_PROTO when the
 *  reply broke the protocol (actions defer and close). */
int smtp_client_on_reply(struct smtp_client *c, const struct smtp_reply *r, bool more_input,
                         struct smtp_actions *acts);

/** Begin a transaction (only after SMTP_ACT_READY). @p m and what it points to
 *  are borrowed until SMTP_ACT_TXN_DONE. Local refusals (SIZE, 8BITMIME,
 *  SMTPUTF8, invalid address) come out as FATE actions at once.
 *  @return 0, or VL_E_INVALID for 0 or too many recipients (nothing done). */
int smtp_client_txn_begin(struct smtp_client *c, const struct smtp_msg *m,
                          struct smtp_actions *acts);

/** Say goodbye (only when READY): QUIT, then CLOSE on its reply. */
void smtp_client_quit(struct smtp_client *c, struct smtp_actions *acts);

/** The TLS handshake succeeded: capabilities are forgotten, EHLO again. */
void smtp_client_tls_done(struct smtp_client *c, struct smtp_actions *acts);

/** The body and its end marker have been written: the final reply is awaited. */
void smtp_client_body_sent(struct smtp_client *c, struct smtp_actions *acts);

/** The deadline passed: defer what is unfinished (451 4.4.2) and close. */
void smtp_client_on_timeout(struct smtp_client *c, struct smtp_actions *acts);

/** The connection is gone: defer what is unfinished (451 4.4.2) and close. */
void smtp_client_on_close(struct smtp_client *c, struct smtp_actions *acts);

/** Milliseconds the session may wait for what is now awaited; 0 = nothing. */
uint32_t smtp_client_deadline_ms(const struct smtp_client *c);

/** The state whose reply (or session event) is awaited now. */
enum smtp_state smtp_client_state(const struct smtp_client *c);

/** "BANNER", "MAIL", ...; never NULL. */
const char *smtp_client_state_name(enum smtp_state s);

/** True if the last transaction's final dot was sent and no readable reply
 *  came (connection lost or timed out, or a malformed, over-long or
 *  out-of-protocol reply): the deferred recipients may have been delivered
 *  (a duplicate on retry). */
static inline bool smtp_client_ambiguous(const struct smtp_client *c) { return c->ambiguous; }

/** The capabilities of the current EHLO (empty after HELO or STARTTLS). */
static inline const struct smtp_ehlo *smtp_client_caps(const struct smtp_client *c)
{
    return &c->caps;
}

/** The buffer SEND actions point into. */
static inline const char *smtp_client_out(const struct smtp_client *c) { return c->out; }

#ifdef __cplusplus
}
#endif
#endif
