/*
 * campaign.h - campaign and tenant ids at delivery (issue 15). A message's
 * campaign is its `X-Volley-Campaign:` header, its tenant its
 * `X-Volley-Tenant:` header, set at injection (SMTP, or HTTP through the
 * `campaign`/`tenant` fields or content.headers) and stored with the message
 * in its body. At lease the shard strips those headers from the batch's copy
 * of the body (so they are never delivered; SIZE counts what is sent) and
 * keeps the ids in the bytes freed at the copy's end (campaign, NUL, tenant,
 * NUL), for the delivery log ("campaign", "tenant"), the metrics and holds.
 * Ids: the field's first word, up to CAMPAIGN_ID_MAX bytes of [A-Za-z0-9._:-];
 * other bytes become '_'.
 * Thread: the shard's.
 */
#ifndef VOLLEY_DELIVER_CAMPAIGN_H
#define VOLLEY_DELIVER_CAMPAIGN_H

#include "volley/queue.h"

#define CAMPAIGN_ID_MAX 64u                /* = MSG_CAMPAIGN_ID_MAX (msg_campaign.h) */
#define CAMPAIGN_MSG_FLAG 0x80000000u   /* in a leased vl_queue_msg's flags: id kept */
#define CAMPAIGN_TENANT_FLAG 0x40000000u  /* ... a tenant id kept */

/** Strip every X-Volley-Campaign and X-Volley-Tenant header line (folded
 *  lines included) of @p m's header section from its batch copy, keeping the
 *  first one's id of each. */
void campaign_strip(struct vl_queue_msg *m);

/** The id campaign_strip() kept, or "" (none). */
const char *campaign_of(const struct vl_queue_msg *m);
/** The tenant id campaign_strip() kept, or "" (none). */
const char *tenant_of(const struct vl_queue_msg *m);

#endif
