/* shaper_test.c - the runtime shaping state (engine/policy/shaper.c) at given
 * times: the message bucket's rate and burst, AIMD (cut once per hold-down, the
 * floor, the raise after a quiet interval, up to the configured rate), suspend
 * patterns, connection caps per source address scaled down after a cut, new
 * connections per minute, egress choice by pool and weight and the warm-up cap,
 * and the delivery-log lines of each change. Policies come from a real file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shaper.h"
#include "volley/config.h"
#include "volley/shaping.h"

static struct vl_config cfg;

static int load(const char *text)
{
    char path[] = "/tmp/vl_shaper_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    vl_config_defaults(&cfg);
    FILE *devnull = fopen("/dev/null", "w");
    unsigned n = vl_config_load_file(&cfg, path, devnull);
    fclose(devnull);
    unlink(path);
    return (int)n;
}

/* Load @p text into @p c (for a second config beside cfg). */
static unsigned load_into(struct vl_config *c, const char *text)
{
    char path[] = "/tmp/vl_shaper_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    vl_config_defaults(c);
    FILE *devnull = fopen("/dev/null", "w");
    unsigned n = vl_config_load_file(c, path, devnull);
    fclose(devnull);
    unlink(path);
    return n;
}

/* How many messages policy p may start from t0 to t1 (ms), asking every ms. */
static unsigned drain(struct vl_shaper *sh, int p, uint64_t t0, uint64_t t1)
{
    unsigned n = 0;
    for (uint64_t t = t0; t < t1; t++)
        while (vl_shaper_msg_take(sh, p, -1, t) == 0)
            n++;
    return n;
}

static void test_bucket_and_aimd(void **state)
{
    (void)state;
    assert_int_equal(load("shaping = { g = { mx = \"g.test\"; msgs-per-sec = 50.0;\n"
                          "  adaptive = { decrease = 0.5; hold-down = \"10s\"; interval = \"5s\";\n"
                          "               increase = 5.0; min = 10.0;\n"
                          "               defer-patterns = [ \"TSS04\" ]; }; }; };\n"), 0);
    char dlog[] = "/tmp/vl_shaper_dlog_XXXXXX";
    int fd = mkstemp(dlog);
    assert_true(fd >= 0);
    struct vl_shaper *sh;
    assert_int_equal(vl_shaper_create(&sh, cfg.shaping, fd), 0);
    int p = vl_shaper_policy(sh, "x.example", "alt1.G.test.");
    assert_int_equal(p, 0);
    assert_int_equal(vl_shaper_policy(sh, "x.example", "g.test.example"), -1);
    /* start from a known clock: the bucket's first refill is at its creation time,
     * so take what is there now and measure one second later on */
    uint64_t t0 = 10ull * 86400 * 1000 * 365;   /* any time after creation */
    drain(sh, p, t0, t0 + 1);
    unsigned n = drain(sh, p, t0 + 1, t0 + 1001);
    assert_true(n >= 49 && n <= 51);            /* 50/s */
    uint64_t w = vl_shaper_msg_take(sh, p, -1, t0 + 1001);
    assert_true(w >= 1 && w <= 20);             /* the next token: 20 ms at 50/s */
    /* push-back: 421 cuts by half, a second one inside the hold-down does not */
    assert_true(vl_shaper_feedback(sh, p, 421, "4.7.0", "slow down", 9, t0 + 2000));
    assert_true(vl_shaper_rate(sh, p) > 24.9 && vl_shaper_rate(sh, p) < 25.1);
    assert_true(vl_shaper_feedback(sh, p, 451, "4.7.1", "later", 5, t0 + 3000));
    assert_true(vl_shaper_rate(sh, p) > 24.9 && vl_shaper_rate(sh, p) < 25.1);
    /* not push-back: a 450 4.2.0 without a pattern; a pattern is */
    assert_false(vl_shaper_feedback(sh, p, 450, "4.2.0", "mailbox busy", 12, t0 + 13000));
    assert_true(vl_shaper_feedback(sh, p, 451, "4.3.0", "[TSS04] deferred", 16, t0 + 13000));
    assert_true(vl_shaper_rate(sh, p) > 12.4 && vl_shaper_rate(sh, p) < 12.6);
    assert_true(vl_shaper_feedback(sh, p, 421, "4.7.0", "x", 1, t0 + 24000));
    assert_true(vl_shaper_rate(sh, p) > 9.9 && vl_shaper_rate(sh, p) < 10.1);   /* the floor */
    /* quiet for an interval: +5, plus half the gap to where the last cut began
     * (12.5, fast recovery): 10 + 5 + 1.25; then +5 per interval, up to 50 */
    drain(sh, p, t0 + 29100, t0 + 29101);
    assert_true(vl_shaper_rate(sh, p) > 16.2 && vl_shaper_rate(sh, p) < 16.3);
    for (uint64_t t = t0 + 30000; t < t0 + 100000; t += 1000)
        vl_shaper_msg_take(sh, p, -1, t);
    assert_true(vl_shaper_rate(sh, p) > 49.9 && vl_shaper_rate(sh, p) < 50.1);
    vl_shaper_destroy(sh);
    /* every change is a delivery-log line with old and new */
    FILE *f = fopen(dlog, "r");
    assert_non_null(f);
    char line[600];
    unsigned cuts = 0, raises = 0;
    while (fgets(line, sizeof line, f)) {
        assert_non_null(strstr(line, "\"event\":\"rate\",\"policy\":\"g\""));
        if (strstr(line, "\"old\":50.000,\"new\":25.000"))
            cuts++;
        if (strstr(line, "\"why\":\"no push-back for an interval\""))
            raises++;
    }
    fclose(f);
    close(fd);
    unlink(dlog);
    assert_int_equal(cuts, 1);
    assert_int_equal(raises, 8);                /* 10 -> 16.25 -> 50 by 5 */
    vl_config_fini(&cfg);
}

