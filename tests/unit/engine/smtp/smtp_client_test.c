/* smtp_client_test.c - the client state machine: golden transcripts (the
 * .smtp files of tests/transcripts) replayed line by line, plus checks of
 * deadlines, limits and the pipelining window (fate accounting against random
 * servers: smtp_client_random_test.c).
 *
 * Transcript lines:
 *   # ...                 comment          S: text   server line (consecutive S: lines
 *   C: text               client line                are fed as one chunk)
 *   B: text               body line of the next @msg (CRLF added)
 *   @conf helo=NAME [starttls] [tls_required] [max_rcpts=N]      (before the first S:)
 *   @msg from=ADDR rcpt=ADDR... [size=N] [8bit] [envid=X] [ret=full|hdrs]
 *        [notify=success,failure,delay|never] [orcpt]   begin a transaction (client READY)
 *   @tls  handshake done   @quit  session quits   @timeout  deadline   @drop  peer gone
 *   = ADDR delivered|deferred|bounced STATUS [ambiguous]     that recipient's fate
 *   = close none|conn|proto|resp|tls [STATUS]                the client closed
 * Before each S: chunk every client byte so far must have been matched by C:
 * lines, so a lockstep transcript fails a client that pipelines, and back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volley/error.h"
#include "smtp_client.h"
#include "smtp_client_drive.h"
#include "smtp_data.h"

#define TR_OUT_BYTES   (256u * 1024u)
#define TR_TEXT_BYTES  (64u * 1024u)
#define TR_FILES_MAX   64
#define TR_LINE_MAX    4096

struct tr_fate { enum smtp_fate_kind kind; char status[VL_SMTP_STATUS_BYTES_MAX]; bool ambiguous; };

struct tr {
    const char *file;
    unsigned line;
    struct smtp_client_conf conf;
    char helo[256];
    struct smtp_client c;
    struct smtp_actions acts;
    char out[TR_OUT_BYTES];
    size_t out_len, out_pos;
    char s_chunk[TR_TEXT_BYTES];
    size_t s_len;
    char body[TR_TEXT_BYTES];
    size_t body_len;
    char msg_body[TR_TEXT_BYTES];
    size_t msg_body_len;
    char strings[TR_TEXT_BYTES];
    size_t strings_len;
    struct smtp_msg msg;
    struct smtp_msg_rcpt rcpts[VL_SMTP_RCPTS_PER_TXN_MAX];
    struct tr_fate fates[VL_SMTP_RCPTS_PER_TXN_MAX];
    bool in_txn, ready, tls_pending, closed;
    enum smtp_fail close_fail;
    char close_status[VL_SMTP_STATUS_BYTES_MAX];
    unsigned txns_done;
};

#define TR_FAIL(t, ...)                                                          \
    do {                                                                        \
        print_error("%s:%u: ", (t)->file, (t)->line);                            \
        fail_msg(__VA_ARGS__);                                                   \
    } while (0)

static void tr_apply(struct tr *t);

static void tr_body(struct tr *t)
{
    struct smtp_data_enc e;
    smtp_data_enc_init(&e);
    size_t need = 2 * t->msg_body_len + SMTP_DATA_END_OUT_MAX;
    if (t->out_len + need > sizeof t->out)
        TR_FAIL(t, "output buffer full");
    t->out_len += smtp_data_enc_chunk(&e, t->msg_body, t->msg_body_len, t->out + t->out_len,
                                      2 * t->msg_body_len);
    t->out_len += smtp_data_enc_end(&e, t->out + t->out_len, SMTP_DATA_END_OUT_MAX);
    smtp_client_body_sent(&t->c, &t->acts);
    tr_apply(t);
}

static void tr_fate(struct tr *t, const struct smtp_action *a)
{
    if (!t->in_txn || a->rcpt >= t->msg.rcpt_count)
        TR_FAIL(t, "FATE for recipient %u outside a transaction", a->rcpt);
    struct tr_fate *f = &t->fates[a->rcpt];
    if (f->kind != SMTP_FATE_NONE)
        TR_FAIL(t, "second fate for recipient %u", a->rcpt);
    if (a->fate.kind == SMTP_FATE_NONE)
        TR_FAIL(t, "empty fate");
    f->kind = a->fate.kind;
    f->ambiguous = a->fate.ambiguous;
    memcpy(f->status, a->fate.status, sizeof f->status);
    for (size_t i = 0; i < a->fate.text_len; i++)     /* sanitised text */
        if ((unsigned char)a->fate.text[i] < 0x20 || (unsigned char)a->fate.text[i] >= 0x7f)
            TR_FAIL(t, "control or non-ASCII in fate text");
}

