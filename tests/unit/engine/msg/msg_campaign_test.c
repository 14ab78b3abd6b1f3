/* msg_campaign_test.c - a message's campaign id (msg_campaign.h): the first
 * word of the first X-Volley-Campaign field, folds included, case-blind name,
 * bad bytes become '_', capped at MSG_CAMPAIGN_ID_MAX, never from the body. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "msg_campaign.h"

static void test_find(void **state)
{
    (void)state;
    static const struct { const char *label, *msg, *want; } cases[] = {
        { "plain", "Subject: a\r\nX-Volley-Campaign: spring-7\r\n\r\nb\r\n", "spring-7" },
        { "first word", "X-Volley-Campaign:  a.b:c_d more\r\n\r\n", "a.b:c_d" },
        { "case", "x-volley-campaign: Z9\r\n\r\n", "Z9" },
        { "folded", "X-Volley-Campaign:\r\n\tfolded-id\r\nS: x\r\n\r\n", "folded-id" },
        { "bad bytes", "X-Volley-Campaign: a/b*c\r\n\r\n", "a_b_c" },
        { "first field", "X-Volley-Campaign: one\r\nX-Volley-Campaign: two\r\n\r\n", "one" },
        { "none", "Subject: a\r\n\r\nX-Volley-Campaign: body\r\n", "" },
        { "empty", "X-Volley-Campaign:\r\n\r\n", "" },
        { "LF only", "Subject: a\nX-Volley-Campaign: lf\n\nb\n", "lf" },
        { "other field", "X-Volley-Campaigns: no\r\n\r\n", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char id[MSG_CAMPAIGN_ID_MAX + 1];
        size_t n = msg_campaign_find((const uint8_t *)cases[i].msg, strlen(cases[i].msg), id);
        if (strcmp(id, cases[i].want) != 0 || n != strlen(cases[i].want))
            fail_msg("%s: got '%s' (%zu), want '%s'", cases[i].label, id, n, cases[i].want);
    }
}

static void test_cap(void **state)
{
    (void)state;
    char msg[200], id[MSG_CAMPAIGN_ID_MAX + 1];
    memcpy(msg, "X-Volley-Campaign: ", 19);
    memset(msg + 19, 'a', 100);
    memcpy(msg + 119, "\r\n\r\n", 5);
    assert_int_equal(msg_campaign_find((const uint8_t *)msg, strlen(msg), id),
                     MSG_CAMPAIGN_ID_MAX);
    assert_int_equal(strlen(id), MSG_CAMPAIGN_ID_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_find), cmocka_unit_test(test_cap) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
