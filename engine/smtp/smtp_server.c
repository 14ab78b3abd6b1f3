/*
 * smtp_server.c - RFC 5321 server side: command parser and session state
 * machine (contract in smtp_server.h). Pure: no I/O, no clock, no allocation,
 * never logs.
 *
 * States: BANNER (greeting not yet answered) -> INIT (greeted, no EHLO/HELO)
 * -> READY (EHLO/HELO done) -> MAIL -> RCPT (>= 1 recipient accepted) -> DATA
 * (body bytes) -> READY again after the reply to the final dot. A 5xx greeting
 * leads to REFUSED (every command but QUIT gets 503, RFC 5321 3.1); a 421
 * reply, or a 2xx to QUIT, leads to CLOSED (all further input is discarded).
 *
 * Invariants:
 *  - State changes only in smtp_server_answer(), and only for a success code
 *    (DATA: only a 3xx enters the body), except that the reply to the final
 *    dot always ends the transaction, whatever its code.
 *  - Command mode: a line ends only at CRLF. A line ending in a bare LF, or
 *    holding a NUL or a bare CR, is answered 500 5.5.2 and never executed.
 *    Nothing past VL_SMTP_CMD_LINE_BYTES_MAX is buffered: the rest of an
 *    over-long line is skipped, then answered 500 5.5.2.
 *  - DATA mode: the body state machine enters "beginning of line" only after
 *    a real CRLF (or at the start of the data), and the data ends only at
 *    "." CRLF seen from there. A bare LF or a bare CR leaves the state in
 *    mid-line, so "\n.\r\n", "\r.\r", "\r\n.\n" never end the data and never
 *    let later bytes be read as commands (CVE-2023-51764 class). Such a message
 *    (or one with a NUL, or a line over 998 octets) is marked bad and its
 *    proposed dot reply is 550 5.6.0.
 *  - A STARTTLS command line consumes the whole input given: nothing pipelined
 *    after it is ever executed (RFC 3207 4.2, CVE-2011-0411 class).
 *  - With ENHANCEDSTATUSCODES on, every proposed 2xx/4xx/5xx reply except the
 *    greeting and the replies to EHLO/HELO carries x.y.z; no 3xx ever does.
 *
 * Diagnostics: none (pure module); every outcome is a proposed reply.
 *
 * Files: this one holds the session state machine and the command-line
 * framing and dispatch; smtp_server_args.c parses MAIL/RCPT paths and ESMTP
 * parameters; smtp_server_data.c scans the DATA body; smtp_server_reply.c
 * proposes and formats replies. Their shared private declarations are in
 * smtp_server_int.h.
 */
#include "smtp_server.h"
#include "smtp_server_int.h"

#include "volley/addr.h"
#include "volley/error.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const char *const ss_cmd_names[] = {
#define X(name) #name,
    SMTP_SERVER_CMDS(X)
#undef X
};
_Static_assert(sizeof ss_cmd_names / sizeof ss_cmd_names[0] == SMTP_SCMD_COUNT, "name table");

const char *smtp_server_cmd_name(enum smtp_server_cmd cmd)
{
    if ((unsigned)cmd >= SMTP_SCMD_COUNT)
        return "?";
    return ss_cmd_names[cmd];
}

static uint32_t ss_rcpts_max(const struct smtp_server *s)
{
    return s->conf->rcpts_max ? s->conf->rcpts_max : VL_SMTP_RCPTS_PER_TXN_MAX;
}

/* ---- events --------------------------------------------------------------------------- */

static void ss_event_init(struct smtp_server_event *ev, enum smtp_server_ev_type type)
{
    /* Everything up to the first byte of the reply text: the rest is not read. */
    memset(ev, 0, offsetof(struct smtp_server_event, reply.text) + 1);
    ev->type = type;
    ev->cmd = SMTP_SCMD_UNKNOWN;
}

