/*
 * smtp_server_int.h - private to the server machine's files (smtp_server.c,
 * smtp_server_args.c, smtp_server_data.c, smtp_server_reply.c); nothing
 * outside engine/smtp/ includes it. The public contract is smtp_server.h.
 * Calls go one way: smtp_server.c -> args, data, reply; args, data -> reply.
 *
 * The ss_ prefix marks these as the server machine's internals. Invariant
 * shared by all three files: state changes only through smtp_server_answer()
 * (smtp_server.c); the args and data files only propose replies and mark the
 * open message (flags SS_F_PEND_UTF8, SS_F_TOOBIG, msg_bad).
 */
#ifndef VOLLEY_SMTP_SERVER_INT_H
#define VOLLEY_SMTP_SERVER_INT_H

#include "smtp_server.h"

#include <stdbool.h>
#include <stddef.h>

/* Session states (struct smtp_server.state). */
enum ss_state { SS_BANNER, SS_REFUSED, SS_INIT, SS_READY, SS_MAIL, SS_RCPT, SS_DATA, SS_CLOSED,
                SS_BDAT,     /* a BDAT chunk was accepted: the next BDAT goes on */
                SS_CHUNK };  /* reading a BDAT chunk's octets (bdat_left) */

#define SS_F_PENDING   0x01u   /* a COMMAND/DOT event awaits smtp_server_answer() */
#define SS_F_SKIP      0x02u   /* discarding the rest of an over-long command line */
#define SS_F_HELO      0x04u   /* EHLO or HELO was accepted */
#define SS_F_TOOBIG    0x08u   /* the body passed size_max: no more BODY events */
#define SS_F_UTF8      0x10u   /* the open transaction's MAIL carried SMTPUTF8 */
#define SS_F_PEND_UTF8 0x20u   /* the pending MAIL carries SMTPUTF8 */
#define SS_F_AUTH_CONT 0x40u   /* AUTH answered 334: the next line is a SASL response */
#define SS_F_AUTHED    0x80u   /* AUTH answered 235 */

/* Body scanner states (struct smtp_server.body_state). BOL is entered only
 * after a real CRLF. */
enum ss_body { SB_BOL, SB_BOL_DOT, SB_MID, SB_CR, SB_DOT_CR };

/* Why a message is bad (struct smtp_server.msg_bad_why; first reason seen wins). */
enum ss_bad { SBAD_NONE, SBAD_LF, SBAD_CR, SBAD_NUL, SBAD_LONG };

/* A parsed MAIL/RCPT argument: slices of the command line. */
struct ss_path {
    const char *path;        /* without brackets and source route */
    size_t path_len;
    bool bracketed;
    const char *params;      /* after the path; starts with SP or is empty */
    size_t params_len;
};

/* smtp_server_reply.c: propose @p code with enhanced status @p esc (NULL: none)
 * and @p text (truncated to fit) as @p ev's reply. */
void ss_reply(const struct smtp_server *s, struct smtp_server_event *ev, unsigned code,
              const char *esc, const char *text);

/* smtp_server_reply.c: format @p r, the answer to the pending command, into
 * @p out (capacity @p cap >= 1024); EHLO's 250 gets the capability lines.
 * @return the bytes written. */
size_t ss_format(const struct smtp_server *s, const struct smtp_server_reply *r,
                 char *out, size_t cap);

/* smtp_server_args.c: case-insensitive equality of @p a (@p n bytes) with the
 * upper-case @p lit. */
bool ss_ieq(const char *a, size_t n, const char *lit);

/* smtp_server_args.c: parse "<path>" or a bare path at @p p (@p n bytes;
 * leading spaces allowed). 0, or VL_E_INVALID on a syntax error. */
int ss_path_parse(const char *p, size_t n, struct ss_path *out);

/* smtp_server_args.c: check the MAIL (@p mail) or RCPT parameters " KEY[=VALUE]..."
 * at @p p; true if all are acceptable, else the reply to the first bad one is
 * proposed in @p ev. May set SS_F_PEND_UTF8. */
bool ss_params(struct smtp_server *s, bool mail, const char *p, size_t n,
               struct smtp_server_event *ev);

/* smtp_server_data.c: make @p ev the end of the message (DOT) with its
 *  proposed reply (550 if bad, 552 if too big, else 250). */
void ss_dot_event(struct smtp_server *s, struct smtp_server_event *ev);

/* smtp_server_data.c: count @p n content bytes; true if they may be handed out
 *  as a BODY event (false once past size_max). */
bool ss_body_count(struct smtp_server *s, size_t n);

/* smtp_server_data.c: DATA mode: hand out the next run of content bytes
 * (BODY event) or the end of data (DOT event with a proposed reply). */
void ss_step_body(struct smtp_server *s, const char *in, size_t len, size_t *consumed,
                  struct smtp_server_event *ev);

#endif
