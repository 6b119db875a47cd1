/* Thin wrappers over BearSSL's SHA-256 and HMAC, plus hex in both directions. */
#include "proto/hmac.h"

#include <errno.h>

void hmac_sha256_digest(const void *data, size_t len, uint8_t out[HMAC_SHA256_LEN])
{
    br_sha256_context c;
    br_sha256_init(&c);
    br_sha256_update(&c, data, len);
    br_sha256_out(&c, out);
}

void hmac_key_init(hmac_key *k, const void *key, size_t keylen)
{
    br_hmac_key_init(&k->kc, &br_sha256_vtable, key, keylen);
}

void hmac_key_sign(const hmac_key *k, const void *msg, size_t len, uint8_t out[HMAC_SHA256_LEN])
{
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
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (uint8_t)(x[i] ^ y[i]);
    return diff == 0;
}
