/*
 * ledger.c - leases, delivery attempts and recipient outcomes (see ledger.h).
 *
 * A deferral gets its next attempt time from the retry schedule (retry.h); a
 * deferral whose next attempt would fall after created + max_age expires
 * instead (a DSN with the last transient status).
 */
#include "ledger.h"

#include "bounce.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "retry.h"
#include "volley/error.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ledger_init(struct ledger *l, const struct vl_config *cfg, struct deliver_counters *ctr)
{
    memset(l, 0, sizeof *l);
    l->cfg = cfg;
    l->ctr = ctr;
    l->outcomes = calloc(LEDGER_OUTCOMES_MAX, sizeof *l->outcomes);
    l->outcomes_spare = calloc(LEDGER_OUTCOMES_MAX, sizeof *l->outcomes_spare);
    return l->outcomes && l->outcomes_spare ? 0 : -ENOMEM;
}

void ledger_fini(struct ledger *l, struct vl_queue_shard *qs)
{
    while (l->attempt_free) {
        struct attempt *a = l->attempt_free;
        l->attempt_free = a->next;
        free(a);
    }
    while (l->leases) {
        struct lease *ls = l->leases;
        l->leases = ls->next;
        vl_queue_batch_release(qs, ls->batch);
        free(ls);
    }
    free(l->outcomes);
    free(l->outcomes_spare);
    l->outcomes = l->outcomes_spare = NULL;
}

struct lease *ledger_lease_add(struct ledger *l, struct vl_queue_batch *b, uint32_t n)
{
    struct lease *ls = malloc(sizeof *ls);
    if (!ls)
        return NULL;
    ls->batch = b;
    ls->open = n;
    ls->next = l->leases;
    l->leases = ls;
    l->inflight += n;
    atomic_fetch_add_explicit(&l->ctr->inflight, n, memory_order_relaxed);
    if (l->ctr->met) {             /* per domain (volley top): one call per run of a domain */
        size_t i = 0;
        while (i < b->count) {
            const char *d = b->rcpts[i].domain;
            size_t j = i + 1;
            while (j < b->count && (b->rcpts[j].domain == d || !strcmp(b->rcpts[j].domain, d)))
                j++;
            met_domain_inflight(l->ctr->met, d, (int64_t)(j - i));
            i = j;
        }
    }
    return ls;
}

void ledger_leases_release(struct ledger *l, struct vl_queue_shard *qs)
{
    struct lease **pp = &l->leases;
    while (*pp) {
        struct lease *ls = *pp;
        if (ls->open) {
            pp = &ls->next;
            continue;
        }
        *pp = ls->next;
        vl_queue_batch_release(qs, ls->batch);
        free(ls);
    }
}

struct attempt *ledger_attempt_alloc(struct ledger *l, struct lease *lease,
                                     const struct vl_queue_msg *msg)
{
    struct attempt *a = l->attempt_free;
    if (a)
        l->attempt_free = a->next;
    else
        a = malloc(sizeof *a);
    if (!a)
        return NULL;
    memset(a, 0, offsetof(struct attempt, rcpts));
    a->lease = lease;
    a->msg = msg;
    l->attempts_live++;
    return a;
}

/* @p a is done: its held outcomes may be committed now. The search runs
 * backwards, where a just-finished attempt's outcomes usually are. */
static void ledger_release_outcomes(struct ledger *l, struct attempt *a)
{
    vl_assert(l->outcomes_held >= a->fated);
    uint32_t left = a->fated, waiting = 0;
    for (uint32_t i = l->outcome_count; i-- > 0 && left > 0;) {
        if (l->outcomes[i].attempt == a) {
            l->outcomes[i].attempt = NULL;
            waiting += l->outcomes[i].dsn_wait;
            left--;
        }
    }
    vl_assert(left == 0);
    l->outcomes_held -= a->fated - waiting;     /* the waiting ones stay held */
    if (waiting) {
        if (!l->dsn_waiting)
            l->dsn_wait_since_ms = vl_clock_mono_ms();
        l->dsn_waiting += waiting;
        atomic_fetch_add_explicit(&l->ctr->dsn_waiting, waiting, memory_order_relaxed);
    }
    a->fated = 0;
}

