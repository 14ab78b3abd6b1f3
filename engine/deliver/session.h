/*
 * session.h - one outbound SMTP connection: a socket on the shard's reactor
 * driving the pure client state machine (smtp_client.c) through delivery
 * attempts (ledger.h) that its owner gives it.
 *
 * A session reports up only through its owner (struct session_owner, route.c
 * in the engine) and never calls it otherwise. Every failure, including a
 * connect that fails at once, is reported from a reactor event, never from
 * inside a call the owner made (session_open, session_begin,
 * session_quit_idle may report fates inline only when the kernel refuses a
 * send, and never a host failure or a close).
 *
 * Thread: the owning shard's only.
 */
#ifndef VOLLEY_DELIVER_SESSION_H
#define VOLLEY_DELIVER_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ledger.h"
#include "rx.h"
#include "smtp_client.h"
#include "volley/config.h"
#include "volley/hostport.h"
#include "volley/shaping.h"

struct session;
struct host;                       /* the owner's: handed back verbatim */
struct tls_ctx;

/* What a session does when READY (the owner decides). */
enum session_next {
    SESSION_NEXT_BEGIN,            /* run *next (taken off the owner's queue) */
    SESSION_NEXT_IDLE,             /* the owner pooled it: wait for session_begin() */
    SESSION_NEXT_QUIT,             /* say QUIT and close */
};

struct session_owner {
    void *ctx;
    /** Recipient @p i of @p a has its fate @p f. */
    void (*fate)(void *ctx, struct attempt *a, uint32_t i, const struct smtp_fate *f);
    /** Every recipient of @p a has a fate; the session no longer refers to it.
     *  @p by_close: the connection ended under it (not a completed transaction). */
    void (*attempt_done)(void *ctx, struct attempt *a, bool by_close);
    /** The session to @p h failed before it was ever ready (connect, greeting,
     *  TLS handshake) or was refused with 421: @p why, as a deferral. */
    void (*host_failed)(void *ctx, struct host *h, const struct smtp_fate *why);
    /** @p s is READY (@p first: for the first time) after @p attempts_done
     *  attempts. BEGIN sets *@p next; IDLE: the owner has pooled @p s. */
    enum session_next (*ready)(void *ctx, struct session *s, struct host *h, bool first,
                               uint32_t attempts_done, struct attempt **next);
    /** Level `may`: the TLS handshake with @p h failed (@p why): the session
     *  closes without a host failure, so that @p h is retried at once without
     *  STARTTLS (session_open(..., VL_TLS_NONE)) - the owner remembers it. */
    void (*tls_broken)(void *ctx, struct host *h, const char *why);
    /** The pooled @p s leaves the pool by itself (idle timeout, closed). */
    void (*unpooled)(void *ctx, struct session *s, struct host *h);
    /** A session to @p h is gone (its memory too). @p ever_ready: it reached
     *  READY; @p failed: it ended on a failure rather than after QUIT;
     *  @p egress: the source address index it was opened with (-1: none). */
    void (*closed)(void *ctx, struct host *h, bool ever_ready, bool failed, int egress);
};

/* An egress (source) address: bound before connect, with its own EHLO name. */
struct session_egress {
    union vl_sockaddr addr;        /* port 0 */
    socklen_t addr_len;
    struct smtp_client_conf conf[VL_TLS_LEVEL_COUNT];   /* by TLS level; its EHLO name */
};

/* What a shard's sessions share; session.c owns tls_ctx. */
struct session_env {
    struct rx *rx;
    unsigned shard_idx;            /* for logs */
    const struct smtp_client_conf *client_conf;
    bool levels_ready;             /* conf[] filled from client_conf (session_open) */
    struct smtp_client_conf conf[VL_TLS_LEVEL_COUNT];   /* client_conf, by TLS level */
    enum vl_tls_level tls_level;   /* the default level (--tls) */
    const char *tls_ca_file;       /* verify: CAs instead of the system store, or NULL */
    unsigned egress_count;         /* the config's egress addresses, by index */
    struct session_egress egress[VL_EGRESS_ADDRS_MAX];
    uint64_t connect_ms_timeout;
    uint64_t idle_ms_max;          /* a pooled session quits after */
    struct tls_ctx *tls_ctx;       /* STARTTLS client context, made at first use */
    struct tls_ctx *tls_ctx_verify;   /* level verify's (chain and name checked) */
    struct session_owner owner;
};

/** Free what the sessions of @p env shared (after the last session). */
void session_env_fini(struct session_env *env);

/** @p out[level]: @p base with each TLS level's STARTTLS flags (none: never;
 *  may: when offered; encrypt, verify: required). */
void session_conf_levels(struct smtp_client_conf out[VL_TLS_LEVEL_COUNT],
                         const struct smtp_client_conf *base);

/** Open a session to @p h at @p addr (@p ip: its text, @p sni: the MX name
 *  or NULL; both borrowed for the session's life) at TLS level @p level
 *  (the destination's policy; VL_TLS_NONE for the `may` fallback), from
 *  @p egress (index into env->egress to bind to and take the EHLO name of,
 *  or -1). Connect failures are reported later (host_failed, closed).
 *  @return 0, -ENOMEM, -errno (socket, bind), or -EAGAIN (reactor full):
 *  then nothing was opened. */
int session_open(struct session_env *env, struct host *h, const struct sockaddr *addr,
                 socklen_t addr_len, const char *ip, const char *sni,
                 enum vl_tls_level level, int egress);
/** The egress index @p s was opened with (-1: none). */
int session_egress(const struct session *s);
/** Run @p a on the pooled @p s (the owner took it out of its pool). */
void session_begin(struct session *s, struct attempt *a);
/** QUIT the pooled @p s (the owner took it out of its pool). */
void session_quit_idle(struct session *s);
/** The TLS protocol of @p s ("TLSv1.3"..., static) or NULL in plaintext. */
const char *session_tls(const struct session *s);

/** The owner's link for its pool of idle sessions; session.c never reads it. */
struct session *session_pool_next(const struct session *s);
void session_pool_link(struct session *s, struct session *next);

#endif
