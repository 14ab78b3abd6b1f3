/*
 * cli_usage.c - the run options' help text per command (see cli_usage.h).
 */
#include "cli_usage.h"

#include "volley/config.h"

#include <string.h>

void cli_usage_run_options(FILE *f, const char *data_default, bool until_empty)
{
    const char *s = vl_config_usage;
    for (unsigned lines = 0; *s && lines < 200; lines++) {     /* the text is ~25 lines */
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) + 1 : strlen(s);
        if (!strncmp(s, "  --until-empty", 15) && !until_empty) {
            s += n;
            continue;
        }
        if (!strncmp(s, "  --data DIR", 12))
            fprintf(f, "  --data DIR              queue directory (default %s)\n", data_default);
        else
            fwrite(s, 1, n, f);
        s += n;
    }
    fputs(vl_dkim_usage, f);
}