/* Carry out the actions of the last call, as a session would. */
static void tr_apply(struct tr *t)
{
    struct smtp_actions acts = t->acts;      /* a body_sent call refills t->acts */
    for (uint32_t i = 0; i < acts.count; i++) {
        const struct smtp_action *a = &acts.a[i];
        if (t->closed)
            TR_FAIL(t, "action %d after CLOSE", a->kind);
        switch (a->kind) {
        case SMTP_ACT_SEND:
            if (t->out_len + a->len > sizeof t->out)
                TR_FAIL(t, "output buffer full");
            memcpy(t->out + t->out_len, smtp_client_out(&t->c) + a->off, a->len);
            t->out_len += a->len;
            break;
        case SMTP_ACT_SEND_BODY: tr_body(t); break;
        case SMTP_ACT_START_TLS: t->tls_pending = true; break;
        case SMTP_ACT_FATE: tr_fate(t, a); break;
        case SMTP_ACT_TXN_DONE:
            if (!t->in_txn)
                TR_FAIL(t, "TXN_DONE outside a transaction");
            for (uint32_t r = 0; r < t->msg.rcpt_count; r++)
                if (t->fates[r].kind == SMTP_FATE_NONE)
                    TR_FAIL(t, "TXN_DONE but recipient %u has no fate", r);
            t->in_txn = false;
            t->txns_done++;
            break;
        case SMTP_ACT_READY: t->ready = true; break;
        case SMTP_ACT_CLOSE:
            t->closed = true;
            t->close_fail = a->fail;
            memcpy(t->close_status, a->fate.status, sizeof t->close_status);
            break;
        default: TR_FAIL(t, "unknown action %d", a->kind);
        }
    }
}

static void tr_flush_s(struct tr *t)
{
    if (t->s_len == 0)
        return;
    if (t->out_pos != t->out_len)
        TR_FAIL(t, "client sent [%.*s] before this reply, not matched by C: lines",
                (int)(t->out_len - t->out_pos), t->out + t->out_pos);
    size_t off = 0;
    for (unsigned guard = 0; off < t->s_len; guard++) {
        if (guard > 1000)
            TR_FAIL(t, "feed loop did not end");
        size_t used = 0;
        smtp_client_on_bytes(&t->c, t->s_chunk + off, t->s_len - off, &used, &t->acts);
        off += used;
        tr_apply(t);
        if (t->closed)
            break;
    }
    t->s_len = 0;
}

static char *tr_strdup(struct tr *t, const char *s, size_t n)
{
    if (t->strings_len + n + 1 > sizeof t->strings)
        TR_FAIL(t, "string arena full");
    char *p = t->strings + t->strings_len;
    memcpy(p, s, n);
    p[n] = '\0';
    t->strings_len += n + 1;
    return p;
}

static uint32_t tr_notify(const char *v)
{
    uint32_t n = 0;
    if (strstr(v, "success")) n |= SMTP_NOTIFY_SUCCESS;
    if (strstr(v, "failure")) n |= SMTP_NOTIFY_FAILURE;
    if (strstr(v, "delay"))   n |= SMTP_NOTIFY_DELAY;
    if (strstr(v, "never"))   n |= SMTP_NOTIFY_NEVER;
    return n;
}

