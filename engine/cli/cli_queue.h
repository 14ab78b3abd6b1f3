/*
 * cli_queue.h - what every subcommand shares with `volley queue`: opening the
 * queue of --data DIR with the errors named the same way.
 */
#ifndef VOLLEY_CLI_QUEUE_H
#define VOLLEY_CLI_QUEUE_H

#include "volley/queue.h"
#include "clock.h"

#define CLI_DATA_DIR_DEFAULT "./volley-data"

/** Open the queue in @p dir for `volley @p cmd` (every subcommand opens it
 *  here). @p flags: VL_QUEUE_* (with VL_QUEUE_CREATE a missing queue is
 *  created with @p nshards, 0 = the number of cores). @p nshards != 0 must
 *  match a recorded count. Prints one clear message, naming @p cmd, on failure.
 *  @return 0 or the error of vl_queue_open() (see cli_queue_open_exit). */
int cli_queue_open(const char *cmd, const char *dir, unsigned nshards, unsigned flags,
                   struct vl_queue **out);

/** Exit code for a cli_queue_open() result: VL_EXIT_USAGE for a shard-count
 *  mismatch or no queue, VL_EXIT_FAIL for the rest, VL_EXIT_OK for 0. */
int cli_queue_open_exit(int rc);

/** `volley queue bounce ID` (cli_queue_bounce.c): retire every open
 *  recipient of message @p id as BOUNCED 5.0.0 and enqueue one DSN in the same
 *  commit (none for a null return path). Prints the result (JSON if @p json).
 *  @return exit code: VL_EXIT_OK, VL_EXIT_USAGE (unknown id or nothing open),
 *  VL_EXIT_FAIL. */
int cli_queue_bounce(struct vl_queue *q, uint64_t id, int json);


#endif
