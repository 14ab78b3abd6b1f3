/*
 * config.h - the options shared by `volley run` and `volley send`, parsed and
 * validated once into an immutable struct before any shard starts.
 * Invariant: every field of a parsed config is within its documented range;
 * the engine never re-validates.
 */
#ifndef VOLLEY_CONFIG_H
#define VOLLEY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "volley/hostport.h"
#include "volley/limits.h"

/* An IP network (CIDR), parsed once: --allow. */
struct vl_net {
    int family;           /* AF_INET or AF_INET6 */
    uint8_t addr[16];     /* network order; bits past prefix are zero */
    uint8_t prefix;       /* 0..32 or 0..128 */
};

/** Parse "IP/LEN" or a bare IP (a host network). @return 0, or -1 with *@p why. */
int vl_net_parse(const char *s, struct vl_net *out, const char **why);
/** Is the address in @p sa (AF_INET/AF_INET6; a v4-mapped v6 address counts as
 *  IPv4) inside @p n? */
bool vl_net_match(const struct vl_net *n, const struct sockaddr *sa);

/* A static route, parsed once (vl_hostport_parse) and passed on as such. */
struct vl_route {
    char domain[256];     /* lowercased; "*" = every domain */
    struct vl_hostport to;    /* host name or IP address, and port */
};

/* STARTTLS policy (PROTOCOL.md 1.12; issue 14). */
enum vl_tls_level {
    VL_TLS_MAY,           /* default on port 25: STARTTLS when offered, no certificate
                             check, plaintext when not offered or refused (454), and
                             when the handshake failed (that host is remembered for
                             tls_fallback_ms and gets plaintext at once) */
    VL_TLS_NONE,          /* never send STARTTLS */
    VL_TLS_ENCRYPT,       /* STARTTLS required (else 451 4.7.0), no certificate check */
    VL_TLS_VERIFY,        /* STARTTLS required, the chain checked against the system
                             store (or tls_ca_file) and the MX name: else 451 4.7.5 */
};

#define VL_TLS_LEVEL_COUNT 4

/** "none" | "may" | "encrypt" | "verify". @return 0, or -1 (*@p out untouched). */
int vl_tls_level_parse(const char *s, enum vl_tls_level *out);
/** The level's name (static). */
const char *vl_tls_level_name(enum vl_tls_level l);

struct vl_shaping;                /* policy/shaping.h: destination policies, egress */
struct vl_config_owned;           /* strings and tables a config file brought */

/* DKIM signing options (issue 13; keys are loaded by engine/dkim/dkim.h). */
#define VL_DKIM_KEYS_MAX          16u  /* policy: --dkim keys (two per domain for dual signing) */
#define VL_DKIM_HEADERS_MAX       64u  /* policy: header names in --dkim-headers */
#define VL_DKIM_SELECTOR_BYTES_MAX 64u /* policy: a selector is one or more DNS labels */
struct vl_dkim_key_opt {
    char domain[VL_SMTP_DOMAIN_BYTES_MAX + 1];    /* lowercased signing domain (d=) */
    char selector[VL_DKIM_SELECTOR_BYTES_MAX];    /* s= */
    const char *key_path;                         /* PEM private key (RSA >= 2048 or Ed25519) */
};
struct vl_dkim_opts {
    unsigned key_count;               /* --dkim DOMAIN:SELECTOR:KEYFILE, repeatable */
    struct vl_dkim_key_opt keys[VL_DKIM_KEYS_MAX];
    bool canon_hdr_simple;            /* --dkim-canon HDR/BODY: default relaxed/relaxed */
    bool canon_body_simple;
    uint64_t expire_ms;               /* --dkim-expire DURATION: x= = t= + this (whole
                                         seconds); under 1s = no x= */
    const char *headers;              /* --dkim-headers A:B:C: names to sign (NULL = default);
                                         From is always signed and over-signed */
};

/** Parse one DKIM option (@p name: "--dkim", "--dkim-canon", "--dkim-headers")
 *  with value @p v into @p o (--dkim-expire: vl_parse_duration_ms into expire_ms). @p v must outlive @p o.
 *  @return 1 when applied, 0 when @p name is not a DKIM option, -1 after
 *  printing "volley CMD: <what is wrong>" on @p err. */