static void tr_msg_word(struct tr *t, const char *w, bool *size_set, uint32_t *notify, bool *orcpt)
{
    struct smtp_msg *m = &t->msg;
    if (strncmp(w, "from=", 5) == 0) {
        m->from = tr_strdup(t, w + 5, strlen(w + 5));
        m->from_len = strlen(w + 5);
    } else if (strncmp(w, "rcpt=", 5) == 0) {
        if (m->rcpt_count >= VL_SMTP_RCPTS_PER_TXN_MAX)
            TR_FAIL(t, "too many rcpt=");
        struct smtp_msg_rcpt *r = &t->rcpts[m->rcpt_count++];
        r->addr = tr_strdup(t, w + 5, strlen(w + 5));
        r->addr_len = strlen(w + 5);
    } else if (strncmp(w, "size=", 5) == 0) {
        m->size = strtoull(w + 5, NULL, 10);
        *size_set = true;
    } else if (strcmp(w, "8bit") == 0) {
        m->is_8bit = true;
    } else if (strncmp(w, "envid=", 6) == 0) {
        m->envid = tr_strdup(t, w + 6, strlen(w + 6));
        m->envid_len = strlen(w + 6);
    } else if (strncmp(w, "ret=", 4) == 0) {
        m->ret = strcmp(w + 4, "full") == 0 ? SMTP_RET_FULL : SMTP_RET_HDRS;
    } else if (strncmp(w, "notify=", 7) == 0) {
        *notify = tr_notify(w + 7);
    } else if (strcmp(w, "orcpt") == 0) {
        *orcpt = true;
    } else {
        TR_FAIL(t, "unknown @msg word %s", w);
    }
}

static void tr_msg(struct tr *t, char *args)
{
    tr_flush_s(t);
    if (!t->ready || t->in_txn)
        TR_FAIL(t, "@msg but the client is not READY");
    memset(&t->msg, 0, sizeof t->msg);
    memset(t->fates, 0, sizeof t->fates);
    bool size_set = false, orcpt = false;
    uint32_t notify = 0;
    for (char *w = strtok(args, " "); w; w = strtok(NULL, " "))
        tr_msg_word(t, w, &size_set, &notify, &orcpt);
    for (uint32_t i = 0; i < t->msg.rcpt_count; i++) {
        t->rcpts[i].notify = notify;
        t->rcpts[i].orcpt = orcpt ? t->rcpts[i].addr : NULL;
        t->rcpts[i].orcpt_len = orcpt ? t->rcpts[i].addr_len : 0;
    }
    memcpy(t->msg_body, t->body, t->body_len);
    t->msg_body_len = t->body_len;
    t->body_len = 0;
    struct smtp_data_info info;
    smtp_data_measure(t->msg_body, t->msg_body_len, &info);
    if (!size_set)
        t->msg.size = info.size;
    t->msg.is_8bit |= info.is_8bit;
    t->msg.rcpts = t->rcpts;
    t->ready = false;
    t->in_txn = true;
    int rc = smtp_client_txn_begin(&t->c, &t->msg, &t->acts);
    if (rc != 0)
        TR_FAIL(t, "txn_begin: %s", vl_strerror(rc));
    tr_apply(t);
}

static void tr_conf(struct tr *t, char *args)
{
    for (char *w = strtok(args, " "); w; w = strtok(NULL, " ")) {
        if (strncmp(w, "helo=", 5) == 0)
            snprintf(t->helo, sizeof t->helo, "%s", w + 5);
        else if (strcmp(w, "starttls") == 0)
            t->conf.starttls = true;
        else if (strcmp(w, "tls_required") == 0)
            t->conf.tls_required = true;
        else if (strncmp(w, "max_rcpts=", 10) == 0)
            t->conf.rcpts_per_txn_max = (uint32_t)atoi(w + 10);
        else
            TR_FAIL(t, "unknown @conf word %s", w);
    }
    t->conf.helo_name = t->helo;
    t->conf.helo_name_len = strlen(t->helo);
    if (smtp_client_init(&t->c, &t->conf) != 0)
        TR_FAIL(t, "client init refused the conf");
}

