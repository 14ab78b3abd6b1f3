/*
 * retry.c - the retry schedule and the delay-notice rule (see retry.h).
 */
#include "retry.h"

uint64_t retry_delay_ms(const struct vl_config *cfg, uint32_t attempts, uint64_t rcpt_id)
{
    return retry_delay_ms_sched(cfg->retry_ms_base, cfg->retry_ms_max, attempts, rcpt_id);
}

uint64_t retry_delay_ms_sched(uint64_t base_ms, uint64_t max_ms, uint32_t attempts,
                              uint64_t rcpt_id)
{
    uint64_t d = base_ms;
    for (uint32_t i = 1; i < attempts && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    /* +-10% jitter, a pure function of (id, attempt) */
    uint64_t x = (rcpt_id ^ ((uint64_t)attempts << 48)) * 0x9e3779b97f4a7c15ull;
    int64_t span = (int64_t)(d / 10u);
    int64_t j = span ? (int64_t)(x >> 11) % (2 * span + 1) - span : 0;
    return (uint64_t)((int64_t)d + j);
}

bool retry_delay_warn(const struct vl_config *cfg, const struct vl_queue_msg *m,
                      const struct vl_queue_rcpt *r, uint64_t now_ms)
{
    if (cfg->delay_warning_ms == 0)
        return false;
    uint64_t at = m->created_ms + cfg->delay_warning_ms;
    uint64_t prev = r->attempts ? now_ms - retry_delay_ms(cfg, r->attempts, r->id)
                                : m->created_ms;
    return now_ms >= at && prev < at;
}
