/*
 * queue_lock_test.c - issue 9 item 3 (queue side): one engine per data
 * directory. VL_QUEUE_ENGINE and VL_QUEUE_ADMIN take DATA/lock (flock) and
 * record the holder's PID; a second taker gets VL_E_LOCKED and can name the
 * PID; plain opens (reads, enqueue) are never refused; the kernel releases
 * the lock when its holder dies (kill -9).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "volley/error.h"
#include "volley/queue.h"

#define T0 1700000000000ull

struct fx { char root[64]; char dir[80]; };

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/vlq-lock-XXXXXX");
    if (!f || !mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof f->dir, "%s/q", f->root);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void enq_one(struct vl_queue *q)
{
    const char *r[] = { "a@lock.org" };
    struct vl_queue_new_msg m = { "s@x.org", 7, "B\r\n", 3, 0, r, NULL, 1 };
    assert_int_equal(vl_queue_enqueue(q, &m, T0, NULL), 0);
}

static void test_item3_second_engine_refused(void **state)
{
    struct fx *f = *state;
    struct vl_queue *eng, *other, *ro;
    char role[16];
    assert_int_equal(vl_queue_lock_holder(f->dir, role, sizeof role), VL_E_NOTFOUND);
    assert_int_equal(vl_queue_open(f->dir, 2, VL_QUEUE_CREATE | VL_QUEUE_ENGINE, &eng), 0);
    assert_int_equal(vl_queue_lock_holder(f->dir, role, sizeof role), (int)getpid());
    assert_string_equal(role, "engine");
    /* A second engine and an operator's change are refused, and say why. */
    assert_int_equal(vl_queue_open(f->dir, 0, VL_QUEUE_ENGINE, &other), VL_E_LOCKED);
    assert_null(other);
    assert_int_equal(vl_queue_open(f->dir, 0, VL_QUEUE_ADMIN, &other), VL_E_LOCKED);
    assert_string_equal(vl_strerror(VL_E_LOCKED),
                        "data directory in use by another volley process");
    /* Reads and enqueues go on beside the engine. */
    assert_int_equal(vl_queue_open(f->dir, 0, 0, &ro), 0);
    enq_one(ro);
    struct vl_queue_stats st;
    assert_int_equal(vl_queue_stats(ro, -1, &st), 0);
    assert_int_equal(st.by_state[VL_RCPT_READY], 1);
    vl_queue_close(ro);
    /* Closed: the lock is free; an admin holds it now and keeps engines out. */
    vl_queue_close(eng);
    assert_int_equal(vl_queue_open(f->dir, 0, VL_QUEUE_ADMIN, &other), 0);
    assert_int_equal(vl_queue_lock_holder(f->dir, role, sizeof role), (int)getpid());
    assert_string_equal(role, "admin");
    assert_int_equal(vl_queue_open(f->dir, 0, VL_QUEUE_ENGINE, &eng), VL_E_LOCKED);
    assert_int_equal(vl_queue_purge(other, 0), 1);
    vl_queue_close(other);
    assert_int_equal(vl_queue_open(f->dir, 0, VL_QUEUE_ENGINE, &eng), 0);
    vl_queue_close(eng);
}

/* An engine killed with SIGKILL leaves no lock behind (flock dies with it). */
static void test_item3_lock_dies_with_engine(void **state)
{
    struct fx *f = *state;
    struct vl_queue *q;
    int ready[2];
    char role[16], c = 0;
    assert_int_equal(vl_queue_open(f->dir, 2, VL_QUEUE_CREATE, &q), 0);
    vl_queue_close(q);
    assert_int_equal(pipe(ready), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        int rc = vl_queue_open(f->dir, 0, VL_QUEUE_ENGINE, &q);
        c = rc == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1)
            _exit(1);
        pause();                                      /* until killed */
        _exit(0);
    }
    close(ready[1]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    assert_int_equal(c, 'y');
    assert_int_equal(vl_queue_open(f->dir, 0, VL_QUEUE_ENGINE, &q), VL_E_LOCKED);
    assert_int_equal(vl_queue_lock_holder(f->dir, role, sizeof role), (int)pid);
    assert_string_equal(role, "engine");
    assert_int_equal(kill(pid, SIGKILL), 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_int_equal(vl_queue_open(f->dir, 0, VL_QUEUE_ENGINE, &q), 0);
    assert_int_equal(vl_queue_lock_holder(f->dir, role, sizeof role), (int)getpid());
    vl_queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_item3_second_engine_refused, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_item3_lock_dies_with_engine, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
