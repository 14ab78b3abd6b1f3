/* config_events_test.c - the config file's `events` block (issue 16,
 * engine/policy/config_file.c): its keys reach cfg->events, a bad or unknown
 * key is an error at its line naming it (with a "did you mean"), and the block
 * documented in etc/volley.conf.example loads as it stands. Real files in a
 * temp dir. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "volley/config.h"

#include "config_fx.h"


static void test_values(void **state)
{
    (void)state;
    static struct vl_config c;
    char *errs = NULL;
    unsigned n = cfx_load(&c,
        "events = {\n"
        "  webhook = { url = \"http://127.0.0.1:8080/h\"; secret-file = \"/k\"; };\n"
        "  amqp = { url = \"amqp://u:p@127.0.0.1:5672/\"; queue = \"q1\"; per-message = 100; };\n"
        "  batch = 250;\n"
        "  linger = 0;\n"
        "  timeout = \"5s\";\n"
        "  drain = \"1m\";\n"
        "  outbox-max = 5000;\n"
        "};\n", &errs);
    if (n)
        fail_msg("%s", errs);
    assert_string_equal(c.events.webhook_url, "http://127.0.0.1:8080/h");
    assert_string_equal(c.events.webhook_secret_file, "/k");
    assert_string_equal(c.events.amqp_url, "amqp://u:p@127.0.0.1:5672/");
    assert_string_equal(c.events.amqp_queue, "q1");
    assert_int_equal(c.events.amqp_per_message, 100);
    assert_int_equal(c.events.batch, 250);
    assert_true(c.events.linger_set);
    assert_int_equal(c.events.linger_ms, 0);
    assert_int_equal(c.events.timeout_ms, 5000);
    assert_true(c.events.drain_set);
    assert_int_equal(c.events.drain_ms, 60000);
    assert_int_equal(c.events.outbox_max, 5000);
    free(errs);
    vl_config_fini(&c);
}

/* Every error with its line; unknown keys at each level name the closest one. */
static void test_errors(void **state)
{
    (void)state;
    static struct vl_config c;
    char *errs = NULL;
    unsigned n = cfx_load(&c,
        "events = {\n"                                                  /* 1 */
        "  webhook = { url = \"ftp://x/\"; secret-fil = \"/k\"; };\n"   /* 2 */
        "  amqp = { url = \"amqp://h/\"; exchange = \"x\"; per-message = 0; };\n"  /* 3 */
        "  batch = 5000;\n"                                             /* 4 */
        "  linger = \"soon\";\n"                                        /* 5 */
        "  outbox-maxx = 10;\n"                                         /* 6 */
        "  outbox-max = 5;\n"                                          /* 7 */
        "  timeout = 0;\n"                                              /* 8 */
        "};\n"
        "event = 1;\n", &errs);                                         /* 10 */
    const char *want[] = {
        ":2: events.webhook.url: 'ftp://x/': expected a http:// or https:// URL",
        ":2: unknown key 'secret-fil' in events.webhook (did you mean 'secret-file'?)",
        ":2: events.webhook: secret-file missing",
        ":3: unknown key 'exchange' in events.amqp",
        ":3: events.amqp.per-message: expected a whole number from 1 to 1000",
        ":4: events.batch: expected a whole number from 1 to 1000",
        ":5: events.linger: expected a duration",
        ":6: unknown key 'outbox-maxx' in events (did you mean 'outbox-max'?)",
        ":7: events.outbox-max: expected a whole number from 10 to 100000000",
        ":8: events.timeout: must be > 0",
        ":10: unknown key 'event' (did you mean 'events'?)",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(errs, want[i]))
            fail_msg("missing \"%s\" in:\n%s", want[i], errs);
    assert_int_equal(n, sizeof want / sizeof want[0] + 1);   /* + webhook url missing */
    free(errs);
    vl_config_fini(&c);
}

static void test_not_a_group(void **state)
{
    (void)state;
    static struct vl_config c;
    char *errs = NULL;
    assert_int_equal(cfx_load(&c, "events = { webhook = \"http://x/\"; };\n", &errs), 1);
    if (!strstr(errs, ":1: events.webhook: expected a group"))
        fail_msg("%s", errs);
    free(errs);
    vl_config_fini(&c);
}

/* The example file's documented block, uncommented, loads. */
static void test_example_block(void **state)
{
    (void)state;
    const char *src = getenv("VOLLEY_SRC");
    if (!src)
        fail_msg("VOLLEY_SRC is not set (run through ctest)");
    char path[512], line[512], text[4096] = "";
    snprintf(path, sizeof path, "%s/etc/volley.conf.example", src);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    bool in = false;
    size_t used = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "@events-begin")) { in = true; continue; }
        if (strstr(line, "@events-end")) break;
        if (in) {
            assert_true(!strncmp(line, "# ", 2));
            size_t l = strlen(line + 2);
            assert_true(used + l < sizeof text);
            memcpy(text + used, line + 2, l + 1);
            used += l;
        }
    }
    fclose(f);
    assert_true(used > 100);
    static struct vl_config c;
    char *errs = NULL;
    if (cfx_load(&c, text, &errs))
        fail_msg("%s\n%s", text, errs);
    assert_non_null(c.events.webhook_url);
    assert_non_null(c.events.amqp_url);
    assert_int_equal(c.events.outbox_max, 200000);
    assert_int_equal(c.events.amqp_per_message, 1);
    free(errs);
    vl_config_fini(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_not_a_group),
        cmocka_unit_test(test_example_block),
    };
    return cmocka_run_group_tests(tests, cfx_setup, cfx_teardown);
}