/* A COMMAND event for @p cmd: it must be answered before the next step. */
static void ss_command(struct smtp_server *s, struct smtp_server_event *ev,
                       enum smtp_server_cmd cmd)
{
    ev->type = SMTP_SEV_COMMAND;
    ev->cmd = cmd;
    s->pending = cmd;
    s->flags |= SS_F_PENDING;
}

/* ---- transaction state ---------------------------------------------------------------- */

static void ss_txn_reset(struct smtp_server *s)
{
    s->rcpts = 0;
    s->msg_bytes = 0;
    s->msg_bad = false;
    s->msg_bad_why = SBAD_NONE;
    s->flags &= ~(SS_F_TOOBIG | SS_F_UTF8 | SS_F_PEND_UTF8);
    s->state = (s->flags & SS_F_HELO) ? SS_READY : SS_INIT;
}

void smtp_server_init(struct smtp_server *s, const struct smtp_server_conf *conf)
{
    vl_assert(conf != NULL && conf->hostname != NULL);
    memset(s, 0, sizeof *s);
    s->conf = conf;
    s->state = SS_BANNER;
    s->pending = SMTP_SCMD_UNKNOWN;
}

bool smtp_server_authed(const struct smtp_server *s)
{
    return s->flags & SS_F_AUTHED;
}

bool smtp_server_in_data(const struct smtp_server *s)
{
    return s->state == SS_DATA || s->state == SS_CHUNK;
}

void smtp_server_tls_started(struct smtp_server *s)
{
    bool greeting = s->state == SS_BANNER;    /* implicit TLS: before the greeting */
    s->tls_active = true;
    s->flags &= ~(SS_F_HELO | SS_F_SKIP | SS_F_AUTH_CONT | SS_F_AUTHED);
    s->line_len = 0;
    ss_txn_reset(s);
    if (greeting)
        s->state = SS_BANNER;
}

/* Apply the state change of a successful (2xx/3xx) answer to the pending command. */
static void ss_apply(struct smtp_server *s, unsigned code, enum smtp_server_after *after)
{
    switch (s->pending) {
    case SMTP_SCMD_BANNER:
        s->state = SS_INIT;
        break;
    case SMTP_SCMD_EHLO:
    case SMTP_SCMD_HELO:
        s->flags |= SS_F_HELO;
        ss_txn_reset(s);
        break;
    case SMTP_SCMD_MAIL: {
        bool utf8 = s->flags & SS_F_PEND_UTF8;
        ss_txn_reset(s);
        if (utf8)
            s->flags |= SS_F_UTF8;
        s->state = SS_MAIL;
        }
        break;
    case SMTP_SCMD_RCPT:
        s->rcpts++;
        s->state = SS_RCPT;
        break;
    case SMTP_SCMD_DATA:
        if (code / 100 != 3)
            break;                      /* only a 354 opens the body */
        s->state = SS_DATA;
        s->body_state = SB_BOL;         /* the start of data counts as after CRLF */
        s->body_line_len = 0;
        s->msg_bytes = 0;
        s->msg_bad = false;
        s->msg_bad_why = SBAD_NONE;
        break;
    case SMTP_SCMD_RSET:
        ss_txn_reset(s);
        break;
    case SMTP_SCMD_QUIT:
        s->state = SS_CLOSED;
        *after = SMTP_SERVER_AFTER_CLOSE;
        break;
    case SMTP_SCMD_STARTTLS:
        smtp_server_tls_started(s);     /* the caller calls it again after the handshake */
        *after = SMTP_SERVER_AFTER_STARTTLS;
        break;
    case SMTP_SCMD_BDAT:
        if (s->bdat_ok)
            s->state = SS_BDAT;         /* an accepted chunk: the next BDAT goes on */
        break;
    case SMTP_SCMD_AUTH:
        if (code == 334)
            s->flags |= SS_F_AUTH_CONT; /* the next line is the client's response */
        else if (code == 235)
            s->flags |= SS_F_AUTHED;
        break;
    case SMTP_SCMD_DOT:                 /* handled by the caller of ss_apply */
    case SMTP_SCMD_NOOP:
    case SMTP_SCMD_VRFY:
    case SMTP_SCMD_HELP:
    case SMTP_SCMD_UNKNOWN:
        break;
    default:
        vl_panic("smtp_server: bad pending command %d", (int)s->pending);
    }
}

