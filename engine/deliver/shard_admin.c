/*
 * shard_admin.c - operator holds at lease (issue 15; engine/admin/adm.h):
 * a recipient whose destination domain is held gets its outcome here, never
 * sent: suspend -> deferred (4.0.0, retried after ADM_SUSPEND_RECHECK_MS, or
 * at once on resume: the API makes the domain's recipients ready), bounce ->
 * bounced 5.0.0 (a DSN, as for any failure), purge -> bounced 5.0.0 with no
 * DSN (event "purged"). With no hold at all this costs one relaxed load.
 */
#include "shard.h"

#include "adm.h"
#include "campaign.h"
#include "clock.h"

#include <stdio.h>
#include <string.h>

void shard_admin_holds(struct shard *sh, struct lease *ls, struct vl_queue_batch *b,
                       bool *out)
{
    struct adm *adm = adm_get();
    if (!adm_active(adm))
        return;
    struct adm_hold h = { .kind = ADM_NONE };
    const char *last_dom = NULL;
    const struct vl_queue_msg *last_msg = NULL;
    for (size_t i = 0; i < b->count; i++) {
        struct vl_queue_rcpt *r = &b->rcpts[i];
        if (out[i])
            continue;                          /* suppressed already */
        if (r->domain != last_dom || r->msg != last_msg) {   /* grouped: few lookups */
            adm_lookup(adm, r->domain, r->domain_len, campaign_of(r->msg), tenant_of(r->msg),
                       r->msg->return_path, r->msg->created_ms, &h);
            last_dom = r->domain;
            last_msg = r->msg;
        }
        if (h.kind == ADM_NONE)
            continue;
        out[i] = true;
        struct attempt *a = ledger_attempt_alloc(&sh->ledger, ls, r->msg);
        if (!a)
            vl_panic("out of memory for a delivery attempt");
        a->rcpts[a->rcpt_count++] = r;
        char why[ADM_NOTE_MAX + ADM_DOMAIN_MAX + 64];
        snprintf(why, sizeof why, "%s by an operator%s%s%s%s%s%s",
                 h.kind == ADM_SUSPEND ? "suspended" : h.kind == ADM_BOUNCE ? "bounced"
                                                                          : "purged",
                 h.scope == ADM_DOMAIN ? "" : " (", h.scope == ADM_DOMAIN ? ""
                                                    : adm_scope_name(h.scope),
                 h.scope == ADM_DOMAIN ? "" : " ", h.scope == ADM_DOMAIN ? ""
                                                    : adm_hold_value(&h),
                 h.scope == ADM_DOMAIN ? "" : ")", h.note[0] ? ": " : "");
        snprintf(why + strlen(why), sizeof why - strlen(why), "%s", h.note);
        struct smtp_fate f = { .kind = h.kind == ADM_SUSPEND ? SMTP_FATE_DEFERRED
                                                             : SMTP_FATE_BOUNCED,
                               .code = h.kind == ADM_SUSPEND ? 451 : 550, .local = true,
                               .text = why, .text_len = (uint16_t)strlen(why) };
        snprintf(f.status, sizeof f.status, "%s", h.kind == ADM_SUSPEND ? "4.0.0" : "5.0.0");
        ledger_admin_outcome(&sh->ledger, a, &f, h.kind == ADM_PURGE,
                             h.kind == ADM_SUSPEND ? vl_clock_wall_ms() + ADM_SUSPEND_RECHECK_MS
                                                   : 0);
        ledger_attempt_done(&sh->ledger, a);
    }
}
