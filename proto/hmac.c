/* SHA-256 and HMAC-SHA256 over BearSSL, with a second implementation of the SHA-256 block
 * function on the x86 SHA extensions (SHA-NI), chosen at run time where the CPU has them: a
 * presign is a dozen compressions, and BearSSL's portable rounds were most of its cost. Both
 * give identical results; the unit test compares them. Plus hex in both directions. */
#include "proto/hmac.h"

#include <errno.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

/* Runs `n` 64-byte blocks through the compression function, state h[0..8) in SHA order. */
__attribute__((target("sha,sse4.1,ssse3"))) static void ni_blocks(uint32_t h[8], const uint8_t *p,
                                                                  size_t n)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xB1); /* CDAB */
    __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1B);  /* EFGH */
    __m128i s0 = _mm_alignr_epi8(tmp, s1, 8);                                       /* ABEF */
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);                                            /* CDGH */

    for (; n > 0; n--, p += 64) {
        __m128i abef = s0, cdgh = s1, m[4];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            if (i < 4)
                m[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
            __m128i msg =
                _mm_add_epi32(m[i & 3], _mm_loadu_si128((const __m128i *)&sha256_k[4 * i]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
            if (i >= 3 && i < 15) { /* schedule the words of round group i + 1 */
                __m128i t = _mm_alignr_epi8(m[i & 3], m[(i + 3) & 3], 4);
                m[(i + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(m[(i + 1) & 3], t), m[i & 3]);
            }
            s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(msg, 0x0E));
            if (i >= 1 && i < 13)
                m[(i + 3) & 3] = _mm_sha256msg1_epu32(m[(i + 3) & 3], m[i & 3]);
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
    }

    tmp = _mm_shuffle_epi32(s0, 0x1B);                                  /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);                                   /* DCHG */
    _mm_storeu_si128((__m128i *)&h[0], _mm_blend_epi16(tmp, s1, 0xF0)); /* A B C D */
    _mm_storeu_si128((__m128i *)&h[4], _mm_alignr_epi8(s1, tmp, 8));    /* E F G H */
}

static int have_sha_ni(void)
{
    static int known = -1; /* every thread computes the same answer: the race is benign */
    int v = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (v < 0) {
        unsigned a, b, c, d;
        v = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_1) && (c & bit_SSSE3) &&
            __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
        __atomic_store_n(&known, v, __ATOMIC_RELAXED);
    }
    return v;
}
#else
static int have_sha_ni(void)
{
    return 0;
}

static void ni_blocks(uint32_t h[8], const uint8_t *p, size_t n)
{
    (void)h, (void)p, (void)n;
}
#endif

static const uint32_t sha256_iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

/* Hashes msg[0..len) on from state `h`, which has already absorbed `before` bytes (a multiple
 * of 64), and writes the digest. */
static void ni_finish(uint32_t h[8], uint64_t before, const uint8_t *msg, size_t len,
                      uint8_t out[HMAC_SHA256_LEN])
{
    uint8_t last[128] = {0};
    size_t full = len / 64, rem = len % 64, nlast = rem < 56 ? 1 : 2;
    uint64_t bits = (before + len) * 8;
    if (full > 0)
        ni_blocks(h, msg, full);
    memcpy(last, msg + 64 * full, rem);
    last[rem] = 0x80;
    for (int i = 0; i < 8; i++)
        last[64 * nlast - 1 - i] = (uint8_t)(bits >> (8 * i));
    ni_blocks(h, last, nlast);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

void hmac_sha256_digest(const void *data, size_t len, uint8_t out[HMAC_SHA256_LEN])
{
    if (have_sha_ni()) {
        uint32_t h[8];
        memcpy(h, sha256_iv, sizeof(h));
        ni_finish(h, 0, data, len, out);
        return;
    }
    br_sha256_context c;
    br_sha256_init(&c);
    br_sha256_update(&c, data, len);
    br_sha256_out(&c, out);
}

void hmac_key_init(hmac_key *k, const void *key, size_t keylen)
{
    br_hmac_key_init(&k->kc, &br_sha256_vtable, key, keylen);
    k->fast = have_sha_ni();
    if (!k->fast)
        return;
    /* The states after one block of key ^ ipad and of key ^ opad (RFC 2104). */
    uint8_t block[64] = {0}, pad[64];
    if (keylen > 64)
        hmac_sha256_digest(key, keylen, block);
    else
        memcpy(block, key, keylen);
    for (int i = 0; i < 64; i++)
        pad[i] = block[i] ^ 0x36;
    memcpy(k->inner, sha256_iv, sizeof(k->inner));
    ni_blocks(k->inner, pad, 1);
    for (int i = 0; i < 64; i++)
        pad[i] = block[i] ^ 0x5c;
    memcpy(k->outer, sha256_iv, sizeof(k->outer));
    ni_blocks(k->outer, pad, 1);
    memset(block, 0, sizeof(block));
    memset(pad, 0, sizeof(pad));
}

void hmac_key_sign(const hmac_key *k, const void *msg, size_t len, uint8_t out[HMAC_SHA256_LEN])
{
    if (k->fast) {
        uint32_t h[8];
        uint8_t inner[HMAC_SHA256_LEN];
        memcpy(h, k->inner, sizeof(h));
        ni_finish(h, 64, msg, len, inner);
        memcpy(h, k->outer, sizeof(h));
        ni_finish(h, 64, inner, sizeof(inner), out);
        return;
    }
    br_hmac_context c;
    br_hmac_init(&c, &k->kc, 0);
    br_hmac_update(&c, msg, len);
    br_hmac_out(&c, out);
}

void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                 uint8_t out[HMAC_SHA256_LEN])
{
    hmac_key k;
    hmac_key_init(&k, key, keylen);
    hmac_key_sign(&k, msg, len, out);
}

void hmac_hex(char *dst, const uint8_t *src, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = digits[src[i] >> 4];
        dst[2 * i + 1] = digits[src[i] & 15];
    }
    dst[2 * n] = '\0';
}

/* The value of one hex digit, or -1. */
static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int hmac_unhex(uint8_t *dst, size_t n, const char *src, size_t srclen)
{
    if (srclen != 2 * n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value((unsigned char)src[2 * i]);
        int lo = hex_value((unsigned char)src[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        dst[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int hmac_equal(const void *a, const void *b, size_t n)
{
    /* Eight bytes at a time (the edge compares a link's 64-byte signature per request); the
     * empty asm keeps the compiler from learning anything of `diff` before the end, so no
     * comparison returns early on a difference. */
    const uint8_t *x = a, *y = b;
    uint64_t diff = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t u, v;
        memcpy(&u, x + i, 8);
        memcpy(&v, y + i, 8);
        diff |= u ^ v;
        __asm__ volatile("" : "+r"(diff));
    }
    for (; i < n; i++) {
        diff |= (uint64_t)(x[i] ^ y[i]);
        __asm__ volatile("" : "+r"(diff));
    }
    return diff == 0;
}
