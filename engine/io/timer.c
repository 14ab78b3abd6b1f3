/*
 * timer.c - fixed-capacity min-heap of deadlines (see timer.h).
 * Invariants: heap[] holds exactly the pending slots, ordered by
 * (deadline_ms, seq); slots[s].heap_index == i iff heap[i] == s; a free slot
 * has heap_index UINT32_MAX and sits on free_list. Diagnostics: never logs.
 */
#include "timer.h"

#include <errno.h>
#include <stdlib.h>

#include "volley/error.h"

#define TIMER_FREE UINT32_MAX

static uint64_t timer_id_make(uint32_t slot, uint32_t gen) { return (uint64_t)slot << 32 | gen; }

int timer_heap_init(struct timer_heap *t, uint32_t cap)
{
    *t = (struct timer_heap){ 0 };
    if (cap == 0 || cap > (1u << 31))
        return -EINVAL;
    t->slots = calloc(cap, sizeof *t->slots);
    t->heap = calloc(cap, sizeof *t->heap);
    t->free_list = calloc(cap, sizeof *t->free_list);
    if (!t->slots || !t->heap || !t->free_list) {
        timer_heap_fini(t);
        return -ENOMEM;
    }
    t->cap = cap;
    for (uint32_t i = 0; i < cap; i++) {
        t->slots[i].gen = 1;
        t->slots[i].heap_index = TIMER_FREE;
        t->free_list[i] = cap - 1 - i;    /* slot 0 is handed out first */
    }
    t->free_count = cap;
    return 0;
}

void timer_heap_fini(struct timer_heap *t)
{
    free(t->slots);
    free(t->heap);
    free(t->free_list);
    *t = (struct timer_heap){ 0 };
}

static bool timer_before(const struct timer_heap *t, uint32_t a, uint32_t b)
{
    const struct timer_slot *x = &t->slots[a], *y = &t->slots[b];
    return x->deadline_ms < y->deadline_ms || (x->deadline_ms == y->deadline_ms && x->seq < y->seq);
}

static void timer_place(struct timer_heap *t, uint32_t i, uint32_t slot)
{
    t->heap[i] = slot;
    t->slots[slot].heap_index = i;
}

static void timer_sift_up(struct timer_heap *t, uint32_t i)
{
    uint32_t slot = t->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!timer_before(t, slot, t->heap[parent]))
            break;
        timer_place(t, i, t->heap[parent]);
        i = parent;
    }
    timer_place(t, i, slot);
}

static void timer_sift_down(struct timer_heap *t, uint32_t i)
{
    uint32_t slot = t->heap[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= t->count)
            break;
        if (child + 1 < t->count && timer_before(t, t->heap[child + 1], t->heap[child]))
            child++;
        if (!timer_before(t, t->heap[child], slot))
            break;
        timer_place(t, i, t->heap[child]);
        i = child;
    }
    timer_place(t, i, slot);
}

int timer_add(struct timer_heap *t, uint64_t deadline_ms, uint64_t cookie, uint64_t *id)
{
    if (t->free_count == 0)
        return -ENOSPC;
    uint32_t slot = t->free_list[--t->free_count];
    struct timer_slot *s = &t->slots[slot];
    vl_assert(s->heap_index == TIMER_FREE);
    s->deadline_ms = deadline_ms;
    s->seq = t->seq_next++;
    s->cookie = cookie;
    timer_place(t, t->count++, slot);
    timer_sift_up(t, t->count - 1);
    *id = timer_id_make(slot, s->gen);
    return 0;
}

static void timer_remove_at(struct timer_heap *t, uint32_t i)
{
    uint32_t slot = t->heap[i];
    vl_assert(i < t->count && t->slots[slot].heap_index == i);
    t->count--;
    if (i < t->count) {
        timer_place(t, i, t->heap[t->count]);
        timer_sift_down(t, i);
        timer_sift_up(t, t->slots[t->heap[i]].heap_index);
    }
    struct timer_slot *s = &t->slots[slot];
    s->heap_index = TIMER_FREE;
    if (++s->gen == 0)
        s->gen = 1;              /* 0 would make TIMER_ID_NONE a valid id */
    t->free_list[t->free_count++] = slot;
}

int timer_cancel(struct timer_heap *t, uint64_t id)
{
    uint32_t slot = (uint32_t)(id >> 32), gen = (uint32_t)id;
    if (slot >= t->cap || t->slots[slot].gen != gen || t->slots[slot].heap_index == TIMER_FREE)
        return VL_E_NOTFOUND;
    timer_remove_at(t, t->slots[slot].heap_index);
    return 0;
}

uint64_t timer_next_ms(const struct timer_heap *t)
{
    return t->count ? t->slots[t->heap[0]].deadline_ms : UINT64_MAX;
}

bool timer_pop_due(struct timer_heap *t, uint64_t now_ms, uint64_t *cookie, uint64_t *id)
{
    if (t->count == 0 || t->slots[t->heap[0]].deadline_ms > now_ms)
        return false;
    uint32_t slot = t->heap[0];
    *cookie = t->slots[slot].cookie;
    *id = timer_id_make(slot, t->slots[slot].gen);
    timer_remove_at(t, 0);
    return true;
}
