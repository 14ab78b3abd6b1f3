/* queue_enqueue_id_test.c - vl_queue_enqueue_id(): a message queued under the
 * id the caller took first (the intake names it in Received:), on real LMDB
 * files in a mkdtemp dir; a taken id is refused whole (-EEXIST). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volley/error.h"
#include "volley/queue.h"

#include "queue_fx.h"

static const char BODY[] = "Received: from x (unknown [127.0.0.1]) id ID\r\n"
                           "From: a@x.org\r\nSubject: t\r\n\r\nhello\r\n";

static uint64_t ready(struct vl_queue *q)
{
    return fx_stats(q).by_state[VL_RCPT_READY];
}

/* Several shards' recipients: the message is queued under the given id. */
static void test_given_id_is_the_queue_id(void **state)
{
    struct fx *f = *state;
    static const char *const r[] = { "a@one.test", "b@two.test", "c@three.test",
                                     "d@four.test", "e@five.test" };
    struct vl_queue_new_msg m = { "s@x.org", 7, BODY, sizeof BODY - 1, 0, r, NULL, 5 };
    uint64_t id = vl_queue_msg_id_new(f->q, T0);
    assert_true(id != 0);
    assert_int_equal(vl_queue_enqueue_id(f->q, &m, T0, id), 0);
    struct vl_queue_msg_info info;
    size_t n = 0;
    assert_int_equal(vl_queue_show(f->q, id, &info, NULL, 0, &n), 0);
    assert_int_equal(ready(f->q), 5);
    /* the next id is another one */
    assert_true(vl_queue_msg_id_new(f->q, T0) != id);
}

/* A taken id: -EEXIST, and nothing of the second message is queued. */
static void test_taken_id_refused_whole(void **state)
{
    struct fx *f = *state;
    static const char *const r[] = { "a@one.test", "b@two.test", "c@three.test" };
    struct vl_queue_new_msg m = { "s@x.org", 7, BODY, sizeof BODY - 1, 0, r, NULL, 3 };
    uint64_t id = vl_queue_msg_id_new(f->q, T0);
    assert_int_equal(vl_queue_enqueue_id(f->q, &m, T0, id), 0);
    assert_int_equal(vl_queue_enqueue_id(f->q, &m, T0, id), -EEXIST);
    assert_int_equal(ready(f->q), 3);
    struct vl_queue_msg_info list[4];
    assert_int_equal(vl_queue_list(f->q, 0, list, 4), 1);
    assert_true(list[0].id == id);
}

static void test_zero_id_invalid(void **state)
{
    struct fx *f = *state;
    static const char *const r[] = { "a@one.test" };
    struct vl_queue_new_msg m = { "s@x.org", 7, BODY, sizeof BODY - 1, 0, r, NULL, 1 };
    assert_int_equal(vl_queue_enqueue_id(f->q, &m, T0, 0), VL_E_INVALID);
    assert_int_equal(ready(f->q), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_given_id_is_the_queue_id, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_taken_id_refused_whole, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_zero_id_invalid, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
