/*
 * queue_lease_set.c - u64 id set: open addressing, backward-shift delete.
 * Invariant: every probe run from an id's home slot to the id has no empty
 * slot in between (deletion keeps it by shifting entries back).
 */
#include "queue_lease_set.h"

#include "volley/error.h"

#include <errno.h>
#include <stdlib.h>

static size_t lease_slot(const struct queue_lease_set *ls, uint64_t id)
{
    uint64_t h = id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (ls->cap - 1);
}

bool queue_lease_has(const struct queue_lease_set *ls, uint64_t id)
{
    if (ls->cap == 0)
        return false;
    for (size_t i = lease_slot(ls, id), n = 0; n < ls->cap; i = (i + 1) & (ls->cap - 1), n++) {
        if (ls->slots[i] == id)
            return true;
        if (ls->slots[i] == 0)
            return false;
    }
    return false;
}

static int lease_grow(struct queue_lease_set *ls)
{
    size_t cap = ls->cap ? ls->cap * 2 : 1024;
    uint64_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    struct queue_lease_set old = *ls;
    ls->slots = slots;
    ls->cap = cap;
    ls->count = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i])
            queue_lease_add(ls, old.slots[i]);
    free(old.slots);
    return 0;
}

int queue_lease_add(struct queue_lease_set *ls, uint64_t id)
{
    vl_assert(id != 0);
    if ((ls->count + 1) * 2 > ls->cap) {
        int rc = lease_grow(ls);
        if (rc < 0)
            return rc;
    }
    size_t i = lease_slot(ls, id);
    while (ls->slots[i] != 0) {
        if (ls->slots[i] == id)
            return 0;
        i = (i + 1) & (ls->cap - 1);
    }
    ls->slots[i] = id;
    ls->count++;
    vl_assert(ls->count * 2 <= ls->cap);
    return 0;
}

void queue_lease_del(struct queue_lease_set *ls, uint64_t id)
{
    if (ls->cap == 0)
        return;
    size_t mask = ls->cap - 1, i = lease_slot(ls, id);
    for (size_t n = 0; ls->slots[i] != id; i = (i + 1) & mask, n++)
        if (ls->slots[i] == 0 || n >= ls->cap)
            return;
    /* Backward shift: move later entries of the probe run into the hole. */
    for (size_t j = (i + 1) & mask; ls->slots[j] != 0; j = (j + 1) & mask) {
        size_t home = lease_slot(ls, ls->slots[j]);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            ls->slots[i] = ls->slots[j];
            i = j;
        }
    }
    ls->slots[i] = 0;
    vl_assert(ls->count > 0);
    ls->count--;
}

void queue_lease_fini(struct queue_lease_set *ls)
{
    free(ls->slots);
    *ls = (struct queue_lease_set){ 0 };
}
