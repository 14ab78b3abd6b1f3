/*
 * blast.h - `volley blast`, a load generator for mail servers: generated mail
 * over SMTP straight to one or more HOST:PORT targets, without the queue,
 * with per-phase latency histograms, throughput over time and reply tallies.
 *
 * Model. blast_run() starts conf->threads threads, each with its own io_uring
 * reactor (engine/io/rx), sessions, schedule and statistics (shared-nothing);
 * the calling thread only watches signals and calls the progress callback.
 * When every thread has finished, their statistics are merged into one
 * struct blast_result (histograms are mergeable: blast_hist.h).
 *
 * Two loops:
 *   closed (rate == 0): `concurrency` sessions each start their next message
 *     as soon as the previous one ended;
 *   open (rate > 0): messages are due at intended times (rate, or a ramp of
 *     steps), whatever the server does; a due message goes to an idle session,
 *     or a new one (up to sessions_max), or waits. Its latency is measured
 *     from the intended time, so a slow server cannot hide its slowness
 *     behind fewer sends (no coordinated omission).
 *
 * Phases (nanoseconds): connect (SYN to established), banner (established to
 * 220), ehlo, tls (220 to STARTTLS until the handshake is done), auth,
 * mail_rcpt (MAIL written until the last RCPT reply), data_354 (DATA written
 * until 354), body_write (354, or BDAT written, until the last body byte
 * was handed to the kernel), final_reply (that moment until the reply to the
 * final dot or BDAT LAST), transaction (intended start, or MAIL in a closed
 * loop, until the final reply), schedule_lag (intended start until MAIL).
 *
 * Threads: blast_run() on one thread; blast_stop() from any (signal safe).
 */
#ifndef VOLLEY_BLAST_H
#define VOLLEY_BLAST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "volley/hostport.h"
#include "blast_hist.h"

#define BLAST_TARGETS_MAX      16u
#define BLAST_BINDS_MAX        16u
#define BLAST_THREADS_MAX      64u
#define BLAST_SESSIONS_MAX   65536u    /* all threads together */
#define BLAST_RAMP_STEPS_MAX   100u
#define BLAST_SERIES_MAX       512u    /* time-series slots; the interval doubles past it */
#define BLAST_STATUSES_MAX      64u    /* distinct enhanced status codes counted */
#define BLAST_REPLY_CODES      600u    /* replies[code], code 200..599 */
#define BLAST_HIST_SUB_BITS      8u    /* phase histograms: <= 0.79% relative error */
#define BLAST_HIST_MAX_BITS     38u    /* values up to 2^38 ns = 275 s; longer ones clamp */
#define BLAST_SERIES_SUB_BITS    6u    /* per-interval histograms: <= 3.2% */
#define BLAST_SIZES_MAX    1000000u    /* entries of a --size file */
#define BLAST_CMD_BYTES_MAX  16384u    /* MAIL + RCPTs + DATA of one message */

enum blast_phase {
    BLAST_PH_CONNECT, BLAST_PH_BANNER, BLAST_PH_EHLO, BLAST_PH_TLS, BLAST_PH_AUTH,
    BLAST_PH_MAIL_RCPT, BLAST_PH_DATA, BLAST_PH_BODY, BLAST_PH_FINAL, BLAST_PH_TXN,
    BLAST_PH_LAG, BLAST_PH_COUNT
};

/* Connection failures, by kind (a connection counts once). */
enum blast_err {
    BLAST_ERR_REFUSED,     /* connect refused (or unreachable) */
    BLAST_ERR_RESET,       /* reset, or closed by the peer while we waited */
    BLAST_ERR_TIMEOUT,     /* connect, send or a reply timed out */
    BLAST_ERR_TLS,         /* STARTTLS refused with `encrypt`, or the handshake failed */
    BLAST_ERR_PROTO,       /* malformed reply, reply out of turn */
    BLAST_ERR_OTHER,       /* socket, bind or another local error */
    BLAST_ERR_COUNT
};

enum blast_size_kind { BLAST_SIZE_FIXED, BLAST_SIZE_UNIFORM, BLAST_SIZE_LOGNORMAL, BLAST_SIZE_LIST };

struct blast_size {
    enum blast_size_kind kind;
    uint64_t lo, hi;          /* FIXED: lo; UNIFORM: lo..hi */
    double median, sigma;     /* LOGNORMAL */
    uint32_t *list;           /* LIST: sizes drawn uniformly (owned by the caller) */
    uint32_t list_count;
};

enum blast_tls { BLAST_TLS_NONE, BLAST_TLS_MAY, BLAST_TLS_ENCRYPT };

struct blast_conf {
    union vl_sockaddr target[BLAST_TARGETS_MAX];
    socklen_t target_len[BLAST_TARGETS_MAX];
    char target_name[BLAST_TARGETS_MAX][64];   /* as given, for reports */
    uint32_t target_count;
    union vl_sockaddr bind[BLAST_BINDS_MAX];   /* source addresses, round robin (port 0) */
    socklen_t bind_len[BLAST_BINDS_MAX];
    uint32_t bind_count;
    uint32_t threads;
    double rate;                 /* messages/s, all threads; 0 = closed loop */
    double ramp_end;             /* with ramp_steps > 1: rate goes rate .. ramp_end */
    uint32_t ramp_steps;         /* 0/1 = constant rate */
    uint32_t concurrency;        /* closed loop: sessions */
    uint32_t sessions_max;       /* open loop: sessions at most */
    uint64_t count;              /* messages; 0 = until duration */
    uint64_t duration_ms;        /* 0 = until count */
    uint32_t msgs_per_conn;
    uint32_t rcpts_per_msg;
    struct blast_size size;
    const char *from;            /* reverse-path, no brackets */
    const char *to_pattern;      /* recipients: "{n}" becomes a number 0 .. rcpt_range-1 */
    uint64_t rcpt_range;
    char **rcpt_list;            /* or: these, in turn (owned by the caller) */
    uint32_t rcpt_list_count;
    const char *helo;
    bool pipelining;             /* use PIPELINING when offered */
    bool chunking;               /* use BDAT when CHUNKING is offered */
    enum blast_tls tls;
    const char *auth_user, *auth_pass;   /* AUTH PLAIN after EHLO (and TLS) when set */
    uint32_t timeout_ms;         /* connect, each reply, each send */
    uint64_t seed;
};