void ledger_attempt_done(struct ledger *l, struct attempt *a)
{
    vl_assert(l->attempts_live > 0);
    if (a->fated)
        ledger_release_outcomes(l, a);
    l->attempts_live--;
    free(a->prefix);
    a->prefix = NULL;
    a->prefix_len = 0;
    a->next = l->attempt_free;
    l->attempt_free = a;
}

void ledger_attempt_abandon(struct ledger *l, struct attempt *a)
{
    vl_assert(a->fated == 0);      /* only attempts that never ran are abandoned */
    vl_assert(a->lease->open >= a->rcpt_count);
    a->lease->open -= a->rcpt_count;
    l->inflight -= a->rcpt_count;
    atomic_fetch_sub_explicit(&l->ctr->inflight, a->rcpt_count, memory_order_relaxed);
    if (l->ctr->met && a->rcpt_count)
        met_domain_inflight(l->ctr->met, a->rcpts[0]->domain, -(int64_t)a->rcpt_count);
    ledger_attempt_done(l, a);
}

void ledger_outcome(struct ledger *l, struct attempt *a, uint32_t i, const struct smtp_fate *f,
                    const char *ip)
{
    vl_assert(i < a->rcpt_count);
    vl_assert(l->outcome_count < LEDGER_OUTCOMES_MAX);
    const struct vl_config *cfg = l->cfg;
    const struct vl_queue_rcpt *r = a->rcpts[i];
    struct ledger_outcome *e = &l->outcomes[l->outcome_count++];
    memset(&e->o, 0, sizeof e->o);
    e->attempt = a;
    a->fated++;
    l->outcomes_held++;
    vl_assert(a->fated <= a->rcpt_count);
    e->msg = a->msg;
    e->rcpt = r;
    e->lease = a->lease;
    e->mx = a->mx_name;
    e->ip = ip;
    e->tls = a->tls;
    e->ambiguous = f->ambiguous;
    e->local = f->local;
    e->warn = false;
    e->suppressed = false;
    e->purged = false;
    snprintf(e->status, sizeof e->status, "%s", f->status[0] ? f->status : "4.0.0");
    size_t n = f->text ? f->text_len : 0;
    if (n > VL_DIAG_TEXT_BYTES_MAX)
        n = VL_DIAG_TEXT_BYTES_MAX;
    if (n)
        memcpy(e->text, f->text, n);
    e->text[n] = '\0';
    e->o.rcpt_id = r->id;
    e->o.code = f->code;
    e->o.status = e->status;
    e->o.text = e->text;
    e->o.text_len = n;
    e->o.ambiguous = f->ambiguous && f->kind == SMTP_FATE_DEFERRED;
    uint64_t now = vl_clock_wall_ms();
    switch (f->kind) {
    case SMTP_FATE_DELIVERED:
        e->o.state = VL_RCPT_DELIVERED;
        if (!a->copy_counted && a->msg->return_path_len) {   /* DSNs: counted apart */
            a->copy_counted = true;
            atomic_fetch_add_explicit(&l->ctr->msg_copies, 1, memory_order_relaxed);
        }
        break;
    case SMTP_FATE_BOUNCED:   e->o.state = VL_RCPT_BOUNCED;   break;
    case SMTP_FATE_DEFERRED: {
        uint64_t next = now + (a->retry_ms_base
            ? retry_delay_ms_sched(a->retry_ms_base, a->retry_ms_max, r->attempts + 1, r->id)
            : retry_delay_ms(cfg, r->attempts + 1, r->id));
        if (next > a->msg->created_ms + cfg->age_ms_max) {
            e->o.state = VL_RCPT_EXPIRED;
        } else {
            e->o.state = VL_RCPT_DEFERRED;
            e->o.next_ms = next;
            e->warn = retry_delay_warn(cfg, a->msg, r, now);
        }
        break;
    }
    default:
        vl_panic("recipient without a fate kind");
    }
    e->category = e->o.state == VL_RCPT_DELIVERED
                      ? NULL
                      : bounce_cat_name(bounce_classify(cfg->bounce_rules, f->code, e->status,
                                                        e->text));
    /* A failure that owes a DSN waits for its message's others (ledger.h). */
    e->dsn_wait = (e->o.state == VL_RCPT_BOUNCED || e->o.state == VL_RCPT_EXPIRED)
                  && a->msg->return_path_len && cfg->dsn_interval_ms > 0;
}

