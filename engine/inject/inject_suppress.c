/*
 * inject_suppress.c - the SMTP intake's check of the suppression list
 * (issue 12; engine/suppress/suppress.h): a RCPT naming an address
 * suppressed globally or for the sender's domain is refused with 550 5.7.1
 * and the reason (with --suppress-smtp accept: accepted, and dropped at
 * delivery). The list is DATA/suppress, created at start so that
 * `volley suppress` and the HTTP API share it with this process.
 * Diagnostics: evt=suppress_open_failed (WARN): the intake then runs
 * without the check (the delivery-time check still applies).
 */
#include "inject_int.h"

#include "log.h"
#include "suppress.h"
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
