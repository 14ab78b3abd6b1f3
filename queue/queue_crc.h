/*
 * queue_crc.h - CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * content checksum of the queue's records and message bodies (pure).
 *
 * Our own implementation, no new dependency: the SSE4.2 crc32 instruction
 * where the CPU has it (checked once at run time), else slicing-by-8 tables
 * built on first use. Both give the same value: queue_crc32c("123456789", 9)
 * == 0xE3069283 (the standard check value).
 */
#ifndef VOLLEY_QUEUE_CRC_H
#define VOLLEY_QUEUE_CRC_H

#include <stddef.h>
#include <stdint.h>

/** CRC32C of @p n bytes at @p p, continuing from @p crc (0 to start).
 *  Thread: any. */
uint32_t queue_crc32c(uint32_t crc, const void *p, size_t n);

/** The portable path alone (for tests: it must agree with the fast one). */
uint32_t queue_crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