static void tr_expect_c(struct tr *t, const char *text)
{
    size_t n = strlen(text);
    size_t avail = t->out_len - t->out_pos;
    if (avail < n + 2 || memcmp(t->out + t->out_pos, text, n) != 0 ||
        memcmp(t->out + t->out_pos + n, "\r\n", 2) != 0)
        TR_FAIL(t, "expected client line [%s], client sent [%.*s]", text,
                (int)(avail < 80 ? avail : 80), t->out + t->out_pos);
    t->out_pos += n + 2;
}

static const char *const tr_fate_names[] = { "none", "delivered", "deferred", "bounced" };
static const char *const tr_fail_names[] = { "none", "conn", "proto", "resp", "tls" };

static void tr_check(struct tr *t, char *args)
{
    char *what = strtok(args, " "), *kind = strtok(NULL, " "), *status = strtok(NULL, " ");
    char *flag = strtok(NULL, " ");
    if (!what || !kind)
        TR_FAIL(t, "bad = line");
    tr_flush_s(t);
    if (strcmp(what, "close") == 0) {
        if (!t->closed || strcmp(tr_fail_names[t->close_fail], kind) != 0)
            TR_FAIL(t, "close %s expected; closed %d fail %s", kind, t->closed,
                    tr_fail_names[t->close_fail]);
        if (status && strcmp(status, t->close_status) != 0)
            TR_FAIL(t, "close status %s, want %s", t->close_status, status);
        return;
    }
    for (uint32_t i = 0; i < t->msg.rcpt_count; i++) {
        if (strcmp(t->rcpts[i].addr, what) != 0)
            continue;
        const struct tr_fate *f = &t->fates[i];
        if (strcmp(tr_fate_names[f->kind], kind) != 0 || !status ||
            strcmp(f->status, status) != 0)
            TR_FAIL(t, "%s: fate %s %s, want %s %s", what, tr_fate_names[f->kind], f->status,
                    kind, status ? status : "?");
        if (f->ambiguous != (flag && strcmp(flag, "ambiguous") == 0))
            TR_FAIL(t, "%s: ambiguous %d", what, f->ambiguous);
        return;
    }
    TR_FAIL(t, "no recipient %s in the current message", what);
}

static void tr_event(struct tr *t, const char *ev)
{
    tr_flush_s(t);
    if (strcmp(ev, "tls") == 0) {
        if (!t->tls_pending)
            TR_FAIL(t, "@tls without START_TLS");
        t->tls_pending = false;
        smtp_client_tls_done(&t->c, &t->acts);
    } else if (strcmp(ev, "quit") == 0) {
        if (!t->ready)
            TR_FAIL(t, "@quit but not READY");
        t->ready = false;
        smtp_client_quit(&t->c, &t->acts);
    } else if (strcmp(ev, "timeout") == 0) {
        if (smtp_client_deadline_ms(&t->c) == 0)
            TR_FAIL(t, "@timeout but nothing is awaited");
        smtp_client_on_timeout(&t->c, &t->acts);
    } else if (strcmp(ev, "drop") == 0) {
        smtp_client_on_close(&t->c, &t->acts);
    } else {
        TR_FAIL(t, "unknown event @%s", ev);
    }
    tr_apply(t);
}

