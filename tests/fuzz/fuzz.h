/*
 * fuzz.h - shared helpers of the libFuzzer targets (tests/fuzz/<name>_fuzz.c).
 *
 * Each target defines LLVMFuzzerTestOneInput(). Built with -DVOLLEY_FUZZ=ON it
 * links libFuzzer (-fsanitize=fuzzer); in every other build it links
 * replay_main.c, which runs each corpus file once (ctest fuzz_replay_<name>).
 *
 * FUZZ_CHECK(cond): an invariant of the code under test; on violation it
 * prints the condition and aborts, which libFuzzer reports as a crash (and
 * replay_main as a failed test).
 *
 * Chunk splits are derived from the input itself (a hash seeds a small PRNG),
 * so a run is deterministic and a crash input replays exactly.
 */
#ifndef VOLLEY_FUZZ_H
#define VOLLEY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__,  \
                    __LINE__);                                                        \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* Inputs larger than this are ignored (libFuzzer's default -max_len is 4096;
 * corpus files stay far below). */
#define FUZZ_INPUT_MAX (64u << 10)

struct fuzz_rng { uint64_t s; };

/* FNV-1a of the input: the seed of the chunk splits. */
static inline uint64_t fuzz_hash(const uint8_t *d, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 1099511628211ull;
    return h;
}

/* splitmix64 */
static inline uint64_t fuzz_next(struct fuzz_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Next chunk length for @p rem remaining bytes (>= 1 when rem > 0): single
 * bytes, small and medium pieces, or all the rest. */
static inline size_t fuzz_chunk(struct fuzz_rng *r, size_t rem)
{
    if (rem == 0)
        return 0;
    uint64_t x = fuzz_next(r);
    size_t n;
    switch (x & 3u) {
    case 0: n = 1; break;
    case 1: n = 1 + (size_t)((x >> 8) % 16u); break;
    case 2: n = 1 + (size_t)((x >> 8) % 512u); break;
    default: n = rem; break;
    }
    return n < rem ? n : rem;
}

#endif
