/*
 * cli_leftover.c - what a run left queued (cli_progress.h): counts from the
 * queue's stats; the reasons and the next retry from the recipients
 * themselves, read message by message (bounded: CLI_LEFTOVER_MSGS_MAX
 * messages, CLI_LEFTOVER_RCPTS_MAX recipients each, CLI_LEFTOVER_READ_MAX
 * deferred recipients in all; the summary says when only part was read).
 */
#include "cli_progress.h"

#include "volley/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CLI_LEFTOVER_MSGS_MAX   4096u
#define CLI_LEFTOVER_RCPTS_MAX  2048u
#define CLI_LEFTOVER_READ_MAX   50000u  /* deferred recipients read in all */
#define CLI_LEFTOVER_PAGE       256u
#define CLI_REASONS_MAX         64u     /* distinct reasons kept; more are "other" */

struct cli_reasons {
    unsigned n;
    struct { char text[160]; uint64_t n; } r[CLI_REASONS_MAX + 1];   /* [MAX] = other */
};

/* Group by what failed, not by domain: route_host.c's "all N MX addresses of
 * DOMAIN failed; last HOST: WHY" counts as "HOST: WHY". */
static const char *cli_reason_core(const char *text)
{
    static const char mark[] = "failed; last ";
    const char *p = strstr(text, mark);
    return !strncmp(text, "all ", 4) && p ? p + sizeof mark - 1 : text;
}

static void cli_reason_add(struct cli_reasons *rs, const struct vl_queue_rcpt_info *ri)
{
    char text[160];
    const char *why = cli_reason_core(ri->text);
    if (ri->code)
        snprintf(text, sizeof text, "%u %s %.120s", ri->code, ri->status, why);
    else
        snprintf(text, sizeof text, "%s %.140s", ri->status, why);
    for (unsigned i = 0; i < rs->n; i++)
        if (!strcmp(rs->r[i].text, text)) {
            rs->r[i].n++;
            return;
        }
    unsigned k = rs->n < CLI_REASONS_MAX ? rs->n++ : CLI_REASONS_MAX;
    if (k == CLI_REASONS_MAX)
        snprintf(rs->r[k].text, sizeof rs->r[k].text, "(other reasons)");
    else
        memcpy(rs->r[k].text, text, sizeof text);
    rs->r[k].n++;
}

static void cli_reasons_top(const struct cli_reasons *rs, struct cli_leftover *lo)
{
    unsigned total = rs->n + (rs->r[CLI_REASONS_MAX].n ? 1u : 0u);
    bool used[CLI_REASONS_MAX + 1] = { false };
    lo->nreasons = 0;
    while (lo->nreasons < 3) {
        int best = -1;
        for (unsigned i = 0; i < total; i++) {
            unsigned k = i < rs->n ? i : CLI_REASONS_MAX;
            if (!used[k] && (best < 0 || rs->r[k].n > rs->r[best].n))
                best = (int)k;
        }
        if (best < 0)
            break;
        used[best] = true;
        memcpy(lo->reason[lo->nreasons].text, rs->r[best].text, sizeof rs->r[best].text);
        lo->reason[lo->nreasons++].n = rs->r[best].n;
    }
}

int cli_leftover_scan(struct vl_queue *q, struct cli_leftover *lo)
{
    memset(lo, 0, sizeof *lo);
    struct vl_queue_stats st;
    int rc = vl_queue_stats(q, -1, &st);
    if (rc < 0)
        return rc;
    lo->ready = st.by_state[VL_RCPT_READY];
    lo->deferred = st.by_state[VL_RCPT_DEFERRED];
    if (!lo->deferred)
        return 0;
    struct vl_queue_msg_info *mi = calloc(CLI_LEFTOVER_PAGE, sizeof *mi);
    struct vl_queue_rcpt_info *ri = calloc(CLI_LEFTOVER_RCPTS_MAX, sizeof *ri);
    struct cli_reasons *rs = calloc(1, sizeof *rs);
    if (!mi || !ri || !rs) {
        free(mi);
        free(ri);
        free(rs);
        return -ENOMEM;
    }
    uint64_t after = 0;
    for (unsigned seen = 0; seen < CLI_LEFTOVER_MSGS_MAX
                            && lo->sampled < CLI_LEFTOVER_READ_MAX;) {
        int n = vl_queue_list(q, after, mi, CLI_LEFTOVER_PAGE);
        if (n <= 0)
            break;
        for (int i = 0; i < n && seen < CLI_LEFTOVER_MSGS_MAX; i++, seen++) {
            struct vl_queue_msg_info info;
            size_t nr = 0;
            if (vl_queue_show(q, mi[i].id, &info, ri, CLI_LEFTOVER_RCPTS_MAX, &nr) < 0)
                continue;
            for (size_t k = 0; k < nr; k++) {
                if (ri[k].state != VL_RCPT_DEFERRED)
                    continue;
                lo->sampled++;
                cli_reason_add(rs, &ri[k]);
                if (ri[k].next_ms && (!lo->next_ms || ri[k].next_ms < lo->next_ms))
                    lo->next_ms = ri[k].next_ms;
            }
        }
        after = mi[n - 1].id;
        if ((unsigned)n < CLI_LEFTOVER_PAGE)
            break;
    }
    cli_reasons_top(rs, lo);
    free(mi);
    free(ri);
    free(rs);
    return 0;
}
