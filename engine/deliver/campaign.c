/*
 * campaign.c - X-Volley-Campaign and X-Volley-Tenant stripped at lease, their
 * ids kept (campaign.h).
 */
#include "campaign.h"

#include "msg_campaign.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

static const char *const campaign_hdrs[2] = { MSG_CAMPAIGN_HDR, "X-Volley-Tenant:" };

_Static_assert(CAMPAIGN_ID_MAX == MSG_CAMPAIGN_ID_MAX, "one id rule");

void campaign_strip(struct vl_queue_msg *m)
{
    uint8_t *b = (uint8_t *)(uintptr_t)m->body;      /* the batch's own copy */
    size_t len = m->body_len, p = 0;
    char id[2][CAMPAIGN_ID_MAX + 1];
    size_t idn[2] = { 0, 0 };
    bool found[2] = { false, false };
    while (p < len) {
        const uint8_t *eol = memchr(b + p, '\n', len - p);
        size_t end = eol ? (size_t)(eol - b) + 1 : len;     /* one physical line */
        if (end - p <= 2 && (b[p] == '\r' || b[p] == '\n'))
            break;                                         /* the blank line: body next */
        int k = -1;
        for (int j = 0; j < 2 && k < 0; j++) {
            size_t hl = strlen(campaign_hdrs[j]);
            if (end - p > hl && !strncasecmp((const char *)b + p, campaign_hdrs[j], hl))
                k = j;
        }
        if (k < 0) {
            p = end;
            continue;
        }
        while (end < len && (b[end] == ' ' || b[end] == '\t')) {  /* folded: take them too */
            const uint8_t *e2 = memchr(b + end, '\n', len - end);
            end = e2 ? (size_t)(e2 - b) + 1 : len;
        }
        if (!found[k]) {
            found[k] = true;
            size_t hl = strlen(campaign_hdrs[k]);           /* one id rule for both */
            idn[k] = msg_campaign_id_clean(b + p + hl, end - p - hl, id[k]);
        }
        memmove(b + p, b + end, len - end);
        len -= end - p;
    }
    if (!found[0] && !found[1])
        return;
    /* each stripped line held its name + its id: room for both ids + NULs */
    size_t at = len;
    if (found[0]) {
        memcpy(b + at, id[0], idn[0] + 1);
        at += idn[0] + 1;
        m->flags |= CAMPAIGN_MSG_FLAG;
    }
    if (found[1]) {
        memcpy(b + at, id[1], idn[1] + 1);
        m->flags |= CAMPAIGN_TENANT_FLAG;
    }
    m->body_len = len;
}

const char *campaign_of(const struct vl_queue_msg *m)
{
    return m->flags & CAMPAIGN_MSG_FLAG ? (const char *)m->body + m->body_len : "";
}

const char *tenant_of(const struct vl_queue_msg *m)
{
    if (!(m->flags & CAMPAIGN_TENANT_FLAG))
        return "";
    const char *p = (const char *)m->body + m->body_len;
    return m->flags & CAMPAIGN_MSG_FLAG ? p + strlen(p) + 1 : p;
}
