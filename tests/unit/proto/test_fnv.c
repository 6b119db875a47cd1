/* proto/fnv.h: the table hashes. mulhash64 reads its tail in overlapping loads instead of
 * copying it into a zeroed word: every byte of every length still counts, and the hash depends
 * on the bytes alone, not on where they lie. */
#include "proto/fnv.h"

#include "tests/unit/test.h"

TEST(mulhash_every_byte_counts)
{
    uint8_t a[48];
    for (int i = 0; i < 48; i++)
        a[i] = (uint8_t)(i * 29 + 3);
    for (size_t n = 1; n <= 40; n++) {
        uint64_t h = mulhash64(0, a, n);
        for (size_t k = 0; k < n; k++) {
            a[k] ^= 0x40;
            CHECK(mulhash64(0, a, n) != h);
            a[k] ^= 0x40;
        }
        CHECK(mulhash64(0, a, n) == h);
        CHECK(mulhash64(0, a, n - 1) != h); /* the length counts too */
    }
}

/* The tail's word fills all 64 bits: the length must not share bits with its last byte
 * ("aaaa" and "aaaa" + ('a' ^ 1) collided when it did). */
TEST(mulhash_length_apart_from_the_bytes)
{
    for (unsigned x = 0; x < 256; x++) {
        uint8_t s[8] = {(uint8_t)x, (uint8_t)x, (uint8_t)x, (uint8_t)x};
        for (unsigned y = 0; y < 256; y++) {
            s[4] = (uint8_t)y;
            CHECK(mulhash64(0, s, 4) != mulhash64(0, s, 5));
        }
    }
}

TEST(mulhash_depends_on_bytes_not_place)
{
    uint8_t x[64], y[64];
    const char *s = "0123456789abcdefghijklmnopqrstuvwxyz";
    for (size_t n = 0; n <= 36; n++) {
        memset(x, 0xaa, sizeof(x));
        memset(y, 0x55, sizeof(y));
        memcpy(x + 1, s, n);
        memcpy(y + 19, s, n);
        CHECK(mulhash64(7, x + 1, n) == mulhash64(7, s, n));
        CHECK(mulhash64(7, y + 19, n) == mulhash64(7, s, n));
    }
}

int main(void)
{
    RUN(mulhash_every_byte_counts);
    RUN(mulhash_length_apart_from_the_bytes);
    RUN(mulhash_depends_on_bytes_not_place);
    return test_summary();
}
