/*
 * sink_conf_test.c - `volley sink` configuration (engine/sink/sink_conf.c):
 * fault rule parsing (good and bad specs, table-driven), listener addresses,
 * durations, and the pure predicates sink_rule_matches / sink_rule_fires.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "sink.h"
#include "volley/error.h"

static const struct {
    const char *opt, *spec;
    enum sink_action action;
    enum sink_stage stage;
    enum sink_when when;
    uint32_t n;
    uint16_t code;
    uint32_t delay_ms;
    const char *match, *text;
} good_rules[] = {
    { "--fault", "rcpt=550:every=3", SINK_ACT_REPLY, SINK_STAGE_RCPT, SINK_WHEN_EVERY, 3, 550, 0, "", "" },
    { "--fault", "banner=421:prob=0.5", SINK_ACT_REPLY, SINK_STAGE_BANNER, SINK_WHEN_PROB, 0, 421, 0, "", "" },
    { "--fault", "dot=451:nth=2", SINK_ACT_REPLY, SINK_STAGE_DOT, SINK_WHEN_NTH, 2, 451, 0, "", "" },
    { "--fault", "RCPT=550:match=bad", SINK_ACT_REPLY, SINK_STAGE_RCPT, SINK_WHEN_ALWAYS, 0, 550, 0, "bad", "" },
    { "--fault", "helo=554", SINK_ACT_REPLY, SINK_STAGE_EHLO, SINK_WHEN_ALWAYS, 0, 554, 0, "", "" },
    { "--fault", "mail=452:match=x:text=4.3.1 full: try: later", SINK_ACT_REPLY, SINK_STAGE_MAIL,
      SINK_WHEN_ALWAYS, 0, 452, 0, "x", "4.3.1 full: try: later" },
    { "--delay", "mail=200ms", SINK_ACT_DELAY, SINK_STAGE_MAIL, SINK_WHEN_ALWAYS, 0, 0, 200, "", "" },
    { "--delay", "dot=2s:every=2", SINK_ACT_DELAY, SINK_STAGE_DOT, SINK_WHEN_EVERY, 2, 0, 2000, "", "" },
    { "--delay", "data=15", SINK_ACT_DELAY, SINK_STAGE_DATA, SINK_WHEN_ALWAYS, 0, 0, 15, "", "" },
    { "--disconnect", "mid-data:prob=0.1", SINK_ACT_DISCONNECT, SINK_STAGE_MID_DATA, SINK_WHEN_PROB, 0, 0, 0, "", "" },
    { "--disconnect", "rcpt:nth=4:match=z", SINK_ACT_DISCONNECT, SINK_STAGE_RCPT, SINK_WHEN_NTH, 4, 0, 0, "z", "" },
};

static void test_good_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_rules / sizeof good_rules[0]; i++) {
        struct sink_conf c;
        char err[256] = "";
        sink_conf_defaults(&c);
        int rc = sink_conf_add_rule(&c, good_rules[i].opt, good_rules[i].spec, err, sizeof err);
        if (rc != 0)
            fail_msg("%s %s: %s", good_rules[i].opt, good_rules[i].spec, err);
        assert_int_equal(c.rule_count, 1);
        const struct sink_rule *r = &c.rules[0];
        assert_int_equal(r->action, good_rules[i].action);
        assert_int_equal(r->stage, good_rules[i].stage);
        assert_int_equal(r->when, good_rules[i].when);
        assert_int_equal(r->n, good_rules[i].n);
        assert_int_equal(r->code, good_rules[i].code);
        assert_int_equal(r->delay_ms, good_rules[i].delay_ms);
        assert_string_equal(r->match, good_rules[i].match);
        assert_string_equal(r->text, good_rules[i].text);
    }
}

static const struct { const char *opt, *spec, *says; } bad_rules[] = {
    { "--fault", "rcpt", "needs =VALUE" },
    { "--fault", "rcpt=99", "reply code" },
    { "--fault", "rcpt=6000", "reply code" },
    { "--fault", "rcpt=55x", "reply code" },
    { "--fault", "bogus=550", "unknown stage 'bogus'" },
    { "--fault", "mid-data=550", "--disconnect only" },
    { "--fault", "rcpt=550:every=0", "every" },
    { "--fault", "rcpt=550:nth=", "nth" },
    { "--fault", "rcpt=550:prob=2", "prob" },
    { "--fault", "rcpt=550:prob=x", "prob" },
    { "--fault", "dot=550:match=x", "mail and rcpt only" },
    { "--fault", "rcpt=550:colour=red", "unknown modifier 'colour'" },
    { "--fault", "rcpt=550:oops", "bad modifier" },
    { "--delay", "mail=soon", "bad duration" },
    { "--delay", "mail=5m", "bad duration" },
    { "--delay", "mail=200ms:text=x", "unknown modifier 'text'" },
    { "--disconnect", "rcpt=550", "takes no value" },
    { "--disconnect", "after-txns=0", "after-txns" },
    { "--nope", "rcpt=550", "not a fault option" },
};

static void test_bad_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_rules / sizeof bad_rules[0]; i++) {
        struct sink_conf c;
        char err[256] = "";
        sink_conf_defaults(&c);
        assert_int_equal(sink_conf_add_rule(&c, bad_rules[i].opt, bad_rules[i].spec, err,
                                            sizeof err), VL_E_INVALID);
        assert_int_equal(c.rule_count, 0);
        if (!strstr(err, bad_rules[i].says) || !strstr(err, bad_rules[i].opt))
            fail_msg("%s %s: message '%s' lacks '%s'", bad_rules[i].opt, bad_rules[i].spec,
                     err, bad_rules[i].says);
    }
}

static void test_rules_cap_and_after_txns(void **state)
{
    (void)state;
    struct sink_conf c;
    char err[256];
    sink_conf_defaults(&c);
    for (uint32_t i = 0; i < SINK_RULES_MAX; i++)
        assert_int_equal(sink_conf_add_rule(&c, "--fault", "rcpt=450", err, sizeof err), 0);
    assert_int_equal(sink_conf_add_rule(&c, "--fault", "rcpt=450", err, sizeof err), VL_E_INVALID);
    assert_int_equal(sink_conf_add_rule(&c, "--disconnect", "after-txns=5", err, sizeof err), 0);
    assert_int_equal(c.after_txns, 5);
}

static void test_listen(void **state)
{
    (void)state;
    struct sink_conf c;
    char err[256];
    sink_conf_defaults(&c);
    assert_int_equal(sink_conf_add_listen(&c, "127.0.0.2:2525", err, sizeof err), 0);
    assert_int_equal(sink_conf_add_listen(&c, "[::1]:0", err, sizeof err), 0);
    assert_int_equal(c.listen_count, 2);
    const struct sockaddr_in *v4 = (const void *)&c.listen[0];
    assert_int_equal(v4->sin_family, AF_INET);
    assert_int_equal(ntohs(v4->sin_port), 2525);
    assert_int_equal(ntohl(v4->sin_addr.s_addr), 0x7f000002);
    assert_int_equal(c.listen[1].ss_family, AF_INET6);
    static const char *const bad[] = { "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                                       "localhost:25", "[::1]25", "1.2.3:25", ":25" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (sink_conf_add_listen(&c, bad[i], err, sizeof err) != VL_E_INVALID)
            fail_msg("--listen %s accepted", bad[i]);
        assert_non_null(strstr(err, "--listen"));
    }
    assert_int_equal(c.listen_count, 2);
}

static void test_duration(void **state)
{
    (void)state;
    static const struct { const char *s; int rc; uint32_t ms; } cases[] = {
        { "0", 0, 0 }, { "250", 0, 250 }, { "250ms", 0, 250 }, { "3s", 0, 3000 },
        { "", VL_E_INVALID, 0 }, { "-1", VL_E_INVALID, 0 }, { "1h", VL_E_INVALID, 0 },
        { "99999999999s", VL_E_INVALID, 0 }, { "s", VL_E_INVALID, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t ms = 12345;
        assert_int_equal(sink_duration_parse(cases[i].s, &ms), cases[i].rc);
        if (cases[i].rc == 0)
            assert_int_equal(ms, cases[i].ms);
    }
}

/* --tls-cert/--tls-key: both or neither, files loaded once; good pairs are
 * covered by tls_test (in-process cert) and deliver_tls_test (openssl CLI). */
