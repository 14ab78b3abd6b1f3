/*
 * cli_dkim.c - the --dkim* options at the command line (cli_dkim.h).
 */
#include "cli_dkim.h"

#include "dkim.h"

#include <stdio.h>
#include <string.h>

int cli_dkim_load(const char *cmd, const struct vl_dkim_opts *o, struct dkim_signer **out)
{
    *out = NULL;
    if (!o->key_count)
        return 0;
    char why[DKIM_WHY_BYTES * 4];
    if (dkim_signer_create(o, out, why) < 0) {
        fprintf(stderr, "volley %s: %s\n", cmd, why);
        return -1;
    }
    return 0;
}

void cli_dkim_unload(struct dkim_signer *s)
{
    dkim_signer_destroy(s);
}

int cli_dkim_forward(int argc, char **argv, char **out)
{
    static const char *const names[] = { "--dkim", "--dkim-canon", "--dkim-expire",
                                         "--dkim-headers" };
    int n = 0;
    for (int i = 1; i < argc; i++)
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            size_t l = strlen(names[k]);
            if (strncmp(argv[i], names[k], l) || (argv[i][l] && argv[i][l] != '='))
                continue;
            out[n++] = argv[i];
            if (!argv[i][l] && i + 1 < argc)
                out[n++] = argv[++i];
            break;
        }
    return n;
}