/* Live reload: slots by name, AIMD carried over, new limits in force, a
 * removed policy matches nothing but its open connections still release, a
 * new one gets a new slot; the change summary names each. */
static void test_update(void **state)
{
    (void)state;
    assert_int_equal(load("shaping = {\n"
                          " a = { domains = \"a.test\"; msgs-per-sec = 50.0;\n"
                          "       adaptive = { decrease = 0.5; min = 1.0; }; };\n"
                          " b = { domains = \"b.test\"; msgs-per-sec = 10.0; conns-per-ip = 2; };\n"
                          " c = { domains = \"c.test\"; msgs-per-sec = 10.0;\n"
                          "       adaptive = true; }; };\n"), 0);
    struct vl_config next;
    assert_int_equal(load_into(&next, "shaping = {\n"
                               " n = { domains = \"n.test\"; msgs-per-sec = 7.0; };\n"
                               " c = { domains = \"c.test\"; msgs-per-sec = 30.0;\n"
                               "       adaptive = true; };\n"
                               " a = { domains = \"a.test\"; msgs-per-sec = 40.0;\n"
                               "       adaptive = { decrease = 0.5; min = 1.0; }; }; };\n"), 0);
    struct vl_shaper *sh;
    assert_int_equal(vl_shaper_create(&sh, cfg.shaping, -1), 0);
    int a = vl_shaper_policy(sh, "a.test", NULL), b = vl_shaper_policy(sh, "b.test", NULL);
    int c = vl_shaper_policy(sh, "c.test", NULL);
    assert_true(a == 0 && b == 1 && c == 2);
    uint64_t t0 = 10ull * 86400 * 1000 * 365;
    assert_true(vl_shaper_feedback(sh, a, 421, "4.7.0", "slow down", 9, t0));
    assert_true(vl_shaper_rate(sh, a) > 24.9 && vl_shaper_rate(sh, a) < 25.1);
    assert_int_equal(vl_shaper_conn_acquire(sh, b, -1, t0), 0);      /* open across the swap */
    struct vl_shaper_tab *old = NULL;
    char out[600];
    assert_int_equal(vl_shaper_update(sh, next.shaping, &old, out, sizeof out), 0);
    assert_non_null(old);
    vl_shaper_tab_free(old);
    /* same names, same slots, whatever the order in the file */
    assert_int_equal(vl_shaper_policy(sh, "a.test", NULL), a);
    assert_int_equal(vl_shaper_policy(sh, "c.test", NULL), c);
    assert_int_equal(vl_shaper_policy(sh, "b.test", NULL), -1);      /* removed */
    int n = vl_shaper_policy(sh, "n.test", NULL);
    assert_int_equal(n, 3);                                         /* a new slot */
    /* a's cut carries over (25 < the new 40); c was at its limit: takes the new one */
    assert_true(vl_shaper_rate(sh, a) > 24.9 && vl_shaper_rate(sh, a) < 25.1);
    assert_true(vl_shaper_rate(sh, c) > 29.9 && vl_shaper_rate(sh, c) < 30.1);
    assert_true(vl_shaper_rate(sh, n) > 6.9 && vl_shaper_rate(sh, n) < 7.1);
    assert_true(vl_shaper_conf(sh, a)->msgs_per_s > 39.9);
    assert_string_equal(vl_shaper_conf(sh, b)->name, "b");          /* still readable */
    vl_shaper_conn_release(sh, b, -1);                              /* no assertion */
    assert_non_null(strstr(out, "policy a: msgs-per-sec 50->40"));
    assert_non_null(strstr(out, "policy c: msgs-per-sec 10->30"));
    assert_non_null(strstr(out, "policy n: added"));
    assert_non_null(strstr(out, "policy b: removed"));
    /* and back: b returns to its old slot */
    assert_int_equal(vl_shaper_update(sh, cfg.shaping, &old, out, sizeof out), 0);
    vl_shaper_tab_free(old);
    assert_int_equal(vl_shaper_policy(sh, "b.test", NULL), b);
    assert_int_equal(vl_shaper_policy(sh, "n.test", NULL), -1);
    assert_true(vl_shaper_rate(sh, a) > 24.9 && vl_shaper_rate(sh, a) < 25.1);
    vl_shaper_destroy(sh);
    vl_config_fini(&next);
    vl_config_fini(&cfg);
}

