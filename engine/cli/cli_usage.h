/*
 * cli_usage.h - the run options' help text (vl_config_usage) as each command
 * means it: `send` and `bench` always stop when the queue is empty (no
 * --until-empty line) and `bench` has its own default data directory.
 */
#ifndef VOLLEY_CLI_USAGE_H
#define VOLLEY_CLI_USAGE_H

#include <stdbool.h>
#include <stdio.h>

/** Print vl_config_usage to @p f, with @p data_default as --data's default
 *  and without the --until-empty line unless @p until_empty. */
void cli_usage_run_options(FILE *f, const char *data_default, bool until_empty);

#endif
