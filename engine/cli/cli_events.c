/*
 * cli_events.c - issue 16's options for `volley run` / `volley send` (see
 * cli_events.h): bounce rules, and the delivery-event senders of run.
 */
#include "cli_events.h"

#include "bounce.h"
#include "cli.h"
#include "volley/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cli_events_usage[] =
    "  --bounce-rules FILE   bounce classification rules tried before the shipped ones\n"
    "                        (lines 'CATEGORY STATUS REGEX', see etc/bounce_rules.conf)\n";

/* --opt VALUE or --opt=VALUE at rest[*i]; @return the value, or NULL (not this option). */
static const char *cli_events_opt(const char *name, char **rest, int n, int *i, bool *missing)
{
    size_t k = strlen(name);
    const char *a = rest[*i];
    if (strncmp(a, name, k) != 0)
        return NULL;
    if (a[k] == '=')
        return a + k + 1;
    if (a[k] != '\0')
        return NULL;
    if (*i + 1 >= n) {
        *missing = true;
        return NULL;
    }
    return rest[++*i];
}

int cli_events_parse(struct vl_config *cfg, const char *cmd, char **rest, int *rest_n)
{
    int out = 0, n = *rest_n;
    for (int i = 0; i < n; i++) {
        bool missing = false;
        const char *v;
        const char *name = rest[i];
        if ((v = cli_events_opt("--bounce-rules", rest, n, &i, &missing))) {
            cfg->bounce_rules_path = v;
        } else if (missing) {
            fprintf(stderr, "volley %s: %s needs a value\n", cmd, name);
            return -1;
        } else {
            rest[out++] = rest[i];
        }
    }
    *rest_n = out;
    return 0;
}

int cli_events_setup(struct vl_config *cfg, const char *cmd)
{
    struct bounce_rules *r;
    char err[512];
    if (bounce_rules_create(&r) < 0) {
        fprintf(stderr, "volley %s: out of memory\n", cmd);
        return -1;
    }
    if (cfg->bounce_rules_path
        && bounce_rules_load_file(r, cfg->bounce_rules_path, err, sizeof err) < 0) {
        fprintf(stderr, "volley %s: --bounce-rules: %s\n", cmd, err);
        bounce_rules_destroy(r);
        return -1;
    }
    if (bounce_rules_load_default(r, err, sizeof err) < 0) {
        fprintf(stderr, "volley %s: shipped bounce rules: %s\n", cmd, err);
        bounce_rules_destroy(r);
        return -1;
    }
    cfg->bounce_rules = r;
    return 0;
}

int cli_events_start(const struct vl_config *cfg, struct vl_queue *q, struct cli_events **out)
{
    (void)cfg;
    (void)q;
    *out = NULL;
    return 0;
}

void cli_events_stop(struct cli_events *ev, struct vl_config *cfg)
{
    (void)ev;
    bounce_rules_destroy((struct bounce_rules *)cfg->bounce_rules);
    cfg->bounce_rules = NULL;
}
