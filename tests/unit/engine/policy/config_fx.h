/* config_fx.h - the config-file unit tests' fixture: a temp dir per test
 * group, a file written into it, and vl_config_load_file() on it with the
 * printed errors captured. Included by config_file_test.c and
 * config_events_test.c (after cmocka.h and volley/config.h). */
#ifndef VOLLEY_TEST_CONFIG_FX_H
#define VOLLEY_TEST_CONFIG_FX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char cfx_dir[] = "/tmp/vl_config_test_XXXXXX";

static int cfx_setup(void **state)
{
    (void)state;
    return mkdtemp(cfx_dir) ? 0 : -1;
}

static int cfx_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cfx_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write @p text to @p name in the temp dir. @return its path (static). */
static const char *cfx_write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", cfx_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* Load @p text as a config file into @p c (defaults first); the errors
 * printed go to *@p errs (caller frees). @return how many errors. */
static unsigned cfx_load(struct vl_config *c, const char *text, char **errs)
{
    const char *path = cfx_write_file("t.conf", text);
    size_t len = 0;
    FILE *m = open_memstream(errs, &len);
    assert_non_null(m);
    vl_config_defaults(c);
    unsigned n = vl_config_load_file(c, path, m);
    assert_int_equal(fclose(m), 0);
    return n;
}

#endif
