/*
 * config_file_fuzz.c - volley.conf (engine/policy/config_file.c, over libconfig).
 *
 * Input: the bytes of a configuration file (given to the loader through a
 * memfd, as a file). Invariants: the loader never crashes or leaks whatever
 * the input; it reports a count of errors, and when it reports none the
 * config satisfies every rule between options (vl_config_check finds nothing)
 * and the shaping table holds: policies within their caps, each matching
 * something, rates and caps in range, pools that exist; when it reports errors
 * it printed at least that many lines.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "volley/config.h"
#include "volley/shaping.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_INPUT_MAX || memmem(data, size, "@include", 8))
        return 0;                      /* no file of the machine's is read */
    int fd = memfd_create("volley-conf", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    static struct vl_config c;
    vl_config_defaults(&c);
    char *errs = NULL;
    size_t errs_len = 0;
    FILE *m = open_memstream(&errs, &errs_len);
    FUZZ_CHECK(m != NULL);
    unsigned n = vl_config_load_file(&c, path, m);
    fclose(m);
    close(fd);
    size_t lines = 0;
    for (size_t i = 0; i < errs_len; i++)
        lines += errs[i] == '\n';
    if (n) {
        FUZZ_CHECK(lines >= n);
    } else {
        FUZZ_CHECK(errs_len == 0);
        FILE *devnull = fopen("/dev/null", "w");
        FUZZ_CHECK(devnull != NULL);
        FUZZ_CHECK(vl_config_check(&c, "fuzz", devnull) == 0);
        fclose(devnull);
        const struct vl_shaping *s = c.shaping;
        FUZZ_CHECK(s != NULL && s->policy_count <= VL_SHAPING_POLICIES_MAX);
        FUZZ_CHECK(s->addr_count <= VL_EGRESS_ADDRS_MAX && s->pool_count <= VL_EGRESS_POOLS_MAX);
        for (unsigned i = 0; i < s->policy_count; i++) {
            const struct vl_shaping_policy *p = &s->policies[i];
            FUZZ_CHECK(p->domain_count + p->mx_count > 0);
            FUZZ_CHECK(p->msgs_per_s >= 0 && p->conns_per_min >= 0);
            FUZZ_CHECK(p->rcpts_per_txn <= VL_SMTP_RCPTS_PER_TXN_MAX);
            FUZZ_CHECK(!p->adaptive || (p->msgs_per_s > 0 && p->decrease > 0 &&
                                        p->decrease < 1 && p->increase > 0));
            FUZZ_CHECK(p->pattern_count <= VL_SHAPING_PATTERNS_MAX);
            if (p->pool[0]) {
                bool found = false;
                for (unsigned k = 0; k < s->pool_count; k++)
                    found |= !strcmp(s->pools[k].name, p->pool);
                FUZZ_CHECK(found);
            }
        }
        for (unsigned i = 0; i < s->addr_count; i++)
            FUZZ_CHECK(s->addrs[i].pool < s->pool_count && s->addrs[i].weight >= 1);
    }
    free(errs);
    vl_config_fini(&c);
    return 0;
}
