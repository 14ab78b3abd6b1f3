/*
 * msg_campaign.h - a message's campaign id (issue 15): the first word of its
 * first `X-Volley-Campaign:` header field, up to MSG_CAMPAIGN_ID_MAX bytes of
 * [A-Za-z0-9._:-] (other bytes become '_'). Read at injection for the
 * "injected" event (issue 16); engine/deliver/campaign.c strips the field at
 * lease with the same id rule (msg_campaign_id_clean). Pure.
 */
#ifndef VOLLEY_MSG_CAMPAIGN_H
#define VOLLEY_MSG_CAMPAIGN_H

#include <stddef.h>
#include <stdint.h>

#define MSG_CAMPAIGN_ID_MAX 64u
#define MSG_CAMPAIGN_HDR "X-Volley-Campaign:"

/** The id in the field value @p v (@p n bytes, folds included) into @p id
 *  (room for MSG_CAMPAIGN_ID_MAX + 1). @return its length (0: none). */
size_t msg_campaign_id_clean(const uint8_t *v, size_t n, char *id);

/** The campaign id of the message @p m (@p len bytes, CRLF or LF lines; only
 *  its header section is read) into @p id (room for MSG_CAMPAIGN_ID_MAX + 1;
 *  "" when none). @return its length. */
size_t msg_campaign_find(const uint8_t *m, size_t len, char *id);

#endif
