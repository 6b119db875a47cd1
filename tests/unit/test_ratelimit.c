/* src/ratelimit: a burst up to max, refill over the window, Retry-After, classes and clients
 * kept apart, a full table reusing its stalest bucket, and peeking without taking. */
#include "src/ratelimit.h"
#include "tests/unit/test.h"

TEST(burst_then_refill)
{
    ratelimit *rl;
    CHECK_EQ_INT(ratelimit_create(&rl), 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(ratelimit_take(rl, 0, "acme", 5, 10, 1000), 0);
    /* 5 per 10 s: one token every 2 s. */
    CHECK_EQ_INT(ratelimit_take(rl, 0, "acme", 5, 10, 1000), 2);
    CHECK_EQ_INT(ratelimit_take(rl, 0, "acme", 5, 10, 2500), 1);
    CHECK_EQ_INT(ratelimit_take(rl, 0, "acme", 5, 10, 3000), 0);
    CHECK(ratelimit_take(rl, 0, "acme", 5, 10, 3000) > 0);
    /* Another client and another class have their own buckets. */
    CHECK_EQ_INT(ratelimit_take(rl, 0, "other", 5, 10, 3000), 0);
    CHECK_EQ_INT(ratelimit_take(rl, 1, "acme", 1, 60, 3000), 0);
    CHECK_EQ_INT(ratelimit_take(rl, 1, "acme", 1, 60, 3000), 60);
    /* A long idle refills to max, not beyond. */
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(ratelimit_take(rl, 0, "acme", 5, 10, 1000000), 0);
    CHECK(ratelimit_take(rl, 0, "acme", 5, 10, 1000000) > 0);
    ratelimit_destroy(rl);
}

TEST(table_full_reuses_stalest)
{
    ratelimit *rl;
    CHECK_EQ_INT(ratelimit_create(&rl), 0);
    char key[32];
    for (int i = 0; i < 3 * RATELIMIT_SLOTS; i++) {
        snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
        CHECK_EQ_INT(ratelimit_take(rl, 0, key, 1, 60, i), 0);
    }
    CHECK_EQ_INT(ratelimit_take(rl, 0, key, 1, 60, 3 * RATELIMIT_SLOTS), 60);
    ratelimit_destroy(rl);
}

/* Peek says what a take would, and takes nothing: the API checks an address's failed-auth
 * bucket before the credentials and takes from it only when they fail. */
TEST(peek_takes_nothing)
{
    ratelimit *rl;
    CHECK_EQ_INT(ratelimit_create(&rl), 0);
    CHECK_EQ_INT(ratelimit_peek(rl, 3, "ip:10.0.0.1", 2, 10, 1000), 0); /* no bucket yet */
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(ratelimit_peek(rl, 3, "ip:10.0.0.1", 2, 10, 1000), 0);
    CHECK_EQ_INT(ratelimit_take(rl, 3, "ip:10.0.0.1", 2, 10, 1000), 0);
    CHECK_EQ_INT(ratelimit_peek(rl, 3, "ip:10.0.0.1", 2, 10, 1000), 0);
    CHECK_EQ_INT(ratelimit_take(rl, 3, "ip:10.0.0.1", 2, 10, 1000), 0);
    /* Empty: 2 per 10 s, one token back in 5 s; peeking again and again changes nothing. */
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(ratelimit_peek(rl, 3, "ip:10.0.0.1", 2, 10, 1000), 5);
    CHECK_EQ_INT(ratelimit_peek(rl, 3, "ip:10.0.0.1", 2, 10, 4000), 2);
    CHECK_EQ_INT(ratelimit_peek(rl, 3, "ip:10.0.0.1", 2, 10, 6000), 0);
    CHECK_EQ_INT(ratelimit_take(rl, 3, "ip:10.0.0.1", 2, 10, 6000), 0);
    CHECK_EQ_INT(ratelimit_peek(rl, 3, "ip:10.0.0.1", 2, 10, 6000), 5);
    /* Another class or client is not affected. */
    CHECK_EQ_INT(ratelimit_peek(rl, 0, "ip:10.0.0.1", 2, 10, 6000), 0);
    CHECK_EQ_INT(ratelimit_peek(rl, 3, "ip:10.0.0.2", 2, 10, 6000), 0);
    ratelimit_destroy(rl);
}

int main(void)
{
    RUN(burst_then_refill);
    RUN(table_full_reuses_stalest);
    RUN(peek_takes_nothing);
    return test_summary();
}