size_t smtp_server_answer(struct smtp_server *s, const struct smtp_server_reply *reply,
                          char *out, size_t out_cap, enum smtp_server_after *after)
{
    vl_assert(s->flags & SS_F_PENDING);
    vl_assert(reply->code >= 200 && reply->code <= 599);
    vl_assert(out_cap >= 1024);
    size_t n = ss_format(s, reply, out, out_cap);
    unsigned code = reply->code;
    *after = SMTP_SERVER_AFTER_CONTINUE;
    s->flags &= ~SS_F_PENDING;
    if (s->pending == SMTP_SCMD_DOT)
        ss_txn_reset(s);                /* any answer to the dot ends the transaction */
    else if (s->pending == SMTP_SCMD_BDAT && s->bdat_read && code >= 300)
        ss_txn_reset(s);                /* a refused chunk ends it too (RFC 3030 4.2) */
    else if (s->pending == SMTP_SCMD_BANNER && code >= 500)
        s->state = SS_REFUSED;          /* 554 greeting: 503 until QUIT (RFC 5321 3.1) */
    else if (s->pending == SMTP_SCMD_BANNER && code >= 400)
        code = 421;                     /* a 4xx greeting cannot be followed by a session */
    else if (code < 400)
        ss_apply(s, code, after);
    s->flags &= ~SS_F_PEND_UTF8;
    if (s->pending == SMTP_SCMD_AUTH && code != 334)
        s->flags &= ~SS_F_AUTH_CONT;    /* the exchange is over, whatever its end */
    s->bdat_read = false;
    if (code == 421) {
        s->state = SS_CLOSED;
        *after = SMTP_SERVER_AFTER_CLOSE;
    }
    s->pending = SMTP_SCMD_UNKNOWN;
    return n;
}

/* ---- commands ------------------------------------------------------------------------- */

static enum smtp_server_cmd ss_verb(const char *v, size_t n)
{
    static const enum smtp_server_cmd verbs[] = {
        SMTP_SCMD_EHLO, SMTP_SCMD_HELO, SMTP_SCMD_MAIL, SMTP_SCMD_RCPT, SMTP_SCMD_DATA,
        SMTP_SCMD_RSET, SMTP_SCMD_NOOP, SMTP_SCMD_QUIT, SMTP_SCMD_VRFY, SMTP_SCMD_HELP,
        SMTP_SCMD_STARTTLS, SMTP_SCMD_BDAT, SMTP_SCMD_AUTH,
    };
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (ss_ieq(v, n, ss_cmd_names[verbs[i]]))
            return verbs[i];
    return SMTP_SCMD_UNKNOWN;
}

static void ss_cmd_mail(struct smtp_server *s, const char *a, size_t n,
                        struct smtp_server_event *ev)
{
    struct ss_path sp;
    struct vl_addr addr;
    if (s->state != SS_READY) {
        ss_reply(s, ev, 503, "5.5.1",
                 s->state == SS_INIT ? "Send EHLO or HELO first" : "Nested MAIL command");
        return;
    }
    if (n < 5 || !ss_ieq(a, 5, "FROM:") || ss_path_parse(a + 5, n - 5, &sp) != 0
        || (!sp.bracketed && sp.path_len == 0)) {
        ss_reply(s, ev, 501, "5.1.7", "Syntax: MAIL FROM:<address>");
        return;
    }
    ev->arg = sp.path;
    ev->arg_len = sp.path_len;
    bool utf8 = false;
    if (sp.path_len > 0) {
        if (vl_addr_parse(sp.path, sp.path_len, &addr, NULL) != 0) {
            ss_reply(s, ev, 501, "5.1.7", "Bad sender address syntax");
            return;
        }
        utf8 = addr.utf8;
    }
    if (!ss_params(s, true, sp.params, sp.params_len, ev))
        return;
    if (utf8 && !(s->flags & SS_F_PEND_UTF8)) {
        ss_reply(s, ev, 553, "5.6.7", "UTF-8 address needs SMTPUTF8");
        return;
    }
    ss_reply(s, ev, 250, "2.1.0", "Ok");
}

