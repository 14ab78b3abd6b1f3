/*
 * dsn.h - RFC 3464 delivery status notifications (pure: no I/O, no clock;
 * the caller passes times and names).
 *
 * A DSN is multipart/report; report-type=delivery-status (RFC 6522) with three
 * parts: a human-readable text/plain, the message/delivery-status fields, and
 * the original message's header block as text/rfc822-headers. It is sent with
 * the null reverse-path to the original return path, so it never causes
 * another DSN. Remote reply text appears only in Diagnostic-Code, stripped of
 * CR, LF and controls and capped at VL_DIAG_TEXT_BYTES_MAX.
 */
#ifndef VOLLEY_DSN_H
#define VOLLEY_DSN_H

#include <stddef.h>
#include <stdint.h>

#include "volley/queue.h"

enum dsn_action { DSN_ACTION_FAILED, DSN_ACTION_DELAYED, DSN_ACTION_DELIVERED,
                  DSN_ACTION_RELAYED };

struct dsn_rcpt {
    const char *addr;            /* Final-Recipient: rfc822; addr */
    const char *orcpt;           /* Original-Recipient, or NULL */
    enum dsn_action action;
    const char *status;          /* x.y.z (required) */
    const char *remote_mta;      /* Remote-MTA: dns; name, or NULL (local decision) */
    int code;                    /* reply code for Diagnostic-Code, 0 = none */
    const char *diag;            /* reply text, or a local explanation; may be NULL */
    int64_t last_attempt_ms;     /* Last-Attempt-Date, 0 = omit */
    int64_t retry_until_ms;      /* Will-Retry-Until (delayed only), 0 = omit */
    const char *category;        /* X-Bounce-Category (volley's bounce classification,
                                    an RFC 3464 extension field), or NULL */
};

struct dsn_input {
    const char *reporting_mta;   /* our host name */
    const char *postmaster;      /* From: address, e.g. postmaster@our.host */
    const char *return_path;     /* original MAIL FROM: the DSN's To: (never empty) */
    const char *envid;           /* Original-Envelope-Id, or NULL */
    int64_t arrival_ms;          /* Arrival-Date */
    int64_t now_ms;              /* Date: */
    const char *orig;            /* the original message (CRLF, unstuffed) */
    size_t orig_len;
    const struct dsn_rcpt *rcpts;
    unsigned rcpt_count;
    uint64_t unique;             /* makes Message-ID and boundary unique */
};

/** Upper bound of the DSN's size for @p in (to size the output buffer). */
size_t dsn_size_max(const struct dsn_input *in);

/** Write the DSN (header + body, CRLF line ends, no line over 998 octets) into
 *  @p out of capacity @p cap. Returns its length, or VL_E_TOOBIG if cap is too
 *  small, VL_E_INVALID if there is no recipient or no return path. */
long dsn_build(const struct dsn_input *in, char *out, size_t cap);

/** Copy @p text into @p out (cap bytes incl. NUL) with CR/LF/tabs turned into
 *  spaces and other controls and invalid UTF-8 dropped, at most
 *  VL_DIAG_TEXT_BYTES_MAX bytes. Returns the length. */
size_t dsn_sanitize(const char *text, char *out, size_t cap);

/** The DSN about @p rcpts (@p rcpt_count) of the queued message @p m, from
 *  @p reporting_mta (its postmaster signs it), ready to enqueue: *@p out gets
 *  the null reverse-path, the malloc'd body (*@p body, which the caller frees
 *  once enqueued), BODY=8BITMIME if needed, and one recipient, m's return
 *  path, stored in *@p rcpt_slot (which must outlive @p out).
 *  @return 0, -ENOMEM, VL_E_INVALID (no recipient, null return path) or
 *  VL_E_TOOBIG; on failure *@p body is NULL. */
int dsn_for_message(const struct vl_queue_msg *m, const char *reporting_mta,
                    const struct dsn_rcpt *rcpts, unsigned rcpt_count, int64_t now_ms,
                    uint64_t unique, char **body, const char **rcpt_slot,
                    struct vl_queue_new_msg *out);

/** RFC 5322 date-time for @p ms (UTC, "+0000") into out (>= 40 bytes). */
void dsn_date(int64_t ms, char *out, size_t cap);

#endif
