/*
 * timer.h - a fixed-capacity min-heap of deadlines (one per reactor thread).
 * Pure: no clock, no I/O; callers pass now_ms. Used by rx.c for per-command
 * deadlines and retry timers; usable alone (tests drive it with fake time).
 *
 * Invariants: capacity fixed at init (add past it is -ENOSPC, never a
 * malloc); equal deadlines fire in the order they were added; a timer id is
 * slot:32 | generation:32, so cancelling a timer that already fired (or was
 * cancelled) is a harmless VL_E_NOTFOUND, even after its slot is reused.
 */
#ifndef VOLLEY_TIMER_H
#define VOLLEY_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TIMER_ID_NONE 0u   /* never a valid id (generations start at 1) */

struct timer_slot {
    uint64_t deadline_ms;
    uint64_t seq;          /* insertion order: ties fire first-in first-out */
    uint64_t cookie;       /* the caller's, returned by timer_pop_due */
    uint32_t gen;          /* bumped when the slot is freed */
    uint32_t heap_index;   /* position in heap[], or UINT32_MAX when free */
};

struct timer_heap {
    struct timer_slot *slots;   /* cap entries */
    uint32_t *heap;             /* slot indices, min-heap on (deadline_ms, seq) */
    uint32_t *free_list;        /* stack of free slot indices */
    uint32_t cap, count, free_count;
    uint64_t seq_next;
};

/** Allocate a heap for at most @p cap timers (1 .. 2^31). @return 0, -EINVAL, -ENOMEM. */
int timer_heap_init(struct timer_heap *t, uint32_t cap);
/** Free what init allocated. Pending timers are dropped. */
void timer_heap_fini(struct timer_heap *t);

/** Add a timer due at @p deadline_ms carrying @p cookie; its id goes to *@p id.
 *  @return 0 or -ENOSPC when @p cap timers are pending. */
int timer_add(struct timer_heap *t, uint64_t deadline_ms, uint64_t cookie, uint64_t *id);
/** Cancel a pending timer. @return 0, or VL_E_NOTFOUND if it already fired or was cancelled. */
int timer_cancel(struct timer_heap *t, uint64_t id);
/** Earliest pending deadline, or UINT64_MAX when none is pending. */
uint64_t timer_next_ms(const struct timer_heap *t);
/** Remove the earliest timer if due (deadline <= @p now_ms): its cookie and id
 *  go to the out parameters. @return true if one was removed. */
bool timer_pop_due(struct timer_heap *t, uint64_t now_ms, uint64_t *cookie, uint64_t *id);
/** Number of pending timers. */
static inline uint32_t timer_count(const struct timer_heap *t) { return t->count; }

#ifdef __cplusplus
}
#endif
#endif
