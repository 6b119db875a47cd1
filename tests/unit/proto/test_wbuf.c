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
    RUN(copy_cuts_like_snprintf);
    RUN(overflow_stops_everything_after);
    return test_summary();
}
