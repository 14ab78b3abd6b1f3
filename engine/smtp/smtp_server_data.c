/*
 * smtp_server_data.c - the DATA body scanner of the server machine
 * (smtp_server.c): hands out runs of content bytes, drops dot-stuffing, and
 * finds the end of data. Pure: no I/O, no allocation.
 *
 * Invariants (the CVE-2023-51764 class):
 *  - The scanner enters "beginning of line" only after a real CRLF (or at the
 *    start of the data), and the data ends only at "." CRLF seen from there.
 *    A bare LF or bare CR leaves it mid-line: "\n.\r\n", "\r.\r", "\r\n.\n"
 *    never end the data.
 *  - A message with a bare CR, bare LF, NUL or a line over VL_MSG_LINE_BYTES_MAX
 *    is marked bad (first reason wins) and its proposed dot reply is 550 5.6.0;
 *    one over size_max gets 552 5.3.4 and no further BODY events.
 *  - Scanning is windowed (SS_BODY_SCAN_BYTES): cost stays linear in the input.
 */
#include "smtp_server.h"
#include "smtp_server_int.h"

#include "volley/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define SS_BODY_SCAN_BYTES 1024u   /* window for the next CR: holds a 998-octet line */

static void ss_body_bad(struct smtp_server *s, enum ss_bad why)
{
    if (!s->msg_bad) {
        s->msg_bad = true;
        s->msg_bad_why = (uint8_t)why;
    }
}

void ss_dot_event(struct smtp_server *s, struct smtp_server_event *ev)
{
    static const char *const why[] = {
        [SBAD_NONE] = "Ok",
        [SBAD_LF] = "Bare LF in message data (RFC 5321 2.3.8)",
        [SBAD_CR] = "Bare CR in message data (RFC 5321 2.3.8)",
        [SBAD_NUL] = "NUL in message data",
        [SBAD_LONG] = "Message line over 998 octets (RFC 5322 2.1.1)",
    };
    ev->type = SMTP_SEV_DOT;
    ev->cmd = SMTP_SCMD_DOT;
    ev->msg_bytes = s->msg_bytes;
    ev->msg_rcpts = s->rcpts;
    ev->msg_bad = s->msg_bad;
    s->pending = SMTP_SCMD_DOT;
    s->flags |= SS_F_PENDING;
    if (s->msg_bad)
        ss_reply(s, ev, 550, "5.6.0", why[s->msg_bad_why]);
    else if (s->flags & SS_F_TOOBIG)
        ss_reply(s, ev, 552, "5.3.4", "Message size exceeds fixed maximum message size");
    else
        ss_reply(s, ev, 250, "2.0.0", "Ok");
}

/* Count @p n content bytes; true if they may be handed out as a BODY event. */
bool ss_body_count(struct smtp_server *s, size_t n)
{
    s->msg_bytes += n;
    if (s->conf->size_max && s->msg_bytes > s->conf->size_max)
        s->flags |= SS_F_TOOBIG;
    return n > 0 && !(s->flags & SS_F_TOOBIG);
}

/* Scan mid-line content from @p i: stop at the first CR, LF or NUL (returned
 * index) and account the line length. */
static size_t ss_body_scan(struct smtp_server *s, const char *in, size_t i, size_t len)
{
    const char *p = in + i;
    size_t rem = len - i < SS_BODY_SCAN_BYTES ? len - i : SS_BODY_SCAN_BYTES;
    const char *cr = memchr(p, '\r', rem);     /* windowed: bare-LF input stays linear */
    size_t seg = cr ? (size_t)(cr - p) : rem;
    const char *lf = memchr(p, '\n', seg);
    if (lf)
        seg = (size_t)(lf - p);
    const char *nul = memchr(p, '\0', seg);
    if (nul)
        seg = (size_t)(nul - p);
    s->body_line_len += (uint32_t)seg;                  /* <= 999 + 1024: no overflow */
    if (s->body_line_len > VL_MSG_LINE_BYTES_MAX) {
        ss_body_bad(s, SBAD_LONG);
        s->body_line_len = VL_MSG_LINE_BYTES_MAX + 1;   /* saturate: stays over */
    }
    return i + seg;
}

/* DATA mode: hand out the next run of content bytes, or the end of data. A run
 * stops before a stuffing dot at the beginning of a line (it is dropped) and
 * at the end of the input; "." CR LF after a real CRLF ends the data. */
void ss_step_body(struct smtp_server *s, const char *in, size_t len, size_t *consumed,
                         struct smtp_server_event *ev)
{
    size_t i = 0, start = 0;
    while (i < len) {
        unsigned char c = (unsigned char)in[i];
        switch (s->body_state) {
        case SB_BOL:
            if (c != '.') {
                s->body_state = SB_MID;
                continue;                           /* reread c mid-line */
            }
            if (i > start && ss_body_count(s, i - start))
                goto body;                          /* the run before the dot first */
            s->body_state = SB_BOL_DOT;
            start = ++i;                            /* the dot is never content */
            continue;
        case SB_BOL_DOT:
            s->body_state = SB_MID;                 /* else: the dot was stuffing */
            if (c == '\r') {
                s->body_state = SB_DOT_CR;
                start = ++i;                        /* withheld: maybe the terminator */
            }
            continue;
        case SB_DOT_CR:
            if (c == '\n') {
                *consumed = i + 1;
                ss_dot_event(s, ev);
                return;
            }
            ss_body_bad(s, SBAD_CR);                /* ".\rX": bare CR */
            s->body_state = SB_MID;
            continue;
        case SB_CR:
            s->body_state = SB_MID;
            if (c == '\n') {
                s->body_state = SB_BOL;             /* the only way to BOL: a real CRLF */
                s->body_line_len = 0;
                i++;
            } else {
                ss_body_bad(s, SBAD_CR);
            }
            continue;
        case SB_MID:
            if (c == '\r') {
                s->body_state = SB_CR;
                i++;
            } else if (c == '\n') {
                ss_body_bad(s, SBAD_LF);            /* bare LF: still mid-line */
                i++;
            } else if (c == '\0') {
                ss_body_bad(s, SBAD_NUL);
                i++;
            } else {
                i = ss_body_scan(s, in, i, len);
            }
            continue;
        default:
            vl_panic("smtp_server: bad body state %d", (int)s->body_state);
        }
    }
    if (!ss_body_count(s, i - start)) {
        *consumed = len;
        return;                                     /* NEED_INPUT */
    }
body:
    *consumed = i;
    ev->type = SMTP_SEV_BODY;
    ev->body = in + start;
    ev->body_len = i - start;
}
