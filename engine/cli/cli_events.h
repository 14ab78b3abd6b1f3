/*
 * cli_events.h - the options of issue 16 for `volley run` and `volley send`:
 * bounce rules (--bounce-rules FILE) and, for run, delivery-event sinks.
 * Parsed from the arguments vl_config_parse() left over, so the shared
 * option parser is untouched.
 */
#ifndef VOLLEY_CLI_EVENTS_H
#define VOLLEY_CLI_EVENTS_H

#include "volley/config.h"

struct cli_events;                 /* the running event senders */
struct vl_queue;

/** Take this file's options out of @p rest (*@p rest_n entries, compacted in
 *  place) into @p ev_opts / @p cfg. Prints "volley CMD: ..." and returns -1
 *  on a bad option (a missing value). */
int cli_events_parse(struct vl_config *cfg, const char *cmd, char **rest, int *rest_n);

/** Load the bounce rules (user file first, then the shipped ones) into
 *  cfg->bounce_rules; check the event sinks' options (secret file readable,
 *  URL forms). Prints the error naming the option. @return 0 or -1. */
int cli_events_setup(struct vl_config *cfg, const char *cmd);

/** Start the event senders configured and, with --fbl-address, set
 *  appends its hook to cfg->intake_hooks (so before inject_start). *@p out NULL if none.
 *  @return 0 or -1 (printed). */
int cli_events_start(struct vl_config *cfg, struct vl_queue *q, struct cli_events **out);
/** Stop the senders (after the engine: they send what is stored first, for
 *  at most the drain time) and free the bounce rules. NULL is fine. */
void cli_events_stop(struct cli_events *ev, struct vl_config *cfg);

/** Help lines for --help: --bounce-rules (run, send), the events and
 *  feedback-loop options (run). */
extern const char cli_events_usage_bounce[];
extern const char cli_events_usage[];

#endif
