/*
 * sink.h - `volley sink`: an SMTP sink for tests and benchmarks. It accepts
 * SMTP on one or more addresses, counts what it receives, optionally saves
 * each message with its envelope, and injects faults (reply codes, delays,
 * disconnects) chosen by rules that are reproducible from a seed.
 *
 * The protocol is engine/smtp_server.c's (pure); the I/O is engine/rx.c's.
 * Threads: N reactor threads, each with its own listening socket per address
 * (SO_REUSEPORT: the kernel spreads connections, nothing is shared on the hot
 * path), plus the calling thread, which handles signals and prints stats.
 */
#ifndef VOLLEY_SINK_H
#define VOLLEY_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sink_model.h"
#include "smtp_server.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SINK_LISTEN_MAX      16u
#define SINK_RULES_MAX       32u
#define SINK_THREADS_MAX     64u
#define SINK_MATCH_BYTES_MAX 64u

/* Where a rule applies. MID_DATA: inside the DATA content (disconnects only). */
#define SINK_STAGES(X) X(BANNER, "banner") X(EHLO, "ehlo") X(MAIL, "mail") X(RCPT, "rcpt") \
    X(DATA, "data") X(DOT, "dot") X(MID_DATA, "mid-data")

enum sink_stage {
#define X(name, str) SINK_STAGE_##name,
    SINK_STAGES(X)
#undef X
    SINK_STAGE_COUNT
};

enum sink_action { SINK_ACT_REPLY, SINK_ACT_DELAY, SINK_ACT_DISCONNECT };
enum sink_when { SINK_WHEN_ALWAYS, SINK_WHEN_EVERY, SINK_WHEN_NTH, SINK_WHEN_PROB };

struct sink_rule {
    enum sink_action action;
    enum sink_stage stage;
    enum sink_when when;
    uint32_t n;                          /* EVERY: each n-th; NTH: only the n-th (1-based) */
    double prob;                         /* PROB: 0..1 */
    uint16_t code;                       /* REPLY: 4xx/5xx (or 2xx) */
    uint32_t delay_ms;                   /* DELAY */
    char match[SINK_MATCH_BYTES_MAX + 1];  /* MAIL/RCPT: local part starts with this ("" = any) */
    char text[SMTP_SERVER_TEXT_BYTES_MAX]; /* REPLY: text after the code ("" = a default) */
};

struct sink_conf {
    struct sockaddr_storage listen[SINK_LISTEN_MAX];
    socklen_t listen_len[SINK_LISTEN_MAX];
    uint32_t listen_count;
    uint32_t threads;                    /* reactor threads, 1..SINK_THREADS_MAX */
    uint32_t conns_max;                  /* per thread */
    uint32_t stats_every_s;              /* 0 = only on SIGUSR1 and at exit */
    uint32_t after_txns;                 /* close after this many messages per connection; 0 = off */
    uint32_t idle_timeout_ms;            /* per read, RFC 5321 4.5.3.2.7: 5 min */
    bool json;
    const char *save_dir;                /* NULL = don't save */
    const char *tls_cert, *tls_key;      /* PEM files: offer STARTTLS; NULL = no TLS */
    bool tls_break;                      /* --tls-break: every handshake gets a fatal alert */
    bool model_on;                       /* --model FILE: throttle like a provider */
    struct sink_model_conf model;
    uint64_t seed;
    struct smtp_server_conf smtp;        /* hostname, SIZE, PIPELINING, 8BITMIME ... */
    struct sink_rule rules[SINK_RULES_MAX];
    uint32_t rule_count;
};

/** Defaults: no listener yet, 1 thread, 1024 connections per thread, PIPELINING,
 *  8BITMIME, ENHANCEDSTATUSCODES, no SIZE limit, seed 1. */
void sink_conf_defaults(struct sink_conf *c);

/** Parse one fault option into a rule of @p c. @p opt is "--fault", "--delay" or
 *  "--disconnect"; @p spec its value:
 *    --fault      STAGE=CODE[:every=N|:nth=N|:prob=P][:match=PREFIX][:text=TEXT]
 *    --delay      STAGE=DURATION[:every=N|:nth=N|:prob=P][:match=PREFIX]
 *    --disconnect STAGE[:every=N|:nth=N|:prob=P][:match=PREFIX]  | after-txns=N
 *  STAGE: banner ehlo mail rcpt data dot (disconnect also: mid-data). DURATION:
 *  N, Nms or Ns. TEXT runs to the end of the spec.
 *  @return 0, or VL_E_INVALID with a message naming the problem in @p err. */
int sink_conf_add_rule(struct sink_conf *c, const char *opt, const char *spec, char *err,
                       size_t err_cap);

/** Parse "ADDR:PORT" or "[V6ADDR]:PORT" into the next listener of @p c.
 *  @return 0, or VL_E_INVALID with a message in @p err. */
int sink_conf_add_listen(struct sink_conf *c, const char *spec, char *err, size_t err_cap);

/** STARTTLS with the PEM @p cert and @p key (both or neither; NULL = no TLS).
 *  Loads them once to check them. @return 0, or VL_E_INVALID with a message. */
int sink_conf_set_tls(struct sink_conf *c, const char *cert, const char *key, char *err,
                      size_t err_cap);

/** Parse a duration (N, Nms, Ns) into *@p ms. @return 0 or VL_E_INVALID. */
int sink_duration_parse(const char *s, uint32_t *ms);

/** Does @p r apply to @p arg (MAIL/RCPT path, may be NULL) by its match prefix? Pure. */
bool sink_rule_matches(const struct sink_rule *r, const char *arg, size_t arg_len);

/** Does @p r fire on its @p seen-th (1-based) matching event, with @p roll uniform
 *  in [0, 1) for probabilities? Pure. */
bool sink_rule_fires(const struct sink_rule *r, uint64_t seen, double roll);

/** Run the sink: bind (printing "sink: listening on ADDR:PORT" per address on
 *  stdout), serve until SIGTERM/SIGINT, print stats (on SIGUSR1, every
 *  stats_every_s, at exit). Blocks SIGTERM/SIGINT/SIGUSR1/SIGPIPE in the caller.
 *  @return 0, or a negative error after printing what failed. */
int sink_run(const struct sink_conf *conf);

#ifdef __cplusplus
}
#endif
#endif
