/*
 * inject_suppress.c - the SMTP intake's check of the suppression list
 * (issue 12; engine/suppress/suppress.h): a RCPT naming an address
 * suppressed globally or for the sender's domain is refused with 550 5.7.1
 * and the reason (with --suppress-smtp accept: accepted, and dropped at
 * delivery). A message whose recipients are all the mailto unsubscribe
 * address of an --unsub domain (unsubscribe@DOMAIN, RFC 2369/8058's mailto
 * form) is not queued: its Subject's token is verified and its recipient
 * suppressed (250 2.0.0 Unsubscribed, or 550 5.7.1). The list is DATA/suppress, created at start so that
 * `volley suppress` and the HTTP API share it with this process.
 * Diagnostics: evt=suppress_open_failed (WARN): the intake then runs
 * without the check (the delivery-time check still applies).
 */
#include "inject_int.h"

#include "log.h"
#include "clock.h"
#include "suppress.h"
#include "unsub.h"
#include "unsub_event.h"
#include "volley/error.h"

#include <stdio.h>
#include <string.h>

void inj_suppress_open(struct inject *in)
{
    int rc = sup_open(in->cfg->data_dir, true, &in->sup);
    if (rc < 0) {
        in->sup = NULL;
        vl_log(VL_LOG_WARN, "evt=suppress_open_failed dir=%s err=\"%s\"", in->cfg->data_dir,
               vl_strerror(rc));
    }
}

void inj_suppress_close(struct inject *in)
{
    sup_close(in->sup);
    in->sup = NULL;
}

bool inj_suppressed(struct inject *in, const char *from, const char *rcpt, size_t len,
                    char *text, size_t cap)
{
    struct sup_entry e;
    const char *at = from ? strrchr(from, '@') : NULL;
    if (!in->sup || sup_policy_get()->smtp_accept ||      /* accepted: dropped at delivery */ sup_lookup_many(in->sup, at ? at + 1 : NULL, &rcpt, &len, 1, &e) < 0 ||
        e.reason == SUP_NONE)
        return false;                 /* a failed lookup: delivery checks again */
    snprintf(text, cap, "5.7.1 Recipient suppressed: %s (%s%s)", sup_reason_name(e.reason),
             e.scope[0] ? "for " : "global", e.scope);
    return true;
}

int inj_unsub_hook(void *arg, struct vl_intake_msg *im, char *reply, size_t reply_cap)
{
    struct inject *in = arg;
    const struct unsub_conf *uc = unsub_conf_get();
    if (!uc || im->rcpt_n == 0)
        return VL_INTAKE_PASS;
    for (size_t i = 0; i < im->rcpt_n; i++)
        if (!unsub_mailto_addr(uc, im->rcpts[i], strlen(im->rcpts[i])))
            return VL_INTAKE_PASS;          /* ordinary mail (or mixed: queued as is) */
    char tok[UNSUB_TOKEN_BYTES_MAX + 1];
    size_t n = unsub_subject_token((const uint8_t *)im->msg, im->len, tok, sizeof tok);
    struct unsub_claims cl;
    if (n == 0 || unsub_token_check(uc->secret, uc->secret_len, tok, n, &cl) < 0) {
        snprintf(reply, reply_cap, "5.7.1 Unknown or invalid unsubscribe request");
        return VL_E_INVALID;
    }
    int rc = in->sup ? sup_add(in->sup, cl.domain, cl.rcpt, SUP_UNSUBSCRIBE, vl_clock_wall_ms())
                     : VL_E_STORAGE;
    if (rc == 0 && in->cfg->events_on)     /* retried after a 451: stored again, same event */
        rc = unsub_event_add(in->q, &cl, "smtp", im->client, (int64_t)im->now_ms);
    if (rc < 0)
        return rc == VL_E_INVALID ? VL_E_STORAGE : rc;   /* 451, the preset text */
    vl_log_at(VL_LOG_INFO, "evt=unsubscribed rcpt=%s domain=%s campaign=\"%s\" via=mailto",
              cl.rcpt, cl.domain, cl.campaign);
    snprintf(reply, reply_cap, "2.0.0 Unsubscribed");
    return VL_INTAKE_TAKEN;
}
