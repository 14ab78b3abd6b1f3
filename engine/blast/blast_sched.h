/*
 * blast_sched.h - the open-loop schedule of one blast thread: the intended
 * send time of each message, in order. Pure (no clock): times are
 * nanoseconds after the run's start.
 *
 * The run is `steps` equal steps of `step_ns` (the whole duration when the
 * rate is constant; unbounded when only a count is given); step j asks for
 * rate_j messages/s (linear from rate_first to rate_last) of which this
 * thread sends its share (1/threads), offset by phase/rate_j so that the
 * threads' messages interleave evenly. Message i of a step is due at
 * step_start + (phase + i) / rate_j; a step ends at the first message due at
 * or after its end. `limit` caps the messages (0 = none).
 *
 * Two cursors over the same sequence are the usual use: one counts what is
 * due, the other gives each started message its intended time.
 */
#ifndef VOLLEY_BLAST_SCHED_H
#define VOLLEY_BLAST_SCHED_H

#include <stdbool.h>
#include <stdint.h>

struct blast_sched {
    /* set by blast_sched_init */
    double rate_first, rate_last;   /* this thread's share, messages/s */
    uint32_t steps;
    double step_ns;                 /* 0 = one unbounded step */
    double phase;                   /* 0 .. 1 */
    uint64_t limit;                 /* 0 = none */
    /* cursor */
    uint32_t step;
    uint64_t idx;                   /* in the step */
    uint64_t emitted;
    bool done;
};

/** @p rate_first, @p rate_last: whole-run messages/s; @p share: this thread's
 *  fraction (1/threads); @p phase: thread index / threads; @p steps >= 1;
 *  @p duration_ns 0 = unbounded (then steps must be 1). */
void blast_sched_init(struct blast_sched *s, double rate_first, double rate_last, uint32_t steps,
                      uint64_t duration_ns, double share, double phase, uint64_t limit);

/** The next intended time (ns), or UINT64_MAX when the schedule is over. */
uint64_t blast_sched_peek(struct blast_sched *s);
/** Consume the time peek() returned. */
void blast_sched_next(struct blast_sched *s);
/** Rate (whole run, messages/s) of step @p j. */
double blast_sched_step_rate(const struct blast_sched *s, uint32_t j, double share);
/** The step the next message belongs to. */
static inline uint32_t blast_sched_step(const struct blast_sched *s) { return s->step; }

#endif
