/*
 * blast_stats.c - what a blast thread counts: results (init, merge, free), the
 * time series (whose interval doubles when it fills, so memory stays
 * bounded), reply and status tallies, and each message's start and end.
 * One thread's result is written by that thread only; merges run after.
 */
#include "blast_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volley/error.h"

const char *const blast_phase_name[BLAST_PH_COUNT] = {
    "connect", "banner", "ehlo", "tls", "auth", "mail_rcpt", "data_354", "body_write",
    "final_reply", "transaction", "schedule_lag",
};
const char *const blast_err_name[BLAST_ERR_COUNT] = {
    "refused", "reset", "timeout", "tls", "protocol", "other",
};

/* ---- results ----------------------------------------------------------------- */

int blast_result_init(struct blast_result *res, uint32_t steps)
{
    memset(res, 0, sizeof *res);
    res->series_interval_ms = 1000;
    res->first_start_ns = res->first_intended_ns = UINT64_MAX;
    for (uint32_t p = 0; p < BLAST_PH_COUNT; p++)
        if (blast_hist_init(&res->phase[p], BLAST_HIST_SUB_BITS, BLAST_HIST_MAX_BITS) < 0)
            return -ENOMEM;
    vl_assert(steps <= BLAST_RAMP_STEPS_MAX);
    res->step_count = steps;
    for (uint32_t j = 0; j < steps; j++)
        if (blast_hist_init(&res->step[j].txn, BLAST_HIST_SUB_BITS, BLAST_HIST_MAX_BITS) < 0)
            return -ENOMEM;
    return 0;
}

static void series_slot_free(struct blast_series_slot *sl)
{
    if (sl->txn) {
        blast_hist_fini(sl->txn);
        free(sl->txn);
    }
    memset(sl, 0, sizeof *sl);
}

void blast_result_fini(struct blast_result *res)
{
    for (uint32_t p = 0; p < BLAST_PH_COUNT; p++)
        blast_hist_fini(&res->phase[p]);
    for (uint32_t j = 0; j < res->step_count; j++)
        blast_hist_fini(&res->step[j].txn);
    for (uint32_t i = 0; i < BLAST_SERIES_MAX; i++)
        series_slot_free(&res->series[i]);
}

/* Add slot @p b into @p a (counts and histogram). */
static int series_slot_add(struct blast_series_slot *a, const struct blast_series_slot *b)
{
    a->started += b->started;
    a->ok += b->ok;
    a->tempfail += b->tempfail;
    a->permfail += b->permfail;
    a->errors += b->errors;
    a->bytes += b->bytes;
    if (!b->txn)
        return 0;
    if (!a->txn) {
        a->txn = malloc(sizeof *a->txn);
        if (!a->txn || blast_hist_init(a->txn, BLAST_SERIES_SUB_BITS, BLAST_HIST_MAX_BITS) < 0)
            return -ENOMEM;
    }
    return blast_hist_merge(a->txn, b->txn);
}

/* Halve the resolution: slot i becomes slots 2i and 2i+1. */
static int series_compact(struct blast_result *res)
{
    for (uint32_t i = 0; i < BLAST_SERIES_MAX / 2; i++) {
        struct blast_series_slot a = res->series[2 * i], b = res->series[2 * i + 1];
        memset(&res->series[2 * i], 0, sizeof a);
        memset(&res->series[2 * i + 1], 0, sizeof b);
        res->series[i] = a;
        if (series_slot_add(&res->series[i], &b) < 0)
            return -ENOMEM;
        series_slot_free(&b);
    }
    res->series_interval_ms *= 2;
    res->series_count = (res->series_count + 1) / 2;
    return 0;
}

static struct blast_series_slot *series_at(struct blast_result *res, uint64_t t_ns)
{
    uint64_t i = t_ns / 1000000ull / res->series_interval_ms;
    while (i >= BLAST_SERIES_MAX) {
        if (series_compact(res) < 0)
            return NULL;
        i = t_ns / 1000000ull / res->series_interval_ms;
    }
    if (i + 1 > res->series_count)
        res->series_count = (uint32_t)i + 1;
    return &res->series[i];
}

static void status_add(struct blast_result *res, const char *st, uint64_t n)
{
    for (uint32_t i = 0; i < res->status_count; i++)
        if (!strcmp(res->statuses[i].status, st)) {
            res->statuses[i].count += n;
            return;
        }
    if (res->status_count == BLAST_STATUSES_MAX) {
        res->statuses_other += n;
        return;
    }
    struct blast_status_count *c = &res->statuses[res->status_count++];
    snprintf(c->status, sizeof c->status, "%s", st);
    c->count = n;
}

