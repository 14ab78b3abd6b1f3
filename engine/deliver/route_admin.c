/*
 * route_admin.c - operator holds the route applies (issue 15; engine/admin/adm.h),
 * the ones known only after DNS or at connect:
 *  - an MX provider group (a shaping policy's name or an MX host suffix):
 *    an attempt whose domain is resolved and matches is deferred with the
 *    hold's reason (4.0.0, retried after ADM_SUSPEND_RECHECK_MS, or at once
 *    on resume: the API makes recipients ready), never sent;
 *  - an egress address: a new connection binds another address of the same
 *    pool, and an idle pooled session bound to it is closed, not reused; with none left the host's attempts wait in memory (no outcome, no
 *    attempt counted) and are pumped again every ROUTE_ADMIN_EGRESS_WAIT_MS
 *    (a one-shot --until-empty run defers them instead: it cannot wait).
 * With no such hold each check is one relaxed load (adm_mx_held,
 * adm_egress_held). Thread: the owning shard's.
 */
#include "route_admin.h"

#include "adm.h"
#include "clock.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

bool route_admin_mx_hold(struct route *r, struct attempt *t)
{
    struct adm *adm = adm_get();
    if (!adm_active(adm))
        return false;
    const struct domain *d = t->dom;
    const char *mx[VL_ROUTE_ADDRS_PER_DOMAIN_MAX];
    size_t n = 0;
    for (uint32_t i = 0; i < d->host_count; i++)
        mx[n++] = d->hosts[i].mx_name;
    const char *pol = d->policy >= 0 && r->shaper ? vl_shaper_conf(r->shaper, d->policy)->name
                                                  : NULL;
    struct adm_hold h;
    if (!adm_mx_held(adm, pol, mx, n, &h))
        return false;
    char why[ADM_NOTE_MAX + ADM_DOMAIN_MAX + 64];
    snprintf(why, sizeof why, "suspended by an operator (mx %s)%s%s", adm_hold_value(&h),
             h.note[0] ? ": " : "", h.note);
    struct smtp_fate f = { .kind = SMTP_FATE_DEFERRED, .code = 451, .local = true,
                           .text = why, .text_len = (uint16_t)strlen(why) };
    snprintf(f.status, sizeof f.status, "4.0.0");
    vl_log_at(VL_LOG_TRACE, "evt=admin_mx_held shard=%u domain=%s mx=%s rcpts=%u",
              r->shard_idx, d->name, adm_hold_value(&h), t->rcpt_count);
    ledger_admin_outcome(r->ledger, t, &f, false, vl_clock_wall_ms() + ADM_SUSPEND_RECHECK_MS);
    ledger_attempt_done(r->ledger, t);
    return true;
}

bool route_admin_egress_held(struct route *r, int egress)
{
    const struct vl_shaping *s = egress >= 0 && r->shaper ? vl_shaper_table(r->shaper) : NULL;
    return s && adm_egress_held(adm_get(), s->addrs[egress].ip);
}

int route_admin_egress(struct route *r, int egress)
{
    struct adm *adm = adm_get();
    const struct vl_shaping *s = r->shaper ? vl_shaper_table(r->shaper) : NULL;
    if (egress < 0 || !s || !adm_egress_held(adm, s->addrs[egress].ip))
        return egress;
    /* The next address of the same pool (after the held one) not held. */
    unsigned pool = s->addrs[egress].pool;
    for (unsigned k = 1; k < s->addr_count; k++) {
        unsigned i = ((unsigned)egress + k) % s->addr_count;
        if (s->addrs[i].pool == pool && !adm_egress_held(adm, s->addrs[i].ip))
            return (int)i;
    }
    vl_log_at(VL_LOG_TRACE, "evt=admin_egress_wait shard=%u pool=%s", r->shard_idx,
              s->pools[pool].name);
    return ROUTE_ADMIN_EGRESS_HELD;
}
