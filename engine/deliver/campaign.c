/*
 * campaign.c - X-Volley-Campaign stripped at lease, its id kept (campaign.h).
 */
#include "campaign.h"

#include "msg_campaign.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#define CAMPAIGN_HDR MSG_CAMPAIGN_HDR
_Static_assert(CAMPAIGN_ID_MAX == MSG_CAMPAIGN_ID_MAX, "one id rule");

void campaign_strip(struct vl_queue_msg *m)
{
    uint8_t *b = (uint8_t *)(uintptr_t)m->body;      /* the batch's own copy */
    size_t len = m->body_len, p = 0;
    char id[CAMPAIGN_ID_MAX + 1];
    size_t idn = 0;
    bool found = false;
    const size_t hl = sizeof CAMPAIGN_HDR - 1;
    while (p < len) {
        const uint8_t *eol = memchr(b + p, '\n', len - p);
        size_t end = eol ? (size_t)(eol - b) + 1 : len;     /* one physical line */
        if (end - p <= 2 && (b[p] == '\r' || b[p] == '\n'))
            break;                                         /* the blank line: body next */
        if (end - p <= hl || strncasecmp((const char *)b + p, CAMPAIGN_HDR, hl)) {
            p = end;
            continue;
        }
        while (end < len && (b[end] == ' ' || b[end] == '\t')) {  /* folded: take them too */
            const uint8_t *e2 = memchr(b + end, '\n', len - end);
            end = e2 ? (size_t)(e2 - b) + 1 : len;
        }
        if (!found) {
            found = true;
            idn = msg_campaign_id_clean(b + p + hl, end - p - hl, id);   /* the same rule */
        }
        memmove(b + p, b + end, len - end);
        len -= end - p;
    }
    if (!found)
        return;
    /* the stripped line held "X-Volley-Campaign:" + the id: room for id + NUL */
    memcpy(b + len, id, idn + 1);
    m->body_len = len;
    m->flags |= CAMPAIGN_MSG_FLAG;
}

const char *campaign_of(const struct vl_queue_msg *m)
{
    return m->flags & CAMPAIGN_MSG_FLAG ? (const char *)m->body + m->body_len : "";
}
