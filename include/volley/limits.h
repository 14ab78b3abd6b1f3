/*
 * limits.h - compile-time caps, each naming its source, and the static
 * assertions that tie related caps together. Config may lower a cap, never
 * raise it.
 */
#ifndef VOLLEY_LIMITS_H
#define VOLLEY_LIMITS_H

#if defined(__cplusplus) && !defined(_Static_assert)
#define _Static_assert static_assert   /* benches include this header from C++ */
#endif

#define VL_SMTP_LOCAL_PART_BYTES_MAX     64u  /* RFC 5321 4.5.3.1.1 */
#define VL_SMTP_DOMAIN_BYTES_MAX        255u  /* RFC 5321 4.5.3.1.2 */
#define VL_SMTP_PATH_BYTES_MAX          256u  /* RFC 5321 4.5.3.1.3, brackets included */
#define VL_SMTP_CMD_LINE_BYTES_MAX      512u  /* RFC 5321 4.5.3.1.4, CRLF included */
#define VL_SMTP_REPLY_LINE_BYTES_MAX   4096u  /* policy: tolerant; the RFC minimum is 512 */
#define VL_SMTP_REPLY_LINES_MAX         100u  /* policy (PROTOCOL.md 1.10) */
#define VL_SMTP_REPLY_BYTES_MAX       65536u  /* policy (PROTOCOL.md 1.10) */
#define VL_SMTP_TEXT_LINE_BYTES_MAX    1000u  /* RFC 5321 4.5.3.1.6, CRLF included */
#define VL_MSG_LINE_BYTES_MAX           998u  /* RFC 5322 2.1.1, CRLF excluded */
#define VL_SMTP_STATUS_BYTES_MAX         16u  /* RFC 3463 "5.123.123" + NUL, rounded up */
#define VL_SMTP_RCPTS_PER_TXN_MAX       100u  /* RFC 5321 4.5.3.1.8 */
#define VL_SMTP_PIPELINE_DEPTH_MAX   (VL_SMTP_RCPTS_PER_TXN_MAX + 2u)  /* MAIL, RCPTs, DATA */
#define VL_RX_HANDLES_MAX             16384u  /* policy: fds one reactor manages (tag slots) */
#define VL_RX_HANDLES_SPARE              64u  /* policy: a shard's fds beside its sessions
                                                 (c-ares sockets, wake eventfd) */
#define VL_SESSIONS_PER_SHARD_MAX      4096u  /* policy: outbound connections per shard */
#define VL_INFLIGHT_RCPTS_PER_SHARD_MAX 8192u /* policy: leased, outcome not yet committed */
#define VL_LEASE_RCPTS_MAX             2048u  /* policy: recipients per vl_queue_lease() */
#define VL_LEASE_BYTES_MAX        (4u << 20)  /* policy: body bytes a lease copies, about:
                                                 under jemalloc's oversize threshold (8 MiB),
                                                 so the buffers are recycled, not re-faulted */
#define VL_HOSTS_PER_SHARD_MAX        65536u  /* policy: MX addresses a shard remembers */
#define VL_DOMAINS_PER_SHARD_MAX     262144u  /* policy: destination domains a shard remembers */
#define VL_ROUTE_ADDRS_PER_DOMAIN_MAX    32u  /* policy: host addresses tried per domain */
#define VL_SHARDS_MAX                   256u
#define VL_MSG_BYTES_MAX       (64u << 20)    /* policy: largest message accepted, 64 MiB */
#define VL_RCPTS_PER_MSG_MAX        1000000u  /* policy: recipients of one enqueued message */
#define VL_DIAG_TEXT_BYTES_MAX         1024u  /* PROTOCOL.md 1.8: remote text kept/logged */
#define VL_DNS_MX_HOSTS_MAX              16u  /* policy: MX hosts kept per domain (best first) */
#define VL_DNS_ADDRS_PER_HOST_MAX        16u  /* policy: A+AAAA kept per MX host */
#define VL_DNS_NAME_BYTES_MAX           255u  /* RFC 1035 2.3.4: wire form; text is <= 253 */
#define VL_DNS_CACHE_ENTRIES_MAX      65536u  /* policy: per-shard TTL cache, config lowers it */
#define VL_DNS_INFLIGHT_MAX            4096u  /* policy: per-shard domains being resolved */
#define VL_DNS_WAITERS_MAX            65536u  /* policy: per-shard callers awaiting an answer */
#define VL_ROUTES_MAX                   256u  /* policy: static --route entries */
#define VL_DNS_FDS_PER_SHARD_MAX         16u  /* policy: c-ares sockets a shard polls */
#define VL_DNS_SERVERS_MAX                4u  /* policy: --dns resolvers */
#define VL_LISTEN_MAX                    16u  /* policy: --listen addresses */
#define VL_ALLOW_NETS_MAX                64u  /* policy: --allow networks */

_Static_assert(VL_RX_HANDLES_MAX <= (1u << 24), "slot must fit the 24-bit rx_tag field");
_Static_assert(VL_SESSIONS_PER_SHARD_MAX + VL_RX_HANDLES_SPARE <= VL_RX_HANDLES_MAX,
               "a shard's sessions and its other fds fit its reactor");
_Static_assert(VL_DNS_FDS_PER_SHARD_MAX + 1u <= VL_RX_HANDLES_SPARE, "c-ares fds + the wake fd");
_Static_assert(VL_LEASE_RCPTS_MAX <= VL_INFLIGHT_RCPTS_PER_SHARD_MAX,
               "one lease fits the in-flight window");
_Static_assert(VL_ROUTE_ADDRS_PER_DOMAIN_MAX <= VL_DNS_MX_HOSTS_MAX * VL_DNS_ADDRS_PER_HOST_MAX,
               "a domain's addresses come from one DNS answer");
_Static_assert(VL_SMTP_REPLY_LINE_BYTES_MAX >= 512u, "below the RFC 5321 minimum");
_Static_assert(VL_SMTP_LOCAL_PART_BYTES_MAX + 1u + VL_SMTP_DOMAIN_BYTES_MAX
               >= VL_SMTP_PATH_BYTES_MAX - 2u, "a path holds local@domain");
_Static_assert(VL_MSG_LINE_BYTES_MAX + 2u == VL_SMTP_TEXT_LINE_BYTES_MAX, "998 + CRLF = 1000");

_Static_assert(VL_SMTP_STATUS_BYTES_MAX >= sizeof "5.123.123", "RFC 3463 x.yyy.zzz fits");

_Static_assert(VL_DNS_NAME_BYTES_MAX == VL_SMTP_DOMAIN_BYTES_MAX, "an MX host is a domain");
_Static_assert(VL_DNS_MX_HOSTS_MAX * VL_DNS_ADDRS_PER_HOST_MAX <= 65535u, "counts fit uint16_t");

#endif