static void test_tls_options(void **state)
{
    (void)state;
    static const struct { const char *label, *cert, *key, *named; } bad[] = {
        { "cert without key", "/nonexistent/c.pem", NULL, "--tls-key" },
        { "key without cert", NULL, "/nonexistent/k.pem", "--tls-cert" },
        { "missing files", "/nonexistent/c.pem", "/nonexistent/k.pem", "/nonexistent/c.pem" },
    };
    static struct sink_conf c;
    char err[600];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sink_conf_defaults(&c);
        err[0] = 0;
        assert_int_equal(sink_conf_set_tls(&c, bad[i].cert, bad[i].key, err, sizeof err),
                         VL_E_INVALID);
        if (!strstr(err, bad[i].named))
            fail_msg("%s: '%s' does not name %s", bad[i].label, err, bad[i].named);
        assert_false(c.smtp.starttls);
        assert_null(c.tls_cert);
    }
    sink_conf_defaults(&c);
    assert_int_equal(sink_conf_set_tls(&c, NULL, NULL, err, sizeof err), 0);
    assert_false(c.smtp.starttls);
}

static void test_predicates(void **state)
{
    (void)state;
    struct sink_rule r = { .match = "bad", .when = SINK_WHEN_EVERY, .n = 3 };
    assert_true(sink_rule_matches(&r, "bad1@x.org", 10));
    assert_true(sink_rule_matches(&r, "<BADder@x.org>", 14));
    assert_false(sink_rule_matches(&r, "good@x.org", 10));
    assert_false(sink_rule_matches(&r, "ba", 2));
    assert_false(sink_rule_matches(&r, NULL, 0));
    r.match[0] = 0;
    assert_true(sink_rule_matches(&r, NULL, 0));
    static const bool every3[] = { false, false, true, false, false, true };
    for (uint64_t seen = 1; seen <= 6; seen++)
        assert_int_equal(sink_rule_fires(&r, seen, 0.0), every3[seen - 1]);
    r.when = SINK_WHEN_NTH;
    r.n = 2;
    assert_false(sink_rule_fires(&r, 1, 0.0));
    assert_true(sink_rule_fires(&r, 2, 0.0));
    assert_false(sink_rule_fires(&r, 4, 0.0));
    r.when = SINK_WHEN_PROB;
    r.prob = 0.25;
    assert_true(sink_rule_fires(&r, 1, 0.2));
    assert_false(sink_rule_fires(&r, 1, 0.25));
    r.when = SINK_WHEN_ALWAYS;
    assert_true(sink_rule_fires(&r, 99, 0.99));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_rules),
        cmocka_unit_test(test_bad_rules),
        cmocka_unit_test(test_rules_cap_and_after_txns),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_tls_options),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_predicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
