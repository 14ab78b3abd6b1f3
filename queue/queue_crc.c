/*
 * queue_crc.c - CRC32C (see queue_crc.h): hardware crc32 on x86-64 with
 * SSE4.2, slicing-by-8 elsewhere. Pure; the tables are built once
 * (pthread_once) and read-only after.
 */
#include "queue_crc.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define QUEUE_CRC32C_POLY 0x82F63B78u       /* Castagnoli, reflected */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (QUEUE_CRC32C_POLY & (0u - (c & 1u)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t queue_crc32c_sw(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    pthread_once(&crc_once, crc_table_init);
    crc = ~crc;
    for (; n >= 8; n -= 8, b += 8) {
        uint32_t lo = crc ^ ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16
                             | (uint32_t)b[3] << 24);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff]
            ^ crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24]
            ^ crc_table[3][b[4]] ^ crc_table[2][b[5]] ^ crc_table[1][b[6]] ^ crc_table[0][b[7]];
    }
    for (; n > 0; n--, b++)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *b) & 0xff];
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t c = ~crc;
    for (; n >= 8; n -= 8, b += 8) {
        uint64_t w;
        memcpy(&w, b, 8);                   /* unaligned, little-endian */
        c = __builtin_ia32_crc32di(c, w);
    }
    uint32_t c32 = (uint32_t)c;
    for (; n > 0; n--, b++)
        c32 = __builtin_ia32_crc32qi(c32, *b);
    return ~c32;
}

static bool crc_hw;
static pthread_once_t crc_hw_once = PTHREAD_ONCE_INIT;
static void crc_hw_init(void)
{
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
}

uint32_t queue_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_hw_once, crc_hw_init);
    return crc_hw ? crc32c_hw(crc, p, n) : queue_crc32c_sw(crc, p, n);
}
#else
uint32_t queue_crc32c(uint32_t crc, const void *p, size_t n)
{
    return queue_crc32c_sw(crc, p, n);
}
#endif
