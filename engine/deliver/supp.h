/*
 * supp.h - the engine's handle on the suppression list (engine/suppress/):
 * shared by every shard (lookups at lease) and committer (hard bounces fed
 * in). It is opened at start if DATA/suppress exists; else it is created by
 * the first hard bounce (so a run that never meets one leaves DATA as it
 * was). Thread: any.
 */
#ifndef VOLLEY_DELIVER_SUPP_H
#define VOLLEY_DELIVER_SUPP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct sup;

struct deliver_sup {
    const char *data_dir;
    pthread_mutex_t mu;
    _Atomic(struct sup *) sup;     /* NULL: no list (yet) */
    bool create_failed;            /* under mu: logged once, not retried */
};

/** Open DATA/suppress if it exists. */
void deliver_sup_init(struct deliver_sup *d, const char *data_dir);
void deliver_sup_fini(struct deliver_sup *d);

/** The handle, or NULL; with @p create, created on first use. */
struct sup *deliver_sup_get(struct deliver_sup *d, bool create);

#endif