/* Fair share: two domains asking for one policy's tokens; the one that asks
 * all the time is held back once it leads by the quantum, and the other one's
 * tokens are there for it; a domain that stopped asking half a second ago no
 * longer holds anyone back; one that comes back starts level. */
static void test_fair_flows(void **state)
{
    (void)state;
    assert_int_equal(load("shaping = { f = { mx = \"f.test\"; msgs-per-sec = 100.0; }; };\n"),
                     0);
    struct vl_shaper *sh;
    assert_int_equal(vl_shaper_create(&sh, cfg.shaping, -1), 0);
    int p = vl_shaper_policy(sh, NULL, "mx.f.test");
    assert_int_equal(p, 0);
    uint64_t t = 10ull * 86400 * 1000 * 365, big = 11, small = 22;
    vl_shaper_msg_take(sh, p, -1, t);                 /* the bucket's first refill */
    t += 1000;                                        /* a full burst: 20 tokens */
    vl_shaper_flow_touch(sh, p, small, t);            /* small waits (queued) */
    assert_int_equal(vl_shaper_msg_take_flow(sh, p, -1, big, t), 0);
    assert_int_equal(vl_shaper_msg_take_flow(sh, p, -1, big, t), 0);
    uint64_t w = vl_shaper_msg_take_flow(sh, p, -1, big, t);   /* 2 ahead: wait */
    assert_true(w >= 1 && w <= 10);
    assert_int_equal(vl_shaper_msg_take_flow(sh, p, -1, small, t), 0);
    assert_int_equal(vl_shaper_msg_take_flow(sh, p, -1, big, t), 0);   /* 2 vs 1: ok */
    assert_true(vl_shaper_msg_take_flow(sh, p, -1, big, t) > 0);     /* 3 vs 1 */
    /* small stops asking: after half a second big alone takes every token */
    t += 600;
    unsigned n = 0;
    while (vl_shaper_msg_take_flow(sh, p, -1, big, t) == 0)
        n++;
    assert_int_equal(n, 20);
    /* small comes back level with big: no debt, no credit */
    t += 1000;
    vl_shaper_flow_touch(sh, p, small, t);
    assert_int_equal(vl_shaper_msg_take_flow(sh, p, -1, big, t), 0);
    assert_int_equal(vl_shaper_msg_take_flow(sh, p, -1, big, t), 0);
    assert_true(vl_shaper_msg_take_flow(sh, p, -1, big, t) > 0);
    assert_int_equal(vl_shaper_msg_take_flow(sh, p, -1, small, t), 0);
    vl_shaper_destroy(sh);
    vl_config_fini(&cfg);
}

