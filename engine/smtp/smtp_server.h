/*
 * smtp_server.h - RFC 5321 server side: command parser and session state
 * machine. Pure: no I/O, no clock, no allocation after init. Shared by
 * `volley sink` (engine/sink.c) and, later, the injection listener.
 *
 * Use: the I/O layer feeds received bytes to smtp_server_step(), which
 * consumes at most one command line (or one run of DATA bytes) per call and
 * returns one event. For an event that needs an answer (a command, the end of
 * data), the server proposes a reply in ev->reply; the caller's policy (sink
 * faults, listener relay checks, the queue commit) may replace it, then calls
 * smtp_server_answer() with the final code. State advances only when the final
 * code is a success (2xx/3xx): a MAIL answered 451 leaves no transaction open.
 *
 * Invariants:
 *  - Only CRLF "." CRLF ends DATA. A bare CR or LF inside DATA never ends it
 *    and never starts a new command: the message is marked bad and gets a 5xx
 *    after the real end (SMTP smuggling, CVE-2023-51764 class).
 *  - Bytes pipelined after STARTTLS are discarded (RFC 3207, CVE-2011-0411).
 *  - A command line over VL_SMTP_CMD_LINE_BYTES_MAX gets 500 5.5.2 and the
 *    rest of that line is skipped; nothing past the cap is buffered.
 *  - With ENHANCEDSTATUSCODES on, every 2xx/4xx/5xx reply except the greeting
 *    and EHLO/HELO carries x.y.z (RFC 2034); never a 3xx.
 *
 * Choices (engine/smtp_server.c implements them; the tests pin them):
 *  - Command mode is strict: a line ending in a bare LF, or holding a bare CR
 *    or a NUL, gets 500 5.5.2 (cmd UNKNOWN) and is not executed.
 *  - A bad body (bare CR or LF, NUL, a line over 998 octets) sets msg_bad and
 *    the proposed dot reply is 550 5.6.0 (text names the rule). BODY events go
 *    on meanwhile; a bad message's content is approximate.
 *  - Once msg_bytes passes size_max, no more BODY events; msg_bytes still
 *    counts and the proposed dot reply is 552 5.3.4 (550 wins if also bad).
 *  - A STARTTLS line consumes all the input given, whatever the reply.
 *  - DATA enters the body only when answered 3xx. Any answer to the dot ends
 *    the transaction. A 4xx greeting or any 421 means AFTER_CLOSE; a 5xx
 *    greeting gets 503 for every command but QUIT (RFC 5321 3.1). After
 *    AFTER_CLOSE, step() consumes and ignores all input.
 *  - COMMAND arg: MAIL/RCPT the path without brackets or source route (NULL
 *    if it did not parse; empty for "<>"); others the text after the verb,
 *    trailing spaces removed. RCPT accepts a domain-less <Postmaster> and the
 *    bare local form "RCPT TO:rich" (PROTOCOL.md 1.1): a listener that needs a
 *    domain checks the arg for '@'.
 *  - Without conf->chunking, BDAT gets 502 5.5.1 and bytes after it are read
 *    as commands. With it (RFC 3030): "BDAT n [LAST]" is followed by exactly n
 *    octets, taken as they are (no dot-stuffing, no end-of-data scan: the
 *    length frames them) and handed out as BODY events when the transaction
 *    may take them; they are consumed whatever the answer. Then the BDAT is a
 *    COMMAND event (proposed 250 2.0.0, or 503 5.5.1 with no recipient,
 *    552 5.3.4 past size_max) - except a LAST chunk of a good transaction,
 *    which ends the message as a DOT event, like the final dot. Any answer
 *    but 2xx to a BDAT ends the transaction (the client must start over).
 *    BDAT with a bad size gets 501 5.5.4 and nothing is consumed past its line.
 *  - AUTH (conf->auth, RFC 4954): refused with 538 5.7.11 before TLS, 503
 *    when already authenticated or inside a transaction, 502 when not
 *    offered. Otherwise the COMMAND event carries "MECH [initial-response]"
 *    with a proposed 535 5.7.8: the caller decides. Answered 334 (its text is
 *    the base64 challenge), the next line is the client's response, not a
 *    command: an AUTH event with ev->auth_response set (proposed 535, or
 *    501 5.7.0 for "*", the client's cancel). Answered 235, the session is
 *    authenticated (smtp_server_authed()) until it ends or TLS restarts it.
 *    No error counter: the caller bounds a session in time.
 */
#ifndef VOLLEY_SMTP_SERVER_H
#define VOLLEY_SMTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volley/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SMTP_SERVER_TEXT_BYTES_MAX 256u   /* reply text the policy may set */

struct smtp_server_conf {
    const char *hostname;        /* greeting and EHLO name; not NULL */
    uint64_t size_max;           /* SIZE advertised and enforced (552 5.3.4); 0 = no limit */
    uint32_t rcpts_max;          /* per transaction, then 452 4.5.3; 0 = 100 */
    bool pipelining;             /* advertise PIPELINING */
    bool eightbitmime;           /* advertise 8BITMIME (and accept BODY=) */
    bool enhancedstatuscodes;    /* advertise ENHANCEDSTATUSCODES and use x.y.z */
    bool smtputf8;               /* advertise SMTPUTF8 */
    bool starttls;               /* advertise STARTTLS (the caller does the handshake) */
    bool dsn;                    /* advertise DSN (accept RET/ENVID/NOTIFY/ORCPT) */
    bool chunking;               /* advertise CHUNKING and accept BDAT (RFC 3030) */
    bool auth;                   /* advertise AUTH PLAIN LOGIN once TLS is active (RFC 4954);
                                    the caller runs the exchange and checks credentials */
};

