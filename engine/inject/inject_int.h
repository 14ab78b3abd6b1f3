/*
 * inject_int.h - private to engine/inject/: the intake thread (inject.c), its
 * sessions (inject_session.c) and the commit workers (inject_commit.c).
 * Calls: inject.c -> session, commit; session -> commit (submit); commit ->
 * inject.c only through the done list and rx_wake (never inline).
 *
 * Invariants: a session's buffers belong to the kernel from rx_recv/rx_send to
 * the event, and to a commit worker while s->job_busy; a session slot returns
 * to the pool only once its RX_OP_CLOSE came and no job uses it.
 */
#ifndef VOLLEY_INJECT_INT_H
#define VOLLEY_INJECT_INT_H

#include "inject.h"
#include "inject_auth.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "rx.h"
#include "tls.h"
#include "smtp_server.h"
#include "volley/hostport.h"

#define INJ_SESSIONS_MAX     1024u    /* policy: connections the intake holds at once */
#define INJ_IN_BYTES        16384u
#define INJ_OUT_BYTES        4096u
#define INJ_ANSWER_ROOM      1024u    /* smtp_server_answer() wants this much room */
#define INJ_PUMP_STEPS_MAX   4096u    /* server steps per turn, then yield */
#define INJ_SEND_TIMEOUT_MS 60000
#define INJ_BAD_CMDS_MAX       20u    /* 5xx replies to commands, then 421 and close */
#define INJ_WORKERS             8u    /* commit workers, each queueing a batch of up to
                                         INJ_BATCH_MAX messages at once (the batches
                                         share group commits). bench_intake, loaded
                                         machine, 3 alternating runs: 8 workers ~100 us
                                         CPU/msg and the best rate; 64 (one blocked
                                         thread per message before batching) ~135 us;
                                         2 and 4: same CPU, 10-20% fewer msg/s */
#define INJ_BATCH_MAX          64u    /* commit jobs one worker takes and queues at once */
#define INJ_STORAGE_PAUSE_MS 1000u    /* after a failed commit: 452 at MAIL this long */
#define INJ_BODY_FIRST   65536u       /* a body buffer's first size (then doubled) */
#define INJ_BODY_KEEP   262144u       /* a session keeps a body buffer up to this size */
#define INJ_HOOKS_OWN 2u              /* the intake's own hooks: unsub, DKIM */
#define INJ_HOOKS_MAX (INJ_HOOKS_OWN + VL_INTAKE_HOOKS_MAX)
_Static_assert(INJ_OUT_BYTES >= 2 * INJ_ANSWER_ROOM, "room for a reply and a batch");

struct inject;

enum { INJ_AUTH_NONE, INJ_AUTH_PLAIN_WAIT, INJ_AUTH_LOGIN_USER, INJ_AUTH_LOGIN_PASS };

enum inj_job_kind { INJ_JOB_COMMIT, INJ_JOB_AUTH };

#define INJ_AUTH_FAIL_SLOTS     256u  /* client addresses whose AUTH failures are counted */
#define INJ_AUTH_FAIL_FORGET_MS 600000u  /* a slot's count restarts after 10 min quiet */
#define INJ_AUTH_DELAY_MS_BASE  250u  /* 535 after 250 ms, doubled per failure... */
#define INJ_AUTH_DELAY_MS_MAX  4000u  /* ...up to 4 s, per client address */

/* A job handed to a worker (inject_commit.c), borrowed from its session:
 * a complete message to queue, or AUTH credentials to check with crypt(3)
 * (never on the reactor thread: a hash takes milliseconds). */
struct inj_job {
    struct inj_job *next;
    struct inj_sess *s;
    enum inj_job_kind kind;
    /* result */
    int rc;                       /* 0, or a queue/msg error */
    uint64_t id;                  /* queue id when rc == 0 */
    uint64_t size;                /* octets queued */
    struct smtp_server_reply reply;
    bool auth_ok;                 /* INJ_JOB_AUTH: the credentials matched */
    /* INJ_JOB_AUTH: the credentials (the password wiped once checked); last,
     * so a commit's reset (up to user) leaves them alone */
    uint16_t user_len, pass_len;
    char user[INJ_AUTH_FIELD_MAX + 1];
    char pass[INJ_AUTH_FIELD_MAX + 1];
};

struct inj_sess {
    struct inject *in;
    rx_handle_t h;
    struct smtp_server srv;
    bool used;                    /* slot taken (until RX_OP_CLOSE and no job) */
    bool closing, close_after_send, reading, sending, yielded, job_busy, closed;
    bool relay_ok, over_limit, esmtp;
    bool mem_refused;             /* this message outgrew --intake-mem-max: 452 at its end */
    rx_timer_t timer;
    uint32_t in_len, in_off, out_len;
    uint32_t bad_cmds;
    union vl_sockaddr peer;
    char peer_ip[64];
    char helo[VL_SMTP_CMD_LINE_BYTES_MAX];
    /* the open transaction */
    char from[VL_SMTP_PATH_BYTES_MAX + 1];
    uint32_t rcpt_n;
    char (*rcpts)[VL_SMTP_PATH_BYTES_MAX + 1];   /* rcpts_per_msg_max entries */
    uint8_t *body;
    size_t body_len, body_cap;
    struct smtp_server_reply pend;               /* the answer being prepared */
    enum smtp_server_cmd pend_cmd;
    struct inj_job job;
    bool dot_ready;               /* the dot's answer waits for a send to finish */
    bool tls_start;               /* STARTTLS 220 being sent: the handshake next */
    struct tls_stream *tls;       /* after STARTTLS; NULL = plaintext */
    uint8_t auth_step;            /* INJ_AUTH_*: the SASL exchange in progress */
    bool authed;                  /* AUTH answered 235: may relay */
    char auth_user[INJ_AUTH_FIELD_MAX + 1];   /* LOGIN's user, then the authenticated one */
    char in_buf[INJ_IN_BYTES];
    char out[INJ_OUT_BYTES];
};

