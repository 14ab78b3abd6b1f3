/*
 * smtp_states.h - the SMTP client's states: one X-macro table generates the
 * enum, the names, the default timeouts (RFC 5321 4.5.3.2, or policy where
 * the RFC names none) and the reply class each state expects, so they cannot
 * drift apart.
 *
 * Transaction states MAIL < RCPT < DATA < BODY < DOT are ordered: the
 * pipelining cursors compare them. A timeout of 0 means "nothing awaited
 * from the peer" (READY: the pool's idle timer owns it; CLOSED).
 */
#ifndef VOLLEY_SMTP_STATES_H
#define VOLLEY_SMTP_STATES_H

#define SMTP_REPLY_NONE 0
#define SMTP_REPLY_2XX  2
#define SMTP_REPLY_3XX  3

#define SMTP_STATES(X)                                                           \
    /* name       timeout_ms  expect */                                          \
    X(BANNER,       300000,   SMTP_REPLY_2XX)  /* 4.5.3.2.1 initial 220: 5 min */ \
    X(EHLO,         300000,   SMTP_REPLY_2XX)  /* policy: as MAIL */              \
    X(HELO,         300000,   SMTP_REPLY_2XX)                                     \
    X(STARTTLS,     120000,   SMTP_REPLY_2XX)  /* policy: 2 min */                \
    X(TLS,          120000,   SMTP_REPLY_NONE) /* handshake: the session's */     \
    X(READY,             0,   SMTP_REPLY_NONE) /* idle between transactions */    \
    X(MAIL,         300000,   SMTP_REPLY_2XX)  /* 4.5.3.2.2: 5 min */             \
    X(RCPT,         300000,   SMTP_REPLY_2XX)  /* 4.5.3.2.3: 5 min */             \
    X(DATA,         120000,   SMTP_REPLY_3XX)  /* 4.5.3.2.4: 2 min */             \
    X(BODY,         180000,   SMTP_REPLY_NONE) /* 4.5.3.2.5: 3 min per block */   \
    X(DOT,          600000,   SMTP_REPLY_2XX)  /* 4.5.3.2.6: 10 min */            \
    X(RSET,         300000,   SMTP_REPLY_2XX)  /* policy */                       \
    X(QUIT,          60000,   SMTP_REPLY_2XX)  /* policy: 1 min */                \
    X(CLOSED,            0,   SMTP_REPLY_NONE)

enum smtp_state {
#define X(name, ms, expect) SMTP_STATE_##name,
    SMTP_STATES(X)
#undef X
    SMTP_STATE_COUNT
};

_Static_assert(SMTP_STATE_MAIL < SMTP_STATE_RCPT && SMTP_STATE_RCPT < SMTP_STATE_DATA &&
               SMTP_STATE_DATA < SMTP_STATE_BODY && SMTP_STATE_BODY < SMTP_STATE_DOT,
               "cursors compare transaction states");

#endif
