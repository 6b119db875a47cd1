/* proto/wbuf.h: the bounded writer's number and copy helpers, which replace snprintf on the
 * edge's response path: hex with and without padding, two-digit decimals, a copy cut to fit
 * exactly as snprintf("%s") cuts, and the first write that does not fit stopping the rest. */
#include "proto/wbuf.h"

#include "tests/unit/test.h"

TEST(hex)
{
    char b[64];
    rd_wbuf w = wbuf_init(b, sizeof(b));
    wbuf_hex(&w, 0, 1);
    wbuf_chr(&w, ' ');
    wbuf_hex(&w, 0x1f, 8);
    wbuf_chr(&w, ' ');
    wbuf_hex(&w, 0xdeadbeefcafef00dull, 8);
    wbuf_chr(&w, ' ');
    wbuf_hex(&w, UINT64_MAX, 1);
    CHECK_EQ_INT(wbuf_end(&w), 44);
    CHECK_EQ_STR(b, "0 0000001f deadbeefcafef00d ffffffffffffffff");
}

TEST(dec2_and_uint)
{
    char b[32];
    rd_wbuf w = wbuf_init(b, sizeof(b));
    wbuf_dec2(&w, 0);
    wbuf_dec2(&w, 7);
    wbuf_dec2(&w, 59);
    wbuf_chr(&w, ' ');
    wbuf_uint(&w, 18446744073709551615ull);
    CHECK(wbuf_end(&w) > 0);
    CHECK_EQ_STR(b, "000759 18446744073709551615");
}

/* The digits are counted before they are written: every width, at both sides of each power
 * of the base, against snprintf; and a number that does not fit leaves nothing behind. */
TEST(uint_and_hex_every_width)
{
    uint64_t vals[64 * 3 + 2];
    int nv = 0;
    vals[nv++] = 0;
    vals[nv++] = UINT64_MAX;
    for (uint64_t p = 1; nv < 60; p *= 10) {
        vals[nv++] = p - 1;
        vals[nv++] = p;
        vals[nv++] = p + 1;
        if (p > UINT64_MAX / 10)
            break;
    }
    for (int b = 0; b < 64; b++) {
        vals[nv++] = (1ull << b) - 1;
        vals[nv++] = 1ull << b;
    }
    for (int i = 0; i < nv; i++) {
        char got[64], want[64];
        rd_wbuf w = wbuf_init(got, sizeof(got));
        wbuf_uint(&w, vals[i]);
        wbuf_chr(&w, ' ');
        wbuf_hex(&w, vals[i], 1);
        wbuf_chr(&w, ' ');
        wbuf_hex(&w, vals[i], 12);
        CHECK(wbuf_end(&w) > 0);
        snprintf(want, sizeof(want), "%llu %llx %012llx", (unsigned long long)vals[i],
                 (unsigned long long)vals[i], (unsigned long long)vals[i]);
        CHECK_EQ_STR(got, want);
    }
    char wide[40];
    rd_wbuf h = wbuf_init(wide, sizeof(wide));
    wbuf_hex(&h, 0x1f, -1); /* no padding below one digit */
    wbuf_chr(&h, ' ');
    wbuf_hex(&h, 0x1f, 20); /* padding past sixteen digits */
    CHECK_EQ_INT(wbuf_end(&h), 23);
    CHECK_EQ_STR(wide, "1f 0000000000000000001f");
    char b[6];
    rd_wbuf w = wbuf_init(b, sizeof(b));
    wbuf_uint(&w, 12345); /* 5 digits and the NUL: fits exactly */
    CHECK_EQ_INT(wbuf_end(&w), 5);
    w = wbuf_init(b, sizeof(b));
    wbuf_uint(&w, 123456);
    CHECK_EQ_INT(wbuf_end(&w), -ENOSPC);
    CHECK_EQ_INT((int)w.len, 0);
}

TEST(copy_cuts_like_snprintf)
{
    char a[8], b[8];
    const char *s[] = {"", "short", "exactly", "much longer than eight"};
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        size_t n = wbuf_copy(a, sizeof(a), s[i]);
        int m = snprintf(b, sizeof(b), "%s", s[i]);
        CHECK_EQ_INT((int)n, m);
        CHECK_EQ_STR(a, b);
    }
    CHECK_EQ_INT((int)wbuf_copy(a, 0, "x"), 1); /* nothing written */
}

TEST(overflow_stops_everything_after)
{
    char b[8];
    rd_wbuf w = wbuf_init(b, sizeof(b));
    wbuf_hex(&w, 0xabcdef, 1);
    wbuf_hex(&w, 0x12, 1); /* 8 bytes with the NUL: does not fit */
    wbuf_chr(&w, 'x');
    CHECK_EQ_INT(wbuf_end(&w), -ENOSPC);
    CHECK_EQ_INT((int)w.len, 6);
}

int main(void)
{
    RUN(hex);
    RUN(dec2_and_uint);
    RUN(uint_and_hex_every_width);
    RUN(copy_cuts_like_snprintf);
    RUN(overflow_stops_everything_after);
    return test_summary();
}
