/*
 * cli_config.c - `volley config check FILE`: load volley.conf the way `run
 * --config FILE` does and print every error as FILE:LINE: what is wrong
 * (exit 2), or a one-line summary (exit 0). Also what only the engine would
 * notice late: --dns must be IP addresses, --ehlo a host name or address.
 * The delivery log is not opened (a check writes nothing).
 */
#include "cli.h"
#include "dns_route.h"
#include "volley/config.h"
#include "volley/shaping.h"

#include <stdio.h>
#include <string.h>

static const char cli_config_help[] =
    "usage: volley config check FILE\n\n"
    "Read FILE (volley.conf) as `volley run --config FILE` would and report every\n"
    "error with its file and line: syntax, unknown keys (with the closest known one),\n"
    "values out of range, rules between options. Exit 0 when the file is valid,\n"
    "2 otherwise. Every run/send option is a key of the same name without its\n"
    "dashes (retry-base = \"5m\";); see volley.conf.example in the repository.\n";

int cli_config_main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(cli_config_help, stdout);
        return VL_EXIT_OK;
    }
    if (argc != 3 || strcmp(argv[1], "check")) {
        fputs(cli_config_help, stderr);
        return VL_EXIT_USAGE;
    }
    static struct vl_config cfg;
    vl_config_defaults(&cfg);
    const char *path = argv[2];
    unsigned errors = vl_config_load_file(&cfg, path, stderr);
    const char *why = NULL;
    if (errors == 0 && cfg.dns) {
        struct vl_hostport hp[VL_DNS_SERVERS_MAX];
        size_t n = 0;
        if (dns_servers_parse(cfg.dns, hp, &n, &why) < 0) {
            fprintf(stderr, "%s: dns '%s': %s\n", path, cfg.dns, why ? why : "invalid");
            errors++;
        }
    }
    if (errors == 0) {
        struct dns_own own;
        const char *ehlo[] = { cfg.ehlo_name };
        int rc = dns_own_init(&own, ehlo, 1, &why);
        dns_own_fini(&own);
        if (rc < 0) {
            fprintf(stderr, "%s: ehlo '%s': expected a host name or an IP address\n", path,
                    cfg.ehlo_name);
            errors++;
        }
    }
    if (errors) {
        fprintf(stderr, "volley config: %s: %u error%s\n", path, errors, errors == 1 ? "" : "s");
        vl_config_fini(&cfg);
        return VL_EXIT_USAGE;
    }
    const struct vl_shaping *sh = cfg.shaping;
    printf("volley config: %s: ok (%u route%s, %u listener%s, tls %s, %u shaping polic%s, "
           "%u egress address%s)\n", path, cfg.route_count, cfg.route_count == 1 ? "" : "s",
           cfg.listen_count, cfg.listen_count == 1 ? "" : "s", vl_tls_level_name(cfg.tls_level),
           sh ? sh->policy_count : 0, sh && sh->policy_count == 1 ? "y" : "ies",
           sh ? sh->addr_count : 0, sh && sh->addr_count == 1 ? "" : "es");
    vl_config_fini(&cfg);
    return VL_EXIT_OK;
}
