/*
 * cli_dkim.h - the --dkim* options at the command line: load the keys once at
 * start-up (a bad key stops the command before anything is queued or
 * listened for), and hand the options from `send` to its enqueue step.
 */
#ifndef VOLLEY_CLI_DKIM_H
#define VOLLEY_CLI_DKIM_H

#include "volley/config.h"

/** Load the keys of @p o into *@p out (NULL when none is configured).
 *  @return 0, or -1 after "volley CMD: --dkim ...: reason" on stderr. */
int cli_dkim_load(const char *cmd, const struct vl_dkim_opts *o, struct dkim_signer **out);
void cli_dkim_unload(struct dkim_signer *s);

/** Copy the --dkim* arguments of @p argv (both "--opt VALUE" and "--opt=VALUE")
 *  to @p out; @return how many strings were copied (at most argc). */
int cli_dkim_forward(int argc, char **argv, char **out);

#endif
