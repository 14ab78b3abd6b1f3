/*
 * dkim_rcpt.h - per-recipient DKIM signing at delivery (dkim_rcpt.c).
 */
#ifndef VOLLEY_DKIM_RCPT_H
#define VOLLEY_DKIM_RCPT_H

#include <stdint.h>

#include "volley/queue.h"

struct dkim_signer;

/** Sign the recipient's header lines *@p prefix (malloc'd, *@p prefix_len
 *  octets) together with @p m's stored header block, by the keys of its From:
 *  domain; on success *@p prefix becomes a new malloc'd buffer holding the
 *  DKIM-Signature fields then the old lines (the old buffer is freed).
 *  Thread: a shard's. @return 1 signed, 0 no key (or @p s NULL), < 0 error
 *  (*@p prefix unchanged). */
int deliver_dkim_prefix(const struct dkim_signer *s, const struct vl_queue_msg *m,
                        uint64_t now_s, char **prefix, uint32_t *prefix_len);

#endif