/* A recipient without a domain: only Postmaster (RFC 5321 4.1.1.3), or, bare
 * (the articles' "RCPT TO:rich"), any dot-atom local part. */
static bool ss_rcpt_local_ok(const struct ss_path *sp, bool *utf8)
{
    if (ss_ieq(sp->path, sp->path_len, "POSTMASTER"))
        return true;
    if (sp->bracketed || sp->path_len > VL_SMTP_LOCAL_PART_BYTES_MAX)
        return false;
    char buf[VL_SMTP_LOCAL_PART_BYTES_MAX + sizeof "@localhost"];
    memcpy(buf, sp->path, sp->path_len);
    memcpy(buf + sp->path_len, "@localhost", sizeof "@localhost" - 1);
    struct vl_addr addr;
    if (vl_addr_parse(buf, sp->path_len + sizeof "@localhost" - 1, &addr, NULL) != 0)
        return false;
    *utf8 = addr.utf8;
    return true;
}

static void ss_cmd_rcpt(struct smtp_server *s, const char *a, size_t n,
                        struct smtp_server_event *ev)
{
    struct ss_path sp;
    struct vl_addr addr;
    if (s->state != SS_MAIL && s->state != SS_RCPT) {
        ss_reply(s, ev, 503, "5.5.1", "Need MAIL before RCPT");
        return;
    }
    if (n < 3 || !ss_ieq(a, 3, "TO:") || ss_path_parse(a + 3, n - 3, &sp) != 0
        || sp.path_len == 0) {
        ss_reply(s, ev, 501, "5.1.3", "Syntax: RCPT TO:<address>");
        return;
    }
    ev->arg = sp.path;
    ev->arg_len = sp.path_len;
    bool utf8 = false;
    if (memchr(sp.path, '@', sp.path_len) == NULL) {
        if (!ss_rcpt_local_ok(&sp, &utf8)) {
            ss_reply(s, ev, 501, "5.1.3", "Bad recipient address syntax");
            return;
        }
    } else if (vl_addr_parse(sp.path, sp.path_len, &addr, NULL) != 0) {
        ss_reply(s, ev, 501, "5.1.3", "Bad recipient address syntax");
        return;
    } else {
        utf8 = addr.utf8;
    }
    if (!ss_params(s, false, sp.params, sp.params_len, ev))
        return;
    if (utf8 && !(s->flags & SS_F_UTF8)) {
        ss_reply(s, ev, 553, "5.6.7", "UTF-8 address needs SMTPUTF8");
        return;
    }
    if (s->rcpts >= ss_rcpts_max(s)) {
        ss_reply(s, ev, 452, "4.5.3", "Too many recipients");
        return;
    }
    ss_reply(s, ev, 250, "2.1.5", "Ok");
}

static void ss_cmd_ehlo(struct smtp_server *s, bool ehlo, const char *a, size_t n,
                        struct smtp_server_event *ev)
{
    if (n == 0) {
        ss_reply(s, ev, 501, NULL, ehlo ? "Syntax: EHLO hostname" : "Syntax: HELO hostname");
        return;
    }
    ev->arg = a;
    ev->arg_len = n;
    ss_reply(s, ev, 250, NULL, s->conf->hostname);
}

static void ss_cmd_data(struct smtp_server *s, struct smtp_server_event *ev)
{
    if (s->state == SS_RCPT)
        ss_reply(s, ev, 354, NULL, "End data with <CR><LF>.<CR><LF>");
    else if (s->state == SS_MAIL)
        ss_reply(s, ev, 503, "5.5.1", "No valid recipients");
    else
        ss_reply(s, ev, 503, "5.5.1", "Need MAIL and RCPT before DATA");
}

