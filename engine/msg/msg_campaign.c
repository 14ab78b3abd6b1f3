/*
 * msg_campaign.c - a message's campaign id (msg_campaign.h). Pure.
 */
#include "msg_campaign.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

size_t msg_campaign_id_clean(const uint8_t *v, size_t n, char *id)
{
    size_t idn = 0;
    for (size_t i = 0; i < n && idn < MSG_CAMPAIGN_ID_MAX; i++) {
        uint8_t c = v[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            if (idn)
                break;                                 /* the id is the first word */
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == ':';
        id[idn++] = ok ? (char)c : '_';
    }
    id[idn] = '\0';
    return idn;
}

size_t msg_campaign_find(const uint8_t *m, size_t len, char *id)
{
    const size_t hl = sizeof MSG_CAMPAIGN_HDR - 1;
    id[0] = '\0';
    for (size_t p = 0; p < len;) {
        const uint8_t *eol = memchr(m + p, '\n', len - p);
        size_t end = eol ? (size_t)(eol - m) + 1 : len;        /* one physical line */
        if (m[p] == '\r' || m[p] == '\n')
            return 0;                                         /* the blank line: body next */
        if (end - p > hl && !strncasecmp((const char *)m + p, MSG_CAMPAIGN_HDR, hl)) {
            while (end < len && (m[end] == ' ' || m[end] == '\t')) {   /* folded lines */
                const uint8_t *e2 = memchr(m + end, '\n', len - end);
                end = e2 ? (size_t)(e2 - m) + 1 : len;
            }
            return msg_campaign_id_clean(m + p + hl, end - p - hl, id);
        }
        p = end;
    }
    return 0;
}
