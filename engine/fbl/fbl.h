/*
 * fbl.h - feedback loops (issue 16): ARF reports (RFC 5965) sent to the
 * configured address (--fbl-address) at the SMTP listener are taken by the
 * intake instead of being queued: parsed (fbl_arf_parse, pure), the
 * complained-about recipient suppressed (the suppression list, engine/suppress:
 * global scope, reason "complaint"), recorded (DATA/complaints, one JSON line
 * per report, the audit trail) and a "complaint" event stored in the outbox
 * of the recipient's shard (so it follows that recipient's delivery events);
 * all durable before the 250.
 */
#ifndef VOLLEY_FBL_H
#define VOLLEY_FBL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volley/config.h"
#include "volley/queue.h"

#define FBL_FIELD_BYTES_MAX 256u

struct fbl_report {
    char feedback_type[32];        /* abuse, fraud, virus, other, not-spam... */
    char user_agent[FBL_FIELD_BYTES_MAX];
    char version[16];
    char rcpt[VL_SMTP_PATH_BYTES_MAX + 1];          /* the complained-about recipient */
    char rcpt_source[24];          /* "Original-Rcpt-To", "original To", "original Received" */
    char mail_from[VL_SMTP_PATH_BYTES_MAX + 1];     /* Original-Mail-From, or "" */
    char source_ip[64];
    char arrival_date[64];
    char reported_domain[VL_SMTP_DOMAIN_BYTES_MAX + 1];
    char message_id[FBL_FIELD_BYTES_MAX];           /* of the original, or "" */
};

/** Parse the ARF report @p msg (@p len octets, CRLF lines). Pure.
 *  @return 0, or VL_E_INVALID with *@p why (static) naming what is missing. */
int fbl_arf_parse(const char *msg, size_t len, struct fbl_report *out, const char **why);

struct fbl;

/** The feedback-loop handler for address @p addr, recording in @p data_dir;
 *  events go to @p q's outboxes when @p events_on. @return 0, -errno. */
int fbl_create(struct vl_queue *q, const char *data_dir, const char *addr, bool events_on,
               struct fbl **out);
void fbl_destroy(struct fbl *f);

/** The intake hook (struct vl_intake_hook.fn): see volley/config.h. */
int fbl_intake(void *arg, struct vl_intake_msg *im, char *reply, size_t reply_cap);

/** Reports taken so far. */
uint64_t fbl_taken(const struct fbl *f);

#endif
