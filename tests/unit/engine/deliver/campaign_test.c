/* campaign_test.c - campaign_strip (campaign.c): X-Volley-Campaign and
 * X-Volley-Tenant lines (folded ones too, any case) leave the batch copy of
 * the body, the first id of each is kept (campaign_of, tenant_of), header
 * fields past the blank line are body and stay. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "campaign.h"

static void strip(const char *in, struct vl_queue_msg *m, char *buf, size_t cap)
{
    size_t n = strlen(in);
    assert_true(n < cap);
    memcpy(buf, in, n);
    memset(m, 0, sizeof *m);
    m->body = (const uint8_t *)buf;
    m->body_len = n;
    campaign_strip(m);
}

static void test_both(void **state)
{
    (void)state;
    char buf[512];
    struct vl_queue_msg m;
    strip("Subject: s\r\nx-volley-tenant: Acme-1 rest\r\nX-Volley-Campaign:\r\n spring:1\r\n"
          "X-Volley-Tenant: second\r\nTo: a@b.test\r\n\r\nX-Volley-Tenant: body\r\n",
          &m, buf, sizeof buf);
    assert_int_equal(m.body_len, strlen("Subject: s\r\nTo: a@b.test\r\n\r\n"
                                        "X-Volley-Tenant: body\r\n"));
    assert_memory_equal(m.body, "Subject: s\r\nTo: a@b.test\r\n\r\nX-Volley-Tenant: body\r\n",
                        m.body_len);
    assert_string_equal(campaign_of(&m), "spring:1");
    assert_string_equal(tenant_of(&m), "Acme-1");
}

static void test_one_or_none(void **state)
{
    (void)state;
    char buf[256];
    struct vl_queue_msg m;
    strip("X-Volley-Tenant: t/1\r\n\r\nbody\r\n", &m, buf, sizeof buf);
    assert_string_equal(tenant_of(&m), "t_1");          /* outside the set: '_' */
    assert_string_equal(campaign_of(&m), "");
    assert_memory_equal(m.body, "\r\nbody\r\n", m.body_len);
    strip("X-Volley-Campaign: c\r\n\r\nbody\r\n", &m, buf, sizeof buf);
    assert_string_equal(campaign_of(&m), "c");
    assert_string_equal(tenant_of(&m), "");
    strip("Subject: none\r\n\r\nbody\r\n", &m, buf, sizeof buf);
    assert_string_equal(campaign_of(&m), "");
    assert_string_equal(tenant_of(&m), "");
    assert_int_equal(m.body_len, strlen("Subject: none\r\n\r\nbody\r\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both),
        cmocka_unit_test(test_one_or_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