/* "\\xHH" in a transcript line stands for that octet (UTF-8, 8-bit bodies). */
static void tr_unescape(char *l)
{
    char *o = l;
    for (const char *p = l; *p;) {
        unsigned v;
        if (p[0] == '\\' && p[1] == 'x' && sscanf(p + 2, "%2x", &v) == 1 && v != 0) {
            *o++ = (char)v;
            p += 4;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
}

static void tr_line(struct tr *t, char *l)
{
    tr_unescape(l);
    size_t n = strlen(l);
    while (n > 0 && (l[n - 1] == '\n' || l[n - 1] == '\r'))
        l[--n] = '\0';
    const char *text = n > 3 ? l + 3 : "";
    if (n == 0 || l[0] == '#')
        return;
    if (l[0] == 'S' && l[1] == ':') {
        if (t->s_len + n + 2 > sizeof t->s_chunk)
            TR_FAIL(t, "S: chunk too long");
        memcpy(t->s_chunk + t->s_len, text, strlen(text));
        t->s_len += strlen(text);
        memcpy(t->s_chunk + t->s_len, "\r\n", 2);
        t->s_len += 2;
        return;
    }
    if (l[0] == 'B' && l[1] == ':') {
        if (t->body_len + n + 2 > sizeof t->body)
            TR_FAIL(t, "body too long");
        memcpy(t->body + t->body_len, text, strlen(text));
        t->body_len += strlen(text);
        memcpy(t->body + t->body_len, "\r\n", 2);
        t->body_len += 2;
        return;
    }
    if (l[0] == 'C' && l[1] == ':') {
        tr_flush_s(t);
        tr_expect_c(t, text);
    } else if (l[0] == '=' && l[1] == ' ') {
        tr_check(t, l + 2);
    } else if (strncmp(l, "@conf ", 6) == 0) {
        tr_conf(t, l + 6);
    } else if (strncmp(l, "@msg ", 5) == 0) {
        tr_msg(t, l + 5);
    } else if (l[0] == '@') {
        tr_event(t, l + 1);
    } else {
        TR_FAIL(t, "unknown line [%s]", l);
    }
}

static void tr_run_file(const char *path)
{
    static struct tr t;
    memset(&t, 0, sizeof t);
    t.file = path;
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    char line[TR_LINE_MAX];
    bool conf_seen = false;
    while (fgets(line, sizeof line, f)) {
        t.line++;
        if (!conf_seen && line[0] != '#' && line[0] != '\n' && strncmp(line, "@conf ", 6) != 0)
            TR_FAIL(&t, "first line must be @conf");
        conf_seen = true;
        tr_line(&t, line);
    }
    fclose(f);
    tr_flush_s(&t);
    if (t.out_pos != t.out_len)
        TR_FAIL(&t, "client sent [%.*s] not matched by C: lines", (int)(t.out_len - t.out_pos),
                t.out + t.out_pos);
    if (t.in_txn)
        TR_FAIL(&t, "transcript ends inside a transaction");
}

static int tr_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_transcripts(void **state)
{
    (void)state;
    char dir[1024];
    const char *src = getenv("VOLLEY_SRC");
    if (src)
        snprintf(dir, sizeof dir, "%s/tests/transcripts", src);
    else {                                   /* __FILE__ is .../tests/unit/engine/smtp/x.c */
        snprintf(dir, sizeof dir, "%s", __FILE__);
        char *p = strstr(dir, "/tests/unit/");
        assert_non_null(p);
        strcpy(p, "/tests/transcripts");
    }
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open transcript directory %s", dir);
    static char names[TR_FILES_MAX][sizeof dir + 256 + 2];
    char *sorted[TR_FILES_MAX];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".smtp") != 0)
            continue;
        if (!strncmp(e->d_name, "server_", 7) || !strncmp(e->d_name, "sink_", 5))
            continue;              /* server-side transcripts (smtp_server, sink tests) */
        assert_true(n < TR_FILES_MAX);
        snprintf(names[n], sizeof names[n], "%s/%s", dir, e->d_name);
        sorted[n] = names[n];
        n++;
    }
    closedir(d);
    qsort(sorted, n, sizeof sorted[0], tr_cmp);
    assert_true(n >= 20);
    for (size_t i = 0; i < n; i++)
        tr_run_file(sorted[i]);
    print_message("replayed %zu transcripts\n", n);
}

/* ---- direct tests ------------------------------------------------------ */


