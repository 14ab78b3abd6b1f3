/*
 * campaign.h - campaign ids at delivery (issue 15). A message's campaign is
 * its `X-Volley-Campaign:` header, set at injection (SMTP, or HTTP through
 * content.headers) and stored with the message in its body. At lease the
 * shard strips that header from the batch's copy of the body (so it is never
 * delivered; SIZE counts what is sent) and keeps the id in the bytes freed at
 * the copy's end, for the delivery log ("campaign") and the metrics.
 * Ids: the field's first word, up to CAMPAIGN_ID_MAX bytes of [A-Za-z0-9._:-];
 * other bytes become '_'.
 * Thread: the shard's.
 */
#ifndef VOLLEY_DELIVER_CAMPAIGN_H
#define VOLLEY_DELIVER_CAMPAIGN_H

#include "volley/queue.h"

#define CAMPAIGN_ID_MAX 64u                /* = MSG_CAMPAIGN_ID_MAX (msg_campaign.h) */
#define CAMPAIGN_MSG_FLAG 0x80000000u   /* in a leased vl_queue_msg's flags: id kept */

/** Strip every X-Volley-Campaign header line (folded lines included) of @p m's
 *  header section from its batch copy, keeping the first one's id. */
void campaign_strip(struct vl_queue_msg *m);

/** The id campaign_strip() kept, or "" (none). */
const char *campaign_of(const struct vl_queue_msg *m);

#endif