int vl_dkim_opt_parse(struct vl_dkim_opts *o, const char *cmd, const char *name, const char *v,
                      FILE *err);
/** Usage text of the DKIM options. */
extern const char vl_dkim_usage[];

struct dkim_signer;                   /* engine/dkim/dkim.h */

struct bounce_rules;                  /* engine/bounce/bounce.h */

struct msg_result;                    /* engine/msg/msg.h */

/* What a hook of the SMTP intake's chain sees of one message. */
struct vl_intake_msg {
    const char *from;                 /* the reverse-path ("" for <>) */
    const char *const *rcpts;         /* the recipients, as accepted at RCPT */
    size_t rcpt_n;
    const char *msg;                  /* the normalised message (CRLF), without the
                                         Received: line: m's data as the hook is called */
    size_t len;
    struct msg_result *m;             /* the same, owned (engine/msg/msg.h): a transforming
                                         hook replaces m->data/m->len (freeing the old) */
    uint64_t now_ms;
    const char *client;               /* the SMTP client's IP address */
};

/* One step of the SMTP intake's hook chain (engine/inject/inject_hooks.c): the
 * hooks run in order between normalising a message and queueing it, each on
 * what the ones before it left. The chain: the intake's own (the mailto
 * unsubscribe check, issue 12; DKIM signing, issue 13), then cfg->intake_hooks
 * in order (the feedback-loop reports to --fbl-address, issue 16). Called from
 * any commit worker, concurrently. @p fn returns
 *   0 (VL_INTAKE_PASS): not taken: the next hook, then the queue (@p im->m
 *                       may have been transformed);
 *   1 (VL_INTAKE_TAKEN): consumed, not queued: 250 with @p reply's text;
 *   VL_E_INVALID: refused, not queued: 550 with @p reply's text;
 *   other < 0: temporary failure: 451 with @p reply's text (preset to
 *   "4.3.0 Temporary failure, try again later"). */
struct vl_intake_hook {
    const char *name;                 /* for diagnostics ("unsub", "dkim", "fbl") */
    int (*fn)(void *arg, struct vl_intake_msg *im, char *reply, size_t reply_cap);
    void *arg;
};
#define VL_INTAKE_PASS  0
#define VL_INTAKE_TAKEN 1
#define VL_INTAKE_HOOKS_MAX 8u        /* policy: hooks in cfg->intake_hooks */

