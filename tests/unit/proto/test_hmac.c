/* proto/hmac: SHA-256 (FIPS 180-2 "abc"), HMAC-SHA256 (RFC 4231 test case 2), hex, equality. */
#include <errno.h>

#include "proto/hmac.h"
#include "tests/unit/test.h"

TEST(sha256_abc)
{
    static const char want[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    uint8_t d[HMAC_SHA256_LEN];
    char hex[HMAC_SHA256_HEX + 1];
    hmac_sha256_digest("abc", 3, d);
    hmac_hex(hex, d, sizeof(d));
    CHECK_EQ_STR(hex, want);
}

TEST(hmac_rfc4231_case2)
{
    static const char want[] = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    static const char msg[] = "what do ya want for nothing?";
    uint8_t mac[HMAC_SHA256_LEN], again[HMAC_SHA256_LEN], expect[HMAC_SHA256_LEN];
    CHECK_EQ_INT(hmac_unhex(expect, sizeof(expect), want, 64), 0);
    hmac_sha256("Jefe", 4, msg, sizeof(msg) - 1, mac);
    CHECK_EQ_MEM(mac, expect, sizeof(mac));

    hmac_key k;
    hmac_key_init(&k, "Jefe", 4);
    hmac_key_sign(&k, msg, sizeof(msg) - 1, again);
    hmac_key_sign(&k, msg, sizeof(msg) - 1, again); /* the key is reusable */
    CHECK_EQ_MEM(again, expect, sizeof(again));
}

/* Whichever block function this CPU gets, it must agree with BearSSL's for every length around
 * the block and padding boundaries, and for keys shorter and longer than a block. */
TEST(agrees_with_bearssl)
{
    uint8_t data[300], got[HMAC_SHA256_LEN], want[HMAC_SHA256_LEN];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 131 + 7);
    for (size_t len = 0; len <= sizeof(data); len++) {
        br_sha256_context c;
        br_sha256_init(&c);
        br_sha256_update(&c, data, len);
        br_sha256_out(&c, want);
        hmac_sha256_digest(data, len, got);
        if (memcmp(got, want, sizeof(got)) != 0)
            printf("  sha256 length %zu\n", len);
        CHECK_EQ_MEM(got, want, sizeof(got));
    }
    static const size_t keylens[] = {0, 1, 32, 63, 64, 65, 200};
    for (size_t k = 0; k < sizeof(keylens) / sizeof(keylens[0]); k++) {
        br_hmac_key_context kc;
        br_hmac_key_init(&kc, &br_sha256_vtable, data + 50, keylens[k]);
        hmac_key key;
        hmac_key_init(&key, data + 50, keylens[k]);
        for (size_t len = 0; len <= 130; len += 13) {
            br_hmac_context hc;
            br_hmac_init(&hc, &kc, 0);
            br_hmac_update(&hc, data, len);
            br_hmac_out(&hc, want);
            hmac_key_sign(&key, data, len, got);
            CHECK_EQ_MEM(got, want, sizeof(got));
            hmac_sha256(data + 50, keylens[k], data, len, got);
            CHECK_EQ_MEM(got, want, sizeof(got));
        }
    }
}

TEST(hex_round_trip)
{
    uint8_t b[4] = {0x00, 0x9f, 0xa0, 0xff}, back[4];
    char hex[9];
    hmac_hex(hex, b, 4);
    CHECK_EQ_STR(hex, "009fa0ff");
    CHECK_EQ_INT(hmac_unhex(back, 4, "009FA0fF", 8), 0);
    CHECK_EQ_MEM(back, b, 4);
    CHECK_EQ_INT(hmac_unhex(back, 4, "009fa0f", 7), -EINVAL);
    CHECK_EQ_INT(hmac_unhex(back, 4, "009fa0fg", 8), -EINVAL);
}

TEST(equal)
{
    CHECK(hmac_equal("abcd", "abcd", 4));
    CHECK(!hmac_equal("abcd", "abce", 4));
    CHECK(hmac_equal("x", "y", 0));
    /* Compared a word at a time with a byte tail: one differing bit anywhere, at every
     * length and offset (unaligned too), is a difference; equal bytes are equal. */
    uint8_t a[80], b[80];
    for (int i = 0; i < 80; i++)
        a[i] = b[i] = (uint8_t)(i * 37 + 11);
    for (size_t off = 0; off < 3; off++) {
        for (size_t n = 0; n <= 70; n++) {
            CHECK(hmac_equal(a + off, b + off, n));
            for (size_t k = 0; k < n; k++) {
                b[off + k] ^= (uint8_t)(1u << (k % 8));
                CHECK(!hmac_equal(a + off, b + off, n));
                b[off + k] ^= (uint8_t)(1u << (k % 8));
            }
        }
    }
}

int main(void)
{
    RUN(sha256_abc);
    RUN(hmac_rfc4231_case2);
    RUN(agrees_with_bearssl);
    RUN(hex_round_trip);
    RUN(equal);
    return test_summary();
}