/* The command (or moment) an event is about; the sink keys its faults on these. */
#define SMTP_SERVER_CMDS(X) \
    X(BANNER) X(EHLO) X(HELO) X(MAIL) X(RCPT) X(DATA) X(DOT) X(RSET) X(NOOP) \
    X(QUIT) X(VRFY) X(HELP) X(STARTTLS) X(BDAT) X(AUTH) X(UNKNOWN)

enum smtp_server_cmd {
#define X(name) SMTP_SCMD_##name,
    SMTP_SERVER_CMDS(X)
#undef X
    SMTP_SCMD_COUNT
};

const char *smtp_server_cmd_name(enum smtp_server_cmd cmd);   /* "MAIL", ... never NULL */

enum smtp_server_ev_type {
    SMTP_SEV_NEED_INPUT,   /* all input consumed; no complete line yet: read more */
    SMTP_SEV_COMMAND,      /* a command (or the banner): answer it */
    SMTP_SEV_BODY,         /* DATA content bytes, unstuffed, CRLF kept: ev->body/body_len */
    SMTP_SEV_DOT,          /* end of data: the message is complete; answer it */
};

struct smtp_server_reply {
    uint16_t code;                               /* 3 digits, 2xx-5xx */
    char text[SMTP_SERVER_TEXT_BYTES_MAX];       /* enhanced code (if any) + text, no CRLF */
};

struct smtp_server_event {
    enum smtp_server_ev_type type;
    enum smtp_server_cmd cmd;                    /* with COMMAND and DOT */
    /* With COMMAND: the argument as received, not NUL-terminated, valid until
     * the next step call (e.g. the path of MAIL/RCPT without brackets). */
    const char *arg;
    size_t arg_len;
    /* With BODY: content bytes, valid until the next step call. */
    const char *body;
    size_t body_len;
    /* With DOT: the message's size in octets (unstuffed, CRLF counted), its
     * accepted recipients, and whether it broke a rule (bare CR/LF, NUL, a line
     * over 998 octets): then the proposed reply is already a 5xx. */
    uint64_t msg_bytes;
    uint32_t msg_rcpts;
    bool msg_bad;
    bool auth_response;                          /* AUTH: arg is a SASL response line */
    struct smtp_server_reply reply;              /* proposed answer (COMMAND, DOT) */
};

enum smtp_server_after {
    SMTP_SERVER_AFTER_CONTINUE,      /* keep reading */
    SMTP_SERVER_AFTER_CLOSE,         /* send the reply, then close (QUIT, 421) */
    SMTP_SERVER_AFTER_STARTTLS,      /* send the reply, then the TLS handshake; discard
                                        any input already received (done by the server) */
};

struct smtp_server {
    /* Private: the state below is the implementation's; the layout may change. */
    const struct smtp_server_conf *conf;
    int state;
    uint32_t rcpts;
    uint64_t msg_bytes;
    uint32_t line_len;
    uint32_t flags;
    uint8_t body_state;
    uint32_t body_line_len;
    bool msg_bad;
    uint8_t msg_bad_why;                         /* first rule the body broke */
    bool tls_active;
    bool bdat_last, bdat_ok;                     /* the chunk being read (SS_CHUNK) */
    bool bdat_read;                              /* the pending BDAT's chunk was read */
    uint8_t bdat_state_prev;                     /* the state the BDAT came in */
    uint64_t bdat_left;                          /* its octets still to read */
    uint64_t bdat_size;
    enum smtp_server_cmd pending;                /* the command awaiting smtp_server_answer */
    char line[VL_SMTP_CMD_LINE_BYTES_MAX];
};

/** Start a session with @p conf (borrowed for the session's life). The first
 *  step() returns the BANNER command event with a proposed 220. */
void smtp_server_init(struct smtp_server *s, const struct smtp_server_conf *conf);

/** Consume input. Reads at most one command line or one run of DATA bytes
 *  from @p in (@p len bytes), sets *@p consumed, fills @p ev. Pointers in @p ev
 *  point into @p in or the server's line buffer and live until the next call.
 *  A COMMAND or DOT event must be answered before the next step. */
void smtp_server_step(struct smtp_server *s, const char *in, size_t len, size_t *consumed,
                      struct smtp_server_event *ev);

/** Answer the pending COMMAND/DOT event with @p reply (the proposed one or the
 *  policy's). Formats the reply (multi-line for EHLO) into @p out (capacity
 *  @p out_cap, at least 1024) and returns the bytes written; applies the state
 *  change iff the code is 2xx/3xx. *@p after says what the I/O layer does next. */
size_t smtp_server_answer(struct smtp_server *s, const struct smtp_server_reply *reply,
                          char *out, size_t out_cap, enum smtp_server_after *after);

/** True once an AUTH was answered 235 (until TLS restarts the session). */
bool smtp_server_authed(const struct smtp_server *s);

/** True while message content is awaited: after DATA's 354 until the final
 *  dot, or a BDAT chunk's octets (the DATA block deadline of RFC 5321
 *  4.5.3.2 applies there, the command deadline elsewhere). */
bool smtp_server_in_data(const struct smtp_server *s);

/** After the TLS handshake: forget the EHLO state (RFC 3207 4.2). Called
 *  before the greeting (implicit TLS, RFC 8314), the session simply starts
 *  encrypted: the greeting is still the first event. */
void smtp_server_tls_started(struct smtp_server *s);

#ifdef __cplusplus
}
#endif
#endif
