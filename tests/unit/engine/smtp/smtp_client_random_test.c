/* smtp_client_random_test.c - fate accounting of the client machine against
 * seeded random servers: whatever the replies, a lost connection or a
 * timeout at any point, every recipient gets exactly one fate, and the fate
 * the model predicts (pipelined and lockstep). Split from smtp_client_test.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volley/error.h"
#include "smtp_client.h"
#include "smtp_client_drive.h"
#include "smtp_data.h"

/* ---- random servers: every recipient gets exactly one, the right fate --- */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

struct sim {
    uint64_t rng;
    bool in_data;
    unsigned closed_by_421;
    uint16_t mail, data, dot, rcpt[VL_SMTP_RCPTS_PER_TXN_MAX];
    unsigned rcpts_seen;
    char reply[64 * 1024];
    size_t reply_len;
};

static uint16_t sim_pick(struct sim *s, const uint16_t *codes, size_t n)
{
    return codes[rnd(&s->rng) % n];
}

static void sim_reply(struct sim *s, uint16_t code)
{
    if (s->closed_by_421)
        return;
    s->reply_len += (size_t)snprintf(s->reply + s->reply_len, sizeof s->reply - s->reply_len,
                                     "%u %s\r\n", code, code == 354 ? "go" : "x.y text");
    if (code == 421)
        s->closed_by_421 = 1;
}

/* Answer each command line of @p out the way a random server would. */
static void sim_serve(struct sim *s, const char *out, size_t len)
{
    static const uint16_t mail[] = { 250, 250, 250, 451, 550, 421 };
    static const uint16_t rcpt[] = { 250, 250, 251, 450, 452, 550, 552, 421 };
    static const uint16_t data[] = { 354, 354, 354, 451, 554, 421 };
    static const uint16_t dot[] = { 250, 250, 451, 554, 421 };
    for (const char *p = out, *end = out + len, *nl; p < end; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        size_t n = (size_t)(nl - p);
        if (s->closed_by_421)
            return;                          /* it hung up: nothing more is read */
        if (s->in_data) {
            if (n == 2 && p[0] == '.') {
                s->in_data = false;
                sim_reply(s, s->dot = sim_pick(s, dot, 5));
            }
        } else if (strncmp(p, "MAIL ", 5) == 0) {
            sim_reply(s, s->mail = sim_pick(s, mail, 6));
        } else if (strncmp(p, "RCPT ", 5) == 0) {
            uint16_t c = sim_pick(s, rcpt, 8);
            s->rcpt[s->rcpts_seen++] = c;
            sim_reply(s, c);
        } else if (strncmp(p, "DATA", 4) == 0) {
            sim_reply(s, s->data = sim_pick(s, data, 6));
            s->in_data = s->data == 354;
        } else if (strncmp(p, "RSET", 4) == 0) {
            sim_reply(s, 250);
        } else {
            fail_msg("unexpected command %.*s", (int)n, p);
        }
    }
}

static enum smtp_fate_kind kind_of(uint16_t code)
{
    return code == 421 || code / 100 == 4 ? SMTP_FATE_DEFERRED
         : code / 100 == 5 ? SMTP_FATE_BOUNCED : SMTP_FATE_DELIVERED;
}

static enum smtp_fate_kind model_fate(const struct sim *s, unsigned i)
{
    if (s->mail / 100 != 2)
        return kind_of(s->mail);
    if (i >= s->rcpts_seen)
        return SMTP_FATE_DEFERRED;           /* cut off by a 421 */
    uint16_t r = s->rcpt[i];
    if (r == 452 || r == 552)
        return SMTP_FATE_DEFERRED;
    if (r / 100 != 2)
        return kind_of(r);
    if (s->data == 0 || s->data != 354)
        return s->data ? kind_of(s->data) : SMTP_FATE_DEFERRED;
    return s->dot ? kind_of(s->dot) : SMTP_FATE_DEFERRED;
}

struct round {
    enum smtp_fate_kind got[VL_SMTP_RCPTS_PER_TXN_MAX];
    unsigned done;
    bool closed, ready, lost;
};

