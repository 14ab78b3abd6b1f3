/* sink_model_test.c - the provider model of `volley sink --model`: token bucket
 * arithmetic at given times, the connection cap and the block per source
 * address, addresses kept apart, and the model file's errors with their lines. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sink_model.h"

static struct sockaddr_in addr(const char *ip)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(1234) };
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
        fail_msg("bad ip %s", ip);
    return a;
}

static void test_bucket(void **state)
{
    (void)state;
    struct sink_bucket b = { .tokens = 2, .at_ms = 1000 };
    assert_true(sink_bucket_take(&b, 10.0, 2.0, 1000));
    assert_true(sink_bucket_take(&b, 10.0, 2.0, 1000));
    assert_false(sink_bucket_take(&b, 10.0, 2.0, 1000));     /* empty */
    assert_false(sink_bucket_take(&b, 10.0, 2.0, 1050));     /* 0.5 token */
    assert_true(sink_bucket_take(&b, 10.0, 2.0, 1100));      /* 1 token after 100 ms */
    assert_true(sink_bucket_take(&b, 10.0, 2.0, 60000));     /* a long pause: capped at burst */
    assert_true(sink_bucket_take(&b, 10.0, 2.0, 60000));
    assert_false(sink_bucket_take(&b, 10.0, 2.0, 60000));
    assert_false(sink_bucket_take(&b, 10.0, 2.0, 59000));    /* time going back adds nothing */
    /* over 10 s at 10/s from empty: 100 messages, not more */
    unsigned n = 0;
    for (uint64_t t = 60000; t <= 70000; t += 7)
        n += sink_bucket_take(&b, 10.0, 2.0, t);
    assert_true(n >= 99 && n <= 101);
}

static void test_conns_and_msgs_per_address(void **state)
{
    (void)state;
    struct sink_model_conf c = { .msgs_per_s = 1.0, .burst = 2.0, .conns_max = 2,
                                 .reply_code = 421 };
    snprintf(c.reply_text, sizeof c.reply_text, "4.7.0 slow down");
    struct sink_model *m;
    assert_int_equal(sink_model_create(&m, &c), 0);
    struct sockaddr_in a = addr("127.0.0.2"), b = addr("127.0.0.3");
    int sa1, sa2, sa3, sb;
    assert_true(sink_model_conn_open(m, (struct sockaddr *)&a, 0, &sa1));
    assert_true(sink_model_conn_open(m, (struct sockaddr *)&a, 0, &sa2));
    assert_false(sink_model_conn_open(m, (struct sockaddr *)&a, 0, &sa3));   /* 3rd: over C */
    assert_int_equal(sa1, sa2);
    assert_int_equal(sa1, sa3);
    assert_true(sink_model_conn_open(m, (struct sockaddr *)&b, 0, &sb));     /* own count */
    assert_int_not_equal(sa1, sb);
    sink_model_conn_close(m, sa2);
    assert_true(sink_model_conn_open(m, (struct sockaddr *)&a, 0, &sa3));    /* room again */
    /* messages: burst 2, then 1/s, per address */
    assert_true(sink_model_msg(m, sa1, 0));
    assert_true(sink_model_msg(m, sa1, 0));
    assert_false(sink_model_msg(m, sa1, 10));
    assert_true(sink_model_msg(m, sb, 10));                                 /* b's own bucket */
    assert_true(sink_model_msg(m, sa1, 1010));
    const char *text;
    assert_int_equal(sink_model_reply(m, &text), 421);
    assert_string_equal(text, "4.7.0 slow down");
    sink_model_destroy(m);
}

static void test_block_after_abuse(void **state)
{
    (void)state;
    struct sink_model_conf c = { .msgs_per_s = 1.0, .burst = 1.0, .reply_code = 421,
                                 .abuse_max = 3, .block_ms = 5000 };
    struct sink_model *m;
    assert_int_equal(sink_model_create(&m, &c), 0);
    struct sockaddr_in a = addr("127.0.0.2");
    int s;
    assert_true(sink_model_conn_open(m, (struct sockaddr *)&a, 0, &s));
    assert_true(sink_model_msg(m, s, 0));
    assert_false(sink_model_msg(m, s, 1));      /* excess 1 */
    assert_false(sink_model_msg(m, s, 2));      /* 2 */
    assert_false(sink_model_msg(m, s, 3));      /* 3: blocked until 5003 */
    int s2;
    assert_false(sink_model_conn_open(m, (struct sockaddr *)&a, 2000, &s2));  /* blocked */
    assert_false(sink_model_msg(m, s, 4000));   /* tokens refilled, but still blocked */
    assert_true(sink_model_msg(m, s, 5004));    /* block over */
    assert_true(sink_model_conn_open(m, (struct sockaddr *)&a, 5004, &s2));
    sink_model_destroy(m);
}

static void test_file(void **state)
{
    (void)state;
    char path[] = "/tmp/vl_sink_model_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *good = "msgs-per-sec = 20.5;\nconnections = 3;\nreply = \"451 4.7.1 later\";\n"
                       "abuse = 10;\nblock = \"2m\";\n";
    assert_int_equal(write(fd, good, strlen(good)), (ssize_t)strlen(good));
    close(fd);
    struct sink_model_conf c;
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    assert_int_equal(sink_model_conf_load(&c, path, devnull), 0);
    assert_true(c.msgs_per_s > 20.4 && c.msgs_per_s < 20.6);
    assert_true(c.burst > 20.4 && c.burst < 20.6);        /* default: the rate */
    assert_int_equal(c.conns_max, 3);
    assert_int_equal(c.reply_code, 451);
    assert_string_equal(c.reply_text, "4.7.1 later");
    assert_int_equal(c.block_ms, 120000);
    const char *bad = "msgs-per-sec = -1;\nconections = 3;\nreply = \"250 ok\";\nabuse = 2;\n";
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(bad, f);
    fclose(f);
    char *errs = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&errs, &len);
    assert_int_equal(sink_model_conf_load(&c, path, m), 4);
    fclose(m);
    assert_non_null(strstr(errs, ":1: msgs-per-sec: bad value"));
    assert_non_null(strstr(errs, ":2: unknown key 'conections'"));
    assert_non_null(strstr(errs, ":3: reply: bad value"));
    assert_non_null(strstr(errs, "abuse needs block"));
    free(errs);
    fclose(devnull);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_conns_and_msgs_per_address),
        cmocka_unit_test(test_block_after_abuse),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