static void test_deadlines(void **state)
{
    (void)state;
    static struct smtp_client c;
    struct smtp_client_conf conf = { .helo_name = "me.example", .helo_name_len = 10 };
    static const struct { enum smtp_state s; uint32_t ms; } defaults[] = {
        { SMTP_STATE_BANNER, 300000 }, { SMTP_STATE_MAIL, 300000 }, { SMTP_STATE_RCPT, 300000 },
        { SMTP_STATE_DATA, 120000 }, { SMTP_STATE_BODY, 180000 }, { SMTP_STATE_DOT, 600000 },
        { SMTP_STATE_READY, 0 }, { SMTP_STATE_QUIT, 60000 },
    };
    assert_int_equal(smtp_client_init(&c, &conf), 0);
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        assert_int_equal(c.timeout_ms[defaults[i].s], defaults[i].ms);
    assert_int_equal(smtp_client_deadline_ms(&c), 300000);
    assert_string_equal(smtp_client_state_name(smtp_client_state(&c)), "BANNER");
    conf.timeout_ms[SMTP_STATE_BANNER] = 7;
    conf.timeout_ms[SMTP_STATE_DOT] = 9;
    assert_int_equal(smtp_client_init(&c, &conf), 0);
    assert_int_equal(smtp_client_deadline_ms(&c), 7);
    to_ready(&c, &conf, "250 mx\r\n");
    assert_int_equal(smtp_client_deadline_ms(&c), 0);
    const struct smtp_msg_rcpt r = { .addr = "a@b.org", .addr_len = 7 };
    const struct smtp_msg m = { .from = "s@b.org", .from_len = 7, .size = 3, .rcpts = &r,
                                .rcpt_count = 1 };
    assert_int_equal(smtp_client_txn_begin(&c, &m, &g_acts), 0);
    assert_int_equal(smtp_client_state(&c), SMTP_STATE_MAIL);
    assert_int_equal(feed_str(&c, "250 ok\r\n"), 1);
    assert_int_equal(smtp_client_state(&c), SMTP_STATE_RCPT);
    assert_int_equal(feed_str(&c, "250 ok\r\n"), 1);
    assert_int_equal(smtp_client_deadline_ms(&c), 120000);
    assert_int_equal(feed_str(&c, "354 go\r\n"), 1);
    assert_true(acts_has(SMTP_ACT_SEND_BODY));
    assert_int_equal(smtp_client_deadline_ms(&c), 180000);
    smtp_client_body_sent(&c, &g_acts);
    assert_int_equal(smtp_client_deadline_ms(&c), 9);
    smtp_client_on_timeout(&c, &g_acts);       /* dot sent, no reply: ambiguous */
    assert_true(smtp_client_ambiguous(&c));
    assert_int_equal(g_acts.a[0].kind, SMTP_ACT_FATE);
    assert_int_equal(g_acts.a[0].fate.kind, SMTP_FATE_DEFERRED);
    assert_true(g_acts.a[0].fate.ambiguous);
    assert_string_equal(g_acts.a[0].fate.status, "4.4.2");
    assert_int_equal(g_acts.a[g_acts.count - 1].kind, SMTP_ACT_CLOSE);
    assert_int_equal(g_acts.a[g_acts.count - 1].fail, SMTP_FAIL_CONN);
}

/* Issue 9 item 8: a reply to the final dot that is over the line limit, or
 * malformed, or a 3xx, leaves the same doubt as a lost connection: every
 * recipient is deferred and flagged ambiguous. Before the dot it is not. */