uint32_t ledger_dsn_release(struct ledger *l, bool force)
{
    uint32_t n = l->dsn_waiting;
    if (!n || (!force && n < LEDGER_DSN_WAIT_MAX
               && vl_clock_mono_ms() - l->dsn_wait_since_ms < l->cfg->dsn_interval_ms))
        return 0;
    uint32_t left = n;
    for (uint32_t i = 0; i < l->outcome_count && left > 0; i++) {
        struct ledger_outcome *e = &l->outcomes[i];
        if (e->dsn_wait && !e->attempt) {
            e->dsn_wait = false;
            left--;
        }
    }
    vl_assert(left == 0);
    vl_assert(l->outcomes_held >= n);
    l->outcomes_held -= n;
    l->dsn_waiting = 0;
    atomic_fetch_sub_explicit(&l->ctr->dsn_waiting, n, memory_order_relaxed);
    return n;
}

bool ledger_has_ready(const struct ledger *l)
{
    return l->outcome_count > l->outcomes_held;
}

uint32_t ledger_take_ready(struct ledger *l, struct ledger_outcome **out)
{
    /* Ready outcomes stay (compacted) in this buffer, which is handed out;
     * held ones move to the spare, which accumulates next. */
    uint32_t ready = 0, held = 0;
    for (uint32_t i = 0; i < l->outcome_count; i++) {
        struct ledger_outcome *e = &l->outcomes[i];
        if (e->attempt || e->dsn_wait)
            l->outcomes_spare[held++] = *e;
        else if (ready++ != i)
            l->outcomes[ready - 1] = *e;
    }
    vl_assert(held == l->outcomes_held);
    *out = l->outcomes;
    l->outcomes = l->outcomes_spare;
    l->outcomes_spare = *out;
    l->outcome_count = held;
    return ready;
}

void ledger_committed(struct ledger *l, const struct ledger_outcome *outcomes, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        vl_assert(outcomes[i].lease->open > 0);
        outcomes[i].lease->open--;
    }
    vl_assert(l->inflight >= count);
    atomic_fetch_sub_explicit(&l->ctr->inflight, count, memory_order_relaxed);
    l->inflight -= count;
    /* per domain: commit.c's met_outcome_committed, one per outcome logged */
}

void ledger_suppressed(struct ledger *l, struct attempt *a, uint32_t i, const char *why)
{
    struct smtp_fate f = { .kind = SMTP_FATE_BOUNCED, .code = 550, .local = true,
                           .status = "5.7.1", .text = why, .text_len = (uint16_t)strlen(why) };
    ledger_outcome(l, a, i, &f, NULL);
    struct ledger_outcome *e = &l->outcomes[l->outcome_count - 1];
    vl_assert(e->attempt == a && e->rcpt == a->rcpts[i]);
    e->suppressed = true;
    e->category = NULL;            /* not a bounce: no bounce category */
    e->dsn_wait = false;           /* dropped: the sender asked for it, no DSN */
}

void ledger_admin_outcome(struct ledger *l, struct attempt *a, const struct smtp_fate *f,
                          bool purged, uint64_t next_ms)
{
    for (uint32_t i = 0; i < a->rcpt_count; i++) {
        ledger_outcome(l, a, i, f, NULL);
        struct ledger_outcome *e = &l->outcomes[l->outcome_count - 1];
        vl_assert(e->attempt == a && e->rcpt == a->rcpts[i]);
        if (e->o.state == VL_RCPT_DEFERRED && next_ms) {
            e->o.next_ms = next_ms;    /* not the retry schedule: the hold's own recheck */
            e->warn = false;
        }
        if (purged) {
            e->purged = true;
            e->dsn_wait = false;       /* dropped by the operator: no DSN */
        }
    }
}
