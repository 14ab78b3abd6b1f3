/*
 * clock.h - the two clocks of volley, in milliseconds. One helper each: every
 * layer reads time through these (or through a clock its owner passes in, as
 * the pure modules and their tests do).
 *   wall:      CLOCK_REALTIME  - what is stored and logged (queue times, Date:)
 *   monotonic: CLOCK_MONOTONIC - deadlines, timers, durations
 * Thread: any.
 */
#ifndef VOLLEY_CLOCK_H
#define VOLLEY_CLOCK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Milliseconds since the Unix epoch (CLOCK_REALTIME). */
uint64_t vl_clock_wall_ms(void);
/** Milliseconds on CLOCK_MONOTONIC: only differences mean anything. */
uint64_t vl_clock_mono_ms(void);

#ifdef __cplusplus
}
#endif

#endif
