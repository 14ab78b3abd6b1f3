/*
 * queue_lease_set.h - the in-memory set of leased recipient ids of one shard
 * (pure: no LMDB, no lock; the shard's owner thread only).
 *
 * Open addressing with linear probing over a power-of-two table; 0 marks an
 * empty slot (recipient ids are never 0). Deletion shifts later entries of a
 * probe run back, so no tombstones accumulate. The table grows x2 at half
 * full and never shrinks until queue_lease_set_fini().
 */
#ifndef VOLLEY_QUEUE_LEASE_SET_H
#define VOLLEY_QUEUE_LEASE_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct queue_lease_set {
    uint64_t *slots;
    size_t cap;                      /* power of two, or 0 */
    size_t count;
};

/** Is @p id in @p ls? */
bool queue_lease_has(const struct queue_lease_set *ls, uint64_t id);
/** Add @p id (!= 0); a present id is a no-op. @return 0 or -ENOMEM. */
int queue_lease_add(struct queue_lease_set *ls, uint64_t id);
/** Remove @p id; an absent id is a no-op. */
void queue_lease_del(struct queue_lease_set *ls, uint64_t id);
/** Free the table; @p ls is empty and reusable after. */
void queue_lease_fini(struct queue_lease_set *ls);

#endif