struct vl_config {
    const char *data_dir;             /* default ./volley-data */
    unsigned shards;                  /* 0 = not given: recorded count, else cores */
    const char *dns;                  /* HOST:PORT (checked) or NULL (= /etc/resolv.conf) */
    uint16_t mx_port;                 /* default 25 */
    unsigned route_count;
    struct vl_route routes[VL_ROUTES_MAX];
    unsigned rcpts_per_txn_max;       /* 1..100, default 100 */
    uint64_t retry_ms_base;           /* default 5 min */
    uint64_t retry_ms_max;            /* default 1 h */
    uint64_t age_ms_max;              /* default 5 days */
    uint64_t delay_warning_ms;        /* 0 = off */
    uint64_t dsn_interval_ms;         /* --dsn-interval: one DSN per message per this; 5 s */
    const char *log_path;             /* NULL = off, "-" = stdout */
    bool until_empty;
    bool quiet;
    unsigned conns_per_dest_max;      /* default 20 */
    unsigned msgs_per_conn_max;       /* default 100 */
    uint64_t idle_ms_max;             /* idle pooled connection closes after; default 5 s */
    uint64_t connect_ms_timeout;      /* default 30 s */
    double timeout_scale;             /* multiplies every SMTP command timeout; default 1 */
    uint64_t host_fail_ms_min;        /* --host-backoff: failing host skipped >= this; 30 s */
    const char *ehlo_name;            /* default: gethostname() */
    const char *listen;               /* injection listener ADDR:PORT (run) or NULL */
    enum vl_tls_level tls_level;      /* --tls none|may; default may */
    uint64_t commit_giveup_ms;        /* --commit-giveup: stop after commits fail this long; 5m */
    uint32_t allow_dest;              /* --allow-dest: classes of MX/A and address-literal
                                         destinations allowed besides public addresses, as
                                         VL_IP_ALLOW bits (engine/base/ip_class.h); 0 =
                                         public only. --route targets are never checked */
    unsigned sessions_max;            /* --sessions-max: outbound connections a shard
                                         holds at once, 1..VL_SESSIONS_PER_SHARD_MAX; 0 =
                                         that cap. Tests and tuning only (not in --help):
                                         a host over it waits, it never fails (issue 9) */
    unsigned dns_inflight_max;        /* --dns-inflight-max: lookups a shard's resolver runs
                                         at once, 1..VL_DNS_INFLIGHT_MAX; 0 = its default
                                         (256). Tests and tuning only (not in --help): a
                                         lookup over it waits, it never fails (issue 9) */
    /* Injection listener (issue 11; engine/inject/). */
    unsigned listen_count;            /* --listen ADDR:PORT, repeatable (IPv4, [IPv6]) */
    struct vl_hostport listens[VL_LISTEN_MAX];
    bool listen_tls[VL_LISTEN_MAX];   /* --listen-tls ADDR:PORT: implicit TLS (RFC 8314,
                                         port 465 submission); needs --tls-cert */
    unsigned allow_count;             /* --allow NET: clients that may relay; none given =
                                         loopback only (127/8, ::1). Given: only those */
    struct vl_net allow[VL_ALLOW_NETS_MAX];
    uint64_t msg_bytes_max;           /* --max-msg-size: SIZE offered and enforced (552 5.3.4);
                                         default 32 MiB, at most VL_MSG_BYTES_MAX */
    unsigned rcpts_per_msg_max;       /* --max-rcpts-per-msg: then 452 4.5.3; default 100 */
    unsigned conns_per_ip_max;        /* --max-conns-per-ip: then 421 4.7.0; default 20 */
    uint64_t intake_ms_timeout;       /* --intake-timeout: a client's command or DATA block
                                         deadline (RFC 5321 4.5.3.2); default 5m */
    const char *tls_cert;             /* --tls-cert FILE: PEM certificate (chain) for the
                                         intake's STARTTLS; NULL = STARTTLS not offered */
    const char *tls_key;              /* --tls-key FILE: its key (default: the cert file) */
    const char *auth_file;            /* --auth-file FILE: "user:crypt-hash" lines; AUTH PLAIN
                                         LOGIN offered after STARTTLS (needs --tls-cert) */
    /* DKIM signing (issue 13): the options, and the keys the CLI loaded from them
       before any thread starts (NULL: no signing). Messages accepted by --listen are
       signed once, at intake, by the From: domain's keys. */
    struct vl_dkim_opts dkim;
    const struct dkim_signer *dkim_signer;
    /* Delivery events and bounce classification (issue 16; engine/bounce/, engine/events/).
     * Set by `volley run`/`send` options (cli_events.c) before the engine starts. */
    const char *bounce_rules_path;    /* --bounce-rules FILE: user rules, tried before the
                                         shipped ones (etc/bounce_rules.conf, compiled in) */
    const struct bounce_rules *bounce_rules;   /* loaded rules; NULL = every failure "other" */
    const char *fbl_address;          /* --fbl-address ADDR: ARF reports to it are taken */
    struct vl_intake_hook intake_hooks[VL_INTAKE_HOOKS_MAX];   /* run after the intake's
                                         own hooks, in order (volley/config.h above); set
                                         before inject_start, which copies them */
    unsigned intake_hook_n;
    bool events_on;                   /* a delivery-event sink is configured: each outcome's
                                         event is stored in the shard's outbox (queue.h) in
                                         the transaction that records the outcome */
    /* The config file's events block (issue 16; config_file.c): the --events-*
     * options of the command line override each; NULL / 0 / false = not set. */
    struct vl_events_opts {
        const char *webhook_url, *webhook_secret_file, *amqp_url, *amqp_queue, *amqp_ca_file;
        unsigned batch;                   /* events per batch */
        unsigned amqp_per_message;        /* events per AMQP message */
        uint64_t linger_ms, timeout_ms, drain_ms;
        bool linger_set, drain_set;       /* 0 is a value for these two */
        uint64_t outbox_max;              /* events per shard's outbox before delivery
                                             waits for the sinks (back-pressure) */
    } events;
    char ehlo_buf[256];
    /* Configuration file and TLS policy (issue 14; engine/policy/config_file.c). */
    const char *config_path;          /* --config FILE, or NULL */
    const char *tls_ca_file;          /* --tls-ca-file: level verify trusts these CAs (PEM)
                                         instead of the system store */
    uint64_t tls_fallback_ms;         /* --tls-fallback: level may, a host whose handshake
                                         failed gets plaintext this long; default 1h */
    const struct vl_shaping *shaping; /* the file's shaping and egress blocks, or NULL */
    struct vl_config_owned *owned;    /* what the file's values live in: vl_config_fini() */
};

