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
}

int main(void)
{
    RUN(sha256_abc);
    RUN(hmac_rfc4231_case2);
    RUN(hex_round_trip);
    RUN(equal);
    return test_summary();
}
