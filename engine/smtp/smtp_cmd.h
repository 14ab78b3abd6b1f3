/*
 * smtp_cmd.h - SMTP command formatting (RFC 5321 4.1, RFC 1870, 6152, 6531,
 * 3461). Pure: no I/O, no allocation, never logs.
 *
 * Every function writes one complete command line, CRLF included, into the
 * caller's @p out (capacity @p cap) and returns its length, or a negative
 * code: VL_E_INVALID for an argument that fails validation (a path that is
 * not an RFC 5321 Mailbox, a control character, CR, LF or NUL anywhere) and
 * VL_E_TOOBIG when the line would exceed VL_SMTP_CMD_LINE_BYTES_MAX (512) or
 * @p cap. On error nothing usable is in @p out. No argument byte can ever put
 * CR, LF or NUL on the wire.
 */
#ifndef VOLLEY_SMTP_CMD_H
#define VOLLEY_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum smtp_cmd_verb {
    SMTP_CMD_DATA,
    SMTP_CMD_RSET,
    SMTP_CMD_QUIT,
    SMTP_CMD_NOOP,
    SMTP_CMD_STARTTLS,
};

enum smtp_cmd_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

#define SMTP_NOTIFY_SUCCESS  (1u << 0)
#define SMTP_NOTIFY_FAILURE  (1u << 1)
#define SMTP_NOTIFY_DELAY    (1u << 2)
#define SMTP_NOTIFY_NEVER    (1u << 3)   /* must appear alone */

struct smtp_cmd_mail {
    const char *path;            /* Mailbox without brackets; path_len 0 = null path "<>" */
    size_t path_len;
    bool size_set;               /* send SIZE=size */
    uint64_t size;
    bool body_8bitmime;          /* send BODY=8BITMIME */
    bool smtputf8;               /* send SMTPUTF8 */
    enum smtp_cmd_ret ret;       /* RET=FULL|HDRS, or none */
    const char *envid;           /* ENVID, raw (xtext-encoded here); NULL = none */
    size_t envid_len;
};

struct smtp_cmd_rcpt {
    const char *path;            /* Mailbox without brackets; never empty */
    size_t path_len;
    uint32_t notify;             /* SMTP_NOTIFY_* mask; 0 = no NOTIFY= */
    const char *orcpt;           /* original recipient, raw: sent as ORCPT=rfc822;xtext */
    size_t orcpt_len;            /* NULL/0 = no ORCPT= */
};

/** "EHLO name" / "HELO name". @p name: a domain or an address literal. */
int smtp_cmd_ehlo(char *out, size_t cap, const char *name, size_t name_len);
int smtp_cmd_helo(char *out, size_t cap, const char *name, size_t name_len);

/** "MAIL FROM:<path>" with the parameters set in @p m, in this order:
 *  SIZE= BODY=8BITMIME SMTPUTF8 RET= ENVID=. The caller sends only the
 *  parameters the server advertised. */
int smtp_cmd_mail(char *out, size_t cap, const struct smtp_cmd_mail *m);

/** "RCPT TO:<path>" [NOTIFY=...] [ORCPT=rfc822;xtext]. */
int smtp_cmd_rcpt(char *out, size_t cap, const struct smtp_cmd_rcpt *r);

/** DATA, RSET, QUIT, NOOP or STARTTLS. */
int smtp_cmd_simple(char *out, size_t cap, enum smtp_cmd_verb verb);

/** RFC 3461 xtext: '!'..'~' except '+' and '=' as is, every other octet
 *  as "+XX". Controls (< 0x20, 0x7f) are refused (VL_E_INVALID) since they
 *  never belong in ENVID/ORCPT. @return bytes written (no NUL) or an error. */
int smtp_xtext_encode(char *out, size_t cap, const char *in, size_t len);

#ifdef __cplusplus
}
#endif
#endif
