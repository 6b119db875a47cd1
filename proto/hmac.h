/* SHA-256, HMAC-SHA256 and hex: the few primitives that signatures (SigV4, edge tokens, JWT)
 * are built from, over BearSSL, with the x86 SHA extensions used where the CPU has them.
 *
 * owns:  nothing. Every function writes only into the caller's buffers; no I/O, no allocation.
 * never: compares secrets with memcmp (hmac_equal takes the same time whatever the bytes). */
#ifndef REELD_PROTO_HMAC_H
#define REELD_PROTO_HMAC_H

#include <stddef.h>
#include <stdint.h>

#include <bearssl.h>

#define HMAC_SHA256_LEN 32 /* bytes in a SHA-256 digest or an HMAC-SHA256 tag */
#define HMAC_SHA256_HEX 64 /* hex characters of one, without the NUL */

/* An HMAC-SHA256 key with its inner and outer pads already hashed: signing with it costs two
 * compressions fewer than hmac_sha256(). Plain data: copy it, keep it, zero it when done. */
typedef struct hmac_key {
    br_hmac_key_context kc; /* BearSSL's pads, for CPUs without the SHA extensions */
    uint32_t inner[8];      /* SHA-256 state after key ^ ipad, when `fast` */
    uint32_t outer[8];      /* SHA-256 state after key ^ opad, when `fast` */
    int fast;               /* 1: sign with the SHA-NI block function */
} hmac_key;

/* out = SHA-256(data[0..len)). */
void hmac_sha256_digest(const void *data, size_t len, uint8_t out[HMAC_SHA256_LEN]);

/* out = HMAC-SHA256(key, msg). */
void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                 uint8_t out[HMAC_SHA256_LEN]);

/* Prepares `k` for repeated hmac_key_sign() calls with the same key. */
void hmac_key_init(hmac_key *k, const void *key, size_t keylen);

/* out = HMAC-SHA256(k, msg). `k` is not modified, so one key may sign from many places. */
void hmac_key_sign(const hmac_key *k, const void *msg, size_t len, uint8_t out[HMAC_SHA256_LEN]);

/* Writes 2 * n lowercase hex characters and a NUL into `dst` (2 * n + 1 bytes). */
void hmac_hex(char *dst, const uint8_t *src, size_t n);

/* Reads exactly 2 * n hex characters (either case) from `src` into `dst`. Returns 0, or -EINVAL
 * when srclen is not 2 * n or a character is not hex. */
int hmac_unhex(uint8_t *dst, size_t n, const char *src, size_t srclen);

/* 1 when a[0..n) equals b[0..n), else 0, in time that depends only on n. */
int hmac_equal(const void *a, const void *b, size_t n);

#endif
