/* metrics_test.c - the metrics registry (metrics.c): outcomes by domain and
 * source with the table's overflow counted as "other", top-N merging across
 * shards, histogram buckets (cumulative at render, +Inf = count), label
 * escaping, and the text the scrape renders. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static uint64_t line_value(const char *text, const char *series)
{
    char pat[512];
    snprintf(pat, sizeof pat, "\n%s ", series);
    const char *p = strstr(text, pat);
    if (!p) {
        fail_msg("series %s not in the output", series);
        return 0;
    }
    return strtoull(p + strlen(pat), NULL, 10);
}

static void test_outcomes_and_other(void **state)
{
    (void)state;
    assert_int_equal(met_init(2), 0);
    struct met *m = met_get();
    assert_non_null(m);
    assert_int_equal(m->nshards, 2);
    struct met_shard *s0 = met_shard(0), *s1 = met_shard(1);
    assert_non_null(s0);
    assert_null(met_shard(2));
    for (int i = 0; i < 5; i++)
        met_outcome(s0, MET_DELIVERED, "a.test", "s@src.test", "spring-sale");
    for (int i = 0; i < 3; i++)
        met_outcome(s1, MET_DELIVERED, "a.test", "s@src.test", NULL);
    met_outcome(s1, MET_BOUNCED, "b.test", "", NULL);
    met_outcome(s1, MET_SUPPRESSED, "quo\"te.test", "x@y.test", NULL);
    met_outcome(s0, MET_SUPPRESSED, "quo\"te.test", "x@y.test", NULL);
    /* more domains than the table holds: the rest go to "other" */
    char d[64];
    for (unsigned i = 0; i < MET_DOMAINS + 10; i++) {
        snprintf(d, sizeof d, "d%u.test", i);
        met_outcome(s0, MET_DEFERRED, d, "s@src.test", NULL);
    }
    met_inject(MET_L_HTTP, 7);
    met_inject(MET_L_SMTP, 2);
    size_t len = 0;
    char *t = met_render(m, NULL, &len);
    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    assert_int_equal(line_value(t, "volley_recipients_total{outcome=\"delivered\"}"), 8);
    assert_int_equal(line_value(t, "volley_recipients_total{outcome=\"bounced\"}"), 1);
    assert_int_equal(line_value(t, "volley_recipients_total{outcome=\"suppressed\"}"), 2);
    assert_int_equal(line_value(t, "volley_recipients_total{outcome=\"deferred\"}"),
                     MET_DOMAINS + 10);
    assert_int_equal(line_value(t, "volley_domain_recipients_total{domain=\"a.test\","
                                   "outcome=\"delivered\"}"), 8);
    assert_int_equal(line_value(t, "volley_source_recipients_total{source=\"s@src.test\","
                                   "outcome=\"delivered\"}"), 8);
    assert_int_equal(line_value(t, "volley_source_recipients_total{source=\"\","
                                   "outcome=\"bounced\"}"), 1);
    /* every deferral is in a labelled row or "other": the top 20 rows are shown */
    uint64_t other = line_value(t, "volley_domain_recipients_total{domain=\"other\","
                                   "outcome=\"deferred\"}");
    unsigned shown = 0;
    for (const char *p = t; (p = strstr(p, "volley_domain_recipients_total{domain=\"d")); p++)
        shown++;
    assert_int_equal(shown, (MET_TOP_N - 3) * MET_OUTCOMES);  /* a, b, quote shown above */
    assert_int_equal(other + (MET_TOP_N - 3), MET_DOMAINS + 10);
    assert_non_null(strstr(t, "domain=\"quo\\\"te.test\""));
    assert_int_equal(line_value(t, "volley_campaign_recipients_total{campaign=\"spring-sale\","
                                   "outcome=\"delivered\"}"), 5);
    assert_int_equal(line_value(t, "volley_campaign_recipients_total{campaign=\"other\","
                                   "outcome=\"delivered\"}"), 0);
    assert_int_equal(line_value(t, "volley_injected_recipients_total{listener=\"http\"}"), 7);
    assert_int_equal(line_value(t, "volley_injected_messages_total{listener=\"smtp\"}"), 1);
    free(t);
    met_fini();
    assert_null(met_get());
}

