/*
 * smtp_client_drive.h - shared helpers for the client machine's tests
 * (smtp_client_test.c, smtp_client_random_test.c; included after cmocka.h):
 * feed a string, look for an action, bring a client to READY.
 */
#ifndef VOLLEY_TEST_SMTP_CLIENT_DRIVE_H
#define VOLLEY_TEST_SMTP_CLIENT_DRIVE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "smtp_client.h"

static struct smtp_actions g_acts;

static inline int feed_str(struct smtp_client *c, const char *s)
{
    size_t used = 0, len = strlen(s);
    int rc = smtp_client_on_bytes(c, s, len, &used, &g_acts);
    assert_int_equal(used, len);
    return rc;
}

static inline bool acts_has(enum smtp_action_kind k)
{
    for (uint32_t i = 0; i < g_acts.count; i++)
        if (g_acts.a[i].kind == k)
            return true;
    return false;
}

static inline void to_ready(struct smtp_client *c, const struct smtp_client_conf *conf,
                            const char *ehlo)
{
    assert_int_equal(smtp_client_init(c, conf), 0);
    assert_int_equal(feed_str(c, "220 mx.example ESMTP\r\n"), 1);
    assert_int_equal(feed_str(c, ehlo), 1);
    assert_true(acts_has(SMTP_ACT_READY));
    assert_int_equal(smtp_client_state(c), SMTP_STATE_READY);
}

#endif
