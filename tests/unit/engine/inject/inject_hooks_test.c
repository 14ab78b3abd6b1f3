/* inject_hooks_test.c - the intake's hook chain (inject_hooks.c): the
 * intake's own hooks first (unsub passes without an --unsub config; no DKIM
 * keys: no dkim hook), then cfg->intake_hooks in order; a transform is seen
 * by the hooks after it; a hook that takes, refuses or fails stops the chain
 * with its answer and reply text (a failure with the preset 4.3.0 text). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inject_int.h"
#include "msg.h"
#include "volley/error.h"

struct probe {
    char seen[8][64];             /* the first line each call saw */
    unsigned calls;
};

struct step { struct probe *p; int answer; const char *add; const char *text; };

/* Record the message's first line; prepend @p add (a transform); answer. */
static int hook_fn(void *arg, struct vl_intake_msg *im, char *reply, size_t cap)
{
    struct step *st = arg;
    struct probe *p = st->p;
    if (p->calls < 8) {
        const char *eol = memchr(im->msg, '\r', im->len);
        size_t n = eol ? (size_t)(eol - im->msg) : im->len;
        snprintf(p->seen[p->calls], sizeof p->seen[0], "%.*s", (int)n, im->msg);
    }
    p->calls++;
    if (st->add) {
        size_t an = strlen(st->add);
        uint8_t *d = malloc(an + im->m->len);
        if (!d)
            return -ENOMEM;
        memcpy(d, st->add, an);
        memcpy(d + an, im->m->data, im->m->len);
        free(im->m->data);
        im->m->data = d;
        im->m->len += an;
    }
    if (st->text)
        snprintf(reply, cap, "%s", st->text);
    return st->answer;
}

static const char MSG[] = "Subject: hi\r\n\r\nbody\r\n";

/* Run a chain of @p n steps over a fresh copy of MSG. */
static int run(struct step *steps, unsigned n, struct msg_result *m, char *reply, size_t cap)
{
    static struct vl_config cfg;
    static struct inject in;
    memset(&cfg, 0, sizeof cfg);
    memset(&in, 0, sizeof in);
    for (unsigned i = 0; i < n; i++)
        cfg.intake_hooks[cfg.intake_hook_n++] = (struct vl_intake_hook){ "t", hook_fn, &steps[i] };
    in.cfg = &cfg;
    inj_hooks_init(&in);
    assert_int_equal(in.hook_n, 1 + n);               /* unsub, then ours */
    assert_string_equal(in.hooks[0].name, "unsub");
    *m = (struct msg_result){ .data = malloc(sizeof MSG - 1), .len = sizeof MSG - 1 };
    assert_non_null(m->data);
    memcpy(m->data, MSG, m->len);
    const char *rcpts[] = { "a@example.org" };
    struct vl_intake_msg im = { .from = "s@example.org", .rcpts = rcpts, .rcpt_n = 1, .m = m,
                                .now_ms = 1700000000000ull };
    return inj_hooks_run(&in, &im, reply, cap);
}

static void test_order_and_transform(void **state)
{
    (void)state;
    struct probe p = { 0 };
    struct step s[] = { { &p, VL_INTAKE_PASS, "X-One: 1\r\n", NULL },
                        { &p, VL_INTAKE_PASS, "X-Two: 2\r\n", NULL },
                        { &p, VL_INTAKE_PASS, NULL, NULL } };
    struct msg_result m;
    char reply[128];
    assert_int_equal(run(s, 3, &m, reply, sizeof reply), VL_INTAKE_PASS);
    assert_int_equal(p.calls, 3);
    assert_string_equal(p.seen[0], "Subject: hi");
    assert_string_equal(p.seen[1], "X-One: 1");          /* the first hook's transform */
    assert_string_equal(p.seen[2], "X-Two: 2");
    static const char want[] = "X-Two: 2\r\nX-One: 1\r\nSubject: hi\r\n\r\nbody\r\n";
    assert_int_equal(m.len, sizeof want - 1);
    assert_memory_equal(m.data, want, m.len);
    msg_result_fini(&m);
}

static void test_stops(void **state)
{
    (void)state;
    static const struct { int answer; const char *text; const char *want; } cases[] = {
        { VL_INTAKE_TAKEN, "2.0.0 Taken", "2.0.0 Taken" },
        { VL_E_INVALID, "5.6.0 Refused", "5.6.0 Refused" },
        { -EIO, NULL, "4.3.0 Temporary failure, try again later" },   /* the preset text */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct probe p = { 0 };
        struct step s[] = { { &p, VL_INTAKE_PASS, NULL, NULL },
                            { &p, cases[i].answer, NULL, cases[i].text },
                            { &p, VL_INTAKE_PASS, NULL, NULL } };
        struct msg_result m;
        char reply[128] = "";
        assert_int_equal(run(s, 3, &m, reply, sizeof reply), cases[i].answer);
        assert_int_equal(p.calls, 2);                    /* the third never ran */
        assert_string_equal(reply, cases[i].want);
        msg_result_fini(&m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_transform),
        cmocka_unit_test(test_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