/* AUTH failures of one client address (the intake thread's only). */
struct inj_auth_fail {
    char ip[64];
    uint32_t fails;
    uint64_t last_ms;
};

struct inject {
    const struct vl_config *cfg;
    uint64_t cmd_ms, data_ms;     /* deadlines (inject_opts, resolved) */
    uint64_t mem_max;             /* bytes of message data all sessions may buffer */
    uint64_t mem_used;            /* the sessions' body buffers now (intake thread) */
    struct vl_queue *q;
    struct smtp_server_conf sconf;
    struct tls_ctx *tls_ctx;      /* --tls-cert: STARTTLS offered; NULL = not */
    struct inj_auth *auth;        /* --auth-file: AUTH offered (after TLS); NULL = not */
    struct sup *sup;              /* suppression list (inject_suppress.c) or NULL */
    struct vl_intake_hook hooks[INJ_HOOKS_MAX];   /* in order (inject_hooks.c) */
    unsigned hook_n;
    struct rx *rx;
    pthread_t thread;
    bool thread_started;
    int lfd[VL_LISTEN_MAX];
    struct inj_listener { struct inject *in; bool tls; } lst[VL_LISTEN_MAX];
    unsigned lfd_n;
    atomic_bool quit;
    int setup_rc;
    pthread_mutex_t setup_mu;
    pthread_cond_t setup_cv;
    bool setup_done;
    struct inj_sess *sess;        /* INJ_SESSIONS_MAX */
    uint32_t *free_idx;
    uint32_t free_n;
    atomic_uint_fast64_t storage_fail_ms;   /* wall ms of the last failed commit */
    /* commit workers (inject_commit.c) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct inj_job *todo, **todo_tail;
    struct inj_job *sub, **sub_tail;  /* intake thread: submitted this reactor turn,
                                         handed to the workers at its end (one lock,
                                         one wake-up for them all: inj_commit_kick) */
    unsigned sub_n;
    bool rx_stopped;              /* intake thread: rx_stop() called */
    struct inj_job *done;
    bool workers_quit;
    unsigned workers_n;
    pthread_t workers[INJ_WORKERS];
    uint64_t accepted, refused;   /* messages answered 250 / not (intake thread) */
    struct inj_auth_fail auth_fail[INJ_AUTH_FAIL_SLOTS];   /* intake thread */
};

/* inject_session.c */
/** A new connection on @p fd; @p tls: implicit TLS (handshake before the greeting). */
void inj_sess_start(struct inject *in, int fd, bool tls);
/** A commit worker finished s->job: answer the dot and go on. */
void inj_sess_job_done(struct inj_sess *s);

/* inject_commit.c */
int inj_commit_init(struct inject *in);
/** Stop the workers once the jobs queued are done. */
void inj_commit_fini(struct inject *in);
/** Queue @p s's complete message (s->job.*): the workers get it at the end
 *  of the reactor turn (inj_commit_kick). Completion: s goes on in->done
 *  and the reactor is woken (inject.c calls inj_sess_job_done). Intake thread. */
void inj_commit_submit(struct inject *in, struct inj_sess *s);
/** Check the credentials in s->job (kind INJ_JOB_AUTH, user and pass set) on
 *  a worker; completion as inj_commit_submit(). */
void inj_auth_submit(struct inject *in, struct inj_sess *s);
/** Hand the jobs submitted since the last call to the workers, waking as
 *  many idle ones as batches of INJ_BATCH_MAX they make. Intake thread, after
 *  each reactor turn. */
void inj_commit_kick(struct inject *in);
/** Take the finished jobs (a list through ->next). */
struct inj_job *inj_commit_take_done(struct inject *in);

/* inject_suppress.c (issue 12): the suppression list at RCPT. */
void inj_suppress_open(struct inject *in);
void inj_suppress_close(struct inject *in);
/** Is @p rcpt suppressed for mail from @p from? Then *@p text holds the
 *  reply's text ("5.7.1 ..."). Thread: the intake's. */
bool inj_suppressed(struct inject *in, const char *from, const char *rcpt, size_t len,
                    char *text, size_t cap);
/** The intake hook (volley/config.h) of the mailto unsubscribe address
 *  (@p arg: the struct inject): a message whose recipients are all --unsub
 *  mailto addresses is taken (its Subject's token verified, the recipient
 *  suppressed: 250 2.0.0 Unsubscribed) or refused (550 5.7.1). Thread: a
 *  commit worker. */
int inj_unsub_hook(void *arg, struct vl_intake_msg *im, char *reply, size_t reply_cap);

/* inject_hooks.c: the ordered hook chain between normalising and queueing. */
/** Build in->hooks: the intake's own, then cfg->intake_hooks. Thread: start. */
void inj_hooks_init(struct inject *in);
/** Run the chain on @p im (@p im->m may be transformed). @return
 *  VL_INTAKE_PASS (queue it), else a hook's answer (volley/config.h) with
 *  its reply text in @p reply. Thread: a commit worker. */
int inj_hooks_run(const struct inject *in, struct vl_intake_msg *im, char *reply,
                  size_t reply_cap);

#endif