static void test_item8_bad_reply_after_dot_is_ambiguous(void **state)
{
    (void)state;
    static struct smtp_client c;
    static char longline[VL_SMTP_REPLY_LINE_BYTES_MAX + 64];
    memset(longline, 'x', sizeof longline);
    memcpy(longline, "250 ", 4);
    memcpy(longline + sizeof longline - 3, "\r\n", 3);   /* 2 + NUL: one line over the cap */
    static const struct { const char *label, *reply; bool after_dot, ambiguous; } t[] = {
        { "over-long after dot", longline, true, true },
        { "code changes after dot", "250-ok\r\n251 changed\r\n", true, true },
        { "bad code after dot", "2x0 ok\r\n", true, true },
        { "3xx after dot", "354 again\r\n", true, true },
        { "over-long before dot", longline, false, false },
        { "bad code before dot", "2x0 ok\r\n", false, false },
    };
    struct smtp_client_conf conf = { .helo_name = "me.example", .helo_name_len = 10 };
    const struct smtp_msg_rcpt r[2] = { { .addr = "a@b.org", .addr_len = 7 },
                                        { .addr = "c@b.org", .addr_len = 7 } };
    const struct smtp_msg m = { .from = "s@b.org", .from_len = 7, .size = 3, .rcpts = r,
                                .rcpt_count = 2 };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        to_ready(&c, &conf, "250-mx\r\n250 PIPELINING\r\n");
        assert_int_equal(smtp_client_txn_begin(&c, &m, &g_acts), 0);
        assert_int_equal(feed_str(&c, "250 ok\r\n"), 1);
        assert_int_equal(feed_str(&c, "250 ok\r\n"), 1);
        assert_int_equal(feed_str(&c, "250 ok\r\n"), 1);
        if (t[i].after_dot) {
            assert_int_equal(feed_str(&c, "354 go\r\n"), 1);
            smtp_client_body_sent(&c, &g_acts);
            assert_int_equal(smtp_client_state(&c), SMTP_STATE_DOT);
        }
        /* Feed until the client acts on it (a multi-line reply takes two lines). */
        const char *p = t[i].reply;
        size_t left = strlen(p), used = 0;
        int rc = 0;
        for (unsigned guard = 0; guard < 8 && left > 0 && rc >= 0; guard++) {
            rc = smtp_client_on_bytes(&c, p, left, &used, &g_acts);
            p += used;
            left -= used;
            if (rc != 0)
                break;
        }
        if (rc >= 0)
            fail_msg("%s: the client accepted the reply (rc %d)", t[i].label, rc);
        unsigned fates = 0;
        for (uint32_t k = 0; k < g_acts.count; k++) {
            const struct smtp_action *a = &g_acts.a[k];
            if (a->kind != SMTP_ACT_FATE)
                continue;
            fates++;
            assert_int_equal(a->fate.kind, SMTP_FATE_DEFERRED);
            if (a->fate.ambiguous != t[i].ambiguous)
                fail_msg("%s: recipient %u ambiguous=%d", t[i].label, a->rcpt,
                         (int)a->fate.ambiguous);
        }
        if (fates != 2)
            fail_msg("%s: %u fates, want 2", t[i].label, fates);
        assert_int_equal(smtp_client_ambiguous(&c), t[i].ambiguous);
        assert_int_equal(g_acts.a[g_acts.count - 1].kind, SMTP_ACT_CLOSE);
        assert_int_equal(g_acts.a[g_acts.count - 1].fail, SMTP_FAIL_PROTO);
    }
}

static void test_limits(void **state)
{
    (void)state;
    static struct smtp_client c;
    static struct smtp_msg_rcpt r[VL_SMTP_RCPTS_PER_TXN_MAX + 1];
    for (size_t i = 0; i <= VL_SMTP_RCPTS_PER_TXN_MAX; i++)
        r[i] = (struct smtp_msg_rcpt){ .addr = "a@b.org", .addr_len = 7 };
    struct smtp_client_conf conf = { .helo_name = "me.example", .helo_name_len = 10 };
    struct smtp_client_conf bad = conf;
    bad.helo_name = "bad name\r\n";
    bad.helo_name_len = 10;
    assert_int_equal(smtp_client_init(&c, &bad), VL_E_INVALID);
    static const struct { uint32_t conf_max, n; int rc; } t[] = {
        { 0, 0, VL_E_INVALID }, { 0, 1, 0 }, { 0, VL_SMTP_RCPTS_PER_TXN_MAX, 0 },
        { 0, VL_SMTP_RCPTS_PER_TXN_MAX + 1, VL_E_INVALID }, { 2, 2, 0 }, { 2, 3, VL_E_INVALID },
        { 1000, VL_SMTP_RCPTS_PER_TXN_MAX + 1, VL_E_INVALID },   /* config never raises */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        conf.rcpts_per_txn_max = t[i].conf_max;
        to_ready(&c, &conf, "250-mx\r\n250 PIPELINING\r\n");
        struct smtp_msg m = { .from = "", .rcpts = r, .rcpt_count = t[i].n };
        if (smtp_client_txn_begin(&c, &m, &g_acts) != t[i].rc)
            fail_msg("case %zu: max %u n %u", i, t[i].conf_max, t[i].n);
        if (t[i].rc == 0)
            assert_true(acts_has(SMTP_ACT_SEND));
        else
            assert_int_equal(g_acts.count, 0);
    }
}

