/*
 * msg.h - message validation and normalisation at injection (pure: no I/O,
 * no clock; time, hostname and a unique number are parameters).
 *
 * Output is canonical: CRLF line ends only (bare CR and bare LF become CRLF;
 * CRs right before a CRLF or LF belong to that one line end),
 * unstuffed, a header block then an empty line then the body. Refused: NUL,
 * lines over 998 octets, input that does not start with a header field,
 * header lines that are not "Name: value" (or a continuation), a duplicate
 * From or Date. Removed: Bcc, Return-Path. Added when missing: Date,
 * Message-ID <unique@hostname>, From (the envelope sender). PROTOCOL.md 1.5.
 * With long_lines_encode, a body line over 998 octets is not refused: each
 * MIME part holding one is re-encoded as quoted-printable (msg_mime.h);
 * header lines over 998 octets are refused either way.
 */
#ifndef VOLLEY_MSG_H
#define VOLLEY_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct msg_opts {
    uint64_t now_ms;            /* for Date: */
    const char *hostname;       /* for Message-ID: and a null-sender From: */
    uint64_t unique;            /* for Message-ID: (e.g. random) */
    const char *env_from;       /* envelope sender for a missing From: ("" = null path) */
    bool long_lines_encode;     /* re-encode parts with long body lines (else refuse) */
};

struct msg_problem {
    unsigned line;              /* 1-based input line; 0 = the message as a whole */
    const char *why;            /* static English reason */
};

struct msg_result {
    uint8_t *data;              /* malloc'd normalised message; msg_result_fini() frees */
    size_t len;                 /* octets, CRLF counted: the SIZE= value */
    bool is_8bit;               /* an octet > 127: needs BODY=8BITMIME */
    bool added_date, added_msgid, added_from;
    unsigned problems;          /* total problems found (may exceed what was stored) */
    unsigned encoded_parts;     /* MIME parts re-encoded as quoted-printable */
};

/** Validate and normalise @p len octets at @p in. Stores up to @p probs_max
 *  problems in @p probs (in line order).
 *  @return 0 (out->data owned by the caller), VL_E_INVALID (out->problems > 0,
 *  no data), VL_E_TOOBIG (over VL_MSG_BYTES_MAX), -ENOMEM. */
int msg_normalise(const void *in, size_t len, const struct msg_opts *o, struct msg_result *out,
                  struct msg_problem *probs, size_t probs_max);

void msg_result_fini(struct msg_result *r);

#endif
