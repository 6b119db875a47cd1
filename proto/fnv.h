/* FNV-1a: the hash reeld uses to spread small keys over fixed tables (client-address and
 * per-org buckets, rate-limit slots, the edge's deny set, change detection of a stream's text).
 * Not for anything an attacker may aim at a table's worst case beyond its bound.
 *
 * owns:  nothing; pure functions over the caller's bytes. */
#ifndef REELD_PROTO_FNV_H
#define REELD_PROTO_FNV_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FNV32_BASIS 2166136261u
#define FNV64_BASIS 1469598103934665603ull

/* Continues hash `h` (start with FNV32_BASIS / FNV64_BASIS) over n bytes. */
static inline uint32_t fnv1a32(uint32_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

static inline uint64_t fnv1a64(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* A word at a time: eight bytes a multiply, for keys of tens of bytes hashed per request (the
 * edge's memo of object keys), where FNV's byte at a time was a visible share of a small
 * request's CPU. The same use and limits as FNV-1a: spreading keys that are then compared. */
static inline uint64_t mulhash64(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    const uint64_t k = 0x9e3779b97f4a7c15ull;
    for (; n >= 8; b += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    /* The last 0..7 bytes in at most two loads, overlapping (each byte is in the word once
     * n is known): copied into a zeroed word instead, the load of that word waited for the
     * copy's byte stores. The word uses all 64 bits, so the length goes in with a multiply
     * of its own. */
    uint64_t w = 0;
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, b, 4);
        memcpy(&hi, b + n - 4, 4);
        w = (uint64_t)lo | (uint64_t)hi << 32;
    } else if (n > 0) {
        w = (uint64_t)b[0] | (uint64_t)b[n / 2] << 8 | (uint64_t)b[n - 1] << 16;
    }
    h = (h ^ w) * k;
    h = (h ^ h >> 29 ^ (uint64_t)n) * k;
    return h ^ h >> 32;
}

#endif
