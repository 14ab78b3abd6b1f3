/*
 * rx_tag.h - io_uring user_data encode/decode: op:8 | slot:24 | generation:32.
 * The slot indexes the reactor's handle slab; the generation is bumped on
 * reuse, so a completion for a slot's previous user is recognised and
 * dropped. Tags, never pointers, travel through the kernel.
 */
#ifndef VOLLEY_RX_TAG_H
#define VOLLEY_RX_TAG_H

#include <stdint.h>

#include "volley/error.h"
#include "volley/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every kind of completion the reactor dispatches (and RX_OP_TIMER, which is
 * an event without a CQE). Values are stable: they travel in user_data. */
enum rx_op {
    RX_OP_NONE = 0,
    RX_OP_CONNECT,
    RX_OP_SEND,
    RX_OP_RECV,
    RX_OP_ACCEPT,        /* multishot */
    RX_OP_POLL,          /* one-shot poll, e.g. for c-ares fds */
    RX_OP_CANCEL,        /* our cancel requests (rx_cancel, rx_close) */
    RX_OP_CLOSE,         /* the handle's final event: the slot is free again */
    RX_OP_LINK_TIMEOUT,  /* linked timeouts: ignored, the op reports the timeout */
    RX_OP_WAKE,          /* the cross-thread eventfd read */
    RX_OP_TIMER,         /* a timer fired (no CQE) */
    RX_OP_NOP,           /* tests: raw NOPs with a chosen tag */
    RX_OP_COUNT
};

#define RX_TAG_SLOT_BITS 24u
#define RX_TAG_SLOT_MAX  ((1u << RX_TAG_SLOT_BITS) - 1u)   /* reserved for the reactor itself */
_Static_assert(VL_RX_HANDLES_MAX < RX_TAG_SLOT_MAX, "handle slots must fit the tag");
_Static_assert(RX_OP_COUNT <= 256, "op must fit 8 bits");

static inline uint64_t rx_tag(enum rx_op op, uint32_t slot, uint32_t gen)
{
    vl_assert(slot <= RX_TAG_SLOT_MAX);
    return (uint64_t)op << 56 | (uint64_t)slot << 32 | gen;
}
static inline enum rx_op rx_tag_op(uint64_t t) { return (enum rx_op)(t >> 56); }
static inline uint32_t rx_tag_slot(uint64_t t) { return (uint32_t)(t >> 32) & RX_TAG_SLOT_MAX; }
static inline uint32_t rx_tag_gen(uint64_t t) { return (uint32_t)t; }

#ifdef __cplusplus
}
#endif
#endif