/* 100 long RCPTs do not fit one write: the window refills as replies come. */
static void test_pipelining_window(void **state)
{
    (void)state;
    static struct smtp_client c;
    static char addrs[VL_SMTP_RCPTS_PER_TXN_MAX][200];
    static struct smtp_msg_rcpt r[VL_SMTP_RCPTS_PER_TXN_MAX];
    static char sent[64 * 1024];
    size_t sent_len = 0;
    for (unsigned i = 0; i < VL_SMTP_RCPTS_PER_TXN_MAX; i++) {
        int n = snprintf(addrs[i], sizeof addrs[i], "user%03u%s@%s.example.org", i,
                         "-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
        r[i] = (struct smtp_msg_rcpt){ .addr = addrs[i], .addr_len = (size_t)n };
    }
    struct smtp_client_conf conf = { .helo_name = "me.example", .helo_name_len = 10 };
    to_ready(&c, &conf, "250-mx\r\n250 PIPELINING\r\n");
    struct smtp_msg m = { .from = "s@b.org", .from_len = 7, .rcpts = r,
                          .rcpt_count = VL_SMTP_RCPTS_PER_TXN_MAX };
    assert_int_equal(smtp_client_txn_begin(&c, &m, &g_acts), 0);
    unsigned replies = 0, delivered = 0;
    bool body = false;
    for (unsigned guard = 0; guard < 1000 && !acts_has(SMTP_ACT_TXN_DONE); guard++) {
        for (uint32_t i = 0; i < g_acts.count; i++) {
            const struct smtp_action *a = &g_acts.a[i];
            if (a->kind == SMTP_ACT_SEND) {
                assert_true(sent_len + a->len <= sizeof sent);
                assert_true(a->len <= SMTP_CLIENT_OUT_BYTES);
                memcpy(sent + sent_len, smtp_client_out(&c) + a->off, a->len);
                sent_len += a->len;
            }
            body |= a->kind == SMTP_ACT_SEND_BODY;
        }
        if (body) {
            smtp_client_body_sent(&c, &g_acts);
            body = false;
            feed_str(&c, "250 2.0.0 queued\r\n");
        } else {
            feed_str(&c, replies == VL_SMTP_RCPTS_PER_TXN_MAX + 1 ? "354 go\r\n" : "250 ok\r\n");
            replies++;
        }
        for (uint32_t i = 0; i < g_acts.count; i++)
            delivered += g_acts.a[i].kind == SMTP_ACT_FATE &&
                         g_acts.a[i].fate.kind == SMTP_FATE_DELIVERED;
    }
    assert_int_equal(delivered, VL_SMTP_RCPTS_PER_TXN_MAX);
    assert_int_equal(replies, VL_SMTP_RCPTS_PER_TXN_MAX + 2);
    /* every RCPT went out once, in order, then DATA */
    const char *p = sent;
    assert_memory_equal(p, "MAIL FROM:<s@b.org>\r\n", 21);
    p += 21;
    for (unsigned i = 0; i < VL_SMTP_RCPTS_PER_TXN_MAX; i++) {
        char want[256];
        int n = snprintf(want, sizeof want, "RCPT TO:<%s>\r\n", addrs[i]);
        assert_memory_equal(p, want, (size_t)n);
        p += n;
    }
    assert_int_equal(sent + sent_len - p, 6);
    assert_memory_equal(p, "DATA\r\n", 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transcripts),
        cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_item8_bad_reply_after_dot_is_ambiguous),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_pipelining_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