static void test_histograms(void **state)
{
    (void)state;
    assert_int_equal(met_init(1), 0);
    struct met_shard *s = met_shard(0);
    met_hist_add(&s->commit_batch, met_batch_bounds, 1);
    met_hist_add(&s->commit_batch, met_batch_bounds, 3);
    met_hist_add(&s->commit_batch, met_batch_bounds, 4);
    met_hist_add(&s->commit_batch, met_batch_bounds, 1000000);   /* past every bound */
    met_hist_add(&s->commit_us, met_commit_us_bounds, 1500);
    struct met_queue q = { .ok = true, .ready = 4, .deferred = 2, .oldest_ok = true,
                           .oldest_open_age_s = 12.5, .age_scanned = 3 };
    size_t len;
    char *t = met_render(met_get(), &q, &len);
    assert_non_null(t);
    assert_int_equal(line_value(t, "volley_commit_batch_outcomes_bucket{le=\"1\"}"), 1);
    assert_int_equal(line_value(t, "volley_commit_batch_outcomes_bucket{le=\"2\"}"), 1);
    assert_int_equal(line_value(t, "volley_commit_batch_outcomes_bucket{le=\"4\"}"), 3);
    assert_int_equal(line_value(t, "volley_commit_batch_outcomes_bucket{le=\"32768\"}"), 3);
    assert_int_equal(line_value(t, "volley_commit_batch_outcomes_bucket{le=\"+Inf\"}"), 4);
    assert_int_equal(line_value(t, "volley_commit_batch_outcomes_count"), 4);
    assert_int_equal(line_value(t, "volley_commit_batch_outcomes_sum"), 1000008);
    assert_int_equal(line_value(t, "volley_commit_latency_seconds_bucket{le=\"0.001\"}"), 0);
    assert_int_equal(line_value(t, "volley_commit_latency_seconds_bucket{le=\"0.0025\"}"), 1);
    assert_non_null(strstr(t, "\nvolley_commit_latency_seconds_sum 0.001500\n"));
    assert_int_equal(line_value(t, "volley_queue_recipients{state=\"ready\"}"), 4);
    assert_non_null(strstr(t, "\nvolley_queue_oldest_open_age_seconds 12.500\n"));
    assert_non_null(strstr(t, "# TYPE volley_commit_latency_seconds histogram\n"));
    free(t);
    met_fini();
}

static void test_domain_rows(void **state)
{
    (void)state;
    assert_int_equal(met_init(2), 0);
    struct met_shard *s0 = met_shard(0), *s1 = met_shard(1);
    met_outcome(s0, MET_DELIVERED, "a.test", "s@x.test", NULL);
    met_outcome(s1, MET_DEFERRED, "a.test", "s@x.test", NULL);
    met_domain_error(s0, "a.test", "deferred 451 4.4.1 older", 1000);
    met_domain_error(s1, "a.test", "deferred 421 4.3.0 newer", 2000);
    char longer[300];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    met_domain_error(s0, "b.test", longer, 500);           /* cut to MET_ERR_MAX - 1 */
    struct met_domain_row rows[8];
    int n = met_domain_rows(met_get(), rows, 8);
    assert_int_equal(n, 2);
    int a = strcmp(rows[0].domain, "a.test") ? 1 : 0;
    assert_string_equal(rows[a].domain, "a.test");
    assert_int_equal(rows[a].n[MET_DELIVERED], 1);
    assert_int_equal(rows[a].n[MET_DEFERRED], 1);
    assert_int_equal(rows[a].err_ms, 2000);
    assert_string_equal(rows[a].err, "deferred 421 4.3.0 newer");   /* the latest of the shards */
    assert_int_equal(strlen(rows[1 - a].err), MET_ERR_MAX - 1);
    assert_int_equal(met_domain_rows(met_get(), rows, 1), 1);      /* bounded by max */
    met_fini();
}

static void test_off(void **state)
{
    (void)state;
    setenv("VOLLEY_METRICS", "off", 1);
    assert_int_equal(met_init(4), 0);
    assert_null(met_get());
    assert_null(met_shard(0));
    met_inject(MET_L_HTTP, 1);                     /* a no-op, not a crash */
    size_t len;
    char *t = met_render(NULL, NULL, &len);
    assert_non_null(t);
    assert_non_null(strstr(t, "volley_up{metrics=\"off\"} 1\n"));
    assert_null(strstr(t, "volley_recipients_total"));
    free(t);
    unsetenv("VOLLEY_METRICS");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcomes_and_other),
        cmocka_unit_test(test_histograms),
        cmocka_unit_test(test_domain_rows),
        cmocka_unit_test(test_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
