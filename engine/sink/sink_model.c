/*
 * sink_model.c - the provider model of `volley sink --model FILE` (see
 * sink_model.h). Invariants: an address's open count never goes below zero
 * (every conn_close pairs with an accepted conn_open); a blocked address gets
 * nothing accepted until block_until_ms. Diagnostics: counters only.
 */
#include "sink_model.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "volley/error.h"

bool sink_bucket_take(struct sink_bucket *b, double rate, double burst, uint64_t now_ms)
{
    if (now_ms > b->at_ms) {
        b->tokens += rate * (double)(now_ms - b->at_ms) / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
        b->at_ms = now_ms;
    }
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

struct model_addr {
    char ip[INET6_ADDRSTRLEN];
    struct sink_bucket bucket;
    uint32_t open, open_max;       /* connections now, and the most at once */
    uint32_t abuse;                /* excesses since the last accepted one */
    uint64_t block_until_ms;
    uint64_t accepted, deferred, conns_refused, blocks, delivered;
    char helo[64];                 /* the last EHLO/HELO name (printable ASCII only) */
};

struct sink_model {
    struct sink_model_conf conf;
    pthread_mutex_t mu;
    uint32_t count;
    struct model_addr addrs[SINK_MODEL_ADDRS_MAX];
};

int sink_model_create(struct sink_model **out, const struct sink_model_conf *c)
{
    struct sink_model *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->conf = *c;
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return 0;
}

void sink_model_destroy(struct sink_model *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int model_slot(struct sink_model *m, const struct sockaddr *peer, uint64_t now_ms)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (peer->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)peer)->sin_addr, ip,
                  sizeof ip);
    else if (peer->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr, ip,
                  sizeof ip);
    for (uint32_t i = 0; i < m->count; i++)          /* a few providers' worth: linear */
        if (!strcmp(m->addrs[i].ip, ip))
            return (int)i;
    if (m->count == SINK_MODEL_ADDRS_MAX)
        return -1;
    struct model_addr *a = &m->addrs[m->count];
    memset(a, 0, sizeof *a);
    memcpy(a->ip, ip, sizeof a->ip);
    a->bucket.tokens = m->conf.burst;                /* a new sender starts with a full bucket */
    a->bucket.at_ms = now_ms;
    return (int)m->count++;
}

/* An excess: count it, and block the address after abuse_max in a row. */
static void model_excess(struct sink_model *m, struct model_addr *a, uint64_t now_ms)
{
    a->abuse++;
    if (m->conf.abuse_max && a->abuse >= m->conf.abuse_max && m->conf.block_ms) {
        a->block_until_ms = now_ms + m->conf.block_ms;
        a->abuse = 0;
        a->blocks++;
    }
}

bool sink_model_conn_open(struct sink_model *m, const struct sockaddr *peer, uint64_t now_ms,
                          int *slot)
{
    pthread_mutex_lock(&m->mu);
    int i = model_slot(m, peer, now_ms);
    *slot = i;
    bool ok = true;
    if (i >= 0) {
        struct model_addr *a = &m->addrs[i];
        if (a->block_until_ms > now_ms ||
            (m->conf.conns_max && a->open >= m->conf.conns_max)) {
            ok = false;
            a->conns_refused++;
            if (a->block_until_ms <= now_ms)
                model_excess(m, a, now_ms);
        } else {
            a->open++;
            if (a->open > a->open_max)
                a->open_max = a->open;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return ok;
}

void sink_model_conn_close(struct sink_model *m, int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&m->mu);
    vl_assert(m->addrs[slot].open > 0);
    m->addrs[slot].open--;
    pthread_mutex_unlock(&m->mu);
}

bool sink_model_msg(struct sink_model *m, int slot, uint64_t now_ms)
{
    if (slot < 0)
        return true;
    pthread_mutex_lock(&m->mu);
    struct model_addr *a = &m->addrs[slot];
    bool ok = a->block_until_ms <= now_ms &&
              (m->conf.msgs_per_s <= 0 ||
               sink_bucket_take(&a->bucket, m->conf.msgs_per_s, m->conf.burst, now_ms));
    if (ok) {
        a->accepted++;
        a->abuse = 0;
    } else {
        a->deferred++;
        if (a->block_until_ms <= now_ms)
            model_excess(m, a, now_ms);
    }
    pthread_mutex_unlock(&m->mu);
    return ok;
}

void sink_model_delivered(struct sink_model *m, int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&m->mu);
    m->addrs[slot].delivered++;
    pthread_mutex_unlock(&m->mu);
}

void sink_model_helo(struct sink_model *m, int slot, const char *name, size_t len)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&m->mu);
    struct model_addr *a = &m->addrs[slot];
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < sizeof a->helo; i++)
        if (name[i] > ' ' && name[i] < 0x7f && name[i] != '"' && name[i] != '\\')
            a->helo[n++] = name[i];
    a->helo[n] = '\0';
    pthread_mutex_unlock(&m->mu);
}

uint16_t sink_model_reply(const struct sink_model *m, const char **text)
{
    *text = m->conf.reply_text;
    return m->conf.reply_code;
}

