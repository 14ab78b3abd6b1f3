/*
 * inject_hooks.c - the SMTP intake's one extension point: an ordered chain
 * of hooks (struct vl_intake_hook, volley/config.h) that each message passes
 * between normalising and queueing. Each hook may take the message (not
 * queued: 250), refuse it (550), fail (451), or pass it on, possibly
 * transformed. The chain, in order:
 *   1. unsub: the mailto unsubscribe address (issue 12, inject_suppress.c);
 *   2. dkim:  signing by the From: domain's keys (issue 13), when keys are
 *             loaded: later hooks see the signed message;
 *   3. cfg->intake_hooks, in order: the feedback-loop reports to
 *      --fbl-address (issue 16, engine/fbl/).
 * Invariant: the chain is built before the commit workers start and is
 * read-only afterwards (workers run it concurrently).
 * Diagnostics: evt=intake_hook_failed (INFO) when a hook answers with a
 * temporary failure; the hooks log what they take themselves.
 */
#include "inject_int.h"

#include "dkim.h"
#include "log.h"
#include "msg.h"
#include "volley/error.h"

#include <errno.h>
#include <stdio.h>

/* Sign im->m (dkim_sign_msg: no key for the From: domain = unchanged). */
static int inj_dkim_hook(void *arg, struct vl_intake_msg *im, char *reply, size_t reply_cap)
{
    (void)reply;
    (void)reply_cap;
    int rc = dkim_sign_msg(arg, im->m, im->now_ms / 1000);
    if (rc >= 0)
        return VL_INTAKE_PASS;
    return rc == VL_E_INVALID ? -EINVAL : rc;       /* a temporary failure, never a 550 */
}

void inj_hooks_init(struct inject *in)
{
    const struct vl_config *cfg = in->cfg;
    in->hook_n = 0;
    in->hooks[in->hook_n++] = (struct vl_intake_hook){ "unsub", inj_unsub_hook, in };
    if (cfg->dkim_signer)
        in->hooks[in->hook_n++] = (struct vl_intake_hook){ "dkim", inj_dkim_hook,
                                                           (void *)cfg->dkim_signer };
    vl_assert(cfg->intake_hook_n <= VL_INTAKE_HOOKS_MAX);
    for (unsigned i = 0; i < cfg->intake_hook_n; i++)
        in->hooks[in->hook_n++] = cfg->intake_hooks[i];
    vl_assert(in->hook_n <= INJ_HOOKS_MAX);
}

int inj_hooks_run(const struct inject *in, struct vl_intake_msg *im, char *reply,
                  size_t reply_cap)
{
    vl_assert(im->m && im->m->data);
    for (unsigned i = 0; i < in->hook_n; i++) {
        const struct vl_intake_hook *hk = &in->hooks[i];
        im->msg = (const char *)im->m->data;       /* what the hooks before left */
        im->len = im->m->len;
        snprintf(reply, reply_cap, "4.3.0 Temporary failure, try again later");
        int h = hk->fn(hk->arg, im, reply, reply_cap);
        if (h == VL_INTAKE_PASS)
            continue;
        if (h < 0 && h != VL_E_INVALID)
            vl_log(VL_LOG_INFO, "evt=intake_hook_failed hook=%s err=\"%s\"", hk->name,
                   vl_strerror(h));
        vl_assert(h == VL_INTAKE_TAKEN || h < 0);
        return h;
    }
    return VL_INTAKE_PASS;
}