int blast_result_merge(struct blast_result *dst, const struct blast_result *src)
{
#define ADD(f) dst->f += src->f
    ADD(started); ADD(ok); ADD(tempfail); ADD(permfail); ADD(errors); ADD(not_started);
    ADD(rcpts_ok); ADD(rcpts_refused); ADD(bytes); ADD(conns); ADD(conns_ready);
    ADD(conns_redialed);
    ADD(tls_sessions); ADD(auth_ok); ADD(auth_failed); ADD(statuses_other);
    ADD(cqes); ADD(reactor_turns); ADD(rate_fit);
#undef ADD
    for (uint32_t e = 0; e < BLAST_ERR_COUNT; e++)
        dst->conn_errors[e] += src->conn_errors[e];
    for (uint32_t c = 0; c < BLAST_REPLY_CODES; c++)
        dst->replies[c] += src->replies[c];
    for (uint32_t i = 0; i < src->status_count; i++)
        status_add(dst, src->statuses[i].status, src->statuses[i].count);
    for (uint32_t p = 0; p < BLAST_PH_COUNT; p++)
        blast_hist_merge(&dst->phase[p], &src->phase[p]);
    vl_assert(dst->step_count == src->step_count);
    for (uint32_t j = 0; j < src->step_count; j++) {
        dst->step[j].rate = src->step[j].rate;
        dst->step[j].started += src->step[j].started;
        dst->step[j].ended_ok += src->step[j].ended_ok;
        blast_hist_merge(&dst->step[j].txn, &src->step[j].txn);
    }
    while (dst->series_interval_ms < src->series_interval_ms)
        if (series_compact(dst) < 0)
            return -ENOMEM;
    uint64_t f = dst->series_interval_ms / src->series_interval_ms;
    for (uint32_t i = 0; i < src->series_count; i++) {
        uint32_t d = (uint32_t)(i / f);
        if (series_slot_add(&dst->series[d], &src->series[i]) < 0)
            return -ENOMEM;
        if (d + 1 > dst->series_count)
            dst->series_count = d + 1;
    }
#define MIN(f) if (src->f < dst->f) dst->f = src->f
#define MAX(f) if (src->f > dst->f) dst->f = src->f
    MIN(first_start_ns); MAX(last_start_ns); MIN(first_intended_ns); MAX(last_intended_ns);
    MAX(elapsed_ns);
#undef MIN
#undef MAX
    return 0;
}

void blast_stats_msg_started(struct blast_thread *th, struct blast_session *s)
{
    struct blast_result *res = &th->res;
    if (s->t_mail < res->first_start_ns)
        res->first_start_ns = s->t_mail;
    if (s->t_mail > res->last_start_ns)
        res->last_start_ns = s->t_mail;
    const double x = (double)s->msg_seq, y = (double)s->t_mail / 1e9;
    res->fit_n += 1;
    res->fit_sx += x;
    res->fit_sy += y;
    res->fit_sxx += x * x;
    res->fit_sxy += x * y;
    blast_hist_record(&res->phase[BLAST_PH_LAG],
                      s->t_mail > s->t_intended ? s->t_mail - s->t_intended : 0);
}

void blast_stats_reply(struct blast_thread *th, const struct smtp_reply *r)
{
    if (r->code < BLAST_REPLY_CODES)
        th->res.replies[r->code]++;
    if (r->status[0])
        status_add(&th->res, r->status, 1);
}

void blast_stats_msg_ended(struct blast_thread *th, struct blast_session *s, int outcome,
                           uint64_t t_end)
{
    struct blast_result *res = &th->res;
    struct blast_series_slot *sl = series_at(res, t_end);
    uint64_t lat = t_end > s->t_intended ? t_end - s->t_intended : 0;
    switch (outcome) {
    case BLAST_OUT_OK:
        res->ok++;
        atomic_fetch_add_explicit(&th->live.ok, 1, memory_order_relaxed);
        if (sl) {
            sl->ok++;
            sl->bytes += s->msg_size;
        }
        if (s->msg_step < res->step_count)
            res->step[s->msg_step].ended_ok++;
        break;
    case BLAST_OUT_TEMPFAIL:
        res->tempfail++;
        atomic_fetch_add_explicit(&th->live.tempfail, 1, memory_order_relaxed);
        if (sl)
            sl->tempfail++;
        break;
    case BLAST_OUT_PERMFAIL:
        res->permfail++;
        atomic_fetch_add_explicit(&th->live.permfail, 1, memory_order_relaxed);
        if (sl)
            sl->permfail++;
        break;
    default:
        res->errors++;
        atomic_fetch_add_explicit(&th->live.errors, 1, memory_order_relaxed);
        if (sl)
            sl->errors++;
        return;                    /* no reply: no latency */
    }
    blast_hist_record(&res->phase[BLAST_PH_TXN], lat);
    if (s->msg_step < res->step_count)
        blast_hist_record(&res->step[s->msg_step].txn, lat);
    if (!sl)
        return;
    if (!sl->txn) {
        sl->txn = malloc(sizeof *sl->txn);
        if (!sl->txn)
            return;
        if (blast_hist_init(sl->txn, BLAST_SERIES_SUB_BITS, BLAST_HIST_MAX_BITS) < 0) {
            free(sl->txn);
            sl->txn = NULL;
            return;
        }
    }
    blast_hist_record(sl->txn, lat);
}

/* A message was taken for session @p s (its start, in the series and step). */
void blast_stats_msg_taken(struct blast_thread *th, struct blast_session *s)
{
    th->res.started++;
    atomic_fetch_add_explicit(&th->live.started, 1, memory_order_relaxed);
    struct blast_series_slot *sl = series_at(&th->res, blast_now_ns(th));
    if (sl)
        sl->started++;
    if (s->msg_step < th->res.step_count)
        th->res.step[s->msg_step].started++;
}

/* At the thread's end: its send rate from the least-squares fit. */
void blast_stats_rate_fit(struct blast_result *res)
{
    const double n = res->fit_n;
    const double den = n * res->fit_sxx - res->fit_sx * res->fit_sx;
    res->rate_fit = 0;
    if (n < 2 || den <= 0)
        return;
    const double slope = (n * res->fit_sxy - res->fit_sx * res->fit_sy) / den;   /* s/msg */
    if (slope > 0)
        res->rate_fit = 1.0 / slope;
}