/* "BDAT n [LAST]": read n octets next (SS_CHUNK); the event comes after them
 * (ss_step_chunk). A bad size is answered at once and nothing is read. */
static void ss_cmd_bdat(struct smtp_server *s, const char *a, size_t n,
                        struct smtp_server_event *ev)
{
    if (!s->conf->chunking) {
        ss_reply(s, ev, 502, "5.5.1", "CHUNKING not offered");
        return;
    }
    uint64_t size = 0;
    size_t i = 0;
    for (; i < n && a[i] >= '0' && a[i] <= '9' && i < 19; i++)
        size = size * 10 + (uint64_t)(a[i] - '0');
    bool last = false;
    if (i < n && a[i] == ' ' && ss_ieq(a + i + 1, n - i - 1, "LAST")) {
        last = true;
        i = n;
    }
    if (i == 0 || i != n) {
        ss_reply(s, ev, 501, "5.5.4", "Syntax: BDAT size [LAST]");
        return;
    }
    s->flags &= ~SS_F_PENDING;          /* no event yet: the chunk comes first */
    s->pending = SMTP_SCMD_UNKNOWN;
    ev->type = SMTP_SEV_NEED_INPUT;
    s->bdat_ok = s->state == SS_RCPT || s->state == SS_BDAT;
    /* msg_bytes counts from the accepted MAIL (ss_txn_reset): chunks add up. */
    s->bdat_state_prev = (uint8_t)s->state;
    s->bdat_last = last;
    s->bdat_left = size;
    s->bdat_size = size;
    s->state = SS_CHUNK;
}

/* "AUTH MECH [initial-response]" (RFC 4954 4): the caller decides; the
 * machine only refuses what is out of order. */