void sink_model_print(struct sink_model *m, FILE *f, bool json)
{
    pthread_mutex_lock(&m->mu);
    for (uint32_t i = 0; i < m->count; i++) {
        const struct model_addr *a = &m->addrs[i];
        if (json)
            fprintf(f, "%s\"%s\":{\"accepted\":%llu,\"delivered\":%llu,\"deferred\":%llu,"
                    "\"conns_refused\":%llu,\"blocks\":%llu,\"open\":%u,\"open_max\":%u,"
                    "\"ehlo\":\"%s\"}", i ? "," : "", a->ip, (unsigned long long)a->accepted,
                    (unsigned long long)a->delivered, (unsigned long long)a->deferred,
                    (unsigned long long)a->conns_refused, (unsigned long long)a->blocks, a->open,
                    a->open_max, a->helo);
        else
            fprintf(f, "%s%s:%llu/%llu/%llu", i ? "," : "", a->ip,
                    (unsigned long long)a->delivered, (unsigned long long)a->deferred,
                    (unsigned long long)a->conns_refused);
    }
    pthread_mutex_unlock(&m->mu);
}

/* ---- the model file ----------------------------------------------------------- */

static double model_number(const config_setting_t *s, bool *ok)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:   return config_setting_get_int(s);
    case CONFIG_TYPE_INT64: return (double)config_setting_get_int64(s);
    case CONFIG_TYPE_FLOAT: return config_setting_get_float(s);
    default: *ok = false; return 0;
    }
}

/* "30s", "500ms", a number of seconds. */
static bool model_duration(const config_setting_t *s, uint64_t *out)
{
    bool ok = true;
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        double v = model_number(s, &ok);
        if (!ok || v < 0 || v > 86400.0 * 365)
            return false;
        *out = (uint64_t)(v * 1000.0);
        return true;
    }
    char *end;
    const char *t = config_setting_get_string(s);
    double v = strtod(t, &end);
    if (end == t || v < 0 || v > 86400.0 * 365)
        return false;
    double mult = !strcmp(end, "ms") ? 1 : !strcmp(end, "s") || !*end ? 1000
                : !strcmp(end, "m") ? 60000 : !strcmp(end, "h") ? 3600000 : -1;
    if (mult < 0)
        return false;
    *out = (uint64_t)(v * mult);
    return true;
}

unsigned sink_model_conf_load(struct sink_model_conf *c, const char *path, FILE *err)
{
    static const char *const keys = "msgs-per-sec, burst, connections, reply, abuse, block";
    memset(c, 0, sizeof *c);
    c->reply_code = 421;
    snprintf(c->reply_text, sizeof c->reply_text,
             "4.7.0 Too many messages or connections from your address, try again later");
    config_t lc;
    config_init(&lc);
    unsigned errors = 0;
    if (config_read_file(&lc, path) != CONFIG_TRUE) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            fprintf(err, "%s: cannot read the model file\n", path);
        else
            fprintf(err, "%s:%d: syntax error: %s\n", path, config_error_line(&lc),
                    config_error_text(&lc));
        config_destroy(&lc);
        return 1;
    }
    config_setting_t *root = config_root_setting(&lc);
    bool burst_set = false;
    for (int i = 0; i < config_setting_length(root); i++) {
        const config_setting_t *e = config_setting_get_elem(root, (unsigned)i);
        const char *n = config_setting_name(e);
        unsigned line = config_setting_source_line(e);
        bool ok = true;
        if (!strcmp(n, "msgs-per-sec")) {
            c->msgs_per_s = model_number(e, &ok);
            ok &= c->msgs_per_s > 0 && c->msgs_per_s <= 1e6;
        } else if (!strcmp(n, "burst")) {
            c->burst = model_number(e, &ok);
            ok &= c->burst >= 1 && c->burst <= 1e6;
            burst_set = true;
        } else if (!strcmp(n, "connections")) {
            double v = model_number(e, &ok);
            ok &= v >= 1 && v <= 100000 && v == (double)(uint32_t)v;
            c->conns_max = (uint32_t)v;
        } else if (!strcmp(n, "abuse")) {
            double v = model_number(e, &ok);
            ok &= v >= 1 && v <= 1000000 && v == (double)(uint32_t)v;
            c->abuse_max = (uint32_t)v;
        } else if (!strcmp(n, "block")) {
            ok = model_duration(e, &c->block_ms) && c->block_ms > 0;
        } else if (!strcmp(n, "reply")) {
            const char *t = config_setting_get_string(e);
            char *end = NULL;
            long code = t ? strtol(t, &end, 10) : 0;
            ok = t && code >= 400 && code <= 499 && end == t + 3 && *end == ' ' &&
                 strlen(end + 1) > 0 && strlen(end + 1) < sizeof c->reply_text;
            if (ok) {
                c->reply_code = (uint16_t)code;
                snprintf(c->reply_text, sizeof c->reply_text, "%s", end + 1);
            }
        } else {
            fprintf(err, "%s:%u: unknown key '%s' (known: %s)\n", path, line, n, keys);
            errors++;
            continue;
        }
        if (!ok) {
            fprintf(err, "%s:%u: %s: bad value (msgs-per-sec, burst: numbers > 0; connections,"
                    " abuse: whole numbers >= 1; block: a duration like \"30s\"; reply: "
                    "\"4xx TEXT\")\n", path, line, n);
            errors++;
        }
    }
    if (!burst_set)
        c->burst = c->msgs_per_s > 1 ? c->msgs_per_s : 1;
    if (c->abuse_max && !c->block_ms) {
        fprintf(err, "%s: abuse needs block (how long to block)\n", path);
        errors++;
    }
    config_destroy(&lc);
    return errors;
}
