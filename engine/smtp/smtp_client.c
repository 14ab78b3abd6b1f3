/*
 * smtp_client.c - RFC 5321 client state machine (pure: no I/O, no clock).
 * Invariants: cursors only move forward; recv never passes send; every
 * recipient leaves with exactly one fate (asserted when it is given and at
 * transaction end); after CLOSE the client is inert.
 * Diagnostics: never logs; a reply out of protocol yields SMTP_FAIL_PROTO.
 */
#include "smtp_client.h"

#include <stdio.h>
#include <string.h>

#include "volley/addr.h"
#include "volley/error.h"

static const char *const client_state_names[] = {
#define X(name, ms, expect) #name,
    SMTP_STATES(X)
#undef X
};

static const uint32_t client_timeout_default[] = {
#define X(name, ms, expect) ms,
    SMTP_STATES(X)
#undef X
};

static const uint8_t client_expect[] = {
#define X(name, ms, expect) expect,
    SMTP_STATES(X)
#undef X
};

const char *smtp_client_state_name(enum smtp_state s)
{
    return (unsigned)s < SMTP_STATE_COUNT ? client_state_names[s] : "?";
}

/* ---- actions and output ------------------------------------------------ */

static struct smtp_action *act_push(struct smtp_actions *acts, enum smtp_action_kind kind)
{
    vl_assert(acts->count < SMTP_ACTIONS_MAX);
    struct smtp_action *a = &acts->a[acts->count++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    return a;
}

static void out_flush(struct smtp_client *c, struct smtp_actions *acts)
{
    if (c->out_len == c->out_flushed)
        return;
    struct smtp_action *a = act_push(acts, SMTP_ACT_SEND);
    a->off = c->out_flushed;
    a->len = c->out_len - c->out_flushed;
    c->out_flushed = c->out_len;
}

static void call_begin(struct smtp_client *c, struct smtp_actions *acts)
{
    acts->count = 0;
    c->out_len = 0;
    c->out_flushed = 0;
}

static void out_simple(struct smtp_client *c, enum smtp_cmd_verb verb)
{
    int n = smtp_cmd_simple(c->out + c->out_len, SMTP_CLIENT_OUT_BYTES - c->out_len, verb);
    vl_assert(n > 0);
    c->out_len += (uint32_t)n;
}

static void out_hello(struct smtp_client *c, bool ehlo)
{
    char *o = c->out + c->out_len;
    size_t cap = SMTP_CLIENT_OUT_BYTES - c->out_len;
    int n = ehlo ? smtp_cmd_ehlo(o, cap, c->conf->helo_name, c->conf->helo_name_len)
                 : smtp_cmd_helo(o, cap, c->conf->helo_name, c->conf->helo_name_len);
    vl_assert(n > 0);                        /* the name was checked at init */
    c->out_len += (uint32_t)n;
}

/* ---- fates ------------------------------------------------------------- */

static void fate_set(struct smtp_fate *f, enum smtp_fate_kind kind, uint16_t code,
                     const char *status, const char *text, size_t text_len)
{
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->code = code;
    if (status && status[0])
        snprintf(f->status, sizeof f->status, "%s", status);
    else
        snprintf(f->status, sizeof f->status, "%u.0.0", (unsigned)(code / 100));
    f->text = text;
    f->text_len = (uint16_t)(text_len > VL_DIAG_TEXT_BYTES_MAX ? VL_DIAG_TEXT_BYTES_MAX : text_len);
}

static enum smtp_fate_kind fate_kind_of(uint16_t code)
{
    return code < 300 ? SMTP_FATE_DELIVERED : code < 500 ? SMTP_FATE_DEFERRED : SMTP_FATE_BOUNCED;
}

/* Give recipient @p i its one fate, as an action. */
static void fate_give(struct smtp_client *c, struct smtp_actions *acts, uint32_t i,
                      const struct smtp_fate *f)
{
    struct smtp_txn *t = &c->txn;
    vl_assert(i < t->rcpt_count);
    vl_assert(t->rcpt[i].fate == SMTP_FATE_NONE);
    t->rcpt[i].fate = f->kind;
    t->rcpt[i].code = f->code;
    memcpy(t->rcpt[i].status, f->status, sizeof f->status);
    t->fates_given++;
    struct smtp_action *a = act_push(acts, SMTP_ACT_FATE);
    a->rcpt = i;
    a->fate = *f;
}

/* Every recipient still without a fate gets @p f. */
static void fate_rest(struct smtp_client *c, struct smtp_actions *acts, const struct smtp_fate *f)
{
    for (uint32_t i = 0; i < c->txn.rcpt_count; i++)
        if (c->txn.rcpt[i].fate == SMTP_FATE_NONE)
            fate_give(c, acts, i, f);
}

static void fate_from_reply(struct smtp_fate *f, const struct smtp_reply *r)
{
    fate_set(f, fate_kind_of(r->code), r->code, r->status, r->text, r->text_len);
}

static void fate_local(struct smtp_fate *f, enum smtp_fate_kind kind, uint16_t code,
                       const char *status, const char *text)
{
    fate_set(f, kind, code, status, text, strlen(text));
    f->local = true;
}

/* ---- connection-level transitions -------------------------------------- */

static void client_ready(struct smtp_client *c, struct smtp_actions *acts)
{
    c->state = SMTP_STATE_READY;
    act_push(acts, SMTP_ACT_READY);
}

static void txn_end(struct smtp_client *c, struct smtp_actions *acts)
{
    struct smtp_txn *t = &c->txn;
    vl_assert(c->in_txn);
    vl_assert(t->fates_given == t->rcpt_count);
    c->in_txn = false;
    act_push(acts, SMTP_ACT_TXN_DONE);
    if (t->need_rset) {
        out_simple(c, SMTP_CMD_RSET);
        c->state = SMTP_STATE_RSET;
    } else {
        client_ready(c, acts);
    }
}

/* The connection ends: unfinished recipients are deferred with @p why (a
 * 4xx; a dot without reply marks them ambiguous), then CLOSE. */
static void client_fail(struct smtp_client *c, struct smtp_actions *acts, enum smtp_fail fail,
                        const struct smtp_fate *why, bool send_quit)
{
    if (c->state == SMTP_STATE_CLOSED)
        return;
    if (c->in_txn) {
        struct smtp_fate f = *why;
        f.kind = SMTP_FATE_DEFERRED;
        if (f.code >= 500) {                 /* connection trouble never bounces */
            f.code = 451;
            f.status[0] = '4';
        }
        /* After the final dot, a lost connection and a reply we cannot read
         * (malformed, over a limit, out of protocol) leave the same doubt: the
         * server may have accepted the message. Either is "ambiguous". */
        if (c->txn.dot_sent && !c->txn.lone_dot && c->txn.recv.state == SMTP_STATE_DOT
            && (fail == SMTP_FAIL_CONN || fail == SMTP_FAIL_PROTO)) {
            f.ambiguous = true;
            c->ambiguous = true;
        }
        fate_rest(c, acts, &f);
        c->in_txn = false;
        act_push(acts, SMTP_ACT_TXN_DONE);
    }
    if (send_quit)
        out_simple(c, SMTP_CMD_QUIT);
    out_flush(c, acts);
    struct smtp_action *a = act_push(acts, SMTP_ACT_CLOSE);
    a->fail = fail;
    a->fate = *why;
    c->state = SMTP_STATE_CLOSED;
}

static int client_proto(struct smtp_client *c, struct smtp_actions *acts, const char *text)
{
    struct smtp_fate f;
    fate_local(&f, SMTP_FATE_DEFERRED, 451, "4.4.0", text);
    client_fail(c, acts, SMTP_FAIL_PROTO, &f, false);
    return VL_E_PROTO;
}

/* The peer refused the connection at a non-transaction step: QUIT, close. */
static void client_refused(struct smtp_client *c, struct smtp_actions *acts,
                           const struct smtp_reply *r, enum smtp_fail fail)
{
    struct smtp_fate f;
    fate_from_reply(&f, r);
    client_fail(c, acts, fail, &f, true);
}

int smtp_client_init(struct smtp_client *c, const struct smtp_client_conf *conf)
{
    memset(c, 0, offsetof(struct smtp_client, out));
    if (conf->helo_name == NULL ||
        vl_domain_check(conf->helo_name, conf->helo_name_len, NULL) < 0)
        return VL_E_INVALID;
    c->conf = conf;
    c->state = SMTP_STATE_BANNER;
    c->rcpts_max = VL_SMTP_RCPTS_PER_TXN_MAX;
    if (conf->rcpts_per_txn_max > 0 && conf->rcpts_per_txn_max < c->rcpts_max)
        c->rcpts_max = conf->rcpts_per_txn_max;
    for (unsigned s = 0; s < SMTP_STATE_COUNT; s++)
        c->timeout_ms[s] = conf->timeout_ms[s] ? conf->timeout_ms[s] : client_timeout_default[s];
    smtp_ehlo_init(&c->caps);
    smtp_reply_parser_init(&c->parser, NULL);
    return 0;
}

static void client_after_hello(struct smtp_client *c, struct smtp_actions *acts)
{
    if (!c->tls_active && c->conf->starttls && smtp_ehlo_has(&c->caps, SMTP_EXT_STARTTLS)) {
        out_simple(c, SMTP_CMD_STARTTLS);
        c->state = SMTP_STATE_STARTTLS;
    } else if (!c->tls_active && c->conf->tls_required) {
        struct smtp_fate f;
        fate_local(&f, SMTP_FATE_DEFERRED, 451, "4.7.0", "TLS required but STARTTLS not offered");
        client_fail(c, acts, SMTP_FAIL_TLS, &f, true);
    } else {
        client_ready(c, acts);
    }
}

static int client_on_hello(struct smtp_client *c, const struct smtp_reply *r,
                           struct smtp_actions *acts)
{
    unsigned cls = r->code / 100u;
    c->parser.ehlo = NULL;
    if (cls == 2) {
        if (c->state == SMTP_STATE_HELO)
            smtp_ehlo_init(&c->caps);        /* HELO: no extensions */
        client_after_hello(c, acts);
    } else if (cls == 5 && c->state == SMTP_STATE_EHLO) {
        smtp_ehlo_init(&c->caps);
        out_hello(c, false);
        c->state = SMTP_STATE_HELO;
    } else if (cls == 3) {
        return client_proto(c, acts, "unexpected 3xx reply to EHLO/HELO");
    } else {
        client_refused(c, acts, r, SMTP_FAIL_RESP);
    }
    return 0;
}

static int client_on_banner(struct smtp_client *c, const struct smtp_reply *r,
                            struct smtp_actions *acts)
{
    unsigned cls = r->code / 100u;
    if (cls == 2) {
        smtp_ehlo_init(&c->caps);
        c->parser.ehlo = &c->caps;
        out_hello(c, true);
        c->state = SMTP_STATE_EHLO;
    } else if (cls == 3) {
        return client_proto(c, acts, "unexpected 3xx greeting");
    } else {
        client_refused(c, acts, r, SMTP_FAIL_RESP);
    }
    return 0;
}

static int client_on_starttls(struct smtp_client *c, const struct smtp_reply *r, bool more,
                              struct smtp_actions *acts)
{
    unsigned cls = r->code / 100u;
    if (cls == 2 && more) {
        struct smtp_fate f;
        fate_local(&f, SMTP_FATE_DEFERRED, 451, "4.7.0",
                   "peer sent data after its 220 to STARTTLS (possible injection)");
        client_fail(c, acts, SMTP_FAIL_PROTO, &f, false);
        return VL_E_PROTO;
    }
    if (cls == 2) {
        out_flush(c, acts);
        act_push(acts, SMTP_ACT_START_TLS);
        c->state = SMTP_STATE_TLS;
    } else if (cls == 3) {
        return client_proto(c, acts, "unexpected 3xx reply to STARTTLS");
    } else if (c->conf->tls_required) {
        client_refused(c, acts, r, SMTP_FAIL_TLS);
    } else {
        client_ready(c, acts);               /* opportunistic: go on in plaintext */
    }
    return 0;
}

void smtp_client_tls_done(struct smtp_client *c, struct smtp_actions *acts)
{
    call_begin(c, acts);
    vl_assert(c->state == SMTP_STATE_TLS);
    c->tls_active = true;
    smtp_ehlo_init(&c->caps);                /* RFC 3207 4.2: forget everything */
    smtp_reply_parser_init(&c->parser, &c->caps);
    out_hello(c, true);
    c->state = SMTP_STATE_EHLO;
    out_flush(c, acts);
}

void smtp_client_quit(struct smtp_client *c, struct smtp_actions *acts)
{
    call_begin(c, acts);
    vl_assert(c->state == SMTP_STATE_READY && !c->in_txn);
    out_simple(c, SMTP_CMD_QUIT);
    c->state = SMTP_STATE_QUIT;
    out_flush(c, acts);
}

/* ---- transaction ------------------------------------------------------- */

static bool cursor_lt(struct smtp_cursor a, struct smtp_cursor b)
{
    return a.state < b.state || (a.state == b.state && a.rcpt < b.rcpt);
}

/* The command after @p cur: MAIL, each RCPT not refused locally, DATA, BODY, DOT. */
static void cursor_next(const struct smtp_txn *t, struct smtp_cursor *cur)
{
    switch (cur->state) {
    case SMTP_STATE_MAIL: cur->state = SMTP_STATE_RCPT; cur->rcpt = 0; break;
    case SMTP_STATE_RCPT: cur->rcpt++; break;
    case SMTP_STATE_DATA: cur->state = SMTP_STATE_BODY; return;
    case SMTP_STATE_BODY: cur->state = SMTP_STATE_DOT; return;
    default: vl_panic("cursor_next from %s", smtp_client_state_name(cur->state));
    }
    while (cur->rcpt < t->rcpt_count && t->rcpt[cur->rcpt].skip)
        cur->rcpt++;
    if (cur->rcpt == t->rcpt_count) {
        cur->state = SMTP_STATE_DATA;
        cur->rcpt = 0;
    }
}

static void txn_rcpt_cmd(const struct smtp_client *c, uint32_t i, struct smtp_cmd_rcpt *r)
{
    const struct smtp_msg_rcpt *m = &c->txn.msg->rcpts[i];
    bool dsn = smtp_ehlo_has(&c->caps, SMTP_EXT_DSN);
    r->path = m->addr;
    r->path_len = m->addr_len;
    r->notify = dsn ? m->notify : 0;
    r->orcpt = dsn ? m->orcpt : NULL;
    r->orcpt_len = dsn ? m->orcpt_len : 0;
}

static int txn_format(const struct smtp_client *c, const struct smtp_cursor *cur)
{
    char *o = (char *)c->out + c->out_len;
    size_t cap = SMTP_CLIENT_OUT_BYTES - c->out_len;
    struct smtp_cmd_rcpt r;
    switch (cur->state) {
    case SMTP_STATE_MAIL: return smtp_cmd_mail(o, cap, &c->txn.mail);
    case SMTP_STATE_RCPT: txn_rcpt_cmd(c, cur->rcpt, &r); return smtp_cmd_rcpt(o, cap, &r);
    case SMTP_STATE_DATA: return smtp_cmd_simple(o, cap, SMTP_CMD_DATA);
    default: vl_panic("txn_format in %s", smtp_client_state_name(cur->state));
    }
}

/* Write what may go now: with PIPELINING, MAIL through DATA (as far as the
 * output buffer holds); without it, one command per round trip. DATA is
 * not sent once every RCPT reply is in and none accepted. */
static void txn_send_more(struct smtp_client *c)
{
    struct smtp_txn *t = &c->txn;
    bool pipelining = smtp_ehlo_has(&c->caps, SMTP_EXT_PIPELINING);
    while (t->send.state <= SMTP_STATE_DATA && !t->mail_failed) {
        bool outstanding = cursor_lt(t->recv, t->send);
        if (!pipelining && outstanding)
            break;
        if (t->send.state == SMTP_STATE_DATA && t->accepted == 0 && !outstanding)
            break;
        int n = txn_format(c, &t->send);
        if (n == VL_E_TOOBIG)
            break;                           /* buffer full: more after the next reply */
        vl_assert(n > 0);                    /* arguments were checked at txn_begin */
        c->out_len += (uint32_t)n;
        cursor_next(t, &t->send);
    }
    vl_assert(!cursor_lt(t->send, t->recv));
}

/* After a reply: send more, or end a transaction that cannot go on. */
static void txn_progress(struct smtp_client *c, struct smtp_actions *acts)
{
    struct smtp_txn *t = &c->txn;
    txn_send_more(c);
    if (t->send.state <= SMTP_STATE_DATA && !cursor_lt(t->recv, t->send)) {
        vl_assert(t->mail_failed || t->accepted == 0);
        t->need_rset = true;                 /* MAIL refused, or no RCPT accepted */
        txn_end(c, acts);
    }
}

static void txn_on_mail(struct smtp_client *c, const struct smtp_reply *r,
                        struct smtp_actions *acts)
{
    struct smtp_txn *t = &c->txn;
    cursor_next(t, &t->recv);
    if (r->code / 100 == 2)
        return;
    struct smtp_fate f;
    fate_from_reply(&f, r);
    if (r->code == 552 && r->status[0] == '\0')
        snprintf(f.status, sizeof f.status, "5.3.4");
    t->mail_failed = true;
    t->need_rset = true;
    fate_rest(c, acts, &f);
}

static void txn_on_rcpt(struct smtp_client *c, const struct smtp_reply *r,
                        struct smtp_actions *acts)
{
    struct smtp_txn *t = &c->txn;
    uint32_t i = t->recv.rcpt;
    cursor_next(t, &t->recv);
    if (t->mail_failed)
        return;                              /* fates given at MAIL */
    if (r->code / 100 == 2) {
        t->rcpt[i].accepted = true;
        t->accepted++;
        return;
    }
    struct smtp_fate f;
    fate_from_reply(&f, r);
    if (r->code == 452 || r->code == 552)    /* too many recipients: RFC 5321 4.5.3.1.10 */
        f.kind = SMTP_FATE_DEFERRED;
    fate_give(c, acts, i, &f);
}

static int txn_on_data(struct smtp_client *c, const struct smtp_reply *r,
                       struct smtp_actions *acts)
{
    struct smtp_txn *t = &c->txn;
    cursor_next(t, &t->recv);
    if (r->code == 354) {
        if (t->mail_failed || t->accepted == 0) {
            memcpy(c->out + c->out_len, ".\r\n", 3);   /* end the empty DATA at once */
            c->out_len += 3;
            t->lone_dot = true;
            t->dot_sent = true;
            t->recv.state = t->send.state = SMTP_STATE_DOT;
        } else {
            out_flush(c, acts);
            act_push(acts, SMTP_ACT_SEND_BODY);
        }
        return 0;
    }
    if (r->code / 100 <= 3)
        return client_proto(c, acts, "DATA answered with a code other than 354, 4xx or 5xx");
    if (!t->mail_failed) {
        struct smtp_fate f;
        fate_from_reply(&f, r);
        fate_rest(c, acts, &f);
    }
    t->need_rset = true;
    txn_end(c, acts);
    return 0;
}

static int txn_on_dot(struct smtp_client *c, const struct smtp_reply *r,
                      struct smtp_actions *acts)
{
    struct smtp_txn *t = &c->txn;
    if (r->code / 100 == 3)
        return client_proto(c, acts, "unexpected 3xx reply to the final dot");
    if (!t->lone_dot) {
        struct smtp_fate f;
        fate_from_reply(&f, r);
        fate_rest(c, acts, &f);
    }
    t->need_rset = false;                    /* the server's transaction ended with the dot */
    txn_end(c, acts);
    return 0;
}

static int txn_on_reply(struct smtp_client *c, const struct smtp_reply *r,
                        struct smtp_actions *acts)
{
    struct smtp_txn *t = &c->txn;
    enum smtp_state st = t->recv.state;
    if (st == SMTP_STATE_DOT)
        return t->dot_sent ? txn_on_dot(c, r, acts)
                           : client_proto(c, acts, "reply before the final dot");
    if (st == SMTP_STATE_BODY || !cursor_lt(t->recv, t->send))
        return client_proto(c, acts, "reply with no command outstanding");
    if (st == SMTP_STATE_DATA)
        return txn_on_data(c, r, acts);
    if (r->code / 100 == 3)
        return client_proto(c, acts, "unexpected 3xx reply to MAIL/RCPT");
    if (st == SMTP_STATE_MAIL)
        txn_on_mail(c, r, acts);
    else
        txn_on_rcpt(c, r, acts);
    txn_progress(c, acts);
    return 0;
}

/* Build MAIL and decide whether the message can go at all. @return true and
 * fill @p f when every recipient must be refused locally. */
static bool txn_refuse_msg(struct smtp_client *c, struct smtp_fate *f)
{
    const struct smtp_msg *m = c->txn.msg;
    const struct smtp_ehlo *e = &c->caps;
    struct vl_addr a;
    bool utf8 = false, from_utf8 = false;
    if (m->from_len > 0) {
        if (vl_addr_parse(m->from, m->from_len, &a, NULL) < 0) {
            fate_local(f, SMTP_FATE_BOUNCED, 553, "5.1.7", "invalid sender address");
            return true;
        }
        utf8 = from_utf8 = a.utf8;
    }
    for (uint32_t i = 0; i < m->rcpt_count; i++)
        if (vl_addr_parse(m->rcpts[i].addr, m->rcpts[i].addr_len, &a, NULL) == 0 && a.utf8)
            utf8 = true;
    bool has_utf8 = smtp_ehlo_has(e, SMTP_EXT_SMTPUTF8);
    bool has_8bit = smtp_ehlo_has(e, SMTP_EXT_8BITMIME);
    bool dsn = smtp_ehlo_has(e, SMTP_EXT_DSN);
    if (smtp_ehlo_has(e, SMTP_EXT_SIZE) && e->size_max > 0 && m->size > e->size_max) {
        fate_local(f, SMTP_FATE_BOUNCED, 552, "5.3.4",
                   "message larger than the size the server accepts");
        return true;
    }
    if (m->is_8bit && !has_8bit) {
        fate_local(f, SMTP_FATE_BOUNCED, 554, "5.6.3", "8-bit message and the server lacks 8BITMIME");
        return true;
    }
    if (from_utf8 && !has_utf8) {
        fate_local(f, SMTP_FATE_BOUNCED, 553, "5.6.7", "UTF-8 sender and the server lacks SMTPUTF8");
        return true;
    }
    struct smtp_cmd_mail *mc = &c->txn.mail;
    *mc = (struct smtp_cmd_mail){
        .path = m->from, .path_len = m->from_len,
        .size_set = smtp_ehlo_has(e, SMTP_EXT_SIZE), .size = m->size,
        .body_8bitmime = has_8bit && (m->is_8bit || (utf8 && has_utf8)),
        .smtputf8 = utf8 && has_utf8,
        .ret = dsn ? m->ret : SMTP_RET_NONE,
        .envid = dsn ? m->envid : NULL, .envid_len = dsn ? m->envid_len : 0,
    };
    char tmp[VL_SMTP_CMD_LINE_BYTES_MAX];
    if (smtp_cmd_mail(tmp, sizeof tmp, mc) < 0) {
        fate_local(f, SMTP_FATE_BOUNCED, 554, "5.5.4", "MAIL parameters invalid or too long");
        return true;
    }
    return false;
}

/* Refuse locally the recipients that cannot be sent; they are skipped. */
static void txn_refuse_rcpts(struct smtp_client *c, struct smtp_actions *acts)
{
    struct smtp_txn *t = &c->txn;
    bool has_utf8 = smtp_ehlo_has(&c->caps, SMTP_EXT_SMTPUTF8);
    for (uint32_t i = 0; i < t->rcpt_count; i++) {
        const struct smtp_msg_rcpt *mr = &t->msg->rcpts[i];
        struct vl_addr a;
        struct smtp_fate f;
        struct smtp_cmd_rcpt r;
        char tmp[VL_SMTP_CMD_LINE_BYTES_MAX];
        if (mr->addr == NULL || vl_addr_parse(mr->addr, mr->addr_len, &a, NULL) < 0)
            fate_local(&f, SMTP_FATE_BOUNCED, 553, "5.1.3", "invalid recipient address");
        else if (a.utf8 && !has_utf8)
            fate_local(&f, SMTP_FATE_BOUNCED, 553, "5.6.7",
                       "UTF-8 address and the server lacks SMTPUTF8");
        else if (txn_rcpt_cmd(c, i, &r), smtp_cmd_rcpt(tmp, sizeof tmp, &r) < 0)
            fate_local(&f, SMTP_FATE_BOUNCED, 554, "5.5.4", "RCPT parameters invalid or too long");
        else
            continue;
        t->rcpt[i].skip = true;
        fate_give(c, acts, i, &f);
    }
}

int smtp_client_txn_begin(struct smtp_client *c, const struct smtp_msg *m,
                          struct smtp_actions *acts)
{
    call_begin(c, acts);
    vl_assert(c->state == SMTP_STATE_READY && !c->in_txn);
    if (m->rcpts == NULL || m->rcpt_count == 0 || m->rcpt_count > c->rcpts_max)
        return VL_E_INVALID;
    struct smtp_txn *t = &c->txn;
    memset(t, 0, offsetof(struct smtp_txn, rcpt));
    memset(t->rcpt, 0, m->rcpt_count * sizeof t->rcpt[0]);
    t->msg = m;
    t->rcpt_count = m->rcpt_count;
    t->send.state = t->recv.state = SMTP_STATE_MAIL;
    c->in_txn = true;
    c->ambiguous = false;
    c->state = SMTP_STATE_MAIL;
    struct smtp_fate f;
    if (txn_refuse_msg(c, &f)) {
        fate_rest(c, acts, &f);
        txn_end(c, acts);
    } else {
        txn_refuse_rcpts(c, acts);
        if (t->fates_given == t->rcpt_count)
            txn_end(c, acts);
        else
            txn_progress(c, acts);
    }
    out_flush(c, acts);
    return 0;
}

void smtp_client_body_sent(struct smtp_client *c, struct smtp_actions *acts)
{
    call_begin(c, acts);
    struct smtp_txn *t = &c->txn;
    vl_assert(c->in_txn && t->recv.state == SMTP_STATE_BODY && t->send.state == SMTP_STATE_BODY);
    t->recv.state = t->send.state = SMTP_STATE_DOT;
    t->dot_sent = true;
}

/* ---- replies, bytes, time ---------------------------------------------- */

static int client_dispatch(struct smtp_client *c, const struct smtp_reply *r, bool more,
                           struct smtp_actions *acts)
{
    struct smtp_fate f;
    if (c->state == SMTP_STATE_CLOSED)
        return 0;
    if (r->code == 421 && c->state != SMTP_STATE_QUIT) {
        fate_from_reply(&f, r);              /* closing: defer what is unfinished */
        client_fail(c, acts, SMTP_FAIL_RESP, &f, false);
        return 0;
    }
    if (r->code / 100 == 3 && client_expect[smtp_client_state(c)] != SMTP_REPLY_3XX)
        return client_proto(c, acts, "unexpected 3xx reply");
    if (c->in_txn)
        return txn_on_reply(c, r, acts);
    switch (c->state) {
    case SMTP_STATE_BANNER:   return client_on_banner(c, r, acts);
    case SMTP_STATE_EHLO:     return client_on_hello(c, r, acts);
    case SMTP_STATE_HELO:     return client_on_hello(c, r, acts);
    case SMTP_STATE_STARTTLS: return client_on_starttls(c, r, more, acts);
    case SMTP_STATE_RSET:
        if (r->code / 100 == 2)
            client_ready(c, acts);
        else
            client_refused(c, acts, r, SMTP_FAIL_RESP);
        return 0;
    case SMTP_STATE_QUIT:
        fate_from_reply(&f, r);
        f.kind = SMTP_FATE_NONE;
        client_fail(c, acts, SMTP_FAIL_NONE, &f, false);
        return 0;
    case SMTP_STATE_TLS:
    case SMTP_STATE_READY:    return client_proto(c, acts, "unsolicited reply");
    default: vl_panic("reply in state %s", smtp_client_state_name(c->state));
    }
}

int smtp_client_on_reply(struct smtp_client *c, const struct smtp_reply *r, bool more_input,
                         struct smtp_actions *acts)
{
    call_begin(c, acts);
    vl_assert(r->code >= 200 && r->code <= 599);
    int rc = client_dispatch(c, r, more_input, acts);
    if (c->state != SMTP_STATE_CLOSED)
        out_flush(c, acts);
    vl_assert(c->out_flushed == c->out_len);
    return rc;
}

int smtp_client_on_bytes(struct smtp_client *c, const char *buf, size_t len, size_t *consumed,
                         struct smtp_actions *acts)
{
    call_begin(c, acts);
    *consumed = 0;
    if (c->state == SMTP_STATE_CLOSED) {
        *consumed = len;
        return 0;
    }
    int rc = smtp_reply_feed(&c->parser, buf, len, consumed);
    if (rc < 0) {
        client_proto(c, acts, "malformed reply (bad code, bare CR/LF or over a limit)");
        return rc;
    }
    if (rc == 0)
        return 0;
    rc = smtp_client_on_reply(c, smtp_reply_get(&c->parser), *consumed < len, acts);
    return rc < 0 ? rc : 1;
}

enum smtp_state smtp_client_state(const struct smtp_client *c)
{
    return c->in_txn ? c->txn.recv.state : c->state;
}

uint32_t smtp_client_deadline_ms(const struct smtp_client *c)
{
    enum smtp_state s = smtp_client_state(c);
    vl_assert((unsigned)s < SMTP_STATE_COUNT);
    return c->timeout_ms[s];
}

static void client_lost(struct smtp_client *c, struct smtp_actions *acts, const char *what)
{
    struct smtp_fate f;
    if (c->state == SMTP_STATE_CLOSED)
        return;
    if (c->state == SMTP_STATE_QUIT) {       /* we were leaving anyway */
        fate_local(&f, SMTP_FATE_NONE, 221, "2.0.0", "closed after QUIT");
        client_fail(c, acts, SMTP_FAIL_NONE, &f, false);
        return;
    }
    snprintf(c->diag, sizeof c->diag, "%s %s", what,
             smtp_client_state_name(smtp_client_state(c)));
    fate_local(&f, SMTP_FATE_DEFERRED, 451, "4.4.2", c->diag);
    client_fail(c, acts, SMTP_FAIL_CONN, &f, false);
}

void smtp_client_on_timeout(struct smtp_client *c, struct smtp_actions *acts)
{
    call_begin(c, acts);
    client_lost(c, acts, "timeout waiting for the reply to");
}

void smtp_client_on_close(struct smtp_client *c, struct smtp_actions *acts)
{
    call_begin(c, acts);
    client_lost(c, acts, "connection lost in state");
}