/** Defaults for every field. */
void vl_config_defaults(struct vl_config *c);

/** Parse the run/send options of argv[1..argc-1] into @p c. Arguments that are
 *  not run/send options are moved, in order, to @p rest (capacity argc) and
 *  counted in *@p rest_n, so `send` can hand them to the enqueue parser.
 *  Returns 0, or -1 after printing "volley CMD: <what is wrong>" on stderr. */
int vl_config_parse(struct vl_config *c, const char *cmd, int argc, char **argv,
                    char **rest, int *rest_n);

/** Check the rules between options (after every option is set): prints one
 *  "volley CMD: ..." line per broken rule to @p err. @return how many. */
unsigned vl_config_check(const struct vl_config *c, const char *cmd, FILE *err);

/** Set one command-line option by name ("--retry-base") to @p v (NULL or
 *  "true"/"false" for a flag). Errors go to @p err as "volley CMD: ...".
 *  @return 0, -1 bad value, 1 no such option. */
int vl_config_set_option(struct vl_config *c, const char *cmd, const char *name,
                         const char *v, FILE *err);
/** Does option @p name take a value / may it repeat? (false if unknown) */
bool vl_config_option_takes_value(const char *name);
bool vl_config_option_repeats(const char *name);
/** The command-line options, by index (for "did you mean"). */
size_t vl_config_option_count(void);
const char *vl_config_option_name(size_t i);

/** Load the configuration file @p path into @p c (over what it holds: call
 *  vl_config_defaults() first), validating every key and value. Prints every
 *  error as "PATH:LINE: what is wrong" to @p err (unknown keys with a "did
 *  you mean"). Strings live until vl_config_fini(). @return the number of
 *  errors (0: @p c is complete and valid; else @p c is unusable). */
unsigned vl_config_load_file(struct vl_config *c, const char *path, FILE *err);

/** Free what vl_config_load_file() allocated. The config is unusable after. */
void vl_config_fini(struct vl_config *c);

/** The options of argv over @p c as it is (no --config: skipped), then the
 *  rules between options (vl_config_check); errors to @p err. A repeatable
 *  option given here replaces a loaded file's list. @return 0 or -1. */
int vl_config_parse_args(struct vl_config *c, const char *cmd, int argc, char **argv,
                         char **rest, int *rest_n, FILE *err);

/** vl_config_parse(), with the errors to @p err instead of stderr. */
int vl_config_parse_err(struct vl_config *c, const char *cmd, int argc, char **argv,
                        char **rest, int *rest_n, FILE *err);

/** Online cores, capped at VL_SHARDS_MAX: the shard count of a new queue. */
unsigned vl_config_shards_default(void);

/** Usage text of the shared options (for --help). */
extern const char vl_config_usage[];

/** "300", "250ms", "1.5s", "5m", "1h", "5d" -> milliseconds: DIGITS[.DIGITS] and
 *  an optional unit (ms, s, m, h, d; none = s), at most 36500d. No sign, blank,
 *  exponent, hex, nan or inf. Returns 0, or -1 with *@p out untouched. */
int vl_parse_duration_ms(const char *s, uint64_t *out);
/** The static route for @p domain (exact, else "*"), or NULL. */
const struct vl_route *vl_config_route(const struct vl_config *c, const char *domain);

#endif