static void ss_cmd_auth(struct smtp_server *s, size_t n, struct smtp_server_event *ev)
{
    if (!s->conf->auth)
        ss_reply(s, ev, 502, "5.5.1", "AUTH not offered");
    else if (!s->tls_active)
        ss_reply(s, ev, 538, "5.7.11", "Encryption required for requested authentication "
                 "mechanism");
    else if (s->flags & SS_F_AUTHED)
        ss_reply(s, ev, 503, "5.5.1", "Already authenticated");
    else if (s->state != SS_READY)
        ss_reply(s, ev, 503, "5.5.1", s->state == SS_INIT ? "Send EHLO first"
                                                          : "AUTH not allowed in a transaction");
    else if (n == 0)
        ss_reply(s, ev, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
    else
        ss_reply(s, ev, 535, "5.7.8", "Authentication credentials invalid");
}

/* SS_CHUNK: hand out the chunk's octets (BODY), then its BDAT or DOT event. */
static void ss_step_chunk(struct smtp_server *s, const char *in, size_t len, size_t *consumed,
                          struct smtp_server_event *ev)
{
    *consumed = 0;
    if (s->bdat_left > 0) {
        size_t n = s->bdat_left < len ? (size_t)s->bdat_left : len;
        s->bdat_left -= n;
        *consumed = n;
        if (s->bdat_ok && ss_body_count(s, n)) {
            ev->type = SMTP_SEV_BODY;
            ev->body = in;
            ev->body_len = n;
            return;
        }
        if (s->bdat_left > 0)
            return;                     /* NEED_INPUT: all input was taken */
    }
    s->state = s->bdat_state_prev;      /* the answer moves it on (smtp_server_answer) */
    if (s->bdat_ok && s->bdat_last) {
        ss_dot_event(s, ev);            /* the end of the message, as the final dot */
        return;
    }
    ss_command(s, ev, SMTP_SCMD_BDAT);
    s->bdat_read = true;
    if (!s->bdat_ok)
        ss_reply(s, ev, 503, "5.5.1", "Need MAIL and RCPT before BDAT");
    else if (s->flags & SS_F_TOOBIG)
        ss_reply(s, ev, 552, "5.3.4", "Message size exceeds fixed maximum message size");
    else {
        char t[64];
        snprintf(t, sizeof t, "%llu octets received", (unsigned long long)s->bdat_size);
        ss_reply(s, ev, 250, "2.0.0", t);
    }
}

static void ss_cmd_starttls(struct smtp_server *s, struct smtp_server_event *ev)
{
    if (s->tls_active)
        ss_reply(s, ev, 503, "5.5.1", "TLS already active");
    else if (!s->conf->starttls)
        ss_reply(s, ev, 454, "4.7.0", "TLS not available");
    else
        ss_reply(s, ev, 220, "2.0.0", "Ready to start TLS");
}

/* Propose the answer to one complete command line (CRLF removed). */
static void ss_cmd_dispatch(struct smtp_server *s, const char *line, size_t n,
                            struct smtp_server_event *ev)
{
    const char *sp = memchr(line, ' ', n);
    size_t vn = sp ? (size_t)(sp - line) : n;
    const char *a = sp ? sp + 1 : line + n;
    size_t an = sp ? n - vn - 1 : 0;
    while (an > 0 && a[an - 1] == ' ')
        an--;                            /* trailing spaces are not part of the argument */
    enum smtp_server_cmd cmd = ss_verb(line, vn);
    ss_command(s, ev, cmd);
    if (s->state == SS_REFUSED && cmd != SMTP_SCMD_QUIT) {
        ss_reply(s, ev, 503, "5.5.1", "Service refused, only QUIT");
        return;
    }
    if (an > 0 && (cmd == SMTP_SCMD_DATA || cmd == SMTP_SCMD_RSET || cmd == SMTP_SCMD_STARTTLS)) {
        ss_reply(s, ev, 501, "5.5.4", "Syntax: no parameter allowed");
        return;
    }
    switch (cmd) {
    case SMTP_SCMD_EHLO:     ss_cmd_ehlo(s, true, a, an, ev); break;
    case SMTP_SCMD_HELO:     ss_cmd_ehlo(s, false, a, an, ev); break;
    case SMTP_SCMD_MAIL:     ss_cmd_mail(s, a, an, ev); break;
    case SMTP_SCMD_RCPT:     ss_cmd_rcpt(s, a, an, ev); break;
    case SMTP_SCMD_DATA:     ss_cmd_data(s, ev); break;
    case SMTP_SCMD_STARTTLS: ss_cmd_starttls(s, ev); break;
    case SMTP_SCMD_RSET:
    case SMTP_SCMD_NOOP:     ss_reply(s, ev, 250, "2.0.0", "Ok"); break;
    case SMTP_SCMD_QUIT:     ss_reply(s, ev, 221, "2.0.0", "Bye"); break;
    case SMTP_SCMD_VRFY:
        if (an == 0)
            ss_reply(s, ev, 501, "5.5.4", "Syntax: VRFY address");
        else
            ss_reply(s, ev, 252, "2.1.5", "Cannot VRFY user, but will attempt delivery");
        break;
    case SMTP_SCMD_HELP:
        ss_reply(s, ev, 214, "2.0.0",
                 "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
        break;
    case SMTP_SCMD_BDAT:     ss_cmd_bdat(s, a, an, ev); break;
    case SMTP_SCMD_AUTH:     ss_cmd_auth(s, an, ev); break;
    case SMTP_SCMD_UNKNOWN:  ss_reply(s, ev, 500, "5.5.2", "Command unrecognized"); break;
    default:
        vl_panic("smtp_server: bad verb %d", (int)cmd);
    }
    if (cmd != SMTP_SCMD_MAIL && cmd != SMTP_SCMD_RCPT && ev->arg == NULL) {
        ev->arg = a;
        ev->arg_len = an;
    }
}

/* A line that is never executed: 500 5.5.2 with @p why. */
static void ss_cmd_reject(struct smtp_server *s, struct smtp_server_event *ev, const char *why)
{
    ss_command(s, ev, SMTP_SCMD_UNKNOWN);
    ss_reply(s, ev, 500, "5.5.2", why);
}

/* Command mode: find one CRLF line (buffering a partial one) and propose its answer. */
static void ss_step_command(struct smtp_server *s, const char *in, size_t len,
                            size_t *consumed, struct smtp_server_event *ev)
{
    const char *nl = memchr(in, '\n', len);
    size_t n = nl ? (size_t)(nl - in) : len;
    if (s->flags & SS_F_SKIP) {
        *consumed = nl ? n + 1 : len;
        if (nl) {
            s->flags &= ~SS_F_SKIP;
            ss_cmd_reject(s, ev, "Line too long");
        }
        return;
    }
    if (s->line_len + n + 1 > VL_SMTP_CMD_LINE_BYTES_MAX) {
        s->line_len = 0;                 /* over the cap: skip, never buffer */
        *consumed = nl ? n + 1 : len;
        if (nl)
            ss_cmd_reject(s, ev, "Line too long");
        else
            s->flags |= SS_F_SKIP;
        return;
    }
    if (!nl) {
        memcpy(s->line + s->line_len, in, len);
        s->line_len += (uint32_t)len;
        *consumed = len;
        return;
    }
    *consumed = n + 1;
    const char *line = in;
    size_t ll = n;
    if (s->line_len > 0) {
        memcpy(s->line + s->line_len, in, n);
        line = s->line;
        ll = s->line_len + n;
        s->line_len = 0;
    }
    if (ll == 0 || line[ll - 1] != '\r') {
        ss_cmd_reject(s, ev, "Bare LF not allowed; lines end with CRLF");
        return;
    }
    ll--;
    if (memchr(line, '\r', ll) || memchr(line, '\0', ll)) {
        ss_cmd_reject(s, ev, "Bare CR or NUL in command line");
        return;
    }
    if (s->flags & SS_F_AUTH_CONT) {                /* a SASL response, not a command */
        ss_command(s, ev, SMTP_SCMD_AUTH);
        ev->auth_response = true;
        ev->arg = line;
        ev->arg_len = ll;
        if (ll == 1 && line[0] == '*')
            ss_reply(s, ev, 501, "5.7.0", "Authentication cancelled");
        else
            ss_reply(s, ev, 535, "5.7.8", "Authentication credentials invalid");
        return;
    }
    ss_cmd_dispatch(s, line, ll, ev);
}

void smtp_server_step(struct smtp_server *s, const char *in, size_t len, size_t *consumed,
                      struct smtp_server_event *ev)
{
    vl_assert(!(s->flags & SS_F_PENDING));
    vl_assert(in != NULL || len == 0);
    ss_event_init(ev, SMTP_SEV_NEED_INPUT);
    *consumed = 0;
    if (s->state == SS_BANNER) {
        ss_command(s, ev, SMTP_SCMD_BANNER);
        ev->reply.code = 220;
        snprintf(ev->reply.text, sizeof ev->reply.text, "%s ESMTP", s->conf->hostname);
        return;
    }
    if (s->state == SS_CHUNK) {
        ss_step_chunk(s, in, len, consumed, ev);
        return;
    }
    if (len == 0)
        return;
    if (s->state == SS_CLOSED) {
        *consumed = len;                            /* nothing after QUIT/421 is read */
        return;
    }
    if (s->state == SS_DATA) {
        ss_step_body(s, in, len, consumed, ev);
        return;
    }
    ss_step_command(s, in, len, consumed, ev);
    if (ev->type == SMTP_SEV_COMMAND && ev->cmd == SMTP_SCMD_STARTTLS)
        *consumed = len;                            /* never execute what follows it */
    if (s->state == SS_CHUNK) {                     /* a BDAT line: its octets follow */
        size_t more = 0;
        ss_step_chunk(s, in + *consumed, len - *consumed, &more, ev);
        *consumed += more;
    }
}
