/*
 * shard_reconf.c - a shard moves to a reloaded configuration (shard.h,
 * engine.c's live reload) at a safe point: the top of a reactor turn, on the
 * shard's own thread, so nothing else reads what changes meanwhile.
 *
 * What changes live: the limits (--max-rcpts, --conns-per-dest,
 * --msgs-per-conn, idle and connect timeouts, command timeout scale,
 * --host-backoff), the retry schedule and queue lifetime, the default TLS
 * policy and its fallback time, --allow-dest, and the shaping table (its
 * runtime state is the shared vl_shaper's, updated by the engine). Each
 * value is read where it is used, so the next use sees the new one: attempts
 * already cut, sessions already open and transactions under way finish as
 * they began. The committer keeps the config the engine started with (it
 * runs on its own thread): --commit-giveup needs a restart.
 *
 * Invariant: the SMTP client's recipient cap never drops below what attempts
 * already cut may carry (only the cut size, --max-rcpts, drops at once).
 */
#include "shard.h"

#include <string.h>

void shard_client_conf(struct smtp_client_conf *cc, const struct vl_config *cfg)
{
    memset(cc, 0, sizeof *cc);
    cc->helo_name = cfg->ehlo_name;
    cc->helo_name_len = strlen(cfg->ehlo_name);
    cc->rcpts_per_txn_max = cfg->rcpts_per_txn_max;
    cc->starttls = cfg->tls_level != VL_TLS_NONE;    /* may: plaintext if refused or broken */
    cc->tls_required = cfg->tls_level == VL_TLS_ENCRYPT || cfg->tls_level == VL_TLS_VERIFY;
#define X(name, ms, expect)                                                        \
    {                                                                              \
        double v = (double)(ms) * cfg->timeout_scale;                              \
        cc->timeout_ms[SMTP_STATE_##name] = (ms) == 0 ? 0 : (v < 1.0 ? 1u : (uint32_t)v); \
    }
    SMTP_STATES(X)
#undef X
}

void shard_reconf(struct shard *sh, const struct vl_config *next)
{
    struct vl_config *c = &sh->cfg_own;
    if (sh->cfg != c)
        return;                    /* not the engine's copy: nothing to follow */
    c->rcpts_per_txn_max = next->rcpts_per_txn_max;
    c->retry_ms_base = next->retry_ms_base;
    c->retry_ms_max = next->retry_ms_max;
    c->age_ms_max = next->age_ms_max;
    c->delay_warning_ms = next->delay_warning_ms;
    c->dsn_interval_ms = next->dsn_interval_ms;
    c->conns_per_dest_max = next->conns_per_dest_max;
    c->msgs_per_conn_max = next->msgs_per_conn_max;
    c->idle_ms_max = next->idle_ms_max;
    c->connect_ms_timeout = next->connect_ms_timeout;
    c->timeout_scale = next->timeout_scale;
    c->host_fail_ms_min = next->host_fail_ms_min;
    c->tls_level = next->tls_level;
    c->tls_fallback_ms = next->tls_fallback_ms;
    c->allow_dest = next->allow_dest;
    c->shaping = next->shaping;    /* the engine keeps it until every shard moved on */
    /* The SMTP client settings by TLS level, each egress address's with its own
     * EHLO name (the addresses do not change live: same order, same names). */
    uint32_t rcpts_cap = sh->client_conf.rcpts_per_txn_max;
    shard_client_conf(&sh->client_conf, c);
    if (rcpts_cap > sh->client_conf.rcpts_per_txn_max)
        sh->client_conf.rcpts_per_txn_max = rcpts_cap;
    struct session_env *env = &sh->route.sess;
    session_conf_levels(env->conf, &sh->client_conf);
    env->levels_ready = true;
    for (unsigned i = 0; i < env->egress_count; i++) {
        const char *helo = env->egress[i].conf[0].helo_name;
        size_t helo_len = env->egress[i].conf[0].helo_name_len;
        session_conf_levels(env->egress[i].conf, &sh->client_conf);
        for (unsigned l = 0; l < VL_TLS_LEVEL_COUNT; l++) {
            env->egress[i].conf[l].helo_name = helo;
            env->egress[i].conf[l].helo_name_len = helo_len;
        }
    }
    env->tls_level = c->tls_level;
    env->connect_ms_timeout = c->connect_ms_timeout;
    env->idle_ms_max = c->idle_ms_max;
    route_rematch(&sh->route);
    vl_log_at(VL_LOG_INFO, "evt=config_applied shard=%u", sh->idx);
}
