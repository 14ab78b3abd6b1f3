/*
 * blast_sched.c - intended send times (see blast_sched.h).
 */
#include "blast_sched.h"

#include <math.h>

#include "volley/error.h"

static double step_rate(const struct blast_sched *s, uint32_t j)
{
    if (s->steps <= 1)
        return s->rate_first;
    return s->rate_first + (s->rate_last - s->rate_first) * (double)j / (double)(s->steps - 1u);
}

void blast_sched_init(struct blast_sched *s, double rate_first, double rate_last, uint32_t steps,
                      uint64_t duration_ns, double share, double phase, uint64_t limit)
{
    vl_assert(steps >= 1);
    vl_assert(duration_ns > 0 || steps == 1);
    *s = (struct blast_sched){
        .rate_first = rate_first * share, .rate_last = rate_last * share, .steps = steps,
        .step_ns = duration_ns ? (double)duration_ns / steps : 0, .phase = phase,
        .limit = limit,
    };
}

double blast_sched_step_rate(const struct blast_sched *s, uint32_t j, double share)
{
    return step_rate(s, j) / share;
}

uint64_t blast_sched_peek(struct blast_sched *s)
{
    while (!s->done) {
        if (s->limit && s->emitted >= s->limit) {
            s->done = true;
            break;
        }
        double r = step_rate(s, s->step);
        double start = s->step_ns * s->step;
        double t = r > 0 ? start + ((double)s->idx + s->phase) * 1e9 / r : INFINITY;
        if (s->step_ns == 0 || t < start + s->step_ns)
            return t >= 1.8e19 ? UINT64_MAX : (uint64_t)llround(t);
        if (++s->step >= s->steps)   /* t is past this step: the next one begins */
            s->done = true;
        s->idx = 0;
    }
    return UINT64_MAX;
}

void blast_sched_next(struct blast_sched *s)
{
    uint64_t t = blast_sched_peek(s);
    vl_assert(t != UINT64_MAX);
    s->idx++;
    s->emitted++;
}
