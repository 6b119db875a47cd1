/* A chained hash table of cache entries threaded on one LRU list. */
#include "src/edge/cache_index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/rt/alloc.h"

static uint32_t slot_of(const cache_index *ix, cache_key k)
{
    return (uint32_t)(k.lo ^ (k.hi >> 17)) & ix->mask; /* the key is already a hash */
}

void cache_index_init(cache_index *ix, uint64_t max_bytes)
{
    memset(ix, 0, sizeof(*ix));
    ix->mask = 255;
    ix->buckets = rd_calloc(ix->mask + 1, sizeof(*ix->buckets), "the edge cache index");
    ix->max_bytes = max_bytes;
    ix->lru.newer = ix->lru.older = &ix->lru;
}

void cache_index_fini(cache_index *ix)
{
    cache_entry *e = ix->lru.older;
    while (e != &ix->lru) {
        cache_entry *next = e->older;
        free(e);
        e = next;
    }
    free(ix->buckets);
    memset(ix, 0, sizeof(*ix));
}

static void unlink_lru(cache_entry *e)
{
    e->newer->older = e->older;
    e->older->newer = e->newer;
}

/* Puts `e` right after `at` on the older side. */
static void link_after(cache_entry *at, cache_entry *e)
{
    e->newer = at;
    e->older = at->older;
    at->older->newer = e;
    at->older = e;
}

cache_entry *cache_index_find(cache_index *ix, cache_key key)
{
    for (cache_entry *e = ix->buckets[slot_of(ix, key)]; e != NULL; e = e->hnext)
        if (e->key.hi == key.hi && e->key.lo == key.lo)
            return e;
    return NULL;
}

void cache_index_touch(cache_index *ix, cache_entry *e)
{
    unlink_lru(e);
    link_after(&ix->lru, e);
}

static void grow(cache_index *ix)
{
    uint32_t n = (ix->mask + 1) * 2;
    cache_entry **b = rd_calloc(n, sizeof(*b), "the edge cache index");
    for (uint32_t i = 0; i <= ix->mask; i++) {
        cache_entry *e = ix->buckets[i];
        while (e != NULL) {
            cache_entry *next = e->hnext;
            uint32_t s = (uint32_t)(e->key.lo ^ (e->key.hi >> 17)) & (n - 1);
            e->hnext = b[s];
            b[s] = e;
            e = next;
        }
    }
    free(ix->buckets);
    ix->buckets = b;
    ix->mask = n - 1;
}

cache_entry *cache_index_insert(cache_index *ix, cache_key key, uint64_t size)
{
    cache_entry *e = cache_index_find(ix, key);
    if (e != NULL) {
        ix->bytes = ix->bytes - e->size + size;
        e->size = size;
        cache_index_touch(ix, e);
        return e;
    }
    if (ix->count > ix->mask)
        grow(ix);
    e = rd_calloc(1, sizeof(*e), "an edge cache entry");
    e->key = key;
    e->size = size;
    uint32_t s = slot_of(ix, key);
    e->hnext = ix->buckets[s];
    ix->buckets[s] = e;
    link_after(&ix->lru, e);
    ix->count++;
    ix->bytes += size;
    return e;
}

int cache_index_remove(cache_index *ix, cache_key key)
{
    cache_entry **pp = &ix->buckets[slot_of(ix, key)];
    while (*pp != NULL) {
        cache_entry *e = *pp;
        if (e->key.hi == key.hi && e->key.lo == key.lo) {
            *pp = e->hnext;
            unlink_lru(e);
            ix->count--;
            ix->bytes -= e->size;
            free(e);
            return 1;
        }
        pp = &e->hnext;
    }
    return 0;
}

int cache_index_pop_lru(cache_index *ix, cache_key *key, uint64_t *size)
{
    if (ix->bytes <= ix->max_bytes || ix->count == 0)
        return 0;
    cache_entry *e = ix->lru.newer;
    *key = e->key;
    *size = e->size;
    cache_index_remove(ix, e->key);
    return 1;
}