/* Record what the actions of one call say; SENDs go to the simulated server. */
static void round_take(struct round *rd, struct smtp_client *c, struct sim *s,
                       const struct smtp_actions *acts)
{
    for (uint32_t i = 0; i < acts->count; i++) {
        const struct smtp_action *a = &acts->a[i];
        assert_false(rd->closed);                /* nothing after CLOSE */
        if (a->kind == SMTP_ACT_SEND)
            sim_serve(s, smtp_client_out(c) + a->off, a->len);
        if (a->kind == SMTP_ACT_FATE) {
            assert_int_equal(rd->got[a->rcpt], SMTP_FATE_NONE);
            rd->got[a->rcpt] = a->fate.kind;
            if (rd->lost) {                      /* given by a drop or a timeout */
                assert_int_equal(a->fate.kind, SMTP_FATE_DEFERRED);
                assert_string_equal(a->fate.status, "4.4.2");
            }
        }
        rd->done += a->kind == SMTP_ACT_TXN_DONE;
        rd->closed |= a->kind == SMTP_ACT_CLOSE;
        rd->ready |= a->kind == SMTP_ACT_READY;
    }
}

/* One transaction against a random server; at step @p lose_at (0 = never)
 * the connection drops or times out instead. */
static void random_round(uint64_t *rng, bool pipelining, unsigned n, unsigned lose_at)
{
    static struct smtp_client c;
    static struct smtp_msg_rcpt r[VL_SMTP_RCPTS_PER_TXN_MAX];
    static struct sim s;
    static struct round rd;
    struct smtp_client_conf conf = { .helo_name = "me.example", .helo_name_len = 10 };
    to_ready(&c, &conf, pipelining ? "250-mx\r\n250 PIPELINING\r\n" : "250 mx\r\n");
    for (unsigned i = 0; i < n; i++)
        r[i] = (struct smtp_msg_rcpt){ .addr = "a@b.org", .addr_len = 7 };
    memset(&s, 0, sizeof s);
    memset(&rd, 0, sizeof rd);
    s.rng = rnd(rng);
    struct smtp_msg m = { .from = "s@b.org", .from_len = 7, .size = 10, .rcpts = r,
                          .rcpt_count = n };
    assert_int_equal(smtp_client_txn_begin(&c, &m, &g_acts), 0);
    for (unsigned step = 1; step < 10000 && !rd.closed && !rd.ready; step++) {
        struct smtp_actions acts = g_acts;
        s.reply_len = 0;
        round_take(&rd, &c, &s, &acts);
        for (uint32_t i = 0; i < acts.count; i++)
            if (acts.a[i].kind == SMTP_ACT_SEND_BODY) {
                smtp_client_body_sent(&c, &g_acts);
                sim_serve(&s, "hi\r\n.\r\n", 7);
            }
        if (rd.closed || rd.ready)
            break;
        if (step == lose_at || s.reply_len == 0) {   /* a 421 server hangs up, too */
            rd.lost = true;
            if (rnd(rng) & 1)
                smtp_client_on_close(&c, &g_acts);
            else
                smtp_client_on_timeout(&c, &g_acts);
            continue;
        }
        for (size_t off = 0, used; off < s.reply_len; off += used) {
            smtp_client_on_bytes(&c, s.reply + off, s.reply_len - off, &used, &g_acts);
            if (off + used < s.reply_len)            /* the last call's go round the loop */
                round_take(&rd, &c, &s, &g_acts);
        }
    }
    assert_int_equal(rd.done, 1);
    for (unsigned i = 0; i < n; i++) {
        assert_int_not_equal(rd.got[i], SMTP_FATE_NONE);
        if (!rd.lost && rd.got[i] != model_fate(&s, i))
            fail_msg("rcpt %u/%u: fate %d, model %d (mail %u rcpt %u data %u dot %u, pipe %d)",
                     i, n, rd.got[i], model_fate(&s, i), s.mail,
                     i < s.rcpts_seen ? s.rcpt[i] : 0, s.data, s.dot, pipelining);
    }
}

static void test_random_servers(void **state)
{
    (void)state;
    const char *env = getenv("VOLLEY_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : 0xc11e47ull;
    uint64_t rng = seed ? seed : 1;              /* xorshift never leaves 0 */
    print_message("seed %#llx (VOLLEY_SEED replays)\n", (unsigned long long)seed);
    for (unsigned round = 0; round < 3000; round++) {
        unsigned n = 1 + (unsigned)(rnd(&rng) % 12);
        if (round % 50 == 0)
            n = VL_SMTP_RCPTS_PER_TXN_MAX;
        unsigned lose_at = rnd(&rng) % 4 == 0 ? 1 + (unsigned)(rnd(&rng) % 6) : 0;
        random_round(&rng, rnd(&rng) & 1, n, lose_at);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