/* Counters a progress line reads while the run goes (approximate, relaxed). */
struct blast_live {
    uint64_t elapsed_ms;
    uint64_t started, ok, tempfail, permfail, errors, conns_open, backlog;
};

struct blast_series_slot {
    uint64_t started, ok, tempfail, permfail, errors, bytes;
    struct blast_hist *txn;      /* transaction latency of messages ended in the slot; NULL = none */
};

struct blast_status_count { char status[16]; uint64_t count; };

struct blast_step {              /* one ramp step (or the whole open-loop run) */
    double rate;                 /* requested, messages/s */
    uint64_t started, ended_ok;
    struct blast_hist txn;       /* messages intended in this step */
};

struct blast_result {
    uint64_t started;            /* messages begun (MAIL written or a session opened for it) */
    uint64_t ok, tempfail, permfail, errors;   /* each started message ends as one of these */
    uint64_t not_started;        /* open loop: due but never started (stopped early) */
    uint64_t rcpts_ok, rcpts_refused;
    uint64_t bytes;              /* message content bytes written (final-reply 2xx or not) */
    uint64_t conns, conns_ready, tls_sessions, auth_ok, auth_failed;
    uint64_t conns_redialed;     /* reused connections the server closed (421, reset, EOF)
                                    before the first reply of a transaction: no message
                                    was under way there, so it went on a new connection
                                    (an idle close crossing our MAIL), not an error */
    uint64_t conn_errors[BLAST_ERR_COUNT];
    uint64_t replies[BLAST_REPLY_CODES];
    struct blast_status_count statuses[BLAST_STATUSES_MAX];
    uint32_t status_count;
    uint64_t statuses_other;
    struct blast_hist phase[BLAST_PH_COUNT];
    uint64_t series_interval_ms;
    uint32_t series_count;
    struct blast_series_slot series[BLAST_SERIES_MAX];
    uint32_t step_count;
    struct blast_step step[BLAST_RAMP_STEPS_MAX];
    uint64_t elapsed_ns;
    uint64_t first_start_ns, last_start_ns;        /* since the run's start; MAIL written */
    uint64_t first_intended_ns, last_intended_ns;  /* open loop */
    uint64_t cpu_user_us, cpu_sys_us;              /* the process, during the run */
    uint64_t cqes, reactor_turns;                  /* io_uring completions, loop turns */
    /* Send rate by a least-squares line through (message number, MAIL time) of each
     * thread (robust to a late first or last message), summed over threads. */
    double fit_n, fit_sx, fit_sy, fit_sxx, fit_sxy;   /* one thread's sums */
    double rate_fit;                                  /* messages/s; 0 if unknown */
    bool interrupted;
};

extern const char *const blast_phase_name[BLAST_PH_COUNT];
extern const char *const blast_err_name[BLAST_ERR_COUNT];

typedef void blast_progress_cb(const struct blast_live *live, void *user);

/** Run. @p res is filled (blast_result_fini() frees it); @p progress, if set,
 *  is called about every @p progress_ms on the calling thread. SIGINT/SIGTERM
 *  (blocked in the workers) stop the run: the first lets started messages
 *  finish, a second closes everything at once. On failure writes a
 *  description to @p err.
 *  @return 0, or -errno / VL_E_* when the run could not start. */
int blast_run(const struct blast_conf *conf, struct blast_result *res, blast_progress_cb *progress,
              uint32_t progress_ms, void *user, char *err, size_t err_cap);

/** Free what a result holds. */
void blast_result_fini(struct blast_result *res);

/** Initialise @p res's histograms (blast_run() does it). @return 0 or -ENOMEM. */
int blast_result_init(struct blast_result *res, uint32_t steps);
/** Add @p src into @p dst (same step count). @return 0 or -ENOMEM. */
int blast_result_merge(struct blast_result *dst, const struct blast_result *src);

/* ---- the report (blast_report.c) ---------------------------------------- */

/** The summary table, for people. */
void blast_report_text(FILE *f, const struct blast_conf *conf, const struct blast_result *res);
/** Everything as one JSON document. @return 0 or -errno. */
int blast_report_json(const char *path, const struct blast_conf *conf,
                      const struct blast_result *res);
/** One self-contained HTML page with inline SVG charts. @return 0 or -errno. */
int blast_report_html(const char *path, const struct blast_conf *conf,
                      const struct blast_result *res);

/* ---- parsing helpers (blast_conf.c) -------------------------------------- */

/** "N", "uniform:A-B", "lognormal:MEDIAN:SIGMA" or "file:PATH" (one size a line).
 *  Sizes in octets, with optional k/K (1024) or m/M suffix.
 *  @return 0, or VL_E_INVALID with a description in @p err. */
int blast_size_parse(const char *spec, struct blast_size *out, char *err, size_t err_cap);
void blast_size_fini(struct blast_size *s);

/** "START:END:STEPS" (messages/s). @return 0 or VL_E_INVALID. */
int blast_ramp_parse(const char *spec, double *start, double *end, uint32_t *steps);

#endif
