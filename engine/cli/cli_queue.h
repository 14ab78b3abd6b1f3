/*
 * cli_queue.h - what `volley enqueue` shares with `volley queue`: opening the
 * queue of --data DIR with the usage errors named the same way.
 */
#ifndef VOLLEY_CLI_QUEUE_H
#define VOLLEY_CLI_QUEUE_H

#include "volley/queue.h"
#include "clock.h"

#define CLI_DATA_DIR_DEFAULT "./volley-data"

/** Open the queue in @p dir. @p create: create it with @p nshards (0 = the
 *  number of cores) if missing. @p nshards != 0 must match a recorded count.
 *  Prints a clear message on failure.
 *  @return 0, or the exit code: VL_EXIT_USAGE (shard mismatch, no queue) or
 *  VL_EXIT_FAIL. */
int cli_queue_open(const char *dir, unsigned nshards, int create, struct vl_queue **out);

/** `volley queue bounce ID` (cli_queue_bounce.c): retire every open
 *  recipient of message @p id as BOUNCED 5.0.0 and enqueue one DSN in the same
 *  commit (none for a null return path). Prints the result (JSON if @p json).
 *  @return exit code: VL_EXIT_OK, VL_EXIT_USAGE (unknown id or nothing open),
 *  VL_EXIT_FAIL. */
int cli_queue_bounce(struct vl_queue *q, uint64_t id, int json);


#endif