static void test_suspend_and_conns(void **state)
{
    (void)state;
    assert_int_equal(load("shaping = { y = { domains = \"y.test\"; msgs-per-sec = 10.0;\n"
                          "  conns-per-ip = 4; conns-per-min = 60.0;\n"
                          "  adaptive = { decrease = 0.5; hold-down = \"1s\";\n"
                          "    suspend = ( { pattern = \"TSS09\"; for = \"1h\"; } ); }; }; };\n"),
                     0);
    struct vl_shaper *sh;
    assert_int_equal(vl_shaper_create(&sh, cfg.shaping, -1), 0);
    int p = vl_shaper_policy(sh, "Y.test", NULL);
    assert_int_equal(p, 0);
    uint64_t t = 10ull * 86400 * 1000 * 365;
    /* conns-per-min 60: a burst of 6, then one a second */
    unsigned opened = 0;
    while (vl_shaper_conn_acquire(sh, p, -1, t) == 0)
        opened++;
    assert_int_equal(opened, 4);                /* stopped by conns-per-ip first */
    assert_int_equal(vl_shaper_conn_acquire(sh, p, -1, t), VL_SHAPER_WAIT_CLOSE);
    assert_false(vl_shaper_conn_surplus(sh, p, -1));
    /* a cut halves the rate: connections above ceil(4 x 0.5 x 1.25 headroom) = 3
     * are surplus, no new one opens */
    assert_true(vl_shaper_feedback(sh, p, 421, "4.7.0", "x", 1, t));
    assert_true(vl_shaper_conn_surplus(sh, p, -1));
    vl_shaper_conn_release(sh, p, -1);
    assert_false(vl_shaper_conn_surplus(sh, p, -1));       /* 3 of 4 at half the rate */
    assert_int_equal(vl_shaper_conn_acquire(sh, p, -1, t + 5000), VL_SHAPER_WAIT_CLOSE);
    vl_shaper_conn_release(sh, p, -1);
    uint64_t w = vl_shaper_conn_acquire(sh, p, -1, t + 5000);
    assert_int_equal(w, 0);                     /* tokens refilled (1/s) and room again */
    /* a suspend pattern: nothing for an hour */
    assert_true(vl_shaper_feedback(sh, p, 550, "5.7.1", "blocked [TSS09]", 15, t + 6000));
    w = vl_shaper_msg_take(sh, p, -1, t + 7000);
    assert_true(w > 3590000 && w <= 3600000);
    assert_true(vl_shaper_conn_acquire(sh, p, -1, t + 7000) > 3590000);
    assert_int_equal(vl_shaper_msg_take(sh, p, -1, t + 6000 + 3600000 + 1000), 0);
    vl_shaper_conn_release(sh, p, -1);
    vl_shaper_conn_release(sh, p, -1);
    vl_shaper_destroy(sh);
    vl_config_fini(&cfg);
}

static void test_egress(void **state)
{
    (void)state;
    assert_int_equal(load("egress = { addresses = (\n"
                          "  { ip = \"127.0.0.10\"; ehlo = \"a.test\"; pool = \"p\"; weight = 3; },\n"
                          "  { ip = \"127.0.0.11\"; ehlo = \"b.test\"; pool = \"p\"; weight = 1; },\n"
                          "  { ip = \"127.0.0.12\"; ehlo = \"c.test\"; pool = \"q\";\n"
                          "    warmup = [ 2, 5 ]; } ); default-pool = \"p\"; };\n"
                          "shaping = { w = { domains = \"w.test\"; pool = \"q\"; }; };\n"), 0);
    struct vl_shaper *sh;
    assert_int_equal(vl_shaper_create(&sh, cfg.shaping, -1), 0);
    struct timespec ts;                         /* day 1 of the warm-up plans: now */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t t = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    unsigned picks[3] = { 0 };
    for (int i = 0; i < 400; i++) {             /* no policy: the default pool, 3:1 */
        int e = vl_shaper_egress_pick(sh, -1, t);
        assert_true(e == 0 || e == 1);
        picks[e]++;
    }
    assert_int_equal(picks[0], 300);
    assert_int_equal(picks[1], 100);
    int p = vl_shaper_policy(sh, "w.test", NULL);
    assert_int_equal(vl_shaper_egress_pick(sh, p, t), 2);      /* its pool */
    /* warm-up: day 1 allows 2 messages from 127.0.0.12 */
    assert_int_equal(vl_shaper_msg_take(sh, p, 2, t), 0);
    assert_int_equal(vl_shaper_msg_take(sh, p, 2, t), 0);
    assert_true(vl_shaper_msg_take(sh, p, 2, t) > 0);
    assert_int_equal(vl_shaper_msg_take(sh, p, 0, t), 0);     /* another address: no plan */
    /* day 2 (and after): the last step, 5 a day */
    uint64_t d2 = t + 86400ull * 1000;
    for (int i = 0; i < 5; i++)
        assert_int_equal(vl_shaper_msg_take(sh, p, 2, d2), 0);
    assert_true(vl_shaper_msg_take(sh, p, 2, d2) > 0);
    vl_shaper_destroy(sh);
    vl_config_fini(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_and_aimd),
        cmocka_unit_test(test_suspend_and_conns),
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_fair_flows),
        cmocka_unit_test(test_egress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
