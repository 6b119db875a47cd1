/* The edge cache index: lookups, LRU order under touches, eviction to the budget, re-inserts,
 * and growth past the first table. */
#include "src/edge/cache_index.h"
#include "tests/unit/test.h"

static cache_key k(uint64_t n)
{
    return (cache_key){n * 0x9E3779B97F4A7C15ull, n};
}

TEST(lru_eviction)
{
    cache_index ix;
    cache_index_init(&ix, 300);
    for (uint64_t i = 1; i <= 3; i++)
        cache_index_insert(&ix, k(i), 100);
    cache_key out;
    uint64_t size;
    CHECK_EQ_INT(cache_index_pop_lru(&ix, &out, &size), 0); /* exactly at the budget */
    cache_index_touch(&ix, cache_index_find(&ix, k(1)));    /* 2 is now the oldest */
    cache_index_insert(&ix, k(4), 150);
    CHECK_EQ_INT(cache_index_pop_lru(&ix, &out, &size), 1);
    CHECK(out.lo == 2 && size == 100);
    CHECK_EQ_INT(cache_index_pop_lru(&ix, &out, &size), 1);
    CHECK(out.lo == 3);
    CHECK_EQ_INT(cache_index_pop_lru(&ix, &out, &size), 0);
    CHECK_EQ_INT(ix.bytes, 250);
    CHECK_EQ_INT(ix.count, 2);
    CHECK(cache_index_find(&ix, k(2)) == NULL);
    CHECK(cache_index_find(&ix, k(1)) != NULL);
    cache_index_fini(&ix);
}

TEST(reinsert_and_remove)
{
    cache_index ix;
    cache_index_init(&ix, 1000);
    cache_index_insert(&ix, k(1), 10);
    cache_index_insert(&ix, k(2), 10);
    cache_index_insert(&ix, k(1), 30); /* updated and touched */
    CHECK_EQ_INT(ix.count, 2);
    CHECK_EQ_INT(ix.bytes, 40);
    CHECK(ix.lru.newer->key.lo == 2); /* least recent */
    CHECK_EQ_INT(cache_index_remove(&ix, k(2)), 1);
    CHECK_EQ_INT(cache_index_remove(&ix, k(2)), 0);
    CHECK_EQ_INT(ix.bytes, 30);
    cache_index_fini(&ix);
}

TEST(growth)
{
    cache_index ix;
    cache_index_init(&ix, UINT64_MAX);
    for (uint64_t i = 0; i < 5000; i++)
        cache_index_insert(&ix, k(i), 1);
    CHECK_EQ_INT(ix.count, 5000);
    CHECK(ix.mask >= 4095);
    int missing = 0;
    for (uint64_t i = 0; i < 5000; i++)
        missing += cache_index_find(&ix, k(i)) == NULL;
    CHECK_EQ_INT(missing, 0);
    /* The LRU order survived the rehash: oldest first. */
    ix.max_bytes = 4998;
    cache_key out;
    uint64_t size;
    CHECK_EQ_INT(cache_index_pop_lru(&ix, &out, &size), 1);
    CHECK(out.lo == 0);
    CHECK_EQ_INT(cache_index_pop_lru(&ix, &out, &size), 1);
    CHECK(out.lo == 1);
    CHECK_EQ_INT(cache_index_pop_lru(&ix, &out, &size), 0);
    cache_index_fini(&ix);
}

int main(void)
{
    RUN(lru_eviction);
    RUN(reinsert_and_remove);
    RUN(growth);
    return test_summary();
}
